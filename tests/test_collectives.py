"""genmodel._collectives: alpha-beta collective costs per algorithm, hierarchical over fabric tiers,
on meshes, and the laws "more bandwidth is never slower", "more bytes are never faster", "one device
costs nothing"."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

import genmodel
from genmodel import (
    FabricTier,
    SpecError,
    System,
    allgather_time,
    allreduce_time,
    alltoall_time,
    p2p_time,
    reduce_scatter_time,
)
from genmodel._collectives import NVLS_MIN_BYTES

# hardware_db/systems/dgx-h100.yaml and devices/h100-sxm.yaml, in SI units
C_S = 8e-6  # efficiency.collective_latency_us: 8
NVLINK_B = 450e9 * 0.82  # NVLink 4: bandwidth_gb_per_s 450, bus_frac 0.82
NVLINK_A = 1e-6  # latency_us 1.0
NVLS_B = 450e9 * 1.07  # nvls_bus_frac 1.07 (~480 GB/s NVLS all-reduce busbw on 8 GPUs)
IB_B = 50e9 * 0.94  # InfiniBand NDR: bandwidth_gb_per_s 50, bus_frac 0.94
IB_A = 5e-6  # latency_us 5.0
NODE = 8  # domain_devices of the NVLink tier

SIZE = 64e6  # a 64 MB message


@pytest.fixture(scope="module")
def dgx() -> System:
    s = genmodel.load_system("dgx-h100")
    up, out = s.fabric
    # the hand computations below use these numbers: fail loudly if the database moves
    assert s.device.efficiency.collective_latency_s == pytest.approx(C_S)
    assert up.bandwidth_bytes_per_s * s.bus_frac(up) == pytest.approx(NVLINK_B)
    assert up.latency_s == pytest.approx(NVLINK_A)
    assert up.num_domain_devices == NODE
    assert out.bandwidth_bytes_per_s * s.bus_frac(out) == pytest.approx(IB_B)
    assert out.latency_s == pytest.approx(IB_A)
    assert out.num_domain_devices is None
    return s


def _ring_ar(size: float, n: int, b: float, a: float) -> float:
    return 2 * (n - 1) * a + 2 * (n - 1) / n * size / b


def _ring_half(size: float, n: int, b: float, a: float) -> float:
    return (n - 1) * a + (n - 1) / n * size / b


# ---- one tier ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 4, 8])
def test_allreduce_algorithms_inside_one_node(dgx: System, n: int) -> None:
    ring = C_S + 2 * (n - 1) * NVLINK_A + 2 * (n - 1) / n * SIZE / NVLINK_B
    tree = C_S + 2 * math.ceil(math.log2(n)) * NVLINK_A + 2 * SIZE / NVLINK_B
    direct = C_S + 2 * NVLINK_A + 2 * (n - 1) / n * SIZE / NVLINK_B
    nvls = C_S + 2 * (n - 1) * NVLINK_A + 2 * (n - 1) / n * SIZE / NVLS_B if n >= 8 else ring
    assert allreduce_time(SIZE, n, dgx) == pytest.approx(nvls)  # nvls is the default
    assert allreduce_time(SIZE, n, dgx, algorithm="ring") == pytest.approx(ring)
    assert allreduce_time(SIZE, n, dgx, algorithm="tree") == pytest.approx(tree)
    assert allreduce_time(SIZE, n, dgx, algorithm="direct") == pytest.approx(direct)
    assert allreduce_time(SIZE, n, dgx, algorithm="auto") == pytest.approx(min(ring, tree, direct, nvls))


@pytest.mark.parametrize("size", [1e3, 1e6, 1e9])
def test_auto_picks_the_fastest_algorithm_at_every_size(dgx: System, size: float) -> None:
    times = {a: allreduce_time(size, 8, dgx, algorithm=a) for a in ("ring", "tree", "direct", "nvls")}
    assert allreduce_time(size, 8, dgx, algorithm="auto") == pytest.approx(min(times.values()))
    # on one switch the direct (two-shot) all-reduce pays fewer hops than the ring for the same bytes
    assert times["direct"] < times["ring"]


def test_nvls_runs_at_the_bandwidth_of_the_tier_the_group_spans(dgx: System) -> None:
    """NVLS, like ring, takes the bandwidth of the tier the group's flat all-reduce runs on (a
    switch, where the group's bandwidth is the tier's): twice the scale-up bandwidth halves its
    bandwidth term, the scale-out tier and the device's memory leave it alone, and a group over
    two nodes reduces in each node's domain by ring and across them over InfiniBand."""
    big = 134e6
    fixed = C_S + 14 * NVLINK_A
    base = allreduce_time(big, 8, dgx) - fixed
    assert allreduce_time(big, 8, dgx.scaled(scale_up_bandwidth=2)) - fixed == pytest.approx(base / 2)
    assert allreduce_time(big, 8, dgx.scaled(scale_out_bandwidth=2, memory_bandwidth=2)) == pytest.approx(
        base + fixed
    )
    assert dgx.fabric[0].group_bandwidth_bytes_per_s(8) == dgx.fabric[0].bandwidth_bytes_per_s
    assert allreduce_time(big, 16, dgx) == allreduce_time(big, 16, dgx, algorithm="ring")


