# Model Synthesis for Zero-Shot Model Attribution: every artifact of the paper is a file made here.
# Presets: config.yaml is the paper at full scale; overlay configs/demo.yaml or configs/smoke.yaml
# with --configfile. Data flow and layout: README.md and workflow/README.md.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/pools.smk"
include: "workflow/rules/synth.smk"


rule all:
    input:
        "results/synthetic/summary.csv",


# --- one target per paper artifact -------------------------------------------------------------


rule zoo:
    """The synthetic model zoo (Section III-B): every architecture with K <= 2, all seeds."""
    input:
        "results/synthetic/summary.csv",


rule zoo_k3:
    """Figure 8's extension: the 144 architectures with K = 3, all seeds."""
    input:
        "results/synthetic/summary_k3.csv",
