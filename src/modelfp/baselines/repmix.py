"""RepMix (Bui, Yu and Collomosse, ECCV 2022): representation mixing for robust attribution.

Network: a torchvision ResNet (`backbone`: ResNet-50 at paper scale, presets may take a smaller
one) without its ImageNet classifier; global average pooling -> Linear -> the `embedding`-d
embedding (256); two heads on the embedding: attribution (Linear -> one logit per source) and
real/fake detection (Linear -> 2). The attribution logits are gated by the detection softmax:
the logit of the real class is multiplied by P(real), every other logit by P(fake).

RepMix's representation mixing: in training, the feature maps after `mix_layer` (layer4) of
`mix_images` (2) images of the batch are mixed with proportions drawn from Dirichlet(`mix_alpha`
= 0.4): image i is mixed with random partners, sum_k lambda_ik h(x_partner_ik); the pixels are not
mixed (that would be mixup). The loss of a mixed sample is the cross-entropy of each part's label
weighted by its proportion, sum_k lambda_ik CE(logits_i, y_partner_ik), for the gated attribution
logits and for the detection logits (detection classes weighted [1, 1/(C-1)], real and fake, C-1
fake sources: a real image counts as much as all the fake sources together), their sum minimised.

RepMix's own data has real images as its class 0. The paper IV-A protocol trains every baseline on
the classical models only, so by default no class is real (`real_class=None`): every detection
target is "fake", the detection head saturates and the gate becomes a learned scale of the
attribution logits. Pass real images as one class and name its label to train the detector.

Input: each image resized to `resize` (256), a random `crop` (224) in training, the centre crop
for embedding; pixels in [-1, 1] (their mean 0.5 / std 0.5 normalisation). Augmentation, with
probability 1 on each training image: one of ImageNet-C's corruptions (Hendrycks and Dietterich
2019) at a random severity, with albumentations' implementations, applied to the uint8 crop;
spatial parameters are scaled by crop / 224 (ImageNet-C's resolution). 14 of the 15: frost
overlays ImageNet-C's frost photographs, which are not at hand offline.

Optimiser: Adam lr 1e-4 with L2 weight decay 5e-4 (added to the gradients, as torch.optim.Adam's
weight_decay does), lr x0.85 per epoch (ceil(images / batch_size) steps); paper: batch 32, 30
epochs (both set by the caller: train's batch_size and steps). Batches drawn uniformly. Early
stopping (`common.Stopping`) on the held-out images' accuracy of the gated attribution logits of
their centre crops (unmixed, eval mode).

Weights: the original starts from ImageNet weights; none are downloaded here. By default the
backbone is trained from scratch (torchvision's initialisation, seeded); `weights` may name a local
torchvision state-dict file for `backbone` (e.g. resnet50-0676ba61.pth; its `fc` is dropped).

Zero-shot use (paper IV-A, and RepMix's own extractor): the 256-d embedding of the centre crop in
eval mode, unmixed. It is the last representation both heads read, so it is what the attribution
loss shapes into class-separating directions, while the 2048-d pooled layer4 output before it is
only a means to it.

Seeding: `build(seed=...)` draws the initial weights from the seeded global generator (restored
afterwards); batches, crops, corruptions (a seed per image for albumentations' own generator),
mixing partners and proportions come from a CPU torch.Generator(seed); the global torch, numpy
and Python RNGs are left alone.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn as nn
import torchvision

from ..optim import Adam
from ..pools import as_unit_range
from ..testbed.common import LossLog, resolve, seeded
from .common import (Monitor, Stopping, accuracy, embed_batches, fit_and_heldout, random_crops, resize_images,
                     step_lr, training_state, uniform_batch)

# ---------------------------------------------------------------------------------------------
# Constants and hyper-parameters

BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")   # torchvision names
LAYERS = ("layer1", "layer2", "layer3", "layer4")                            # where mixing may act
CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
               "motion_blur", "zoom_blur", "snow", "fog", "brightness", "contrast",
               "elastic_transform", "pixelate", "jpeg_compression")   # ImageNet-C less frost

DEFAULTS = {
    "backbone": "resnet50",     # torchvision architecture (weights=None)
    "weights": None,            # path of a local torchvision state dict for it, or None: scratch
    "embedding": 256,           # embedding size: the zero-shot feature
    "mix_layer": "layer4",      # the representation that is mixed
    "mix_images": 2,            # images per mixed sample
    "mix_alpha": 0.4,           # Dirichlet concentration of the proportions
    "real_class": None,         # label of the real-image class, None: every source is fake
    "corruptions": CORRUPTIONS,  # the augmentation's kinds (one per image, probability 1)
    "resize": 256,              # input side after resizing
    "crop": 224,                # crop side (random in training, centre for embedding)
    "lr": 1e-4,                 # Adam
    "weight_decay": 5e-4,       # L2, added to the gradients
    "lr_gamma": 0.85,           # lr factor per epoch
}
IMAGENET_C_SIDE = 224   # the resolution ImageNet-C's spatial parameters are defined at


def check(hp: dict, classes: int) -> dict:
    """hp (resolved) if it describes a RepMix model for `classes` sources; a clear error if not."""
    if hp["backbone"] not in BACKBONES:
        raise ValueError(f"repmix: unknown backbone {hp['backbone']!r}; known: {list(BACKBONES)}")
    if hp["mix_layer"] not in LAYERS:
        raise ValueError(f"repmix: mix_layer must be one of {list(LAYERS)}, got {hp['mix_layer']!r}")
    if int(hp["mix_images"]) < 2 or float(hp["mix_alpha"]) <= 0:
        raise ValueError(f"repmix: mixing needs mix_images >= 2 and mix_alpha > 0, got "
                         f"{hp['mix_images']} and {hp['mix_alpha']}")
    unknown = sorted(set(hp["corruptions"]) - set(CORRUPTIONS))
    if unknown or not hp["corruptions"]:
        raise ValueError(f"repmix: corruptions must be a non-empty subset of {list(CORRUPTIONS)}, "
                         f"unknown: {unknown}")
    if not 1 <= int(hp["crop"]) <= int(hp["resize"]):
        raise ValueError(f"repmix: need 1 <= crop <= resize, got crop {hp['crop']}, resize "
                         f"{hp['resize']}")
    real = hp["real_class"]
    if real is not None and not (isinstance(real, int) and 0 <= real < classes):
        raise ValueError(f"repmix: real_class must be None or a label in 0..{classes - 1}, got "
                         f"{real!r}")
    if int(hp["embedding"]) < 1:
        raise ValueError(f"repmix: embedding must be >= 1, got {hp['embedding']}")
    return hp


# ---------------------------------------------------------------------------------------------
# Augmentation: ImageNet-C corruptions on uint8 crops

def _odd(v: float) -> int:
    v = max(3, round(v))
    return v if v % 2 else v + 1


def corruption(kind: str, side: int):
    """One ImageNet-C corruption for side x side uint8 images (an albumentations Compose), its
    severity drawn per call over about ImageNet-C's levels 1-5 (their parameters where
    albumentations has the same knob)."""
    import albumentations as A   # here, not at the top: 2 s of imports for every registry user
    import cv2

    s = side / IMAGENET_C_SIDE
    op = {
        "gaussian_noise": lambda: A.GaussNoise(std_range=(0.08, 0.38), p=1),
        "shot_noise": lambda: A.ShotNoise(scale_range=(1 / 60, 1 / 3), p=1),
        "impulse_noise": lambda: A.SaltAndPepper(amount=(0.03, 0.27), p=1),
        "defocus_blur": lambda: A.Defocus(radius=(max(1, round(3 * s)), max(1, round(10 * s))),
                                          alias_blur=(0.1, 0.5), p=1),
        "glass_blur": lambda: A.GlassBlur(sigma=0.9, max_delta=max(1, round(2 * s)), iterations=2,
                                          p=1),
        "motion_blur": lambda: A.MotionBlur(blur_limit=(3, _odd(15 * s)), p=1),
        "zoom_blur": lambda: A.ZoomBlur(max_factor=(1.06, 1.31), step_factor=(0.01, 0.03), p=1),
        "snow": lambda: A.RandomSnow(snow_point_range=(0.1, 0.3), brightness_coeff=2.5, p=1),
        "fog": lambda: A.RandomFog(fog_coef_range=(0.3, 0.8), alpha_coef=0.08, p=1),
        "brightness": lambda: A.RandomBrightnessContrast(brightness_limit=(0.1, 0.5),
                                                         contrast_limit=(0, 0), p=1),
        "contrast": lambda: A.RandomBrightnessContrast(brightness_limit=(0, 0),
                                                       contrast_limit=(-0.95, -0.6), p=1),
        "elastic_transform": lambda: A.ElasticTransform(alpha=max(1.0, 40 * s),
                                                        sigma=max(2.0, 6 * s), p=1),
        "pixelate": lambda: A.Downscale(scale_range=(0.25, 0.6), interpolation_pair={
            "downscale": cv2.INTER_AREA, "upscale": cv2.INTER_NEAREST}, p=1),
        "jpeg_compression": lambda: A.ImageCompression(quality_range=(7, 25), p=1),
    }
    if kind not in op:
        raise ValueError(f"repmix: unknown corruption {kind!r}; known: {list(CORRUPTIONS)}")
    return A.Compose([op[kind]()], seed=0)


def corrupt(x: torch.Tensor, ops: list, gen: torch.Generator) -> torch.Tensor:
    """Each uint8 (3,S,S) CPU image of x (B,3,S,S) through one of ops, chosen uniformly, its
    random parameters seeded from gen (probability 1, as RepMix)."""
    kinds = torch.randint(len(ops), (len(x),), generator=gen).tolist()
    seeds = torch.randint(2 ** 31, (len(x),), generator=gen).tolist()
    out = []
    for im, k, s in zip(x.permute(0, 2, 3, 1).contiguous().numpy(), kinds, seeds):
        ops[k].set_random_seed(s)
        out.append(torch.from_numpy(np.ascontiguousarray(ops[k](image=im)["image"])))
    return torch.stack(out).permute(0, 3, 1, 2).contiguous()


def training_views(images: torch.Tensor, resize: int, crop: int, ops, gen) -> torch.Tensor:
    """uint8 (B,3,S,S) CPU -> the network's training input: resized (kept uint8, what the
    corruptions take), a random crop, a corruption, then [-1, 1]."""
    x = resize_images(images.float(), resize).round().clamp(0, 255).to(torch.uint8)
    return as_unit_range(corrupt(random_crops(x, crop, 1, gen), ops, gen))


# ---------------------------------------------------------------------------------------------
# Representation mixing and its loss

def dirichlet(batch: int, parts: int, alpha: float, gen: torch.Generator) -> torch.Tensor:
    """(batch, parts) proportions, each row ~ Dirichlet(alpha, ..., alpha), drawn by a numpy
    generator seeded from the CPU gen (torch's Dirichlet only draws from the global RNG)."""
    rng = np.random.default_rng(int(torch.randint(2 ** 63 - 1, (1,), generator=gen)))
    return torch.from_numpy(rng.dirichlet([float(alpha)] * parts, size=batch)).float()


def partners(batch: int, parts: int, gen: torch.Generator) -> torch.Tensor:
    """(batch, parts) batch indices of the images mixed into each sample: column 0 the sample
    itself, the others random permutations of the batch (from the CPU gen)."""
    cols = [torch.arange(batch)] + [torch.randperm(batch, generator=gen) for _ in range(parts - 1)]
    return torch.stack(cols, 1)


def mix(h: torch.Tensor, index: torch.Tensor, proportions: torch.Tensor) -> torch.Tensor:
    """RepMix: sample i's features sum_k proportions[i, k] * h[index[i, k]] (h: (B, ...))."""
    w = proportions.to(h.dtype).reshape(*proportions.shape, *([1] * (h.dim() - 1)))
    return (w * h[index]).sum(1)


def mixed_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, proportions: torch.Tensor,
                        weight: torch.Tensor | None = None) -> torch.Tensor:
    """RepMix's loss: each part's cross-entropy weighted by its proportion (and by its class
    weight, if any), sum_ik w_ik CE(logits_i, targets_ik) / sum_ik w_ik with w_ik = proportions_ik
    * weight[targets_ik]: one-hot proportions give F.cross_entropy(logits, targets, weight)."""
    ce = -logits.log_softmax(1).gather(1, targets)   # (B, parts)
    w = proportions.to(ce.dtype)
    if weight is not None:
        w = w * weight.to(ce.dtype)[targets]
    return (w * ce).sum() / w.sum()


