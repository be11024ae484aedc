"""End-to-end: the smoke preset through Snakemake, and the workflow's start-up checks."""
import contextlib
import csv
import json
import re
import subprocess
import sys
import zipfile

import numpy as np
from PIL import Image

import pytest
import torch
import yaml

from conftest import snakemake
from modelfp import archspace, synthetic
from modelfp.feed import SyntheticZoo

SMOKE = ("--configfile", "configs/smoke.yaml")


@pytest.mark.slow
def test_smoke_run_makes_every_artifact_and_the_files_load(workflow_copy):
    snakemake(workflow_copy, "all", "zoo_k3", "results/perturbed/jpeg/50", "--cores", "2", *SMOKE)
    rows = list(csv.DictReader(open(workflow_copy / "results/synthetic/summary.csv")))
    rows_k3 = list(csv.DictReader(open(workflow_copy / "results/synthetic/summary_k3.csv")))
    assert len(rows) == 5 * 2 and len(rows_k3) == 1 * 2          # archs x seeds of smoke.yaml
    paths = [workflow_copy / r["file"] for r in rows + rows_k3]
    for row, path in zip(rows + rows_k3, paths):
        model = synthetic.load(path)
        assert model.arch.id == row["arch"] and model.info["seed"] == int(row["seed"])
        assert model.info["result"]["steps"] == int(row["steps"]) <= 10
    # the two seeds of an architecture are different models
    a, b = (synthetic.load(p).state_dict() for p in paths[:2])
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())
    # the zoo feeds fingerprinted images at a size other than the training size
    zoo = SyntheticZoo.from_files(paths)
    out = zoo(torch.zeros(len(paths), 3, 32, 32), torch.arange(len(paths)))
    assert out.shape == (len(paths), 3, 32, 32)
    # one job per slice: the 6 configured architectures lie in 5 slices, each trained whole
    cfg_archs = yaml.safe_load(open(workflow_copy / "configs/smoke.yaml"))["synthesis"]["architectures"]
    slices = {archspace.slice_id(archspace.parse(a)) for a in cfg_archs}
    assert len(slices) == 5
    assert sorted(p.stem for p in (workflow_copy / "results/benchmarks/synthesize").glob("K*.tsv")) == sorted(slices)
    # the denoiser reports its PSNR gain; spectra cover every model of the zoo
    assert "PSNR" in (workflow_copy / "results/logs/denoiser/dncnn.log").read_text()
    spectra = np.load(workflow_copy / "results/spectra/synthetic.npz")
    assert spectra["log"].shape == (len(rows), 16 // 2 + 1) and np.isfinite(spectra["log"]).all()
    assert sorted(map(str, spectra["archs"])) == sorted(r["arch"] for r in rows)
    claims = list(csv.DictReader(open(workflow_copy / "results/tables/spectral_effects.csv")))
    tested = {r["claim"]: r for r in claims if r.get("pairs") not in (None, "", "0")}
    assert len(tested) == 2      # the smoke zoo has matched pairs for the nearest and sigmoid claims
    for stem in ("fig_11_upsampling", "fig_13_activation", "fig_14_normalization"):
        assert (workflow_copy / f"results/figures/{stem}.png").stat().st_size > 1000
    # the test bed: each own generator left its images, meta.json and a contact sheet
    emerging = {"vae", "flow", "ddpm", "vit", "vae_lora0", "vae_lora1", "ddpm_varied"}
    for name in ("dcgan", "progan", "dcgan_faces", "vae", "flow", "ddpm", "vit", "vae_lora0", "vae_lora1",
                 "ddpm_varied"):
        meta = json.loads((workflow_copy / f"results/testbed/{name}/meta.json").read_text())
        assert meta["group"] == ("emerging" if name in emerging else "classical"), name
        assert len(list((workflow_copy / f"results/testbed/{name}/images").glob("*.png"))) == 6
        assert (workflow_copy / f"results/testbed/contact_sheets/{name}.png").exists()
    # lineage variants record their base; varied configurations label every image
    lora = json.loads((workflow_copy / "results/testbed/vae_lora1/meta.json").read_text())
    base = json.loads((workflow_copy / "results/testbed/vae/meta.json").read_text())
    assert lora["base"] == "vae" and lora["sample_seed"] != base["sample_seed"]      # no shared noise
    varied = json.loads((workflow_copy / "results/testbed/ddpm_varied/meta.json").read_text())
    assert varied["base"] == "ddpm" and len(varied["configurations"]) == 6
    sizes = {Image.open(workflow_copy / "results/testbed/ddpm_varied/images" / f).size[0]: c["image_size"]
             for f, c in varied["configurations"].items()}
    assert all(k == v for k, v in sizes.items())
    assert len(list((workflow_copy / "results/perturbed/jpeg/50/dcgan").glob("*.png"))) == 6
    _check_attribution(workflow_copy)
    # Tables II and XI carry the paper's numbers beside ours; Figure 10 exists
    _check_ffd_tables(workflow_copy)
    assert (workflow_copy / "results/figures/fig_10_closest_spectra.png").stat().st_size > 1000
    # the HTML report holds the tables and figures of the run
    snakemake(workflow_copy, "--report", "report.zip", *SMOKE)
    with zipfile.ZipFile(workflow_copy / "report.zip") as report:
        names = report.namelist()
        assert any(n.endswith("spectral_effects.csv") for n in names)
        assert any(n.endswith("summary.csv") for n in names)
        for stem in ("fig_10_closest_spectra", "fig_11_upsampling", "fig_13_activation",
                     "fig_14_normalization"):
            assert any(n.endswith(f"{stem}.png") for n in names), stem
        assert any(n.endswith("table_ii.csv") for n in names)
        table = next(n for n in names if n.endswith("spectral_effects.csv"))
        assert b"nearest has less high-frequency energy than transposed" in report.read(table)
    # a second run has nothing to do
    again = snakemake(workflow_copy, "all", "zoo_k3", "--cores", "2", *SMOKE)
    assert "Nothing to be done" in again.stdout
    _check_a_changed_checkpoint_is_refused(workflow_copy, paths[0])


def _check_a_changed_checkpoint_is_refused(root, checkpoint):
    """The extractors declare the zoo's slice manifests, not its checkpoints (issue 24): the
    manifest of the run lists each checkpoint's digest, and a job refuses a checkpoint that
    changed after its manifest was written, naming it, so none reads one unnoticed."""
    from modelfp import manifest
    slice_ = archspace.slice_id(archspace.parse(checkpoint.parent.name))
    manifests = [root / f"results/synthetic/slices/{slice_}.tsv"]
    rel = str(checkpoint.relative_to(root))
    assert manifest.read(manifests)[rel] == manifest.digest(checkpoint)
    with open(checkpoint, "ab") as f:
        f.write(b"changed")
    with pytest.raises(ValueError, match="changed after its manifest"):
        with contextlib.chdir(root):        # manifests list paths relative to the run's folder
            manifest.verified([rel], [str(m.relative_to(root)) for m in manifests])


def _check_ffd_tables(root):
    """Tables II and XI hold the FFDs and correlations of the spectra files they are made from,
    the paper's numbers beside ours, and the N sweep of the config."""
    from modelfp.ffd import ffd
    from modelfp.tables import PAPER_TABLE_II, ffd_conditions
    cfg = yaml.safe_load(open(root / "configs/smoke.yaml"))["spectra"]
    syn, real = np.load(root / "results/spectra/synthetic.npz"), np.load(root / "results/spectra/test_models.npz")
    masks = ffd_conditions([str(a) for a in syn["archs"]], [int(s) for s in syn["seeds"]])
    table_ii = list(csv.DictReader(open(root / "results/tables/table_ii.csv")))
    assert [r["models"] for r in table_ii] == list(PAPER_TABLE_II) == list(masks)
    for row in table_ii:
        mask = masks[row["models"]]
        assert float(row["paper_ffd"]) == PAPER_TABLE_II[row["models"]] and int(row["n_synthetic"]) == mask.sum()
        assert mask.any()            # the smoke zoo has models of every subset
        assert float(row["ffd"]) == pytest.approx(ffd(real["log"], syn["log"][mask]), abs=1e-4)
    # Table XI: one row per N of the config's sweep; per N the Table II FFDs of that N's spectra,
    # correlated with those at the largest N (which is the full n_images of Table II)
    ns = cfg["n_images_sweep"]
    table_xi = list(csv.DictReader(open(root / "results/tables/table_xi.csv")))
    assert [int(r["n_images"]) for r in table_xi] == ns and max(ns) == cfg["n_images"]
    values = np.array([[ffd(real["log_sweep"][i], syn["log_sweep"][i][m]) for m in masks.values()]
                       for i in range(len(ns))])
    ref = values[int(np.argmax(ns))]
    for row, v in zip(table_xi, values):
        assert int(row["conditions"]) == len(masks)
        assert [float(row[f"ffd {name}"]) for name in masks] == pytest.approx(v, abs=1e-4)
        assert float(row["pearson_percent"]) == pytest.approx(100 * np.corrcoef(v, ref)[0, 1], abs=0.006)
    largest = table_xi[int(np.argmax(ns))]
    assert [float(largest[f"ffd {r['models']}"]) for r in table_ii] == \
        pytest.approx([float(r["ffd"]) for r in table_ii], abs=2e-4)       # same N, same FFDs


def _read_evaluation(root, variant, view="w2"):
    """The evaluation csv of a variant; an ablation that trains what `all` trains uses its All row's
    (the smoke preset gives the ablations their own budget: all_ablation)."""
    path = root / f"results/evaluation/{variant}/{view}.csv"
    if not path.exists():
        path = root / f"results/evaluation/all_ablation/{view}.csv"
    return {r["group"]: r for r in csv.DictReader(open(path))}


def _check_attribution(root):
    """Extractor variants, evaluations, Tables IV-X, Figures 8/9/15/16, and the people's CLI."""
    from modelfp import extractor
    # smoke.yaml: Only-Syn trains 2 epochs, the ablations and their All row 1 (ablation_epochs),
    # Fine-tune 1; the controls are saved untrained (one "epoch 0" row)
    epochs = {"all": 2, "all_ablation": 1, "wo_K": 1, "wo_A": 1, "seeds_1": 1, "pool_living": 1, "blocks_1": 1,
              "blocks_3": 1, "immunized": 1, "finetune": 1, "random": 1, "reference": 1}
    for variant, n in epochs.items():
        model = extractor.load(root / f"results/extractors/{variant}/trained.pt")
        assert model.meta["variant"] == variant
        history = list(csv.DictReader(open(root / f"results/extractors/{variant}/history.csv")))
        assert len(history) == n, variant
    assert not (root / "results/extractors/blocks_2").exists()      # = all_ablation, not trained twice
    assert extractor.load(root / "results/extractors/reference/trained.pt").cfg.backbone == "none"
    # Fine-tune's head is over the classical test models
    assert extractor.load(root / "results/extractors/finetune/trained.pt").classes == ["dcgan", "progan",
                                                                                      "dcgan_faces"]
    calibrated = extractor.load(root / "results/extractors/all/model.pt")
    ev = {r["group"]: r for r in csv.DictReader(open(root / "results/evaluation/all/w2.csv"))}
    assert set(ev) == {"classical", "emerging", "all"}
    # the deployed thresholds are chosen on the validation generators, never on the test bed
    val = {r["group"]: r for r in csv.DictReader(open(root / "results/evaluation/all/val-w2.csv"))}
    assert calibrated.threshold == pytest.approx(float(val["all"]["verification_threshold"]))
    assert calibrated.openset_threshold == pytest.approx(float(val["all"]["openset_threshold"]))
    # what the evaluation must be for the smoke test bed, whatever the (barely trained) extractor:
    # group sizes from the config; accuracies are counts over the config's queries and pairs, and
    # the best-threshold verification accuracy is never below 50 (all "same" or all "different")
    cfg = yaml.safe_load(open(root / "configs/smoke.yaml"))
    tb, evaluation = cfg["testbed"], cfg["evaluation"]
    classical = [m for m in tb["models"] if m in ("dcgan", "progan", "dcgan_faces")]
    n_models = {"classical": len(classical), "all": len(tb["models"])}      # lineage/configurations:
    n_models["emerging"] = n_models["all"] - n_models["classical"]         # not evaluated
    pairs = evaluation["pairs_same"] + evaluation["pairs_diff"]
    for variant in ("all", "finetune", "reference", "random"):
        for group, row in _read_evaluation(root, variant).items():
            models, images = int(row["models"]), int(row["images"])
            assert models == n_models[group] and images > evaluation["gallery"] * models, (variant, group)
            # a mean over the gallery draws of counts over the same queries (the images outside the pools)
            queries, draws = int(row["identification_queries"]), int(row["gallery_draws"])
            assert draws == evaluation["gallery_draws"] and 0 < queries <= images - evaluation["gallery"] * models
            correct = float(row["identification_acc"]) * queries * draws / 100
            assert correct == pytest.approx(round(correct), abs=1e-6), (variant, group, row)
            correct = float(row["verification_acc"]) * pairs / 100
            assert correct == pytest.approx(round(correct), abs=1e-6) and correct >= pairs / 2, (variant, row)
            assert 0 <= float(row["verification_auc"]) <= 100
    # every model of the default view has its cached embeddings, lineage and configurations too
    # and only of the evaluation side of each model's images (modelfp.splits): none trained on
    from modelfp import splits
    fraction = yaml.safe_load(open(root / "config.yaml"))["evaluation"]["train_fraction"]
    sides = {f"{i:05d}": splits.side(f"{i:05d}", fraction) for i in range(tb["n_images"])}
    evaluated = sorted(k for k, v in sides.items() if v == splits.EVAL)
    assert 0 < len(evaluated) < tb["n_images"]
    for name in ("dcgan", "vit", "vae_lora0", "ddpm_varied"):
        emb = np.load(root / f"results/embeddings/all/w2/{name}.npz")
        assert emb["embeddings"].shape[0] == len(evaluated) and np.isfinite(emb["embeddings"]).all()
    finetune_log = (root / "results/logs/extractors/finetune.log").read_text()
    assert f"{tb['n_images'] - len(evaluated)} of {tb['n_images']} images (training side" in finetune_log
    from modelfp.tables import ABLATION_METRICS, COMPARISON_METRICS
    from modelfp.variants import BASELINE_LABELS, paper_rows
    table_iv = list(csv.DictReader(open(root / "results/tables/table_iv.csv")))
    assert [r["row"] for r in table_iv] == ["w/o K", "w/o L", "w/o S", "w/o U", "w/o A", "w/o N", "All"]
    assert table_iv[-1]["paper_verification_acc"] == "89.73"
    assert "the ablations common budget" in (root / "results/tables/table_iv.md").read_text()
    for row, variant in zip(table_iv, ["wo_K", "wo_L", "wo_S", "wo_U", "wo_A", "wo_N", "all_ablation"]):
        ours = _read_evaluation(root, variant)["all"]             # the table's numbers are the csv's
        for metric, paper in zip(ABLATION_METRICS, paper_rows("table_iv")[row["row"]]):
            assert float(row[metric]) == round(float(ours[metric]), 2), (row["row"], metric)
            assert float(row[f"paper_{metric}"]) == paper, (row["row"], metric)
    table_v = [r["row"] for r in csv.DictReader(open(root / "results/tables/table_v.csv"))]
    assert table_v == ["1", "2 (all)"]
    table_viii = {r["method"]: r for r in csv.DictReader(open(root / "results/tables/table_viii.csv"))}
    assert table_viii["POSE"]["paper emerging identification_acc"] == "49.8"
    (m1, m2), paper_viii = COMPARISON_METRICS["table_viii"], paper_rows("table_viii")
    baselines = [(label, f"baseline_{m}") for m, label in BASELINE_LABELS.items()]     # all six in smoke
    for method, variant in (("Ours (Only-Syn)", "all"), ("Ours (Fine-tune)", "finetune"),
                            ("Training-free reference", "reference"), ("Random-init extractor", "random"),
                            *baselines):
        ours = _read_evaluation(root, variant)
        for group in ("classical", "emerging"):
            for metric in (m1, m2):
                assert float(table_viii[method][f"{group} {metric}"]) == round(float(ours[group][metric]), 2)
    assert [float(table_viii["Ours (Only-Syn)"][f"paper {g} {m}"]) for g in ("classical", "emerging")
            for m in (m1, m2)] == list(paper_viii["Ours (Only-Syn)"])
    # issue 22: the ceiling diagnostic's row, and every other row tested against Only-Syn per group
    from modelfp.ceiling import LABEL
    assert table_viii[LABEL]["paper classical identification_acc"] == ""
    paired = list(csv.DictReader(open(root / "results/tables/table_viii_paired.csv")))
    assert {(r["method"], r["group"]) for r in paired} == {(m, g) for m in table_viii if m != "Ours (Only-Syn)"
                                                           and table_viii[m]["classical identification_acc"] != ""
                                                           for g in ("classical", "emerging")}
    assert all(0 <= float(r["p (McNemar exact)"]) <= 1 for r in paired)
    assert list(csv.DictReader(open(root / "results/tables/table_ix_paired.csv")))
    for stem in ("table_vi", "table_vii", "table_ix", "table_x"):
        assert (root / f"results/tables/{stem}.md").read_text().startswith("# Table")
    # Figure 8: synthesis time of the zoo up to k blocks is the sum of the zoo summaries' times,
    # accuracies are those of the blocks_k evaluation
    fig8 = list(csv.DictReader(open(root / "results/figures/fig_8_block_count.csv")))
    assert [r["max_blocks"] for r in fig8] == ["1", "2", "3"]
    zoo = [r for name in ("summary.csv", "summary_k3.csv")
           for r in csv.DictReader(open(root / "results/synthetic" / name))]
    for row in fig8:
        k = int(row["max_blocks"])
        total = sum(float(r["train_seconds"]) for r in zoo if int(r["arch"][1]) <= k)
        assert float(row["synthesis_seconds"]) == pytest.approx(total, abs=0.051)
        ours = _read_evaluation(root, f"blocks_{k}")["all"]
        assert float(row["identification_acc"]) == round(float(ours["identification_acc"]), 2)
        assert float(row["verification_acc"]) == round(float(ours["verification_acc"]), 2)
    fig16 = list(csv.DictReader(open(root / "results/figures/fig_16_robustness.csv")))
    assert {(r["extractor"], r["perturbation"]) for r in fig16} == {
        ("plain", "jpeg"), ("plain", "crop"), ("immunized", "jpeg"), ("immunized", "crop")}
    lineage = list(csv.DictReader(open(root / "results/figures/fig_9_lineage.csv")))
    assert [(r["set"], r["reference"]) for r in lineage] == [("vae_lora0", "vae"), ("vae_lora1", "vae")]
    # every baseline trained on the classical models' training side only (its log says how many)
    for m, _ in BASELINE_LABELS.items():
        log = (root / f"results/logs/baselines/{m}.log").read_text()
        assert f"{tb['n_images'] - len(evaluated)} of {tb['n_images']} images (training side" in log, m
    abady = _read_evaluation(root, "baseline_abady")["all"]
    assert 0 <= float(abady["verifier_verification_auc"]) <= 100          # its own verifier, same pairs
    for stem in ("fig_8_block_count", "fig_9_lineage", "fig_15_configurations", "fig_16_robustness",
                 "fig_3_block_swap", "fig_12_kernel_spectra", "tsne/all/tsne_emerging",
                 *(f"tsne/baseline_{m}/tsne_emerging" for m in BASELINE_LABELS)):
        assert (root / f"results/figures/{stem}.png").stat().st_size > 1000, stem
    # the command line for people, on the smoke artifacts
    model = str(root / "results/extractors/all/model.pt")
    gallery = str(root / "gallery.pt")
    images = {m: sorted((root / f"results/testbed/{m}/images").glob("*.png")) for m in ("dcgan", "vit")}
    run = lambda *a: subprocess.run([sys.executable, "-m", "modelfp", *a], capture_output=True, text=True,
                                    cwd=root)
    for m, paths in images.items():
        out = run("gallery", "add", m, *map(str, paths[:3]), "--extractor", model, "--gallery", gallery,
                  "--format", "table")
        assert out.returncode == 0 and f"{m}: 3 images" in out.stdout, out.stderr
    out = run("gallery", "add", "dcgan", str(images["dcgan"][3]), "--extractor", model, "--gallery", gallery,
              "--format", "table")
    assert "dcgan: 4 images" in out.stdout and "(2 models)" in out.stdout
    out = run("identify", *map(str, images["vit"][3:]), "--extractor", model, "--gallery", gallery,
              "--threshold", "-1")
    rows = list(csv.DictReader(out.stdout.splitlines()))      # csv when piped
    assert out.returncode == 0 and len(rows) == 3 and all(r["model"] in ("dcgan", "vit") for r in rows)
    out = run("identify", str(images["vit"][3]), "--extractor", model, "--gallery", gallery, "--threshold", "1.01")
    assert next(csv.DictReader(out.stdout.splitlines()))["model"] == "unknown"
    out = run("verify", str(images["vit"][0]), str(images["vit"][0]), "--extractor", model)
    row = next(csv.DictReader(out.stdout.splitlines()))
    assert out.returncode == 0 and row["verdict"] == "same model" and float(row["score"]) == pytest.approx(1, abs=1e-4)
    assert float(row["threshold"]) == pytest.approx(calibrated.threshold, abs=1e-6)
    # wrong files get one clear line, no traceback
    out = run("verify", str(images["vit"][0]), str(images["vit"][1]), "--extractor",
              str(root / "results/denoiser/dncnn.pt"))
    assert out.returncode == 2 and "not a modelfp fingerprint-extractor file" in out.stderr
    assert "Traceback" not in out.stderr
    out = run("verify", str(images["vit"][0]), str(images["vit"][1]), "--extractor",
              str(root / "results/extractors/all/trained.pt"))
    assert out.returncode == 2 and "no verification threshold" in out.stderr
    other = str(root / "results/extractors/random/trained.pt")
    out = run("identify", str(images["vit"][0]), "--extractor", other, "--gallery", gallery, "--threshold", "0")
    assert out.returncode == 2 and "another extractor" in out.stderr


def test_paper_preset_without_data_stops_at_once_saying_where_to_put_it(workflow_copy):
    result = snakemake(workflow_copy, "zoo", "--dry-run", "--cores", "1", check=False)
    assert result.returncode != 0
    assert "data/celeba/img_align_celeba" in result.stdout
    assert "img_align_celeba.zip" in result.stdout


def test_config_typo_is_rejected_by_the_schema(workflow_copy):
    (workflow_copy / "typo.yaml").write_text("synthesis:\n  max_step: 5\n")
    result = snakemake(workflow_copy, "zoo", "--dry-run", "--cores", "1", *SMOKE,
                       "typo.yaml", check=False)
    assert result.returncode != 0 and "max_step" in result.stdout


def test_unknown_architecture_id_in_config_is_named(workflow_copy):
    (workflow_copy / "bad.yaml").write_text("synthesis:\n  architectures: [K1-L1-Spost-Ufoo-Arelu-Nbn]\n")
    result = snakemake(workflow_copy, "zoo", "--dry-run", "--cores", "1", *SMOKE,
                       "bad.yaml", check=False)
    assert result.returncode != 0 and "K1-L1-Spost-Ufoo-Arelu-Nbn" in result.stdout


def test_demo_preset_plans_one_synthesis_job_per_slice(workflow_copy):
    result = snakemake(workflow_copy, "zoo", "zoo_k3", "--dry-run", "--cores", "2",
                       "--configfile", "configs/demo.yaml")
    counts = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    # 432 architectures in slices of 12 (K x L x S x U = 2x2x2x3 + 1x2x2x3), each job all of them
    assert counts.get("synthesize") == "36" and counts.get("pool") == "2"
    jobs = set(re.findall(r"wildcards: slice=(\S+)", result.stdout))     # synthesize's and zoo_manifest's
    assert len(jobs) == 36 and counts.get("zoo_manifest") == "36"
    assert all(len(archspace.slice_archs(s)) == 12 for s in jobs)


def test_every_paper_artifact_target_resolves_in_a_dry_run(workflow_copy):
    targets = ["table_ii", "table_xi", "fig_10", "fig_11", "fig_13", "fig_14", "zoo", "zoo_k3",
               "denoiser", "testbed", "perturbations", "table_iv", "table_v", "table_vi", "table_vii",
               "table_viii", "table_ix", "table_x", "fig_8", "fig_9", "fig_15", "fig_16", "extractors",
               "fig_3", "fig_12"]
    result = snakemake(workflow_copy, *targets, "--dry-run", "--cores", "2", *SMOKE)
    assert "ffd_tables" in result.stdout and "fig_10" in result.stdout
    assert "train_extractor" in result.stdout and "attribution_table" in result.stdout


def test_one_table_target_plans_only_what_it_needs(workflow_copy):
    result = snakemake(workflow_copy, "table_vii", "--dry-run", "--cores", "2", *SMOKE)
    counts = {line.split()[0]: int(line.split()[1]) for line in result.stdout.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    # Table VII: one extractor (all), embedded and evaluated with each window of the preset
    assert counts["train_extractor"] == 1 and counts["embed"] == 2 and counts["evaluate"] == 2
    assert "perturb_test_models" not in counts and "fig_16" not in counts


def test_typos_in_a_generators_sampling_options_stop_the_run_at_start_up(workflow_copy):
    (workflow_copy / "bad.yaml").write_text(
        "test_models:\n  ddpm_varied: {base: ddpm, sampling: {samplr: ddim}}\n")
    result = snakemake(workflow_copy, "zoo", "--dry-run", "--cores", "1", *SMOKE, "bad.yaml", check=False)
    assert result.returncode != 0
    assert "test_models.ddpm_varied: unknown ddpm sampling options ['samplr']" in result.stdout
