"""LoRA lineage variants of test-bed models (testbed/lora.py) and the vae family's `loss`."""

import copy

import pytest
import torch

from conftest import random_pool, smooth_pool
from modelfp import testbed
from modelfp.testbed import lora, vae

pytestmark = pytest.mark.usefixtures("one_thread")   # conftest.py

TINY = {"z_dim": 8, "width": 8}
SIZE = 16


def tiny_vae(seed=0, **hp):
    torch.manual_seed(seed)
    return vae.build(SIZE, **{**TINY, **hp})


def outputs(model, x):
    """Everything the VAE computes from x with fixed noise, and decoded fixed latents."""
    with torch.no_grad():
        recon, mu, logvar = model(x, generator=torch.Generator().manual_seed(5))
        z = torch.randn(4, model.z_dim, generator=torch.Generator().manual_seed(6))
        return [recon, mu, logvar, model.decode(z)]


def pool_loss(model, pool):
    with torch.no_grad():
        return float(vae.loss(model, pool.float() / 127.5 - 1, torch.Generator().manual_seed(123)))


def randomise_adapters(model, seed=1):
    """Non-zero A and B, as after training, without training."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in lora.lora_parameters(model):
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)


@pytest.fixture(scope="module")
def variant():
    """(base, its state before, variant, info): 30 steps of rank-2 LoRA on a random pool."""
    base = tiny_vae()
    before = copy.deepcopy(base.state_dict())
    model, info = lora.finetune(base, vae.loss, random_pool(), SIZE, 30, 16, seed=0, device="cpu",
                                rank=2, alpha=4.0, lr=1e-2)
    return base, before, model, info


# ---------------------------------------------------------------------------------------------
# The adapter

@pytest.mark.parametrize("upsample", ["nearest", "transposed"])
def test_fresh_adapter_leaves_outputs_exactly_unchanged(upsample):
    base = tiny_vae(upsample=upsample)
    wrapped = copy.deepcopy(base)
    names = lora.add_lora(wrapped, rank=4, alpha=8.0, seed=0)
    adapted, skipped = lora.plan(base, 4)
    assert names == adapted and len(names) == 6
    assert list(skipped) == ["decoder.4"] and "min(3, 72)" in skipped["decoder.4"]   # the RGB conv
    kinds = {type(base.get_submodule(n)).__name__ for n in names}
    assert kinds == {"Conv2d", "Linear"} | ({"ConvTranspose2d"} if upsample == "transposed" else set())
    x = random_pool(4).float() / 127.5 - 1
    for a, b in zip(outputs(base, x), outputs(wrapped, x)):
        assert torch.equal(a, b)
    params = lora.lora_parameters(wrapped)
    assert len(params) == 2 * len(names) and all(p.requires_grad for p in params)
    assert all(not wrapped.get_submodule(n).parametrizations.weight.original.requires_grad for n in names)
    assert all(torch.all(a.B == 0) for a in lora.adapters(wrapped).values())


def test_adapters_are_seeded():
    a, b, c = tiny_vae(), tiny_vae(), tiny_vae()
    for model, seed in ((a, 0), (b, 0), (c, 1)):
        lora.add_lora(model, 2, 2.0, seed)
    pa, pb, pc = (lora.lora_parameters(m) for m in (a, b, c))
    assert all(torch.equal(p, q) for p, q in zip(pa, pb))
    assert not torch.equal(pa[0], pc[0])


@pytest.mark.parametrize("upsample", ["nearest", "transposed"])
def test_merge_equals_wrapped_forward_and_gives_a_plain_model(upsample):
    base = tiny_vae(upsample=upsample)
    wrapped = copy.deepcopy(base)
    lora.add_lora(wrapped, 2, 4.0, seed=0)
    randomise_adapters(wrapped)
    x = random_pool(4).float() / 127.5 - 1
    expected = outputs(wrapped, x)
    merged = lora.merge(wrapped)
    assert merged is wrapped                                            # in place
    for a, b, c in zip(expected, outputs(merged, x), outputs(base, x)):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(b, c, atol=1e-3)                      # the adapters do something
    assert type(merged) is type(base) and not lora.adapters(merged)
    assert [type(m) for m in merged.modules()] == [type(m) for m in base.modules()]
    assert [n for n, _ in merged.named_parameters()] == [n for n, _ in base.named_parameters()]
    assert all(p.requires_grad for p in merged.parameters())


@pytest.mark.parametrize("upsample", ["nearest", "transposed"])
def test_delta_has_rank_at_most_r_and_only_adapted_weights_change(upsample):
    rank = 2
    base = tiny_vae(upsample=upsample)
    wrapped = copy.deepcopy(base)
    names = lora.add_lora(wrapped, rank, 1.0, seed=0)
    randomise_adapters(wrapped)
    merged, old = lora.merge(wrapped).state_dict(), base.state_dict()
    assert merged.keys() == old.keys()
    for key, w in old.items():
        delta = merged[key] - w
        if key.removesuffix(".weight") in names:
            assert int(torch.linalg.matrix_rank(delta.reshape(w.shape[0], -1))) == rank, key
        else:
            assert torch.equal(merged[key], w), key                    # biases, the skipped RGB conv


# ---------------------------------------------------------------------------------------------
# Fine-tuning

def test_finetune_changes_the_variant_and_leaves_the_callers_base_bit_identical(variant):
    base, before, model, info = variant
    assert base.state_dict().keys() == before.keys()
    assert all(torch.equal(v, before[k]) for k, v in base.state_dict().items())
    assert all(p.requires_grad for p in base.parameters()) and not lora.adapters(base)
    assert type(model) is vae.VAE and not model.training and not lora.adapters(model)
    assert all(p.requires_grad for p in model.parameters())
    x = random_pool(4, seed=1).float() / 127.5 - 1
    for a, b in zip(outputs(base, x), outputs(model, x)):
        assert (a - b).abs().max() > 1e-3
    adapted, skipped = lora.plan(base, 2)
    assert info["adapted_layers"] == len(adapted) == 7 and info["skipped_layers"] == list(skipped) == []
    assert info["trainable_params"] == sum(2 * (w.shape[0] + w[0].numel())
                                           for n, w in before.items() if n.removesuffix(".weight") in adapted)
    assert info["base_params"] == sum(v.numel() for v in before.values())
    assert (info["steps"], info["rank"], info["alpha"], info["lr"]) == (30, 2, 4.0, 1e-2)
    assert 0 < info["weight_change"] < 1 and info["seconds"] > 0


def test_finetuned_delta_has_rank_at_most_r(variant):
    base, before, model, info = variant
    adapted, _ = lora.plan(base, 2)
    after = model.state_dict()
    for key, w in before.items():
        delta = after[key] - w
        if key.removesuffix(".weight") in adapted:
            assert 1 <= int(torch.linalg.matrix_rank(delta.reshape(w.shape[0], -1))) <= 2, key
        else:
            assert torch.equal(delta, torch.zeros_like(w)), key


def test_only_the_adapters_train_and_frozen_weights_stay_bit_identical():
    base = tiny_vae()
    reference = copy.deepcopy(base.state_dict())
    calls = []

    def spying_loss(model, x, generator):
        trainable = {id(p) for p in lora.lora_parameters(model)}
        frozen = {n.replace(".parametrizations.weight.original", ".weight"): p
                  for n, p in model.named_parameters() if id(p) not in trainable}
        assert frozen.keys() == reference.keys()
        for name, p in frozen.items():
            assert torch.equal(p, reference[name]) and not p.requires_grad and p.grad is None, name
        if calls:                                          # the previous step's gradients
            assert all(p.grad is not None for p in lora.lora_parameters(model))
        calls.append(len(trainable))
        return vae.loss(model, x, generator)

    model, _ = lora.finetune(base, spying_loss, random_pool(), SIZE, 4, 8, seed=0, device="cpu", rank=4)
    assert calls == [12] * 4                               # A and B of 6 layers, at every step
    assert any(not torch.equal(v, reference[k]) for k, v in model.state_dict().items())


def test_finetune_lowers_the_loss_and_reports_progress():
    base, pool = tiny_vae(), smooth_pool()
    calls = []
    model, info = lora.finetune(base, vae.loss, pool, SIZE, 60, 16, seed=0, device="cpu", lr=1e-2,
                                progress=lambda s, l: calls.append((s, l)))
    assert [s for s, _ in calls] == [50, 60]
    before, after = pool_loss(base, pool), pool_loss(model, pool)
    assert after < 0.85 * before, (before, after)                     # measured: 101 -> 76
    assert info["loss"] < 0.85 * info["loss_first"]


def test_finetune_is_reproducible_for_a_seed():
    base, pool = tiny_vae(), random_pool(32)
    a, ia = lora.finetune(base, vae.loss, pool, SIZE, 5, 8, seed=3, device="cpu")
    b, ib = lora.finetune(base, vae.loss, pool, SIZE, 5, 8, seed=3, device="cpu")
    c, _ = lora.finetune(base, vae.loss, pool, SIZE, 5, 8, seed=4, device="cpu")
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k
    assert ia["loss"] == ib["loss"] and ia["weight_change"] == ib["weight_change"]
    assert any(not torch.equal(v, w) for v, w in zip(a.state_dict().values(), c.state_dict().values()))


def test_a_non_finite_step_is_not_taken():
    base, pool = tiny_vae(), random_pool(32)
    calls = []

    def nan_on_second_call(model, x, generator):
        calls.append(None)
        value = vae.loss(model, x, generator)
        return value * float("nan") if len(calls) == 2 else value

    a, ia = lora.finetune(base, nan_on_second_call, pool, SIZE, 3, 8, seed=0, device="cpu")
    assert ia["nonfinite_steps"] == 1 and ia["loss"] == ia["loss"]            # not NaN
    b, ib = lora.finetune(base, vae.loss, pool, SIZE, 3, 8, seed=0, device="cpu")
    assert ib["nonfinite_steps"] == 0
    assert any(not torch.equal(v, w) for v, w in zip(a.state_dict().values(), b.state_dict().values()))
    assert all(torch.isfinite(v).all() for v in a.state_dict().values())


def test_finetune_resizes_a_pool_of_another_size():
    model, info = lora.finetune(tiny_vae(), vae.loss, random_pool(8, size=32), SIZE, 2, 4, seed=0,
                                device="cpu")
    assert vae.sample(model, 2, 0, "cpu").shape == (2, 3, SIZE, SIZE) and info["steps"] == 2


def test_variant_round_trips_through_testbed_save_and_load(variant, tmp_path):
    _, _, model, info = variant
    path = tmp_path / "variant.pt"
    testbed.save(model, "vae", SIZE, TINY, {**info, "base": "vae-0"}, path)
    loaded, payload = testbed.load(path)
    assert type(loaded) is vae.VAE and payload["info"]["base"] == "vae-0"
    for (k, v), w in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(v, w), k
    assert torch.equal(vae.sample(model, 4, 0, "cpu"), vae.sample(loaded, 4, 0, "cpu"))


def test_finetune_and_add_lora_reject_bad_arguments():
    base, pool = tiny_vae(), random_pool(8)
    with pytest.raises(ValueError, match="rank"):
        lora.add_lora(copy.deepcopy(base), 0, 1.0, 0)
    with pytest.raises(ValueError, match="alpha"):
        lora.add_lora(copy.deepcopy(base), 2, 0.0, 0)
    with pytest.raises(ValueError, match="unknown LoRA targets"):
        lora.add_lora(copy.deepcopy(base), 2, 1.0, 0, targets=("Conv3d",))
    for kwargs, match in (({"steps": -1}, "steps"), ({"batch_size": 0}, "batch_size"),
                          ({"lr": 0.0}, "lr"), ({"rank": 10_000}, "no layer")):
        args = {"steps": 1, "batch_size": 2, **kwargs}
        with pytest.raises(ValueError, match=match):
            lora.finetune(base, vae.loss, pool, SIZE, seed=0, device="cpu", **args)
    # a layer that already has a parametrization (weight norm) is skipped, with the reason
    normed = copy.deepcopy(base)
    torch.nn.utils.parametrizations.weight_norm(normed.encoder[0])
    assert "not a plain parameter" in lora.plan(normed, 2)[1]["encoder.0"]


# ---------------------------------------------------------------------------------------------
# Pool subsets

def test_pool_subset_parts_are_disjoint_and_cover_the_pool():
    n, parts = 23, 4
    pool = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 2, 2).contiguous()
    subsets = [lora.pool_subset(pool, p, parts, seed=0) for p in range(parts)]
    ids = torch.cat([s[:, 0, 0, 0] for s in subsets])
    assert torch.equal(ids.sort().values, torch.arange(n, dtype=torch.uint8))   # disjoint, covering
    assert sorted(len(s) for s in subsets) == [5, 6, 6, 6]
    assert all(torch.equal(s[:, 0, 0, 0], s[:, 0, 0, 0].sort().values) for s in subsets)   # pool order
    assert torch.equal(lora.pool_subset(pool, 1, parts, seed=0), subsets[1])
    assert not torch.equal(lora.subset_indices(n, 0, parts, seed=1), lora.subset_indices(n, 0, parts, seed=0))
    for part, parts_, match in ((4, 4, "part"), (-1, 4, "part"), (0, 0, "parts"), (0, 24, "cannot be split")):
        with pytest.raises(ValueError, match=match):
            lora.pool_subset(pool, part, parts_, seed=0)


# ---------------------------------------------------------------------------------------------
# The families' `loss`

def test_vae_loss_is_the_training_objective():
    model, x = tiny_vae(), random_pool(4).float() / 127.5 - 1
    recon, mu, logvar = model(x, generator=torch.Generator().manual_seed(0))
    for beta in (1.0, 4.0):
        expected = vae.vae_loss(x, recon, mu, logvar, beta)[0]
        assert torch.equal(vae.loss(model, x, torch.Generator().manual_seed(0), beta=beta), expected)
    assert torch.equal(vae.loss(model, x, torch.Generator().manual_seed(0)),
                       vae.vae_loss(x, recon, mu, logvar, 1.0)[0])


def family_with_loss(name):
    """The family's module; a missing module or a missing `loss` fails the test (LoRA fine-tuning
    of every listed family needs it), never a skip."""
    module = testbed.family(name)
    assert callable(getattr(module, "loss", None)), \
        f"testbed/{testbed.FAMILIES[name].module}.py has no loss(model, x, generator)"
    return module


@pytest.mark.parametrize("name", ["vae", "flow", "ddpm"])
def test_two_step_finetune_of_every_family_with_a_loss(name, tmp_path):
    """Untrained default models; rank 2 so the zero-initialised output convs of flow and ddpm
    (3 or 6 rows) are adapted too: through them the second step reaches the other layers."""
    module = family_with_loss(name)
    torch.manual_seed(0)
    base = module.build(SIZE)
    before = copy.deepcopy(base.state_dict())
    model, info = lora.finetune(base, module.loss, random_pool(8), SIZE, 2, 2, seed=0, device="cpu",
                                rank=2, lr=1e-2)
    assert all(torch.equal(v, before[k]) for k, v in base.state_dict().items())
    assert type(model) is type(base) and model.state_dict().keys() == before.keys()
    assert info["adapted_layers"] > 0 and torch.isfinite(torch.tensor(info["loss"]))
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    adapted, _ = lora.plan(base, 2)
    assert changed and changed <= {f"{n}.weight" for n in adapted}
    testbed.save(model, name, SIZE, {}, info, tmp_path / "variant.pt")   # an ordinary model of its family
    loaded, _ = testbed.load(tmp_path / "variant.pt")
    assert type(loaded) is type(base)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())
