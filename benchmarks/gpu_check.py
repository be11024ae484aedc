"""The measuring parts of benchmarks/gpu_check.sh (issue 24), one subcommand each; run from the
repository root with the package importable (PYTHONPATH=src).

    python benchmarks/gpu_check.py synth     --out DIR [--device cuda] [--dry]   # -> DIR/synth.json
    python benchmarks/gpu_check.py extractor --out DIR [--device cuda] [--dry]   # -> DIR/extractor.json
    python benchmarks/gpu_check.py summary   --out DIR --result PART STATUS SECONDS ...
        # -> DIR/projection.json, DIR/summary.tsv, DIR/summary.txt, and the table on stdout

synth: every seed of one architecture trained together (grouped net) vs one after the other
(loop), at the paper's synthesis settings (config.yaml: M seeds, image size, batch), for each cost
family of synth_throughput.py; models/hour and achieved FLOP/s. extractor: the paper's extractor
(ResNet-50 on 128x128 spectra behind the 17-layer DnCNN, P x K = 200) from extractor_throughput.py;
training and embedding images/s. summary: projects the 5,760-model zoo (and the extractor's 40
epochs) onto this device, beside the paper's 133 GPU-hours on an RTX 3090. --dry: tiny sizes, so
the whole check runs on a CPU in seconds (tests/test_gpu_check.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import torch
import yaml

import extractor_throughput as et
import synth_throughput as st
from device_peak import peak_flops, tf32
from modelfp.archspace import parse
from modelfp.synthetic import TrainConfig, resolve_path, training_flops

ROOT = Path(__file__).resolve().parents[1]
PAPER_GPU_HOURS = 133.0              # the paper's zoo: 5,760 models on one RTX 3090
COLUMNS = ["part", "metric", "value", "unit", "status"]
PARTS = ["env", "smoke", "synth", "extractor", "projection"]


def _paper() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def _device_info(device: torch.device) -> dict:
    peak = peak_flops(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    return dict(device=str(device), device_name=name, torch=torch.__version__, cuda=torch.version.cuda,
                peak_tflops=peak / 1e12 if peak else None, tf32=tf32(), threads=torch.get_num_threads())


def _write(path: Path, obj) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------
def synth(out: Path, device: torch.device, dry: bool) -> None:
    s = _paper()["synthesis"]
    if dry:
        families, seeds, size, batch, steps = st.FAMILIES[:1], 2, 16, 2, 2
    else:
        families, seeds, size, batch, steps = st.FAMILIES, s["seeds"], s["image_size"], s["batch_size"], 60
    # eta 0: no early stop, every model runs all `steps`; one residual check at the end
    cfg = TrainConfig(image_size=size, batch_size=batch, max_steps=steps, check_every=steps,
                      eta=0.0, val_images=8, lr=s["lr"])
    rows = []
    for arch_id in families:
        arch = parse(arch_id)
        t = {p: st._time(arch, list(range(seeds)), cfg, device, p) for p in ("loop", "grouped")}
        flops = training_flops(arch, size, batch) * steps * seeds          # all seeds, all steps
        rows.append(dict(arch=arch_id, seconds=t, flops=flops))
        print(f"synth {arch_id}: loop {t['loop']:.2f} s, grouped {t['grouped']:.2f} s "
              f"({seeds} models x {steps} steps)", flush=True)
    total = {p: sum(r["seconds"][p] for r in rows) for p in ("loop", "grouped")}
    models = seeds * len(rows)
    flops = sum(r["flops"] for r in rows)
    _write(out / "synth.json", dict(
        **_device_info(device), families=rows, seeds=seeds, image_size=size, batch_size=batch,
        steps=steps, chosen=resolve_path("auto", device, size),
        models_per_hour={p: 3600 * models / total[p] for p in total},
        tflops={p: flops / total[p] / 1e12 for p in total}, seconds=total))


def extractor(out: Path, device: torch.device, dry: bool) -> None:
    e = _paper()["extractor"]
    if dry:   # the paper's options on 16x16 images, the demo's small denoiser: seconds on a CPU
        et.SETTINGS["dry"] = {**et.SETTINGS["paper"], "image_size": 16}
        name, steps, batch, models = "dry", 1, 8, 4
    else:
        name, steps, batch, models = "paper", 10, e["p"] * e["k"], 64
    r = et.measure(name, device, steps, batch, models)
    print(f"extractor {name}: train {r['train_ips']:.1f} img/s, embed {r['embed_ips']:.1f} img/s, "
          f"{r['gflop_image']:.2f} GFLOP/img", flush=True)
    _write(out / "extractor.json", dict(**_device_info(device), **r, steps=steps,
                                        settings=et.SETTINGS[name]))


# ---------------------------------------------------------------------------------------------
def _load(out: Path, name: str) -> dict | None:
    path = out / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _smoke_jobs(out: Path) -> tuple[int | None, int | None]:
    """Jobs done and planned, from smoke.log (a dry run plans them all and does none)."""
    path = out / "smoke.log"
    text = path.read_text(errors="replace") if path.is_file() else ""
    done = re.findall(r"(\d+) of (\d+) steps \(\d+%\) done", text)
    if done:
        return int(done[-1][0]), int(done[-1][1])
    total = re.findall(r"^total\s+(\d+)\s*$", text, flags=re.M)
    return (0 if "This was a dry-run" in text else None), (int(total[-1]) if total else None)


def _projection(synth_r: dict | None, ext: dict | None) -> dict:
    cfg = _paper()
    s, e = cfg["synthesis"], cfg["extractor"]
    zoo_models = 288 * s["seeds"]                                          # 5,760
    proj = dict(zoo_models=zoo_models, zoo_steps=s["max_steps"], paper_gpu_hours=PAPER_GPU_HOURS)
    if synth_r:
        # seconds per model on the path the trainer takes here, at max_steps (the residual floor
        # may stop a model earlier: an upper bound), the families standing for the zoo equally
        chosen = synth_r["chosen"]
        per_model = synth_r["seconds"][chosen] / (len(synth_r["families"]) * synth_r["seeds"])
        hours = per_model * s["max_steps"] / synth_r["steps"] * zoo_models / 3600
        proj.update(path=chosen, zoo_gpu_hours=hours, paper_over_ours=PAPER_GPU_HOURS / hours,
                    measured_at=dict(image_size=synth_r["image_size"], batch=synth_r["batch_size"]))
    if ext:
        images = e["epochs"] * e["steps_per_epoch"] * e["p"] * e["k"]
        proj.update(extractor_images=images, extractor_gpu_hours=images / ext["train_ips"] / 3600)
    return proj


def _fmt(x, digits=1) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def summary(out: Path, results: list[list[str]]) -> int:
    status = {part: st_ for part, st_, _ in results}
    seconds = {part: float(sec) for part, _, sec in results}
    synth_r = _load(out, "synth") if status.get("synth") == "ok" else None
    ext = _load(out, "extractor") if status.get("extractor") == "ok" else None
    info = synth_r or ext or {}
    proj = _projection(synth_r, ext)
    _write(out / "projection.json", proj)
    status["projection"] = "ok" if synth_r and ext else "FAILED"
    status["env"] = "ok" if info else "FAILED"
    done, planned = _smoke_jobs(out)
    peak = info.get("peak_tflops")

    def pct(tflops):
        return None if tflops is None or not peak else 100 * tflops / peak
    mph = (synth_r or {}).get("models_per_hour", {})
    tfl = (synth_r or {}).get("tflops", {})
    rows = [
        ("env", "device", info.get("device_name", "-"), "", None),
        ("env", "torch", info.get("torch", "-"), "", None),
        ("env", "peak", _fmt(peak), "TFLOP/s dense TF32" + ("" if info.get("tf32", True) else " (TF32 off!)"), None),
        ("smoke", "wall", _fmt(seconds.get("smoke")), "s", None),
        ("smoke", "jobs done", _fmt(done, 0), "jobs", None),
        ("smoke", "jobs planned", _fmt(planned, 0), "jobs", None),
        ("synth", "grouped", _fmt(mph.get("grouped"), 0), "models/h", None),
        ("synth", "loop", _fmt(mph.get("loop"), 0), "models/h", None),
        ("synth", "grouped/loop", _fmt(mph["grouped"] / mph["loop"] if mph else None, 2), "x", None),
        ("synth", "grouped achieved", _fmt(tfl.get("grouped"), 2), "TFLOP/s", None),
        ("synth", "grouped of peak", _fmt(pct(tfl.get("grouped"))), "%", None),
        ("extractor", "train", _fmt((ext or {}).get("train_ips")), "img/s", None),
        ("extractor", "embed", _fmt((ext or {}).get("embed_ips")), "img/s", None),
        ("extractor", "train achieved", _fmt((ext or {}).get("train_flops", 0) / 1e12 if ext else None, 2),
         "TFLOP/s", None),
        ("extractor", "train of peak", _fmt(pct(ext["train_flops"] / 1e12) if ext else None), "%", None),
        ("projection", "zoo", _fmt(proj.get("zoo_gpu_hours")), "GPU-h", None),
        ("projection", "paper zoo (RTX 3090)", _fmt(PAPER_GPU_HOURS, 0), "GPU-h", None),
        ("projection", "paper / ours", _fmt(proj.get("paper_over_ours"), 2), "x", None),
        ("projection", "extractor 40 epochs", _fmt(proj.get("extractor_gpu_hours"), 2), "GPU-h", None),
    ]
    rows = [(p, m, v, u, status.get(p, "FAILED")) for p, m, v, u, _ in rows]
    (out / "summary.tsv").write_text("\n".join("\t".join(r) for r in [COLUMNS, *rows]) + "\n")
    widths = [max(len(str(r[i])) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]

    def line(row):
        return "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
    title = (f"GPU check ({'DRY: tiny sizes, ' if os.environ.get('GPU_CHECK_DRY') == '1' else ''}"
             f"device {info.get('device', '?')}, {time.strftime('%Y-%m-%d %H:%M')}); "
             f"part seconds: " + ", ".join(f"{p} {seconds[p]:.0f}" for p in seconds))
    text = "\n".join([title, line(COLUMNS), *(line(r) for r in rows)]) + "\n"
    (out / "summary.txt").write_text(text)
    print(text, end="")
    return 0 if all(s == "ok" for s in status.values()) else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=["synth", "extractor", "summary"])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dry", action="store_true")
    ap.add_argument("--result", nargs=3, action="append", default=[],
                    metavar=("PART", "STATUS", "SECONDS"), help="summary: one part's outcome")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.part == "summary":
        return summary(args.out, args.result)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit(f"gpu_check: device {device} asked for, but torch {torch.__version__} sees no CUDA device")
    {"synth": synth, "extractor": extractor}[args.part](args.out, device, args.dry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
