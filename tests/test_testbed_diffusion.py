"""Test-bed family "ddpm": noise schedule, L_simple, the U-Net, DDPM and DDIM sampling."""

import math

import pytest
import torch
import torch.nn as nn

from conftest import smooth_pool
from modelfp import testbed
from modelfp.testbed import diffusion

pytestmark = pytest.mark.usefixtures("one_thread")   # conftest.py

TINY = {"width": 8, "mults": (1, 2), "T": 50}


def scrambled(size=16, seed=0, **hp):
    """A tiny model whose zero-initialised layers are made random, so it predicts non-zero noise."""
    torch.manual_seed(seed)
    model = diffusion.build(size, **{**TINY, **hp})
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(0, 0.1)
    return model.eval()


class Oracle(nn.Module):
    """The exact noise predictor for data that is the single image x0:
    eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t)."""

    def __init__(self, x0, alphas_cumprod):
        super().__init__()
        self.x0, self.abar = x0, alphas_cumprod

    def forward(self, x, t):
        abar = self.abar[t.cpu()].view(-1, 1, 1, 1).float()
        return (x - abar.sqrt() * self.x0) / (1 - abar).sqrt()


def pool_loss(model, pool, seed=123, repeats=4):
    """L_simple on the whole pool with fixed t and noise (several draws: t makes it noisy)."""
    x = pool.float() / 127.5 - 1.0
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return sum(float(diffusion.loss(model, x, g)) for _ in range(repeats)) / repeats


# ---------------------------------------------------------------------------------------------
# Schedule

def test_family_registry_finds_the_module():
    assert testbed.family("ddpm") is diffusion
    assert testbed.FAMILIES["ddpm"].kind == "diffusion"


@pytest.mark.parametrize("kind", diffusion.SCHEDULES)
@pytest.mark.parametrize("T", [2, 10, 100, 1000])
def test_alphas_cumprod_strictly_decreasing_in_open_unit_interval(kind, T):
    abar = diffusion.build(8, width=4, mults=(1,), T=T, schedule=kind).alphas_cumprod
    assert abar.shape == (T,) and abar.dtype == torch.float64
    assert (abar > 0).all() and (abar < 1).all()
    assert (abar[1:] < abar[:-1]).all()


def test_schedules_known_values():
    b = diffusion.betas(1000, "linear")
    assert math.isclose(b[0], 1e-4) and math.isclose(b[-1], 0.02)           # Ho et al.
    assert math.isclose(b[1] - b[0], (0.02 - 1e-4) / 999)
    abar = torch.cumprod(1 - b, 0)
    assert 4e-5 < abar[-1] < 5e-5                                            # x_T is nearly pure noise
    short = diffusion.betas(100, "linear")                                   # ends scaled by 1000/T
    assert math.isclose(short[0], 1e-3) and math.isclose(short[-1], 0.2)
    T, s = 1000, 0.008                                                       # Nichol & Dhariwal eq. 17
    abar = torch.cumprod(1 - diffusion.betas(T, "cosine"), 0)
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2        # noqa: E731
    for t in (0, 250, 500, 900):
        assert math.isclose(abar[t], f(t + 1) / f(0), rel_tol=1e-9)


def test_timesteps_evenly_spaced_with_both_ends():
    assert diffusion.timesteps(50, 50) == list(range(50))
    ts = diffusion.timesteps(1000, 5)
    assert ts == [0, 250, 500, 749, 999]
    assert diffusion.timesteps(1000, 1) == [999]
    for bad in (0, 1001):
        with pytest.raises(ValueError, match="sampling steps"):
            diffusion.timesteps(1000, bad)


def test_posterior_matches_gaussian_conditioning():
    """q(x_{t-1} | x_t, x_0) from Bayes' rule with x_{t-1} ~ N(sqrt(abar') x0, 1 - abar') and
    x_t | x_{t-1} ~ N(sqrt(alpha) x_{t-1}, beta): precision-weighted mean and variance."""
    abar = torch.cumprod(1 - diffusion.betas(1000, "linear"), 0).tolist()
    x0, xt = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    for t, prev in ((1, 0), (500, 499), (999, 998), (999, 749), (300, 3)):   # last two: respaced
        a, ap = abar[t], abar[prev]
        alpha = a / ap
        var = 1 / (1 / (1 - ap) + alpha / (1 - alpha))
        mean = var * (math.sqrt(ap) * x0 / (1 - ap) + math.sqrt(alpha) * xt / (1 - alpha))
        got_mean, got_var = diffusion.posterior(a, ap, x0, xt)
        torch.testing.assert_close(got_mean, mean)
        assert math.isclose(got_var, var, rel_tol=1e-9)
    # the first step (abar_prev = 1) returns x0 exactly, without noise
    m, v = diffusion.posterior(abar[0], 1.0, x0, xt)
    torch.testing.assert_close(m, x0)
    assert v == 0.0


# ---------------------------------------------------------------------------------------------
# Model and loss

