"""Command line: `python -m modelfp <verb> ...` (also installed as `modelfp`).

Every workflow rule calls one verb, so each step runs and is tested without Snakemake. Verbs read
and write files; the computation lives in the modules they call.

A value the config sets (config.yaml, workflow/schemas/config.schema.yaml) is a required option
with no default here: the rule passes it, so the config is its one source (tests/test_rules.py
checks that every rule passes every required option of its verb). The people's commands
(`tool.py`: gallery, identify, verify) keep their defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger("modelfp")


def _device(name: str):
    import torch
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@contextlib.contextmanager
def _reading(what: str):
    """Errors of reading an input (a missing or unreadable folder, a bad file) name what it is for:
    '<what>: <error>' (the error itself names the path)."""
    try:
        yield
    except (FileNotFoundError, ValueError) as err:
        raise type(err)(f"{what}: {err}") from err


def _set_threads(n: int | None):
    import torch
    if n:
        torch.set_num_threads(n)


# ---------------------------------------------------------------------------------------------
# pool

def cmd_pool(args):
    from . import pools
    # the options of one source only (the config's pools.<name> keys); argparse cannot require them
    needed = ("root", "on_bad_image") if args.source == "folder" else ("photos", "count")
    missing = [f"--{k.replace('_', '-')}" for k in needed if getattr(args, k) is None]
    if missing:
        raise ValueError(f"pool {args.name}: --source {args.source} needs {' and '.join(missing)}")
    if args.source == "folder":
        images, report = pools.build_folder_pool(args.name, args.root, args.image_size,
                                                 on_bad_image=args.on_bad_image)
        if report.skipped:
            log.warning("pool %s: skipped %d of %d files (on_bad_image=skip):", args.name,
                        len(report.skipped), report.n_found)
            for path, reason in report.skipped:
                log.warning("  skipped %s: %s", path, reason)
        meta = {"source": "folder", "root": str(args.root), "report": report}
    else:
        images = pools.embedded_pool(args.photos, args.image_size, args.count, args.seed)
        meta = {"source": "embedded", "photos": args.photos,
                "sources": pools.EMBEDDED_SOURCES[args.photos], "count": args.count}
    train, val = pools.split_train_val(images, args.val_fraction, args.seed)
    meta.update(name=args.name, image_size=args.image_size, seed=args.seed)
    manifest = pools.write_pool(args.out_dir, train, val, meta)
    log.info("pool %s: %d train + %d val images of %dx%d -> %s", args.name, len(train), len(val),
             args.image_size, args.image_size, manifest)


# ---------------------------------------------------------------------------------------------
# synthesize

def _read_pools(dirs, split):
    import torch
    from .pools import read_pool
    return torch.cat([read_pool(d, split) for d in dirs]) if len(dirs) > 1 else read_pool(dirs[0], split)


def cmd_synthesize(args):
    """Train every seed of each architecture in --arch, one architecture after another in this one
    process (a slice of the zoo: Python, torch and the pools load once); --out lists the files,
    architecture-major, seed-minor, each written atomically as soon as its architecture is done."""
    from . import synthetic
    from .archspace import parse
    _set_threads(args.threads)
    archs = [parse(a) for a in args.arch]
    if len(args.out) != len(archs) * len(args.seeds):
        raise ValueError(f"--out names {len(args.out)} files; {len(archs)} architectures x "
                         f"{len(args.seeds)} seeds need {len(archs) * len(args.seeds)}")
    device = _device(args.device)
    cfg = synthetic.TrainConfig(image_size=args.image_size, batch_size=args.batch_size,
                                max_steps=args.max_steps, lr=args.lr, eta=args.eta,
                                check_every=args.check_every, val_images=args.val_images)
    # resized once for the whole slice (train_architecture leaves pools of the right size alone)
    train, val = (synthetic.fit_to_size(_read_pools(args.pool, split), args.image_size)
                  for split in ("train", "val"))
    path = synthetic.resolve_path(args.path, device, args.image_size)
    outs = iter(args.out)
    for arch in archs:
        log.info("synthesize %s seeds %s on %s (%s path), %d train images", arch.id, args.seeds,
                 device, path, len(train))

        def progress(step, residual):
            log.info("  step %5d  residual %s", step, " ".join(f"{r:.4f}" for r in residual.tolist()))

        start = time.perf_counter()
        models, results = synthetic.train_architecture(arch, args.seeds, train, val, cfg, path=path,
                                                       width=args.width, device=device,
                                                       progress=progress)
        for model, result in zip(models, results):
            synthetic.save(model, result, cfg, next(outs), seed=result.seed,
                           init_seed=synthetic.synthetic_seed(arch.id, result.seed), pools=[str(p) for p in args.pool], device=str(device), training_path=path,
                           arch_seconds=time.perf_counter() - start)
            log.info("  seed %d: %d steps, residual %.5f (floor %s), %.1f s", result.seed, result.steps,
                     result.final_residual, "reached" if result.reached_floor else "not reached",
                     result.train_seconds)


def _zoo_checkpoints(paths, manifests) -> list[str]:
    """Synthetic checkpoints, each checked against the slice manifests the rule declared
    (modelfp.manifest: the jobs' inputs are the manifests, not the hundreds of checkpoints)."""
    from . import manifest
    if not manifests:
        raise ValueError("synthetic checkpoints need --manifest: the zoo manifests that list them "
                         "(results/synthetic/slices/<slice>.tsv)")
    return manifest.verified(paths, manifests)


def cmd_zoo_manifest(args):
    from . import manifest
    manifest.write(args.checkpoints, args.out)
    log.info("%s: %d checkpoints", args.out, len(args.checkpoints))


def cmd_zoo_summary(args):
    """One csv row per synthetic checkpoint: the zoo's residuals, steps and training times."""
    from . import checkpoints, synthetic, tables
    rows = []
    for path in _zoo_checkpoints(args.checkpoints, args.manifest):
        # the metadata only: no need to build each model
        info = checkpoints.load(path, synthetic.FORMAT, "synthetic-model checkpoint")
        r = info["result"]
        rows.append({"arch": info["arch"], "seed": info["seed"], "steps": r["steps"],
                     "final_residual": f"{r['final_residual']:.6f}",
                     "reached_floor": r["reached_floor"],
                     "train_seconds": f"{r['train_seconds']:.3f}",
                     "training_path": info["training_path"], "file": path})
    tables.write_csv(rows, args.out)
    reached = sum(r["reached_floor"] for r in rows)
    total = sum(float(r["train_seconds"]) for r in rows)
    log.info("zoo: %d models, %d reached the residual floor, %.0f s of training (%.2f s/model)",
             len(rows), reached, total, total / len(rows))


# ---------------------------------------------------------------------------------------------
# denoiser, spectra, spectral effects

def cmd_train_denoiser(args):
    from . import denoise
    _set_threads(args.threads)
    device = _device(args.device)
    val = _read_pools(args.pool, "val")
    if args.external:
        model = denoise.load(args.external, device)
        log.info("denoiser: external checkpoint %s (%s)", args.external, model.info)
        meta = {"source": "external", "external": str(args.external)}
    else:
        cfg = denoise.TrainConfig(sigma=args.sigma, patch=args.patch, batch_size=args.batch_size,
                                  steps=args.steps, lr=args.lr, seed=args.seed)
        train = _read_pools(args.pool, "train")
        log.info("train DnCNN (depth %d, %d features) on %d images, sigma %.2f (0-255), %d steps",
                 args.depth, args.features, len(train), args.sigma, args.steps)
        model, history = denoise.train_denoiser(
            train, cfg, device, depth=args.depth, features=args.features,
            progress=lambda step, loss: log.info(
                "  step %5d  loss %.4f (share of the noise variance left; 1 = removes nothing)",
                step, loss))
        meta = {"source": "trained", "train_config": cfg.__dict__, "seconds": history.seconds,
                "final_loss": history.loss[-1] if history.loss else None,
                "noise_mse": history.noise_mse}
    quality = denoise.psnr_gain(model, val, args.sigma, seed=args.seed, device=device)
    log.info("denoiser on %d validation images at sigma %.2f: PSNR %.2f dB noisy -> %.2f dB "
             "denoised (gain %+.2f dB)", len(val), args.sigma, quality["psnr_noisy"],
             quality["psnr_denoised"], quality["gain"])
    denoise.save(model, args.out, **meta, validation=quality, sigma=args.sigma)


def cmd_synthetic_spectra(args):
    from . import denoise
    from .feed import SyntheticZoo
    from .pools import as_unit_range
    from .representation import synthetic_spectra
    from .synthetic import fit_to_size
    _set_threads(args.threads)
    device = _device(args.device)
    zoo = SyntheticZoo.from_files(_zoo_checkpoints(args.checkpoints, args.manifest), device=device)
    denoiser = denoise.load(args.denoiser, device)
    ns = sorted(set(args.n_images_sweep) | {args.n_images})
    val = _read_pools(args.pool, "val")
    if len(val) < ns[-1]:
        raise ValueError(f"the pools' validation splits hold {len(val)} images; spectra need "
                         f"{ns[-1]} (spectra.n_images and n_images_sweep): lower them or enlarge the pools")
    images = fit_to_size(val[:ns[-1]], args.image_size)
    images = as_unit_range(images).to(device)
    log.info("spectra of %d synthetic models on %d validation images of %dx%d (N in %s)",
             len(zoo), len(images), args.image_size, args.image_size, ns)
    spectra = synthetic_spectra(
        zoo, images, lambda x: denoise.noise_residual(denoiser, x, args.residual), ns,
        progress=lambda k, n: (k % 50 == 0 or k == n) and log.info("  %d / %d models", k, n))
    _save_spectra(args.out, spectra, ns, args.n_images, names=zoo.names,
                  archs=[m.arch.id for m in zoo.models],
                  seeds=[m.info["seed"] for m in zoo.models], image_size=args.image_size)


def _save_spectra(path, spectra, ns, n_main, **arrays):
    """npz of spectra: log at the main N, the N sweep, power, spec2d, and per-model labels."""
    import numpy as np
    _save_npz(path, log=spectra["log"][ns.index(n_main)].cpu().numpy(),
              log_sweep=spectra["log"].cpu().numpy(), ns=np.array(ns),
              power=spectra["power"].cpu().numpy(), spec2d=spectra["spec2d"].cpu().numpy(),
              n_images=n_main, **{k: np.array(v) for k, v in arrays.items()})


def _load_npz(path, keys) -> dict:
    """The arrays `keys` of an npz of this workflow (a spectra file), or ValueError naming the file."""
    import zipfile
    import numpy as np
    from .checkpoints import REBUILD
    try:
        with np.load(path) as data:
            missing = [k for k in keys if k not in data.files]
            if not missing:
                return {k: data[k] for k in keys}
    except FileNotFoundError:
        raise                                   # its message names the path
    except (OSError, ValueError, EOFError, TypeError, zipfile.BadZipFile) as err:   # TypeError: an .npy
        raise ValueError(f"{path}: not an npz archive, or a damaged one; {REBUILD}") from err
    raise ValueError(f"{path}: no array(s) {missing} (written by another verb?); {REBUILD}")


def cmd_test_spectra(args):
    from . import denoise
    from .representation import ImageSet, load_image_set, spectra_of_images, stack_models
    _set_threads(args.threads)
    device = _device(args.device)
    denoiser = denoise.load(args.denoiser, device)
    ns = sorted(set(args.n_images_sweep) | {args.n_images})
    sets = [ImageSet(name, path, group) for name, path, group in args.model]
    per_model = []
    for s in sets:
        with _reading(f"model {s.name}"):
            images = load_image_set(s, ns[-1], args.image_size).to(device)
        per_model.append(spectra_of_images(
            images, lambda x: denoise.noise_residual(denoiser, x, args.residual), ns))
        log.info("  %s (%s): %d images from %s", s.name, s.group, len(images), s.path)
    spectra = stack_models(per_model)
    _save_spectra(args.out, spectra, ns, args.n_images, names=[s.name for s in sets],
                  groups=[s.group for s in sets], image_size=args.image_size)


def cmd_ffd_tables(args):
    import numpy as np
    from . import tables
    syn = _load_npz(args.synthetic, ("ns", "log", "log_sweep", "archs", "seeds", "n_images", "image_size"))
    real = _load_npz(args.real, ("ns", "log", "log_sweep", "names"))
    if not np.array_equal(syn["ns"], real["ns"]) or syn["log"].shape[1] != real["log"].shape[1]:
        raise ValueError(f"{args.synthetic} and {args.real} were made with different N or sizes")
    archs, seeds = [str(a) for a in syn["archs"]], [int(s) for s in syn["seeds"]]
    note = (f"Ours: {len(real['names'])} test models ({', '.join(map(str, real['names']))}) vs "
            f"{len(archs)} synthetic models, N = {int(syn['n_images'])} images per model, "
            f"{int(syn['image_size'])}x{int(syn['image_size'])}. Paper: 32 real models (Table III) "
            f"vs 5,760 synthetic models, N = 100, 128x128.")
    # sqrtm's round-off reports (dropped imaginary parts ~1e-10) go to debug; errors still raise
    rows = tables.table_ii(real["log"], syn["log"], archs, seeds, log=log.debug)
    tables.write_table(rows, args.out_csv[0], args.out_md[0],
                       "Table II: FFD of the synthetic models against the test models", note)
    rows_xi = tables.table_xi(real["log_sweep"], syn["log_sweep"], [int(n) for n in syn["ns"]],
                              archs, seeds, log=log.debug)
    tables.write_table(rows_xi, args.out_csv[1], args.out_md[1],
                       "Table XI: correlation of the Table II FFDs at each N with those at the largest N",
                       note + f" Our N sweep: {[int(n) for n in syn['ns']]}; the paper's: 50-500.")
    for row in rows:
        log.info("Table II  %-9s FFD %8.4f  (paper %.2f, %d synthetic models)", row["models"],
                 row["ffd"], row["paper_ffd"], row["n_synthetic"])


def cmd_closest_spectra(args):
    from .figures import plot_closest_spectra
    syn, real = (_load_npz(path, ("names", "spec2d", "log")) for path in (args.synthetic, args.real))
    closest = plot_closest_spectra([str(n) for n in real["names"]], real["spec2d"], real["log"],
                                   [str(n) for n in syn["names"]], syn["spec2d"], syn["log"],
                                   args.out_png, args.out_pdf)
    for name, k in zip(real["names"], closest):
        log.info("  %-24s closest synthetic model: %s", name, syn["names"][k])


def cmd_perturb(args):
    from .perturb import perturb_folder
    from .pools import list_images
    for name, folder in args.model:          # every folder checked before anything is written
        with _reading(f"model {name}"):
            list_images(folder)
    for name, folder in args.model:
        n = perturb_folder(folder, Path(args.out_dir) / name, args.kind, args.level, args.seed)
        log.info("%s at %s: %d images of %s -> %s/%s", args.kind, args.level, n, folder, args.out_dir, name)


# ---------------------------------------------------------------------------------------------
# test bed

def cmd_testbed_train(args):
    from . import testbed
    _set_threads(args.threads)
    device = _device(args.device)
    pool = _read_pools(args.pool, "train") if args.pool else None

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
    from . import testbed
    from .testbed import lora
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
    import torchvision.utils
    from PIL import Image
    from . import testbed
    from .pools import to_uint8
    _set_threads(args.threads)
    device = _device(args.device)
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
    torchvision.utils.save_image(torch.cat(sheet)[:64] * 0.5 + 0.5, args.sheet, nrow=8)
    tmp = Path(args.meta).with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, args.meta)
    log.info("%d images of %s (%s, %s) -> %s", args.n, args.name, fam.name, fam.group, out)


