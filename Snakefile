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


# Small bookkeeping and plotting rules run where snakemake runs, also under a cluster profile.
localrules:
    pool,
    zoo_summary,
    spectral_effects,
    ffd_tables,
    closest_spectra,


rule all:
    input:
        "results/synthetic/summary.csv",
        "results/tables/spectral_effects.csv",
        "results/tables/table_ii.csv",
        "results/tables/table_xi.csv",
        "results/figures/fig_10_closest_spectra.png",


# --- one target per paper artifact -------------------------------------------------------------


rule zoo:
    """The synthetic model zoo (Section III-B): every architecture with K <= 2, all seeds."""
    input:
        "results/synthetic/summary.csv",


rule zoo_k3:
    """Figure 8's extension: the 144 architectures with K = 3, all seeds."""
    input:
        "results/synthetic/summary_k3.csv",


rule denoiser:
    """The DnCNN denoiser (trained on the pools, or an external checkpoint)."""
    input:
        "results/denoiser/dncnn.pt",


rule fig_11:
    """Spectral effects of upsampling (Appendix A1), on the synthetic zoo."""
    input:
        "results/figures/fig_11_upsampling.png",


rule fig_13:
    """Spectral effects of activations (Appendix A3), on the synthetic zoo."""
    input:
        "results/figures/fig_13_activation.png",


rule fig_14:
    """Spectral effects of normalization (Appendix A4), on the synthetic zoo."""
    input:
        "results/figures/fig_14_normalization.png",


rule testbed:
    """The test models' images (Table III analogue for presets with own generators)."""
    input:
        [test_model_images(m) for m in TB["models"]],


rule table_ii:
    """Table II: FFD of the synthetic models (and subsets) against the test models."""
    input:
        "results/tables/table_ii.csv",


rule table_xi:
    """Table XI: robustness of FFD to the number of images per model."""
    input:
        "results/tables/table_xi.csv",


rule fig_10:
    """Figure 10: test models' spectra beside their closest synthetic model."""
    input:
        "results/figures/fig_10_closest_spectra.png",


rule perturbations:
    """The test models' images under every JPEG quality and crop scale of Figure 16."""
    input:
        expand("results/perturbed/jpeg/{level}/{model}", level=config["perturbations"]["jpeg"], model=TB["models"]),
        expand("results/perturbed/crop/{level}/{model}", level=config["perturbations"]["crop"], model=TB["models"]),
