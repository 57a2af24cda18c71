"""Where a request waits for an outgrown KV pool (genmodel._midwait): before its first token, or
mid-decode after SGLang retracts it to the end of its queue. The closed form against the serving
simulation on deployments from ``tools/serving_agreement.py --random 300 --seed 101`` whose
clients outgrow SGLang's pool, the plan search's arrays against the estimate, and the rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

import genmodel
from genmodel import Estimate, Plan
from genmodel._enginepresets import engine_preset
from genmodel._engines import Engine
from genmodel._harness import harness_engine
from genmodel._midwait import mid_decode_s, retracted_to_queue_end, retractions, split_wait
from genmodel._servingmodel import serving_model
from genmodel._wave import BenchmarkClient, Wave
from genmodel._workload import Precision
from genmodel.io import load_hardware, load_model

CLIENT = BenchmarkClient(requests_per_client=12, warmup_requests=2)
H200 = load_hardware("h200-sxm").device


def _wave(engine: str) -> Wave:
    return Wave.of(engine_preset(engine, H200), CLIENT)


def test_a_request_is_admitted_as_often_as_the_group_it_joins_outnumbers_the_kept() -> None:
    # a pool of 100 whole sequences of 1,024 + 1,024 tokens; SGLang's admission holds back half the
    # output: 133 join a group, 100 are kept to completion
    pool, io, sglang = 100 * 2048.0, (1024, 1024), _wave("sglang")
    admitted = retracted_to_queue_end(sglang, 1024)
    assert admitted == 512
    assert retractions(admitted, 500.0, pool, *io) == pytest.approx(2048 / 1536 - 1)
    # fewer clients than join a group: all of them join
    assert retractions(admitted, 120.0, pool, *io) == pytest.approx(1.2 - 1)
    # a pool that keeps every client: none
    assert retractions(admitted, 80.0, pool, *io) == 0.0
    # arrays as floats (the plan search's)
    ks = retractions(admitted, np.array([80.0, 120.0, 500.0]), pool, *io)
    assert ks[1] == pytest.approx(retractions(admitted, 120.0, pool, *io))


def test_the_split_keeps_a_requests_whole_time_and_leaves_the_other_pools_alone() -> None:
    wave, pool, io = _wave("sglang"), 100 * 2048.0, (1024, 1024)
    moved = mid_decode_s(wave, 500.0, pool, io, 30.0)
    assert moved is not None
    k = retractions(512, 500.0, pool, *io)
    assert moved == pytest.approx(30.0 * k / (1 + k))  # one pass of the FCFS queue a try
    ttft, itl = split_wait(moved, 31.0, 0.02, 1024)
    assert ttft + 1023 * itl == pytest.approx(31.0 + 1023 * 0.02)
    assert ttft == pytest.approx(1.0 + 30.0 / (1 + k))
    # TensorRT-LLM reserves whole sequences; vLLM puts a preempted request at the head of the
    # queue (left out, module docstring): nothing moves
    assert mid_decode_s(_wave("trtllm"), 500.0, pool, io, 30.0) is None
    assert mid_decode_s(_wave("vllm"), 500.0, pool, io, 30.0) is None
    assert mid_decode_s(None, 500.0, pool, io, 30.0) is None


def _both(
    engine: Engine, model: str, hw: str, plan: Plan, precision: Precision, lengths: tuple[int, int, int]
) -> tuple[Estimate, Estimate]:
    """The simulated and the closed-form estimate of ``lengths`` (clients, prompt, output)."""
    clients, isl, osl = lengths
    args = (load_model(model), load_hardware(hw), plan, precision)
    kw = {"concurrency": clients, "input_tokens": isl, "output_tokens": osl}
    sim = serving_model("simulated", engine=engine).estimate(*args, **kw)
    closed = serving_model("closed-form", engine=engine).estimate(*args, **kw)
    return sim, closed


@pytest.mark.parametrize(
    ("case", "ttft_before", "tpot_before"),
    [
        # SGLang under AIConfigurator's harness, DeepSeek-V3 bf16 at TP8 EP8 on B200, 128 / 4,096,
        # 128 clients: 24 sequences fit at the mean in the pool both serving models size
        # (genmodel._kvpool; 27 beside the decode batch's activations alone, when the 'before' figures
        # were 1.88 and 0.33); the simulation retracts each request 1.03 times and waits 206 s before
        # the first token, 214 s mid-decode
        (("sglang", "deepseek-v3", "b200", Plan(tp=8, ep=8), "bf16", 128, 4096, 128), 2.07, 0.31),
        # the same at 256 clients: 438 s before the first token, 485 s mid-decode
        (("sglang", "deepseek-v3", "b200", Plan(tp=8, ep=8), "bf16", 128, 4096, 256), 2.17, 0.17),
        # Llama-3.1-8B fp8 (bf16 KV) on two H100 (TP2), 512 / 4,096, SGLang's defaults, 512
        # clients: 426 sequences fit at the mean (432 before the shared pool: 1.59 and 0.88); simulated,
        # 0.6 retractions a request
        (("sglang", "llama-3.1-8b", "h100-sxm", Plan(tp=2), "fp8", 512, 4096, 512), 1.70, 0.87),
    ],
)
def test_the_closed_form_splits_the_pools_wait_as_the_simulation_does(
    case: tuple[str, str, str, Plan, str, int, int, int],
    ttft_before: float,
    tpot_before: float,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: all of the wait before the first token, TTFT ``ttft_before`` x the simulation's and
    TPOT ``tpot_before`` x. Now both within 1.35x, and a request's whole time as it was."""
    name, model, hw, plan, dtype, isl, osl, clients = case
    device = load_hardware(hw).device
    engine = engine_preset(name, device)
    if model == "deepseek-v3":
        engine = harness_engine(engine, "aiconfigurator", concurrency=clients, input_tokens=isl)
    precision = Precision(weight_dtype=dtype, act_dtype="bf16", kv_dtype="bf16")
    lengths = (clients, isl, osl)
    sim, closed = _both(engine, model, hw, plan, precision, lengths)
    assert closed.serving is not None and closed.serving.kv_limited
    assert abs(math.log(closed.ttft_s / sim.ttft_s)) <= math.log(1.35), (closed.ttft_s, sim.ttft_s)
    assert abs(math.log(closed.tpot_s / sim.tpot_s)) <= math.log(1.35), (closed.tpot_s, sim.tpot_s)
    whole = closed.ttft_s + (osl - 1) * closed.tpot_s
    sim_whole = sim.ttft_s + (osl - 1) * sim.tpot_s
    assert abs(math.log(whole / sim_whole)) <= math.log(1.1), (whole, sim_whole)
    # without the split (all of the wait before the first token): further apart, the same whole time
    monkeypatch.setattr("genmodel._midwait.mid_decode_s", lambda *args: None)
    _, before = _both(engine, model, hw, plan, precision, lengths)
    assert before.ttft_s / sim.ttft_s == pytest.approx(ttft_before, rel=0.05)
    assert before.tpot_s / sim.tpot_s == pytest.approx(tpot_before, rel=0.05)
    assert before.ttft_s + (osl - 1) * before.tpot_s == pytest.approx(whole)


