"""benchmarks/device_peak.py: the peak that the GPU check's "of peak" columns divide by."""
import importlib.util

from conftest import ROOT


def _device_peak():
    spec = importlib.util.spec_from_file_location("device_peak", ROOT / "benchmarks" / "device_peak.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_most_specific_name_wins_and_peaks_are_dense_tf32():
    peak_of = _device_peak().peak_of
    # CUDA device names as torch reports them: a PCIe or NVL card is not taken for the SXM part
    assert peak_of("NVIDIA H100 80GB HBM3") == peak_of("NVIDIA H200") == 494.7e12
    assert peak_of("NVIDIA H100 PCIe") == 378.0e12
    assert peak_of("NVIDIA H100 NVL") == peak_of("NVIDIA H200 NVL") == 417.5e12
    assert peak_of("NVIDIA A100-SXM4-80GB") == 156.0e12      # TF32 dense, not the 19.5 of plain FP32
    assert peak_of("Tesla T4") is None                       # unknown: the column says "-"
    assert _device_peak().peak_flops("cpu") is None
