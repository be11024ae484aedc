"""Stage attribution (Section IV, Tables IV-X): `embed` fingerprints the evaluation side of test
models' images (modelfp.extractor, modelfp.baselines), `evaluate` scores them per group
(modelfp.evaluate, optionally on the authors' lists: modelfp.protocol_lists), `attribution-table`
makes Tables IV-X (modelfp.tables), `paired-tests` and `ceiling` add Table VIII's and IX's paired
tests and diagnostic row (modelfp.paired, modelfp.ceiling), `trace` Figures 9 and 15, and
`validation-table` the validation set's choices.csv (modelfp.validation)."""

from __future__ import annotations

import logging
from pathlib import Path

from .. import cliutil

log = logging.getLogger(__name__)

EMBED_CHUNK = 64      # images loaded at a time by `embed`


def read_lists(args):
    """The evaluation lists of --lists-root/--support/--test/--pairs (all or none), or None."""
    given = [args.lists_root, args.support, args.test, args.pairs]
    if not any(given):
        return None
    if not all(given):
        raise ValueError("--lists-root, --support, --test and --pairs go together (evaluation.lists)")
    from ..protocol_lists import read_lists as read
    return read(args.lists_root, args.support, args.test, args.pairs)


def cmd_embed(args):
    from .. import baselines
    from .. import extractor as ex
    from ..protocol_lists import listed_images
    from ..splits import EVAL, folder_side
    cliutil.set_threads(args.threads)
    model = baselines.load_fingerprinter(args.extractor, cliutil.device(args.device))
    lists = read_lists(args)
    for name, folder in args.model:
        paths, total = folder_side(folder, args.train_fraction, EVAL)
        if lists is not None:
            paths = listed_images(lists, name, folder, args.train_fraction) or paths
        emb = ex.embed_paths(model, paths, args.window, args.batch_size, EMBED_CHUNK, args.views)
        cliutil.save_npz(Path(args.out_dir) / f"{name}.npz", embeddings=emb.numpy(),
                         paths=[str(p) for p in paths], folder=str(folder), views=args.views)
        log.info("  %-24s %4d of %d images (%s, train_fraction %g) -> %s", name, len(paths), total,
                 "evaluation side" if lists is None else "named by the evaluation lists", args.train_fraction,
                 tuple(emb.shape))


def cmd_evaluate(args):
    from .. import evaluate, tables
    groups = evaluate.model_groups(args.model)
    verifier = None
    if args.verifier:
        from .. import baselines
        verifier = baselines.pair_verifier(args.verifier)
    rows, queries, pairs = [], [], []
    for result in evaluate.evaluate_groups(args.embeddings, groups, n_same=args.pairs_same, n_diff=args.pairs_diff,
                                           gallery_size=args.gallery, seed=args.seed, draws=args.gallery_draws,
                                           pair_score=verifier, lists=read_lists(args),
                                           per_image=bool(args.out_queries or args.out_pairs)):
        row = result.row
        rows.append(row)
        queries += result.queries
        pairs += result.pairs
        log.info("%-9s verification %.2f / AUC %.2f (threshold %.4f), identification %.2f / F1 %.2f "
                 "(sd %.2f over %d gallery draws, se %.2f on %d queries), open-set AUROC %.2f (threshold %.4f), "
                 "SS %.3f, DBI %.3f",
                 result.group, row["verification_acc"], row["verification_auc"], row["verification_threshold"],
                 row["identification_acc"], row["identification_f1"], row["identification_acc_sd"],
                 row["gallery_draws"], row["identification_acc_se"], row["identification_queries"],
                 row["openset_auroc"], row["openset_threshold"], row["silhouette"], row["dbi"])
        if args.out_png and result.group != "all":
            png = dict(zip(evaluate.GROUPS, args.out_png))[result.group]
            evaluate.plot_tsne(result.emb, result.labels, png, f"{args.title}: {result.group} test models",
                               seed=args.seed)
    if args.out_queries:
        tables.write_csv(queries, args.out_queries)
    if args.out_pairs:
        tables.write_csv(pairs, args.out_pairs)
    tables.write_csv(rows, args.out_csv)


