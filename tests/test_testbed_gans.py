"""The GAN families of the test bed (dcgan, progan, sngan) and their shared loop (testbed/gan.py)."""

import pytest
import torch

from conftest import state_copy
from modelfp.testbed import FAMILIES, family, gan, progan, sngan
from modelfp.testbed.common import resolve, seeded

pytestmark = pytest.mark.usefixtures("one_thread")   # conftest.py

GANS = ("dcgan", "progan", "sngan")
# tiny widths: the tests check behaviour, not quality
TINY = {"dcgan": {"g_width": 4, "d_width": 4, "z_dim": 8},
        "progan": {"width": 8, "d_width": 8, "z_dim": 8},
        "sngan": {"g_width": 8, "d_width": 8, "z_dim": 8}}


@pytest.mark.parametrize("name", GANS)
def test_families_are_registered_with_the_interface(name):
    mod = family(name)
    assert FAMILIES[name].kind == "GAN"
    assert callable(mod.build) and callable(mod.train) and callable(mod.sample)
    assert set(gan.TRAIN_KEYS) <= set(mod.DEFAULTS)


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("name", GANS)
def test_build_and_sample_shape_dtype_range(name, size):
    mod = family(name)
    G = mod.build(size)                                  # the DEFAULTS sizes
    assert G.z_dim == mod.DEFAULTS["z_dim"]
    x = mod.sample(G, 5, seed=0, device="cpu", batch_size=2)
    assert x.shape == (5, 3, size, size) and x.dtype == torch.float32
    assert torch.isfinite(x).all() and x.min() >= -1 and x.max() <= 1
    assert x.std() > 0
    assert mod.sample(G, 0, seed=0, device="cpu").shape == (0, 3, size, size)


@pytest.mark.parametrize("name", GANS)
def test_bad_hyper_parameters_and_sizes_are_rejected(name):
    mod = family(name)
    with pytest.raises(ValueError, match=f"unknown {name} hyper-parameters"):
        mod.build(32, widht=3)
    with pytest.raises(ValueError, match="image_size must be a power of two"):
        mod.build(48)


@pytest.mark.parametrize("name", GANS)
def test_train_changes_weights_and_samples_are_finite(name, noise_pool):
    mod = family(name)
    init = seeded(3, lambda: mod.build(32, **TINY[name]))  # train builds G first from the seed
    calls = []
    G, info = mod.train(noise_pool, 32, steps=3, batch_size=4, seed=3, device="cpu",
                        progress=lambda *a: calls.append(a), **TINY[name])
    assert not G.training
    assert type(G) is type(init)
    assert any(not torch.equal(a, b) for a, b in zip(init.parameters(), G.parameters()))
    assert info["steps"] == 3 and info["family"] == name and info["seconds"] > 0
    assert all(isinstance(info[k], float) for k in ("d_loss", "g_loss", "d_loss_mean", "g_loss_mean"))
    assert [c[0] for c in calls] == [3]
    x = mod.sample(G, 4, seed=0, device="cpu")
    assert x.shape == (4, 3, 32, 32) and torch.isfinite(x).all()


