"""Stage test bed (Table III): `testbed-train` trains one generator of the test bed or validation
set (a LoRA variant from its base), `testbed-sample` samples its images, meta.json and contact
sheet (modelfp.testbed), `perturb` writes JPEG or crop-resized copies of the test models' images
(Figure 16, modelfp.perturb)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from .. import cliutil

log = logging.getLogger(__name__)


def cmd_testbed_train(args):
    from .. import testbed
    from ..pools import read_pools
    cliutil.set_threads(args.threads)
    device = cliutil.device(args.device)
    pool = read_pools(args.pool, "train") if args.pool else None

    def progress(step, *losses):
        log.info("  step %5d  %s", step, " ".join(f"{v:.4f}" for v in losses))

    if args.base:
        return _testbed_lora(args, pool, device, progress)
    if not (args.family and args.image_size and args.steps is not None):
        raise ValueError("testbed-train needs --family, --image-size and --steps (or --base and --lora)")
    hp = json.loads(args.hp)
    module = testbed.family(args.family)
    log.info("train test model %s (%s) at %dx%d, %d steps", args.name, args.family,
             args.image_size, args.image_size, args.steps)
    model, info = module.train(pool, args.image_size, args.steps, args.batch_size, args.seed,
                               device, progress=progress, **hp)
    testbed.save(model, args.family, args.image_size, hp,
                 {**info, "name": args.name, "seed": args.seed, "steps": args.steps}, args.out)


def _testbed_lora(args, pool, device, progress):
    """A lineage variant (Figure 9 analogue): the base generator fine-tuned with LoRA on one part
    of the pools, merged, and saved as an ordinary model of the base's family."""
    import functools
    import inspect

    from .. import testbed
    from ..testbed import lora
    base, payload = testbed.load(args.base, device)
    module = testbed.family(payload["family"])
    if not hasattr(module, "loss"):
        raise ValueError(f"{args.base}: family {payload['family']!r} has no training loss to fine-tune "
                         f"with; LoRA bases must be one of the families with `loss` (vae, flow, ddpm)")
    spec = json.loads(args.lora)
    hp = {**getattr(module, "DEFAULTS", {}), **payload["hp"]}
    extra = {k: hp[k] for k in inspect.signature(module.loss).parameters if k in hp}  # e.g. the VAE's beta
    part = lora.pool_subset(pool, spec["part"], spec["parts"], args.seed)
    log.info("LoRA variant %s of %s (%s): rank %d, %d steps on part %d/%d of the pools (%d images)",
             args.name, payload["info"].get("name", args.base), payload["family"], spec.get("rank", 4),
             spec["steps"], spec["part"], spec["parts"], len(part))
    model, info = lora.finetune(base, functools.partial(module.loss, **extra), part, payload["image_size"],
                                spec["steps"], args.batch_size, args.seed, device, rank=spec.get("rank", 4),
                                alpha=spec.get("alpha", 4.0), lr=spec.get("lr", 1e-3), progress=progress)
    info = {**info, "name": args.name, "seed": args.seed, "base": payload["info"].get("name", str(args.base)),
            "lora_part": spec["part"], "lora_parts": spec["parts"]}
    testbed.save(model, payload["family"], payload["image_size"], payload["hp"], info, args.out)


def _configurations(sampling: dict, n: int, seed: int) -> list[dict]:
    """One sampling configuration per image: list values are drawn per image (seeded), scalars fixed."""
    import random
    rng = random.Random(seed)
    return [{k: (rng.choice(v) if isinstance(v, list) else v) for k, v in sampling.items()} for _ in range(n)]