def cmd_attribution_table(args):
    from .. import tables
    # an empty PAPER_LABEL declares a row without paper numbers; any other must be the paper's
    make = tables.comparison_table if args.table in tables.COMPARISON_METRICS else tables.ablation_table
    rows = make(args.table, [(label, paper or None, tables.read_evaluation(path))
                             for label, paper, path in args.row]
                + [(label, None, tables.read_evaluation(path)) for label, path in args.diagnostic])
    tables.write_table(rows, args.out_csv, args.out_md, tables.TITLES[args.table], args.note)
    log.info("%s -> %s, %s", tables.TITLES[args.table], args.out_csv, args.out_md)


def cmd_paired_tests(args) -> None:
    from ..paired import identification_rows, verification_rows
    from ..tables import write_csv
    queries = {label: _read_rows(path) for label, path in args.queries}
    pairs = {label: _read_rows(path) for label, path in args.pairs}
    for what, given in (("--queries", queries), ("--pairs", pairs)):
        if args.anchor not in given:
            raise ValueError(f"paired-tests: the anchor {args.anchor!r} has no {what} file (given: {sorted(given)})")
    ident = identification_rows(args.anchor, queries)
    verif = verification_rows(args.anchor, pairs, args.resamples, args.seed)
    for row in ident:
        log.info("%-40s %-9s acc %.2f vs %.2f (b %d, c %d) p %.3g", row["method"], row["group"], row["anchor acc"],
                 row["method acc"], row["b (anchor right only)"], row["c (method right only)"], row["p (McNemar exact)"])
    for row in verif:
        log.info("%-40s %-9s AUC diff %.2f, p %.3g", row["method"], row["group"], row["diff (anchor - method)"],
                 row["p (paired bootstrap)"])
    write_csv(ident, args.out_identification)
    write_csv(verif, args.out_verification)
    log.info("paired tests -> %s, %s", args.out_identification, args.out_verification)


def _read_rows(path) -> list[dict]:
    import csv
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def cmd_ceiling(args) -> None:
    import numpy as np

    from .. import evaluate
    from .. import extractor as ex
    from ..ceiling import ceiling_group
    from ..protocol_lists import embedded_keys
    from ..splits import TRAIN, folder_side, image_key
    from ..tables import write_csv
    cliutil.set_threads(args.threads)
    model = ex.load(args.extractor, cliutil.device(args.device))
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


def cmd_trace(args):
    """Figures 9 and 15: are the images of derived sets (LoRA variants, other generation
    configurations) attributed to their reference model among all references?"""
    import numpy as np

    from .. import evaluate, tables
    refs = args.reference
    derived = [(name, ref) for name, ref in args.derived]
    for name, ref in derived:
        if ref not in refs:
            raise ValueError(f"derived set {name}: its reference {ref!r} is not among --reference {refs}")
    ref_emb, ref_labels = evaluate.read_embeddings(args.embeddings, refs)
    names, gallery = evaluate.gallery_fingerprints(ref_emb, ref_labels)
    rows = []
    for name, ref in derived:
        emb, _ = evaluate.read_embeddings(args.embeddings, [name])
        pred = names[np.argmax(evaluate.cosine_matrix(emb, gallery), axis=1)]
        rows.append({"set": name, "reference": ref, "images": len(emb),
                     "attributed_to_reference": round(100 * float(np.mean(pred == ref)), 2),
                     "most_attributed": str(max(set(pred), key=list(pred).count))})
        log.info("  %-24s -> %s: %.1f%% of its images", name, ref, rows[-1]["attributed_to_reference"])
    tables.write_csv(rows, args.out_csv)
    der_emb, der_labels = evaluate.read_embeddings(args.embeddings, [n for n, _ in derived])
    # colour = reference model (a derived set takes its reference's colour), marker = reference/derived
    to_ref = dict(derived)
    colours = np.concatenate([ref_labels, [to_ref[n] for n in der_labels]])
    markers = np.array(["reference"] * len(ref_labels) + [args.derived_label] * len(der_labels))
    evaluate.plot_tsne(np.concatenate([ref_emb, der_emb]), colours, args.out_png, args.title,
                       seed=args.seed, markers=markers)


