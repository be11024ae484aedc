#!/usr/bin/env bash
# One prepared GPU check (issue 24): on a machine with one NVIDIA GPU and no network, in about
# 8 minutes,
#   (b) synth      synthetic-zoo throughput: all seeds of one architecture in one grouped net vs
#                  one after the other, models/hour, achieved FLOP/s vs the device's peak
#   (c) extractor  the paper's extractor (ResNet-50, 128 px, 17-layer DnCNN): training and
#                  embedding images/s
#   (a) smoke      the smoke preset end to end on CUDA, in a scratch copy of the workflow:
#                  snakemake all zoo_k3 --cores 8 --resources gpu=1 --configfile configs/smoke.yaml
#                  --config device=cuda (given what is left of the time budget)
#   (d) projection the paper's 5,760-model zoo in GPU-hours on this device vs the paper's 133 on an
#                  RTX 3090, then the summary table.
# Every part runs even when another fails; the exit status is nonzero when any failed.
#
#   benchmarks/gpu_check.sh [--dry] [OUTDIR]        # OUTDIR: $OUT if set, else the argument
#   make gpu-check                                  # OUTDIR results/gpu_check
#
# Files in OUTDIR (flat, 7): summary.tsv, summary.txt, gpu_check.log, smoke.log, synth.json,
# extractor.json, projection.json.
# Snakemake is not installed from the network: when `python3` cannot import it, the script makes a
# venv (--system-site-packages, so the machine's torch is used) from the wheels in wheels/, which
# `make gpu-wheels` fills (benchmarks/gpu_wheels.sh: snakemake, tqdm, pyyaml, safetensors,
# matplotlib, gan-face-generate, and the pools' scikit-image photos). Without albumentations
# (OpenCV) the smoke run leaves out the rules that need it, and says so. --dry (or GPU_CHECK_DRY=1):
# tiny sizes on the CPU and `snakemake -n` instead of the smoke run, well under a minute
# (tests/test_gpu_check.py).
# Environment: GPU_CHECK_DEVICE (default cuda; dry: cpu), GPU_CHECK_BUDGET (seconds for the whole
# check, default 470), GPU_CHECK_SCRATCH (scratch folder, default a new temporary one, removed at
# the end), GPU_CHECK_PYTHON (the python to use), GPU_CHECK_WHEELS (default wheels/).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DRY=${GPU_CHECK_DRY:-0}
ARG_OUT=""
for a in "$@"; do
    case $a in
        --dry) DRY=1 ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "gpu_check: unknown option $a" >&2; exit 2 ;;
        *) ARG_OUT=$a ;;
    esac
done
OUTDIR=${OUT:-$ARG_OUT}
[ -n "$OUTDIR" ] || { echo "usage: $0 [--dry] OUTDIR   (or set OUT)" >&2; exit 2; }
mkdir -p "$OUTDIR" && OUTDIR=$(cd "$OUTDIR" && pwd)
export GPU_CHECK_DRY=$DRY
if [ "$DRY" = 1 ]; then DEVICE=${GPU_CHECK_DEVICE:-cpu}; else DEVICE=${GPU_CHECK_DEVICE:-cuda}; fi
BUDGET=${GPU_CHECK_BUDGET:-470}
START=$(date +%s)
if [ -n "${GPU_CHECK_SCRATCH:-}" ]; then
    SCRATCH=$GPU_CHECK_SCRATCH; mkdir -p "$SCRATCH"
else
    SCRATCH=$(mktemp -d -t gpu_check.XXXXXX); trap 'rm -rf "$SCRATCH"' EXIT
