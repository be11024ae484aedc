"""What every snakemake start pays for the plan of the run: importing it, and parsing the Snakefile.

Snakemake parses the Snakefile (and so builds and checks modelfp.plan.Plan) at every start: a dry
run, a `--list-rules`, each cluster submission's bookkeeping. This times, in fresh processes, the
import of modelfp.plan beside `import torch` (what the start-up checks paid while they imported the
test-bed and baseline registries' modules), and `snakemake --list-rules` (parse only) and
`snakemake -n` (parse and the whole smoke DAG) in a copy of the workflow, beside `snakemake
--version` (snakemake's own start). With --against REF the same two snakemake runs are timed on the
workflow files of git revision REF (with today's package), and the ratios now / REF are printed, of
the whole run and of what it takes beyond snakemake's own start.

    python benchmarks/plan_startup.py [--repeat 3] [--against HEAD]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ("Snakefile", "config.yaml", "configs", "workflow", "envs", "profiles")
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SMOKE = ["--configfile", "configs/smoke.yaml"]


def seconds(cmd: list[str], cwd=None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def copy_workflow(dest: Path, ref: str | None) -> Path:
    """The workflow files, as they are now or at git revision `ref`, in `dest`."""
    dest.mkdir(parents=True)
    if ref is None:
        for name in WORKFLOW_FILES:
            (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, dest / name)
    else:
        archive = subprocess.run(["git", "archive", ref, *WORKFLOW_FILES], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="fresh processes per measurement (median)")
    ap.add_argument("--against", metavar="REF", help="also time the workflow files of this git revision")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        now = copy_workflow(Path(tmp) / "now", None)
        runs = {
            "import torch": ([sys.executable, "-c", "import torch"], None),
            "import modelfp.plan": ([sys.executable, "-c", "import modelfp.plan"], None),
            "snakemake --version": ([SNAKEMAKE, "--version"], None),
            "snakemake --list-rules (smoke)": ([SNAKEMAKE, "--list-rules", *SMOKE], now),
            "snakemake -n (smoke)": ([SNAKEMAKE, "-n", "--cores", "1", *SMOKE], now),
        }
        if args.against:
            then = copy_workflow(Path(tmp) / "then", args.against)
            runs[f"snakemake --list-rules (smoke) at {args.against}"] = ([SNAKEMAKE, "--list-rules", *SMOKE], then)
            runs[f"snakemake -n (smoke) at {args.against}"] = ([SNAKEMAKE, "-n", "--cores", "1", *SMOKE], then)
        seconds([sys.executable, "-c", "import torch"])     # warm the file cache once
        times = {}
        for _ in range(args.repeat):            # interleaved: machine noise hits every row alike
            for name, (cmd, cwd) in runs.items():
                times.setdefault(name, []).append(seconds(cmd, cwd))
    median = {name: statistics.median(t) for name, t in times.items()}
    torch = median["import torch"]
    print(f"{'':48s} {'seconds':>8s} {'x torch':>8s}")
    for name, m in median.items():
        print(f"{name:48s} {m:8.2f} {m / torch:8.2f}")
    if args.against:
        # snakemake's own start (plugins; with Slurm installed, scontrol's retries) is paid by both:
        # what the workflow adds is the time beyond it
        floor = median["snakemake --version"]
        for what in ("--list-rules", "-n"):
            now_s, then_s = median[f"snakemake {what} (smoke)"], median[f"snakemake {what} (smoke) at {args.against}"]
            print(f"snakemake {what}: now / at {args.against} {now_s / then_s:.2f}; beyond snakemake --version "
                  f"{now_s - floor:.2f} s now, {then_s - floor:.2f} s at {args.against} "
                  f"({(now_s - floor) / (then_s - floor):.2f})")


if __name__ == "__main__":
    main()
