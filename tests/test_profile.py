"""The Slurm profile sends every GPU rule to the GPU partition, without Slurm installed.

The list of GPU rules is derived from the workflow (each rule's declared `resources:`), never from
the profile itself, so a rule that gains `gpu=1` and is forgotten in profiles/slurm fails here.
The profile is rendered with YTE, as Snakemake renders it, so its `?GPU_PARTITION` is evaluated.
"""
import pytest
import yte
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

from conftest import ROOT

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
