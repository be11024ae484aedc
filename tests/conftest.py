import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ("Snakefile", "config.yaml", "configs", "workflow", "envs", "profiles")


def load_benchmark(name: str):
    """benchmarks/<name>.py as a module (the benchmarks are scripts, not a package)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_configure(config):
    config.addinivalue_line("markers", "cluster: needs a local Slurm (tests/cluster/slurm_up.sh)")


def pytest_collection_modifyitems(config, items):
    """The Slurm tests run last: they install and start Slurm and tear it down, and the other
    tests' snakemake calls then meet an installed Slurm with no controller (see
    `snakemake_environment`, which keeps them from waiting on it, wherever they run)."""
    items.sort(key=lambda item: item.get_closest_marker("cluster") is not None)   # stable


@pytest.fixture
def workflow_copy(tmp_path):
    """A copy of the workflow in a fresh directory, so runs never touch the checkout's results/."""
    for name in WORKFLOW_FILES:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    return tmp_path


SHIMS = Path(__file__).parent / "shims"


def snakemake_environment() -> dict:
    """The environment of every snakemake the tests start, except the Slurm tests': the venv's
    executables first, then tests/shims, whose `scontrol` fails at once. Once Slurm is installed,
    a snakemake start asks `scontrol` for the cluster's configuration (the Slurm executor plugin),
    and with no controller running the real one retries for 9 s before it fails (measured here:
    `snakemake --version` 11.9 s, 3.1 s with the stand-in): ~50 snakemake starts in the suite."""
    exe_dir = Path(sys.executable).parent
    return {**os.environ, "PATH": f"{exe_dir}{os.pathsep}{SHIMS}{os.pathsep}{os.environ['PATH']}"}


def snakemake(cwd, *args, check=True):
    """Run the venv's snakemake in cwd; returns the CompletedProcess (stdout+stderr in .stdout)."""
    exe = Path(sys.executable).with_name("snakemake")
    result = subprocess.run([str(exe), *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=snakemake_environment())
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-5000:]}")
    return result


# ---------------------------------------------------------------------------------------------
# Tiny models and pools of the test-bed family tests (tests/test_testbed_*.py)

@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module's tests (pytestmark = pytest.mark.usefixtures("one_thread")):
    for tiny models more threads only add synchronisation, which on a shared, loaded machine made
    the training tests ~100x slower (measured: 120 VAE steps 0.9 s vs 88 s with 2 threads)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_pool(n=64, size=16, seed=0):
    """uint8 (n,3,size,size) uniform noise images."""
    return torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(seed),
                         dtype=torch.uint8)


def smooth_pool(n=64, size=16, seed=0):
    """uint8 (n,3,size,size): random 2x2 colour fields in [0.3, 0.9], bilinearly upsampled: 12
    numbers per image, highly redundant, so a tiny VAE, flow or DDPM learns them within tens of steps."""
    g = torch.Generator().manual_seed(seed)
    x = F.interpolate(0.3 + 0.6 * torch.rand(n, 3, 2, 2, generator=g), size=(size, size),
                      mode="bilinear", align_corners=False)
    return (x * 255).round().to(torch.uint8)


@pytest.fixture(scope="module")
def noise_pool():
    """40 uint8 noise images at 32x32, what the GAN-family tests train on."""
    return random_pool(40, 32)


def state_copy(model):
    """A copy of the model's state_dict, detached from later training."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def write_pngs(folder: Path, stems, seed=0) -> Path:
    """16x16 noise pngs folder/<stem>.png (a model's image folder); returns the folder."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for stem in stems:
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{stem}.png")
    return folder
