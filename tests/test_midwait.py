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
from genmodel._midwait import (
    head_split,
    mid_decode_s,
    preempted_to_queue_head,
    retracted_to_queue_end,
    retractions,
    round_rest_steps,
    split_wait,
)
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


def test_a_request_preempted_to_the_head_waits_the_rest_of_its_round() -> None:
    """vLLM: the mean over a round of O - g, g the progress at which the request was preempted,
    against the integral the formula closes, and its limits."""
    io = (1024, 1024)
    pool = 100 * 2048.0  # 100 whole sequences
    # every client past C / I: the round lets in C / I = 200 on their prompts
    assert round_rest_steps(500.0, pool, *io) == pytest.approx(2048 - 1024 - 1024 * math.log(2))
    assert round_rest_steps(500.0, pool, *io) == pytest.approx(round_rest_steps(200.0, pool, *io))
    # the round's own sum: C / (I + g)^2 dg preempted at g, each waiting O - g, over n_a = min(N, C / I)
    for clients in (120.0, 150.0, 500.0):
        admitted = min(clients, pool / io[0])
        start = pool / admitted - io[0]
        g = np.linspace(start, io[1], 200_001)
        waits = (io[1] - g) * pool / (io[0] + g) ** 2
        mean = float(np.sum((waits[1:] + waits[:-1]) / 2 * np.diff(g))) / admitted
        assert round_rest_steps(clients, pool, *io) == pytest.approx(mean, rel=1e-6)
    # a pool that keeps every whole sequence: no preemption, no wait
    assert round_rest_steps(100.0, pool, *io) == pytest.approx(0.0, abs=1e-9)
    assert round_rest_steps(80.0, pool, *io) == pytest.approx(0.0, abs=1e-9)
    # arrays as floats (the plan search's), more clients never less
    steps = round_rest_steps(np.array([80.0, 120.0, 150.0, 500.0]), pool, *io)
    assert steps[2] == pytest.approx(round_rest_steps(150.0, pool, *io))
    assert np.all(np.diff(steps) >= 0)


def test_the_head_split_is_the_rounds_rest_at_most_the_wait_and_not_for_a_burst() -> None:
    vllm, pool, io = _wave("vllm"), 100 * 2048.0, (1024, 1024)
    assert preempted_to_queue_head(vllm)
    assert not preempted_to_queue_head(_wave("sglang")) and not preempted_to_queue_head(_wave("trtllm"))
    rest = round_rest_steps(500.0, pool, *io) * 0.02
    assert head_split(vllm, 500.0, pool, io, 30.0, 0.02) == pytest.approx(rest)
    assert head_split(vllm, 500.0, pool, io, 1.0, 0.02) == pytest.approx(1.0)  # never more than the wait
    burst = Wave.of(engine_preset("vllm", H200), BenchmarkClient(requests_per_client=1, warmup_requests=0))
    assert head_split(burst, 500.0, pool, io, 30.0, 0.02) == 0.0