@pytest.mark.parametrize("name", GANS)
def test_training_is_deterministic_for_a_seed(name, noise_pool):
    mod = family(name)
    run = lambda seed: state_copy(mod.train(noise_pool, 32, 3, 4, seed, "cpu", **TINY[name])[0])  # noqa: E731
    a, b, c = run(1), run(1), run(2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_training_leaves_the_global_rng_alone(noise_pool):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    family("dcgan").train(noise_pool, 32, 1, 4, 0, "cpu", **TINY["dcgan"])
    assert torch.equal(torch.rand(3), expected)


def test_pool_of_another_size_is_resized():
    small = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    G, info = family("dcgan").train(small, 32, 1, 4, 0, "cpu", **TINY["dcgan"])
    assert family("dcgan").sample(G, 2, 0, "cpu").shape == (2, 3, 32, 32)


@pytest.mark.parametrize("name", GANS)
def test_sample_is_deterministic_for_a_seed(name):
    mod = family(name)
    G = seeded(0, lambda: mod.build(32, **TINY[name]))
    a = mod.sample(G, 6, seed=5, device="cpu")
    assert torch.equal(a, mod.sample(G, 6, seed=5, device="cpu"))
    # other batch shapes may pick other conv kernels (which ones depends on the CPU): outputs in
    # [-1, 1] after several float32 layers agree to ~1e-5 (measured up to 1.2e-5), so atol 1e-4;
    # other noise or another image order differs by ~0.1
    same = lambda x, y: torch.testing.assert_close(x, y, atol=1e-4, rtol=0)  # noqa: E731
    same(a, mod.sample(G, 6, seed=5, device="cpu", batch_size=4))
    same(a[:3], mod.sample(G, 3, seed=5, device="cpu"))                   # prefix-stable in n
    other = mod.sample(G, 6, seed=6, device="cpu")      # every image differs (untrained: tiny scale)
    assert (a - other).abs().amax(dim=(1, 2, 3)).min() > 0.01 * a.abs().max()


def test_spectral_norm_bounds_the_sngan_discriminator(noise_pool):
    hp = TINY["sngan"]
    G, D = seeded(0, lambda: (sngan.build(32, **hp), sngan.Discriminator(32, hp["d_width"])))
    layers = [m for m in D.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert layers and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    train_hp = gan.split(resolve("sngan", sngan.DEFAULTS, {}))[1]
    gan.train(G, D, noise_pool, 32, 5, 4, 0, "cpu", **train_hp)
    D.eval()                                    # eval: the weights from the stored power iteration
    with torch.no_grad():
        sigma = [torch.linalg.matrix_norm(m.weight.flatten(1), ord=2) for m in layers]
        raw = [torch.linalg.matrix_norm(m.parametrizations.weight.original.flatten(1), ord=2)
               for m in layers]
    assert all(abs(s - 1) < 0.05 for s in sigma), sigma   # power iteration: ~1, not exactly
    assert max(abs(r - 1) for r in raw) > 0.1, raw      # without the normalisation they are not ~1


def test_progan_upsample_mode_changes_the_generator():
    nearest = seeded(0, lambda: progan.build(32, **TINY["progan"]))
    bilinear = seeded(0, lambda: progan.build(32, upsample="bilinear", **TINY["progan"]))
    modes = lambda G: {m.mode for m in G.modules() if isinstance(m, progan.Upsample)}  # noqa: E731
    assert modes(nearest) == {"nearest"} and modes(bilinear) == {"bilinear"}
    bilinear.load_state_dict(nearest.state_dict())          # same weights, other upsampling
    a = progan.sample(nearest, 2, 0, "cpu")
    b = progan.sample(bilinear, 2, 0, "cpu")
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="upsample"):
        progan.build(32, upsample="bicubic")


def test_progan_equalized_lr_scales_at_run_time():
    eq = seeded(0, lambda: progan.build(32, **TINY["progan"]))
    he = seeded(0, lambda: progan.build(32, equalized_lr=False, **TINY["progan"]))
    conv_eq, conv_he = eq.first[2], he.first[2]
    assert conv_eq.runtime_scale != 1.0 and conv_he.runtime_scale == 1.0
    # same function at init: the He constant sits in the weights or in the forward pass
    torch.testing.assert_close(conv_eq.weight * conv_eq.runtime_scale, conv_he.weight)
    torch.testing.assert_close(progan.sample(eq, 2, 0, "cpu"), progan.sample(he, 2, 0, "cpu"))


def test_gan_loop_rejects_bad_settings(noise_pool):
    G, D = sngan.build(32, **TINY["sngan"]), sngan.Discriminator(32, 8)
    with pytest.raises(ValueError, match="loss"):
        gan.train(G, D, noise_pool, 32, 1, 4, 0, "cpu", lr_g=1e-4, lr_d=1e-4, loss="wasserstein")
    with pytest.raises(ValueError, match="ema"):
        gan.train(G, D, noise_pool, 32, 1, 4, 0, "cpu", lr_g=1e-4, lr_d=1e-4, ema=1.0)


@pytest.mark.parametrize("name", GANS)
def test_trained_generator_survives_save_and_load(name, noise_pool, tmp_path):
    from modelfp import testbed
    hp = {**TINY[name], "betas": [0.5, 0.99]}           # as a JSON config would give them
    G, info = family(name).train(noise_pool, 32, 2, 4, 0, "cpu", **hp)
    testbed.save(G, name, 32, hp, info, tmp_path / "g.pt")
    loaded, payload = testbed.load(tmp_path / "g.pt")
    assert payload["info"]["steps"] == 2
    assert torch.equal(family(name).sample(G, 3, 0, "cpu"), family(name).sample(loaded, 3, 0, "cpu"))
