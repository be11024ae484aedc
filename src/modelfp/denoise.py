"""The denoiser whose noise residual feeds the fingerprint extractor (paper eq. 13, III-C).

The paper strips the low-frequency content of an image with the DnCNN of Zhang et al. (2017) at
noise level sigma = 1 (0-255 scale) and keeps the residual I' = I - f_denoise(I); the authors' code
uses the network's own noise prediction as that residual. Their weights are third-party and not
available, so we train our own (`train_denoiser`) and can also load an external DnCNN checkpoint.

Scales. Images are uint8 or float in [-1, 1] (x / 127.5 - 1). Noise levels (`sigma`) are always
given on the 0-255 scale, as in the paper; in [-1, 1] units a level sigma is a std of sigma * 2/255.
Residuals come back in [-1, 1] units. A model carries two attributes that say how to use its raw
output, so that external networks can be used as they were trained:
  * ``predicts``: "noise" (residual learning, Zhang et al.; our models) or "clean" (a network that
    outputs the denoised image);
  * ``value_range``: the image range the network was trained on: (-1, 1) for ours, (0, 1) by
    default for external checkpoints (KAIR, SaoYan's DnCNN-PyTorch and the original MatConvNet
    models all work on [0, 1]).
`DnCNN.forward` is the raw network, on the network's own range: for our models it returns the
predicted noise. `noise_estimate` and `denoise` take [-1, 1] images and respect both attributes.

External checkpoints (`load`): a plain state dict, or a dict holding one under "state_dict",
"model", "net" or "params", from common DnCNN implementations. Tensors are mapped by ORDER, not by
name (keys like "model.0.weight", "dncnn.0.weight", "layers.0.weight", "module."-prefixed...):
conv, then (conv, BN) x (depth - 2), then conv; or conv x depth for checkpoints whose BN was merged
into the convolutions (KAIR's released models). Depth, features and channels are inferred from the
conv weights and every shape is checked. Missing conv biases are zeros; a conv bias in front of a
BN is folded into the BN's running mean, and a merged (BN-less) middle layer becomes an identity
BN carrying its bias: exact in eval mode, which is how a loaded model is used (do not fine-tune a
folded external model in train mode). A 1-channel DnCNN (grayscale) is applied to each colour
channel separately (`DnCNN.forward` folds the channels into the batch).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import checkpoints
from .pools import as_unit_range
from .optim import Adam  # torch's Adam update without the Optimizer class (no dynamo import)

FORMAT = "modelfp.dncnn/1"
PREDICTS = ("noise", "clean")
MODES = ("predicted", "difference")
OURS_RANGE = (-1.0, 1.0)
EXTERNAL_RANGE = (0.0, 1.0)
_WRAPPER_KEYS = ("state_dict", "model", "net", "params", "params_ema")
_BN_EPS = 1e-5


def sigma_to_unit(sigma: float) -> float:
    """A noise std on the 0-255 scale in [-1, 1] units."""
    return sigma * 2.0 / 255.0


# ---------------------------------------------------------------------------------------------
# Configuration and history

@dataclass(frozen=True)
class TrainConfig:
    sigma: float = 1.0           # noise std on the 0-255 scale (paper and official code: 1)
    patch: int = 40              # training patch side (Zhang et al.: 40 for sigma-specific models)
    batch_size: int = 64
    steps: int = 20000
    lr: float = 1e-3             # peak Adam lr; cosine decay to 0 over `steps`
    seed: int = 0                # init, patch positions and noise
    log_every: int = 50          # steps between history entries and progress calls


@dataclass
class TrainHistory:
    steps: list = field(default_factory=list)   # step at the end of each logged interval
    loss: list = field(default_factory=list)    # mean training MSE / noise variance, per interval
    lr: list = field(default_factory=list)      # lr of the interval's last step
    seconds: float = 0.0
    noise_mse: float = 0.0   # the noise variance in [-1, 1] units, (sigma * 2/255)^2: loss x this = MSE


# ---------------------------------------------------------------------------------------------
# The model

class DnCNN(nn.Module):
    """Zhang et al. 2017: conv+ReLU, (depth-2) x (conv (no bias)+BN+ReLU), conv; residual learning.

    padding=1 everywhere, so the output has the input's size, odd sizes included. The official code
    facts say "no padding": that is their data pipeline; unpadded, 17 layers of 3x3 convs would
    shrink each side by 34 px and the residual would no longer align with the image.
    """

    def __init__(self, depth: int = 17, features: int = 64, channels: int = 3):
        super().__init__()
        if depth < 2 or features < 1 or channels < 1:
            raise ValueError(f"DnCNN needs depth >= 2, features >= 1, channels >= 1; got "
                             f"{depth}, {features}, {channels}")
        self.depth, self.features, self.channels = depth, features, channels
        self.predicts = "noise"
        self.value_range = OURS_RANGE
        layers = [nn.Conv2d(channels, features, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1, bias=False),
                       nn.BatchNorm2d(features, eps=_BN_EPS), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(features, channels, 3, padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        """The raw network output on its own range (our models: the predicted noise)."""
        if x.shape[1] == self.channels:
            return self.layers(x)
        if self.channels == 1:  # grayscale network: each colour channel on its own
            b, c, h, w = x.shape
            return self.layers(x.reshape(b * c, 1, h, w)).reshape(b, c, h, w)
        raise ValueError(f"DnCNN for {self.channels} channels got an input with {x.shape[1]}")

    def _scale(self):
        lo, hi = self.value_range
        return (hi - lo) / 2.0, (hi + lo) / 2.0   # net value = a * x + b for x in [-1, 1]

    def noise_estimate(self, x):
        """The predicted noise of [-1, 1] images x, in [-1, 1] units."""
        a, b = self._scale()
        out = self(x * a + b if (a, b) != (1.0, 0.0) else x)
        if self.predicts == "noise":
            return out / a if a != 1.0 else out
        return x - (out - b) / a

    def denoise(self, x):
        """The denoised [-1, 1] images: x - noise for a noise-predicting net, its output otherwise."""
        if self.predicts == "noise":
            return x - self.noise_estimate(x)
        a, b = self._scale()
        out = self(x * a + b if (a, b) != (1.0, 0.0) else x)
        return (out - b) / a


def init_model(depth=17, features=64, channels=3, seed=0, device="cpu") -> DnCNN:
    """PyTorch's default init drawn from torch.manual_seed(seed), global RNG state left as it was."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = DnCNN(depth, features, channels)
    torch.random.set_rng_state(state)
    return model.to(device)


