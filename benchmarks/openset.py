"""When does `modelfp identify` say "unknown"? The old global threshold beside the per-model rule
(modelfp.openset), on the leave-some-models-out protocol of issue 25.

Needs a finished run (the demo's `make demo`, or the smoke preset's outputs): its calibrated
extractor and its validation generators' folders, results/validation/<name>/images, of which only
the evaluation side is used (modelfp.splits, as the workflow's embed rule reads them). Each image is
embedded as the people's tool embeds it (the same windows), then, over --repeats seeded draws, a
share of the models (--known-fraction, 60 %) is known, each with a gallery of --gallery images
(10); the known models' other images are known queries, every image of the left-out models an
absent query. Printed for both rules, side by side: known images named right (their own model, not
unknown), absent images called unknown, overall (all queries answered right), the open-set AUROC
(known vs absent queries, by how far each clears its acceptance) and the number of queries.

    python benchmarks/openset.py --results results --extractor results/extractors/all/model.pt
    python benchmarks/openset.py --results results --extractor results/extractors/all/model.pt \\
        --models results/testbed/*          # the test bed: ONCE, for the final measurement

`--views 1 8` chooses the people's tool's test-time views (evaluation.tool_views; modelfp.extractor
.VIEWS), on the validation generators only: the images are embedded with each count, and each is
deployed as the workflow deploys it (its global threshold from the leave-one-model-out protocol,
its per-model constants fitted on the same embeddings: `modelfp.openset.deployed`, in-sample as
calibrate's own); printed per count: identification (`modelfp.evaluate.identification`, its
gallery draws), verification AUC, the open-set answers, and the balanced open-set accuracy's
difference to the first count paired by draw, with its standard error over draws.

    python benchmarks/openset.py --results results --views 1 8

`--members B.pt C.pt` compares ensembles the same way: the first 1, 2, ... of the extractors, each
image's unit fingerprints side by side (a score is the mean of the networks' cosines), at each
`--views` count, the cost counting every network's passes.

    python benchmarks/openset.py --results results --extractor results/extractors/all/trained.pt \\
        --members results/study/ensemble/seed1/trained.pt --views 8 4

`--vs OTHER.pt` scores another calibrated file's per-model rule on the same images and draws (its
own embeddings unless it holds the same network in the same views) and prints the differences to
--extractor's, paired by draw, with their standard errors: a recalibration or a retraining judged
on one set of draws.

    python benchmarks/openset.py --results results --extractor old/model.pt --vs results/extractors/all/model.pt

`--neighbours 0 2 3` chooses how identify scores an image against a gallery model (evaluation
.tool_neighbours; `modelfp.evaluate.gallery_scores`: 0 the cosine with the model's fingerprint, n
the mean of its n highest cosines with the model's gallery images), on the validation generators
only: on the calibrate step's embeddings (--embeddings, the tool's view) and, with --copies, on
each re-save's copies in a resaved-gallery file, each count's whole rule is fitted as calibrate
fits it (`openset.fit_deployable`, --seed's draws) and scored on twice as many fresh draws (seed
+ 1: other galleries and other known / absent models, the same images); printed per set and
count: known named right, absent called unknown, balanced, nearest right (the known queries'
nearest model is theirs), and the balanced accuracy's difference to the first count paired by
fresh draw, with its standard error.

    python benchmarks/openset.py --neighbours 0 2 3 5 --embeddings results/embeddings/all/val-w3-v8 \
        --copies results/extractors/all/resaved/validation.gallery

On the validation generators both rules are measured in-sample: the global threshold and the
per-model constants were both chosen there (the workflow's calibrate step), so these numbers show
the choice, not how it generalises. `--models` points it at other model folders (<name>/images or
a folder of images each); use it on the test bed once, after every choice is made, for the
numbers the README reports, and never to choose anything. An extractor calibrated before per-model
rules has no constants: on the validation set they are then fitted here (in-sample, said so); on
other folders the run stops.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from modelfp import openset, splits

GALLERY = openset.GALLERY_SIZE
PER_MODEL = 100          # evaluation-side images per model at most (the first, in name order)


def model_folders(results=None, models=None) -> dict[str, Path]:
    """{name: image folder}: the given model folders (their images/ when present), else every
    results/validation/<name>/images."""
    if models:
        folders = [Path(m) for m in models if Path(m).is_dir()]
    else:
        root = Path(results) / "validation"
        folders = sorted(p for p in root.iterdir() if (p / "images").is_dir()) if root.is_dir() else []
    # a model is named after its folder, or after the folder above its images/ when given that
    out = {(f.parent.name if f.name == "images" else f.name): (f / "images" if (f / "images").is_dir() else f)
           for f in folders}
    if len(out) < 2:
        where = ", ".join(map(str, models)) if models else f"{results}/validation/<name>/images"
        raise SystemExit(f"{where}: needs the image folders of at least 2 models; found {len(out)}")
    return out


def embed_folders(model, folders: dict, train_fraction: float, per_model: int, windows: int, views: int = 1):
    """(embeddings (n, dim), labels (n,)) of each folder's evaluation-side images (at most
    `per_model`, the first in name order), embedded as the tool embeds them (in `views` test-time
    views: the extractor's calibrated count)."""
    from modelfp import extractor as ex
    embs, labels = [], []
    for name, folder in folders.items():
        paths, _ = splits.folder_side(folder, train_fraction, splits.EVAL)
        paths = paths[:per_model]
        embs.append(ex.embed_paths(model, paths, windows, views=views).numpy())
        labels += [name] * len(paths)
    return np.concatenate(embs), np.array(labels)


def gallery_size(labels, wanted: int) -> tuple[int, int]:
    """(`wanted`, or half the smallest model's images when that is fewer, so half stay queries: a
    smoke run's few images; the smallest model's image count)."""
    smallest = int(np.unique(labels, return_counts=True)[1].min())
    return max(1, min(wanted, smallest // 2)), smallest


def compare(emb, labels, rules: dict, gallery: int = GALLERY, known_fraction: float = openset.KNOWN_FRACTION,
            repeats: int = openset.REPEATS, seed: int = 0) -> list[dict]:
    """The protocol's numbers for each named rule on the same draws (`openset.summary_rows`), each
    scored as it scores (its `neighbours`)."""
    draws = openset.leave_out_splits(labels, gallery, known_fraction, repeats, seed)
    scored = {k: openset.score_splits(emb, labels, draws, k) for k in {r.neighbours for r in rules.values()}}
    return [row for label, rule in rules.items()
            for row in openset.summary_rows(scored[rule.neighbours], {label: rule})]


def paired_by_draw(first: tuple, other: tuple, labels, gallery: int = GALLERY,
                   known_fraction: float = openset.KNOWN_FRACTION, repeats: int = openset.REPEATS,
                   seed: int = 0) -> dict:
    """Two (embeddings, rule) of the same images (`labels`, in one order) on the same draws: per
    outcome (known named right, absent called unknown, balanced) the mean of the per-draw
    differences `other` - `first` (fractions), its standard error over draws, and in how many
    draws `other` did better."""
    outcomes = ("known_named", "absent_unknown", "balanced")
    diffs = {k: [] for k in outcomes}
    for draw in openset.leave_out_splits(labels, gallery, known_fraction, repeats, seed):
        scored = {(id(emb), rule.neighbours): openset.score_splits(emb, labels, [draw], rule.neighbours)
                  for emb, rule in (first, other)}                                  # once per embedding and score
        a, b = (openset.outcomes(scored[id(emb), rule.neighbours], rule) for emb, rule in (first, other))
        for k in outcomes:
            diffs[k].append(b[k] - a[k])
    out = {}
    for k, d in diffs.items():
        d = np.asarray(d)
        out[k] = {"mean": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0,
                  "better": int((d > 1e-12).sum()), "draws": len(d)}
    return out


def paired_lines(first: str, other: str, paired: dict) -> list[str]:
    words = {"known_named": "known named right", "absent_unknown": "absent called unknown", "balanced": "balanced"}
    return [f"paired by draw, {other} - {first} (per-model rules):"] + [
        f"  {words[k]:<22} {100 * v['mean']:+.2f} points (s.e. {100 * v['se']:.2f}), better in {v['better']} of "
        f"{v['draws']} draws" for k, v in paired.items()]


def table(rows: list[dict]) -> str:
    head = ("rule", "known named right", "absent called unknown", "overall", "AUROC", "known queries",
            "absent queries")
    body = [(r["describe"], f"{100 * r['known_named']:.1f} %", f"{100 * r['absent_unknown']:.1f} %",
             f"{100 * r['overall']:.1f} %", f"{r['auroc']:.3f}", f"{r['n_known']:,}", f"{r['n_absent']:,}")
            for r in rows]
    widths = [max(len(x[i]) for x in (head, *body)) for i in range(len(head))]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(head), *map(fmt, body)])


def views_study(models: list, folders: dict, counts: list[int], args) -> list[dict]:
    """Per test-time view count, and per ensemble of the first 1, 2, ... of `models` (extractors whose
    unit fingerprints are put side by side, so a score is the mean of the members' cosines, as the
    views' are), on the same images: identification accuracy (its gallery draws and seed, the
    evaluation's defaults) and verification AUC in percent, `openset.deployed`'s answers, the cost
    (network passes per image, relative to one view of one network) and the balanced accuracy's
    paired difference per draw to the first row (mean, s.e.). Each model embeds the images once, in
    the most views; fewer are the first blocks of those (`extractor.first_views`, equal up to
    rounding)."""
    from modelfp import evaluate
    from modelfp import extractor as ex
    from modelfp.attributor import WINDOWS
    most = max(counts)
    embedded, labels = [], None
    for model in models:
        emb, labels = embed_folders(model, folders, args.train_fraction, args.per_model, args.window or WINDOWS, most)
        embedded.append(emb)
    gallery, _ = gallery_size(labels, args.gallery)
    rows = []
    for views in counts:
        for members in range(1, len(models) + 1):
            blocks = [ex.first_views(e, most, views) for e in embedded[:members]]
            emb = np.concatenate([b / np.linalg.norm(b, axis=1, keepdims=True) for b in blocks], axis=1)
            emb /= np.sqrt(members)
            ide = evaluate.identification(emb, labels, gallery, args.seed, args.gallery_draws)
            ver = evaluate.verification(emb, labels, seed=args.seed)
            rows.append({"views": views, "members": members, "identification": 100 * ide["accuracy"],
                         "queries": ide["n_queries"], "auc": 100 * ver["auc"], "cost": views * members,
                         **openset.deployed(emb, labels, gallery, args.seed, args.gallery_draws,
                                            (models[0].openset_rule or {}).get("neighbours", 0))})
    for row in rows:
        diff = row["_openset_draws"] - rows[0]["_openset_draws"]
        row["balanced_minus_first"] = float(diff.mean())
        row["balanced_minus_first_se"] = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan")
        row["better_draws"] = int((diff > 0).sum())
        row["draws"] = len(diff)
    return rows


def neighbours_study(sets: dict, counts: list[int], gallery: int, seed: int = 0, draws: int = 1,
                     repeats: int = openset.REPEATS) -> list[dict]:
    """Per named set of (embeddings, labels) and per neighbours count (module docstring): the rule
    fitted as calibrate fits it on `repeats` draws (seed), scored on 2 x `repeats` fresh draws
    (seed + 1); the rows carry the fresh draws' rates and each one's paired difference to the
    set's first count."""
    rows = []
    for name, (emb, labels) in sets.items():
        fresh = openset.leave_out_splits(labels, gallery, openset.KNOWN_FRACTION, 2 * repeats, seed + 1)
        first = None
        for k in counts:
            fitted = openset.fit_deployable(emb, labels, gallery, seed, draws, k)
            scored = [openset.score_splits(emb, labels, [d], k) for d in fresh]
            each = [openset.outcomes(s, fitted.rule) for s in scored]
            per_draw = np.array([o["balanced"] for o in each])
            pooled = {rate: sum(o[rate] * o[n] for o in each) / sum(o[n] for o in each)   # the draws pooled
                      for rate, n in (("known_named", "n_known"), ("absent_unknown", "n_absent"))}
            nearest = np.concatenate([s.right[s.known] for s in scored])
            first = per_draw if first is None else first
            diff = per_draw - first
            rows.append({"set": name, "neighbours": k, "rule": fitted.rule.describe(),
                         "fitted_balanced": fitted.fitted["balanced"], "known_named": pooled["known_named"],
                         "absent_unknown": pooled["absent_unknown"], "balanced": float(per_draw.mean()),
                         "nearest_right": float(nearest.mean()), "diff": float(diff.mean()),
                         "diff_se": float(diff.std(ddof=1) / np.sqrt(len(diff))), "draws": len(diff)})
    return rows


def neighbours_table(rows: list[dict]) -> str:
    head = ("set", "neighbours", "fitted (in-sample)", "known named right", "absent called unknown", "balanced",
            "nearest right", "balanced - first (s.e.)")
    body = [(r["set"], str(r["neighbours"]), f"{100 * r['fitted_balanced']:.2f} %", f"{100 * r['known_named']:.1f} %",
             f"{100 * r['absent_unknown']:.1f} %", f"{100 * r['balanced']:.2f} %", f"{100 * r['nearest_right']:.1f} %",
             f"{100 * r['diff']:+.2f} ({100 * r['diff_se']:.2f})") for r in rows]
    widths = [max(len(x[i]) for x in (head, *body)) for i in range(len(head))]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(head), *map(fmt, body)])


