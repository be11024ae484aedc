"""The authors' evaluation lists (modelfp.protocol_lists): results equal a hand computation, and
bad lines are named by file and line."""

import csv

import numpy as np
import pytest

from modelfp import protocol_lists
from modelfp.protocol_lists import listed_images
from modelfp.steps import main
from modelfp.steps.attribution import read_lists

# 3 models, one support (gallery) and one test (query) image each, plus an embedded image of a that no
# list names (it must change nothing). 2-D embeddings, so every cosine below is a hand computation.
EMB = {"a": {"s1": [1.0, 0.0], "t1": [1.0, 0.1], "x": [0.0, -1.0]},
       "b": {"s1": [0.0, 1.0], "t1": [0.2, 1.0]},
       "c": {"s1": [-1.0, 0.0], "t1": [0.6, -0.8]}}
SUPPORT = "a/s1.png\ta\nb/s1.png\tb\nc/s1.png\tc\n"
TEST = "# queries\na/t1.png\ta\nb/t1.png\tb\nc/t1.png\tc\n"
PAIRS = ("a/s1.png\ta/t1.png\t1\n"     # cos 1/sqrt(1.01)   = 0.995  same
         "b/s1.png\tb/t1.png\t1\n"     # cos 1/sqrt(1.04)   = 0.981  same
         "a/s1.png\tb/s1.png\t0\n"     # cos 0                        different
         "a/t1.png\tc/t1.png\t0\n"     # cos 0.52/sqrt(1.01) = 0.517  different
         "c/s1.png\tc/t1.png\t1\n")    # cos -0.6                     same


def fabricate(tmp_path, support=SUPPORT, test=TEST, pairs=PAIRS):
    root, emb_dir = tmp_path / "images", tmp_path / "emb"
    emb_dir.mkdir()
    for model, images in EMB.items():
        (root / model).mkdir(parents=True)
        for name in images:
            (root / model / f"{name}.png").write_bytes(b"")
        np.savez(emb_dir / f"{model}.npz", embeddings=np.array(list(images.values())),
                 paths=[str(root / model / f"{n}.png") for n in images], folder=str(root / model))
    files = {}
    for kind, text in (("support", support), ("test", test), ("pairs", pairs)):
        files[kind] = tmp_path / f"{kind}.txt"
        files[kind].write_text(text)
    return root, emb_dir, files


def evaluate_cli(tmp_path, root, emb_dir, files):
    out = tmp_path / "eval.csv"
    code = main(["evaluate", "--embeddings", str(emb_dir), "--model", "a", "classical", "--model", "b", "classical",
          "--model", "c", "emerging", "--pairs-same", "5", "--pairs-diff", "5", "--gallery", "1", "--gallery-draws", "1", "--seed", "0",
          "--lists-root", str(root), "--support", str(files["support"]), "--test", str(files["test"]),
          "--pairs", str(files["pairs"]), "--out-csv", str(out)])
    if code:
        return code
    return {r["group"]: r for r in csv.DictReader(out.open())}


def test_identification_and_verification_on_lists_equal_hand_computation(tmp_path):
    rows = evaluate_cli(tmp_path, *fabricate(tmp_path))
    row = rows["all"]
    # queries a, b, c -> a, b, a (c/t1 = (0.6, -0.8) is nearest a's gallery (1, 0)): accuracy 2/3;
    # F1 per model a 2/3 (precision 1/2, recall 1), b 1, c 0 -> macro 5/9
    assert float(row["identification_acc"]) == pytest.approx(100 * 2 / 3)
    assert float(row["identification_f1"]) == pytest.approx(100 * 5 / 9)
    # same 0.995, 0.981, -0.6 vs different 0.517, 0: 4 of 6 (same, different) pairs ordered -> AUC 2/3;
    # best cut between 0.981 and 0.517: 4 of 5 pairs right
    assert float(row["verification_auc"]) == pytest.approx(100 * 2 / 3)
    assert float(row["verification_acc"]) == pytest.approx(80.0)
    assert int(row["images"]) == 7          # every embedded row is read, only the listed ones count
    # the classical group (a, b) keeps its own lines: both queries right, its pairs 0.995, 0.981 vs 0
    assert float(rows["classical"]["identification_acc"]) == pytest.approx(100.0)
    assert float(rows["classical"]["verification_auc"]) == pytest.approx(100.0)


def test_image_not_embedded_is_named_by_file_and_line(tmp_path, caplog):
    root, emb_dir, files = fabricate(tmp_path, test=TEST.replace("b/t1.png", "b/t9.png"))
    assert evaluate_cli(tmp_path, root, emb_dir, files) == 2      # the run stops ...
    assert not (tmp_path / "eval.csv").exists()                   # ... writing no csv
    assert "test.txt:3: image b/t9 is not among the embedded images of model 'b'" in caplog.text


def test_embed_names_a_listed_image_missing_from_the_folder(tmp_path):
    root, _, files = fabricate(tmp_path, pairs=PAIRS + "c/s1.png\tc/zz.png\t1\n")
    args = type("Args", (), {"lists_root": str(root), **{k: str(v) for k, v in files.items()}})
    lists = read_lists(args)
    # the listed images of a, whichever side of modelfp.splits; the unlisted a/x is not read
    assert [p.name for p in listed_images(lists, "a", root / "a", 0.5)] == ["s1.png", "t1.png"]
    with pytest.raises(FileNotFoundError, match=r"pairs\.txt:6: image c/zz is not in the folder"):
        listed_images(lists, "c", root / "c", 0.5)


@pytest.mark.parametrize("parse, name, text, match", [
    ("parse_image_list", "support.txt", "a/s1.png\ta\nb/s1.png b\n", r"support\.txt:2: malformed line"),
    ("parse_image_list", "support.txt", "a/s1.png\tb\n", r"support\.txt:1: label 'b' differs from the model folder 'a'"),
    ("parse_image_list", "support.txt", "s1.png\ta\n", r"support\.txt:1: path 's1.png' must be <model folder>/<image>"),
    ("parse_pair_list", "pairs.txt", "a/s1.png\ta/t1.png\n", r"pairs\.txt:1: malformed line"),
    ("parse_pair_list", "pairs.txt", "a/s1.png\ta/t1.png\tyes\n", r"pairs\.txt:1: pair label 'yes'"),
    ("parse_pair_list", "pairs.txt", "a/s1.png\tb/s1.png\t1\n",
     r"pairs\.txt:1: label 1 but the images are of models 'a' and 'b'"),
])
def test_malformed_list_line_is_named(parse, name, text, match):
    with pytest.raises(ValueError, match=match):
        getattr(protocol_lists, parse)(text, name)


def test_list_model_that_is_not_a_test_model_is_named(tmp_path):
    root, emb_dir, files = fabricate(tmp_path)
    lists = protocol_lists.read_lists(root, files["support"], files["test"], files["pairs"])
    with pytest.raises(ValueError, match=r"support\.txt:3: model folder 'c' is not an evaluated test model"):
        protocol_lists.check_models(lists, ["a", "b"])
