"""Kill and resume (issue 15, item 4): `kill -9` of snakemake and its job in the middle of the
synthetic zoo, of a test-bed training and of an extractor training; running the same command again
finishes, and the files are those of an uninterrupted run wherever the code promises determinism.

Each test starts the command of README ("Resuming after a failure": the profile's
`rerun-incomplete`) in its own process group, waits - bounded - until the run is demonstrably
midway (a partial artifact on disk and the final one missing), kills the whole group with SIGKILL,
and reruns the same command. Compared with the uninterrupted reference run (one run of all three
targets, shared by the module): the *content* the code promises - every tensor bit for bit and all
metadata - without the recorded wall-clock seconds (any key or column naming seconds or time).

What the rerun needs: Snakemake's working-directory lock (.snakemake/locks) outlives a kill -9,
and Snakemake cannot tell a stale lock from a live run, so the very same command stops with a
LockException ("... It can be removed with the --unlock argument"). `_rerun` checks that the
stale lock is the only reason for such a stop, then does what Snakemake's message tells a user:
`snakemake --unlock <same arguments>`, then the same command again.

Sizes: the smoke preset plus a small overlay (resume.yaml, written into each copy): three
architectures of two slices (K-L-S-U), so fewer synthesize jobs than smoke, and trainings long
enough for a kill to land inside them (300 VAE steps - the test model's log reports progress every
50 - and four extractor epochs of 80 steps). The interrupted copies start from the reference's
finished inputs (pools; for the extractor also zoo and denoiser) with Snakemake's records of them,
so only the killed job's rules run there.
"""
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import ROOT, WORKFLOW_FILES, snakemake, snakemake_environment

pytestmark = pytest.mark.slow

ARGS = ("--profile", "profiles/local", "--configfile", "configs/smoke.yaml", "resume.yaml")
OVERLAY = """\
# tests/test_resume.py: fewer synthesize jobs than smoke (architectures of two K-L-S-U slices),
# test-model and extractor trainings long enough that a kill lands inside them
synthesis:
  architectures:
    - K1-L1-Spost-Utransposed-Arelu-Nbn
    - K1-L1-Spost-Utransposed-Asigmoid-Nbn
    - K2-L2-Spre-Ubilinear-Atanh-Nin
test_models:
  vae: {steps: 300}
extractor: {epochs: 4, steps_per_epoch: 80}
"""
EPOCHS = 4
ZOO_FILES = "results/synthetic/*/seed*.pt"
TESTBED = "results/testbed/vae"
TESTBED_TARGET = f"{TESTBED}/images"
TESTBED_LOG = "results/logs/testbed/vae.train.log"
EXTRACTOR = "results/extractors/all"
EXTRACTOR_LOG = "results/logs/extractors/all.log"
WAIT = 600            # bound of every wait for a midway state (s); never an assertion on speed
TIMING = re.compile(r"second|time", re.IGNORECASE)