def test_nvls_speeds_up_only_large_all_reduces_over_eight_gpus(dgx: System) -> None:
    # NVLink SHARP (nccl-tests busbw ~480 vs ring ~370 GB/s on 8x H100): large messages over 8 GPUs
    big = 134e6  # one 8192-token prefill activation of an 8192-wide model in 16 bits
    ring, nvls = (allreduce_time(big, 8, dgx, algorithm=a) for a in ("ring", "nvls"))
    assert nvls == pytest.approx(C_S + 14 * NVLINK_A + 1.75 * big / NVLS_B)
    assert ring / nvls == pytest.approx(1.07 / 0.82, rel=0.02)
    # smaller groups (busbw = ring's on 2-4 GPUs), small messages (engines' own kernels, NCCL's
    # ring LL), reduce-scatter and all-gather (NVLS is slower there) and a tier without NVLS: ring
    for n in (2, 4):
        assert allreduce_time(big, n, dgx) == allreduce_time(big, n, dgx, algorithm="ring")
    assert allreduce_time(1e6, 8, dgx) == allreduce_time(1e6, 8, dgx, algorithm="ring")
    assert allgather_time(big, 8, dgx, algorithm="nvls") == allgather_time(big, 8, dgx, algorithm="ring")
    a100 = genmodel.load_system("dgx-a100")
    assert a100.fabric[0].nvls_bus_frac is None
    assert allreduce_time(big, 8, a100) == allreduce_time(big, 8, a100, algorithm="ring")
    # just above the threshold the time does not drop below the largest ring-costed message's
    below = allreduce_time(NVLS_MIN_BYTES * (1 - 1e-9), 8, dgx)
    assert allreduce_time(NVLS_MIN_BYTES, 8, dgx) >= below


def test_nvls_bus_frac_needs_a_switch() -> None:
    with pytest.raises(SpecError, match="nvls_bus_frac"):
        FabricTier(name="m", topology="mesh", bandwidth_bytes_per_s=1e9, num_links=7, nvls_bus_frac=1.0)
    with pytest.raises(SpecError, match="nvls_bus_frac"):
        FabricTier(name="s", bandwidth_bytes_per_s=1e9, nvls_bus_frac=2.5)