def cmd_spectral_effects(args):
    from . import spectral_effects as se
    from . import tables
    data = _load_npz(args.spectra, ("archs", "log", "power"))
    archs = [str(a) for a in data["archs"]]
    for option, png, pdf in zip(se.FIGURES, args.out_png, args.out_pdf, strict=True):
        se.plot_option(data["log"], archs, option, png, pdf)
    rows = se.hf_claims(data["power"], archs)
    consistency = se.normalization_consistency(data["log"], archs)
    verdict = {True: "our data agrees", False: "our data DISAGREES",
               None: "not testable here (no matched architectures)"}
    for row in rows:
        log.info("%-55s pairs %3d  agreeing %5.1f%%  -> %s", row["claim"], row["pairs"],
                 100 * row["share_agreeing"], verdict[row["agrees"]])
    log.info("%s: within %.4f, across %.4f -> %s", consistency["claim"],
             consistency["distance_within"], consistency["distance_across"],
             verdict[consistency["agrees"]])
    tables.write_csv(rows + [consistency], args.out_csv)


# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# extractor: training, embeddings, evaluation, tables and figures (Sections III-D, IV, App. B)

def _save_npz(path, **arrays):
    import numpy as np
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _split_options(opts: dict):
    """(ExtractorConfig, TrainConfig) from one dict of the config's extractor keys."""
    from dataclasses import fields
    from . import extractor as ex
    model_keys = {f.name for f in fields(ex.ExtractorConfig)}
    train_keys = {f.name for f in fields(ex.TrainConfig)}
    unknown = set(opts) - model_keys - train_keys
    if unknown:
        raise ValueError(f"unknown extractor options {sorted(unknown)}; known: {sorted(model_keys | train_keys)}")
    return (ex.ExtractorConfig(**{k: v for k, v in opts.items() if k in model_keys}),
            ex.TrainConfig(**{k: v for k, v in opts.items() if k in train_keys}))


