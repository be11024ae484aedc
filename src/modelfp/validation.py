"""The validation set's scores, per extractor variant (issue 11: never choose a setting on the test set).

The workflow trains a validation set of generators apart from the test bed (`validation:` of the
config, results/validation/{model}/) and embeds and evaluates it with the same rules as the test
bed (view val-w<n>). This module turns those evaluations into one table, results/validation/
choices.csv, on which the presets' settings are chosen: per variant, the identification accuracy
and verification AUC over the whole validation set (the `all` row of its evaluation csv), and the
same-design pair identification - for each pair of generators that share a design and differ only
in training seed or only in training data, 1:N identification restricted to the two members (a
gallery of two): can the extractor tell near twins apart? Chance is 50 %.

The same scores computed from embeddings (`scores`) are what training writes into the main
extractor's history.csv after every epoch (val_identification_acc, val_verification_auc, on a fixed
subset of the validation images: `sample_images`, `epoch_evaluator`), and what
benchmarks/extractor_study.py reports. The verb `validation-table` (modelfp.steps.attribution)
writes choices.csv from `choices_row`.

No table of the paper reads this file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import evaluate

log = logging.getLogger(__name__)

DIFFERS = ("seed", "data")
SUMMARY_COLUMNS = ("identification_acc", "verification_auc")   # read from the evaluation csv's "all" row
# the per-epoch validation of training (`train-extractor --validation`): per model, evaluation.gallery
# gallery images and this many queries: enough to see a plateau, few enough to stay a small share of
# an epoch (history.csv's val_seconds beside seconds)
EPOCH_QUERIES = 10


@dataclass(frozen=True)
class Pair:
    name: str
    differs: str       # seed | data: what alone tells the two members apart
    a: str
    b: str


def pair_identification(emb, labels, a: str, b: str, gallery_size: int = evaluate.GALLERY_SIZE,
                        seed: int = 0) -> float:
    """Identification (evaluate.identification: a gallery fingerprint per model, queries to the
    nearest) restricted to the images of models a and b; the accuracy as a fraction (chance 0.5)."""
    labels = np.asarray(labels)
    keep = np.isin(labels, [a, b])
    missing = sorted({a, b} - set(labels[keep].tolist()))
    if missing:
        raise ValueError(f"pair {a} / {b}: no embeddings of {missing}")
    return evaluate.identification(np.asarray(emb)[keep], labels[keep], gallery_size, seed)["accuracy"]


def pair_scores(emb, labels, pairs: list[Pair], gallery_size: int = evaluate.GALLERY_SIZE,
                seed: int = 0) -> dict:
    """Same-design pair identification in percent: the mean over all pairs and per kind of pair
    (NaN where there is none), then each pair's (`pair_identification`)."""
    accs = {p.name: 100 * pair_identification(emb, labels, p.a, p.b, gallery_size, seed) for p in pairs}
    row = {"pair_identification_acc": float(np.mean(list(accs.values()))) if accs else float("nan")}
    for kind in DIFFERS:
        of_kind = [accs[p.name] for p in pairs if p.differs == kind]
        row[f"{kind}_pairs_acc"] = float(np.mean(of_kind)) if of_kind else float("nan")
    row.update({f"pair_{name}": acc for name, acc in accs.items()})
    return row


def choices_row(variant: str, summary: dict, emb, labels, pairs: list[Pair],
                gallery_size: int = evaluate.GALLERY_SIZE, seed: int = 0) -> dict:
    """One row of choices.csv: the variant's whole-set scores (percent, from its evaluation csv),
    then its `pair_scores`."""
    return {"variant": variant, **{k: float(summary[k]) for k in SUMMARY_COLUMNS},
            **pair_scores(emb, labels, pairs, gallery_size, seed)}


