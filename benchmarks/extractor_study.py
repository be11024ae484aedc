"""Which extractor settings make Only-Syn generalise at demo scale? Train settings side by side and
score each on the VALIDATION generators (never the test bed: README "The validation set"), beside
the two controls (the training-free reference and the network at initialisation). Issue 11.

Needs a finished run (the demo: `make demo`, or at least `snakemake validation`): its pools,
denoiser, synthetic zoo and validation images; of each validation folder only the evaluation side
(modelfp.splits) is used. Settings that need synthetic models the run does not have (more seeds,
longer synthetic training) train them once into --work (a cache, reused by later calls).

    python benchmarks/extractor_study.py --results results --jobs 2 --out study.csv
    python benchmarks/extractor_study.py --results results --only base steps_1200
    python benchmarks/extractor_study.py --only base same_design light_stem --check   # levers only

Every setting starts from the preset's `extractor:` section (--config) and changes one lever (see
SETTINGS). Printed per setting: the training models, steps, seconds of training and seconds per
step, training accuracy of the last epoch, then on the validation set: identification accuracy
(10-image gallery), verification AUC, and same-design pair identification (seed pairs, data pairs;
chance 50 %) - and the deltas to both controls; then `identify`'s open-set answers as the workflow
would deploy the setting (the calibrate step's global threshold and per-model constants, fitted on
these embeddings, so in-sample as calibrate's own): known images named right, absent images called
unknown, their mean, and that mean's difference to `base` paired by draw (with its standard
error). A learning curve (the same scores after every `curve` steps) goes to <out>_curves.csv.
One run, one machine: compare rows of the same run only.
"""

from __future__ import annotations

import argparse
import copy
import csv
import multiprocessing as mp
import random
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from snakemake.utils import update_config

from modelfp import archspace, checkpoints, denoise, paired, splits, synthetic, validation
from modelfp import extractor as ex
from modelfp.feed import SyntheticZoo
from modelfp.plan import EXTRACTOR_ONLY_HERE
from modelfp.pools import load_image, read_pool

# One lever each, against `base` (the preset's extractor as it is). Zoo keys: archs (None: the
# run's whole K in {1, 2} zoo; n: an evenly spread subset of n architectures), seeds (per
# architecture), synth_steps (max steps of each synthetic model; None: the run's). Extractor keys:
# any ExtractorConfig / TrainConfig field; steps (total, in epochs of 50); curve (score every n steps).
SETTINGS = {
    # extractor steps to a plateau (the demo's 300 vs four times that, scored along the way)
    "base": {},
    "steps_1200": {"steps": 1200, "curve": 300},
    # a bank of 16 spectra per model made once, vs images made afresh each step: speed and accuracy
    "bank16_1200": {"steps": 1200, "curve": 300, "bank": 16},
    # input transform, per-position standardisation, pooling, head, capacity, training size
    "abs": {"transform": "abs"},
    "no_normalize": {"normalize": False},
    "pooling_avg": {"pooling": "avg"},
    "projection_head": {"head": "projection"},
    "resnet18": {"backbone": "resnet18"},
    "size_64": {"image_size": 64},
    # round 2: the levers that helped alone (resnet18: AUC; no_normalize: identification; steps)
    "resnet18_no_normalize": {"backbone": "resnet18", "normalize": False},
    "resnet18_900": {"backbone": "resnet18", "steps": 900, "curve": 300},
    "resnet18_no_normalize_900": {"backbone": "resnet18", "normalize": False, "steps": 900, "curve": 300},
    # what it learns from: seeds per architecture on 24 architectures, and better-trained models
    "a24_seeds2": {"archs": 24, "seeds": 2, "steps": 600},
    "a24_seeds5": {"archs": 24, "seeds": 5, "steps": 600},
    "a24_seeds10": {"archs": 24, "seeds": 10, "steps": 600},
    "a24_seeds2_synth600": {"archs": 24, "seeds": 2, "synth_steps": 600, "steps": 600},
    # issue 22: batches with same-design negatives (P // S architectures x S seeds each)
    "same_design": {"sampler": "same_design"},
    # issue 22: an extractor that suits a spectrum (README "The fingerprint extractor")
    "centre_spectrum": {"centre_spectrum": True},
    "circular_padding": {"padding": "circular"},
    "light_stem": {"stem": "light"},
    "input_scale_255": {"input_scale": 255.0},
    "cosine_triplet": {"triplet_distance": "cosine"},
    "linear": {"backbone": "linear"},
    # issue 22 / 24: the light stem at half its resolution, about a third of its cost
    "light_maxpool": {"stem": "light_maxpool"},
    "light_stride2": {"stem": "light_stride2"},
    "standard_stem": {"stem": "standard"},
    # session 15: the preset trained from other seeds (its weights' draw, batches, input statistics and
    # centre): how far a setting moves by chance, the noise every other row is read against
    "seed_1": {"seed": 1},
    "seed_2": {"seed": 2},
}
ZOO_KEYS = ("archs", "seeds", "synth_steps")
STEPS_PER_EPOCH = 50


