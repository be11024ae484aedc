"""The Slurm profile sends every GPU rule to the GPU partition, without Slurm installed; a run under
the workflow profile (profiles/default) ends with its last job.

The list of GPU rules is derived from the workflow (each rule's declared `resources:`), never from
the profile itself, so a rule that gains `gpu=1` and is forgotten in profiles/slurm fails here.
The profile is rendered with YTE, as Snakemake renders it, so its `?GPU_PARTITION` is evaluated.
"""
import subprocess
import sys
from pathlib import Path

import pytest
import yte
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

from conftest import ROOT, snakemake_environment

PROFILE = ROOT / "profiles" / "slurm" / "config.yaml"


@pytest.fixture(scope="module")
def gpu_rules() -> set[str]:
    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(configfiles=[ROOT / "configs" / "smoke.yaml"]),
            snakefile=ROOT / "Snakefile", workdir=ROOT)
        # the parsed rules; the public API offers no listing of rules with their resources
        # (Resources.get returns a Resource even for an undeclared name: test membership, then value)
        return {r.name for r in workflow_api._workflow.rules
                if "gpu" in r.resources.keys() and r.resources["gpu"].value}


def _profile(monkeypatch, gpu_partition=None) -> dict:
    monkeypatch.delenv("MODELFP_SLURM_PARTITION", raising=False)
    if gpu_partition is None:
        monkeypatch.delenv("MODELFP_SLURM_GPU_PARTITION", raising=False)
    else:
        monkeypatch.setenv("MODELFP_SLURM_GPU_PARTITION", gpu_partition)
    with PROFILE.open() as f:
        return yte.process_yaml(f, require_use_yte=True)


def test_the_workflow_has_gpu_rules(gpu_rules):
    assert {"synthesize", "train_extractor", "embed"} <= gpu_rules


@pytest.mark.parametrize("partition", [None, "a100"])
def test_every_gpu_rule_goes_to_the_gpu_partition_with_one_gpu(gpu_rules, monkeypatch, partition):
    per_rule = _profile(monkeypatch, partition)["set-resources"]
    expected = partition or "gpu"                               # the profile's default
    wrong = {rule: per_rule.get(rule) for rule in sorted(gpu_rules)
             if (per_rule.get(rule) or {}).get("slurm_partition") != expected
             or per_rule[rule].get("gpu") != 1}
    assert not wrong, f"gpu=1 rules not sent to partition {expected!r} with gpu: 1: {wrong}"


def test_no_rule_without_a_gpu_asks_slurm_for_one(gpu_rules, monkeypatch):
    per_rule = _profile(monkeypatch)["set-resources"]
    spurious = [rule for rule, res in per_rule.items() if res.get("gpu") and rule not in gpu_rules]
    assert not spurious, f"profile gives a GPU to rules that declare none: {spurious}"


@pytest.mark.parametrize("outcome", ["success", "error"])
def test_a_run_ends_with_its_last_job_while_a_scheduler_timer_of_an_hour_is_pending(workflow_copy, outcome):
    """profiles/default's timespan leaves Snakemake's re-evaluation timer (a non-daemon thread)
    pending when the last job ends, and the interpreter waited for it: every finished run lingered
    up to a minute. workflow/rules/scheduler.smk cancels it (onsuccess / onerror). With a span of
    an hour a lingering run cannot be mistaken for a slow one: it would meet the timeout."""
    overlay = workflow_copy / "overlay.yaml"
    if outcome == "error":            # a folder pool whose one image is not an image: the job fails
        (workflow_copy / "bad").mkdir()
        (workflow_copy / "bad" / "x.png").write_bytes(b"not a png")
        overlay.write_text("pools: {living: {source: folder, path: bad, val_fraction: 0.1}}\n")
    else:
        overlay.write_text("{}\n")
    run = subprocess.run([str(Path(sys.executable).with_name("snakemake")), "results/pools/living",
                          "--configfile", "configs/smoke.yaml", str(overlay), "--cores", "1",
                          "--max-jobs-per-timespan", "1000/1h"],
                         cwd=workflow_copy, env=snakemake_environment(), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=600)
    assert (run.returncode == 0) == (outcome == "success"), run.stdout[-3000:]
    assert (workflow_copy / "results/pools/living").exists() == (outcome == "success")
    if outcome == "error":
        assert "x.png" in run.stdout or "x.png" in (workflow_copy / "results/logs/pool/living.log").read_text()
