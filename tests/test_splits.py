"""The honest protocol (modelfp.splits): what fine-tuning trains on is never what `embed` evaluates."""

import json
from pathlib import Path

import numpy as np
import torch
import pytest

from conftest import write_pngs as _write_pngs
from modelfp import denoise, pools, splits, steps
from modelfp import extractor as ex

NAMES = [f"{i:05d}" for i in range(40)]


def _sides(names, fraction=0.5):
    return {n: splits.side(n, fraction) for n in names}


def test_split_is_deterministic():
    assert _sides(NAMES) == _sides(list(reversed(NAMES)))
    assert set(_sides(NAMES).values()) == set(splits.SIDES)       # 40 names: both sides occur


def test_sides_are_disjoint_and_cover_every_image(tmp_path):
    paths = [tmp_path / "m" / f"{n}.png" for n in NAMES] + [tmp_path / "m" / "sub" / "a.jpg"]
    by_side = splits.split(paths, tmp_path / "m", 0.5)
    train, evaluated = set(by_side[splits.TRAIN]), set(by_side[splits.EVAL])
    assert not train & evaluated
    assert train | evaluated == set(paths)
    assert train and evaluated


def test_perturbed_copy_falls_on_the_side_of_its_original(tmp_path):
    # results/perturbed/{kind}/{level}/{model}/ holds PNGs named as results/testbed/{model}/images/
    original = [tmp_path / "testbed/m/images" / f"{n}.png" for n in NAMES]
    perturbed = [tmp_path / "perturbed/jpeg/90/m" / f"{n}.png" for n in NAMES]
    jpegs = [tmp_path / "user/m" / f"{n}.jpg" for n in NAMES]          # the format does not matter
    a = [splits.side(splits.image_key(p, p.parent), 0.5) for p in original]
    assert a == [splits.side(splits.image_key(p, p.parent), 0.5) for p in perturbed]
    assert a == [splits.side(splits.image_key(p, p.parent), 0.5) for p in jpegs]


def test_perturb_folder_keeps_the_names_of_the_testbed_images(tmp_path):
    from modelfp.perturb import perturb_folder
    src = _write_pngs(tmp_path / "images", NAMES[:5])
    perturb_folder(src, tmp_path / "jpeg", "jpeg", 50, seed=0)
    assert [p.name for p in pools.list_images(tmp_path / "jpeg")] == [p.name for p in pools.list_images(src)]


def test_adding_images_moves_no_existing_image(tmp_path):
    few = splits.split([tmp_path / f"{n}.png" for n in NAMES[:10]], tmp_path, 0.5)
    many = splits.split([tmp_path / f"{n}.png" for n in NAMES + [f"x{i}" for i in range(100)]], tmp_path, 0.5)
    for side in splits.SIDES:
        assert set(few[side]) <= set(many[side])


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.8])
def test_fraction_is_roughly_honoured_on_1000_names(fraction):
    n_train = sum(splits.side(f"{i:05d}", fraction) == splits.TRAIN for i in range(1000))
    assert abs(n_train - 1000 * fraction) < 50            # binomial sd at 0.5: 16


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_fraction_outside_zero_one_is_refused(fraction):
    with pytest.raises(ValueError, match="train_fraction"):
        splits.side("00000", fraction)


def test_a_folder_without_evaluation_images_is_a_clear_error(tmp_path):
    stem = next(n for n in NAMES if splits.side(n, 0.5) == splits.TRAIN)
    folder = _write_pngs(tmp_path / "m", [stem])
    with pytest.raises(ValueError, match=r"m: its one image does not fall on the eval side"):
        splits.folder_side(folder, 0.5, splits.EVAL)


def test_training_side_loads_exactly_the_training_side_as_centre_windows(tmp_path, monkeypatch):
    folders = [(name, _write_pngs(tmp_path / name, NAMES[:12], seed=s)) for s, name in enumerate("ab")]
    loaded, real_load = [], pools.load_image
    monkeypatch.setattr(pools, "load_image", lambda p, size: loaded.append(Path(p)) or real_load(p, size))
    names, images = splits.training_side(folders, 0.5, 8)
    assert names == ["a", "b"]
    for (_, folder), x in zip(folders, images):
        side = splits.folder_side(folder, 0.5, splits.TRAIN)[0]
        assert [p for p in loaded if p.parent == folder] == side          # the training side, in order
        assert x.dtype == torch.uint8 and tuple(x.shape) == (len(side), 3, 8, 8)
        assert torch.equal(x[0], ex.windows(real_load(side[0], None), 8, 1)[0])