def merged_config(paths: list[str]) -> dict:
    """The config files merged in order, as `snakemake --configfile` merges them."""
    cfg: dict = {}
    for p in paths:
        update_config(cfg, yaml.safe_load(Path(p).read_text()) or {})
    return cfg


def arch_subset(n: int | None) -> list[archspace.Arch]:
    """All K in {1, 2} architectures, or n of them drawn at random (seed 0), in space order. (Until
    2026-11-30 this took every (288 // n)-th one: for n = 24 the first member of every slice, all
    with A = none and N = none - a subset without activations and normalisations.)"""
    archs = archspace.space()
    if n is None:
        return archs
    chosen = set(random.Random(0).sample(range(len(archs)), n))
    return [a for i, a in enumerate(archs) if i in chosen]


def checkpoint_path(results: Path, work: Path, arch, seed: int, synth_steps: int | None) -> Path:
    """The run's own model when it has it (and the setting keeps the run's synthetic steps), else
    the cache's."""
    run = results / "synthetic" / arch.id / f"seed{seed}.pt"
    if synth_steps is None and run.exists():
        return run
    return work / "synthetic" / f"steps{synth_steps or 'run'}" / arch.id / f"seed{seed}.pt"


def pool_dirs(results: Path, cfg: dict) -> list[Path]:
    """The run's pool folders that its synthetic models were trained on (synthesis.pools)."""
    return [results / "pools" / name for name in cfg["synthesis"]["pools"]]


def needed_models(setting: dict, results: Path, work: Path) -> list[tuple]:
    archs = arch_subset(setting.get("archs"))
    seeds = setting.get("seeds", 2)
    return [(a, s, setting.get("synth_steps"), checkpoint_path(results, work, a, s, setting.get("synth_steps")))
            for a in archs for s in range(seeds)]


def train_synthetic(job):
    """Train the missing seeds of one architecture (the run's synthesis settings, other max steps)."""
    arch, seeds, steps, paths, results, cfg = job
    torch.set_num_threads(1)
    syn = cfg["synthesis"]
    tc = synthetic.TrainConfig(image_size=syn["image_size"], batch_size=syn["batch_size"],
                               max_steps=steps or syn["max_steps"], lr=syn["lr"], eta=syn["eta"],
                               check_every=syn["check_every"], val_images=syn["val_images"])
    pools = pool_dirs(results, cfg)
    train, val = (synthetic.fit_to_size(torch.cat([read_pool(d, split) for d in pools]), tc.image_size)
                  for split in ("train", "val"))
    models, res = synthetic.train_architecture(arch, seeds, train, val, tc, width=syn["width"],
                                               path=syn["path"])
    for model, r, path in zip(models, res, paths):
        synthetic.save(model, r, tc, path, seed=r.seed, pools=[str(p) for p in pools], device="cpu",
                       training_path=syn["path"], arch_seconds=r.train_seconds)
    return [(arch.id, r.seed, r.steps, r.final_residual, r.reached_floor) for r in res]


def validation_images(results: Path, cfg: dict):
    """{model: uint8 images of its evaluation side}, and the same-design pairs of the config."""
    fraction = cfg["evaluation"]["train_fraction"]
    bed = {}
    for name in cfg["validation"]["models"]:
        paths, _ = splits.folder_side(results / "validation" / name / "images", fraction, splits.EVAL)
        bed[name] = [load_image(p, None) for p in paths]
    by_pair: dict[str, list[str]] = {}
    for name in cfg["validation"]["models"]:
        inst = cfg["validation"]["instances"][name]
        if "pair" in inst:
            by_pair.setdefault(inst["pair"], []).append((name, inst["differs"]))
    pairs = [validation.Pair(p, members[0][1], members[0][0], members[1][0]) for p, members in by_pair.items()]
    return bed, pairs


