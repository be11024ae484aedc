"""The names modelfp.declared reads from a module's source are those of the imported module, for
every test-bed family and every baseline (the workflow's start-up checks rely on them)."""
import importlib
import inspect

import pytest

from modelfp import declared
from modelfp.baselines import BASELINES
from modelfp.testbed import FAMILIES

MEMBERS = ([f"modelfp.testbed.{f.module}" for f in FAMILIES.values()]
           + [f"modelfp.baselines.{name}" for name in BASELINES])


@pytest.mark.parametrize("name", MEMBERS)
def test_declared_defaults_are_the_modules_defaults(name):
    assert declared.defaults(name) == tuple(importlib.import_module(name).DEFAULTS)


@pytest.mark.parametrize("name", [f"modelfp.testbed.{f.module}" for f in FAMILIES.values()])
def test_declared_sample_parameters_are_the_signatures(name):
    sample = importlib.import_module(name).sample
    assert declared.parameters(name, "sample") == tuple(inspect.signature(sample).parameters)


@pytest.mark.parametrize("name", list(BASELINES))
def test_declared_build_parameters_say_which_baseline_needs_the_denoiser(name):
    from modelfp.baselines import needs_denoiser

    assert ("denoiser" in declared.parameters(f"modelfp.baselines.{name}", "build")) == needs_denoiser(name)


def test_a_module_without_the_declaration_is_named():
    with pytest.raises(ValueError, match=r"modelfp\.seeding: no top-level DEFAULTS"):
        declared.defaults("modelfp.seeding")
    with pytest.raises(ValueError, match=r"modelfp\.seeding: no top-level def sample"):
        declared.parameters("modelfp.seeding", "sample")
