"""SGLang's admission at its KV limit (genmodel._scheduler.Replica with the sglang preset): the
reservation for running sequences is its new_token_ratio x their clipped tokens to go, the ratio
decays each decode step (so a waiting request gets in as it falls), a retraction takes the sequence
with the fewest output tokens (the longest prompt among equals), sends it to the end of the queue
and recomputes the ratio (genmodel/_newtokens.py, sources in genmodel._engines.NewTokenRatio)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import genmodel
from genmodel._enginepresets import engine_preset
from genmodel._engines import Engine, NewTokenRatio
from genmodel._errors import SpecError
from genmodel._newtokenratio import SGLANG_NEW_TOKEN_RATIO
from genmodel._scheduler import Replica, Requests
from genmodel.io import load_hardware


def _replica(capacity: int, rule: NewTokenRatio = SGLANG_NEW_TOKEN_RATIO) -> Replica:
    engine = engine_preset("sglang").replace(overlap_scheduler=False, release_after_launch=False)
    engine = dataclasses.replace(engine, new_token_ratio=rule)
    assert engine.admission == "reserve" and engine.kv_block_tokens == 1
    return Replica(0, engine, table=None, capacity_tokens=capacity)  # type: ignore[arg-type]


def _requests(prompts: list[int], outputs: list[int], arrivals: list[float]) -> Requests:
    req = Requests(np.array(prompts), np.array(outputs), cached_tokens=0)
    req.arrival_s = list(arrivals)
    return req


def _run(r: Replica, req: Requests, steps: int, *, until=None) -> int:  # type: ignore[no-untyped-def]
    """Step the replica (arrivals join the queue as they come) until ``until(r, req)``; the step count."""
    queued = set(r.waiting)
    for k in range(steps):
        for rid, at in enumerate(req.arrival_s):
            if at <= k and rid not in queued:
                r.waiting.append(rid)
                queued.add(rid)
        r.plan(req, float(k))
        r.commit(req, k + 1.0, 1.0, lambda _rid, _t: None)
        if until is not None and until(r, req):
            return k
    return steps


def test_the_ratio_starts_at_sglangs_defaults_and_decays_to_its_floor() -> None:
    rule = SGLANG_NEW_TOKEN_RATIO
    assert (rule.init, rule.min_factor, rule.decay_steps, rule.clip_tokens) == (0.7, 0.14, 600, 4096)
    assert rule.min_ratio == pytest.approx(0.098) and rule.decay == pytest.approx((0.7 - 0.098) / 600)
    assert engine_preset("sglang").new_token_ratio == rule
    assert engine_preset("vllm").new_token_ratio is None and engine_preset("trtllm").new_token_ratio is None
    with pytest.raises(SpecError):
        NewTokenRatio(init=0.0)


def test_a_waiting_request_gets_in_as_the_ratio_decays() -> None:
    # r0 (1,000 + 4,000) decodes in a pool of 8,000; r1 (the same) needs 1,000 + 4,000 free beside
    # r0's tokens and 0.7 x its 4,000 to go: 8,000 - 1,000 - 2,800 < 5,000, so it waits. As the ratio
    # falls (0.7 to 0.098 over 600 steps) room opens before r0 is done; at a constant 0.7 it never does
    def admitted(r: Replica, req: Requests) -> bool:
        return 1 not in r.waiting and req.scheduled_s[1] >= 0

    r = _replica(8000)
    req = _requests([1000, 1000], [4000, 4000], [0.0, 1.0])
    step = _run(r, req, 5000, until=admitted)
    assert 100 < step < 600 and r.sglang is not None and r.sglang.ratio < 0.7
    constant = _replica(8000, NewTokenRatio(min_factor=1.0))
    req = _requests([1000, 1000], [4000, 4000], [0.0, 1.0])
    assert _run(constant, req, 3500, until=admitted) == 3500  # still waiting, r0 not done


def test_the_clip_bounds_what_a_long_output_reserves() -> None:
    # outputs of 8,192 reserve at most 4,096 each (CLIP_MAX_NEW_TOKENS): two 1,000 + 8,192 requests
    # start together in a pool of 11,000 (each needs 5,096 free; the first leaves 11,000 - 1,000 - 4,096)
    r = _replica(11_000)
    req = _requests([1000, 1000], [8192, 8192], [0.0, 0.0])
    r.waiting.extend([0, 1])
    r.plan(req, 0.0)
    assert r.chunk_ids == [0, 1]
    unclipped = _replica(11_000, NewTokenRatio(clip_tokens=1 << 20))
    req = _requests([1000, 1000], [8192, 8192], [0.0, 0.0])
    unclipped.waiting.extend([0, 1])
    unclipped.plan(req, 0.0)
    assert unclipped.chunk_ids == [0]


def test_a_retraction_takes_the_longest_prompt_of_the_fewest_outputs_to_the_end_of_the_queue() -> None:
    # three prompts (500, 600, 400) start together (a clip of 100 lets all in) and grow until the
    # pool of 3,000 has no room for the next step; r3 arrives meanwhile and waits (its prompt of 2,500
    # does not fit). SGLang retracts the fewest outputs first, the longest prompt among equals: r1,
    # not the last admitted (r2); r1 joins the queue behind r3, and the ratio becomes
    # (outputs so far + 20 per sequence left) / (their whole outputs + 1)
    r = _replica(3000, NewTokenRatio(clip_tokens=100))
    req = _requests([500, 600, 400, 2500], [2000, 2000, 2000, 50], [0.0, 0.0, 0.0, 5.0])
    _run(r, req, 1000, until=lambda r, req: r.preemptions > 0)
    assert req.preemptions == [0, 1, 0, 0] and list(r.waiting) == [3, 1]
    so_far = [int(req.output_tokens[i]) - (req.g0[i] + req.left[i] - r.g) for i in (0, 2)]
    assert r.sglang is not None
    assert r.sglang.ratio == pytest.approx((sum(so_far) + 2 * 20) / (4000 + 1))
    assert r.held() + r.n_dec <= r.capacity
    assert sorted(r.decoding) == [0, 2]


def test_sglang_at_its_kv_limit_runs_more_sequences_than_a_fixed_reservation() -> None:
    # Llama-3.1-70B fp8 on a B200 with a bf16 KV cache: 64 clients of 1,024 + 8,192 tokens do not
    # fit (some 306k tokens of pool). The decaying ratio lets more run at once than reserving 0.7 of
    # every output does, and the pool fills, so SGLang retracts (a fixed 0.7 overflows too, later)
    kwargs = {"input_tokens": 1024, "output_tokens": 8192, "concurrency": 64, "requests_per_client": 2}
    common = {"weight_dtype": "fp8", "act_dtype": "fp8", "kv_dtype": "bf16", "warmup_requests": 0}
    b200 = load_hardware("b200")
    sglang = engine_preset("sglang", b200.device if hasattr(b200, "device") else b200)  # type: ignore[arg-type]
    fixed: Engine = dataclasses.replace(sglang, new_token_ratio=None)
    dynamic = genmodel.simulate("llama-3.1-70b", b200, engine=sglang, **kwargs, **common)  # type: ignore[arg-type]
    static = genmodel.simulate("llama-3.1-70b", b200, engine=fixed, **kwargs, **common)  # type: ignore[arg-type]
    assert dynamic.preemptions > 0
    assert dynamic.mean_running_batch > static.mean_running_batch
    assert dynamic.ttft_s.mean < static.ttft_s.mean
    assert dynamic.generated_tokens == static.generated_tokens == 64 * 2 * 8192


def test_among_equal_outputs_and_prompts_the_last_admitted_is_retracted() -> None:
    # three equal requests start together and grow until the pool of 1,800 has no room for the
    # next step: with the same output so far and the same prompt, the order of admission decides
    # (the sort is stable, the retracted are taken from its end): r2, the last admitted
    r = _replica(1800, NewTokenRatio(clip_tokens=100))
    req = _requests([500, 500, 500], [2000, 2000, 2000], [0.0, 0.0, 0.0])
    _run(r, req, 1000, until=lambda r, req: r.preemptions > 0)
    assert req.preemptions == [0, 0, 1] and list(r.waiting) == [2]
    assert r.decoding == [0, 1]


def test_the_crossing_heaps_walk_finds_every_entry_below_the_runs_end() -> None:
    """The run test reads only the crossing heap's entries below the run's end
    (genmodel._newtokens._heap_below): the same entries as a scan of the whole heap."""
    import heapq
    import random

    from genmodel._newtokens import _heap_below

    rng = random.Random(3)
    for size in (0, 1, 2, 7, 100, 1000):
        heap: list[tuple[int, int, int]] = []
        for rid in range(size):
            heapq.heappush(heap, (rng.randrange(5000), rid, rng.randrange(3)))
        for end in (-1, 0, 1, 50, 2500, 4999, 5000, 10**9):
            assert sorted(_heap_below(heap, end)) == sorted(e for e in heap if e[0] < end)