def scores(emb, labels, pairs: list[Pair] = (), gallery_size: int = evaluate.GALLERY_SIZE,
           n_same: int = evaluate.N_SAME_PAIRS, n_diff: int = evaluate.N_DIFF_PAIRS, seed: int = 0) -> dict:
    """choices.csv's scores computed from embeddings, in percent: identification accuracy and
    verification AUC over all of them (as the `all` row of the verb `evaluate`: evaluate.identification
    and evaluate.verification with the same protocol), then the `pair_scores` of `pairs`."""
    ident = evaluate.identification(emb, labels, gallery_size, seed)["accuracy"]
    auc = evaluate.verification(emb, labels, n_same, n_diff, seed)["auc"]
    return {"identification_acc": 100 * ident, "verification_auc": 100 * auc,
            **pair_scores(emb, labels, pairs, gallery_size, seed)}


def embed_models(model, images: dict, window: int) -> tuple[np.ndarray, np.ndarray]:
    """{model name: uint8 (3,H,W) images} -> (fingerprints (n, d) by `extractor.embed` in n x n
    windows, their model names (n,)): the input of `scores`."""
    from .extractor import embed
    emb = [embed(model, list(imgs), window) for imgs in images.values()]
    labels = np.repeat(list(images), [len(imgs) for imgs in images.values()])
    return np.concatenate([e.numpy() for e in emb]), labels


def sample_images(paths: dict, per_model: int, seed: int) -> dict:
    """{model: image paths} -> {model: at most `per_model` of them (sorted)}, drawn with
    numpy.random.default_rng(seed) in model order: the fixed subset on which training scores the
    validation set after every epoch (`extractor.train`'s evaluator)."""
    rng = np.random.default_rng(seed)
    chosen = {}
    for name, ps in paths.items():
        ps = sorted(ps)
        chosen[name] = [ps[i] for i in sorted(rng.choice(len(ps), min(per_model, len(ps)), replace=False))]
    return chosen


def epoch_evaluator(folders, source, *, train_seed: int, train_fraction: float, window: int, gallery: int,
                    pairs_same: int, pairs_diff: int, seed: int, trained_folders=()):
    """The evaluator `extractor.train` calls after every epoch (train-extractor --validation): of each
    validation model's folder ([(name, folder)]) a fixed subset of its evaluation side (modelfp.splits,
    as `embed` reads it), `gallery` + EPOCH_QUERIES images drawn by `sample_images` with `seed`,
    loaded once, here, so bad folders stop the run before training. After each epoch the model's
    centre is fitted as for the saved file (`extractor.fit_centre` on the training `source`, seed
    `train_seed` + CENTRE_SEED_OFFSET), then the subset is embedded in `window` x `window` windows
    and scored as `evaluate` scores (`scores`: gallery, pairs_same, pairs_diff, seed). A folder that
    is also trained on (`trained_folders`) is refused: validation models are never trained on."""
    from . import extractor as ex
    from .pools import load_image
    from .splits import EVAL, folder_side
    trained = {Path(f).resolve() for f in trained_folders} & {Path(f).resolve() for _, f in folders}
    if trained:
        raise ValueError(f"--validation folder(s) {sorted(map(str, trained))} are also trained on (--images)")
    paths = {}
    for name, folder in folders:
        try:
            paths[name] = folder_side(folder, train_fraction, EVAL)[0]
        except (FileNotFoundError, ValueError) as err:
            raise type(err)(f"validation model {name}: {err}") from err
    chosen = sample_images(paths, gallery + EPOCH_QUERIES, seed)
    few = sorted(name for name, ps in chosen.items() if len(ps) <= gallery)
    if few:
        raise ValueError(f"validation model(s) {few}: no more than --gallery {gallery} images on the "
                         f"evaluation side, so no query to identify; add images or lower evaluation.gallery")
    images = {name: [load_image(p, None) for p in ps] for name, ps in chosen.items()}
    log.info("validation after every epoch: %d models, %d images (of their evaluation side)", len(images),
             sum(map(len, images.values())))

    def evaluator(model):
        ex.fit_centre(model, source, train_seed + ex.CENTRE_SEED_OFFSET)
        got = scores(*embed_models(model, images, window), gallery_size=gallery, n_same=pairs_same,
                     n_diff=pairs_diff, seed=seed)
        return {"val_identification_acc": got["identification_acc"], "val_verification_auc": got["verification_auc"]}
    return evaluator
