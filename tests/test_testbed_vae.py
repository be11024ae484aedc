"""Test-bed families "vae" (trained here) and "pretrained_dcgan" (weights from gan-face-generate)."""

import importlib.util

import pytest
import torch

from conftest import smooth_pool
from modelfp.testbed import family
from modelfp.testbed import pretrained_dcgan as pdcgan
from modelfp.testbed import vae

pytestmark = pytest.mark.usefixtures("one_thread")   # conftest.py

TINY = {"z_dim": 8, "width": 8}


def batch_loss(model, pool, beta=1.0):
    """Loss on the whole pool with fixed reparametrisation noise."""
    x = pool.float() / 127.5 - 1.0
    with torch.no_grad():
        recon, mu, logvar = model(x, generator=torch.Generator().manual_seed(123))
    return [float(v) for v in vae.vae_loss(x, recon, mu, logvar, beta)]


# ---------------------------------------------------------------------------------------------
# VAE

def test_family_registry_finds_both_modules():
    assert family("vae") is vae
    assert family("pretrained_dcgan") is pdcgan


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("upsample", ["nearest", "transposed"])
def test_vae_build_and_sample_shape_dtype_range(size, upsample):
    model = vae.build(size, upsample=upsample, **TINY)
    assert model.z_dim == TINY["z_dim"]
    assert model.decode(torch.zeros(2, model.z_dim)).shape == (2, 3, size, size)
    x = vae.sample(model, 5, seed=0, device="cpu")
    assert x.shape == (5, 3, size, size) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    recon, mu, logvar = model(x)
    assert recon.shape == x.shape and mu.shape == logvar.shape == (5, TINY["z_dim"])


def test_vae_sample_deterministic_per_seed_and_prefix_stable():
    model = vae.build(32, **TINY)
    a = vae.sample(model, 6, seed=3, device="cpu")
    assert torch.equal(a, vae.sample(model, 6, seed=3, device="cpu"))     # same shapes, same process
    # every prefix: the same noise per image. Other batch shapes may pick other conv kernels (by
    # CPU): outputs in [-1, 1] after several float32 layers agree to ~1e-5, so atol 1e-4, while
    # another image's noise differs by ~0.1 (n = 1, 3, 5 caught a (n, z_dim) block draw)
    for n in range(1, 6):
        torch.testing.assert_close(a[:n], vae.sample(model, n, seed=3, device="cpu"), atol=1e-4, rtol=0)
    other = vae.sample(model, 6, seed=4, device="cpu")                    # every image differs
    assert (a - other).abs().amax(dim=(1, 2, 3)).min() > 1e-2


def test_vae_rejects_bad_sizes_and_hyper_parameters():
    for size in (4, 24, 48):
        with pytest.raises(ValueError, match="vae: image_size must be a power of two"):
            vae.build(size)
    with pytest.raises(ValueError, match="unknown vae hyper-parameters"):
        vae.build(32, zdim=8)
    with pytest.raises(ValueError, match="upsample"):
        vae.build(32, upsample="bilinear")


def test_vae_loss_beta_weights_the_kl_exactly():
    g = torch.Generator().manual_seed(0)
    x, recon = torch.rand(4, 3, 8, 8, generator=g) * 2 - 1, torch.rand(4, 3, 8, 8, generator=g) * 2 - 1
    mu, logvar = torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g)
    l1, rec1, kl1 = vae.vae_loss(x, recon, mu, logvar, 1.0)
    l4, rec4, kl4 = vae.vae_loss(x, recon, mu, logvar, 4.0)
    assert torch.equal(rec1, rec4) and torch.equal(kl1, kl4)
    torch.testing.assert_close(l4 - l1, 3 * kl1)
    # the terms themselves: per-image sums, batch means; KL of the prior itself is 0
    torch.testing.assert_close(rec1, (recon - x).pow(2).sum() / 4)
    zero = vae.vae_loss(x, x, torch.zeros(4, 5), torch.zeros(4, 5), 1.0)
    assert float(zero[0]) == 0.0


def test_vae_training_learns_and_changes_parameters():
    pool = smooth_pool()
    torch.manual_seed(0)                       # what train does for the initial weights of seed 0
    initial = vae.build(16, **TINY)
    calls = []
    rng = torch.random.get_rng_state()
    model, info = vae.train(pool, 16, 60, 16, seed=0, device="cpu",
                            progress=lambda s, l: calls.append((s, l)), lr=3e-3, **TINY)
    assert torch.equal(torch.random.get_rng_state(), rng)    # the global RNG is left alone
    assert not model.training
    assert info["steps"] == 60 and info["seconds"] > 0 and info["beta"] == 1.0
    assert [s for s, _ in calls] == [50, 60]
    changed = [not torch.equal(p, q) for p, q in zip(initial.parameters(), model.parameters())]
    assert all(changed)
    before, after = batch_loss(initial, pool), batch_loss(model, pool)
    assert after[0] < 0.7 * before[0], (before, after)     # measured: 105 -> 57
    assert info["recon"] < 0.7 * info["recon_first"]


