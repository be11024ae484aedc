import numpy as np
import pytest
import torch
from PIL import Image

from modelfp.perturb import (MATCHED, RESAVES, grayscale, jpeg_quality, lossy_webp, matched_condition, perturb,
                             perturb_folder, resave, resaved)
from modelfp.pools import ALPHA_BACKGROUND, load_image


def _photo(seed=0, size=64):
    """A smooth colour image with some texture, like a generated image."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([np.sin(6 * x + c) * np.cos(4 * y - c) for c in (0, 1, 2)], -1)
    img = 127 + 90 * base + rng.normal(0, 12, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _error(a, b):
    return float(np.abs(a.astype(float) - b.astype(float)).mean())


def test_higher_jpeg_quality_gives_smaller_error():
    img = _photo()
    errors = [_error(perturb(img, "jpeg", q, seed=0), img) for q in (100, 90, 70, 50, 20)]
    assert errors == sorted(errors) and errors[0] < errors[-1]


def test_smaller_crops_change_the_image_more_and_keep_its_size():
    img = _photo(1)
    outs = {s: perturb(img, "crop", s, seed=3) for s in (1.0, 0.8, 0.5, 0.2)}
    assert all(o.shape == img.shape for o in outs.values())
    assert _error(outs[1.0], img) < 1.0                     # the whole image, resized to itself
    assert _error(outs[1.0], img) < _error(outs[0.5], img) < _error(outs[0.2], img)


def test_perturbations_are_seeded():
    img = _photo(2)
    assert np.array_equal(perturb(img, "crop", 0.5, seed=7), perturb(img, "crop", 0.5, seed=7))
    assert not np.array_equal(perturb(img, "crop", 0.5, seed=7), perturb(img, "crop", 0.5, seed=8))


@pytest.mark.parametrize("kind, level", [("jpeg", 0), ("jpeg", 101), ("crop", 0), ("crop", 1.5), ("blur", 1)])
def test_bad_levels_are_named(kind, level):
    with pytest.raises(ValueError, match=str(level) if kind != "blur" else "blur"):
        perturb(_photo(), kind, level, seed=0)


def test_perturb_folder_writes_one_png_per_image_under_its_own_name(tmp_path):
    (tmp_path / "src" / "sub").mkdir(parents=True)
    for i in range(2):
        Image.fromarray(_photo(i, 32)).save(tmp_path / "src" / f"{i}.png")
    Image.fromarray(_photo(2, 32)).save(tmp_path / "src" / "sub" / "x.jpg")
    assert perturb_folder(tmp_path / "src", tmp_path / "out", "jpeg", 50, seed=0) == 3
    # the names (and so the train/eval side of modelfp.splits) of the originals, as PNG
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png")) == \
        ["0.png", "1.png", "sub/x.png"]


def test_perturb_folder_refuses_two_images_that_would_share_a_name(tmp_path):
    (tmp_path / "src").mkdir()
    Image.fromarray(_photo(0, 32)).save(tmp_path / "src" / "a.png")
    Image.fromarray(_photo(1, 32)).save(tmp_path / "src" / "a.jpg")
    with pytest.raises(ValueError, match="a.png"):
        perturb_folder(tmp_path / "src", tmp_path / "out", "jpeg", 50, seed=0)


# -- the re-saves people make (issue 25): real files, read back by the people's reader

def _jpeg_tables(quality):
    """The quantisation tables Pillow writes at `quality` (they depend on the quality alone)."""
    import io
    buffer = io.BytesIO()
    Image.fromarray(_photo(9, 16)).save(buffer, "JPEG", quality=quality)
    return Image.open(buffer).quantization


@pytest.mark.parametrize("quality", [95, 90])
def test_jpeg_resave_is_a_jpeg_file_of_the_asked_quality(tmp_path, quality):
    path = resave(_photo(), f"jpeg{quality}", tmp_path / "x")
    with Image.open(path) as im:
        assert path.suffix == ".jpg" and im.format == "JPEG"
        assert im.quantization == _jpeg_tables(quality) != _jpeg_tables(quality - 5)


def test_gray_resave_is_an_L_file_read_as_the_shared_grayscale_conversion(tmp_path):
    img = _photo(3)
    path = resave(img, "gray", tmp_path / "x")
    with Image.open(path) as im:
        assert im.mode == "L" and im.format == "PNG"
    read = load_image(path, None).permute(1, 2, 0).numpy()
    assert np.array_equal(read, grayscale(img))
    assert np.array_equal(read[..., 0], read[..., 1]) and np.array_equal(read[..., 1], read[..., 2])
    # Pillow's "L" is ITU-R 601-2 luma: within rounding of 0.299 R + 0.587 G + 0.114 B
    assert np.abs(read[..., 0] - img.astype(float) @ [0.299, 0.587, 0.114]).max() <= 1


def test_alpha_resaves_read_back_as_their_composite_on_the_background(tmp_path):
    img = _photo(4)
    opaque, half = resave(img, "rgba_opaque", tmp_path / "o"), resave(img, "rgba_half", tmp_path / "h")
    for path, alpha in ((opaque, 255), (half, 128)):
        with Image.open(path) as im:
            assert im.mode == "RGBA" and np.all(np.asarray(im)[..., 3] == alpha)
    assert np.array_equal(load_image(opaque, None).permute(1, 2, 0).numpy(), img)     # opaque: the pixels
    composite = (img.astype(float) * 128 + np.array(ALPHA_BACKGROUND) * 127) / 255   # over the background
    assert np.abs(load_image(half, None).permute(1, 2, 0).numpy() - composite).max() <= 1


def test_alpha_read_as_stored_keeps_the_colours_and_whitens_only_fully_transparent_pixels(tmp_path):
    img = _photo(4)
    half = resave(img, "rgba_half", tmp_path / "h")
    assert np.array_equal(load_image(half, None, alpha="stored").permute(1, 2, 0).numpy(), img)
    alpha = np.full(img.shape[:2], 200, np.uint8)
    alpha[:3, :5] = 0
    Image.fromarray(np.dstack([img, alpha])).save(tmp_path / "cut.png")
    read = load_image(tmp_path / "cut.png", None, alpha="stored").permute(1, 2, 0).numpy()
    assert np.all(read[:3, :5] == ALPHA_BACKGROUND) and np.array_equal(read[3:], img[3:])
    # gray with alpha (LA) and a palette with a transparent index read the same way
    Image.fromarray(np.dstack([img[..., 0], alpha]), mode="LA").save(tmp_path / "la.png")
    read = load_image(tmp_path / "la.png", None, alpha="stored").permute(1, 2, 0).numpy()
    assert np.all(read[:3, :5] == ALPHA_BACKGROUND) and np.array_equal(read[3:, :, 1], img[3:, :, 0])
    pal = Image.fromarray(img).quantize(8)
    pal.info["transparency"] = int(np.asarray(pal)[0, 0])
    pal.save(tmp_path / "p.png", transparency=pal.info["transparency"])
    read = load_image(tmp_path / "p.png", None, alpha="stored").permute(1, 2, 0).numpy()
    hidden = np.asarray(pal) == pal.info["transparency"]
    assert np.all(read[hidden] == ALPHA_BACKGROUND)
    assert np.array_equal(read[~hidden], np.asarray(pal.convert("RGB"))[~hidden])
    with pytest.raises(ValueError, match="alpha must be one of"):
        load_image(half, None, alpha="premultiplied")


def test_clean_resave_keeps_the_pixels_and_unknown_resaves_are_named(tmp_path):
    img = _photo(5)
    assert np.array_equal(load_image(resave(img, "clean", tmp_path / "c"), None).permute(1, 2, 0).numpy(), img)
    with pytest.raises(ValueError, match="jpeg95"):
        resave(img, "avif", tmp_path / "w")


@pytest.mark.parametrize("condition", list(RESAVES))
def test_resaved_in_memory_is_what_the_tool_reads_from_the_resaved_file(tmp_path, condition):
    """A gallery's matched copies (issue 25) are the very pixels a person's re-saved file reads as."""
    img = _photo(6, 40)
    from_file = load_image(resave(img, condition, tmp_path / "x"), None)
    assert torch.equal(resaved(torch.from_numpy(img).permute(2, 0, 1).contiguous(), condition), from_file)


@pytest.mark.parametrize("quality", [100, 96, 93, 90, 82, 75, 60, 30, 5])
def test_jpeg_quality_is_read_back_from_the_quantisation_table(quality):
    assert jpeg_quality(_jpeg_tables(quality)) == quality
    assert jpeg_quality(None) is None and jpeg_quality({}) is None


def test_a_query_is_matched_to_the_nearest_kept_jpeg_quality_or_to_grayscale():
    assert [c for c in MATCHED if c.startswith("jpeg")] == ["jpeg95", "jpeg90", "jpeg85", "jpeg75"]
    nearest = {q: matched_condition(True, False, _jpeg_tables(q)) for q in (100, 93, 92, 88, 80, 60)}
    # 92.5 is half-way: ties go to the higher quality (80: 85, not 75)
    assert nearest == {100: "jpeg95", 93: "jpeg95", 92: "jpeg90", 88: "jpeg90", 80: "jpeg85", 60: "jpeg75"}
    assert matched_condition(True, True, _jpeg_tables(90)) == "gray" == matched_condition(False, True)
    assert matched_condition(False, False) is None
    assert matched_condition(True, False, None) == "jpeg95"      # unreadable tables: the mildest
    # a lossy WebP meets the WebP copies; grayscale still wins (its lost colour is the larger change)
    assert matched_condition(False, False, None, True) == "webp" and matched_condition(False, True, None, True) == "gray"


def _webp(path, pixels, **options):
    Image.fromarray(pixels).save(path, **options)
    return path


def test_lossy_webp_is_told_from_lossless_by_its_chunks_in_plain_extended_and_animated_files(tmp_path):
    img = _photo(7, 40)
    frames = [Image.fromarray(img), Image.fromarray(255 - img)]
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "anim_lossless.webp", save_all=True, append_images=frames[1:], lossless=True)
    rgba = np.dstack([img, img[..., 0]])
    files = {"lossy": (_webp(tmp_path / "a.webp", img), True),
             "lossless": (_webp(tmp_path / "b.webp", img, lossless=True), False),
             "alpha, lossy (extended: VP8X, ALPH, VP8)": (_webp(tmp_path / "c.webp", rgba), True),
             "alpha, lossless": (_webp(tmp_path / "d.webp", rgba, lossless=True), False),
             "animated, lossy frames": (tmp_path / "anim.webp", True),
             "animated, lossless frames": (tmp_path / "anim_lossless.webp", False),
             "a PNG": (_webp(tmp_path / "e.png", img), False),
             "missing": (tmp_path / "none.webp", False)}
    assert {what: lossy_webp(path) for what, (path, _) in files.items()} == \
        {what: lossy for what, (_, lossy) in files.items()}
    # the chunk walk is what tells them apart: the extended and animated files open with VP8X
    assert (tmp_path / "c.webp").read_bytes()[12:16] == b"VP8X" == (tmp_path / "anim.webp").read_bytes()[12:16]
    truncated = tmp_path / "t.webp"
    truncated.write_bytes((tmp_path / "a.webp").read_bytes()[:14])
    assert not lossy_webp(truncated)


def test_webp_resave_is_a_lossy_webp_that_changes_the_pixels(tmp_path):
    img = _photo(8, 40)
    path = resave(img, "webp", tmp_path / "x")
    with Image.open(path) as im:
        assert path.suffix == ".webp" and im.format == "WEBP"
    assert lossy_webp(path) and not np.array_equal(load_image(path, None).permute(1, 2, 0).numpy(), img)
    assert "webp" in MATCHED
