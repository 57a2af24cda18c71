"""Measured achievable matmul throughput: a device whose matrix units reach a smaller share of their
dense peak than the H100 the shared GEMM fractions stand on reaches that much less in GEMMs and
attention (genmodel._achievable.matmul_scale; hardware_db/EFFICIENCY.md, "Achievable matmul throughput")."""

from __future__ import annotations

import pydantic
import pytest

import genmodel
from genmodel import SpecError
from genmodel._achievable import REFERENCE_MATMUL_FRAC, matmul_scale
from genmodel._ops import Rates
from genmodel._workload import Precision
from genmodel.io._load import load_device_yaml
from genmodel.io._schema import ComputeY

FP8 = Precision(weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")
TFLOP = 1e12


def test_the_reference_is_the_h100s_own_measurement() -> None:
    """The reference fractions are the H100 file's achievable figures over its peaks, so the H100
    (and every device without a measurement) keeps the shared fractions unchanged."""
    y = load_device_yaml("h100-sxm").compute
    assert y.achievable_tflops is not None
    assert REFERENCE_MATMUL_FRAC[False] == pytest.approx(y.achievable_tflops.bf16 / y.dense_tflops.bf16)
    assert REFERENCE_MATMUL_FRAC[True] == pytest.approx(y.achievable_tflops.fp8 / y.dense_tflops.fp8)
    # no measurement (A100, GB300) or one at or above the H100's share (H200 fp8 73.4 %): unchanged
    for device_id in ("h100-sxm", "h200-sxm", "a100-sxm-80gb", "gb300"):
        assert dict(genmodel.load_device(device_id).matmul_scale) == {}, device_id
    # Blackwell: fp8 at or above the H100's share, bf16 below it (GB200 72.9 %, B200 77.6 %), and
    # fp4 below the H100's fp8 share (B200 58.2 %, GB200 55.2 %: the tests below)
    for device_id, share in (("gb200", 0.729), ("b200", 0.776)):
        scale = dict(genmodel.load_device(device_id).matmul_scale)
        assert scale.keys() == {"bf16", "fp4"}, device_id
        assert scale["bf16"] == pytest.approx(share / 0.803, rel=2e-3), device_id


def test_mi300x_fp8_gemms_and_attention_run_at_its_measured_share() -> None:
    """AMD's MAF table: 1,273 of 2,614.9 fp8 TFLOPS (48.7 %) against the H100's 70.9 %."""
    d = genmodel.load_device("mi300x")
    scale = (1273 / 2614.9) / (1402.6 / 1978.9)
    assert d.matmul_scale["fp8"] == pytest.approx(scale)
    rates = Rates.of(d, FP8)
    eff = d.efficiency
    assert rates.gemm_flops_per_s == pytest.approx(2614.9 * TFLOP * eff.gemm_low_precision_frac * scale)
    assert rates.attention_flops_per_s == pytest.approx(2614.9 * TFLOP * eff.attention_frac * scale)
    # bf16 against the H100's bf16 share, and int8 (no measurement) unscaled
    assert d.matmul_scale["bf16"] == pytest.approx((708 / 1307.4) / (794.5 / 989.4))
    assert "int8" not in d.matmul_scale
    # --ideal is the pure roofline: no measured shortfall either
    ideal = Rates.of(d.ideal(), FP8)
    assert ideal.gemm_flops_per_s == pytest.approx(2614.9 * TFLOP)


FP4 = Precision(weight_dtype="fp4", act_dtype="fp4", kv_dtype="fp8")


def test_b200_fp4_gemms_run_at_cublaslts_mxfp4_share() -> None:
    """The B200's fp4 figure is cuBLASLt's MXFP4 GEMM at 8,192^3 (DeepGEMM pull request 348):
    5,239 of 9,000 TFLOPS (58.2 %), against the H100's fp8 share (70.9 %), the reference of the
    8- and 4-bit GEMM fraction. An NVFP4 GEMM runs at that much less than the datasheet rate times
    the shared fraction; fp8 (76.3 %) keeps the shared one."""
    d = genmodel.load_device("b200")
    scale = (5239 / 9000) / (1402.6 / 1978.9)
    assert d.matmul_scale["fp4"] == pytest.approx(scale)
    assert "fp8" not in d.matmul_scale
    rates = Rates.of(d, FP4)
    assert rates.gemm_flops_per_s == pytest.approx(
        9000 * TFLOP * d.efficiency.gemm_low_precision_frac * scale
    )
    # ahead of fp8 still, by less than the datasheet's 2x
    assert 1.5 < rates.gemm_flops_per_s / Rates.of(d, FP8).gemm_flops_per_s < 1.7


def test_blackwell_fp4_without_a_measurement_follows_the_b200s_fp4_over_fp8_share() -> None:
    """GB200 and B300 carry no fp4 measurement; their fp4 figure is derived by one rule: their own
    measured fp8 share times the B200's fp4 share over its fp8 share (hardware_db/EFFICIENCY.md).
    GB300 has no fp8 measurement to apply it to, and keeps the shared fractions."""
    b200 = load_device_yaml("b200").compute
    assert b200.achievable_tflops is not None and b200.achievable_tflops.fp4 is not None
    assert b200.achievable_tflops.fp8 is not None and b200.dense_tflops.fp4 is not None
    ratio = (b200.achievable_tflops.fp4 / b200.dense_tflops.fp4) / (
        b200.achievable_tflops.fp8 / b200.dense_tflops.fp8
    )
    for device_id in ("gb200", "b300"):
        y = load_device_yaml(device_id).compute
        assert y.achievable_tflops is not None and y.achievable_tflops.fp4 is not None, device_id
        assert y.achievable_tflops.fp8 is not None and y.dense_tflops.fp4 is not None
        share = y.achievable_tflops.fp4 / y.dense_tflops.fp4
        assert share == pytest.approx(y.achievable_tflops.fp8 / y.dense_tflops.fp8 * ratio, rel=1e-4), (
            device_id
        )
    assert load_device_yaml("gb300").compute.achievable_tflops is None


def test_mi325x_sustains_more_of_the_same_peak_than_mi300x() -> None:
    """Same CDNA3 compute and peaks; the 1,000 W MI325X holds a higher clock under dense load."""
    mi300x, mi325x = genmodel.load_device("mi300x"), genmodel.load_device("mi325x")
    assert mi325x.peak_flops_per_s["fp8"] == pytest.approx(mi300x.peak_flops_per_s["fp8"])
    ratio = Rates.of(mi325x, FP8).gemm_flops_per_s / Rates.of(mi300x, FP8).gemm_flops_per_s
    assert ratio == pytest.approx(1519 / 1273)


def test_matmul_scale_caps_at_one_and_rejects_impossible_figures() -> None:
    peaks = {"bf16": 100 * TFLOP, "fp8": 200 * TFLOP}
    # above the reference share: the shared fractions, not more
    assert matmul_scale(peaks, {"bf16": 95 * TFLOP}) == {}
    half = matmul_scale(peaks, {"fp8": 100 * TFLOP})["fp8"]
    assert half == pytest.approx(0.5 / REFERENCE_MATMUL_FRAC[True])
    with pytest.raises(SpecError, match="bf16"):
        matmul_scale(peaks, {"bf16": 120 * TFLOP})  # above the peak
    with pytest.raises(SpecError, match="fp4"):
        matmul_scale(peaks, {"fp4": 1 * TFLOP})  # no peak to be a share of
    d = genmodel.load_device("h100-sxm")
    with pytest.raises(SpecError, match="matmul_scale"):
        type(d)(
            id="x",
            name="x",
            peak_flops_per_s={"bf16": 1e12},
            memory_capacity_bytes=1e9,
            memory_bandwidth_bytes_per_s=1e9,
            matmul_scale={"bf16": 1.5},  # a scale is a shortfall, never a gain
        )


def test_an_achievable_figure_needs_its_source() -> None:
    with pytest.raises(pydantic.ValidationError, match="achievable_source"):
        ComputeY.model_validate(
            {"dense_tflops": {"bf16": 100}, "source": "a datasheet", "achievable_tflops": {"bf16": 60}}
        )


def test_mlperf_mi325x_over_mi300x_follows_their_measured_matmul_throughput() -> None:
    """MLPerf Inference v5.1, AMD, Llama-2-70B Offline: 8x MI325X 34,520.4 tokens/s over 8x MI300X
    27,803.9 in the same round and software (P38/P37): 1.24x. The peaks are equal and the memory
    differs by 13 % (6.0 vs 5.3 TB/s) in a compute-bound run, so with the datasheet peaks alone the
    prediction was 1.02x; the measured MAF ratio (1,519/1,273 = 1.19) carries the gap."""
    report = genmodel.validate()
    predicted = {c.id: c.predicted for c in report.cases}
    ratio = predicted["P38"] / predicted["P37"]
    assert ratio == pytest.approx(34520.4 / 27803.9, rel=0.06)
