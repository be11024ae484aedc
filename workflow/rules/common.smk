# Helpers that compute paths and parameters; rules stay thin.
from pathlib import Path

from modelfp import archspace

wildcard_constraints:
    arch=archspace.ID_PATTERN,
    pool=r"[A-Za-z0-9_]+",
    model=r"[A-Za-z0-9_.+-]+",
    variant=r"all|immunized|finetune|random|reference|wo_[KLSUAN]|seeds_\d+|pool_\w+|blocks_[123]",
    view=r"w\d+|jpeg-[0-9.]+|crop-[0-9.]+",

SYN = config["synthesis"]
DEN = config["denoiser"]
SPEC = config["spectra"]
TB = config["testbed"]
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


def checkpoints(archs):
    return expand("results/synthetic/{arch}/seed{seed}.pt", arch=archs, seed=SEEDS)


def pool_manifest(pool):
    return f"results/pools/{pool}/manifest.json"


def pool_dirs(manifests):
    """The pool folders of a list of manifest paths, for `--pool`."""
    return " ".join(str(Path(m).parent) for m in manifests)


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


def test_model(name):
    if name not in config["test_models"]:
        raise ValueError(f"config: testbed.models names {name!r}, which is not defined under "
                         f"'test_models:' (defined: {sorted(config['test_models'])})")
    return config["test_models"][name]


def test_model_images(name):
    """The image folder of a test model: the user's folder, or the samples of our own generator."""
    spec = test_model(name)
    return spec["path"] if "path" in spec else f"results/testbed/{name}/images"


def test_model_group(name):
    spec = test_model(name)
    if "path" in spec:
        return spec["group"]
    if "base" in spec:
        return test_model_group(spec["base"])
    from modelfp.testbed import FAMILIES

    return FAMILIES[spec["generator"]].group


def test_model_family(name):
    spec = test_model(name)
    return test_model_family(spec["base"]) if "base" in spec else spec["generator"]


def test_model_generator(name):
    """The generator file a test model samples from: its own, or (same weights, other sampling)
    its base's."""
    spec = test_model(name)
    if "base" in spec and "lora" not in spec:
        return test_model_generator(spec["base"])
    return f"results/testbed/{name}/generator.pt"


def test_model_train_args(name):
    """Command-line arguments of `modelfp testbed-train` for one of our own generators."""
    import json

    spec = test_model(name)
    if "lora" in spec:
        lora = json.dumps(spec["lora"], separators=(",", ":"))
        return (f"--base {test_model_generator(spec['base'])} --lora '{lora}' "
                f"--batch-size {TB['batch_size']} --seed {spec.get('seed', TB['seed'])}")
    hp = json.dumps(spec.get("hp", {}), separators=(",", ":"))
    size = spec.get("image_size", TB["image_size"])
    return (f"--family {spec['generator']} --image-size {size} --steps {spec['steps']} "
            f"--batch-size {TB['batch_size']} --seed {spec.get('seed', TB['seed'])} --hp '{hp}'")


def test_model_train_inputs(name):
    """The base generator of a LoRA variant (none for a model trained from scratch)."""
    spec = test_model(name)
    return [test_model_generator(spec["base"])] if "lora" in spec else []


def test_model_sample_seed(name):
    """testbed.seed; a derived model (LoRA variant, other sampling) draws other noise than its base,
    so it cannot share images with it (an offset fixed by its name)."""
    import zlib

    return TB["seed"] + (zlib.crc32(name.encode()) % 100_000 if "base" in test_model(name) else 0)


def test_model_sample_args(name):
    import json

    spec = test_model(name)
    sampling = json.dumps(spec.get("sampling", {}), separators=(",", ":"))
    base = f" --base-name {spec['base']}" if "base" in spec else ""
    return f"--sampling '{sampling}'{base}"


def spectra_args(wildcards=None):
    sweep = " ".join(map(str, SPEC["n_images_sweep"]))
    return (f"--n-images {SPEC['n_images']} --n-images-sweep {sweep} --image-size {SPEC['image_size']} "
            f"--residual {SPEC['residual']} --device {config['device']}")


def check_test_models(names):
    """Stop at once when a test model's folder is missing, saying what to put where."""
    for name in names:
        spec = test_model(name)
        if "base" in spec:
            test_model(spec["base"])                       # a typo in base stops here, named
            if "lora" not in spec and "sampling" not in spec:
                raise ValueError(f"test model {name!r} names base {spec['base']!r} but neither lora "
                                 f"(a LoRA variant) nor sampling (other generation settings)")
        elif "generator" in spec:
            from modelfp.testbed import FAMILIES

            if spec["generator"] not in FAMILIES:
                raise ValueError(f"test model {name!r}: unknown generator family {spec['generator']!r}; "
                                 f"known: {sorted(FAMILIES)}")
        elif not Path(spec["path"]).is_dir():
            raise ValueError(
                f"test model {name!r}: folder {spec['path']!r} does not exist.\n"
                f"  Put the images this model generated there (any nesting and resolution; at least\n"
                f"  {max(SPEC['n_images_sweep'] + [SPEC['n_images']])} images; the paper uses 1,000 per model), e.g.\n"
                f"  {spec['path']}/00000.png. Or set test_models.{name}.path in a config overlay,\n"
                f"  or run the embedded demo: snakemake --cores 2 --configfile configs/demo.yaml")


check_pools(SYN["pools"] + DEN["pools"])
if any("path" not in test_model(m) for m in TB["models"] + TB["lineage"]):
    check_pools(TB["pools"])
check_test_models(TB["models"] + TB["lineage"] + TB["configurations"])


