# Helpers that compute paths and parameters; rules stay thin.
from pathlib import Path

from modelfp import archspace, seeding, variants

wildcard_constraints:
    arch=archspace.ID_PATTERN,
    slice=archspace.SLICE_PATTERN,
    pool=r"[A-Za-z0-9_]+",
    model=r"[A-Za-z0-9_.+-]+",
    bed=r"testbed|validation",
    variant=variants.FINGERPRINTER_PATTERN,
    baseline=r"[a-z]+",
    view=r"w\d+|jpeg-[0-9.]+|crop-[0-9.]+|val-w\d+",

SYN = config["synthesis"]
DEN = config["denoiser"]
SPEC = config["spectra"]
TB = config["testbed"]
VAL = config["validation"]
SEEDS = list(range(SYN["seeds"]))


def zoo_archs(blocks):
    """Architecture ids of the zoo with the given block counts (config may narrow the list)."""
    chosen = SYN["architectures"]
    archs = archspace.space(tuple(blocks))
    if chosen != "all":
        chosen = {archspace.parse(a) for a in chosen}  # a typo stops here, naming the id
        archs = [a for a in archs if a in chosen]
    return [a.id for a in archs]


ZOO = zoo_archs(archspace.BLOCKS)
ZOO_K3 = zoo_archs(archspace.BLOCKS_EXTENDED)


def checkpoints(archs, seeds=SEEDS):
    return expand("results/synthetic/{arch}/seed{seed}.pt", arch=archs, seed=seeds)


def zoo_manifests(archs):
    """The slice manifests (rule zoo_manifest) that list these architectures' checkpoints: what a
    job reading them declares, 36 files instead of 864 for the scheduler to stat (modelfp.manifest)."""
    slices = dict.fromkeys(archspace.slice_id(archspace.parse(a)) for a in archs)
    return [f"results/synthetic/slices/{s}.tsv" for s in slices]


# One synthesize job per slice (archspace.slice_archs: the 12 architectures sharing K, L, S, U).
# A configured list of architectures trains the whole slice of each listed id; only the listed
# ones are used downstream.
SLICE_CHECKPOINTS = expand("results/synthetic/{{slice}}-{member}/seed{seed}.pt",
                           member=archspace.SLICE_MEMBERS, seed=SEEDS)


def slice_arch_ids(wildcards):
    """The --arch list of a slice, in the order of SLICE_CHECKPOINTS."""
    return " ".join(a.id for a in archspace.slice_archs(wildcards.slice))


def pool_dir(pool):
    """A pool's folder (manifest.json and its shards): the `pool` rule's directory() output, and
    what every `--pool` argument names."""
    return f"results/pools/{pool}"


# Passing (name, path) pairs to a verb: each path is declared as the named input "<kind>:<name>"
# (unpack() a dict of named_inputs), and the arguments are built back from {input} with `named`,
# so the paths passed are the paths declared and the two cannot disagree.
def named_inputs(kind, pairs):
    return {f"{kind}:{name}": path for name, path in pairs}


def named(input, kind):
    """The (name, path) pairs of a rule's named inputs of one kind, in declaration order."""
    prefix = f"{kind}:"
    return [(key[len(prefix):], path) for key, path in input.items() if key.startswith(prefix)]


def pool_args(pool):
    """Command-line arguments of `modelfp pool` for a configured pool."""
    spec = config["pools"][pool]
    common = f"--image-size {config['image_size']} --val-fraction {spec['val_fraction']} --seed {config['seed']}"
    if spec["source"] == "embedded":
        return f"--source embedded --photos {spec['photos']} --count {spec['count']} {common}"
    return f"--source folder --root '{spec['path']}' --on-bad-image {config['on_bad_image']} {common}"


def check_pools(names):
    """Stop at once, before any job runs, when a configured pool is unknown or its folder is missing."""
    for name in names:
        if name not in config["pools"]:
            raise ValueError(f"config: pool {name!r} is used but not defined under 'pools:' "
                             f"(defined: {sorted(config['pools'])})")
        spec = config["pools"][name]
        if spec["source"] == "folder" and not Path(spec["path"]).is_dir():
            raise ValueError(
                f"pool {name!r}: folder {spec['path']!r} does not exist.\n"
                f"  Put the images of this pool there (any nesting; jpg/png/webp/bmp/tiff), e.g.\n"
                f"  CelebA: unpack img_align_celeba.zip so that {spec['path']}/000001.jpg exists;\n"
                f"  LSUN: export each category's images into {spec['path']}/<category>/.\n"
                f"  Or set pools.{name}.path in a config overlay, or run the embedded demo:\n"
                f"  snakemake --cores 2 --configfile configs/demo.yaml")


