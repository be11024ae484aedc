"""Stage spectra (FFD, Section III-B, Tables II and XI, Figures 10, 11, 13, 14):
`synthetic-spectra` and `test-spectra` write the reduced spectra of the synthetic zoo and of the
test models (modelfp.representation), `ffd-tables` Tables II and XI from both (modelfp.tables),
`fig-10` each test model beside its closest synthetic spectrum, `spectral-effects` the figures and
claims of the architecture options (modelfp.spectral_effects)."""

from __future__ import annotations

import logging

from .. import cliutil

log = logging.getLogger(__name__)


def cmd_synthetic_spectra(args):
    from .. import denoise
    from ..feed import SyntheticZoo
    from ..pools import as_unit_range, read_pools
    from ..representation import synthetic_spectra
    from ..synthetic import fit_to_size
    cliutil.set_threads(args.threads)
    device = cliutil.device(args.device)
    zoo = SyntheticZoo.from_files(cliutil.zoo_checkpoints(args.checkpoints, args.manifest), device=device)
    denoiser = denoise.load(args.denoiser, device)
    ns = sorted(set(args.n_images_sweep) | {args.n_images})
    val = read_pools(args.pool, "val")
    if len(val) < ns[-1]:
        raise ValueError(f"the pools' validation splits hold {len(val)} images; spectra need "
                         f"{ns[-1]} (spectra.n_images and n_images_sweep): lower them or enlarge the pools")
    images = fit_to_size(val[:ns[-1]], args.image_size)
    images = as_unit_range(images).to(device)
    log.info("spectra of %d synthetic models on %d validation images of %dx%d (N in %s)",
             len(zoo), len(images), args.image_size, args.image_size, ns)
    spectra = synthetic_spectra(
        zoo, images, lambda x: denoise.noise_residual(denoiser, x, args.residual), ns,
        progress=lambda k, n: (k % 50 == 0 or k == n) and log.info("  %d / %d models", k, n))
    _save_spectra(args.out, spectra, ns, args.n_images, names=zoo.names,
                  archs=[m.arch.id for m in zoo.models],
                  seeds=[m.info["seed"] for m in zoo.models], image_size=args.image_size)


def _save_spectra(path, spectra, ns, n_main, **arrays):
    """npz of spectra: log at the main N, the N sweep, power, spec2d, and per-model labels."""
    import numpy as np
    cliutil.save_npz(path, log=spectra["log"][ns.index(n_main)].cpu().numpy(),
                     log_sweep=spectra["log"].cpu().numpy(), ns=np.array(ns),
                     power=spectra["power"].cpu().numpy(), spec2d=spectra["spec2d"].cpu().numpy(),
                     n_images=n_main, **{k: np.array(v) for k, v in arrays.items()})


def _load_npz(path, keys) -> dict:
    """The arrays `keys` of an npz of this workflow (a spectra file), or ValueError naming the file."""
    import zipfile

    import numpy as np

    from ..checkpoints import REBUILD
    try:
        with np.load(path) as data:
            missing = [k for k in keys if k not in data.files]
            if not missing:
                return {k: data[k] for k in keys}
    except FileNotFoundError:
        raise                                   # its message names the path
    except (OSError, ValueError, EOFError, TypeError, zipfile.BadZipFile) as err:   # TypeError: an .npy
        raise ValueError(f"{path}: not an npz archive, or a damaged one; {REBUILD}") from err
    raise ValueError(f"{path}: no array(s) {missing} (written by another verb?); {REBUILD}")


def cmd_test_spectra(args):
    from .. import denoise
    from ..representation import ImageSet, load_image_set, spectra_of_images, stack_models
    cliutil.set_threads(args.threads)
    device = cliutil.device(args.device)
    denoiser = denoise.load(args.denoiser, device)
    ns = sorted(set(args.n_images_sweep) | {args.n_images})
    sets = [ImageSet(name, path, group) for name, path, group in args.model]
    per_model = []
    for s in sets:
        with cliutil.reading(f"model {s.name}"):
            images = load_image_set(s, ns[-1], args.image_size).to(device)
        per_model.append(spectra_of_images(
            images, lambda x: denoise.noise_residual(denoiser, x, args.residual), ns))
        log.info("  %s (%s): %d images from %s", s.name, s.group, len(images), s.path)
    spectra = stack_models(per_model)
    _save_spectra(args.out, spectra, ns, args.n_images, names=[s.name for s in sets],
                  groups=[s.group for s in sets], image_size=args.image_size)


def cmd_ffd_tables(args):
    import numpy as np

    from .. import tables
    syn = _load_npz(args.synthetic, ("ns", "log", "log_sweep", "archs", "seeds", "n_images", "image_size"))
    real = _load_npz(args.real, ("ns", "log", "log_sweep", "names"))
    if not np.array_equal(syn["ns"], real["ns"]) or syn["log"].shape[1] != real["log"].shape[1]:
        raise ValueError(f"{args.synthetic} and {args.real} were made with different N or sizes")
    archs, seeds = [str(a) for a in syn["archs"]], [int(s) for s in syn["seeds"]]
    note = (f"Ours: {len(real['names'])} test models ({', '.join(map(str, real['names']))}) vs "
            f"{len(archs)} synthetic models, N = {int(syn['n_images'])} images per model, "
            f"{int(syn['image_size'])}x{int(syn['image_size'])}. Paper: 32 real models (Table III) "
            f"vs 5,760 synthetic models, N = 100, 128x128.")
    # sqrtm's round-off reports (dropped imaginary parts ~1e-10) go to debug; errors still raise
    rows = tables.table_ii(real["log"], syn["log"], archs, seeds, log=log.debug)
    tables.write_table(rows, args.out_csv[0], args.out_md[0],
                       "Table II: FFD of the synthetic models against the test models", note)
    rows_xi = tables.table_xi(real["log_sweep"], syn["log_sweep"], [int(n) for n in syn["ns"]],
                              archs, seeds, log=log.debug)
    tables.write_table(rows_xi, args.out_csv[1], args.out_md[1],
                       "Table XI: correlation of the Table II FFDs at each N with those at the largest N",
                       note + f" Our N sweep: {[int(n) for n in syn['ns']]}; the paper's: 50-500.")
    for row in rows:
        log.info("Table II  %-9s FFD %8.4f  (paper %.2f, %d synthetic models)", row["models"],
                 row["ffd"], row["paper_ffd"], row["n_synthetic"])