def cmd_train_extractor(args):
    import torch
    from tqdm import tqdm
    from . import denoise, tables
    from . import extractor as ex
    _set_threads(args.threads)
    device = _device(args.device)
    model_cfg, train_cfg = _split_options(json.loads(args.options))
    size = model_cfg.image_size
    if args.synthetic:
        from .feed import SyntheticZoo
        from .synthetic import fit_to_size
        zoo = SyntheticZoo.from_files(_zoo_checkpoints(args.synthetic, args.manifest), device=device)
        source = ex.ZooSource(zoo, fit_to_size(_read_pools(args.pool, "train"), size), device)
    else:
        names, images = _training_side(args.images, args.train_fraction, size)
        source = ex.FolderSource(images, names, device)
    if args.init:
        model = ex.load(args.init, device)
        if model.cfg.image_size != size:
            raise ValueError(f"{args.init}: trained at {model.cfg.image_size} px, options say {size}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(train_cfg.seed)
            model.new_head(source.classes)
    else:
        model = ex.build(denoise.load(args.denoiser, device), model_cfg, source.classes, train_cfg.seed).to(device)
        ex.fit_input_statistics(model, source, train_cfg.seed)     # normalize, linear: else nothing
    log.info("extractor %s: %s on %d %s models, %s", args.variant, model_cfg.backbone, len(source.classes),
             "synthetic" if args.synthetic else "known", "untrained (control)" if args.untrained
             else f"{train_cfg.epochs} epochs x {train_cfg.steps_per_epoch} steps of {train_cfg.p}x{train_cfg.k}")
    evaluator = _epoch_validation(args, source, train_cfg.seed)      # read before training: errors come first
    history = []
    if not args.untrained:
        bar = tqdm(total=train_cfg.epochs * train_cfg.steps_per_epoch, disable=not sys.stderr.isatty(),
                   desc=f"extractor {args.variant}")

        def on_epoch(row):
            log.info("  epoch %d: loss %.4f (ce %.4f, triplet %.4f), train acc %.3f, %.1f s", row["epoch"],
                     row["loss"], row["ce"], row["triplet"], row["train_acc"], row["seconds"])
            if evaluator:
                log.info("    validation: identification %.1f %%, verification AUC %.1f %%, %.1f s",
                         row["val_identification_acc"], row["val_verification_auc"], row["val_seconds"])

        history = ex.train(model, source, train_cfg, device, state_path=args.state,
                           progress=lambda step, total: bar.update(step - bar.n), on_epoch=on_epoch,
                           evaluator=evaluator)
        bar.close()
    if args.history:
        tables.write_csv(history or [{"epoch": 0}], args.history)
    # the centre: the mean fingerprint of this extractor's own training images (the synthetic feed;
    # the known models' images when fine-tuning; the controls use the same synthetic feed)
    ex.fit_centre(model, source, train_cfg.seed + ex.CENTRE_SEED_OFFSET)
    log.info("fingerprint centre: mean of %d training images' fingerprints, norm %.4g", ex.CENTRE_IMAGES,
             float(model.centre.norm()))
    ex.save(model, args.out, variant=args.variant, options=json.loads(args.options),
            trained_on=source.classes, untrained=bool(args.untrained),
            train_seconds=sum(r["seconds"] for r in history))
    if args.state and Path(args.state).exists():
        os.remove(args.state)                    # the final file is written: the state is done with


def _epoch_validation(args, source, seed):
    """train-extractor's per-epoch evaluator (`extractor.train`), or None without --validation: of
    each validation folder's evaluation side (modelfp.splits, as `embed` reads it) a fixed subset of
    --gallery + validation.EPOCH_QUERIES images, loaded once; after each epoch the model's centre is
    fitted as for the saved file (`fit_centre`), then `validation.scores` of the subset in --window
    windows, with the protocol of `evaluate` (--gallery, --pairs-same, --pairs-diff, --seed)."""
    from . import extractor as ex
    from . import validation
    from .pools import load_image
    from .splits import EVAL, folder_side
    if not args.validation:
        return None
    missing = [f"--{k.replace('_', '-')}" for k in ("train_fraction", "window", "gallery", "pairs_same",
                                                      "pairs_diff", "seed") if getattr(args, k) is None]
    if missing:
        raise ValueError(f"--validation needs {' '.join(missing)} (the config's evaluation section)")
    trained = {Path(f).resolve() for _, f in args.images or []} & {Path(f).resolve() for _, f in args.validation}
    if trained:
        raise ValueError(f"--validation folder(s) {sorted(map(str, trained))} are also trained on (--images)")
    paths = {}
    for name, folder in args.validation:
        with _reading(f"validation model {name}"):
            paths[name] = folder_side(folder, args.train_fraction, EVAL)[0]
    chosen = validation.sample_images(paths, args.gallery + validation.EPOCH_QUERIES, args.seed)
    few = sorted(name for name, ps in chosen.items() if len(ps) <= args.gallery)
    if few:
        raise ValueError(f"validation model(s) {few}: no more than --gallery {args.gallery} images on the "
                         f"evaluation side, so no query to identify; add images or lower evaluation.gallery")
    images = {name: [load_image(p, None) for p in ps] for name, ps in chosen.items()}
    log.info("validation after every epoch: %d models, %d images (of their evaluation side)", len(images),
             sum(map(len, images.values())))

    def evaluator(model):
        ex.fit_centre(model, source, seed + ex.CENTRE_SEED_OFFSET)
        got = validation.scores(*validation.embed_models(model, images, args.window), gallery_size=args.gallery,
                                n_same=args.pairs_same, n_diff=args.pairs_diff, seed=args.seed)
        return {"val_identification_acc": got["identification_acc"], "val_verification_auc": got["verification_auc"]}
    return evaluator


def _training_side(pairs, fraction, size):
    """[(name, folder)] -> (names, one uint8 (n,3,size,size) tensor per model): the training side of
    each folder (modelfp.splits), each image's centre window (resized up when smaller)."""
    import torch
    from . import extractor as ex
    from .pools import load_image
    from .splits import TRAIN, folder_side
    if fraction is None:
        raise ValueError("--images needs --train-fraction (evaluation.train_fraction)")
    names, images = [], []
    for name, folder in pairs:
        paths, total = folder_side(folder, fraction, TRAIN)
        log.info("  %-24s %4d of %d images (training side, train_fraction %g)", name, len(paths), total, fraction)
        names.append(name)
        images.append(torch.stack([ex.windows(load_image(p, None), size, 1)[0] for p in paths]))
    return names, images


def cmd_train_baseline(args):
    """Train one baseline of Tables VIII-X on the known (classical) models' training images, then
    store it with its centre (the mean feature of those images) as a trained-baseline file."""
    import torch
    from . import baselines, denoise
    from .baselines.common import Stopping
    _set_threads(args.threads)
    device = _device(args.device)
    module = baselines.baseline(args.name)
    hp = baselines.resolve(args.name, json.loads(args.hp))
    names, images = _training_side(args.images, args.train_fraction, args.image_size)
    extra = {}
    if baselines.needs_denoiser(args.name):
        if not args.denoiser:
            raise ValueError(f"train-baseline {args.name}: needs --denoiser (the workflow's DnCNN)")
        extra["denoiser"] = denoise.load(args.denoiser, device)
    stopping = Stopping(args.holdout, args.eval_every, args.patience)
    model = module.build(args.image_size, len(names), args.seed, **extra, **hp).to(device)
    log.info("baseline %s: %d known models, %d training images of %d px, at most %d steps of %d; %s", args.name,
             len(names), sum(len(x) for x in images), args.image_size, args.steps, args.batch_size,
             "no early stopping" if stopping.eval_every is None else
             f"early stopping on {stopping.holdout:g} of each model's training images held out, every "
             f"{stopping.eval_every} steps, patience {stopping.patience}")

    def progress(step, loss):
        log.info("  step %6d  loss %.4f", step, loss)

    model, info = module.train(model, images, args.steps, args.batch_size, args.seed, device, progress,
                               state_path=args.state, stopping=stopping, **hp)
    history = info.pop("history")
    if "best_step" in info:
        log.info("baseline %s: %d steps run, best held-out accuracy %s at step %s (%d held-out images)", args.name,
                 info["steps_run"], info["heldout_acc"], info["best_step"], info["heldout_images"])
    # the centre: the mean feature of its own training images (as Only-Syn's extractor is centred)
    centre = module.embed(model.eval(), torch.cat(images), device).double().mean(0).float()
    if args.history:
        _write_history(history, args.history)
    baselines.save(args.out, args.name, model, args.image_size, names, hp, centre, info,
                   denoiser=extra.get("denoiser"))
    log.info("baseline %s trained in %.1f s -> %s", args.name, info.get("seconds", float("nan")), args.out)
    if args.state and Path(args.state).exists():
        os.remove(args.state)                    # the final file is written: the state is done with


def _write_history(rows: list[dict], path) -> None:
    """A baseline's learning curve as csv (step, loss, heldout_acc, phase; a blank accuracy where
    none was measured), written atomically; a header only for a method that does not train."""
    import csv
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["step", "loss", "heldout_acc", "phase"])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def load_fingerprinter(path, device):
    """A fingerprint-extractor file or a trained-baseline file, ready for `extractor.embed`."""
    from . import baselines
    from . import extractor as ex
    return baselines.load(path, device) if baselines.is_baseline_file(path) else ex.load(path, device)


