"""The ceiling row of Table VIII (issue 22): a diagnostic, never a method.

How well could anything identify the test models from the extractor's input alone, if it were
allowed to train on them? A linear classifier (PCA to at most PCA_DIMS dimensions, then
scikit-learn's LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")) is fitted on the
`reference` input - the untrained input spectrum that the `reference` variant embeds, in the same
n x n windows, through the same reference extractor file - of each test model's TRAINING side
(modelfp.splits, the images fine-tuning and the baselines may read), and scored on the evaluation
side: exactly the queries of identification (modelfp.evaluate.gallery_pool with the same gallery,
draws and seed, on the reference variant's own evaluation embeddings). Per group, the classifier
knows only the group's models, as a group's gallery does.

It is supervised on the test models, which zero-shot attribution never is: a row far above Only-Syn
says the input holds the information and the extractor loses it; a row near chance says no linear
read-out of the input could do better. As a guard, a training-side image whose (model, key) is also
among the evaluated images (possible with published evaluation lists, which may name either side)
is left out of the fit and counted in the log. The workflow verb `ceiling` (modelfp.steps.attribution)
embeds the training side and writes the rows.
"""

from __future__ import annotations

import numpy as np

from . import evaluate

PCA_DIMS = 256        # the reference spectra have 3 S^2 dimensions (49,152 at S = 128): reduce first
LABEL = "ceiling: supervised linear on reference spectra (diagnostic)"


def classifier(n_train: int, dim: int, seed: int, dims: int = PCA_DIMS):
    """PCA (at most `dims` components, fewer than the training images) then shrinkage LDA."""
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import make_pipeline
    k = max(1, min(dims, n_train - 1, dim))
    return make_pipeline(PCA(n_components=k, random_state=seed),
                         LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"))


def ceiling_group(train_emb, train_keys, eval_emb, eval_keys, gallery_size: int, draws: int, seed: int,
                  dims: int = PCA_DIMS) -> dict:
    """The ceiling on one group of models.

    train_emb (n, d) with train_keys [(model, key)] per row: the training side's reference inputs;
    eval_emb, eval_keys: the evaluation side's (modelfp.evaluate.read_embeddings and
    protocol_lists.embedded_keys). Queries are identification's (`evaluate.gallery_pool`); the fit
    uses only the training rows of the evaluated models whose (model, key) is not evaluated.
    Returns accuracy and macro_f1 (fractions), accuracy_se, n_queries, and for inspection and the
    per-query file query_index, truth, predictions, fit_keys (the rows it was fitted on), dropped."""
    from sklearn.metrics import accuracy_score, f1_score
    # float32: at the paper's scale the training side's spectra alone are 16,000 x 49,152 values
    train_emb, eval_emb = np.asarray(train_emb, dtype=np.float32), np.asarray(eval_emb, dtype=np.float32)
    labels = np.array([m for m, _ in eval_keys])
    names = np.unique(labels)
    evaluated, known = set(map(tuple, eval_keys)), set(names.tolist())
    keep = [r for r, k in enumerate(train_keys) if k[0] in known and tuple(k) not in evaluated]
    dropped = sum(1 for k in train_keys if k[0] in known and tuple(k) in evaluated)
    fit_labels = np.array([train_keys[r][0] for r in keep])
    lacking = sorted(set(names) - set(fit_labels.tolist()))
    if lacking:
        raise ValueError(f"ceiling: model(s) {lacking} have no training-side image to fit on")
    _, queries = evaluate.gallery_pool(labels, gallery_size, seed, draws)
    model = classifier(len(keep), train_emb.shape[1], seed, dims).fit(train_emb[keep], fit_labels)
    predictions = model.predict(eval_emb[queries])
    truth = labels[queries]
    accuracy = float(accuracy_score(truth, predictions))
    return {"accuracy": accuracy, "macro_f1": float(f1_score(truth, predictions, labels=names, average="macro",
                                                              zero_division=0)),
            "accuracy_se": evaluate.binomial_se(accuracy, len(queries)), "n_queries": int(len(queries)),
            "query_index": queries, "truth": truth, "predictions": predictions.astype(str),
            "fit_keys": [tuple(train_keys[r]) for r in keep], "dropped": dropped,
            "dims": int(model.named_steps["pca"].n_components_)}
