"""End-to-end: the smoke preset through Snakemake, and the workflow's start-up checks."""
import contextlib
import csv
import json
import re
import shutil
import subprocess
import sys
import zipfile

import numpy as np
from PIL import Image

import pytest
import torch
import yaml

from conftest import ROOT, WORKFLOW_FILES, snakemake
from modelfp import archspace, synthetic, variants
from modelfp.feed import SyntheticZoo

SMOKE = ("--configfile", "configs/smoke.yaml")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke run of the whole workflow (plus the K=3 zoo and one perturbation), shared by the
    tests below, so that each property is its own test and the first failure hides none of the
    others. Tests only read its files, except where they say how they restore them."""
    root = tmp_path_factory.mktemp("smoke")
    for name in WORKFLOW_FILES:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    snakemake(root, "all", "zoo_k3", "results/perturbed/jpeg/50", "--cores", "2", *SMOKE)
    return root


def _evaluation_side(root, n_images):
    """The names of a test model's images (00000, 00001, ...) that lie on the evaluation side
    (modelfp.splits, the run's evaluation.train_fraction)."""
    from modelfp import splits
    fraction = yaml.safe_load(open(root / "config.yaml"))["evaluation"]["train_fraction"]
    return [f"{i:05d}" for i in range(n_images) if splits.side(f"{i:05d}", fraction) == splits.EVAL]


def _zoo_rows(root):
    rows = list(csv.DictReader(open(root / "results/synthetic/summary.csv")))
    rows_k3 = list(csv.DictReader(open(root / "results/synthetic/summary_k3.csv")))
    return rows, rows_k3


@pytest.mark.slow
def test_a_second_run_has_nothing_to_do(smoke):
    again = snakemake(smoke, "all", "zoo_k3", "--cores", "2", *SMOKE)
    assert "Nothing to be done" in again.stdout


@pytest.mark.slow
def test_the_zoo_summaries_list_every_checkpoint_and_each_loads(smoke):
    rows, rows_k3 = _zoo_rows(smoke)
    assert len(rows) == 5 * 2 and len(rows_k3) == 1 * 2          # archs x seeds of smoke.yaml
    paths = [smoke / r["file"] for r in rows + rows_k3]
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


@pytest.mark.slow
def test_the_zoo_is_trained_one_job_per_slice(smoke):
    # the 6 configured architectures lie in 5 slices, each trained whole
    cfg_archs = yaml.safe_load(open(smoke / "configs/smoke.yaml"))["synthesis"]["architectures"]
    slices = {archspace.slice_id(archspace.parse(a)) for a in cfg_archs}
    assert len(slices) == 5
    assert sorted(p.stem for p in (smoke / "results/benchmarks/synthesize").glob("K*.tsv")) == sorted(slices)


@pytest.mark.slow
def test_the_denoiser_reports_its_gain_and_the_spectra_cover_the_zoo(smoke):
    rows, _ = _zoo_rows(smoke)
    assert "PSNR" in (smoke / "results/logs/denoiser/dncnn.log").read_text()
    spectra = np.load(smoke / "results/spectra/synthetic.npz")
    assert spectra["log"].shape == (len(rows), 16 // 2 + 1) and np.isfinite(spectra["log"]).all()
    assert sorted(map(str, spectra["archs"])) == sorted(r["arch"] for r in rows)
    claims = list(csv.DictReader(open(smoke / "results/tables/spectral_effects.csv")))
    tested = {r["claim"]: r for r in claims if r.get("pairs") not in (None, "", "0")}
    assert len(tested) == 2      # the smoke zoo has matched pairs for the nearest and sigmoid claims
    for stem in ("fig_11_upsampling", "fig_13_activation", "fig_14_normalization"):
        assert (smoke / f"results/figures/{stem}.png").stat().st_size > 1000


@pytest.mark.slow
def test_each_own_generator_left_its_images_meta_and_contact_sheet(smoke):
    emerging = {"vae", "flow", "ddpm", "vit", "vae_lora0", "vae_lora1", "ddpm_varied"}
    for name in ("dcgan", "progan", "dcgan_faces", "vae", "flow", "ddpm", "vit", "vae_lora0", "vae_lora1",
                 "ddpm_varied"):
        meta = json.loads((smoke / f"results/testbed/{name}/meta.json").read_text())
        assert meta["group"] == ("emerging" if name in emerging else "classical"), name
        assert len(list((smoke / f"results/testbed/{name}/images").glob("*.png"))) == 6
        assert (smoke / f"results/testbed/contact_sheets/{name}.png").exists()
    assert len(list((smoke / "results/perturbed/jpeg/50/dcgan").glob("*.png"))) == 6


@pytest.mark.slow
def test_lineage_variants_record_their_base_and_varied_configurations_label_every_image(smoke):
    lora = json.loads((smoke / "results/testbed/vae_lora1/meta.json").read_text())
    base = json.loads((smoke / "results/testbed/vae/meta.json").read_text())
    assert lora["base"] == "vae" and lora["sample_seed"] != base["sample_seed"]      # no shared noise
    varied = json.loads((smoke / "results/testbed/ddpm_varied/meta.json").read_text())
    assert varied["base"] == "ddpm" and len(varied["configurations"]) == 6
    sizes = {Image.open(smoke / "results/testbed/ddpm_varied/images" / f).size[0]: c["image_size"]
             for f, c in varied["configurations"].items()}
    assert all(k == v for k, v in sizes.items())


@pytest.mark.slow
def test_tables_ii_and_xi_hold_the_spectra_files_ffds_beside_the_papers(smoke):
    _check_ffd_tables(smoke)
    assert (smoke / "results/figures/fig_10_closest_spectra.png").stat().st_size > 1000


@pytest.mark.slow
def test_the_html_report_holds_the_tables_and_figures_of_the_run(smoke, tmp_path):
    snakemake(smoke, "--report", str(tmp_path / "report.zip"), *SMOKE)
    with zipfile.ZipFile(tmp_path / "report.zip") as report:
        names = report.namelist()
        assert any(n.endswith("spectral_effects.csv") for n in names)
        assert any(n.endswith("summary.csv") for n in names)
        for stem in ("fig_10_closest_spectra", "fig_11_upsampling", "fig_13_activation",
                     "fig_14_normalization"):
            assert any(n.endswith(f"{stem}.png") for n in names), stem
        assert any(n.endswith("table_ii.csv") for n in names)
        table = next(n for n in names if n.endswith("spectral_effects.csv"))
        assert b"nearest has less high-frequency energy than transposed" in report.read(table)


@pytest.mark.slow
def test_a_changed_checkpoint_reruns_its_manifest_and_the_extractors_and_is_refused_until_then(smoke, tmp_path):
    """The extractors declare the zoo's slice manifests, not its 864 checkpoints (issue 24). A
    checkpoint whose content changed makes Snakemake re-plan its slice's manifest and, through it,
    every extractor (a mere `touch` does not: Snakemake compares the recorded checksum of an input
    newer than its output); and a job handed a checkpoint that changed after its manifest was
    written refuses it, naming it, so none reads one unnoticed. The checkpoint is restored
    afterwards (the other tests share the run)."""
    from modelfp import manifest
    rows, _ = _zoo_rows(smoke)
    checkpoint = smoke / rows[0]["file"]
    slice_ = archspace.slice_id(archspace.parse(checkpoint.parent.name))
    manifests = [smoke / f"results/synthetic/slices/{slice_}.tsv"]
    rel = str(checkpoint.relative_to(smoke))
    assert manifest.read(manifests)[rel] == manifest.digest(checkpoint)
    shutil.copy2(checkpoint, tmp_path / "original.pt")
    try:
        with open(checkpoint, "ab") as f:
            f.write(b"changed")
        plan = snakemake(smoke, "all", "--dry-run", "--cores", "1", *SMOKE).stdout
        counts = {line.split()[0]: int(line.split()[1]) for line in plan.splitlines()
                  if len(line.split()) == 2 and line.split()[1].isdigit()}
        assert counts["zoo_manifest"] == 1 and f"slice={slice_}" in plan
        # every extractor trained on that slice, and only those (an ablation without its options
        # never reads it): at least Only-Syn's
        replanned = set(re.findall(r"rule train_extractor:.*?wildcards: variant=(\S+)", plan, flags=re.S))
        trained = {p.parent.name for p in (smoke / "results/extractors").glob("*/trained.pt")}
        assert "all" in replanned and replanned <= trained and counts["train_extractor"] == len(replanned)
        with pytest.raises(ValueError, match="changed after its manifest"):
            with contextlib.chdir(smoke):        # manifests list paths relative to the run's folder
                manifest.verified([rel], [str(m.relative_to(smoke)) for m in manifests])
    finally:
        shutil.copy2(tmp_path / "original.pt", checkpoint)


def _planned(dry_run: str) -> list[tuple[str, str, str]]:
    """(rule, wildcards, reason) of every job in a dry run's listing."""
    jobs = []
    for block in re.split(r"\n(?=rule \w+:\n)", dry_run)[1:]:
        rule = block.split(":", 1)[0].removeprefix("rule ")
        reason = re.search(r"^\s+reason: (.*)$", block, flags=re.M)
        wildcards = re.search(r"^\s+wildcards: (.*)$", block, flags=re.M)
        jobs.append((rule, wildcards.group(1) if wildcards else "", reason.group(1) if reason else ""))
    return jobs


@pytest.mark.slow
def test_an_edited_preset_value_reruns_the_jobs_it_feeds_and_only_those(smoke, tmp_path):
    """Snakemake reruns a job whose recorded params changed, but records only params whose
    function takes no input or output; the rules' *_args functions take the wildcards alone so
    that every preset value a verb is passed is recorded. An overlay that raises the extractors'
    epochs and one test model's training steps replans, for changed params, the extractors trained
    for `extractor.epochs` (not the ablations, which train for `ablation_epochs`) and that model
    alone (a dry run: the shared run's files are not touched)."""
    config = yaml.safe_load(open(smoke / "configs/smoke.yaml"))
    vae = config["test_models"]["vae"]
    overlay = tmp_path / "edited.yaml"
    overlay.write_text(yaml.safe_dump({"extractor": {"epochs": config["extractor"]["epochs"] + 1},
                                       "test_models": {"vae": {**vae, "steps": vae["steps"] + 1}}}))
    plan = snakemake(smoke, "all", "--dry-run", "--cores", "1", "--configfile", "configs/smoke.yaml",
                     str(overlay)).stdout
    changed = {(rule, wildcards) for rule, wildcards, reason in _planned(plan)
               if reason.startswith("Params have changed")}
    extractors = {re.search(r"variant=(\S+)", w).group(1) for rule, w in changed if rule == "train_extractor"}
    models = {re.search(r"model=([^,\s]+)", w).group(1) for rule, w in changed if rule == "train_test_model"}
    assert "all" in extractors
    assert not [v for v in extractors if variants.family(v).flags.get("ablation")]
    assert models == {"vae"}
    assert {rule for rule, _ in changed} == {"train_extractor", "train_test_model"}
    # the unedited preset plans nothing: the recorded params are the resolved ones
    assert "Nothing to be done" in snakemake(smoke, "all", "--dry-run", "--cores", "1", *SMOKE).stdout


def _check_ffd_tables(root):
    """Tables II and XI hold the FFDs and correlations of the spectra files they are made from,
    the paper's numbers beside ours, and the N sweep of the config."""
    from modelfp.ffd import ffd
    from modelfp.paper_tables import paper_rows
    from modelfp.tables import ffd_conditions
    PAPER_TABLE_II = {label: ffd for label, (ffd,) in paper_rows("table_ii").items()}
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


@pytest.mark.slow
def test_every_extractor_variant_trained_its_epochs(smoke):
    from modelfp import extractor
    # smoke.yaml: Only-Syn trains 2 epochs, the ablations and their All row 1 (ablation_epochs),
    # Fine-tune 1; the controls are saved untrained (one "epoch 0" row)
    epochs = {"all": 2, "all_ablation": 1, "wo_K": 1, "wo_A": 1, "seeds_1": 1, "pool_living": 1, "blocks_1": 1,
              "blocks_3": 1, "immunized": 1, "finetune": 1, "random": 1, "reference": 1,
              "specialist_jpeg": 2, "specialist_gray": 2}       # the tool's specialists: all's budget
    for variant, n in epochs.items():
        model = extractor.load(smoke / f"results/extractors/{variant}/trained.pt")
        assert model.meta["variant"] == variant
        history = list(csv.DictReader(open(smoke / f"results/extractors/{variant}/history.csv")))
        assert len(history) == n, variant
    assert not (smoke / "results/extractors/blocks_2").exists()      # = all_ablation, not trained twice
    assert extractor.load(smoke / "results/extractors/reference/trained.pt").cfg.backbone == "none"
    # Fine-tune's head is over the classical test models
    assert extractor.load(smoke / "results/extractors/finetune/trained.pt").classes == ["dcgan", "progan",
                                                                                      "dcgan_faces"]


@pytest.mark.slow
def test_the_deployed_thresholds_are_chosen_on_the_validation_generators(smoke):
    from modelfp import extractor
    calibrated = extractor.load(smoke / "results/extractors/all/model.pt")
    ev = {r["group"]: r for r in csv.DictReader(open(smoke / "results/evaluation/all/w2.csv"))}
    assert set(ev) == {"classical", "emerging", "all"}
    # the deployed thresholds are chosen on the validation generators, never on the test bed, embedded
    # as the tool embeds (the smoke preset's 2 test-time views), and the file carries the views
    val = {r["group"]: r for r in csv.DictReader(open(smoke / "results/evaluation/all/val-w2-v2.csv"))}
    assert calibrated.threshold == pytest.approx(float(val["all"]["verification_threshold"]))
    assert calibrated.views == 2 and (smoke / "results/evaluation/all/val-w2.csv").exists()
    # the open-set rule scores by the preset's nearest gallery images, its global threshold found on
    # the same validation embeddings with that score (the evaluation's, of the fingerprint, differs)
    from modelfp import openset
    e = yaml.safe_load(open(smoke / "configs/smoke.yaml"))["evaluation"]
    assert calibrated.openset_rule["neighbours"] == e["tool_neighbours"] == 2
    emb, labels = openset.read_embeddings_folder(smoke / "results/embeddings/all/val-w2-v2")
    fitted = openset.fit_deployable(emb, labels, e["gallery"], e["seed"], e["gallery_draws"], e["tool_neighbours"])
    assert calibrated.openset_threshold == pytest.approx(fitted.rule.threshold)
    # z and prior are grid values chosen from the same stored embeddings on this machine: exact
    assert calibrated.openset_rule["z"] == fitted.rule.z and calibrated.openset_rule["prior"] == fitted.rule.prior
    # the tool's file carries the specialists the preset trains, their weights as trained
    specialists = extractor.specialists_of(calibrated)
    assert sorted(specialists) == sorted(yaml.safe_load(open(smoke / "configs/smoke.yaml"))["extractor"]["specialists"])
    for kind, network in specialists.items():
        trained = extractor.load(smoke / f"results/extractors/specialist_{kind}/trained.pt")
        for key, value in trained.state_dict().items():
            assert torch.equal(network.state_dict()[key], value), (kind, key)      # copied, not recomputed
    # each re-save's rule is fitted on the validation models' re-saved copies, made by the same
    # file in the tool's windows and views, resaved_images of each model's evaluation side
    from modelfp.attributor import read_gallery
    from modelfp.perturb import MATCHED
    resaved = calibrated.resaved
    assert set(resaved) == set(MATCHED)
    copies = read_gallery(smoke / "results/extractors/all/resaved/validation.gallery")
    config = yaml.safe_load(open(smoke / "configs/smoke.yaml"))
    assert list(copies.models) == config["validation"]["models"] and (copies.windows, copies.views) == (2, 2)
    assert all(n == config["evaluation"]["resaved_images"] for n in copies.counts().values())
    assert all(r["openset"]["fitted_on"] == "results/extractors/all/resaved/validation.gallery"
               and r["verification_threshold"] is not None for r in resaved.values())


@pytest.mark.slow
def test_evaluations_count_the_configs_queries_and_pairs(smoke):
    # what the evaluation must be for the smoke test bed, whatever the (barely trained) extractor:
    # group sizes from the config; accuracies are counts over the config's queries and pairs, and
    # the best-threshold verification accuracy is never below 50 (all "same" or all "different")
    cfg = yaml.safe_load(open(smoke / "configs/smoke.yaml"))
    tb, evaluation = cfg["testbed"], cfg["evaluation"]
    classical = [m for m in tb["models"] if m in ("dcgan", "progan", "dcgan_faces")]
    n_models = {"classical": len(classical), "all": len(tb["models"])}      # lineage/configurations:
    n_models["emerging"] = n_models["all"] - n_models["classical"]         # not evaluated
    pairs = evaluation["pairs_same"] + evaluation["pairs_diff"]
    for variant in ("all", "finetune", "reference", "random"):
        for group, row in _read_evaluation(smoke, variant).items():
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


@pytest.mark.slow
def test_embeddings_hold_only_the_evaluation_side_of_each_model(smoke):
    tb = yaml.safe_load(open(smoke / "configs/smoke.yaml"))["testbed"]
    # every model of the default view has its cached embeddings, lineage and configurations too
    # and only of the evaluation side of each model's images (modelfp.splits): none trained on
    evaluated = _evaluation_side(smoke, tb["n_images"])
    assert 0 < len(evaluated) < tb["n_images"]
    for name in ("dcgan", "vit", "vae_lora0", "ddpm_varied"):
        emb = np.load(smoke / f"results/embeddings/all/w2/{name}.npz")
        assert emb["embeddings"].shape[0] == len(evaluated) and np.isfinite(emb["embeddings"]).all()
    finetune_log = (smoke / "results/logs/extractors/finetune.log").read_text()
    assert f"{tb['n_images'] - len(evaluated)} of {tb['n_images']} images (training side" in finetune_log


@pytest.mark.slow
def test_the_attribution_tables_hold_the_evaluations_numbers_beside_the_papers(smoke):
    from modelfp.baselines import BASELINES
    from modelfp.paper_tables import paper_rows
    from modelfp.tables import ABLATION_METRICS, COMPARISON_METRICS
    BASELINE_LABELS = {m: b.label for m, b in BASELINES.items()}
    table_iv = list(csv.DictReader(open(smoke / "results/tables/table_iv.csv")))
    assert [r["row"] for r in table_iv] == ["w/o K", "w/o L", "w/o S", "w/o U", "w/o A", "w/o N", "All"]
    assert table_iv[-1]["paper_verification_acc"] == "89.73"
    assert "the ablations common budget" in (smoke / "results/tables/table_iv.md").read_text()
    for row, variant in zip(table_iv, ["wo_K", "wo_L", "wo_S", "wo_U", "wo_A", "wo_N", "all_ablation"]):
        ours = _read_evaluation(smoke, variant)["all"]             # the table's numbers are the csv's
        for metric, paper in zip(ABLATION_METRICS, paper_rows("table_iv")[row["row"]]):
            assert float(row[metric]) == round(float(ours[metric]), 2), (row["row"], metric)
            assert float(row[f"paper_{metric}"]) == paper, (row["row"], metric)
    table_v = [r["row"] for r in csv.DictReader(open(smoke / "results/tables/table_v.csv"))]
    assert table_v == ["1", "2 (all)"]
    table_viii = {r["method"]: r for r in csv.DictReader(open(smoke / "results/tables/table_viii.csv"))}
    assert table_viii["POSE"]["paper emerging identification_acc"] == "49.8"
    (m1, m2), paper_viii = COMPARISON_METRICS["table_viii"], paper_rows("table_viii")
    baselines = [(label, f"baseline_{m}") for m, label in BASELINE_LABELS.items()]     # all six in smoke
    for method, variant in (("Ours (Only-Syn)", "all"), ("Ours (Fine-tune)", "finetune"),
                            ("Training-free reference", "reference"), ("Random-init extractor", "random"),
                            *baselines):
        ours = _read_evaluation(smoke, variant)
        for group in ("classical", "emerging"):
            for metric in (m1, m2):
                assert float(table_viii[method][f"{group} {metric}"]) == round(float(ours[group][metric]), 2)
    assert [float(table_viii["Ours (Only-Syn)"][f"paper {g} {m}"]) for g in ("classical", "emerging")
            for m in (m1, m2)] == list(paper_viii["Ours (Only-Syn)"])
    # issue 22: the ceiling diagnostic's row, and every other row tested against Only-Syn per group
    from modelfp.ceiling import LABEL
    assert table_viii[LABEL]["paper classical identification_acc"] == ""
    paired = list(csv.DictReader(open(smoke / "results/tables/table_viii_paired.csv")))
    assert {(r["method"], r["group"]) for r in paired} == {(m, g) for m in table_viii if m != "Ours (Only-Syn)"
                                                           and table_viii[m]["classical identification_acc"] != ""
                                                           for g in ("classical", "emerging")}
    assert all(0 <= float(r["p (McNemar exact)"]) <= 1 for r in paired)
    assert list(csv.DictReader(open(smoke / "results/tables/table_ix_paired.csv")))
    for stem in ("table_vi", "table_vii", "table_ix", "table_x"):
        assert (smoke / f"results/tables/{stem}.md").read_text().startswith("# Table")


@pytest.mark.slow
def test_figures_8_9_and_16_hold_what_they_are_made_of(smoke):
    # Figure 8: synthesis time of the zoo up to k blocks is the sum of the zoo summaries' times,
    # accuracies are those of the blocks_k evaluation
    fig8 = list(csv.DictReader(open(smoke / "results/figures/fig_8_block_count.csv")))
    assert [r["max_blocks"] for r in fig8] == ["1", "2", "3"]
    zoo = [r for name in ("summary.csv", "summary_k3.csv")
           for r in csv.DictReader(open(smoke / "results/synthetic" / name))]
    for row in fig8:
        k = int(row["max_blocks"])
        total = sum(float(r["train_seconds"]) for r in zoo if int(r["arch"][1]) <= k)
        assert float(row["synthesis_seconds"]) == pytest.approx(total, abs=0.051)
        ours = _read_evaluation(smoke, f"blocks_{k}")["all"]
        assert float(row["identification_acc"]) == round(float(ours["identification_acc"]), 2)
        assert float(row["verification_acc"]) == round(float(ours["verification_acc"]), 2)
    fig16 = list(csv.DictReader(open(smoke / "results/figures/fig_16_robustness.csv")))
    assert {(r["extractor"], r["perturbation"]) for r in fig16} == {
        ("plain", "jpeg"), ("plain", "crop"), ("immunized", "jpeg"), ("immunized", "crop")}
    lineage = list(csv.DictReader(open(smoke / "results/figures/fig_9_lineage.csv")))
    assert [(r["set"], r["reference"]) for r in lineage] == [("vae_lora0", "vae"), ("vae_lora1", "vae")]


@pytest.mark.slow
def test_every_baseline_trained_on_the_classical_models_training_side_only(smoke):
    from modelfp.baselines import BASELINES
    tb = yaml.safe_load(open(smoke / "configs/smoke.yaml"))["testbed"]
    evaluated = _evaluation_side(smoke, tb["n_images"])
    BASELINE_LABELS = {m: b.label for m, b in BASELINES.items()}
    # every baseline trained on the classical models' training side only (its log says how many)
    for m, _ in BASELINE_LABELS.items():
        log = (smoke / f"results/logs/baselines/{m}.log").read_text()
        assert f"{tb['n_images'] - len(evaluated)} of {tb['n_images']} images (training side" in log, m
    abady = _read_evaluation(smoke, "baseline_abady")["all"]
    assert 0 <= float(abady["verifier_verification_auc"]) <= 100          # its own verifier, same pairs


@pytest.mark.slow
def test_every_figure_of_the_run_is_drawn(smoke):
    from modelfp.baselines import BASELINES
    for stem in ("fig_8_block_count", "fig_9_lineage", "fig_15_configurations", "fig_16_robustness",
                 "fig_3_block_swap", "fig_12_kernel_spectra", "tsne/all/tsne_emerging",
                 *(f"tsne/baseline_{m}/tsne_emerging" for m in BASELINES)):
        assert (smoke / f"results/figures/{stem}.png").stat().st_size > 1000, stem


@pytest.mark.slow
def test_the_peoples_command_line_on_the_runs_extractor(smoke):
    from modelfp import extractor
    calibrated = extractor.load(smoke / "results/extractors/all/model.pt")
    # the command line for people, on the smoke artifacts
    model = str(smoke / "results/extractors/all/model.pt")
    gallery = str(smoke / "gallery.pt")
    images = {m: sorted((smoke / f"results/testbed/{m}/images").glob("*.png")) for m in ("dcgan", "vit")}
    run = lambda *a: subprocess.run([sys.executable, "-m", "modelfp", *a], capture_output=True, text=True,
                                    cwd=smoke)
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
              str(smoke / "results/denoiser/dncnn.pt"))
    assert out.returncode == 2 and "not a modelfp fingerprint-extractor file" in out.stderr
    assert "Traceback" not in out.stderr
    out = run("verify", str(images["vit"][0]), str(images["vit"][1]), "--extractor",
              str(smoke / "results/extractors/all/trained.pt"))
    assert out.returncode == 2 and "no verification threshold" in out.stderr
    other = str(smoke / "results/extractors/random/trained.pt")
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
