#!/usr/bin/env bash
# Fill wheels/ (git-ignored) with what benchmarks/gpu_check.sh installs on a GPU machine that has
# Python 3.12, torch, torchvision, scipy and scikit-learn but no network: snakemake (the version
# pinned in pyproject.toml) with its dependencies, the package's own small dependencies that such
# an image lacks (tqdm, pyyaml, safetensors, matplotlib for the figures), gan-face-generate (the
# smoke preset's pretrained test model, its weights inside; without its dependencies, as `make
# setup` installs it), and the scikit-image photos of the embedded pools (photos/, laid out as the
# package holds them, so modelfp.pools finds them without scikit-image). Run where pip reaches an
# index:  make gpu-wheels   (or benchmarks/gpu_wheels.sh [DEST]; PYTHON: a python with skimage).
#
# Everything travels with the working tree (a carried folder, 64 MiB at most), so what the image has
# anyway or what the check can do without is dropped after the download (DROP): numpy, scipy and
# pillow (the image's); pulp, snakemake's ILP scheduler with its solver binaries, 16 MB (the check
# runs `--scheduler greedy`). albumentations is not fetched: it needs OpenCV (about 50 MB), so on a
# machine without it the check leaves out the smoke rules that perturb images (gpu_check.sh says
# which). gpu_check.sh installs every wheel here with --no-deps: this folder is the closure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=${1:-$ROOT/wheels}
PY=${PYTHON:-python3}
DROP=${GPU_WHEELS_DROP-"numpy scipy pillow pulp"}

pin() { grep -o "\"$1[=>][^\"]*\"" "$ROOT/pyproject.toml" | head -1 | tr -d '"'; }
SNAKEMAKE=$(pin snakemake)                         # e.g. snakemake==9.27.*
GANFACE=$(grep -o "gan-face-generate==[0-9.]*" "$ROOT/src/modelfp/testbed/pretrained_dcgan.py" | head -1)
SMALL=("$(pin tqdm)" "$(pin pyyaml)" "$(pin safetensors)" "$(pin matplotlib)")
[ -n "$SNAKEMAKE" ] && [ -n "$GANFACE" ] && [ -n "${SMALL[3]}" ] \
    || { echo "gpu_wheels: could not read the pins from pyproject.toml / pretrained_dcgan.py" >&2; exit 1; }
TARGET=(--only-binary=:all: --python-version "${GPU_WHEELS_PYTHON:-3.12}" --implementation cp
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)

rm -rf "$DEST" && mkdir -p "$DEST"
# connection_pool (a snakemake dependency) is published as a source archive only: build its
# pure-Python wheel here first, so that the --only-binary download below finds it in DEST
"$PY" -m pip wheel -q --no-deps -w "$DEST" connection_pool
"$PY" -m pip download -q -d "$DEST" --find-links "$DEST" "${TARGET[@]}" "$SNAKEMAKE" "${SMALL[@]}"
"$PY" -m pip download -q -d "$DEST" --no-deps "${TARGET[@]}" "$GANFACE"
for name in $DROP; do rm -f "$DEST/$name"-*.whl; done
# the embedded pools' scikit-image photos, as photos/skimage/<path in the package>
"$PY" - "$DEST/photos" "$ROOT/src" <<'PY'
import importlib.util, shutil, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from modelfp.pools import EMBEDDED_SOURCES, _PHOTO_FILES
spec = importlib.util.find_spec("skimage")
if spec is None:
    sys.exit("gpu_wheels: this python has no scikit-image to copy the pools' photos from; PYTHON=.venv/bin/python")
root = Path(list(spec.submodule_search_locations)[0])
used = {s for sources in EMBEDDED_SOURCES.values() for s in sources}
for source in sorted(used):
    package, relative = _PHOTO_FILES[source]
    if package == "skimage":
        out = Path(sys.argv[1]) / package / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / relative, out)
PY
echo "gpu_wheels: $(ls "$DEST"/*.whl | wc -l) wheels and $(find "$DEST/photos" -type f | wc -l) photos," \
     "$(du -sh "$DEST" | cut -f1) in $DEST ($SNAKEMAKE, $GANFACE, ${SMALL[*]})"
