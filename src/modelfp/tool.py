"""The command line for people: `modelfp gallery add`, `modelfp identify`, `modelfp verify`.

Thin verbs over `modelfp.attributor.Attributor`. Output on stdout, one tab-separated line per input
image, in order; an image that cannot be used is the line `path<TAB>error: <what is wrong>; <what
to do>` and the other images are still answered. Exit code: 0 when every input was answered, 1
when some inputs failed, 2 for usage errors and unusable extractor or gallery files (one line on
stderr, from `cli.main`).
"""

from __future__ import annotations

from .cli import _device

# The attributor (torch, torchvision) is imported by the verbs, not here: building the parser of
# `python -m modelfp` must stay cheap for the workflow's verbs (measured: +2.4 s per process).


def _attributor(args, **kw):
    from .attributor import Attributor
    if getattr(args, "window", None) is not None:
        kw["windows"] = args.window
    return Attributor(args.extractor, _device(args.device), **kw)


IMAGES_HELP = "image files or folders (searched recursively)"
EPILOG = ("Prints one tab-separated line per image; an image that cannot be used prints "
          "'PATH<TAB>error: what is wrong; what to do' and the others are still answered. Exit code: "
          "0 all answered, 1 some images failed, 2 usage error or unusable extractor/gallery file.")


def _print_failed(records) -> None:
    for record in records:
        print(f"{record.path}\terror: {record.error}")


def cmd_gallery_add(args) -> int:
    att = _attributor(args)
    update = att.gallery_add(args.gallery, args.name, args.images)
    _print_failed(update.failed)
    if update.added:
        print(f"{update.name}: {update.count} images in {update.path} ({update.models} models)")
    else:
        print(f"{update.name}: no image added; {update.path} left as it was")
    return 1 if update.failed else 0


def cmd_identify(args) -> int:
    att = _attributor(args)
    records = att.identify(args.images, args.gallery, args.threshold)
    for r in records:
        if r.error:
            _print_failed([r])
        else:
            print(f"{r.path}\t{r.model}\t{r.score:.4f}\t(nearest: {r.nearest}, threshold {r.threshold:.4f})")
    return 1 if any(r.error for r in records) else 0


def cmd_verify(args) -> int:
    att = _attributor(args)
    v = att.verify(args.image_a, args.image_b, args.threshold)
    if v.failed:
        _print_failed(v.failed)
        return 1
    verdict = "same model" if v.same else "different models"
    print(f"{verdict}\tscore {v.score:.4f}\tthreshold {v.threshold:.4f}")
    return 0


def add_commands(sub) -> None:
    """Register gallery / identify / verify on the `modelfp` sub-parsers `sub`."""
    p = sub.add_parser("gallery", help="galleries of model fingerprints")
    gsub = p.add_subparsers(dest="gallery_command", required=True)
    g = gsub.add_parser("add", help="add images of a model (builds or extends the gallery file)",
                       epilog=EPILOG)
    g.add_argument("name")
    g.add_argument("images", nargs="+", help=IMAGES_HELP)
    g.add_argument("--extractor", required=True)
    g.add_argument("--gallery", required=True)
    g.add_argument("--window", type=int,
                   help="sliding windows per image side, for a new gallery (default: attributor.WINDOWS, 3)")
    g.add_argument("--device", default="auto")
    g.set_defaults(func=cmd_gallery_add)

    p = sub.add_parser("identify", help="the nearest gallery model of each image, or unknown", epilog=EPILOG)
    p.add_argument("images", nargs="+", help=IMAGES_HELP)
    p.add_argument("--extractor", required=True)
    p.add_argument("--gallery", required=True)
    p.add_argument("--threshold", type=float, help="default: the extractor's open-set threshold (below it: unknown)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_identify)

    p = sub.add_parser("verify", help="do two images come from the same model?", epilog=EPILOG)
    p.add_argument("image_a")
    p.add_argument("image_b")
    p.add_argument("--extractor", required=True)
    p.add_argument("--threshold", type=float, help="default: the extractor's verification threshold")
    p.add_argument("--window", type=int,
                   help="sliding windows per image side (default: attributor.WINDOWS, 3)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_verify)
