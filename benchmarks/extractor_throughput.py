"""Fingerprint-extractor throughput on the present device, all figures from one run.

For the paper-scale extractor (ResNet-50 on 128x128 residual spectra, P x K batches) and the demo's
(small_cnn on 32x32), prints training images/s (the whole step: synthetic zoo feed on the device,
I_k = M_k(I_real), 8-bit rounding, denoiser residual, FFT, backbone forward and backward, AdamW)
and embedding images/s (one window per image), the achieved FLOP/s (denoiser forward + backbone
forward and backward) beside the
device's peak where it is known, and the ratios demo/paper. Nothing is read from results/: the
zoo is untrained synthetic models of a few architectures and the pool is uniform noise, which
costs exactly what trained ones cost.

    PYTHONPATH=src python benchmarks/extractor_throughput.py [--device auto] [--steps 5]
           [--paper-batch 200] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import torch

from device_peak import peak_flops, share
from modelfp import denoise
from modelfp import extractor as ex
from modelfp.archspace import space
from modelfp.feed import SyntheticZoo
from modelfp.synthetic import SyntheticNet, forward_flops


SETTINGS = {  # name: the extractor options of that preset
    "paper": dict(backbone="resnet50", transform="abs", normalize=False, pooling="avg", image_size=128),
    "demo": dict(backbone="small_cnn", transform="log1p", normalize=True, pooling="flatten", image_size=32),
}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(name: str, device, steps: int, batch: int, n_models: int) -> dict:
    opts = SETTINGS[name]
    size = opts["image_size"]
    cfg = ex.ExtractorConfig(**opts)
    archs = space()[:: max(1, len(space()) // 8)][:8]            # 8 architectures of the space
    models = []
    for i in range(n_models):
        torch.manual_seed(i)
        models.append(SyntheticNet(archs[i % len(archs)]))
    zoo = SyntheticZoo(models, device=device)
    pool = torch.randint(0, 256, (512, 3, size, size), dtype=torch.uint8)
    source = ex.ZooSource(zoo, pool, device)
    den = denoise.DnCNN(depth=17 if name == "paper" else 8, features=64 if name == "paper" else 32)
    model = ex.build(den, cfg, source.classes, seed=0).to(device)
    k = 4
    p = max(2, batch // k)
    tcfg = ex.TrainConfig(epochs=1, steps_per_epoch=1, p=p, k=k, lr=1e-4, warmup_steps=1)
    ex.train(model, source, tcfg, device)                        # warm-up: kernel selection, caches
    tcfg = ex.TrainConfig(epochs=1, steps_per_epoch=steps, p=p, k=k, lr=1e-4, warmup_steps=1)
    _sync(device)
    t0 = time.perf_counter()
    ex.train(model, source, tcfg, device)
    _sync(device)
    train_ips = steps * p * k / (time.perf_counter() - t0)

    images = [torch.randint(0, 256, (3, size, size), dtype=torch.uint8) for _ in range(p * k * 2)]
    ex.embed(model, images[:8], 1)
    _sync(device)
    t0 = time.perf_counter()
    ex.embed(model, images, 1)
    _sync(device)
    embed_ips = len(images) / (time.perf_counter() - t0)
    # the frozen denoiser runs forward only; the backbone forward and backward (~3x forward)
    x = torch.zeros(1, 3, size, size, device=device)
    den_flops = forward_flops(model.front.denoiser.eval(), x)
    net_flops = forward_flops(model.backbone.eval(), x)
    return dict(name=name, batch=p * k, train_ips=train_ips, embed_ips=embed_ips,
                train_flops=(den_flops + 3 * net_flops) * train_ips,
                embed_flops=(den_flops + net_flops) * embed_ips,
                gflop_image=(den_flops + 3 * net_flops) / 1e9)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--paper-batch", type=int, default=200, help="P x K of the paper (200)")
    ap.add_argument("--demo-batch", type=int, default=64, help="P x K of the demo preset (16 x 4)")
    ap.add_argument("--models", type=int, default=64, help="synthetic models in the feed")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    peak = peak_flops(device)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"peak {'%.1f TFLOP/s' % (peak / 1e12) if peak else 'unknown'}")
    rows = [measure("paper", device, args.steps, args.paper_batch, args.models),
            measure("demo", device, args.steps, args.demo_batch, args.models)]
    print(f"{'setting':8} {'batch':>5} {'train img/s':>12} {'embed img/s':>12} "
          f"{'GFLOP/img':>9} {'train TFLOP/s':>14} {'embed TFLOP/s':>14} {'train % peak':>12}")
    for r in rows:
        print(f"{r['name']:8} {r['batch']:>5} {r['train_ips']:>12.1f} {r['embed_ips']:>12.1f} "
              f"{r['gflop_image']:>9.2f} {r['train_flops'] / 1e12:>14.3f} {r['embed_flops'] / 1e12:>14.3f} {share(r['train_flops'], peak):>12}")
    paper, demo = rows
    print(f"ratio demo/paper: training {demo['train_ips'] / paper['train_ips']:.1f}x, "
          f"embedding {demo['embed_ips'] / paper['embed_ips']:.1f}x images/s")


if __name__ == "__main__":
    main()
