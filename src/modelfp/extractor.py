"""The fingerprint extractor (paper Section III-D, Figure 6, Eqs. 11-14) and its training.

Input pipeline (`SpectrumInput`): image I in [-1, 1] -> noise residual I' = I - f_denoise(I)
(Eq. 13; the DnCNN's noise estimate, `denoise.noise_residual`) -> per-channel Fourier magnitude
(`spectrum.fft_magnitude`; the authors feed |FFT| raw, "abs"; log1p is a config choice because a
prototype found the transform matters a lot) -> optionally each frequency position standardised
with mean/std measured on training images (spectra are not translation invariant: position is
frequency). The denoiser is frozen and travels inside the extractor file, so a saved extractor
embeds images on its own. Options for a spectrum input (all off by default, the behaviour before
them): `input_scale` multiplies the residual before |FFT| (residuals are in [-1, 1] units, |FFT|
about 0.3, where log1p is nearly the identity; 255 puts them in 8-bit units), `centre_spectrum`
fftshifts it so zero frequency sits in the middle.

Network (`Extractor`): a torchvision ResNet (ResNet50 in the paper; no pretrained weights can be
downloaded, `weights` may name a local state dict) whose pooled output is the fingerprint h
(Eq. 12), plus a linear classification head over the training models. pooling "avg" is the
paper's global average pool; "flatten" keeps the last feature map's positions. Options:
`padding: circular` pads the backbone's convolutions (and the ResNet max-pool) circularly, since the
spectrum is periodic; `stem: light` gives a ResNet a stride-1 3x3 first convolution and no max-pool
(CIFAR-style), so single-bin peaks of a small spectrum are not blurred before the first block;
`backbone: linear` is the cheapest learned metric: one linear map of the flattened spectrum to
LINEAR_DIM, initialised at the whitened PCA of training spectra (`fit_input_statistics`).

Training (`train`): P x K batches of model indices (`losses.PKSampler`; or, `sampler: same_design`,
P // S architectures x S seeds each, `losses.SameDesignSampler`); the images come from a
`source` made on the device each step - for synthetic models the feed I_k = M_k(I_real) (Eq. 11),
for fine-tuning the images of known models - rounded to 8 bits like any saved image; loss CE +
batch-hard triplet (Eq. 14); AdamW with linear warm-up then cosine decay, stepped per batch.
A resumable state file is written atomically after every epoch; a killed run continues from the
last finished epoch.

Centring (`fit_centre`): every fingerprint shares a large common component (over images of 13
generators and of noise, every raw pairwise cosine lay in [0.996, 1]), so fingerprints are
compared after subtracting the extractor's centre, the mean fingerprint of its own training images
(never of test-bed images), measured once after training and stored in the file. `embed`, which
every consumer (evaluation, galleries, identify, verify) uses, returns centred fingerprints.

Test-time views (`VIEWS`, issue 25): `embed(..., views=k)` sees each image in the first k of the
square's 8 flips and quarter-turns and concatenates the k unit fingerprints (over sqrt(k), so the
cosine of two such fingerprints is the mean of the views' cosines): an ensemble of one network
over views it was not made invariant to. views=1 (the paper's, every table's) is the plain
fingerprint. The people's tool uses the count its extractor file was calibrated with
(`Extractor.views`, stored by the calibrate step from the embeddings it was calibrated on).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import checkpoints, denoise
from .losses import DISTANCES, MARGIN, SAMPLERS, attribution_loss, make_sampler
from .pools import as_unit_range, to_uint8, to_unit_range
from .spectrum import TRANSFORMS, fft_magnitude
from .variants import SPECIALISTS

FORMAT = "modelfp.extractor/1"
STATE_FORMAT = "modelfp.extractor-state/1"
POOLINGS = ("avg", "flatten")
# what the losses see (Eq. 14): "bnneck" - CE on the batch-normalised fingerprint, triplet on the
# fingerprint itself; "projection" - the paper's wording: a projection head (Linear-BN-ReLU-Linear
# to PROJECTION_DIM) whose output is the fingerprint and carries the triplet loss, CE on the pooled
# backbone features
HEADS = ("bnneck", "projection")
PROJECTION_DIM = 128
PADDINGS = ("zeros", "circular")      # the backbone's convolutions (circular: the spectrum is periodic)
# a ResNet's stem -> (first conv's kernel, its stride, keep the 3x3/2 max-pool); the maps after it at
# 32 px: standard 8 x 8, light 32 x 32 (7x the standard's training arithmetic), light_maxpool and
# light_stride2 16 x 16 (about 2x): a learned 3x3 at full resolution before a max-pool (which moves
# a single-bin peak by at most one bin, it does not average it away), or a learned stride-2 3x3
STEMS = {"standard": (7, 2, True), "light": (3, 1, False), "light_maxpool": (3, 1, True),
         "light_stride2": (3, 2, False)}
LINEAR_DIM = 256                      # backbone "linear": the fingerprint's size (< STATS_IMAGES, so
                                      # every component of the PCA initialisation is measured)
PCA_FLOOR = 1e-3                      # whitening divides by max(component std, PCA_FLOOR x the largest)
STATS_IMAGES = 512          # training images measured for the per-position input statistics
# training images whose mean fingerprint is the centre: fixed, not in the config, so the centre is
# part of the method; 512 puts the mean's standard error at 1/sqrt(512) ~ 4% of the per-image
# spread, small beside the common component it removes, at a few batches of inference
CENTRE_IMAGES = STATS_IMAGES
STATS_SEED_OFFSET = 2       # the input statistics' draw uses TrainConfig.seed + 2 (+1: training)
CENTRE_SEED_OFFSET = 3      # its draw uses TrainConfig.seed + 3
BANK_SEED_OFFSET = 4        # the spectrum bank's images: TrainConfig.seed + 4
STD_FLOOR = 1e-6

log = logging.getLogger(__name__)


@dataclass
class ExtractorConfig:
    backbone: str = "resnet50"
    weights: str | None = None      # local torchvision state dict for the backbone (no downloads)
    transform: str = "abs"          # spectrum.fft_magnitude: abs | log1p | log
    normalize: bool = False         # standardise each frequency position (training statistics)
    pooling: str = "avg"            # avg (paper) | flatten
    head: str = "bnneck"            # bnneck | projection (HEADS)
    image_size: int = 128           # the training window; test images are windowed to it
    residual: str = "predicted"     # denoise.noise_residual mode
    centre_spectrum: bool = False   # fftshift the spectrum: zero frequency in the middle
    padding: str = "zeros"          # the backbone's convolutions: zeros | circular (PADDINGS)
    stem: str = "standard"          # a ResNet's stem: standard | light | light_maxpool | light_stride2 (STEMS)
    input_scale: float = 1.0        # the residual is multiplied by this before |FFT|

    def __post_init__(self):
        if self.backbone not in BACKBONES:
            raise ValueError(f"extractor backbone must be one of {sorted(BACKBONES)}, not {self.backbone!r}")
        if self.transform not in TRANSFORMS:
            raise ValueError(f"extractor transform must be one of {TRANSFORMS}, not {self.transform!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"extractor pooling must be one of {POOLINGS}, not {self.pooling!r}")
        if self.head not in HEADS:
            raise ValueError(f"extractor head must be one of {HEADS}, not {self.head!r}")
        if self.image_size < 8:
            raise ValueError(f"extractor image_size must be >= 8, not {self.image_size}")
        if self.padding not in PADDINGS:
            raise ValueError(f"extractor padding must be one of {PADDINGS}, not {self.padding!r}")
        if self.stem not in STEMS:
            raise ValueError(f"extractor stem must be one of {tuple(STEMS)}, not {self.stem!r}")
        if self.stem != "standard" and self.backbone == "small_cnn":
            raise ValueError(f"extractor stem: {self.stem} is for the torchvision ResNets; small_cnn's first layer "
                             "is already a stride-1 3x3 convolution without pooling (set stem: standard)")
        if not self.input_scale > 0:
            raise ValueError(f"extractor input_scale must be > 0, not {self.input_scale}")


@dataclass
class TrainConfig:
    epochs: int = 40
    steps_per_epoch: int = 1000
    p: int = 50                     # models per batch
    k: int = 4                      # images per model: batch = P x K (paper: 200)
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 1000
    margin: float = MARGIN
    seed: int = 0
    augment: dict = field(default_factory=dict)   # {} or {"jpeg": [lo, hi], "crop": [lo, hi], "p": p, "gray": p}
    # 0: every batch is made afresh by the source (Eq. 11 each step); n > 0: a bank of n input
    # spectra per training model, made once before training (`SpectrumBank`), batches drawn from it
    bank: int = 0
    sampler: str = "uniform"        # uniform: P of all models (paper) | same_design (losses.SAMPLERS)
    seeds_per_design: int = 2       # same_design: S models of each of P // S architectures per batch
    triplet_distance: str = "euclidean"   # euclidean (paper) | cosine, of L2-normalised features

    def __post_init__(self):
        if self.epochs < 1 or self.steps_per_epoch < 1:
            raise ValueError(f"extractor training needs epochs >= 1 and steps_per_epoch >= 1; got "
                             f"{self.epochs}, {self.steps_per_epoch}")
        if self.bank < 0:
            raise ValueError(f"extractor bank must be >= 0 (0: no bank), not {self.bank}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"extractor sampler must be one of {SAMPLERS}, not {self.sampler!r}")
        if self.seeds_per_design < 1:
            raise ValueError(f"extractor seeds_per_design must be >= 1, not {self.seeds_per_design}")
        if self.triplet_distance not in DISTANCES:
            raise ValueError(f"extractor triplet_distance must be one of {DISTANCES}, not {self.triplet_distance!r}")
        if self.bank and self.augment:
            raise ValueError("extractor bank and augment exclude each other: augmentations act on images "
                             "made afresh each step; set bank: 0 for an immunized variant")
        unknown = set(self.augment) - {"jpeg", "crop", "p", "gray"}
        if unknown:
            raise ValueError(f"unknown augmentation keys {sorted(unknown)}; known: jpeg, crop, p, gray")
        if not 0 <= self.augment.get("gray", 0) <= 1:
            raise ValueError(f"augmentation gray is a probability in [0, 1], not {self.augment['gray']}")


# ---------------------------------------------------------------------------------------------
# The network

class SpectrumInput(nn.Module):
    """[-1, 1] images (B,3,S,S) -> the extractor's input spectra (B,3,S,S); no trainable weights."""

    def __init__(self, denoiser: denoise.DnCNN, cfg: ExtractorConfig):
        super().__init__()
        self.denoiser = denoiser.eval().requires_grad_(False)
        self.transform, self.normalize, self.residual = cfg.transform, cfg.normalize, cfg.residual
        self.scale, self.shift = cfg.input_scale, cfg.centre_spectrum
        s = cfg.image_size
        self.register_buffer("mean", torch.zeros(3, s, s))
        self.register_buffer("std", torch.ones(3, s, s))

    def train(self, mode: bool = True):
        return super().train(False)            # the frozen denoiser's BatchNorm stays in eval mode

    @torch.no_grad()
    def spectrum(self, x):
        if self.residual == "predicted":
            r = self.denoiser.noise_estimate(x)
        else:
            r = x - self.denoiser.denoise(x)
        if self.scale != 1:
            r = r * self.scale
        s = fft_magnitude(r, self.transform)
        return torch.fft.fftshift(s, dim=(-2, -1)) if self.shift else s

    @torch.no_grad()
    def standardise(self, s):
        """Spectra (`spectrum`) -> the network's input: standardised per position when configured."""
        return (s - self.mean) / self.std if self.normalize else s

    @torch.no_grad()
    def forward(self, x):
        return self.standardise(self.spectrum(x))

    @torch.no_grad()
    def fit_statistics(self, images: torch.Tensor, batch_size: int = 64) -> None:
        """Per-position mean and std of the spectra of `images` ([-1, 1] float on this device)."""
        spectra = torch.cat([self.spectrum(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])
        self.mean.copy_(spectra.mean(0))
        self.std.copy_(spectra.std(0).clamp_min(STD_FLOOR))


def fit_input_statistics(model: "Extractor", source, seed: int, batch_size: int = 64) -> None:
    """What the extractor measures of its training images before training: the per-position input
    statistics (`SpectrumInput.fit_statistics`, with `normalize`) and the linear backbone's PCA
    initialisation (`LinearMap.fit_pca`, of the network's input), both of the same STATS_IMAGES
    training images of `source`, labels and images drawn from torch.Generator(seed +
    STATS_SEED_OFFSET). Nothing (and no draw) when the config needs neither."""
    linear = isinstance(model.backbone, LinearMap)
    if not (model.cfg.normalize or linear):
        return
    gen = torch.Generator().manual_seed(seed + STATS_SEED_OFFSET)
    labels = torch.randint(len(source.classes), (STATS_IMAGES,), generator=gen)
    images = source(labels, gen)
    if model.cfg.normalize:
        model.front.fit_statistics(images)
    if linear:
        device = model.front.mean.device
        with torch.no_grad():
            x = torch.cat([model.front(images[i:i + batch_size].to(device)) for i in range(0, len(images), batch_size)])
        model.backbone.fit_pca(x)


class SmallCNN(nn.Module):
    """The presets' CPU-sized backbone: three stages of two conv3x3-BN-ReLU, each stage halving the
    side (stride-2 max pool), then `pooling`: a global average (like the ResNet) or the flattened
    map of a 4x4 adaptive average, which keeps coarse frequency position."""

    def __init__(self, pooling: str, width: int = 32):
        super().__init__()
        layers, cin = [], 3
        for c in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                       nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            cin = c
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1 if pooling == "avg" else 4)

    def forward(self, x):
        return self.pool(self.body(x)).flatten(1)


