"""Stage extractor (Section III-D): `train-extractor` trains a fingerprint-extractor variant (or
builds a control) on the synthetic zoo, or fine-tunes one on known models' training side
(modelfp.extractor), scoring the validation set after every epoch (modelfp.validation);
`calibrate` stores the validation set's thresholds and open-set rule in it (modelfp.openset), and
with `resaved-gallery`'s re-saved copies of the validation images the thresholds of each re-save
(modelfp.resaved)."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from .. import cliutil

log = logging.getLogger(__name__)


def _split_options(opts: dict):
    """(ExtractorConfig, TrainConfig) from one dict of the config's extractor keys."""
    from dataclasses import fields

    from .. import extractor as ex
    model_keys = {f.name for f in fields(ex.ExtractorConfig)}
    train_keys = {f.name for f in fields(ex.TrainConfig)}
    unknown = set(opts) - model_keys - train_keys
    if unknown:
        raise ValueError(f"unknown extractor options {sorted(unknown)}; known: {sorted(model_keys | train_keys)}")
    return (ex.ExtractorConfig(**{k: v for k, v in opts.items() if k in model_keys}),
            ex.TrainConfig(**{k: v for k, v in opts.items() if k in train_keys}))


def _epoch_evaluator(args, source, train_seed: int):
    """--validation's per-epoch evaluator (`validation.epoch_evaluator`), or None without it; the
    evaluation options it needs (the config's evaluation section) are checked first."""
    from .. import validation
    if not args.validation:
        return None
    missing = [f"--{k.replace('_', '-')}" for k in ("train_fraction", "window", "gallery", "pairs_same",
                                                      "pairs_diff", "seed") if getattr(args, k) is None]
    if missing:
        raise ValueError(f"--validation needs {' '.join(missing)} (the config's evaluation section)")
    return validation.epoch_evaluator(args.validation, source, train_seed=train_seed,
                                      train_fraction=args.train_fraction, window=args.window,
                                      gallery=args.gallery, pairs_same=args.pairs_same,
                                      pairs_diff=args.pairs_diff, seed=args.seed,
                                      trained_folders=[f for _, f in args.images or []])


def cmd_train_extractor(args):
    import torch
    from tqdm import tqdm

    from .. import denoise, tables
    from .. import extractor as ex
    cliutil.set_threads(args.threads)
    device = cliutil.device(args.device)
    model_cfg, train_cfg = _split_options(json.loads(args.options))
    size = model_cfg.image_size
    if args.synthetic:
        from ..feed import SyntheticZoo
        from ..pools import read_pools
        from ..synthetic import fit_to_size
        zoo = SyntheticZoo.from_files(cliutil.zoo_checkpoints(args.synthetic, args.manifest), device=device)
        source = ex.ZooSource(zoo, fit_to_size(read_pools(args.pool, "train"), size), device)
    else:
        from ..splits import training_side
        if args.train_fraction is None:
            raise ValueError("--images needs --train-fraction (evaluation.train_fraction)")
        names, images = training_side(args.images, args.train_fraction, size)
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
    evaluator = _epoch_evaluator(args, source, train_cfg.seed)      # read before training: errors come first
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


