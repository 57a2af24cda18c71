"""SGLang's sliding-window pool beside its full one (``Engine.swa_pool`` "split",
``genmodel._windowkv.SlidingPool``): what a running sequence holds there (its prompt and a window
of generated tokens), admission by the emptier pool less the ratio's reservation, retraction when
the next decode step does not fit either pool, the closed form's binding factor, and decode runs
that give what single steps give."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import genmodel
from genmodel import _scheduler
from genmodel._api import default_precision
from genmodel._enginepresets import engine_preset
from genmodel._memory import engine_max_batch
from genmodel._newtokens import retract, sglang_fits
from genmodel._parallel import Plan
from genmodel._scheduler import Replica, Requests
from genmodel._sizes import sliding_bind
from genmodel._windowkv import SlidingPool, sliding_pool
from genmodel.io import load_hardware, load_model

H100 = load_hardware("h100-sxm").device
OSS = load_model("gpt-oss-20b")  # 12 of its 24 blocks slide over 128 tokens
SGLANG = engine_preset("sglang", H100)
FP4 = default_precision("fp4", model=OSS)


def test_a_decoding_sequence_keeps_its_prompt_and_a_window_and_a_half_of_its_output() -> None:
    # window 128, page 1, eviction every 128 decode steps: 128 + 1 + 64 generated tokens kept
    pool = SlidingPool(10_000, 128, 1)
    assert pool.keep == 193
    pool.enter(7, 1000, 0)  # its prompt: 1000 tokens, all kept
    pool.advance(150)
    assert pool.saved(150) == 0  # 150 generated: all held
    pool.advance(500)
    assert pool.saved(500) == 500 - 193  # 500 generated: 193 held
    pool.enter(8, 300, 100)
    pool.advance(600)
    assert pool.saved(600) == (600 - 193) + (500 - 193)
    pool.leave(7, 1600, 600)
    assert pool.saved(600) == 500 - 193
    # the eviction interval knob (SGLANG_SWA_EVICTION_INTERVAL_MULTIPLIER) widens the sawtooth
    assert SlidingPool(0, 128, 1, multiplier=2.0).keep == 128 + 1 + 128
    assert SlidingPool(0, 4096, 64).keep == 4096 + 64 + 2048


def test_the_sliding_pool_is_ratio_times_the_full_one_and_only_with_sliding_layers() -> None:
    assert sliding_pool(OSS, SGLANG.kv_pool, 100_000, 1) == (80_000, 128, 1)
    assert sliding_pool(load_model("llama-3.1-8b"), SGLANG.kv_pool, 100_000, 1) is None
    assert sliding_pool(OSS, engine_preset("vllm", H100).kv_pool, 100_000, 16) is None


def _replica(
    capacity: int, sliding: int, sequences: list[tuple[int, int]], waiting: tuple[int, int]
) -> tuple[Replica, Requests]:
    """A replica of SGLang's preset whose pools hold ``sequences`` (prompt, tokens generated so
    far), decoding, with one request (prompt, output) waiting."""
    table: Any = type("Table", (), {"prefill_host_s": 0.0})()
    r = Replica(0, SGLANG, table, capacity, slide=SlidingPool(sliding, 128, 1))
    n = len(sequences) + 1
    inputs = np.array([p for p, _ in sequences] + [waiting[0]])
    outputs = np.array([1000] * len(sequences) + [waiting[1]])
    req = Requests(inputs, outputs, 0)
    r.g = 600
    for rid, (prompt, generated) in enumerate(sequences):
        req.past0[rid], req.todo[rid], req.done[rid] = prompt, prompt, prompt
        req.g0[rid] = r.g - generated  # (it completes at g0 + left: 999 decode steps from g0)
        r.running += 1
        r.n_dec += 1
        r.past_sum += prompt + generated
        r.decoding.append(rid)
        r.slide.enter(rid, prompt, req.g0[rid])  # type: ignore[union-attr]
        r.sglang.started(rid, 0, req.g0[rid] + req.left[rid], req.g0[rid])  # type: ignore[union-attr]
        r.heap.append((req.g0[rid] + req.left[rid], rid, 0))
    r.slide.advance(r.g)  # type: ignore[union-attr]
    r.waiting.append(n - 1)
    return r, req


def test_admission_is_refused_when_the_sliding_pool_is_full_though_the_full_one_is_not() -> None:
    # ten sequences of 2000-token prompts, 500 generated: full pool 10 x 2500 tokens, sliding
    # 10 x (2000 + 193); a new request of 1000 + 100 tokens asks the sliding pool for its first
    # chunk and a page (its chunk is more than a window)
    seqs = [(2000, 500)] * 10
    r, req = _replica(60_000, 40_000, seqs, (1000, 100))
    assert r.slide is not None and r.slide.free(r) == 40_000 - 10 * 2193
    state = r.sglang
    assert state is not None
    state.ratio = 0.0  # no reservation
    assert sglang_fits(r, req, 10, 1000)
    r.slide.capacity = 21_930 + 1000  # a page short
    assert not sglang_fits(r, req, 10, 1000)
    r.slide.capacity += 1
    assert sglang_fits(r, req, 10, 1000)
    assert r.slide.budget(50) == 128 + 1  # a short chunk still asks for a window
    # the ratio's reservation (0.5 x 10 x 499 tokens to go) comes off the full pool only
    state.ratio = 0.5
    assert sglang_fits(r, req, 10, 1000)
    r.capacity = 25_000 + 1100 + math.ceil(0.5 * 10 * 499)  # the full pool: exactly its 1,100 tokens
    assert not sglang_fits(
        r, req, 10, 1000
    )  # (strictly less: PrefillAdder's total_tokens >= rem_total_tokens)
    r.capacity += 1
    assert sglang_fits(r, req, 10, 1000)
    # this step's chunks take their budgets of the sliding pool first
    r.chunks = [(64, 0)]
    assert not sglang_fits(r, req, 10, 1000)


def test_retraction_frees_the_sliding_pool_for_the_next_decode_step() -> None:
    seqs = [(2000, 500)] * 10
    r, req = _replica(60_000, 21_930 + 5, seqs, (1000, 100))
    assert r.held() + r.n_dec <= r.capacity  # the full pool holds the next step
    retract(r, req)  # a step committed: the full pool alone (SGLang may prefill next)
    assert r.n_dec == 10 and r.preemptions == 0
    retract(r, req, sliding=True)  # a decode step: the sliding pool (5 free) does not hold it
    assert r.n_dec == 9 and r.preemptions == 1 and r.slide is not None and r.slide.free(r) == 5 + 2193
    assert list(r.waiting)[-1] in range(10)  # to the end of the queue, to recompute
    r2, req2 = _replica(60_000, 21_930 + 10, seqs, (1000, 100))
    retract(r2, req2, sliding=True)  # 10 free tokens hold the 10 sequences' next tokens
    assert r2.n_dec == 10 and r2.preemptions == 0


def test_the_closed_form_binds_by_the_sliding_pool_for_short_outputs_only() -> None:
    pool = SGLANG.kv_pool
    # 1024 in / 256 out: the sequence holds 1024 + 128 full-pool tokens and 1024 + (193 - 193^2 / 512)
    # sliding ones, of a sliding pool 0.8 x as large
    expected = (1024 + 193 - 193 * 193 / 512) / (0.8 * (1024 + 128))
    assert math.isclose(sliding_bind(OSS, 0.8, 1024, 256, 128), expected)
    assert expected > 1.2
    assert sliding_bind(OSS, 0.8, 1024, 8192, 4096) == 1.0  # long outputs: the full pool binds
    assert sliding_bind(load_model("llama-3.1-8b"), 0.8, 1024, 256, 128) == 1.0
    plan = Plan()
    full = SGLANG.replace(swa_pool="full").kv_pool
    _, split, _ = engine_max_batch(OSS, H100, plan, FP4, input_tokens=1024, output_tokens=256, pool=pool)
    _, whole, _ = engine_max_batch(OSS, H100, plan, FP4, input_tokens=1024, output_tokens=256, pool=full)
    # the full pool's tokens are 1 / 0.9 as many as whole-model tokens, each sequence costs `expected` of them
    assert math.isclose(split, whole / 0.9 / expected, rel_tol=0.02)


_RUN: dict[str, Any] = {
    "input_tokens": 1024,
    "output_tokens": 384,
    "concurrency": 200,
    "requests_per_client": 2,
    "warmup_requests": 0,
    "weight_dtype": "fp4",
}


@pytest.mark.parametrize("output_tokens", [384, 2048])
def test_decode_runs_give_what_single_steps_give_with_a_sliding_pool(
    output_tokens: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = SGLANG.replace(memory_fraction=0.25)
    args = {**_RUN, "output_tokens": output_tokens}
    runs = genmodel.simulate(OSS, "h100-sxm", engine=engine, **args)
    monkeypatch.setattr(_scheduler, "DECODE_RUNS", False)
    steps = genmodel.simulate(OSS, "h100-sxm", engine=engine, **args)
    assert runs.preemptions + runs.kv_refusals > 0  # the pools are the limit
    counts = (steps.steps, steps.preemptions, steps.kv_refusals)
    assert (runs.steps, runs.preemptions, runs.kv_refusals) == counts
    assert runs.ttft_s.mean == pytest.approx(steps.ttft_s.mean, rel=1e-9)
    assert runs.tpot_s.mean == pytest.approx(steps.tpot_s.mean, rel=1e-9)


def test_a_short_output_runs_fewer_sequences_than_the_full_pool_alone_would_allow() -> None:
    # 1024 in / 256 out: the sliding pool binds, so the split pools run fewer sequences than
    # a full pool of 1 / 0.9 as many tokens would, and no more than one pool of whole tokens
    small = SGLANG.replace(memory_fraction=0.25)
    kwargs = {**_RUN, "output_tokens": 256, "concurrency": 300}
    split = genmodel.simulate(OSS, "h100-sxm", engine=small, **kwargs)
    whole = genmodel.simulate(OSS, "h100-sxm", engine=small.replace(swa_pool="full"), **kwargs)
    assert split.mean_running_batch < whole.mean_running_batch / 0.9
    assert split.mean_running_batch < 1.02 * whole.mean_running_batch


def test_a_transferred_request_resumes_only_where_the_sliding_pool_holds_its_prompt() -> None:
    # a disaggregated decode worker: the request's 1000 tokens of KV arrive whole
    seqs = [(2000, 500)] * 10
    r, req = _replica(60_000, 21_930 + 999, seqs, (1000, 100))
    req.past0[10], req.todo[10] = 1000, 0
    assert not r._resume(req, 10, 0.0)  # the full pool has room, the sliding one a token short
    assert r.slide is not None
    r.slide.capacity += 1
    assert r._resume(req, 10, 0.0) and r.n_dec == 11 and r.slide.free(r) == 0
