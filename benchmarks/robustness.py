"""Does the people's tool still find the model of an image that was re-saved? Identification of
re-saved copies (JPEG at several qualities and chroma samplings, lossy WebP, GIF, grayscale, RGBA) beside
the same images clean (issue 25, item 2). The gallery is made as `modelfp gallery add` makes it: of
clean images, keeping each one's re-saved copies (`modelfp.perturb.MATCHED`), which a JPEG, lossy
WebP or grayscale query is compared with.

Needs a finished run's image folders and one or more extractor files (a calibrated
results/extractors/<variant>/model.pt, or a trained.pt). For each model, from its evaluation side
only (modelfp.splits, as the workflow's embed rule reads it), a seeded choice of --gallery clean
images (10) builds a gallery through the people's path (`Attributor.gallery_add_models`, what
`modelfp gallery add` runs) and --queries other images (100) are the queries. Each query is
written once per condition as a real file (`modelfp.perturb.RESAVES`: clean PNG, JPEG quality 95,
90, 85 and 75, JPEG 90 with 4:4:4 and with 4:2:2 colour, JPEG 92, lossy WebP, GIF (Pillow's own
256-colour palette; the gallery keeps no copies of it), grayscale "L" PNG, RGBA PNG with alpha 255
and with alpha 128) in a temporary folder, and `Attributor.identify` reads
those files as it reads a person's, its `note` column included (a 4:4:4 or 4:2:2 JPEG re-encoded
as the gallery's JPEG copies are made, `modelfp.attributor.read_images`).

Printed per extractor and condition: the queries, closed-set identification accuracy (the nearest
gallery model is the right one) with its binomial standard error, its ratio to the clean accuracy
of the same images (issue 25's target: at least 0.80), open-set "named right" (the tool's answer is
the right model, not another and not `unknown`; calibrated files only), "own model absent: unknown"
(the answer had the query's model not been in the gallery: every gallery model is ranked, and the
query's own is left out of the ranking; calibrated files only) and the share of answers
whose note says "fingerprint weakened". With several --extractor, each after the first is compared
with the first on the same queries per condition: McNemar's exact test (modelfp.paired.mcnemar) of
nearest right, and for calibrated files of named right and of own model absent called unknown (two
calibrations of one network differ there alone).

    python benchmarks/robustness.py --results results --extractor results/extractors/all/model.pt
    python benchmarks/robustness.py --extractor results/extractors/all/model.pt \\
        --extractor results/extractors/immunized/model.pt --out robustness.csv
    python benchmarks/robustness.py --bed testbed ...    # the test bed: ONCE, after every choice

--bed validation (the default: results/validation/<name>/images) is where settings such as the
immunization's `gray` probability are chosen; --bed testbed (results/testbed/<name>/images of the
evaluated models, Table III: the LoRA lineage and the varied-sampling copies, which have a base
model in their meta.json, are left out) gives the numbers reported, measured once after the choice.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from modelfp import splits
from modelfp.perturb import RESAVES, resave

GALLERY = 10             # clean gallery images per model (the README's advice: 10 or more)
QUERIES = 100            # queries per model, disjoint from its gallery
WEAKENED = "fingerprint weakened"
BEDS = ("validation", "testbed")


# ---------------------------------------------------------------------------------------------
# The images: which models, which gallery images and queries, their re-saved copies

def model_folders(results, bed: str) -> dict[str, Path]:
    """{name: image folder} of the bed's models: every results/validation/<name>/images, or the test
    bed's evaluated models (results/testbed/<name>/images whose meta.json names no base model)."""
    root = Path(results) / bed
    found = {}
    for folder in sorted(root.iterdir()) if root.is_dir() else ():
        if not (folder / "images").is_dir():
            continue
        meta = folder / "meta.json"
        if bed == "testbed" and meta.is_file() and json.loads(meta.read_text()).get("base"):
            continue            # a LoRA descendant or a sampling configuration of a test model
        found[folder.name] = folder / "images"
    if len(found) < 2:
        raise SystemExit(f"{root}/<name>/images: needs the image folders of at least 2 models; found {len(found)}")
    return found


def choose(folders: dict, train_fraction: float, gallery: int, queries: int, seed: int) -> dict:
    """{name: (gallery paths, query paths)}: a seeded draw from each folder's evaluation side, the
    queries disjoint from the gallery. Each model's draw depends on its name and the seed alone, so
    adding a model changes no other model's images. Fewer queries when a model has too few images
    (said on stderr)."""
    chosen = {}
    for name, folder in folders.items():
        paths, _ = splits.folder_side(folder, train_fraction, splits.EVAL)
        if len(paths) <= gallery:
            raise SystemExit(f"{folder}: {len(paths)} evaluation-side images; needs more than the gallery's {gallery}")
        order = np.random.default_rng([seed, zlib.crc32(name.encode())]).permutation(len(paths))
        picked = [paths[i] for i in order[:gallery + queries]]
        if len(picked) < gallery + queries:
            print(f"{name}: {len(picked) - gallery} queries, not {queries} (its evaluation side holds "
                  f"{len(paths)} images)", file=sys.stderr)
        chosen[name] = (picked[:gallery], picked[gallery:])
    return chosen


