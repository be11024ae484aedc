"""The command line: pools from folders and embedded photos, errors as one clear line."""
import json

from PIL import Image

from modelfp.cli import main
from modelfp.pools import read_pool


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