@pytest.mark.parametrize("n", [2, 4, 8])
def test_allgather_and_reduce_scatter_are_half_an_allreduce(dgx: System, n: int) -> None:
    ring = C_S + (n - 1) * NVLINK_A + (n - 1) / n * SIZE / NVLINK_B
    assert allgather_time(SIZE, n, dgx) == pytest.approx(ring)
    assert reduce_scatter_time(SIZE, n, dgx) == pytest.approx(ring)
    assert allgather_time(SIZE, n, dgx, algorithm="tree") == pytest.approx(
        C_S + math.ceil(math.log2(n)) * NVLINK_A + SIZE / NVLINK_B
    )
    assert allgather_time(SIZE, n, dgx, algorithm="direct") == pytest.approx(
        C_S + NVLINK_A + (n - 1) / n * SIZE / NVLINK_B
    )
    # ring all-reduce = reduce-scatter + all-gather, paying the call cost once
    assert allreduce_time(SIZE, n, dgx, algorithm="ring") == pytest.approx(
        reduce_scatter_time(SIZE, n, dgx) + allgather_time(SIZE, n, dgx) - C_S
    )


def test_unknown_algorithm_is_named() -> None:
    s = genmodel.load_system("dgx-h100")
    for f in (allreduce_time, allgather_time, reduce_scatter_time):
        with pytest.raises(SpecError, match="algorithm='butterfly'"):
            f(SIZE, 4, s, algorithm="butterfly")


# ---- hierarchical: groups that span nodes ------------------------------------------------------


def test_allreduce_over_two_nodes_is_hierarchical(dgx: System) -> None:
    intra_rs = _ring_half(SIZE, NODE, NVLINK_B, NVLINK_A)  # reduce-scatter over the node's NVLink
    inter_ar = _ring_ar(SIZE / NODE, 2, IB_B, IB_A)  # 8 parallel rings over IB, one shard each
    expected = C_S + 2 * intra_rs + inter_ar  # ... then the all-gather inside the node again
    assert allreduce_time(SIZE, 16, dgx) == pytest.approx(expected)
    assert allreduce_time(SIZE, 16, dgx) > allreduce_time(SIZE, 8, dgx)


def test_allgather_and_reduce_scatter_over_two_nodes_are_hierarchical(dgx: System) -> None:
    expected = C_S + _ring_half(SIZE, NODE, NVLINK_B, NVLINK_A) + _ring_half(SIZE / NODE, 2, IB_B, IB_A)
    assert allgather_time(SIZE, 16, dgx) == pytest.approx(expected)
    assert reduce_scatter_time(SIZE, 16, dgx) == pytest.approx(expected)
    assert allgather_time(SIZE, 16, dgx) > allgather_time(SIZE, 8, dgx)


def test_alltoall_over_two_nodes_splits_its_bytes_between_the_tiers(dgx: System) -> None:
    n = 16
    inter = SIZE * (n - NODE) / (n - 1)  # bytes for the 8 peers in the other node
    intra = SIZE - inter  # bytes for the 7 peers in this node
    expected = C_S + IB_A + max(intra / NVLINK_B, inter / IB_B)
    assert alltoall_time(SIZE, n, dgx) == pytest.approx(expected)
    assert alltoall_time(SIZE, n, dgx) > alltoall_time(SIZE, 8, dgx)
    # explicit scale-out bytes (EP dispatch): every byte crosses NVLink, the given part also IB
    given_out = SIZE / 4
    assert alltoall_time(SIZE, n, dgx, scale_out_bytes=given_out) == pytest.approx(
        C_S + IB_A + max(SIZE / NVLINK_B, given_out / IB_B)
    )


def test_alltoall_inside_one_node_uses_only_nvlink(dgx: System) -> None:
    for n in (2, 4, 8):
        assert alltoall_time(SIZE, n, dgx) == pytest.approx(C_S + NVLINK_A + SIZE / NVLINK_B)


