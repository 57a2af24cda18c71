"""Measured achievable memory bandwidth: a device whose memory reaches a smaller share of its peak in
a streaming benchmark than the devices the shared memory fraction was fitted on streams that much
slower (genmodel._achievable.memory_scale; hardware_db/EFFICIENCY.md, "Achievable memory bandwidth")."""

from __future__ import annotations

import dataclasses

import pydantic
import pytest

import genmodel
from genmodel import SpecError
from genmodel._achievable import REFERENCE_MEMORY_FRAC, memory_scale
from genmodel._ops import Rates
from genmodel._workload import Precision
from genmodel.io._load import device_from_yaml, load_device_yaml
from genmodel.io._schema import LocalMemoryY

BF16 = Precision(weight_dtype="bf16", act_dtype="bf16", kv_dtype="bf16")
FP8 = Precision(weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")
TB = 1e12


def _share(device_id: str) -> float:
    local = load_device_yaml(device_id).memory.local
    assert local.achievable_tb_per_s is not None, device_id
    return local.achievable_tb_per_s / local.bandwidth_tb_per_s


def test_the_reference_is_the_lowest_share_the_memory_fraction_was_fitted_on() -> None:
    """memory_frac was fitted on A100, H100 and H200 cases: the reference is the lowest of their
    measured shares (the A100's), so none of them moves, and the H100 and H200 stay above it."""
    assert pytest.approx(_share("a100-sxm-80gb")) == REFERENCE_MEMORY_FRAC
    assert (
        pytest.approx(min(_share(d) for d in ("a100-sxm-80gb", "h100-sxm", "h200-sxm")))
        == REFERENCE_MEMORY_FRAC
    )
    assert _share("h100-sxm") == pytest.approx(2.97 / 3.35)
    for device_id in ("a100-sxm-80gb", "h100-sxm", "h200-sxm"):
        assert genmodel.load_device(device_id).memory_scale == 1.0, device_id


def test_memory_scale_caps_at_one_and_rejects_impossible_figures() -> None:
    assert memory_scale(4 * TB, None) == 1.0
    assert memory_scale(4 * TB, 3.9 * TB) == 1.0  # above the reference share: the shared fraction, not more
    assert memory_scale(4 * TB, 2 * TB) == pytest.approx(0.5 / REFERENCE_MEMORY_FRAC)
    with pytest.raises(SpecError, match="at most the peak"):
        memory_scale(4 * TB, 4.1 * TB)
    with pytest.raises(SpecError, match="memory_scale"):
        dataclasses.replace(genmodel.load_device("h100-sxm"), memory_scale=1.5)  # a shortfall, never a gain


def test_a_figure_needs_its_source_and_stays_under_the_peak() -> None:
    local = load_device_yaml("mi300x").memory.local.model_dump()
    with pytest.raises(pydantic.ValidationError, match="achievable_source"):
        LocalMemoryY.model_validate({**local, "achievable_source": None})
    y = load_device_yaml("mi300x")
    above = y.model_copy(
        update={
            "memory": y.memory.model_copy(
                update={"local": LocalMemoryY.model_validate({**local, "achievable_tb_per_s": 6.0})}
            )
        }
    )
    with pytest.raises(SpecError, match="at most the peak"):
        device_from_yaml(above)


@pytest.mark.parametrize("device_id", ["mi325x", "mi355x", "b200", "jetson-agx-orin-64gb"])
def test_a_device_without_the_figure_is_unscaled(device_id: str) -> None:
    d = genmodel.load_device(device_id)
    assert load_device_yaml(device_id).memory.local.achievable_tb_per_s is None
    assert d.memory_scale == 1.0
    rates = Rates.of(d, BF16)
    assert rates.memory_bytes_per_s == pytest.approx(
        d.memory_bandwidth_bytes_per_s * d.efficiency.memory_frac
    )


def test_mi300x_streams_at_its_measured_share_and_ideal_ignores_it() -> None:
    """BabelStream triad: 4.10 of 5.3 TB/s (77.4 %) against the A100's 1.70 of 2.039 (83.4 %)."""
    d = genmodel.load_device("mi300x")
    scale = (4.10 / 5.3) / (1.70 / 2.039)
    assert d.memory_scale == pytest.approx(scale)
    rates = Rates.of(d, FP8)
    assert rates.memory_bytes_per_s == pytest.approx(5.3 * TB * d.efficiency.memory_frac * scale)
    # the routed experts stream at the same (scaled) rate times their own fraction
    assert rates.expert_memory_bytes_per_s == pytest.approx(
        rates.memory_bytes_per_s * d.efficiency.expert_memory_frac
    )
    assert d.ideal().memory_scale == 1.0
    assert Rates.of(d.ideal(), FP8).memory_bytes_per_s == pytest.approx(5.3 * TB)


def test_a_memory_bound_mi300x_decode_step_slows_by_the_scale() -> None:
    """Batch-1 decode of Llama-3.1-8B streams its weights and KV cache: without the fixed step
    overhead, the step takes exactly 1/scale as long as it would at the shared fraction alone."""
    d = genmodel.load_device("mi300x")
    d = dataclasses.replace(d, efficiency=dataclasses.replace(d.efficiency, step_overhead_s=0.0))
    unscaled = dataclasses.replace(d, memory_scale=1.0)
    kw = {"input_tokens": 1024, "output_tokens": 128, "batch": 1}
    slow = genmodel.estimate("llama-3.1-8b", d, **kw).tpot_s
    fast = genmodel.estimate("llama-3.1-8b", unscaled, **kw).tpot_s
    assert slow / fast == pytest.approx(1 / d.memory_scale, rel=1e-3)
    # --ideal ignores the measurement: both give the same pure roofline
    assert genmodel.estimate("llama-3.1-8b", d, ideal=True, **kw).tpot_s == pytest.approx(
        genmodel.estimate("llama-3.1-8b", unscaled, ideal=True, **kw).tpot_s
    )
