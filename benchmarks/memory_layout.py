"""Why `modelfp.extractor.embed` runs the network in the channels-last memory layout: the network's
windows/s in PyTorch's default (NCHW) layout and in channels-last (NHWC), interleaved in one run,
their ratio, and the largest difference of the features (float rounding only).

The extractor is a file (results/extractors/all/model.pt after `make demo`, the default when it
exists) or, without one, the demo preset's sizes untrained (configs/demo.yaml, as
benchmarks/identify_throughput.py builds it): an untrained network costs what a trained one costs.
The windows are uniform noise of the extractor's window size. Nothing in results/ is written.

    PYTHONPATH=src python benchmarks/memory_layout.py [--extractor PATH] [--windows 576] [--reps 5]
           [--threads N] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch

from identify_throughput import demo_extractor
from modelfp import extractor as ex


def timed(model, batches, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for x in batches:
        model.features(x)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--extractor", default=None,
                    help="an extractor file (default: results/extractors/all/model.pt if present, else untrained demo sizes)")
    ap.add_argument("--windows", type=int, default=576, help="windows per repetition (576: 8 images of 3 x 3 windows in 8 views)")
    ap.add_argument("--batch", type=int, default=64, help="windows per network call (embed's batch_size)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    path = args.extractor or ("results/extractors/all/model.pt" if Path("results/extractors/all/model.pt").exists() else None)
    model = (ex.load(path) if path else demo_extractor()).to(device).eval()      # identify_throughput's
    size = model.cfg.image_size
    x = torch.rand(args.windows, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    plain = [x[i:i + args.batch].to(device) for i in range(0, len(x), args.batch)]
    last = [b.contiguous(memory_format=torch.channels_last) for b in plain]
    model_last = copy.deepcopy(model).to(memory_format=torch.channels_last)
    times = {"default": 0.0, "channels_last": 0.0}
    with torch.no_grad():
        timed(model, plain[:1], device)                                             # warm-up
        timed(model_last, last[:1], device)
        for _ in range(args.reps):                                                  # interleaved
            times["default"] += timed(model, plain, device)
            times["channels_last"] += timed(model_last, last, device)
        diff = max(float((model.features(a) - model_last.features(b)).abs().max()) for a, b in zip(plain, last))
        scale = max(float(model.features(a).abs().max()) for a in plain)
    n = args.windows * args.reps
    print(f"{path or 'untrained demo-sized extractor'} ({model.cfg.backbone}, {size} px windows) on {device}, "
          f"{torch.get_num_threads()} threads, {n:,} windows per layout")
    for name, seconds in times.items():
        print(f"  {name:14s} {n / seconds:8.0f} windows/s")
    print(f"  channels_last / default: {times['default'] / times['channels_last']:.2f}x; largest feature "
          f"difference {diff:.2e} (features up to {scale:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