@pytest.mark.parametrize("collective", [allreduce_time, allgather_time, reduce_scatter_time, alltoall_time])
def test_a_group_spanning_nodes_costs_more_than_the_same_group_inside_one(
    dgx: System, collective: Callable[..., float]
) -> None:
    # the same 16 devices behind one 16-device NVLink switch (an NVL16-like domain)
    up, out = dgx.fabric
    nvl16 = dataclasses.replace(dgx, fabric=(dataclasses.replace(up, num_domain_devices=16), out))
    assert nvl16.tier_index(16) == 0
    assert dgx.tier_index(16) == 1
    big = 1e9  # large enough for bandwidth to decide (a ring's hop count favours small hierarchies)
    assert collective(big, 16, dgx) > collective(big, 16, nvl16)


def test_tier_lookup(dgx: System) -> None:
    up, out = dgx.fabric
    assert [dgx.tier_index(n) for n in (1, 2, 8, 9, 16, 1024)] == [0, 0, 0, 1, 1, 1]
    assert dgx.tier_for(8) is up
    assert dgx.tier_for(9) is out
    assert dgx.bus_frac(up) == pytest.approx(0.82)
    ideal = dgx.ideal()
    assert all(ideal.bus_frac(t) == pytest.approx(1.0) for t in ideal.fabric)
    assert ideal.device.efficiency.collective_latency_s == pytest.approx(0.0)
    assert allreduce_time(SIZE, 16, ideal) < allreduce_time(SIZE, 16, dgx)


# ---- mesh ---------------------------------------------------------------------------------------


def test_mesh_group_uses_one_link_per_peer() -> None:
    mi = genmodel.load_system("mi300x-platform")
    xgmi = mi.fabric[0]
    assert xgmi.topology == "mesh"
    assert xgmi.num_links == 7
    aggregate = xgmi.bandwidth_bytes_per_s
    assert aggregate == pytest.approx(448e9)
    assert xgmi.group_bandwidth_bytes_per_s(4) == pytest.approx(aggregate * 3 / 7)
    assert xgmi.group_bandwidth_bytes_per_s(8) == pytest.approx(aggregate)
    assert xgmi.group_bandwidth_bytes_per_s(2) == pytest.approx(aggregate / 7)
    assert xgmi.peer_bandwidth_bytes_per_s() == pytest.approx(aggregate / 7)
    c = mi.device.efficiency.collective_latency_s
    bus = mi.bus_frac(xgmi)
    assert bus == pytest.approx(0.75)
    # p2p inside the node: one 64 GB/s link
    assert p2p_time(SIZE, mi, group_devices=8) == pytest.approx(
        c + xgmi.latency_s + SIZE / (aggregate / 7 * bus)
    )
    # a 4-device ring all-reduce drives 3 of the 7 links
    assert allreduce_time(SIZE, 4, mi) == pytest.approx(
        c + _ring_ar(SIZE, 4, aggregate * 3 / 7 * bus, xgmi.latency_s)
    )


def test_switch_tier_gives_every_group_the_full_port() -> None:
    tier = FabricTier(name="sw", bandwidth_bytes_per_s=100e9, num_domain_devices=8)
    assert [tier.group_bandwidth_bytes_per_s(n) for n in (2, 4, 8)] == pytest.approx([100e9] * 3)
    with pytest.raises(SpecError, match="num_links"):
        FabricTier(name="m", topology="mesh", bandwidth_bytes_per_s=100e9)


def test_p2p_uses_the_tier_the_group_needs(dgx: System) -> None:
    assert p2p_time(SIZE, dgx, group_devices=8) == pytest.approx(C_S + NVLINK_A + SIZE / NVLINK_B)
    assert p2p_time(SIZE, dgx, group_devices=16) == pytest.approx(C_S + IB_A + SIZE / IB_B)


# ---- laws ---------------------------------------------------------------------------------------

SYSTEM_IDS = genmodel.list_ids("system")
COLLECTIVES = ("allreduce", "allgather", "reduce_scatter", "alltoall", "alltoall_split", "p2p")