def cmd_closest_spectra(args):
    from ..figures import plot_closest_spectra
    syn, real = (_load_npz(path, ("names", "spec2d", "log")) for path in (args.synthetic, args.real))
    closest = plot_closest_spectra([str(n) for n in real["names"]], real["spec2d"], real["log"],
                                   [str(n) for n in syn["names"]], syn["spec2d"], syn["log"],
                                   args.out_png, args.out_pdf)
    for name, k in zip(real["names"], closest):
        log.info("  %-24s closest synthetic model: %s", name, syn["names"][k])


def cmd_spectral_effects(args):
    from .. import spectral_effects as se
    from .. import tables
    data = _load_npz(args.spectra, ("archs", "log", "power"))
    archs = [str(a) for a in data["archs"]]
    for option, png, pdf in zip(se.FIGURES, args.out_png, args.out_pdf, strict=True):
        se.plot_option(data["log"], archs, option, png, pdf)
    rows = se.hf_claims(data["power"], archs)
    consistency = se.normalization_consistency(data["log"], archs)
    verdict = {True: "our data agrees", False: "our data DISAGREES",
               None: "not testable here (no matched architectures)"}
    for row in rows:
        log.info("%-55s pairs %3d  agreeing %5.1f%%  -> %s", row["claim"], row["pairs"],
                 100 * row["share_agreeing"], verdict[row["agrees"]])
    log.info("%s: within %.4f, across %.4f -> %s", consistency["claim"],
             consistency["distance_within"], consistency["distance_across"],
             verdict[consistency["agrees"]])
    tables.write_csv(rows + [consistency], args.out_csv)


def _spectra_args(p) -> None:
    """The options of both spectra verbs: N (and Table XI's sweep), image size, residual, device."""
    p.add_argument("--n-images", type=int, required=True, help="N images per model (Table II)")
    p.add_argument("--n-images-sweep", type=int, nargs="*", required=True, help="Ns of Table XI")
    p.add_argument("--image-size", type=int, required=True)
    p.add_argument("--residual", choices=("predicted", "difference"), required=True)
    cliutil.compute_args(p)


def register(sub) -> None:
    p = sub.add_parser("synthetic-spectra", help="reduced spectra of every synthetic model (FFD Step I)")
    p.add_argument("--pool", nargs="+", required=True, help="pools whose val images are fed")
    p.add_argument("--denoiser", required=True)
    p.add_argument("--out", required=True, help=".npz with names, archs, log and power spectra")
    p.add_argument("--manifest", nargs="+", required=True, help="the zoo manifests listing the checkpoints")
    _spectra_args(p)
    p.add_argument("checkpoints", nargs="+")
    p.set_defaults(func=cmd_synthetic_spectra)

    p = sub.add_parser("test-spectra", help="reduced spectra of the test models' images (FFD Step I)")
    p.add_argument("--model", nargs=3, action="append", required=True,
                   metavar=("NAME", "FOLDER", "GROUP"), help="a test model's image set (repeat)")
    p.add_argument("--denoiser", required=True)
    p.add_argument("--out", required=True)
    _spectra_args(p)
    p.set_defaults(func=cmd_test_spectra)

    p = sub.add_parser("ffd-tables", help="Tables II and XI from the spectra of both sides")
    p.add_argument("--synthetic", required=True)
    p.add_argument("--real", required=True)
    p.add_argument("--out-csv", nargs=2, required=True, metavar=("TABLE_II", "TABLE_XI"))
    p.add_argument("--out-md", nargs=2, required=True, metavar=("TABLE_II", "TABLE_XI"))
    p.set_defaults(func=cmd_ffd_tables)

    p = sub.add_parser("fig-10", help="Figure 10: test models beside their closest synthetic model")
    p.add_argument("--synthetic", required=True)
    p.add_argument("--real", required=True)
    p.add_argument("--out-png", required=True)
    p.add_argument("--out-pdf", required=True)
    p.set_defaults(func=cmd_closest_spectra)

    p = sub.add_parser("spectral-effects", help="Figures 11, 13, 14 analogues and the claims csv")
    p.add_argument("--spectra", required=True)
    figures = ("UPSAMPLING", "ACTIVATION", "NORMALIZATION")     # spectral_effects.FIGURES: Figs 11, 13, 14
    p.add_argument("--out-png", nargs=3, required=True, metavar=figures)
    p.add_argument("--out-pdf", nargs=3, required=True, metavar=figures)
    p.add_argument("--out-csv", required=True, help="csv of the measured claims")
    p.set_defaults(func=cmd_spectral_effects)