def write_conditions(chosen: dict, folders: dict, conditions, root: Path) -> int:
    """Each query of each model as the file of each condition, root/<condition>/<model>/<its name>
    (the name under its model folder, without suffix, so copies are joined by name); returns the
    number of queries. Pixels as the tool reads the original (`load_image`)."""
    from modelfp.pools import load_image
    n = 0
    for name, (_, queries) in chosen.items():
        for path in queries:
            pixels = load_image(path, None).permute(1, 2, 0).numpy()
            key = splits.image_key(path, folders[name])
            for condition in conditions:
                resave(pixels, condition, root / condition / name / key)
            n += 1
    return n


# ---------------------------------------------------------------------------------------------
# The tool's answers

def absent_unknown(acceptance, ranked, truth: str) -> bool:
    """Whether the tool would answer `unknown` for this query if its own model were not in the
    gallery: `acceptance` (`Attributor.acceptance`, the query's condition) decides on the ranking
    without `truth` (every gallery model's score, best first). The other models' thresholds come
    from their own images, so leaving one model out changes no other model's threshold."""
    rest = [c for c in ranked if c.model != truth]
    return not rest or not acceptance.decide(rest).accepted


def answers(extractor, chosen: dict, root: Path, conditions, work: Path, device: str = "cpu", name: str = "",
            seen: dict | None = None) -> dict:
    """{condition: {"model/name": (nearest right, named right or None, note says weakened, absent
    called unknown or None)}} of one extractor: its gallery of the clean gallery images (a gallery
    file, as `modelfp gallery add` writes it), then `Attributor.identify` on each condition's
    folder, every gallery model ranked. "absent called unknown" is the answer with the query's own
    model left out of the gallery (`absent_unknown`): the open-set side of the same queries. An
    uncalibrated file (no open-set threshold) is asked with threshold -1, so every answer is its
    nearest model, and both open-set outcomes are None. `seen` (shared between calls): a file whose
    network was already run (the same weights digest and views) reuses its gallery and its queries'
    fingerprints (`Attributor.identify`'s `embedded`), and one that also scores as it did (the same
    `Attributor.neighbours`: a recalibration) every query's ranking, and only its own rule decides
    (as `identify` decides on the same ranking)."""
    from modelfp.attributor import Attributor
    seen = {} if seen is None else seen
    att = Attributor(extractor, device)
    network = (att.digest, att.views)
    if network not in seen:
        gallery = work / f"{zlib.crc32(str(Path(extractor).resolve()).encode()):08x}.gallery"
        updates = att.gallery_add_models(gallery, {model: [str(p) for p in g] for model, (g, _) in chosen.items()})
        failed = [f for u in updates for f in u.failed]
        if failed:
            raise SystemExit(f"{failed[0].path}: {failed[0].error} (a gallery image; {len(failed)} failed)")
        seen[network] = {"gallery": gallery, "embedded": {}, "ranked": {}}
    calibrated = att.model.openset_threshold is not None
    net = seen[network]
    kept = att.load_gallery(net["gallery"])
    # each query is judged as identify judged it: by the rule of what it was compared with (its
    # record's `compared`: the copies of its file's nearest kept re-save, or the clean images), which
    # for a re-save the gallery keeps no copies of (JPEG 92, 4:4:4 chroma) is another re-save's; each
    # rule made once for all the conditions judged by it
    rules = {}

    def acceptance_of(r):
        if r.compared not in rules:
            rules[r.compared] = att.acceptance(kept, condition=r.compared)
        return rules[r.compared]

    out = {}
    for condition in conditions:
        t0 = time.perf_counter()
        if condition not in net["embedded"]:
            net["embedded"][condition] = list(att.embed([str(root / condition)], kept.windows, views=kept.views))
        if (att.neighbours, condition) not in net["ranked"]:
            net["ranked"][att.neighbours, condition] = att.identify(
                [], kept, threshold=-1.0, top_k=len(kept.models), embedded=net["embedded"][condition])
        records = net["ranked"][att.neighbours, condition]
        errors = [r for r in records if r.error]
        if errors:
            print(f"{condition}: {len(errors)} images could not be used (counted wrong), e.g. "
                  f"{errors[0].path}: {errors[0].error}", file=sys.stderr)
        rows = {}
        for r in records:
            truth = Path(r.name).parts[0]
            acceptance = acceptance_of(r) if calibrated and not r.error else None
            named = (bool(r.top) and r.nearest == truth and acceptance.decide(r.top).accepted) if calibrated else None
            rows[Path(r.name).with_suffix("").as_posix()] = (
                r.nearest == truth, named, bool(r.note and WEAKENED in r.note),
                absent_unknown(acceptance, r.top, truth) if calibrated and not r.error else None)
        out[condition] = rows
        print(f"{name or extractor}: {condition}, {len(records)} queries in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
    return out


def labels(extractors) -> list[str]:
    """The extractors' short names, their variant folder and file (all/model.pt); the paths as given
    when two would share one."""
    short = ["/".join(Path(e).parts[-2:]) for e in extractors]
    return short if len(set(short)) == len(short) else [str(e) for e in extractors]


# ---------------------------------------------------------------------------------------------
# Numbers and tables

def summary(outcomes: dict, conditions) -> list[dict]:
    """Per condition: queries, nearest-right accuracy, its binomial standard error, the ratio to
    the clean accuracy (the same queries), named right (None if uncalibrated), weakened-note share."""
    keys = sorted(outcomes[conditions[0]])
    clean = np.mean([outcomes["clean"][k][0] for k in keys]) if "clean" in outcomes else math.nan
    rows = []
    for condition in conditions:
        got = [outcomes[condition].get(k, (False, False, False, False)) for k in keys]
        right = np.array([g[0] for g in got], dtype=float)
        acc = float(right.mean())
        named = None if got[0][1] is None else float(np.mean([bool(g[1]) for g in got]))
        absent = None if got[0][1] is None else float(np.mean([bool(g[3]) for g in got]))
        rows.append({"condition": condition, "queries": len(keys), "accuracy": acc,
                     "se": math.sqrt(acc * (1 - acc) / len(keys)),
                     "ratio_to_clean": acc / clean if clean > 0 else math.nan,
                     "named_right": named, "absent_unknown": absent,
                     "weakened_note": float(np.mean([g[2] for g in got]))})
    return rows


def per_model(outcomes: dict, conditions) -> list[dict]:
    """`summary` of each model's queries alone (the first part of each query's key), in model order:
    which generators a re-save hurts (--per-model)."""
    models = sorted({k.split("/")[0] for k in outcomes[conditions[0]]})
    return [{"model": model, **row} for model in models
            for row in summary({c: {k: v for k, v in o.items() if k.split("/")[0] == model}
                                for c, o in outcomes.items()}, conditions)]


def per_model_table(rows: list[dict], conditions) -> str:
    """One line per model: nearest right per condition, and each condition's ratio to clean."""
    by = {(r["model"], r["condition"]): r for r in rows}
    models = list(dict.fromkeys(r["model"] for r in rows))
    head = ("model", "queries", *conditions, *(f"{c} ratio" for c in conditions if c != "clean"))
    body = [(m, f"{by[m, conditions[0]]['queries']:,}", *(f"{100 * by[m, c]['accuracy']:.1f} %" for c in conditions),
             *(f"{by[m, c]['ratio_to_clean']:.2f}" for c in conditions if c != "clean")) for m in models]
    return _grid(head, body)


PAIRED = {"nearest right": 0, "named right": 1, "own model absent: unknown": 3}   # outcome -> its place in `answers`


def paired_rows(first: dict, other: dict, conditions, outcome: str = "nearest right") -> list[dict]:
    """Per condition, McNemar's exact test of two extractors' `outcome` (one of PAIRED: nearest
    right, or for calibrated files named right and own model absent called unknown, which differ
    between two calibrations of one network) on the same queries (b: only the first right, c: only
    the other)."""
    from modelfp.paired import mcnemar
    i = PAIRED[outcome]
    rows = []
    for condition in conditions:
        keys = sorted(first[condition])
        test = mcnemar([bool(first[condition][k][i]) for k in keys],
                       [bool(other[condition].get(k, (False,) * 4)[i]) for k in keys])
        rows.append({"condition": condition, **test})
    return rows


def _grid(head, body, left: int = 1) -> str:
    """Aligned columns, the first `left` of them names (left-aligned), the others numbers."""
    widths = [max(len(x[i]) for x in (head, *body)) for i in range(len(head))]
    fmt = lambda cells: "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(head), *map(fmt, body)])


def table(rows: list[dict]) -> str:
    pct = lambda x: "-" if x is None else f"{100 * x:.1f} %"
    head = ("extractor", "condition", "queries", "nearest right", "s.e.", "ratio to clean", "named right",
            "own model absent: unknown", f'note "{WEAKENED}"')
    body = [(r["extractor"], r["condition"], f"{r['queries']:,}", pct(r["accuracy"]), f"{100 * r['se']:.1f}",
             f"{r['ratio_to_clean']:.2f}", pct(r["named_right"]), pct(r["absent_unknown"]), pct(r["weakened_note"]))
            for r in rows]
    return _grid(head, body, left=2)


def paired_table(first: str, other: str, rows: list[dict]) -> str:
    head = ("condition", "queries", f"only {first} right", f"only {other} right", "McNemar p")
    body = [(r["condition"], f"{r['n']:,}", f"{r['b']:,}", f"{r['c']:,}", f"{r['p']:.3g}") for r in rows]
    return _grid(head, body)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results", help="a finished run's results folder")
    p.add_argument("--extractor", action="append", metavar="FILE",
                   help="an extractor file (model.pt or trained.pt); give it again to compare (paired tests "
                        "against the first); default results/extractors/all/model.pt")
    p.add_argument("--bed", choices=BEDS, default="validation",
                   help="validation generators (choose here), or the test bed (once, after the choice)")
    p.add_argument("--conditions", nargs="+", choices=list(RESAVES), default=list(RESAVES),
                   help="re-saves to measure (clean is always among them: the ratios are to it)")
    p.add_argument("--gallery", type=int, default=GALLERY, help="clean gallery images per model")
    p.add_argument("--queries", type=int, default=QUERIES, help="query images per model")
    p.add_argument("--train-fraction", type=float, default=0.5, help="the run's evaluation.train_fraction")
    p.add_argument("--seed", type=int, default=0, help="the choice of gallery and query images")
    p.add_argument("--out", help="write the numbers as csv here")
    p.add_argument("--per-model", metavar="CSV",
                   help="also print each model's nearest right per condition, and write them as csv here")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, help="torch threads (e.g. 1 on a shared machine)")
    args = p.parse_args(argv)
    extractors = args.extractor or ["results/extractors/all/model.pt"]
    conditions = ["clean", *(c for c in args.conditions if c != "clean")]

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    folders = model_folders(args.results, args.bed)
    chosen = choose(folders, args.train_fraction, args.gallery, args.queries, args.seed)
    with tempfile.TemporaryDirectory(prefix="modelfp-robustness-") as tmp:
        root = Path(tmp)
        n = write_conditions(chosen, folders, conditions, root / "copies")
        names = labels(extractors)
        seen = {}
        outcomes = [answers(e, chosen, root / "copies", conditions, root, args.device, name, seen)
                    for e, name in zip(extractors, names)]

    rows = [{"extractor": name, "bed": args.bed, **r} for name, o in zip(names, outcomes) for r in summary(o, conditions)]
    print(f"re-saves on {len(folders)} models ({args.bed}: {args.results}/{args.bed}, evaluation side): gallery "
          f"{args.gallery} clean images per model, {n:,} queries (seed {args.seed}); "
          f"{time.perf_counter() - t0:.0f} s")
    print(table(rows))
    calibrated = lambda o: next(iter(o[conditions[0]].values()))[1] is not None
    for name, other in zip(names[1:], outcomes[1:]):
        for outcome, column in zip(PAIRED, ("", "named_", "absent_")):
            if outcome != "nearest right" and not (calibrated(outcomes[0]) and calibrated(other)):
                continue
            tests = paired_rows(outcomes[0], other, conditions, outcome)
            print(f"\npaired, the same queries: {names[0]} vs {name} ({outcome}; McNemar exact)")
            print(paired_table(names[0], name, tests))
            for row, test in zip((r for r in rows if r["extractor"] == name), tests):
                row.update({"vs": names[0], f"{column}only_vs_right": test["b"], f"{column}only_this_right": test["c"],
                            f"{column}mcnemar_p": test["p"]})
    if args.per_model:
        models = [{"extractor": name, "bed": args.bed, **r} for name, o in zip(names, outcomes)
                  for r in per_model(o, conditions)]
        for name in names:
            print(f"\nper model, {name} (nearest right; {args.queries} queries a model: s.e. up to "
                  f"{50 / math.sqrt(args.queries):.1f} points)")
            print(per_model_table([r for r in models if r["extractor"] == name], conditions))
        with open(args.per_model, "w", newline="") as f:
            writer = csv.DictWriter(f, list(models[0]))
            writer.writeheader()
            writer.writerows(models)
    if args.out:
        fields = ["extractor", "bed", "condition", "queries", "accuracy", "se", "ratio_to_clean", "named_right",
                  "absent_unknown", "weakened_note", "vs", "only_vs_right", "only_this_right", "mcnemar_p",
                  *(f"{c}{k}" for c in ("named_", "absent_") for k in ("only_vs_right", "only_this_right", "mcnemar_p"))]
        with open(args.out, "w", newline="") as f:
            writer = csv.DictWriter(f, fields)
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