EMBED_CHUNK = 64      # images loaded at a time by `embed`


def cmd_embed(args):
    from . import extractor as ex
    from .splits import EVAL, folder_side
    _set_threads(args.threads)
    model = load_fingerprinter(args.extractor, _device(args.device))
    lists = _read_lists(args)
    for name, folder in args.model:
        paths, total = folder_side(folder, args.train_fraction, EVAL)
        if lists is not None:
            paths = _listed_images(lists, name, folder, args.train_fraction) or paths
        emb = ex.embed_paths(model, paths, args.window, args.batch_size, EMBED_CHUNK)
        _save_npz(Path(args.out_dir) / f"{name}.npz", embeddings=emb.numpy(),
                  paths=[str(p) for p in paths], folder=str(folder))
        log.info("  %-24s %4d of %d images (%s, train_fraction %g) -> %s", name, len(paths), total,
                 "evaluation side" if lists is None else "named by the evaluation lists", args.train_fraction,
                 tuple(emb.shape))


def _read_lists(args):
    """The evaluation lists of --lists-root/--support/--test/--pairs (all or none), or None."""
    given = [args.lists_root, args.support, args.test, args.pairs]
    if not any(given):
        return None
    if not all(given):
        raise ValueError("--lists-root, --support, --test and --pairs go together (evaluation.lists)")
    from .protocol_lists import read_lists
    return read_lists(args.lists_root, args.support, args.test, args.pairs)


