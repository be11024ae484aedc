"""The plan of a run (modelfp.plan), without Snakemake: paths, lookups, start-up checks, targets.

The configs are the workflow's own (config.yaml overlaid with a preset, as `--configfile` does),
validated against the schema with its defaults filled in, as the Snakefile's `validate` does.
"""
import copy
import json
import re
import subprocess
import sys

import pytest
import yaml
from snakemake.utils import validate

from conftest import ROOT
from modelfp import seeding
from modelfp.plan import (DENOISER, Plan, details_file, embeddings_dir, evaluation_file, extractor_file,
                          figure_file, images_dir, named)

TARGET_RULES = ["all", "zoo", "zoo_k3", "denoiser", "fig_11", "fig_13", "fig_14", "testbed", "validation",
                "table_ii", "table_xi", "perturbations", "table_iv", "table_v", "table_vi", "table_vii",
                "baselines", "table_viii", "table_ix", "table_x", "extractors"]


def _merge(base, overlay):
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def load_config(*overlays):
    """config.yaml, then each overlay (a preset's file name or a dict) merged in, then validated."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for overlay in overlays:
        if isinstance(overlay, str):
            overlay = yaml.safe_load((ROOT / overlay).read_text())
        _merge(config, copy.deepcopy(overlay))
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    return config


@pytest.fixture(scope="module")
def smoke():
    return load_config("configs/smoke.yaml")


@pytest.fixture(scope="module")
def plan(smoke):
    return Plan(smoke)


def test_a_path_template_is_its_wildcards_and_filled_it_is_one_file():
    assert extractor_file() == "results/extractors/{variant}/trained.pt"
    assert extractor_file("all") == "results/extractors/all/trained.pt"
    assert images_dir("vae", "validation") == "results/validation/vae/images"
    # the per-query file of an evaluation sits beside its csv, for a template and for a file
    assert details_file(evaluation_file(), "queries") == "results/evaluation/{variant}/{view}.queries.csv"
    assert details_file(evaluation_file("all", "jpeg-0.5"), "pairs") == "results/evaluation/all/jpeg-0.5.pairs.csv"
    assert figure_file("fig_10", "pdf") == "results/figures/fig_10_closest_spectra.pdf"


def test_groups_families_and_generators_follow_a_derived_model_to_its_base(plan):
    assert plan.group("dcgan") == "classical" and plan.group("vae") == "emerging"
    assert plan.classical_models() == ["dcgan", "progan", "dcgan_faces"]
    # ddpm_varied samples ddpm's weights otherwise; vae_lora0 trains its own adapters on vae's
    assert plan.group("ddpm_varied") == "emerging" and plan.family("ddpm_varied") == "ddpm"
    assert plan.generator("ddpm_varied") == "results/testbed/ddpm/generator.pt"
    assert plan.generator("vae_lora0") == "results/testbed/vae_lora0/generator.pt"
    assert plan.train_inputs("vae_lora0") == ["results/testbed/vae/generator.pt"]
    assert plan.images("val_vae_living", "validation") == "results/validation/val_vae_living/images"
    assert plan.model_pools("val_vae_living", "validation") == ["living"]
    assert plan.model_pools("dcgan") == ["living", "scenes"]           # testbed.pools


def test_a_users_folder_is_the_models_images_and_its_group_is_the_entrys():
    config = load_config("configs/smoke.yaml", {"test_models": {"mine": {"path": "data/mine", "group": "classical",
                                                                         "family": "GAN"}}})
    plan = Plan(config)
    assert plan.images("mine") == "data/mine" and plan.group("mine") == "classical"


def test_seeds_are_the_entrys_or_derived_from_the_name(plan, smoke):
    assert plan.seed("progan_s1") == 1
    assert plan.seed("dcgan") == seeding.generator_seed("dcgan", smoke["testbed"]["seed"])
    assert plan.seed("ddpm_varied") != plan.seed("ddpm")          # a derived model: other noise than its base
    assert plan.seeds == [0, 1] and plan.checkpoints(["K1-L1-Spost-Unearest-Arelu-Nbn"]) == [
        "results/synthetic/K1-L1-Spost-Unearest-Arelu-Nbn/seed0.pt",
        "results/synthetic/K1-L1-Spost-Unearest-Arelu-Nbn/seed1.pt"]


@pytest.mark.parametrize("preset", ["configs/smoke.yaml", "configs/demo.yaml"])
def test_the_presets_pass_their_start_up_checks(preset):
    Plan(load_config(preset)).check()          # embedded pools, own generators: no folder needed


def test_a_misspelt_test_model_is_named_with_the_defined_ones():
    config = load_config("configs/smoke.yaml", {"testbed": {"models": ["dcgan", "vea"]}})
    with pytest.raises(ValueError, match=r"testbed\.models \(or a base:\) names 'vea'.*defined: \[.*'vae'"):
        Plan(config).check()


def test_a_misspelt_base_and_an_unknown_family_stop_the_run():
    config = load_config("configs/smoke.yaml", {"test_models": {"vae_lora0": {"base": "vea"}}})
    with pytest.raises(ValueError, match=r"names 'vea'"):
        Plan(config).check()
    config = load_config("configs/smoke.yaml", {"test_models": {"vit": {"generator": "vitt"}}})
    with pytest.raises(ValueError, match=r"test model 'vit': unknown generator family 'vitt'"):
        Plan(config).check()


def test_a_hyper_parameter_typo_is_named_for_a_generator_and_for_a_baseline():
    config = load_config("configs/smoke.yaml", {"test_models": {"vae": {"hp": {"widht": 8}}}})
    with pytest.raises(ValueError, match=r"test_models\.vae: unknown vae hp \['widht'\]"):
        Plan(config).check()
    config = load_config("configs/smoke.yaml", {"baselines": {"recipes": {"yu": {"hp": {"widht": 1}}}}})
    with pytest.raises(ValueError, match=r"baselines\.recipes\.yu\.hp: unknown yu hyper-parameters \['widht'\]"):
        Plan(config).check()


def test_the_validation_set_must_stay_apart_from_the_test_bed():
    val = {"models": ["dcgan", "val_dcgan_s1"], "instances": {"dcgan": {"generator": "dcgan", "steps": 3}}}
    config = load_config("configs/smoke.yaml", {"validation": val})
    with pytest.raises(ValueError, match=r"validation model name\(s\) \['dcgan'\] are also test models"):
        Plan(config).check()


def test_a_seed_pair_that_shares_its_seed_is_refused():
    config = load_config("configs/smoke.yaml",
                         {"validation": {"instances": {"val_dcgan_s1": {"seed": 10}}}})
    with pytest.raises(ValueError, match=r"pair 'dcgan_seed'.*must differ in seed.*both have seed 10"):
        Plan(config).check()


def test_a_missing_pool_folder_says_where_to_put_the_images(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                 # the paper's data/ folders are not here
    plan = Plan(load_config())
    with pytest.raises(ValueError, match=r"pool 'celeba': folder 'data/celeba/img_align_celeba' does not exist"):
        plan.check_pools(["celeba"])
    with pytest.raises(ValueError, match=r"pool 'imagenet' is used but not defined"):
        plan.check_pools(["imagenet"])


def test_a_variant_that_trains_alls_data_reads_alls_files(plan):
    # smoke: 2 seeds per architecture, so seeds_2 trains what `all` trains, at the ablations' budget
    assert plan.ablation_budget and plan.trained_variant("seeds_2") == "all_ablation"
    assert plan.evaluation_csv("seeds_2") == "results/evaluation/all_ablation/w2.csv"
    assert plan.evaluation_csv("seeds_1") == "results/evaluation/seeds_1/w2.csv"
    with pytest.raises(ValueError, match="unknown extractor variant 'seeds_x'"):
        plan.variant("seeds_x")


def test_validation_embeddings_are_those_of_the_evaluation_they_belong_to(plan):
    inputs = plan.validation_table_inputs()
    evaluations, embeddings = dict(named(inputs, "evaluation")), dict(named(inputs, "embeddings"))
    assert list(evaluations) == list(embeddings) == plan.val["variants"]
    for variant, csv in evaluations.items():
        trained = plan.trained_variant(variant)
        assert csv == evaluation_file(trained, "val-w2") and embeddings[variant] == embeddings_dir(trained, "val-w2")
    # the tool's thresholds: the validation set embedded with the smoke preset's 2 test-time views
    calibration = plan.calibration_inputs("all")
    assert calibration == {"extractor": "results/extractors/all/with_specialists.pt",    # trained.pt + specialists
                           "evaluation": "results/evaluation/all/val-w2-v2.csv",
                           "embeddings": "results/embeddings/all/val-w2-v2",
                           "resaved": "results/extractors/all/resaved/validation.gallery"}


def test_the_resaved_copies_are_the_validation_sets_embedded_as_the_tool_embeds(plan, smoke):
    """calibrate fits each re-save's open-set rule on a gallery of the validation models' re-saved
    copies (issue 25), made by the tool's file (trained, with its specialists) in the tool's windows and views; without
    evaluation.resaved_images there is no such gallery and calibrate fits the clean rule alone."""
    inputs = plan.resaved_inputs("all")
    assert inputs["extractor"] == "results/extractors/all/with_specialists.pt"    # the tool's file, uncalibrated
    assert [m for m, _ in named(inputs, "model")] == smoke["validation"]["models"]
    args = plan.resaved_args(inputs)
    for m, folder in named(inputs, "model"):
        assert f"--model {m} '{folder}'" in args
    assert (f"--images {smoke['evaluation']['resaved_images']} --window 2 --views 2" in args
            and "--train-fraction" in args and "--seed" in args)
    e = smoke["evaluation"]
    assert plan.calibration_args(plan.calibration_inputs("all")) == (
        f"--gallery {e['gallery']} --seed {e['seed']} --gallery-draws {e['gallery_draws']} --neighbours "
        f"{e['tool_neighbours']} --resaved results/extractors/all/resaved/validation.gallery "
        f"--pairs-same {e['pairs_same']} --pairs-diff {e['pairs_diff']}")
    none = Plan({**smoke, "evaluation": {**smoke["evaluation"], "resaved_images": 0}})
    assert "resaved" not in none.calibration_inputs("all")
    assert "--resaved" not in none.calibration_args(none.calibration_inputs("all"))
    none.check()
    too_few = Plan({**smoke, "evaluation": {**smoke["evaluation"], "resaved_images": e["gallery"]}})
    with pytest.raises(ValueError, match=r"evaluation.resaved_images \(2\) must exceed evaluation.gallery \(2\)"):
        too_few.check()


def test_the_tool_view_is_the_validation_view_with_test_time_views(plan, smoke):
    assert plan.tool_view == "val-w2-v2"
    assert (plan.view_window("val-w2-v2"), plan.view_views("val-w2-v2")) == (2, 2)
    assert (plan.view_window("val-w2"), plan.view_views("val-w2")) == (2, 1)
    assert plan.view_bed("val-w2-v2") == "validation" and plan.view_models("val-w2-v2") == smoke["validation"]["models"]
    inputs = plan.embed_inputs("all", "val-w2-v2")
    assert plan.embed_args("val-w2-v2", inputs).count(" --views 2") == 1
    # every other view's command is as it was (no --views: no rerun of the tables' embeddings)
    assert "--views" not in plan.embed_args("val-w2", plan.embed_inputs("all", "val-w2"))
    assert "--views" not in plan.embed_args("w2", plan.embed_inputs("all", "w2"))
    one = Plan({**smoke, "evaluation": {k: v for k, v in smoke["evaluation"].items() if k != "tool_views"}})
    assert one.tool_view == one.validation_view == "val-w2"


def test_extractor_arguments_are_built_from_the_declared_inputs(plan, smoke):
    inputs = plan.extractor_inputs("all")
    assert inputs["denoiser"] == DENOISER and inputs["pools"] == ["results/pools/living", "results/pools/scenes"]
    args = plan.extractor_args("all", inputs)
    assert f"--denoiser {DENOISER}" in args and "--validation val_dcgan_s0 'results/validation/val_dcgan_s0/images'" in args
    options = json.loads(re.search(r"--options '(.*)'$", args).group(1))
    assert options["epochs"] == smoke["extractor"]["epochs"] and "augment" not in options
    assert json.loads(re.search(r"--options '(.*)'$", plan.extractor_args("immunized", plan.extractor_inputs(
        "immunized"))).group(1))["augment"] == smoke["extractor"]["immunize"]
    finetune = plan.extractor_inputs("finetune")
    assert finetune["init"] == "results/extractors/all/trained.pt" and "model:dcgan" in finetune
    assert "model:vae" not in finetune                               # classical models only


def test_the_tool_file_is_calibrated_from_all_with_its_specialists(plan, smoke):
    """extractor.specialists: specialist_<kind> trains all's recipe with that augmentation (all's
    budget, not the ablations'), and only the deployed extractor (all) carries them."""
    for kind, augment in smoke["extractor"]["specialists"].items():
        options = json.loads(re.search(r"--options '(.*)'$", plan.extractor_args(
            f"specialist_{kind}", plan.extractor_inputs(f"specialist_{kind}"))).group(1))
        assert options["augment"] == augment and options["epochs"] == smoke["extractor"]["epochs"]
    assert plan.specialists("all") == {k: f"results/extractors/specialist_{k}/trained.pt" for k in ("jpeg", "gray")}
    assert plan.specialist_args("all") == ("jpeg=results/extractors/specialist_jpeg/trained.pt "
                                           "gray=results/extractors/specialist_gray/trained.pt")
    for inputs in (plan.calibration_inputs("all"), plan.resaved_inputs("all")):
        assert inputs["extractor"] == "results/extractors/all/with_specialists.pt"
    assert plan.calibration_inputs("finetune")["extractor"] == "results/extractors/finetune/trained.pt"
    plain = Plan({**smoke, "extractor": {k: v for k, v in smoke["extractor"].items() if k != "specialists"}})
    assert plain.specialists("all") == {} and plain.tool_network("all") == "results/extractors/all/trained.pt"
    with pytest.raises(ValueError, match="extractor.specialists.gray"):
        plain.extractor_args("specialist_gray", plain.extractor_inputs("specialist_gray"))