@pytest.mark.parametrize(
    ("case", "ttft_before", "tpot_before"),
    [
        # vLLM's defaults, Qwen3-32B bf16 on one H100, 512 / 2,048, 64 clients: 23 sequences fit at
        # the mean; simulated, 2.3 preemptions a request, 47 s of its wait mid-decode (the same at
        # 128 clients), 76 s before the first token
        (("qwen3-32b", "h100-sxm", Plan(), "bf16", 512, 2048, 64), 1.61, 0.60),
        # Llama-3.1-70B bf16 on two H100 (TP2), 1,024 / 2,048, 64 clients: 15 fit at the mean
        (("llama-3.1-70b", "h100-sxm", Plan(tp=2), "bf16", 1024, 2048, 64), 1.19, 0.69),
        # Llama-3.1-8B bf16 on one H100, 2,048 / 4,096, 256 clients: 111 fit at the mean
        (("llama-3.1-8b", "h100-sxm", Plan(), "bf16", 2048, 4096, 256), 1.49, 0.68),
    ],
)
def test_the_closed_form_puts_vllms_preempted_wait_mid_decode_as_the_simulation_does(
    case: tuple[str, str, Plan, str, int, int, int],
    ttft_before: float,
    tpot_before: float,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """vLLM past the pool's mean: before, all of the wait before the first token, TTFT
    ``ttft_before`` x the simulation's and TPOT ``tpot_before`` x; now both within 1.15x, and a
    request's whole time as it was."""
    model, hw, plan, dtype, isl, osl, clients = case
    engine = engine_preset("vllm", load_hardware(hw).device)
    precision = Precision(weight_dtype=dtype, act_dtype="bf16", kv_dtype="bf16")
    lengths = (clients, isl, osl)
    sim, closed = _both(engine, model, hw, plan, precision, lengths)
    assert closed.serving is not None and closed.serving.kv_limited
    assert abs(math.log(closed.ttft_s / sim.ttft_s)) <= math.log(1.15), (closed.ttft_s, sim.ttft_s)
    assert abs(math.log(closed.tpot_s / sim.tpot_s)) <= math.log(1.15), (closed.tpot_s, sim.tpot_s)
    whole = closed.ttft_s + (osl - 1) * closed.tpot_s
    monkeypatch.setattr("genmodel._midwait.head_split", lambda *args: 0.0)
    _, before = _both(engine, model, hw, plan, precision, lengths)
    assert before.ttft_s / sim.ttft_s == pytest.approx(ttft_before, rel=0.05)
    assert before.tpot_s / sim.tpot_s == pytest.approx(tpot_before, rel=0.05)
    assert before.ttft_s + (osl - 1) * before.tpot_s == pytest.approx(whole)


def test_vllms_in_step_wait_stays_before_the_first_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Llama-3.1-8B bf16 on one H100, 128 / 8,192, 96 clients against 107 sequences at the mean:
    only the clients' rounds in step outgrow the pool (the closed form's in-step wait, 8.6 s). The
    simulation waits mid-decode there too, but on a smaller batch with faster steps, and the
    closed form's whole wait is short of the round's rest (module docstring): nothing moves, and
    TTFT and TPOT stay near the simulation's."""
    engine = engine_preset("vllm", load_hardware("h100-sxm").device)
    sim, closed = _both(engine, "llama-3.1-8b", "h100-sxm", Plan(), Precision(), (96, 128, 8192))
    assert closed.serving is not None and closed.serving.kv_limited
    assert closed.serving.max_running > 96
    assert closed.tpot_s == pytest.approx(sim.tpot_s, rel=0.05)
    assert closed.ttft_s == pytest.approx(sim.ttft_s, rel=0.2)
    monkeypatch.setattr("genmodel._midwait.head_split", lambda *args: 1e9)  # (not consulted)
    _, again = _both(engine, "llama-3.1-8b", "h100-sxm", Plan(), Precision(), (96, 128, 8192))
    assert (again.ttft_s, again.tpot_s) == (closed.ttft_s, closed.tpot_s)


def _replay_head_list(clients: int, pool: int, io: tuple[int, int], steps: int) -> tuple[float, float]:
    """vLLM's rule alone, a token a step (no prefill time): the requests in the order of their first
    admission, of which the pool runs the longest head that fits (the running list, then the
    preempted, last preempted first: ``running.pop()``, ``prepend_request``); a new request gets in
    only when all of them fit. The mean steps a request waited preempted, and its preemptions, over
    the requests completed after the first fifth."""
    isl, osl = io
    progress: list[int] = []  # in the order of first admission
    waited: list[int] = []
    preempted: list[int] = []
    ran: list[bool] = []
    fresh, done = clients, []
    for _ in range(steps):
        held = fits = 0
        for g in progress:
            if held + isl + g > pool:
                break
            held, fits = held + isl + g, fits + 1
        for i in range(len(progress)):
            preempted[i] += ran[i] and i >= fits
            ran[i] = i < fits
        if fits == len(progress):
            while fresh and held + isl <= pool:
                fresh, held, fits = fresh - 1, held + isl + 1, fits + 1
                progress.append(1)
                waited.append(0)
                preempted.append(0)
                ran.append(True)
        for i in range(len(progress)):
            if i < fits:
                progress[i] += 1
            else:
                waited[i] += 1
        while progress and progress[0] >= osl:
            progress.pop(0)
            ran.pop(0)
            done.append((waited.pop(0), preempted.pop(0)))
            fresh += 1  # (the client's next request)
    kept = done[len(done) // 5 :]
    return sum(w for w, _ in kept) / len(kept), sum(p for _, p in kept) / len(kept)


def test_vllms_rule_replayed_waits_the_rounds_rest_whatever_the_clients() -> None:
    """The list rule the module docstring derives from vLLM's scheduler, replayed a token a step:
    a preempted request waits about :func:`round_rest_steps` (the replay 0.27 O at O = I, the
    formula 0.31 O; 0.43 O and 0.45 O at O = 2 I), and no longer with more clients past the
    round's (their wait is before the first token)."""
    for io in ((256, 256), (128, 256)):
        pool = 16 * sum(io)  # 16 whole sequences
        rest = float(round_rest_steps(1000.0, float(pool), *io))
        waited, preemptions = _replay_head_list(3 * pool // io[0], pool, io, 60 * io[1])
        assert waited == pytest.approx(rest, rel=0.2), (waited, rest)
        assert preemptions > 0.5
        more, _ = _replay_head_list(6 * pool // io[0], pool, io, 60 * io[1])
        assert more == pytest.approx(waited, rel=0.1)
