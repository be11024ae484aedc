"""The command line for people, `modelfp` (or `python -m modelfp`): `gallery add | list | remove`,
`identify`, `verify`, `export`, and nothing else; the workflow's steps are the other door,
`python -m modelfp.steps` (modelfp.steps), and the two share only modelfp.cliutil.

Thin verbs over `modelfp.attributor.Attributor`. Inputs are image files, folders (searched
recursively) and glob patterns. Output on stdout in `--format table | csv | json` (default: table
on a terminal, csv when piped): one row per input image (per pair for verify), in order; an image
that cannot be used is a row with its `error` set, "what is wrong; what to do", and the other images
are still answered; a JPEG, lossy WebP, palette (GIF), grayscale or partly transparent image is answered
with its `note` set ("fingerprint weakened: JPEG"; alpha itself is no weakening: the stored colours
are read), and an image file of a format the tool does not read (HEIC, AVIF, ...) is an error row.
Summaries (per input folder, per sub-folder of a folder of folders, per gallery model) follow the
table, are inside the json document, and go to stderr with csv, so the csv stays one table. `gallery add` skips the images a model already holds (same pixels) and
counts them; `--top-k` is capped at the gallery's models (said once on stderr). A progress bar
(tqdm) is shown when stderr is a terminal. Exit code: 0 when every input was answered, 1 when some inputs
failed, 2 for usage errors and unusable extractor or gallery files (one line on stderr,
`cliutil.run`), 130 when interrupted (Ctrl-C): `gallery add` keeps what it added (the same command
again adds the rest), `identify` gives the answers of the images it read. identify's csv is written
a row at a time as the images are answered (a long run killed keeps its rows), so its `reason`
column is always there; the table and json come at the end.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import asdict

from . import cliutil
from .cliutil import counted

# The attributor (torch, torchvision) is imported by the verbs, not here: `modelfp --help` and a
# usage error answer at once (measured: +2.4 s per process with it).


def _attributor(args, **kw):
    from .attributor import Attributor
    if getattr(args, "window", None) is not None:
        kw["windows"] = args.window
    cliutil.set_threads(args.threads)
    return Attributor(args.extractor, cliutil.device(args.device), **kw)


IMAGES_HELP = "image files, folders (searched recursively) or quoted glob patterns ('shots/**/*.png')"
FORMATS = ("table", "csv", "json")
EXTRACTOR_HELP = "a trained extractor: its .pt file, or the folder written by `modelfp export`"
EPILOG = ("Prints one row per image (--format table on a terminal, csv when piped, or json); an image "
          "that cannot be used is a row with its error column set ('what is wrong; what to do') and "
          "the others are still answered. Exit code: 0 all answered, 1 some images failed, 2 usage "
          "error or unusable extractor/gallery file.")


# ---------------------------------------------------------------------------------------------
# Output: one table of rows (dicts), printed as an aligned table, csv or json

def _format(args) -> str:
    """--format, else table on a terminal and csv when piped (as common command-line tools do)."""
    return args.format or ("table" if sys.stdout.isatty() else "csv")


def _progress(att, inputs, desc: str):
    """A tqdm bar over the images of `inputs` on a terminal (stderr), else None (quiet when piped)."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm
    return tqdm(total=att.count(inputs), desc=desc, unit="img", leave=False)


