import pytest
import torch

from modelfp.archspace import space
from modelfp.feed import SyntheticZoo
from modelfp.synthetic import init_model, save, TrainResult, TrainConfig


def _zoo_models(dtype=torch.float64):
    archs = space()[::37]                       # 8 architectures, every option family touched
    return [init_model(a, s, dtype=dtype).eval() for a in archs for s in range(3)]


def test_grouped_and_loop_feeds_equal_each_model_applied_alone():
    models = _zoo_models()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 3, 16, 16, generator=g, dtype=torch.float64) * 2 - 1
    k = torch.randint(len(models), (40,), generator=g)
    grouped = SyntheticZoo(models, path="grouped")(x, k)
    loop = SyntheticZoo(models, path="loop")(x, k)
    with torch.no_grad():
        ref = torch.stack([models[int(ki)](x[i:i + 1])[0] for i, ki in enumerate(k)]).clamp(-1, 1)
    assert torch.equal(grouped, ref) and torch.equal(loop, ref)
    assert grouped.min() >= -1 and grouped.max() <= 1


def test_feed_handles_all_seeds_of_one_architecture_and_repeated_models():
    models = _zoo_models()
    zoo = SyntheticZoo(models, path="grouped")
    x = torch.rand(6, 3, 16, 16, dtype=torch.float64) * 2 - 1
    k = torch.tensor([0, 1, 2, 0, 0, 2])        # all 3 seeds of arch 0, model 0 three times
    with torch.no_grad():
        ref = torch.stack([models[int(ki)](x[i:i + 1])[0] for i, ki in enumerate(k)]).clamp(-1, 1)
    assert torch.equal(zoo(x, k), ref)


def test_feed_loads_checkpoints_and_rejects_mismatched_batches(tmp_path):
    models = _zoo_models(torch.float32)[:2]
    paths = []
    for i, m in enumerate(models):
        paths.append(tmp_path / f"seed{i}.pt")
        save(m, TrainResult(m.arch.id, i, 0, 1.0, False, 0.0), TrainConfig(), paths[-1], seed=i)
    zoo = SyntheticZoo.from_files(paths)
    assert len(zoo) == 2 and zoo.names == [f"{models[0].arch.id}/seed0", f"{models[0].arch.id}/seed1"]
    with pytest.raises(ValueError, match="model indices"):
        zoo(torch.zeros(3, 3, 16, 16), torch.zeros(2, dtype=torch.long))
