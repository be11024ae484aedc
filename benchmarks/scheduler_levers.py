"""What the Snakemake process itself costs, lever by lever, on a toy workflow shaped like the demo's
waiting stages: many jobs ready at once, two cores, each job a Python process that imports torch
(so the benchmark directive's memory polling reads a realistic /proc/<pid>/smaps) and then waits.

    python benchmarks/scheduler_levers.py [--jobs 60] [--inputs 24] [--seconds 4]

Arms, one run each, in one scratch folder per arm (benchmarks/scheduler_share.py measures each):
  default        snakemake's defaults (--max-jobs-per-timespan 100/1s: while jobs wait for a core,
                 the scheduler re-evaluates every second, stat-ing every input of every ready job)
  timespan_nostop  --max-jobs-per-timespan 1000/1m alone: the scheduler wakes when a job ends, and
                 at most once a minute otherwise; its pending wake-up timer keeps the finished run
                 alive up to a minute (the exit lag)
  timespan       the same with workflow/rules/scheduler.smk included, which cancels that timer at
                 the end: what the workflow does (profiles/default and the Snakefile)
  timespan_nobench  the same without the `benchmark:` directive (its psutil polling: every 0.5 s
                 for a job's first 15 s, then every 30 s)
Prints snakemake's own CPU-seconds per arm, its ratio to the default arm, and the exit lag: the
seconds from the last job's output to the end of the snakemake process.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCHEDULER_RULES = HERE.parent / "workflow" / "rules" / "scheduler.smk"
TIMESPAN = ["--max-jobs-per-timespan", "1000/1m"]
ARMS = {          # flags, benchmark directive, include scheduler.smk
    "default": ([], True, False),
    "timespan_nostop": (TIMESPAN, True, False),
    "timespan": (TIMESPAN, True, True),
    "timespan_nobench": (TIMESPAN, False, True),
}


def snakefile(jobs: int, inputs: int, seconds: float, bench: bool, stop: bool) -> str:
    lines = [
        *([f'include: "{SCHEDULER_RULES}"', ""] if stop else []),
        "rule all:",
        f'    input: expand("out/{{i}}.txt", i=range({jobs}))',
        "",
        "rule make_input:",
        '    output: "in/{j}.txt"',
        '    shell: "echo {wildcards.j} > {output}"',
        "",
        "rule job:",
        f'    input: expand("in/{{j}}.txt", j=range({inputs}))',
        '    output: "out/{i}.txt"',
        *(['    benchmark: "bench/{i}.tsv"'] if bench else []),
        "    threads: 1",
        f"    shell: \"{sys.executable} -c 'import torch, time; time.sleep({seconds})' && touch {{output}}\"",
    ]
    return "\n".join(lines) + "\n"


def run_arm(name: str, args: argparse.Namespace) -> tuple[float, float]:
    """(snakemake's own CPU-s, exit lag in s) of one arm."""
    flags, bench, stop = ARMS[name]
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "Snakefile").write_text(snakefile(args.jobs, args.inputs, args.seconds, bench, stop))
        exe = Path(sys.executable).with_name("snakemake")
        # inputs first, so the measured run starts with every job ready
        subprocess.run([str(exe), *[f"in/{j}.txt" for j in range(args.inputs)], "--cores", "2", "-q", "all"],
                       cwd=tmp, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out = subprocess.run([sys.executable, str(HERE / "scheduler_share.py"), "--every", "0.5", "--",
                              str(exe), "all", "--cores", "2", *flags, "-q", "all"],
                             cwd=tmp, check=True, capture_output=True, text=True).stdout
        ended = time.time()
        last_output = max(p.stat().st_mtime for p in Path(tmp, "out").iterdir())
    row = out.strip().splitlines()[-1].split("|")
    return float(row[3]), ended - last_output          # snakemake CPU-s, exit lag


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=60)
    ap.add_argument("--inputs", type=int, default=24, help="input files per job (a zoo slice: 24)")
    ap.add_argument("--seconds", type=float, default=4.0, help="each job's wait after importing torch")
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    args = ap.parse_args(argv)
    measured = {arm: run_arm(arm, args) for arm in args.arms}
    base = measured["default"][0] if "default" in measured else None
    print(f"{args.jobs} jobs x {args.inputs} inputs, 2 cores; snakemake's own CPU-seconds per arm, and the "
          "seconds from the last job's output to snakemake's exit")
    print("| arm | snakemake CPU-s | vs default | exit lag s |")
    print("| --- | ---: | ---: | ---: |")
    for arm, (cpu, lag) in measured.items():
        ratio = f"{cpu / base:.2f}x" if base else ""
        print(f"| {arm} | {cpu:.1f} | {ratio} | {lag:.1f} |")


if __name__ == "__main__":
    main()