def views_table(rows: list[dict]) -> str:
    head = ("views", "networks", "cost", "identification", "AUC", "rule", "known named right", "absent called unknown",
            "balanced", "AUROC", "balanced - first (s.e.)", "better draws")
    body = [(str(r["views"]), str(r["members"]), f"{r['cost']} x", f"{r['identification']:.1f} %", f"{r['auc']:.1f}",
             r["openset_rule"],
             f"{r['openset_known_named']:.1f} %", f"{r['openset_absent_unknown']:.1f} %", f"{r['openset_balanced']:.2f} %",
             f"{r['openset_auroc']:.3f}", f"{r['balanced_minus_first']:+.2f} ({r['balanced_minus_first_se']:.2f})",
             f"{r['better_draws']} of {r['draws']}") for r in rows]
    widths = [max(len(x[i]) for x in (head, *body)) for i in range(len(head))]
    fmt = lambda cells: "  ".join(c.ljust(w) if i in (0, 5) else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(head), *map(fmt, body)])


def rules_of(model, emb, labels, gallery, args) -> dict:
    """The old global threshold and the per-model rule of the extractor (fitted here when it has none
    and these are the validation generators)."""
    if model.openset_threshold is None:
        raise SystemExit(f"{args.extractor}: holds no open-set threshold; pass the calibrated "
                         f"results/extractors/<variant>/model.pt")
    old = openset.OpenSetRule.global_only(model.openset_threshold)
    if model.openset_rule is not None:
        rule = openset.OpenSetRule.from_constants(model.openset_rule, old.threshold)
        return {"global": openset.OpenSetRule(old.threshold, neighbours=rule.neighbours), "per-model": rule}
    if args.models:
        raise SystemExit(f"{args.extractor}: calibrated before per-model open-set rules; calibrate it on the "
                         f"validation set first (the workflow's calibrate step), never on these folders")
    print(f"{args.extractor}: no per-model constants (calibrated before them); fitting them here, in-sample, "
          f"on these validation generators", file=sys.stderr)
    fitted = openset.fit(emb, labels, old.threshold, gallery, args.known_fraction, args.repeats, args.seed)
    return {"global": old, "per-model": fitted.rule}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results", help="a finished run's results folder")
    p.add_argument("--extractor", default="results/extractors/all/model.pt", help="the calibrated extractor")
    p.add_argument("--models", nargs="+", metavar="FOLDER",
                   help="other model folders instead of the validation generators (the test bed: once, at the end)")
    p.add_argument("--gallery", type=int, default=GALLERY, help="gallery images per known model")
    p.add_argument("--known-fraction", type=float, default=openset.KNOWN_FRACTION)
    p.add_argument("--repeats", type=int, default=openset.REPEATS, help="draws of known / absent models")
    p.add_argument("--per-model", type=int, default=PER_MODEL, help="evaluation-side images per model at most")
    p.add_argument("--train-fraction", type=float, default=0.5, help="the run's evaluation.train_fraction")
    p.add_argument("--window", type=int, default=None, help="sliding windows per side (default: the tool's)")
    p.add_argument("--gallery-draws", type=int, default=5,
                   help="with several --views: gallery draws of identification and of the global threshold "
                        "(the run's evaluation.gallery_draws)")
    p.add_argument("--views", type=int, nargs="+", metavar="K",
                   help="one count: embed in K test-time views (default: the extractor's calibrated count); "
                        "several: compare them (the validation generators only; of the file's rule only its "
                        "score, neighbours, is read)")
    p.add_argument("--members", nargs="+", metavar="EXTRACTOR", default=[],
                   help="more extractors (trained files will do), their fingerprints beside --extractor's: "
                        "compare ensembles of the first 1, 2, ... at each --views count (the validation "
                        "generators only; only the first file's score, neighbours, is read)")
    p.add_argument("--vs", metavar="EXTRACTOR",
                   help="another calibrated file (a recalibration, another training): its per-model rule on the "
                        "same images and draws, and the difference to --extractor's paired by draw")
    p.add_argument("--neighbours", type=int, nargs="+", metavar="N",
                   help="compare identify's scores (0: the fingerprint; n: a model's n nearest images) on "
                        "--embeddings and --copies (the validation generators only)")
    p.add_argument("--embeddings", help="with --neighbours: the calibrate step's validation embeddings folder")
    p.add_argument("--copies", help="with --neighbours: a resaved-gallery file (each re-save's copies)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int)
    args = p.parse_args(argv)

    import torch

    from modelfp.attributor import WINDOWS, load_extractor
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.neighbours:
        if args.models or not args.embeddings:
            raise SystemExit("--neighbours: a choice, made on the validation generators only: give the calibrate "
                             "step's --embeddings (and --copies), not --models")
        from modelfp import resaved
        sets = {"clean": openset.read_embeddings_folder(args.embeddings),
                **(resaved.copies(args.copies) if args.copies else {})}
        gallery, _ = gallery_size(sets["clean"][1], args.gallery)
        rows = neighbours_study(sets, args.neighbours, gallery, args.seed, args.gallery_draws, args.repeats)
        print(f"identify's score on the validation generators ({args.embeddings}"
              f"{', ' + args.copies if args.copies else ''}): each rule fitted on {args.repeats} draws, scored on "
              f"{2 * args.repeats} fresh ones (gallery {gallery} images per known model)")
        print(neighbours_table(rows))
        return 0
    folders = model_folders(args.results, args.models)
    model = load_extractor(args.extractor, args.device)
    if args.members or (args.views and len(args.views) > 1):
        if args.models:
            raise SystemExit("--views K K ... and --members: a choice, made on the validation generators only; "
                             "drop --models")
        models = [model, *(load_extractor(m, args.device) for m in args.members)]
        rows = views_study(models, folders, args.views or [model.views], args)
        print(f"test-time views on {len(folders)} validation generators ({args.results}/validation, in-sample), "
              f"at most {args.per_model} evaluation-side images each; {' + '.join([args.extractor, *args.members])}")
        print(views_table(rows))
        return 0
    views = args.views[0] if args.views else model.views
    emb, labels = embed_folders(model, folders, args.train_fraction, args.per_model, args.window or WINDOWS, views)
    gallery, smallest = gallery_size(labels, args.gallery)
    if gallery != args.gallery:
        print(f"gallery {args.gallery} -> {gallery}: the smallest model has {smallest} evaluation-side images "
              f"(half stay queries)", file=sys.stderr)
    rules = rules_of(model, emb, labels, gallery, args)
    rows = compare(emb, labels, rules, gallery, args.known_fraction, args.repeats, args.seed)
    names = sorted(folders)
    n_known = min(len(names) - 1, max(1, round(args.known_fraction * len(names))))
    bed = "given folders" if args.models else f"{args.results}/validation (in-sample: the rules were chosen here)"
    print(f"open-set protocol on {len(names)} models ({bed}), {len(labels):,} evaluation-side images; "
          f"{args.repeats} draws of {n_known} known models (gallery {gallery} images each) and "
          f"{len(names) - n_known} absent")
    print(table(rows))
    if args.vs:
        from modelfp.attributor import weights_digest
        other = load_extractor(args.vs, args.device)
        same_network = weights_digest(other) == weights_digest(model) and other.views == views
        other_emb = emb if same_network else embed_folders(other, folders, args.train_fraction, args.per_model,
                                                           args.window or WINDOWS, other.views)[0]
        other_rules = rules_of(other, other_emb, labels, gallery, SimpleNamespace(**{**vars(args), "extractor": args.vs}))
        print(f"\n{args.vs}" + (" (the same network: the same embeddings)" if same_network else ""))
        print(table(compare(other_emb, labels, other_rules, gallery, args.known_fraction, args.repeats, args.seed)))
        paired = paired_by_draw((emb, rules["per-model"]), (other_emb, other_rules["per-model"]), labels, gallery,
                                args.known_fraction, args.repeats, args.seed)
        print("\n".join(paired_lines(args.extractor, args.vs, paired)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
