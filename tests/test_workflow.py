"""End-to-end: the smoke preset through Snakemake, and the workflow's start-up checks."""
import csv
import json
import zipfile

import numpy as np

import pytest
import torch

from conftest import snakemake
from modelfp import synthetic
from modelfp.feed import SyntheticZoo

SMOKE = ("--configfile", "configs/smoke.yaml")


@pytest.mark.slow
def test_smoke_run_makes_every_artifact_and_the_files_load(workflow_copy):
    snakemake(workflow_copy, "all", "zoo_k3", "results/perturbed/jpeg/50/dcgan", "--cores", "2", *SMOKE)
    rows = list(csv.DictReader(open(workflow_copy / "results/synthetic/summary.csv")))
    rows_k3 = list(csv.DictReader(open(workflow_copy / "results/synthetic/summary_k3.csv")))
    assert len(rows) == 4 * 2 and len(rows_k3) == 1 * 2          # archs x seeds of smoke.yaml
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
    # every job left its log and benchmark
    assert len(list((workflow_copy / "results/benchmarks/synthesize").glob("K*.tsv"))) == 5
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
    for name in ("dcgan", "progan", "vae", "dcgan_faces"):
        meta = json.loads((workflow_copy / f"results/testbed/{name}/meta.json").read_text())
        assert meta["group"] == ("emerging" if name == "vae" else "classical")
        assert len(list((workflow_copy / f"results/testbed/{name}/images").glob("*.png"))) == 4
        assert (workflow_copy / f"results/testbed/contact_sheets/{name}.png").exists()
    assert len(list((workflow_copy / "results/perturbed/jpeg/50/dcgan").glob("*.png"))) == 4
    # Tables II and XI carry the paper's numbers beside ours; Figure 10 exists
    table_ii = list(csv.DictReader(open(workflow_copy / "results/tables/table_ii.csv")))
    assert [r["models"] for r in table_ii][:2] == ["All", "w/o K"] and table_ii[0]["paper_ffd"] == "3.3"
    assert float(table_ii[0]["ffd"]) > 0
    table_xi = list(csv.DictReader(open(workflow_copy / "results/tables/table_xi.csv")))
    assert [int(r["n_images"]) for r in table_xi] == [2, 3, 4] and table_xi[-1]["pearson_percent"] == "100.0"
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


def test_demo_preset_plans_one_synthesis_job_per_architecture(workflow_copy):
    result = snakemake(workflow_copy, "zoo", "--dry-run", "--cores", "2",
                       "--configfile", "configs/demo.yaml")
    assert "synthesize" in result.stdout
    counts = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert counts.get("synthesize") == "288" and counts.get("pool") == "2"


def test_every_paper_artifact_target_resolves_in_a_dry_run(workflow_copy):
    targets = ["table_ii", "table_xi", "fig_10", "fig_11", "fig_13", "fig_14", "zoo", "zoo_k3",
               "denoiser", "testbed", "perturbations"]
    result = snakemake(workflow_copy, *targets, "--dry-run", "--cores", "2", *SMOKE)
    assert "ffd_tables" in result.stdout and "closest_spectra" in result.stdout