# Test models and validation models (issue 11: settings are chosen on the validation set, the test
# bed is for the final tables only) are entries of one schema, made by the same rules under
# results/{bed}/{model}/; every helper below takes the bed, the test bed by default.
BED_ENTRIES = {"testbed": ("test_models", "testbed.models"),
               "validation": ("validation.instances", "validation.models")}


def bed_entries(bed):
    return config["test_models"] if bed == "testbed" else VAL["instances"]


def test_model(name, bed="testbed"):
    if name not in bed_entries(bed):
        where, lister = BED_ENTRIES[bed]
        raise ValueError(f"config: {lister} (or a base:) names {name!r}, which is not defined under "
                         f"'{where}:' (defined: {sorted(bed_entries(bed))})")
    return bed_entries(bed)[name]


def test_model_images(name, bed="testbed"):
    """The image folder of a model: the user's folder, or the samples of our own generator."""
    spec = test_model(name, bed)
    return spec["path"] if "path" in spec else f"results/{bed}/{name}/images"


def test_model_group(name, bed="testbed"):
    spec = test_model(name, bed)
    if "path" in spec:
        return spec["group"]
    if "base" in spec:
        return test_model_group(spec["base"], bed)
    from modelfp.testbed import FAMILIES

    return FAMILIES[spec["generator"]].group


def test_model_family(name, bed="testbed"):
    spec = test_model(name, bed)
    return test_model_family(spec["base"], bed) if "base" in spec else spec["generator"]


def test_model_generator(name, bed="testbed"):
    """The generator file a model samples from: its own, or (same weights, other sampling)
    its base's."""
    spec = test_model(name, bed)
    if "base" in spec and "lora" not in spec:
        return test_model_generator(spec["base"], bed)
    return f"results/{bed}/{name}/generator.pt"


def test_model_pools(name, bed="testbed"):
    """The pools an own generator (or LoRA variant) trains on: its `pools:`, else testbed.pools."""
    return test_model(name, bed).get("pools", TB["pools"])


def test_model_n_images(name, bed="testbed"):
    """Images an own generator samples: its entry's `n_images`, else the bed's."""
    default = VAL.get("n_images", TB["n_images"]) if bed == "validation" else TB["n_images"]
    return test_model(name, bed).get("n_images", default)


def model_inputs(names, bed="testbed", kind="model"):
    """Each model's image folder as the named input <kind>:<name> (read back by model_args)."""
    return named_inputs(kind, ((m, test_model_images(m, bed)) for m in names))


def model_args(input, flag="--model", groups_of=None, kind="model"):
    """`FLAG NAME 'FOLDER'` (and the model's group in bed `groups_of`) for each <kind>:<name> input."""
    return " ".join(f"{flag} {m} '{folder}'" + (f" {test_model_group(m, groups_of)}" if groups_of else "")
                    for m, folder in named(input, kind))


def test_model_train_args(name, bed, input):
    """Command-line arguments of `modelfp testbed-train` for one of our own generators (a LoRA
    variant's --base is its declared input)."""
    import json

    spec = test_model(name, bed)
    if "lora" in spec:
        lora = json.dumps(spec["lora"], separators=(",", ":"))
        (base,) = input.base
        return (f"--base {base} --lora '{lora}' "
                f"--batch-size {TB['batch_size']} --seed {test_model_seed(name, bed)}")
    hp = json.dumps(spec.get("hp", {}), separators=(",", ":"))
    size = spec.get("image_size", TB["image_size"])
    return (f"--family {spec['generator']} --image-size {size} --steps {spec['steps']} "
            f"--batch-size {TB['batch_size']} --seed {test_model_seed(name, bed)} --hp '{hp}'")


def test_model_train_inputs(name, bed="testbed"):
    """The base generator of a LoRA variant (none for a model trained from scratch)."""
    spec = test_model(name, bed)
    return [test_model_generator(spec["base"], bed)] if "lora" in spec else []


def test_model_seed(name, bed="testbed"):
    """The training and sampling seed of a generator: its entry's `seed` (pairs meant to differ
    only in data share one on purpose), else one derived from its name, so no two generators share
    initial weights or latents by accident. A derived model (LoRA variant, other sampling) has its
    own name, hence other noise than its base: it cannot share images with it."""
    spec = test_model(name, bed)
    return spec["seed"] if "seed" in spec else seeding.generator_seed(name, TB["seed"])


def test_model_sample_args(name, bed="testbed"):
    import json

    spec = test_model(name, bed)
    sampling = json.dumps(spec.get("sampling", {}), separators=(",", ":"))
    base = f" --base-name {spec['base']}" if "base" in spec else ""
    return f"--sampling '{sampling}'{base}"


