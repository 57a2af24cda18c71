"""The devices added for hardware breadth (H100 PCIe/NVL, GH200, H20, L4, RTX 5090, RTX PRO 6000,
Jetson AGX Thor, DGX Spark, Gaudi 3, TPU v5e/v6e): each loads, estimates, and decodes as a
memory-bound part should; their systems, host tiers and precision fallbacks are what the files say."""

from __future__ import annotations

import pytest
from _devices import BREADTH_DEVICES, HOPPER_VARIANTS

import genmodel
from genmodel._intervals import FAMILIES, evidence, family

#: bf16 Llama-3.1-8B needs two 16 GB TPU v5e chips
TP = {"tpu-v5e": 2}
KW = {"batch": 1, "input_tokens": 1000, "output_tokens": 200}
WEIGHT_BYTES = 16.06e9  # Llama-3.1-8B in bf16 (8.03 B parameters)


def _estimate(device_id: str) -> genmodel.Estimate:
    return genmodel.estimate("llama-3.1-8b", device_id, tp=TP.get(device_id, 1), **KW)  # type: ignore[arg-type]


@pytest.mark.parametrize("device_id", BREADTH_DEVICES)
def test_each_new_device_loads_and_estimates(device_id: str) -> None:
    d = genmodel.load_device(device_id)
    assert d.id == device_id
    assert d.peak_flops_per_s.get("bf16", 0) > 0
    e = _estimate(device_id)
    assert e.memory.fits
    assert 0 < e.ttft_s < 2.0
    assert 0 < e.tpot_s < 0.2


def _decode_sanity(device_id: str) -> tuple[genmodel.Estimate, float]:
    """The estimate and TPOT over the weight read at the bandwidth the decode model allows
    (peak x memory_frac x the device's measured memory scale), per device of the group."""
    e = _estimate(device_id)
    d = genmodel.load_device(device_id)
    bandwidth = d.memory_bandwidth_bytes_per_s * d.efficiency.memory_frac * d.memory_scale
    return e, e.tpot_s / (WEIGHT_BYTES / TP.get(device_id, 1) / bandwidth)


@pytest.mark.parametrize("device_id", [d for d in BREADTH_DEVICES if d != "h20"])
def test_batch_one_decode_is_memory_bound_near_the_weight_read(device_id: str) -> None:
    """A bf16 8B model at batch 1 decodes in the time its weights take to stream, within 30 %."""
    e, ratio = _decode_sanity(device_id)
    assert e.decode.bound == "memory"
    assert 0.85 < ratio < 1.3, ratio


def test_h20_batch_one_decode_is_memory_bound() -> None:
    """148 dense TFLOPS could not hide 64 padded token rows (2.7x weights / bandwidth under the plain
    64-row tile rule); Hopper's small-M kernels swap A and B and pad one token to 16 rows
    (hardware_db/EFFICIENCY.md), which the H20 hides behind the weight read."""
    e, ratio = _decode_sanity("h20")
    assert e.decode.bound == "memory"
    assert ratio < 1.3


def test_new_devices_in_one_family_agree_with_their_reference() -> None:
    """Same silicon, different memory: an H100 NVL decodes faster than an H100 PCIe by about their
    bandwidth ratio; an H20 prefills far slower than any H100 (148 vs 756+ dense TFLOPS)."""
    pcie, nvl, sxm, h20 = (_estimate(d) for d in ("h100-pcie", "h100-nvl", "h100-sxm", "h20"))
    assert pcie.tpot_s / nvl.tpot_s == pytest.approx(3.9 / 2.0, rel=0.15)
    assert h20.ttft_s > 3 * max(pcie.ttft_s, nvl.ttft_s, sxm.ttft_s)


def test_every_device_has_a_family_and_new_families_are_datasheet_evidence() -> None:
    for device_id in genmodel.list_ids("hardware"):
        assert family(device_id) is not None, device_id
    # the new silicon (the L4 too: its family's L40S has no measurement) has only its datasheet;
    # the Hopper variants borrow the H100's measurements
    new_silicon = [d for d in BREADTH_DEVICES if d not in HOPPER_VARIANTS]
    assert len(new_silicon) == 8
    for device_id in new_silicon:
        assert evidence(device_id, "static") == "datasheet", device_id
    for device_id in HOPPER_VARIANTS:
        assert FAMILIES[device_id] == "nvidia-hopper"
        assert evidence(device_id, "static") == "transferred"


