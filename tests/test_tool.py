"""The people's command line (gallery add / identify / verify) and the Attributor API behind it:
folders, bad images as one line each, refused small images, wrong gallery/extractor files."""
import io

import numpy as np
import pytest
from PIL import Image

from modelfp import denoise, extractor as ex
from modelfp.attributor import Attributor
from modelfp.cli import main

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


def _identify(capsys, extractor_file, gallery, *images):
    code = main(["identify", *map(str, images), "--extractor", extractor_file, "--gallery", gallery])
    return code, capsys.readouterr().out.strip().splitlines()


def test_a_folder_is_read_recursively_and_each_image_answered(tmp_path, capsys, extractor_file, gallery):
    capsys.readouterr()
    folder = tmp_path / "queries"
    expected = [_save(folder / "a.png", "stripes", 10), _save(folder / "deep" / "er" / "b.png", "checker", 11),
                _save(folder / "deep" / "c.jpg", "stripes", 12)]
    (folder / "notes.txt").write_text("not an image, not listed")
    code, lines = _identify(capsys, extractor_file, gallery, folder)
    assert code == 0
    assert sorted(line.split("\t")[0] for line in lines) == sorted(expected)
    assert all(line.split("\t")[1] in ("stripes", "checker", "unknown") for line in lines)


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
    code, lines = _identify(capsys, extractor_file, gallery, good[0], corrupt, truncated, empty, missing, good[1])
    assert code == 1
    assert [line.split("\t")[0] for line in lines] == [good[0], str(corrupt), str(truncated), str(empty),
                                                         str(missing), good[1]]
    by_path = dict(line.split("\t", 1) for line in lines)
    for bad in (corrupt, truncated, empty, missing):
        assert by_path[str(bad)].startswith("error: ") and "; " in by_path[str(bad)]
    assert "corrupt" in by_path[str(corrupt)] and "truncated" in by_path[str(truncated)]
    assert "empty" in by_path[str(empty)] and "no such file" in by_path[str(missing)]
    for path in good:
        assert by_path[path].split("\t")[0] in ("stripes", "checker", "unknown")
    assert "on_bad_image" not in "\n".join(lines)


def test_an_image_smaller_than_the_window_is_refused_not_upscaled(tmp_path, capsys, extractor_file, gallery):
    capsys.readouterr()
    small = _save(tmp_path / "small.png", "stripes", 30, size=(20, SIZE - 4))
    ok = _save(tmp_path / "ok.png", "stripes", 31, size=(SIZE, SIZE))      # exactly the window: accepted
    code, lines = _identify(capsys, extractor_file, gallery, small, ok)
    assert code == 1
    assert lines[0].startswith(f"{small}\terror: ") and f"at least {SIZE}x{SIZE} pixels" in lines[0]
    assert f"{SIZE - 4}x20 pixels" in lines[0] and "not upscaled" in lines[0]
    assert lines[1].split("\t")[1] in ("stripes", "checker", "unknown")


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
    code, lines = _identify(capsys, extractor_file, gallery, *queries, bad)
    records = Attributor(extractor_file).identify([*queries, bad], gallery)
    assert code == 1 and len(records) == len(lines) == 5
    for record, line in zip(records, lines):
        if record.error:
            assert line == f"{record.path}\terror: {record.error}"
        else:
            assert line == (f"{record.path}\t{record.model}\t{record.score:.4f}\t"
                            f"(nearest: {record.nearest}, threshold {THRESHOLD:.4f})")
    # the toy models' traces are easy: each query is nearest to its own model
    assert [r.nearest for r in records[:4]] == ["stripes", "stripes", "checker", "checker"]


def test_gallery_add_twice_extends_the_counts(tmp_path, capsys, extractor_file):
    path = str(tmp_path / "g.gallery")
    args = ["--extractor", extractor_file, "--gallery", path]
    first = [_save(tmp_path / f"s{i}.png", "stripes", i) for i in range(2)]
    assert main(["gallery", "add", "stripes", *first, *args]) == 0
    assert main(["gallery", "add", "stripes", _save(tmp_path / "s2.png", "stripes", 2), *args]) == 0
    assert main(["gallery", "add", "checker", _save(tmp_path / "c0.png", "checker", 0), *args]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"stripes: 2 images in {path} (1 models)", f"stripes: 3 images in {path} (1 models)",
                   f"checker: 1 images in {path} (2 models)"]
    g = Attributor(extractor_file).load_gallery(path)
    assert {n: m["count"] for n, m in g.models.items()} == {"stripes": 3, "checker": 1}
    # a bad image among good ones: the good ones are added, the bad one reported, exit 1
    (tmp_path / "empty.png").write_bytes(b"")
    assert main(["gallery", "add", "checker", str(tmp_path / "empty.png"),
                 _save(tmp_path / "c1.png", "checker", 1), *args]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{tmp_path / 'empty.png'}\terror: ") and out[1].startswith("checker: 2 images")


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
    code, lines = _identify(capsys, extractor_file, gallery, gray, rgba, deep)
    assert code == 0 and len(lines) == 3 and not any("error" in line for line in lines)


def test_verify_answers_two_images_and_reports_a_bad_one(tmp_path, capsys, extractor_file):
    a = _save(tmp_path / "a.png", "stripes", 60)
    assert main(["verify", a, a, "--extractor", extractor_file]) == 0
    assert capsys.readouterr().out == f"same model\tscore 1.0000\tthreshold {THRESHOLD:.4f}\n"
    v = Attributor(extractor_file).verify(a, a)
    assert v.same and v.score == pytest.approx(1.0, abs=1e-5) and v.error is None
    assert main(["verify", a, str(tmp_path / "missing.png"), "--extractor", extractor_file]) == 1
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'missing.png'}\terror: no such file")
    assert main(["verify", a, str(tmp_path), "--extractor", extractor_file]) == 1
    assert "verify compares two image files" in capsys.readouterr().out


def test_an_uncalibrated_extractor_needs_a_threshold(tmp_path, caplog, capsys, extractor_file):
    raw = tmp_path / "trained.pt"
    model = ex.load(extractor_file)
    model.threshold = None
    ex.save(model, raw)
    a = _save(tmp_path / "a.png")
    assert main(["verify", a, a, "--extractor", str(raw)]) == 2
    assert "no verification threshold" in caplog.text
    assert main(["verify", a, a, "--extractor", str(raw), "--threshold", "0.9"]) == 0
    assert capsys.readouterr().out.startswith("same model")


def _calibrated(tmp_path, extractor_file, name, verification, openset):
    """A copy of the extractor file calibrated with these two thresholds (as `modelfp calibrate` does)."""
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
        path_, answer, printed, rest = capsys.readouterr().out.strip().split("\t")
        assert (path_, answer) == (query, expected) and float(printed) == pytest.approx(score, abs=1e-4)
        assert rest == f"(nearest: stripes, threshold {openset:.4f})"
        # --threshold overrides the calibrated one
        assert main(["identify", query, "--extractor", path, "--gallery", gallery,
                     "--threshold", str(score + 1e-3)]) == 0
        assert capsys.readouterr().out.split("\t")[1] == "unknown"


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
        assert capsys.readouterr().out.startswith(f"{verdict}\tscore ")


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
