"""benchmarks/robustness.py on a tiny fabricated run: which models and images it takes (the
evaluation side, the test bed's evaluated models only), the re-saved copies the tool reads, and the
table and paired comparison it prints; and benchmarks/verify_resaved.py, verify on a re-saved image. (The
re-saves themselves: tests/test_perturb.py.)"""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import load_benchmark
from modelfp import denoise, splits
from modelfp import extractor as ex


def write_model(folder: Path, kind: int, n: int, base=None):
    """n 24-pixel colour images of a toy model (noise plus its own periodic trace) and its meta.json."""
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(kind)
    y, x = np.mgrid[:24, :24]
    trace = (((x + kind * y) % (kind + 2)) == 0) * 70
    for i in range(n):
        img = (rng.integers(60, 140, (24, 24, 3)) + trace[..., None] * [1, 0.5, 0]).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / "images" / f"{i:05d}.png")
    (folder / "meta.json").write_text(json.dumps({"name": folder.name, "base": base}))


def tiny_extractor(tmp_path, name, **attrs) -> str:
    """The training-free reference extractor over a tiny denoiser (16-pixel window), saved."""
    model = ex.build(denoise.init_model(depth=3, features=4, seed=0),
                     ex.ExtractorConfig(backbone="none", transform="log1p", image_size=16), ["a", "b"], seed=0)
    for key, value in attrs.items():
        setattr(model, key, value)
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    ex.save(model, tmp_path / name, variant="reference")
    return str(tmp_path / name)


def test_the_test_bed_is_its_evaluated_models_and_draws_come_from_the_evaluation_side(tmp_path):
    bench = load_benchmark("robustness")
    for kind, (name, base) in enumerate([("vae", None), ("flow", None), ("vae_lora0", "vae")]):
        write_model(tmp_path / "testbed" / name, kind, 30, base)
    (tmp_path / "testbed" / "contact_sheets").mkdir()
    folders = bench.model_folders(tmp_path, "testbed")
    assert sorted(folders) == ["flow", "vae"]            # the LoRA descendant and the sheets are left out
    chosen = bench.choose(folders, 0.5, 3, 100, seed=0)
    for name, (gallery, queries) in chosen.items():
        evaluation = set(splits.folder_side(folders[name], 0.5, splits.EVAL)[0])
        assert len(gallery) == 3 and not set(gallery) & set(queries)
        assert set(gallery) | set(queries) == evaluation       # fewer queries than asked: all the rest
    assert bench.choose(folders, 0.5, 3, 100, seed=0) == chosen != bench.choose(folders, 0.5, 3, 100, seed=1)