def _to_unit(x: torch.Tensor, dtype) -> torch.Tensor:
    return as_unit_range(x, dtype)


@torch.no_grad()
def noise_residual(model: DnCNN, x: torch.Tensor, mode: str = "predicted",
                   batch_size: int = 16) -> torch.Tensor:
    """The extractor's input residual of images x ((N,3,H,W) or (3,H,W), uint8 or [-1,1] float).

    mode "predicted": the network's noise estimate (what the authors' code uses);
    mode "difference": x - denoise(x), the paper's eq. 13 computed literally through the denoiser.
    Both are the same quantity (up to float rounding) for either kind of network (`predicts`);
    both are kept so that a clean-image-predicting external checkpoint needs no special casing.
    Runs in eval mode (restored afterwards), in batches, without gradients. Returns [-1, 1] units,
    the input's float dtype (float32 for uint8) on the input's device.
    """
    if mode not in MODES:
        raise ValueError(f"noise_residual mode must be one of {MODES}, not {mode!r}")
    single = x.dim() == 3
    if single:
        x = x.unsqueeze(0)
    param = next(model.parameters())
    out_dtype = x.dtype if x.is_floating_point() else torch.float32
    was_training = model.training
    model.eval()
    try:
        parts = []
        for i in range(0, len(x), batch_size):
            xb = _to_unit(x[i:i + batch_size].to(param.device), param.dtype)
            r = model.noise_estimate(xb) if mode == "predicted" else xb - model.denoise(xb)
            parts.append(r.to(x.device, out_dtype))
    finally:
        model.train(was_training)
    out = torch.cat(parts) if parts else torch.empty(x.shape, dtype=out_dtype, device=x.device)
    return out[0] if single else out


# ---------------------------------------------------------------------------------------------
# Training

def _patches(pool: torch.Tensor, n: int, patch: int, gen: torch.Generator) -> torch.Tensor:
    """n random patches (uint8 or float, as in the pool) at uniform images and positions."""
    _, _, h, w = pool.shape
    idx = torch.randint(len(pool), (n,), generator=gen).tolist()
    top = torch.randint(h - patch + 1, (n,), generator=gen).tolist()
    left = torch.randint(w - patch + 1, (n,), generator=gen).tolist()
    return torch.stack([pool[i, :, t:t + patch, s:s + patch] for i, t, s in zip(idx, top, left)])