@pytest.mark.parametrize("attention", [True, False])
def test_unet_shapes_at_several_sizes_and_zero_initial_output(attention):
    torch.manual_seed(0)
    model = diffusion.build(16, width=8, mults=(1, 2, 2), attention=attention)
    assert model.factor == 4
    for size in (16, 8, 32, 12):
        x = torch.randn(2, 3, size, size)
        out = model(x, torch.tensor([0, 999]))
        assert out.shape == x.shape
        assert torch.equal(out, torch.zeros_like(out))       # zero-initialised output conv


def test_state_dict_holds_only_the_network():
    model = diffusion.build(16, **TINY)
    assert all(k.startswith("unet.") for k in model.state_dict())
    assert not any("alphas" in k for k in model.state_dict())


def test_loss_equals_hand_computed_mse():
    model = scrambled()
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    got = diffusion.loss(model, x, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)                      # t first, then the noise
    t = torch.randint(TINY["T"], (6,), generator=g)
    noise = torch.randn(x.shape, generator=g)
    scale = 1000 / TINY["T"]
    abar = torch.cumprod(1 - torch.linspace(1e-4 * scale, 0.02 * scale, TINY["T"], dtype=torch.float64), 0)
    a = abar[t].view(-1, 1, 1, 1)
    xt = (a.sqrt() * x + (1 - a).sqrt() * noise).float()
    want = ((model(xt, t) - noise) ** 2).mean()
    torch.testing.assert_close(got, want)
    # the untrained model predicts zero noise, so its loss is the noise's mean square
    untrained = diffusion.build(16, **TINY)
    torch.testing.assert_close(diffusion.loss(untrained, x, torch.Generator().manual_seed(5)),
                               (noise ** 2).mean())


# ---------------------------------------------------------------------------------------------
# Sampling

@pytest.mark.parametrize("sampler,steps", [("ddpm", None), ("ddpm", 7), ("ddim", None), ("ddim", 50)])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_oracle_noise_model_recovers_its_single_data_point(sampler, steps, eta):
    """With the exact noise of a one-point data set every correct sampler ends at that point."""
    model = diffusion.build(16, **TINY, schedule="cosine")
    x0 = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0)) * 1.8 - 0.9
    model.unet = Oracle(x0, model.alphas_cumprod)
    out = diffusion.sample(model, 3, seed=0, device="cpu", sampler=sampler, steps=steps, eta=eta)
    torch.testing.assert_close(out, x0.expand(3, -1, -1, -1), atol=1e-4, rtol=0)


def test_ddim_with_eta_one_is_the_ddpm_step():
    """Song et al.: sigma(eta=1) is the posterior standard deviation, so with the same noise the
    DDIM and ancestral DDPM chains coincide (full and respaced)."""
    model = scrambled()
    for steps in (TINY["T"], 9):
        a = diffusion.sample(model, 3, 4, "cpu", sampler="ddim", steps=steps, eta=1.0)
        b = diffusion.sample(model, 3, 4, "cpu", sampler="ddpm", steps=steps)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_ddim_eta_zero_depends_only_on_the_initial_noise(monkeypatch):
    model = scrambled()
    a = diffusion.sample(model, 3, 2, "cpu", sampler="ddim", steps=10)
    assert torch.equal(a, diffusion.sample(model, 3, 2, "cpu", sampler="ddim", steps=10))
    assert not torch.allclose(a, diffusion.sample(model, 3, 3, "cpu", sampler="ddim", steps=10))
    calls, noise = [], diffusion._noise

    def other_step_noise(gens, shape, device):      # x_T as before, then different noise per step
        calls.append(1)
        return noise(gens, shape, device) * (1 if len(calls) == 1 else -3)

    monkeypatch.setattr(diffusion, "_noise", other_step_noise)
    assert torch.equal(a, diffusion.sample(model, 3, 2, "cpu", sampler="ddim", steps=10))
    calls.clear()
    ddpm = diffusion.sample(model, 3, 2, "cpu", sampler="ddpm", steps=10)
    monkeypatch.setattr(diffusion, "_noise", noise)
    assert not torch.allclose(ddpm, diffusion.sample(model, 3, 2, "cpu", sampler="ddpm", steps=10))


@pytest.mark.parametrize("sampler", diffusion.SAMPLERS)
@pytest.mark.parametrize("size", [None, 8, 24, 32])
def test_sample_shape_dtype_range_at_training_and_other_sizes(sampler, size):
    model = scrambled()
    x = diffusion.sample(model, 3, 0, "cpu", sampler=sampler, steps=5, image_size=size)
    s = size or 16
    assert x.shape == (3, 3, s, s) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0.05
    assert diffusion.sample(model, 0, 0, "cpu", sampler=sampler, image_size=size).shape == (0, 3, s, s)


