"""The people's command line (gallery add / list / remove, identify, verify, export) and the
Attributor API behind it: files, folders and patterns in; bad images as one row each; refused small
images; wrong gallery/extractor files; table / csv / json out; top-k; summaries; the exported form."""
import base64
import csv
import dataclasses
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from modelfp import denoise, perturb
from modelfp import extractor as ex
from modelfp.attributor import WINDOWS, Attributor, read_images
from modelfp.cli import main
from modelfp.cliutil import counted
from modelfp.pools import load_image

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 16           # the tiny extractor's window
THRESHOLD = 0.5


@pytest.fixture(scope="module")
def extractor_file(tmp_path_factory):
    """The cheapest calibrated extractor: the training-free reference (no network, the fingerprint
    is the residual spectrum) over a tiny untrained denoiser, saved with a threshold."""
    model = ex.build(denoise.init_model(depth=3, features=4, seed=0),
                     ex.ExtractorConfig(backbone="none", transform="log1p", image_size=SIZE), ["a", "b"], seed=0)
    model.threshold = THRESHOLD             # verify's
    model.openset_threshold = THRESHOLD     # identify's ("unknown" below it)
    path = tmp_path_factory.mktemp("extractor") / "model.pt"
    ex.save(model, path, variant="reference")
    return str(path)


def test_modelfp_shows_only_the_peoples_commands():
    """`modelfp` (and `python -m modelfp`) is the people's door: its help lists gallery, identify,
    verify and export, and no workflow verb (those are `python -m modelfp.steps`)."""
    import subprocess
    from modelfp.cli import build_parser
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert sorted(commands) == ["export", "gallery", "identify", "verify"]
    shown = subprocess.run([sys.executable, "-m", "modelfp", "--help"], capture_output=True, text=True, check=True)
    assert "{gallery,identify,verify,export}" in shown.stdout
    assert not re.search(r"\b(embed|evaluate|synthesize|train-extractor|calibrate|pool)\b", shown.stdout)
    refused = subprocess.run([sys.executable, "-m", "modelfp", "embed"], capture_output=True, text=True)
    assert refused.returncode == 2 and "invalid choice: 'embed'" in refused.stderr


def _pixels(model: str, seed: int, size=(24, 24)) -> np.ndarray:
    """An image of a toy 'model': noise plus its own periodic trace (stripes or a checkerboard)."""
    h, w = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:h, :w]
    trace = (x % 2) * 60 if model == "stripes" else ((x + y) % 2) * 60
    img = rng.integers(60, 140, (h, w, 3)) + trace[..., None]
    return img.clip(0, 255).astype(np.uint8)


def _save(path, model="stripes", seed=0, size=(24, 24)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_pixels(model, seed, size)).save(path)
    return str(path)


@pytest.fixture
def gallery(tmp_path, extractor_file):
    path = str(tmp_path / "my.gallery")
    for model in ("stripes", "checker"):
        files = [_save(tmp_path / "known" / model / f"{i}.png", model, i) for i in range(3)]
        assert main(["gallery", "add", model, *files, "--extractor", extractor_file, "--gallery", path]) == 0
    return path


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def _identify(capsys, extractor_file, gallery, *images, options=()):
    """Exit code and the csv rows (the format when piped) of `modelfp identify`."""
    code = main(["identify", *map(str, images), "--extractor", extractor_file, "--gallery", gallery, *options])
    return code, _rows(capsys.readouterr().out)


def test_a_folder_is_read_recursively_and_each_image_answered(tmp_path, capsys, extractor_file, gallery):
    capsys.readouterr()
    folder = tmp_path / "queries"
    expected = [_save(folder / "a.png", "stripes", 10), _save(folder / "deep" / "er" / "b.png", "checker", 11),
                _save(folder / "deep" / "c.jpg", "stripes", 12)]
    (folder / "notes.txt").write_text("not an image, not listed")
    code, rows = _identify(capsys, extractor_file, gallery, folder)
    assert code == 0
    assert sorted(r["path"] for r in rows) == sorted(expected)
    assert all(r["model"] in ("stripes", "checker", "unknown") and not r["error"] for r in rows)


def test_bad_files_get_one_line_each_and_the_good_ones_are_still_answered(tmp_path, capsys, extractor_file,
                                                                          gallery):
    capsys.readouterr()
    good = [_save(tmp_path / "q" / "good1.png", "stripes", 20), _save(tmp_path / "q" / "good2.png", "checker", 21)]
    corrupt = tmp_path / "q" / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n this is not really an image")
    truncated = tmp_path / "q" / "truncated.png"
    buf = io.BytesIO()
    Image.fromarray(_pixels("stripes", 22, (64, 64))).save(buf, format="PNG")
    truncated.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    empty = tmp_path / "q" / "empty.png"
    empty.write_bytes(b"")
    missing = tmp_path / "q" / "missing.png"
    code, rows = _identify(capsys, extractor_file, gallery, good[0], corrupt, truncated, empty, missing, good[1])
    assert code == 1
    assert [r["path"] for r in rows] == [good[0], str(corrupt), str(truncated), str(empty), str(missing), good[1]]
    error = {r["path"]: r["error"] for r in rows}
    for bad in (corrupt, truncated, empty, missing):
        assert "; " in error[str(bad)] and not next(r for r in rows if r["path"] == str(bad))["model"]
    assert "corrupt" in error[str(corrupt)] and "truncated" in error[str(truncated)]
    assert "empty" in error[str(empty)] and "no such file" in error[str(missing)]
    for path in good:
        assert not error[path] and next(r for r in rows if r["path"] == path)["model"] in ("stripes", "checker",
                                                                                         "unknown")
    assert "on_bad_image" not in str(error)


def test_an_image_smaller_than_the_window_is_refused_not_upscaled(tmp_path, capsys, extractor_file, gallery):
    capsys.readouterr()
    small = _save(tmp_path / "small.png", "stripes", 30, size=(20, SIZE - 4))
    ok = _save(tmp_path / "ok.png", "stripes", 31, size=(SIZE, SIZE))      # exactly the window: accepted
    code, rows = _identify(capsys, extractor_file, gallery, small, ok)
    assert code == 1
    assert rows[0]["path"] == small and f"at least {SIZE}x{SIZE} pixels" in rows[0]["error"]
    assert f"{SIZE - 4}x20 pixels" in rows[0]["error"] and "not upscaled" in rows[0]["error"]
    assert rows[1]["model"] in ("stripes", "checker", "unknown") and not rows[1]["error"]


def test_a_gallery_path_that_is_an_image_is_one_line_and_exit_2(tmp_path, capsys, caplog, extractor_file):
    png = _save(tmp_path / "x.png")
    before = (tmp_path / "x.png").read_bytes()
    for argv in (["identify", png, "--gallery", png], ["gallery", "add", "m", png, "--gallery", png]):
        caplog.clear()
        assert main([*argv, "--extractor", extractor_file]) == 2
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == 1 and "\n" not in errors[0]
        assert errors[0].startswith(f"{png}: not a modelfp gallery file") and "gallery add" in errors[0]
        assert "weights_only" not in errors[0] and "Weights only" not in errors[0]
    assert (tmp_path / "x.png").read_bytes() == before          # never overwritten by gallery add
    assert capsys.readouterr().out == ""


def test_an_extractor_path_that_is_not_an_extractor_is_one_line_and_exit_2(tmp_path, caplog, gallery):
    png = _save(tmp_path / "x.png")
    dncnn = tmp_path / "dncnn.pt"
    denoise.save(denoise.init_model(depth=3, features=4, seed=0), dncnn)
    for wrong in (png, str(dncnn), str(tmp_path / "absent.pt")):
        caplog.clear()
        assert main(["identify", png, "--extractor", wrong, "--gallery", gallery]) == 2
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == 1 and "\n" not in errors[0] and errors[0].startswith(wrong)
        assert "fingerprint-extractor file" in errors[0] and "Weights only" not in errors[0]


def test_the_api_gives_the_answers_the_command_line_prints(tmp_path, capsys, extractor_file, gallery):
    capsys.readouterr()
    queries = [_save(tmp_path / "q" / f"{m}{i}.png", m, 40 + i) for m in ("stripes", "checker") for i in range(2)]
    bad = tmp_path / "q" / "empty.png"
    bad.write_bytes(b"")
    code, rows = _identify(capsys, extractor_file, gallery, *queries, bad)
    records = Attributor(extractor_file).identify([*queries, bad], gallery)
    assert code == 1 and len(records) == len(rows) == 5
    for record, row in zip(records, rows):
        if record.error:
            assert (row["path"], row["error"], row["model"]) == (record.path, record.error, "")
        else:
            assert row == {"path": record.path, "model": record.model, "score": f"{record.score:.6f}",
                           "nearest": record.nearest, "threshold": f"{THRESHOLD:.6f}",
                           "reason": "", "source": str(tmp_path / "q"), "note": "", "error": ""}
    # the toy models' traces are easy: each query is nearest to its own model
    assert [r.nearest for r in records[:4]] == ["stripes", "stripes", "checker", "checker"]