def test_the_plan_searchs_arrays_split_the_wait_as_the_estimate_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """Llama-3.1-8B bf16 on one H100, 128 / 8,192, SGLang's defaults: the search's first candidate
    (108 clients, more than the 54 whole sequences the pool keeps) has the closed-form estimate's
    TTFT and TPOT, the split included; without it, a longer TTFT and a shorter TPOT."""
    args = {"devices": 1, "input_tokens": 128, "output_tokens": 8192, "engine": "sglang"}
    slo = {"ttft_slo_s": 20.0, "tpot_slo_s": 0.05}
    report = genmodel.plan("llama-3.1-8b", "h100-sxm", **args, **slo).to_dict()
    top, first = report["top"][0], report["rechecked"][0]
    assert first["concurrency"] == round(top["concurrency"]) > 54
    assert top["ttft_s"] == pytest.approx(first["closed_form_ttft_s"], rel=0.02)
    assert top["tpot_s"] == pytest.approx(first["closed_form_tpot_s"], rel=0.02)
    monkeypatch.setattr("genmodel._midwait.mid_decode_s", lambda *args: None)
    whole = genmodel.plan("llama-3.1-8b", "h100-sxm", **args, **slo).to_dict()["top"][0]
    assert whole["concurrency"] == pytest.approx(top["concurrency"])
    assert whole["ttft_s"] > 1.5 * top["ttft_s"] and whole["tpot_s"] < top["tpot_s"]