def cmd_resaved_gallery(args):
    """The validation generators' re-saved copies, where calibrate fits the thresholds of each
    re-save (`modelfp.resaved`): a seeded sample of `--images` evaluation-side images per model,
    added to a gallery by the tool's own code (`Attributor.add`, which keeps each image's
    fingerprint and those of its `perturb.MATCHED` re-saves, the JPEG ones with their luminance),
    in the windows and test-time views the tool uses. Resumes after a kill: the gallery so far is
    saved after every model to --state, and adding skips the images a model already holds."""
    import numpy as np
    from tqdm import tqdm

    from ..attributor import Attributor, save_gallery
    from ..splits import EVAL, folder_side
    cliutil.set_threads(args.threads)
    att = Attributor(args.extractor, cliutil.device(args.device), windows=args.window, views=args.views)
    gallery = att.new_gallery()
    if args.state and Path(args.state).exists():
        try:
            gallery = att.load_gallery(args.state)
            log.info("%s: resuming (%d models held)", args.state, len(gallery.models))
        except ValueError as err:           # another extractor's: start again
            log.info("%s: not resumed (%s)", args.state, err)
    rng = np.random.default_rng(args.seed)
    chosen = {}
    for name, folder in args.model:
        paths, _ = folder_side(folder, args.train_fraction, EVAL)
        if len(paths) < 2:
            raise ValueError(f"{folder}: {len(paths)} evaluation-side image(s); the re-saved copies' thresholds "
                             f"need at least 2 per model (raise the model's n_images)")
        chosen[name] = [paths[i] for i in np.sort(rng.choice(len(paths), min(args.images, len(paths)), replace=False))]
    with tqdm(total=sum(map(len, chosen.values())), desc="re-saved copies", unit="image", mininterval=30) as bar:
        for name, paths in chosen.items():
            added, skipped, failed, _ = att.add(gallery, name, paths, progress=bar.update)
            if failed:
                raise ValueError(f"{failed[0].path}: {failed[0].error}")
            if args.state and added:
                save_gallery(gallery, args.state)
            log.info("  %-24s %d images (%d held from an interrupted run), each re-saved as %s", name,
                     len(paths), len(skipped), ", ".join(gallery.copies(name)))
    save_gallery(gallery, args.out)
    if args.state and Path(args.state).exists():
        os.remove(args.state)


def cmd_attach_specialists(args):
    """The trained extractor with the specialist networks of other trained files (`extractor.
    attach_specialists`): the file `resaved-gallery` embeds with and `calibrate` calibrates."""
    from .. import extractor as ex
    specialists = {}
    for item in args.specialist:
        kind, sep, path = item.partition("=")
        if not sep or not path:
            raise ValueError(f"--specialist {item!r}: give KIND=PATH (e.g. jpeg=results/extractors/specialist_jpeg/trained.pt)")
        specialists[kind] = path
    ex.attach_specialists(args.extractor, specialists, args.out)
    log.info("%s + specialists %s -> %s", args.extractor, ", ".join(f"{k} ({v})" for k, v in specialists.items()), args.out)


def cmd_calibrate(args):
    """The deployable extractor: the trained one plus the best verification threshold (verify) and
    open-set threshold (identify's "unknown") of an evaluation csv's "all" row, and with
    --embeddings the per-model open-set constants fitted on those embeddings (`modelfp.openset.fit`);
    with --neighbours n >= 1 the open-set rule scores by a model's n nearest gallery images, and its
    global threshold is found on those embeddings by the evaluation's protocol with that score
    (`modelfp.openset.fit_deployable`) instead of read from the csv."""
    from .. import extractor as ex
    # the rule passes the validation generators' evaluation and embeddings: never the test bed's
    row = cliutil.all_row(args.evaluation, ("verification_threshold", "openset_threshold"))
    rule, views = None, 1
    if args.neighbours and not (args.embeddings and args.gallery_draws):
        raise ValueError("--neighbours needs --embeddings and --gallery-draws (the evaluation section's): its "
                         "global open-set threshold is found on those embeddings")
    if args.embeddings:
        from .. import openset
        from ..evaluate import embeddings_views
        views = embeddings_views(args.embeddings)   # the tool embeds as the thresholds were calibrated
        emb, labels = openset.read_embeddings_folder(args.embeddings)
        if args.neighbours:
            fitted = openset.fit_deployable(emb, labels, args.gallery, args.seed, args.gallery_draws, args.neighbours)
            row = {**row, "openset_threshold": fitted.rule.threshold}
        else:
            fitted = openset.fit(emb, labels, row["openset_threshold"], gallery_size=args.gallery, seed=args.seed)
        rule = fitted.record(str(args.embeddings))
        log.info("%s: open-set rule %s; balanced open-set accuracy %.2f %% (global threshold alone %.2f %%) "
                 "on %d models' embeddings, %d draws", args.embeddings, fitted.rule.describe(),
                 100 * fitted.fitted["balanced"], 100 * fitted.global_["balanced"], len(set(labels.tolist())),
                 fitted.repeats)
    elif args.resaved:
        raise ValueError("--resaved needs --embeddings: the re-saved copies' rules are fitted beside the clean one")
    resaved_thresholds = None
    if args.resaved:
        from .. import resaved
        missing = [f"--{k.replace('_', '-')}" for k in ("gallery_draws", "pairs_same", "pairs_diff")
                   if getattr(args, k) is None]
        if missing:
            raise ValueError(f"--resaved needs {', '.join(missing)} (the evaluation section's values)")
        resaved_thresholds = resaved.fit(resaved.copies(args.resaved), fitted.rule, row["verification_threshold"],
                                         args.gallery, args.seed, args.gallery_draws, args.pairs_same,
                                         args.pairs_diff, str(args.resaved), args.neighbours)
        for line in resaved.describe(resaved_thresholds):
            log.info("  re-saved copies, %s", line)
    ex.set_threshold(args.extractor, row["verification_threshold"], out=args.out,
                     openset_threshold=row["openset_threshold"], openset_rule=rule, views=views,
                     resaved=resaved_thresholds, threshold_from=str(args.evaluation))
    log.info("%s: verification threshold %.4f, open-set threshold %.4f (best on %s), %d test-time view(s) -> %s",
             args.extractor, row["verification_threshold"], row["openset_threshold"],
             f"{args.embeddings}, scored by {args.neighbours} neighbours" if args.neighbours else args.evaluation,
             views, args.out)


