"""Command line: `python -m modelfp <verb> ...` (also installed as `modelfp`).

Every workflow rule calls one verb, so each step runs and is tested without Snakemake. Verbs read
and write files; the computation lives in the modules they call.
"""

from __future__ import annotations

import argparse
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


def _set_threads(n: int | None):
    import torch
    if n:
        torch.set_num_threads(n)


# ---------------------------------------------------------------------------------------------
# pool

def cmd_pool(args):
    from . import pools
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
    manifest = pools.write_pool(args.out, train, val, meta)
    log.info("pool %s: %d train + %d val images of %dx%d -> %s", args.name, len(train), len(val),
             args.image_size, args.image_size, manifest)


# ---------------------------------------------------------------------------------------------
# synthesize

def _read_pools(dirs, split):
    import torch
    from .pools import read_pool
    return torch.cat([read_pool(d, split) for d in dirs]) if len(dirs) > 1 else read_pool(dirs[0], split)


def cmd_synthesize(args):
    from . import synthetic
    from .archspace import parse
    _set_threads(args.threads)
    arch = parse(args.arch)
    device = _device(args.device)
    cfg = synthetic.TrainConfig(image_size=args.image_size, batch_size=args.batch_size,
                                max_steps=args.max_steps, lr=args.lr, eta=args.eta,
                                check_every=args.check_every, val_images=args.val_images)
    train, val = _read_pools(args.pool, "train"), _read_pools(args.pool, "val")
    path = synthetic.resolve_path(args.path, device, args.image_size)
    log.info("synthesize %s seeds %s on %s (%s path), %d train images", arch.id, args.seeds, device,
             path, len(train))

    def progress(step, residual):
        log.info("  step %5d  residual %s", step, " ".join(f"{r:.4f}" for r in residual.tolist()))

    start = time.perf_counter()
    models, results = synthetic.train_architecture(arch, args.seeds, train, val, cfg, path=path,
                                                   width=args.width, device=device,
                                                   progress=progress)
    out = Path(args.out_dir)
    for model, result in zip(models, results):
        synthetic.save(model, result, cfg, out / f"seed{result.seed}.pt", seed=result.seed,
                       pools=[str(p) for p in args.pool], device=str(device), training_path=path,
                       job_seconds=time.perf_counter() - start)
        log.info("  seed %d: %d steps, residual %.5f (floor %s), %.1f s", result.seed, result.steps,
                 result.final_residual, "reached" if result.reached_floor else "not reached",
                 result.train_seconds)


def cmd_zoo_summary(args):
    """One csv row per synthetic checkpoint: the zoo's residuals, steps and training times."""
    from . import checkpoints, synthetic, tables
    rows = []
    for path in args.checkpoints:
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
    zoo = SyntheticZoo.from_files(args.checkpoints, device=device)
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
    tmp = Path(path).with_suffix(".tmp.npz")
    np.savez(tmp, log=spectra["log"][ns.index(n_main)].cpu().numpy(),
             log_sweep=spectra["log"].cpu().numpy(), ns=np.array(ns),
             power=spectra["power"].cpu().numpy(), spec2d=spectra["spec2d"].cpu().numpy(),
             n_images=n_main, **{k: np.array(v) for k, v in arrays.items()})
    os.replace(tmp, path)


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
    syn, real = np.load(args.synthetic), np.load(args.real)
    if not np.array_equal(syn["ns"], real["ns"]) or syn["log"].shape[1] != real["log"].shape[1]:
        raise ValueError(f"{args.synthetic} and {args.real} were made with different N or sizes")
    archs, seeds = [str(a) for a in syn["archs"]], [int(s) for s in syn["seeds"]]
    note = (f"Ours: {len(real['names'])} test models ({', '.join(map(str, real['names']))}) vs "
            f"{len(archs)} synthetic models, N = {int(syn['n_images'])} images per model, "
            f"{int(syn['image_size'])}x{int(syn['image_size'])}. Paper: 32 real models (Table III) "
            f"vs 5,760 synthetic models, N = 100, 128x128.")
    # sqrtm's round-off reports (dropped imaginary parts ~1e-10) go to debug; errors still raise
    rows = tables.table_ii(real["log"], syn["log"], archs, seeds, log=log.debug)
    tables.write_table(rows, Path(args.out_dir) / "table_ii",
                       "Table II: FFD of the synthetic models against the test models", note)
    rows_xi = tables.table_xi(real["log_sweep"], syn["log_sweep"], [int(n) for n in syn["ns"]],
                              archs, seeds, log=log.debug)
    tables.write_table(rows_xi, Path(args.out_dir) / "table_xi",
                       "Table XI: correlation of the Table II FFDs at each N with those at the largest N",
                       note + f" Our N sweep: {[int(n) for n in syn['ns']]}; the paper's: 50-500.")
    for row in rows:
        log.info("Table II  %-9s FFD %8.4f  (paper %.2f, %d synthetic models)", row["models"],
                 row["ffd"], row["paper_ffd"], row["n_synthetic"])


