"""What a workflow job pays before it works: the imports of a verb's modules, beside torch's own.

Every job of the workflow is a fresh `python -m modelfp.steps <verb>`; the smoke preset runs about
160 of them, most working for well under a second. This measures, in fresh interpreters, the wall
time of importing what each kind of job needs, as a ratio to `import torch` (which every job but the
table verbs pays anyway), so that a module that drags scikit-learn or torchvision into every job
shows up as a ratio well above 1 (and the people's `modelfp`, whose parser must stay as cheap).

    python benchmarks/verb_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

# what a job of each kind imports before it reads its first file
JOBS = {
    "torch alone": "import torch",
    "parser (every verb)": "import modelfp.steps as s; s.build_parser()",
    "people's parser (modelfp)": "import modelfp.cli as c; c.build_parser()",
    "embed / train-extractor": "import modelfp.steps as s; s.build_parser(); import modelfp.extractor, modelfp.baselines",
    "evaluate": "import modelfp.steps as s; s.build_parser(); import modelfp.evaluate, sklearn.metrics",
    "train-baseline abady": "import modelfp.steps as s; s.build_parser(); import modelfp.baselines as b; b.baseline('abady')",
}


def seconds(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="fresh interpreters per job kind (median)")
    args = ap.parse_args()
    seconds("import torch")                       # warm the file cache once
    medians = {}
    for _ in range(args.repeat):                  # interleaved: machine noise hits every kind alike
        for name, code in JOBS.items():
            medians.setdefault(name, []).append(seconds(code))
    base = statistics.median(medians["torch alone"])
    print(f"{'job kind':28s} {'seconds':>8s} {'x torch':>8s}")
    for name, times in medians.items():
        m = statistics.median(times)
        print(f"{name:28s} {m:8.2f} {m / base:8.2f}")


if __name__ == "__main__":
    main()
