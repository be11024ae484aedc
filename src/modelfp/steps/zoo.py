"""Stage zoo: `synthesize` trains a slice of the synthetic model zoo (modelfp.synthetic),
`zoo-manifest` lists a slice's checkpoints with their digests (modelfp.manifest), `zoo-summary`
tabulates the zoo's residuals, steps and training times."""

from __future__ import annotations

import logging
import time

from .. import cliutil

log = logging.getLogger(__name__)


def cmd_synthesize(args):
    """Train every seed of each architecture in --arch, one architecture after another in this one
    process (a slice of the zoo: Python, torch and the pools load once); --out lists the files,
    architecture-major, seed-minor, each written atomically as soon as its architecture is done."""
    from .. import synthetic
    from ..archspace import parse
    from ..pools import read_pools
    cliutil.set_threads(args.threads)
    archs = [parse(a) for a in args.arch]
    if len(args.out) != len(archs) * len(args.seeds):
        raise ValueError(f"--out names {len(args.out)} files; {len(archs)} architectures x "
                         f"{len(args.seeds)} seeds need {len(archs) * len(args.seeds)}")
    device = cliutil.device(args.device)
    cfg = synthetic.TrainConfig(image_size=args.image_size, batch_size=args.batch_size,
                                max_steps=args.max_steps, lr=args.lr, eta=args.eta,
                                check_every=args.check_every, val_images=args.val_images)
    # resized once for the whole slice (train_architecture leaves pools of the right size alone)
    train, val = (synthetic.fit_to_size(read_pools(args.pool, split), args.image_size)
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


def cmd_zoo_manifest(args):
    from .. import manifest
    manifest.write(args.checkpoints, args.out)
    log.info("%s: %d checkpoints", args.out, len(args.checkpoints))


def cmd_zoo_summary(args):
    """One csv row per synthetic checkpoint: the zoo's residuals, steps and training times."""
    from .. import checkpoints, synthetic, tables
    rows = []
    for path in cliutil.zoo_checkpoints(args.checkpoints, args.manifest):
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


def register(sub) -> None:
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
    cliutil.compute_args(p)
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