@pytest.mark.parametrize("sampler", diffusion.SAMPLERS)
def test_sample_prefix_stable_in_n_and_batch_size(sampler):
    model = scrambled()
    a = diffusion.sample(model, 5, 1, "cpu", sampler=sampler, steps=6, eta=0.5)
    b = diffusion.sample(model, 2, 1, "cpu", sampler=sampler, steps=6, eta=0.5)
    c = diffusion.sample(model, 5, 1, "cpu", sampler=sampler, steps=6, eta=0.5, batch_size=2)
    # same noise per image; the tolerance is for conv kernels that differ by batch size (measured:
    # 0 for batches of 2 and 5, up to 3e-5 after 6 steps when the last batch holds one image)
    torch.testing.assert_close(a[:2], b, atol=1e-4, rtol=0)
    torch.testing.assert_close(a, c, atol=1e-4, rtol=0)
    assert (a[0] - a[1]).abs().mean() > 0.05                         # images differ


def test_sampling_leaves_training_mode_and_global_rng():
    model = scrambled().train()
    rng = torch.random.get_rng_state()
    diffusion.sample(model, 2, 0, "cpu", steps=3)
    assert model.training and torch.equal(torch.random.get_rng_state(), rng)


def test_rejects_bad_sizes_samplers_and_hyper_parameters():
    for size in (4, 12, 24, 48):
        with pytest.raises(ValueError, match="ddpm: image_size must be a power of two"):
            diffusion.build(size, **TINY)
    with pytest.raises(ValueError, match="multiple of 16"):
        diffusion.build(8, mults=(1, 2, 2, 2, 2))
    with pytest.raises(ValueError, match="unknown ddpm hyper-parameters"):
        diffusion.build(16, timesteps=100)
    with pytest.raises(ValueError, match="schedule"):
        diffusion.build(16, schedule="quadratic")
    model = diffusion.build(16, **TINY)
    with pytest.raises(ValueError, match="sampler"):
        diffusion.sample(model, 1, 0, "cpu", sampler="euler")
    with pytest.raises(ValueError, match="multiples of 2"):
        diffusion.sample(model, 1, 0, "cpu", image_size=15)
    with pytest.raises(ValueError, match="sampling steps"):
        diffusion.sample(model, 1, 0, "cpu", steps=TINY["T"] + 1)


# ---------------------------------------------------------------------------------------------
# Training

def test_training_lowers_the_loss_and_leaves_the_global_rng():
    pool = smooth_pool(32)
    torch.manual_seed(0)                       # what train does for the initial weights of seed 0
    initial = diffusion.build(16, **TINY)
    calls = []
    rng = torch.random.get_rng_state()
    model, info = diffusion.train(pool, 16, 60, 16, seed=0, device="cpu",
                                  progress=lambda s, v: calls.append((s, v)), lr=3e-3, **TINY)
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert [s for s, _ in calls] == [50, 60]
    assert info["family"] == "ddpm" and info["steps"] == 60 and info["seconds"] > 0
    assert info["T"] == TINY["T"] and info["mults"] == [1, 2] and info["schedule"] == "linear"
    assert 0.9 < info["loss_first"] < 1.1                      # zero prediction: E[noise^2] = 1
    assert info["loss"] < 0.5 * info["loss_first"]                 # measured: 1.01 -> 0.32
    before, after = pool_loss(initial, pool), pool_loss(model, pool)
    assert after < 0.5 * before, (before, after)                  # measured: 1.00 -> 0.17


def test_training_deterministic_for_a_seed_and_average_differs_from_last_weights():
    pool = smooth_pool(16)
    a, ia = diffusion.train(pool, 16, 5, 8, seed=7, device="cpu", **TINY)
    b, ib = diffusion.train(pool, 16, 5, 8, seed=7, device="cpu", **TINY)
    c, _ = diffusion.train(pool, 16, 5, 8, seed=8, device="cpu", **TINY)
    last, _ = diffusion.train(pool, 16, 5, 8, seed=7, device="cpu", **TINY, ema=0.0)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k
    assert ia["loss"] == ib["loss"]
    differs = lambda m: any(not torch.equal(v, w)                                 # noqa: E731
                            for v, w in zip(a.state_dict().values(), m.state_dict().values()))
    assert differs(c) and differs(last)


def test_trains_on_a_pool_of_another_size_and_round_trips_through_a_file(tmp_path):
    hp = {**TINY, "mults": [1, 2], "schedule": "cosine", "T": 30}   # as the CLI passes it (JSON)
    model, info = diffusion.train(smooth_pool(8, size=32), 16, 2, 4, seed=0, device="cpu", **hp)
    testbed.save(model, "ddpm", 16, hp, info, tmp_path / "g.pt")
    loaded, payload = testbed.load(tmp_path / "g.pt")
    assert payload["hp"] == hp and loaded.T == 30 and loaded.schedule == "cosine"
    assert torch.equal(loaded.alphas_cumprod, model.alphas_cumprod)
    a = diffusion.sample(model, 2, 0, "cpu", sampler="ddim", steps=4)
    assert a.shape == (2, 3, 16, 16)
    assert torch.equal(a, diffusion.sample(loaded, 2, 0, "cpu", sampler="ddim", steps=4))
