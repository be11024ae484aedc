"""Which extractor input and pooling work at demo scale? Train a few settings for the same budget and
print zero-shot identification / verification on a finished run's VALIDATION generators (never the
test bed: settings are chosen on validation, README "The validation set"), beside the two controls.

Needs a finished demo (or any) run: its synthetic zoo, pools, denoiser and validation images
(`snakemake validation`); only each image's evaluation side (modelfp.splits) is used.

    python benchmarks/extractor_choices.py --results results --steps 300 \\
        --setting log1p:flatten --setting log1p:avg --setting abs:flatten

Each setting is transform:pooling (transform: abs | log1p | log; pooling: avg | flatten); all use
the demo's small_cnn, per-position input normalisation, P x K = 16 x 4, AdamW lr 3e-3. Prints one
line per setting: identification accuracy and verification accuracy on all test models, the
training seconds, and the same for the network at initialisation and for the training-free
reference (the input spectrum itself). Ratios come from one run on one machine.
"""

from __future__ import annotations

import argparse
import glob
import time
from pathlib import Path

import torch

from modelfp import denoise, evaluate, splits
from modelfp import extractor as ex
from modelfp.feed import SyntheticZoo
from modelfp.pools import load_image, read_pool
from modelfp.synthetic import fit_to_size


def validation_set(results: Path, models: list[str] | None, train_fraction: float):
    folders = sorted(p.parent.parent for p in results.glob("validation/*/images/00000.png"))
    if models:
        folders = [f for f in folders if f.name in models]
    return {f.name: [load_image(p, None) for p in
                     splits.folder_side(f / "images", train_fraction, splits.EVAL)[0]]
            for f in folders}


def scores(model, bed, window):
    emb, labels = [], []
    for name, images in bed.items():
        emb.append(ex.embed(model, images, window))
        labels += [name] * len(images)
    emb = torch.cat(emb).numpy()
    ident = evaluate.identification(emb, labels, 10, seed=0)["accuracy"]
    verif = evaluate.verification(emb, labels, 1000, 1000, seed=0)["accuracy"]
    return 100 * ident, 100 * verif


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="results")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--setting", action="append", default=None)
    p.add_argument("--models", nargs="*", help="validation models to use (default: every folder)")
    p.add_argument("--train-fraction", type=float, default=0.5,
                   help="the run's evaluation.train_fraction (images on the training side are left out)")
    p.add_argument("--window", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results = Path(args.results)
    zoo = SyntheticZoo.from_files(sorted(glob.glob(str(results / "synthetic/K[12]-*/seed*.pt"))))
    pool = torch.cat([fit_to_size(read_pool(d), 32) for d in sorted(results.glob("pools/*")) if d.is_dir()])
    den = denoise.load(results / "denoiser/dncnn.pt")
    bed = validation_set(results, args.models, args.train_fraction)
    print(f"{len(zoo)} synthetic models, {len(pool)} pool images, {len(bed)} test models")
    source = ex.ZooSource(zoo, pool, "cpu")
    for setting in args.setting or ["log1p:flatten", "log1p:avg", "abs:flatten"]:
        transform, pooling = setting.split(":")
        cfg = ex.ExtractorConfig(backbone="small_cnn", transform=transform, normalize=True, pooling=pooling,
                                 image_size=32)
        model = ex.build(den, cfg, source.classes, seed=0)
        gen = torch.Generator().manual_seed(2)
        model.front.fit_statistics(source(torch.randint(len(zoo), (ex.STATS_IMAGES,), generator=gen), gen))
        random_scores = scores(model, bed, args.window)
        ref = ex.build(den, ex.ExtractorConfig(**{**cfg.__dict__, "backbone": "none"}), source.classes, seed=0)
        ref.front.load_state_dict(model.front.state_dict())
        ref_scores = scores(ref, bed, args.window)
        start = time.perf_counter()
        ex.train(model, source, ex.TrainConfig(epochs=max(1, args.steps // 50), steps_per_epoch=50, p=16, k=4,
                                               lr=3e-3, warmup_steps=20), "cpu")
        seconds = time.perf_counter() - start
        trained = scores(model, bed, args.window)
        print(f"{setting:16s} trained: identification {trained[0]:5.1f}%  verification {trained[1]:5.1f}%  "
              f"({seconds:.0f} s) | random init {random_scores[0]:5.1f}% / {random_scores[1]:5.1f}% | "
              f"reference {ref_scores[0]:5.1f}% / {ref_scores[1]:5.1f}%  -> trained/reference "
              f"identification ratio {trained[0] / ref_scores[0]:.3f}")


if __name__ == "__main__":
    main()
