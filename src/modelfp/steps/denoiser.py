"""Stage denoiser: `train-denoiser` trains the DnCNN whose noise residual the spectra, the
extractor and some baselines read (modelfp.denoise), or adopts an external checkpoint."""

from __future__ import annotations

import logging

from .. import cliutil

log = logging.getLogger(__name__)


def cmd_train_denoiser(args):
    from .. import denoise
    from ..pools import read_pools
    cliutil.set_threads(args.threads)
    device = cliutil.device(args.device)
    val = read_pools(args.pool, "val")
    if args.external:
        model = denoise.load(args.external, device)
        log.info("denoiser: external checkpoint %s (%s)", args.external, model.info)
        meta = {"source": "external", "external": str(args.external)}
    else:
        cfg = denoise.TrainConfig(sigma=args.sigma, patch=args.patch, batch_size=args.batch_size,
                                  steps=args.steps, lr=args.lr, seed=args.seed)
        train = read_pools(args.pool, "train")
        log.info("train DnCNN (depth %d, %d features) on %d images, sigma %.2f (0-255), %d steps",
                 args.depth, args.features, len(train), args.sigma, args.steps)
        model, history = denoise.train_denoiser(
            train, cfg, device, depth=args.depth, features=args.features,
            progress=lambda step, loss: log.info(
                "  step %5d  loss %.4f (share of the noise variance left; 1 = removes nothing)",
                step, loss))
        meta = {"source": "trained", "train_config": cfg.__dict__, "seconds": history.seconds,
                "final_loss": history.loss[-1] if history.loss else None,
                "noise_mse": history.noise_mse}
    quality = denoise.psnr_gain(model, val, args.sigma, seed=args.seed, device=device)
    log.info("denoiser on %d validation images at sigma %.2f: PSNR %.2f dB noisy -> %.2f dB "
             "denoised (gain %+.2f dB)", len(val), args.sigma, quality["psnr_noisy"],
             quality["psnr_denoised"], quality["gain"])
    denoise.save(model, args.out, **meta, validation=quality, sigma=args.sigma)


def register(sub) -> None:
    p = sub.add_parser("train-denoiser", help="train DnCNN on pools (or adopt an external one)")
    p.add_argument("--pool", nargs="+", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--external", help="an external DnCNN checkpoint to use instead of training")
    p.add_argument("--sigma", type=float, required=True, help="noise std on the 0-255 scale")
    p.add_argument("--patch", type=int, required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--depth", type=int, required=True)
    p.add_argument("--features", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    cliutil.compute_args(p)
    p.set_defaults(func=cmd_train_denoiser)
