"""genmodel._hardware: devices, links, efficiencies and the compute-precision fallback."""

from __future__ import annotations

import dataclasses

import pytest
from _devices import NEXT_DEVICES

import genmodel
from genmodel import Device, Efficiency, Link, SpecError
from genmodel._units import GiB


def _device(**overrides: object) -> Device:
    kwargs: dict[str, object] = {
        "id": "toy",
        "name": "Toy accelerator",
        "peak_flops_per_s": {"bf16": 100e12, "fp8": 200e12},
        "memory_capacity_bytes": 16 * GiB,
        "memory_bandwidth_bytes_per_s": 1e12,
    }
    kwargs.update(overrides)
    return Device(**kwargs)  # type: ignore[arg-type]


def test_h100_is_converted_to_si_units() -> None:
    d = genmodel.load_device("h100-sxm")
    assert d.memory_capacity_bytes == pytest.approx(80 * GiB)
    assert d.memory_bandwidth_bytes_per_s == pytest.approx(3.35e12)
    # dense (not 2:4 sparse) peaks
    assert d.peak_flops_per_s["bf16"] == pytest.approx(989.4e12)
    assert d.peak_flops_per_s["fp8"] == pytest.approx(2 * 989.4e12, rel=1e-3)
    assert d.scale_up is not None
    assert d.scale_up.bandwidth_bytes_per_s == pytest.approx(450e9)
    assert d.scale_up.num_domain_devices == 8


def test_compute_dtype_falls_back_to_next_wider_precision() -> None:
    a100 = genmodel.load_device("a100-sxm-80gb")
    assert "fp8" not in a100.peak_flops_per_s
    assert a100.compute_dtype("fp8") in ("bf16", "fp16")
    assert a100.peak_for("fp8") == pytest.approx(a100.peak_flops_per_s["bf16"])
    toy = _device()
    assert toy.compute_dtype("fp8") == "fp8"
    assert toy.compute_dtype("int4") == "bf16"  # no int4/int8/fp16 units: next wider is bf16
    assert toy.compute_dtype("fp32") in toy.peak_flops_per_s  # nothing wider: one it has


def test_peak_mapping_is_read_only() -> None:
    toy = _device()
    with pytest.raises(TypeError):
        toy.peak_flops_per_s["bf16"] = 1.0  # type: ignore[index]


def test_ideal_device_has_unit_efficiencies_and_no_overheads() -> None:
    d = genmodel.load_device("h100-sxm").ideal()
    e = d.efficiency
    assert e.gemm_frac == pytest.approx(1.0)
    assert e.memory_frac == pytest.approx(1.0)
    assert e.attention_frac == pytest.approx(1.0)
    assert e.collective_bus_frac == pytest.approx(1.0)
    assert e.step_overhead_s == pytest.approx(0.0)
    assert e.collective_latency_s == pytest.approx(0.0)
    assert d.usable_memory_bytes == pytest.approx(d.memory_capacity_bytes)


def test_usable_memory_subtracts_os_reserve_then_scales() -> None:
    toy = _device(os_reserve_bytes=2 * GiB, efficiency=Efficiency(usable_memory_frac=0.5))
    assert toy.usable_memory_bytes == pytest.approx(7 * GiB)
    jetson = genmodel.load_device("jetson-agx-orin-64gb")
    assert jetson.shared_with_host
    assert jetson.usable_memory_bytes < jetson.memory_capacity_bytes


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"memory_capacity_bytes": 0.0}, "memory_capacity_bytes"),
        ({"memory_bandwidth_bytes_per_s": -1.0}, "memory_bandwidth_bytes_per_s"),
        ({"peak_flops_per_s": {}}, "peak_flops_per_s"),
        ({"peak_flops_per_s": {"bf17": 1e12}}, "bf17"),
        ({"peak_flops_per_s": {"bf16": -1.0}}, "peak_flops_per_s[bf16]"),
        ({"os_reserve_bytes": 32 * GiB}, "os_reserve_bytes"),
    ],
)
def test_device_rejects_impossible_values_naming_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError, match=field.replace("[", r"\[").replace("]", r"\]")):
        _device(**overrides)


def test_efficiency_and_link_validation() -> None:
    with pytest.raises(SpecError, match="gemm_frac"):
        Efficiency(gemm_frac=1.5)
    with pytest.raises(SpecError, match="memory_frac"):
        Efficiency(memory_frac=0.0)
    with pytest.raises(SpecError, match="step_overhead_s"):
        Efficiency(step_overhead_s=-1.0)
    with pytest.raises(SpecError, match="bandwidth_bytes_per_s"):
        Link(name="nv", bandwidth_bytes_per_s=0.0)
    with pytest.raises(SpecError, match="latency_s"):
        Link(name="nv", bandwidth_bytes_per_s=1e9, latency_s=-1.0)


def test_device_is_frozen() -> None:
    d = _device()
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.memory_capacity_bytes = 1.0  # type: ignore[misc]


