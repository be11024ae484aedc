"""Stage figures: `fig-3` (a classifier of two generators on block-swapped models,
modelfp.blockswap), `fig-8` (synthesis time and accuracy versus block count), `fig-12` (kernel
spectra beside the output's, modelfp.kernel_spectra) and `fig-16` (identification under JPEG and
crop). Each writes the plot as png and pdf and its numbers as csv (modelfp.figures)."""

from __future__ import annotations

import logging

from .. import cliutil

log = logging.getLogger(__name__)


def cmd_fig_3(args):
    from .. import denoise, tables, testbed
    from ..blockswap import (ClassifierConfig, accuracy, block_swap, csv_rows, plot_block_swap,
                             residual_spectra, reversal_rate)
    cliutil.set_threads(args.threads)
    device = cliutil.device(args.device)
    denoiser = denoise.load(args.denoiser, device)
    cfg = ClassifierConfig(args.steps, args.batch_size, args.width, args.lr, args.seed)
    rows, results = [], []
    for name_1, path_1, name_2, path_2 in args.pair:
        (g1, p1), (g2, p2) = testbed.load(path_1, device), testbed.load(path_2, device)
        design = ("family", "image_size", "hp")
        if any(p1[k] != p2[k] for k in design):
            raise ValueError(f"pair {name_1} / {name_2}: not one design ({path_1}: "
                             f"{[p1[k] for k in design]}, {path_2}: {[p2[k] for k in design]})")
        module = testbed.family(p1["family"])
        label = f"{name_1} / {name_2}" + (f" ({p1['hp']['upsample']})" if "upsample" in p1["hp"] else "")
        log.info("pair %s: %s, %d px, seeds %s and %s", label, p1["family"], p1["image_size"],
                 p1["info"].get("seed"), p2["info"].get("seed"))
        result = block_swap(g1, g2, p1["family"], lambda m, n, seed: module.sample(m, n, seed, device),
                            lambda x: residual_spectra(x, denoiser), cfg, args.n_train, args.n_test,
                            args.seed, device)
        log.info("  Testing I accuracy %.3f; Testing II reversal rate by blocks swapped: %s",
                 accuracy(result["testing_i"]),
                 ", ".join(f"{n}: {reversal_rate(c):.3f}" for n, c in result["testing_ii"].items()))
        rows += csv_rows((name_1, name_2), label, result)
        results.append((label, result))
    tables.write_csv(rows, args.out_csv)
    plot_block_swap(results, args.out_png, args.out_pdf)


def cmd_figure_8(args):
    """Figure 8: synthesis time of the zoo with at most k blocks, and verification accuracy."""
    import csv as _csv

    from .. import tables
    from ..archspace import parse
    from ..figures import plot_block_count
    from ..paper_tables import paper_rows
    paper = paper_rows("fig_8")       # the paper's GPU hours of the zoo up to k blocks
    seconds = {}
    for path in args.zoo_summary:
        with open(path, newline="") as f:
            for row in _csv.DictReader(f):
                k = parse(row["arch"]).blocks
                seconds[k] = seconds.get(k, 0.0) + float(row["train_seconds"])
    rows = []
    for k, path in sorted((int(k), p) for k, p in args.evaluation):
        ev = cliutil.all_row(path, ("verification_acc", "identification_acc"))
        total = sum(v for b, v in seconds.items() if b <= k)
        rows.append({"max_blocks": k, "synthesis_seconds": round(total, 1), "synthesis_hours": round(total / 3600, 4),
                     "verification_acc": round(ev["verification_acc"], 2),
                     "identification_acc": round(ev["identification_acc"], 2),
                     "paper_gpu_hours": paper.get(str(k), ("",))[0]})
    tables.write_csv(rows, args.out_csv)
    plot_block_count(rows, args.out_png, args.out_pdf)
    log.info("Figure 8 -> %s", args.out_png)


