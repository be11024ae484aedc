"""Abady et al. 2024, open-set attribution of synthetic images: an embedding network, then a
siamese verifier on pairs of its embeddings.

Embedding network: a torchvision EfficientNet (`backbone`: efficientnet_b4 at paper scale; presets
may name a smaller one, e.g. efficientnet_b0) without its pooling and classifier; its last feature
map is flattened and a Dense (Linear) layer maps it to the `dim`-d embedding (512; at 380 px, B4's
12 x 12 x 1792 map makes that layer 132 M weights). The images are resized (bilinear) to `resize`
before the backbone, in training and embedding alike: the authors feed 380 x 380 (EfficientNet-B4's
size), about 3x the paper's 128-px images; at a preset's 32 px without it, EfficientNet's five
stride-2 stages leave a 1 x 1 map (measured at demo size: held-out accuracy 45-56 %). No weights are
downloaded: `weights` may name a local torchvision state dict of the whole `backbone` model (the
authors start from ImageNet). Input: pixels / 255, then ImageNet mean/std normalisation, which is
what torchvision's weights expect (Keras' EfficientNet normalises inside the model).
Stochastic depth (`stochastic_depth`, torchvision's and Keras' 0.2) draws its masks from the
training generator, not the global RNG.

Phase 1 (embedding): contrastive loss (Hadsell et al. 2006) over all pairs of a batch of
`batch_classes` classes x (batch_size // batch_classes) images: y d^2 + (1 - y) max(0, margin -
d)^2, with d the Euclidean distance of the L2-normalised embeddings (d^2 = 2 - 2 cos: the loss
trains the cosine the embeddings are compared by); Adam lr 1e-4. It is the phase that learns the
attribution task, so it is the one early-stopped (`common.Stopping`): on the nearest-centroid
accuracy (cosine) of the held-out images' embeddings against the centroids of up to `REFERENCE`
fit images per class, measured in eval mode with BatchNorm statistics re-estimated as below (the
training's own left as they were).

Between the phases (`bn_recalibrate`, not in the recipe) the backbone's BatchNorm statistics are
re-estimated over the training images with the final weights. Keras (and torch) keep running
averages instead; after a long run both agree, but after a preset's short run the averages still
carry their initial values, and a from-scratch EfficientNet's eval-mode embeddings then collapse
(measured: efficientnet_b0 at 32 px after 40 steps, embeddings' spread across images 2e-7).

Phase 2 (verifier): the embedding network is frozen; each training image's embedding (eval mode,
exactly what `embed` returns) feeds a siamese verifier: a shared LayerNorm on each embedding,
|LN(a) - LN(b)|, Dense 256 + BN + ReLU, Dense 64 + BN + ReLU, one logit: the probability that a
and b come from the same source. It is symmetric by construction: it sees the pair only through
|LN(a) - LN(b)|, which is exactly (bitwise) the same for (a, b) and (b, a). Binary cross-entropy
on batches of `verifier_batch` pairs, half same-source, half different-source; early stopping
with `patience`: the verifier phase is cut into `checks` "epochs", after each the loss on fixed
validation pairs is measured, training stops after `patience` checks without improvement, and the
verifier of the best check is kept. The validation pairs come from the held-out part of the
training images (`common.hold_out`, baselines.holdout), held out of both phases (with no usable
validation pairs, e.g. nothing held out, the verifier trains for all its steps).

Steps: `steps` is the embedding phase's length; the verifier phase runs steps * verifier_steps /
embed_steps steps (or fewer, by early stopping): the paper's ratio, so a preset that shrinks
`steps` shrinks both phases. Paper scale: embed_steps = 20,000 (about 50 epochs of ~5,000
training images in batches of 12) and verifier_steps = 20,000 batches of 8 pairs.

Zero-shot use (paper IV-A): `embed` is the embedding, compared by cosine like every method;
`verify_score` is the verifier's same-source probability of image pairs (Abady's own verification
score, reported beside the cosine one); `pair_score` the same on embeddings already computed.

Seeding: `build(seed=...)` draws the initial weights from the seeded global generator (restored
afterwards); batches, pairs and stochastic-depth masks come from a CPU torch.Generator(seed)
(the held-out split from `common.hold_out`'s own).
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.ops import StochasticDepth

from .. import checkpoints
from ..optim import Adam
from ..pools import as_unit_range
from ..testbed.common import LossLog, resolve, seeded
from .common import (EMBED_BATCH, Monitor, Stopping, TrainingState, embed_batches, fit_and_heldout,
                     nearest_centroid_accuracy, resize_images, training_state)

DEFAULTS = {
    "backbone": "efficientnet_b4",   # a key of BACKBONES (presets: efficientnet_b0)
    "weights": None,                 # local torchvision state dict of the backbone (no downloads)
    "stochastic_depth": 0.2,         # EfficientNet's drop-connect rate (torchvision and Keras)
    "resize": 380,                   # input side the images are resized to (the authors' 380)
    "dim": 512,                      # the Dense embedding
    "lr": 1e-4,                      # phase 1 Adam
    "margin": 1.0,                   # contrastive margin on the distance of unit embeddings
    "batch_classes": 3,              # phase 1 batches: 3 classes x (batch_size // 3) images
    "embed_steps": 20000,            # paper-scale phase lengths; `steps` sets phase 1 and
    "verifier_steps": 20000,         # phase 2 runs steps * verifier_steps / embed_steps
    "verifier_batch": 8,             # pairs per phase-2 batch
    "verifier_lr": 1e-3,             # Keras' Adam default (the facts give no phase-2 lr)
    "patience": 10,                  # verifier's early stopping: checks without validation improvement
    "checks": 50,                    # validation checks ("epochs") over the verifier phase
    "bn_recalibrate": True,          # BN statistics re-estimated after phase 1 (docstring)
}
BACKBONES = {f"efficientnet_b{i}": getattr(torchvision.models, f"efficientnet_b{i}")
             for i in range(8)}
HIDDEN = (256, 64)     # the verifier's Dense layers
VAL_PAIRS = 512        # fixed validation pairs for early stopping (half same-source)
REFERENCE = 32         # fit images per class whose embeddings make the held-out score's centroids
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------------------------------------
# Losses and sampling

def contrastive_loss(z: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Hadsell et al. 2006 over all pairs i < j of the L2-normalised z (N, d): mean of
    y d^2 + (1 - y) max(0, margin - d)^2, y = 1 for a same-label pair, d = ||z_i - z_j||."""
    i, j = torch.triu_indices(len(z), len(z), 1, device=z.device)
    d2 = (2 - 2 * (z[i] * z[j]).sum(1)).clamp(min=0)
    d = d2.clamp(min=1e-12).sqrt()   # no infinite gradient at d = 0 (a repeated image)
    same = (labels[i] == labels[j]).to(z.dtype)
    return (same * d2 + (1 - same) * F.relu(margin - d) ** 2).mean()


