"""The serving mode (estimate with concurrency=N): continuous batching in a closed loop.

These are the closed form's laws, so the estimates here ask for ``serving="closed-form"`` (the
default of ``estimate`` is the simulation, tested in tests/test_simulate.py).

Laws checked: Little's law over the whole loop, the queueing limits (one client sees no queue;
clients beyond the KV memory wait), monotonicity in the load, and that the array form of a step
(used by the plan search) equals the scalar one element by element.
"""

from __future__ import annotations

import numpy as np
import pytest

import genmodel
from genmodel import Plan, RunOptions, default_precision
from genmodel._forwardpass import step_cost, step_terms
from genmodel._servingpoint import serving_at_batch, serving_point, ttft_quantile_s
from genmodel.io import load_hardware, load_model
from genmodel.report import estimate_dict

KW = {"input_tokens": 2000, "output_tokens": 200, "weight_dtype": "fp8", "serving": "closed-form"}


def test_littles_law_holds_over_the_loop() -> None:
    est = genmodel.estimate("llama-3.1-70b", "h100-sxm", tp=4, dp=2, concurrency=64, **KW)
    s = est.serving
    assert s is not None and est.mode == "concurrency" and est.batch == 64
    cycle = est.ttft_s + (est.output_tokens - 1) * est.tpot_s
    assert s.request_rate_per_s * cycle == pytest.approx(64, rel=1e-6)
    assert est.output_tokens_per_s == pytest.approx(s.request_rate_per_s * est.output_tokens, rel=1e-6)
    assert 0 < s.decode_batch < 64 and 0 < s.prefill_busy_frac < 1
    assert estimate_dict(est)["serving"]["concurrency"] == 64


def test_one_client_sees_its_own_prefill_and_bare_steps() -> None:
    # (fresh prompts: a replayed warm-up prompt is a cache hit, quicker than a prefill)
    est = genmodel.estimate("llama-3.1-8b", "h100-sxm", concurrency=1, warmup_replay=False, **KW)
    s = est.serving
    assert s is not None
    # alone, a request never queues: TTFT is its prefill plus at most the step under way
    assert est.prefill.time_s <= est.ttft_s <= est.prefill.time_s + est.decode.time_s
    # its decode steps are interrupted by nobody else's prefill
    assert est.tpot_s == pytest.approx(est.decode.time_s, rel=1e-3)


def test_more_clients_raise_throughput_and_latency() -> None:
    runs = [genmodel.estimate("llama-3.1-70b", "h200-sxm", tp=2, concurrency=n, **KW) for n in (1, 4, 16, 64)]
    rates = [r.output_tokens_per_s for r in runs]
    assert rates == sorted(rates) and rates[-1] > 4 * rates[0]
    assert [r.tpot_s for r in runs] == sorted(r.tpot_s for r in runs)
    assert [r.ttft_s for r in runs] == sorted(r.ttft_s for r in runs)


def test_clients_beyond_the_kv_memory_wait_for_a_slot() -> None:
    # (32,000-token prompts no longer fit beside vLLM's profile run, genmodel._kvpool: the simulation
    # refused them already)
    kw = {"input_tokens": 28000, "output_tokens": 1000, "serving": "closed-form"}
    runs = [genmodel.estimate("llama-3.1-70b", "h100-sxm", tp=2, concurrency=n, **kw) for n in (400, 800)]
    for r in runs:
        assert r.serving is not None and r.serving.kv_limited
        assert r.serving.decode_batch == pytest.approx(r.serving.max_running)
    # the running batch is capped, so the extra clients only add waiting time
    a, b = runs
    assert b.output_tokens_per_s == pytest.approx(a.output_tokens_per_s, rel=1e-9)
    assert b.ttft_s > 2 * a.ttft_s


def test_serving_rejects_a_prefill_only_loop_and_disaggregation() -> None:
    with pytest.raises(genmodel.SpecError, match="output_tokens=1"):
        genmodel.estimate("llama-3.1-8b", "h100-sxm", concurrency=4, input_tokens=10, output_tokens=1)
    with pytest.raises(genmodel.SpecError, match="disaggregated"):
        genmodel.estimate("llama-3.1-8b", "h100-sxm", concurrency=4, disaggregated=True, **KW)


def test_serving_point_limits_and_quantiles() -> None:
    alone = serving_point(prefill_s=0.1, step_s=0.01, decode_batch=1.0, output_tokens=100, clients=1.0)
    assert float(alone.itl_s) == pytest.approx(0.01) and float(alone.wait_s) == 0
    assert float(alone.clients) == pytest.approx(1.0)
    heavy = serving_at_batch(prefill_s=0.1, step_s=0.01, decode_batch=50.0, output_tokens=100)
    assert 0 < float(heavy.prefill_busy_frac) < 1 and float(heavy.clients) > 50
    again = serving_point(
        prefill_s=0.1, step_s=0.01, decode_batch=50.0, output_tokens=100, clients=heavy.clients
    )
    assert float(again.clients) == pytest.approx(float(heavy.clients), rel=1e-12)
    p50, p90, p99 = (float(ttft_quantile_s(heavy, 0.1, q)) for q in (0.5, 0.9, 0.99))
    assert p50 <= p90 < p99
    assert p99 > float(heavy.ttft_s)
    with pytest.raises(genmodel.SpecError, match="quantile=1"):
        ttft_quantile_s(heavy, 0.1, 1)


def test_a_think_time_holds_more_clients_at_the_same_batch() -> None:
    """Clients that take Z to send their next request are out of the engine that long: at the same
    decode batch the state holds X Z more of them (Little's law), and the plan search's inverse
    gives the clients that serving_point holds with the same Z."""
    kw = {"prefill_s": 0.1, "step_s": 0.01, "decode_batch": 50.0, "output_tokens": 100}
    busy, thinking = serving_at_batch(**kw), serving_at_batch(**kw, think_s=0.5)
    assert float(thinking.rate_per_s) == pytest.approx(float(busy.rate_per_s), rel=1e-12)
    assert float(thinking.clients) - float(busy.clients) == pytest.approx(
        0.5 * float(busy.rate_per_s), rel=0.05
    )
    again = serving_point(**kw, clients=thinking.clients, think_s=0.5)
    assert float(again.clients) == pytest.approx(float(thinking.clients), rel=1e-12)


@pytest.mark.parametrize(
    ("model", "hardware", "plan"),
    [
        ("llama-3.1-70b", "h100-sxm", Plan(tp=4, pp=2)),
        ("deepseek-v3", "cloudmatrix384", Plan(tp=1, ep=64, dp=64)),
        ("qwen3-235b-a22b", "h200-sxm", Plan(tp=4, dp=2, ep=8)),
        ("llama-3.1-8b", "h100-sxm", Plan(tp=2, cp=2)),
    ],
)
@pytest.mark.parametrize("options", [RunOptions(), RunOptions(overlap_microbatches=2)])
def test_array_steps_equal_scalar_steps(model: str, hardware: str, plan: Plan, options: RunOptions) -> None:
    m, system, p = load_model(model), load_hardware(hardware), default_precision("fp8", None, None)
    batches = np.array([1.0, 3.0, 7.5, 64.0, 300.0])
    for phase, new in (("decode", 1), ("prefill", 512)):
        kw = {"phase": phase, "new_tokens": new, "past_tokens": 1000, "options": options}
        arr = step_terms(m, system, plan, p, num_seqs=batches, **kw).time_s
        one = [step_cost(m, system, plan, p, num_seqs=float(b), **kw).time_s for b in batches]
        np.testing.assert_allclose(arr, one, rtol=1e-12)
