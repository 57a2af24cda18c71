"""Where a benchmark's clients outgrow what the steady state gives them (genmodel._instep): an
on-demand KV pool they outgrow in step, a step budget of few prompts. The closed form against the
serving simulation, and the plan search that prunes with it.

The cases are those where the two serving models were furthest apart (tools/serving_agreement.py
--random; docs/serving-simulation.md, *The closed form against the simulation*): outputs long
against the pool, which holds every client at its mean progress (prompt and half the output) but
not at its whole length; hundreds of clients under AIConfigurator's harness, whose budget holds
one prompt a step."""

from __future__ import annotations

import math

import numpy as np
import pytest

import genmodel
from genmodel import Plan
from genmodel._enginepresets import engine_preset
from genmodel._harness import harness_engine
from genmodel._instep import admitted_batch, in_step_batch
from genmodel._servingmodel import serving_model
from genmodel._wave import BenchmarkClient, Wave
from genmodel._workload import Precision
from genmodel.io import load_hardware, load_model

POOL, ISL, OSL = 456_192.0, 128, 8192  # Llama-3.1-8B bf16 on one H100: 108 sequences of 128 + 4,096


def test_the_in_step_batch_is_the_rounds_mean_of_what_the_pool_holds() -> None:
    # the mean over the round's O steps of min(N, C / (I + g)), summed step by step
    for clients in (40.0, 60.0, 96.0, 300.0):
        g = np.arange(OSL) + 0.5
        summed = np.minimum(clients, POOL / (ISL + g)).mean()
        assert in_step_batch(clients, POOL, ISL, OSL) == pytest.approx(summed, rel=1e-4)
    # a pool that holds every whole sequence runs them all; one that does not, fewer
    whole = POOL / (ISL + OSL)
    assert in_step_batch(whole, POOL, ISL, OSL) == pytest.approx(whole)
    assert in_step_batch(0.9 * whole, POOL, ISL, OSL) == pytest.approx(0.9 * whole)
    assert in_step_batch(1.2 * whole, POOL, ISL, OSL) < 1.2 * whole
    # increasing in the clients, and the same on arrays as on floats (the plan search's)
    clients = np.linspace(10.0, 600.0, 50)
    batches = in_step_batch(clients, POOL, ISL, OSL)
    assert (np.diff(batches) > 0).all()
    assert batches[17] == pytest.approx(in_step_batch(float(clients[17]), POOL, ISL, OSL))


def _both(engine: str, clients: int, **kw: object) -> tuple[genmodel.Estimate, genmodel.Estimate]:
    model = load_model("llama-3.1-8b")
    hw = load_hardware("h100-sxm")
    args = {"concurrency": clients, "input_tokens": ISL, "output_tokens": OSL}
    preset = engine_preset(engine, hw.device)
    sim = serving_model("simulated", engine=preset).estimate(model, hw, Plan(), Precision(), **args)
    closed = serving_model("closed-form", engine=preset).estimate(model, hw, Plan(), Precision(), **args)
    return sim, closed


@pytest.mark.parametrize(("engine", "clients"), [("vllm", 64), ("vllm", 96), ("sglang", 96)])
def test_clients_that_outgrow_the_pool_wait_for_it_in_both_serving_models(engine: str, clients: int) -> None:
    """Llama-3.1-8B bf16 on one H100, 128 in / 8,192 out, the engines' defaults: the pool holds 108
    sequences at their mean progress, 54 whole ones. The closed form took the clients as spread
    over their progress and found no wait for the pool: TTFT 0.19-0.21 s where the simulation, whose
    clients start together and grow together, gives 1.0 s (64 clients) and 7.7 s (vLLM, 96) or
    10.7 s (SGLang, 96): 5-50x apart. With the pool's wait (genmodel._instep): 0.93, 8.4, 8.4 s,
    all of it before the first token, within 2x; SGLang's retractions then put a part of it
    mid-decode, in the ITL (genmodel._midwait): 4.8 s. There the simulation waits longer in all
    (38.6 s: 10.6 s before the first token, 28 s mid-decode, where the closed form's round runs 85
    sequences against the simulated 77) and puts even more of it mid-decode: within 2.5x. TPOT
    within 1.1x; both KV-limited."""
    sim, closed = _both(engine, clients)
    assert closed.serving is not None and sim.serving is not None
    apart = 2.5 if engine == "sglang" else 2.0
    assert abs(math.log(closed.ttft_s / sim.ttft_s)) <= math.log(apart), (closed.ttft_s, sim.ttft_s)
    assert abs(math.log(closed.tpot_s / sim.tpot_s)) <= math.log(1.1), (closed.tpot_s, sim.tpot_s)
    assert closed.serving.kv_limited and sim.serving.kv_limited
    assert closed.serving.decode_batch < clients  # the round's mean running batch