def gate(attribution: torch.Tensor, detection: torch.Tensor, real_class: int | None) -> torch.Tensor:
    """Attribution logits gated by the detection softmax (detection columns: real, fake): the
    real class's logit times P(real), each fake source's times P(fake)."""
    p = detection.softmax(1)
    real = torch.arange(attribution.shape[1], device=attribution.device) == (
        -1 if real_class is None else real_class)
    return attribution * torch.where(real, p[:, :1], p[:, 1:])


def detection_targets(labels: torch.Tensor, real_class: int | None) -> torch.Tensor:
    """0 for the real class, 1 (fake) for every other source."""
    if real_class is None:
        return torch.ones_like(labels)
    return (labels != real_class).long()


def detection_weights(classes: int, real_class: int | None) -> torch.Tensor:
    """RepMix's detection class weights [1, 1/(C-1)] (real, fake) for C-1 fake sources."""
    fakes = classes - (real_class is not None)
    return torch.tensor([1.0, 1.0 / max(1, fakes)])


# ---------------------------------------------------------------------------------------------
# The model

class RepMixNet(nn.Module):
    def __init__(self, image_size: int, classes: int, backbone: str, embedding: int,
                 real_class: int | None, resize: int, crop: int):
        super().__init__()
        self.image_size, self.classes, self.arch = image_size, classes, backbone
        # the input geometry and the real class, kept in the state dict so embed and the gate
        # follow what training used (-1: no real class)
        self.register_buffer("resize", torch.tensor(int(resize)))
        self.register_buffer("crop", torch.tensor(int(crop)))
        self.register_buffer("real", torch.tensor(-1 if real_class is None else int(real_class)))
        self.backbone = getattr(torchvision.models, backbone)(weights=None)
        width = self.backbone.fc.in_features
        self.backbone.fc = nn.Identity()   # the ImageNet classifier is not used
        self.embedding = nn.Linear(width, embedding)
        self.attribution = nn.Linear(embedding, classes)
        self.detection = nn.Linear(embedding, 2)
        self.dim = embedding

    @property
    def real_class(self) -> int | None:
        r = int(self.real)
        return None if r < 0 else r

    def trunk(self, x: torch.Tensor, mixing: tuple | None = None, mix_layer: str = "layer4"):
        """The pooled backbone features (B, width); mixing = (index, proportions) mixes the
        feature maps after mix_layer (`mix`)."""
        b = self.backbone
        h = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        for name in LAYERS:
            h = getattr(b, name)(h)
            if mixing is not None and name == mix_layer:
                h = mix(h, *mixing)
        return b.avgpool(h).flatten(1)

    def features(self, x: torch.Tensor, mixing: tuple | None = None,
                 mix_layer: str = "layer4") -> torch.Tensor:
        """The embedding: the zero-shot feature (unmixed)."""
        return self.embedding(self.trunk(x, mixing, mix_layer))

    def heads(self, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(gated attribution logits, detection logits) of embeddings e."""
        detection = self.detection(e)
        return gate(self.attribution(e), detection, self.real_class), detection

    def forward(self, x):
        return self.heads(self.features(x))[0]

    def zero_shot(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding of [-1, 1] images at image_size: resized, centre crop."""
        x = resize_images(x, int(self.resize))
        c, top = int(self.crop), (int(self.resize) - int(self.crop)) // 2
        return self.features(x[..., top:top + c, top:top + c])


def load_weights(backbone: nn.Module, path, arch: str) -> None:
    """A local torchvision state dict for `arch` into backbone (its `fc` dropped: RepMix replaces
    the ImageNet classifier); a clear error naming the file if it cannot be read or does not fit."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:   # missing file, not a torch file, pickled objects
        raise ValueError(f"repmix: cannot read the weights file {str(path)!r}: {e}") from e
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"repmix: the weights file {str(path)!r} is not a state dict (a dict "
                         f"of tensors) of torchvision's {arch}")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    own = backbone.state_dict()
    # old torchvision files lack BatchNorm's num_batches_tracked: load_state_dict fills it in
    missing = sorted(k for k in set(own) - set(state) if not k.endswith("num_batches_tracked"))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} (model {tuple(own[k].shape)})"
              for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise ValueError(f"repmix: the weights file {str(path)!r} does not fit torchvision's "
                         f"{arch}: {len(missing)} missing keys {missing[:3]}, {len(unexpected)} "
                         f"unexpected {unexpected[:3]}, {len(shapes)} of another shape {shapes[:3]}")
    backbone.load_state_dict(state, strict=False)


def build(image_size: int, classes: int, seed: int = 0, **hp) -> RepMixNet:
    """The model with torchvision's initialisation drawn from seed, or hp["weights"] loaded into
    its backbone (the embedding and heads stay freshly initialised)."""
    hp = check(resolve("repmix", DEFAULTS, hp), classes)
    model = seeded(seed, lambda: RepMixNet(image_size, classes, hp["backbone"], int(hp["embedding"]),
                                           hp["real_class"], int(hp["resize"]), int(hp["crop"])))
    if hp["weights"] is not None:
        load_weights(model.backbone, hp["weights"], hp["backbone"])
    return model


def repmix_loss(model: RepMixNet, x: torch.Tensor, labels: torch.Tensor, index: torch.Tensor,
                proportions: torch.Tensor, mix_layer: str = "layer4"):
    """The training loss of a batch x (B,3,c,c) in [-1, 1] with labels (B,), mixing partners
    index (B, K) and proportions (B, K): mixed attribution CE of the gated logits + weighted
    mixed detection CE. Returns (loss, attribution CE, detection CE, gated logits)."""
    logits, detection = model.heads(model.features(x, (index, proportions), mix_layer))
    targets = labels[index]
    attr = mixed_cross_entropy(logits, targets, proportions)
    det = mixed_cross_entropy(detection, detection_targets(targets, model.real_class), proportions,
                              detection_weights(model.classes, model.real_class).to(x.device))
    return attr + det, attr, det, logits


def heldout_accuracy(model: RepMixNet, images: torch.Tensor, labels: torch.Tensor, device) -> float:
    """Closed-set accuracy of the gated attribution logits of the uint8 images' centre crops
    (resized, unmixed: what `embed` sees), eval mode."""
    return accuracy(embed_batches(model, images, device, lambda x: model.heads(model.zero_shot(x))[0]), labels)


def train(model: RepMixNet, images_by_class, steps: int, batch_size: int, seed: int, device,
          progress=None, state_path=None, stopping: Stopping | None = None, **hp):
    """At most `steps` Adam steps on uniform batches of batch_size images of the fit part
    (augmented, cropped, mixed), early-stopped on the held-out part (`stopping`,
    common.Stopping). Build-time hp (backbone, weights, embedding) are the model's; resize, crop
    and real_class are set from hp (train's win over build's). Returns (model in eval mode, the
    best evaluation's weights; info): means over the last min(LOG_EVERY, steps) steps run of loss,
    attribution and detection CE and accuracy (gated logits' argmax against each sample's largest
    part), the stopping (steps_run, best_step, heldout_acc) and the learning curve (history).
    state_path: resumable state (common.TrainingState), resumed from when present."""
    hp = check(resolve("repmix", DEFAULTS, hp), model.classes)
    stopping = stopping or Stopping()
    start = time.perf_counter()
    images, labels, held, held_labels = fit_and_heldout("repmix", images_by_class, model.image_size,
                                                        stopping.fraction, seed)
    if len(images_by_class) != model.classes:
        raise ValueError(f"repmix: built for {model.classes} classes, got {len(images_by_class)}")
    gen = torch.Generator().manual_seed(seed)
    model = model.to(device).train()
    model.resize.fill_(int(hp["resize"]))
    model.crop.fill_(int(hp["crop"]))
    model.real.fill_(-1 if hp["real_class"] is None else int(hp["real_class"]))
    ops = [corruption(k, int(hp["crop"])) for k in hp["corruptions"]]
    params = list(model.parameters())
    opt = Adam(params, lr=float(hp["lr"]))
    epoch = max(1, math.ceil(len(images) / batch_size))
    parts, wd = int(hp["mix_images"]), float(hp["weight_decay"])
    log = LossLog(steps, progress, ("loss", "attribution", "detection", "accuracy"))
    state = training_state(state_path, "repmix", hp, images_by_class, steps, batch_size, seed, stopping)
    monitor = Monitor(stopping)
    monitor.start("train", steps, model, lambda: heldout_accuracy(model, held, held_labels, device))
    resumable = {"model": model, "opt": opt, "gen": gen, "log": log, "monitor": monitor}
    done, _ = state.resume("train", resumable)
    for step in range(done, steps):
        idx = uniform_batch(labels, batch_size, gen)
        x = training_views(images[idx], int(hp["resize"]), int(hp["crop"]), ops, gen).to(device)
        index = partners(len(idx), parts, gen)
        lam = dirichlet(len(idx), parts, float(hp["mix_alpha"]), gen)
        y = labels[idx].to(device)
        loss, attr, det, logits = repmix_loss(model, x, y, index.to(device), lam.to(device),
                                              hp["mix_layer"])
        opt.zero_grad()
        loss.backward()
        for p in params:   # L2 weight decay, as torch.optim.Adam(weight_decay=...)
            if p.grad is not None:
                p.grad.add_(p.detach(), alpha=wd)
        opt.step(step_lr(float(hp["lr"]), step, epoch, float(hp["lr_gamma"])))
        main = y[index[torch.arange(len(idx)), lam.argmax(1)].to(device)]   # largest part
        log.add(loss.item(), attr.item(), det.item(), (logits.argmax(1) == main).float().mean().item())
        if monitor.after(step + 1, loss.item()):
            break
        state.checkpoint("train", step + 1, steps, resumable)
    info = {"method": "repmix", "steps": steps, "images": len(images), "heldout_images": len(held),
            "classes": model.classes, **monitor.finish(), "steps_per_epoch": epoch,
            "seconds": time.perf_counter() - start, **log.summary(),
            **hp, "weights": None if hp["weights"] is None else str(hp["weights"]),
            "corruptions": list(hp["corruptions"]), "history": monitor.rows}
    return model.eval(), info


def embed(model: RepMixNet, images: torch.Tensor, device) -> torch.Tensor:
    """(N, embedding) embeddings of the centre crop after resizing, eval mode, unmixed."""
    return embed_batches(model, images, device, model.zero_shot)
