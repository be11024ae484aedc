"""`modelfp identify` end to end on a folder of images: images/s, all figures from one run.

Writes N (default 1,000) PNG images of 64x64 to a temporary folder, builds a gallery of a few models
(`gallery add --from-folders`), then times `modelfp identify FOLDER --format csv` in this process
(stdout to /dev/null): reading and decoding the files, the sliding windows, the extractor, the
gallery comparison and the csv. It also times reading alone, so the share of the extractor is
seen. The issue's target: 1,000 images in under a minute on the 2-core CPU with the demo's
extractor.

The extractor is the demo preset's (configs/demo.yaml's extractor and denoiser sizes), untrained
unless --extractor names a file (results/extractors/all/model.pt after `make demo`): an untrained
one costs exactly what a trained one costs. Nothing in results/ is written.

    PYTHONPATH=src python benchmarks/identify_throughput.py [--images 1000] [--size 64]
           [--extractor PATH] [--threads N] [--window 3] [--report]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

from modelfp import denoise
from modelfp import extractor as ex
from modelfp.cli import main as modelfp
from modelfp.pools import list_images, load_image

# configs/demo.yaml: extractor and denoiser sizes (read, not copied: the demo's choice may change)
_PRESET = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "demo.yaml").read_text())
DEMO = {k: _PRESET["extractor"][k] for k in ("backbone", "stem", "transform", "normalize", "pooling", "image_size")
        if k in _PRESET["extractor"]}
DEMO_DENOISER = {k: _PRESET["denoiser"][k] for k in ("depth", "features")}
GALLERY_MODELS, GALLERY_IMAGES = 5, 10


def demo_extractor() -> ex.Extractor:
    """The demo preset's extractor and denoiser sizes, untrained (costs what a trained one costs)."""
    return ex.build(denoise.DnCNN(**DEMO_DENOISER), ex.ExtractorConfig(**DEMO), ["a", "b"], seed=0)


def _images(folder: Path, n: int, size: int, seed: int, models: int) -> None:
    """n PNGs of noise plus one of `models` periodic traces, in folder/<model>/ sub-folders."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size]
    for i in range(n):
        m = i % models
        trace = ((x * (m + 1) + y * m) % (m + 2) == 0) * 50
        img = (rng.integers(40, 180, (size, size, 3)) + trace[..., None]).clip(0, 255).astype(np.uint8)
        path = folder / f"model{m}" / f"{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path)


def _run(argv: list[str]) -> tuple[int, float]:
    t0 = time.perf_counter()
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null), contextlib.redirect_stderr(null):
        code = modelfp(argv)
    return code, time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--size", type=int, default=64, help="image side, pixels")
    ap.add_argument("--extractor", help="an extractor file or exported folder (default: an untrained demo-sized one)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--window", type=int, default=3, help="sliding windows per side of the gallery (default 3)")
    ap.add_argument("--report", action="store_true", help="also time --report (thumbnails, PCA map, HTML)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        extractor = args.extractor
        if extractor is None:
            model = demo_extractor()
            model.threshold = model.openset_threshold = 0.5
            extractor = str(tmp / "model.pt")
            ex.save(model, extractor)
        _images(tmp / "known", GALLERY_MODELS * GALLERY_IMAGES, args.size, 0, GALLERY_MODELS)
        _images(tmp / "queries", args.images, args.size, 1, GALLERY_MODELS)
        common = ["--extractor", extractor, "--gallery", str(tmp / "g.gallery"), "--format", "csv"]
        code, add_s = _run(["gallery", "add", "--from-folders", str(tmp / "known"), "--window", str(args.window),
                            *common])
        assert code == 0, "gallery add failed"
        t0 = time.perf_counter()
        for path in list_images(tmp / "queries"):
            load_image(path, None)
        read_s = time.perf_counter() - t0
        code, identify_s = _run(["identify", str(tmp / "queries"), *common, "--top-k", "3"])
        assert code == 0, "identify failed"
        report_s = None
        if args.report:
            code, report_s = _run(["identify", str(tmp / "queries"), *common, "--report", str(tmp / "r.html")])
            report_mb = (tmp / "r.html").stat().st_size / 1e6
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; extractor "
          f"{args.extractor or 'demo-sized (untrained)'}; {args.window}x{args.window} windows per image")
    print(f"gallery add: {GALLERY_MODELS * GALLERY_IMAGES} images in {add_s:.1f} s")
    print(f"identify: {args.images} images of {args.size}x{args.size} in {identify_s:.1f} s = "
          f"{args.images / identify_s:.1f} images/s (reading the files alone: {read_s:.1f} s, "
          f"{read_s / identify_s:.0%})")
    if report_s is not None:
        print(f"identify --report: {report_s:.1f} s = {args.images / report_s:.1f} images/s "
              f"({report_s / identify_s:.2f}x identify), the page {report_mb:.1f} MB")
    print(f"target: 1,000 images in under 60 s -> {1000 / (args.images / identify_s):.0f} s at this rate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