def _number(value, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _csv(rows: list[dict], columns: list[str]) -> None:
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(columns)
    for row in rows:
        out.writerow(_csv_values(row, columns))


def _csv_values(row: dict, columns: list[str]) -> list:
    return [_number(row.get(c), 6) for c in columns]


def _json(document: dict) -> None:
    json.dump(document, sys.stdout, indent=1)
    sys.stdout.write("\n")


def _table(rows: list[dict], columns: list[str], headers: list[str]) -> None:
    """Aligned columns; a row with an error is its first column then 'error: ...'."""
    cells = [[_number(row.get(c), 4) for c in columns] for row in rows if not row.get("error")]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()
    print(line(headers))
    for row in rows:
        if row.get("error"):
            print(f"{row.get('path', row[columns[0]])}  error: {row['error']}")
        else:
            print(line([_number(row.get(c), 4) for c in columns]))


def _summary_out(fmt: str):
    """Where summaries go: after the table on stdout, to stderr with csv (the csv stays one table)."""
    return sys.stderr if fmt == "csv" else sys.stdout


# ---------------------------------------------------------------------------------------------
# The verbs

def cmd_gallery_add(args) -> int:
    from .attributor import models_in_folders
    if args.from_folders and (args.name or args.images):
        raise ValueError("gallery add takes NAME IMAGES... or --from-folders ROOT..., not both")
    if args.from_folders:
        models, failed = models_in_folders(args.from_folders)
    elif args.name and args.images:
        models, failed = {args.name: args.images}, []
    else:
        raise ValueError("gallery add needs a model NAME and its IMAGES, or --from-folders ROOT (one model "
                         "per sub-folder)")
    fmt = _format(args)
    att = _attributor(args)
    inputs = [item for items in models.values() for item in items]
    bar = _progress(att, inputs, "gallery add")
    try:
        updates = att.gallery_add_models(args.gallery, models, bar.update if bar else None) if models else []
    except KeyboardInterrupt:
        print(f"interrupted; {args.gallery} keeps the images added until now: run the same command again to add "
              f"the rest (the images it already holds are skipped)", file=sys.stderr)
        return 130
    finally:
        if bar:
            bar.close()
    rows = [{"model": "", "path": r.path, "status": "failed", "note": None, "error": r.error} for r in failed]
    rows += [{"model": u.name, "path": path, "status": "added", "note": u.notes.get(path), "error": None}
             for u in updates for path in u.added]
    rows += [{"model": u.name, "path": path, "status": "already present", "note": None, "error": None}
             for u in updates for path in u.skipped]
    rows += [{"model": u.name, "path": r.path, "status": "failed", "note": None, "error": r.error}
             for u in updates for r in u.failed]
    lines = [_added_line(u) for u in updates]
    if not any(u.added for u in updates):
        lines.append(("" if updates else "no model found; ") + f"{args.gallery} left as it was (nothing new added)")
    if fmt == "json":
        _json({"gallery": args.gallery, "images": rows,
               "models": [{"name": u.name, "added": len(u.added), "skipped": len(u.skipped), "failed": len(u.failed),
                           "images": u.count} for u in updates],
               "models_in_gallery": updates[-1].models if updates else None})
    elif fmt == "csv":
        _csv(rows, ["model", "path", "status", "note", "error"])
    else:
        for row in rows:
            if row["error"] or row["note"]:
                print(f"{row['path']}  " + (f"error: {row['error']}" if row["error"] else f"note: {row['note']}"))
    if fmt != "json":
        print("\n".join(lines), file=_summary_out(fmt))
    return 1 if any(row["error"] for row in rows) else 0


def _added_line(u) -> str:
    """"vae: 10 images in my.gallery (3 models); added 8, skipped 2 already present, 1 could not be used"."""
    done = [f"added {len(u.added)}" + (f" ({len(u.notes)} with a weakened fingerprint: see their notes)"
                                       if u.notes else "")] \
        + [f"skipped {len(u.skipped)} already present"] * bool(u.skipped) \
        + [f"{len(u.failed)} could not be used"] * bool(u.failed)
    return f"{u.name}: {counted(u.count, 'image')} in {u.path} ({counted(u.models, 'model')}); {', '.join(done)}"


def cmd_gallery_list(args) -> int:
    from .attributor import read_gallery
    gallery = read_gallery(args.gallery)
    # copies: the re-saves a JPEG, grayscale or WebP query of this model is compared with (none: its clean images)
    rows = [{"model": name, "images": count, "copies": " ".join(gallery.copies(name)) or "none"}
            for name, count in gallery.counts().items()]
    fmt = _format(args)
    if fmt == "json":
        _json({"gallery": args.gallery, "extractor": gallery.extractor, "windows": gallery.windows,
               "views": gallery.views, "models": rows})
    elif fmt == "csv":
        _csv(rows, ["model", "images", "copies"])
    else:
        _table(rows, ["model", "images", "copies"], ["MODEL", "IMAGES", "COPIES"])
        print(f"{args.gallery}: {counted(len(rows), 'model')}, {counted(sum(r['images'] for r in rows), 'image')}, "
              f"{gallery.windows}x{gallery.windows} windows and {gallery.views} test-time view(s) per image, "
              f"extractor weights {gallery.extractor}")
    return 0


def cmd_gallery_remove(args) -> int:
    from .attributor import remove_models
    removed, gallery = remove_models(args.gallery, args.names)
    for name, count in removed.items():
        print(f"removed {name} ({counted(count, 'image')}) from {args.gallery}")
    print(f"{args.gallery}: {counted(len(gallery.models), 'model')} left")
    return 0


def _identification_row(r) -> dict:
    row = {"path": r.path, "model": r.model, "score": r.score, "nearest": r.nearest, "threshold": r.threshold,
           "source": r.source, "note": r.note, "error": r.error}
    for i, c in enumerate(r.top[1:], start=2):
        row[f"nearest_{i}"], row[f"score_{i}"] = c.model, c.score
    row["reason"] = r.reason
    return row


def _identification_columns(top_k: int, reason: bool = True) -> list[str]:
    """identify's columns; `reason` (why "unknown") only when some image has one: no empty column,
    except in csv, which is written as the images are answered (`cmd_identify`)."""
    columns = ["path", "model", "score", "nearest", "threshold"]
    columns += [f"{what}_{i}" for i in range(2, top_k + 1) for what in ("nearest", "score")]
    return [*columns, *["reason"] * reason, "source", "note", "error"]


def _top_k(args, gallery) -> int:
    """--top-k, capped at the gallery's number of models (said once, on stderr): no empty columns."""
    n = len(gallery.models)
    if not n:
        raise ValueError(f"{args.gallery}: an empty gallery; add models with `modelfp gallery add`")
    if args.top_k > n:
        print(f"--top-k {args.top_k}: {args.gallery} holds {n} models; listing {n}", file=sys.stderr)
    return min(args.top_k, n)


def _summary_lines(summaries) -> list[str]:
    lines = []
    for s in summaries:
        answers = [f"{m} {n}" for m, n in s.models.items()] + [f"unknown {s.unknown}"] * bool(s.unknown) \
            + [f"failed {s.failed}"] * bool(s.failed)
        lines.append(f"{s.folder}: {counted(s.images, 'image')}; {', '.join(answers)}")
    return lines


def cmd_identify(args) -> int:
    from .attributor import in_words, summarize
    fmt = _format(args)
    att = _attributor(args)
    gallery = att.load_gallery(args.gallery)
    top_k = _top_k(args, gallery) if args.top_k >= 1 else args.top_k     # below 1: identify's error
    bar = _progress(att, args.images, "identify")
    records, items, interrupted = [], [], False
    # csv is written as the images are answered, a row at a time: a long run killed keeps its rows
    streamed = csv.writer(sys.stdout, lineterminator="\n") if fmt == "csv" else None
    if streamed:
        columns = _identification_columns(top_k)
        streamed.writerow(columns)
    if args.report:
        from . import report_html
    try:
        for r, image, h in att.identify_each(args.images, gallery, args.threshold, top_k, bar.update if bar else None):
            records.append(r)
            if args.report:
                items.append(report_html.ReportItem(r, report_html.thumbnail(image.image) if h is not None else None,
                                                    h))
            if streamed:
                streamed.writerow(_csv_values(_identification_row(r), columns))
                sys.stdout.flush()
    except KeyboardInterrupt:           # Ctrl-C: what was answered is given, as if the inputs ended there
        interrupted = True
    finally:
        if bar:
            bar.close()
    rows = [_identification_row(r) for r in records]
    if not streamed:
        columns = _identification_columns(top_k, reason=any(r.reason for r in records))
    summaries = summarize(records)
    acceptance = att.acceptance(gallery, args.threshold, args.gallery)    # what identify_each decided with
    # and for re-saved images, the rule of their re-save (modelfp.resaved)
    resaved = {c: att.acceptance(gallery, args.threshold, args.gallery, c)
               for c in dict.fromkeys(r.compared for r in records if r.compared)}
    threshold = acceptance.rule.threshold
    if fmt == "json":
        _json({"gallery": args.gallery, "extractor": args.extractor, "threshold": threshold,
               "open_set_rule": acceptance.rule.describe(), "model_thresholds": acceptance.thresholds,
               "resaved_rules": {c: {"open_set_rule": a.rule.describe(), "model_thresholds": a.thresholds}
                                 for c, a in resaved.items()},
               "top_k": top_k, "images": [asdict(r) for r in records], "summary": [asdict(s) for s in summaries]})
    elif fmt == "table":
        shown = ["path", "model", "score", "nearest"]
        headers = ["IMAGE", "ANSWER", "SCORE", "NEAREST"]
        if top_k > 1:
            for row in rows:
                row["others"] = ", ".join(f"{row[f'nearest_{i}']} {row[f'score_{i}']:.4f}"
                                          for i in range(2, top_k + 1) if f"nearest_{i}" in row)
            shown, headers = [*shown, "others"], [*headers, "NEXT"]
        if any(row["note"] for row in rows):
            shown, headers = [*shown, "note"], [*headers, "NOTE"]
        if "reason" in columns:
            shown, headers = [*shown, "reason"], [*headers, "WHY UNKNOWN"]
        _table(rows, shown, headers)
    if fmt != "json":
        out = _summary_out(fmt)
        print(f"\nsummary ({acceptance.describe()})", file=out)
        for c, a in resaved.items():
            print(f"  {in_words(c)} images, compared with the gallery's {in_words(c)} copies: {a.describe()}", file=out)
        print("\n".join(_summary_lines(summaries)), file=out)
    if interrupted:
        print(f"interrupted: {counted(len(records), 'image')} answered (above); the rest were not read", file=sys.stderr)
    if args.report:
        from . import report_html
        names, prints = gallery.fingerprints()
        report_html.write(report_html.render(items, names, prints, gallery=args.gallery, extractor=args.extractor,
                                             threshold=threshold,
                                             unknown_rule=acceptance.describe() if acceptance.rule.per_model else None),
                          args.report)
        print(f"report: {args.report}", file=sys.stderr)
    return 130 if interrupted else 1 if any(r.error for r in records) else 0


def cmd_verify(args) -> int:
    fmt = _format(args)
    att = _attributor(args)
    bar = _progress(att, [args.image_a, args.image_b], "verify")
    pairs = att.verify_pairs([args.image_a], [args.image_b], args.threshold, bar.update if bar else None)
    if bar:
        bar.close()
    rows = []
    for v in pairs:
        verdict = None if v.failed else "same model" if v.same else "different models"
        row = {"a": v.a, "b": v.b, "verdict": verdict, "same": v.same, "score": v.score, "threshold": v.threshold,
               "note": v.note, "error": v.failed[0].error if v.failed else None}
        if v.failed:
            row["path"] = v.failed[0].path
        rows.append(row)
    if fmt == "json":
        _json({"threshold": att.threshold(args.threshold), "pairs": [{k: v for k, v in row.items() if k != "path"}
                                                                    for row in rows]})
    elif fmt == "csv":
        _csv([{**r, "same": None if r["same"] is None else str(r["same"]).lower()} for r in rows],
             ["a", "b", "verdict", "same", "score", "threshold", "note", "error"])
    else:
        shown, headers = ["a", "b", "verdict", "score"], ["IMAGE A", "IMAGE B", "VERDICT", "SCORE"]
        if any(row["note"] for row in rows):
            shown, headers = [*shown, "note"], [*headers, "NOTE"]
        _table(rows, shown, headers)
        print(f"threshold {att.threshold(args.threshold):.4f} (same model at or above it)")
    return 1 if any(v.failed for v in pairs) else 0


def cmd_export(args) -> int:
    from . import extractor as ex
    from .attributor import load_extractor
    model = load_extractor(args.extractor)
    weights, config = ex.export(model, args.out_dir)
    kinds = sorted(ex.specialists_of(model))
    carried = f" (with its {' and '.join(kinds)} specialist network{'s' * (len(kinds) > 1)})" if kinds else ""
    print(f"{weights} ({weights.stat().st_size / 1e6:.1f} MB) and {config}: {args.extractor}{carried} as "
          f"safetensors weights and a JSON config; pass the folder as --extractor")
    return 0


def _common(p, extractor=True, fmt=True) -> None:
    if extractor:
        p.add_argument("--extractor", required=True, help=EXTRACTOR_HELP)
        p.add_argument("--device", default="auto")
        p.add_argument("--threads", type=int, help="CPU threads for the extractor (default: torch's, all cores)")
    if fmt:
        p.add_argument("--format", choices=FORMATS, help="output format (default: table on a terminal, csv when piped)")


def _window(p, what: str) -> None:
    p.add_argument("--window", type=int,
                   help=f"{what} (default: the evaluation protocol's, evaluation.window of config.yaml)")


def build_parser():
    """The parser of `modelfp`: gallery (add, list, remove), identify, verify, export."""
    parser, sub = cliutil.new_parser("modelfp", "Which generative model made an image? Galleries of model "
                                                "fingerprints, identify, verify, export.")
    p = sub.add_parser("gallery", help="galleries of model fingerprints")
    gsub = p.add_subparsers(dest="gallery_command", required=True)
    g = gsub.add_parser("add", help="add images of a model, or of one model per sub-folder (builds or extends "
                        "the gallery file)", epilog=EPILOG,
                        usage="modelfp gallery add (NAME IMAGES... | --from-folders ROOT...) --extractor E --gallery G")
    g.add_argument("name", nargs="?", help="the model's name")
    g.add_argument("images", nargs="*", help=IMAGES_HELP)
    g.add_argument("--from-folders", nargs="+", metavar="ROOT",
                   help="folders of folders: each sub-folder of ROOT holds the images of one model, named "
                        "after the sub-folder")
    g.add_argument("--gallery", required=True)
    _window(g, "sliding windows per image side, for a new gallery")
    _common(g)
    g.set_defaults(func=cmd_gallery_add)
    g = gsub.add_parser("list", help="the models of a gallery and their image counts")
    g.add_argument("--gallery", required=True)
    _common(g, extractor=False)
    g.set_defaults(func=cmd_gallery_list)
    g = gsub.add_parser("remove", help="remove models from a gallery")
    g.add_argument("names", nargs="+", metavar="NAME")
    g.add_argument("--gallery", required=True)
    g.set_defaults(func=cmd_gallery_remove)

    p = sub.add_parser("identify", help="the nearest gallery model of each image, or unknown", epilog=EPILOG)
    p.add_argument("images", nargs="+", help=IMAGES_HELP)
    p.add_argument("--gallery", required=True)
    p.add_argument("--threshold", type=float,
                   help="one threshold for every model (below it: unknown); default: each model's own, from the "
                        "extractor's calibrated rule and the model's gallery images")
    p.add_argument("--top-k", type=int, default=1, metavar="K",
                   help="also list the K best models and scores (at most the gallery's models)")
    p.add_argument("--report", metavar="OUT.html",
                   help="also write a self-contained HTML page: thumbnails per model and unknown, a PCA map")
    _common(p)
    p.set_defaults(func=cmd_identify)

    p = sub.add_parser("verify", help="do two images come from the same model? (folders: every pair)",
                       epilog=EPILOG)
    p.add_argument("image_a", help="an image, or a folder or pattern: each of its images is compared")
    p.add_argument("image_b", help="the same, for the other side")
    p.add_argument("--threshold", type=float, help="default: the extractor's verification threshold")
    _window(p, "sliding windows per image side")
    _common(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("export", help="write an extractor as safetensors weights and a JSON config (no pickle)")
    p.add_argument("extractor", help=EXTRACTOR_HELP)
    p.add_argument("out_dir", help="the folder to write model.safetensors and config.json into")
    p.set_defaults(func=cmd_export)
    return parser


def main(argv=None) -> int:
    """`modelfp`: run one command; exit code 0, 1 when some inputs failed, 2 for a usage error or an
    unusable extractor or gallery file (one line on stderr)."""
    return cliutil.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
