"""Open-set rejection (leave one model out of the gallery): AUROC of known vs unknown best scores
and the threshold between them, on fabricated embeddings whose answer is known; and identify's
per-model open-set answers (modelfp.openset): the rule, its calibration on the validation inputs
only, the fallback of old extractors and galleries, benchmarks/openset.py's core."""
import contextlib
import csv
import io
import json
import logging
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import load_benchmark
from modelfp import denoise, openset, steps
from modelfp import extractor as ex
from modelfp.attributor import WINDOWS, Acceptance, Attributor, Candidate
from modelfp.cli import main
from modelfp.evaluate import best_threshold_accuracy, evaluate_group, gallery_scores, identification, open_set


def clusters(n_models=4, per_model=12, dim=8, noise=0.05, seed=0):
    """Tight clusters around orthogonal directions: embeddings (n, dim) and string labels."""
    rng = np.random.default_rng(seed)
    emb = np.repeat(3.0 * np.eye(dim)[:n_models], per_model, axis=0)
    emb = emb + noise * rng.normal(size=emb.shape)
    return emb, np.repeat([f"m{k}" for k in range(n_models)], per_model)


def test_separated_clusters_give_auroc_one_and_a_threshold_between_the_scores():
    emb, labels = clusters()
    out = open_set(emb, labels, gallery_size=4, seed=0)
    assert out["auroc"] == 1.0 and out["balanced_accuracy"] == 1.0
    # every query is unknown once (its model left out) and known once per other model
    queries = len(labels) - 4 * 4
    assert (out["n_unknown"], out["n_known"]) == (queries, 3 * queries)
    assert out["unknown_scores"].max() < out["threshold"] < out["known_scores"].min()
    # orthogonal clusters: unknown queries score ~0 against other models, known ones ~1
    assert out["unknown_scores"].max() < 0.2 and out["known_scores"].min() > 0.9


def test_a_model_identical_to_another_is_never_unknown_hand_computed_auroc():
    # models a, b, c; c's images equal a's (e1), b's are e2. 5 images each, gallery 2: 3 queries each.
    # Unknown scores: a's queries (a left out) meet c: 1; b's meet a and c: 0; c's meet a: 1
    #   -> 6 ones and 3 zeros. Known scores: every query's own model is in the gallery: 18 ones.
    # AUROC = P(known > unknown) + P(tie) / 2 = 3/9 + (6/9) / 2 = 2/3.
    # Best balanced cut: "known" at >= 1 keeps all known and rejects 3 of 9 unknown: (1 + 1/3) / 2 = 2/3,
    # at the midpoint 0.5 of the scores 1 and 0.
    e1, e2 = np.eye(3)[0], np.eye(3)[1]
    emb = np.array([e1] * 5 + [e2] * 5 + [e1] * 5)
    labels = np.repeat(["a", "b", "c"], 5)
    out = open_set(emb, labels, gallery_size=2, seed=0)
    assert np.sort(out["unknown_scores"]).tolist() == [0.0] * 3 + [1.0] * 6
    assert out["known_scores"].tolist() == [1.0] * 18
    assert out["auroc"] == pytest.approx(2 / 3)
    assert out["balanced_accuracy"] == pytest.approx(2 / 3) and out["threshold"] == pytest.approx(0.5)


def test_open_set_uses_identifications_gallery_split():
    # a query never counts in a gallery fingerprint: the split is identification's (same seed)
    emb, labels = clusters(noise=1.0)
    ide = identification(emb, labels, gallery_size=4, seed=3)
    out = open_set(emb, labels, gallery_size=4, seed=3)
    assert out["n_unknown"] == ide["n_queries"]
    again = open_set(emb, labels, gallery_size=4, seed=3)
    assert again["auroc"] == out["auroc"] and again["threshold"] == out["threshold"]


def test_one_model_is_refused():
    with pytest.raises(ValueError, match="at least 2 models"):
        open_set(np.eye(6), np.array(["x"] * 6), gallery_size=2)


def test_balanced_best_threshold_weighs_the_classes_equally():
    # 3 positives (0.9, 0.4, 0.3), 1 negative (0.5). Plain accuracy: all "same" (>= 0.3) is right on
    # 3 of 4; balanced: only >= 0.9 gets (1/3 + 1) / 2 = 2/3, the cut between 0.9 and 0.5
    scores, same = [0.9, 0.4, 0.3, 0.5], [True, True, True, False]
    assert best_threshold_accuracy(scores, same) == pytest.approx((0.75, 0.3))
    assert best_threshold_accuracy(scores, same, balanced=True) == pytest.approx((2 / 3, 0.7))
    # with equally many of each class, balanced is plain accuracy
    scores, same = [0.9, 0.2, 0.8, 0.5], [True, True, False, False]
    assert best_threshold_accuracy(scores, same, balanced=True) == best_threshold_accuracy(scores, same)


def test_evaluate_group_reports_the_open_set_columns():
    emb, labels = clusters(noise=1.0)
    row = evaluate_group(emb, labels, n_same=20, n_diff=20, gallery_size=4, seed=0)
    out = open_set(emb, labels, 4, seed=0)
    assert row["openset_auroc"] == pytest.approx(100 * out["auroc"])
    assert row["openset_threshold"] == out["threshold"]


# ---------------------------------------------------------------------------------------------
# Per-model open-set answers (modelfp.openset): the rule, its calibration, the tool's fallback,
# the benchmark (issue 25)


def families(seed=0, n_families=4, per_model=40, dim=32):
    """Models whose images spread differently: per family a tight model, a tight close relative of
    it, and a diffuse model elsewhere (unit rows, string labels)."""
    rng = np.random.default_rng(seed)
    emb, labels = [], []
    for f in range(n_families):
        centre = rng.normal(size=dim)
        relative = centre / np.linalg.norm(centre) + 0.25 * rng.normal(size=dim) / np.sqrt(dim)
        for name, c, spread in ((f"tight{f}", centre, 0.15), (f"relative{f}", relative, 0.15),
                                (f"diffuse{f}", rng.normal(size=dim), 0.9)):
            emb.append(c / np.linalg.norm(c) + spread * rng.normal(size=(per_model, dim)) / np.sqrt(dim))
            labels += [name] * per_model
    return np.concatenate(emb), np.array(labels)


