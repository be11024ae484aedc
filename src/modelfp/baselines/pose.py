"""POSE (Yang et al. 2023, "Progressive Open Space Expansion for open-set model attribution"; same
authors as DNA-Det): an attribution classifier on DCT inputs whose open space is expanded by a
progressively grown set of lightweight augmentation networks.

Input: the orthonormal 2D DCT-II of each channel of the image in [-1, 1], computed as D X D^T with
the DCT matrix D (`dct_matrix`, a buffer of the model): a matrix product, so it runs on any device
and passes gradients back to the augmentation networks, which work in pixel space.

Network: the DNA-Det trunk (4 stages of [Conv 4x4 stride 2 + BN + LeakyReLU(0.2), Conv 3x3 + BN +
LeakyReLU(0.2)], channels 64 -> 128 -> 256 -> 512, times `width`), its (S/16)^2 x 512 output map
flattened, a linear layer to the `embedding` (512-d), then Dropout + Linear over 2C classes: the C
training sources and their C augmented twins.

Open-space expansion: at the start of every epoch (`aug_every` steps; None: one pass over the
training images at batch_size) a new augmentation network joins the set. It is x + g(x), g = Conv
3x3 3 -> 32, LeakyReLU, Conv 3x3 32 -> 3 (the recipe's two convolutions as a residual branch,
started small so the new network starts near the identity and has only to move away from it).
During its epoch, one Adam step (lr 1e-2) per classifier step on the same batch minimises
    MSE(A(x), x)                                    stay close to the input in pixel space
    + aug_weight * max(0, aug_margin - (1 - cos(f(A(x)), f(x))))
                                                    move away from the known image in the
                                                    classifier's feature space f (the embedding)
    + aug_diversity * cos(f(A(x)), f(A_j(x)))       and from an earlier network A_j
The recipe gives the feature term as "like 1e-2 x clamp(1 - cos, min 0.05)"; we read 0.05 as the
cosine distance the augmentation must reach (beyond it only the MSE acts, keeping A(x) as close to
x as that distance allows). A_j is one earlier network drawn per step: an unbiased estimate of the
mean over all of them at the cost of one forward pass. f is computed on x, A(x) and A_j(x) in one
forward pass with batch statistics, as the classifier trains (early in training its running
statistics lag far behind the DCT's scale), the running statistics left untouched; only the new
network's weights change. After its epoch a network is frozen.

Classifier loss on each class-balanced batch x with labels y: the batch itself (labels y) and
A_j(x) with, per image, a random network of the set (labels C + y): cross-entropy over the 2C
classes on the LOGITS (POSE's code divides softmax outputs by 0.1 before CE, a quirk: CE takes
logits) + batch-hard triplet loss (Hermans et al. 2017) on the L2-normalised embeddings of both
halves (normalised because the extractor is compared by cosine; margin 0.3, which the facts do not
give). Adam lr 1e-4, StepLR x0.9 every 500 steps. Paper scale: batch_size 120 (8 images x 15
classes), steps = 30 epochs of the training images, so 30 augmentation networks. Early stopping
(`common.Stopping`) on the held-out images' accuracy over the C known sources (their logits only,
eval mode); the kept weights carry the augmentation networks made up to the best evaluation.

Zero-shot use (paper IV-A): the embedding of the DCT of the image, eval mode.

Seeding: `build(seed=...)` draws the initial weights from the seeded global generator (restored
afterwards); batches, the augmentation networks' initial weights (through `seeded` with a seed drawn
from the generator), the choice of networks and the dropout masks come from a CPU
torch.Generator(seed), so training leaves the global RNG alone.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..optim import Adam
from ..pools import as_unit_range
from ..testbed.common import LossLog, resolve, seeded
from .common import (Monitor, Stopping, accuracy, balanced_batch, embed_batches, fit_and_heldout, step_lr,
                     training_state)

DEFAULTS = {
    "width": 1.0,            # channel multiplier of the DNA-Det trunk's 64-128-256-512
    "embedding": 512,        # fc embedding size (the fingerprint)
    "dropout": 0.2,          # before the classifier (rate not in the facts: DNA-Det's)
    "lr": 1e-4,              # classifier Adam, StepLR period (steps) and factor
    "lr_step": 500,
    "lr_gamma": 0.9,
    "margin": 0.3,           # batch-hard triplet margin on unit embeddings
    "triplet_weight": 1.0,
    "aug_every": None,       # steps between new augmentation networks (None: one epoch)
    "aug_hidden": 32,        # channels of an augmentation network's hidden layer
    "aug_lr": 1e-2,          # its Adam
    "aug_weight": 1e-2,      # weight of the move-away-from-the-known-image term
    "aug_margin": 0.05,      # cosine distance that term asks for
    "aug_diversity": 1e-4,   # weight of the cosine to an earlier network's output
}
SLOPE = 0.2
RESIDUAL_INIT = 0.01  # scale of a new augmentation network's initial residual branch


def dct_matrix(n: int) -> torch.Tensor:
    """The orthonormal DCT-II matrix (n, n), float32: D[k, i] = sqrt(2/n) c_k cos(pi (2i+1) k / 2n),
    c_0 = 1/sqrt(2), else 1; D X D^T is scipy.fft.dctn(X, norm="ortho") and D^T Y D inverts it."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    d = math.sqrt(2 / n) * torch.cos(math.pi * (2 * i + 1) * k / (2 * n))
    d[0] /= math.sqrt(2)
    return d.float()


