"""The plan of a run: what the workflow makes, where each file lies, and what each step is passed.

`Plan(config)` answers, from the config dict alone, every question the rules ask: the test models
and their groups, families, generators, pools and seeds; what an extractor variant trains on and
which evaluation stands for it (modelfp.variants); the rows of the tables (modelfp.paper_tables);
each verb's arguments; and the run's targets (`targets`: what `snakemake <target>` builds).
`check` stops a misconfigured run when the Snakefile is parsed, before any job, naming what is
wrong. workflow/rules/common.smk only hands it a job's wildcards and inputs; tests/test_plan.py
tests it without Snakemake.

Every artifact's path is written once, in the functions below the constants: each takes the
artifact's wildcards, whose defaults are the wildcards themselves, so a rule declares
`extractor_file()` ("results/extractors/{variant}/trained.pt") and the plan asks for
`extractor_file("all")`. A rule's `inputs` are passed back as a mapping of its named inputs
(Snakemake's `input`, or a dict): arguments are built from the paths declared, so the two agree.

Light to import: no torch. The registries it reads name their members without importing them, and
hyper-parameter names come from the members' source (modelfp.declared); numpy comes only with the
few answers that need it (the ceiling's label, evaluation lists). benchmarks/plan_startup.py times it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from . import archspace, declared, paper_tables, seeding, variants
from .baselines import BASELINE_PREFIX, BASELINES, baseline_variant
from .testbed import FAMILIES, check_options

ATTRIBUTION_TABLES = tuple(paper_tables.TABLES)    # Tables IV-X, each made by attribution_table
# a bed's entries in the config, and the list that names which of them are built
BED_ENTRIES = {"testbed": ("test_models", "testbed.models"),
               "validation": ("validation.instances", "validation.models")}
# figure -> its files' stem under results/figures/
FIGURES = {"fig_3": "fig_3_block_swap", "fig_8": "fig_8_block_count", "fig_9": "fig_9_lineage",
           "fig_10": "fig_10_closest_spectra", "fig_11": "fig_11_upsampling", "fig_12": "fig_12_kernel_spectra",
           "fig_13": "fig_13_activation", "fig_14": "fig_14_normalization",
           "fig_15": "fig_15_configurations", "fig_16": "fig_16_robustness"}
# train-extractor's --options: the extractor section less what the plan resolves per variant
EXTRACTOR_ONLY_HERE = ("immunize", "finetune", "ablation_epochs", "validate", "specialists")


# --- where each artifact lies ------------------------------------------------------------------
DENOISER = "results/denoiser/dncnn.pt"
SYNTHETIC_SPECTRA = "results/spectra/synthetic.npz"
TEST_SPECTRA = "results/spectra/test_models.npz"
VALIDATION_CHOICES = "results/validation/choices.csv"


def pool_dir(pool="{pool}"):
    """A pool's folder (manifest.json and its shards), what every --pool names."""
    return f"results/pools/{pool}"


def checkpoint_file(arch="{arch}", seed="{seed}"):
    return f"results/synthetic/{arch}/seed{seed}.pt"


def slice_manifest(slice="{slice}"):
    """The manifest of one synthesize job's checkpoints (modelfp.manifest)."""
    return f"results/synthetic/slices/{slice}.tsv"


def zoo_summary(zoo="{zoo}"):
    """summary (the zoo, K <= 2) or summary_k3 (the K = 3 zoo)."""
    return f"results/synthetic/{zoo}.csv"


def generator_file(model="{model}", bed="{bed}"):
    return f"results/{bed}/{model}/generator.pt"


def images_dir(model="{model}", bed="{bed}"):
    """The samples of one of our own generators (a model with `path:` is the user's folder instead)."""
    return f"results/{bed}/{model}/images"


def perturbed_dir(kind="{kind}", level="{level}"):
    """One perturbation level: a folder per test model."""
    return f"results/perturbed/{kind}/{level}"


def extractor_file(variant="{variant}"):
    """A trained extractor; `calibrated_file` adds its thresholds."""
    return f"results/extractors/{variant}/trained.pt"


def calibrated_file(variant="{variant}"):
    return f"results/extractors/{variant}/model.pt"


def with_specialists_file(variant="{variant}"):
    """A trained extractor carrying its specialist networks (`attach-specialists`), uncalibrated:
    what the tool's file is calibrated from when the config trains specialists."""
    return f"results/extractors/{variant}/with_specialists.pt"


def resaved_gallery_file(variant="{variant}"):
    """The validation generators' re-saved copies embedded by a trained extractor (`resaved-gallery`),
    where calibrate fits the thresholds of each re-save (`modelfp.resaved`)."""
    return f"results/extractors/{variant}/resaved/validation.gallery"


def baseline_file(method="{baseline}"):
    return f"results/baselines/{method}/model.pt"


def embeddings_dir(variant="{variant}", view="{view}"):
    return f"results/embeddings/{variant}/{view}"


def evaluation_file(variant="{variant}", view="{view}"):
    return f"results/evaluation/{variant}/{view}.csv"


def ceiling_file(view):
    """Table VIII's ceiling diagnostic, in the default view."""
    return f"results/ceiling/{view}.csv"


def details_file(csv, kind):
    """The per-query ("queries") or per-pair ("pairs") file written beside an evaluation's csv."""
    return str(Path(csv).with_suffix(f".{kind}.csv"))


def table_file(table="{table}", ext="csv"):
    return f"results/tables/{table}.{ext}"


def figure_file(figure, ext="png"):
    """A figure's file (`figure`: a key of FIGURES)."""
    return f"results/figures/{FIGURES[figure]}.{ext}"


def tsne_file(name, variant="{variant}"):
    return f"results/figures/tsne/{variant}/{name}"


def state_file(output):
    """A training verb's resumable state, beside its declared output. Not an output itself:
    Snakemake deletes a failed job's outputs, which would throw away the very state a rerun
    resumes from; the verb deletes it once its output is written."""
    return str(Path(output).with_name("state.pt"))


# --- (name, path) pairs passed to a verb --------------------------------------------------------
# Each path is declared as the named input "<kind>:<name>" (unpack() a dict of `named_inputs`), and
# the arguments are built back from the inputs with `named`: the paths passed are the paths declared.
def named_inputs(kind, pairs):
    return {f"{kind}:{name}": path for name, path in pairs}


def named(inputs, kind):
    """The (name, path) pairs of a rule's named inputs of one kind, in declaration order."""
    prefix = f"{kind}:"
    return [(key[len(prefix):], path) for key, path in inputs.items() if key.startswith(prefix)]