def _time(kind: str, size: float, n: int, system: System, algorithm: str) -> float:
    if kind == "allreduce":
        return float(allreduce_time(size, n, system, algorithm=algorithm))
    if kind == "allgather":
        return float(allgather_time(size, n, system, algorithm=algorithm))
    if kind == "reduce_scatter":
        return float(reduce_scatter_time(size, n, system, algorithm=algorithm))
    if kind == "alltoall":
        return float(alltoall_time(size, n, system))
    if kind == "alltoall_split":
        return float(alltoall_time(size, n, system, scale_out_bytes=size / 3))
    return float(p2p_time(size, system, group_devices=n))


def _faster(system: System, factor: float) -> System:
    return dataclasses.replace(
        system,
        fabric=tuple(
            dataclasses.replace(t, bandwidth_bytes_per_s=t.bandwidth_bytes_per_s * factor)
            for t in system.fabric
        ),
    )


@given(
    system_id=st.sampled_from(SYSTEM_IDS),
    kind=st.sampled_from(COLLECTIVES),
    algorithm=st.sampled_from(genmodel.ALGORITHMS),
    size=st.floats(min_value=1.0, max_value=1e11),
    n=st.integers(min_value=1, max_value=512),
    factor=st.floats(min_value=1.0, max_value=100.0),
)
def test_more_bandwidth_never_slows_a_collective(
    system_id: str, kind: str, algorithm: str, size: float, n: int, factor: float
) -> None:
    s = genmodel.load_system(system_id)
    slow = _time(kind, size, n, s, algorithm)
    fast = _time(kind, size, n, _faster(s, factor), algorithm)
    assert fast <= slow * (1 + 1e-12)


@given(
    system_id=st.sampled_from(SYSTEM_IDS),
    kind=st.sampled_from(COLLECTIVES),
    algorithm=st.sampled_from(genmodel.ALGORITHMS),
    size=st.floats(min_value=0.0, max_value=1e11),
    extra=st.floats(min_value=0.0, max_value=1e11),
    n=st.integers(min_value=1, max_value=512),
)
def test_bigger_messages_are_never_faster(
    system_id: str, kind: str, algorithm: str, size: float, extra: float, n: int
) -> None:
    s = genmodel.load_system(system_id)
    assert _time(kind, size + extra, n, s, algorithm) >= _time(kind, size, n, s, algorithm) * (1 - 1e-12)


@given(
    system_id=st.sampled_from(SYSTEM_IDS),
    algorithm=st.sampled_from(genmodel.ALGORITHMS),
    size=st.floats(min_value=0.0, max_value=1e11),
)
def test_one_device_costs_nothing(system_id: str, algorithm: str, size: float) -> None:
    s = genmodel.load_system(system_id)
    assert allreduce_time(size, 1, s, algorithm=algorithm) == pytest.approx(0.0)
    assert allgather_time(size, 1, s, algorithm=algorithm) == pytest.approx(0.0)
    assert reduce_scatter_time(size, 1, s, algorithm=algorithm) == pytest.approx(0.0)
    assert alltoall_time(size, 1, s) == pytest.approx(0.0)
    assert alltoall_time(size, 1, s, scale_out_bytes=size) == pytest.approx(0.0)
    if size > 0:  # two devices always pay something
        assert allreduce_time(size, 2, s, algorithm=algorithm) > 0
        assert alltoall_time(size, 2, s) > 0


@given(
    system_id=st.sampled_from(SYSTEM_IDS),
    kind=st.sampled_from(COLLECTIVES),
    size=st.floats(min_value=1.0, max_value=1e11),
    n=st.integers(min_value=2, max_value=512),
)
def test_auto_is_never_slower_than_the_default_ring(system_id: str, kind: str, size: float, n: int) -> None:
    s = genmodel.load_system(system_id)
    assert _time(kind, size, n, s, "auto") <= _time(kind, size, n, s, "ring") * (1 + 1e-12)
