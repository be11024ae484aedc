# Model Synthesis for Zero-Shot Model Attribution: every artifact of the paper is a file made here.
# Presets: config.yaml is the paper at full scale; overlay configs/demo.yaml or configs/smoke.yaml
# with --configfile. Data flow and layout: README.md and workflow/README.md.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/pools.smk"
include: "workflow/rules/synth.smk"
include: "workflow/rules/denoise.smk"
include: "workflow/rules/spectra.smk"
include: "workflow/rules/testbed.smk"
include: "workflow/rules/fidelity.smk"
include: "workflow/rules/perturb.smk"
include: "workflow/rules/extractor.smk"
include: "workflow/rules/baselines.smk"
include: "workflow/rules/attribution.smk"
include: "workflow/rules/validation.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/scheduler.smk"


# Small bookkeeping and plotting rules run where snakemake runs, also under a cluster profile
# (evaluate and tsne are not among them: at paper scale they work on ~30k fingerprints).
localrules:
    pool,
    zoo_manifest,
    zoo_summary,
    spectral_effects,
    ffd_tables,
    fig_10,
    attach_specialists,
    calibrate_extractor,
    attribution_table,
    fig_8,
    fig_9,
    fig_15,
    fig_16,


rule all:
    input:
        PLAN.targets()["all"].files,


# One target rule per paper artifact (snakemake table_iv, fig_11, zoo, ...), each gathering the
# files that modelfp.plan.Plan.targets lists for it; its description is the rule's docstring.
for _name, _target in PLAN.targets().items():
    if _name != "all":

        rule:
            name:
                _name
            input:
                _target.files,

        workflow.get_rule(_name).docstring = _target.about