def _prepare(path: Path) -> Path:
    """The workflow files (as conftest's workflow_copy), the local profile and the overlay."""
    for name in WORKFLOW_FILES:
        src, dst = ROOT / name, path / name
        if not dst.exists():
            (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    shutil.copytree(ROOT / "profiles", path / "profiles", dirs_exist_ok=True)
    (path / "resume.yaml").write_text(OVERLAY)
    return path


def _start_from(reference: Path, cwd: Path, *done):
    """Give the copy cwd the reference's finished files `done` and Snakemake's records of them."""
    shutil.copytree(reference / ".snakemake", cwd / ".snakemake", symlinks=True)
    for name in done:
        shutil.copytree(reference / name, cwd / name, symlinks=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run of the three targets."""
    path = _prepare(tmp_path_factory.mktemp("reference"))
    snakemake(path, "zoo", TESTBED_TARGET, f"{EXTRACTOR}/trained.pt", *ARGS)
    return path


# ---------------------------------------------------------------------------------------------
# Running, killing, rerunning

def _environment():
    return Path(sys.executable).with_name("snakemake"), snakemake_environment()


def _group_alive(pgid) -> list[int]:
    """Pids (not zombies) still in process group pgid."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def _kill_midway(cwd, targets, midway, what):
    """Start `snakemake targets ARGS` in its own session, SIGKILL its whole process group as soon
    as midway() is true; fail (with the run's output) if the run ends first or nothing happens
    within WAIT seconds. Returns nothing: the kill itself is checked (no process survives)."""
    exe, env = _environment()
    out = open(cwd / "killed_run.out", "w")
    proc = subprocess.Popen([str(exe), *targets, *ARGS], cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + WAIT
        while not midway():
            if proc.poll() is not None:
                pytest.fail(f"the run ended (rc {proc.returncode}) before {what}:\n"
                            f"{(cwd / 'killed_run.out').read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {WAIT} s:\n{(cwd / 'killed_run.out').read_text()[-3000:]}")
            time.sleep(0.02)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)        # kill -9: snakemake and the job it runs
        except ProcessLookupError:
            pass
        proc.wait()
        out.close()
    for _ in range(500):                               # orphans are reaped by init, not at once
        if not _group_alive(proc.pid):
            break
        time.sleep(0.02)
    assert not _group_alive(proc.pid), "a process of the killed run survived SIGKILL of its group"


def _rerun(cwd, targets):
    """The same command again (after `--unlock` when the killed run's lock stops it); must finish."""
    again = snakemake(cwd, *targets, *ARGS, check=False)
    if again.returncode != 0:
        assert "LockException" in again.stdout, f"the rerun failed:\n{again.stdout[-5000:]}"
        snakemake(cwd, "--unlock", *targets, *ARGS)
        again = snakemake(cwd, *targets, *ARGS)
    return again


# ---------------------------------------------------------------------------------------------
# Comparing what determinism promises

def _content(obj):
    """obj without wall-clock entries (dict keys naming seconds or time), recursively."""
    if isinstance(obj, dict):
        return {k: _content(v) for k, v in obj.items() if not (isinstance(k, str) and TIMING.search(k))}
    if isinstance(obj, (list, tuple)):
        return [_content(v) for v in obj]
    return obj


def _assert_same(a, b, where):
    """Equal structure; tensors bit-identical (dtype, shape, values); plain values equal (NaN = NaN)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b) or (a.is_floating_point() and torch.equal(a.isnan(), b.isnan())
                                     and torch.equal(a.nan_to_num(), b.nan_to_num())), f"{where}: values differ"
    elif isinstance(a, float) and a != a:
        assert isinstance(b, float) and b != b, f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _same_checkpoint(ref: Path, got: Path):
    load = lambda p: _content(torch.load(p, map_location="cpu", weights_only=True))  # noqa: E731
    _assert_same(load(ref), load(got), str(got))


def _csv_content(path):
    with open(path, newline="") as f:
        return [_content(row) for row in csv.DictReader(f)]


def _files(root: Path, pattern):
    return sorted(str(p.relative_to(root)) for p in root.glob(pattern))


# ---------------------------------------------------------------------------------------------
# The tests

def test_the_zoo_resumes_after_a_kill_and_makes_the_same_models(reference, workflow_copy):
    cwd = _prepare(workflow_copy)
    _start_from(reference, cwd, "results/pools")
    expected = _files(reference, ZOO_FILES)
    assert len(expected) > 1

    def midway():                                    # some checkpoints written, not all
        return 0 < len(_files(cwd, ZOO_FILES)) < len(expected)

    _kill_midway(cwd, ["zoo"], midway, "first zoo checkpoints")
    assert not (cwd / "results/synthetic/summary.csv").exists()
    assert len(_files(cwd, ZOO_FILES)) < len(expected)

    _rerun(cwd, ["zoo"])
    assert _files(cwd, ZOO_FILES) == expected
    for name in expected:                            # seeded: every model bit-identical
        _same_checkpoint(reference / name, cwd / name)
    assert _csv_content(cwd / "results/synthetic/summary.csv") == \
        _csv_content(reference / "results/synthetic/summary.csv")


def test_a_test_model_retrains_after_a_kill_to_the_same_generator_and_images(reference, workflow_copy):
    cwd = _prepare(workflow_copy)
    _start_from(reference, cwd, "results/pools")
    log, generator = cwd / TESTBED_LOG, cwd / TESTBED / "generator.pt"

    def midway():                                    # the training has logged progress, not finished
        return (log.exists() and re.search(r"step\s+\d+", log.read_text()) is not None
                and not generator.exists())

    _kill_midway(cwd, [TESTBED_TARGET], midway, "training progress of the test model")
    steps = [int(s) for s in re.findall(r"step\s+(\d+)", log.read_text())]
    assert steps and max(steps) < 300 and not generator.exists()

    _rerun(cwd, [TESTBED_TARGET])
    _same_checkpoint(reference / TESTBED / "generator.pt", generator)   # seeded training
    images = _files(reference / TESTBED, "images/*")
    assert images and _files(cwd / TESTBED, "images/*") == images
    for name in images:                              # seeded sampling: the same image files
        assert (cwd / TESTBED / name).read_bytes() == (reference / TESTBED / name).read_bytes(), name
    meta = [_content(json.loads((p / TESTBED / "meta.json").read_text())) for p in (reference, cwd)]
    _assert_same(*meta, "meta.json")


def test_the_extractor_resumes_from_its_last_epoch_after_a_kill(reference, workflow_copy):
    cwd = _prepare(workflow_copy)
    _start_from(reference, cwd, "results/pools", "results/synthetic", "results/denoiser", "results/validation")
    target = [f"{EXTRACTOR}/trained.pt"]
    state, trained, log = cwd / EXTRACTOR / "state.pt", cwd / EXTRACTOR / "trained.pt", cwd / EXTRACTOR_LOG

    _kill_midway(cwd, target, state.exists, "extractor state after a first epoch")
    assert not trained.exists()
    saved = torch.load(state, map_location="cpu", weights_only=True)["epoch"]
    logged = [int(e) for e in re.findall(r"epoch (\d+):", log.read_text())]
    assert 1 <= saved < EPOCHS and max(logged, default=0) <= saved   # killed before the last epoch ended

    _rerun(cwd, target)
    # the rerun trained only the epochs after the saved one: at most the interrupted epoch is lost
    resumed = [int(e) for e in re.findall(r"epoch (\d+):", log.read_text())]
    assert resumed == list(range(saved + 1, EPOCHS + 1)), (saved, resumed)
    assert not state.exists()                        # removed once trained.pt is written
    # and it ends where the uninterrupted run ended (resume claimed bit-identical)
    _same_checkpoint(reference / EXTRACTOR / "trained.pt", trained)
    history = _csv_content(cwd / EXTRACTOR / "history.csv")
    assert [int(r["epoch"]) for r in history] == list(range(1, EPOCHS + 1))
    assert history == _csv_content(reference / EXTRACTOR / "history.csv")
