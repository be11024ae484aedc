"""The smoke workflow through profiles/slurm on a real one-node Slurm, checked against a local run.

Needs root (it installs/starts Slurm with tests/cluster/slurm_up.sh); skipped otherwise, and where
Slurm cannot be installed. Run with:  pytest -m cluster -s tests/test_cluster.py

What it proves:
- every non-local job of `zoo zoo_k3` went through sbatch: Slurm's own job records (kept for an
  hour by MinJobAge, read with squeue/scontrol) carry this run's job name and a comment naming the
  rule, one record per job Snakemake submitted, and none for local rules;
- every rule that declares gpu=1 (synthesize, train_extractor, embed among them) asked Slurm for
  one GPU and the profile's CPUs per GPU; the zoo went as one sbatch per slice (12 architectures
  sharing K, L, S, U) with the slice's runtime;
- the same targets run locally (profiles/local, at the same time) give bit-identical checkpoints.

Test-cluster deltas to the shipped profile, all on the command line / environment (the profile
file itself is used unmodified):
- MODELFP_SLURM_PARTITION / MODELFP_SLURM_GPU_PARTITION=debug: the test cluster's one partition;
- --slurm-status-command squeue: no slurmdbd here (see slurm_up.sh for why);
- --slurm-init-seconds-before-status-checks 2: first status poll after 2 s instead of 40 s;
- --slurm-keep-successful-logs: keep the per-job Slurm logs the test reads.
The GPU request is not overridden: slurm_up.sh declares fake GPUs so --gpus=1 is schedulable.
"""

from __future__ import annotations

import importlib.util
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
import yaml

from modelfp.archspace import parse, slice_archs, slice_id
from modelfp.denoise import load as load_denoiser
from modelfp.synthetic import load

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "tests" / "cluster"
STATE_DIR = Path(os.environ.get("SLURM_TEST_DIR", "/tmp/modelfp-slurm"))
# synthesis, denoiser, spectra, a table, an extractor's training and an embedding job
TARGETS = ["zoo", "zoo_k3", "denoiser", "fig_11", "results/embeddings/all/w2"]  # smoke: window 2
SMOKE = ["--configfile", "configs/smoke.yaml", "cluster.yaml"]
# the extractor and embedding jobs need the test bed: two of its models suffice here; the extractor
# is not watched on the validation set (its generators would add eight Slurm jobs)
OVERLAY = "testbed: {models: [dcgan, vae], lineage: [], configurations: []}\nextractor: {validate: []}\n"
UNFIT = 3  # slurm_up.sh: this machine cannot host the test cluster
# the profile under test, as plain YAML (its `?`-templated values are not needed here)
PROFILE = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())


def _recorded_daemons() -> dict[str, str]:
    state = STATE_DIR / "daemons.pids"
    if not state.is_file():
        return {}
    return dict(line.split() for line in state.read_text().splitlines() if line.strip())


@pytest.fixture(scope="module")
def slurm_cluster():
    """A one-node Slurm; torn down at the end only if this fixture's slurm_up.sh started it."""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("snakemake-executor-plugin-slurm not installed "
                    "(pip install 'snakemake-executor-plugin-slurm==2.8.*')")
    if os.geteuid() != 0:
        pytest.skip("needs root: tests/cluster/slurm_up.sh installs and starts Slurm daemons")
    if shutil.which("sbatch") is None and shutil.which("apt-get") is None:
        pytest.skip("no Slurm (sbatch) installed and no apt-get to install slurm-wlm")
    before = _recorded_daemons()
    t0 = time.perf_counter()
    up = subprocess.run(["bash", str(CLUSTER / "slurm_up.sh")], capture_output=True, text=True,
                        timeout=900)
    started = sorted(set(_recorded_daemons().items()) - set(before.items()))
    if up.returncode == UNFIT:
        pytest.skip(f"Slurm unavailable here: {up.stderr.strip()}")
    if up.returncode != 0:
        # a half-started cluster: stop what this call started before failing
        if started:
            subprocess.run(["bash", str(CLUSTER / "slurm_down.sh"), *[n for n, _ in started]])
        pytest.fail(f"slurm_up.sh failed ({up.returncode}):\n{up.stdout}\n{up.stderr}")
    print(f"\n[cluster] slurm_up.sh {time.perf_counter() - t0:.1f} s; started by this test: "
          f"{started or 'nothing (already up)'}")
    yield
    if started:
        down = subprocess.run(["bash", str(CLUSTER / "slurm_down.sh"), *[n for n, _ in started]],
                              capture_output=True, text=True, timeout=120)
        assert down.returncode == 0, f"slurm_down.sh failed:\n{down.stdout}\n{down.stderr}"