def test_leave_one_out_scores_are_each_image_against_its_models_other_images():
    rng = np.random.default_rng(0)
    prints = rng.normal(size=(5, 6))
    prints /= np.linalg.norm(prints, axis=1, keepdims=True)
    total = prints.sum(0)
    expected = [prints[i] @ (total - prints[i]) / np.linalg.norm(total - prints[i]) for i in range(5)]
    assert openset.loo_scores(prints, total) == pytest.approx(expected)
    # a gallery that kept only some images' fingerprints still scores those exactly
    assert openset.loo_scores(prints[:2], total) == pytest.approx(expected[:2])
    assert openset.loo_scores(prints[:1], prints[0]).size == 0          # one image: nothing to leave out


def test_with_neighbours_a_score_is_the_mean_of_the_nearest_images_cosines():
    rng = np.random.default_rng(1)
    gallery = rng.normal(size=(7, 5))
    labels = np.array(["a", "a", "a", "b", "b", "b", "b"])
    queries = rng.normal(size=(3, 5))
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
    cos = unit(queries) @ unit(gallery).T
    names, two = gallery_scores(queries, gallery, labels, neighbours=2)
    assert list(names) == ["a", "b"]
    for q in range(3):
        assert two[q, 0] == pytest.approx(np.sort(cos[q, :3])[-2:].mean())
        assert two[q, 1] == pytest.approx(np.sort(cos[q, 3:])[-2:].mean())
    # more neighbours than images: all of them; 0: the cosine with the model's fingerprint
    assert gallery_scores(queries, gallery, labels, neighbours=5)[1][:, 0] == pytest.approx(cos[:, :3].mean(1))
    fingerprint = unit(unit(gallery[:3]).mean(0))
    assert gallery_scores(queries, gallery, labels)[1][:, 0] == pytest.approx(unit(queries) @ fingerprint)
    # leave-one-out with neighbours: each image against its model's other images
    prints = unit(gallery[3:])
    expected = [np.sort(np.delete(prints @ prints[i], i))[-2:].mean() for i in range(4)]
    assert openset.loo_scores(prints, prints.sum(0), neighbours=2) == pytest.approx(expected)
    assert openset.loo_scores(prints[:1], prints[0], neighbours=2).size == 0


def two_mode_models(n_models=4, per_mode=15, dim=24, noise=0.15, seed=0):
    """Models whose images spread in two directions each (as a VAE's or a re-saved copy's do)."""
    rng = np.random.default_rng(seed)
    emb, labels = [], []
    for m in range(n_models):
        for mode in range(2):
            emb.append(3 * np.eye(dim)[2 * m + mode] + noise * 3 * rng.normal(size=(per_mode, dim)))
            labels += [f"m{m}"] * per_mode
    emb = np.concatenate(emb)
    order = rng.permutation(len(emb))          # the gallery draw sees both modes
    return emb[order], np.asarray(labels)[order]


def test_nearest_images_answer_a_model_that_spreads_where_its_fingerprint_cannot():
    emb, labels = two_mode_models()
    fits = {k: openset.fit_deployable(emb, labels, gallery_size=8, seed=0, neighbours=k) for k in (0, 2)}
    assert fits[2].rule.neighbours == 2 and fits[0].rule.neighbours == 0
    # the fingerprint sits between the two directions, an image of either scores about 0.7 against
    # it; its nearest images are in its own direction
    assert fits[2].fitted["balanced"] > fits[0].fitted["balanced"] + 0.05
    assert fits[2].fitted["known_named"] > 0.9 and fits[2].fitted["absent_unknown"] > 0.9
    assert fits[2].rule.threshold == open_set(emb, labels, 8, 0, 1, neighbours=2)["threshold"]


def test_a_models_threshold_is_its_own_spread_shrunk_toward_the_global_threshold():
    loo = np.array([0.7, 0.8, 0.9])                    # mean 0.8, sd 0.1
    own = openset.OpenSetRule(0.5, z=1.0, prior=0.0)
    assert own.model_threshold(loo) == pytest.approx(0.7)
    half = openset.OpenSetRule(0.5, z=1.0, prior=3.0)   # weight 3 / (3 + 3)
    assert half.model_threshold(loo) == pytest.approx(0.6)
    assert own.model_threshold([0.9]) == 0.5            # fewer than 2 images: the global threshold
    assert openset.OpenSetRule.global_only(0.5).model_threshold(loo) == 0.5


def test_the_margin_turns_an_image_between_two_models_into_unknown_and_says_why():
    rule = openset.OpenSetRule(0.5, z=1.0, prior=0.0, margin=0.05)
    answer = openset.decide(rule, "vae", 0.90, 0.80, "beta_vae", 0.88)
    assert not answer.accepted and "margin" in answer.reason and "beta_vae" in answer.reason
    assert openset.decide(rule, "vae", 0.90, 0.80, "beta_vae", 0.80).accepted
    low = openset.decide(rule, "vae", 0.75, 0.80, "beta_vae", 0.2)
    assert not low.accepted and low.reason == "score 0.7500 below vae's threshold 0.8000"


def test_per_model_thresholds_name_more_known_images_than_the_global_one_at_the_same_unknown_rate():
    emb, labels = families(seed=0)
    scored = openset.score_splits(emb, labels, openset.leave_out_splits(labels, 10, 0.6, repeats=10, seed=1))
    per_model = openset.outcomes(scored, openset.OpenSetRule(0.9, z=2.0, prior=3.0))
    # the global threshold that calls exactly as many absent images unknown
    absent_best = np.sort(scored.best[~scored.known])
    k = math.ceil(per_model["absent_unknown"] * len(absent_best))
    cut = absent_best[k - 1] + 1e-9 if k else absent_best[0]
    same_rate = openset.outcomes(scored, openset.OpenSetRule.global_only(cut))
    assert same_rate["absent_unknown"] == pytest.approx(per_model["absent_unknown"], abs=1 / len(absent_best))
    assert 0.5 < per_model["absent_unknown"] < 1          # a real trade-off: relatives score near their kin
    # one threshold must reject the tight models' relatives, so it rejects the diffuse models' own images
    assert per_model["known_named"] > same_rate["known_named"] + 0.1
    assert per_model["n_known"] == same_rate["n_known"] > 0 and per_model["n_absent"] > 0


