"""Tests for modelfp.pools: loading, folder and embedded pools, splitting and shard storage."""

import hashlib
import json
import os
import socket

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from modelfp import pools
from modelfp.pools import (
    EMBEDDED_SOURCES,
    BadImageError,
    PoolError,
    build_folder_pool,
    embedded_photos,
    embedded_pool,
    list_images,
    load_image,
    read_pool,
    split_train_val,
    to_unit_range,
    write_pool,
)

S = 16  # small output size keeps the file fast


def _rng_rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(path, array_or_image, **kwargs):
    im = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **kwargs)
    return path


def _assert_image_tensor(x, size=S):
    assert isinstance(x, torch.Tensor)
    assert x.dtype == torch.uint8
    assert tuple(x.shape) == (3, size, size)
    assert x.is_contiguous()


# --------------------------------------------------------------------------- load_image: bad input


def _truncated(tmp_path, name, fmt):
    good = _save(tmp_path / f"good.{fmt.lower()}", _rng_rgb(64, 64), format=fmt)
    data = good.read_bytes()
    bad = tmp_path / name
    bad.write_bytes(data[: len(data) // 2])
    return bad


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda p: (p / "corrupt.png").write_bytes(os.urandom(2048)) and p / "corrupt.png",
                     id="random-bytes"),
        pytest.param(lambda p: _truncated(p, "cut.png", "PNG"), id="truncated-png"),
        pytest.param(lambda p: _truncated(p, "cut.jpg", "JPEG"), id="truncated-jpeg"),
        pytest.param(lambda p: (p / "empty.jpg").write_bytes(b"") or p / "empty.jpg", id="zero-bytes"),
        pytest.param(lambda p: (p / "notes.jpg").write_text("not an image\n" * 50) and p / "notes.jpg",
                     id="text-as-jpg"),
        pytest.param(lambda p: p / "missing.png", id="missing-file"),
    ],
)
def test_load_image_bad_inputs_raise_bad_image_error_naming_file(tmp_path, make):
    path = make(tmp_path)
    with pytest.raises(BadImageError) as info:
        load_image(path, S)
    message = str(info.value)
    assert str(path) in message
    assert "Fix:" in message


def test_load_image_png_with_corrupted_middle_raises(tmp_path):
    path = _save(tmp_path / "flip.png", _rng_rgb(64, 64))
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BadImageError, match="flip.png"):
        load_image(path, S)


def test_truncated_image_raises_even_if_pillow_globally_allows_truncation(tmp_path, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    path = _truncated(tmp_path, "cut.jpg", "JPEG")
    with pytest.raises(BadImageError):
        load_image(path, S)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the global setting is restored


def test_bad_image_error_is_a_value_error():
    assert issubclass(BadImageError, ValueError) and issubclass(PoolError, ValueError)


# --------------------------------------------------------------------------- load_image: modes


def test_modes_all_become_rgb_uint8(tmp_path):
    rgb = _rng_rgb(40, 30)
    base = Image.fromarray(rgb)
    cases = {
        "gray.png": base.convert("L"),
        "bw.png": base.convert("1"),
        "la.png": base.convert("LA"),
        "rgba.png": base.convert("RGBA"),
        "palette.png": base.convert("P"),
        "cmyk.jpg": base.convert("CMYK"),
        "cmyk.tif": base.convert("CMYK"),
        "rgb.webp": base,
        "rgb.bmp": base,
        "float.tif": Image.fromarray(np.linspace(0, 1, 1200, dtype=np.float32).reshape(40, 30)),
    }
    for name, im in cases.items():
        _assert_image_tensor(load_image(_save(tmp_path / name, im), S))


def test_grayscale_is_replicated_to_three_equal_channels(tmp_path):
    x = load_image(_save(tmp_path / "g.png", _rng_rgb(20, 20)[:, :, 0]), S)
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])