def register(sub) -> None:
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
    cliutil.compute_args(p)
    p.set_defaults(func=cmd_train_extractor)

    p = sub.add_parser("calibrate", help="store an evaluation's best verification and open-set thresholds "
                                         "in an extractor")
    p.add_argument("--extractor", required=True)
    p.add_argument("--evaluation", required=True)
    p.add_argument("--embeddings", help="the embeddings folder of the same (validation) evaluation: fit the "
                                        "per-model open-set constants there (modelfp.openset)")
    p.add_argument("--gallery", type=int, required=True, help="gallery images per known model in that fit "
                                                              "(evaluation.gallery)")
    p.add_argument("--seed", type=int, required=True, help="the gallery draw's seed (evaluation.seed)")
    p.add_argument("--resaved", help="a resaved-gallery file of the same validation generators: fit the "
                                     "thresholds of each re-save there (modelfp.resaved)")
    p.add_argument("--neighbours", type=int, default=0,
                   help="score a query against a model by the mean of its cosines with the model's n nearest "
                        "gallery images (evaluation.tool_neighbours; 0: with the model's fingerprint)")
    p.add_argument("--gallery-draws", type=int,
                   help="with --resaved or --neighbours: gallery draws of the global thresholds "
                        "(evaluation.gallery_draws)")
    p.add_argument("--pairs-same", type=int,
                   help="with --resaved: same-model pairs of each re-save's verification threshold (evaluation.pairs_same)")
    p.add_argument("--pairs-diff", type=int,
                   help="with --resaved: different-model pairs of it (evaluation.pairs_diff)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("attach-specialists", help="a trained extractor carrying the specialist networks of other "
                                                  "trained files (the JPEG and grayscale re-saves' own)")
    p.add_argument("--extractor", required=True, help="the trained extractor (results/extractors/all/trained.pt)")
    p.add_argument("--specialist", nargs="+", required=True, metavar="KIND=PATH",
                   help="a specialist's kind (variants.SPECIALISTS: jpeg, gray) and trained file")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_attach_specialists)

    p = sub.add_parser("resaved-gallery", help="the validation generators' re-saved copies, in a gallery, where "
                                               "calibrate fits each re-save's thresholds")
    p.add_argument("--extractor", required=True, help="the trained extractor (calibrate's --extractor)")
    p.add_argument("--model", nargs=2, action="append", metavar=("NAME", "FOLDER"), required=True,
                   help="a validation model's image folder (repeat): only its evaluation side is read")
    p.add_argument("--train-fraction", type=float, required=True, help="evaluation.train_fraction (modelfp.splits)")
    p.add_argument("--images", type=int, required=True, help="images per model (evaluation.resaved_images)")
    p.add_argument("--window", type=int, required=True, help="n x n windows per image (the tool view's)")
    p.add_argument("--views", type=int, required=True, help="test-time views (evaluation.tool_views)")
    p.add_argument("--seed", type=int, required=True, help="the sample's seed (evaluation.seed)")
    p.add_argument("--out", required=True)
    p.add_argument("--state", help="the gallery so far, written after every model (resume after a kill)")
    cliutil.compute_args(p)
    p.set_defaults(func=cmd_resaved_gallery)