# ---- the platforms added after the first database: Blackwell (Ultra), GB200/GB300, MI325X/MI355X ---------


@pytest.mark.parametrize("device_id", NEXT_DEVICES)
def test_new_devices_have_dense_peaks_in_the_datasheet_ratios(device_id: str) -> None:
    d = genmodel.load_device(device_id)
    peak = d.peak_flops_per_s
    # dense, not 2:4 sparse: fp8 doubles the 16-bit rate; a sparse figure would double it again
    assert peak["fp16"] == pytest.approx(peak["bf16"])
    assert peak["fp8"] == pytest.approx(2 * peak["bf16"], rel=1e-3)
    assert peak["bf16"] < 3e15
    # HBM capacity and bandwidth of the generation, above the MI300X/B200 ones they follow
    assert d.memory_capacity_bytes >= 180 * GiB
    assert 5.9e12 <= d.memory_bandwidth_bytes_per_s <= 8.0e12


def test_native_fp4_where_the_silicon_has_it() -> None:
    b200, b300, gb300 = (genmodel.load_device(i) for i in ("b200", "b300", "gb300"))
    # Blackwell Ultra raises dense FP4 by about 1.5x over Blackwell; fp8 and bf16 stay
    assert 1.4 < b300.peak_for("fp4") / b200.peak_for("fp4") < 1.6
    assert gb300.peak_for("fp4") == pytest.approx(1.5 * genmodel.load_device("gb200").peak_for("fp4"))
    assert b300.peak_for("fp8") == pytest.approx(b200.peak_for("fp8"))
    # CDNA4 runs MXFP4 at twice its fp8 rate; CDNA3 has no fp4 and falls back to fp8
    mi355x, mi325x = genmodel.load_device("mi355x"), genmodel.load_device("mi325x")
    assert mi355x.compute_dtype("fp4") == "fp4"
    assert mi355x.peak_for("fp4") == pytest.approx(2 * mi355x.peak_for("fp8"), rel=1e-3)
    assert mi325x.compute_dtype("fp4") == "fp8"
    # the MI325X is the MI300X's compute with more, faster memory
    mi300x = genmodel.load_device("mi300x")
    assert dict(mi325x.peak_flops_per_s) == dict(mi300x.peak_flops_per_s)
    assert mi325x.memory_capacity_bytes > mi300x.memory_capacity_bytes
    assert mi325x.memory_bandwidth_bytes_per_s > mi300x.memory_bandwidth_bytes_per_s


@pytest.mark.parametrize("device_id", ["b300", "gb300"])
def test_blackwell_ultra_int8_runs_on_the_16_bit_units(device_id: str) -> None:
    d = genmodel.load_device(device_id)
    # its INT8 tensor rate is vestigial (~0.15 POPS): an int8 GEMM is dequantised to 16 bits
    assert "int8" not in d.peak_flops_per_s
    assert d.compute_dtype("int8") == "fp16"
    assert d.compute_dtype("int4") == "fp16"


@pytest.mark.parametrize("device_id", ["gb200", "gb300"])
def test_grace_blackwell_gpus_reach_grace_memory_over_nvlink_c2c(device_id: str) -> None:
    d = genmodel.load_device(device_id)
    assert d.host is not None
    assert d.host.tier_id == "grace-blackwell-lpddr5x"
    assert d.host.link.bandwidth_bytes_per_s == pytest.approx(450e9)  # 900 GB/s bidirectional
    assert d.scale_up is not None
    assert d.scale_up.num_domain_devices == 72
    tier = genmodel.load_memory_tier("grace-blackwell-lpddr5x")
    assert tier.capacity_bytes == pytest.approx(480 * GiB)
    assert tier.link is not None
    assert tier.link.bandwidth_bytes_per_s == pytest.approx(450e9)  # the superchip's C2C, shared


def test_a_precision_the_device_lacks_is_named_with_the_peak_used() -> None:
    a100 = genmodel.load_device("a100-sxm-80gb")
    assert a100.compute_note("bf16") is None  # native: nothing to say
    note = a100.compute_note("fp8")
    assert note is not None
    assert "fp8 is not native on a100-sxm-80gb" in note and "run in bf16" in note
    assert f"{a100.peak_flops_per_s['bf16'] / 1e12:,.0f} TFLOP/s" in note
    assert genmodel.load_device("h100-sxm").compute_note("fp4", "attention") is not None  # fp4: Blackwell
    assert genmodel.load_device("b200").compute_note("fp4") is None
    assert "bf16" in (genmodel.load_device("ascend-910c").compute_note("fp8") or "")
    # no unit as wide as asked: the widest one sets the peak, an optimistic bound, and it says so
    narrow = dataclasses.replace(a100, id="bf16-only", peak_flops_per_s={"bf16": 1e15})
    assert narrow.compute_dtype("fp32") == "bf16"
    assert "optimistic" in (narrow.compute_note("fp32") or "")