def class_batch(labels: torch.Tensor, classes: int, per_class: int,
                gen: torch.Generator) -> torch.Tensor:
    """Indices of `classes` distinct classes drawn at random, `per_class` distinct images of each
    (repeats only where a class has fewer): the balanced batches the contrastive loss needs
    (every batch has positive pairs); labels sorted by class."""
    counts = torch.bincount(labels)
    starts = torch.cumsum(counts, 0) - counts
    chosen = torch.randperm(len(counts), generator=gen)[:classes].tolist()
    picks = []
    for c in chosen:
        n = int(counts[c])
        picks.append(starts[c] + torch.randperm(n, generator=gen)[torch.arange(per_class) % n])
    return torch.cat(picks)


def sample_pairs(labels: torch.Tensor, n: int, gen: torch.Generator):
    """n pairs of indices (a, b) and their labels y (1: same source), the first n // 2 same-source
    (two different images of a class that has >= 2) and the rest different-source (two different
    classes), every draw uniform; labels sorted by class."""
    counts = torch.bincount(labels)
    starts = torch.cumsum(counts, 0) - counts
    multi = (counts >= 2).nonzero().flatten()
    present = (counts >= 1).nonzero().flatten()
    if len(multi) == 0 or len(present) < 2:
        raise ValueError("abady: pairs need a class with 2 images and 2 classes with images")
    n_same, n_diff = n // 2, n - n // 2

    def within(c, r):   # index r (a float in [0, 1)) of class c's images, as an int
        return (r * counts[c]).long().clamp(max=counts[c] - 1)

    c = multi[torch.randint(len(multi), (n_same,), generator=gen)]
    i = within(c, torch.rand(n_same, generator=gen))
    shift = (torch.rand(n_same, generator=gen) * (counts[c] - 1)).long().clamp(max=counts[c] - 2)
    j = (i + 1 + shift) % counts[c]   # another image of the same class
    k = torch.randint(len(present), (n_diff,), generator=gen)
    other = (k + torch.randint(1, len(present), (n_diff,), generator=gen)) % len(present)
    ca, cb = present[k], present[other]
    a = torch.cat([starts[c] + i, starts[ca] + within(ca, torch.rand(n_diff, generator=gen))])
    b = torch.cat([starts[c] + j, starts[cb] + within(cb, torch.rand(n_diff, generator=gen))])
    y = torch.cat([torch.ones(n_same), torch.zeros(n_diff)])
    return a, b, y