def test_vae_training_deterministic_for_a_seed():
    pool = smooth_pool(16)
    a, ia = vae.train(pool, 16, 5, 8, seed=7, device="cpu", **TINY)
    b, ib = vae.train(pool, 16, 5, 8, seed=7, device="cpu", **TINY)
    c, _ = vae.train(pool, 16, 5, 8, seed=8, device="cpu", **TINY)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k
    assert ia["loss"] == ib["loss"]
    assert any(not torch.equal(v, w) for v, w in zip(a.state_dict().values(), c.state_dict().values()))


def test_vae_trains_on_a_pool_of_another_size():
    pool = smooth_pool(8, size=32)
    model, info = vae.train(pool, 16, 2, 4, seed=0, device="cpu", **TINY)
    assert vae.sample(model, 3, 0, "cpu").shape == (3, 3, 16, 16)
    assert info["pixels"] == 3 * 16 * 16


def test_larger_beta_gives_lower_kl():
    pool = smooth_pool()
    kl = {}
    for beta in (1.0, 4.0):
        model, _ = vae.train(pool, 16, 60, 16, seed=0, device="cpu", lr=3e-3, beta=beta, **TINY)
        kl[beta] = batch_loss(model, pool)[2]
    assert kl[4.0] < 0.5 * kl[1.0], kl                      # measured: 0.08 vs 5.5


# ---------------------------------------------------------------------------------------------
# Pretrained DCGAN

needs_weights = pytest.mark.skipif(
    importlib.util.find_spec(pdcgan.PACKAGE) is None,
    reason=f"gan-face-generate is not installed (its weights are the model); install with: "
           f"{pdcgan.INSTALL}")


def test_pretrained_dcgan_rejects_other_sizes_and_hyper_parameters():
    with pytest.raises(ValueError, match="64x64"):
        pdcgan.build(32)
    with pytest.raises(ValueError, match="64x64"):
        pdcgan.train(None, 128, 10, 8, 0, "cpu")
    with pytest.raises(ValueError, match="no hyper-parameters"):
        pdcgan.build(64, lr=1e-3)
    assert pdcgan.build(64)(torch.zeros(1, pdcgan.NZ, 1, 1)).shape == (1, 3, 64, 64)


def test_pretrained_dcgan_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(pdcgan, "PACKAGE", "modelfp_no_such_package")
    with pytest.raises(RuntimeError, match="pip install --no-deps gan-face-generate==1.1.1"):
        pdcgan.train(None, 64, 0, 0, 0, "cpu")


@pytest.fixture(scope="module")
def pretrained():
    model, info = pdcgan.train(None, 64, 1000, 32, 0, "cpu")
    return model, info


@needs_weights
def test_pretrained_dcgan_loads_and_says_it_was_not_trained_here(pretrained):
    model, info = pretrained
    assert info["steps"] == 0 and "not trained here" in info["note"]
    assert (info["nz"], info["ngf"]) == (model.nz, model.ngf) == (100, 64)
    assert not model.training
    fresh = pdcgan.build(64)
    assert fresh.state_dict().keys() == model.state_dict().keys()


@needs_weights
def test_pretrained_dcgan_samples(pretrained):
    model, _ = pretrained
    a = pdcgan.sample(model, 4, seed=0, device="cpu")
    assert a.shape == (4, 3, 64, 64) and a.dtype == torch.float32
    assert a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, pdcgan.sample(model, 4, seed=0, device="cpu"))
    # prefix-stable in n: the same noise per image (other batch shapes may pick other conv
    # kernels: float32 rounding through 5 layers ~1e-5, while other noise differs by ~0.1)
    for k in (1, 3):
        torch.testing.assert_close(pdcgan.sample(model, k, seed=0, device="cpu"), a[:k], atol=1e-4, rtol=0)
    b = pdcgan.sample(model, 4, seed=1, device="cpu")
    assert (a - b).abs().mean() > 0.1
    # real images, not noise: spread over the range and varied across samples
    assert a.std() > 0.2 and (a[0] - a[1]).abs().mean() > 0.1