def scores(model, bed, pairs, ev) -> dict:
    """validation.scores of the model on the validation images, with the run's evaluation protocol,
    and `_correct`: each identification query right or not (the same queries for every setting: the
    gallery split is seeded), for the paired tests between settings."""
    from modelfp import evaluate
    emb, labels = validation.embed_models(model, bed, ev["window"])
    row = validation.scores(emb, labels, pairs, ev["gallery"], ev["pairs_same"], ev["pairs_diff"], ev["seed"])
    ident = evaluate.identification(emb, labels, ev["gallery"], ev["seed"])
    return {**{k: row[k] for k in ("identification_acc", "verification_auc", "seed_pairs_acc", "data_pairs_acc")},
            **openset_scores(emb, labels, ev),
            "_correct": np.asarray(ident["truth"]) == np.asarray(ident["predictions"])}


def openset_scores(emb, labels, ev) -> dict:
    """`identify`'s open-set answers as the workflow would deploy this setting
    (`modelfp.openset.deployed`, scored as evaluation.tool_neighbours says; the global threshold
    from one gallery draw, where the calibrate step takes the mean over the evaluation's
    `gallery_draws`)."""
    from modelfp import openset
    return openset.deployed(emb, labels, ev["gallery"], ev["seed"], neighbours=ev.get("tool_neighbours", 0))


def load_common(results: Path, cfg: dict, paths: list[Path], image_size: int):
    zoo = SyntheticZoo.from_files([str(p) for p in paths])
    pools = pool_dirs(results, cfg)
    pool = torch.cat([synthetic.fit_to_size(read_pool(d), image_size) for d in pools])
    return ex.ZooSource(zoo, pool, "cpu"), denoise.load(results / "denoiser" / "dncnn.pt")


