"""One source per setting: every library default of a value the config sets is config.yaml's (the
paper at full scale; overlays override it), and every enumeration of the config's schema lists its
registry's names, in the registry's order."""

import inspect
from dataclasses import MISSING, fields

import pytest
import yaml

from modelfp import attributor, denoise, evaluate, losses, spectrum, synthetic, validation, variants
from modelfp import extractor as ex
from modelfp.baselines import BASELINES

from conftest import ROOT

CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())
SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())


def _field_defaults(cls) -> dict:
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


def _argument_defaults(function) -> dict:
    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _shared(defaults: dict, section: dict) -> tuple[dict, dict]:
    """(library defaults, config values) of the keys both set."""
    keys = sorted(set(defaults) & set(section))
    assert keys, "nothing in common: the comparison would pass for nothing"
    return {k: defaults[k] for k in keys}, {k: section[k] for k in keys}


def test_the_extractors_defaults_are_config_yamls_extractor_section():
    model, train = _field_defaults(ex.ExtractorConfig), _field_defaults(ex.TrainConfig)
    assert not set(model) & set(train)                # one options dict feeds both (steps' _split_options)
    section = CONFIG["extractor"]
    ours, config = _shared({**model, **train}, section)
    assert ours == config
    # every option but two is a key of the section: the residual mode is not configurable for the
    # extractor (the authors' noise estimate), augment is the section's `immunize`, for one variant
    options = {f.name for cls in (ex.ExtractorConfig, ex.TrainConfig) for f in fields(cls)}
    assert options - set(section) == {"residual", "augment"}
    assert losses.MARGIN == section["margin"]         # the losses' own default margin, too


def test_the_synthetic_zoos_defaults_are_config_yamls_synthesis_section():
    section = CONFIG["synthesis"]
    ours, config = _shared(_field_defaults(synthetic.TrainConfig), section)
    assert ours == config
    assert synthetic.WIDTH == section["width"]
    training = _argument_defaults(synthetic.train_architecture)
    assert (training["width"], training["path"]) == (section["width"], section["path"])


def test_the_denoisers_defaults_are_config_yamls_denoiser_section():
    section = CONFIG["denoiser"]
    ours, config = _shared(_field_defaults(denoise.TrainConfig), section)
    assert ours == config
    for function in (denoise.DnCNN.__init__, denoise.init_model, denoise.train_denoiser):
        ours, config = _shared(_argument_defaults(function), section)      # depth, features
        assert ours == config, function.__qualname__


def test_the_protocols_defaults_are_config_yamls_evaluation_section():
    section = CONFIG["evaluation"]
    assert (evaluate.N_SAME_PAIRS, evaluate.N_DIFF_PAIRS, evaluate.GALLERY_SIZE) == (
        section["pairs_same"], section["pairs_diff"], section["gallery"])
    assert attributor.WINDOWS == section["window"]    # the people's tool embeds as the tables do


# schema path of an enumeration -> the registry whose names it must list
REGISTRIES = {
    "extractor.backbone": [b for b in ex.BACKBONES if b != variants.FAMILIES["reference"].flags["backbone"]],
    "extractor.transform": spectrum.TRANSFORMS,
    "extractor.pooling": ex.POOLINGS,
    "extractor.head": ex.HEADS,
    "extractor.padding": ex.PADDINGS,
    "extractor.stem": ex.STEMS,
    "extractor.triplet_distance": losses.DISTANCES,
    "extractor.sampler": losses.SAMPLERS,
    "spectra.residual": denoise.MODES,
    "baselines.methods.items": BASELINES,
    "baselines.recipes.propertyNames": BASELINES,
    "$defs.model_entry.group": evaluate.GROUPS,
    "$defs.model_entry.differs": validation.DIFFERS,
}
# enumerations whose values are checked inline where they are used (no registry to compare with)
INLINE = {"on_bad_image", "pools.additionalProperties.source", "synthesis.path"}


def _enumerations(node=SCHEMA, path=()) -> dict:
    """{dotted path without the schema's 'properties' levels: the enumeration}."""
    out = {}
    if isinstance(node, dict):
        if "enum" in node:
            out[".".join(p for p in path if p != "properties")] = node["enum"]
        for key, child in node.items():
            out |= _enumerations(child, (*path, str(key)))
    return out


@pytest.mark.parametrize("path", sorted(REGISTRIES))
def test_each_schema_enumeration_lists_its_registry_in_order(path):
    assert _enumerations()[path] == list(REGISTRIES[path])


def test_every_schema_enumeration_is_compared_with_a_registry_or_checked_inline():
    assert set(_enumerations()) == set(REGISTRIES) | INLINE


def test_the_paper_preset_runs_every_registered_baseline_with_a_recipe():
    assert CONFIG["baselines"]["methods"] == list(BASELINES)
    assert list(CONFIG["baselines"]["recipes"]) == list(BASELINES)