def spectra_args(wildcards=None):
    sweep = " ".join(map(str, SPEC["n_images_sweep"]))
    return (f"--n-images {SPEC['n_images']} --n-images-sweep {sweep} --image-size {SPEC['image_size']} "
            f"--residual {SPEC['residual']} --device {config['device']}")


def check_test_models(names, bed="testbed"):
    """Stop at once when a test model's folder is missing, saying what to put where."""
    what = "test model" if bed == "testbed" else "validation model"
    for name in names:
        spec = test_model(name, bed)
        if "base" in spec:
            test_model(spec["base"], bed)                  # a typo in base stops here, named
            if "lora" not in spec and "sampling" not in spec:
                raise ValueError(f"{what} {name!r} names base {spec['base']!r} but neither lora "
                                 f"(a LoRA variant) nor sampling (other generation settings)")
        elif "generator" in spec:
            from modelfp.testbed import FAMILIES

            if spec["generator"] not in FAMILIES:
                raise ValueError(f"{what} {name!r}: unknown generator family {spec['generator']!r}; "
                                 f"known: {sorted(FAMILIES)}")
        if "generator" in spec or "base" in spec:
            from modelfp.testbed import check_options

            check_options(f"{BED_ENTRIES[bed][0]}.{name}", test_model_family(name, bed), spec.get("hp", {}),
                          spec.get("sampling", {}))
        elif not Path(spec["path"]).is_dir():
            raise ValueError(
                f"{what} {name!r}: folder {spec['path']!r} does not exist.\n"
                f"  Put the images this model generated there (any nesting and resolution; at least\n"
                f"  {max(SPEC['n_images_sweep'] + [SPEC['n_images']])} images; the paper uses 1,000 per model), e.g.\n"
                f"  {spec['path']}/00000.png. Or set {BED_ENTRIES[bed][0]}.{name}.path in a config overlay,\n"
                f"  or run the embedded demo: snakemake --cores 2 --configfile configs/demo.yaml")


def trained_pools(names, bed="testbed"):
    """The pools that the own generators and LoRA variants among `names` train on."""
    return sorted({p for m in names if {"generator", "lora"} & set(test_model(m, bed))
                   for p in test_model_pools(m, bed)})


def validation_pairs():
    """{pair name: [its two members]} of the validation set (entries with `pair:`)."""
    pairs = {}
    for m in VAL["models"]:
        if "pair" in test_model(m, "validation"):
            pairs.setdefault(test_model(m, "validation")["pair"], []).append(m)
    return pairs


def check_validation():
    """The validation set stands apart from the test bed (no name in common), and each same-design
    pair is two entries that differ in what `differs:` says and in nothing else."""
    clash = sorted(set(VAL["models"]) & set(config["test_models"]))
    if clash:
        raise ValueError(f"config: validation model name(s) {clash} are also test models (test_models:). "
                         f"The validation set, on which settings are chosen, must stay apart from the "
                         f"test bed: rename them under validation.instances and validation.models")
    check_test_models(VAL["models"], "validation")
    for pair, members in validation_pairs().items():
        if len(members) != 2:
            raise ValueError(f"config: validation pair {pair!r} has {len(members)} member(s) in "
                             f"validation.models ({members}); a pair has exactly two")
        a, b = (test_model(m, "validation") for m in members)
        if a.get("differs") is None or a.get("differs") != b.get("differs"):
            raise ValueError(f"config: validation pair {pair!r}: both {members} must say the same "
                             f"differs: seed or differs: data")
        key = "seed" if a["differs"] == "seed" else "pools"
        other = sorted(k for k in set(a) | set(b) if k not in ("note", key) and a.get(k) != b.get(k))
        if key == "pools" and not ("seed" in a and "seed" in b):
            raise ValueError(f"config: validation pair {pair!r} ({members}) differs only in data, so both "
                             f"entries must share one explicit seed: (without one each gets its own "
                             f"seed, derived from its name); add e.g. seed: {seeding.derive(pair) % 1000} to both")
        value = ((lambda m: test_model_seed(m, "validation")) if key == "seed" else
                 (lambda m: sorted(test_model_pools(m, "validation"))))
        if other or value(members[0]) == value(members[1]):
            raise ValueError(f"config: validation pair {pair!r} ({members}) must differ in {key} and only "
                             f"in {key} (differs: {a['differs']}); "
                             + (f"they also differ in {other}" if other else f"both have {key} {value(members[0])}"))


check_validation()      # first: a name shared with the test bed is the error to see
check_pools(SYN["pools"] + DEN["pools"] + trained_pools(TB["models"] + TB["lineage"])
            + trained_pools(VAL["models"], "validation"))
check_test_models(TB["models"] + TB["lineage"] + TB["configurations"])