def test_embed_and_finetune_read_disjoint_images_of_the_same_folder(tmp_path, monkeypatch):
    """Run both verbs on one folder: the images fine-tuning loads and the images `embed` writes are
    disjoint and together all of the folder."""
    folders = [_write_pngs(tmp_path / name, NAMES[:12], seed=s) for s, name in enumerate(("a", "b"))]
    cfg = ex.ExtractorConfig(backbone="small_cnn", transform="log1p", image_size=16)
    init = tmp_path / "init.pt"
    ex.save(ex.build(denoise.init_model(depth=3, features=4, seed=0), cfg, ["x", "y"], seed=0), init)

    loaded = []
    real_load = pools.load_image
    monkeypatch.setattr(pools, "load_image", lambda p, size: loaded.append(Path(p)) or real_load(p, size))
    images = [arg for f in folders for arg in ("--images", f.name, str(f))]
    assert steps.main(["train-extractor", "--variant", "finetune", "--init", str(init), *images, "--train-fraction", "0.5",
              "--untrained", "--options", json.dumps({"backbone": "small_cnn", "transform": "log1p",
                                                      "image_size": 16}),
              "--out", str(tmp_path / "ft.pt"), "--device", "cpu"]) == 0
    trained = set(loaded)

    models = [arg for f in folders for arg in ("--model", f.name, str(f))]
    assert steps.main(["embed", "--extractor", str(tmp_path / "ft.pt"), *models, "--train-fraction", "0.5",
              "--window", "1", "--out-dir", str(tmp_path / "emb"), "--device", "cpu"]) == 0
    for f in folders:
        embedded = {Path(p) for p in np.load(tmp_path / "emb" / f"{f.name}.npz")["paths"]}
        mine = {p for p in trained if p.parent == f}
        assert mine and embedded
        assert not mine & embedded
        assert mine | embedded == set(pools.list_images(f))


def test_a_baseline_trains_on_the_training_side_only_and_embeds_the_other(tmp_path, monkeypatch):
    """train-baseline (marra: each known model's fingerprint is the mean residual of the images it
    read) reads exactly the training side; `embed` of the trained-baseline file the other side."""
    from modelfp import baselines
    from modelfp.baselines import marra
    folders = [_write_pngs(tmp_path / name, NAMES[:12], seed=s) for s, name in enumerate(("a", "b"))]
    den = denoise.init_model(depth=3, features=4, seed=0)
    denoise.save(den, tmp_path / "den.pt")
    loaded = []
    real_load = pools.load_image
    monkeypatch.setattr(pools, "load_image", lambda p, size: loaded.append(Path(p)) or real_load(p, size))
    images = [arg for f in folders for arg in ("--images", f.name, str(f))]
    assert steps.main(["train-baseline", "--name", "marra", *images, "--train-fraction", "0.5", "--image-size", "16",
                       "--steps", "0", "--batch-size", "4", "--seed", "0", "--hp", "{}", "--holdout", "0.15", "--denoiser",
                       str(tmp_path / "den.pt"), "--out", str(tmp_path / "marra.pt"), "--device", "cpu"]) == 0
    trained = set(loaded)
    model = baselines.load(tmp_path / "marra.pt")
    for c, f in enumerate(folders):
        train_side = splits.folder_side(f, 0.5, splits.TRAIN)[0]
        assert {p for p in trained if p.parent == f} == set(train_side)
        own = torch.stack([real_load(p, None) for p in train_side])
        expected = model.model.residual(own, "cpu").mean(0)
        torch.testing.assert_close(model.model.fingerprints[c], expected)
    models = [arg for f in folders for arg in ("--model", f.name, str(f))]
    assert steps.main(["embed", "--extractor", str(tmp_path / "marra.pt"), *models, "--train-fraction", "0.5",
                       "--window", "1", "--out-dir", str(tmp_path / "emb"), "--device", "cpu"]) == 0
    for f in folders:
        npz = np.load(tmp_path / "emb" / f"{f.name}.npz")
        embedded = {Path(p) for p in npz["paths"]}
        assert embedded == set(splits.folder_side(f, 0.5, splits.EVAL)[0])
        assert not embedded & trained
        # the embedding is marra's own feature minus the centre (the mean feature of its training images)
        imgs = torch.stack([real_load(p, None) for p in sorted(embedded, key=lambda p: list(npz["paths"]).index(str(p)))])
        torch.testing.assert_close(torch.from_numpy(npz["embeddings"]),
                                   marra.embed(model.model, imgs, "cpu") - model.centre, atol=1e-5, rtol=0)