class LinearMap(nn.Module):
    """backbone "linear": the flattened input spectrum through one linear layer to `dim` (the
    cheapest learned metric). `fit_pca` initialises it at the whitened principal components of
    training inputs, so at initialisation the Euclidean distance of fingerprints is the Mahalanobis
    distance of the spectra in their top `dim` components; training then moves the map."""

    def __init__(self, in_dim: int, dim: int = LINEAR_DIM):
        super().__init__()
        self.map = nn.Linear(in_dim, dim)

    def forward(self, x):
        return self.map(x.flatten(1))

    @torch.no_grad()
    def fit_pca(self, x: torch.Tensor) -> None:
        """Rows of the map := the top principal directions of x (N, ...) divided by their standard
        deviations (floored at PCA_FLOOR of the largest), bias := minus the mapped mean; rows past
        the data's rank keep their initial weights."""
        x = x.flatten(1).double()
        mean = x.mean(0)
        _, sv, vh = torch.linalg.svd(x - mean, full_matrices=False)
        n = min(self.map.out_features, len(sv))
        std = sv[:n] / math.sqrt(max(len(x) - 1, 1))
        rows = vh[:n] / std.clamp_min(PCA_FLOOR * std[0])[:, None]
        w = self.map.weight.detach().double().clone()
        w[:n] = rows
        self.map.weight.copy_(w.to(self.map.weight.dtype))
        self.map.bias.copy_((-(w @ mean)).to(self.map.bias.dtype))