fi
LOG=$OUTDIR/gpu_check.log
: > "$LOG"
rm -f "$OUTDIR"/{summary.tsv,summary.txt,smoke.log,synth.json,extractor.json,projection.json}
say() { echo "[gpu_check $(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }
export PYTHONPATH=$ROOT/src:$ROOT/benchmarks${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1

# --- a python with snakemake: this one, or a venv over the system's packages from wheels/ --------
PY=${GPU_CHECK_PYTHON:-$(command -v python3)}
WHEELS=${GPU_CHECK_WHEELS:-$ROOT/wheels}
if ! "$PY" -c 'import snakemake' 2>/dev/null; then
    if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
        say "installing snakemake from wheels/ into $SCRATCH/venv (no network)"
        VENV=$SCRATCH/venv
        { "$PY" -m venv --system-site-packages "$VENV" \
            || "$PY" -m venv --system-site-packages --without-pip "$VENV"; } >>"$LOG" 2>&1
        if [ -x "$VENV/bin/pip" ]; then PIP=("$VENV/bin/pip"); else PIP=("$PY" -m pip --python "$VENV/bin/python"); fi
        # wheels/ is the closure of what the image lacks (benchmarks/gpu_wheels.sh): every wheel, no resolving
        "${PIP[@]}" install -q --no-index --no-deps "$WHEELS"/*.whl >>"$LOG" 2>&1 || say "wheel install FAILED (see above)"
        PY=$VENV/bin/python
    else
        say "no snakemake for $PY and no wheels/: run 'make gpu-wheels' where pip has a network"
    fi
fi
# the embedded pools' scikit-image photos without scikit-image: wheels/photos/skimage/... is found
# as the package's folder (modelfp.pools looks the photos up by the package's location)
if ! "$PY" -c 'import skimage' 2>/dev/null && [ -d "$WHEELS/photos/skimage" ]; then
    export PYTHONPATH=$PYTHONPATH:$WHEELS/photos
    say "no scikit-image: the pools' photos come from $WHEELS/photos"
fi
# the rules call `python -m modelfp.steps ...`: this python first on PATH, as `python` too. A small
# script, not a link: a venv's python started through a link to its link is not in the venv
BIN=$SCRATCH/bin; mkdir -p "$BIN"
for name in python python3; do printf '#!/bin/sh\nexec "%s" "$@"\n' "$PY" > "$BIN/$name"; chmod +x "$BIN/$name"; done
export PATH=$BIN:$PATH
say "python $PY ($("$PY" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__,
"cuda", torch.cuda.is_available())' 2>&1 | tail -1)), device $DEVICE, dry $DRY, out $OUTDIR"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >>"$LOG" 2>&1

RESULTS=()
run_part() {  # name timeout_s logfile workdir command...: records ok/FAILED and the part's seconds
    local name=$1 limit=$2 log=$3 dir=$4; shift 4
    local t0 rc dt; t0=$(date +%s)
    say "part $name (limit ${limit}s, log ${log##*/}): $*"
    (cd "$dir" && timeout --kill-after=15 "$limit" "$@") >>"$log" 2>&1
    rc=$?; dt=$(( $(date +%s) - t0 ))
    if [ $rc -eq 0 ]; then RESULTS+=(--result "$name" ok "$dt"); say "part $name ok (${dt}s)"
    else RESULTS+=(--result "$name" FAILED "$dt"); say "part $name FAILED (exit $rc after ${dt}s)"; fi
}
DRYFLAG=(); [ "$DRY" = 1 ] && DRYFLAG=(--dry)
cd "$ROOT"
run_part synth 150 "$LOG" "$ROOT" "$PY" benchmarks/gpu_check.py synth --out "$OUTDIR" --device "$DEVICE" "${DRYFLAG[@]}"
run_part extractor 150 "$LOG" "$ROOT" "$PY" benchmarks/gpu_check.py extractor --out "$OUTDIR" --device "$DEVICE" "${DRYFLAG[@]}"

# --- (a) the smoke preset in a scratch copy of the workflow (never the checkout's results/) --------
WF=$SCRATCH/workflow; rm -rf "$WF"; mkdir -p "$WF"
cp -r Snakefile config.yaml configs workflow envs "$WF"/
# greedy: the ILP scheduler's pulp is not carried (benchmarks/gpu_wheels.sh)
# --keep-going: a failed job costs only what needs it, so the log shows every rule that fails on CUDA
SMK=(-m snakemake all zoo_k3 --cores 8 --resources gpu=1 --scheduler greedy --keep-going
     --configfile configs/smoke.yaml --config "device=$DEVICE")
if ! "$PY" -c 'import albumentations' 2>/dev/null; then
    # the perturbations (Figure 16) and the immunized extractor's and RepMix's training augment with
    # albumentations, which needs OpenCV (too large to carry): without it, those and what needs
    # them are left out
    SMK+=(--omit-from perturb_test_models results/extractors/immunized/trained.pt results/baselines/repmix/model.pt)
    say "no albumentations (OpenCV): the smoke run leaves out the perturbations, the immunized extractor, RepMix and what needs them"
fi
[ "$DRY" = 1 ] && SMK+=(--dry-run)
LEFT=$(( BUDGET - ($(date +%s) - START) - 20 ))        # 20 s for the summary
[ $LEFT -lt 60 ] && LEFT=60
run_part smoke "$LEFT" "$OUTDIR/smoke.log" "$WF" "$PY" "${SMK[@]}"
tail -n 3 "$OUTDIR/smoke.log" >> "$LOG"
if [ "$DRY" != 1 ] && [ -d "$WF/results/benchmarks" ]; then   # job-seconds by stage of the run
    "$PY" benchmarks/job_seconds.py --results "$WF/results" >> "$OUTDIR/smoke.log" 2>&1 || true
fi

# --- (d) projection and the summary table ---------------------------------------------------------
"$PY" benchmarks/gpu_check.py summary --out "$OUTDIR" "${RESULTS[@]}" 2>>"$LOG" | tee -a "$LOG"
rc=${PIPESTATUS[0]}
say "done in $(( $(date +%s) - START ))s, exit $rc"
exit "$rc"
