"""Conventions of the workflow, derived from the workflow itself (no hand-kept lists).

Rules call the workflow's door, `python -m modelfp.steps <verb>`. A rule that calls a verb taking
--device runs CUDA-capable code, so it must declare the `gpu` resource (that is how
`--resources gpu=1` and the Slurm profile's --gpus reach it); every rule that runs a command has a
log and a benchmark. Rules own their files: every file a verb writes
is passed from the rule's {output} (no path is spelled in a shell command), and every flag a rule
spells is an option of its verb, and every required option of a verb (a value the config sets) is
passed by its rule.
"""
import argparse
import re
import shlex
import shutil

import pytest
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

from conftest import ROOT, WORKFLOW_FILES, snakemake
from modelfp.steps import build_parser

VERB = re.compile(r"python -m modelfp\.steps ([\w-]+)")
# an --out* flag and its values: the words up to the next flag, redirection or {params}/{input}/{threads}
OUT_FLAG = re.compile(r"(--out(?:-[\w-]+)?)((?:\s+(?!--|>|\{params|\{input|\{threads)[^\s>]+)+)")
FLAG = re.compile(r"(?<![\w-])--[a-z][\w-]*")


def _verbs() -> dict:
    return next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices


def _device_verbs() -> set[str]:
    return {verb for verb, p in _verbs().items()
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


def test_the_steps_have_cuda_capable_verbs():
    assert {"synthesize", "train-denoiser", "synthetic-spectra"} <= _device_verbs()
    assert "pool" not in _device_verbs()


def test_every_rule_running_cuda_capable_code_declares_a_gpu(rules):
    device_verbs = _device_verbs()
    calling = {r.name: VERB.search(r.shellcmd).group(1) for r in rules
               if r.shellcmd and VERB.search(r.shellcmd)}
    assert calling, "no rule calls a workflow verb"
    missing = [name for name, verb in calling.items()
               if verb in device_verbs and "gpu" not in next(r for r in rules if r.name == name).resources]
    assert not missing, f"rules calling CUDA-capable verbs without `resources: gpu=1`: {missing}"
    spurious = [r.name for r in rules if "gpu" in r.resources and calling.get(r.name) not in device_verbs]
    assert not spurious, f"rules declaring a gpu they never use: {spurious}"


def test_every_rule_calls_a_verb_of_the_workflow_door(rules):
    """The people's `modelfp` holds no workflow verb: a rule calling modelfp calls modelfp.steps."""
    for rule in rules:
        if rule.shellcmd and "modelfp" in rule.shellcmd:
            assert VERB.search(rule.shellcmd), f"rule {rule.name} does not call `python -m modelfp.steps <verb>`"


def test_every_command_rule_has_a_log_and_a_benchmark(rules):
    for rule in rules:
        if rule.shellcmd:
            assert rule.log, f"rule {rule.name} has no log:"
            assert rule.benchmark, f"rule {rule.name} has no benchmark:"
            assert "> {log} 2>&1" in rule.shellcmd, f"rule {rule.name} does not write its log"


def test_every_rule_passes_each_of_its_outputs_from_output_and_spells_no_path(rules):
    commands = [r for r in rules if r.shellcmd and VERB.search(r.shellcmd)]
    assert commands
    for rule in commands:
        cmd = rule.shellcmd
        # paths come from {input}, {output} or a helper's params, never a literal or a wildcard in a path
        assert "results/" not in cmd, f"rule {rule.name} spells a results/ path in its shell command"
        for flag, values in OUT_FLAG.findall(cmd):
            for value in values.split():
                assert re.fullmatch(r"\{output(\.\w+)?\}", value), \
                    f"rule {rule.name}: {flag} {value} is not one of its declared {{output}} files"
        names = list(rule.output.keys())
        passed = [n for n in names if f"{{output.{n}}}" in cmd] if names else ["{output}"] * ("{output}" in cmd)
        assert len(passed) == max(len(names), 1), \
            f"rule {rule.name} does not pass every declared output to its verb: {sorted(set(names) - set(passed))}"


def test_every_flag_a_rule_spells_is_an_option_of_its_verb(rules):
    verbs = _verbs()
    for rule in rules:
        if not (rule.shellcmd and VERB.search(rule.shellcmd)):
            continue
        verb = VERB.search(rule.shellcmd).group(1)
        options = {o for a in verbs[verb]._actions for o in a.option_strings}
        unknown = set(FLAG.findall(rule.shellcmd)) - options
        assert not unknown, f"rule {rule.name} passes {sorted(unknown)}, which `modelfp.steps {verb}` does not take"


@pytest.fixture(scope="module")
def dry_run_commands(tmp_path_factory):
    """The shell commands of every job of the smoke run (a fresh copy: no results, so every rule,
    pool included, has jobs), cut at the log redirection: [verb, arg, ...] each."""
    root = tmp_path_factory.mktemp("workflow")
    for name in WORKFLOW_FILES:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, root / name)
    out = snakemake(root, "all", "zoo_k3", "--dry-run", "--printshellcmds", "--cores", "2",
                    "--configfile", "configs/smoke.yaml").stdout
    commands = []
    for cmd in re.findall(r"python -m modelfp\.steps .*", out):
        words = shlex.split(cmd)[3:]
        commands.append(words[:words.index(">")] if ">" in words else words)
    return commands


def test_every_rule_passes_every_required_option_of_its_verb(rules, dry_run_commands):
    """A verb's required options are the values the config sets (no argparse default to drift from
    config.yaml): each job's command spells all of them and parses."""
    verbs = _verbs()
    called = {VERB.search(r.shellcmd).group(1) for r in rules if r.shellcmd and VERB.search(r.shellcmd)}
    assert called <= {words[0] for words in dry_run_commands}, "a rule's verb has no job in the dry run"
    for words in dry_run_commands:
        parser = verbs[words[0]]
        required = {a.option_strings[0] for a in parser._actions if a.required and a.option_strings}
        missing = required - set(words)
        assert not missing, f"`modelfp.steps {words[0]}` is not passed its required {sorted(missing)}: {words}"
        build_parser().parse_args(words)        # every value parses too (exits on an error)
