import numpy as np
import torch

from modelfp import spectral_effects as se
from modelfp.archspace import parse
from modelfp.feed import SyntheticZoo
from modelfp.representation import spectra_of_images, synthetic_spectra
from modelfp.synthetic import init_model


def identity(x):
    return x


def test_spectra_of_white_noise_are_flat_and_have_one_bin_beyond_nyquist():
    x = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    spec = spectra_of_images(x, identity, batch_size=16)
    assert spec["log"].shape == (1, 17) and spec["power"].shape == (17,)  # 16 bins + beyond Nyquist
    assert spec["spec2d"].shape == (32, 32)
    flat = spec["power"][1:-1]
    assert (flat.std() / flat.mean()) < 0.1


def test_synthetic_spectra_rows_are_each_models_own():
    archs = [parse("K1-L1-Spost-Unearest-Anone-Nnone"), parse("K1-L1-Spost-Utransposed-Anone-Nnone")]
    models = [init_model(a, 0).eval() for a in archs]
    zoo = SyntheticZoo(models + [models[0]], path="loop")        # model 0 twice
    images = torch.rand(6, 3, 16, 16) * 2 - 1
    out = synthetic_spectra(zoo, images, identity, batch_size=4)
    assert out["log"].shape == (1, 3, 9) and out["spec2d"].shape == (3, 16, 16)
    torch.testing.assert_close(out["log"][0, 0], out["log"][0, 2])
    assert not torch.allclose(out["log"][0, 0], out["log"][0, 1])
    ref = spectra_of_images(models[1](images).clamp(-1, 1), identity)
    # batches of 4+2 vs 6: conv kernels may differ by batch shape and CPU (~1e-6 relative in
    # pixels, ~2e-6 in power), so rtol 1e-4; model 0's power differs by far more (checked above)
    torch.testing.assert_close(out["power"][1], ref["power"], rtol=1e-4, atol=1e-6)


def _power(hf_share):
    """A linear 9-entry spectrum whose share of energy in the upper half is about hf_share."""
    low, high = np.full(4, (1 - hf_share) / 4), np.full(5, hf_share / 5)
    return np.concatenate([low, high])


def test_hf_claims_count_matched_pairs_and_give_the_verdict():
    ids = ["K1-L1-Spost-Unearest-Arelu-Nbn", "K1-L1-Spost-Utransposed-Arelu-Nbn",
           "K1-L1-Spost-Utransposed-Asigmoid-Nbn", "K2-L1-Spost-Ubilinear-Anone-Nin"]
    power = np.stack([_power(0.2), _power(0.6), _power(0.9), _power(0.5)])
    rows = {(r["lower"], r["higher"]): r for r in se.hf_claims(power, ids)}
    assert rows[("nearest", "transposed")]["pairs"] == 1 and rows[("nearest", "transposed")]["agrees"]
    assert rows[("sigmoid", "relu")]["pairs"] == 1 and rows[("sigmoid", "relu")]["agrees"] is False
    assert rows[("bilinear", "transposed")]["pairs"] == 0 and rows[("bilinear", "transposed")]["agrees"] is None


def test_normalization_consistency_compares_seeds_with_other_normalizations():
    ids = ["K1-L1-Spost-Unearest-Arelu-Nbn"] * 2 + ["K1-L1-Spost-Unearest-Arelu-Nin"] * 2
    spectra = np.array([[0.0, 0.0], [0.0, 0.1], [1.0, 1.0], [1.0, 1.1]])
    result = se.normalization_consistency(spectra, ids)
    assert result["pairs_within"] == 2 and result["pairs_across"] == 1
    assert result["distance_within"] == 0.1 and result["agrees"]


def test_plot_option_writes_png_and_pdf(tmp_path):
    ids = ["K1-L1-Spost-Unearest-Arelu-Nbn", "K1-L1-Spost-Utransposed-Arelu-Nbn"] * 2
    se.plot_option(np.random.default_rng(0).normal(size=(4, 9)), ids, "upsampling",
                   tmp_path / "fig.png", tmp_path / "other.pdf")
    assert (tmp_path / "fig.png").stat().st_size > 1000 and (tmp_path / "other.pdf").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png", "other.pdf"]   # no temporaries


def test_the_n_sweep_gives_prefix_means_of_the_per_image_log_spectra():
    x = torch.randn(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    sweep = spectra_of_images(x, identity, ns=[1, 3, 6], batch_size=4)["log"]
    for row, n in zip(sweep, (1, 3, 6)):
        # FFTs of batches of 4 vs n may round differently (by CPU): log10 spectra ~1 agree to
        # ~1e-6, so atol 1e-4; the mean of another prefix differs by ~0.05
        torch.testing.assert_close(row, spectra_of_images(x[:n], identity)["log"][0], atol=1e-4, rtol=0)