def test_a_pool_that_holds_every_whole_sequence_leaves_the_closed_form_as_it_was() -> None:
    sim, closed = _both("vllm", 48)  # 48 whole sequences fit
    assert closed.serving is not None and not closed.serving.kv_limited
    assert abs(math.log(closed.ttft_s / sim.ttft_s)) <= math.log(1.25), (closed.ttft_s, sim.ttft_s)


def test_the_plan_search_no_longer_picks_clients_the_pool_makes_wait() -> None:
    """The plan search prunes with the closed form and re-checks its best candidates by simulation.
    Llama-3.1-8B on one H100, 128 in / 8,192 out, TTFT <= 2 s, TPOT <= 50 ms, vLLM: the closed form
    ranked 108 clients first (TTFT 0.21 s), which the simulation gave 9.5 s; the re-check walked
    down through 7 simulations to 62 clients. Now its first candidate, 70 clients, has a closed-form
    TTFT of 1.99 s against 1.88 s simulated, meets the targets, and serves more tokens/s."""
    report = genmodel.plan(
        "llama-3.1-8b",
        "h100-sxm",
        devices=1,
        input_tokens=ISL,
        output_tokens=OSL,
        ttft_slo_s=2.0,
        tpot_slo_s=0.05,
    ).to_dict()
    first = report["rechecked"][0]
    assert first["meets_slo"], first
    assert abs(first["ttft_rel_diff"]) <= 0.25, first
    # the search's vectorised figures are the estimate's (at the candidate's whole clients)
    top = report["top"][0]
    assert first["concurrency"] == round(top["concurrency"])
    assert top["ttft_s"] == pytest.approx(first["closed_form_ttft_s"], rel=0.02)
    assert top["tpot_s"] == pytest.approx(first["closed_form_tpot_s"], rel=0.02)


CLIENT = BenchmarkClient(requests_per_client=12, warmup_requests=2)


def test_the_budget_keeps_as_many_decoding_as_its_prompts_a_step_times_the_output() -> None:
    h200 = load_hardware("h200-sxm").device
    # vLLM: its 8,192 tokens a step, the decode tokens counted, chunked prompts: T (O - 1) / (I + O - 1)
    vllm = Wave.of(engine_preset("vllm", h200), CLIENT)
    assert admitted_batch(vllm, 2048, 128) == pytest.approx(8192 * 127 / 2175)
    # SGLang under the harness: max_prefill_tokens = I + 1,500 takes one whole prompt a step
    harness = harness_engine(
        engine_preset("sglang", h200), "aiconfigurator", concurrency=512, input_tokens=2048
    )
    assert admitted_batch(Wave.of(harness, CLIENT), 2048, 128) == pytest.approx(127)
    # 512-token prompts: five whole ones within 3,548 less the 635 decode tokens, 5 x 127
    assert admitted_batch(Wave.of(harness, CLIENT), 512, 128) == pytest.approx(5 * 127)
    # SGLang's defaults prefill in steps of their own: no such cap
    assert admitted_batch(Wave.of(engine_preset("sglang", h200), CLIENT), 2048, 128) is None