def test_the_protocol_leaves_whole_models_out_and_never_queries_a_gallery_image():
    emb, labels = families(seed=0, n_families=2, per_model=15)
    for split in openset.leave_out_splits(labels, gallery_size=5, known_fraction=0.6, repeats=4, seed=0):
        known_models = set(labels[split.gallery])
        assert len(known_models) == round(0.6 * 6) and all((labels[split.gallery] == m).sum() == 5 for m in known_models)
        assert not set(split.gallery) & set(split.known)
        assert set(labels[split.known]) == known_models and not set(labels[split.absent]) & known_models
        assert len(split.gallery) + len(split.known) + len(split.absent) == len(labels)
    with pytest.raises(ValueError, match="more than gallery_size"):
        openset.leave_out_splits(labels, gallery_size=15)


# -- calibration: the workflow's calibrate verb reads only the validation inputs it is given

def tiny_extractor(tmp_path, name="trained.pt", denoiser_seed=0, **attrs) -> str:
    """The training-free reference extractor over a tiny denoiser (16-pixel window), saved."""
    model = ex.build(denoise.init_model(depth=3, features=4, seed=denoiser_seed),
                     ex.ExtractorConfig(backbone="none", transform="log1p", image_size=16), ["a", "b"], seed=0)
    for key, value in attrs.items():
        setattr(model, key, value)
    path = tmp_path / name
    ex.save(model, path, variant="reference")
    return str(path)


def embeddings_folder(folder: Path, emb, labels) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for name in np.unique(labels):
        np.savez(folder / f"{name}.npz", embeddings=emb[labels == name].astype(np.float32))
    return str(folder)


def evaluation_csv(path: Path, openset_threshold=0.9) -> str:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["group", "verification_threshold", "openset_threshold"])
        writer.writeheader()
        writer.writerow({"group": "all", "verification_threshold": 0.5, "openset_threshold": openset_threshold})
    return str(path)


def calibrate(tmp_path, extractor, evaluation, embeddings, out="model.pt"):
    assert steps.main(["calibrate", "--extractor", extractor, "--evaluation", evaluation, "--embeddings", embeddings,
                       "--gallery", "10", "--seed", "0", "--out", str(tmp_path / out)]) == 0
    return ex.load(tmp_path / out).openset_rule


def test_calibration_fits_the_constants_on_the_validation_embeddings_it_is_given_only(tmp_path):
    trained = tiny_extractor(tmp_path)
    val_emb, val_labels = families(seed=0)
    val = embeddings_folder(tmp_path / "embeddings/all/val-w3", val_emb, val_labels)
    evaluation = evaluation_csv(tmp_path / "val-w3.csv")
    # a test-bed view beside it, which calibration must not read
    bed = embeddings_folder(tmp_path / "embeddings/all/w3", *families(seed=5))
    first = calibrate(tmp_path, trained, evaluation, val, "first.pt")
    fitted = openset.fit(val_emb, val_labels, 0.9, gallery_size=10, seed=0)
    assert {k: first[k] for k in ("z", "prior", "margin", "neighbours")} == fitted.rule.constants()
    assert first["fitted_on"] == val and first["balanced"] >= first["balanced_global"]
    # the test bed's embeddings change: the constants do not
    for npz in Path(bed).glob("*.npz"):
        npz.write_bytes(b"changed")
    assert calibrate(tmp_path, trained, evaluation, val, "again.pt") == first
    # the validation embeddings change: the constants follow them
    other_emb, other_labels = clusters(n_models=6, per_model=20, noise=0.3, seed=2)
    other = embeddings_folder(tmp_path / "other/val-w3", other_emb, other_labels)
    changed = calibrate(tmp_path, trained, evaluation, other, "other.pt")
    assert [changed[k] for k in ("z", "prior", "margin")] != [first[k] for k in ("z", "prior", "margin")]
    assert {k: changed[k] for k in ("z", "prior", "margin", "neighbours")} == openset.fit(other_emb, other_labels, 0.9).rule.constants()


def test_calibration_stores_the_test_time_views_its_embeddings_were_made_with(tmp_path):
    """The embed step writes its views into each npz; calibrate carries them into the file, so the
    tool embeds as the thresholds were calibrated; a folder of two counts is refused."""
    trained = tiny_extractor(tmp_path)
    emb, labels = families(seed=0)
    evaluation = evaluation_csv(tmp_path / "v.csv")
    plain = embeddings_folder(tmp_path / "plain", emb, labels)          # written before views were stored
    calibrate(tmp_path, trained, evaluation, plain, "plain.pt")
    assert ex.load(tmp_path / "plain.pt").views == 1
    viewed = tmp_path / "viewed"
    viewed.mkdir()
    for name in np.unique(labels):
        np.savez(viewed / f"{name}.npz", embeddings=emb[labels == name].astype(np.float32), views=8)
    calibrate(tmp_path, trained, evaluation, str(viewed), "viewed.pt")
    assert ex.load(tmp_path / "viewed.pt").views == 8
    np.savez(viewed / "extra.npz", embeddings=emb[:3].astype(np.float32), views=2)
    assert steps.main(["calibrate", "--extractor", trained, "--evaluation", evaluation, "--embeddings", str(viewed),
                       "--gallery", "10", "--seed", "0", "--out", str(tmp_path / "mixed.pt")]) == 2
    assert not (tmp_path / "mixed.pt").exists()


def test_the_embed_step_writes_its_views_beside_the_embeddings(tmp_path):
    extractor = tiny_extractor(tmp_path)
    folder = tmp_path / "m0"
    write_model_images(folder, 0, 8, seed=0)
    for views in (1, 8):
        out = tmp_path / f"emb{views}"
        assert steps.main(["embed", "--extractor", extractor, "--model", "m0", str(folder), "--train-fraction", "0.5",
                           "--window", "1", "--views", str(views), "--out-dir", str(out), "--device", "cpu"]) == 0
        with np.load(out / "m0.npz") as npz:
            assert int(npz["views"]) == views and npz["embeddings"].shape[0] == len(npz["paths"]) > 0
    with np.load(tmp_path / "emb1" / "m0.npz") as one, np.load(tmp_path / "emb8" / "m0.npz") as eight:
        assert eight["embeddings"].shape[1] == 8 * one["embeddings"].shape[1]
        first = one["embeddings"] / np.linalg.norm(one["embeddings"], axis=1, keepdims=True)
        np.testing.assert_allclose(eight["embeddings"][:, :first.shape[1]] * math.sqrt(8), first, rtol=1e-4, atol=1e-5)


