"""Every workflow verb on its own (issue 14): a missing or damaged input is exit code 2 and one log
line naming the file (and the fix, where the verb knows it); where tiny fabricated inputs suffice,
the verb's output holds what was fed in. The argument lists follow the rules' (tests/test_rules.py)."""
import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import smooth_pool, write_pngs
from modelfp import denoise, extractor as ex, manifest, synthetic, testbed
from modelfp.archspace import parse
from modelfp.pools import write_pool
from modelfp.steps import main

pytestmark = pytest.mark.usefixtures("one_thread")

# the smoke zoo's architectures (configs/smoke.yaml): two seeds each, one and two blocks
ARCHS = ("K1-L1-Spost-Unearest-Arelu-Nbn", "K1-L1-Spost-Ubilinear-Anone-Nnone", "K1-L1-Spost-Utransposed-Arelu-Nbn",
         "K1-L1-Spost-Utransposed-Asigmoid-Nbn", "K2-L2-Spre-Ubilinear-Atanh-Nin")
SEEDS = (0, 1)
ZOO = [(arch, seed) for arch in ARCHS for seed in SEEDS]
TEST_MODELS = ("a", "b", "c")                       # image folders of test models
SPECTRA = ["--n-images", "4", "--n-images-sweep", "2", "3", "4", "--image-size", "16", "--residual", "predicted",
           "--device", "cpu"]


def _rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _evaluation(path, **all_row) -> str:
    """An evaluation csv (the verb evaluate's) with one "all" row."""
    row = {"group": "all", "models": 3, "verification_acc": 70.0, "verification_auc": 80.0,
           "verification_threshold": 0.25, "identification_acc": 60.0, "identification_f1": 50.0,
           "openset_auroc": 75.0, "openset_threshold": 0.75, **all_row}
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    return str(path)