def _listed_images(lists, name, folder, train_fraction):
    """With evaluation lists, a model's images are exactly those the lists name (either side of
    modelfp.splits: the user's lists decide), found in its folder by key; [] if it is in no list."""
    from .pools import list_images
    from .protocol_lists import images_of
    from .splits import TRAIN, image_key, side
    wanted = {}
    for image in images_of(lists):
        if image.model == name:
            wanted.setdefault(image.key, image.where)
    if not wanted:
        return []
    by_key = {image_key(p, folder): p for p in list_images(folder)}
    for key, where in wanted.items():
        if key not in by_key:
            raise FileNotFoundError(f"{where}: image {name}/{key} is not in the folder {folder} of model {name!r}")
    on_train = sum(side(k, train_fraction) == TRAIN for k in wanted)
    if on_train:
        log.warning("  %s: %d of the %d listed images lie on the training side that fine-tuning and the "
                    "baselines read (modelfp.splits)", name, on_train, len(wanted))
    return sorted(by_key[k] for k in wanted)


def cmd_evaluate(args):
    from . import evaluate, tables
    groups = {"classical": [], "emerging": []}
    for name, group in args.model:
        if group not in groups:
            raise ValueError(f"test model {name}: group must be classical or emerging, not {group!r}")
        groups[group].append(name)
    groups["all"] = [n for n, _ in args.model]
    verifier = None
    if args.verifier:
        from . import baselines
        verifier = baselines.pair_scorer(baselines.load(args.verifier))
        if verifier is None:
            raise ValueError(f"{args.verifier}: its method has no pair verifier of its own (only abady has)")
    lists = _read_lists(args)
    if lists is not None:
        from . import protocol_lists
        protocol_lists.check_models(lists, groups["all"])
        # every line is located once up front, so a missing image stops the run whatever the groups
        keys = protocol_lists.embedded_keys(args.embeddings, groups["all"])     # read once, for every group
        protocol_lists.locate(lists, keys, groups["all"])
        log.info("evaluation lists: %d support, %d test images, %d pairs (not the seeded protocol)",
                 len(lists.support), len(lists.test), len(lists.pairs))
    rows, queries, pairs_out = [], [], []
    for group, names in groups.items():
        if len(names) < 2:
            log.warning("group %s has %d test model(s): no metrics (need 2)", group, len(names))
            continue
        emb, labels = evaluate.read_embeddings(args.embeddings, names)
        if lists is not None:
            # the rows of these models' embeddings: read_embeddings stacks them in `names` order
            group_keys = [k for k in keys if k[0] in names]
            support, test, pairs = protocol_lists.locate(lists, group_keys, names)
            row, own, ide, ver = protocol_lists.evaluate_lists_details(emb, labels, support, test, pairs, verifier)
        else:
            row, ver, ide = evaluate.evaluate_group_details(emb, labels, n_same=args.pairs_same,
                                                            n_diff=args.pairs_diff, gallery_size=args.gallery,
                                                            seed=args.seed, draws=args.gallery_draws)
            own = None if verifier is None else evaluate.verification(
                emb, labels, args.pairs_same, args.pairs_diff, args.seed, pair_score=verifier)
            group_keys = None
        if args.out_queries or args.out_pairs:
            # per query and per pair, named by image (model, key), so two methods' files join
            from .protocol_lists import embedded_keys
            group_keys = group_keys or embedded_keys(args.embeddings, names)
            queries += [{"group": group, **r} for r in evaluate.query_rows(ide, group_keys)]
            if "scores" in ver:
                pairs_out += [{"group": group, **r} for r in evaluate.pair_rows(ver, group_keys)]
        if own is not None:
            row.update(verifier_verification_acc=100 * own["accuracy"], verifier_verification_auc=100 * own["auc"])
        rows.append({"group": group, "models": len(names), "images": len(labels), **row})
        log.info("%-9s verification %.2f / AUC %.2f (threshold %.4f), identification %.2f / F1 %.2f "
                 "(sd %.2f over %d gallery draws, se %.2f on %d queries), open-set AUROC %.2f (threshold %.4f), "
                 "SS %.3f, DBI %.3f",
                 group, row["verification_acc"], row["verification_auc"], row["verification_threshold"],
                 row["identification_acc"], row["identification_f1"], row["identification_acc_sd"],
                 row["gallery_draws"], row["identification_acc_se"], row["identification_queries"],
                 row["openset_auroc"], row["openset_threshold"], row["silhouette"], row["dbi"])
        if args.out_png and group != "all":
            png = dict(zip(("classical", "emerging"), args.out_png))[group]
            evaluate.plot_tsne(emb, labels, png, f"{args.title}: {group} test models", seed=args.seed)
    if args.out_queries:
        tables.write_csv(queries, args.out_queries)
    if args.out_pairs:
        tables.write_csv(pairs_out, args.out_pairs)
    tables.write_csv(rows, args.out_csv)


def _all_row(path, columns) -> dict:
    """The "all" row of an evaluation csv (the verb evaluate's), or ValueError naming the file and what it lacks."""
    from .tables import read_evaluation
    row = read_evaluation(path).get("all", {})
    missing = [k for k in columns if k not in row]
    if missing:
        raise ValueError(f"{path}: no {' or '.join(missing)} in an \"all\" row; rerun the evaluate rule that "
                         f"writes it")
    return row


def cmd_calibrate(args):
    """The deployable extractor: the trained one plus the best verification threshold (verify) and
    open-set threshold (identify's "unknown") of an evaluation csv's "all" row, and with
    --embeddings the per-model open-set constants fitted on those embeddings (`modelfp.openset.fit`)."""
    from . import extractor as ex
    # the rule passes the validation generators' evaluation and embeddings: never the test bed's
    row = _all_row(args.evaluation, ("verification_threshold", "openset_threshold"))
    rule = None
    if args.embeddings:
        from . import openset
        emb, labels = openset.read_embeddings_folder(args.embeddings)
        fitted = openset.fit(emb, labels, row["openset_threshold"], gallery_size=args.gallery, seed=args.seed)
        rule = fitted.record(str(args.embeddings))
        log.info("%s: open-set rule %s; balanced open-set accuracy %.2f %% (global threshold alone %.2f %%) "
                 "on %d models' embeddings, %d draws", args.embeddings, fitted.rule.describe(),
                 100 * fitted.fitted["balanced"], 100 * fitted.global_["balanced"], len(set(labels.tolist())),
                 fitted.repeats)
    ex.set_threshold(args.extractor, row["verification_threshold"], out=args.out,
                     openset_threshold=row["openset_threshold"], openset_rule=rule,
                     threshold_from=str(args.evaluation))
    log.info("%s: verification threshold %.4f, open-set threshold %.4f (best on %s) -> %s", args.extractor,
             row["verification_threshold"], row["openset_threshold"], args.evaluation, args.out)