def test_calibrate_without_embeddings_stores_no_per_model_rule(tmp_path):
    trained = tiny_extractor(tmp_path)
    out = tmp_path / "model.pt"
    assert steps.main(["calibrate", "--extractor", trained, "--evaluation", evaluation_csv(tmp_path / "v.csv"),
                       "--gallery", "10", "--seed", "0", "--out", str(out)]) == 0
    model = ex.load(out)
    assert model.openset_threshold == 0.9 and model.openset_rule is None


# -- the tool: per-model answers, and old files falling back to the global threshold

def write_model_images(folder: Path, kind: int, n: int, seed: int) -> list[str]:
    """n 24-pixel images of a toy model: noise plus its own periodic trace."""
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:24, :24]
    trace = (((x + kind * y) % (kind + 2)) == 0) * 70
    paths = []
    for i in range(n):
        img = (rng.integers(60, 140, (24, 24, 3)) + trace[..., None]).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"{i:05d}.png")
        paths.append(str(folder / f"{i:05d}.png"))
    return paths


RULE = {"z": 1.0, "prior": 0.0, "margin": 0.0}


def test_identify_uses_each_models_own_threshold_and_says_why_an_image_is_unknown(tmp_path, capsys):
    path = tiny_extractor(tmp_path, "model.pt", threshold=0.5, openset_threshold=0.5, openset_rule=RULE)
    att = Attributor(path)
    gallery = att.new_gallery()
    for kind in (0, 1):
        att.add(gallery, f"m{kind}", write_model_images(tmp_path / f"m{kind}", kind, 6, seed=kind))
    acceptance = att.acceptance(gallery)
    loo = gallery.loo_scores()
    for name in ("m0", "m1"):
        assert acceptance.thresholds[name] == pytest.approx(loo[name].mean() - loo[name].std(ddof=1))
    # an image is named when it clears its nearest model's own threshold, whatever the global one
    query = write_model_images(tmp_path / "q", 0, 1, seed=9)[0]
    r, = att.identify([query], gallery, top_k=1)
    assert r.threshold == acceptance.thresholds[r.nearest]
    assert (r.model == r.nearest) == (r.score >= r.threshold) and (r.reason is None) == (r.model != "unknown")
    gallery_file = str(tmp_path / "g.gallery")
    att.save_gallery(gallery, gallery_file)
    # the command line's table: a reason column only when some answer is unknown; the csv, written a
    # row at a time, always has it (empty when the image is named)
    capsys.readouterr()
    argv = ["identify", query, "--extractor", path, "--gallery", gallery_file]
    assert main([*argv, "--threshold", "-1", "--format", "table"]) == 0
    assert "WHY UNKNOWN" not in capsys.readouterr().out.splitlines()[0]
    assert main([*argv, "--threshold", "-1"]) == 0
    row, = csv.DictReader(capsys.readouterr().out.splitlines()[:2])
    assert row["model"] != "unknown" and row["reason"] == ""
    assert main([*argv, "--threshold", "1.01", "--format", "table"]) == 0
    assert "WHY UNKNOWN" in capsys.readouterr().out.splitlines()[0]
    assert main([*argv, "--threshold", "1.01"]) == 0
    row, = csv.DictReader(capsys.readouterr().out.splitlines()[:2])
    assert row["model"] == "unknown" and row["reason"].startswith("score ") and "below the threshold 1.0100" in row["reason"]
    assert main(["identify", query, "--extractor", path, "--gallery", gallery_file, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model_thresholds"] == pytest.approx(acceptance.thresholds) and "per-model" in doc["open_set_rule"]


def test_identify_scores_by_the_nearest_gallery_images_when_the_rule_says_so(tmp_path):
    rule = {**RULE, "neighbours": 2}
    path = tiny_extractor(tmp_path, "model.pt", threshold=0.5, openset_threshold=0.5, openset_rule=rule)
    att = Attributor(path)
    assert att.open_set_rule().neighbours == 2
    gallery = att.new_gallery()
    for kind in (0, 1):
        att.add(gallery, f"m{kind}", write_model_images(tmp_path / f"m{kind}", kind, 5, seed=kind))
    query = write_model_images(tmp_path / "q", 0, 1, seed=9)[0]
    (_, h), = list(att.embed([query], gallery.windows, views=gallery.views))
    r, = att.identify([query], gallery, top_k=2)
    for candidate in r.top:
        kept = gallery.models[candidate.model]["prints"].float()
        assert candidate.score == pytest.approx(float(torch.topk(kept @ h.float(), 2).values.mean()), abs=1e-5)
    # a model of one image (fewer than the neighbours): that image's cosine
    att.add(gallery, "single", write_model_images(tmp_path / "single", 1, 1, seed=4))
    names, scores = gallery.scores(h, neighbours=2)
    single = gallery.models["single"]["prints"].float()[0]
    assert float(scores[names.index("single")]) == pytest.approx(float(single @ h.float()), abs=1e-5)
    assert float(scores[names.index(r.nearest)]) == pytest.approx(r.score, abs=1e-6)
    # each model's threshold from its images' leave-one-out scores of the same kind
    loo = gallery.loo_scores(neighbours=2)
    assert att.acceptance(gallery).thresholds["m0"] == pytest.approx(loo["m0"].mean() - loo["m0"].std(ddof=1))
    assert not np.allclose(loo["m0"], gallery.loo_scores()["m0"])
    assert att.acceptance(gallery).describe().endswith("a score: the mean cosine with the model's 2 nearest images")
    # a given --threshold replaces the acceptance, not the score
    r_global, = att.identify([query], gallery, threshold=0.0, top_k=2)
    assert r_global.top == r.top and r_global.model == r.nearest and att.open_set_rule(0.0).neighbours == 2
    # a file without the count scores by the fingerprint
    plain = Attributor(tiny_extractor(tmp_path, "plain.pt", threshold=0.5, openset_threshold=0.5, openset_rule=RULE))
    fingerprint = gallery.fingerprints()[1][gallery.fingerprints()[0].index(r.nearest)]
    assert plain.neighbours == 0
    assert plain.identify([query], gallery)[0].score == pytest.approx(float(fingerprint @ h), abs=1e-5)
    # a model added before galleries kept fingerprints is scored by its fingerprint
    del gallery.models["m1"]["prints"]
    names, scores = gallery.scores(h, neighbours=2)
    m1 = names.index("m1")
    assert float(scores[m1]) == pytest.approx(float(gallery.fingerprints()[1][m1] @ h), abs=1e-5)


def test_calibrate_with_neighbours_finds_the_global_threshold_with_that_score(tmp_path, caplog):
    trained = tiny_extractor(tmp_path)
    emb, labels = two_mode_models()
    val = embeddings_folder(tmp_path / "embeddings/all/val-w3", emb, labels)
    evaluation = evaluation_csv(tmp_path / "val-w3.csv", openset_threshold=0.9)
    base = ["calibrate", "--extractor", trained, "--evaluation", evaluation, "--embeddings", val,
            "--gallery", "8", "--seed", "0", "--out", str(tmp_path / "model.pt")]
    assert steps.main(base + ["--neighbours", "2"]) != 0
    assert "--neighbours needs --embeddings and --gallery-draws" in caplog.text
    assert steps.main(base + ["--neighbours", "2", "--gallery-draws", "1"]) == 0
    model = ex.load(tmp_path / "model.pt")
    stored = np.load(Path(val) / "m0.npz")["embeddings"]           # the float32 embeddings calibrate reads
    emb32, labels32 = openset.read_embeddings_folder(val)
    assert stored.dtype == np.float32
    fitted = openset.fit_deployable(emb32, labels32, 8, 0, 1, neighbours=2)
    assert model.openset_threshold == pytest.approx(fitted.rule.threshold) and model.openset_threshold != 0.9
    assert model.openset_rule["neighbours"] == 2
    # exact: the same stored float32 arrays through the same numpy code on one machine (no batch shapes)
    assert Attributor(tmp_path / "model.pt").open_set_rule() == fitted.rule


def test_an_old_extractor_or_gallery_falls_back_to_the_global_threshold_and_says_so_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="modelfp")
    new = tiny_extractor(tmp_path, "new.pt", threshold=0.5, openset_threshold=0.5, openset_rule=RULE)
    # an extractor file written before per-model rules: no openset_rule key at all
    payload = torch.load(new, weights_only=True)
    del payload["openset_rule"]
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    assert ex.load(old).openset_rule is None
    files = {f"m{k}": write_model_images(tmp_path / f"m{k}", k, 4, seed=k) for k in (0, 1)}
    query = write_model_images(tmp_path / "q", 1, 1, seed=7)
    att = Attributor(old)
    gallery = att.new_gallery()
    for name, paths in files.items():
        att.add(gallery, name, paths)
    for _ in range(2):
        r, = att.identify(query, gallery)
        assert r.threshold == 0.5 and (r.model == "unknown") == (r.score < 0.5)
    assert caplog.text.count("calibrated before per-model open-set thresholds") == 1
    # a gallery made before fingerprints were kept: its models use the global threshold
    att = Attributor(new)
    for entry in gallery.models.values():
        del entry["prints"]
    gallery.models["m1"]["prints"] = torch.zeros(0, ex.load(new).dim)       # m1: kept none yet
    acceptance = att.acceptance(gallery)
    assert acceptance.thresholds == {"m0": 0.5, "m1": 0.5} and acceptance.rule.per_model
    assert "m0 added before galleries kept" in caplog.text
    att.add(gallery, "m0", write_model_images(tmp_path / "more", 0, 3, seed=3))
    assert len(gallery.models["m0"]["prints"]) == 3 and att.acceptance(gallery).thresholds["m0"] != 0.5
    # the exported form carries the rule
    exported = tmp_path / "exported"
    ex.export(ex.load(new), exported)
    assert ex.load(exported).openset_rule == RULE


def test_acceptance_names_the_nearest_model_only_above_its_threshold():
    rule = openset.OpenSetRule(0.9, z=1.0, prior=0.0, margin=0.02)
    acceptance = Acceptance(rule, {"diffuse": 0.7, "tight": 0.95})
    assert acceptance.decide([Candidate("diffuse", 0.8), Candidate("tight", 0.3)]).accepted      # under the global
    assert not acceptance.decide([Candidate("tight", 0.92), Candidate("diffuse", 0.3)]).accepted  # over the global
    assert not acceptance.decide([Candidate("diffuse", 0.8), Candidate("tight", 0.79)]).accepted  # the margin
    assert acceptance.decide([Candidate("diffuse", 0.8)]).accepted                              # one model


# -- the benchmark (benchmarks/openset.py) on a tiny fabricated run


def test_the_benchmark_compares_both_rules_on_the_validation_folders_evaluation_side(tmp_path, capsys):
    bench = load_benchmark("openset")
    results = tmp_path / "results"
    for kind in range(4):
        write_model_images(results / "validation" / f"val{kind}" / "images", kind, 12, seed=kind)
    (results / "validation" / "choices.csv").write_text("not a model\n")
    extractor = tiny_extractor(tmp_path, "model.pt", threshold=0.5, openset_threshold=0.5, openset_rule=RULE)
    assert bench.main(["--results", str(results), "--extractor", extractor, "--gallery", "10", "--repeats", "3"]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert "4 models" in lines[0] and "2 known models" in lines[0]
    assert lines[2].startswith("global threshold 0.5000") and lines[3].startswith("per-model (z 1")
    # the smoke run's few images: the gallery shrinks so every known model keeps a query
    assert "gallery 10 ->" in out.err
    # the core on arrays: both rules see the same queries
    emb, labels = families(seed=1, n_families=2, per_model=15)
    rows = bench.compare(emb, labels, {"global": openset.OpenSetRule.global_only(0.9),
                                       "per-model": openset.OpenSetRule(0.9, 1.0, 3.0)}, gallery=5, repeats=2)
    assert [r["rule"] for r in rows] == ["global", "per-model"]
    assert rows[0]["n_known"] == rows[1]["n_known"] == 2 * 4 * 10 and rows[0]["n_absent"] == 2 * 2 * 15
    # only evaluation-side images are embedded
    from modelfp import splits
    folders = bench.model_folders(results)
    assert sorted(folders) == ["val0", "val1", "val2", "val3"]
    emb, labels = bench.embed_folders(ex.load(extractor), folders, 0.5, 100, 1)
    assert len(labels) == sum(len(splits.folder_side(f, 0.5, splits.EVAL)[0]) for f in folders.values())


def test_the_benchmark_compares_test_time_views_on_the_validation_folders_only(tmp_path, capsys):
    bench = load_benchmark("openset")
    results = tmp_path / "results"
    for kind in range(4):
        write_model_images(results / "validation" / f"val{kind}" / "images", kind, 12, seed=kind)
    extractor = tiny_extractor(tmp_path, "model.pt", threshold=0.5, openset_threshold=0.5, openset_rule=RULE)
    assert bench.main(["--results", str(results), "--extractor", extractor, "--gallery", "3", "--views", "1", "2",
                       "--gallery-draws", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "4 validation generators" in lines[0]
    assert lines[2].split()[0] == "1" and lines[3].split()[0] == "2" and len(lines) == 4
    assert "+0.00 (0.00)" in lines[2] and "0 of 20" in lines[2]
    assert lines[2].split()[1:4] == ["1", "1", "x"] and lines[3].split()[1:4] == ["1", "2", "x"]   # networks, cost
    # the study embeds once, in 2 views, and takes 1 view as their first block: the same answers as
    # embedding in 1 view (up to a query whose two nearest scores tie within rounding)
    args = SimpleNamespace(train_fraction=0.5, per_model=100, window=None, gallery=3, seed=0, gallery_draws=1)
    folders = bench.model_folders(results)
    rows = bench.views_study([ex.load(extractor)], folders, [2, 1], args)
    emb, labels = bench.embed_folders(ex.load(extractor), folders, 0.5, 100, WINDOWS, 1)
    direct = identification(emb, labels, 3, 0, 1)
    assert abs(rows[1]["identification"] - 100 * direct["accuracy"]) <= 100 / direct["n_queries"] + 1e-9
    with pytest.raises(SystemExit, match="validation generators only"):
        bench.main(["--extractor", extractor, "--models", *map(str, (results / "validation").iterdir()),
                    "--views", "1", "2"])


def test_the_benchmark_compares_ensembles_of_extractors_and_a_network_twice_is_itself(tmp_path, capsys):
    """--members: the first 1, 2, ... extractors' unit fingerprints side by side (a score is the mean
    of their cosines). An ensemble of one network with itself answers as the network alone, and one
    with another network is scored on the same queries (the paired difference's draws)."""
    bench = load_benchmark("openset")
    results = tmp_path / "results"
    for kind in range(4):
        write_model_images(results / "validation" / f"val{kind}" / "images", kind, 12, seed=kind)
    extractor = tiny_extractor(tmp_path, "model.pt", threshold=0.5, openset_threshold=0.5, openset_rule=RULE)
    other = tiny_extractor(tmp_path, "other.pt", denoiser_seed=1, threshold=0.5, openset_threshold=0.5, openset_rule=RULE)
    args = SimpleNamespace(train_fraction=0.5, per_model=100, window=None, gallery=3, seed=0, gallery_draws=1)
    folders = bench.model_folders(results)
    twice = bench.views_study([ex.load(extractor), ex.load(extractor)], folders, [1, 2], args)
    assert [(r["views"], r["members"], r["cost"]) for r in twice] == [(1, 1, 1), (1, 2, 2), (2, 1, 2), (2, 2, 4)]
    for alone, pair in ((twice[0], twice[1]), (twice[2], twice[3])):
        assert pair["identification"] == pytest.approx(alone["identification"], abs=1e-9)
        assert pair["auc"] == pytest.approx(alone["auc"], abs=1e-6)
    assert twice[1]["balanced_minus_first"] == pytest.approx(0.0, abs=1e-9)
    assert bench.main(["--results", str(results), "--extractor", extractor, "--members", other, "--views", "1",
                       "--gallery", "3", "--gallery-draws", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "model.pt + " in lines[0] and "other.pt" in lines[0] and len(lines) == 4
    assert lines[2].split()[:4] == ["1", "1", "1", "x"] and lines[3].split()[:4] == ["1", "2", "2", "x"]
    assert "of 20" in lines[3]


def test_the_benchmark_pairs_two_calibrated_files_by_draw(tmp_path, capsys):
    """--vs: another file's per-model rule on the same images and draws. The same file twice differs
    in nothing; a recalibration with a higher global threshold (and no per-model weight) names no
    more known images and turns away no fewer absent ones, in every draw."""
    bench = load_benchmark("openset")
    results = tmp_path / "results"
    for kind in range(4):
        write_model_images(results / "validation" / f"val{kind}" / "images", kind, 12, seed=kind)
    extractor = tiny_extractor(tmp_path, "model.pt", threshold=0.5, openset_threshold=0.5, openset_rule=RULE)
    strict = tiny_extractor(tmp_path, "strict.pt", threshold=0.5, openset_threshold=0.99,
                            openset_rule={"z": 0.0, "prior": 1e9, "margin": 0.0})
    assert bench.main(["--results", str(results), "--extractor", extractor, "--vs", extractor, "--gallery", "3",
                       "--repeats", "4"]) == 0
    out = capsys.readouterr().out
    assert "the same network" in out and out.count("+0.00 points (s.e. 0.00), better in 0 of 4 draws") == 3
    emb, labels = families(seed=0)
    loose, tight = openset.OpenSetRule(0.5, 1.0, 3.0), openset.OpenSetRule(0.99, 0.0, 1e9)
    paired = bench.paired_by_draw((emb, loose), (emb, tight), labels, gallery=10, repeats=5)
    assert paired["known_named"]["mean"] <= 0 and paired["absent_unknown"]["mean"] >= 0
    draws = openset.leave_out_splits(labels, 10, repeats=5)
    first = [openset.outcomes(openset.score_splits(emb, labels, [d]), loose)["balanced"] for d in draws]
    second = [openset.outcomes(openset.score_splits(emb, labels, [d]), tight)["balanced"] for d in draws]
    assert paired["balanced"]["mean"] == pytest.approx(np.mean(np.subtract(second, first)))
    assert bench.main(["--results", str(results), "--extractor", extractor, "--vs", strict, "--gallery", "3",
                       "--repeats", "4"]) == 0
    printed = capsys.readouterr().out
    assert f"paired by draw, {strict} - {extractor}" in printed
    change = {line.split("  ")[1].strip(): float(line.split("points")[0].split()[-1])
              for line in printed.splitlines() if "points (s.e." in line}
    assert change["known named right"] <= 0 <= change["absent called unknown"]


def test_the_benchmark_compares_scores_on_fresh_draws_of_the_validation_embeddings(tmp_path, capsys):
    bench = load_benchmark("openset")
    emb, labels = two_mode_models()
    rows = bench.neighbours_study({"clean": (emb, labels)}, [0, 2], gallery=8, repeats=4)
    assert [r["neighbours"] for r in rows] == [0, 2] and rows[0]["diff"] == 0 and rows[0]["draws"] == 8
    # the rule is fitted on the seed's draws and scored on fresh ones: the fitted rule of each count
    for r in rows:
        fitted = openset.fit_deployable(emb, labels, 8, 0, 1, r["neighbours"])
        fresh = openset.leave_out_splits(labels, 8, openset.KNOWN_FRACTION, 8, 1)
        pooled = openset.outcomes(openset.score_splits(emb, labels, fresh, r["neighbours"]), fitted.rule)
        assert r["known_named"] == pytest.approx(pooled["known_named"]) and r["rule"] == fitted.rule.describe()
    assert rows[1]["diff"] > 0.05 and rows[1]["diff"] == pytest.approx(rows[1]["balanced"] - rows[0]["balanced"])
    folder = embeddings_folder(tmp_path / "val", emb, labels)
    assert bench.main(["--neighbours", "0", "2", "--embeddings", folder, "--gallery", "8", "--repeats", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "fitted on 3 draws, scored on 6 fresh ones" in lines[0] and len(lines) == 4
    assert lines[2].split()[:2] == ["clean", "0"] and lines[3].split()[:2] == ["clean", "2"]
    with pytest.raises(SystemExit, match="validation generators only"):
        bench.main(["--neighbours", "0", "2", "--models", folder, folder])


def test_the_benchmark_refuses_to_fit_on_other_folders(tmp_path):
    bench = load_benchmark("openset")
    for kind in range(3):
        write_model_images(tmp_path / "bed" / f"m{kind}" / "images", kind, 8, seed=kind)
    old = tiny_extractor(tmp_path, "old.pt", openset_threshold=0.5)
    with pytest.raises(SystemExit, match="never on these folders"):
        bench.main(["--extractor", old, "--models", *map(str, (tmp_path / "bed").iterdir()), "--repeats", "2"])


def test_the_benchmark_names_a_model_after_its_folder_or_the_folder_above_its_images(tmp_path):
    bench = load_benchmark("openset")
    for name in ("vae", "flow", "ddpm"):
        (tmp_path / name / "images").mkdir(parents=True)
    folders = bench.model_folders(models=[str(tmp_path / "vae"), str(tmp_path / "flow" / "images"),
                                          str(tmp_path / "ddpm" / "images")])
    assert folders == {"vae": tmp_path / "vae" / "images", "flow": tmp_path / "flow" / "images",
                       "ddpm": tmp_path / "ddpm" / "images"}


# -- re-saved images: thresholds of their own, fitted on the validation set's re-saved copies

def _shifted(emb, offset, weight):
    """Every row moved toward one common direction: what a re-save does to every model's copies."""
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    return unit + weight * offset / np.linalg.norm(offset)


def test_the_resaved_copies_get_thresholds_of_their_own_which_turn_away_what_the_clean_ones_accept():
    """Copies that share what the re-save did to them score high against every model: the clean
    images' rule then accepts many absent models' copies where it leans on its global threshold
    (as the demo's does: prior 30 against 10 gallery images), and the clean verification threshold
    calls many different-model pairs "same". Each re-save's own thresholds, fitted as calibrate
    fits the clean ones, sit higher and answer far more of them right; the record keeps the clean
    thresholds' scores on the same draws and pairs."""
    from modelfp import resaved
    from modelfp.evaluate import verification
    emb, labels = families(seed=0)
    clean_fit = openset.fit_deployable(emb, labels, gallery_size=10, seed=0)
    clean = openset.OpenSetRule(clean_fit.rule.threshold, z=2.5, prior=30.0)
    clean_verification = verification(emb, labels, 500, 500, 0)["threshold"]
    copies = _shifted(emb, np.random.default_rng(1).normal(size=emb.shape[1]), 1.5)
    record = resaved.fit({"jpeg90": (copies, labels)}, clean, clean_verification, gallery_size=10, seed=0,
                         n_same=500, n_diff=500, source="v")["jpeg90"]
    own = openset.fit_deployable(copies, labels, gallery_size=10, seed=0).rule
    o = record["openset"]
    assert {k: o[k] for k in ("z", "prior", "margin", "neighbours")} == own.constants() and o["threshold"] == own.threshold
    assert o["threshold"] > clean.threshold and o["fitted_on"] == "v"
    scored = openset.score_splits(copies, labels, openset.leave_out_splits(labels, 10))
    assert o["clean_rule"]["absent_unknown"] == pytest.approx(openset.outcomes(scored, clean)["absent_unknown"])
    assert o["absent_unknown"] > o["clean_rule"]["absent_unknown"] + 0.2 and o["balanced"] > o["clean_rule"]["balanced"]
    pairs = verification(copies, labels, 500, 500, 0)
    assert record["verification_threshold"] == pairs["threshold"] > clean_verification
    assert record["verification_accuracy"] == pairs["accuracy"] > record["verification_accuracy_clean"]
    assert record["verification_accuracy_clean"] == pytest.approx(
        np.mean((pairs["scores"] >= clean_verification) == pairs["same"]))


def _resaved_gallery(tmp_path, extractor, folders, out, images=4, state=None):
    args = ["resaved-gallery", "--extractor", extractor, "--train-fraction", "0.5", "--images", str(images),
            "--window", "1", "--views", "1", "--seed", "0", "--out", str(out), "--device", "cpu"]
    for name, folder in folders.items():
        args += ["--model", name, str(folder)]
    assert steps.main(args + (["--state", str(state)] if state else [])) == 0
    return out


def test_resaved_gallery_holds_each_models_evaluation_side_sample_in_every_resave_and_resumes(tmp_path):
    from modelfp.attributor import pixel_digest, read_gallery, read_images, save_gallery
    from modelfp.perturb import MATCHED
    from modelfp.splits import EVAL, folder_side
    extractor = tiny_extractor(tmp_path)
    folders = {f"m{k}": tmp_path / f"m{k}" for k in range(3)}
    for k, folder in enumerate(folders.values()):
        write_model_images(folder, k, 12, seed=k)
    full = read_gallery(_resaved_gallery(tmp_path, extractor, folders, tmp_path / "full.gallery"))
    assert Attributor(extractor, windows=1, views=1).digest == full.extractor
    for name, folder in folders.items():
        side, _ = folder_side(folder, 0.5, EVAL)
        entry = full.models[name]
        assert entry["count"] == min(4, len(side)) and full.copies(name) == list(MATCHED)
        # only evaluation-side images: each held digest is one of theirs
        assert set(entry["digests"]) <= {pixel_digest(r.image) for r in read_images([str(p) for p in side], 16)}
    # killed after the first model: the rerun keeps what was held, embeds the rest, deletes the state
    partial = read_gallery(tmp_path / "full.gallery")
    partial.models = {"m0": partial.models["m0"]}
    save_gallery(partial, tmp_path / "state.pt")
    again = read_gallery(_resaved_gallery(tmp_path, extractor, folders, tmp_path / "again.gallery",
                                          state=tmp_path / "state.pt"))
    assert not (tmp_path / "state.pt").exists()
    assert list(again.models) == list(full.models) and again.counts() == full.counts()
    # the held model's copies are the very tensors the state file stored (skipped, not embedded again)
    assert torch.equal(again.models["m0"]["matched"]["gray"]["prints"], full.models["m0"]["matched"]["gray"]["prints"])
    for name in folders:
        assert again.models[name]["digests"] == full.models[name]["digests"]


def test_calibrate_stores_each_resaves_thresholds_and_the_tool_judges_a_resaved_image_by_them(tmp_path, caplog):
    from PIL import Image

    from modelfp import resaved
    from modelfp.perturb import MATCHED
    trained = tiny_extractor(tmp_path)
    folders = {f"m{k}": tmp_path / f"m{k}" for k in range(3)}
    for k, folder in enumerate(folders.values()):
        write_model_images(folder, k, 14, seed=k)
    copies_file = _resaved_gallery(tmp_path, trained, folders, tmp_path / "resaved.gallery", images=6)
    emb, labels = families(seed=0)
    val = embeddings_folder(tmp_path / "val", emb, labels)
    evaluation = evaluation_csv(tmp_path / "v.csv")
    out = tmp_path / "model.pt"
    base = ["calibrate", "--extractor", trained, "--evaluation", evaluation, "--embeddings", val,
            "--gallery", "2", "--seed", "0", "--resaved", str(copies_file)]
    assert steps.main(base + ["--out", str(tmp_path / "no.pt")]) == 2        # the protocol's values are needed
    assert steps.main(base + ["--gallery-draws", "1", "--pairs-same", "20", "--pairs-diff", "20",
                              "--out", str(out)]) == 0
    model = ex.load(out)
    assert set(model.resaved) == set(MATCHED)
    clean = openset.OpenSetRule.from_constants(model.openset_rule, 0.9)
    assert model.resaved == resaved.fit(resaved.copies(copies_file), clean, 0.5, 2, 0, 1, 20, 20, str(copies_file))
    # the tool: a JPEG 90 query meets the gallery's JPEG 90 copies under the JPEG 90 rule, a clean one the clean rule
    att = Attributor(str(out), windows=1, views=1)
    gallery = att.new_gallery()
    for name, folder in folders.items():
        att.add(gallery, name, sorted(str(p) for p in folder.glob("*.png"))[:4])
    jpeg = att.acceptance(gallery, condition="jpeg90").rule
    o = model.resaved["jpeg90"]["openset"]
    assert (jpeg.threshold, jpeg.constants()) == (o["threshold"], {k: o[k] for k in ("z", "prior", "margin", "neighbours")})
    assert att.acceptance(gallery).rule == clean
    # verify: a JPEG 90 file against a clean image is judged by the JPEG 90 verification threshold,
    # two clean images by the clean one, and a threshold given judges both
    png = sorted(folders["m0"].glob("*.png"))
    jpg = tmp_path / "q.jpg"
    Image.open(png[-1]).convert("RGB").save(jpg, quality=90)
    assert att.verify(str(jpg), str(png[0])).threshold == model.resaved["jpeg90"]["verification_threshold"]
    assert att.verify(str(png[1]), str(png[0])).threshold == 0.5
    assert att.verify(str(jpg), str(png[0]), threshold=0.7).threshold == 0.7
    pairs = att.verify_pairs([str(jpg), str(png[1])], [str(png[0])])
    assert [p.threshold for p in pairs] == [model.resaved["jpeg90"]["verification_threshold"], 0.5]
    # identify: the JPEG query says what it was compared with and meets its nearest model's JPEG 90
    # threshold; the command line's summary and JSON show the JPEG 90 rule beside the clean one
    r_jpg, r_png = att.identify([str(jpg), str(png[1])], gallery, top_k=2)
    assert (r_jpg.compared, r_png.compared) == ("jpeg90", None)
    assert r_jpg.threshold == pytest.approx(att.acceptance(gallery, condition="jpeg90").thresholds[r_jpg.nearest])
    assert r_png.threshold == pytest.approx(att.acceptance(gallery).thresholds[r_png.nearest])
    gallery_file = tmp_path / "g.gallery"
    att.save_gallery(gallery, gallery_file)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["identify", str(jpg), str(png[1]), "--extractor", str(out), "--gallery", str(gallery_file),
                     "--format", "csv"]) == 0
    assert "JPEG 90 images, compared with the gallery's JPEG 90 copies: unknown: below" in err.getvalue()
    # a file calibrated before: the clean thresholds for re-saved images too, said once
    old = tmp_path / "old.pt"
    ex.set_threshold(out, 0.5, out=old, openset_threshold=0.9, openset_rule=model.openset_rule)
    caplog.set_level(logging.INFO, logger="modelfp")
    old_att = Attributor(str(old), windows=1, views=1)
    assert old_att.acceptance(gallery, condition="jpeg90").rule == clean
    old_att.acceptance(gallery, condition="gray")
    assert old_att.verify(str(jpg), str(png[0])).threshold == 0.5
    assert sum("calibrated before re-saved images had thresholds" in r.getMessage() for r in caplog.records) == 1
    # a file whose re-saves lack one re-save's rule (calibrated before lossy WebP had copies): that one
    # is judged by the clean rule, and the message names it
    partial = tmp_path / "partial.pt"
    ex.set_threshold(out, 0.5, out=partial, openset_threshold=0.9, openset_rule=model.openset_rule,
                     resaved={c: v for c, v in model.resaved.items() if c != "webp"})
    caplog.clear()
    part_att = Attributor(str(partial), windows=1, views=1)
    assert part_att.acceptance(gallery, condition="webp").rule == clean
    assert part_att.acceptance(gallery, condition="jpeg90").rule == jpeg
    said = [r.getMessage() for r in caplog.records if "calibrated before" in r.getMessage()]
    assert len(said) == 1 and "calibrated before lossy WebP images had thresholds" in said[0]