def _copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True)
    shutil.copy2(ROOT / "Snakefile", dest / "Snakefile")
    shutil.copy2(ROOT / "config.yaml", dest / "config.yaml")
    shutil.copytree(ROOT / "configs", dest / "configs")
    shutil.copytree(ROOT / "workflow", dest / "workflow")
    shutil.copytree(ROOT / "envs", dest / "envs")    # rules name their conda environment
    (dest / "cluster.yaml").write_text(OVERLAY)
    return dest


def _start(workdir: Path, args: list[str], env_extra=None):
    """Start snakemake in workdir in its own process group (output in workdir/snakemake.out)."""
    env = dict(os.environ, **(env_extra or {}))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    log = workdir / "snakemake.out"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "snakemake", *args], cwd=workdir, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, log, time.perf_counter()


def _finish(run, timeout: float):
    """Wait for a started snakemake; on timeout stop its whole group (and its Slurm jobs) and fail.
    Returns its output and its wall seconds."""
    proc, log, t0 = run
    try:
        proc.wait(timeout=max(1.0, t0 + timeout - time.perf_counter()))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # snakemake waits for its jobs on SIGTERM
            proc.wait()
        text = log.read_text()
        run_id = re.search(r"SLURM run ID: (\S+)", text)
        if run_id:
            subprocess.run(["scancel", "--name", run_id.group(1)])
        pytest.fail(f"snakemake timed out after {timeout} s:\n{text[-6000:]}")
    text = log.read_text()
    assert proc.returncode == 0, f"snakemake failed ({proc.returncode}):\n{text[-6000:]}"
    return text, time.perf_counter() - t0


def _slurm_records(job_name: str) -> list[dict]:
    """Slurm's records of this run's jobs: one per job / array task (finished ones included)."""
    out = subprocess.run(
        ["squeue", "--noheader", "--states=all", "--name", job_name, "--format=%i|%F|%K|%k|%T"],
        capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        job_id, array_id, task, comment, state = line.strip().split("|")
        rule = comment.removeprefix("rule_").split("_wildcards_")[0]
        rows.append(dict(id=job_id, array=array_id, task=task, comment=comment, rule=rule,
                         state=state))
    return rows


def _scontrol(job_id: str) -> str:
    return subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True,
                          check=True).stdout


def _checkpoints(workdir: Path) -> dict[str, Path]:
    base = workdir / "results" / "synthetic"
    return {str(p.relative_to(base)): p for p in sorted(base.glob("*/seed*.pt"))}