def _validation_summary(path) -> dict:
    """The `all` row of an evaluation csv (the verb `evaluate`), as a dict, with validation's columns."""
    import csv

    from ..validation import SUMMARY_COLUMNS
    with open(path, newline="") as f:
        rows = {r.get("group"): r for r in csv.DictReader(f)}
    if "all" not in rows:
        raise ValueError(f"{path}: no row with group 'all' (groups: {sorted(map(str, rows))}); "
                         f"the validation set needs at least 2 models")
    missing = [k for k in SUMMARY_COLUMNS if k not in rows["all"]]
    if missing:
        raise ValueError(f"{path}: no column(s) {missing} in its 'all' row")
    return rows["all"]


def cmd_validation_table(args):
    import numpy as np

    from .. import evaluate, tables
    from ..validation import DIFFERS, Pair, choices_row
    pairs = []
    for name, differs, a, b in args.pair or []:
        if differs not in DIFFERS:
            raise ValueError(f"pair {name}: differs must be one of {DIFFERS}, not {differs!r}")
        pairs.append(Pair(name, differs, a, b))
    members = sorted({m for p in pairs for m in (p.a, p.b)})
    rows = []
    for variant, evaluation_csv, embeddings in args.variant:
        if members:
            emb, labels = evaluate.read_embeddings(embeddings, members)
        else:
            emb, labels = np.zeros((0, 1)), np.array([], dtype=str)
        row = choices_row(variant, _validation_summary(evaluation_csv), emb, labels, pairs, args.gallery, args.seed)
        rows.append({**row, "evaluation": evaluation_csv})
        log.info("%-10s identification %.1f, verification AUC %.1f, same-design pairs %.1f "
                 "(seed %.1f, data %.1f)", variant, row["identification_acc"], row["verification_auc"],
                 row["pair_identification_acc"], row["seed_pairs_acc"], row["data_pairs_acc"])
    tables.write_csv(rows, args.out)


def _list_args(p) -> None:
    """The evaluation lists' options of embed and evaluate (`read_lists`)."""
    p.add_argument("--lists-root", help="evaluation lists (all four or none; modelfp.protocol_lists): "
                   "the folder the list paths are relative to")
    p.add_argument("--support", help="identification support list, path<TAB>label lines")
    p.add_argument("--test", help="identification test list, path<TAB>label lines")
    p.add_argument("--pairs", help="verification pair list, path1<TAB>path2<TAB>label lines (1 same, 0 different)")


