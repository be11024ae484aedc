import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ("Snakefile", "config.yaml", "configs", "workflow", "envs")


def pytest_configure(config):
    config.addinivalue_line("markers", "cluster: needs a local Slurm (tests/cluster/slurm_up.sh)")


@pytest.fixture
def workflow_copy(tmp_path):
    """A copy of the workflow in a fresh directory, so runs never touch the checkout's results/."""
    for name in WORKFLOW_FILES:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    return tmp_path


def snakemake(cwd, *args, check=True):
    """Run the venv's snakemake in cwd; returns the CompletedProcess (stdout+stderr in .stdout)."""
    exe = Path(sys.executable).with_name("snakemake")
    result = subprocess.run([str(exe), *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**__import__("os").environ,
                                 "PATH": f"{exe.parent}:{__import__('os').environ['PATH']}"})
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-5000:]}")
    return result