def cmd_closest_spectra(args):
    import numpy as np
    from .figures import plot_closest_spectra
    syn, real = np.load(args.synthetic), np.load(args.real)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    closest = plot_closest_spectra([str(n) for n in real["names"]], real["spec2d"], real["log"],
                                   [str(n) for n in syn["names"]], syn["spec2d"], syn["log"],
                                   str(Path(args.out).with_suffix("")))
    for name, k in zip(real["names"], closest):
        log.info("  %-24s closest synthetic model: %s", name, syn["names"][k])


def cmd_perturb(args):
    from .perturb import perturb_folder
    n = perturb_folder(args.images, args.out_dir, args.kind, args.level, args.seed)
    log.info("%s at %s: %d images of %s -> %s", args.kind, args.level, n, args.images, args.out_dir)


# ---------------------------------------------------------------------------------------------
# test bed

def cmd_testbed_train(args):
    from . import testbed
    _set_threads(args.threads)
    device = _device(args.device)
    hp = json.loads(args.hp)
    module = testbed.family(args.family)
    pool = _read_pools(args.pool, "train") if args.pool else None
    log.info("train test model %s (%s) at %dx%d, %d steps", args.name, args.family,
             args.image_size, args.image_size, args.steps)
    model, info = module.train(pool, args.image_size, args.steps, args.batch_size, args.seed,
                               device, progress=lambda step, *losses: log.info(
                                   "  step %5d  %s", step, " ".join(f"{v:.4f}" for v in losses)),
                               **hp)
    testbed.save(model, args.family, args.image_size, hp,
                 {**info, "name": args.name, "seed": args.seed, "steps": args.steps}, args.out)


def cmd_testbed_sample(args):
    import torch
    import torchvision.utils
    from PIL import Image
    from . import testbed
    _set_threads(args.threads)
    device = _device(args.device)
    model, payload = testbed.load(args.generator, device)
    images = testbed.family(payload["family"]).sample(model, args.n, args.seed, device)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    for i, img in enumerate(pixels):
        Image.fromarray(img).save(out / f"{i:05d}.png")
    fam = testbed.FAMILIES[payload["family"]]
    meta = {"name": args.name, "family": fam.name, "kind": fam.kind, "group": fam.group,
            "resolution": payload["image_size"], "sample_seed": args.seed, "n_images": args.n,
            "train": {k: v for k, v in payload["info"].items() if isinstance(v, (int, float, str, bool))},
            "hp": payload["hp"]}
    Path(args.sheet).parent.mkdir(parents=True, exist_ok=True)
    torchvision.utils.save_image(images[:64].cpu() * 0.5 + 0.5, args.sheet, nrow=8)
    tmp = Path(args.meta).with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, args.meta)
    log.info("%d images of %s (%s, %s) -> %s", args.n, args.name, fam.name, fam.group, out)


def cmd_spectral_effects(args):
    import numpy as np
    from . import spectral_effects as se
    from . import tables
    data = np.load(args.spectra)
    archs = [str(a) for a in data["archs"]]
    Path(args.figures_dir).mkdir(parents=True, exist_ok=True)
    for option, stem in se.FIGURES.items():
        se.plot_option(data["log"], archs, option, str(Path(args.figures_dir) / stem))
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
    tables.write_csv(rows + [consistency], args.out)


# ---------------------------------------------------------------------------------------------

def _compute_args(p):
    """Where a computing verb runs: --device (auto = CUDA when present) and torch threads."""
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)


