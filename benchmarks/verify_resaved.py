"""Does `verify` answer right when one image of a pair was re-saved? (issue 25). Pairs of a re-saved
query (JPEG 95 or 90, grayscale: real files, as `benchmarks/robustness.py` writes them) and a clean
image, each pair judged as `modelfp verify` judges it (the clean side re-saved the same way in
memory, a JPEG pair compared with its luminance): by the threshold the extractor file gives that
pair (since calibrate fits them, each re-save's own: `modelfp.resaved`) beside the clean images'
verification threshold on the very same scores, which judged every pair before.

For each model of the bed, from its evaluation side only, a seeded choice (`robustness.choose`) of
--images clean images and --images other images as queries; every query against every clean image
(same-model and different-model pairs). Printed per condition: the pairs, the threshold, the share
of same-model pairs called "same", of different-model pairs called "different", their mean
(balanced accuracy), under the file's threshold and under the clean one, and McNemar's exact test
of the two on the same pairs (pairs share images, so the p-value is indicative, not exact).

    python benchmarks/verify_resaved.py --results results --extractor results/extractors/all/model.pt
    python benchmarks/verify_resaved.py ... --bed testbed     # the test bed: ONCE, after every choice
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from modelfp.paired import mcnemar

IMAGES = 10              # clean images and queries per model


def _robustness():
    spec = importlib.util.spec_from_file_location("robustness_benchmark", Path(__file__).with_name("robustness.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def judged(att, chosen: dict, root: Path, condition: str) -> dict:
    """One condition's pairs: per pair whether it is a same-model pair, its score and the threshold
    `Attributor.verify_pairs` judged it by (arrays), and the clean verification threshold."""
    clean = {str(p): model for model, (gallery, _) in chosen.items() for p in gallery}
    pairs = att.verify_pairs([str(root / condition)], list(clean))
    failed = [p for p in pairs if p.failed]
    if failed:
        raise SystemExit(f"{condition}: {failed[0].error}")
    query_model = [Path(p.a).relative_to(root / condition).parts[0] for p in pairs]
    return {"same": np.array([m == clean[p.b] for m, p in zip(query_model, pairs)]),
            "score": np.array([p.score for p in pairs]), "threshold": np.array([p.threshold for p in pairs]),
            "clean_threshold": att.threshold()}


def summary(got: dict, condition: str) -> dict:
    """Rates under the file's thresholds and under the clean one, and McNemar of the two (pairs)."""
    same, score = got["same"], got["score"]
    right = (score >= got["threshold"]) == same
    right_clean = (score >= got["clean_threshold"]) == same
    rates = lambda r: (float(r[same].mean()), float(r[~same].mean()))
    (s, d), (s0, d0) = rates(right), rates(right_clean)
    test = mcnemar(right_clean, right)
    return {"condition": condition, "same_pairs": int(same.sum()), "different_pairs": int((~same).sum()),
            "threshold": float(np.unique(got["threshold"])[0]) if len(np.unique(got["threshold"])) == 1 else None,
            "same_called_same": s, "different_called_different": d, "balanced": (s + d) / 2,
            "clean_threshold": got["clean_threshold"], "clean_same_called_same": s0,
            "clean_different_called_different": d0, "clean_balanced": (s0 + d0) / 2,
            "only_clean_right": test["b"], "only_this_right": test["c"], "mcnemar_p": test["p"]}


def table(rows: list[dict]) -> str:
    pct = lambda x: f"{100 * x:.1f} %"
    head = ("condition", "pairs (same / different)", "threshold", "same called same", "different called different",
            "balanced", "clean threshold: same", "different", "balanced", "McNemar p")
    body = [(r["condition"], f"{r['same_pairs']:,} / {r['different_pairs']:,}",
             "mixed" if r["threshold"] is None else f"{r['threshold']:.4f}", pct(r["same_called_same"]),
             pct(r["different_called_different"]), pct(r["balanced"]), pct(r["clean_same_called_same"]),
             pct(r["clean_different_called_different"]), pct(r["clean_balanced"]),
             f"{r['mcnemar_p']:.3g}" if r["mcnemar_p"] > 0 else "<1e-300")
            for r in rows]
    widths = [max(len(x[i]) for x in (head, *body)) for i in range(len(head))]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(head), *map(fmt, body)])


def main(argv=None) -> int:
    robustness = _robustness()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results", help="a finished run's results folder")
    p.add_argument("--extractor", default="results/extractors/all/model.pt", help="a calibrated extractor file")
    p.add_argument("--bed", choices=robustness.BEDS, default="validation",
                   help="validation generators (choose here), or the test bed (once, after the choice)")
    p.add_argument("--conditions", nargs="+", choices=list(robustness.RESAVES), default=["clean", "jpeg95",
                                                                                          "jpeg90", "gray"])
    p.add_argument("--images", type=int, default=IMAGES, help="clean images and queries per model")
    p.add_argument("--train-fraction", type=float, default=0.5, help="the run's evaluation.train_fraction")
    p.add_argument("--seed", type=int, default=0, help="the choice of images")
    p.add_argument("--out", help="write the numbers as csv here")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, help="torch threads (e.g. 1 on a shared machine)")
    args = p.parse_args(argv)

    import torch

    from modelfp.attributor import Attributor
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    att = Attributor(args.extractor, args.device)
    if att.model.threshold is None:
        raise SystemExit(f"{args.extractor}: not calibrated (no verification threshold); use a model.pt")
    folders = robustness.model_folders(args.results, args.bed)
    chosen = robustness.choose(folders, args.train_fraction, args.images, args.images, args.seed)
    with tempfile.TemporaryDirectory(prefix="modelfp-verify-") as tmp:
        root = Path(tmp)
        robustness.write_conditions(chosen, folders, args.conditions, root)
        rows = [summary(judged(att, chosen, root, c), c) for c in args.conditions]
    print(f"verify on {len(folders)} models ({args.bed}), {args.images} clean images and {args.images} queries a "
          f"model, every query against every clean image; {args.extractor}; {time.perf_counter() - t0:.0f} s")
    print(table(rows))
    if args.out:
        with open(args.out, "w", newline="") as f:
            writer = csv.DictWriter(f, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