# --- extractor variants and their evaluation ----------------------------------------------------
EXT = config["extractor"]
# the ablations train for their own, smaller budget when the preset gives one (modelfp.variants)
ABLATION_BUDGET = EXT.get("ablation_epochs", EXT["epochs"]) != EXT["epochs"]
EVAL = config["evaluation"]
DEFAULT_VIEW = f"w{EVAL['window']}"
DENOISER = "results/denoiser/dncnn.pt"
ATTRIBUTION_TABLES = list(variants.TABLES)


def variant_of(name):
    from modelfp.variants import variant

    return variant(name, ZOO + ZOO_K3, SYN["seeds"], SYN["pools"])


def evaluation_csv(name, view=DEFAULT_VIEW):
    """The evaluation of variant `name` (or of `all`, when it trains the same thing) in a view."""
    from modelfp.variants import canonical

    trained = canonical(name, ZOO + ZOO_K3, SYN["seeds"], SYN["pools"], ABLATION_BUDGET)
    return f"results/evaluation/{trained}/{view}.csv"


def classical_models():
    return [m for m in TB["models"] if test_model_group(m) == "classical"]


for _v in EXT["validate"]:
    try:
        variant_of(_v)                      # a typo stops the run here
    except ValueError as err:
        raise ValueError(f"config: extractor.validate: {err}") from None


def extractor_inputs(w):
    """A variant's training data; for the variants of extractor.validate (when the config has a
    validation set) also the validation models' folders, validation:<name>, scored after every
    epoch (read back by extractor_args; they are never trained on)."""
    v = variant_of(w.variant)
    validation = (model_inputs(VAL["models"], "validation", kind="validation")
                  if w.variant in EXT["validate"] and len(VAL["models"]) >= 2 else {})
    if v.finetune:
        return {"init": "results/extractors/all/trained.pt", **model_inputs(classical_models()), **validation}
    return {"manifests": zoo_manifests(v.archs),
            "pools": [pool_dir(p) for p in v.pools], "denoiser": DENOISER, **validation}


def extractor_args(w, input):
    """Command-line arguments of `modelfp train-extractor` for a variant."""
    import json

    v = variant_of(w.variant)
    opts = {k: val for k, val in EXT.items() if k not in ("immunize", "finetune", "ablation_epochs", "validate")}
    if v.ablation and "ablation_epochs" in EXT:
        opts["epochs"] = EXT["ablation_epochs"]
    if v.augment:
        opts["augment"] = EXT["immunize"]
    if v.backbone:
        opts.update(backbone=v.backbone, weights=None)
    validation = model_args(input, flag="--validation", kind="validation")
    if v.finetune:
        opts.update(EXT["finetune"])
        source = f"--init {input.init} {model_args(input, flag='--images')}"
    else:
        source = (f"--synthetic {' '.join(checkpoints(v.archs, v.seeds))} --manifest {' '.join(input.manifests)} "
                  f"--pool {' '.join(input.pools)} "
                  f"--denoiser {input.denoiser}" + (" --untrained" if v.untrained else ""))
    if v.finetune or validation:
        # each folder's side (modelfp.splits): fine-tuning reads the training side; the per-epoch
        # validation, like `embed`, the evaluation side
        source += f" --train-fraction {EVAL['train_fraction']}"
    if validation:
        source += f" {validation} --window {EVAL['window']} {protocol_args()}"
    return f"{source} --options '{json.dumps(opts, separators=(',', ':'))}'"


def extractor_state(w, output):
    """train-extractor's resumable state, beside the declared trained.pt. Not an output: Snakemake
    deletes a failed job's outputs, which would throw away the very state a rerun resumes from;
    the verb deletes it once trained.pt is written."""
    return str(Path(output.model).with_name("state.pt"))


# A view val-w<n> is the validation set's images in n x n windows: the same embed and evaluate
# rules, other models (results/embeddings/{variant}/val-w<n>, results/evaluation/{variant}/val-w<n>.csv).
VALIDATION_VIEW = f"val-{DEFAULT_VIEW}"


def calibration_csv(variant):
    """Where an extractor's thresholds are chosen: its evaluation on the validation set, never on
    the test bed (issue 11)."""
    if len(VAL["models"]) < 2:
        raise ValueError("config: the thresholds of results/extractors/<variant>/model.pt are chosen "
                         "on validation generators; list at least two under validation.models")
    return evaluation_csv(variant, VALIDATION_VIEW)


def calibration_embeddings(variant):
    """The validation embeddings behind `calibration_csv`: where the per-model open-set constants
    of identify's "unknown" are fitted (modelfp.openset)."""
    trained, view = calibration_csv(variant).removeprefix("results/evaluation/").removesuffix(".csv").split("/")
    return f"results/embeddings/{trained}/{view}"