def cmd_testbed_sample(args):
    import torch
    import torch.nn.functional as F
    from PIL import Image

    from .. import testbed
    from ..pools import to_uint8
    cliutil.set_threads(args.threads)
    device = cliutil.device(args.device)
    model, payload = testbed.load(args.generator, device)
    module = testbed.family(payload["family"])
    configs = _configurations(json.loads(args.sampling), args.n, args.seed)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    groups = {}
    for i, c in enumerate(configs):
        groups.setdefault(json.dumps(c, sort_keys=True), []).append(i)
    per_image, sheet = {}, []
    for g, (key, idx) in enumerate(sorted(groups.items())):
        images = module.sample(model, len(idx), args.seed + 1000 * g, device, **json.loads(key))
        pixels = to_uint8(images).permute(0, 2, 3, 1).cpu().numpy()
        for i, img in zip(idx, pixels):
            Image.fromarray(img).save(out / f"{i:05d}.png")
            per_image[f"{i:05d}.png"] = json.loads(key)
        size = payload["image_size"]
        sheet.append(F.interpolate(images[:64].float().cpu(), size=(size, size), mode="bilinear", antialias=True)
                     if images.shape[-1] != size else images[:64].cpu())
        log.info("  %d images with %s", len(idx), key)
    fam = testbed.FAMILIES[payload["family"]]
    info = payload["info"]
    meta = {"name": args.name, "family": fam.name, "kind": fam.kind, "group": fam.group,
            "resolution": payload["image_size"], "sample_seed": args.seed, "n_images": args.n,
            "seed": info.get("seed"), "steps": info.get("steps"), "training_seconds": info.get("seconds"),
            "base": args.base_name or info.get("base"),
            "train": {k: v for k, v in info.items() if isinstance(v, (int, float, str, bool))},
            "hp": payload["hp"], "sampling": json.loads(args.sampling)}
    if len(groups) > 1:
        meta["configurations"] = per_image
    Path(args.sheet).parent.mkdir(parents=True, exist_ok=True)
    testbed.write_contact_sheet(torch.cat(sheet)[:64], args.sheet, nrow=8)
    tmp = Path(args.meta).with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, args.meta)
    log.info("%d images of %s (%s, %s) -> %s", args.n, args.name, fam.name, fam.group, out)


def cmd_perturb(args):
    from ..perturb import perturb_folder
    from ..pools import list_images
    for name, folder in args.model:          # every folder checked before anything is written
        with cliutil.reading(f"model {name}"):
            list_images(folder)
    for name, folder in args.model:
        n = perturb_folder(folder, Path(args.out_dir) / name, args.kind, args.level, args.seed)
        log.info("%s at %s: %d images of %s -> %s/%s", args.kind, args.level, n, folder, args.out_dir, name)


def register(sub) -> None:
    p = sub.add_parser("testbed-train", help="train one generative model of the test bed")
    p.add_argument("--name", required=True)
    p.add_argument("--family", help="the generator family (not with --base)")
    p.add_argument("--pool", nargs="*", default=[])
    p.add_argument("--image-size", type=int, help="(not with --base: a variant keeps its base's)")
    p.add_argument("--steps", type=int, help="training steps (with --base: in --lora)")
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--hp", default="{}", help="family hyper-parameters as JSON")
    p.add_argument("--base", help="a trained test model to fine-tune with LoRA (lineage variant)")
    p.add_argument("--lora", default="{}", help="LoRA options as JSON: steps, part, parts, rank, alpha, lr")
    p.add_argument("--out", required=True)
    cliutil.compute_args(p)
    p.set_defaults(func=cmd_testbed_train)

    p = sub.add_parser("testbed-sample", help="sample a test model's images, meta.json, contact sheet")
    p.add_argument("--name", required=True)
    p.add_argument("--generator", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--sheet", required=True)
    p.add_argument("--sampling", default="{}",
                   help="the family's sampling options as JSON; a list value is drawn per image")
    p.add_argument("--base-name", help="the test model whose generator this is (varied configurations)")
    cliutil.compute_args(p)
    p.set_defaults(func=cmd_testbed_sample)

    p = sub.add_parser("perturb", help="JPEG or crop-resize test models' images at one level (Fig. 16)")
    p.add_argument("--model", nargs=2, action="append", required=True, metavar=("NAME", "FOLDER"))
    p.add_argument("--out-dir", required=True, help="writes OUT_DIR/NAME/*.png")
    p.add_argument("--kind", choices=("jpeg", "crop"), required=True)
    p.add_argument("--level", type=float, required=True, help="JPEG quality or crop area fraction")
    p.add_argument("--seed", type=int, required=True)
    p.set_defaults(func=cmd_perturb)