def test_the_benchmark_reads_real_resaved_files_and_compares_extractors_on_the_same_queries(tmp_path, capsys):
    bench = load_benchmark("robustness")
    for kind in range(3):
        write_model(tmp_path / "results" / "validation" / f"val{kind}", kind, 40)
    calibrated = tiny_extractor(tmp_path, "all/model.pt", threshold=0.5, openset_threshold=0.5)
    trained = tiny_extractor(tmp_path, "all/trained.pt")
    out, per_model = tmp_path / "robustness.csv", tmp_path / "per_model.csv"
    assert bench.main(["--results", str(tmp_path / "results"), "--extractor", calibrated, "--extractor", trained,
                       "--gallery", "4", "--queries", "6", "--out", str(out), "--threads", "1",
                       "--per-model", str(per_model)]) == 0
    printed = capsys.readouterr().out
    assert "3 models (validation" in printed and "McNemar" in printed
    assert "per model, all/model.pt" in printed and "per model, all/trained.pt" in printed
    rows = list(csv.DictReader(out.open()))
    # per model: each model's 6 queries per condition, and the models' accuracies average to the
    # overall one (equal query counts)
    models = list(csv.DictReader(per_model.open()))
    assert len(models) == 2 * 3 * len(bench.RESAVES)
    assert {r["model"] for r in models} == {"val0", "val1", "val2"} and all(r["queries"] == "6" for r in models)
    for r in rows:
        mine = [float(m["accuracy"]) for m in models if m["extractor"] == r["extractor"]
                and m["condition"] == r["condition"]]
        assert len(mine) == 3 and abs(np.mean(mine) - float(r["accuracy"])) < 1e-9
    assert all(float(m["ratio_to_clean"]) == 1 for m in models if m["condition"] == "clean" and m["accuracy"] != "0.0")
    assert [r["condition"] for r in rows] == list(bench.RESAVES) * 2
    for r in rows:
        # every query of the three models, each condition's copy read from its file, its note included
        assert int(r["queries"]) == 18
        # an alpha channel, opaque or translucent, leaves the stored colours: no note (attributor.weakened)
        assert float(r["weakened_note"]) == (0.0 if r["condition"] in ("clean", "rgba_opaque", "rgba_half") else 1.0)
        assert 0 <= float(r["accuracy"]) <= 1
    clean = [r for r in rows if r["condition"] == "clean"]
    assert all(float(r["ratio_to_clean"]) == 1 for r in clean)
    # the tool reads the colours under alpha as stored: both RGBA copies are the clean pixels
    assert all(float(r["ratio_to_clean"]) == 1 for r in rows if r["condition"].startswith("rgba"))
    # the calibrated file says whether it names the right model; a trained.pt has no open-set answer
    n = len(bench.RESAVES)
    assert all(r["named_right"] != "" for r in rows[:n]) and all(r["named_right"] == "" for r in rows[n:])
    # the same network twice (only the thresholds differ): nearest answers agree query by query
    assert all(r["vs"] == "all/model.pt" and r["only_vs_right"] == r["only_this_right"] == "0"
               and float(r["mcnemar_p"]) == 1 for r in rows[n:])
    assert [r["accuracy"] for r in rows[:n]] == [r["accuracy"] for r in rows[n:]]


def test_own_model_absent_is_what_identify_answers_without_that_model(tmp_path):
    """The open-set side of the same queries: leaving a query's model out of its ranking answers as
    identify answers with a gallery that never held the model (JPEG copies and clean alike)."""
    from modelfp.attributor import Attributor
    bench = load_benchmark("robustness")
    for kind in range(3):
        write_model(tmp_path / "results" / "validation" / f"val{kind}", kind, 40)
    # a per-model rule with a margin, so both the thresholds and the margin are exercised; the JPEG 90
    # copies judged by a global rule of their own that no score clears (a cosine is at most 1)
    jpeg90 = {"verification_threshold": 0.5,
              "openset": {"threshold": 1.01, "z": 0.0, "prior": float("inf"), "margin": 0.0, "neighbours": 0}}
    extractor = tiny_extractor(tmp_path, "all/model.pt", threshold=0.5, openset_threshold=0.3,
                               openset_rule={"z": 0.5, "prior": 3.0, "margin": 0.01}, resaved={"jpeg90": jpeg90})
    folders = bench.model_folders(tmp_path / "results", "validation")
    chosen = bench.choose(folders, 0.5, 4, 6, 0)
    # JPEG 92 and 4:4:4 JPEG 90 have no copies of their own: identify meets them with the JPEG 90
    # copies and judges them by the JPEG 90 rule, and so must the benchmark
    conditions = ["clean", "jpeg95", "gray", "jpeg92", "jpeg90_444", "webp"]
    bench.write_conditions(chosen, folders, conditions, tmp_path / "copies")
    got = bench.answers(extractor, chosen, tmp_path / "copies", conditions, tmp_path)
    att = Attributor(extractor)
    without = tmp_path / "without_val0.gallery"
    att.gallery_add_models(without, {m: [str(p) for p in g] for m, (g, _) in chosen.items() if m != "val0"})
    for condition in conditions:
        records = att.identify([str(tmp_path / "copies" / condition / "val0")], without)
        assert len(records) == 6
        for r in records:
            assert got[condition][f"val0/{Path(r.name).with_suffix('').as_posix()}"][3] == (r.model == "unknown")
    outcomes = [v[3] for rows in got.values() for v in rows.values()]
    assert all(isinstance(v, bool) for v in outcomes)
    # the JPEG 90 rule tells the two judgements apart: it names fewer JPEG 92 queries than the clean one would
    assert sum(v[1] for v in got["jpeg92"].values()) < sum(v[1] for v in got["clean"].values())
    # and "named right" is what identify answers with the whole gallery, under the file's own rule
    whole = tmp_path / "whole.gallery"
    att.gallery_add_models(whole, {m: [str(p) for p in g] for m, (g, _) in chosen.items()})
    for condition in conditions:
        for r in att.identify([str(tmp_path / "copies" / condition)], whole):
            assert got[condition][Path(r.name).with_suffix("").as_posix()][1] == (r.model == Path(r.name).parts[0])


