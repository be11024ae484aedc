"""Stage baselines (Tables VIII-X): `train-baseline` trains one method of modelfp.baselines on the
known (classical) models' training side and stores it, centred, as a trained-baseline file that
`embed` reads like an extractor."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from .. import cliutil

log = logging.getLogger(__name__)


def cmd_train_baseline(args):
    """Train one baseline of Tables VIII-X on the known (classical) models' training images, then
    store it with its centre (the mean feature of those images) as a trained-baseline file."""
    import torch

    from .. import baselines, denoise
    from ..baselines.common import Stopping
    from ..splits import training_side
    cliutil.set_threads(args.threads)
    device = cliutil.device(args.device)
    module = baselines.baseline(args.name)
    hp = baselines.resolve(args.name, json.loads(args.hp))
    names, images = training_side(args.images, args.train_fraction, args.image_size)
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


def register(sub) -> None:
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
    cliutil.compute_args(p)
    p.set_defaults(func=cmd_train_baseline)
