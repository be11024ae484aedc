"""Test-bed family "vit": a transformer generator with a patch-wise linear decoder (testbed/vit.py)."""

import pytest
import torch

from conftest import state_copy
from modelfp.testbed import FAMILIES, family, gan, sngan, vit
from modelfp.testbed.common import resolve, seeded

pytestmark = pytest.mark.usefixtures("one_thread")   # conftest.py

# tiny sizes: the tests check behaviour, not quality
TINY = {"z_dim": 8, "dim": 16, "depth": 1, "heads": 2, "d_width": 8}


def test_family_is_registered_with_the_interface():
    assert family("vit") is vit
    assert FAMILIES["vit"].kind == "transformer" and FAMILIES["vit"].group == "emerging"
    assert callable(vit.build) and callable(vit.train) and callable(vit.sample)
    assert set(gan.TRAIN_KEYS) <= set(vit.DEFAULTS)


@pytest.mark.parametrize("size", [16, 32])
def test_build_and_sample_shape_dtype_range(size):
    G = vit.build(size)                                  # the DEFAULTS sizes
    assert G.z_dim == vit.DEFAULTS["z_dim"] and G.image_size == size
    assert G.pos.shape == (1, (size // vit.DEFAULTS["patch"]) ** 2, vit.DEFAULTS["dim"])
    x = vit.sample(G, 5, seed=0, device="cpu", batch_size=2)
    assert x.shape == (5, 3, size, size) and x.dtype == torch.float32
    assert torch.isfinite(x).all() and x.min() >= -1 and x.max() <= 1
    assert x.std() > 0
    assert vit.sample(G, 0, seed=0, device="cpu").shape == (0, 3, size, size)
    # batches of 2 vs 3: kernels may differ by batch shape and CPU; outputs in [-1, 1] after
    # float32 layers agree to ~1e-5, so atol 1e-4 (other noise differs by ~0.1)
    torch.testing.assert_close(x[:3], vit.sample(G, 3, seed=0, device="cpu"), atol=1e-4, rtol=0)


def test_bad_hyper_parameters_and_sizes_are_rejected():
    with pytest.raises(ValueError, match="unknown vit hyper-parameters"):
        vit.build(32, detph=3)
    with pytest.raises(ValueError, match="patch"):
        vit.build(32, patch=3)                           # 3 does not divide 32
    with pytest.raises(ValueError, match="patch"):
        vit.build(16, patch=32)
    with pytest.raises(ValueError, match="heads"):
        vit.build(32, dim=16, heads=3)
    with pytest.raises(ValueError, match="vit: image_size must be a power of two"):
        vit.build(48)
    with pytest.raises(ValueError, match="unknown vit hyper-parameters"):
        vit.train(torch.zeros(4, 3, 32, 32, dtype=torch.uint8), 32, 1, 2, 0, "cpu", width=8)


@pytest.mark.parametrize("patch", [2, 4, 8])
def test_one_token_decodes_to_exactly_its_own_patch(patch):
    G = seeded(0, lambda: vit.build(32, patch=patch, **TINY)).eval()
    grid = 32 // patch
    k = grid + 2                                         # row 1, column 2: not on the diagonal
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        base = G(z)
        torch.testing.assert_close(base, G.decode(G.tokens(z)), atol=0, rtol=0)
        # nudge token k's activation after the last transformer block, inside the real forward pass
        def nudge(module, inputs, out):
            return out.index_add(1, torch.tensor([k]), torch.ones(2, 1, out.shape[2]))

        handle = G.blocks[-1].register_forward_hook(nudge)
        try:
            moved = G(z)
        finally:
            handle.remove()
    inside = torch.zeros(32, 32, dtype=torch.bool)
    inside[patch:2 * patch, 2 * patch:3 * patch] = True
    diff = (moved - base).abs()
    assert torch.equal(diff[..., ~inside], torch.zeros_like(diff[..., ~inside]))   # no other pixel moves
    assert (diff[..., inside] > 0).float().mean() > 0.9  # ... and (nearly) all of its own pixels do


def test_the_discriminator_is_sngans_spectrally_normalised_one():
    D = vit.discriminator(32, resolve("vit", vit.DEFAULTS, {"d_width": 8}))
    assert isinstance(D, sngan.Discriminator)
    layers = [m for m in D.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert layers and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    assert vit.DEFAULTS["loss"] == "hinge"


def test_train_changes_weights_and_samples_are_finite(noise_pool):
    init = seeded(3, lambda: vit.build(32, **TINY))  # train builds G first from the seed
    calls = []
    G, info = vit.train(noise_pool, 32, steps=3, batch_size=4, seed=3, device="cpu",
                        progress=lambda *a: calls.append(a), **TINY)
    assert not G.training and type(G) is vit.Generator
    assert any(not torch.equal(a, b) for a, b in zip(init.parameters(), G.parameters()))
    assert info["steps"] == 3 and info["family"] == "vit" and info["loss"] == "hinge"
    assert all(isinstance(info[k], float) for k in ("d_loss", "g_loss", "d_loss_mean", "g_loss_mean"))
    assert [c[0] for c in calls] == [3]
    x = vit.sample(G, 4, seed=0, device="cpu")
    assert x.shape == (4, 3, 32, 32) and torch.isfinite(x).all()


def test_training_is_deterministic_for_a_seed(noise_pool):
    run = lambda seed: state_copy(vit.train(noise_pool, 32, 3, 4, seed, "cpu", **TINY)[0])  # noqa: E731
    a, b, c = run(1), run(1), run(2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_trained_generator_survives_save_and_load(noise_pool, tmp_path):
    from modelfp import testbed
    hp = {**TINY, "patch": 8, "betas": [0.0, 0.99]}      # as a JSON config would give them
    G, info = vit.train(noise_pool, 32, 2, 4, 0, "cpu", **hp)
    testbed.save(G, "vit", 32, hp, info, tmp_path / "g.pt")
    loaded, payload = testbed.load(tmp_path / "g.pt")
    assert payload["info"]["steps"] == 2 and loaded.patch == 8
    assert torch.equal(vit.sample(G, 3, 0, "cpu"), vit.sample(loaded, 3, 0, "cpu"))
