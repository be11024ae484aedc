# Helpers that compute paths and parameters; rules stay thin.
from pathlib import Path

from modelfp import archspace

wildcard_constraints:
    arch=archspace.ID_PATTERN,
    pool=r"[A-Za-z0-9_]+",

SYN = config["synthesis"]
DEN = config["denoiser"]
SPEC = config["spectra"]
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


check_pools(SYN["pools"] + DEN["pools"])
