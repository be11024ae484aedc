"""Stage pools: `pool` builds an image pool (a folder of photos, or the embedded photos) as
results/pools/{pool}/ (manifest.json and train/val shards; modelfp.pools)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def cmd_pool(args):
    from .. import pools
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


def register(sub) -> None:
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