# ---------------------------------------------------------------------------------------------
# The model

class SeededStochasticDepth(nn.Module):
    """torchvision's row-mode StochasticDepth (each sample's residual branch dropped with
    probability p, survivors scaled by 1 / (1 - p)), its draws taken from the CPU generator `gen`
    that train sets: seeded, and the global RNG (CPU or CUDA) left alone. No gen: identity."""

    def __init__(self, p: float):
        super().__init__()
        self.p, self.gen = p, None

    def forward(self, x):
        if not self.training or self.gen is None or self.p == 0:
            return x
        keep = torch.rand(len(x), generator=self.gen) >= self.p
        scale = keep.to(x.device, x.dtype) / (1 - self.p)
        return x * scale.view(-1, *[1] * (x.dim() - 1))


class Verifier(nn.Module):
    """The siamese head: shared LayerNorm, |LN(a) - LN(b)|, Dense 256 + BN + ReLU, Dense 64 + BN +
    ReLU, one logit. Symmetric by construction (|.| of the difference)."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        layers, cin = [], dim
        for c in HIDDEN:
            layers += [nn.Linear(cin, c), nn.BatchNorm1d(c), nn.ReLU()]
            cin = c
        self.mlp = nn.Sequential(*layers, nn.Linear(cin, 1))

    def forward(self, a, b):
        return self.mlp((self.norm(a) - self.norm(b)).abs()).squeeze(1)


def _efficientnet(name: str, stochastic_depth: float, weights) -> nn.Sequential:
    """The feature extractor of torchvision's `name` (weights from the local file, if any), its
    stochastic depth drawn from a generator."""
    if name not in BACKBONES:
        raise ValueError(f"abady: unknown backbone {name!r}; known: {sorted(BACKBONES)}")
    net = BACKBONES[name](weights=None, stochastic_depth_prob=float(stochastic_depth))
    if weights:
        state = checkpoints.read(weights, f"torchvision {name} state dict")
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        try:
            net.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as err:
            raise ValueError(f"{weights}: not torchvision {name} weights ({err})") from err
    for module in list(net.features.modules()):
        for key, child in module.named_children():
            if isinstance(child, StochasticDepth):
                setattr(module, key, SeededStochasticDepth(child.p))
    return net.features


class AbadyNet(nn.Module):
    """The embedding network (EfficientNet features, flatten, Dense) and the siamese verifier."""

    def __init__(self, image_size: int, classes: int, backbone: nn.Sequential, dim: int, resize: int):
        super().__init__()
        self.image_size, self.classes, self.dim, self.resize = image_size, classes, dim, resize
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        with torch.no_grad():   # the flattened feature map's size at the backbone's input size
            flat = backbone.eval()(torch.zeros(1, 3, resize, resize)).numel()
        backbone.train()
        self.embedding = nn.Linear(flat, dim)
        self.verifier = Verifier(dim)

    def features(self, x):
        """The embedding of [-1, 1] images: resized to `resize`, pixels / 255, ImageNet-normalised,
        backbone, flatten, Dense."""
        x = (resize_images((x + 1) / 2, self.resize) - self.mean) / self.std
        return self.embedding(self.backbone(x).flatten(1))

    def forward(self, x):
        return self.features(x)

    def set_generator(self, gen: torch.Generator | None) -> None:
        for m in self.backbone.modules():
            if isinstance(m, SeededStochasticDepth):
                m.gen = gen


def build(image_size: int, classes: int, seed: int = 0, **hp) -> AbadyNet:
    hp = resolve("abady", DEFAULTS, hp)
    if int(image_size) < 1:
        raise ValueError(f"abady: image_size must be positive, got {image_size!r}")
    if int(hp["resize"]) < 1:
        raise ValueError(f"abady: resize must be a positive side, got {hp['resize']!r}")
    return seeded(seed, lambda: AbadyNet(
        int(image_size), classes, _efficientnet(hp["backbone"], hp["stochastic_depth"],
                                                hp["weights"]), int(hp["dim"]), int(hp["resize"])))


# ---------------------------------------------------------------------------------------------
# Training

def train_embedding(model: AbadyNet, images: torch.Tensor, labels: torch.Tensor, steps: int,
                    batch_size: int, gen: torch.Generator, device, progress=None,
                    state: TrainingState | None = None, monitor: Monitor | None = None, score=None,
                    **hp) -> dict:
    """Phase 1: at most `steps` Adam steps of the contrastive loss on class batches of uint8
    `images` (labels sorted by class), early-stopped on score() (the held-out accuracy) by monitor
    (common.Monitor), which keeps the best evaluation's weights; hp resolved. Returns the loss and
    mean same-/different-source distances (d_same, d_diff) over the last min(LOG_EVERY, steps)
    steps run and the stopping (steps_run, best_step, heldout_acc). state: resumable, phase
    "embedding"."""
    per_class = batch_size // min(int(hp["batch_classes"]), model.classes)
    if per_class < 2:
        raise ValueError(f"abady: batch_size {batch_size} gives fewer than 2 images per class for "
                         f"batch_classes={hp['batch_classes']}: no positive pairs")
    opt = Adam([*model.backbone.parameters(), *model.embedding.parameters()], lr=float(hp["lr"]))
    log = LossLog(steps, progress, ("loss", "d_same", "d_diff"))
    model.train()
    state, monitor = state or TrainingState(), monitor or Monitor()
    monitor.start("embedding", steps, model, score)
    resumable = {"model": model, "opt": opt, "gen": gen, "log": log, "monitor": monitor}
    done, _ = state.resume("embedding", resumable)
    for step in range(done, steps):
        idx = class_batch(labels, int(hp["batch_classes"]), per_class, gen)
        y = labels[idx].to(device)
        z = F.normalize(model.features(as_unit_range(images[idx].to(device))), dim=1)
        loss = contrastive_loss(z, y, float(hp["margin"]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            d = torch.cdist(z, z)
            same = y[:, None] == y[None, :]
            off = ~torch.eye(len(y), dtype=torch.bool, device=device)
            log.add(loss.item(), d[same & off].mean().item(), d[~same].mean().item())
        if monitor.after(step + 1, loss.item()):
            break
        state.checkpoint("embedding", step + 1, steps, resumable)
    return log.summary() | monitor.finish()


def heldout_accuracy(model: AbadyNet, reference: torch.Tensor, ref_labels: torch.Tensor,
                     images: torch.Tensor, labels: torch.Tensor, device) -> float | None:
    """Nearest-centroid accuracy (cosine) of the uint8 `images`' embeddings against the centroids of
    the `reference` images' (fit part), in eval mode with the BatchNorm statistics re-estimated on
    the reference images (`recalibrate_bn`, as after phase 1, in a fixed order); the model's own
    statistics, mode and stochastic-depth generator are restored afterwards."""
    if len(labels) == 0:
        return None
    was_training = model.training
    depth = [m for m in model.backbone.modules() if isinstance(m, SeededStochasticDepth)]
    gens = [m.gen for m in depth]
    saved = [b.detach().clone() for b in model.backbone.buffers()]
    model.set_generator(None)
    try:
        recalibrate_bn(model, reference, torch.Generator().manual_seed(0), device)
        ref, emb = embed(model, reference, device), embed(model, images, device)
    finally:
        with torch.no_grad():
            for b, v in zip(model.backbone.buffers(), saved):
                b.copy_(v)
        for m, g in zip(depth, gens):
            m.gen = g
        model.train(was_training)
    return nearest_centroid_accuracy(ref, ref_labels, emb, labels)


def reference(labels: torch.Tensor, per_class: int) -> torch.Tensor:
    """Indices of the first `per_class` images of each class (labels sorted by class)."""
    counts = torch.bincount(labels)
    starts = torch.cumsum(counts, 0) - counts
    return torch.cat([s + torch.arange(min(int(n), per_class)) for s, n in zip(starts.tolist(), counts.tolist())])


def recalibrate_bn(model: AbadyNet, images: torch.Tensor, gen: torch.Generator, device) -> None:
    """The backbone's BatchNorm population statistics re-estimated with the final weights: reset,
    then the cumulative average of the batch statistics of train-mode forward passes (no gradients,
    no stochastic depth) over `images` in shuffled batches of about EMBED_BATCH (shuffled: batches
    of one class would miss the between-class variance)."""
    bns = [m for m in model.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if len(images) < 2 or not bns:
        return
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None   # cumulative moving average
    model.train()
    try:
        with torch.no_grad():
            order = torch.randperm(len(images), generator=gen)
            for idx in order.tensor_split(-(-len(images) // EMBED_BATCH)):
                model.features(as_unit_range(images[idx].to(device)))
    finally:
        for m, momentum in zip(bns, momenta):
            m.momentum = momentum
        model.eval()


@torch.no_grad()
def pair_loss(model: AbadyNet, emb: torch.Tensor, a, b, y) -> float:
    """The verifier's mean BCE (eval mode) on the pairs (emb[a], emb[b]) labelled y."""
    model.verifier.eval()
    loss = F.binary_cross_entropy_with_logits(model.verifier(emb[a], emb[b]), y).item()
    model.verifier.train()
    return loss


