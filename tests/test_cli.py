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
                 "--image-size", "16", "--val-fraction", "0.34", "--out", str(out)]) == 0
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
            "--out", str(tmp_path / "pool")]
    assert main(args) == 2
    assert "broken.jpg" in caplog.text
    caplog.clear()
    assert main(args + ["--on-bad-image", "skip"]) == 0
    assert "skipped 1 of 4" in caplog.text and "broken.jpg" in caplog.text
    assert len(read_pool(tmp_path / "pool", "train")) + len(read_pool(tmp_path / "pool", "val")) == 3


def test_missing_folder_is_one_clear_error(tmp_path, caplog):
    assert main(["pool", "--name", "celeba", "--source", "folder", "--root", str(tmp_path / "nope"),
                 "--image-size", "8", "--out", str(tmp_path / "pool")]) == 2
    assert "celeba" in caplog.text and "nope" in caplog.text