class CircularMaxPool(nn.Module):
    """A max-pool whose padding wraps around (for `padding: circular`)."""

    def __init__(self, pool: nn.MaxPool2d):
        super().__init__()
        pad = pool.padding if isinstance(pool.padding, tuple) else (pool.padding, pool.padding)
        self.pad = (pad[1], pad[1], pad[0], pad[0])
        self.pool = nn.MaxPool2d(pool.kernel_size, pool.stride, 0, pool.dilation, ceil_mode=pool.ceil_mode)

    def forward(self, x):
        return self.pool(F.pad(x, self.pad, mode="circular"))


def circular_padding(net: nn.Module) -> nn.Module:
    """`net` with every padded convolution padding circularly and every padded max-pool wrapping
    around (no weight changes: the state dict keeps its keys)."""
    for name, mod in list(net.named_modules()):
        if isinstance(mod, nn.Conv2d) and any(mod.padding):
            mod.padding_mode = "circular"      # Conv2d pads by _reversed_padding_repeated_twice itself
        elif isinstance(mod, nn.MaxPool2d) and mod.padding not in (0, (0, 0)):
            parent, _, child = name.rpartition(".")
            setattr(net.get_submodule(parent) if parent else net, child, CircularMaxPool(mod))
    return net


def _output_dim(net: nn.Module, cfg: ExtractorConfig) -> int:
    with torch.no_grad():
        return net.eval()(torch.zeros(1, 3, cfg.image_size, cfg.image_size)).shape[1]


def _no_network(cfg: ExtractorConfig) -> tuple[nn.Module, int]:
    return nn.Flatten(1), 3 * cfg.image_size * cfg.image_size


def _small_cnn(cfg: ExtractorConfig) -> tuple[nn.Module, int]:
    if cfg.weights:
        raise ValueError("extractor weights are for torchvision backbones; small_cnn trains from scratch")
    net = SmallCNN(cfg.pooling)
    if cfg.padding == "circular":
        circular_padding(net)
    return net, _output_dim(net, cfg)


def _linear(cfg: ExtractorConfig) -> tuple[nn.Module, int]:
    if cfg.weights:
        raise ValueError("extractor weights are for torchvision backbones; linear trains from scratch")
    return LinearMap(3 * cfg.image_size * cfg.image_size), LINEAR_DIM


