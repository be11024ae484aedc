import numpy as np
import pytest
from PIL import Image

from modelfp import tables
from modelfp.archspace import space
from modelfp.figures import closest_synthetic, plot_closest_spectra
from modelfp.paper_tables import paper_rows
from modelfp.representation import ImageSet, load_image_set


def _zoo(seeds=(0, 1)):
    archs = [a.id for a in space() for _ in seeds]
    return archs, [s for _ in space() for s in seeds]


def test_ffd_conditions_follow_table_ii():
    archs, seeds = _zoo()
    masks = tables.ffd_conditions(archs, seeds)
    assert list(masks) == list(paper_rows("table_ii"))      # the paper's conditions, in its order
    sizes = {k: int(m.sum()) for k, m in masks.items()}
    assert sizes == {"All": 576, "w/o K": 288, "w/o L": 288, "w/o S": 288, "w/o U": 192,
                     "w/o A": 144, "w/o N": 192, "w/o seed": 288}


def test_table_ii_is_zero_for_a_subset_identical_to_the_real_side_and_grows_with_a_shift():
    archs, seeds = _zoo()
    rng = np.random.default_rng(0)
    syn = rng.normal(size=(len(archs), 5))
    rows = {r["models"]: r for r in tables.table_ii(syn, syn, archs, seeds)}
    assert rows["All"]["ffd"] == pytest.approx(0, abs=1e-6)
    assert rows["w/o U"]["ffd"] > 0 and rows["All"]["paper_ffd"] == 3.30
    shifted = {r["models"]: r for r in tables.table_ii(syn + 1.0, syn, archs, seeds)}
    assert shifted["All"]["ffd"] == pytest.approx(5.0, rel=1e-6)     # ||shift||^2 over 5 dims


def _ffd_1d(a, b):
    """FFD of 1-d representations by hand: (mu_a - mu_b)^2 + (sd_a - sd_b)^2 (unbiased sd)."""
    return (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2


def test_table_xi_correlates_each_n_with_the_largest():
    archs, seeds = _zoo()
    masks = tables.ffd_conditions(archs, seeds)
    rng = np.random.default_rng(1)
    syn = rng.normal(size=(len(archs), 1))
    real = rng.normal(size=(6, 1)) + 0.5
    ns = [4, 8, 2]                             # the reference is the largest N, not the last row
    noise = {2: 1.0, 4: 0.5, 8: 0.0}           # fewer images per model: noisier representations
    syn_by_n = np.stack([syn + noise[n] * rng.normal(size=syn.shape) for n in ns])
    real_by_n = np.stack([real + noise[n] * rng.normal(size=real.shape) for n in ns])
    rows = tables.table_xi(real_by_n, syn_by_n, ns, archs, seeds)
    assert [r["n_images"] for r in rows] == ns and all(r["conditions"] == 8 for r in rows)
    values = {n: np.array([_ffd_1d(r, s[m, 0]) for m in masks.values()])
              for n, r, s in zip(ns, real_by_n[:, :, 0], syn_by_n)}
    for row, n in zip(rows, ns):
        assert [row[f"ffd {name}"] for name in masks] == pytest.approx(values[n], abs=1e-4)
        expected = 100 * np.corrcoef(values[n], values[8])[0, 1]
        assert row["pearson_percent"] == pytest.approx(expected, abs=0.006)      # rounded to 0.01
    pearson = {r["n_images"]: r["pearson_percent"] for r in rows}
    assert pearson[8] == 100.0 and pearson[2] < 99 and pearson[4] < 99    # noisy N: not 100
    assert set(rows[0]) >= {"ffd All", "ffd w/o seed", "spearman_percent"}


def test_write_table_writes_csv_and_markdown(tmp_path):
    tables.write_table([{"a": 1, "b": 2.5}], tmp_path / "t.csv", tmp_path / "md" / "t.md", "Title", "a note")
    assert (tmp_path / "t.csv").read_text().splitlines() == ["a,b", "1,2.5"]
    md = (tmp_path / "md" / "t.md").read_text()
    assert md.startswith("# Title") and "| 1 | 2.5 |" in md and "a note" in md
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["md", "t.csv", "t.md"]   # no temporary left


def test_closest_synthetic_picks_the_nearest_spectrum(tmp_path):
    syn = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
    real = np.array([[0.9, 1.2], [4.0, 6.0]])
    assert closest_synthetic(real, syn).tolist() == [1, 2]
    closest = plot_closest_spectra(["r1", "r2"], np.random.rand(2, 8, 8), real,
                                   ["s0", "s1", "s2"], np.random.rand(3, 8, 8), syn,
                                   tmp_path / "a.png", tmp_path / "b.pdf")
    assert closest.tolist() == [1, 2] and (tmp_path / "a.png").stat().st_size > 1000
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "b.pdf").read_bytes()[:4] == b"%PDF"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.pdf"]   # only the named files