def cmd_attribution_table(args):
    from . import tables
    # an empty PAPER_LABEL declares a row without paper numbers; any other must be the paper's
    make = tables.comparison_table if args.table in tables.COMPARISON_METRICS else tables.ablation_table
    rows = make(args.table, [(label, paper or None, tables.read_evaluation(path))
                             for label, paper, path in args.row]
                + [(label, None, tables.read_evaluation(path)) for label, path in args.diagnostic])
    tables.write_table(rows, args.out_csv, args.out_md, tables.TITLES[args.table], args.note)
    log.info("%s -> %s, %s", tables.TITLES[args.table], args.out_csv, args.out_md)


def cmd_trace(args):
    """Figures 9 and 15: are the images of derived sets (LoRA variants, other generation
    configurations) attributed to their reference model among all references?"""
    import numpy as np
    from . import evaluate, tables
    refs = args.reference
    derived = [(name, ref) for name, ref in args.derived]
    for name, ref in derived:
        if ref not in refs:
            raise ValueError(f"derived set {name}: its reference {ref!r} is not among --reference {refs}")
    ref_emb, ref_labels = evaluate.read_embeddings(args.embeddings, refs)
    names, gallery = evaluate.gallery_fingerprints(ref_emb, ref_labels)
    rows = []
    for name, ref in derived:
        emb, _ = evaluate.read_embeddings(args.embeddings, [name])
        pred = names[np.argmax(evaluate.cosine_matrix(emb, gallery), axis=1)]
        rows.append({"set": name, "reference": ref, "images": len(emb),
                     "attributed_to_reference": round(100 * float(np.mean(pred == ref)), 2),
                     "most_attributed": str(max(set(pred), key=list(pred).count))})
        log.info("  %-24s -> %s: %.1f%% of its images", name, ref, rows[-1]["attributed_to_reference"])
    tables.write_csv(rows, args.out_csv)
    der_emb, der_labels = evaluate.read_embeddings(args.embeddings, [n for n, _ in derived])
    # colour = reference model (a derived set takes its reference's colour), marker = reference/derived
    to_ref = dict(derived)
    colours = np.concatenate([ref_labels, [to_ref[n] for n in der_labels]])
    markers = np.array(["reference"] * len(ref_labels) + [args.derived_label] * len(der_labels))
    evaluate.plot_tsne(np.concatenate([ref_emb, der_emb]), colours, args.out_png, args.title,
                       seed=args.seed, markers=markers)


def cmd_figure_8(args):
    """Figure 8: synthesis time of the zoo with at most k blocks, and verification accuracy."""
    import csv as _csv
    from . import tables
    from .archspace import parse
    from .figures import plot_block_count
    from .variants import paper_rows
    paper = paper_rows("fig_8")       # the paper's GPU hours of the zoo up to k blocks
    seconds = {}
    for path in args.zoo_summary:
        with open(path, newline="") as f:
            for row in _csv.DictReader(f):
                k = parse(row["arch"]).blocks
                seconds[k] = seconds.get(k, 0.0) + float(row["train_seconds"])
    rows = []
    for k, path in sorted((int(k), p) for k, p in args.evaluation):
        ev = _all_row(path, ("verification_acc", "identification_acc"))
        total = sum(v for b, v in seconds.items() if b <= k)
        rows.append({"max_blocks": k, "synthesis_seconds": round(total, 1), "synthesis_hours": round(total / 3600, 4),
                     "verification_acc": round(ev["verification_acc"], 2),
                     "identification_acc": round(ev["identification_acc"], 2),
                     "paper_gpu_hours": paper.get(str(k), ("",))[0]})
    tables.write_csv(rows, args.out_csv)
    plot_block_count(rows, args.out_png, args.out_pdf)
    log.info("Figure 8 -> %s", args.out_png)


def cmd_figure_16(args):
    """Figure 16: identification accuracy under JPEG and crop-resize, plain and immunized."""
    from . import tables
    from .figures import plot_robustness
    rows = [{"extractor": name, "perturbation": kind, "level": float(level),
             "identification_acc": round(_all_row(path, ["identification_acc"])["identification_acc"], 2)}
            for name, kind, level, path in args.point]
    tables.write_csv(rows, args.out_csv)
    plot_robustness(rows, args.out_png, args.out_pdf)
    log.info("Figure 16 -> %s", args.out_png)


def _figure_outputs(p):
    """A figure verb's three files: the plot as png and pdf, and its numbers as csv."""
    for kind in ("png", "pdf", "csv"):
        p.add_argument(f"--out-{kind}", required=True)


def _compute_args(p):
    """Where a computing verb runs: --device (auto = CUDA when present) and torch threads."""
    p.add_argument("--device", required=True, help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, default=None)


def _spectra_args(p):
    p.add_argument("--n-images", type=int, required=True, help="N images per model (Table II)")
    p.add_argument("--n-images-sweep", type=int, nargs="*", required=True, help="Ns of Table XI")
    p.add_argument("--image-size", type=int, required=True)
    p.add_argument("--residual", choices=("predicted", "difference"), required=True)
    _compute_args(p)


