"""vLLM V1's KV pool under pressure (genmodel._scheduler.Replica with on-demand admission): a step's
admissions see the chunks it already takes, the newest running sequence (one still prefilling) is
the one preempted, and with the prefix cache on its computed blocks stay cached until other
sequences' growth evicts them, so its resumption recomputes only what was evicted."""

from __future__ import annotations

import numpy as np

import genmodel
from genmodel._enginepresets import engine_preset
from genmodel._scheduler import Replica, Requests
from genmodel.io import load_hardware

BLOCK = 16


def _replica(capacity: int, budget: int, *, prefix_caching: bool = True) -> Replica:
    engine = engine_preset("vllm").replace(max_batched_tokens=budget, prefix_caching=prefix_caching)
    assert engine.admission == "on-demand" and engine.kv_block_tokens == BLOCK
    return Replica(0, engine, table=None, capacity_tokens=capacity)  # type: ignore[arg-type]


def _requests(prompts: list[int], outputs: list[int]) -> Requests:
    req = Requests(np.array(prompts), np.array(outputs), cached_tokens=0)
    for rid in range(len(prompts)):
        req.arrival_s[rid] = 0.0
    return req


def test_a_step_admits_only_what_fits_beside_the_chunks_it_already_takes() -> None:
    # two 3,000-token prompts, a budget for both, a pool for one and a half: vLLM allocates the
    # first prompt's blocks as it schedules it, so the second waits (it used to be admitted too,
    # overflow the pool at the end of the step and preempt)
    r = _replica(capacity=4500, budget=8192)
    req = _requests([3000, 3000], [50, 50])
    r.waiting.extend([0, 1])
    r.plan(req, 0.0)
    assert r.chunk_ids == [0] and list(r.waiting) == [1]


def test_the_prefilling_sequence_is_preempted_and_resumes_from_its_cached_blocks() -> None:
    # r0 (3,000 + 1,000) decodes; r1's first 999-token chunk fits beside it, its second does not;
    # r0's growth overflows the pool, and vLLM preempts the last of its running list: r1, whose
    # 62 whole blocks (992 tokens) stay cached; r0 keeps growing into them (one token a step)
    for caching in (True, False):
        r = _replica(capacity=4500, budget=1000, prefix_caching=caching)
        req = _requests([3000, 3000], [1000, 10])
        r.waiting.extend([0, 1])
        finished: list[int] = []
        now, kept, hits = 0.0, -1, -1
        while len(finished) < 2 and now < 5000:
            waiting = 1 in r.waiting
            r.plan(req, now)
            if waiting and req.preemptions[1] and 1 in r.prefilling:
                hits = req.done[1]  # resumed this step: its hits count as computed
            r.commit(req, now + 1.0, 1.0, lambda rid, _t, out=finished: out.append(rid))
            assert r.held() + r.kept_sum <= r.capacity  # cached blocks live in the pool's free part
            now += 1.0
            if req.preemptions[1] and kept < 0:
                kept = r.kept.get(1, 0)
        assert finished == [0, 1] and req.preemptions == [0, 1] and r.preemptions == 1
        if caching:
            assert kept == 992
            # r0's ~500 decode steps after the preemption evicted part of r1's cache, not all of it
            assert 0 < hits < 992 and hits % BLOCK == 0
        else:
            assert kept == 0 and hits == 0


def test_the_prefix_cache_makes_preemption_cheaper_in_a_burst() -> None:
    # Qwen3-32B's BF16 weights leave an 80 GB A100 some 38k tokens of KV: 500 prompts of 4,000
    # sent at once (GPUStack's burst, PS161) keep the pool full, and preempted requests come back
    kwargs = {"input_tokens": 4000, "output_tokens": 200, "concurrency": 120, "requests_per_client": 1}
    a100 = load_hardware("a100-sxm-80gb")
    on = genmodel.simulate("qwen3-32b", a100, warmup_requests=0, **kwargs)  # type: ignore[arg-type]
    off = genmodel.simulate("qwen3-32b", a100, warmup_requests=0, prefix_caching=False, **kwargs)  # type: ignore[arg-type]
    assert on.engine.prefix_caching and not off.engine.prefix_caching
    assert on.preemptions > 0 and off.preemptions > 0
    assert on.generated_tokens == off.generated_tokens == 120 * 200
    assert on.simulated_s < off.simulated_s and on.ttft_s.mean < off.ttft_s.mean
    assert on.kv_peak_bytes_per_device <= on.kv_capacity_bytes_per_device


def test_a_step_that_preempts_admits_no_waiting_request() -> None:
    # vLLM V1 schedules waiting requests only "if not preempted_reqs": r1 (the newest) is preempted
    # when r0's growth overflows the pool; a first chunk of it would fit back at once (a budget of
    # 100 tokens a step), but it waits for the next step, as every other waiting request would
    r = _replica(capacity=1000, budget=100, prefix_caching=False)
    req = _requests([600, 300], [500, 500])
    r.waiting.extend([0, 1])
    now = 0.0
    while not r.preemptions and now < 500:
        r.plan(req, now)
        r.commit(req, now + 1.0, 1.0, lambda _rid, _t: None)
        now += 1.0
    assert req.preemptions == [0, 1] and list(r.waiting) == [1]
    r.plan(req, now)
    assert r.chunk_ids == [] and r.held_back and list(r.waiting) == [1]  # this step: decodes only
    r.commit(req, now + 1.0, 1.0, lambda _rid, _t: None)
    r.plan(req, now + 1.0)
    assert r.chunk_ids == [1] and not r.waiting  # the next one takes it back
