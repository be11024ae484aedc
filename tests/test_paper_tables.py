"""The tables' registry (modelfp.paper_tables): each table's rows for a preset, in order, and the
paper's numbers read from paper_numbers.yaml, looked up strictly by label."""

import dataclasses
import re
import tomllib
from importlib import resources
from pathlib import Path

import pytest
import yaml

from modelfp import baselines, paper_tables
from modelfp.paper_tables import FIGURES, PAPER_NUMBERS, TABLES, Preset, Row, paper_numbers, paper_rows, rows

from conftest import ROOT

# config.yaml (the paper) and a smoke-sized preset with two of the six baselines
PAPER = Preset(seeds=20, pools=("celeba", "lsun"), seed_counts=(1, 10, 15, 20), windows=(1, 2, 3, 4),
               baselines=tuple(baselines.BASELINES))
SMOKE = Preset(seeds=2, pools=("living", "scenes"), seed_counts=(1, 2), windows=(1, 2), baselines=("marra", "abady"))
# tables of the paper whose numbers are in the data file but whose rows are not read from evaluations
NUMBERS_ONLY = {"table_ii": 1, "table_xi": 1, "fig_3": 1, "fig_8": 1}    # numbers per row
PAPER_TEXT = Path("/work/shared/paper/model-synthesis-zero-shot-attribution.txt")


def test_each_tables_rows_are_its_rows_in_order():
    assert rows("table_iv", SMOKE) == [Row(f"w/o {k}", f"w/o {k}", f"wo_{k}") for k in "KLSUAN"] + [
        Row("All", "All", "all_ablation")]
    assert rows("table_v", PAPER) == [Row("1", "1", "seeds_1"), Row("10", "10", "seeds_10"),
                                      Row("15", "15", "seeds_15"), Row("20 (all)", "20", "seeds_20")]
    assert rows("table_v", SMOKE) == [Row("1", "1", "seeds_1"), Row("2 (all)", "20", "seeds_2")]
    assert rows("table_vi", PAPER) == [Row("celeba", "CelebA", "pool_celeba"), Row("lsun", "LSUN", "pool_lsun"),
                                       Row("celeba + lsun", "CelebA + LSUN", "all_ablation")]
    assert rows("table_vi", SMOKE) == [Row("living", "", "pool_living"), Row("scenes", "", "pool_scenes"),
                                       Row("living + scenes", "CelebA + LSUN", "all_ablation")]
    assert rows("table_vii", dataclasses.replace(SMOKE, windows=(1, 3, 5))) == [
        Row("w/o slide window", "w/o slide window", "all", "w1"), Row("3x3", "3x3", "all", "w3"),
        Row("5x5", "", "all", "w5")]                      # a window the paper did not run: no paper row
    comparison = [Row("Marra et al.", "Marra et al.", "baseline_marra"),
                  Row("Abady et al.", "Abady et al.", "baseline_abady"),
                  Row("Ours (Only-Syn)", "Ours (Only-Syn)", "all"), Row("Ours (Fine-tune)", "Ours (Fine-tune)", "finetune"),
                  Row("Training-free reference", "", "reference"), Row("Random-init extractor", "", "random")]
    assert all(rows(t, SMOKE) == comparison for t in ("table_viii", "table_ix", "table_x"))
    assert rows("fig_8", SMOKE) == [Row("1", "1", "blocks_1"), Row("2", "2", "blocks_2"), Row("3", "3", "blocks_3")]
    assert rows("fig_16", SMOKE) == [Row("plain", "", "all_ablation"), Row("immunized", "", "immunized")]
    with pytest.raises(ValueError, match="no table or figure 'table_xii'"):
        rows("table_xii", SMOKE)


def test_a_typo_in_a_paper_label_fails_at_lookup_naming_the_table_the_label_and_the_known_ones(monkeypatch):
    typo = dataclasses.replace(TABLES["table_iv"], rows=lambda p: [Row("w/o K", "w/o  K", "wo_K")])
    monkeypatch.setitem(TABLES, "table_iv", typo)
    with pytest.raises(ValueError) as err:
        rows("table_iv", SMOKE)
    message = str(err.value)
    assert message.startswith("table_iv: no paper row 'w/o  K'")
    assert all(repr(label) in message for label in paper_rows("table_iv"))
    with pytest.raises(ValueError, match="table_v: no paper row 'twenty'"):
        paper_numbers("table_v", "twenty")
    assert paper_numbers("table_v", "") is None          # declared: no paper row


def test_the_workflow_stops_at_start_up_on_a_paper_label_the_paper_lacks(monkeypatch):
    """The workflow looks every row's paper label up when the Snakefile is parsed, before any job."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    typo = dataclasses.replace(TABLES["table_ix"], rows=lambda p: [Row("Ours (Fine-tune)", "Ours (Finetune)", "finetune")])
    monkeypatch.setitem(TABLES, "table_ix", typo)
    with SnakemakeApi(OutputSettings(quiet={"all"})) as api, pytest.raises(ValueError) as err:
        api.workflow(resource_settings=ResourceSettings(), snakefile=ROOT / "Snakefile", workdir=ROOT,
                     config_settings=ConfigSettings(configfiles=[ROOT / "configs" / "smoke.yaml"]))._workflow
    assert str(err.value).startswith("table_ix: no paper row 'Ours (Finetune)'; the paper's rows are [")


def test_a_baseline_the_paper_does_not_compare_is_one_registry_entry(monkeypatch):
    """Its rows in Tables VIII-X come from its entry, without paper numbers, after the paper's methods."""
    from modelfp.tables import comparison_table

    monkeypatch.setitem(baselines.BASELINES, "newmethod", baselines.Baseline("New et al.", "a method", in_paper=False))
    preset = dataclasses.replace(SMOKE, baselines=("newmethod", "marra"))
    assert rows("table_ix", preset)[:2] == [Row("New et al.", "", "baseline_newmethod"),
                                            Row("Marra et al.", "Marra et al.", "baseline_marra")]
    table = comparison_table("table_ix", [(r.label, r.paper, None) for r in rows("table_ix", preset)])
    assert [r["method"] for r in table][len(paper_rows("table_ix")):] == [
        "New et al.", "Training-free reference", "Random-init extractor"]
    assert table[len(paper_rows("table_ix"))]["paper classical verification_acc"] == ""