class Augmenter(nn.Module):
    """A lightweight augmentation network, x + g(x), g = Conv 3x3 3 -> hidden, LeakyReLU,
    Conv 3x3 hidden -> 3: the residual branch starts small, so the output starts near the input."""

    def __init__(self, hidden: int):
        super().__init__()
        self.g = nn.Sequential(nn.Conv2d(3, hidden, 3, 1, 1), nn.LeakyReLU(SLOPE),
                               nn.Conv2d(hidden, 3, 3, 1, 1))
        with torch.no_grad():
            self.g[2].weight.mul_(RESIDUAL_INIT)
            self.g[2].bias.mul_(RESIDUAL_INIT)

    def forward(self, x):
        return x + self.g(x)


class POSENet(nn.Module):
    def __init__(self, image_size: int, classes: int, width: float, embedding: int,
                 dropout: float, aug_hidden: int):
        super().__init__()
        self.image_size, self.classes, self.dropout = image_size, classes, dropout
        self.aug_hidden = aug_hidden
        self.register_buffer("dct", dct_matrix(image_size), persistent=False)
        layers, cin = [], 3
        for c in (max(1, round(width * c)) for c in (64, 128, 256, 512)):
            layers += [nn.Conv2d(cin, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c),
                       nn.LeakyReLU(SLOPE),
                       nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c),
                       nn.LeakyReLU(SLOPE)]
            cin = c
        self.trunk = nn.Sequential(*layers)
        self.fc = nn.Linear(cin * (image_size // 16) ** 2, embedding)
        self.dim = embedding
        self.head = nn.Linear(embedding, 2 * classes)   # known sources, then their augmented twins
        self.augmenters = nn.ModuleList()                # grown by `train`, one per epoch

    def features(self, x):
        """The embedding of the per-channel 2D DCT of x (in [-1, 1]): the zero-shot fingerprint."""
        return self.fc(self.trunk(self.dct @ x @ self.dct.T).flatten(1))

    def logits(self, f: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        """head(Dropout(f)); the dropout mask drawn from the CPU gen (None: no dropout, eval)."""
        if gen is not None and self.dropout > 0:
            keep = (torch.rand(f.shape, generator=gen) >= self.dropout).to(f.device, f.dtype)
            f = f * keep / (1 - self.dropout)
        return self.head(f)

    def forward(self, x):
        return self.logits(self.features(x), None)

    def add_augmenter(self, seed: int) -> Augmenter:
        """A new augmentation network, its weights drawn from `seed` (global RNG kept)."""
        aug = seeded(seed, lambda: Augmenter(self.aug_hidden)).to(self.dct.device)
        self.augmenters.append(aug)
        return aug

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """As nn.Module's, first growing (or cutting) the set of augmentation networks to the state's."""
        n = len({k.split(".")[1] for k in state_dict if k.startswith("augmenters.")})
        while len(self.augmenters) < n:
            self.add_augmenter(0)   # weights overwritten just below
        while len(self.augmenters) > n:   # early stopping's best weights are of an earlier epoch
            del self.augmenters[-1]
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def build(image_size: int, classes: int, seed: int = 0, **hp) -> POSENet:
    hp = resolve("pose", DEFAULTS, hp)
    if not (isinstance(image_size, int) and image_size >= 16 and image_size % 16 == 0):
        raise ValueError(f"pose: image_size must be a multiple of 16 (4 stride-2 stages), got "
                         f"{image_size!r}")
    return seeded(seed, lambda: POSENet(image_size, classes, float(hp["width"]),
                                        int(hp["embedding"]), float(hp["dropout"]),
                                        int(hp["aug_hidden"])))


# ---------------------------------------------------------------------------------------------
# Losses and the augmentation networks' step

def batch_hard_triplet(z: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017) of embeddings z (N, d), Euclidean distances:
    for each anchor with a positive, max(0, its farthest positive's distance - its nearest
    negative's distance + margin), averaged over those anchors."""
    d2 = (z[:, None] - z[None]).pow(2).sum(-1)
    d = d2.clamp(min=1e-12).sqrt()   # clamp: no infinite gradient of sqrt at the zero diagonal
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
    pos, neg = same & ~eye, ~same
    has = pos.any(1) & neg.any(1)
    if not has.any():
        return z.sum() * 0.0
    hardest_pos = d.masked_fill(~pos, float("-inf")).amax(1)
    hardest_neg = d.masked_fill(~neg, float("inf")).amin(1)
    return F.relu(hardest_pos - hardest_neg + margin)[has].mean()


@contextmanager
def batch_statistics(model: POSENet):
    """The classifier in train mode (BatchNorm on the batch's statistics) with its running
    statistics left as they were: features for the augmentation step that do not depend on how far
    the running statistics have caught up, and no side effect on the classifier."""
    saved = [b.clone() for b in model.trunk.buffers()]
    was_training = model.training
    model.train()
    try:
        yield
    finally:
        with torch.no_grad():
            for b, s in zip(model.trunk.buffers(), saved):
                b.copy_(s)
        model.train(was_training)


def augmentation_distance(model: POSENet, aug: Augmenter, x: torch.Tensor) -> torch.Tensor:
    """Per image of x, the cosine distance 1 - cos(f(aug(x)), f(x)) in the classifier's feature
    space, as the augmentation step sees it (one forward pass of both halves, batch statistics)."""
    with torch.no_grad(), batch_statistics(model):
        f = model.features(torch.cat([x, aug(x)]))
    return 1 - F.cosine_similarity(f[len(x):], f[:len(x)], dim=1)


def augmentation_step(model: POSENet, aug: Augmenter, opt: Adam, x: torch.Tensor,
                      earlier: Augmenter | None = None, **hp) -> tuple[float, float]:
    """One Adam step of the augmentation network `aug` on images x in [-1, 1]: MSE to x + the
    move-away term on the cosine distance between the features of aug(x) and x + the cosine to
    earlier(x)'s features (see the module docstring). The features of x, aug(x) and earlier(x) come
    from one forward pass with batch statistics (`batch_statistics`); only aug's weights change.
    Returns (MSE, mean cosine distance) before the step."""
    n = len(x)
    out = aug(x)
    with torch.no_grad():
        ref = [x] if earlier is None else [x, earlier(x)]
    with batch_statistics(model):   # the gradient too: BatchNorm's backward reads the buffers
        f = model.features(torch.cat([out, *ref]))
        f_out, f_x, f_earlier = f[:n], f[n:2 * n].detach(), f[2 * n:].detach()
        distance = 1 - F.cosine_similarity(f_out, f_x, dim=1)
        mse = F.mse_loss(out, x)
        loss = mse + float(hp["aug_weight"]) * F.relu(float(hp["aug_margin"]) - distance).mean()
        if earlier is not None:
            loss = loss + float(hp["aug_diversity"]) * \
                F.cosine_similarity(f_out, f_earlier, dim=1).mean()
        params = list(aug.parameters())
        for p, g in zip(params, torch.autograd.grad(loss, params)):
            p.grad = g   # the classifier's weights get no gradient from this step
    opt.step()
    opt.zero_grad()
    return mse.item(), distance.mean().item()


def augment(model: POSENet, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """x with each image passed through one network of the set, drawn uniformly (no gradients)."""
    which = torch.randint(len(model.augmenters), (len(x),), generator=gen).to(x.device)
    out = x.clone()
    with torch.no_grad():
        for j, aug in enumerate(model.augmenters):
            mask = which == j
            if mask.any():
                out[mask] = aug(x[mask])
    return out


# ---------------------------------------------------------------------------------------------
# Training and embedding

def heldout_accuracy(model: POSENet, images: torch.Tensor, labels: torch.Tensor, device) -> float:
    """Closed-set accuracy over the known sources (the first C logits; the augmented twins are the
    open space, not an answer) on uint8 images, eval mode."""
    return accuracy(embed_batches(model, images, device, lambda x: model(x)[:, :model.classes]), labels)


def train(model: POSENet, images_by_class, steps: int, batch_size: int, seed: int, device,
          progress=None, state_path=None, stopping: Stopping | None = None, **hp):
    """At most `steps` classifier steps on class-balanced batches of batch_size images of the fit
    part (each also seen augmented, so 2 x batch_size per forward pass), early-stopped on the
    held-out part (`stopping`, common.Stopping); a new augmentation network at step 0, aug_every,
    2 aug_every, ..., trained alongside during its epoch. Returns (model in eval mode with its
    augmentation networks, the best evaluation's weights; info): the means over the last
    min(LOG_EVERY, steps) steps run of loss, ce, triplet, accuracy (over the 2C classes, both
    halves), aug_mse and aug_distance (the current augmentation network's), the number of
    augmenters, the stopping (steps_run, best_step, heldout_acc) and the learning curve (history).
    state_path: resumable state (common.TrainingState; the networks made so far are in the
    model's), resumed from when present."""
    hp = resolve("pose", DEFAULTS, hp)
    stopping = stopping or Stopping()
    start = time.perf_counter()
    images, labels, held, held_labels = fit_and_heldout("pose", images_by_class, model.image_size,
                                                        stopping.fraction, seed)
    if len(images_by_class) != model.classes:
        raise ValueError(f"pose: built for {model.classes} classes, got {len(images_by_class)}")
    every = hp["aug_every"]
    every = math.ceil(len(images) / batch_size) if every is None else int(every)   # None: an epoch
    if every < 1:
        raise ValueError(f"pose: aug_every must be >= 1 or None (an epoch), got {every!r}")
    gen = torch.Generator().manual_seed(seed)
    model = model.to(device)
    opt = Adam([p for name, p in model.named_parameters() if not name.startswith("augmenters.")],
               lr=float(hp["lr"]))
    log = LossLog(steps, progress, ("loss", "ce", "triplet", "accuracy", "aug_mse", "aug_distance"))
    classes = model.classes
    state = training_state(state_path, "pose", hp, images_by_class, steps, batch_size, seed, stopping)
    monitor = Monitor(stopping)
    monitor.start("train", steps, model, lambda: heldout_accuracy(model, held, held_labels, device))
    resumable = {"model": model, "opt": opt, "gen": gen, "log": log, "monitor": monitor}
    done, (aug_state,) = state.resume("train", resumable, aug_opt=None)
    if done % every:   # resumed within an epoch: its augmentation network and that one's Adam
        aug = model.augmenters[-1]
        aug_opt = Adam(aug.parameters(), lr=float(hp["aug_lr"]))
        aug_opt.load_state_dict(aug_state)
    for step in range(done, steps):
        if step % every == 0:   # a new epoch: the open space grows by one augmentation network
            aug = model.add_augmenter(int(torch.randint(2 ** 31, (1,), generator=gen)))
            aug_opt = Adam(aug.parameters(), lr=float(hp["aug_lr"]))
        idx = balanced_batch(labels, batch_size, gen)
        x = as_unit_range(images[idx].to(device))
        y = labels[idx].to(device)
        earlier = None
        if len(model.augmenters) > 1:
            earlier = model.augmenters[int(torch.randint(len(model.augmenters) - 1, (1,),
                                                         generator=gen))]
        aug_mse, aug_distance = augmentation_step(model, aug, aug_opt, x, earlier, **hp)
        model.train()
        both = torch.cat([x, augment(model, x, gen)])
        target = torch.cat([y, y + classes])
        f = model.features(both)
        logits = model.logits(f, gen)
        ce = F.cross_entropy(logits, target)
        tri = batch_hard_triplet(F.normalize(f, dim=1), target, float(hp["margin"]))
        loss = ce + float(hp["triplet_weight"]) * tri
        opt.zero_grad()
        loss.backward()
        opt.step(step_lr(float(hp["lr"]), step, int(hp["lr_step"]), float(hp["lr_gamma"])))
        train_acc = (logits.argmax(1) == target).float().mean().item()
        log.add(loss.item(), ce.item(), tri.item(), train_acc, aug_mse, aug_distance)
        if monitor.after(step + 1, loss.item()):
            break
        state.checkpoint("train", step + 1, steps, resumable, aug_opt=aug_opt.state_dict())
    stopped = monitor.finish()
    info = {"method": "pose", "steps": steps, "images": len(images), "heldout_images": len(held),
            "classes": classes, **stopped, "seconds": time.perf_counter() - start,
            "augmenters": len(model.augmenters), "steps_per_augmenter": every, **log.summary(), **hp,
            "history": monitor.rows}
    return model.eval(), info


def embed(model: POSENet, images: torch.Tensor, device) -> torch.Tensor:
    """(N, embedding) embeddings of the images' DCT, eval mode."""
    return embed_batches(model, images, device, model.features)
