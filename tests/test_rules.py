"""Conventions of the workflow, derived from the workflow itself (no hand-kept lists).

A rule that calls a modelfp verb taking --device runs CUDA-capable code, so it must declare the
`gpu` resource (that is how `--resources gpu=1` and the Slurm profile's --gpus reach it); every
rule that runs a command has a log and a benchmark.
"""
import argparse
import re

import pytest
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

from conftest import ROOT
from modelfp.cli import build_parser

VERB = re.compile(r"python -m modelfp ([\w-]+)")


def _device_verbs() -> set[str]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {verb for verb, p in sub.choices.items()
            if any("--device" in a.option_strings for a in p._actions)}


@pytest.fixture(scope="module")
def rules():
    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(configfiles=[ROOT / "configs" / "smoke.yaml"]),
            snakefile=ROOT / "Snakefile", workdir=ROOT)
        # the parsed rules; the public API offers no listing of rules with their resources
        return list(workflow_api._workflow.rules)


def test_the_cli_has_cuda_capable_verbs():
    assert {"synthesize", "train-denoiser", "synthetic-spectra"} <= _device_verbs()
    assert "pool" not in _device_verbs()


def test_every_rule_running_cuda_capable_code_declares_a_gpu(rules):
    device_verbs = _device_verbs()
    calling = {r.name: VERB.search(r.shellcmd).group(1) for r in rules
               if r.shellcmd and VERB.search(r.shellcmd)}
    assert calling, "no rule calls the modelfp command line"
    missing = [name for name, verb in calling.items()
               if verb in device_verbs and "gpu" not in next(r for r in rules if r.name == name).resources]
    assert not missing, f"rules calling CUDA-capable verbs without `resources: gpu=1`: {missing}"
    spurious = [r.name for r in rules if "gpu" in r.resources and calling.get(r.name) not in device_verbs]
    assert not spurious, f"rules declaring a gpu they never use: {spurious}"


def test_every_command_rule_has_a_log_and_a_benchmark(rules):
    for rule in rules:
        if rule.shellcmd:
            assert rule.log, f"rule {rule.name} has no log:"
            assert rule.benchmark, f"rule {rule.name} has no benchmark:"
            assert "> {log} 2>&1" in rule.shellcmd, f"rule {rule.name} does not write its log"
