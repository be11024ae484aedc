#!/usr/bin/env bash
# Fill wheels/ (git-ignored) with what benchmarks/gpu_check.sh installs on a GPU machine that has
# Python 3.12 and torch but no network: snakemake (the version pinned in pyproject.toml) with its
# dependencies, albumentations (the perturbation rule), and gan-face-generate (the smoke preset's
# pretrained test model, its weights inside; installed without its dependencies, as `make setup`
# does). Run where pip reaches an index:  make gpu-wheels   (or benchmarks/gpu_wheels.sh [DEST]).
#
# The large binary packages that a CUDA/torch image has anyway (GPU_IMAGE_HAS) are dropped after
# the download, so wheels/ stays small enough to travel with the working tree (about 45 MB); the
# check's venv is made with --system-site-packages and takes them from the image.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=${1:-$ROOT/wheels}
PY=${PYTHON:-python3}
GPU_IMAGE_HAS=${GPU_IMAGE_HAS-"numpy scipy opencv_python_headless pyyaml psutil wrapt charset_normalizer markupsafe"}

pin() { grep -o "\"$1==[^\"]*\"" "$ROOT/pyproject.toml" | head -1 | tr -d '"'; }
SNAKEMAKE=$(pin snakemake)                         # e.g. snakemake==9.27.*
ALBUMENTATIONS=$(pin albumentations)
GANFACE=$(grep -o "gan-face-generate==[0-9.]*" "$ROOT/src/modelfp/testbed/pretrained_dcgan.py" | head -1)
[ -n "$SNAKEMAKE" ] && [ -n "$ALBUMENTATIONS" ] && [ -n "$GANFACE" ] \
    || { echo "gpu_wheels: could not read the pins from pyproject.toml / pretrained_dcgan.py" >&2; exit 1; }
TARGET=(--only-binary=:all: --python-version "${GPU_WHEELS_PYTHON:-3.12}" --implementation cp
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)

mkdir -p "$DEST"
# connection_pool (a snakemake dependency) is published as a source archive only: build its
# pure-Python wheel here first, so that the --only-binary download below finds it in DEST
"$PY" -m pip wheel -q --no-deps -w "$DEST" connection_pool
"$PY" -m pip download -q -d "$DEST" --find-links "$DEST" "${TARGET[@]}" "$SNAKEMAKE" "$ALBUMENTATIONS"
"$PY" -m pip download -q -d "$DEST" --no-deps "${TARGET[@]}" "$GANFACE"
for name in $GPU_IMAGE_HAS; do rm -f "$DEST/$name"-*.whl; done
echo "gpu_wheels: $(ls "$DEST"/*.whl | wc -l) wheels, $(du -sh "$DEST" | cut -f1) in $DEST ($SNAKEMAKE, $ALBUMENTATIONS, $GANFACE)"