def test_gh200_offloads_to_its_own_grace_over_nvlink_c2c() -> None:
    kwargs: dict[str, object] = {"batch": 8, "input_tokens": 20_000, "output_tokens": 1000}
    assert not genmodel.estimate("llama-3.1-70b", "gh200", tp=1, weight_dtype="fp8", **kwargs).memory.fits  # type: ignore[arg-type]
    e = genmodel.estimate("llama-3.1-70b", "gh200", weight_dtype="fp8", kv_offload="host", **kwargs)  # type: ignore[arg-type]
    assert e.memory.fits
    grace = e.memory.tiers[1]
    assert grace.id == "grace-lpddr5x"
    assert grace.kv_bytes > 0
    # one GPU per Grace: the whole 480 GiB and the whole C2C link (GB200's two GPUs share them)
    frac = genmodel.load_device("gh200").efficiency.offload_link_frac
    assert grace.capacity_bytes == pytest.approx(480 * 2**30)
    assert grace.bandwidth_bytes_per_s == pytest.approx(450e9 * frac)
    assert genmodel.load_hardware("gh200").num_node_devices == 1


def test_h100_nvl_pairs_are_nvlink_and_pairs_talk_over_pcie() -> None:
    s = genmodel.load_hardware("h100-nvl")
    assert s.id == "h100-nvl-server"
    assert s.num_node_devices == 8
    assert s.tier_for(2).bandwidth_bytes_per_s == pytest.approx(300e9)
    assert s.tier_for(4).bandwidth_bytes_per_s == pytest.approx(64e9)
    assert s.tier_for(9).level == "scale_out"
    kw: dict[str, object] = {"batch": 8, "input_tokens": 1000, "output_tokens": 200}
    tp2 = genmodel.estimate("llama-3.1-8b", s, tp=2, **kw)  # type: ignore[arg-type]
    tp4 = genmodel.estimate("llama-3.1-8b", s, tp=4, **kw)  # type: ignore[arg-type]
    assert tp4.decode.comm_s > 2 * tp2.decode.comm_s  # the all-reduce leaves NVLink for PCIe


def test_gaudi3_mesh_gives_three_ports_per_peer() -> None:
    s = genmodel.load_hardware("gaudi3")
    assert s.id == "hls-gaudi3"
    up = s.fabric[0]
    assert up.group_bandwidth_bytes_per_s(2) == pytest.approx(75e9)
    assert up.group_bandwidth_bytes_per_s(8) == pytest.approx(525e9)
    # the measured matmul throughput (67.7 % of the bf16 peak) scales its GEMM fractions
    assert genmodel.load_device("gaudi3").matmul_scale["bf16"] == pytest.approx(
        1243.0 / 1835 / (794.5 / 989.4)
    )


@pytest.mark.parametrize(
    ("device_id", "dtype", "runs_in"),
    [
        ("tpu-v6e", "fp8", "bf16"),
        ("tpu-v5e", "fp16", "bf16"),
        ("gaudi3", "fp16", "bf16"),
        ("gaudi3", "fp8", "fp8"),
    ],
)
def test_precisions_without_a_published_rate_fall_back(device_id: str, dtype: str, runs_in: str) -> None:
    d = genmodel.load_device(device_id)
    assert d.compute_dtype(dtype) == runs_in
    assert (d.compute_note(dtype) is None) == (dtype == runs_in)


def test_tpu_pod_is_one_ici_domain() -> None:
    v6e = genmodel.load_hardware("tpu-v6e")
    assert v6e.fabric[0].num_domain_devices == 256
    assert v6e.max_devices == 256  # no data-center network tier in the v6e file
    assert genmodel.load_hardware("tpu-v5e").tier_for(257).level == "scale_out"
