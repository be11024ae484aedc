"""The workflow's steps: `python -m modelfp.steps <verb> ...`, one verb per rule.

Every rule of workflow/rules/*.smk calls one verb, so each step runs and is tested without
Snakemake. A verb parses, reads its files, calls the module that owns the computation, and writes
what its rule declares. One module per stage, each registering its verbs (`register(sub)`):

    pools        pool
    zoo          synthesize, zoo-manifest, zoo-summary
    denoiser     train-denoiser
    spectra      synthetic-spectra, test-spectra, ffd-tables, fig-10, spectral-effects
    testbed      testbed-train, testbed-sample, perturb
    extractor    train-extractor, attach-specialists, resaved-gallery, calibrate
    baselines    train-baseline
    attribution  embed, evaluate, attribution-table, paired-tests, ceiling, trace, validation-table
    figures      fig-3, fig-8, fig-12, fig-16

A value the config sets (config.yaml, workflow/schemas/config.schema.yaml) is a required option
with no default here: the rule passes it, so the config is its one source (tests/test_rules.py
checks that every rule passes every required option of its verb). The people's commands are the
other door, `modelfp` (modelfp.cli); both share only modelfp.cliutil. Building this parser imports
no torch: the stage modules import what a verb needs when it runs.
"""

from __future__ import annotations

from .. import cliutil
from . import attribution, baselines, denoiser, extractor, figures, pools, spectra, testbed, zoo

STAGES = (pools, zoo, denoiser, spectra, testbed, extractor, baselines, attribution, figures)


def build_parser():
    """The parser of every workflow verb, stage by stage."""
    parser, sub = cliutil.new_parser("python -m modelfp.steps", __doc__.splitlines()[0])
    for stage in STAGES:
        stage.register(sub)
    return parser


def main(argv=None) -> int:
    """Run one workflow verb; exit code 0, or 2 with one line on stderr for an expected failure."""
    return cliutil.run(build_parser(), argv)