def cosine_lr(cfg: TrainConfig, step: int) -> float:
    """lr of step `step` (0-based): cosine decay from cfg.lr to 0 over cfg.steps, no warm-up."""
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * step / max(cfg.steps, 1)))


def train_denoiser(pool_uint8: torch.Tensor, cfg: TrainConfig = TrainConfig(), device="cpu",
                   progress=None, *, depth: int = 17, features: int = 64,
                   channels_last: bool | None = None):
    """Train a residual-learning DnCNN on random patches of `pool_uint8` ((N,3,H,W), H,W >= patch).

    Each step: batch_size patches (uniform image and position), Gaussian noise n = s * z of std
    s = cfg.sigma * 2/255 added in [-1, 1] units (no clipping, no quantisation), MSE between the
    network output and z = n / s, Adam with cosine lr decay from cfg.lr to 0 (no warm-up).
    The network thus learns the noise in units of its std, and s is folded into the last conv at
    the end (the same function as a net trained on n directly). Why: at sigma = 1 the noise is
    ~0.008 in [-1, 1] units and Adam's step size does not depend on the loss scale, so a net
    trained on n directly overshoots it by far (measured on a small net at sigma = 1: images come
    out *worse*, -4 to -8 dB, vs +2.5 dB with z). The last conv starts at zero, so training starts
    from the zero predictor. The loss in the history and in progress() is the fraction of the
    noise variance left (1 = predicting nothing; x history.noise_mse = MSE in [-1, 1] units).
    Patches and noise come from one CPU torch.Generator seeded with cfg.seed, the init from
    torch.manual_seed(cfg.seed): the same seed gives the same weights (same device and thread
    count). progress(step, loss) is called every cfg.log_every steps and at the last step with the
    interval's mean loss.
    channels_last: NHWC activations; default (None) is channels_last on CPU, contiguous on CUDA.
    Returns (model in eval mode, TrainHistory).
    """
    if pool_uint8.dim() != 4 or pool_uint8.shape[1] != 3 or len(pool_uint8) == 0:
        raise ValueError(f"pool must be a non-empty (N, 3, H, W) tensor, got {tuple(pool_uint8.shape)}")
    if min(pool_uint8.shape[-2:]) < cfg.patch:
        raise ValueError(f"patch {cfg.patch} does not fit images of {tuple(pool_uint8.shape[-2:])}")
    if channels_last is None:
        channels_last = torch.device(device).type == "cpu"
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = init_model(depth, features, 3, cfg.seed, device)
    with torch.no_grad():  # start from the zero predictor (normalised loss 1)
        model.layers[-1].weight.zero_()
        model.layers[-1].bias.zero_()
    model = model.to(memory_format=fmt).train()
    opt = Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    std = sigma_to_unit(cfg.sigma)
    history = TrainHistory(noise_mse=std * std)
    start = time.perf_counter()
    running, count = torch.zeros((), device=device), 0
    for step in range(cfg.steps):
        clean = _to_unit(_patches(pool_uint8, cfg.batch_size, cfg.patch, gen), torch.float32)
        z = torch.randn(clean.shape, generator=gen)          # the noise in units of its std
        x = (clean + z * std).to(device).contiguous(memory_format=fmt)
        loss = F.mse_loss(model(x), z.to(device).contiguous(memory_format=fmt))
        opt.zero_grad()
        loss.backward()
        opt.lr = cosine_lr(cfg, step)
        opt.step()
        running += loss.detach()
        count += 1
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            mean = float(running) / count
            history.steps.append(done)
            history.loss.append(mean)
            history.lr.append(opt.lr)
            if progress:
                progress(done, mean)
            running.zero_()
            count = 0
    history.seconds = time.perf_counter() - start
    model = model.to(memory_format=torch.contiguous_format).eval()
    with torch.no_grad():  # fold the noise std into the last conv: the net now outputs the noise
        model.layers[-1].weight.mul_(std)
        model.layers[-1].bias.mul_(std)
    return model, history