def test_two_calibrations_of_one_network_are_paired_on_named_right_and_absent_unknown(tmp_path, capsys):
    """Two files of one network that differ only in their open-set rule (a recalibration) answer
    the same nearest model for every query; the benchmark then pairs what differs, named right and
    own model absent called unknown, query by query (McNemar, the counts of each side)."""
    bench = load_benchmark("robustness")
    for kind in range(3):
        write_model(tmp_path / "results" / "validation" / f"val{kind}", kind, 40)
    loose = tiny_extractor(tmp_path, "loose/model.pt", threshold=0.5, openset_threshold=-1.0)
    strict = tiny_extractor(tmp_path, "strict/model.pt", threshold=0.5, openset_threshold=1.01)
    out = tmp_path / "robustness.csv"
    assert bench.main(["--results", str(tmp_path / "results"), "--extractor", loose, "--extractor", strict,
                       "--gallery", "4", "--queries", "6", "--conditions", "clean", "jpeg90", "--out", str(out),
                       "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "(named right; McNemar exact)" in printed and "(own model absent: unknown; McNemar exact)" in printed
    first, second = [[r for r in csv.DictReader(out.open()) if r["extractor"] == e] for e in ("loose/model.pt",
                                                                                                "strict/model.pt")]
    for a, b in zip(first, second):
        # the loose file names every query its nearest model, the strict one none
        assert float(b["named_right"]) == 0 and float(a["absent_unknown"]) == 0 and float(b["absent_unknown"]) == 1
        n = int(a["queries"])
        assert int(b["named_only_vs_right"]) == round(float(a["named_right"]) * n) and b["named_only_this_right"] == "0"
        assert (b["absent_only_vs_right"], int(b["absent_only_this_right"])) == ("0", n)
        assert float(b["absent_mcnemar_p"]) < 0.05 and b["only_vs_right"] == b["only_this_right"] == "0"


def test_verify_resaved_counts_hand_made_pairs_under_both_thresholds():
    bench = load_benchmark("verify_resaved")
    got = {"same": np.array([True, True, False, False, False]), "score": np.array([0.8, 0.5, 0.6, 0.3, 0.1]),
           "threshold": np.full(5, 0.55), "clean_threshold": 0.2}
    row = bench.summary(got, "jpeg90")
    # own threshold 0.55: same pairs 0.8 yes, 0.5 no; different 0.6 wrong, 0.3 and 0.1 right
    assert (row["same_called_same"], row["different_called_different"]) == (0.5, pytest.approx(2 / 3))
    # clean 0.2: both same pairs right; of the different ones only 0.1 right
    assert (row["clean_same_called_same"], row["clean_different_called_different"]) == (1.0, pytest.approx(1 / 3))
    assert (row["only_clean_right"], row["only_this_right"], row["threshold"]) == (1, 1, 0.55)


def test_verify_resaved_judges_each_pair_by_the_files_threshold_of_its_resave(tmp_path, capsys):
    """A re-saved query's pairs are judged by the re-save's own verification threshold, clean
    pairs by the clean one; the clean threshold's column scores the very same pairs."""
    bench = load_benchmark("verify_resaved")
    for kind in range(3):
        write_model(tmp_path / "results" / "validation" / f"val{kind}", kind, 40)
    resaved = {c: {"verification_threshold": 0.9, "openset": {"threshold": 0.9, "z": 0.0, "prior": 0.0, "margin": 0.0}}
               for c in ("jpeg90", "gray")}
    extractor = tiny_extractor(tmp_path, "all/model.pt", threshold=0.5, openset_threshold=0.5, resaved=resaved)
    out = tmp_path / "verify.csv"
    assert bench.main(["--results", str(tmp_path / "results"), "--extractor", extractor, "--images", "3",
                       "--conditions", "clean", "jpeg90", "gray", "--out", str(out), "--threads", "1"]) == 0
    rows = {r["condition"]: r for r in csv.DictReader(out.open())}
    assert "McNemar" in capsys.readouterr().out
    for condition, r in rows.items():
        assert (int(r["same_pairs"]), int(r["different_pairs"])) == (3 * 3 * 3, 3 * 3 * 6)
        assert float(r["threshold"]) == (0.5 if condition == "clean" else 0.9) and float(r["clean_threshold"]) == 0.5
    clean = rows["clean"]
    assert clean["balanced"] == clean["clean_balanced"] and clean["only_this_right"] == clean["only_clean_right"] == "0"


def test_a_second_file_of_one_network_reuses_its_embeddings_and_answers_as_if_run_alone(tmp_path):
    """Two calibrations of one network that score differently (the fingerprint, the 2 nearest
    images) share the gallery and the queries' fingerprints, and each answers as it would alone."""
    bench = load_benchmark("robustness")
    for kind in range(3):
        write_model(tmp_path / "results" / "validation" / f"val{kind}", kind, 40)
    rule = {"z": 0.5, "prior": 3.0, "margin": 0.0}
    by_print = tiny_extractor(tmp_path, "k0/model.pt", threshold=0.5, openset_threshold=0.3, openset_rule=rule)
    by_nearest = tiny_extractor(tmp_path, "k2/model.pt", threshold=0.5, openset_threshold=0.3,
                                openset_rule={**rule, "neighbours": 2})
    folders = bench.model_folders(tmp_path / "results", "validation")
    chosen = bench.choose(folders, 0.5, 4, 6, 0)
    conditions = ["clean", "jpeg95", "webp"]
    bench.write_conditions(chosen, folders, conditions, tmp_path / "copies")
    seen = {}
    first = bench.answers(by_print, chosen, tmp_path / "copies", conditions, tmp_path, seen=seen)
    second = bench.answers(by_nearest, chosen, tmp_path / "copies", conditions, tmp_path, seen=seen)
    (_, net), = seen.items()                     # one network: one gallery, one embedding per condition
    assert set(net["embedded"]) == set(conditions)
    assert set(net["ranked"]) == {(k, c) for k in (0, 2) for c in conditions}
    (tmp_path / "alone").mkdir()
    # exact: alone, the same code embeds the same images in the same batches on this machine
    assert second == bench.answers(by_nearest, chosen, tmp_path / "copies", conditions, tmp_path / "alone")
    assert first == bench.answers(by_print, chosen, tmp_path / "copies", conditions, tmp_path / "alone")
    # the two scores rank differently somewhere, so the test tells a shared ranking from its own
    ranked = {k: [r.top for c in conditions for r in net["ranked"][k, c]] for k in (0, 2)}
    assert ranked[0] != ranked[2]
    # every webp query was read as a lossy WebP and met the gallery's WebP copies
    assert all(r.compared == "webp" and "lossy WebP" in r.note for r in net["ranked"][2, "webp"])