def test_gallery_add_twice_extends_the_counts(tmp_path, capsys, extractor_file):
    path = str(tmp_path / "g.gallery")
    args = ["--extractor", extractor_file, "--gallery", path, "--format", "table"]
    first = [_save(tmp_path / f"s{i}.png", "stripes", i) for i in range(2)]
    assert main(["gallery", "add", "stripes", *first, *args]) == 0
    assert main(["gallery", "add", "stripes", _save(tmp_path / "s2.png", "stripes", 2), *args]) == 0
    assert main(["gallery", "add", "checker", _save(tmp_path / "c0.png", "checker", 0), *args]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"stripes: 2 images in {path} (1 model); added 2",
                   f"stripes: 3 images in {path} (1 model); added 1",
                   f"checker: 1 image in {path} (2 models); added 1"]
    g = Attributor(extractor_file).load_gallery(path)
    assert {n: m["count"] for n, m in g.models.items()} == {"stripes": 3, "checker": 1}
    # a bad image among good ones: the good ones are added, the bad one reported, exit 1
    (tmp_path / "empty.png").write_bytes(b"")
    assert main(["gallery", "add", "checker", str(tmp_path / "empty.png"),
                 _save(tmp_path / "c1.png", "checker", 1), *args]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{tmp_path / 'empty.png'}  error: ")
    assert out[1] == f"checker: 2 images in {path} (2 models); added 1, 1 could not be used"


def test_grayscale_rgba_and_16_bit_pngs_are_accepted(tmp_path, capsys, extractor_file, gallery):
    capsys.readouterr()
    rgb = _pixels("stripes", 50)
    gray = tmp_path / "gray.png"
    Image.fromarray(rgb[..., 0]).save(gray)
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)])).save(rgba)
    deep = tmp_path / "deep.png"
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(deep)
    assert Image.open(gray).mode == "L" and Image.open(rgba).mode == "RGBA" and Image.open(deep).mode == "I;16"
    code, rows = _identify(capsys, extractor_file, gallery, gray, rgba, deep)
    assert code == 0 and len(rows) == 3 and not any(r["error"] for r in rows)