# --- extractor variants and their evaluation ----------------------------------------------------
EXT = config["extractor"]
EVAL = config["evaluation"]
DEFAULT_VIEW = f"w{EVAL['window']}"
DENOISER = "results/denoiser/dncnn.pt"
ATTRIBUTION_TABLES = ["table_iv", "table_v", "table_vi", "table_vii", "table_viii", "table_ix", "table_x"]


def variant_of(name):
    from modelfp.variants import variant

    return variant(name, ZOO + ZOO_K3, SYN["seeds"], SYN["pools"])


def evaluation_csv(name, view=DEFAULT_VIEW):
    """The evaluation of variant `name` (or of `all`, when it trains the same thing) in a view."""
    from modelfp.variants import canonical

    return f"results/evaluation/{canonical(name, ZOO + ZOO_K3, SYN['seeds'], SYN['pools'])}/{view}.csv"


def classical_models():
    return [m for m in TB["models"] if test_model_group(m) == "classical"]


def extractor_inputs(w):
    v = variant_of(w.variant)
    if v.finetune:
        return {"init": "results/extractors/all/trained.pt",
                "images": [test_model_images(m) for m in classical_models()]}
    return {"synthetic": expand("results/synthetic/{arch}/seed{seed}.pt", arch=v.archs, seed=v.seeds),
            "pools": [pool_manifest(p) for p in v.pools], "denoiser": DENOISER}


def extractor_args(w, input):
    """Command-line arguments of `modelfp train-extractor` for a variant."""
    import json

    v = variant_of(w.variant)
    opts = {k: val for k, val in EXT.items() if k not in ("immunize", "finetune")}
    if v.augment:
        opts["augment"] = EXT["immunize"]
    if v.backbone:
        opts.update(backbone=v.backbone, weights=None)
    if v.finetune:
        opts.update(EXT["finetune"])
        source = f"--init {input.init} " + " ".join(
            f"--images {m} '{test_model_images(m)}'" for m in classical_models())
    else:
        source = (f"--synthetic {' '.join(input.synthetic)} --pool {pool_dirs(input.pools)} "
                  f"--denoiser {input.denoiser}" + (" --untrained" if v.untrained else ""))
    return f"{source} --options '{json.dumps(opts, separators=(',', ':'))}'"


def view_window(view):
    return int(view[1:]) if view.startswith("w") else EVAL["window"]


def view_models(view):
    """Test models embedded in a view: every evaluated one, plus lineage and configuration sets
    in the default view."""
    extra = TB["lineage"] + TB["configurations"] if view == DEFAULT_VIEW else []
    return TB["models"] + [m for m in extra if m not in TB["models"]]


def view_images(view, model):
    if view.startswith("w"):
        return test_model_images(model)
    kind, level = view.split("-", 1)
    return f"results/perturbed/{kind}/{level}/{model}"


def view_inputs(view):
    """What `embed` needs for a view: the test models' folders, or one perturbation level."""
    if view.startswith("w"):
        return [test_model_images(m) for m in view_models(view)]
    kind, level = view.split("-", 1)
    return [f"results/perturbed/{kind}/{level}"]


def embed_args(w):
    return " ".join(f"--model {m} '{view_images(w.view, m)}'" for m in view_models(w.view))


def evaluate_args(w=None):
    return (" ".join(f"--model {m} {test_model_group(m)}" for m in TB["models"])
            + f" --pairs-same {EVAL['pairs_same']} --pairs-diff {EVAL['pairs_diff']}"
            + f" --gallery {EVAL['gallery']} --seed {EVAL['seed']}")


def _pool_label(p):
    return {"celeba": "CelebA", "lsun": "LSUN"}.get(p.lower(), "")


def table_rows(table):
    """(our label, the paper's row label or '', evaluation csv) of a table's rows."""
    if table == "table_iv":
        return [(f"w/o {k}", f"w/o {k}", evaluation_csv(f"wo_{k}")) for k in "KLSUAN"] + [
            ("All", "All", evaluation_csv("all"))]
    if table == "table_v":
        return [(f"{n}" + (" (all)" if n == SYN["seeds"] else ""),
                 "20" if n == SYN["seeds"] else (str(n) if n in (1, 10, 15, 20) else ""),
                 evaluation_csv(f"seeds_{n}")) for n in EVAL["seed_counts"]]
    if table == "table_vi":
        both = " + ".join(SYN["pools"])
        return [(p, _pool_label(p), evaluation_csv(f"pool_{p}")) for p in SYN["pools"]] + [
            (both, "CelebA + LSUN", evaluation_csv("all"))]
    if table == "table_vii":
        paper = {1: "w/o slide window", 2: "2x2", 3: "3x3", 4: "4x4"}
        return [("w/o slide window" if n == 1 else f"{n}x{n}", paper.get(n, ""), evaluation_csv("all", f"w{n}"))
                for n in EVAL["windows"]]
    # Tables VIII-X: the paper's two variants of ours, then the two controls
    return [("Ours (Only-Syn)", "", evaluation_csv("all")), ("Ours (Fine-tune)", "", evaluation_csv("finetune")),
            ("Training-free reference", "", evaluation_csv("reference")),
            ("Random-init extractor", "", evaluation_csv("random"))]


def table_args(table):
    return " ".join(f"--row '{label}' '{paper}' {csv}" for label, paper, csv in table_rows(table))


def perturbation_views():
    P = config["perturbations"]
    return [f"jpeg-{q}" for q in P["jpeg"]] + [f"crop-{c}" for c in P["crop"]]


def figure_16_args(w=None):
    return " ".join(f"--point {name} {view.split('-')[0]} {view.split('-')[1]} {evaluation_csv(v, view)}"
                    for name, v in (("plain", "all"), ("immunized", "immunized"))
                    for view in perturbation_views())


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