def test_smoke_run_on_slurm_matches_local_run(slurm_cluster, tmp_path):
    # --- the cluster run ---------------------------------------------------------------------
    # the same targets run locally at the same time (Slurm's polling leaves the CPUs idle between jobs)
    remote, here = _copy_workflow(tmp_path / "slurm"), _copy_workflow(tmp_path / "local")
    slurm_run = _start(
        remote,
        [*TARGETS, *SMOKE, "--profile", str(ROOT / "profiles" / "slurm"),
         "--slurm-status-command", "squeue",
         "--slurm-init-seconds-before-status-checks", "2",
         "--slurm-keep-successful-logs"],
        env_extra={"MODELFP_SLURM_PARTITION": "debug", "MODELFP_SLURM_GPU_PARTITION": "debug"})
    local_run = _start(here, [*TARGETS, *SMOKE, "--profile", str(ROOT / "profiles" / "local")])
    try:
        text, slurm_seconds = _finish(slurm_run, timeout=900)
    except BaseException:
        os.killpg(local_run[0].pid, signal.SIGKILL)
        raise
    _, local_seconds = _finish(local_run, timeout=900)
    run_id = re.search(r"SLURM run ID: (\S+)", text)
    assert run_id, "no 'SLURM run ID' in snakemake's output: did it use the slurm executor?"
    job_name = run_id.group(1)  # every job of the run is named so: modelfp_<uuid>
    assert job_name.startswith("modelfp_"), job_name  # profiles/slurm: slurm-jobname-prefix

    # Which jobs Snakemake submitted ("rule X:") and which it ran itself ("localrule X:")
    submitted, local = {}, set()
    for kind, rule in re.findall(r"^(localrule|rule) (\w+):$", text, flags=re.M):
        if kind == "rule":
            submitted[rule] = submitted.get(rule, 0) + 1
        else:
            local.add(rule)

    # --- Slurm's own records: one per submitted job, named after the rule, all COMPLETED -------
    records = _slurm_records(job_name)
    per_rule = {}
    for r in records:
        per_rule[r["rule"]] = per_rule.get(r["rule"], 0) + 1
    assert per_rule == submitted, f"Slurm records {per_rule} != jobs Snakemake submitted {submitted}"
    assert not local & set(per_rule), f"local rules {local & set(per_rule)} went to Slurm"
    assert all(r["state"] == "COMPLETED" for r in records), records

    # --- every gpu=1 rule asked Slurm for one GPU and the profile's CPUs per GPU ---------------
    gpu_rules = {rule for rule, res in PROFILE["set-resources"].items() if res.get("gpu") == 1}
    assert {"synthesize", "train_extractor", "embed"} <= set(per_rule) & gpu_rules, per_rule
    for r in (r for r in records if r["rule"] in gpu_rules):
        job = _scontrol(r["id"])
        assert "TresPerJob=gres:gpu:1" in job, (r["rule"], job)          # gpu: 1 -> sbatch --gpus=1
        assert f"CpusPerTres=gres:gpu:{PROFILE['set-resources'][r['rule']]['cpus_per_gpu']}" in job

    # --- the zoo: one Slurm job per slice (12 architectures sharing K, L, S, U) ------------------
    archs = {k.split("/")[0] for k in _checkpoints(remote)}
    slices = {slice_id(parse(a)) for a in archs}
    synth = [r for r in records if r["rule"] == "synthesize"]
    assert len(synth) == len(slices), (len(synth), sorted(slices))
    assert sorted(r["comment"].split("_wildcards_")[1] for r in synth) == sorted(slices)
    minutes = int(PROFILE["set-resources"]["synthesize"]["runtime"])
    for r in synth:
        assert f"TimeLimit={minutes // 60:02d}:{minutes % 60:02d}:00" in _scontrol(r["id"])
    assert archs == {a.id for s in slices for a in slice_archs(s)}  # each slice trained whole

    # --- the local run: identical checkpoints ---------------------------------------------------
    a, b = _checkpoints(remote), _checkpoints(here)
    assert a.keys() == b.keys() and a, (sorted(a), sorted(b))
    for name in a:
        sa, sb = load(a[name]).state_dict(), load(b[name]).state_dict()
        assert sa.keys() == sb.keys(), name
        for key in sa:
            assert sa[key].dtype == sb[key].dtype and torch.equal(sa[key], sb[key]), (name, key)

    # the denoiser (a GPU rule) and the spectral-effects table made from the cluster's spectra
    da, db = (load_denoiser(w / "results/denoiser/dncnn.pt").state_dict() for w in (remote, here))
    assert all(torch.equal(da[k], db[k]) for k in da)
    table = "results/tables/spectral_effects.csv"
    assert (remote / table).read_text() == (here / table).read_text()

    print(f"\n[cluster] slurm run {slurm_seconds:.0f} s ({len(records)} Slurm jobs: {per_rule}; "
          f"{len(archs)} architectures in {len(slices)} slices; local rules: {sorted(local)}), "
          f"local run {local_seconds:.0f} s, {len(a)} checkpoints identical")
