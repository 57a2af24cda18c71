"""Laws every answer obeys, over random valid deployments drawn from the database (issue 16, "What
it must show"; issue 14, the simulator's tests): times positive and finite, e2e = ttft +
(output - 1) tpot, monotone in the input and output lengths and the tensor-parallel degree, ``fits``
the same as total <= capacity; and for the simulator, every request completes with every token
counted, Little's law on its records, more clients never lower the mean TTFT, the same seed gives
the same result.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import genmodel

PROPERTIES = settings(
    max_examples=100,
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


@pytest.mark.parametrize(("dp", "clients"), [(2, 1), (4, 1), (4, 3)])
def test_simulated_clients_on_more_replicas_are_as_many_clients_on_one_each(dp: int, clients: int) -> None:
    """Found by tools/sweep_serving_sanity.py: with the benchmark client's warm-up (the default of a
    simulated estimate) and a dense replica left without a client (1 client, dp=2), the restart
    of the measured phase indexed that replica's warm-up barrier, which had none: IndexError. A
    replica without clients serves nobody; each busy one serves a lone client."""
    args: dict[str, Any] = {"input_tokens": 500, "output_tokens": 50, "requests_per_client": 4}
    many = genmodel.estimate("llama-3.1-8b", "h100-sxm", concurrency=clients, dp=dp, **args)
    one = genmodel.estimate("llama-3.1-8b", "h100-sxm", concurrency=1, dp=1, **args)
    assert many.serving is not None and many.serving.serving_model == "simulated"
    assert many.ttft_s == pytest.approx(one.ttft_s, rel=REL)
    assert many.tpot_s == pytest.approx(one.tpot_s, rel=REL)


@PROPERTIES
@given(d=deployments(), batch=st.integers(1, 16), more=st.integers(1, 4000))
def test_a_longer_prompt_never_lowers_ttft(d: dict[str, Any], batch: int, more: int) -> None:
    short = _estimate(dict(d), batch=batch * d["dp"])
    long = _estimate(dict(d, input_tokens=d["input_tokens"] + more), batch=batch * d["dp"])
    assume(short is not None and long is not None)
    assert short is not None and long is not None
    assert long.ttft_s >= short.ttft_s * (1 - REL)


@PROPERTIES
@given(d=deployments(), batch=st.integers(1, 16), more=st.integers(1, 2000))
def test_more_output_never_lowers_e2e(d: dict[str, Any], batch: int, more: int) -> None:
    short = _estimate(dict(d), batch=batch * d["dp"])
    long = _estimate(dict(d, output_tokens=d["output_tokens"] + more), batch=batch * d["dp"])
    assume(short is not None and long is not None)
    assert short is not None and long is not None
    assert long.e2e_s >= short.e2e_s * (1 - REL)


@PROPERTIES
@given(d=deployments())
def test_more_tensor_parallelism_never_raises_the_weights_per_device(d: dict[str, Any]) -> None:
    d = dict(d, ep=1)
    narrow = _estimate(dict(d), batch=d["dp"])
    wide = _estimate(dict(d, tp=2 * d["tp"]), batch=d["dp"])
    assume(narrow is not None and wide is not None)
    assert narrow is not None and wide is not None
    assert wide.memory.weights_bytes_per_device <= narrow.memory.weights_bytes_per_device * (1 + REL)


@PROPERTIES
@given(d=deployments(), batch=st.integers(1, 32), more=st.integers(1, 32))
def test_a_larger_batch_never_lowers_ttft_or_tpot(d: dict[str, Any], batch: int, more: int) -> None:
    small = _estimate(dict(d), batch=batch * d["dp"])
    large = _estimate(dict(d), batch=(batch + more) * d["dp"])
    assume(small is not None and large is not None)
    assert small is not None and large is not None
    assert large.ttft_s >= small.ttft_s * (1 - REL)
    assert large.tpot_s >= small.tpot_s * (1 - REL)


@PROPERTIES
@given(d=deployments(), batch=st.integers(1, 32), factor=st.floats(1.0, 8.0))
def test_more_memory_bandwidth_never_makes_anything_slower(
    d: dict[str, Any], batch: int, factor: float
) -> None:
    device = genmodel.load_hardware(d["hardware"]).device
    faster = dataclasses.replace(
        device, memory_bandwidth_bytes_per_s=device.memory_bandwidth_bytes_per_s * factor
    )
    base = _estimate(dict(d, hardware=device), batch=batch * d["dp"])
    quick = _estimate(dict(d, hardware=faster), batch=batch * d["dp"])
    assume(base is not None and quick is not None)
    assert base is not None and quick is not None
    assert quick.ttft_s <= base.ttft_s * (1 + REL)
    assert quick.tpot_s <= base.tpot_s * (1 + REL)


# ---------------------------------------------------------------------------------------------
# the serving simulator (issue 14)

SIMULATED = settings(PROPERTIES, max_examples=40)


@st.composite
def serving_loads(draw: st.DrawFn) -> dict[str, Any]:
    """A small deployment under a closed loop: lengths fixed or spread, an engine and a seed."""
    return {
        "model": draw(st.sampled_from(["llama-3.2-1b", "llama-3.1-8b", "qwen3-30b-a3b"])),
        "hardware": draw(st.sampled_from(["h100-sxm", "a100-sxm-80gb", "l40s"])),
        "tp": draw(st.sampled_from([1, 2])),
        "dp": draw(st.sampled_from([1, 2])),
        "input_tokens": draw(st.integers(16, 4000)),
        "output_tokens": draw(st.integers(2, 400)),
        "input_spread": draw(st.sampled_from([0.0, 0.5])),
        "output_spread": draw(st.sampled_from([0.0, 0.5])),
        "engine": draw(st.sampled_from(["vllm", "sglang", "trtllm"])),
        "requests_per_client": draw(st.integers(1, 4)),
        # every request counted (the benchmark client's warm-up would leave some out)
        "warmup_requests": 0,
        "seed": draw(st.integers(0, 2**32)),
    }


def _simulate(load: dict[str, Any], **changes: Any) -> genmodel.SimulationResult | None:
    args = {**load, **changes}
    try:
        return genmodel.simulate(args.pop("model"), args.pop("hardware"), **args)
    except genmodel.InfeasibleError:
        return None


@SIMULATED
@given(load=serving_loads(), clients=st.integers(1, 64))
def test_every_request_completes_and_every_token_is_counted(load: dict[str, Any], clients: int) -> None:
    result = _simulate(load, concurrency=clients, records=True)
    assume(result is not None)
    assert result is not None and result.records is not None
    r = result.records
    assert len(r.arrival_s) == result.requests == clients * load["requests_per_client"]
    times = np.stack([r.arrival_s, r.scheduled_s, r.first_token_s, r.finish_s])
    assert np.isfinite(times).all()
    assert (np.diff(times, axis=0) >= 0).all()  # arrival <= scheduled <= first token <= finish
    assert (r.output_tokens >= 1).all() and (r.input_tokens >= 1).all()
    assert int(r.output_tokens.sum()) == result.generated_tokens
    assert result.simulated_s >= float(r.finish_s.max()) * (1 - REL)
    strict = json.dumps(result.to_dict(), allow_nan=False)  # no NaN or Infinity
    assert strict


@SIMULATED
@given(load=serving_loads(), clients=st.integers(1, 64))
def test_littles_law_holds_on_the_records(load: dict[str, Any], clients: int) -> None:
    """L = lambda W: the time-average of the requests in the system (arrival to finish), integrated
    over the run, equals the completion rate times the mean time in the system; a closed loop
    never holds more requests than it has clients."""
    result = _simulate(load, concurrency=clients, records=True)
    assume(result is not None)
    assert result is not None and result.records is not None
    r = result.records
    start, end = float(r.arrival_s.min()), float(r.finish_s.max())
    events = np.concatenate([r.arrival_s, r.finish_s])
    steps = np.concatenate([np.ones(len(r.arrival_s)), -np.ones(len(r.finish_s))])
    order = np.lexsort((steps, events))  # a finish before an arrival at the same instant
    in_system = np.cumsum(steps[order])
    assert in_system.max() <= clients
    area = float(np.sum(in_system[:-1] * np.diff(events[order])))
    span = end - start
    rate = len(r.arrival_s) / span
    mean_time = float(np.mean(r.finish_s - r.arrival_s))
    assert area / span == pytest.approx(rate * mean_time, rel=1e-6)


@SIMULATED
@given(load=serving_loads(), clients=st.integers(1, 48), more=st.integers(1, 48))
def test_more_clients_never_lower_the_mean_ttft(load: dict[str, Any], clients: int, more: int) -> None:
    few = _simulate(load, concurrency=clients)
    many = _simulate(load, concurrency=clients + more)
    assume(few is not None and many is not None)
    assert few is not None and many is not None
    assert many.ttft_s.mean >= few.ttft_s.mean * (1 - 1e-6)


@SIMULATED
@given(load=serving_loads(), clients=st.integers(1, 64))
def test_the_same_seed_gives_the_same_result(load: dict[str, Any], clients: int) -> None:
    first = _simulate(load, concurrency=clients)
    again = _simulate(load, concurrency=clients)
    assume(first is not None and again is not None)
    assert first is not None and again is not None
    a, b = first.to_dict(), again.to_dict()
    a.pop("elapsed_s"), b.pop("elapsed_s")  # wall time
    assert a == b


@st.composite
def lone_clients(draw: st.DrawFn) -> dict[str, Any]:
    """One client per replica or one fewer, on two dense replicas or two attention-DP ranks in
    lockstep, outputs that vary (the replicas' requests complete at different steps), and a
    warm-up that drains before the measured requests start together."""
    return {
        "model": draw(st.sampled_from(["qwen3-30b-a3b", "llama-3.1-8b"])),
        "hardware": draw(st.sampled_from(["h100-sxm", "h200-sxm"])),
        "tp": draw(st.sampled_from([1, 2])),
        "dp": 2,
        "concurrency": draw(st.sampled_from([1, 2])),
        "input_tokens": draw(st.integers(16, 4000)),
        "output_tokens": draw(st.integers(50, 400)),
        "output_spread": 0.5,
        "engine": draw(st.sampled_from(["vllm", "sglang", "trtllm"])),
        "requests_per_client": draw(st.integers(2, 5)),
        "warmup_requests": 1,
        "seed": draw(st.integers(0, 2**32)),
    }


@SIMULATED
@given(load=lone_clients())
def test_a_client_alone_on_its_replica_waits_at_most_one_step(load: dict[str, Any]) -> None:
    """With at most one client per replica no request queues behind another client's: it waits
    at most for the step under way, one prefill or decode step of a lockstep partner. Found by
    tools/sweep_serving_sanity.py: an attention-DP rank with nothing to decode held its client's
    next request for the other ranks' whole run of decode steps (about 1 s here), and a dense
    replica without a client crashed the warm-up restart."""
    result = _simulate(load, records=True)
    assume(result is not None)
    assert result is not None and result.records is not None
    r = result.records
    queue = r.scheduled_s - r.arrival_s
    prefill = r.first_token_s - r.scheduled_s
    decode = (r.finish_s - r.first_token_s) / np.maximum(r.output_tokens - 1, 1)
    assert float(queue.max()) <= float(prefill.max()) + 2 * float(decode.max()) + 1e-9