def view_bed(view):
    return "validation" if view.startswith("val-") else "testbed"


def view_window(view):
    view = view.removeprefix("val-")
    return int(view[1:]) if view.startswith("w") else EVAL["window"]


def view_models(view):
    """Models embedded in a view: the validation set in val-w<n>; else every evaluated test model,
    plus lineage and configuration sets in the default view."""
    if view_bed(view) == "validation":
        return VAL["models"]
    extra = TB["lineage"] + TB["configurations"] if view == DEFAULT_VIEW else []
    return TB["models"] + [m for m in extra if m not in TB["models"]]


def fingerprinter_file(variant):
    """The file that embeds for a variant: a trained extractor, or a trained baseline (baseline_<method>)."""
    if variant.startswith(variants.BASELINE_PREFIX):
        return baseline_file(variant.removeprefix(variants.BASELINE_PREFIX))
    return f"results/extractors/{variant}/trained.pt"


# The authors' evaluation lists (optional evaluation.lists; modelfp.protocol_lists): in every test
# bed view, `embed` reads exactly the images they name and `evaluate` uses exactly their support/test
# split and pairs, for every variant; validation views keep the seeded protocol.
LISTS = EVAL.get("lists")
LIST_FILES = {k: LISTS[k] for k in ("support", "test", "pairs")} if LISTS else {}


def check_lists():
    """Named at start-up: a missing lists root or list file."""
    if not LISTS:
        return
    if not Path(LISTS["root"]).is_dir():
        raise ValueError(f"config: evaluation.lists.root {LISTS['root']!r} is not a folder")
    missing = [f"evaluation.lists.{k}: {f}" for k, f in LIST_FILES.items() if not Path(f).is_file()]
    if missing:
        raise ValueError(f"config: missing evaluation list file(s): {'; '.join(missing)}")
    from modelfp import protocol_lists    # malformed lines and unknown models, named by file:line

    lists = protocol_lists.read_lists(LISTS["root"], *LIST_FILES.values())
    protocol_lists.check_models(lists, TB["models"])


check_lists()


def lists_inputs(w):
    return dict(LIST_FILES) if LISTS and view_bed(w.view) == "testbed" else {}


def lists_args(w, input):
    if "support" not in input.keys():
        return ""
    return (f" --lists-root '{LISTS['root']}' --support '{input.support}' --test '{input.test}' "
            f"--pairs '{input.pairs}'")


def embed_inputs(w):
    """What `embed` needs for a view: the extractor (or trained baseline), and the test (or
    validation) models' folders (model:<name>) or one perturbation level (`perturbed`, a folder per
    model: `perturb` writes OUT_DIR/NAME); with evaluation lists, the lists."""
    inputs = {"extractor": fingerprinter_file(w.variant), **lists_inputs(w)}
    if view_bed(w.view) == "validation" or w.view.startswith("w"):
        return {**inputs, **model_inputs(view_models(w.view), view_bed(w.view))}
    kind, level = w.view.split("-", 1)
    return {**inputs, "perturbed": f"results/perturbed/{kind}/{level}"}


# --- the baselines of Tables VIII-X (modelfp.baselines) ---------------------------------------
BASE = config["baselines"]
_missing_recipes = [m for m in BASE["methods"] if m not in BASE["recipes"]]
if _missing_recipes:
    raise ValueError(f"config: baselines.methods lists {_missing_recipes} without an entry under "
                     f"baselines.recipes (steps, batch_size, hp)")
if BASE["methods"]:
    from modelfp import baselines as _baselines

    for _m in BASE["methods"]:
        try:
            _baselines.resolve(_m, BASE["recipes"][_m].get("hp", {}))      # a typo stops the run here
        except ValueError as err:
            raise ValueError(f"config: baselines.recipes.{_m}.hp: {err}") from None


def baseline_file(method):
    return f"results/baselines/{method}/model.pt"


def baseline_inputs(w):
    """A baseline's training data: the classical test models' folders (it reads their training side)."""
    inputs = model_inputs(classical_models())
    if w.baseline == "marra":
        inputs["denoiser"] = DENOISER
    return inputs


def baseline_args(w, input):
    import json

    recipe = BASE["recipes"][w.baseline]
    denoiser = f" --denoiser {input.denoiser}" if "denoiser" in input.keys() else ""
    stopping = "".join(f" --{k.replace('_', '-')} {recipe[k]}" for k in ("eval_every", "patience") if k in recipe)
    return (f"{model_args(input, flag='--images')} --train-fraction {EVAL['train_fraction']} "
            f"--image-size {BASE['image_size']} --steps {recipe['steps']} --batch-size {recipe['batch_size']} "
            f"--seed {BASE['seed']} --holdout {BASE['holdout']}{stopping} "
            f"--hp '{json.dumps(recipe.get('hp', {}), separators=(',', ':'))}'{denoiser}")


