# Helpers that compute paths and parameters; rules stay thin.
from pathlib import Path

from modelfp import archspace

wildcard_constraints:
    arch=archspace.ID_PATTERN,
    pool=r"[A-Za-z0-9_]+",
    model=r"[A-Za-z0-9_.+-]+",

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
    from modelfp.testbed import FAMILIES

    return FAMILIES[spec["generator"]].group


def test_model_train_args(name):
    """Command-line arguments of `modelfp testbed-train` for one of our own generators."""
    import json

    spec = test_model(name)
    hp = json.dumps(spec.get("hp", {}), separators=(",", ":"))
    size = spec.get("image_size", TB["image_size"])
    return (f"--family {spec['generator']} --image-size {size} --steps {spec['steps']} "
            f"--batch-size {TB['batch_size']} --seed {spec.get('seed', TB['seed'])} --hp '{hp}'")


def spectra_args(wildcards=None):
    sweep = " ".join(map(str, SPEC["n_images_sweep"]))
    return (f"--n-images {SPEC['n_images']} --n-images-sweep {sweep} --image-size {SPEC['image_size']} "
            f"--residual {SPEC['residual']} --device {config['device']}")


def check_test_models(names):
    """Stop at once when a test model's folder is missing, saying what to put where."""
    for name in names:
        spec = test_model(name)
        if "generator" in spec:
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
if any("generator" in test_model(m) for m in TB["models"]):
    check_pools(TB["pools"])
check_test_models(TB["models"])