@pytest.mark.parametrize(("model", "tp", "clients"), [("llama-3.1-8b", 1, 512), ("llama-3.1-70b", 4, 256)])
def test_many_clients_queue_for_a_budget_of_one_prompt_a_step(model: str, tp: int, clients: int) -> None:
    """fp8 on H200, SGLang under AIConfigurator's harness (one 2,048-token prompt a step), 128
    output tokens. The steady state spread the prompts over every decode step: Llama-3.1-8B, 512
    clients, TTFT 2.3 s and TPOT 160 ms against 16.7 s and 45 ms simulated; Llama-3.1-70B TP4, 256
    clients, 1.7 s and 220 ms against 11.9 s and 96 ms. The engine runs one prompt a step beside the
    127 decoding and queues the rest: 17.4 s and 45 ms, 12.2 s and 117 ms now."""
    hw = load_hardware("h200-sxm")
    engine = harness_engine(
        engine_preset("sglang", hw.device), "aiconfigurator", concurrency=clients, input_tokens=2048
    )
    args = {"concurrency": clients, "input_tokens": 2048, "output_tokens": 128}
    precision = Precision(weight_dtype="fp8", act_dtype="fp8")
    est = {
        name: serving_model(name, engine=engine).estimate(
            load_model(model), hw, Plan(tp=tp), precision, **args
        )
        for name in ("simulated", "closed-form")
    }
    sim, closed = est["simulated"], est["closed-form"]
    assert abs(math.log(closed.ttft_s / sim.ttft_s)) <= math.log(1.5), (closed.ttft_s, sim.ttft_s)
    assert abs(math.log(closed.tpot_s / sim.tpot_s)) <= math.log(1.25), (closed.tpot_s, sim.tpot_s)
    assert closed.serving is not None and not closed.serving.kv_limited  # the budget's queue, not memory's
    assert closed.serving.decode_batch == pytest.approx(127)


def _llama_405b_long_prompts(serving: str, clients: int) -> genmodel.Estimate:
    hw = load_hardware("b200")
    precision = Precision(weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")
    preset = engine_preset("sglang", hw.device)
    return serving_model(serving, engine=preset).estimate(
        load_model("llama-3.1-405b"), hw, Plan(tp=8), precision,
        concurrency=clients, input_tokens=8000, output_tokens=100,
    )  # fmt: skip


def test_clients_past_the_kv_slots_keep_the_slots_rounds() -> None:
    """Llama-3.1-405B fp8 at TP8 on B200, 8,000 in / 100 out, SGLang's defaults (prompts in steps of
    their own, prefill-bound): the pool holds 469 sequences. Past them the closed form took every
    slot as decoding but the one prefilling (ITL 2.69 s) and the rest of the cycle as the queue:
    TTFT 71.6 s at 256 clients and 24.8 s at 512, where the simulation goes 71.9 -> 144 s, 1.28 s a
    token. The slots' requests are a round of their own whose later prompts run before the earlier
    ones decode (genmodel._serving.kv_limited_rounds): 154 s and 1.38 s at 512, 298 s and 1.39 s at
    768 (simulated 252 s, 1.32 s); TTFT grows with the clients."""
    ttfts = []
    for clients in (256, 512, 768):
        closed = _llama_405b_long_prompts("closed-form", clients)
        ttfts.append(closed.ttft_s)
        if clients > 256:
            sim = _llama_405b_long_prompts("simulated", clients)
            assert closed.serving is not None and closed.serving.kv_limited
            assert abs(math.log(closed.ttft_s / sim.ttft_s)) <= math.log(1.25), (closed.ttft_s, sim.ttft_s)
            assert abs(math.log(closed.tpot_s / sim.tpot_s)) <= math.log(1.1), (closed.tpot_s, sim.tpot_s)
    assert ttfts[0] < ttfts[1] < ttfts[2], ttfts
