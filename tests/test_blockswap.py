"""Figure 3's block swap: composed generators, the residual-spectrum classifier, the reversal rate."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modelfp import blockswap
from modelfp.spectrum import fft_magnitude
from modelfp.testbed import progan
from modelfp.testbed.common import seeded

pytestmark = pytest.mark.usefixtures("one_thread")


def _pair(size=16):
    """Two ProGAN-style generators of one design, initial weights from two seeds."""
    make = lambda seed: seeded(seed, lambda: progan.build(size, width=8, z_dim=16)).eval()
    return make(0), make(1)


def _images(G, n=4, seed=5):
    return progan.sample(G, n, seed, "cpu")


def test_the_progan_blocks_hold_every_parameter_once():
    g1, _ = _pair()
    blocks = blockswap.generative_blocks("progan", g1)
    assert len(blocks) == 1 + len(g1.blocks)             # the 4x4 block, then one per x2 step
    assert blocks[-1] == ("blocks.1.", "to_rgb.")          # toRGB belongs to the last block


def test_swapping_zero_blocks_leaves_each_generator_bit_identical():
    g1, g2 = _pair()
    for base, donor in ((g1, g2), (g2, g1)):
        assert torch.equal(_images(blockswap.compose(base, donor, 0, "progan")), _images(base))


def test_swapping_all_blocks_exchanges_the_two_models_exactly():
    g1, g2 = _pair()
    n = len(blockswap.generative_blocks("progan", g1))
    assert torch.equal(_images(blockswap.compose(g1, g2, n, "progan")), _images(g2))
    assert torch.equal(_images(blockswap.compose(g2, g1, n, "progan")), _images(g1))
    # in between, a composed model is neither of the two
    middle = _images(blockswap.compose(g1, g2, 1, "progan"))
    assert not torch.equal(middle, _images(g1)) and not torch.equal(middle, _images(g2))


def test_composing_generators_of_two_designs_is_refused():
    g1 = seeded(0, lambda: progan.build(16, width=8, z_dim=16))
    g2 = seeded(0, lambda: progan.build(32, width=8, z_dim=16))
    with pytest.raises(ValueError, match="not one design"):
        blockswap.compose(g1, g2, 1, "progan")
    with pytest.raises(ValueError, match="0 to 3"):
        blockswap.compose(g1, g1, 4, "progan")


def test_the_classifier_separates_two_trivially_different_sources():
    gen = torch.Generator().manual_seed(0)
    white = torch.randn(80, 3, 16, 16, generator=gen)
    upsampled = F.interpolate(torch.randn(80, 3, 8, 8, generator=gen), scale_factor=2)   # nearest x2
    images = torch.cat([white, upsampled])
    labels = torch.arange(2).repeat_interleave(80)
    spectra = fft_magnitude(images, "log1p")
    train = torch.cat([torch.arange(0, 60), torch.arange(80, 140)])
    test = torch.cat([torch.arange(60, 80), torch.arange(140, 160)])
    cfg = blockswap.ClassifierConfig(steps=40, batch_size=16, width=4, lr=3e-3, seed=0)
    clf = blockswap.train_classifier(spectra[train], labels[train], cfg, "cpu")
    conf = blockswap.confusion(labels[test], clf.predict(spectra[test]))
    assert blockswap.accuracy(conf) >= 0.95


def test_reversal_rate_of_a_fabricated_confusion():
    # composed model 1 (model 1's first blocks, model 2's last ones): 9 of 10 attributed to model 2;
    # composed model 2: 8 of 10 attributed to model 1
    conf = blockswap.confusion([0] * 10 + [1] * 10, [0] + [1] * 9 + [0] * 8 + [1] * 2)
    assert conf.tolist() == [[1, 9], [8, 2]]
    assert blockswap.reversal_rate(conf) == pytest.approx(17 / 20)
    assert blockswap.accuracy(conf) == pytest.approx(3 / 20)


def test_csv_rows_put_the_papers_reversal_beside_ours_at_two_blocks():
    conf = np.array([[2, 8], [1, 9]])
    result = {"testing_i": np.array([[10, 0], [1, 9]]), "blocks": 3,
              "testing_ii": {1: conf, 2: np.array([[1, 9], [9, 1]]), 3: np.array([[0, 10], [1, 9]])}}
    rows = blockswap.csv_rows(("a", "b"), "a / b", result)
    assert [(r["test"], r["blocks_swapped"]) for r in rows] == [("I", 0), ("II", 1), ("II", 2), ("II", 3)]
    assert rows[0]["accuracy"] == 0.95 and rows[2]["reversal"] == 0.9 and rows[2]["paper_reversal"] == 0.9
    assert rows[1]["paper_reversal"] == "" and rows[1]["reversal"] == 0.45
