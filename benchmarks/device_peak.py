"""The device's peak FLOP/s, for the benchmarks' "achieved / peak" column (shared by
synth_throughput.py and extractor_throughput.py; run them from the repository root).

The dense TF32 tensor-core peaks of the vendors' data sheets (half their "with sparsity" figures):
torch runs float32 convolutions, all the FLOPs these benchmarks count, in TF32 by default
(torch.backends.cudnn.allow_tf32), so that is the ceiling they meet; `tf32()` says whether it is
on (the GPU check's summary flags it when off). Names are matched most specific first (an "H100
PCIe" is not an H100 SXM). Unknown devices (every CPU here): no peak, the column says "-".
"""

from __future__ import annotations

import torch

# dense TF32 TFLOP/s; the more specific name first (the first key found in the device's name wins)
PEAKS_TFLOPS = {"H200 NVL": 417.5, "H200": 494.7, "H100 NVL": 417.5, "H100 PCIe": 378.0, "H100": 494.7,
                "A100": 156.0, "RTX 3090": 35.6, "L40S": 91.6}


def peak_flops(device) -> float | None:
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return peak_of(torch.cuda.get_device_name(device))


def peak_of(name: str) -> float | None:
    """The dense TF32 peak (FLOP/s) of a CUDA device's name, or None for an unknown one."""
    return next((tflops * 1e12 for key, tflops in PEAKS_TFLOPS.items() if key in name), None)


def tf32() -> bool:
    """Whether cuDNN runs float32 convolutions in TF32 (torch's default): what the peak assumes."""
    return bool(torch.backends.cudnn.allow_tf32)


def share(flops_per_s: float, peak: float | None) -> str:
    """Achieved FLOP/s as a percentage of the peak, or "-" where the peak is unknown."""
    return f"{100 * flops_per_s / peak:.1f}" if peak else "-"
