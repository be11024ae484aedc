"""Synthetic-model training throughput on the present device, all figures from one run.

Prints, per architecture family: FLOPs of one training step, models per hour when M seeds train
one after the other ("loop") and together in one grouped net ("grouped"), and the achieved FLOP/s.
On CPU it also compares memory formats and 1 process x 2 threads against 2 processes x 1 thread.
The last line is the ratio that decides the trainer's path: chosen (auto) path / loop.

    python benchmarks/synth_throughput.py [--device auto] [--seeds 4] [--steps 30] [--size 32]
                                          [--batch-size 8] [--threads N]
    # on a GPU, the paper's setting and the projection of its 5,760-model zoo:
    PYTHONPATH=src python3 benchmarks/synth_throughput.py --seeds 20 --size 128 --batch-size 16
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import torch

from device_peak import peak_flops, share
from modelfp.archspace import parse
from modelfp.synthetic import TrainConfig, resolve_path, train_architecture, training_flops

FAMILIES = [  # one representative per (K, L, U): the options that set the cost of a step
    "K1-L1-Spost-Unearest-Arelu-Nbn", "K1-L2-Spost-Ubilinear-Arelu-Nbn",
    "K1-L1-Spost-Utransposed-Arelu-Nbn", "K2-L1-Spost-Unearest-Arelu-Nbn",
    "K2-L2-Spost-Ubilinear-Arelu-Nbn", "K2-L2-Spost-Utransposed-Arelu-Nbn",
]


def _pool(n, size):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)


def _time(arch, seeds, cfg, device, path, channels_last=None, threads=None):
    if threads:
        torch.set_num_threads(threads)
    pool, val = _pool(256, cfg.image_size), _pool(16, cfg.image_size)
    warm = TrainConfig(**{**cfg.__dict__, "max_steps": 2})
    train_architecture(arch, seeds[:1], pool, val, warm, path=path, device=device,
                       channels_last=channels_last)           # warm-up: kernel selection, caches
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    train_architecture(arch, seeds, pool, val, cfg, path=path, device=device,
                       channels_last=channels_last)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def _worker(args):
    arch_id, seeds, cfg, path = args
    return _time(parse(arch_id), seeds, cfg, torch.device("cpu"), path, threads=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seeds", type=int, default=4, help="models per architecture (M)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--zoo-models", type=int, default=5760, help="models of the projected zoo (288 x 20)")
    parser.add_argument("--zoo-steps", type=int, default=2000, help="steps per model of the projection")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else "cpu" if args.device == "auto" else args.device)
    cfg = TrainConfig(image_size=args.size, batch_size=args.batch_size, max_steps=args.steps,
                      check_every=args.steps, eta=0.0, val_images=8)
    seeds = list(range(args.seeds))
    chosen = resolve_path("auto", device, args.size)
    print(f"device {device}, threads {torch.get_num_threads()}, M={args.seeds} seeds, "
          f"{args.steps} steps, batch {args.batch_size}, {args.size}x{args.size}; auto path: {chosen}")
    peak = peak_flops(device)
    print(f"{'family':34s} {'GFLOP/step':>10s} {'loop mod/h':>11s} {'grouped mod/h':>14s} "
          f"{'grouped/loop':>12s} {'GFLOP/s':>8s} {'% peak':>7s}")
    totals = {"loop": 0.0, "grouped": 0.0}
    for arch_id in FAMILIES:
        arch = parse(arch_id)
        flops = training_flops(arch, args.size, args.batch_size)
        t = {p: _time(arch, seeds, cfg, device, p) for p in ("loop", "grouped")}
        for p in t:
            totals[p] += t[p]
        best = min(t.values())
        print(f"{arch_id:34s} {flops / 1e9:10.3f} {3600 * len(seeds) / t['loop']:11.0f} "
              f"{3600 * len(seeds) / t['grouped']:14.0f} {t['loop'] / t['grouped']:12.2f} "
              f"{flops * args.steps * len(seeds) / best / 1e9:8.1f} "
              f"{share(flops * args.steps * len(seeds) / best, peak):>7s}")
    if device.type == "cpu":
        arch = parse(FAMILIES[4])
        nchw = _time(arch, seeds, cfg, device, "loop", channels_last=False)
        nhwc = _time(arch, seeds, cfg, device, "loop", channels_last=True)
        print(f"CPU memory format ({FAMILIES[4]}, loop): channels_last is {nchw / nhwc:.2f}x "
              f"contiguous")
        threads = torch.get_num_threads()
        if threads >= 2:
            one = _time(arch, seeds, cfg, device, "loop", threads=2)
            with mp.get_context("spawn").Pool(2) as pool:
                # each worker times its own training (after its warm-up), so process start-up,
                # which a Snakemake job pays either way, is not counted; they overlap in time
                times = pool.map(_worker, [(arch.id, seeds, cfg, "loop")] * 2)
            two = max(times) / 2                           # per architecture, two at a time
            torch.set_num_threads(threads)
            print(f"CPU parallelism ({FAMILIES[4]}): 2 jobs x 1 thread is {one / two:.2f}x "
                  f"1 job x 2 threads")
    print(f"grouped / loop speed over all families: {totals['loop'] / totals['grouped']:.2f}x")
    print(f"chosen path ({chosen}) / loop: {totals['loop'] / totals[chosen]:.2f}x")
    # the families stand for the zoo's architectures equally: seconds per model at these steps,
    # scaled to the paper's zoo (288 x 20 = 5,760 models) at max_steps (2,000: the floor may stop earlier)
    per_model = totals[chosen] / (len(FAMILIES) * len(seeds)) * (args.zoo_steps / args.steps)
    print(f"projected {args.zoo_models} models x {args.zoo_steps} steps at {args.size}x{args.size}, "
          f"batch {args.batch_size}, {chosen} path: {per_model * args.zoo_models / 3600:.1f} device-hours "
          f"(paper: 133 GPU-hours on an RTX 3090)")


if __name__ == "__main__":
    main()