def baseline_state(w, output):
    """train-baseline's resumable state, beside the declared model.pt; not an output, for the
    reason `extractor_state` gives (the verb deletes it once model.pt is written)."""
    return str(Path(output[0]).with_name("state.pt"))


def embed_args(w, input):
    """Every view embeds only the evaluation side of each folder (modelfp.splits): never what the
    fine-tuned extractor or a baseline trained on."""
    models = (" ".join(f"--model {m} '{Path(input.perturbed, m)}'" for m in view_models(w.view))
              if "perturbed" in input.keys() else model_args(input))
    return f"{models} --train-fraction {EVAL['train_fraction']}{lists_args(w, input)}"


def evaluate_inputs(w):
    """The embeddings of a variant in a view, and for a baseline with its own pair verifier (Abady's
    siamese network) its trained file, whose scores are reported beside the cosine's."""
    inputs = {"embeddings": f"results/embeddings/{w.variant}/{w.view}", **lists_inputs(w)}
    method = w.variant.removeprefix(variants.BASELINE_PREFIX)
    if w.variant.startswith(variants.BASELINE_PREFIX) and method in variants.BASELINE_VERIFIERS:
        inputs["verifier"] = baseline_file(method)
    return inputs


def verifier_args(w, input):
    return f" --verifier {input.verifier}" if "verifier" in input.keys() else ""


def evaluate_args(w=None):
    """The evaluated models with their groups: the test bed's, or in a val-w<n> view the validation
    set's (each in its family's group, so its rows read like the test bed's)."""
    bed = view_bed(getattr(w, "view", DEFAULT_VIEW))
    models = VAL["models"] if bed == "validation" else TB["models"]
    return (" ".join(f"--model {m} {test_model_group(m, bed)}" for m in models) + f" {protocol_args()}"
            f" --gallery-draws {EVAL['gallery_draws']}")


def protocol_args():
    """The attribution protocol of `evaluate` (and of train-extractor's per-epoch validation)."""
    return (f"--pairs-same {EVAL['pairs_same']} --pairs-diff {EVAL['pairs_diff']} "
            f"--gallery {EVAL['gallery']} --seed {EVAL['seed']}")


def validation_embeddings(name):
    """The validation set's embeddings by variant `name` (that of `all` when it trains the same thing)."""
    return str(Path(evaluation_csv(name, VALIDATION_VIEW).replace("results/evaluation/", "results/embeddings/", 1))
               .with_suffix(""))


def validation_table_inputs(w=None):
    """Each variant of validation.variants: its evaluation csv and embeddings on the validation set."""
    return {**named_inputs("evaluation", ((v, evaluation_csv(v, VALIDATION_VIEW)) for v in VAL["variants"])),
            **named_inputs("embeddings", ((v, validation_embeddings(v)) for v in VAL["variants"]))}


def validation_table_args(w, input):
    """Command-line arguments of `modelfp validation-table`: each variant's declared evaluation csv
    and embeddings, and the same-design pairs."""
    if len(VAL["models"]) < 2:
        raise ValueError("config: the validation target needs at least 2 models in validation.models "
                         "(entries under validation.instances; configs/demo.yaml has ten)")
    embeddings = dict(named(input, "embeddings"))
    variants = " ".join(f"--variant {v} {csv} {embeddings[v]}" for v, csv in named(input, "evaluation"))
    pairs = " ".join(f"--pair {name} {test_model(a, 'validation')['differs']} {a} {b}"
                     for name, (a, b) in validation_pairs().items())
    return f"{variants} {pairs} --gallery {EVAL['gallery']} --seed {EVAL['seed']}"


# What of the config shapes the rows of Tables IV-X and Figures 8 and 16 (modelfp.variants.FAMILIES:
# each row's variant, labels and the paper's numbers)
PRESET = variants.Preset(SYN["seeds"], tuple(SYN["pools"]), tuple(EVAL["seed_counts"]), tuple(EVAL["windows"]),
                         tuple(BASE["methods"]))


def check_rows():
    """Stop at start-up on a row whose paper label is not one of the paper's rows of its table
    (variants.rows looks each up, naming the table, the label and the known ones)."""
    for table in ATTRIBUTION_TABLES + ["fig_8", "fig_16"]:
        variants.rows(table, PRESET)


check_rows()