def _psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB, peak 255) of [-1, 1] images a against b."""
    mse = ((a - b) * 127.5).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(255.0 ** 2 / mse)


@torch.no_grad()
def psnr_gain(model: DnCNN, val_uint8: torch.Tensor, sigma: float, seed: int = 0, device="cpu",
              batch_size: int = 16) -> dict:
    """Denoising quality on held-out images: noise of std sigma (0-255 scale) added in float,
    no clipping. Returns mean per-image PSNR (dB, 0-255 scale, peak 255) of the noisy and of the
    denoised images, and gain = psnr_denoised - psnr_noisy."""
    gen = torch.Generator().manual_seed(seed)
    std = sigma_to_unit(sigma)
    was_training = model.training
    model.eval()
    noisy_db, denoised_db = [], []
    try:
        for i in range(0, len(val_uint8), batch_size):
            clean = _to_unit(val_uint8[i:i + batch_size], torch.float32)
            noisy = clean + torch.randn(clean.shape, generator=gen) * std
            denoised = model.denoise(noisy.to(device)).cpu().float()
            noisy_db.append(_psnr(noisy, clean))
            denoised_db.append(_psnr(denoised, clean))
    finally:
        model.train(was_training)
    psnr_noisy = float(torch.cat(noisy_db).mean())
    psnr_denoised = float(torch.cat(denoised_db).mean())
    return {"psnr_noisy": psnr_noisy, "psnr_denoised": psnr_denoised,
            "gain": psnr_denoised - psnr_noisy}


# ---------------------------------------------------------------------------------------------
# Files: our checkpoint format, plus external DnCNN state dicts

def save(model: DnCNN, path, **meta) -> None:
    """Atomic write: weights (float32, CPU), architecture, `predicts`, `value_range`, and `meta`."""
    checkpoints.save(to_payload(model, **meta), path)


def to_payload(model: DnCNN, **meta) -> dict:
    """The dict `save` writes (also embedded in extractor files, so they carry their denoiser)."""
    return {
        "format": FORMAT, "depth": model.depth, "features": model.features,
        "channels": model.channels, "predicts": model.predicts,
        "value_range": list(model.value_range),
        "state_dict": {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype)
                       for k, v in model.state_dict().items()},
        "meta": dict(meta),
    }


def from_payload(payload: dict, source="denoiser payload") -> DnCNN:
    """The DnCNN (eval mode, CPU) of a `to_payload` dict; `source` names it in errors."""
    return _load_ours(source, payload).eval()


def load(path, device="cpu", *, predicts: str | None = None,
         value_range: tuple | None = None) -> DnCNN:
    """A DnCNN in eval mode from our format or an external state dict (see module docstring).

    predicts / value_range override what the file says (ours) or the external defaults
    ("noise", (0, 1)). `model.info` holds the checkpoint's metadata (our format) or
    {"external": True, "keys": [...]}.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise ValueError(f"{path}: not a readable DnCNN checkpoint ({err}); expected a "
                         f"{FORMAT} file or a DnCNN state dict saved with torch.save") from err
    if not isinstance(payload, dict):
        raise ValueError(f"{path}: not a DnCNN checkpoint (a dict expected, got "
                         f"{type(payload).__name__})")
    if payload.get("format") == FORMAT:
        model = _load_ours(path, payload)
    elif "format" in payload and not torch.is_tensor(payload["format"]):
        raise ValueError(f"{path}: checkpoint format {payload['format']!r}, {FORMAT} expected")
    else:
        model = _load_external(path, _unwrap(path, payload))
    if predicts is not None:
        model.predicts = predicts
    if value_range is not None:
        model.value_range = (float(value_range[0]), float(value_range[1]))
    if model.predicts not in PREDICTS:
        raise ValueError(f"{path}: predicts must be one of {PREDICTS}, not {model.predicts!r}")
    lo, hi = model.value_range
    if not hi > lo:
        raise ValueError(f"{path}: bad value_range {model.value_range}")
    return model.to(device).eval()


def _load_ours(path, payload) -> DnCNN:
    try:
        model = DnCNN(int(payload["depth"]), int(payload["features"]), int(payload["channels"]))
        model.load_state_dict(payload["state_dict"])
        model.predicts = payload["predicts"]
        model.value_range = tuple(float(v) for v in payload["value_range"])
    except (KeyError, TypeError, RuntimeError, ValueError) as err:
        raise ValueError(f"{path}: damaged {FORMAT} checkpoint ({err})") from err
    model.info = {k: v for k, v in payload.items() if k != "state_dict"}
    return model


def _unwrap(path, payload: dict) -> dict:
    """The state dict inside a training checkpoint ({"state_dict": ...} etc.) or payload itself."""
    for key in _WRAPPER_KEYS:
        inner = payload.get(key)
        if isinstance(inner, dict) and inner and all(torch.is_tensor(v) for v in inner.values()):
            return inner
    if payload and all(torch.is_tensor(v) for v in payload.values()):
        return payload
    raise ValueError(f"{path}: not a DnCNN checkpoint: expected {FORMAT} or a state dict of "
                     f"tensors (plain or under one of {_WRAPPER_KEYS}); top-level keys: "
                     f"{list(payload)[:10]}")


