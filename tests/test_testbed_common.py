"""The helpers every test-bed family shares (testbed/common.py)."""

import pytest
import torch

from conftest import random_pool
from modelfp.testbed.common import LOG_EVERY, LossLog, check_size, draw_batch, resolve, seeded


def test_resolve_overrides_defaults_and_names_the_family_and_the_unknown_keys():
    defaults = {"a": 1, "b": 2}
    assert resolve("fam", defaults, {"b": 3}) == {"a": 1, "b": 3}
    assert defaults == {"a": 1, "b": 2}
    with pytest.raises(ValueError, match=r"unknown fam hyper-parameters \['c', 'd'\]; known: \['a', 'b'\]"):
        resolve("fam", defaults, {"d": 0, "c": 0, "a": 0})


def test_check_size_accepts_powers_of_two_from_the_minimum_only():
    assert [check_size("fam", s, 8) for s in (8, 16, 256)] == [8, 16, 256]
    for size in (4, 12, 24, 0, -8, 16.0, "16"):
        with pytest.raises(ValueError, match="fam: image_size must be a power of two >= 8"):
            check_size("fam", size, 8)


def test_seeded_is_reproducible_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a, b = seeded(7, lambda: torch.rand(4)), seeded(7, lambda: torch.rand(4))
    assert torch.equal(a, b) and not torch.equal(a, seeded(8, lambda: torch.rand(4)))
    assert torch.equal(torch.rand(3), expected)


def test_draw_batch_is_seeded_and_scaled_to_the_unit_range():
    pool = random_pool(10, 4)
    x = draw_batch(pool, 6, torch.Generator().manual_seed(0), "cpu")
    idx = torch.randint(10, (6,), generator=torch.Generator().manual_seed(0))
    assert x.shape == (6, 3, 4, 4) and x.dtype == torch.float32
    torch.testing.assert_close(x, pool[idx].float() / 127.5 - 1)


def test_loss_log_reports_progress_means_and_first_values():
    calls = []
    steps = LOG_EVERY + 10
    log = LossLog(steps, lambda s, v: calls.append((s, v)), ("loss", "extra"))
    for i in range(steps):
        log.add(float(i), 2.0 * i)
    # progress: mean training loss since the previous call, every LOG_EVERY steps and at the last
    assert calls == [(LOG_EVERY, (LOG_EVERY - 1) / 2), (steps, LOG_EVERY + 4.5)]
    window = range(steps - LOG_EVERY, steps)                  # the last LOG_EVERY steps
    assert log.summary() == {"loss": sum(window) / LOG_EVERY, "extra": 2 * sum(window) / LOG_EVERY,
                             "loss_first": 0.0, "extra_first": 0.0}


def test_loss_log_of_a_short_run_and_of_no_run():
    calls = []
    log = LossLog(3, lambda s, v: calls.append((s, v)), ("bpd",))
    for v in (3.0, 2.0, 1.0):
        log.add(v)
    assert calls == [(3, 2.0)] and log.summary() == {"bpd": 2.0, "bpd_first": 3.0}
    assert LossLog(0, None, ("loss", "kl")).summary() == {"loss": None, "kl": None,
                                                         "loss_first": None, "kl_first": None}


def test_check_options_names_unknown_hp_and_sampling_keys_and_accepts_known_ones():
    from modelfp.testbed import check_options
    check_options("test_models.x", "ddpm", {"T": 100}, {"sampler": ["ddpm", "ddim"], "steps": 10, "image_size": 48})
    check_options("test_models.y", "dcgan", {}, {"batch_size": 8})
    with pytest.raises(ValueError, match=r"test_models.x: unknown vae hp \['betaa'\]; known: .*'beta'"):
        check_options("test_models.x", "vae", {"betaa": 2.0}, {})
    with pytest.raises(ValueError, match=r"test_models.x: unknown flow sampling options \['temp'\]; known: \['temperature'\]"):
        check_options("test_models.x", "flow", {}, {"temp": 0.5})


@pytest.mark.parametrize("n, nrow", [(6, 8), (10, 4), (64, 8), (2, 1)])
def test_the_contact_sheet_is_torchvisions_save_image_pixel_for_pixel(tmp_path, n, nrow):
    """write_contact_sheet replaces torchvision.utils.save_image (whose import costs a sampling job
    about 2 s): the same layout, padding and rounding, values past [-1, 1] clamped as it clamps."""
    import numpy as np
    import torchvision.utils
    from PIL import Image

    from modelfp.testbed import write_contact_sheet
    images = 1.2 * (2 * torch.rand(n, 3, 5, 7, generator=torch.Generator().manual_seed(n)) - 1)
    write_contact_sheet(images, tmp_path / "ours.png", nrow=nrow)
    torchvision.utils.save_image(images * 0.5 + 0.5, tmp_path / "torchvision.png", nrow=nrow)
    ours, theirs = (np.asarray(Image.open(tmp_path / f"{k}.png")) for k in ("ours", "torchvision"))
    rows, cols = -(-n // min(nrow, n)), min(nrow, n)
    assert ours.shape == (rows * 7 + 2, cols * 9 + 2, 3)
    assert np.array_equal(ours, theirs)
