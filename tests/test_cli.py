"""The workflow's command line (`python -m modelfp.steps`): its verbs, stage by stage; pools from
folders and embedded photos; errors as one clear line."""
import argparse
import json
import subprocess
import sys

from PIL import Image

from modelfp.pools import read_pool
from modelfp.steps import STAGES, build_parser, main

PEOPLES = {"gallery", "identify", "verify", "export"}


def test_each_stage_registers_its_own_verbs_and_none_of_the_peoples():
    verbs = next(a for a in build_parser()._actions if a.dest == "command").choices
    per_stage = {}
    for stage in STAGES:
        sub = argparse.ArgumentParser().add_subparsers()
        stage.register(sub)
        per_stage[stage.__name__] = set(sub.choices)
    assert all(per_stage.values()), f"a stage without verbs: {per_stage}"
    assert sum(map(len, per_stage.values())) == len(verbs)           # no verb registered twice
    assert set().union(*per_stage.values()) == set(verbs) and not PEOPLES & set(verbs)
    assert {"fig-3", "fig-8", "fig-12", "fig-16"} <= per_stage["modelfp.steps.figures"]


def test_python_m_modelfp_steps_is_the_workflows_entry():
    shown = subprocess.run([sys.executable, "-m", "modelfp.steps", "--help"], capture_output=True, text=True,
                           check=True).stdout
    assert "train-extractor" in shown and "validation-table" in shown and "identify" not in shown


def test_pool_from_a_folder_of_mixed_images(tmp_path):
    src = tmp_path / "photos" / "nested"
    src.mkdir(parents=True)
    Image.new("RGB", (40, 30), (255, 0, 0)).save(src / "a.jpg")
    Image.new("L", (20, 20), 128).save(src / "b.png")
    Image.new("RGBA", (50, 50), (0, 0, 255, 255)).save(tmp_path / "photos" / "c.png")
    out = tmp_path / "pool"
    assert main(["pool", "--name", "p", "--source", "folder", "--root", str(tmp_path / "photos"),
                 "--on-bad-image", "error", "--image-size", "16", "--val-fraction", "0.34", "--seed", "0",
                 "--out-dir", str(out)]) == 0
    train, val = read_pool(out, "train"), read_pool(out, "val")
    assert len(train) + len(val) == 3 and train.shape[1:] == (3, 16, 16)
    assert json.loads((out / "manifest.json").read_text())["meta"]["name"] == "p"


def test_bad_image_stops_with_the_file_named_or_is_skipped_when_asked(tmp_path, caplog):
    src = tmp_path / "photos"
    src.mkdir()
    for i in range(3):
        Image.new("RGB", (20, 20), (i, 0, 0)).save(src / f"ok{i}.png")
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    args = ["pool", "--name", "p", "--source", "folder", "--root", str(src), "--image-size", "8",
            "--val-fraction", "0.05", "--seed", "0", "--out-dir", str(tmp_path / "pool"),
            "--on-bad-image", "error"]
    assert main(args) == 2
    assert "broken.jpg" in caplog.text
    caplog.clear()
    assert main(args + ["--on-bad-image", "skip"]) == 0
    assert "skipped 1 of 4" in caplog.text and "broken.jpg" in caplog.text
    assert len(read_pool(tmp_path / "pool", "train")) + len(read_pool(tmp_path / "pool", "val")) == 3


def test_missing_folder_is_one_clear_error(tmp_path, caplog):
    assert main(["pool", "--name", "celeba", "--source", "folder", "--root", str(tmp_path / "nope"),
                 "--on-bad-image", "error", "--image-size", "8", "--val-fraction", "0.05", "--seed", "0",
                 "--out-dir", str(tmp_path / "pool")]) == 2
    assert "celeba" in caplog.text and "nope" in caplog.text



def test_a_pool_source_without_its_configured_options_is_one_clear_error(tmp_path, caplog):
    """--count (embedded) and --on-bad-image (folder) have no default: the config's pools.<name> sets them."""
    common = ["--image-size", "8", "--val-fraction", "0.05", "--seed", "0", "--out-dir", str(tmp_path / "pool")]
    assert main(["pool", "--name", "e", "--source", "embedded", "--photos", "x", *common]) == 2
    assert "--count" in caplog.text
    assert main(["pool", "--name", "f", "--source", "folder", "--root", str(tmp_path), *common]) == 2
    assert "--on-bad-image" in caplog.text
    assert not (tmp_path / "pool").exists()

