# The workflow's side of the plan of the run (modelfp.plan, tested without Snakemake in
# tests/test_plan.py): PLAN knows what to build, where each file lies and what each verb is
# passed; the short functions below only hand it a job's wildcards (w).
#
# The *_args functions take the wildcards alone and ask PLAN for the job's declared inputs (the
# same call as the rule's input:) instead of taking Snakemake's `input`: Snakemake records a
# job's params, and reruns it when they change, only for params whose function takes no input
# or output. So every preset value a verb is passed is recorded, and editing one reruns the
# jobs it feeds (tests/test_workflow.py).
from modelfp import archspace, variants
from modelfp.perturb import MATCHED
from modelfp.variants import SPECIALISTS
from modelfp.plan import (ATTRIBUTION_TABLES, DENOISER, SYNTHETIC_SPECTRA, TEST_SPECTRA, VALIDATION_CHOICES, Plan,
                          baseline_file, calibrated_file, details_file, embeddings_dir, evaluation_file,
                          extractor_file, figure_file, generator_file, images_dir, perturbed_dir, pool_dir,
                          resaved_gallery_file, slice_manifest, state_file, table_file, tsne_file, with_specialists_file,
                          zoo_summary)

wildcard_constraints:
    arch=archspace.ID_PATTERN,
    slice=archspace.SLICE_PATTERN,
    pool=r"[A-Za-z0-9_]+",
    model=r"[A-Za-z0-9_.+-]+",
    bed=r"testbed|validation",
    variant=variants.FINGERPRINTER_PATTERN,
    baseline=r"[a-z]+",
    view=r"w\d+|jpeg-[0-9.]+|crop-[0-9.]+|val-w\d+(-v\d+)?",

PLAN = Plan(config)
PLAN.check()        # a misconfigured run stops here, naming what is wrong, before any job starts

SYN, DEN, EVAL = config["synthesis"], config["denoiser"], config["evaluation"]
SEEDS, ZOO = PLAN.seeds, PLAN.zoo
DEFAULT_VIEW = PLAN.default_view
SLICE_CHECKPOINTS = PLAN.slice_checkpoints()


# --- pools, the zoo, the spectra --------------------------------------------------------------
def pool_args(w):
    return PLAN.pool_args(w.pool)


def slice_arch_ids(w):
    return PLAN.slice_arch_ids(w.slice)


def zoo_summary_manifests(w):
    return PLAN.zoo_manifests(PLAN.summary_archs(w.zoo))


def zoo_summary_checkpoints(w):
    return PLAN.checkpoints(PLAN.summary_archs(w.zoo))


def spectra_args(w):
    return PLAN.spectra_args()


# --- test and validation models ({bed}) ---------------------------------------------------------
def train_pools(w):
    return [pool_dir(p) for p in PLAN.model_pools(w.model, w.bed)]


def train_base(w):
    return PLAN.train_inputs(w.model, w.bed)


def train_args(w):
    return PLAN.train_args(w.model, w.bed, train_base(w))


def sample_generator(w):
    return PLAN.generator(w.model, w.bed)


def sample_n(w):
    return PLAN.n_images(w.model, w.bed)


def sample_seed(w):
    return PLAN.seed(w.model, w.bed)


def sample_args(w):
    return PLAN.sample_args(w.model, w.bed)


def testbed_inputs(w):
    """The test models' image folders, as model:<name>."""
    return PLAN.model_inputs(PLAN.tb["models"])


def testbed_args(w):
    return PLAN.model_args(testbed_inputs(w))


def testbed_group_args(w):
    return PLAN.model_args(testbed_inputs(w), groups_of="testbed")


# --- extractors and baselines -------------------------------------------------------------------
def extractor_inputs(w):
    return PLAN.extractor_inputs(w.variant)


def extractor_args(w):
    return PLAN.extractor_args(w.variant, extractor_inputs(w))


def extractor_state(w, output):
    return state_file(output.model)


def specialist_inputs(w):
    return PLAN.specialist_inputs(w.variant)


def specialist_args(w):
    return PLAN.specialist_args(w.variant)


def calibration_inputs(w):
    return PLAN.calibration_inputs(w.variant)


def calibration_args(w):
    return PLAN.calibration_args(calibration_inputs(w))


def resaved_inputs(w):
    return PLAN.resaved_inputs(w.variant)


def resaved_args(w):
    return PLAN.resaved_args(resaved_inputs(w))


def resaved_state(w, output):
    return state_file(output[0])


def baseline_inputs(w):
    return PLAN.baseline_inputs(w.baseline)


def baseline_args(w):
    return PLAN.baseline_args(w.baseline, baseline_inputs(w))


def baseline_state(w, output):
    return state_file(output.model)


# --- embeddings, evaluations, tables and figures -----------------------------------------------
def embed_inputs(w):
    return PLAN.embed_inputs(w.variant, w.view)


def embed_args(w):
    return PLAN.embed_args(w.view, embed_inputs(w))


def view_window(w):
    return PLAN.view_window(w.view)


def evaluate_inputs(w):
    return PLAN.evaluate_inputs(w.variant, w.view)


def evaluate_args(w):
    return PLAN.evaluate_args(w.view)


def verifier_args(w):
    return PLAN.verifier_args(evaluate_inputs(w))


def lists_args(w):
    return PLAN.lists_args(evaluate_inputs(w))


def tsne_args(w):
    return PLAN.evaluate_args()


def table_inputs(w):
    return PLAN.table_inputs(w.table)


def table_args(w):
    return PLAN.table_args(w.table, table_inputs(w))


def ceiling_inputs(w):
    return PLAN.ceiling_inputs()


def ceiling_args(w):
    return PLAN.ceiling_args(ceiling_inputs(w))


def paired_inputs(w):
    return PLAN.paired_inputs()


def paired_args(w):
    return PLAN.paired_args(paired_inputs(w))


def fig_8_inputs(w):
    return PLAN.fig_8_inputs()


def fig_8_args(w):
    return PLAN.fig_8_args(fig_8_inputs(w))


def fig_16_inputs(w):
    return PLAN.fig_16_inputs()


def fig_16_args(w):
    return PLAN.fig_16_args(fig_16_inputs(w))


def lineage_args(w):
    return PLAN.lineage_args()


def configurations_args(w):
    return PLAN.configurations_args()


def validation_table_inputs(w):
    return PLAN.validation_table_inputs()


def validation_table_args(w):
    return PLAN.validation_table_args(validation_table_inputs(w))


def fig_3_inputs(w):
    return PLAN.fig_3_inputs()


def fig_3_args(w):
    return PLAN.fig_3_args(fig_3_inputs(w))


def fig_12_inputs(w):
    return PLAN.fig_12_inputs()


def fig_12_args(w):
    return PLAN.fig_12_args(fig_12_inputs(w))
