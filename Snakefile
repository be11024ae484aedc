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


# Small bookkeeping and plotting rules run where snakemake runs, also under a cluster profile
# (evaluate and tsne are not among them: at paper scale they work on ~30k fingerprints).
localrules:
    pool,
    zoo_manifest,
    zoo_summary,
    spectral_effects,
    ffd_tables,
    fig_10,
    calibrate_extractor,
    attribution_table,
    fig_8,
    fig_9,
    fig_15,
    fig_16,


rule all:
    input:
        "results/synthetic/summary.csv",
        "results/tables/spectral_effects.csv",
        "results/tables/table_ii.csv",
        "results/tables/table_xi.csv",
        "results/figures/fig_10_closest_spectra.png",
        expand("results/tables/{table}.csv", table=ATTRIBUTION_TABLES),
        "results/tables/table_viii_paired.csv",
        "results/tables/table_ix_paired.csv",
        "results/figures/fig_8_block_count.png",
        "results/figures/fig_16_robustness.png",
        "results/figures/tsne/all/tsne_emerging.png",
        *[f"results/figures/tsne/baseline_{m}/tsne_emerging.png" for m in BASE["methods"]],
        "results/extractors/all/model.pt",
        *(["results/figures/fig_9_lineage.png"] if TB["lineage"] else []),
        *(["results/figures/fig_15_configurations.png"] if TB["configurations"] else []),
        # the validation set (issue 11) is made with every run, but no table reads it
        *(["results/validation/choices.csv"] if VAL["models"] else []),
        # figures from generators' weights (issue 16): their generators are in no table
        "results/figures/fig_3_block_swap.png",
        "results/figures/fig_12_kernel_spectra.png",


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


rule validation:
    """The validation set (issue 11): every extractor variant of validation.variants scored on
    generators apart from the test bed; settings are chosen on results/validation/choices.csv."""
    input:
        "results/validation/choices.csv",


rule table_ii:
    """Table II: FFD of the synthetic models (and subsets) against the test models."""
    input:
        "results/tables/table_ii.csv",


rule table_xi:
    """Table XI: robustness of FFD to the number of images per model."""
    input:
        "results/tables/table_xi.csv",


rule perturbations:
    """The test models' images under every JPEG quality and crop scale of Figure 16."""
    input:
        expand("results/perturbed/jpeg/{level}", level=config["perturbations"]["jpeg"]),
        expand("results/perturbed/crop/{level}", level=config["perturbations"]["crop"]),


rule table_iv:
    """Table IV: extractors trained without each synthesis option."""
    input:
        "results/tables/table_iv.csv",


rule table_v:
    """Table V: extractors trained on the first n seeds of every architecture."""
    input:
        "results/tables/table_v.csv",


rule table_vi:
    """Table VI: extractors trained on fingerprinted images of each pool alone and of all pools."""
    input:
        "results/tables/table_vi.csv",


rule table_vii:
    """Table VII: the sliding window at inference."""
    input:
        "results/tables/table_vii.csv",


rule baselines:
    """The trained baselines of Tables VIII-X (baselines.methods)."""
    input:
        [baseline_file(m) for m in BASE["methods"]],


rule table_viii:
    """Table VIII: model identification per group (Only-Syn, Fine-tune, controls; paper baselines),
    the ceiling diagnostic, and McNemar tests against Only-Syn."""
    input:
        "results/tables/table_viii.csv",
        "results/tables/table_viii_paired.csv",


rule table_ix:
    """Table IX: model verification per group, and bootstraps of AUC differences to Only-Syn."""
    input:
        "results/tables/table_ix.csv",
        "results/tables/table_ix_paired.csv",


rule table_x:
    """Table X: silhouette score and Davies-Bouldin index of the fingerprints per group."""
    input:
        "results/tables/table_x.csv",


rule extractors:
    """The deployable Only-Syn and Fine-tune extractors (with their verification thresholds)."""
    input:
        "results/extractors/all/model.pt",
        "results/extractors/finetune/model.pt",