def _resnet(cfg: ExtractorConfig) -> tuple[nn.Module, int]:
    """torchvision's ResNet of that name (imported here: torchvision costs a verb 1 s to import),
    optionally with local weights; its pooled (or, pooling "flatten", unpooled) features."""
    import torchvision

    net = getattr(torchvision.models, cfg.backbone)(weights=None)
    if cfg.weights:
        state = checkpoints.read(cfg.weights, f"{cfg.backbone} state dict")
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        try:
            net.load_state_dict(state)
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"{cfg.weights}: not torchvision {cfg.backbone} weights ({err})") from err
    net.fc = nn.Identity()
    if cfg.stem != "standard":
        # CIFAR-style: the 7x7/2 conv + 3x3/2 max-pool would blur single-bin peaks of a small spectrum
        # into their neighbours before the first block (a pretrained conv1 is not kept: other shape)
        kernel, stride, maxpool = STEMS[cfg.stem]
        net.conv1 = nn.Conv2d(3, net.conv1.out_channels, kernel, stride=stride, padding=kernel // 2, bias=False)
        if not maxpool:
            net.maxpool = nn.Identity()
    if cfg.padding == "circular":
        circular_padding(net)
    if cfg.pooling == "flatten":
        net.avgpool = nn.Identity()            # ResNet.forward flattens (C, h, w) itself
    return net, _output_dim(net, cfg)


# The extractor's backbones, name -> builder(cfg) -> (network, feature dim). "none": no network, the
# fingerprint is the flattened input spectrum itself (the training-free reference of Tables VIII-X:
# the same residual-spectrum input, compared by cosine). padding and stem change nothing of the
# networks without convolutions (none, linear), so the controls can share a preset's options.
BACKBONES = {"resnet18": _resnet, "resnet34": _resnet, "resnet50": _resnet, "small_cnn": _small_cnn,
             "linear": _linear, "none": _no_network}


class Extractor(nn.Module):
    """images -> fingerprints h (features) and logits over the training models."""

    def __init__(self, denoiser: denoise.DnCNN, cfg: ExtractorConfig, classes: list[str]):
        super().__init__()
        self.cfg, self.classes = cfg, list(classes)
        self.front = SpectrumInput(denoiser, cfg)
        self.backbone, self.dim = BACKBONES[cfg.backbone](cfg)
        # BN-neck (Luo et al. 2019, "Bag of tricks" for re-identification): CE sees batch-normalised
        # features, the triplet loss and the fingerprint the raw ones; the two losses then stop
        # pulling the same vector in different directions, and CE learns much faster
        self.pooled_dim = self.dim
        if cfg.head == "projection":
            self.neck = nn.Sequential(nn.Linear(self.dim, self.dim), nn.BatchNorm1d(self.dim),
                                      nn.ReLU(inplace=True), nn.Linear(self.dim, PROJECTION_DIM))
            self.dim = PROJECTION_DIM
        else:
            self.neck = nn.BatchNorm1d(self.dim)
        self.head = nn.Linear(self.pooled_dim, len(self.classes), bias=False)
        # the mean training fingerprint (`fit_centre`); stored by `save` as its own field, not in
        # the state dict, so files and training states without it still load
        self.register_buffer("centre", torch.zeros(self.dim), persistent=False)
        self.threshold: float | None = None          # calibrated verification threshold (verify)
        self.openset_threshold: float | None = None  # calibrated open-set threshold (identify)
        self.openset_rule: dict | None = None        # calibrated per-model open-set constants (modelfp.openset)
        self.resaved: dict | None = None             # per re-save, its calibrated thresholds (`set_threshold`)
        self.views = 1              # test-time views the thresholds were calibrated with (`VIEWS`)

    def features(self, images):
        return self.fingerprint_and_logits(self.front(images))[0]

    def forward(self, images):
        return self.fingerprint_and_logits(self.front(images))

    def fingerprint_and_logits(self, x):
        """Network input x (`front`'s output) -> (fingerprint h, logits over the training models)."""
        pooled = self.backbone(x)
        if self.cfg.head == "projection":
            return self.neck(pooled), self.head(pooled)
        return pooled, self.head(self.neck(pooled))

    def new_head(self, classes: list[str]) -> None:
        """A fresh classification head over other models (fine-tuning on known generators)."""
        self.classes = list(classes)
        self.head = nn.Linear(self.pooled_dim, len(self.classes), bias=False).to(next(self.parameters()).device)


def build(denoiser, cfg: ExtractorConfig, classes: list[str], seed: int) -> Extractor:
    """The untrained extractor, its weights drawn from `seed` (the global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Extractor(denoiser, cfg, classes)


def _network_payload(model: Extractor) -> dict:
    """One network's part of a file: config, class names, denoiser, weights, centre."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items() if not k.startswith("front.denoiser.")}
    return {"config": asdict(model.cfg), "classes": model.classes, "denoiser": denoise.to_payload(model.front.denoiser),
            "state_dict": state, "centre": model.centre.detach().cpu().clone()}


def save(model: Extractor, path, **meta) -> None:
    """Atomic write of a trained extractor: config, class names, denoiser, weights, centre,
    thresholds, its specialist networks (`attach_specialists`), meta."""
    checkpoints.save({"format": FORMAT, **_network_payload(model), "threshold": model.threshold,
                      "openset_threshold": model.openset_threshold, "openset_rule": model.openset_rule,
                      "resaved": model.resaved, "views": model.views,
                      "specialists": {k: _network_payload(m) for k, m in specialists_of(model).items()} or None,
                      "meta": meta}, path)


def _network(payload: dict, path, what: str = "") -> Extractor:
    """The network of a file's payload (or of one of its specialists': `what` names it in errors)."""
    try:
        cfg = ExtractorConfig(**{**payload["config"], "weights": None})
        den = denoise.from_payload(payload["denoiser"], f"{path}{what} (its denoiser)")
        model = Extractor(den, cfg, payload["classes"])
        model.load_state_dict(payload["state_dict"], strict=False)
        missing = set(model.state_dict()) - set(payload["state_dict"]) - {
            k for k in model.state_dict() if k.startswith("front.denoiser.")}
        if missing:
            raise ValueError(f"missing weights {sorted(missing)[:3]}")
        centre = payload.get("centre")
        if centre is not None:
            model.centre.copy_(torch.as_tensor(centre).reshape(model.dim))
    except (KeyError, TypeError, RuntimeError, ValueError) as err:
        raise ValueError(f"{path}: damaged {FORMAT} file{what} ({err}); rerun the rule that trains it") from err
    if centre is None:
        # files written before centring: they keep working, with raw (uncentred) fingerprints
        log.warning("%s: no fingerprint centre (written before centring); fingerprints are compared "
                    "uncentred, so unrelated images score near 1. Retrain it (rule train_extractor) "
                    "for readable scores", path)
    return model


def load(path, device="cpu") -> Extractor:
    """An extractor in eval mode, with its specialist networks in `model.specialists` ({kind:
    Extractor}, `attach_specialists`); `model.meta` holds what `save` stored. Clear errors for other
    files. `path` is a file of `save` or the folder (or its config.json) of `export`."""
    if is_exported(path):
        payload = exported_payload(path)
    else:
        payload = checkpoints.load(path, FORMAT, "fingerprint-extractor file", "cpu")
    model = _network(payload, path)
    specialists = payload.get("specialists") or {}
    unknown = sorted(set(specialists) - set(SPECIALISTS)) if isinstance(specialists, dict) else [specialists]
    if unknown:
        raise ValueError(f"{path}: specialist network(s) {unknown} of no kind this modelfp knows ({', '.join(SPECIALISTS)}); "
                         f"a file of a newer modelfp: upgrade modelfp")
    model.specialists = {kind: _network(p, path, f" (its {kind} specialist)").to(device).eval()
                         for kind, p in specialists.items()}
    model.threshold = payload.get("threshold")
    model.openset_threshold = payload.get("openset_threshold")
    model.openset_rule = payload.get("openset_rule")        # None: calibrated before per-model rules
    model.resaved = payload.get("resaved")                  # None: calibrated before re-saves had their own
    model.views = int(payload.get("views") or 1)            # files calibrated before test-time views: 1
    model.meta = payload.get("meta", {})
    return model.to(device).eval()


def specialists_of(model: Extractor) -> dict[str, Extractor]:
    """{kind: specialist network} of an extractor (none for one without)."""
    return dict(getattr(model, "specialists", None) or {})


def network_for(model: Extractor, condition: str | None) -> Extractor:
    """The network that embeds an image re-saved as `condition` (`perturb.MATCHED`; None: clean):
    the specialist of its kind where the file carries one (`variants.SPECIALISTS`), else `model`."""
    for kind, network in specialists_of(model).items():
        if condition in SPECIALISTS[kind]:
            return network
    return model


def attach_specialists(path, specialists: dict, out) -> None:
    """The extractor file `path` with the networks of the extractor files `specialists` ({kind:
    path}, kinds of `variants.SPECIALISTS`) carried as its specialists, written atomically to `out`.
    Each must read images of the extractor's size (a gallery embeds every copy in its windows)."""
    payload = checkpoints.load(path, FORMAT, "fingerprint-extractor file")
    size = payload["config"]["image_size"]
    carried = {}
    for kind, other in specialists.items():
        if kind not in SPECIALISTS:
            raise ValueError(f"unknown specialist kind {kind!r}; known: {', '.join(SPECIALISTS)}")
        part = checkpoints.load(other, FORMAT, "fingerprint-extractor file")
        if part["config"]["image_size"] != size:
            raise ValueError(f"{other}: reads {part['config']['image_size']}-px windows, {path} {size}-px; a "
                             f"specialist must read the extractor's window (train it with the same image_size)")
        carried[kind] = {k: part[k] for k in ("config", "classes", "denoiser", "state_dict", "centre")}
    payload["specialists"] = carried or None
    payload["meta"] = {**payload.get("meta", {}), "specialists": {k: str(v) for k, v in specialists.items()}}
    checkpoints.save(payload, out)


def set_threshold(path, threshold: float, out=None, openset_threshold: float | None = None,
                  openset_rule: dict | None = None, views: int = 1, resaved: dict | None = None, **meta) -> None:
    """The extractor file `path` with the verification threshold (`verify`), the open-set threshold
    (`identify`: "unknown" below it), the per-model open-set constants (`modelfp.openset`; None:
    the global threshold only), the test-time views they were calibrated with, per re-save
    (`perturb.MATCHED`) the thresholds a re-saved image is answered with (`resaved`: {condition:
    {"verification_threshold": t, "openset": ...}}, `modelfp.resaved.fit`'s record; None: the clean
    images' for every image) and meta stored, written atomically to `out` (default: `path`)."""
    check_views(views)
    payload = checkpoints.load(path, FORMAT, "fingerprint-extractor file")
    payload["threshold"] = float(threshold)
    payload["views"] = int(views)
    payload["openset_threshold"] = None if openset_threshold is None else float(openset_threshold)
    payload["openset_rule"] = openset_rule
    # plain values only (numpy scalars would make the file unreadable under torch's weights_only load)
    payload["resaved"] = None if resaved is None else _plain(resaved)
    payload["meta"] = {**payload.get("meta", {}), **meta}
    checkpoints.save(payload, out or path)


# ---------------------------------------------------------------------------------------------
# Training images: the synthetic feed, or the images of known models

def quantize(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float -> the same values rounded to 8 bits, as when a generated image is saved."""
    return to_unit_range(to_uint8(x), x.dtype)


class ZooSource:
    """I_k = M_k(I_real) (Eq. 11): random real images of `pool` (uint8 (N,3,S,S)) through model k."""

    def __init__(self, zoo, pool: torch.Tensor, device):
        self.zoo, self.pool, self.device = zoo, pool, torch.device(device)
        self.classes = list(zoo.names)
        self.designs = [m.arch.id for m in zoo.models]     # each model's architecture (same_design batches)

    def __call__(self, labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(self.pool), (len(labels),), generator=gen)
        real = as_unit_range(self.pool[idx].to(self.device))
        return quantize(self.zoo(real, labels))


class FolderSource:
    """Random images of known models: `images[c]` uint8 (n_c,3,S,S) of the model named classes[c]."""

    def __init__(self, images: list[torch.Tensor], classes: list[str], device):
        self.images, self.classes, self.device = images, list(classes), torch.device(device)

    def __call__(self, labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        pick = [self.images[c][torch.randint(len(self.images[c]), (1,), generator=gen)] for c in labels.tolist()]
        return as_unit_range(torch.cat(pick).to(self.device))


class SpectrumBank:
    """`per_class` input spectra (`SpectrumInput.spectrum`, before standardisation) of each class of
    `source`, made once with torch.Generator(seed); a batch draws, for each label, one of its class's
    spectra. Each training step then costs the network alone (no synthetic model, denoiser or FFT),
    at the price of a finite set of images per model. Memory: classes x per_class x 3 x S x S floats."""

    def __init__(self, source, front: SpectrumInput, per_class: int, seed: int, batch_size: int = 64):
        self.classes, self.device, self.per_class = list(source.classes), source.device, per_class
        gen = torch.Generator().manual_seed(seed)
        labels = torch.arange(len(self.classes)).repeat_interleave(per_class)
        self.spectra = torch.cat([front.spectrum(source(labels[i:i + batch_size].to(self.device), gen))
                                  for i in range(0, len(labels), batch_size)])

    def __call__(self, labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        pick = torch.randint(self.per_class, (len(labels),), generator=gen).to(labels.device)
        return self.spectra[labels * self.per_class + pick]


def augment(images: torch.Tensor, spec: dict, gen: torch.Generator) -> torch.Tensor:
    """The "immunized" training of Appendix B: each image, with probability spec["p"], JPEG at a
    quality drawn from spec["jpeg"] and/or a RandomResizedCrop at a scale drawn from spec["crop"];
    then, with probability spec["gray"] when given (issue 25; not in the paper), its luminance in
    all three channels, exactly what the people's tool reads from a grayscale file (`perturb.
    grayscale`). Gray comes last, so a grayscale image stays gray as such a file does; without the
    key no random number is drawn for it, so a spec of before gives the same images as before."""
    from .perturb import grayscale, perturb
    if not spec:
        return images
    p = float(spec.get("p", 0.5))
    pixels = to_uint8(images).permute(0, 2, 3, 1).cpu().numpy()
    out = []
    for img in pixels:
        for kind in ("crop", "jpeg"):
            if kind in spec and torch.rand((), generator=gen) < p:
                lo, hi = spec[kind]
                level = lo + (hi - lo) * torch.rand((), generator=gen).item()
                level = round(level) if kind == "jpeg" else level
                img = perturb(np.ascontiguousarray(img), kind, level, int(torch.randint(2**31, (), generator=gen)))
        if "gray" in spec and torch.rand((), generator=gen) < float(spec["gray"]):
            img = grayscale(np.ascontiguousarray(img))
        out.append(torch.from_numpy(np.ascontiguousarray(img)))
    return as_unit_range(torch.stack(out).permute(0, 3, 1, 2).to(images.device))


# ---------------------------------------------------------------------------------------------
# Training

def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def _state(model, opt, sched, sampler, gen, epoch, history, fingerprint):
    return {"format": STATE_FORMAT, "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "sampler": sampler.state_dict(), "gen": gen.get_state(),
            "epoch": epoch, "history": history, "fingerprint": fingerprint, "classes": model.classes}


def _with_defaults(fingerprint: dict) -> dict:
    """A state file's configuration with the options added since it was written at their defaults
    (which are the behaviour before them), so such a state still resumes."""
    out = dict(fingerprint)
    for key, cls in (("train", TrainConfig), ("model", ExtractorConfig)):
        if isinstance(out.get(key), dict):
            defaults = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
            out[key] = {**{k: v for k, v in defaults.items() if k not in out[key]}, **out[key]}
    return out


def train(model: Extractor, source, cfg: TrainConfig, device, state_path=None, progress=None,
          on_epoch=None, evaluator=None) -> list[dict]:
    """Train `model` (its classes = source.classes) with Eq. 14; returns the per-epoch history.

    state_path: resumable state written after each epoch (and resumed from when present and made
    by the same run: same classes and training config; otherwise an error says to delete it).
    progress(step, total): after every batch. on_epoch(row): after every epoch, row = history entry.
    evaluator(model) -> {column: value}: after every epoch, in eval mode under torch.no_grad() (the
    model goes back to train mode after); its columns and val_seconds, the seconds it took, join the
    epoch's row before the state is written, so a resumed run keeps earlier epochs' values.
    """
    if list(model.classes) != list(source.classes):
        raise ValueError("the extractor's classes differ from its training source's")
    model = model.to(device)
    # each model's design (architecture id) for same_design batches; a source without designs (known
    # models) is one design per model
    designs = list(getattr(source, "designs", source.classes))
    sampler = make_sampler(cfg.sampler, designs, cfg.p, cfg.k, cfg.seeds_per_design, cfg.seed)
    if cfg.sampler == "same_design" and sampler.s < cfg.seeds_per_design:
        log.warning("same_design batches: %d model(s) per design, not seeds_per_design %d (the smallest "
                    "design has no more)", sampler.s, cfg.seeds_per_design)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.epochs * cfg.steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.warmup_steps, total))
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    fingerprint = {"train": asdict(cfg), "classes": len(source.classes), "model": asdict(model.cfg)}
    history, start = [], 0
    bank = None
    if cfg.bank:
        # made before any resumed state is read, from its own seed: a resumed run rebuilds the same bank
        model.eval()
        bank = SpectrumBank(source, model.front, cfg.bank, cfg.seed + BANK_SEED_OFFSET)
    if state_path and Path(state_path).exists():
        state = checkpoints.load(state_path, STATE_FORMAT, "extractor training state")
        if _with_defaults(state["fingerprint"]) != fingerprint:
            raise ValueError(f"{state_path}: training state of another configuration; delete it to "
                             f"start over")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        sampler.load_state_dict(state["sampler"])
        gen.set_state(state["gen"])
        start, history = state["epoch"], state["history"]
    for epoch in range(start, cfg.epochs):
        model.train()
        sums = torch.zeros(4)
        t0 = time.perf_counter()
        for step in range(cfg.steps_per_epoch):
            labels = next(sampler)
            if bank is not None:
                x = model.front.standardise(bank(labels.to(bank.device), gen).to(device))
            else:
                images = source(labels.to(source.device), gen)
                if cfg.augment:
                    images = augment(images, cfg.augment, gen)
                x = model.front(images.to(device))
            labels = labels.to(device)
            h, logits = model.fingerprint_and_logits(x)
            loss, ce, tri = attribution_loss(h, logits, labels, cfg.margin, cfg.triplet_distance)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            acc = (logits.argmax(1) == labels).float().mean()
            sums += torch.stack([loss.detach(), ce.detach(), tri.detach(), acc.detach()]).cpu()
            if progress:
                progress(epoch * cfg.steps_per_epoch + step + 1, total)
        mean = (sums / cfg.steps_per_epoch).tolist()
        row = {"epoch": epoch + 1, "loss": mean[0], "ce": mean[1], "triplet": mean[2],
               "train_acc": mean[3], "lr": sched.get_last_lr()[0], "seconds": time.perf_counter() - t0}
        if evaluator:
            t0 = time.perf_counter()
            model.eval()
            with torch.no_grad():
                row.update(evaluator(model))
            model.train()
            row["val_seconds"] = time.perf_counter() - t0
        history.append(row)
        if state_path:
            checkpoints.save(_state(model, opt, sched, sampler, gen, epoch + 1, history, fingerprint),
                             state_path)
        if on_epoch:
            on_epoch(row)
    return history


# ---------------------------------------------------------------------------------------------
# Inference: sliding windows over images of any size (Section IV-B, Table VII)

def window_starts(length: int, size: int, n: int) -> list[int]:
    """Up to n equally spaced window starts along a side of `length` >= size, from 0 to length - size
    (n = 1: the centre). Starts that coincide (a side shorter than size + n - 1) are given once, so
    an image of exactly the window size is one crop, not n identical ones."""
    if length < size or n < 1:
        raise ValueError(f"need length >= window size and n >= 1; got {length}, {size}, {n}")
    if n == 1:
        return [(length - size) // 2]
    return sorted({math.floor(i * (length - size) / (n - 1) + 0.5) for i in range(n)})


def windows(image: torch.Tensor, size: int, n: int) -> torch.Tensor:
    """(3,H,W) image -> (up to n*n, 3, size, size) crops (see `window_starts`); an image smaller than
    `size` on either side is first resized (bilinear, antialiased) to size x size: one crop."""
    h, w = image.shape[-2:]
    if h < size or w < size:
        img = F.interpolate(image[None].float(), size=(size, size), mode="bilinear", antialias=True,
                            align_corners=False)
        return img.round().clamp(0, 255).to(image.dtype) if not image.is_floating_point() else img
    return torch.stack([image[:, t:t + size, l:l + size]
                        for t in window_starts(h, size, n) for l in window_starts(w, size, n)])


# the square's 8 flips and quarter-turns (the dihedral group D4) of (..., H, W) images, in the
# order `embed(views=k)` takes the first k of
VIEWS = {
    "identity": lambda x: x,
    "flip_left_right": lambda x: x.flip(-1),
    "flip_up_down": lambda x: x.flip(-2),
    "rotate_180": lambda x: x.flip(-2, -1),
    "transpose": lambda x: x.transpose(-2, -1),
    "rotate_90_clockwise": lambda x: x.transpose(-2, -1).flip(-1),
    "rotate_90_anticlockwise": lambda x: x.transpose(-2, -1).flip(-2),
    "anti_transpose": lambda x: x.transpose(-2, -1).flip(-2, -1),
}


def check_views(views: int) -> int:
    if not 1 <= int(views) <= len(VIEWS):
        raise ValueError(f"views must be 1 to {len(VIEWS)} (the square's flips and quarter-turns), not {views}")
    return int(views)


def first_views(fingerprints, views: int, k: int):
    """The k-view fingerprints of images from their `views`-view ones (k <= views, views > 1: unit
    blocks over sqrt(views), as `embed` makes them), without embedding again: the first k blocks of
    (N, views * dim) times sqrt(views / k), unit vectors again, equal to `embed(..., views=k)` up to
    rounding (for k = 1, to its unit-length form: one view's `embed` is the raw centred
    fingerprint). A torch tensor or numpy array."""
    views, k = check_views(views), check_views(k)
    if k > views:
        raise ValueError(f"cannot take {k} views of fingerprints made with {views}")
    dim = fingerprints.shape[1] // views
    if dim * views != fingerprints.shape[1]:
        raise ValueError(f"fingerprints of width {fingerprints.shape[1]} are not {views} views of one width")
    return fingerprints[:, :k * dim] * math.sqrt(views / k)


@contextlib.contextmanager
def channels_last(model: nn.Module):
    """The model's convolutions in the channels-last memory layout for the block (CPU: 1.30x
    windows/s for the demo's network, benchmarks/memory_layout.py; equal to the default layout up
    to float rounding), back in the default layout after: a model embedded between training epochs
    (validation) trains on in the layout it would have had without, so resuming stays bit-exact."""
    model.to(memory_format=torch.channels_last)
    try:
        yield model
    finally:
        model.to(memory_format=torch.contiguous_format)


@torch.no_grad()
def embed(model: Extractor, images, n_windows: int, batch_size: int = 64, views: int = 1) -> torch.Tensor:
    """Fingerprints (N, dim) of a list of uint8 (3,H,W) images (any sizes): the mean feature of
    each image's n x n windows (fewer for small images, see `windows`), minus the model's centre.
    With views=k > 1, (N, k * dim): the unit fingerprints of the image's first k `VIEWS`,
    concatenated, over sqrt(k) (a unit vector). The network runs channels-last (`channels_last`)."""
    with channels_last(model):
        if check_views(views) == 1:
            return _embed_view(model, images, n_windows, batch_size)
        turns = list(VIEWS.values())[:views]
        return torch.cat([F.normalize(_embed_view(model, [turn(img).contiguous() for img in images], n_windows,
                                                  batch_size), dim=1) for turn in turns], dim=1) / math.sqrt(views)


def _embed_view(model: Extractor, images, n_windows: int, batch_size: int) -> torch.Tensor:
    """`embed` of the images as given (one view), the network already channels-last."""
    model.eval()
    device = next(iter(model.buffers())).device      # every fingerprinter has buffers (the centre)
    size = model.cfg.image_size
    crops, owner = [], []
    for i, img in enumerate(images):
        c = windows(img, size, n_windows)
        crops.append(c)
        owner += [i] * len(c)
    if not crops:
        return torch.empty(0, model.dim)
    crops = torch.cat(crops)
    owner = torch.tensor(owner)
    feats = torch.cat([model.features(as_unit_range(crops[i:i + batch_size].to(device))
                                      .contiguous(memory_format=torch.channels_last)).float().cpu()
                       for i in range(0, len(crops), batch_size)])
    out = torch.zeros(len(images), feats.shape[1]).index_add_(0, owner, feats)
    return out / torch.bincount(owner, minlength=len(images))[:, None] - model.centre.float().cpu()


def embed_paths(model: Extractor, paths, n_windows: int, batch_size: int = 64, chunk: int = 64,
                views: int = 1) -> torch.Tensor:
    """`embed` of image files, loaded `chunk` at a time (1,000 megapixel images would not fit in
    memory at once): what the verb embed stores, and the ceiling diagnostic's training side."""
    from .pools import load_image
    parts = [embed(model, [load_image(p, None) for p in paths[i:i + chunk]], n_windows, batch_size, views)
             for i in range(0, len(paths), chunk)]
    return torch.cat(parts) if parts else torch.empty(0, model.dim * views)


@torch.no_grad()
def fit_centre(model: Extractor, source, seed: int, n: int = CENTRE_IMAGES, batch_size: int = 64) -> torch.Tensor:
    """Set (and return) model.centre: the mean raw fingerprint (`features`, eval mode) of n training
    images of `source` (labels and images drawn from torch.Generator(seed); no augmentation: the
    centre is of the images as the models made them). Call it after training; never with test images."""
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(len(source.classes), (n,), generator=gen)
    total = torch.zeros(model.dim, dtype=torch.float64)
    for i in range(0, n, batch_size):
        images = source(labels[i:i + batch_size].to(source.device), gen)
        total += model.features(images.to(device)).double().sum(0).cpu()
    model.centre.copy_((total / n).to(model.centre.dtype))
    return model.centre.detach().cpu().clone()


# ---------------------------------------------------------------------------------------------
# The exported form: safetensors weights plus a JSON config, for sharing an extractor. Nothing in
# it is pickled, so loading it runs no code; `load` reads it like the .pt file, to the same bits.

EXPORT_FORMAT = "modelfp.extractor-export/1"
EXPORT_WEIGHTS = "model.safetensors"
EXPORT_CONFIG = "config.json"
EXPORT_HINT = (f"an exported extractor is a folder with {EXPORT_CONFIG} and {EXPORT_WEIGHTS} "
               f"(`modelfp export EXTRACTOR OUT_DIR`)")


def _plain(value):
    """`value` (dicts, lists, numbers, text) with numpy scalars and arrays as plain Python values."""
    import json
    return json.loads(json.dumps(value, default=_json_plain))


def _json_plain(value):
    """json.dumps fallback for meta values: tensors and arrays as lists, anything else as text."""
    if isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
        return value.tolist()
    return str(value)


def export(model: Extractor, out_dir) -> tuple[Path, Path]:
    """Write `model` as OUT_DIR/model.safetensors (every tensor `save` stores: weights, buffers,
    the denoiser, the centre, its specialists' under specialist.<kind>.) and OUT_DIR/config.json
    (config, classes, thresholds, meta, the weights' sha256), each atomically, the config last;
    returns (weights, config) paths."""
    import hashlib
    import json
    import os

    from safetensors.torch import save as st_save
    tensors, den = _export_tensors(model, "")
    specialists = {}
    for kind, network in specialists_of(model).items():
        more, sden = _export_tensors(network, f"{SPECIALIST_PREFIX}{kind}.")
        tensors |= more
        specialists[kind] = {"config": asdict(network.cfg), "classes": network.classes, "denoiser": sden}
    blob = st_save({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()},
                   metadata={"format": EXPORT_FORMAT})
    config = {"format": EXPORT_FORMAT, "config": asdict(model.cfg), "classes": model.classes, "denoiser": den,
              "specialists": specialists or None,
              "threshold": model.threshold, "openset_threshold": model.openset_threshold,
              "openset_rule": getattr(model, "openset_rule", None), "resaved": getattr(model, "resaved", None),
              "views": getattr(model, "views", 1),
              "meta": getattr(model, "meta", {}), "weights": EXPORT_WEIGHTS,
              "weights_sha256": hashlib.sha256(blob).hexdigest()}
    text = json.dumps(config, indent=2, default=_json_plain) + "\n"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = out / EXPORT_WEIGHTS, out / EXPORT_CONFIG
    for path, data in zip(paths, (blob, text.encode())):
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return paths


SPECIALIST_PREFIX = "specialist."      # an exported specialist's tensors: specialist.<kind>.<name>


def _export_tensors(model: Extractor, prefix: str) -> tuple[dict, dict]:
    """One network's tensors for `export` (named `prefix` + extractor.*, denoiser.*, centre) and its
    denoiser's configuration (the payload without its weights)."""
    den = denoise.to_payload(model.front.denoiser)
    tensors = {f"{prefix}extractor.{k}": v for k, v in model.state_dict().items() if not k.startswith("front.denoiser.")}
    tensors |= {f"{prefix}denoiser.{k}": v for k, v in den.pop("state_dict").items()}
    tensors[f"{prefix}centre"] = model.centre
    return tensors, den


def _exported_network(tensors: dict, part: dict, prefix: str) -> dict:
    """One network's payload (`_network_payload`'s form) from an exported folder's tensors and the
    config part `part` (config, classes, denoiser)."""
    def named(kind):
        return {k[len(prefix + kind):]: v for k, v in tensors.items() if k.startswith(prefix + kind)}
    return {"config": part["config"], "classes": part["classes"],
            "denoiser": {**part["denoiser"], "state_dict": named("denoiser.")},
            "state_dict": named("extractor."), "centre": tensors[f"{prefix}centre"]}


def is_exported(path) -> bool:
    """Whether `path` names the exported form: its folder, its config.json or its weights."""
    path = Path(path)
    return path.is_dir() or path.suffix in (".json", ".safetensors")


def exported_payload(path) -> dict:
    """The dict `save` writes, rebuilt from an exported folder (or its config.json or weights
    file); ValueError, one line naming the file, for anything else."""
    import hashlib
    import json

    from safetensors.torch import load as st_load
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    config_path, weights_path = folder / EXPORT_CONFIG, folder / EXPORT_WEIGHTS
    for needed in (config_path, weights_path):
        if not needed.is_file():
            raise ValueError(f"{path}: no {needed.name} in {folder}; {EXPORT_HINT}")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{config_path}: not a JSON file ({err}); {EXPORT_HINT}") from err
    if not isinstance(config, dict) or config.get("format") != EXPORT_FORMAT:
        raise ValueError(f"{config_path}: not a modelfp exported extractor config (format {EXPORT_FORMAT} "
                         f"expected); {EXPORT_HINT}")
    blob = weights_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != config.get("weights_sha256"):
        raise ValueError(f"{weights_path}: not the weights {config_path.name} was written with (sha256 "
                         f"differs); export the extractor again")
    try:
        tensors = st_load(blob)
        specialists = {kind: _exported_network(tensors, part, f"{SPECIALIST_PREFIX}{kind}.")
                       for kind, part in (config.get("specialists") or {}).items()}
        return {"format": FORMAT, **_exported_network(tensors, config, ""), "specialists": specialists or None,
                "threshold": config.get("threshold"),
                "openset_threshold": config.get("openset_threshold"), "openset_rule": config.get("openset_rule"),
                "resaved": config.get("resaved"), "views": config.get("views", 1), "meta": config.get("meta", {})}
    except Exception as err:  # noqa: BLE001 - safetensors' errors, missing keys: the same clear line
        raise ValueError(f"{folder}: damaged exported extractor ({type(err).__name__}: {err}); "
                         f"export it again") from err