def test_rgba_transparent_pixels_are_composited_on_white(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200  # red, but fully transparent
    x = load_image(_save(tmp_path / "t.png", Image.fromarray(rgba, "RGBA")), 4)
    assert (x == 255).all()
    rgba[..., 3] = 255  # now opaque: the colour shows
    x = load_image(_save(tmp_path / "o.png", Image.fromarray(rgba, "RGBA")), 4)
    assert (x[0] == 200).all() and (x[1] == 0).all()


def test_palette_with_transparency_is_composited_on_white(tmp_path):
    im = Image.new("P", (8, 8), 0)
    im.putpalette([10, 20, 30] + [0] * 765)
    path = _save(tmp_path / "p.png", im, transparency=0)
    assert (load_image(path, 4) == 255).all()


def test_cmyk_cyan_becomes_rgb_cyan(tmp_path):
    path = _save(tmp_path / "c.tif", Image.new("CMYK", (8, 8), (255, 0, 0, 0)))
    x = load_image(path, 4)
    assert (x[0] == 0).all() and (x[1] == 255).all() and (x[2] == 255).all()


@pytest.mark.parametrize("value, expected", [(65535, 255), (32768, 128), (0, 0), (257 * 100, 100)])
def test_16bit_grayscale_png_is_scaled_by_bit_depth_not_clipped(tmp_path, value, expected):
    path = _save(tmp_path / "g16.png", Image.fromarray(np.full((12, 10), value, np.uint16)))
    assert Image.open(path).mode.startswith("I")  # really stored as 16-bit
    x = load_image(path, S)
    _assert_image_tensor(x)
    assert (x.int() - expected).abs().max() <= 1


def test_16bit_gradient_keeps_its_ordering(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1))
    x = load_image(_save(tmp_path / "ramp.png", Image.fromarray(ramp)), 64)[0, 7].int()
    assert (x[1:] >= x[:-1]).all() and x[0] == 0 and x[-1] == 255
    assert len(set(x.tolist())) == 64  # 64 distinct levels survive, nothing saturates


def test_float_image_in_unit_range_is_scaled_by_255(tmp_path):
    path = _save(tmp_path / "f.tif", Image.fromarray(np.full((6, 6), 0.5, np.float32)))
    x = load_image(path, 4)
    assert (x.int() - 128).abs().max() <= 1


def test_tiny_and_large_images(tmp_path):
    _assert_image_tensor(load_image(_save(tmp_path / "one.png", _rng_rgb(1, 1)), S))
    big = np.zeros((2000, 3000, 3), np.uint8)
    big[:, :1500] = (255, 0, 0)
    big[:, 1500:] = (0, 0, 255)
    x = load_image(_save(tmp_path / "big.jpg", big, quality=95), 32)
    _assert_image_tensor(x, 32)
    assert x[0, :, :10].float().mean() > 240 and x[2, :, -10:].float().mean() > 240


def test_resize_is_plain_not_a_crop(tmp_path):
    wide = np.zeros((100, 300, 3), np.uint8)
    wide[:, :100] = (255, 0, 0)  # left third red, right third green: a centre crop loses both
    wide[:, 200:] = (0, 255, 0)
    x = load_image(_save(tmp_path / "wide.png", wide), 30)
    assert (x[0, :, :8] == 255).all() and (x[1, :, -8:] == 255).all()
    assert (x[:, :, 12:18] == 0).all()


def test_exif_orientation_is_applied(tmp_path):
    im = np.zeros((10, 20, 3), np.uint8)
    im[:, :10] = (255, 0, 0)  # stored: left red, right black
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise: red on top
    x = load_image(_save(tmp_path / "rot.jpg", Image.fromarray(im), exif=exif, quality=95), 8)
    assert x[0, :3].float().mean() > 200 and x[0, -3:].float().mean() < 50


# --------------------------------------------------------------------------- list_images