def table_rows(table):
    """(our label, the paper's row label or '', evaluation csv) of a table's (or figure's) rows."""
    return [(row.label, row.paper, evaluation_csv(row.variant, row.view or DEFAULT_VIEW))
            for row in variants.rows(table, PRESET)]


def table_inputs(w):
    """The evaluation csv of each row of a table, as the named input row:<our label>; Table VIII's
    also the ceiling diagnostic's (`diagnostic`)."""
    inputs = named_inputs("row", ((label, csv) for label, _, csv in table_rows(w.table)))
    if w.table == "table_viii":
        inputs["diagnostic"] = CEILING_CSV
    return inputs


def table_args(w, input):
    """`--row LABEL PAPER_LABEL CSV` for each declared row input, the paper's label from table_rows
    (and Table VIII's `--diagnostic` ceiling row)."""
    paper = {label: p for label, p, _ in table_rows(w.table)}
    rows = " ".join(f"--row '{label}' '{paper[label]}' {csv}" for label, csv in named(input, "row"))
    if "diagnostic" in input.keys():
        rows += f" --diagnostic '{ceiling.LABEL}' {input.diagnostic}"
    if ABLATION_BUDGET and w.table in ("table_iv", "table_v", "table_vi"):
        steps = EXT["steps_per_epoch"]
        rows += (f" --note 'Every row, All included, trained for {EXT['ablation_epochs'] * steps} steps, the "
                 f"ablations common budget; Only-Syn of Tables VIII-X trained for {EXT['epochs'] * steps}.'")
    return rows


# --- issue 22: noise and paired tests of Tables VIII and IX, and the ceiling diagnostic ----------
from modelfp import ceiling

CEILING_CSV = f"results/ceiling/{DEFAULT_VIEW}.csv"
CEILING_QUERIES = f"results/ceiling/{DEFAULT_VIEW}.queries.csv"


def evaluation_details(csv, kind):
    """The per-query ("queries") or per-pair ("pairs") file `evaluate` writes beside its csv."""
    return str(Path(csv).with_suffix(f".{kind}.csv"))


def ceiling_inputs(w=None):
    """The reference extractor (it embeds the training side as the reference variant embeds the
    evaluation side), the reference's evaluation embeddings and the test models' folders."""
    return {"extractor": fingerprinter_file("reference"), "embeddings": f"results/embeddings/reference/{DEFAULT_VIEW}",
            **model_inputs(TB["models"])}


def ceiling_args(w, input):
    return (f"{model_args(input, groups_of='testbed')} --train-fraction {EVAL['train_fraction']} "
            f"--window {EVAL['window']} --gallery {EVAL['gallery']} --gallery-draws {EVAL['gallery_draws']} "
            f"--seed {EVAL['seed']}")


def paired_inputs(w=None):
    """Per-query files of Table VIII's rows and the ceiling (queries:<label>), per-pair files of
    Table IX's rows (pairs:<label>)."""
    queries = [(label, evaluation_details(csv, "queries")) for label, _, csv in table_rows("table_viii")]
    pairs = [(label, evaluation_details(csv, "pairs")) for label, _, csv in table_rows("table_ix")]
    return {**named_inputs("queries", queries + [(ceiling.LABEL, CEILING_QUERIES)]),
            **named_inputs("pairs", pairs)}


def paired_args(w, input):
    """`paired-tests` arguments: Only-Syn (the row reading `all`) is the anchor of every test."""
    anchor = next(row.label for row in variants.rows("table_viii", PRESET) if row.variant == "all")
    return (f"--anchor '{anchor}' " + " ".join(f"--queries '{label}' {path}" for label, path in named(input, "queries"))
            + " " + " ".join(f"--pairs '{label}' {path}" for label, path in named(input, "pairs")))


def perturbation_views():
    P = config["perturbations"]
    return [f"jpeg-{q}" for q in P["jpeg"]] + [f"crop-{c}" for c in P["crop"]]


FIGURE_16_EXTRACTORS = {row.label: row.variant for row in variants.rows("fig_16", PRESET)}  # curve: variant


def fig_8_inputs(w=None):
    """Both zoo summaries (synthesis time) and the evaluation of each blocks_<k> variant (blocks:<k>)."""
    return {"zoo": ["results/synthetic/summary.csv", "results/synthetic/summary_k3.csv"],
            **named_inputs("blocks", ((k, csv) for k, _, csv in table_rows("fig_8")))}


def fig_8_args(w, input):
    return " ".join(f"--evaluation {k} {csv}" for k, csv in named(input, "blocks"))


def fig_16_inputs(w=None):
    """The evaluation of each curve's extractor in each perturbation view, as <curve>:<view>."""
    return {key: path for name, v in FIGURE_16_EXTRACTORS.items()
            for key, path in named_inputs(name, ((view, evaluation_csv(v, view))
                                                 for view in perturbation_views())).items()}


