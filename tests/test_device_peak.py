"""benchmarks/device_peak.py: the peak that the GPU check's "of peak" columns divide by."""
from conftest import load_benchmark


def test_the_most_specific_name_wins_and_peaks_are_dense_tf32():
    peak_of = load_benchmark("device_peak").peak_of
    # CUDA device names as torch reports them: a PCIe or NVL card is not taken for the SXM part
    assert peak_of("NVIDIA H100 80GB HBM3") == peak_of("NVIDIA H200") == 494.7e12
    assert peak_of("NVIDIA H100 PCIe") == 378.0e12
    assert peak_of("NVIDIA H100 NVL") == peak_of("NVIDIA H200 NVL") == 417.5e12
    assert peak_of("NVIDIA A100-SXM4-80GB") == 156.0e12      # TF32 dense, not the 19.5 of plain FP32
    assert peak_of("Tesla T4") is None                       # unknown: the column says "-"
    assert load_benchmark("device_peak").peak_flops("cpu") is None
