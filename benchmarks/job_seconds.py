"""Where a finished run's minutes went: job-seconds per rule from results/benchmarks/, and the
synthetic zoo's share that is not training (process start-up, imports, pool loading, saving).

    python benchmarks/job_seconds.py [--results results]

Each rule writes `results/benchmarks/<stage>/<job>.tsv` (Snakemake's `benchmark:`; column `s` is
the job's wall seconds). The zoo's training seconds come from its checkpoints: each records the
seconds its model trained (`result.train_seconds`, the model's share of its architecture's loop).
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path


def job_seconds(results: Path) -> dict[str, tuple[int, float]]:
    """stage folder -> (jobs, summed wall seconds)."""
    out = defaultdict(lambda: [0, 0.0])
    for tsv in sorted((results / "benchmarks").glob("*/*.tsv")):
        with open(tsv) as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        for row in rows:
            out[tsv.parent.name][0] += 1
            out[tsv.parent.name][1] += float(row["s"])
    return {k: (n, s) for k, (n, s) in out.items()}


def zoo_training_seconds(results: Path) -> float:
    from modelfp import checkpoints, synthetic
    return sum(checkpoints.load(p, synthetic.FORMAT, "synthetic-model checkpoint")["result"]["train_seconds"]
               for p in (results / "synthetic").glob("*/seed*.pt"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=Path("results"))
    args = ap.parse_args(argv)
    stages = job_seconds(args.results)
    total = sum(s for _, s in stages.values())
    print(f"{'stage (results/benchmarks/)':28} {'jobs':>5} {'job-seconds':>12} {'share':>6}")
    for name, (n, s) in sorted(stages.items(), key=lambda kv: -kv[1][1]):
        print(f"{name:28} {n:>5} {s:>12.0f} {100 * s / total:>5.1f}%")
    print(f"{'total':28} {sum(n for n, _ in stages.values()):>5} {total:>12.0f}")
    if "synthesize" in stages:
        slices = list((args.results / "benchmarks" / "synthesize").glob("*.tsv"))
        zoo = sum(float(next(csv.DictReader(open(p), delimiter="\t"))["s"]) for p in slices)
        train = zoo_training_seconds(args.results)
        print(f"zoo: {len(slices)} jobs, {zoo:.0f} job-seconds, {train:.0f} s training "
              f"-> {100 * (1 - train / zoo):.1f}% not training (start-up, imports, pools, saving)")


if __name__ == "__main__":
    main()