def _spectra_args(p):
    p.add_argument("--n-images", type=int, default=100, help="N images per model (Table II)")
    p.add_argument("--n-images-sweep", type=int, nargs="*", default=[], help="Ns of Table XI")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--residual", choices=("predicted", "difference"), default="predicted")
    _compute_args(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelfp", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pool", help="build an image pool (folder of photos or embedded photos)")
    p.add_argument("--name", required=True)
    p.add_argument("--source", choices=("folder", "embedded"), required=True)
    p.add_argument("--root", help="folder of images (source=folder)")
    p.add_argument("--photos", help="embedded photo set (source=embedded)")
    p.add_argument("--count", type=int, default=2000, help="patches to crop (source=embedded)")
    p.add_argument("--image-size", type=int, required=True)
    p.add_argument("--val-fraction", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--on-bad-image", choices=("error", "skip"), default="error")
    p.add_argument("--out", required=True, help="output folder (manifest.json and shards)")
    p.set_defaults(func=cmd_pool)

    p = sub.add_parser("synthesize", help="train all seeds of one synthetic architecture")
    p.add_argument("--arch", required=True, help="architecture id, e.g. K2-L1-Spost-Ubilinear-Arelu-Nbn")
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--pool", nargs="+", required=True, help="pool folders (train/val splits are used)")
    p.add_argument("--out-dir", required=True, help="writes OUT_DIR/seed{seed}.pt")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-steps", type=int, default=2000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eta", type=float, default=0.005, help="residual floor (see README)")
    p.add_argument("--check-every", type=int, default=25)
    p.add_argument("--val-images", type=int, default=32)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--path", choices=("auto", "grouped", "loop"), default="auto")
    _compute_args(p)
    p.set_defaults(func=cmd_synthesize)

    p = sub.add_parser("zoo-summary", help="csv of the zoo's checkpoints (residuals, steps, time)")
    p.add_argument("--out", required=True)
    p.add_argument("checkpoints", nargs="+")
    p.set_defaults(func=cmd_zoo_summary)

    p = sub.add_parser("train-denoiser", help="train DnCNN on pools (or adopt an external one)")
    p.add_argument("--pool", nargs="+", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--external", help="an external DnCNN checkpoint to use instead of training")
    p.add_argument("--sigma", type=float, default=1.0, help="noise std on the 0-255 scale")
    p.add_argument("--patch", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--depth", type=int, default=17)
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    _compute_args(p)
    p.set_defaults(func=cmd_train_denoiser)

    p = sub.add_parser("synthetic-spectra", help="reduced spectra of every synthetic model (FFD Step I)")
    p.add_argument("--pool", nargs="+", required=True, help="pools whose val images are fed")
    p.add_argument("--denoiser", required=True)
    p.add_argument("--out", required=True, help=".npz with names, archs, log and power spectra")
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
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_ffd_tables)

    p = sub.add_parser("closest-spectra", help="Figure 10: test models beside their closest synthetic model")
    p.add_argument("--synthetic", required=True)
    p.add_argument("--real", required=True)
    p.add_argument("--out", required=True, help="png path (a pdf is written beside it)")
    p.set_defaults(func=cmd_closest_spectra)

    p = sub.add_parser("perturb", help="JPEG or crop-resize one image folder at one level (Fig. 16)")
    p.add_argument("--images", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--kind", choices=("jpeg", "crop"), required=True)
    p.add_argument("--level", type=float, required=True, help="JPEG quality or crop area fraction")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_perturb)

    p = sub.add_parser("testbed-train", help="train one generative model of the test bed")
    p.add_argument("--name", required=True)
    p.add_argument("--family", required=True)
    p.add_argument("--pool", nargs="*", default=[])
    p.add_argument("--image-size", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hp", default="{}", help="family hyper-parameters as JSON")
    p.add_argument("--out", required=True)
    _compute_args(p)
    p.set_defaults(func=cmd_testbed_train)

    p = sub.add_parser("testbed-sample", help="sample a test model's images, meta.json, contact sheet")
    p.add_argument("--name", required=True)
    p.add_argument("--generator", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--sheet", required=True)
    _compute_args(p)
    p.set_defaults(func=cmd_testbed_sample)

    p = sub.add_parser("spectral-effects", help="Figures 11, 13, 14 analogues and the claims csv")
    p.add_argument("--spectra", required=True)
    p.add_argument("--figures-dir", required=True)
    p.add_argument("--out", required=True, help="csv of the measured claims")
    p.set_defaults(func=cmd_spectral_effects)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError) as err:
        # expected failures (bad input, missing files): one clear line, no traceback
        log.error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