def _list_args(p) -> None:
    """The evaluation lists' options of embed and evaluate (`_read_lists`)."""
    p.add_argument("--lists-root", help="evaluation lists (all four or none; modelfp.protocol_lists): "
                   "the folder the list paths are relative to")
    p.add_argument("--support", help="identification support list, path<TAB>label lines")
    p.add_argument("--test", help="identification test list, path<TAB>label lines")
    p.add_argument("--pairs", help="verification pair list, path1<TAB>path2<TAB>label lines (1 same, 0 different)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelfp", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pool", help="build an image pool (folder of photos or embedded photos)")
    p.add_argument("--name", required=True)
    p.add_argument("--source", choices=("folder", "embedded"), required=True)
    p.add_argument("--root", help="folder of images (source=folder)")
    p.add_argument("--photos", help="embedded photo set (source=embedded)")
    p.add_argument("--count", type=int, help="patches to crop (source=embedded)")
    p.add_argument("--image-size", type=int, required=True)
    p.add_argument("--val-fraction", type=float, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--on-bad-image", choices=("error", "skip"), help="(source=folder)")
    p.add_argument("--out-dir", required=True, help="writes OUT_DIR/manifest.json and its shards")
    p.set_defaults(func=cmd_pool)

    p = sub.add_parser("synthesize", help="train all seeds of synthetic architectures (a slice of the zoo)")
    p.add_argument("--arch", nargs="+", required=True,
                   help="architecture ids, e.g. K2-L1-Spost-Ubilinear-Arelu-Nbn")
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--pool", nargs="+", required=True, help="pool folders (train/val splits are used)")
    p.add_argument("--out", nargs="+", required=True,
                   help="one checkpoint per architecture and seed, architecture-major")
    p.add_argument("--image-size", type=int, required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--max-steps", type=int, required=True)
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--eta", type=float, required=True, help="residual floor (see README)")
    p.add_argument("--check-every", type=int, required=True)
    p.add_argument("--val-images", type=int, required=True)
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--path", choices=("auto", "grouped", "loop"), required=True)
    _compute_args(p)
    p.set_defaults(func=cmd_synthesize)

    p = sub.add_parser("zoo-manifest", help="manifest of a zoo slice's checkpoints (path, size, SHA-256)")
    p.add_argument("--out", required=True)
    p.add_argument("checkpoints", nargs="+")
    p.set_defaults(func=cmd_zoo_manifest)

    p = sub.add_parser("zoo-summary", help="csv of the zoo's checkpoints (residuals, steps, time)")
    p.add_argument("--out", required=True)
    p.add_argument("--manifest", nargs="+", required=True, help="the zoo manifests listing the checkpoints")
    p.add_argument("checkpoints", nargs="+")
    p.set_defaults(func=cmd_zoo_summary)

    p = sub.add_parser("train-denoiser", help="train DnCNN on pools (or adopt an external one)")
    p.add_argument("--pool", nargs="+", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--external", help="an external DnCNN checkpoint to use instead of training")
    p.add_argument("--sigma", type=float, required=True, help="noise std on the 0-255 scale")
    p.add_argument("--patch", type=int, required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--depth", type=int, required=True)
    p.add_argument("--features", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    _compute_args(p)
    p.set_defaults(func=cmd_train_denoiser)

    p = sub.add_parser("synthetic-spectra", help="reduced spectra of every synthetic model (FFD Step I)")
    p.add_argument("--pool", nargs="+", required=True, help="pools whose val images are fed")
    p.add_argument("--denoiser", required=True)
    p.add_argument("--out", required=True, help=".npz with names, archs, log and power spectra")
    p.add_argument("--manifest", nargs="+", required=True, help="the zoo manifests listing the checkpoints")
    _spectra_args(p)
    p.add_argument("checkpoints", nargs="+")
    p.set_defaults(func=cmd_synthetic_spectra)

    p = sub.add_parser("test-spectra", help="reduced spectra of the test models' images (FFD Step I)")
    p.add_argument("--model", nargs=3, action="append", required=True,
                   metavar=("NAME", "FOLDER", "GROUP"), help="a test model's image set (repeat)")
    p.add_argument("--denoiser", required=True)
    p.add_argument("--out", required=True)
    _spectra_args(p)
    p.set_defaults(func=cmd_test_spectra)

    p = sub.add_parser("ffd-tables", help="Tables II and XI from the spectra of both sides")
    p.add_argument("--synthetic", required=True)
    p.add_argument("--real", required=True)
    p.add_argument("--out-csv", nargs=2, required=True, metavar=("TABLE_II", "TABLE_XI"))
    p.add_argument("--out-md", nargs=2, required=True, metavar=("TABLE_II", "TABLE_XI"))
    p.set_defaults(func=cmd_ffd_tables)

    p = sub.add_parser("fig-10", help="Figure 10: test models beside their closest synthetic model")
    p.add_argument("--synthetic", required=True)
    p.add_argument("--real", required=True)
    p.add_argument("--out-png", required=True)
    p.add_argument("--out-pdf", required=True)
    p.set_defaults(func=cmd_closest_spectra)

    p = sub.add_parser("perturb", help="JPEG or crop-resize test models' images at one level (Fig. 16)")
    p.add_argument("--model", nargs=2, action="append", required=True, metavar=("NAME", "FOLDER"))
    p.add_argument("--out-dir", required=True, help="writes OUT_DIR/NAME/*.png")
    p.add_argument("--kind", choices=("jpeg", "crop"), required=True)
    p.add_argument("--level", type=float, required=True, help="JPEG quality or crop area fraction")
    p.add_argument("--seed", type=int, required=True)
    p.set_defaults(func=cmd_perturb)

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
    _compute_args(p)
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
    _compute_args(p)
    p.set_defaults(func=cmd_testbed_sample)

    p = sub.add_parser("spectral-effects", help="Figures 11, 13, 14 analogues and the claims csv")
    p.add_argument("--spectra", required=True)
    figures = ("UPSAMPLING", "ACTIVATION", "NORMALIZATION")     # spectral_effects.FIGURES: Figs 11, 13, 14
    p.add_argument("--out-png", nargs=3, required=True, metavar=figures)
    p.add_argument("--out-pdf", nargs=3, required=True, metavar=figures)
    p.add_argument("--out-csv", required=True, help="csv of the measured claims")
    p.set_defaults(func=cmd_spectral_effects)

    p = sub.add_parser("train-extractor", help="train a fingerprint extractor variant (or build a control)")
    p.add_argument("--variant", required=True, help="its name, for logs and the file's metadata")
    p.add_argument("--synthetic", nargs="+", help="synthetic model checkpoints (the feed's classes)")
    p.add_argument("--manifest", nargs="+", help="the zoo manifests listing --synthetic's checkpoints")
    p.add_argument("--pool", nargs="+", default=[], help="pool folders whose train images are fed")
    p.add_argument("--images", nargs=2, action="append", metavar=("NAME", "FOLDER"),
                   help="a known model's image folder (fine-tuning; repeat): only its training side is read")
    p.add_argument("--train-fraction", type=float,
                   help="share of a test model's images on the training side (modelfp.splits; with --images "
                        "or --validation)")
    p.add_argument("--denoiser")
    p.add_argument("--init", help="an extractor file to start from (fine-tuning)")
    p.add_argument("--untrained", action="store_true", help="save at initialisation (the random-init control)")
    p.add_argument("--options", required=True, help="extractor options as JSON (the config's extractor keys)")
    p.add_argument("--validation", nargs=2, action="append", metavar=("NAME", "FOLDER"),
                   help="a validation model's image folder (repeat): after every epoch a fixed subset of its "
                        "evaluation side is scored into --history (val_identification_acc, val_verification_auc, "
                        "percent, as results/validation/choices.csv); never trained on")
    p.add_argument("--window", type=int, help="with --validation: n x n windows (evaluation.window)")
    p.add_argument("--gallery", type=int, help="with --validation: gallery images per model (evaluation.gallery)")
    p.add_argument("--pairs-same", type=int, help="with --validation: same-model pairs (evaluation.pairs_same)")
    p.add_argument("--pairs-diff", type=int, help="with --validation: different-model pairs (evaluation.pairs_diff)")
    p.add_argument("--seed", type=int, help="with --validation: evaluation.seed, of the subset, gallery and pairs "
                                            "(the training seed is in --options)")
    p.add_argument("--out", required=True)
    p.add_argument("--state", help="resumable training state, written after every epoch")
    p.add_argument("--history", help="per-epoch csv of losses and accuracy (and the validation scores)")
    _compute_args(p)
    p.set_defaults(func=cmd_train_extractor)

    p = sub.add_parser("train-baseline", help="train a baseline of Tables VIII-X on known models' training images")
    p.add_argument("--name", required=True, help="the baseline (modelfp.baselines.BASELINES)")
    p.add_argument("--images", nargs=2, action="append", required=True, metavar=("NAME", "FOLDER"),
                   help="a known model's image folder (repeat): only its training side is read")
    p.add_argument("--train-fraction", type=float, required=True,
                   help="share of each folder's images on the training side (modelfp.splits)")
    p.add_argument("--image-size", type=int, required=True, help="training window side (baselines.image_size)")
    p.add_argument("--steps", type=int, required=True, help="training steps (with --eval-every: the maximum)")
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--hp", required=True, help="the method's hyper-parameters as JSON (its DEFAULTS overridden)")
    p.add_argument("--holdout", type=float, required=True,
                   help="share of each model's training images held out of the fit for early stopping "
                        "(baselines.holdout; used with --eval-every)")
    p.add_argument("--eval-every", type=int, help="steps between held-out evaluations (the recipe's eval_every; "
                                                  "absent: no early stopping, every step runs)")
    p.add_argument("--patience", type=int, help="held-out evaluations without improvement before stopping "
                                                "(the recipe's patience; with --eval-every)")
    p.add_argument("--denoiser", help="the workflow's DnCNN (methods on noise residuals: marra)")
    p.add_argument("--out", required=True)
    p.add_argument("--history", help="learning curve csv: step, loss, heldout_acc, phase (modelfp.baselines.common)")
    p.add_argument("--state", help="resumable training state, written STATE_SAVES times a phase "
                                   "(modelfp.baselines.common); deleted once --out is written")
    _compute_args(p)
    p.set_defaults(func=cmd_train_baseline)

    p = sub.add_parser("embed", help="fingerprints of test models' images with sliding windows")
    p.add_argument("--extractor", required=True, help="a fingerprint-extractor or trained-baseline file")
    p.add_argument("--model", nargs=2, action="append", required=True, metavar=("NAME", "FOLDER"))
    p.add_argument("--train-fraction", type=float, required=True,
                   help="share of each model's images kept for training (modelfp.splits); the rest are embedded")
    p.add_argument("--window", type=int, required=True, help="n for n x n windows (1: centre crop)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out-dir", required=True, help="writes OUT_DIR/NAME.npz")
    _list_args(p)
    _compute_args(p)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("evaluate", help="verification, identification, SS/DBI per group (csv), t-SNE")
    p.add_argument("--embeddings", required=True, help="folder of NAME.npz")
    p.add_argument("--model", nargs=2, action="append", required=True, metavar=("NAME", "GROUP"))
    p.add_argument("--pairs-same", type=int, required=True)
    p.add_argument("--pairs-diff", type=int, required=True)
    p.add_argument("--gallery", type=int, required=True)
    p.add_argument("--gallery-draws", type=int, required=True,
                   help="seeded gallery draws from a fixed pool per model, the queries fixed (evaluation.gallery_draws)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out-png", nargs=2, metavar=("CLASSICAL", "EMERGING"),
                   help="also plot each group's t-SNE (png)")
    p.add_argument("--title", default="t-SNE of fingerprints")
    p.add_argument("--verifier", help="a trained-baseline file whose method has its own pair verifier "
                                      "(abady): its scores on the same pairs go to verifier_verification_*")
    _list_args(p)
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-queries", help="csv, a row per query: group, model, key, majority prediction, share of "
                                         "draws right, each draw's prediction (modelfp.paired reads it)")
    p.add_argument("--out-pairs", help="csv, a row per verification pair: group, model_i, key_i, model_j, key_j, "
                                       "same, score (modelfp.paired reads it)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("calibrate", help="store an evaluation's best verification and open-set thresholds "
                                         "in an extractor")
    p.add_argument("--extractor", required=True)
    p.add_argument("--evaluation", required=True)
    p.add_argument("--embeddings", help="the embeddings folder of the same (validation) evaluation: fit the "
                                        "per-model open-set constants there (modelfp.openset)")
    p.add_argument("--gallery", type=int, default=10, help="gallery images per known model in that fit "
                                                           "(evaluation.gallery)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("attribution-table", help="Tables IV-X from evaluation csvs, beside the paper's")
    from .variants import TABLES
    p.add_argument("--table", required=True, choices=TABLES)
    p.add_argument("--row", nargs=3, action="append", required=True, metavar=("LABEL", "PAPER_LABEL", "CSV"))
    p.add_argument("--diagnostic", nargs=2, action="append", default=[], metavar=("LABEL", "CSV"),
                   help="a diagnostic row, never a method, after the rows (Table VIII's ceiling; repeat)")
    p.add_argument("--note", default="")
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)
    p.set_defaults(func=cmd_attribution_table)

    p = sub.add_parser("trace", help="Figures 9/15: derived image sets attributed to their reference model")
    p.add_argument("--embeddings", required=True)
    p.add_argument("--reference", nargs="+", required=True)
    p.add_argument("--derived", nargs=2, action="append", required=True, metavar=("NAME", "REFERENCE"))
    p.add_argument("--derived-label", default="derived")
    p.add_argument("--title", default="")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-png", required=True)
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("fig-8", help="Figure 8: synthesis time and accuracy versus block count")
    p.add_argument("--zoo-summary", nargs="+", required=True)
    p.add_argument("--evaluation", nargs=2, action="append", required=True, metavar=("BLOCKS", "CSV"))
    _figure_outputs(p)
    p.set_defaults(func=cmd_figure_8)

    p = sub.add_parser("fig-16", help="Figure 16: identification under JPEG and crop, plain and immunized")
    p.add_argument("--point", nargs=4, action="append", required=True,
                   metavar=("EXTRACTOR", "KIND", "LEVEL", "CSV"))
    _figure_outputs(p)
    p.set_defaults(func=cmd_figure_16)

    from . import blockswap, ceiling, kernel_spectra, paired, validation
    validation.add_command(sub)     # validation-table: the validation set's choices.csv (issue 11)
    paired.add_command(sub)         # paired-tests: Tables VIII/IX, McNemar and AUC bootstrap (issue 22)
    ceiling.add_command(sub)        # ceiling: Table VIII's supervised linear diagnostic (issue 22)
    blockswap.add_command(sub)      # fig-3: swapped last blocks carry the fingerprint (issue 16)
    kernel_spectra.add_command(sub)     # fig-12: kernel spectra beside the output's (issue 16)

    from . import tool
    tool.add_commands(sub)     # the people's commands: gallery add, identify, verify
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        code = args.func(args)      # the people's commands return 1 when some inputs failed
    except (ValueError, FileNotFoundError) as err:
        # expected failures (bad input, missing files): one clear line, no traceback
        log.error("%s", err)
        return 2
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