def _evaluation(path, acc):
    path.write_text("group,models,verification_acc,verification_auc,identification_acc,identification_f1\n"
                    f"all,4,{acc},90,{acc},50\n")
    return str(path)


def test_table_and_figure_verbs_write_exactly_the_files_they_are_given(tmp_path):
    ev = [_evaluation(tmp_path / f"ev{i}.csv", 60 + i) for i in range(2)]
    out = tmp_path / "out"
    assert main(["attribution-table", "--table", "table_iv", "--row", "w/o K", "w/o K", ev[0],
                 "--row", "All", "All", ev[1], "--out-csv", str(out / "a.csv"), "--out-md", str(out / "b.md")]) == 0
    assert main(["fig-16", "--point", "plain", "jpeg", "90", ev[0], "--point", "immunized", "jpeg", "90", ev[1],
                 "--out-png", str(out / "c.png"), "--out-pdf", str(out / "d.pdf"), "--out-csv", str(out / "e.csv")]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "b.md", "c.png", "d.pdf", "e.csv"]
    assert (out / "b.md").read_text().startswith("# Table IV")
    assert "immunized,jpeg,90.0,61.0" in (out / "e.csv").read_text()


def _train_extractor_args(tmp_path):
    """train-extractor fine-tuning a tiny saved extractor for 2 epochs of 1 step on folders a, b; the
    validation folders v0, v1 (with the protocol flags) are given by the test."""
    from conftest import write_pngs
    from modelfp import denoise
    from modelfp import extractor as ex
    init = tmp_path / "init.pt"
    cfg = ex.ExtractorConfig(backbone="small_cnn", transform="log1p", image_size=16)
    ex.save(ex.build(denoise.init_model(depth=3, features=4, seed=0), cfg, ["x", "y"], seed=0), init)
    for seed, name in enumerate(("a", "b", "v0", "v1")):
        write_pngs(tmp_path / name, [f"{i:05d}" for i in range(20)], seed=seed)
    options = {"backbone": "small_cnn", "transform": "log1p", "image_size": 16, "epochs": 2, "steps_per_epoch": 1,
               "p": 2, "k": 2, "warmup_steps": 1}
    return ["train-extractor", "--variant", "finetune", "--init", str(init), "--images", "a", str(tmp_path / "a"),
            "--images", "b", str(tmp_path / "b"), "--train-fraction", "0.5", "--options", json.dumps(options),
            "--out", str(tmp_path / "out.pt"), "--history", str(tmp_path / "history.csv"), "--device", "cpu"]


PROTOCOL = ["--window", "1", "--gallery", "2", "--pairs-same", "10", "--pairs-diff", "10", "--seed", "0"]


def test_train_extractor_writes_the_validation_scores_of_every_epoch(tmp_path):
    import csv
    validation = ["--validation", "v0", str(tmp_path / "v0"), "--validation", "v1", str(tmp_path / "v1")]
    assert main([*_train_extractor_args(tmp_path), *validation, *PROTOCOL]) == 0
    rows = list(csv.DictReader(open(tmp_path / "history.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    for r in rows:
        assert 0 <= float(r["val_identification_acc"]) <= 100 and 0 <= float(r["val_verification_auc"]) <= 100


def test_train_extractor_refuses_bad_validation_arguments_before_training(tmp_path, caplog):
    args = _train_extractor_args(tmp_path)
    assert main([*args, "--validation", "v9", str(tmp_path / "nope"), *PROTOCOL]) == 2
    assert "validation model v9" in caplog.text and "nope" in caplog.text
    assert main([*args, "--validation", "v0", str(tmp_path / "a"), *PROTOCOL]) == 2
    assert "also trained on" in caplog.text
    assert main([*args, "--validation", "v0", str(tmp_path / "v0"), *PROTOCOL[:2]]) == 2
    assert "--gallery" in caplog.text
    assert not (tmp_path / "out.pt").exists() and not (tmp_path / "history.csv").exists()
