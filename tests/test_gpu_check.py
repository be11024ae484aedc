"""benchmarks/gpu_check.sh in its CPU dry mode, so the prepared GPU check cannot rot unseen.

Dry: tiny sizes on the CPU and `snakemake -n` for the smoke part (well under a minute). The test
asserts the summary's columns and rows and the files the check leaves; that a failing part fails
the check while the other parts still run and report is shown by asking for CUDA where there is none.
"""
import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import ROOT

pytestmark = pytest.mark.slow

SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
FILES = ["summary.tsv", "summary.txt", "gpu_check.log", "smoke.log", "synth.json",
         "extractor.json", "projection.json"]
ROWS = {
    "env": ["device", "torch", "peak"],
    "smoke": ["wall", "jobs done", "jobs planned"],
    "synth": ["grouped", "loop", "grouped/loop", "grouped achieved", "grouped of peak"],
    "extractor": ["train", "embed", "train achieved", "train of peak"],
    "projection": ["zoo", "paper zoo (RTX 3090)", "paper / ours", "extractor 40 epochs"],
}


def _check(tmp_path, **env):
    out = tmp_path / "out"
    environ = {k: v for k, v in os.environ.items() if k != "OUT"}
    environ.update(PATH=f"{Path(sys.executable).parent}:{environ['PATH']}",
                   GPU_CHECK_SCRATCH=str(tmp_path / "scratch"), OMP_NUM_THREADS="1", **env)
    result = subprocess.run(["bash", str(SCRIPT), "--dry", str(out)], cwd=ROOT, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    with open(out / "summary.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return result, out, rows


def test_dry_gpu_check_runs_every_part_and_writes_the_summary(tmp_path):
    result, out, rows = _check(tmp_path)
    assert result.returncode == 0, result.stdout[-4000:]
    assert all((out / name).is_file() for name in FILES), sorted(p.name for p in out.iterdir())
    assert list(rows[0]) == ["part", "metric", "value", "unit", "status"]
    assert [(r["part"], r["metric"]) for r in rows] == [(p, m) for p, ms in ROWS.items() for m in ms]
    assert {r["status"] for r in rows} == {"ok"}
    value = {(r["part"], r["metric"]): r["value"] for r in rows}
    assert int(value["smoke", "jobs planned"]) > 100             # the whole smoke DAG, planned
    assert float(value["synth", "grouped"].replace(",", "")) > 0
    assert float(value["extractor", "train"].replace(",", "")) > 0
    assert float(value["projection", "zoo"].replace(",", "")) > 0
    assert "paper zoo (RTX 3090)" in result.stdout                # the table is printed


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_failing_part_fails_the_check_and_the_others_still_run(tmp_path):
    result, out, rows = _check(tmp_path, GPU_CHECK_DEVICE="cuda")   # no CUDA here: synth, extractor fail
    assert result.returncode != 0
    status = {r["part"]: r["status"] for r in rows}
    assert status == {"env": "FAILED", "smoke": "ok", "synth": "FAILED", "extractor": "FAILED",
                      "projection": "FAILED"}
    assert "sees no CUDA device" in (out / "gpu_check.log").read_text()
