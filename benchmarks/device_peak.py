"""The device's peak FLOP/s, for the benchmarks' "achieved / peak" column (shared by
synth_throughput.py and extractor_throughput.py; run them from the repository root).

Dense float32 peaks from the vendors' data sheets (TF32 tensor cores where torch uses them for
float32 convolutions, cuDNN's default). Unknown devices (every CPU here): no peak, the column says "-".
"""

from __future__ import annotations

import torch

PEAKS_TFLOPS = {"H200": 67.0, "H100": 67.0, "A100": 19.5, "RTX 3090": 35.6, "L40S": 91.6}


def peak_flops(device) -> float | None:
    device = torch.device(device)
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((tflops * 1e12 for key, tflops in PEAKS_TFLOPS.items() if key in name), None)


def share(flops_per_s: float, peak: float | None) -> str:
    """Achieved FLOP/s as a percentage of the peak, or "-" where the peak is unknown."""
    return f"{100 * flops_per_s / peak:.1f}" if peak else "-"