_CONV_NAMES = {"weight", "bias"}
_BN_NAMES = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}


def _layers(path, state: dict) -> list:
    """The state dict as an ordered list of ("conv"|"bn", {name: tensor}), by module prefix."""
    groups: dict = {}
    for key, value in state.items():
        prefix, _, name = key.rpartition(".")
        groups.setdefault(prefix, {})[name] = value
    layers = []
    for prefix, g in groups.items():
        names = set(g)
        if names <= _CONV_NAMES and "weight" in g and g["weight"].dim() == 4:
            layers.append(("conv", g))
        elif names <= _BN_NAMES and {"weight", "bias", "running_mean", "running_var"} <= names:
            layers.append(("bn", g))
        else:
            raise ValueError(f"{path}: {prefix or '<root>'} holds {sorted(names)}: neither a conv "
                             f"(4-d weight, bias) nor a BatchNorm (affine, running stats); "
                             f"a DnCNN state dict was expected")
    return layers


def _load_external(path, state: dict) -> DnCNN:
    layers = _layers(path, state)
    kinds = [k for k, _ in layers]
    convs = [g for k, g in layers if k == "conv"]
    depth = len(convs)
    with_bn = ["conv"] + ["conv", "bn"] * (depth - 2) + ["conv"]
    if depth < 2 or kinds not in (with_bn, ["conv"] * depth):
        raise ValueError(f"{path}: layer sequence {kinds[:8]}{'...' if len(kinds) > 8 else ''} is "
                         f"not a DnCNN (conv, (conv, BN) x (depth-2), conv; or convs only)")
    first = convs[0]["weight"]
    features, channels = first.shape[0], first.shape[1]

    def check(name, tensor, shape):
        if tuple(tensor.shape) != tuple(shape):
            raise ValueError(f"{path}: {name} has shape {tuple(tensor.shape)}, {tuple(shape)} "
                             f"expected for a DnCNN with depth {depth}, {features} features, "
                             f"{channels} channels")
        return tensor.detach().to("cpu", torch.float32)

    def conv(i, cin, cout):
        g = convs[i]
        w = check(f"conv {i} weight", g["weight"], (cout, cin, 3, 3))
        b = check(f"conv {i} bias", g["bias"], (cout,)) if "bias" in g else torch.zeros(cout)
        return w, b

    model = DnCNN(depth, features, channels)
    ours = model.state_dict()
    new = {}
    keys = [k for k, _ in model.layers.named_children()]  # "0", "1", ...: conv/BN positions
    mods = list(model.layers)
    conv_pos = [keys[j] for j, m in enumerate(mods) if isinstance(m, nn.Conv2d)]
    bn_pos = [keys[j] for j, m in enumerate(mods) if isinstance(m, nn.BatchNorm2d)]
    bns = [g for k, g in layers if k == "bn"]
    for i in range(depth):
        cin = channels if i == 0 else features
        cout = channels if i == depth - 1 else features
        w, b = conv(i, cin, cout)
        new[f"layers.{conv_pos[i]}.weight"] = w
        if i in (0, depth - 1):
            new[f"layers.{conv_pos[i]}.bias"] = b
            continue
        p = f"layers.{bn_pos[i - 1]}"
        if bns:  # conv bias before a BN: BN(Wx + b) in eval mode = BN with running mean - b
            g = bns[i - 1]
            new[f"{p}.weight"] = check(f"BN {i} weight", g["weight"], (features,))
            new[f"{p}.bias"] = check(f"BN {i} bias", g["bias"], (features,))
            new[f"{p}.running_mean"] = check(f"BN {i} running_mean", g["running_mean"],
                                             (features,)) - b
            var = check(f"BN {i} running_var", g["running_var"], (features,))
            if (var < 0).any():
                raise ValueError(f"{path}: BN {i} has negative running variances")
            new[f"{p}.running_var"] = var
        else:    # merged BN: an identity BN that adds the conv's bias
            new[f"{p}.weight"] = torch.ones(features)
            new[f"{p}.bias"] = torch.zeros(features)
            new[f"{p}.running_mean"] = -b
            new[f"{p}.running_var"] = torch.full((features,), 1.0 - _BN_EPS)
        new[f"{p}.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    assert set(new) == set(ours), (set(new) ^ set(ours))
    model.load_state_dict(new)
    model.predicts = "noise"
    model.value_range = EXTERNAL_RANGE
    model.info = {"external": True, "keys": list(state)}
    return model