def test_image_sets_are_centre_cropped_or_resized_up(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    big = np.zeros((40, 50, 3), np.uint8)
    big[10:30, 15:35] = 255                                   # a white centre 20x20
    Image.fromarray(big).save(folder / "a.png")
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(folder / "b.png")
    images = load_image_set(ImageSet("m", str(folder), "emerging"), 2, 20)
    assert images.shape == (2, 3, 20, 20)
    assert images[0].min() == 1.0                             # the crop is the white centre
    assert (images[1] - (128 / 127.5 - 1)).abs().max() < 1e-6   # the small one, resized up
    with pytest.raises(ValueError, match="holds 2 images, 3 are needed"):
        load_image_set(ImageSet("m", str(folder), "emerging"), 3, 20)


def test_ablation_table_puts_our_all_group_beside_the_papers_row():
    from modelfp.tables import ablation_table
    ev = {"all": {"verification_acc": 91.234, "verification_auc": 95.0, "identification_acc": 80.0,
                  "identification_f1": 79.5}, "classical": {"verification_acc": 1.0}}
    rows = ablation_table("table_iv", [("w/o K", "w/o K", ev), ("extra", None, None)])
    assert rows[0]["verification_acc"] == 91.23 and rows[0]["paper_verification_acc"] == 87.04
    assert rows[0]["paper_identification_f1"] == 92.51
    assert rows[1]["verification_acc"] == "" and rows[1]["paper_verification_acc"] == ""


def test_comparison_table_lists_every_paper_method_and_our_controls():
    from modelfp.tables import comparison_table
    ours = [("Ours (Only-Syn)", "Ours (Only-Syn)",
             {"classical": {"identification_acc": 50.0, "identification_f1": 40.0},
              "emerging": {"identification_acc": 60.0, "identification_f1": 55.5}}),
            ("Training-free reference", None, {"emerging": {"identification_acc": 30.0}})]
    table = comparison_table("table_viii", ours)
    assert [r["method"] for r in table] == [       # the paper's methods in its order, then our controls
        "Marra et al.", "Yu et al.", "DNA-Det", "RepMix", "Abady et al.", "POSE", "Ours (Only-Syn)",
        "Ours (Fine-tune)", "Training-free reference"]
    rows = {r["method"]: r for r in table}
    assert rows["DNA-Det"]["paper emerging identification_acc"] == 47.41
    assert rows["DNA-Det"]["emerging identification_acc"] == ""
    assert rows["Ours (Only-Syn)"]["emerging identification_f1"] == 55.5
    assert rows["Ours (Only-Syn)"]["paper emerging identification_f1"] == 93.11
    assert rows["Training-free reference"]["emerging identification_acc"] == 30.0
    assert rows["Training-free reference"]["paper classical identification_acc"] == ""


def test_a_method_with_its_own_verifier_gets_its_row_in_table_ix_only():
    from modelfp.tables import comparison_table
    ev = {"classical": {"verification_acc": 70.0, "verification_auc": 75.0, "verifier_verification_acc": 80.0,
                        "verifier_verification_auc": 85.0, "identification_acc": 50.0},
          "emerging": {"verification_acc": 60.0, "verification_auc": 65.0, "verifier_verification_acc": 61.0,
                       "verifier_verification_auc": 66.5, "identification_acc": 40.0}}
    ix = comparison_table("table_ix", [("Abady et al.", "Abady et al.", ev)])
    names = [r["method"] for r in ix]
    assert names[names.index("Abady et al.") + 1] == "Abady et al. (its verifier)"
    rows = {r["method"]: r for r in ix}
    assert rows["Abady et al."]["classical verification_auc"] == 75.0          # cosine of its embedding
    assert rows["Abady et al. (its verifier)"]["classical verification_auc"] == 85.0
    assert rows["Abady et al. (its verifier)"]["emerging verification_acc"] == 61.0
    assert rows["Abady et al. (its verifier)"]["paper emerging verification_acc"] == ""
    assert rows["Abady et al."]["paper emerging verification_acc"] == 64.52
    # identification has no verifier: Table VIII keeps one row per method
    viii = comparison_table("table_viii", [("Abady et al.", "Abady et al.", ev)])
    assert not any("verifier" in r["method"] for r in viii)


@pytest.mark.parametrize("table, rows", [
    ("table_iv", [("w/o K", "w/o  K", None)]),
    ("table_v", [("20 (all)", "twenty", None)]),
    ("table_viii", [("Ours (Only-Syn)", "Ours (Only Syn)", None)]),
])
def test_an_unknown_paper_label_raises_naming_it_and_the_known_ones(table, rows):
    """A typo in a paper label is an error, never a row with silently blank paper columns; an empty
    label (a control, a seed count the paper did not run) is the explicit "no paper row"."""
    from modelfp.tables import COMPARISON_METRICS, ablation_table, comparison_table
    make = comparison_table if table in COMPARISON_METRICS else ablation_table
    known = paper_rows(table)
    with pytest.raises(ValueError) as err:
        make(table, rows)
    assert repr(rows[0][1]) in str(err.value) and all(repr(k) in str(err.value) for k in known)
    assert make(table, [(rows[0][0], "", None)])        # declared as having no paper row: fine