def train_verifier(model: AbadyNet, emb: torch.Tensor, labels: torch.Tensor, val_emb: torch.Tensor,
                   val_labels: torch.Tensor, steps: int, gen: torch.Generator, device,
                   progress=None, state: TrainingState | None = None, monitor: Monitor | None = None,
                   **hp) -> dict:
    """Phase 2: up to `steps` Adam steps of BCE on same/different pairs of the embeddings emb
    (labels sorted by class), early stopping on VAL_PAIRS pairs of val_emb (drawn first from gen)
    when two of its classes have 2 images; hp resolved. Returns the verifier's loss and accuracy
    (verifier_*), the steps run, whether it stopped early and the best validation loss. state:
    resumable, phase "verifier" (with the validation pairs and the early stopping's best and
    patience count); monitor: its losses join the learning curve (phase "verifier")."""
    emb, val_emb = emb.to(device), val_emb.to(device)
    counts = torch.bincount(val_labels) if len(val_labels) else torch.zeros(0)
    use_val = int((counts >= 2).sum()) >= 2
    pairs = sample_pairs(val_labels, VAL_PAIRS, gen) if use_val else None
    every = max(1, steps // max(1, int(hp["checks"])))
    opt = Adam(model.verifier.parameters(), lr=float(hp["verifier_lr"]))
    log = LossLog(steps, progress, ("loss", "accuracy"))
    state, monitor = state or TrainingState(), monitor or Monitor()
    monitor.start("verifier", steps)
    resumable = {"model": model, "opt": opt, "gen": gen, "log": log, "monitor": monitor}
    done, (pairs, best, best_state, since) = state.resume(
        "verifier", resumable, pairs=pairs, best=float("inf"), best_state=None, since=0)
    val = None if pairs is None else tuple(t.to(device) for t in pairs)
    model.verifier.train()
    for step in range(done, steps):
        a, b, y = sample_pairs(labels, int(hp["verifier_batch"]), gen)
        y = y.to(device)
        logits = model.verifier(emb[a.to(device)], emb[b.to(device)])
        loss = F.binary_cross_entropy_with_logits(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        log.add(loss.item(), ((logits > 0).float() == y).float().mean().item())
        done = step + 1
        monitor.after(done, loss.item())
        if use_val and done % every == 0:
            current = pair_loss(model, val_emb, *val)
            if current < best:
                best, best_state, since = current, copy.deepcopy(model.verifier.state_dict()), 0
            else:
                since += 1
                if since >= int(hp["patience"]):
                    break
        state.checkpoint("verifier", done, steps, resumable, pairs=pairs, best=best, best_state=best_state,
                         since=since)
    if best_state is not None:
        model.verifier.load_state_dict(best_state)
    return {**{f"verifier_{k}": v for k, v in log.summary().items()}, "verifier_steps_run": done,
            "verifier_early_stopped": done < steps, "verifier_val_loss": best if use_val else None}


def train(model: AbadyNet, images_by_class, steps: int, batch_size: int, seed: int, device,
          progress=None, state_path=None, stopping: Stopping | None = None, **hp):
    """Phase 1 (at most `steps` steps, batch_size images per batch, early-stopped on the held-out
    part: `stopping`, common.Stopping), then phase 2 (steps * verifier_steps / embed_steps steps at
    most, early-stopped on pairs of the held-out part), both on the fit part. build's hp (backbone,
    weights, stochastic_depth, dim, resize) are accepted and ignored, so one hp dict serves both. Returns
    (model in eval mode, info): phase 1's loss and mean same- and different-source distances
    (d_same, d_diff) over its last min(LOG_EVERY, steps) steps run and its stopping (steps_run,
    best_step, heldout_acc), the verifier's loss and pair accuracy likewise (verifier_*), how many
    verifier steps ran, the best validation loss, the sizes and seconds, the hp used and the
    learning curve of both phases (history). state_path: resumable state (common.TrainingState;
    phases "embedding", with the BN recalibration, then "verifier"), resumed from when present."""
    hp = resolve("abady", DEFAULTS, hp)
    stopping = stopping or Stopping()
    start = time.perf_counter()
    images, labels, held, held_labels = fit_and_heldout("abady", images_by_class, model.image_size,
                                                        stopping.fraction, seed)
    if len(images_by_class) != model.classes:
        raise ValueError(f"abady: built for {model.classes} classes, got {len(images_by_class)}")
    if int(hp["embed_steps"]) <= 0:
        raise ValueError("abady: embed_steps must be positive (it scales the verifier phase)")
    if int(hp["verifier_batch"]) < 2:
        raise ValueError("abady: verifier_batch must be at least 2 (BatchNorm; same and "
                         "different pairs)")
    gen = torch.Generator().manual_seed(seed)
    model = model.to(device)
    state = training_state(state_path, "abady", hp, images_by_class, steps, batch_size, seed, stopping)
    monitor = Monitor(stopping)
    ref = reference(labels, REFERENCE)

    def embedding_phase():
        model.set_generator(gen)
        try:
            summary = train_embedding(
                model, images, labels, steps, batch_size, gen, device, progress, state, monitor,
                lambda: heldout_accuracy(model, images[ref], labels[ref], held, held_labels, device), **hp)
        finally:
            model.set_generator(None)
        if hp["bn_recalibrate"]:
            recalibrate_bn(model, images, gen, device)
        return summary

    info = state.phase("embedding", embedding_phase, model=model, monitor=monitor)
    model.eval()
    emb, held_emb = embed(model, images, device), embed(model, held, device)
    verifier_steps = round(steps * int(hp["verifier_steps"]) / int(hp["embed_steps"]))
    shifted = (lambda s, loss: progress(steps + s, loss)) if progress else None
    info = info | train_verifier(model, emb, labels, held_emb, held_labels, verifier_steps, gen, device,
                                 shifted, state, monitor, **hp)
    info = {"method": "abady", "steps": steps, "images": len(images), "heldout_images": len(held),
            "classes": model.classes, "seconds": time.perf_counter() - start, **info, **hp,
            "history": monitor.rows}
    return model.eval(), info


# ---------------------------------------------------------------------------------------------
# Zero-shot use

def embed(model: AbadyNet, images: torch.Tensor, device) -> torch.Tensor:
    """(N, dim) embeddings, eval mode."""
    return embed_batches(model, images, device, model.features)


@torch.no_grad()
def pair_score(model: AbadyNet, emb_a: torch.Tensor, emb_b: torch.Tensor, device) -> torch.Tensor:
    """The verifier's same-source probability of each pair of embeddings (N, dim) x (N, dim):
    float32 (N,) on the CPU, in [0, 1], symmetric in a and b; eval mode."""
    if emb_a.shape != emb_b.shape:
        raise ValueError(f"abady: pairs need equal shapes, got {tuple(emb_a.shape)} and "
                         f"{tuple(emb_b.shape)}")
    was_training = model.verifier.training
    model.verifier.eval()
    try:
        logits = model.verifier(emb_a.to(device).float(), emb_b.to(device).float())
    finally:
        model.verifier.train(was_training)
    return torch.sigmoid(logits).float().cpu()


def verify_score(model: AbadyNet, images_a: torch.Tensor, images_b: torch.Tensor,
                 device) -> torch.Tensor:
    """The verifier's probability that images_a[i] and images_b[i] (uint8 (N,3,S,S) each) come
    from the same source: float32 (N,) on the CPU."""
    if len(images_a) != len(images_b):
        raise ValueError(f"abady: {len(images_a)} and {len(images_b)} images do not make pairs")
    return pair_score(model, embed(model, images_a, device), embed(model, images_b, device), device)