def _compact(value):
    """JSON on one line without spaces: one shell word inside single quotes."""
    return json.dumps(value, separators=(",", ":"))


class Target(NamedTuple):
    """A target rule: what it is for (its docstring) and the files it gathers."""
    about: str
    files: list


class Plan:
    """The run a config describes (the dict Snakemake validated against the schema)."""

    def __init__(self, config: dict):
        self.config = config
        self.syn, self.den, self.spec = config["synthesis"], config["denoiser"], config["spectra"]
        self.tb, self.val, self.ext = config["testbed"], config["validation"], config["extractor"]
        self.evaluation, self.base = config["evaluation"], config["baselines"]
        self.seeds = list(range(self.syn["seeds"]))
        self.zoo = self.zoo_archs(archspace.BLOCKS)      # a typo in synthesis.architectures stops here
        self.zoo_k3 = self.zoo_archs(archspace.BLOCKS_EXTENDED)
        self.default_view = f"w{self.evaluation['window']}"
        # the validation set's images in the default windows: the same embed and evaluate rules
        self.validation_view = f"val-{self.default_view}"
        # the people's tool's thresholds are calibrated on the validation set embedded as the tool
        # embeds: with its test-time views (modelfp.extractor.VIEWS) when there are several
        self.tool_views = self.evaluation.get("tool_views", 1)
        self.tool_view = f"{self.validation_view}-v{self.tool_views}" if self.tool_views > 1 else self.validation_view
        # the ablations train for their own, smaller budget when the preset gives one
        self.ablation_budget = self.ext.get("ablation_epochs", self.ext["epochs"]) != self.ext["epochs"]
        # the authors' evaluation lists (optional; modelfp.protocol_lists): in every test bed view
        # `embed` reads exactly the images they name and `evaluate` uses their split and pairs
        self.lists = self.evaluation.get("lists")
        self.list_files = {k: self.lists[k] for k in ("support", "test", "pairs")} if self.lists else {}
        # what of the config shapes the rows of Tables IV-X and Figures 8 and 16
        self.preset = paper_tables.Preset(self.syn["seeds"], tuple(self.syn["pools"]),
                                          tuple(self.evaluation["seed_counts"]),
                                          tuple(self.evaluation["windows"]), tuple(self.base["methods"]))

    def check(self):
        """Stop at once, before any job runs, on what would fail later: each check names the entry."""
        self.check_validation()      # first: a name shared with the test bed is the error to see
        self.check_resaved()
        self.check_pools(self.syn["pools"] + self.den["pools"]
                         + self.trained_pools(self.tb["models"] + self.tb["lineage"])
                         + self.trained_pools(self.val["models"], "validation"))
        self.check_test_models(self.tb["models"] + self.tb["lineage"] + self.tb["configurations"])
        self.check_validated_variants()
        self.check_lists()
        self.check_baselines()
        self.check_rows()
        self.check_figure_generators()

    # --- pools and the synthetic zoo ------------------------------------------------------------
    def pool_args(self, pool):
        """Command-line arguments of `pool` for a configured pool."""
        spec = self.config["pools"][pool]
        common = (f"--image-size {self.config['image_size']} --val-fraction {spec['val_fraction']} "
                  f"--seed {self.config['seed']}")
        if spec["source"] == "embedded":
            return f"--source embedded --photos {spec['photos']} --count {spec['count']} {common}"
        return f"--source folder --root '{spec['path']}' --on-bad-image {self.config['on_bad_image']} {common}"

    def check_pools(self, names):
        """A configured pool that is unknown, or whose folder is missing."""
        for name in names:
            if name not in self.config["pools"]:
                raise ValueError(f"config: pool {name!r} is used but not defined under 'pools:' "
                                 f"(defined: {sorted(self.config['pools'])})")
            spec = self.config["pools"][name]
            if spec["source"] == "folder" and not Path(spec["path"]).is_dir():
                raise ValueError(
                    f"pool {name!r}: folder {spec['path']!r} does not exist.\n"
                    f"  Put the images of this pool there (any nesting; jpg/png/webp/bmp/tiff), e.g.\n"
                    f"  CelebA: unpack img_align_celeba.zip so that {spec['path']}/000001.jpg exists;\n"
                    f"  LSUN: export each category's images into {spec['path']}/<category>/.\n"
                    f"  Or set pools.{name}.path in a config overlay, or run the embedded demo:\n"
                    f"  snakemake --cores 2 --configfile configs/demo.yaml")

    def zoo_archs(self, blocks):
        """Architecture ids of the zoo with the given block counts (config may narrow the list)."""
        chosen = self.syn["architectures"]
        archs = archspace.space(tuple(blocks))
        if chosen != "all":
            chosen = {archspace.parse(a) for a in chosen}  # a typo stops here, naming the id
            archs = [a for a in archs if a in chosen]
        return [a.id for a in archs]

    def summary_archs(self, zoo):
        """The architectures a zoo summary covers: `summary` the zoo, `summary_k3` the K = 3 zoo."""
        return self.zoo if zoo == "summary" else self.zoo_k3

    def checkpoints(self, archs, seeds=None):
        """Every seed's checkpoint of each architecture (all seeds unless `seeds`)."""
        return [checkpoint_file(a, s) for a in archs for s in (self.seeds if seeds is None else seeds)]

    def slice_checkpoints(self):
        """One synthesize job's outputs, as a template of {slice}: the 12 architectures sharing K, L,
        S, U (archspace.slice_archs), every seed. A configured list of architectures trains the whole
        slice of each listed id; only the listed ones are used downstream."""
        return [checkpoint_file(f"{{slice}}-{member}", s) for member in archspace.SLICE_MEMBERS for s in self.seeds]

    @staticmethod
    def slice_arch_ids(slice):
        """The --arch list of a slice, in the order of `slice_checkpoints`."""
        return " ".join(a.id for a in archspace.slice_archs(slice))

    @staticmethod
    def zoo_manifests(archs):
        """The slice manifests that list these architectures' checkpoints: what a job reading them
        declares, 36 files instead of 864 for the scheduler to stat (modelfp.manifest)."""
        slices = dict.fromkeys(archspace.slice_id(archspace.parse(a)) for a in archs)
        return [slice_manifest(s) for s in slices]

    def spectra_args(self):
        sweep = " ".join(map(str, self.spec["n_images_sweep"]))
        return (f"--n-images {self.spec['n_images']} --n-images-sweep {sweep} --image-size {self.spec['image_size']} "
                f"--residual {self.spec['residual']} --device {self.config['device']}")

    # --- test models and validation models ------------------------------------------------------
    # Issue 11: settings are chosen on the validation set, the test bed is for the final tables
    # only. Both are entries of one schema, made by the same rules under results/{bed}/{model}/;
    # every question below takes the bed, the test bed by default.
    def bed_entries(self, bed):
        return self.config["test_models"] if bed == "testbed" else self.val["instances"]

    def test_model(self, name, bed="testbed"):
        """A model's config entry; a name defined in neither place is named with the defined ones."""
        if name not in self.bed_entries(bed):
            where, lister = BED_ENTRIES[bed]
            raise ValueError(f"config: {lister} (or a base:) names {name!r}, which is not defined under "
                             f"'{where}:' (defined: {sorted(self.bed_entries(bed))})")
        return self.bed_entries(bed)[name]

    def images(self, name, bed="testbed"):
        """The image folder of a model: the user's folder, or the samples of our own generator."""
        spec = self.test_model(name, bed)
        return spec["path"] if "path" in spec else images_dir(name, bed)

    def group(self, name, bed="testbed"):
        """Table III's group (classical | emerging): the entry's, its base's, or its family's."""
        spec = self.test_model(name, bed)
        if "path" in spec:
            return spec["group"]
        if "base" in spec:
            return self.group(spec["base"], bed)
        return FAMILIES[spec["generator"]].group

    def family(self, name, bed="testbed"):
        spec = self.test_model(name, bed)
        return self.family(spec["base"], bed) if "base" in spec else spec["generator"]

    def generator(self, name, bed="testbed"):
        """The generator file a model samples from: its own, or (same weights, other sampling)
        its base's."""
        spec = self.test_model(name, bed)
        if "base" in spec and "lora" not in spec:
            return self.generator(spec["base"], bed)
        return generator_file(name, bed)

    def model_pools(self, name, bed="testbed"):
        """The pools an own generator (or LoRA variant) trains on: its `pools:`, else testbed.pools."""
        return self.test_model(name, bed).get("pools", self.tb["pools"])

    def n_images(self, name, bed="testbed"):
        """Images an own generator samples: its entry's `n_images`, else the bed's."""
        default = self.val.get("n_images", self.tb["n_images"]) if bed == "validation" else self.tb["n_images"]
        return self.test_model(name, bed).get("n_images", default)

    def seed(self, name, bed="testbed"):
        """The training and sampling seed of a generator: its entry's `seed` (pairs meant to differ
        only in data share one on purpose), else one derived from its name, so no two generators share
        initial weights or latents by accident. A derived model (LoRA variant, other sampling) has its
        own name, hence other noise than its base: it cannot share images with it."""
        spec = self.test_model(name, bed)
        return spec["seed"] if "seed" in spec else seeding.generator_seed(name, self.tb["seed"])

    def train_inputs(self, name, bed="testbed"):
        """The base generator of a LoRA variant (none for a model trained from scratch)."""
        spec = self.test_model(name, bed)
        return [self.generator(spec["base"], bed)] if "lora" in spec else []

    def train_args(self, name, bed, base):
        """Command-line arguments of `testbed-train` for one of our own generators; `base`: the
        declared `train_inputs` (a LoRA variant's --base)."""
        spec = self.test_model(name, bed)
        if "lora" in spec:
            (base_file,) = base
            return (f"--base {base_file} --lora '{_compact(spec['lora'])}' "
                    f"--batch-size {self.tb['batch_size']} --seed {self.seed(name, bed)}")
        size = spec.get("image_size", self.tb["image_size"])
        return (f"--family {spec['generator']} --image-size {size} --steps {spec['steps']} "
                f"--batch-size {self.tb['batch_size']} --seed {self.seed(name, bed)} --hp '{_compact(spec.get('hp', {}))}'")

    def sample_args(self, name, bed="testbed"):
        spec = self.test_model(name, bed)
        base = f" --base-name {spec['base']}" if "base" in spec else ""
        return f"--sampling '{_compact(spec.get('sampling', {}))}'{base}"

    def model_inputs(self, names, bed="testbed", kind="model"):
        """Each model's image folder as the named input <kind>:<name> (read back by `model_args`)."""
        return named_inputs(kind, ((m, self.images(m, bed)) for m in names))

    def model_args(self, inputs, flag="--model", groups_of=None, kind="model"):
        """`FLAG NAME 'FOLDER'` (and the model's group in bed `groups_of`) for each <kind>:<name> input."""
        return " ".join(f"{flag} {m} '{folder}'" + (f" {self.group(m, groups_of)}" if groups_of else "")
                        for m, folder in named(inputs, kind))

    def trained_pools(self, names, bed="testbed"):
        """The pools that the own generators and LoRA variants among `names` train on."""
        return sorted({p for m in names if {"generator", "lora"} & set(self.test_model(m, bed))
                       for p in self.model_pools(m, bed)})

    def classical_models(self):
        """The classical test models: what the baselines and the Fine-tune variant train on."""
        return [m for m in self.tb["models"] if self.group(m) == "classical"]

    def check_test_models(self, names, bed="testbed"):
        """A model whose base, family, hp or sampling options are unknown, or whose folder is
        missing (saying what to put where)."""
        what = "test model" if bed == "testbed" else "validation model"
        for name in names:
            spec = self.test_model(name, bed)
            if "base" in spec:
                self.test_model(spec["base"], bed)                  # a typo in base stops here, named
                if "lora" not in spec and "sampling" not in spec:
                    raise ValueError(f"{what} {name!r} names base {spec['base']!r} but neither lora "
                                     f"(a LoRA variant) nor sampling (other generation settings)")
            elif "generator" in spec and spec["generator"] not in FAMILIES:
                raise ValueError(f"{what} {name!r}: unknown generator family {spec['generator']!r}; "
                                 f"known: {sorted(FAMILIES)}")
            if "generator" in spec or "base" in spec:
                check_options(f"{BED_ENTRIES[bed][0]}.{name}", self.family(name, bed), spec.get("hp", {}),
                              spec.get("sampling", {}))
            elif not Path(spec["path"]).is_dir():
                raise ValueError(
                    f"{what} {name!r}: folder {spec['path']!r} does not exist.\n"
                    f"  Put the images this model generated there (any nesting and resolution; at least\n"
                    f"  {max(self.spec['n_images_sweep'] + [self.spec['n_images']])} images; the paper uses "
                    f"1,000 per model), e.g.\n"
                    f"  {spec['path']}/00000.png. Or set {BED_ENTRIES[bed][0]}.{name}.path in a config overlay,\n"
                    f"  or run the embedded demo: snakemake --cores 2 --configfile configs/demo.yaml")

    def validation_pairs(self):
        """{pair name: [its two members]} of the validation set (entries with `pair:`)."""
        pairs = {}
        for m in self.val["models"]:
            if "pair" in self.test_model(m, "validation"):
                pairs.setdefault(self.test_model(m, "validation")["pair"], []).append(m)
        return pairs

    def check_resaved(self):
        """The re-saved copies' open-set protocol leaves `gallery` images of each known model out of
        its queries: it needs more than that many per model."""
        n, gallery = self.evaluation.get("resaved_images", 0), self.evaluation["gallery"]
        if 0 < n <= gallery:
            raise ValueError(f"config: evaluation.resaved_images ({n}) must exceed evaluation.gallery ({gallery}): "
                             f"the re-saved images' open-set rule is fitted on galleries of {gallery} images per "
                             f"model and queries from the rest; raise it, or set 0 to fit none")

    def check_validation(self):
        """The validation set stands apart from the test bed (no name in common), and each same-design
        pair is two entries that differ in what `differs:` says and in nothing else."""
        clash = sorted(set(self.val["models"]) & set(self.config["test_models"]))
        if clash:
            raise ValueError(f"config: validation model name(s) {clash} are also test models (test_models:). "
                             f"The validation set, on which settings are chosen, must stay apart from the "
                             f"test bed: rename them under validation.instances and validation.models")
        self.check_test_models(self.val["models"], "validation")
        for pair, members in self.validation_pairs().items():
            if len(members) != 2:
                raise ValueError(f"config: validation pair {pair!r} has {len(members)} member(s) in "
                                 f"validation.models ({members}); a pair has exactly two")
            a, b = (self.test_model(m, "validation") for m in members)
            if a.get("differs") is None or a.get("differs") != b.get("differs"):
                raise ValueError(f"config: validation pair {pair!r}: both {members} must say the same "
                                 f"differs: seed or differs: data")
            key = "seed" if a["differs"] == "seed" else "pools"
            other = sorted(k for k in set(a) | set(b) if k not in ("note", key) and a.get(k) != b.get(k))
            if key == "pools" and not ("seed" in a and "seed" in b):
                raise ValueError(f"config: validation pair {pair!r} ({members}) differs only in data, so both "
                                 f"entries must share one explicit seed: (without one each gets its own "
                                 f"seed, derived from its name); add e.g. seed: {seeding.derive(pair) % 1000} to both")
            value = ((lambda m: self.seed(m, "validation")) if key == "seed" else
                     (lambda m: sorted(self.model_pools(m, "validation"))))
            if other or value(members[0]) == value(members[1]):
                raise ValueError(f"config: validation pair {pair!r} ({members}) must differ in {key} and only "
                                 f"in {key} (differs: {a['differs']}); "
                                 + (f"they also differ in {other}" if other else f"both have {key} {value(members[0])}"))

    # --- extractor variants, views and evaluations ---------------------------------------------
    def variant(self, name):
        """What variant `name` trains on (modelfp.variants.Variant); a ValueError for an unknown name."""
        return variants.variant(name, self.zoo + self.zoo_k3, self.syn["seeds"], self.syn["pools"])

    def trained_variant(self, name):
        """The variant whose files stand for `name`: that of `all` when it trains the same thing."""
        return variants.canonical(name, self.zoo + self.zoo_k3, self.syn["seeds"], self.syn["pools"],
                                  self.ablation_budget)

    def evaluation_csv(self, name, view=None):
        """The evaluation of variant `name` (or of `all`, when it trains the same thing) in a view."""
        return evaluation_file(self.trained_variant(name), view or self.default_view)

    def check_validated_variants(self):
        """A typo among the variants of extractor.validate."""
        for v in self.ext["validate"]:
            try:
                self.variant(v)
            except ValueError as err:
                raise ValueError(f"config: extractor.validate: {err}") from None

    def extractor_inputs(self, variant):
        """A variant's training data; for the variants of extractor.validate (when the config has a
        validation set) also the validation models' folders, validation:<name>, scored after every
        epoch (read back by `extractor_args`; they are never trained on)."""
        v = self.variant(variant)
        validation = (self.model_inputs(self.val["models"], "validation", kind="validation")
                      if variant in self.ext["validate"] and len(self.val["models"]) >= 2 else {})
        if v.finetune:
            return {"init": extractor_file("all"), **self.model_inputs(self.classical_models()), **validation}
        return {"manifests": self.zoo_manifests(v.archs), "pools": [pool_dir(p) for p in v.pools],
                "denoiser": DENOISER, **validation}

    def extractor_args(self, variant, inputs):
        """Command-line arguments of `train-extractor` for a variant and its declared inputs."""
        v = self.variant(variant)
        opts = {k: val for k, val in self.ext.items() if k not in EXTRACTOR_ONLY_HERE}
        if v.ablation and "ablation_epochs" in self.ext:
            opts["epochs"] = self.ext["ablation_epochs"]
        if v.augment:
            opts["augment"] = self.ext["immunize"]
        if v.specialist:
            opts["augment"] = self.specialist_augment(v.specialist)
        if v.backbone:
            opts.update(backbone=v.backbone, weights=None)
        validation = self.model_args(inputs, flag="--validation", kind="validation")
        if v.finetune:
            opts.update(self.ext["finetune"])
            source = f"--init {inputs['init']} {self.model_args(inputs, flag='--images')}"
        else:
            source = (f"--synthetic {' '.join(self.checkpoints(v.archs, v.seeds))} "
                      f"--manifest {' '.join(inputs['manifests'])} --pool {' '.join(inputs['pools'])} "
                      f"--denoiser {inputs['denoiser']}" + (" --untrained" if v.untrained else ""))
        if v.finetune or validation:
            # each folder's side (modelfp.splits): fine-tuning reads the training side; the per-epoch
            # validation, like `embed`, the evaluation side
            source += f" --train-fraction {self.evaluation['train_fraction']}"
        if validation:
            source += f" {validation} --window {self.evaluation['window']} {self.protocol_args()}"
        return f"{source} --options '{_compact(opts)}'"

    def specialist_augment(self, kind):
        """The augmentation a specialist_<kind> trains with (extractor.specialists)."""
        augment = self.ext.get("specialists", {}).get(kind)
        if augment is None:
            raise ValueError(f"config: variant {variants.SPECIALIST_PREFIX}{kind} trains on images re-saved as "
                             f"extractor.specialists.{kind} says; add it (e.g. {kind}: {{gray: 1.0}} for gray)")
        return augment

    def specialists(self, variant):
        """{kind: trained file} of the specialist networks variant's tool file carries: those of
        extractor.specialists for the deployed extractor (all), none for any other."""
        if variant != "all":
            return {}
        return {kind: extractor_file(f"{variants.SPECIALIST_PREFIX}{kind}") for kind in self.ext.get("specialists", {})}

    def tool_network(self, variant):
        """The trained file the tool's file of `variant` is calibrated from: with its specialists
        attached (`with_specialists_file`) when it has some, else the trained extractor."""
        return with_specialists_file(variant) if self.specialists(variant) else extractor_file(variant)

    def specialist_inputs(self, variant):
        return {"extractor": extractor_file(variant), "specialists": list(self.specialists(variant).values())}

    def specialist_args(self, variant):
        return " ".join(f"{kind}={path}" for kind, path in self.specialists(variant).items())

    def calibration_inputs(self, variant):
        """A trained extractor and where its thresholds are chosen: its evaluation on the validation
        set, never on the test bed (issue 11), and those embeddings, to which the per-model open-set
        constants of identify's "unknown" are fitted (modelfp.openset); in the tool's view (with
        evaluation.tool_views test-time views, which the file then carries)."""
        if len(self.val["models"]) < 2:
            raise ValueError("config: the thresholds of results/extractors/<variant>/model.pt are chosen "
                             "on validation generators; list at least two under validation.models")
        resaved = ({"resaved": resaved_gallery_file(self.trained_variant(variant))}
                   if self.evaluation.get("resaved_images", 0) else {})
        return {"extractor": self.tool_network(variant),
                "evaluation": self.evaluation_csv(variant, self.tool_view),
                "embeddings": embeddings_dir(self.trained_variant(variant), self.tool_view), **resaved}

    def calibration_args(self, inputs):
        """calibrate's options beside its files: the protocol of the open-set fit (its gallery, seed,
        draws of the global thresholds and the tool's score, evaluation.tool_neighbours), and with the
        re-saved copies (evaluation.resaved_images > 0) their gallery and the pairs of their
        verification thresholds."""
        e = self.evaluation
        resaved = (f" --resaved {inputs['resaved']} --pairs-same {e['pairs_same']} --pairs-diff {e['pairs_diff']}"
                   if "resaved" in inputs.keys() else "")
        return (f"--gallery {e['gallery']} --seed {e['seed']} --gallery-draws {e['gallery_draws']} "
                f"--neighbours {e.get('tool_neighbours', 0)}{resaved}")

    def resaved_inputs(self, variant):
        """What `resaved-gallery` reads: the tool's network (`tool_network`) and the validation models' folders."""
        return {"extractor": self.tool_network(variant), **self.model_inputs(self.val["models"], "validation")}

    def resaved_args(self, inputs):
        e = self.evaluation
        return (f"{self.model_args(inputs)} --train-fraction {e['train_fraction']} --images {e['resaved_images']} "
                f"--window {self.view_window(self.tool_view)} --views {self.tool_views} --seed {e['seed']}")

    @staticmethod
    def view_bed(view):
        return "validation" if view.startswith("val-") else "testbed"

    def view_window(self, view):
        view = view.removeprefix("val-").split("-v")[0]
        return int(view[1:]) if view.startswith("w") else self.evaluation["window"]

    @staticmethod
    def view_views(view):
        """The test-time views of a view: k in val-w<n>-v<k> (the tool's), else 1."""
        return int(view.split("-v")[1]) if view.startswith("val-") and "-v" in view else 1

    def view_models(self, view):
        """Models embedded in a view: the validation set in val-w<n>; else every evaluated test model,
        plus lineage and configuration sets in the default view."""
        if self.view_bed(view) == "validation":
            return self.val["models"]
        extra = self.tb["lineage"] + self.tb["configurations"] if view == self.default_view else []
        return self.tb["models"] + [m for m in extra if m not in self.tb["models"]]

    def perturbation_views(self):
        P = self.config["perturbations"]
        return [f"jpeg-{q}" for q in P["jpeg"]] + [f"crop-{c}" for c in P["crop"]]

    @staticmethod
    def fingerprinter_file(variant):
        """The file that embeds for a variant: a trained extractor, or a trained baseline (baseline_<method>)."""
        if variant.startswith(BASELINE_PREFIX):
            return baseline_file(variant.removeprefix(BASELINE_PREFIX))
        return extractor_file(variant)

    def check_lists(self):
        """A missing lists root or list file; malformed lines and unknown models, named by file:line."""
        if not self.lists:
            return
        if not Path(self.lists["root"]).is_dir():
            raise ValueError(f"config: evaluation.lists.root {self.lists['root']!r} is not a folder")
        missing = [f"evaluation.lists.{k}: {f}" for k, f in self.list_files.items() if not Path(f).is_file()]
        if missing:
            raise ValueError(f"config: missing evaluation list file(s): {'; '.join(missing)}")
        from . import protocol_lists    # numpy: only for a config with lists

        lists = protocol_lists.read_lists(self.lists["root"], *self.list_files.values())
        protocol_lists.check_models(lists, self.tb["models"])

    def lists_inputs(self, view):
        """The evaluation lists, in a test bed view; validation views keep the seeded protocol."""
        return dict(self.list_files) if self.lists and self.view_bed(view) == "testbed" else {}

    def lists_args(self, inputs):
        if "support" not in inputs.keys():
            return ""
        return (f" --lists-root '{self.lists['root']}' --support '{inputs['support']}' --test '{inputs['test']}' "
                f"--pairs '{inputs['pairs']}'")

    def embed_inputs(self, variant, view):
        """What `embed` needs for a view: the extractor (or trained baseline), and the test (or
        validation) models' folders (model:<name>) or one perturbation level (`perturbed`, a folder per
        model: `perturb` writes OUT_DIR/NAME); with evaluation lists, the lists."""
        inputs = {"extractor": self.fingerprinter_file(variant), **self.lists_inputs(view)}
        if self.view_bed(view) == "validation" or view.startswith("w"):
            return {**inputs, **self.model_inputs(self.view_models(view), self.view_bed(view))}
        kind, level = view.split("-", 1)
        return {**inputs, "perturbed": perturbed_dir(kind, level)}

    def embed_args(self, view, inputs):
        """Every view embeds only the evaluation side of each folder (modelfp.splits): never what the
        fine-tuned extractor or a baseline trained on. Test-time views only where the view has them."""
        models = (" ".join(f"--model {m} '{Path(inputs['perturbed'], m)}'" for m in self.view_models(view))
                  if "perturbed" in inputs.keys() else self.model_args(inputs))
        views = f" --views {self.view_views(view)}" if self.view_views(view) > 1 else ""
        return f"{models} --train-fraction {self.evaluation['train_fraction']}{views}{self.lists_args(inputs)}"

    def evaluate_inputs(self, variant, view):
        """The embeddings of a variant in a view, and for a baseline with its own pair verifier (Abady's
        siamese network) its trained file, whose scores are reported beside the cosine's."""
        inputs = {"embeddings": embeddings_dir(variant, view), **self.lists_inputs(view)}
        method = variant.removeprefix(BASELINE_PREFIX)
        if variant.startswith(BASELINE_PREFIX) and method in BASELINES and BASELINES[method].verifier:
            inputs["verifier"] = baseline_file(method)
        return inputs

    @staticmethod
    def verifier_args(inputs):
        return f" --verifier {inputs['verifier']}" if "verifier" in inputs.keys() else ""

    def evaluate_args(self, view=None):
        """The evaluated models with their groups: the test bed's, or in a val-w<n> view the validation
        set's (each in its family's group, so its rows read like the test bed's)."""
        bed = self.view_bed(view or self.default_view)
        models = self.val["models"] if bed == "validation" else self.tb["models"]
        return (" ".join(f"--model {m} {self.group(m, bed)}" for m in models) + f" {self.protocol_args()}"
                f" --gallery-draws {self.evaluation['gallery_draws']}")

    def protocol_args(self):
        """The attribution protocol of `evaluate` (and of train-extractor's per-epoch validation)."""
        e = self.evaluation
        return f"--pairs-same {e['pairs_same']} --pairs-diff {e['pairs_diff']} --gallery {e['gallery']} --seed {e['seed']}"

    # --- the baselines of Tables VIII-X (modelfp.baselines) -------------------------------------
    def check_baselines(self):
        """A listed method without a recipe, or a recipe's hp its method does not have."""
        missing = [m for m in self.base["methods"] if m not in self.base["recipes"]]
        if missing:
            raise ValueError(f"config: baselines.methods lists {missing} without an entry under "
                             f"baselines.recipes (steps, batch_size, hp)")
        for m in self.base["methods"]:
            if m not in BASELINES:
                raise ValueError(f"config: baselines.recipes.{m}.hp: unknown baseline {m!r}; known: {sorted(BASELINES)}")
            known = declared.defaults(f"modelfp.baselines.{m}")
            unknown = sorted(set(self.base["recipes"][m].get("hp", {})) - set(known))
            if unknown:
                raise ValueError(f"config: baselines.recipes.{m}.hp: unknown {m} hyper-parameters {unknown}; "
                                 f"known: {sorted(known)}")

    def baseline_inputs(self, method):
        """A baseline's training data: the classical test models' folders (it reads their training
        side), and the denoiser for a method whose `build` takes one (marra: residuals)."""
        inputs = self.model_inputs(self.classical_models())
        if "denoiser" in declared.parameters(f"modelfp.baselines.{method}", "build"):
            inputs["denoiser"] = DENOISER
        return inputs

    def baseline_args(self, method, inputs):
        recipe = self.base["recipes"][method]
        denoiser = f" --denoiser {inputs['denoiser']}" if "denoiser" in inputs.keys() else ""
        stopping = "".join(f" --{k.replace('_', '-')} {recipe[k]}" for k in ("eval_every", "patience") if k in recipe)
        return (f"{self.model_args(inputs, flag='--images')} --train-fraction {self.evaluation['train_fraction']} "
                f"--image-size {self.base['image_size']} --steps {recipe['steps']} --batch-size {recipe['batch_size']} "
                f"--seed {self.base['seed']} --holdout {self.base['holdout']}{stopping} "
                f"--hp '{_compact(recipe.get('hp', {}))}'{denoiser}")

    # --- the validation set's table ------------------------------------------------------------
    def validation_table_inputs(self):
        """Each variant of validation.variants: its evaluation csv and embeddings on the validation
        set (those of `all` where it trains the same thing)."""
        names = self.val["variants"]
        return {**named_inputs("evaluation", ((v, self.evaluation_csv(v, self.validation_view)) for v in names)),
                **named_inputs("embeddings", ((v, embeddings_dir(self.trained_variant(v), self.validation_view))
                                              for v in names))}

    def validation_table_args(self, inputs):
        """Arguments of `validation-table`: each variant's declared evaluation csv and embeddings,
        and the same-design pairs."""
        if len(self.val["models"]) < 2:
            raise ValueError("config: the validation target needs at least 2 models in validation.models "
                             "(entries under validation.instances; configs/demo.yaml has ten)")
        embeddings = dict(named(inputs, "embeddings"))
        rows = " ".join(f"--variant {v} {csv} {embeddings[v]}" for v, csv in named(inputs, "evaluation"))
        pairs = " ".join(f"--pair {name} {self.test_model(a, 'validation')['differs']} {a} {b}"
                         for name, (a, b) in self.validation_pairs().items())
        return f"{rows} {pairs} --gallery {self.evaluation['gallery']} --seed {self.evaluation['seed']}"

    # --- tables and figures made from evaluations ----------------------------------------------
    def check_rows(self):
        """A row whose paper label is not one of the paper's rows of its table (paper_tables.rows
        looks each up, naming the table, the label and the known ones)."""
        for name in [*paper_tables.TABLES, *paper_tables.FIGURES]:
            paper_tables.rows(name, self.preset)

    def table_rows(self, table):
        """(our label, the paper's row label or '', evaluation csv) of a table's (or figure's) rows."""
        return [(row.label, row.paper, self.evaluation_csv(row.variant, row.view or self.default_view))
                for row in paper_tables.rows(table, self.preset)]

    def table_inputs(self, table):
        """The evaluation csv of each row of a table, as the named input row:<our label>; Table VIII's
        also the ceiling diagnostic's (`diagnostic`)."""
        inputs = named_inputs("row", ((label, csv) for label, _, csv in self.table_rows(table)))
        if table == "table_viii":
            inputs["diagnostic"] = self.ceiling_csv()
        return inputs

    def table_args(self, table, inputs):
        """`--row LABEL PAPER_LABEL CSV` for each declared row input, the paper's label from table_rows
        (and Table VIII's `--diagnostic` ceiling row)."""
        paper = {label: p for label, p, _ in self.table_rows(table)}
        rows = " ".join(f"--row '{label}' '{paper[label]}' {csv}" for label, csv in named(inputs, "row"))
        if "diagnostic" in inputs.keys():
            from .ceiling import LABEL    # numpy: only where a ceiling row is passed

            rows += f" --diagnostic '{LABEL}' {inputs['diagnostic']}"
        if self.ablation_budget and table in ("table_iv", "table_v", "table_vi"):
            steps = self.ext["steps_per_epoch"]
            rows += (f" --note 'Every row, All included, trained for {self.ext['ablation_epochs'] * steps} steps, the "
                     f"ablations common budget; Only-Syn of Tables VIII-X trained for {self.ext['epochs'] * steps}.'")
        return rows

    # issue 22: the ceiling diagnostic and the paired tests of Tables VIII and IX
    def ceiling_csv(self):
        return ceiling_file(self.default_view)

    def ceiling_inputs(self):
        """The reference extractor (it embeds the training side as the reference variant embeds the
        evaluation side), the reference's evaluation embeddings and the test models' folders."""
        return {"extractor": self.fingerprinter_file("reference"),
                "embeddings": embeddings_dir("reference", self.default_view), **self.model_inputs(self.tb["models"])}

    def ceiling_args(self, inputs):
        e = self.evaluation
        return (f"{self.model_args(inputs, groups_of='testbed')} --train-fraction {e['train_fraction']} "
                f"--window {e['window']} --gallery {e['gallery']} --gallery-draws {e['gallery_draws']} "
                f"--seed {e['seed']}")

    def paired_inputs(self):
        """Per-query files of Table VIII's rows and the ceiling (queries:<label>), per-pair files of
        Table IX's rows (pairs:<label>)."""
        from .ceiling import LABEL

        queries = [(label, details_file(csv, "queries")) for label, _, csv in self.table_rows("table_viii")]
        pairs = [(label, details_file(csv, "pairs")) for label, _, csv in self.table_rows("table_ix")]
        return {**named_inputs("queries", queries + [(LABEL, details_file(self.ceiling_csv(), "queries"))]),
                **named_inputs("pairs", pairs)}

    def paired_args(self, inputs):
        """`paired-tests` arguments: Only-Syn (the row reading `all`) is the anchor of every test."""
        anchor = next(row.label for row in paper_tables.rows("table_viii", self.preset) if row.variant == "all")
        return (f"--anchor '{anchor}' " + " ".join(f"--queries '{label}' {path}" for label, path in named(inputs, "queries"))
                + " " + " ".join(f"--pairs '{label}' {path}" for label, path in named(inputs, "pairs")))

    def fig_8_inputs(self):
        """Both zoo summaries (synthesis time) and the evaluation of each blocks_<k> variant (blocks:<k>)."""
        return {"zoo": [zoo_summary("summary"), zoo_summary("summary_k3")],
                **named_inputs("blocks", ((k, csv) for k, _, csv in self.table_rows("fig_8")))}

    @staticmethod
    def fig_8_args(inputs):
        return " ".join(f"--evaluation {k} {csv}" for k, csv in named(inputs, "blocks"))

    def fig_16_curves(self):
        """{curve: the variant it reads} of Figure 16."""
        return {row.label: row.variant for row in paper_tables.rows("fig_16", self.preset)}

    def fig_16_inputs(self):
        """The evaluation of each curve's extractor in each perturbation view, as <curve>:<view>."""
        return {key: path for name, v in self.fig_16_curves().items()
                for key, path in named_inputs(name, ((view, self.evaluation_csv(v, view))
                                                     for view in self.perturbation_views())).items()}

    def fig_16_args(self, inputs):
        return " ".join(f"--point {name} {view.replace('-', ' ', 1)} {csv}"
                        for name in self.fig_16_curves() for view, csv in named(inputs, name))

    def lineage_args(self):
        if not self.tb["lineage"]:
            raise ValueError("Figure 9 needs LoRA variants: list test models with base: and lora: under "
                             "testbed.lineage (configs/demo.yaml has nine)")
        bases = sorted({self.test_model(m)["base"] for m in self.tb["lineage"]})
        return (f"--reference {' '.join(bases)} " + " ".join(f"--derived {m} {self.test_model(m)['base']}"
                                                            for m in self.tb["lineage"]))

    def configurations_args(self):
        if not self.tb["configurations"]:
            raise ValueError("Figure 15 needs a test model sampled with varied settings: list one with base: "
                             "and sampling: under testbed.configurations (configs/demo.yaml has ddpm_varied)")
        return (f"--reference {' '.join(self.tb['models'])} " + " ".join(f"--derived {m} {self.test_model(m)['base']}"
                                                                        for m in self.tb["configurations"]))

    # --- Figures 3 and 12: generators whose weights a figure reads, in no table -----------------
    def generator_bed(self, name):
        """The bed (testbed | validation) that defines an own generator a figure reads the weights of."""
        beds = [bed for bed in BED_ENTRIES if name in self.bed_entries(bed)]
        if not beds:
            raise ValueError(f"config: a figure (fig_3.pairs or fig_12.models) names {name!r}, which is defined "
                             f"neither under test_models: nor under validation.instances:")
        if not {"generator", "lora"} & set(self.test_model(name, beds[0])):
            raise ValueError(f"config: a figure reads the weights of {name!r}, but it has none of its own (it needs "
                             f"generator: and steps:, a generator the workflow trains)")
        return beds[0]

    def generator_inputs(self, names):
        """Each model's generator.pt as the named input generator:<name>."""
        return named_inputs("generator", ((m, self.generator(m, self.generator_bed(m))) for m in names))

    def fig_3_models(self):
        return [m for pair in self.config["fig_3"]["pairs"] for m in pair]

    def check_figure_generators(self):
        """A figure's unknown or weightless model, a fig_3 pair that is not one design trained twice
        with only the seed changed, and a missing pool."""
        from .blockswap import BLOCK_LAYOUTS    # numpy: only here, at start-up

        names = self.fig_3_models() + self.config["fig_12"]["models"]
        for bed in BED_ENTRIES:
            mine = [m for m in names if self.generator_bed(m) == bed]
            self.check_test_models(mine, bed)
            self.check_pools(self.trained_pools(mine, bed))
        for a, b in self.config["fig_3"]["pairs"]:
            spec = {m: self.test_model(m, self.generator_bed(m)) for m in (a, b)}
            if spec[a].get("generator") not in BLOCK_LAYOUTS:
                raise ValueError(f"config: fig_3 pair {a} / {b}: block swapping knows the families "
                                 f"{sorted(BLOCK_LAYOUTS)}, not {spec[a].get('generator')!r}")
            other = sorted(k for k in set(spec[a]) | set(spec[b])
                           if k not in ("seed", "note") and spec[a].get(k) != spec[b].get(k))
            seeds = [spec[m].get("seed", self.tb["seed"]) for m in (a, b)]
            if other or seeds[0] == seeds[1]:
                raise ValueError(f"config: fig_3 pair {a} / {b} must be one design trained twice with different "
                                 f"seeds; " + (f"they also differ in {other}" if other else f"both have seed {seeds[0]}"))

    def fig_3_inputs(self):
        return {**self.generator_inputs(self.fig_3_models()), "denoiser": DENOISER}

    def fig_3_args(self, inputs):
        """`--pair A GENERATOR_A B GENERATOR_B` per configured pair (paths: the declared inputs) and the
        classifier's settings."""
        f = self.config["fig_3"]
        generator = dict(named(inputs, "generator"))
        pairs = " ".join(f"--pair {a} {generator[a]} {b} {generator[b]}" for a, b in f["pairs"])
        return (f"{pairs} --n-train {f['n_train']} --n-test {f['n_test']} --steps {f['steps']} "
                f"--batch-size {f['batch_size']} --width {f['width']} --lr {f['lr']} --seed {f['seed']}")

    def fig_12_inputs(self):
        return self.generator_inputs(self.config["fig_12"]["models"])

    def fig_12_args(self, inputs):
        f = self.config["fig_12"]
        return (" ".join(f"--model {m} {path}" for m, path in named(inputs, "generator"))
                + f" --channel {f['channel']} --n-images {f['n_images']} --seed {f['seed']}")

    # --- the run's targets ----------------------------------------------------------------------
    def targets(self):
        """{target rule: Target}: `all` (what a plain `snakemake` builds), then one target per paper
        artifact; the Snakefile makes a rule of each."""
        tb, methods, P = self.tb, self.base["methods"], self.config["perturbations"]
        every = [
            zoo_summary("summary"), table_file("spectral_effects"), table_file("table_ii"),
            table_file("table_xi"), figure_file("fig_10"), *(table_file(t) for t in ATTRIBUTION_TABLES),
            table_file("table_viii_paired"), table_file("table_ix_paired"), figure_file("fig_8"),
            figure_file("fig_16"), tsne_file("tsne_emerging.png", "all"),
            *(tsne_file("tsne_emerging.png", baseline_variant(m)) for m in methods), calibrated_file("all"),
            *([figure_file("fig_9")] if tb["lineage"] else []),
            *([figure_file("fig_15")] if tb["configurations"] else []),
            # the validation set (issue 11) is made with every run, but no table reads it
            *([VALIDATION_CHOICES] if self.val["models"] else []),
            # figures from generators' weights (issue 16): their generators are in no table
            figure_file("fig_3"), figure_file("fig_12"),
        ]
        spectral = "Spectral effects of {} (Appendix {}), on the synthetic zoo."
        return {
            "all": Target("", every),
            "zoo": Target("The synthetic model zoo (Section III-B): every architecture with K <= 2, all seeds.",
                          [zoo_summary("summary")]),
            "zoo_k3": Target("Figure 8's extension: the 144 architectures with K = 3, all seeds.",
                             [zoo_summary("summary_k3")]),
            "denoiser": Target("The DnCNN denoiser (trained on the pools, or an external checkpoint).", [DENOISER]),
            "fig_11": Target(spectral.format("upsampling", "A1"), [figure_file("fig_11")]),
            "fig_13": Target(spectral.format("activations", "A3"), [figure_file("fig_13")]),
            "fig_14": Target(spectral.format("normalization", "A4"), [figure_file("fig_14")]),
            "testbed": Target("The test models' images (Table III analogue for presets with own generators).",
                              [self.images(m) for m in tb["models"]]),
            "validation": Target("The validation set (issue 11): every extractor variant of validation.variants "
                                 "scored on generators apart from the test bed; settings are chosen on "
                                 "results/validation/choices.csv.", [VALIDATION_CHOICES]),
            "table_ii": Target("Table II: FFD of the synthetic models (and subsets) against the test models.",
                               [table_file("table_ii")]),
            "table_xi": Target("Table XI: robustness of FFD to the number of images per model.",
                               [table_file("table_xi")]),
            "perturbations": Target("The test models' images under every JPEG quality and crop scale of Figure 16.",
                                    [perturbed_dir("jpeg", q) for q in P["jpeg"]]
                                    + [perturbed_dir("crop", c) for c in P["crop"]]),
            "table_iv": Target("Table IV: extractors trained without each synthesis option.", [table_file("table_iv")]),
            "table_v": Target("Table V: extractors trained on the first n seeds of every architecture.",
                              [table_file("table_v")]),
            "table_vi": Target("Table VI: extractors trained on fingerprinted images of each pool alone and of all "
                               "pools.", [table_file("table_vi")]),
            "table_vii": Target("Table VII: the sliding window at inference.", [table_file("table_vii")]),
            "baselines": Target("The trained baselines of Tables VIII-X (baselines.methods).",
                                [baseline_file(m) for m in methods]),
            "table_viii": Target("Table VIII: model identification per group (Only-Syn, Fine-tune, controls; paper "
                                 "baselines), the ceiling diagnostic, and McNemar tests against Only-Syn.",
                                 [table_file("table_viii"), table_file("table_viii_paired")]),
            "table_ix": Target("Table IX: model verification per group, and bootstraps of AUC differences to "
                               "Only-Syn.", [table_file("table_ix"), table_file("table_ix_paired")]),
            "table_x": Target("Table X: silhouette score and Davies-Bouldin index of the fingerprints per group.",
                              [table_file("table_x")]),
            "extractors": Target("The deployable Only-Syn and Fine-tune extractors (with their verification "
                                 "thresholds).", [calibrated_file("all"), calibrated_file("finetune")]),
        }
