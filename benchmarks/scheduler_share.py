"""How much of a run's CPU the Snakemake process itself takes (scheduling, stat calls, the
benchmark directive's polling), beside the CPU of its jobs.

    python benchmarks/scheduler_share.py -- make demo          # run a command and watch it
    python benchmarks/scheduler_share.py --pid 12345           # watch a snakemake already running

The snakemake process is found among the command's descendants (or is --pid). Every --every
seconds the script reads its CPU times (psutil: its own user + system, and those of the children it
has waited for, i.e. every finished job); the last reading before it exits is the result, so up to
--every seconds of the end are not counted. With a command, the whole run's CPU (every process
the command started, snakemake and the jobs included) comes from getrusage(RUSAGE_CHILDREN) once it
ends; with --pid it is snakemake's own plus its finished children's. Several snakemake processes
one after another (make calling snakemake twice) are summed. Prints one table:
snakemake CPU-s, jobs CPU-s, whole run CPU-s and snakemake's share of it (issue 24: at most 3 %).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import psutil


def _is_snakemake(proc: psutil.Process) -> bool:
    try:
        cmd = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    # the scheduler, not a job it runs (jobs are `python -m modelfp.steps ...` under a shell)
    return any(part.endswith("/snakemake") or part == "snakemake" for part in cmd[:2])


def _reading(proc: psutil.Process):
    try:
        t = proc.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return t.user + t.system, t.children_user + t.children_system


def watch(root: psutil.Process | None, pid: int | None, every: float, running) -> dict:
    """{pid: (own CPU-s, finished children's CPU-s)} of each snakemake process seen, last readings."""
    seen: dict[int, tuple[float, float]] = {}
    procs: dict[int, psutil.Process] = {}
    if pid is not None:
        procs[pid] = psutil.Process(pid)
    while running():
        if root is not None:
            try:
                for child in [root, *root.children(recursive=True)]:
                    if child.pid not in procs and _is_snakemake(child):
                        procs[child.pid] = child
            except psutil.NoSuchProcess:
                pass
        for p, proc in procs.items():
            r = _reading(proc)
            if r is not None:
                seen[p] = r
        time.sleep(every)
    return seen


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pid", type=int, help="a running snakemake process to watch instead of a command")
    ap.add_argument("--every", type=float, default=2.0, help="seconds between readings")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run (e.g. make demo)")
    args = ap.parse_args(argv)
    command = [c for c in args.command if c != "--"] if args.command else []
    if bool(command) == (args.pid is not None):
        ap.error("give either a command (after --) or --pid")
    start = time.perf_counter()
    if command:
        child = subprocess.Popen(command)
        seen = watch(psutil.Process(child.pid), None, args.every, lambda: child.poll() is None)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        total = usage.ru_utime + usage.ru_stime
        code = child.returncode
    else:
        proc = psutil.Process(args.pid)
        seen = watch(None, args.pid, args.every, proc.is_running)
        total = sum(own + kids for own, kids in seen.values())
        code = 0
    own = sum(o for o, _ in seen.values())
    jobs = sum(k for _, k in seen.values())
    wall = time.perf_counter() - start
    if not seen:
        print("no snakemake process was seen", file=sys.stderr)
        return 1
    print(f"| snakemake processes | wall s | snakemake CPU-s | jobs CPU-s | run CPU-s | snakemake share |")
    print(f"| ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| {len(seen)} | {wall:.0f} | {own:.1f} | {jobs:.1f} | {total:.1f} | {100 * own / max(total, 1e-9):.2f} % |")
    return code


if __name__ == "__main__":
    sys.exit(main())