def _embeddings(folder, centres: dict, n=6, seed=0) -> str:
    """folder/<name>.npz (the verb embed's) of n embeddings near each name's centre."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, centre in centres.items():
        np.savez(folder / f"{name}.npz", embeddings=np.asarray(centre, float) + 0.01 * rng.standard_normal((n, 4)))
    return str(folder)


def _zoo_summary(folder) -> str:
    """A zoo-summary csv: each model of ZOO trained for 10 s (the K2 ones for 100 s)."""
    path = folder / "summary.csv"
    path.write_text("arch,seed,train_seconds\n" + "".join(
        f"{arch},{seed},{100 if parse(arch).blocks == 2 else 10}\n" for arch, seed in ZOO))
    return str(path)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """One tiny valid file of every kind the verbs read, by name (str paths)."""
    root = tmp_path_factory.mktemp("inputs")
    paths = {}
    write_pool(root / "pool", smooth_pool(8), smooth_pool(6, seed=1), {"name": "tiny"})
    paths["pool"] = root / "pool"
    paths["denoiser"] = root / "dncnn.pt"
    denoise.save(denoise.init_model(depth=3, features=4, seed=0), paths["denoiser"])
    for i, (arch, seed) in enumerate(ZOO):       # untrained, with made-up training results
        paths[f"checkpoint{i}"] = root / "synthetic" / arch / f"seed{seed}.pt"
        result = synthetic.TrainResult(arch, seed, steps=10 + i, final_residual=0.01 * i,
                                       reached_floor=i % 2 == 0, train_seconds=1.5 + i)
        synthetic.save(synthetic.init_model(parse(arch), seed, width=4), result, synthetic.TrainConfig(16),
                       paths[f"checkpoint{i}"], seed=seed, training_path="loop")
    for i, name in enumerate(TEST_MODELS):
        paths[f"images_{name}"] = write_pngs(root / "images" / name, [f"{k:05d}" for k in range(4)], seed=i)
    paths["generator"] = root / "vae.pt"
    testbed.save(testbed.family("vae").build(16, width=4, z_dim=8), "vae", 16, {"width": 4, "z_dim": 8},
                 {"name": "vae", "seed": 0}, paths["generator"])
    paths["extractor"] = root / "extractor.pt"
    ex.save(ex.build(denoise.init_model(depth=3, features=4, seed=0),
                     ex.ExtractorConfig(backbone="none", transform="log1p", image_size=16), ["x", "y"], seed=0),
            paths["extractor"], variant="reference")
    paths["evaluation"] = _evaluation(root / "evaluation.csv")
    paths["zoo_summary"] = _zoo_summary(root)
    paths["embeddings"] = _embeddings(root / "embeddings", {"v0": [1, 0, 0, 0], "v1": [0, 1, 0, 0]})
    paths["not_a_model"] = root / "notes.pt"
    paths["not_a_model"].write_text("not a model")
    # the zoo manifests the rules declare (modelfp.manifest); the second also lists a damaged file
    manifest.write([paths[f"checkpoint{i}"] for i in range(len(ZOO))], root / "zoo.tsv")
    manifest.write([paths["checkpoint0"], paths["not_a_model"]], root / "zoo_damaged.tsv")
    paths["manifest"], paths["manifest_damaged"] = root / "zoo.tsv", root / "zoo_damaged.tsv"
    paths["not_npz"] = root / "notes.npz"
    paths["not_npz"].write_text("not an npz")
    paths["no_all_row"] = root / "no_all.csv"
    paths["no_all_row"].write_text("group,verification_acc,identification_acc\nclassical,70,60\n")
    paths["wrong_npz"] = root / "embeddings" / "v0.npz"          # an npz, but not of spectra
    paths["missing"] = root / "absent"
    return {k: str(v) for k, v in paths.items()}


# ---------------------------------------------------------------------------------------------
# bad input: (verb's argv, the input that is broken, what the log line must say besides its path)

NOT_NPZ = "not an npz archive, or a damaged one; delete it and rerun"
BAD_INPUT = {
    "zoo-summary missing": ("zoo-summary --out {out}/s.csv {checkpoint0} {missing} --manifest {manifest}", "missing",
                            "no such file"),
    "zoo-summary damaged": ("zoo-summary --out {out}/s.csv {checkpoint0} {not_a_model} --manifest {manifest_damaged}",
                            "not_a_model",
                            "not a modelfp synthetic-model checkpoint"),
    "train-denoiser": ("train-denoiser --pool {missing} --out {out}/d.pt --sigma 1 --patch 8 --batch-size 2 "
                       "--steps 1 --lr 0.001 --depth 3 --features 4 --seed 0 --device cpu", "missing",
                       "build the pool first"),
    "synthetic-spectra": ("synthetic-spectra --pool {pool} --denoiser {denoiser} --out {out}/s.npz {spectra} "
                          "{checkpoint0} {not_a_model} --manifest {manifest_damaged}", "not_a_model",
                          "not a modelfp synthetic-model checkpoint"),
    "zoo-summary changed checkpoint": ("zoo-summary --out {out}/s.csv {checkpoint0} {checkpoint1} --manifest "
                                       "{manifest_damaged}", "checkpoint1", "not listed in any of the 1 zoo manifest"),
    "test-spectra": ("test-spectra --model a {images_a} classical --model b {missing} emerging --denoiser {denoiser} "
                     "--out {out}/t.npz {spectra}", "missing", "model b: not a folder"),
    "ffd-tables": ("ffd-tables --synthetic {not_npz} --real {not_npz} --out-csv {out}/2.csv {out}/11.csv "
                   "--out-md {out}/2.md {out}/11.md", "not_npz", NOT_NPZ),
    "fig-10": ("fig-10 --synthetic {missing} --real {missing} --out-png {out}/f.png --out-pdf {out}/f.pdf",
               "missing", ""),
    "fig-10 wrong npz": ("fig-10 --synthetic {wrong_npz} --real {wrong_npz} --out-png {out}/f.png "
                        "--out-pdf {out}/f.pdf", "wrong_npz", "no array(s) ['names', 'spec2d', 'log']"),
    "perturb": ("perturb --model a {images_a} --model b {missing} --out-dir {out} --kind jpeg --level 50 --seed 0",
                "missing", "model b: not a folder"),
    "testbed-train": ("testbed-train --name vae --pool {missing} --family vae --image-size 16 --steps 1 "
                      "--batch-size 2 --seed 0 --out {out}/g.pt --device cpu", "missing", "build the pool first"),
    "testbed-sample": ("testbed-sample --name vae --generator {not_a_model} --n 2 --seed 0 --out-dir {out}/images "
                       "--meta {out}/meta.json --sheet {out}/sheet.png --device cpu", "not_a_model",
                       "not a modelfp test-model file"),
    "spectral-effects": ("spectral-effects --spectra {not_npz} --out-png {out}/11.png {out}/13.png {out}/14.png "
                         "--out-pdf {out}/11.pdf {out}/13.pdf {out}/14.pdf --out-csv {out}/e.csv", "not_npz",
                         NOT_NPZ),
    "calibrate missing extractor": ("calibrate --extractor {missing} --evaluation {evaluation} --gallery 10 --seed 0 --out {out}/m.pt",
                                    "missing", "fingerprint-extractor file"),
    "calibrate no thresholds": ("calibrate --extractor {extractor} --evaluation {no_all_row} --gallery 10 --seed 0 --out {out}/m.pt",
                                "no_all_row", "rerun the evaluate rule"),
    "trace": ("trace --embeddings {embeddings} --reference v0 --derived v9 v0 --seed 0 --out-csv {out}/t.csv "
              "--out-png {out}/t.png", "embeddings", "no embeddings of model 'v9'; run the embed rule"),
    "fig-8": ("fig-8 --zoo-summary {missing} --evaluation 1 {evaluation} --out-png {out}/8.png --out-pdf {out}/8.pdf "
              "--out-csv {out}/8.csv", "missing", ""),
    "fig-8 no all row": ("fig-8 --zoo-summary {zoo_summary} --evaluation 1 {no_all_row} --out-png {out}/8.png "
                         "--out-pdf {out}/8.pdf --out-csv {out}/8.csv", "no_all_row", "rerun the evaluate rule"),
    "validation-table": ("validation-table --variant all {no_all_row} {embeddings} --pair p seed v0 v1 --gallery 2 "
                         "--seed 0 --out {out}/choices.csv", "no_all_row", "no row with group 'all'"),
    "fig-3": ("fig-3 --pair g1 {generator} g2 {missing} --n-train 2 --n-test 2 --steps 1 --batch-size 2 --width 4 "
              "--lr 0.001 --seed 0 --denoiser {denoiser} --out-png {out}/3.png --out-pdf {out}/3.pdf "
              "--out-csv {out}/3.csv --device cpu", "missing", "no such file"),
    "fig-12": ("fig-12 --model g {missing} --channel 0 --n-images 2 --seed 0 --out-png {out}/12.png "
               "--out-pdf {out}/12.pdf --out-csv {out}/12.csv --device cpu", "missing", "no such file"),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_a_verb_with_a_missing_or_damaged_input_names_it_in_one_line_and_exits_2(case, inputs, tmp_path, caplog):
    template, broken, says = BAD_INPUT[case]
    out = tmp_path / "out"
    assert main(template.format(**inputs, out=out, spectra=" ".join(SPECTRA)).split()) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    assert inputs[broken] in errors[0] and says in errors[0], errors[0]
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))      # nothing half-written


# ---------------------------------------------------------------------------------------------
# the zoo, the denoiser and the spectra (FFD, Tables II and XI, Figures 10, 11, 13, 14)

def test_zoo_summary_has_one_row_of_training_results_per_checkpoint(inputs, tmp_path):
    files = [inputs[f"checkpoint{i}"] for i in range(len(ZOO))]
    assert main(["zoo-summary", "--out", str(tmp_path / "summary.csv"), *files, "--manifest", inputs["manifest"]]) == 0
    got = [(r["arch"], int(r["seed"]), int(r["steps"]), r["reached_floor"], float(r["train_seconds"]), r["file"])
           for r in _rows(tmp_path / "summary.csv")]
    assert got == [(arch, seed, 10 + i, str(i % 2 == 0), 1.5 + i, files[i]) for i, (arch, seed) in enumerate(ZOO)]


def test_train_denoiser_saves_the_dncnn_it_was_asked_for_with_its_validation_psnr(inputs, tmp_path):
    out = tmp_path / "dncnn.pt"
    assert main(["train-denoiser", "--pool", inputs["pool"], "--out", str(out), "--sigma", "25", "--patch", "8",
                 "--batch-size", "2", "--steps", "2", "--lr", "0.001", "--depth", "3", "--features", "4",
                 "--seed", "0", "--device", "cpu"]) == 0
    model = denoise.load(out)
    assert (model.depth, model.features) == (3, 4)
    meta = model.info["meta"]
    assert meta["source"] == "trained" and meta["train_config"]["steps"] == 2 and meta["sigma"] == 25
    assert np.isfinite(meta["validation"]["gain"])


def _assert_spectra(path, names, **labels):
    """A spectra npz: one row per model, the main N's spectra the sweep's row of that N."""
    data = np.load(path)
    assert list(data["names"]) == list(names) and list(data["ns"]) == [2, 3, 4] and int(data["n_images"]) == 4
    assert data["log_sweep"].shape[:2] == (3, len(names)) and np.array_equal(data["log"], data["log_sweep"][-1])
    assert data["power"].shape[0] == data["spec2d"].shape[0] == len(names) and np.isfinite(data["log_sweep"]).all()
    for key, values in labels.items():
        assert list(data[key]) == list(values)


def test_synthetic_spectra_has_the_spectra_of_every_checkpoint(inputs, tmp_path):
    files = [inputs[f"checkpoint{i}"] for i in range(len(ZOO))]
    out = tmp_path / "synthetic.npz"
    assert main(["synthetic-spectra", "--pool", inputs["pool"], "--denoiser", inputs["denoiser"], "--out", str(out),
                 *SPECTRA, *files, "--manifest", inputs["manifest"]]) == 0
    _assert_spectra(out, [f"{arch}/seed{seed}" for arch, seed in ZOO], archs=[a for a, _ in ZOO],
                    seeds=[s for _, s in ZOO])


def test_test_spectra_has_the_spectra_of_every_image_folder(inputs, tmp_path):
    models = [w for name, group in zip(TEST_MODELS, ("classical", "emerging", "emerging"))
              for w in ("--model", name, inputs[f"images_{name}"], group)]
    out = tmp_path / "test_models.npz"
    assert main(["test-spectra", *models, "--denoiser", inputs["denoiser"], "--out", str(out), *SPECTRA]) == 0
    _assert_spectra(out, TEST_MODELS, groups=["classical", "emerging", "emerging"])


BINS = 9        # 8 radial bins and the one beyond Nyquist
PERMUTATION = [3, 7, 0, 9, 1, 5, 2, 8, 6, 4]


@pytest.fixture(scope="module")
def spectra(tmp_path_factory):
    """Fabricated spectra files as synthetic-spectra and test-spectra write them: the test models'
    spectra are the zoo's, shuffled (test model i's is the zoo's PERMUTATION[i]); high-frequency
    power is 10x for transposed upsampling and 2x for ReLU."""
    root = tmp_path_factory.mktemp("spectra")
    rng = np.random.default_rng(0)
    log = rng.standard_normal((len(ZOO), BINS))
    sweep = np.stack([log * (1 + 0.1 * k) for k in (-2, -1, 0)])          # the last N's is log
    power = np.ones((len(ZOO), BINS))
    for row, (arch, _) in zip(power, ZOO):
        a = parse(arch)
        row[-4:] *= (10 if a.upsampling == "transposed" else 1) * (2 if a.activation == "relu" else 1)
    spec2d = rng.random((len(ZOO), 8, 8))
    common = {"ns": [2, 3, 4], "n_images": 4, "image_size": 16}
    np.savez(root / "synthetic.npz", names=[f"{a}/seed{s}" for a, s in ZOO], archs=[a for a, _ in ZOO],
             seeds=[s for _, s in ZOO], log=log, log_sweep=sweep, power=power, spec2d=spec2d, **common)
    np.savez(root / "test_models.npz", names=[f"test{i}" for i in range(len(ZOO))], log=log[PERMUTATION],
             log_sweep=sweep[:, PERMUTATION], power=power[PERMUTATION], spec2d=spec2d[PERMUTATION], **common)
    return str(root / "synthetic.npz"), str(root / "test_models.npz")


def test_ffd_tables_of_a_zoo_against_itself_give_zero_ffd_and_full_correlation(spectra, tmp_path):
    syn, real = spectra
    out = [str(tmp_path / name) for name in ("ii.csv", "xi.csv", "ii.md", "xi.md")]
    assert main(["ffd-tables", "--synthetic", syn, "--real", real, "--out-csv", *out[:2], "--out-md", *out[2:]]) == 0
    table_ii = {r["models"]: r for r in _rows(out[0])}
    assert list(table_ii) == ["All", "w/o K", "w/o L", "w/o S", "w/o U", "w/o A", "w/o N", "w/o seed"]
    assert int(table_ii["All"]["n_synthetic"]) == 10 and int(table_ii["w/o seed"]["n_synthetic"]) == 5
    assert int(table_ii["w/o K"]["n_synthetic"]) == 8 and abs(float(table_ii["All"]["ffd"])) < 1e-3
    table_xi = _rows(out[1])
    assert [int(r["n_images"]) for r in table_xi] == [2, 3, 4] and float(table_xi[-1]["pearson_percent"]) == 100
    assert open(out[2]).read().startswith("# Table II") and open(out[3]).read().startswith("# Table XI")


def test_fig_10_pairs_each_test_model_with_the_synthetic_model_of_its_spectrum(spectra, tmp_path, caplog):
    syn, real = spectra
    png, pdf = tmp_path / "f.png", tmp_path / "f.pdf"
    caplog.set_level(logging.INFO, logger="modelfp")
    assert main(["fig-10", "--synthetic", syn, "--real", real, "--out-png", str(png), "--out-pdf", str(pdf)]) == 0
    closest = dict(r.getMessage().split(" closest synthetic model: ") for r in caplog.records
                   if "closest synthetic model" in r.getMessage())
    arch, seed = zip(*ZOO)
    assert {k.strip(): v for k, v in closest.items()} == {
        f"test{i}": f"{arch[k]}/seed{seed[k]}" for i, k in enumerate(PERMUTATION)}
    assert png.stat().st_size > 0 and pdf.stat().st_size > 0


def test_spectral_effects_measures_the_high_frequency_claims_on_matched_architectures(spectra, tmp_path):
    figures = [str(tmp_path / f"fig{n}.{ext}") for ext in ("png", "pdf") for n in (11, 13, 14)]
    out = tmp_path / "effects.csv"
    assert main(["spectral-effects", "--spectra", spectra[0], "--out-png", *figures[:3], "--out-pdf", *figures[3:],
                 "--out-csv", str(out)]) == 0
    got = {r["claim"]: (int(r["pairs"] or r["pairs_across"]), r["agrees"]) for r in _rows(out)}
    # matched pairs in the zoo: nearest/transposed (ReLU, BN) and sigmoid/ReLU (transposed, BN); no
    # bilinear/transposed, tanh/ReLU or normalization pair
    assert got == {"nearest has less high-frequency energy than transposed": (1, "True"),
                   "bilinear has less high-frequency energy than transposed": (0, ""),
                   "sigmoid has less high-frequency energy than relu": (1, "True"),
                   "tanh has less high-frequency energy than relu": (0, ""),
                   "same normalization (other seeds) is closer than another normalization": (0, "")}
    assert all(Path(f).stat().st_size > 0 for f in figures)


# ---------------------------------------------------------------------------------------------
# the test bed: training, sampling, perturbing its images; Figures 3 and 12

def test_perturb_writes_each_models_images_perturbed_under_their_own_names(inputs, tmp_path):
    assert main(["perturb", "--model", "a", inputs["images_a"], "--model", "b", inputs["images_b"], "--out-dir",
                 str(tmp_path), "--kind", "jpeg", "--level", "10", "--seed", "0"]) == 0
    for name in ("a", "b"):
        originals = sorted(Path(inputs[f"images_{name}"]).iterdir())
        copies = sorted((tmp_path / name).iterdir())
        assert [p.name for p in copies] == [p.name for p in originals]
        for original, copy in zip(originals, copies):
            before, after = np.asarray(Image.open(original)), np.asarray(Image.open(copy))
            assert before.shape == after.shape and not np.array_equal(before, after)


def test_testbed_train_then_sample_gives_the_images_meta_and_sheet_asked_for(inputs, tmp_path):
    generator = tmp_path / "vae.pt"
    assert main(["testbed-train", "--name", "vae", "--pool", inputs["pool"], "--family", "vae", "--image-size", "16",
                 "--steps", "1", "--batch-size", "2", "--seed", "0", "--hp", '{"width": 4, "z_dim": 8}',
                 "--out", str(generator), "--device", "cpu"]) == 0
    _, payload = testbed.load(generator)
    assert (payload["family"], payload["image_size"], payload["info"]["name"], payload["info"]["steps"]) == (
        "vae", 16, "vae", 1)
    out = tmp_path / "images"
    assert main(["testbed-sample", "--name", "vae_varied", "--generator", str(generator), "--n", "4", "--seed", "0",
                 "--out-dir", str(out), "--meta", str(tmp_path / "meta.json"), "--sheet", str(tmp_path / "sheet.png"),
                 "--sampling", '{"temperature": [0.5, 1.0]}', "--base-name", "vae", "--device", "cpu"]) == 0
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert (meta["name"], meta["family"], meta["n_images"], meta["base"]) == ("vae_varied", "vae", 4, "vae")
    pngs = sorted(p.name for p in out.iterdir())
    assert pngs == [f"{i:05d}.png" for i in range(4)] and Image.open(out / pngs[0]).size == (16, 16)
    # a list value is drawn per image (seeded: both values among these 4), each image's draw recorded
    assert sorted(meta["configurations"]) == pngs
    assert {c["temperature"] for c in meta["configurations"].values()} == {0.5, 1.0}
    assert (tmp_path / "sheet.png").stat().st_size > 0


def _progan_pair(folder) -> list[str]:
    """Two untrained 16 px ProGAN generators of one design, differing in their initial weights."""
    import torch
    files = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        files.append(str(folder / f"progan{seed}.pt"))
        testbed.save(testbed.family("progan").build(16, width=4, z_dim=8), "progan", 16, {"width": 4, "z_dim": 8},
                     {"name": f"progan{seed}", "seed": seed}, files[-1])
    return files


def test_fig_3_swapping_all_blocks_reverses_as_often_as_testing_i_is_right(inputs, tmp_path):
    g1, g2 = _progan_pair(tmp_path)
    out = tmp_path / "fig3.csv"
    assert main(["fig-3", "--pair", "m1", g1, "m2", g2, "--n-train", "4", "--n-test", "4", "--steps", "2",
                 "--batch-size", "4", "--width", "4", "--lr", "0.001", "--seed", "0", "--denoiser", inputs["denoiser"],
                 "--out-png", str(tmp_path / "3.png"), "--out-pdf", str(tmp_path / "3.pdf"), "--out-csv", str(out),
                 "--device", "cpu"]) == 0
    rows = _rows(out)
    blocks = int(rows[0]["blocks"])
    assert [(r["test"], int(r["blocks_swapped"])) for r in rows] == [("I", 0)] + [("II", n) for n in
                                                                                   range(1, blocks + 1)]
    # all blocks swapped: the composed models are the other model exactly
    assert float(rows[-1]["reversal"]) == float(rows[0]["accuracy"])


def test_fig_12_has_one_row_per_model_at_the_channel_asked_for(inputs, tmp_path):
    out = tmp_path / "fig12.csv"
    assert main(["fig-12", "--model", "g1", inputs["generator"], "--model", "g2", inputs["generator"], "--channel",
                 "1", "--n-images", "2", "--seed", "0", "--out-png", str(tmp_path / "12.png"), "--out-pdf",
                 str(tmp_path / "12.pdf"), "--out-csv", str(out), "--device", "cpu"]) == 0
    rows = _rows(out)
    assert [(r["model"], r["channel"], r["images"]) for r in rows] == [("g1", "1", "2"), ("g2", "1", "2")]
    # one generator twice: the other model's kernel is its own
    assert rows[0]["correlation"] == rows[0]["control_other_kernel"] == rows[1]["correlation"]


# ---------------------------------------------------------------------------------------------
# evaluations, thresholds, tracing, Figure 8, the validation set's choices

def test_calibrate_stores_the_evaluations_thresholds_in_a_copy_of_the_extractor(inputs, tmp_path):
    evaluation = _evaluation(tmp_path / "val.csv", verification_threshold=0.125, openset_threshold=0.625)
    out = tmp_path / "model.pt"
    assert main(["calibrate", "--extractor", inputs["extractor"], "--evaluation", evaluation, "--gallery", "10",
                 "--seed", "0", "--out", str(out)]) == 0
    model = ex.load(out)
    assert (model.threshold, model.openset_threshold) == (0.125, 0.625)
    assert model.meta["threshold_from"] == evaluation
    assert ex.load(inputs["extractor"]).threshold is None          # the trained file is left as it was


def test_trace_attributes_each_derived_set_to_the_reference_its_embeddings_lie_near(tmp_path):
    folder = _embeddings(tmp_path / "emb", {"r0": [1, 0, 0, 0], "r1": [0, 1, 0, 0], "near_r0": [1, 0.1, 0, 0],
                                            "also_near_r0": [1, 0, 0.1, 0]})
    out = tmp_path / "trace.csv"
    assert main(["trace", "--embeddings", folder, "--reference", "r0", "r1", "--derived", "near_r0", "r0",
                 "--derived", "also_near_r0", "r1", "--seed", "0", "--out-csv", str(out), "--out-png", str(tmp_path / "t.png")]) == 0
    got = [(r["set"], r["reference"], int(r["images"]), float(r["attributed_to_reference"]), r["most_attributed"])
           for r in _rows(out)]
    assert got == [("near_r0", "r0", 6, 100.0, "r0"), ("also_near_r0", "r1", 6, 0.0, "r0")]
    assert (tmp_path / "t.png").stat().st_size > 0


def test_fig_8_adds_up_the_synthesis_time_of_the_zoo_up_to_each_block_count(tmp_path):
    summary = _zoo_summary(tmp_path)
    ev = [_evaluation(tmp_path / f"ev{k}.csv", verification_acc=60 + k, identification_acc=50 + k) for k in (1, 2)]
    out = tmp_path / "fig8.csv"
    assert main(["fig-8", "--zoo-summary", summary, "--evaluation", "2", ev[1], "--evaluation", "1", ev[0],
                 "--out-png", str(tmp_path / "8.png"), "--out-pdf", str(tmp_path / "8.pdf"),
                 "--out-csv", str(out)]) == 0
    got = [(int(r["max_blocks"]), float(r["synthesis_seconds"]), float(r["verification_acc"]),
            float(r["identification_acc"])) for r in _rows(out)]
    assert got == [(1, 8 * 10, 61, 51), (2, 8 * 10 + 2 * 100, 62, 52)]


def test_validation_table_has_each_variants_scores_and_its_same_design_pairs(inputs, tmp_path):
    ev = [_evaluation(tmp_path / f"{v}.csv", identification_acc=i, verification_auc=90 + i)
          for i, v in enumerate(("all", "random"))]
    out = tmp_path / "choices.csv"
    assert main(["validation-table", "--variant", "all", ev[0], inputs["embeddings"], "--variant", "random", ev[1],
                 inputs["embeddings"], "--pair", "p", "seed", "v0", "v1", "--gallery", "2", "--seed", "0",
                 "--out", str(out)]) == 0
    got = [(r["variant"], float(r["identification_acc"]), float(r["verification_auc"]),
            float(r["pair_identification_acc"]), float(r["seed_pairs_acc"]), r["evaluation"]) for r in _rows(out)]
    # v0 and v1 lie far apart: the pair is told apart every time
    assert got == [("all", 0, 90, 100, 100, ev[0]), ("random", 1, 91, 100, 100, ev[1])]