def fig_16_args(w, input):
    return " ".join(f"--point {name} {view.replace('-', ' ', 1)} {csv}"
                    for name in FIGURE_16_EXTRACTORS for view, csv in named(input, name))


def lineage_args(w=None):
    if not TB["lineage"]:
        raise ValueError("Figure 9 needs LoRA variants: list test models with base: and lora: under "
                         "testbed.lineage (configs/demo.yaml has nine)")
    bases = sorted({test_model(m)["base"] for m in TB["lineage"]})
    return (f"--reference {' '.join(bases)} " + " ".join(f"--derived {m} {test_model(m)['base']}"
                                                        for m in TB["lineage"]))


def configurations_args(w=None):
    if not TB["configurations"]:
        raise ValueError("Figure 15 needs a test model sampled with varied settings: list one with base: "
                         "and sampling: under testbed.configurations (configs/demo.yaml has ddpm_varied)")
    return (f"--reference {' '.join(TB['models'])} " + " ".join(f"--derived {m} {test_model(m)['base']}"
                                                                for m in TB["configurations"]))


# --- Figures 3 and 12 (figures.smk): generators whose weights a figure reads, in no table -------
FIG_3 = config["fig_3"]
FIG_12 = config["fig_12"]


def generator_bed(name):
    """The bed (testbed | validation) that defines an own generator a figure reads the weights of."""
    beds = [bed for bed in BED_ENTRIES if name in bed_entries(bed)]
    if not beds:
        raise ValueError(f"config: a figure (fig_3.pairs or fig_12.models) names {name!r}, which is defined "
                         f"neither under test_models: nor under validation.instances:")
    if not {"generator", "lora"} & set(test_model(name, beds[0])):
        raise ValueError(f"config: a figure reads the weights of {name!r}, but it has none of its own (it needs "
                         f"generator: and steps:, a generator the workflow trains)")
    return beds[0]


def generator_inputs(names):
    """Each model's generator.pt as the named input generator:<name>."""
    return named_inputs("generator", ((m, test_model_generator(m, generator_bed(m))) for m in names))


def check_figure_generators():
    """Stop at start-up on a figure's unknown or weightless model, on a fig_3 pair that is not one
    design trained twice with only the seed changed, and on a missing pool."""
    from modelfp.blockswap import BLOCK_LAYOUTS

    names = [m for pair in FIG_3["pairs"] for m in pair] + FIG_12["models"]
    for bed in BED_ENTRIES:
        mine = [m for m in names if generator_bed(m) == bed]
        check_test_models(mine, bed)
        check_pools(trained_pools(mine, bed))
    for a, b in FIG_3["pairs"]:
        spec = {m: test_model(m, generator_bed(m)) for m in (a, b)}
        if spec[a].get("generator") not in BLOCK_LAYOUTS:
            raise ValueError(f"config: fig_3 pair {a} / {b}: block swapping knows the families "
                             f"{sorted(BLOCK_LAYOUTS)}, not {spec[a].get('generator')!r}")
        other = sorted(k for k in set(spec[a]) | set(spec[b])
                       if k not in ("seed", "note") and spec[a].get(k) != spec[b].get(k))
        seeds = [spec[m].get("seed", TB["seed"]) for m in (a, b)]
        if other or seeds[0] == seeds[1]:
            raise ValueError(f"config: fig_3 pair {a} / {b} must be one design trained twice with different "
                             f"seeds; " + (f"they also differ in {other}" if other else f"both have seed {seeds[0]}"))


check_figure_generators()


def fig_3_inputs(w=None):
    return {**generator_inputs([m for pair in FIG_3["pairs"] for m in pair]), "denoiser": DENOISER}


def fig_3_args(w, input):
    """`--pair A GENERATOR_A B GENERATOR_B` per configured pair (paths: the declared inputs) and the
    classifier's settings."""
    generator = dict(named(input, "generator"))
    pairs = " ".join(f"--pair {a} {generator[a]} {b} {generator[b]}" for a, b in FIG_3["pairs"])
    return (f"{pairs} --n-train {FIG_3['n_train']} --n-test {FIG_3['n_test']} --steps {FIG_3['steps']} "
            f"--batch-size {FIG_3['batch_size']} --width {FIG_3['width']} --lr {FIG_3['lr']} --seed {FIG_3['seed']}")


def fig_12_inputs(w=None):
    return generator_inputs(FIG_12["models"])


def fig_12_args(w, input):
    return (" ".join(f"--model {m} {path}" for m, path in named(input, "generator"))
            + f" --channel {FIG_12['channel']} --n-images {FIG_12['n_images']} --seed {FIG_12['seed']}")
