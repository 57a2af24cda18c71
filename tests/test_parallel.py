"""genmodel._parallel and genmodel._collectives: plans, their feasibility, collective costs."""

from __future__ import annotations

import dataclasses

import pint
import pytest
from hypothesis import given
from hypothesis import strategies as st

import genmodel
from genmodel import InfeasibleError, Plan, SpecError, System, allreduce_time, p2p_time, plan_violations
from genmodel._parallel import check_plan


def _sys(d: genmodel.Device) -> System:
    return System.of_device(d)


def test_plan_counts_devices_and_rejects_non_positive_degrees() -> None:
    assert Plan(tp=4, pp=2, dp=3).num_devices == 24
    assert Plan().num_devices == 1
    with pytest.raises(SpecError, match="tp=0"):
        Plan(tp=0)
    with pytest.raises(SpecError, match=r"pp=1\.5"):
        Plan(pp=1.5)  # type: ignore[arg-type]


def test_plan_violations_name_the_failing_divisibility() -> None:
    h100 = genmodel.load_device("h100-sxm")
    llama8 = genmodel.load_model("llama-3.1-8b")  # 32 heads, 8 KV heads, 32 layers
    assert plan_violations(Plan(tp=8), llama8, h100) == []
    assert any(
        "tp=3 must divide num_attention_heads=32" in v for v in plan_violations(Plan(tp=3), llama8, h100)
    )
    assert any(
        "tp=64 must divide num_attention_heads=32" in v for v in plan_violations(Plan(tp=64), llama8, h100)
    )
    assert any("pp=33" in v for v in plan_violations(Plan(pp=33), llama8, h100))
    assert any("dense" in v for v in plan_violations(Plan(tp=2, ep=2), llama8, h100))
    ds = genmodel.load_model("deepseek-v3")
    assert any(
        "ep=512 must be <= num_experts=256" in v for v in plan_violations(Plan(dp=512, ep=512), ds, h100)
    )
    assert any("tp*dp" in v for v in plan_violations(Plan(tp=2, ep=4), ds, h100))
    with pytest.raises(InfeasibleError) as info:
        check_plan(Plan(tp=3), llama8, h100)
    assert len(info.value.violations) >= 1


def test_tp_above_kv_heads_must_be_a_multiple_of_them() -> None:
    h100 = genmodel.load_device("h100-sxm")
    llama = genmodel.load_model("llama-3.1-8b")
    attention = dataclasses.replace(llama.attention, num_attention_heads=48, num_kv_heads=4)
    toy = dataclasses.replace(llama, attention=attention)
    assert plan_violations(Plan(tp=8), toy, h100) == []
    assert any("multiple of num_kv_heads=4" in v for v in plan_violations(Plan(tp=6), toy, h100))


def test_allreduce_time_is_the_ring_alpha_beta_formula() -> None:
    d = genmodel.load_device("h100-sxm")
    assert d.scale_up is not None
    link, eff = d.scale_up, d.efficiency
    size = 16e6
    for n in (2, 4, 8):
        expected = (
            eff.collective_latency_s
            + 2 * (n - 1) * link.latency_s
            + 2 * (n - 1) / n * size / (link.bandwidth_bytes_per_s * eff.collective_bus_frac)
        )
        assert allreduce_time(size, n, _sys(d)) == pytest.approx(expected)
    assert allreduce_time(size, 1, _sys(d)) == pytest.approx(0.0)


def test_groups_beyond_the_scale_up_domain_use_the_scale_out_link() -> None:
    d = genmodel.load_device("h100-sxm")
    assert d.scale_up is not None
    assert d.scale_out is not None
    system = _sys(d)
    assert system.tier_for(8).name == d.scale_up.name
    assert system.tier_for(16).name == d.scale_out.name
    assert allreduce_time(1e8, 16, system) > allreduce_time(1e8, 8, system)
    bare = dataclasses.replace(d, scale_up=None, scale_out=None)
    assert _sys(bare).max_devices == 1  # a device without links runs alone


def test_p2p_time() -> None:
    d = genmodel.load_device("h100-sxm")
    assert d.scale_up is not None
    link = d.scale_up
    eff = d.efficiency
    expected = (
        eff.collective_latency_s
        + link.latency_s
        + 1e6 / (link.bandwidth_bytes_per_s * eff.collective_bus_frac)
    )
    assert p2p_time(1e6, _sys(d), group_devices=2) == pytest.approx(expected)


@given(
    size=st.floats(min_value=1.0, max_value=1e10),
    n=st.integers(min_value=1, max_value=64),
    factor=st.floats(min_value=1.0, max_value=100.0),
)
def test_more_link_bandwidth_never_slows_a_collective(size: float, n: int, factor: float) -> None:
    d = genmodel.load_device("h100-sxm")
    assert d.scale_up is not None
    assert d.scale_out is not None
    fast = dataclasses.replace(
        d,
        scale_up=dataclasses.replace(
            d.scale_up, bandwidth_bytes_per_s=d.scale_up.bandwidth_bytes_per_s * factor
        ),
        scale_out=dataclasses.replace(
            d.scale_out, bandwidth_bytes_per_s=d.scale_out.bandwidth_bytes_per_s * factor
        ),
    )
    assert allreduce_time(size, n, _sys(fast)) <= allreduce_time(size, n, _sys(d))
    assert allreduce_time(2 * size, n, _sys(d)) >= allreduce_time(size, n, _sys(d))


@pytest.fixture
def ureg_device() -> tuple[pint.UnitRegistry, genmodel.Device]:
    u = pint.UnitRegistry()
    u.define("databyte = [data]")  # pint's byte is dimensionless; give bytes a dimension of their own
    d = genmodel.load_device("h100-sxm")
    assert d.scale_up is not None
    up = dataclasses.replace(
        d.scale_up,
        bandwidth_bytes_per_s=d.scale_up.bandwidth_bytes_per_s * u.databyte / u.s,
        latency_s=d.scale_up.latency_s * u.s,
    )
    assert d.scale_out is not None
    out = dataclasses.replace(
        d.scale_out,
        bandwidth_bytes_per_s=d.scale_out.bandwidth_bytes_per_s * u.databyte / u.s,
        latency_s=d.scale_out.latency_s * u.s,
    )
    eff = dataclasses.replace(
        d.efficiency,
        collective_latency_s=d.efficiency.collective_latency_s * u.s,
        step_overhead_s=d.efficiency.step_overhead_s * u.s,
    )
    return u, dataclasses.replace(
        d,
        scale_up=up,
        scale_out=out,
        efficiency=eff,
        memory_capacity_bytes=d.memory_capacity_bytes * u.databyte,
        memory_bandwidth_bytes_per_s=d.memory_bandwidth_bytes_per_s * u.databyte / u.s,
    )


@pytest.mark.parametrize("n", [1, 2, 8, 16])
def test_allreduce_time_has_the_dimension_of_time(
    ureg_device: tuple[pint.UnitRegistry, genmodel.Device], n: int
) -> None:
    u, d = ureg_device
    t = allreduce_time(4e6 * u.databyte, n, _sys(d))
    # a single device costs zero *seconds*, not zero bytes
    assert t.dimensionality == u.s.dimensionality
    h100 = genmodel.load_device("h100-sxm")
    assert t.to(u.s).magnitude == pytest.approx(allreduce_time(4e6, n, _sys(h100)))