def cmd_fig_12(args):
    from .. import tables, testbed
    from ..kernel_spectra import csv_rows, plot_kernel_spectra, spectra_of
    cliutil.set_threads(args.threads)
    device = cliutil.device(args.device)
    names, spectra = [], []
    for name, path in args.model:
        model, payload = testbed.load(path, device)
        module = testbed.family(payload["family"])
        s = spectra_of(model, args.channel, lambda m, n: module.sample(m, n, args.seed, device), args.n_images)
        log.info("%s (%s, %d px): last convolution %s %s, channel %d, %d images", name, payload["family"],
                 payload["image_size"], s["layer"], s["kernel_shape"], args.channel, s["images"])
        names.append(name)
        spectra.append(s)
    rows = csv_rows(names, spectra, args.channel)
    for row in rows:
        log.info("  %-20s correlation %.3f (linear %.3f; with the other models' kernels %s)", row["model"],
                 row["correlation"], row["correlation_linear"], row["control_other_kernel"])
    tables.write_csv(rows, args.out_csv)
    plot_kernel_spectra(names, spectra, rows, args.out_png, args.out_pdf)


def cmd_figure_16(args):
    """Figure 16: identification accuracy under JPEG and crop-resize, plain and immunized."""
    from .. import tables
    from ..figures import plot_robustness
    rows = [{"extractor": name, "perturbation": kind, "level": float(level),
             "identification_acc": round(cliutil.all_row(path, ["identification_acc"])["identification_acc"], 2)}
            for name, kind, level, path in args.point]
    tables.write_csv(rows, args.out_csv)
    plot_robustness(rows, args.out_png, args.out_pdf)
    log.info("Figure 16 -> %s", args.out_png)


def register(sub) -> None:
    p = sub.add_parser("fig-3", help="Figure 3: a 2-way classifier of two generators on models composed "
                                     "by swapping their last generative blocks")
    p.add_argument("--pair", nargs=4, action="append", required=True,
                   metavar=("NAME_1", "GENERATOR_1", "NAME_2", "GENERATOR_2"),
                   help="two test-bed generator files of one design, differing in seed (repeat)")
    p.add_argument("--denoiser", required=True, help="the DnCNN whose noise residual the classifier reads")
    p.add_argument("--n-train", type=int, required=True, help="training images per model")
    p.add_argument("--n-test", type=int, required=True, help="test images per model and composed model")
    p.add_argument("--steps", type=int, required=True, help="classifier training steps")
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--width", type=int, required=True, help="channels of the classifier's first stage")
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--seed", type=int, required=True, help="latents (training: seed, tests: seed + 1) "
                                                           "and the classifier's weights and batches")
    cliutil.figure_outputs(p)
    cliutil.compute_args(p)
    p.set_defaults(func=cmd_fig_3)

    p = sub.add_parser("fig-8", help="Figure 8: synthesis time and accuracy versus block count")
    p.add_argument("--zoo-summary", nargs="+", required=True)
    p.add_argument("--evaluation", nargs=2, action="append", required=True, metavar=("BLOCKS", "CSV"))
    cliutil.figure_outputs(p)
    p.set_defaults(func=cmd_figure_8)

    p = sub.add_parser("fig-12", help="Figure 12: kernel spectra of the last convolution beside its "
                                      "output's spectrum")
    p.add_argument("--model", nargs=2, action="append", required=True, metavar=("NAME", "GENERATOR"),
                   help="a generator file of the test bed or validation set (repeat)")
    p.add_argument("--channel", type=int, required=True, help="output channel of the last convolution")
    p.add_argument("--n-images", type=int, required=True, help="images sampled per model")
    p.add_argument("--seed", type=int, required=True, help="latents of the sampled images")
    cliutil.figure_outputs(p)
    cliutil.compute_args(p)
    p.set_defaults(func=cmd_fig_12)

    p = sub.add_parser("fig-16", help="Figure 16: identification under JPEG and crop, plain and immunized")
    p.add_argument("--point", nargs=4, action="append", required=True,
                   metavar=("EXTRACTOR", "KIND", "LEVEL", "CSV"))
    cliutil.figure_outputs(p)
    p.set_defaults(func=cmd_figure_16)