def test_list_images_recursive_sorted_and_filtered(tmp_path):
    names = ["b.jpg", "a/z.PNG", "a/deep/c.JpEg", "d.webp", "e.bmp", "f.TIF", "g.tiff"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    for junk in ["notes.txt", "a/data.npy", "a/.hidden.jpg", ".cache/x.jpg", "noext"]:
        (tmp_path / junk).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / junk).write_bytes(b"x")
    found = list_images(tmp_path)
    rel = [p.relative_to(tmp_path).as_posix() for p in found]
    assert rel == ["a/deep/c.JpEg", "a/z.PNG", "b.jpg", "d.webp", "e.bmp", "f.TIF", "g.tiff"]
    assert list_images(tmp_path) == found


# --------------------------------------------------------------------------- build_folder_pool


def _colour_folder(root, colours):
    for i, c in enumerate(colours):
        _save(root / f"sub{i % 2}" / f"img{i}.png", np.full((9, 13, 3), c, np.uint8))


def test_empty_and_missing_folders_raise_pool_error_naming_pool_and_path(tmp_path):
    empty = tmp_path / "empty_pool_dir"
    empty.mkdir()
    (empty / "readme.txt").write_text("no photos here")
    missing = tmp_path / "nowhere"
    for folder in (empty, missing):
        with pytest.raises(PoolError) as info:
            build_folder_pool("my_pool", folder, S)
        assert "my_pool" in str(info.value) and str(folder) in str(info.value)
        assert "Put the pool's photos" in str(info.value)


def test_folder_pool_loads_all_images_in_listing_order(tmp_path):
    colours = [(10, 20, 30), (200, 0, 0), (0, 99, 0)]
    _colour_folder(tmp_path, colours)
    images, report = build_folder_pool("p", tmp_path, S)
    assert images.shape == (3, 3, S, S) and images.dtype == torch.uint8
    assert report.n_found == 3 and report.n_loaded == 3 and report.skipped == []
    by_path = {p.name: load_image(p, S) for p in list_images(tmp_path)}
    for row, path in zip(images, list_images(tmp_path)):
        assert torch.equal(row, by_path[path.name])


def test_skip_counts_bad_images_and_keeps_good_ones(tmp_path):
    _colour_folder(tmp_path, [(1, 2, 3), (4, 5, 6), (7, 8, 9)])
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (tmp_path / "sub1" / "empty.png").write_bytes(b"")
    images, report = build_folder_pool("p", tmp_path, S, on_bad_image="skip")
    assert images.shape == (3, 3, S, S)
    assert report.n_found == 5 and report.n_loaded == 3 and len(report.skipped) == 2
    skipped_names = sorted(os.path.basename(p) for p, _ in report.skipped)
    assert skipped_names == ["broken.jpg", "empty.png"]
    assert all(reason for _, reason in report.skipped)
    assert sorted(int(x[0, 0, 0]) for x in images) == [1, 4, 7]


def test_error_mode_raises_naming_the_bad_file(tmp_path):
    _colour_folder(tmp_path, [(1, 2, 3)])
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(BadImageError, match="broken.jpg"):
        build_folder_pool("p", tmp_path, S)


def test_all_bad_with_skip_is_a_pool_error(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"garbage")
    with pytest.raises(PoolError, match="none of the 1"):
        build_folder_pool("p", tmp_path, S, on_bad_image="skip")


def test_invalid_on_bad_image_value(tmp_path):
    with pytest.raises(ValueError, match="on_bad_image"):
        build_folder_pool("p", tmp_path, S, on_bad_image="ignore")


# --------------------------------------------------------------------------- embedded pools


def test_embedded_sources_are_two_disjoint_nonempty_sets():
    assert len(EMBEDDED_SOURCES) >= 2
    sets = [set(v) for v in EMBEDDED_SOURCES.values()]
    assert all(sets)
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            assert not sets[i] & sets[j]


