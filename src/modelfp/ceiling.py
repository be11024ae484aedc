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
is left out of the fit and counted in the log. `add_command` registers the workflow verb `ceiling`.
"""

from __future__ import annotations

import logging

import numpy as np

from . import evaluate

log = logging.getLogger("modelfp")

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


# ---------------------------------------------------------------------------------------------
# The workflow verb

def cmd_ceiling(args) -> None:
    import torch
    from . import extractor as ex
    from .protocol_lists import embedded_keys
    from .splits import TRAIN, folder_side, image_key
    from .tables import write_csv
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else "cpu" if args.device == "auto" else args.device)
    model = ex.load(args.extractor, device)
    if model.cfg.backbone != "none":
        log.warning("%s: backbone %s, not the reference's input spectrum (backbone none)", args.extractor,
                    model.cfg.backbone)
    groups = {"classical": [], "emerging": []}
    train_emb, train_keys = [], []
    for name, folder, group in args.model:
        if group not in groups:
            raise ValueError(f"test model {name}: group must be classical or emerging, not {group!r}")
        groups[group].append(name)
        paths, total = folder_side(folder, args.train_fraction, TRAIN)
        train_emb.append(ex.embed_paths(model, paths, args.window, args.batch_size).numpy())
        train_keys += [(name, image_key(p, folder)) for p in paths]
        log.info("  %-24s %4d of %d images (training side, train_fraction %g)", name, len(paths), total,
                 args.train_fraction)
    train_emb = np.concatenate(train_emb)
    groups["all"] = [n for n, _, _ in args.model]
    rows, queries = [], []
    for group, names in groups.items():
        if len(names) < 2:
            log.warning("group %s has %d test model(s): no ceiling (need 2)", group, len(names))
            continue
        emb, _ = evaluate.read_embeddings(args.embeddings, names)
        keys = embedded_keys(args.embeddings, names)
        got = ceiling_group(train_emb, train_keys, emb, keys, args.gallery, args.gallery_draws, args.seed)
        if got["dropped"]:
            log.warning("%s: %d training-side image(s) are also evaluated; left out of the fit", group, got["dropped"])
        rows.append({"group": group, "models": len(names), "images": len(emb), "train_images": len(got["fit_keys"]),
                     "pca_dims": got["dims"], "identification_acc": 100 * got["accuracy"],
                     "identification_f1": 100 * got["macro_f1"], "identification_acc_se": 100 * got["accuracy_se"],
                     "identification_queries": got["n_queries"]})
        queries += [{"group": group, **r} for r in evaluate.query_rows(got, keys)]
        log.info("%-9s ceiling identification %.2f / F1 %.2f (se %.2f, %d queries; fitted on %d training-side "
                 "images, PCA %d)", group, rows[-1]["identification_acc"], rows[-1]["identification_f1"],
                 rows[-1]["identification_acc_se"], got["n_queries"], len(got["fit_keys"]), got["dims"])
    write_csv(queries, args.out_queries)
    write_csv(rows, args.out_csv)


def add_command(sub) -> None:
    """Register the workflow verb `ceiling` on the parser's subcommands."""
    p = sub.add_parser("ceiling", help="Table VIII's diagnostic: a linear classifier fitted on the reference "
                                       "inputs of the test models' training side, scored on identification's queries")
    p.add_argument("--extractor", required=True, help="the reference variant's extractor file")
    p.add_argument("--model", nargs=3, action="append", required=True, metavar=("NAME", "FOLDER", "GROUP"),
                   help="a test model's image folder and group (repeat): its training side is fitted on")
    p.add_argument("--embeddings", required=True, help="the reference variant's evaluation embeddings (NAME.npz)")
    p.add_argument("--train-fraction", type=float, required=True, help="evaluation.train_fraction (modelfp.splits)")
    p.add_argument("--window", type=int, required=True, help="n x n windows, as the embeddings (evaluation.window)")
    p.add_argument("--gallery", type=int, required=True, help="evaluation.gallery (identification's queries)")
    p.add_argument("--gallery-draws", type=int, required=True, help="evaluation.gallery_draws (its gallery pool)")
    p.add_argument("--seed", type=int, required=True, help="evaluation.seed")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", required=True, help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out-csv", required=True, help="per-group rows, as an evaluation csv's identification columns")
    p.add_argument("--out-queries", required=True, help="per-query csv, as evaluate --out-queries")
    p.set_defaults(func=cmd_ceiling)