def test_the_data_file_holds_each_tables_rows_with_its_arity():
    raw = yaml.safe_load(resources.files("modelfp").joinpath(PAPER_NUMBERS).read_text())
    arity = {**{name: (2 if t.comparison else 1) * len(t.metrics) for name, t in TABLES.items()}, **NUMBERS_ONLY}
    assert list(raw) and set(raw) == set(arity)
    for table, numbers_by_label in raw.items():
        for label, numbers in numbers_by_label.items():
            assert isinstance(label, str), (table, label)            # numeric labels are quoted
            assert len(numbers) == arity[table], (table, label)
            assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers), (table, label)
            assert paper_rows(table)[label] == tuple(numbers)
    assert set(FIGURES) - set(raw) == {"fig_16"}                     # Figure 16 has no paper numbers


def test_known_numbers_of_the_paper_are_read_as_printed():
    """A few cells of the paper, read as the code had them before they became data (types included:
    csv cells are written from them)."""
    assert paper_rows("table_iv")["w/o A"] == (84.75, 92.19, 87.03, 86.80)
    assert paper_rows("table_x")["Marra et al."] == (-0.07, 23.18, -0.21, 34.17)
    assert list(paper_rows("table_viii")) == ["Marra et al.", "Yu et al.", "DNA-Det", "RepMix", "Abady et al.", "POSE",
                                              "Ours (Only-Syn)", "Ours (Fine-tune)"]
    all_row = (89.73, 95.69, 94.03, 93.84)         # the All extractor is a row of each of Tables IV-VII
    assert [paper_rows(t)[label] for t, label in (("table_iv", "All"), ("table_v", "20"), ("table_vi", "CelebA + LSUN"),
                                                  ("table_vii", "3x3"))] == [all_row] * 4
    assert paper_rows("fig_8") == {"1": (42,), "2": (133,), "3": (393,)} and type(paper_rows("fig_8")["3"][0]) is int
    assert paper_rows("table_ii")["w/o U"] == (9.81,) and paper_rows("table_xi")["500"] == (100.0,)
    assert paper_rows("fig_3") == {"2": (0.9,)}
    assert paper_rows("fig_16") == {}


@pytest.mark.skipif(not PAPER_TEXT.exists(), reason=f"the paper's text is not at {PAPER_TEXT}")
def test_every_number_in_the_data_file_is_the_papers():
    text = PAPER_TEXT.read_text().replace("×\\times×", "x")
    romans = {"table_iv": "IV", "table_v": "V", "table_vi": "VI", "table_vii": "VII", "table_viii": "VIII",
              "table_ix": "IX", "table_x": "X"}
    for table, roman in romans.items():
        block = text[text.index(f"TABLE {roman}:"):]
        lines = block[:block.find("\nTABLE ")].splitlines()         # up to the next table
        for label, numbers in paper_rows(table).items():
            printed = " ".join(f"{v:.2f}" for v in numbers)
            assert any(line.startswith(label) and line.endswith(printed) for line in lines), (table, label, printed)
    ii = text[text.index("TABLE II:"):].splitlines()[1:5]
    assert " ".join(line.removeprefix("Models ") for line in ii[0::2]) == " ".join(paper_rows("table_ii"))
    assert " ".join(line.removeprefix("FFD ") for line in ii[1::2]) == " ".join(
        f"{v:.2f}" for (v,) in paper_rows("table_ii").values())
    xi = dict(re.findall(r"^N=(\d+) ([\d.]+) ?%", text[text.index("TABLE XI:"):], re.M))
    assert xi == {n: f"{v:.2f}" for n, (v,) in paper_rows("table_xi").items()}
    depth = text[text.index("Depth of Synthetic Models."):].split("\n")[0]
    assert [int(h) for h in re.findall(r"(\d+) (?:GPU )?hours", depth)] == [v for (v,) in paper_rows("fig_8").values()]
    assert "when swapping the last two blocks, the reversal accuracy reaches 0.9." in text
    assert paper_rows("fig_3") == {"2": (0.9,)}


def test_the_paper_preset_shows_every_paper_row():
    for table in (*TABLES, *FIGURES):
        assert {r.paper for r in rows(table, PAPER)} - {""} == set(paper_rows(table)), table


def test_the_paper_numbers_ship_in_the_wheel():
    """Package data is listed in pyproject.toml: without it a built wheel lacks the file."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert PAPER_NUMBERS in pyproject["tool"]["setuptools"]["package-data"]["modelfp"]
    assert (Path(paper_tables.__file__).parent / PAPER_NUMBERS).is_file()