def test_embedded_photos_are_colour_photographs_read_without_network(monkeypatch):
    pools._photo.cache_clear()

    def no_network(*args, **kwargs):
        raise AssertionError("embedded photos must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    for pool in EMBEDDED_SOURCES:
        photos = embedded_photos(pool)
        assert len(photos) == len(EMBEDDED_SOURCES[pool])
        for photo in photos:
            assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3
            assert min(photo.shape[:2]) >= 256
            assert np.abs(photo[..., 0].astype(int) - photo[..., 1]).mean() > 3  # not gray
        assert len({p.tobytes() for p in photos}) == len(photos)


@pytest.mark.parametrize("pool", sorted(EMBEDDED_SOURCES))
def test_embedded_pool_is_deterministic_and_varied(pool):
    a = embedded_pool(pool, 24, 80, seed=0)
    assert a.shape == (80, 3, 24, 24) and a.dtype == torch.uint8 and a.is_contiguous()
    assert torch.equal(a, embedded_pool(pool, 24, 80, seed=0))
    assert not torch.equal(a, embedded_pool(pool, 24, 80, seed=1))
    assert torch.equal(a[:10], embedded_pool(pool, 24, 10, seed=0))  # prefix does not depend on count
    distinct = {x.numpy().tobytes() for x in a}
    assert len(distinct) > 0.95 * len(a)


def test_embedded_pool_unknown_name_lists_known_pools():
    with pytest.raises(PoolError) as info:
        embedded_pool("nope", 16, 4, 0)
    for name in EMBEDDED_SOURCES:
        assert name in str(info.value)


def test_embedded_pool_zero_count():
    assert embedded_pool(next(iter(EMBEDDED_SOURCES)), 8, 0, 0).shape == (0, 3, 8, 8)


# --------------------------------------------------------------------------- split_train_val


def _numbered(n, size=2):
    return torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, size, size).contiguous()


def _ids(x):
    return [int(v) for v in x[:, 0, 0, 0]]


def test_split_is_deterministic_disjoint_and_complete():
    images = _numbered(50)
    train, val = split_train_val(images, 0.2, seed=3)
    train2, val2 = split_train_val(images, 0.2, seed=3)
    assert torch.equal(train, train2) and torch.equal(val, val2)
    assert len(val) == 10 and len(train) == 40
    assert set(_ids(train)).isdisjoint(_ids(val))
    assert sorted(_ids(train) + _ids(val)) == list(range(50))
    _, val_other = split_train_val(images, 0.2, seed=4)
    assert _ids(val_other) != _ids(val)


@pytest.mark.parametrize("fraction", [0.001, 0.5, 0.999])
def test_split_keeps_at_least_one_image_each_side(fraction):
    train, val = split_train_val(_numbered(2), fraction, seed=0)
    assert len(train) == 1 and len(val) == 1


def test_split_needs_two_images():
    with pytest.raises(ValueError):
        split_train_val(_numbered(1), 0.5, seed=0)


# --------------------------------------------------------------------------- write_pool / read_pool