def test_only_a_baseline_whose_build_takes_a_denoiser_is_given_one(plan):
    assert plan.baseline_inputs("marra")["denoiser"] == DENOISER
    assert "denoiser" not in plan.baseline_inputs("yu")
    assert plan.evaluate_inputs("baseline_abady", "w2")["verifier"] == "results/baselines/abady/model.pt"
    assert "verifier" not in plan.evaluate_inputs("baseline_yu", "w2")


def test_targets_are_the_target_rules_and_all_keeps_the_k3_zoo_out(plan, smoke):
    targets = plan.targets()
    assert list(targets) == TARGET_RULES
    assert targets["table_iv"].files == ["results/tables/table_iv.csv"]
    assert targets["table_viii"].files == ["results/tables/table_viii.csv", "results/tables/table_viii_paired.csv"]
    assert targets["zoo_k3"].files == ["results/synthetic/summary_k3.csv"]
    assert targets["perturbations"].files == ["results/perturbed/jpeg/90", "results/perturbed/jpeg/50",
                                              "results/perturbed/crop/0.5"]
    assert targets["baselines"].files == [f"results/baselines/{m}/model.pt" for m in smoke["baselines"]["methods"]]
    every = targets["all"].files
    assert "results/synthetic/summary_k3.csv" not in every and "results/extractors/finetune/model.pt" not in every
    assert {f"results/figures/tsne/baseline_{m}/tsne_emerging.png" for m in smoke["baselines"]["methods"]} <= set(every)
    assert {"results/figures/fig_9_lineage.png", "results/validation/choices.csv"} <= set(every)
    assert all(t.about for name, t in targets.items() if name != "all")


def test_the_paper_config_plans_without_its_lineage_figures():
    targets = Plan(load_config()).targets()
    assert "results/figures/fig_9_lineage.png" not in targets["all"].files      # testbed.lineage: []
    assert targets["testbed"].files[0] == "data/test_models/ProGAN_CelebA"       # the user's folders


def test_importing_and_checking_the_plan_imports_no_torch(smoke):
    """Snakemake parses the Snakefile at every start: the plan and its start-up checks stay light."""
    code = ("import json, sys; from modelfp.plan import Plan; "
            "Plan(json.loads(sys.stdin.read())).check(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(smoke), capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"