def register(sub) -> None:
    p = sub.add_parser("embed", help="fingerprints of test models' images with sliding windows")
    p.add_argument("--extractor", required=True, help="a fingerprint-extractor or trained-baseline file")
    p.add_argument("--model", nargs=2, action="append", required=True, metavar=("NAME", "FOLDER"))
    p.add_argument("--train-fraction", type=float, required=True,
                   help="share of each model's images kept for training (modelfp.splits); the rest are embedded")
    p.add_argument("--window", type=int, required=True, help="n for n x n windows (1: centre crop)")
    p.add_argument("--views", type=int, default=1,
                   help="test-time views (modelfp.extractor.VIEWS; 1: the plain fingerprint, every table's)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out-dir", required=True, help="writes OUT_DIR/NAME.npz")
    _list_args(p)
    cliutil.compute_args(p)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("evaluate", help="verification, identification, SS/DBI per group (csv), t-SNE")
    p.add_argument("--embeddings", required=True, help="folder of NAME.npz")
    p.add_argument("--model", nargs=2, action="append", required=True, metavar=("NAME", "GROUP"))
    p.add_argument("--pairs-same", type=int, required=True)
    p.add_argument("--pairs-diff", type=int, required=True)
    p.add_argument("--gallery", type=int, required=True)
    p.add_argument("--gallery-draws", type=int, required=True,
                   help="seeded gallery draws from a fixed pool per model, the queries fixed (evaluation.gallery_draws)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out-png", nargs=2, metavar=("CLASSICAL", "EMERGING"),
                   help="also plot each group's t-SNE (png)")
    p.add_argument("--title", default="t-SNE of fingerprints")
    p.add_argument("--verifier", help="a trained-baseline file whose method has its own pair verifier "
                                      "(abady): its scores on the same pairs go to verifier_verification_*")
    _list_args(p)
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-queries", help="csv, a row per query: group, model, key, majority prediction, share of "
                                         "draws right, each draw's prediction (modelfp.paired reads it)")
    p.add_argument("--out-pairs", help="csv, a row per verification pair: group, model_i, key_i, model_j, key_j, "
                                       "same, score (modelfp.paired reads it)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("attribution-table", help="Tables IV-X from evaluation csvs, beside the paper's")
    from ..paper_tables import TABLES
    p.add_argument("--table", required=True, choices=TABLES)
    p.add_argument("--row", nargs=3, action="append", required=True, metavar=("LABEL", "PAPER_LABEL", "CSV"))
    p.add_argument("--diagnostic", nargs=2, action="append", default=[], metavar=("LABEL", "CSV"),
                   help="a diagnostic row, never a method, after the rows (Table VIII's ceiling; repeat)")
    p.add_argument("--note", default="")
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)
    p.set_defaults(func=cmd_attribution_table)

    from ..paired import RESAMPLES
    p = sub.add_parser("paired-tests", help="Tables VIII/IX paired tests: McNemar on the same queries, "
                                            "bootstrap of the AUC difference on the same pairs")
    p.add_argument("--anchor", required=True, help="the label every other method is compared with (Only-Syn)")
    p.add_argument("--queries", nargs=2, action="append", default=[], metavar=("LABEL", "CSV"),
                   help="a method's per-query file (evaluate --out-queries; repeat)")
    p.add_argument("--pairs", nargs=2, action="append", default=[], metavar=("LABEL", "CSV"),
                   help="a method's per-pair file (evaluate --out-pairs; repeat)")
    p.add_argument("--seed", type=int, required=True, help="the bootstrap's seed (evaluation.seed)")
    p.add_argument("--resamples", type=int, default=RESAMPLES)
    p.add_argument("--out-identification", required=True, help="csv: Table VIII's McNemar tests")
    p.add_argument("--out-verification", required=True, help="csv: Table IX's AUC bootstrap")
    p.set_defaults(func=cmd_paired_tests)

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
    p.add_argument("--out-csv", required=True, help="per-group rows, as an evaluation csv's identification columns")
    p.add_argument("--out-queries", required=True, help="per-query csv, as evaluate --out-queries")
    cliutil.compute_args(p)
    p.set_defaults(func=cmd_ceiling)

    p = sub.add_parser("trace", help="Figures 9/15: derived image sets attributed to their reference model")
    p.add_argument("--embeddings", required=True)
    p.add_argument("--reference", nargs="+", required=True)
    p.add_argument("--derived", nargs=2, action="append", required=True, metavar=("NAME", "REFERENCE"))
    p.add_argument("--derived-label", default="derived")
    p.add_argument("--title", default="")
    p.add_argument("--seed", type=int, required=True, help="the t-SNE's seed (evaluation.seed)")
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-png", required=True)
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("validation-table", help="the validation set's choices.csv: per extractor variant, "
                                                "identification, verification AUC, same-design pairs")
    p.add_argument("--variant", nargs=3, action="append", required=True,
                   metavar=("NAME", "EVALUATION_CSV", "EMBEDDINGS"),
                   help="a variant, its evaluation csv on the validation view and that view's embeddings folder")
    p.add_argument("--pair", nargs=4, action="append", metavar=("NAME", "DIFFERS", "A", "B"),
                   help="a same-design pair: its name, seed|data, and its two models (repeat)")
    p.add_argument("--gallery", type=int, required=True, help="evaluation.gallery")
    p.add_argument("--seed", type=int, required=True, help="evaluation.seed")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_validation_table)