def test_write_read_round_trip_over_multiple_shards(tmp_path):
    train, val = _numbered(7, 4), _numbered(3, 4) + 100
    report = pools.PoolReport(n_found=11, n_loaded=10, skipped=[("x.jpg", "corrupt")])
    manifest_path = write_pool(tmp_path / "pool", train, val, {"name": "p", "report": report},
                               shard_size=3)
    assert manifest_path == tmp_path / "pool" / "manifest.json"
    files = sorted(p.name for p in (tmp_path / "pool").iterdir())
    assert files == ["manifest.json", "train-00000.pt", "train-00001.pt", "train-00002.pt",
                     "val-00000.pt"]
    manifest = json.loads(manifest_path.read_text())
    assert manifest["image_size"] == 4
    assert [s["count"] for s in manifest["splits"]["train"]["shards"]] == [3, 3, 1]
    assert manifest["meta"]["report"]["skipped"] == [["x.jpg", "corrupt"]]
    for entry in manifest["splits"].values():
        for shard in entry["shards"]:
            data = (tmp_path / "pool" / shard["file"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == shard["sha256"]
    for mmap in (True, False):
        assert torch.equal(read_pool(tmp_path / "pool", "train", mmap=mmap), train)
        assert torch.equal(read_pool(tmp_path / "pool", "val", mmap=mmap), val)


def test_shards_store_only_their_own_images(tmp_path):
    big = _numbered(200, 8)
    write_pool(tmp_path, big, big[:1], {}, shard_size=10)
    sizes = [p.stat().st_size for p in tmp_path.glob("train-*.pt")]
    assert max(sizes) < 10 * 3 * 8 * 8 + 4000  # not the whole 200-image storage


def test_manifest_is_replaced_last(tmp_path, monkeypatch):
    order = []
    real_replace = os.replace

    def recording_replace(src, dst):
        order.append(os.path.basename(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(pools.os, "replace", recording_replace)
    write_pool(tmp_path, _numbered(5), _numbered(2), {}, shard_size=2)
    assert order[-1] == "manifest.json" and order.count("manifest.json") == 1
    assert len(order) == 3 + 1 + 1


def test_failed_shard_write_leaves_no_manifest_and_no_partial_files(tmp_path, monkeypatch):
    write_pool(tmp_path, _numbered(4), _numbered(2), {}, shard_size=2)  # an older complete pool
    real_save = torch.save
    calls = []

    def failing_save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            f.write(b"half a shard")
            raise OSError("disk full")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(pools.torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        write_pool(tmp_path, _numbered(6), _numbered(2), {}, shard_size=2)
    assert not (tmp_path / "manifest.json").exists()  # the stale manifest is gone too
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(PoolError, match="manifest.json"):
        read_pool(tmp_path)


def test_rewrite_removes_stale_shards(tmp_path):
    write_pool(tmp_path, _numbered(9), _numbered(2), {}, shard_size=2)
    write_pool(tmp_path, _numbered(3), _numbered(2), {}, shard_size=2)
    assert sorted(p.name for p in tmp_path.glob("train-*.pt")) == ["train-00000.pt",
                                                                   "train-00001.pt"]
    assert torch.equal(read_pool(tmp_path), _numbered(3))


def test_read_pool_errors_name_the_manifest(tmp_path):
    with pytest.raises(PoolError, match="manifest.json"):
        read_pool(tmp_path)
    manifest_path = write_pool(tmp_path, _numbered(4), _numbered(2), {}, shard_size=2)
    with pytest.raises(PoolError, match="no split 'test'"):
        read_pool(tmp_path, "test")
    manifest = json.loads(manifest_path.read_text())
    manifest["splits"]["train"]["shards"][0]["count"] = 5
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(PoolError, match=str(manifest_path)):
        read_pool(tmp_path)
    manifest["splits"]["train"]["shards"][0]["count"] = 2
    manifest_path.write_text(json.dumps(manifest))
    (tmp_path / "train-00001.pt").unlink()
    with pytest.raises(PoolError, match="missing"):
        read_pool(tmp_path, "train")


def test_write_pool_rejects_wrong_input(tmp_path):
    with pytest.raises(ValueError):
        write_pool(tmp_path, _numbered(3).float(), _numbered(2), {})
    with pytest.raises(ValueError):
        write_pool(tmp_path, _numbered(3, 4), _numbered(2, 5), {})


# --------------------------------------------------------------------------- to_unit_range


def test_to_unit_range():
    x = torch.tensor([0, 128, 255], dtype=torch.uint8)
    y = to_unit_range(x)
    assert y.dtype == torch.float32
    assert y[0].item() == -1.0 and y[2].item() == 1.0 and abs(y[1].item()) < 0.01
    assert to_unit_range(x, torch.float16)[2].item() == 1.0
    assert x.tolist() == [0, 128, 255]  # input untouched
    with pytest.raises(TypeError):
        to_unit_range(y)


def test_read_pools_concatenates_one_split_of_several_pools_in_the_order_given(tmp_path):
    first, second = _numbered(3), _numbered(5)[3:]
    write_pool(tmp_path / "p1", first, _numbered(1), {"name": "p1"})
    write_pool(tmp_path / "p2", second, _numbered(1), {"name": "p2"})
    assert _ids(pools.read_pools([tmp_path / "p2", tmp_path / "p1"], "train")) == [3, 4, 0, 1, 2]
    assert torch.equal(pools.read_pools([tmp_path / "p1"], "train"), read_pool(tmp_path / "p1", "train"))