def test_verify_answers_two_images_and_reports_a_bad_one(tmp_path, capsys, extractor_file):
    a = _save(tmp_path / "a.png", "stripes", 60)
    assert main(["verify", a, a, "--extractor", extractor_file]) == 0
    assert _rows(capsys.readouterr().out) == [{"a": a, "b": a, "verdict": "same model", "same": "true",
                                               "score": "1.000000", "threshold": f"{THRESHOLD:.6f}", "note": "",
                                               "error": ""}]
    assert main(["verify", a, a, "--extractor", extractor_file, "--format", "table"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split() == [a, a, "same", "model", "1.0000"]
    assert table[2] == f"threshold {THRESHOLD:.4f} (same model at or above it)"
    v = Attributor(extractor_file).verify(a, a)
    assert v.same and v.score == pytest.approx(1.0, abs=1e-5) and v.error is None
    assert main(["verify", a, str(tmp_path / "missing.png"), "--extractor", extractor_file]) == 1
    row, = _rows(capsys.readouterr().out)
    assert row["b"] == str(tmp_path / "missing.png") and row["error"].startswith("no such file") and not row["score"]
    # a folder: each of its images against the other side
    b = _save(tmp_path / "more" / "b.png", "checker", 61)
    c = _save(tmp_path / "more" / "c.png", "stripes", 62)
    assert main(["verify", a, str(tmp_path / "more"), "--extractor", extractor_file]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [(r["a"], r["b"]) for r in rows] == [(a, b), (a, c)]
    v = Attributor(extractor_file).verify(a, str(tmp_path))      # the API's verify: two files
    assert v.error.endswith("verify compares two image files; name one")


def test_an_uncalibrated_extractor_needs_a_threshold(tmp_path, caplog, capsys, extractor_file):
    raw = tmp_path / "trained.pt"
    model = ex.load(extractor_file)
    model.threshold = None
    ex.save(model, raw)
    a = _save(tmp_path / "a.png")
    assert main(["verify", a, a, "--extractor", str(raw)]) == 2
    assert "no verification threshold" in caplog.text
    assert main(["verify", a, a, "--extractor", str(raw), "--threshold", "0.9"]) == 0
    assert _rows(capsys.readouterr().out)[0]["verdict"] == "same model"


def _calibrated(tmp_path, extractor_file, name, verification, openset):
    """A copy of the extractor file calibrated with these two thresholds (as the workflow's
    `python -m modelfp.steps calibrate` does)."""
    out = tmp_path / name
    ex.set_threshold(extractor_file, verification, out=out, openset_threshold=openset)
    return str(out)


def test_identify_answers_unknown_below_the_open_set_threshold(tmp_path, capsys, extractor_file):
    files = {m: [_save(tmp_path / "known" / m / f"{i}.png", m, i) for i in range(3)] for m in ("stripes", "checker")}
    query = _save(tmp_path / "q.png", "stripes", 70)
    first = Attributor(extractor_file)
    score = first.identify([query], _gallery(first, files), -1.0)[0].score
    # the verification threshold is far above the score: identify must not use it
    for openset, expected in ((score + 1e-3, "unknown"), (score - 1e-3, "stripes")):
        path = _calibrated(tmp_path, extractor_file, f"open{expected}.pt", 0.999, openset)
        gallery = str(tmp_path / f"{expected}.gallery")
        for model, paths in files.items():
            assert main(["gallery", "add", model, *paths, "--extractor", path, "--gallery", gallery]) == 0
        capsys.readouterr()
        assert main(["identify", query, "--extractor", path, "--gallery", gallery]) == 0
        row, = _rows(capsys.readouterr().out)
        assert (row["path"], row["model"], row["nearest"]) == (query, expected, "stripes")
        assert float(row["score"]) == pytest.approx(score, abs=1e-5)
        assert float(row["threshold"]) == pytest.approx(openset, abs=1e-6)
        # --threshold overrides the calibrated one
        assert main(["identify", query, "--extractor", path, "--gallery", gallery,
                     "--threshold", str(score + 1e-3)]) == 0
        assert _rows(capsys.readouterr().out)[0]["model"] == "unknown"


def _gallery(att, files):
    gallery = att.new_gallery()
    for model, paths in files.items():
        att.add(gallery, model, paths)
    return gallery


def test_verify_uses_the_verification_threshold_not_the_open_set_one(tmp_path, capsys, extractor_file):
    a, b = _save(tmp_path / "a.png", "stripes", 80), _save(tmp_path / "b.png", "checker", 81)
    score = Attributor(extractor_file).verify(a, b, -1.0).score
    for verification, verdict in ((score + 1e-3, "different models"), (score - 1e-3, "same model")):
        # the open-set threshold is on the other side of the score: verify must not use it
        openset = score - 1e-3 if verdict == "different models" else score + 1e-3
        path = _calibrated(tmp_path, extractor_file, f"ver{verification}.pt", verification, openset)
        assert main(["verify", a, b, "--extractor", path]) == 0
        assert _rows(capsys.readouterr().out)[0]["verdict"] == verdict


def test_a_file_calibrated_without_an_open_set_threshold_needs_one_for_identify(tmp_path, caplog, capsys,
                                                                               extractor_file):
    old = tmp_path / "old.pt"
    model = ex.load(extractor_file)
    model.openset_threshold = None
    ex.save(model, old)
    a = _save(tmp_path / "a.png")
    gallery = str(tmp_path / "g.gallery")
    assert main(["gallery", "add", "stripes", a, "--extractor", str(old), "--gallery", gallery]) == 0
    assert main(["identify", a, "--extractor", str(old), "--gallery", gallery]) == 2
    assert "no open-set threshold" in caplog.text and "--threshold" in caplog.text
    assert main(["identify", a, "--extractor", str(old), "--gallery", gallery, "--threshold", "0.5"]) == 0
    assert main(["verify", a, a, "--extractor", str(old)]) == 0          # verify has its threshold


# ---------------------------------------------------------------------------------------------
# Inputs: patterns, a folder of folders; gallery list and remove

def _gallery_models(capsys, path) -> dict:
    capsys.readouterr()
    assert main(["gallery", "list", "--gallery", path, "--format", "json"]) == 0
    return {m["model"]: m["images"] for m in json.loads(capsys.readouterr().out)["models"]}


def test_a_folder_of_folders_makes_one_gallery_model_per_sub_folder(tmp_path, capsys, extractor_file):
    root = tmp_path / "known"
    for model, n in (("stripes", 3), ("checker", 2)):
        for i in range(n):
            _save(root / model / ("deep" if i == 0 else "") / f"{i}.png", model, i)   # sub-sub-folders count too
    (root / ".cache").mkdir()
    _save(root / ".cache" / "x.png")                                  # hidden: not a model
    loose = _save(root / "loose.png")                                 # outside any model: an error row
    other = tmp_path / "more"
    _save(other / "checker" / "9.png", "checker", 9)                  # same name under a second root: one model
    path = str(tmp_path / "g.gallery")
    code = main(["gallery", "add", "--from-folders", str(root), str(other), "--extractor", extractor_file,
                 "--gallery", path])
    rows = _rows(capsys.readouterr().out)
    assert code == 1
    assert [r["path"] for r in rows if r["error"]] == [loose] and "sub-folder" in rows[0]["error"]
    assert sorted((r["model"], Path(r["path"]).name) for r in rows if not r["error"]) == [
        ("checker", "0.png"), ("checker", "1.png"), ("checker", "9.png"),
        ("stripes", "0.png"), ("stripes", "1.png"), ("stripes", "2.png")]
    assert _gallery_models(capsys, path) == {"checker": 3, "stripes": 3}
    # NAME IMAGES and --from-folders exclude each other; neither is a usage error
    for argv in (["gallery", "add", "x", loose, "--from-folders", str(root)], ["gallery", "add"]):
        assert main([*argv, "--extractor", extractor_file, "--gallery", path]) == 2


def test_gallery_remove_removes_and_list_shows_what_is_left(tmp_path, capsys, caplog, extractor_file, gallery):
    assert _gallery_models(capsys, gallery) == {"stripes": 3, "checker": 3}
    assert main(["gallery", "remove", "stripes", "--gallery", gallery]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"removed stripes (3 images) from {gallery}"
    assert _gallery_models(capsys, gallery) == {"checker": 3}
    code, rows = _identify(capsys, extractor_file, gallery, _save(tmp_path / "q.png", "stripes", 5),
                           options=["--threshold", "-1", "--top-k", "3"])
    assert code == 0 and rows[0]["model"] == "checker" and "nearest_2" not in rows[0]
    before = Path(gallery).read_bytes()
    caplog.clear()
    assert main(["gallery", "remove", "checker", "nosuch", "--gallery", gallery]) == 2   # all or nothing
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "'nosuch'" in errors[0] and "it has: checker" in errors[0]
    assert Path(gallery).read_bytes() == before
    assert main(["gallery", "list", "--gallery", gallery, "--format", "table"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["MODEL", "IMAGES", "COPIES"]
    assert table[1].split() == ["checker", "3", "jpeg95", "jpeg90", "jpeg85", "jpeg75", "gray", "webp"]


def test_glob_patterns_are_expanded_and_one_that_matches_nothing_is_an_error_row(tmp_path, capsys,
                                                                                 extractor_file, gallery):
    top = [_save(tmp_path / "q" / f"{i}.png", "stripes", 90 + i) for i in range(2)]
    deep = _save(tmp_path / "q" / "sub" / "2.png", "checker", 92)
    jpg = _save(tmp_path / "q" / "3.jpg", "checker", 93)
    capsys.readouterr()
    code, rows = _identify(capsys, extractor_file, gallery, tmp_path / "q" / "*.png")
    assert code == 0 and [r["path"] for r in rows] == top
    assert {r["source"] for r in rows} == {str(tmp_path / "q" / "*.png")}
    code, rows = _identify(capsys, extractor_file, gallery, tmp_path / "q" / "**" / "*.png")
    assert code == 0 and sorted(r["path"] for r in rows) == sorted([*top, deep])
    code, rows = _identify(capsys, extractor_file, gallery, tmp_path / "q" / "s*")     # a folder matched
    assert code == 0 and [r["path"] for r in rows] == [deep]
    code, rows = _identify(capsys, extractor_file, gallery, tmp_path / "q" / "*.jpg", tmp_path / "nothing*" / "*.png")
    assert code == 1 and [r["path"] for r in rows] == [jpg, str(tmp_path / "nothing*" / "*.png")]
    assert rows[1]["error"].startswith("no file or folder matches this pattern")
    # a file whose name has pattern characters is that file, not a pattern
    odd = _save(tmp_path / "odd[1].png", "stripes", 94)
    code, rows = _identify(capsys, extractor_file, gallery, odd)
    assert code == 0 and [r["path"] for r in rows] == [odd]


# ---------------------------------------------------------------------------------------------
# Outputs: formats, top-k, summaries, progress

def test_csv_json_and_table_say_the_same(tmp_path, capsys, extractor_file, gallery):
    queries = [_save(tmp_path / "q" / f"{m}{i}.png", m, 100 + i) for m in ("stripes", "checker") for i in range(2)]
    (tmp_path / "q" / "empty.png").write_bytes(b"")
    capsys.readouterr()
    out = {}
    for fmt in ("csv", "json", "table"):
        code = main(["identify", str(tmp_path / "q"), "--extractor", extractor_file, "--gallery", gallery,
                     "--format", fmt, "--top-k", "2"])
        assert code == 1
        out[fmt] = capsys.readouterr()
    rows = _rows(out["csv"].out)
    doc = json.loads(out["json"].out)
    expected = sorted([*queries, str(tmp_path / "q" / "empty.png")])
    assert [r["path"] for r in rows] == [r["path"] for r in doc["images"]] == expected
    for row, record in zip(rows, doc["images"]):
        assert row["model"] == (record["model"] or "") and row["error"] == (record["error"] or "")
        if not record["error"]:
            assert float(row["score"]) == pytest.approx(record["score"], abs=1e-6)
            assert [row["nearest"], row["nearest_2"]] == [c["model"] for c in record["top"]]
            assert float(row["score_2"]) == pytest.approx(record["top"][1]["score"], abs=1e-6)
    table = out["table"].out.splitlines()
    assert table[0].split() == ["IMAGE", "ANSWER", "SCORE", "NEAREST", "NEXT"]
    for row, line in zip(rows, table[1:]):
        if row["error"]:
            assert line == f"{row['path']}  error: {row['error']}"
        else:
            assert line.split()[:4] == [row["path"], row["model"], f"{float(row['score']):.4f}", row["nearest"]]
    # the summary: after the table, inside the json, on stderr with csv (the csv stays one table)
    summary = doc["summary"]
    assert summary == [{"folder": str(tmp_path / "q"), "images": 5, "failed": 1,
                        "unknown": sum(r["model"] == "unknown" for r in rows),
                        "models": summary[0]["models"]}]
    assert sum(summary[0]["models"].values()) + summary[0]["unknown"] == 4
    line = f"{tmp_path / 'q'}: 5 images; "
    assert line in out["csv"].err and line in out["table"].out and "failed 1" in out["csv"].err


def test_counts_take_their_nouns_number(tmp_path, capsys, extractor_file, gallery):
    assert [counted(1, "image"), counted(0, "model"), counted(1200, "image")] == ["1 image", "0 models", "1,200 images"]
    one = _save(tmp_path / "one" / "0.png", "stripes", 120)
    capsys.readouterr()
    assert main(["identify", one, "--extractor", extractor_file, "--gallery", gallery, "--format", "csv"]) == 0
    assert f"{tmp_path / 'one'}: 1 image; " in capsys.readouterr().err
    assert main(["gallery", "remove", "checker", "--gallery", gallery]) == 0
    assert capsys.readouterr().out.splitlines() == [f"removed checker (3 images) from {gallery}",
                                                    f"{gallery}: 1 model left"]


def test_top_k_lists_the_best_models_best_first(tmp_path, extractor_file):
    att = Attributor(extractor_file)
    files = {m: [_save(tmp_path / m / f"{i}.png", m, i) for i in range(2)] for m in ("stripes", "checker")}
    files["noise"] = [_save(tmp_path / "noise" / "0.png", "noise", 0, size=(30, 26))]
    gallery = _gallery(att, files)
    queries = [_save(tmp_path / "q" / f"{i}.png", m, 110 + i) for i, m in enumerate(("stripes", "checker", "noise"))]
    names, prints = gallery.fingerprints()
    fingerprints = torch.stack([h for _, h in att.embed(queries, gallery.windows)])
    for k in (1, 2, 3, 5):
        records = att.identify(queries, gallery, -1.0, top_k=k)
        for record, h in zip(records, fingerprints):
            expected = sorted(zip((prints @ h).tolist(), names), reverse=True)[:k]
            assert [(c.model, c.score) for c in record.top] == [(n, pytest.approx(s, abs=1e-6)) for s, n in expected]
            assert record.nearest == record.top[0].model and record.score == record.top[0].score
    with pytest.raises(ValueError, match="top_k"):
        att.identify(queries, gallery, top_k=0)


def test_default_format_and_progress_follow_the_terminal(tmp_path, capsys, monkeypatch, extractor_file, gallery):
    query = _save(tmp_path / "q.png", "stripes", 120)
    capsys.readouterr()
    argv = ["identify", query, "--extractor", extractor_file, "--gallery", gallery]
    assert main(argv) == 0
    piped = capsys.readouterr()
    assert piped.out.startswith("path,model,score") and "img" not in piped.err      # csv, no progress bar
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(argv) == 0
    terminal = capsys.readouterr()
    assert terminal.out.startswith("IMAGE") and "identify:" in terminal.err and "/1 [" in terminal.err


def test_records_are_plain_dataclasses_and_the_api_is_importable_from_the_package(tmp_path, extractor_file,
                                                                                    gallery):
    import modelfp
    assert modelfp.Attributor is Attributor
    query = _save(tmp_path / "q.png", "stripes", 130)
    record, = modelfp.Attributor(extractor_file).identify([query], gallery, top_k=2)
    assert dataclasses.is_dataclass(record) and isinstance(record.top[0], modelfp.Candidate)
    assert json.loads(json.dumps(dataclasses.asdict(record)))["top"][1]["model"] in ("stripes", "checker")


# ---------------------------------------------------------------------------------------------
# The exported form and the report

@pytest.fixture(scope="module")
def cnn_file(tmp_path_factory):
    """A small CNN extractor with batch-norm statistics, standardisation and a centre that are not
    their defaults, so an export that dropped or reordered any buffer would change the fingerprints."""
    model = ex.build(denoise.init_model(depth=3, features=4, seed=1),
                     ex.ExtractorConfig(backbone="small_cnn", transform="log1p", normalize=True, pooling="flatten",
                                        image_size=SIZE), ["a", "b", "c"], seed=1)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if buffer.is_floating_point():
                buffer.copy_(torch.rand(buffer.shape, generator=gen) + 0.5)
    model.threshold, model.openset_threshold = 0.3, 0.2
    path = tmp_path_factory.mktemp("cnn") / "model.pt"
    ex.save(model, path, variant="cnn", options={"note": "test"})
    return str(path)


def test_the_exported_extractor_gives_the_same_fingerprints_as_the_original(tmp_path, capsys, cnn_file):
    out = tmp_path / "shared"
    assert main(["export", cnn_file, str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((out / "config.json").read_text())          # plain JSON, no pickle anywhere
    assert config["threshold"] == 0.3 and config["meta"]["options"] == {"note": "test"}
    from safetensors.torch import load_file
    assert "centre" in load_file(out / "model.safetensors")
    images = [_save(tmp_path / "i" / f"{i}.png", ("stripes", "checker")[i % 2], i, size=(24 + i, 20)) for i in range(4)]
    original, exported = Attributor(cnn_file), Attributor(out)
    a = torch.stack([h for _, h in original.embed(images)])
    b = torch.stack([h for _, h in exported.embed(images)])
    assert torch.equal(a, b)                                          # bit-identical, same machine and threads
    assert exported.model.openset_threshold == 0.2 and exported.digest == original.digest
    # a gallery made with one form answers with the other; the config file names the folder too
    gallery = str(tmp_path / "g.gallery")
    assert main(["gallery", "add", "m", *images[:2], "--extractor", cnn_file, "--gallery", gallery]) == 0
    capsys.readouterr()
    for form in (str(out), str(out / "config.json")):
        code, rows = _identify(capsys, form, gallery, *images[2:])
        assert code == 0 and [r["nearest"] for r in rows] == ["m", "m"]
        assert [float(r["score"]) for r in rows] == pytest.approx(
            [float(r.score) for r in original.identify(images[2:], gallery)], abs=1e-6)


def test_a_damaged_export_is_one_line_and_exit_2(tmp_path, caplog, cnn_file):
    out = tmp_path / "shared"
    assert main(["export", cnn_file, str(out)]) == 0
    png = _save(tmp_path / "x.png")
    weights = (out / "model.safetensors").read_bytes()
    (out / "model.safetensors").write_bytes(weights[:-8] + bytes(8))
    broken = tmp_path / "config-only"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    for folder, message in ((out, "sha256 differs"), (broken, "no model.safetensors"),
                            (tmp_path / "empty-dir", "no config.json")):
        Path(folder).mkdir(exist_ok=True)
        caplog.clear()
        assert main(["verify", png, png, "--extractor", str(folder)]) == 2
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == 1 and "\n" not in errors[0] and message in errors[0], errors


def test_the_report_is_one_self_contained_page_with_a_thumbnail_per_answered_image(tmp_path, capsys,
                                                                                   extractor_file, gallery):
    for m in ("stripes", "checker"):                     # a folder of folders, the same names in each
        for i in range(3):
            _save(tmp_path / "q" / m / f"{i}.png", m, 140 + i, size=(24, 40))
    (tmp_path / "q" / "empty.png").write_bytes(b"")
    report = tmp_path / "out" / "report.html"
    capsys.readouterr()
    assert main(["identify", str(tmp_path / "q"), "--extractor", extractor_file, "--gallery", gallery,
                 "--report", str(report)]) == 1
    out = capsys.readouterr()
    rows = [r for r in _rows(out.out) if not r["error"]]
    page = report.read_text()
    # captions: the path relative to the folder given; the summary: one row per sub-folder
    captions = re.findall(r"<figcaption>([^<]+)<br>", page)
    assert sorted(captions) == sorted(f"{m}/{i}.png" for m in ("stripes", "checker") for i in range(3))
    for folder, n in ((tmp_path / "q" / "checker", 3), (tmp_path / "q" / "stripes", 3), (tmp_path / "q", 1)):
        assert f"<tr><td>{folder}</td><td>{n}</td>" in page
        assert f"{folder}: {counted(n, 'image')}; " in out.err          # the command line's summary too
    assert "image-rendering:pixelated" in page and "width:128px" in page   # small images shown enlarged
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == len(rows) == 6 and page.count("<img") == 6
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(src|href)="(?!data:)', page) and "<script" not in page   # nothing fetched
    thumb = Image.open(io.BytesIO(base64.b64decode(sources[0].split(",", 1)[1])))
    assert thumb.format == "PNG" and thumb.size == (40, 24)           # small images are not enlarged
    # one grid per gallery model and unknown, each holding the images answered so, best score first
    for model in ("stripes", "checker", "unknown"):
        n = sum(r["model"] == model for r in rows)
        assert f"{model}: {n} images</h2>" in page
    assert page.count("<circle") == 6 and "<svg" in page and "Could not be used: 1" in page


def test_a_gallery_tied_to_the_extractor_file_digest_still_loads(tmp_path, extractor_file, gallery):
    """Galleries written before weights digests name the extractor file's sha256; they keep working
    (and carry the weights digest once saved again), and another extractor is still refused."""
    import hashlib
    from modelfp import attributor
    att = Attributor(extractor_file)
    old = attributor.read_gallery(gallery)
    old.extractor = hashlib.sha256(Path(extractor_file).read_bytes()).hexdigest()[:16]
    attributor.save_gallery(old, gallery)
    assert att.load_gallery(gallery).counts() == {"stripes": 3, "checker": 3}
    att.gallery_add(gallery, "checker", [_save(tmp_path / "c.png", "checker", 150)])
    assert attributor.read_gallery(gallery).extractor == att.digest
    old.extractor = "0" * 16
    attributor.save_gallery(old, gallery)
    with pytest.raises(ValueError, match="another extractor"):
        att.load_gallery(gallery)


# ---------------------------------------------------------------------------------------------
# Issue 25: idempotent galleries, notes on weakened images, --top-k capped, warts

def test_adding_images_a_model_already_holds_is_skipped_and_leaves_the_gallery_as_it_was(tmp_path, capsys,
                                                                                         extractor_file):
    root = tmp_path / "known"
    for model in ("stripes", "checker"):
        for i in range(3):
            _save(root / model / f"{i}.png", model, i)
    path = tmp_path / "g.gallery"
    argv = ["gallery", "add", "--from-folders", str(root), "--extractor", extractor_file, "--gallery", str(path)]
    assert main(argv) == 0
    first = path.read_bytes()
    capsys.readouterr()
    assert main([*argv, "--format", "table"]) == 0                    # the same command again
    assert capsys.readouterr().out.splitlines() == [
        f"checker: 3 images in {path} (2 models); added 0, skipped 3 already present",
        f"stripes: 3 images in {path} (2 models); added 0, skipped 3 already present",
        f"{path} left as it was (nothing new added)"]
    assert path.read_bytes() == first
    # the same pixels in another file (a copy saved again, other bytes) are the same image; new ones are added
    copy = tmp_path / "copy.png"
    Image.open(root / "stripes" / "0.png").save(copy, optimize=True, compress_level=1)
    assert copy.read_bytes() != (root / "stripes" / "0.png").read_bytes()
    new = _save(tmp_path / "new.png", "stripes", 7)
    assert main(["gallery", "add", "stripes", str(copy), new, new, "--extractor", extractor_file,
                 "--gallery", str(path)]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [(r["path"], r["status"]) for r in rows] == [(new, "added"), (str(copy), "already present"),
                                                         (new, "already present")]
    assert _gallery_models(capsys, str(path)) == {"checker": 3, "stripes": 4}


def test_gallery_add_says_which_images_give_their_model_a_weakened_fingerprint(tmp_path, capsys, extractor_file):
    plain = _save(tmp_path / "m" / "plain.png", "stripes", 8)
    jpeg, gif = tmp_path / "m" / "shot.jpg", tmp_path / "m" / "anim.gif"
    Image.fromarray(_pixels("stripes", 9)).save(jpeg, quality=90)
    Image.fromarray(_pixels("stripes", 10)).save(gif)
    path = str(tmp_path / "my.gallery")
    argv = ["gallery", "add", "stripes", str(tmp_path / "m"), "--extractor", extractor_file, "--gallery", path]
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr()
    assert [(r["path"], r["status"], r["note"]) for r in _rows(out.out)] == [
        (str(gif), "added", "fingerprint weakened: palette of at most 256 colours"), (plain, "added", ""),
        (str(jpeg), "added", "fingerprint weakened: JPEG")]
    assert out.err.strip() == (f"stripes: 3 images in {path} (1 model); added 3 (2 with a weakened fingerprint: "
                               f"see their notes)")
    update = Attributor(extractor_file).gallery_add(path, "other", [str(jpeg), plain])
    assert update.notes == {str(jpeg): "fingerprint weakened: JPEG"}


def test_a_killed_gallery_add_resumes_from_its_last_save(tmp_path, monkeypatch, extractor_file):
    import modelfp.attributor as attributor
    monkeypatch.setattr(attributor, "CHUNK", 2)
    folder = tmp_path / "m"
    for i in range(7):
        _save(folder / f"{i}.png", "stripes", 300 + i)
    att, models = Attributor(extractor_file), {"stripes": [str(folder)]}

    def killed_after(n_chunks):
        seen = []

        def progress(n):                # called after each chunk, once the chunk is in the gallery
            seen.append(n)
            if len(seen) == n_chunks:
                raise RuntimeError("killed")        # as a kill: nothing runs after it
        return progress

    path = tmp_path / "my.gallery"
    with pytest.raises(RuntimeError):   # no save due yet: a kill loses everything
        att.gallery_add_models(path, models, killed_after(3), save_every=float("inf"))
    assert not path.exists()
    with pytest.raises(RuntimeError):   # a save after every chunk that added images
        att.gallery_add_models(path, models, killed_after(3), save_every=0)
    assert att.load_gallery(path).counts() == {"stripes": 6}
    again = att.gallery_add_models(path, models)                        # the same call again: resumes
    assert (len(again[0].added), len(again[0].skipped), again[0].count) == (1, 6, 7)
    whole = tmp_path / "whole.gallery"
    att.gallery_add_models(whole, models)
    resumed, once = att.load_gallery(path).models["stripes"], att.load_gallery(whole).models["stripes"]
    assert resumed["digests"] == once["digests"]
    assert torch.allclose(resumed["prints"], once["prints"], atol=1e-5)     # other batches: float rounding
    assert torch.allclose(resumed["matched"]["jpeg90"]["sum"], once["matched"]["jpeg90"]["sum"], atol=1e-4)


def test_an_interrupted_gallery_add_keeps_what_it_added_and_says_how_to_go_on(tmp_path, capsys, monkeypatch,
                                                                              extractor_file):
    root = tmp_path / "known"
    for m in ("checker", "stripes"):
        for i in range(2):
            _save(root / m / f"{i}.png", m, 310 + i)
    real_add, calls = Attributor.add, []

    def add(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt             # Ctrl-C while the second model is added
        return real_add(self, *args, **kwargs)
    monkeypatch.setattr(Attributor, "add", add)
    path = str(tmp_path / "my.gallery")
    argv = ["gallery", "add", "--from-folders", str(root), "--extractor", extractor_file, "--gallery", path]
    capsys.readouterr()
    assert main(argv) == 130
    assert capsys.readouterr().err.strip() == (
        f"interrupted; {path} keeps the images added until now: run the same command again to add the rest "
        f"(the images it already holds are skipped)")
    assert Attributor(extractor_file).load_gallery(path).counts() == {"checker": 2}
    monkeypatch.setattr(Attributor, "add", real_add)
    assert main(argv) == 0
    assert [(r["model"], r["status"]) for r in _rows(capsys.readouterr().out)] == [
        ("stripes", "added"), ("stripes", "added"), ("checker", "already present"), ("checker", "already present")]


def test_identify_writes_csv_rows_as_it_answers_and_an_interrupt_keeps_them(tmp_path, capsys, monkeypatch,
                                                                            extractor_file, gallery):
    paths = [_save(tmp_path / "q" / f"{i}.png", "stripes", 320 + i) for i in range(4)]
    real, written = Attributor.identify_each, []

    def identify_each(self, *args, **kwargs):
        for n, answer in enumerate(real(self, *args, **kwargs)):
            if n == 2:
                written.append(capsys.readouterr().out)      # what stdout held before the third answer
                raise KeyboardInterrupt                      # Ctrl-C
            yield answer
    monkeypatch.setattr(Attributor, "identify_each", identify_each)
    capsys.readouterr()
    assert main(["identify", str(tmp_path / "q"), "--extractor", extractor_file, "--gallery", gallery]) == 130
    err = capsys.readouterr().err
    assert [r["path"] for r in _rows(written[0])] == paths[:2]         # the two answers, already written
    assert list(_rows(written[0])[0]) == ["path", "model", "score", "nearest", "threshold", "reason", "source",
                                          "note", "error"]
    assert "interrupted: 2 images answered (above); the rest were not read" in err and "q: 2 images" in err
    written.clear()
    assert main(["identify", str(tmp_path / "q"), "--extractor", extractor_file, "--gallery", gallery,
                 "--format", "table"]) == 130
    table = written[0] + capsys.readouterr().out
    assert [line.split()[0] for line in table.splitlines()[1:3]] == paths[:2] and paths[2] not in table


def test_the_api_adds_an_image_once_per_model(tmp_path, extractor_file):
    att = Attributor(extractor_file)
    known = {m: [str(tmp_path / "known" / m)] for m in ("stripes", "checker")}
    for m in known:
        for i in range(2):
            _save(tmp_path / "known" / m / f"{i}.png", m, i)
    path = tmp_path / "my.gallery"
    first = att.gallery_add_models(path, known)
    before = path.read_bytes()
    again = att.gallery_add_models(path, known)                      # the README's example, run twice
    assert [(len(u.added), len(u.skipped), u.count) for u in first] == [(2, 0, 2), (2, 0, 2)]
    assert [(len(u.added), len(u.skipped), u.count) for u in again] == [(0, 2, 2), (0, 2, 2)]
    assert path.read_bytes() == before
    # per model: the same image may be a sample of another model
    other = att.gallery_add(path, "other", [str(tmp_path / "known" / "stripes" / "0.png")])
    assert (other.added, other.skipped, other.count) == ([str(tmp_path / "known" / "stripes" / "0.png")], [], 1)


def test_a_1x1_image_is_an_error_row_and_prints_no_library_warning(tmp_path, extractor_file, gallery):
    """In a fresh process: PyTorch warns once per process, so a warning seen by an earlier test
    would otherwise hide this one."""
    import subprocess
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.full((1, 1, 3), 90, np.uint8)).save(tiny)
    both = [["identify", str(tiny), "--gallery", gallery], ["verify", str(tiny), str(tiny)]]
    script = ("import sys; from modelfp.cli import main; "
              f"sys.exit(max(main([*argv, '--extractor', {extractor_file!r}]) for argv in {both!r}))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert "warn" not in done.stderr.lower(), done.stderr
    assert done.stdout.count("1x1 pixels, smaller than the extractor's") == 3, done.stdout   # identify, a, b


def test_a_damaged_extractor_file_says_what_a_person_does(tmp_path, caplog, capsys, extractor_file):
    png = _save(tmp_path / "x.png")
    good = Path(extractor_file).read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good[: len(good) // 2])                     # a torch file cut short
    incomplete = tmp_path / "incomplete.pt"
    payload = torch.load(extractor_file, weights_only=True)
    del payload["state_dict"]
    torch.save(payload, incomplete)                                   # the right format, a key missing
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    for bad, fix in ((truncated, "copy or download it again"), (incomplete, "copy or download it again"),
                     (empty, "the .pt file of a trained extractor")):
        for argv in (["verify", png, png, "--extractor", str(bad)], ["export", str(bad), str(tmp_path / "out")]):
            caplog.clear()
            assert main(argv) == 2
            errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
            assert len(errors) == 1 and errors[0].startswith(str(bad)) and fix in errors[0], errors
            assert "rule" not in errors[0] and "\n" not in errors[0]
    assert not (tmp_path / "out").exists()


def test_top_k_above_the_number_of_models_is_capped_and_said_once(tmp_path, capsys, extractor_file, gallery):
    queries = [_save(tmp_path / "q" / f"{i}.png", "stripes", 160 + i) for i in range(2)]
    capsys.readouterr()
    assert main(["identify", *queries, "--extractor", extractor_file, "--gallery", gallery, "--top-k", "10"]) == 0
    out = capsys.readouterr()
    header = out.out.splitlines()[0].split(",")
    assert header == ["path", "model", "score", "nearest", "threshold", "nearest_2", "score_2", "reason", "source",
                      "note", "error"]                     # csv, written a row at a time, always has `reason`
    assert all(r["nearest_2"] and r["score_2"] for r in _rows(out.out))   # no empty top-k column
    assert out.err.count("--top-k 10") == 1 and f"{gallery} holds 2 models; listing 2" in out.err
    assert main(["identify", *queries, "--extractor", extractor_file, "--gallery", gallery, "--top-k", "10",
                 "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["top_k"] == 2 and all(len(r["top"]) == 2 for r in doc["images"])


def test_jpeg_grayscale_and_alpha_images_are_answered_with_a_note(tmp_path, capsys, extractor_file, gallery):
    rgb = _pixels("stripes", 170)
    plain = _save(tmp_path / "plain.png", "stripes", 170)
    jpeg = tmp_path / "photo.jpg"
    Image.fromarray(rgb).save(jpeg, quality=95)
    gray = tmp_path / "gray.png"
    Image.fromarray(rgb[..., 0]).save(gray)
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])).save(rgba)
    opaque = tmp_path / "opaque.png"      # an alpha channel at 255 everywhere: the same pixels, no note
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).save(opaque)
    gray_jpeg = tmp_path / "gray.jpg"
    Image.fromarray(rgb[..., 0]).save(gray_jpeg)
    cutout = tmp_path / "cutout.png"      # a transparent corner: those pixels have no colour
    corner = np.full(rgb.shape[:2], 255, np.uint8)
    corner[:8, :8] = 0
    Image.fromarray(np.dstack([rgb, corner])).save(cutout)
    capsys.readouterr()
    code, rows = _identify(capsys, extractor_file, gallery, plain, jpeg, gray, rgba, gray_jpeg, opaque, cutout)
    assert code == 0 and all(r["model"] for r in rows)
    assert [r["note"] for r in rows] == [
        "", "fingerprint weakened: JPEG; compared with the gallery's JPEG 95 copies",
        "fingerprint weakened: grayscale; compared with the gallery's grayscale copies",
        "",             # translucent alpha: the stored colours are the plain image's, read as they are
        "fingerprint weakened: JPEG, grayscale; compared with the gallery's grayscale copies", "",
        "fingerprint weakened: transparent pixels"]
    # the same pixels in one batch: the same score (to float rounding of the batch's other rows)
    assert float(rows[3]["score"]) == pytest.approx(float(rows[0]["score"]), abs=1e-5)
    assert float(rows[5]["score"]) == pytest.approx(float(rows[0]["score"]), abs=1e-5)
    assert main(["identify", plain, str(jpeg), "--extractor", extractor_file, "--gallery", gallery,
                 "--format", "table"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[-1] == "NOTE" and table[2].endswith("fingerprint weakened: JPEG; compared with the "
                                                                  "gallery's JPEG 95 copies")
    assert main(["verify", str(jpeg), plain, "--extractor", extractor_file]) == 0
    row = _rows(capsys.readouterr().out)[0]
    assert row["note"] == "a: fingerprint weakened: JPEG; b compared as its JPEG 95 re-save"
    # the plain image re-saved as JPEG 95 is the JPEG's very pixels: like compared with like
    assert float(row["score"]) == pytest.approx(1.0, abs=1e-5)
    att = Attributor(extractor_file)
    same = att.verify(plain, str(rgba))
    assert same.note is None and same.score == pytest.approx(1.0, abs=1e-5)
    assert att.verify(plain, str(cutout)).note == "b: fingerprint weakened: transparent pixels"
    assert [v.note for v in att.verify_pairs([plain, str(gray)], [str(jpeg)])] == [
        "b: fingerprint weakened: JPEG; a compared as its JPEG 95 re-save",
        "a: fingerprint weakened: grayscale; b: fingerprint weakened: JPEG"]
    assert att.verify_pairs([plain], [str(jpeg)])[0].score == pytest.approx(1.0, abs=1e-5)


def test_a_jpeg_whose_colour_is_not_subsampled_as_the_copies_says_so(tmp_path, capsys, extractor_file, gallery):
    rgb = _pixels("stripes", 172)
    files = []
    for sampling in (0, 1, 2):            # 4:4:4, 4:2:2, and 4:2:0 (the copies', Pillow's default)
        files.append(tmp_path / f"s{sampling}.jpg")
        Image.fromarray(rgb).save(files[-1], quality=90, subsampling=sampling)
    capsys.readouterr()
    code, rows = _identify(capsys, extractor_file, gallery, *files)
    copies = "compared with the gallery's JPEG 90 copies"
    assert code == 0 and [r["note"] for r in rows] == [
        f"fingerprint weakened: JPEG with 4:4:4 colour, re-encoded with 4:2:0 colour, as the tool makes its JPEG "
        f"copies; {copies}",
        f"fingerprint weakened: JPEG with 4:2:2 colour, re-encoded with 4:2:0 colour, as the tool makes its JPEG "
        f"copies; {copies}",
        f"fingerprint weakened: JPEG; {copies}"]


def test_a_4_4_4_or_4_2_2_jpeg_query_is_read_as_its_4_2_0_re_save_a_gallery_image_as_it_is(tmp_path, extractor_file,
                                                                                              gallery):
    rgb = _pixels("stripes", 173)
    full, subsampled, plain = tmp_path / "full.jpg", tmp_path / "canon.jpg", tmp_path / "plain.png"
    Image.fromarray(rgb).save(full, quality=90, subsampling=0)
    as_is = load_image(full, None)
    Image.fromarray(as_is.permute(1, 2, 0).numpy()).save(subsampled, quality=90)   # by hand, as the copies
    Image.fromarray(rgb).save(plain)
    canon = load_image(subsampled, None)
    assert not torch.equal(canon, as_is)      # the re-encoding changes the pixels
    # exact: uint8 pixels from one libjpeg in one process, both sides decoded and encoded on the same
    # machine (no float kernel, no batch shape involved), so the pixels are equal
    query = next(read_images([str(full)], 8, as_copies=True))
    assert torch.equal(query.image, canon) and query.condition == "jpeg90"
    assert torch.equal(next(read_images([str(full)], 8)).image, as_is)            # gallery images: as they are
    half = tmp_path / "s1.jpg"                # 4:2:2 is re-encoded too, 4:2:0 (the copies' own) is not
    Image.fromarray(rgb).save(half, quality=90, subsampling=1)
    read = next(read_images([str(half)], 8, as_copies=True)).image
    assert torch.equal(read, perturb.resaved(load_image(half, None), "jpeg90"))
    usual = tmp_path / "s2.jpg"
    Image.fromarray(rgb).save(usual, quality=90, subsampling=2)
    assert torch.equal(next(read_images([str(usual)], 8, as_copies=True)).image, load_image(usual, None))
    att = Attributor(extractor_file)
    # identify and verify answer the 4:4:4 file as they answer its 4:2:0 re-save (the luminance side too)
    got, want = att.identify([str(full)], gallery), att.identify([str(subsampled)], gallery)
    assert [c.model for c in got[0].top] == [c.model for c in want[0].top]
    assert [c.score for c in got[0].top] == pytest.approx([c.score for c in want[0].top], abs=1e-5)
    assert got[0].compared == want[0].compared == "jpeg90"
    for other in (plain, subsampled):
        assert att.verify(full, other).score == pytest.approx(att.verify(subsampled, other).score, abs=1e-5)
    pairs = att.verify_pairs([str(full)], [str(plain), str(subsampled)])
    assert [v.score for v in pairs] == pytest.approx([att.verify(subsampled, o).score for o in (plain, subsampled)],
                                                     abs=1e-5)


def test_a_lossy_webp_is_answered_with_a_note_and_met_by_the_gallerys_webp_copies(tmp_path, capsys, extractor_file,
                                                                                   gallery):
    rgb = _pixels("stripes", 171)
    plain = _save(tmp_path / "plain.png", "stripes", 171)
    lossy, lossless = tmp_path / "web.webp", tmp_path / "lossless.webp"
    Image.fromarray(rgb).save(lossy)                     # Pillow's default: lossy, quality 80
    Image.fromarray(rgb).save(lossless, lossless=True)
    capsys.readouterr()
    code, rows = _identify(capsys, extractor_file, gallery, plain, lossy, lossless)
    assert code == 0 and [r["note"] for r in rows] == [
        "", "fingerprint weakened: lossy WebP; compared with the gallery's lossy WebP copies", ""]
    # a lossless WebP holds the plain image's very pixels
    assert float(rows[2]["score"]) == pytest.approx(float(rows[0]["score"]), abs=1e-5)
    assert main(["verify", str(lossy), plain, "--extractor", extractor_file]) == 0
    row = _rows(capsys.readouterr().out)[0]
    assert row["note"] == "a: fingerprint weakened: lossy WebP; b compared as its lossy WebP re-save"
    # the plain image re-saved as the gallery's WebP copies are is the WebP file's very pixels
    assert float(row["score"]) == pytest.approx(1.0, abs=1e-5)


def test_a_gif_or_palette_png_is_answered_with_a_note_and_its_pixels_are_the_palettes(tmp_path, capsys,
                                                                                     extractor_file, gallery):
    rgb = _pixels("stripes", 175)
    plain = _save(tmp_path / "q" / "plain.png", "stripes", 175)
    gif = perturb.resave(rgb, "gif", tmp_path / "q" / "shot")              # Pillow's own palette conversion
    palette_png = tmp_path / "q" / "palette.png"
    Image.fromarray(rgb).convert("P").save(palette_png)
    capsys.readouterr()
    code, rows = _identify(capsys, extractor_file, gallery, tmp_path / "q")    # a folder: the GIF is found
    assert code == 0 and {r["path"]: r["note"] for r in rows} == {
        str(gif): "fingerprint weakened: palette of at most 256 colours",
        str(palette_png): "fingerprint weakened: palette of at most 256 colours", plain: ""}
    # the GIF is read as the colours its palette holds: at most 256 of them, not the plain image's
    read = load_image(gif, None).permute(1, 2, 0).reshape(-1, 3).numpy()
    assert gif.suffix == ".gif" and len(np.unique(read, axis=0)) <= 256
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 256 and not np.array_equal(read, rgb.reshape(-1, 3))


def test_an_image_of_a_format_the_tool_does_not_read_is_an_error_row_not_skipped(tmp_path, capsys, extractor_file,
                                                                                 gallery):
    q = tmp_path / "q"
    good = _save(q / "a.png", "stripes", 176)
    for name in ("phone.HEIC", "web.avif", "logo.svg"):
        (q / name).write_bytes(b"not read")
    (q / "notes.txt").write_text("not an image: not listed")
    only = tmp_path / "only"
    only.mkdir()
    (only / "x.heif").write_bytes(b"not read")
    capsys.readouterr()
    code, rows = _identify(capsys, extractor_file, gallery, q, only, q / "*.avif", q / "phone.HEIC")
    assert code == 1
    assert [r["path"] for r in rows] == [good, str(q / "logo.svg"), str(q / "phone.HEIC"), str(q / "web.avif"),
                                         str(only / "x.heif"), str(q / "web.avif"), str(q / "phone.HEIC")]
    error = [r["error"] for r in rows]
    assert not error[0] and rows[0]["model"]
    assert error[1] == ("an SVG drawing, a format the tool does not read; leave it out: a drawing's pixels are "
                        "made by the program that renders it")
    assert error[2] == error[6] == ("a HEIC image, a format the tool does not read; convert it to PNG to have it "
                                    "read (its lossy compression has weakened the fingerprint, as JPEG's does)")
    assert error[3].startswith("an AVIF image, a format") and error[3] == error[5]
    assert error[4].startswith("a HEIF image, a format")        # not "a folder with no images"


def test_images_are_named_relative_to_the_input_and_summed_up_per_sub_folder(tmp_path, extractor_file, gallery):
    from modelfp.attributor import summarize
    q = tmp_path / "q"
    deep = _save(q / "vae" / "x" / "0.png", "stripes", 180)
    loose = _save(q / "0.png", "checker", 181)
    flow = _save(q / "flow" / "0.png", "checker", 182)
    alone = _save(tmp_path / "alone.png", "stripes", 183)
    records = Attributor(extractor_file).identify([q, alone, tmp_path / "q" / "**" / "0.png"], gallery)
    assert [(r.path, r.name) for r in records[:4]] == [(loose, "0.png"), (flow, "flow/0.png"),
                                                       (deep, "vae/x/0.png"), (alone, alone)]
    assert {r.name for r in records[4:]} == {"0.png", "flow/0.png", "vae/x/0.png"}   # relative to q/
    pattern = str(tmp_path / "q" / "**" / "0.png")
    assert [(s.folder, s.images) for s in summarize(records)] == [
        (str(q), 1), (str(q / "flow"), 1), (str(q / "vae"), 1), (str(tmp_path), 1), (pattern, 3)]


def test_a_jpeg_query_meets_the_gallerys_copies_of_its_own_quality(tmp_path, capsys, extractor_file):
    """A gallery keeps each image's re-saved copies (perturb.MATCHED); a JPEG query is compared with
    the copies of the nearest quality: a gallery image a person re-saved as JPEG 90 is its JPEG 90
    copy pixel for pixel, so it scores 1 against a model holding only that image, while the clean
    image's fingerprint scores it lower; one saved at quality 80 meets the JPEG 85 copies. A gallery
    made before copies were kept compares with the clean images and says so."""
    att = Attributor(extractor_file)
    files = {m: _save(tmp_path / "known" / m / "0.png", m, 7) for m in ("stripes", "checker")}
    path = tmp_path / "g.gallery"
    att.gallery_add_models(path, {m: [f] for m, f in files.items()})
    clean = att.load_gallery(path).fingerprints()[1][0]          # stripes, its clean image
    for quality, kept in ((90, "90"), (80, "85")):
        query = tmp_path / f"q{quality}.jpg"
        Image.fromarray(_pixels("stripes", 7)).save(query, quality=quality)
        record = att.identify([str(query)], path, threshold=-1.0)[0]
        assert record.nearest == "stripes" and record.note.endswith(f"compared with the gallery's JPEG {kept} copies")
        h = next(h for _, h in att.embed([str(query)]))
        assert record.score > float(clean @ h)
    assert att.identify([str(tmp_path / "q90.jpg")], path, threshold=-1.0)[0].score == pytest.approx(1.0, abs=1e-5)
    gallery = att.load_gallery(path)
    for entry in gallery.models.values():
        assert set(entry["matched"]) == set(perturb.MATCHED) and len(entry["matched"]["gray"]["prints"]) == 1
        del entry["matched"]
    att.save_gallery(gallery, path)
    record = att.identify([str(tmp_path / "q90.jpg")], path, threshold=-1.0)[0]
    assert record.score < 1 - 1e-3 and "compared with clean gallery images" in record.note
    # `gallery list` says which models keep copies; one extended now keeps them for its new images
    # only, so it still has none, and its JPEG queries still meet the clean images
    att.gallery_add(path, "stripes", [_save(tmp_path / "more" / "1.png", "stripes", 8)])
    assert [att.load_gallery(path).copies(m) for m in ("stripes", "checker")] == [[], []]
    capsys.readouterr()
    assert main(["gallery", "list", "--gallery", str(path), "--format", "csv"]) == 0
    assert [(r["model"], r["images"], r["copies"]) for r in _rows(capsys.readouterr().out)] == [
        ("stripes", "2", "none"), ("checker", "1", "none")]
    fresh = tmp_path / "fresh.gallery"
    att.gallery_add_models(fresh, {"stripes": [files["stripes"]]})
    assert att.load_gallery(fresh).copies("stripes") == list(perturb.MATCHED)


def test_an_extractor_calibrated_with_views_sees_every_image_in_them_and_old_galleries_keep_theirs(
        tmp_path, capsys, caplog, extractor_file):
    """Test-time views (issue 25): a file calibrated with k views makes k-view galleries and
    verifies in k views (the score is the mean of the views' cosines); a gallery made with one view
    (or before views were stored) keeps it, and identify says once that it is not the calibrated one."""
    import logging
    import torch.nn.functional as F
    from modelfp import attributor
    viewed = str(tmp_path / "viewed.pt")
    ex.set_threshold(extractor_file, THRESHOLD, out=viewed, openset_threshold=THRESHOLD, views=8)
    att, plain = Attributor(viewed), Attributor(extractor_file)
    assert (att.views, plain.views) == (8, 1)
    files = {m: [_save(tmp_path / "known" / m / f"{i}.png", m, i) for i in range(3)] for m in ("stripes", "checker")}
    path = str(tmp_path / "viewed.gallery")
    for model, paths in files.items():
        assert main(["gallery", "add", model, *paths, "--extractor", viewed, "--gallery", path]) == 0
    made = attributor.read_gallery(path)
    assert made.views == 8 and made.models["stripes"]["prints"].shape == (3, 8 * att.model.dim)
    assert made.models["stripes"]["matched"]["gray"]["prints"].shape == (3, 8 * att.model.dim)
    capsys.readouterr()
    assert main(["gallery", "list", "--gallery", path, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["views"] == 8
    a, b = _save(tmp_path / "a.png", "stripes", 80), _save(tmp_path / "b.png", "checker", 81)
    images = [load_image(a, None), load_image(b, None)]
    per_view = [F.normalize(ex.embed(att.model, [turn(img) for img in images], WINDOWS), dim=1)
                for turn in ex.VIEWS.values()]
    assert att.verify(a, b).score == pytest.approx(float(sum(v[0] @ v[1] for v in per_view) / 8), abs=1e-5)
    assert plain.verify(a, b).score == pytest.approx(float(per_view[0][0] @ per_view[0][1]), abs=1e-5)
    # a one-view gallery written before views were stored: read as 1, answered in 1, said once
    old = attributor.read_gallery(path)
    one = plain.new_gallery()
    for model, paths in files.items():
        plain.add(one, model, paths)
    payload = one.to_payload()
    del payload["views"]
    from modelfp import checkpoints
    checkpoints.save(payload, tmp_path / "old.gallery")
    assert attributor.read_gallery(tmp_path / "old.gallery").views == 1
    caplog.set_level(logging.INFO)
    answers = att.identify([a, a], str(tmp_path / "old.gallery"), -1.0)
    assert [r.score for r in answers] == pytest.approx([plain.identify([a], one, -1.0)[0].score] * 2, abs=1e-5)
    said = [r.getMessage() for r in caplog.records if "test-time view" in r.getMessage()]
    assert len(said) == 1 and "made with 1 test-time view(s)" in said[0] and "calibrated with 8" in said[0]
    assert old.views == 8 and att.identify([a], path, -1.0)[0].nearest == "stripes"


def test_a_jpeg_is_compared_on_its_fingerprint_and_its_luminances_side_by_side(tmp_path, extractor_file):
    """A JPEG query and the gallery's JPEG copies: the pixels' and the luminance's fingerprints
    joined (perturb.WITH_LUMINANCE); grayscale copies and clean images alone; a gallery made before
    keeps its JPEG copies plain and is answered so; verify joins both sides of a JPEG pair."""
    import torch
    import torch.nn.functional as F
    from modelfp import attributor, checkpoints
    att = Attributor(extractor_file)
    files = {m: [_save(tmp_path / "known" / m / f"{i}.png", m, i) for i in range(3)] for m in ("stripes", "checker")}
    gallery = att.new_gallery()
    for model, paths in files.items():
        att.add(gallery, model, paths)
    dim = att.model.dim
    assert gallery.luminance
    for condition, width in (("jpeg95", 2 * dim), ("jpeg75", 2 * dim), ("gray", dim)):
        assert gallery.models["stripes"]["matched"][condition]["prints"].shape == (3, width)
    clean = _pixels("stripes", 90)
    Image.fromarray(clean).save(tmp_path / "q.jpg", quality=90)
    query = load_image(tmp_path / "q.jpg", None)
    fp = lambda images: F.normalize(ex.embed(att.model, images, WINDOWS), dim=1)
    joined = F.normalize(torch.cat([fp([query]), fp([perturb.luminance(query)])], 1), dim=1)[0]
    copies = [perturb.resaved(load_image(p, None), "jpeg90") for p in files["stripes"]]
    centre = F.normalize(F.normalize(torch.cat([fp(copies), fp([perturb.luminance(c) for c in copies])], 1),
                                     dim=1).sum(0), dim=0)
    answer, = att.identify([str(tmp_path / "q.jpg")], gallery, -1.0, top_k=2)
    score = next(c.score for c in answer.top if c.model == "stripes")
    assert score == pytest.approx(float(joined @ centre), abs=1e-5)
    assert torch.equal(perturb.luminance(query), torch.from_numpy(perturb.grayscale(query.permute(1, 2, 0).numpy())
                                                                  ).permute(2, 0, 1))
    # a gallery made before: its JPEG copies are the pixels' alone, and so is the query's fingerprint
    payload = gallery.to_payload()
    del payload["luminance"]
    for entry in payload["models"].values():
        for condition in perturb.WITH_LUMINANCE:
            entry["matched"][condition]["prints"] = entry["matched"][condition]["prints"][:, :dim]
            entry["matched"][condition]["sum"] = entry["matched"][condition]["prints"].sum(0)
    checkpoints.save(payload, tmp_path / "old.gallery")
    old = attributor.read_gallery(tmp_path / "old.gallery")
    assert not old.luminance
    plain_copies = F.normalize(fp(copies).sum(0), dim=0)
    answer, = att.identify([str(tmp_path / "q.jpg")], old, -1.0, top_k=2)
    assert next(c.score for c in answer.top if c.model == "stripes") == pytest.approx(float(fp([query])[0] @ plain_copies),
                                                                                      abs=1e-5)
    # verify: the clean image re-saved as JPEG 90, both sides joined with their luminance
    other = _save(tmp_path / "other.png", "stripes", 91)
    copy = perturb.resaved(load_image(other, None), "jpeg90")
    expected = F.normalize(torch.cat([fp([copy]), fp([perturb.luminance(copy)])], 1), dim=1)[0]
    result = att.verify(str(tmp_path / "q.jpg"), other, threshold=0.0)
    assert result.score == pytest.approx(float(joined @ expected), abs=1e-5)
    assert "b compared as its JPEG 90 re-save" in result.note


@pytest.fixture(scope="module")
def specialist_file(tmp_path_factory, cnn_file):
    """cnn_file carrying two specialists (other small CNNs) for the JPEG and grayscale re-saves."""
    folder = tmp_path_factory.mktemp("specialists")
    parts = {}
    for kind, seed in (("jpeg", 2), ("gray", 3)):
        parts[kind] = folder / f"{kind}.pt"
        ex.save(ex.build(denoise.init_model(depth=3, features=4, seed=seed),
                         ex.ExtractorConfig(backbone="small_cnn", transform="log1p", image_size=SIZE), ["a", "b"],
                         seed=seed), parts[kind])
    out = folder / "model.pt"
    ex.attach_specialists(cnn_file, parts, out)
    return str(out)


def _unit(network, images, views=1):
    return torch.nn.functional.normalize(ex.embed(network, images, WINDOWS, views=views), dim=1)


def test_specialists_embed_their_re_saves_in_galleries_identify_and_verify(tmp_path, capsys, monkeypatch, cnn_file,
                                                                          specialist_file):
    images = [_save(tmp_path / "m" / f"{i}.png", "stripes", i) for i in range(3)]
    plain, special = Attributor(cnn_file), Attributor(specialist_file)
    assert plain.digest != special.digest           # a gallery of one is refused by the other
    galleries = {}
    for name, att in (("plain", plain), ("special", special)):
        galleries[name] = str(tmp_path / f"{name}.gallery")
        att.gallery_add(galleries[name], "m", images)
    with pytest.raises(ValueError, match="made with another extractor"):
        special.load_gallery(galleries["plain"])
    a, b = (att.load_gallery(galleries[n]).models["m"] for n, att in (("plain", plain), ("special", special)))
    # the clean images meet the extractor's own network in both; grayscale, JPEG and WebP copies meet
    # the specialists (a JPEG or WebP joined with its luminance's, by the same specialist)
    torch.testing.assert_close(a["prints"], b["prints"])
    pixels = [load_image(p, None) for p in images]
    gray_net, jpeg_net = special.model.specialists["gray"], special.model.specialists["jpeg"]
    copies = [perturb.resaved(im, "gray") for im in pixels]
    views = special.views
    torch.testing.assert_close(b["matched"]["gray"]["prints"], _unit(gray_net, copies, views))
    for condition in ("jpeg90", "webp"):
        copies = [perturb.resaved(im, condition) for im in pixels]
        joined = torch.nn.functional.normalize(torch.cat(
            [_unit(jpeg_net, copies, views), _unit(jpeg_net, [perturb.luminance(c) for c in copies], views)], 1), dim=1)
        torch.testing.assert_close(b["matched"][condition]["prints"], joined)
    # a grayscale query: identify and verify compare it by the gray specialist
    query = tmp_path / "q" / "gray.png"
    query.parent.mkdir()
    Image.fromarray(_pixels("stripes", 7)).convert("L").save(query)
    h = _unit(gray_net, [load_image(query, None)], views)[0]
    [found] = special.identify([query], galleries["special"], top_k=1)
    assert found.compared == "gray"
    fingerprint = torch.nn.functional.normalize(b["matched"]["gray"]["sum"], dim=0)   # the model's gray copies'
    assert found.score == pytest.approx(float(fingerprint @ h), abs=1e-5)
    pair = special.verify(query, images[0])
    assert pair.score == pytest.approx(float(h @ b["matched"]["gray"]["prints"][0]), abs=1e-5)
    assert pair.score != pytest.approx(plain.verify(query, images[0]).score, abs=1e-4)
    # a JPEG query: against the other image's JPEG copy of its quality, both by the JPEG specialist,
    # each joined with its luminance's
    jpeg = tmp_path / "q" / "q90.jpg"
    Image.fromarray(_pixels("stripes", 8)).save(jpeg, quality=90)

    def compared(image):
        return torch.nn.functional.normalize(torch.cat([_unit(jpeg_net, [image]), _unit(jpeg_net, [
            perturb.luminance(image)])], 1), dim=1)[0]
    pair = special.verify(images[0], jpeg)
    assert pair.score == pytest.approx(float(compared(perturb.resaved(pixels[0], "jpeg90")) @
                                             compared(load_image(jpeg, None))), abs=1e-5)
    clean = special.verify(images[1], images[0])     # clean pairs: the extractor's own network
    assert main(["export", specialist_file, str(tmp_path / "shared")]) == 0
    assert "(with its gray and jpeg specialist networks)" in capsys.readouterr().out
    assert Attributor(tmp_path / "shared").digest == special.digest      # the exported form shares galleries
    # a modelfp whose JPEG specialist did not embed WebP would make other copies: other galleries
    from modelfp import variants
    monkeypatch.setitem(variants.SPECIALISTS, "jpeg", tuple(c for c in variants.SPECIALISTS["jpeg"] if c != "webp"))
    assert Attributor(specialist_file).digest != special.digest and Attributor(cnn_file).digest == plain.digest
    assert clean.score == pytest.approx(plain.verify(images[1], images[0]).score, abs=1e-6)
