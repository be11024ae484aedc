"""Test-bed family "flow": a Glow/RealNVP-style multi-scale normalizing flow."""

import math

import pytest
import torch
from torch.autograd.functional import jacobian

from conftest import smooth_pool
from modelfp import testbed
from modelfp.testbed import family, flow

pytestmark = pytest.mark.usefixtures("one_thread")   # conftest.py

TINY = {"steps_per_scale": 2, "hidden": 16}


def scramble(model, seed=0, scale=0.1):
    """Random ActNorm parameters and random values in the zero-initialised convs (last conv of the
    couplings, split priors), so no layer is the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            zero_conv = isinstance(m, torch.nn.Conv2d) and not m.weight.any()
            for p in (m.bias, m.logs) if isinstance(m, flow.ActNorm) else \
                     (m.weight, m.bias) if zero_conv else ():
                p.copy_(scale * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return model


def images(n, size, seed=0, dtype=torch.float32):
    return (torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1).to(dtype)


def brute_logdet(f, x):
    """log |det| of the Jacobian of f at the single image x (autograd, then slogdet)."""
    d = x.numel()
    return torch.linalg.slogdet(jacobian(f, x).reshape(d, d))[1]


# ---------------------------------------------------------------------------------------------
# Invertibility and log-determinants

def test_family_registry_finds_flow():
    assert family("flow") is flow
    assert testbed.FAMILIES["flow"].kind == "flow" and testbed.FAMILIES["flow"].group == "emerging"


def test_squeeze_is_a_permutation_that_unsqueeze_undoes():
    x = torch.arange(2 * 3 * 4 * 4.0).view(2, 3, 4, 4)
    y = flow.squeeze(x)
    assert y.shape == (2, 12, 2, 2)
    assert torch.equal(y.flatten().sort().values, x.flatten())
    assert torch.equal(y[0, :4, 0, 0], x[0, 0, :2, :2].flatten())   # one 2x2 block -> 4 channels
    assert torch.equal(flow.unsqueeze(y), x)


@pytest.mark.parametrize("size,hp", [(8, TINY), (32, {})])
def test_inverse_of_forward_is_the_identity_after_actnorm_init(size, hp):
    torch.manual_seed(0)
    model = scramble(flow.build(size, **hp))
    x = images(6, size)
    model.initialize(x)
    zs, logdet = model(x)
    assert [z.shape[1:] for z in zs] == [torch.Size(s) for s in model.latent_shapes]
    assert sum(z[0].numel() for z in zs) == model.dims == 3 * size * size
    assert torch.isfinite(logdet).all() and logdet.shape == (6,)
    torch.testing.assert_close(model.inverse(zs), x, atol=1e-4, rtol=0)
    z = torch.cat([z.flatten(1) for z in zs], 1)
    torch.testing.assert_close(model.inverse(model.unflatten(z)), x, atol=1e-4, rtol=0)


def test_actnorm_init_normalises_the_first_batch_per_channel():
    torch.manual_seed(0)
    model = flow.build(16, **TINY)
    x = 0.3 * images(16, 16) + 0.2
    model.initialize(x)
    first = model.levels[0][0].layers[0]
    y, _ = first(flow.squeeze(x))
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(12), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(dim=(0, 2, 3)), torch.ones(12), atol=1e-4, rtol=0)
    assert not first.pending


@pytest.mark.parametrize("layer", ["actnorm", "invconv", "coupling", "step"])
def test_layer_logdet_matches_the_brute_force_jacobian(layer):
    torch.manual_seed(0)
    channels = 4
    module = {"actnorm": lambda: flow.ActNorm(channels), "invconv": lambda: flow.InvConv1x1(channels),
              "coupling": lambda: flow.AffineCoupling(channels, 8),
              "step": lambda: flow.FlowStep(channels, 8)}[layer]()
    module = scramble(module.double(), scale=0.5)
    x = torch.randn(1, channels, 4, 4, dtype=torch.float64)
    y, logdet = module(x)
    assert logdet.shape == (1,)
    torch.testing.assert_close(logdet[0], brute_logdet(lambda v: module(v)[0], x), atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(module.inverse(y), x, atol=1e-10, rtol=0)


def test_whole_flow_logdet_matches_the_brute_force_jacobian():
    torch.manual_seed(0)
    model = scramble(flow.build(8, **TINY).double(), scale=0.3)
    x = images(4, 8, dtype=torch.float64)
    model.initialize(x)
    with torch.no_grad():
        _, logdet = model(x[:1])
    brute = brute_logdet(lambda v: torch.cat([z.flatten(1) for z in model(v)[0]], 1), x[:1])
    assert abs(float(logdet[0])) > 10                  # a real volume change, not the identity
    torch.testing.assert_close(logdet[0], brute, atol=1e-7, rtol=1e-9)


# ---------------------------------------------------------------------------------------------
# Likelihood in bits per dimension: known values

def test_bits_per_dim_of_the_uniform_density_over_the_256_bins_is_8():
    dims = 3 * 32 * 32
    # the dequantised data live in [-1 - BIN/2, 1 + BIN/2]: 256 bins of width BIN
    log_uniform = torch.tensor(-dims * math.log(256 * flow.BIN), dtype=torch.float64)
    assert float(flow.bits_per_dim(log_uniform, dims)) == pytest.approx(8.0, abs=1e-12)
    # a density twice as high everywhere saves exactly one bit per image
    assert float(flow.bits_per_dim(log_uniform + math.log(2), dims)) == pytest.approx(8.0 - 1 / dims)


def test_untrained_flow_is_orthogonal_so_its_bpd_is_the_gaussian_one():
    """Before the ActNorm init, a fresh flow is squeezes, splits, rotations and identity couplings:
    ||z|| = ||x||, log-det 0, so its bpd is that of N(0, I) evaluated at the dequantised data."""
    torch.manual_seed(0)
    model = flow.build(16, **TINY)
    x = images(5, 16, seed=1)
    with torch.no_grad():
        zs, logdet = model(x)
    # zero up to the float32 rounding of the rotations (measured 3e-5 over 256 pixels x 4 convs)
    torch.testing.assert_close(logdet, torch.zeros(5), atol=1e-4, rtol=0)
    torch.testing.assert_close(sum(z.pow(2).flatten(1).sum(1) for z in zs), x.pow(2).flatten(1).sum(1),
                               rtol=1e-5, atol=0)
    y = flow.dequantize(x, torch.Generator().manual_seed(3))
    assert (y - x).abs().max() <= flow.BIN / 2 and (y - x).abs().max() > 0.9 * flow.BIN / 2
    d = 3 * 16 * 16
    gauss = -0.5 * (y.pow(2).flatten(1).sum(1) + d * math.log(2 * math.pi))
    expected = (-gauss / (d * math.log(2)) + math.log2(127.5)).mean()
    with torch.no_grad():
        got = flow.loss(model, x, torch.Generator().manual_seed(3))
    torch.testing.assert_close(got, expected)
    assert 7.5 < float(got) < 9.5            # ~8.6: about 8 bits, as an untrained model should


# ---------------------------------------------------------------------------------------------
# Training

def test_flow_training_lowers_the_bpd_and_changes_every_parameter():
    pool = smooth_pool()
    torch.manual_seed(0)                       # what train does for the initial weights of seed 0
    initial = flow.build(16, **TINY)
    calls = []
    rng = torch.random.get_rng_state()
    model, info = flow.train(pool, 16, 60, 16, seed=0, device="cpu",
                             progress=lambda s, l: calls.append((s, l)), lr=3e-3, warmup=10, **TINY)
    assert torch.equal(torch.random.get_rng_state(), rng)    # the global RNG is left alone
    assert not model.training
    assert info["family"] == "flow" and info["steps"] == 60 and info["seconds"] > 0
    assert info["skipped"] == 0 and info["lr"] == 3e-3 and info["hidden"] == 16
    assert [s for s, _ in calls] == [50, 60]
    assert all(not torch.equal(p, q) for p, q in zip(initial.parameters(), model.parameters()))
    x = pool.float() / 127.5 - 1
    with torch.no_grad():
        before = float(flow.loss(initial, x, torch.Generator().manual_seed(1)))
        after = float(flow.loss(model, x, torch.Generator().manual_seed(1)))
    assert after < before - 2.0, (before, after)               # measured: 8.4 -> 4.7
    assert info["bpd"] < info["bpd_first"] - 1.0, info         # measured: 6.9 -> 5.3


def test_flow_training_deterministic_for_a_seed():
    pool = smooth_pool(16)
    a, ia = flow.train(pool, 8, 4, 8, seed=7, device="cpu", **TINY)
    b, ib = flow.train(pool, 8, 4, 8, seed=7, device="cpu", **TINY)
    c, _ = flow.train(pool, 8, 4, 8, seed=8, device="cpu", **TINY)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k
    assert ia["bpd"] == ib["bpd"] and ia["bpd_first"] == ib["bpd_first"]
    assert any(not torch.equal(v, w) for v, w in zip(a.state_dict().values(), c.state_dict().values()))


def test_flow_trains_on_a_pool_of_another_size_and_survives_save_and_load(tmp_path):
    pool = smooth_pool(8, size=32)
    model, info = flow.train(pool, 16, 2, 4, seed=0, device="cpu", **TINY)
    assert info["pixels"] == 3 * 16 * 16
    testbed.save(model, "flow", 16, TINY, info, tmp_path / "flow.pt")
    loaded, payload = testbed.load(tmp_path / "flow.pt")
    assert payload["family"] == "flow" and not loaded.training
    assert torch.equal(flow.sample(loaded, 3, 0, "cpu"), flow.sample(model, 3, 0, "cpu"))


# ---------------------------------------------------------------------------------------------
# Sampling and validation

@pytest.fixture(scope="module")
def initialised():
    torch.manual_seed(0)
    model = scramble(flow.build(16, **TINY))
    model.initialize(images(8, 16))
    return model.eval()


def test_flow_sample_shape_range_and_temperature(initialised):
    x = flow.sample(initialised, 5, seed=0, device="cpu")
    assert x.shape == (5, 3, 16, 16) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0.05
    # temperature 0 is the image of z = 0, whatever the seed
    with torch.no_grad():
        mode = initialised.inverse(initialised.unflatten(torch.zeros(1, initialised.dims))).clamp(-1, 1)
    zero = flow.sample(initialised, 2, seed=5, device="cpu", temperature=0.0)
    assert torch.equal(zero[0], zero[1])
    # batch 2 vs 1 may pick other kernels (by CPU): float32 rounding ~1e-5 of [-1, 1], atol 1e-4
    torch.testing.assert_close(zero[:1], mode, atol=1e-4, rtol=0)
    assert flow.sample(initialised, 0, 0, "cpu").shape == (0, 3, 16, 16)


def test_flow_sample_deterministic_per_seed_prefix_stable_and_chunk_free(initialised, monkeypatch):
    a = flow.sample(initialised, 6, seed=3, device="cpu")
    assert torch.equal(a, flow.sample(initialised, 6, seed=3, device="cpu"))
    # other batch shapes / chunks may pick other kernels (by CPU): outputs in [-1, 1] after many
    # float32 layers agree to ~1e-5, so atol 1e-4; other noise differs by ~0.1
    torch.testing.assert_close(a[:2], flow.sample(initialised, 2, seed=3, device="cpu"), atol=1e-4, rtol=0)
    assert (a - flow.sample(initialised, 6, seed=4, device="cpu")).abs().mean() > 0.01
    monkeypatch.setattr(flow, "SAMPLE_CHUNK", 4)
    torch.testing.assert_close(flow.sample(initialised, 6, seed=3, device="cpu"), a, atol=1e-4, rtol=0)


def test_flow_rejects_bad_sizes_and_hyper_parameters():
    for size in (4, 6, 24, 48):
        with pytest.raises(ValueError, match="flow: image_size must be a power of two"):
            flow.build(size)
    with pytest.raises(ValueError, match="scales=3 needs"):
        flow.build(8, scales=3)
    assert flow.build(16, scales=3).latent_shapes[-1] == (48, 2, 2)
    with pytest.raises(ValueError, match="unknown flow hyper-parameters"):
        flow.build(16, hiden=8)
    with pytest.raises(ValueError, match="unknown flow hyper-parameters"):
        flow.train(smooth_pool(4), 16, 1, 2, 0, "cpu", temperature=0.5)
