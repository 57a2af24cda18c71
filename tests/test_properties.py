"""Laws every answer obeys, over random valid deployments drawn from the database (issue 16, "What
it must show"; issue 14, the simulator's tests): times positive and finite, e2e = ttft +
(output - 1) tpot, monotone in the input and output lengths and the tensor-parallel degree, ``fits``
the same as total <= capacity; and for the simulator, every request completes with every token
counted, Little's law on its records, more clients never lower the mean TTFT, the same seed gives
the same result.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import genmodel

PROPERTIES = settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
#: a relative tolerance for sums of floats computed in another order
REL = 1e-9

MODELS = ["llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b", "qwen2.5-7b", "qwen3-30b-a3b", "mixtral-8x7b"]
HARDWARE = ["h100-sxm", "a100-sxm-80gb", "l40s", "h200-sxm", "mi300x", "ascend-910b", "b200"]
DTYPES = ["bf16", "fp16", "fp8", "int8", "int4"]


@st.composite
def deployments(draw: st.DrawFn) -> dict[str, Any]:
    """A deployment and a workload: model x hardware x plan x dtypes x lengths."""
    model = genmodel.load_model(draw(st.sampled_from(MODELS)))
    tp = draw(st.sampled_from([1, 2, 4, 8]))
    dp = draw(st.sampled_from([1, 2]))
    ep = 1
    if model.moe is not None and draw(st.booleans()):
        ep = tp * dp
    return {
        "model": model.id,
        "hardware": draw(st.sampled_from(HARDWARE)),
        "tp": tp,
        "dp": dp,
        "ep": ep,
        "weight_dtype": draw(st.sampled_from(DTYPES)),
        "kv_dtype": draw(st.sampled_from(["bf16", "fp8"])),
        "input_tokens": draw(st.integers(1, 8000)),
        "output_tokens": draw(st.one_of(st.integers(2, 16), st.integers(2, 2000))),
    }


def _estimate(d: dict[str, Any], **changes: Any) -> genmodel.Estimate | None:
    """The estimate, or None where the deployment cannot run (a plan or memory violation)."""
    try:
        return genmodel.estimate(d.pop("model"), d.pop("hardware"), **d, **changes)
    except genmodel.InfeasibleError:
        return None


def _times_are_sound(e: genmodel.Estimate) -> None:
    for name in ("ttft_s", "tpot_s", "e2e_s"):
        value = getattr(e, name)
        assert math.isfinite(value) and value > 0, (name, value)
    for phase in (e.prefill, e.decode):
        assert math.isfinite(phase.time_s) and phase.time_s > 0, phase
    assert e.e2e_s == pytest.approx(e.ttft_s + (e.output_tokens - 1) * e.tpot_s, rel=REL)
    mem = e.memory
    assert mem.fits == (mem.total_bytes_per_device <= mem.capacity_bytes_per_device)
    # every reported number is finite: the JSON holds no NaN or Infinity
    genmodel.report.to_json(genmodel.report.estimate_dict(e))


@PROPERTIES
@given(d=deployments(), batch=st.integers(1, 64))
def test_static_estimates_are_positive_finite_and_consistent(d: dict[str, Any], batch: int) -> None:
    e = _estimate(dict(d), batch=batch * d["dp"])
    assume(e is not None)
    assert e is not None
    _times_are_sound(e)


@PROPERTIES
@given(d=deployments(), concurrency=st.one_of(st.integers(1, 4), st.integers(1, 256)))
def test_closed_form_serving_is_positive_finite_and_consistent(d: dict[str, Any], concurrency: int) -> None:
    e = _estimate(dict(d), concurrency=concurrency, serving="closed-form")
    assume(e is not None)
    assert e is not None
    _times_are_sound(e)
    assert e.serving is not None and e.serving.request_rate_per_s > 0


def test_one_client_on_many_replicas_is_one_client_on_one() -> None:
    """Found by issue 16's fuzzing: with fewer clients than replicas (1 client, dp=4) the closed
    form gave each replica a quarter of a client, and its prefill share then made TPOT negative
    (-0.074 s). The idle replicas serve nobody: the busy one is a lone client's server."""
    args: dict[str, Any] = {"input_tokens": 4000, "output_tokens": 2, "tp": 2, "weight_dtype": "fp8"}
    args |= {"serving": "closed-form"}
    many = genmodel.estimate("llama-3.2-3b", "l40s", concurrency=1, dp=4, **args)
    one = genmodel.estimate("llama-3.2-3b", "l40s", concurrency=1, dp=1, **args)
    assert many.tpot_s > 0
    assert many.tpot_s == pytest.approx(one.tpot_s, rel=REL)
    assert many.ttft_s == pytest.approx(one.ttft_s, rel=REL)
    assert many.serving is not None and one.serving is not None
    assert many.serving.request_rate_per_s == pytest.approx(one.serving.request_rate_per_s, rel=REL)