def setting_configs(setting: dict, cfg: dict):
    """(ExtractorConfig, TrainConfig, steps, curve) of a setting: the preset's extractor with the
    setting's levers; a bad value raises here, before anything trains."""
    opts = {k: v for k, v in cfg["extractor"].items() if k not in EXTRACTOR_ONLY_HERE}   # the workflow's own
    steps = setting.get("steps", opts["epochs"] * opts["steps_per_epoch"])
    curve = setting.get("curve", steps)
    opts.update({k: v for k, v in setting.items() if k not in (*ZOO_KEYS, "steps", "curve")})
    opts.update(epochs=steps // STEPS_PER_EPOCH, steps_per_epoch=STEPS_PER_EPOCH)
    model_keys = set(ex.ExtractorConfig.__dataclass_fields__)
    train_keys = set(ex.TrainConfig.__dataclass_fields__)
    unknown = set(opts) - model_keys - train_keys
    if unknown:
        raise ValueError(f"unknown extractor options {sorted(unknown)}")
    mcfg = ex.ExtractorConfig(**{k: v for k, v in opts.items() if k in model_keys})
    tcfg = ex.TrainConfig(**{k: v for k, v in opts.items() if k in train_keys})
    return mcfg, tcfg, steps, curve


def run_setting(job) -> tuple[dict, list[dict]]:
    name, setting, results, work, cfg = job
    torch.set_num_threads(1)
    mcfg, tcfg, steps, curve = setting_configs(setting, cfg)
    paths = [m[3] for m in needed_models(setting, results, work)]
    source, den = load_common(results, cfg, paths, mcfg.image_size)
    bed, pairs = validation_images(results, cfg)
    ev = cfg["evaluation"]
    model = ex.build(den, mcfg, source.classes, tcfg.seed)
    ex.fit_input_statistics(model, source, tcfg.seed)          # normalize, linear: else nothing
    curves, train_seconds = [], [0.0]

    def score_now(step, train_acc):
        ex.fit_centre(model, source, tcfg.seed + ex.CENTRE_SEED_OFFSET)
        row = {"setting": name, "step": step, "train_acc": 100 * train_acc, **scores(model, bed, pairs, ev)}
        curves.append(row)
        model.train()
        return row

    def on_epoch(row):
        train_seconds[0] += row["seconds"]
        done = row["epoch"] * STEPS_PER_EPOCH
        if done % curve == 0 and done != steps:
            score_now(done, row["train_acc"])

    start = time.perf_counter()
    history = ex.train(model, source, tcfg, "cpu", on_epoch=on_epoch)
    wall = time.perf_counter() - start
    final = score_now(steps, history[-1]["train_acc"])
    return ({"setting": name, "models": len(source.classes), "steps": steps,
             "train_seconds": round(train_seconds[0], 1), "wall_seconds": round(wall, 1),
             "seconds_per_step": round(train_seconds[0] / steps, 4), **{k: v for k, v in final.items()
                                                                      if k not in ("setting", "step")}},
            curves)


def run_controls(job) -> list[dict]:
    """The two controls of the base setting: the input spectrum itself, and the untrained network."""
    results, work, cfg = job
    torch.set_num_threads(1)
    opts = cfg["extractor"]
    model_keys = set(ex.ExtractorConfig.__dataclass_fields__)
    mcfg = ex.ExtractorConfig(**{k: v for k, v in opts.items() if k in model_keys})
    source, den = load_common(results, cfg, [m[3] for m in needed_models({}, results, work)], mcfg.image_size)
    bed, pairs = validation_images(results, cfg)
    rows = []
    for control, backbone in (("reference", "none"), ("random_init", mcfg.backbone)):
        model = ex.build(den, ex.ExtractorConfig(**{**mcfg.__dict__, "backbone": backbone}), source.classes, 0)
        ex.fit_input_statistics(model, source, 0)
        ex.fit_centre(model, source, ex.CENTRE_SEED_OFFSET)
        rows.append({"setting": control, "models": len(source.classes), "steps": 0, **scores(model, bed, pairs,
                                                                                              cfg["evaluation"])})
    return rows


def write_csv(rows, path):
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        w.writerows(rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="results", help="a finished run's results folder")
    p.add_argument("--config", nargs="+", default=["config.yaml", "configs/demo.yaml"],
                   help="the run's config files, merged in order (as snakemake --configfile)")
    p.add_argument("--work", default="results/study", help="cache of the extra synthetic models")
    p.add_argument("--only", nargs="*", help=f"settings to run (default all: {', '.join(SETTINGS)})")
    p.add_argument("--jobs", type=int, default=2, help="settings trained at once (one thread each)")
    p.add_argument("--out", default="extractor_study.csv")
    p.add_argument("--check", action="store_true",
                   help="only build each chosen setting's configs and print its levers (needs no run)")
    args = p.parse_args(argv)
    results, work = Path(args.results), Path(args.work)
    cfg = merged_config(args.config)
    unknown = sorted(set(args.only or ()) - set(SETTINGS))
    if unknown:
        p.error(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
    chosen = {n: SETTINGS[n] for n in (args.only or SETTINGS)}
    base_m, base_t, _, _ = setting_configs({}, cfg)
    for name, setting in chosen.items():
        try:
            mcfg, tcfg, steps, _ = setting_configs(setting, cfg)
        except ValueError as err:
            p.error(f"setting {name}: {err}")
        if args.check:
            changed = {k: v for k, v in {**mcfg.__dict__, **tcfg.__dict__}.items()
                       if v != {**base_m.__dict__, **base_t.__dict__}[k]}
            zoo = {k: setting[k] for k in ZOO_KEYS if k in setting}
            print(f"{name:26s} steps {steps:5d}  {changed or 'the preset as it is'}{f'  zoo {zoo}' if zoo else ''}")
    if args.check:
        return

    # 1. the synthetic models the run lacks, one architecture (its missing seeds) per job
    todo: dict = {}
    for setting in chosen.values():
        for arch, seed, steps, path in needed_models(setting, results, work):
            if not path.exists() and (seed, path) not in todo.get((arch, steps), []):
                todo.setdefault((arch, steps), []).append((seed, path))
    jobs = [(arch, [s for s, _ in v], steps, [p for _, p in v], results, cfg) for (arch, steps), v in todo.items()]
    ctx = mp.get_context("spawn")
    if jobs:
        print(f"training {sum(len(j[1]) for j in jobs)} synthetic models into {work} ...", flush=True)
        start = time.perf_counter()
        with ctx.Pool(args.jobs) as pool:
            trained = [r for rs in pool.imap_unordered(train_synthetic, jobs) for r in rs]
        res = np.array([t[3] for t in trained])
        print(f"  done in {time.perf_counter() - start:.0f} s; residual median {np.median(res):.4f}, "
              f"{sum(t[4] for t in trained)} of {len(trained)} reached the floor", flush=True)
    residuals = {}
    for name, setting in chosen.items():
        models = needed_models(setting, results, work)
        info = [checkpoints.load(m[3], synthetic.FORMAT, "synthetic-model checkpoint")["result"] for m in models]
        residuals[name] = (float(np.median([i["final_residual"] for i in info])),
                           sum(bool(i["reached_floor"]) for i in info) / len(info))

    # 2. the settings and the controls, side by side in one pool
    with ctx.Pool(args.jobs) as pool:
        controls = pool.apply_async(run_controls, ((results, work, cfg),))
        runs = pool.map(run_setting, [(n, s, results, work, cfg) for n, s in chosen.items()], chunksize=1)
        controls = controls.get()
    rows = [r for r, _ in runs]
    for r in rows:
        r["synthetic_residual_median"], r["synthetic_reached_floor"] = residuals[r["setting"]]
    ref = {c["setting"]: c for c in controls}
    anchors = {"reference": ref["reference"]["_correct"],
               **({"base": next(r["_correct"] for r in rows if r["setting"] == "base")}
                  if any(r["setting"] == "base" for r in rows) else {})}
    open_anchors = {"reference": ref["reference"]["_openset_draws"],
                    **({"base": next(r["_openset_draws"] for r in rows if r["setting"] == "base")}
                       if any(r["setting"] == "base" for r in rows) else {})}
    for r in rows:
        for c in ("reference", "random_init"):
            r[f"ident_minus_{c}"] = r["identification_acc"] - ref[c]["identification_acc"]
            r[f"auc_minus_{c}"] = r["verification_auc"] - ref[c]["verification_auc"]
        # McNemar's exact test on the same validation queries (modelfp.paired): is the gap noise?
        for anchor, correct in anchors.items():
            if r["setting"] != anchor:
                r[f"p_ident_vs_{anchor}"] = paired.mcnemar(r["_correct"], correct)["p"]
        # the open-set balanced accuracy, paired by draw (same draws, each setting's own fitted rule)
        for anchor, draws in open_anchors.items():
            if r["setting"] != anchor:
                diff = r["_openset_draws"] - draws
                r[f"openset_minus_{anchor}"] = float(diff.mean())
                r[f"openset_minus_{anchor}_se"] = float(diff.std(ddof=1) / np.sqrt(len(diff)))
    queries = len(ref["reference"]["_correct"])
    for r in controls + rows + [c for _, cs in runs for c in cs]:
        r.pop("_correct", None)
        r.pop("_openset_draws", None)
    out = Path(args.out)
    write_csv(controls + rows, out)
    write_csv([c for _, cs in runs for c in cs], out.with_name(out.stem + "_curves.csv"))

    print(f"\nvalidation set: {len(cfg['validation']['models'])} generators, {queries} identification queries "
          f"(binomial standard error near 87 %: {100 * (0.87 * 0.13 / queries) ** 0.5:.1f} points); "
          f"controls use the run's zoo; p: McNemar exact vs reference / base on the same queries")
    head = (f"{'setting':22s} {'models':>6s} {'steps':>5s} {'s/step':>6s} {'train%':>6s} {'ident%':>6s} "
            f"{'AUC%':>6s} {'seed%':>6s} {'data%':>6s} {'d_ref':>6s} {'d_rand':>6s} {'p_ref':>7s} {'p_base':>7s} "
            f"{'known%':>6s} {'absent%':>7s} {'open%':>6s} {'d_open_base (se)':>16s}")
    print(head)
    for r in controls + rows:
        print(f"{r['setting']:22s} {r['models']:6d} {r['steps']:5d} {r.get('seconds_per_step', 0):6.3f} "
              f"{r.get('train_acc', float('nan')):6.1f} {r['identification_acc']:6.1f} {r['verification_auc']:6.1f} "
              f"{r['seed_pairs_acc']:6.1f} {r['data_pairs_acc']:6.1f} "
              f"{r.get('ident_minus_reference', float('nan')):6.1f} {r.get('ident_minus_random_init', float('nan')):6.1f} "
              f"{r.get('p_ident_vs_reference', float('nan')):7.2g} {r.get('p_ident_vs_base', float('nan')):7.2g} "
              f"{r['openset_known_named']:6.1f} {r['openset_absent_unknown']:7.1f} {r['openset_balanced']:6.1f} "
              f"{r.get('openset_minus_base', float('nan')):7.2f} ({r.get('openset_minus_base_se', float('nan')):5.2f})")
    print(f"\nwrote {out} and {out.with_name(out.stem + '_curves.csv')}")


if __name__ == "__main__":
    main()
