"""SGLang 0.4 with the radix cache off admits a request that ignores EOS (sglang.bench_serving's
default) by ``PrefillAdder.add_one_req_ignore_eos``: only if the pool holds every running request to
completion, the fewest tokens left first (genmodel._newtokens.fits_to_completion); so it never
retracts, where the ratio rule admits on the decaying ratio and retracts when the pool fills."""

from __future__ import annotations

import dataclasses

import numpy as np

from genmodel._enginepresets import engine_preset
from genmodel._harness import harness_engine
from genmodel._newtokenratio import SGLANG_NEW_TOKEN_RATIO
from genmodel._newtokens import fits_to_completion
from genmodel._scheduler import Replica, Requests


def test_the_fit_follows_sglang_04s_loop() -> None:
    # sorted by tokens left (10, 12): request 0 checks free - 12 x 2 (the next one's tokens left,
    # as 0.4 writes it; its own 10 would pass at 23), request 1 free + 5 - 12 x 1
    assert fits_to_completion(25, [12, 10], [5, 5])
    assert not fits_to_completion(23, [12, 10], [5, 5])
    assert not fits_to_completion(24, [12, 10], [5, 5])  # strictly more than 0 left
    assert fits_to_completion(13, [12], [0]) and not fits_to_completion(12, [12], [0])
    assert fits_to_completion(5, [0, 4], [100, 1])  # a request with nothing left is not counted


def test_only_the_sglang_04_server_admits_by_it() -> None:
    preset = engine_preset("sglang")
    assert preset.new_token_ratio is not None and not preset.new_token_ratio.ignore_eos  # radix cache on
    assert harness_engine(preset, "sglang-0.4", tp=4).new_token_ratio == dataclasses.replace(
        SGLANG_NEW_TOKEN_RATIO, ignore_eos=True
    )
    # 0.3.0's policy_scheduler.py PrefillAdder has no such path
    assert harness_engine(preset, "sglang-0.3.0", tp=4).new_token_ratio == SGLANG_NEW_TOKEN_RATIO


def _admitted_at(ignore_eos: bool, capacity: int) -> tuple[int, int]:
    """Step at which r1 (1,000 + 4,000, arriving at step 1) gets in beside r0 (the same), and the
    retractions over 9,000 steps."""
    rule = dataclasses.replace(SGLANG_NEW_TOKEN_RATIO, ignore_eos=ignore_eos)
    engine = engine_preset("sglang").replace(overlap_scheduler=False, release_after_launch=False)
    r = Replica(0, dataclasses.replace(engine, new_token_ratio=rule), table=None, capacity_tokens=capacity)  # type: ignore[arg-type]
    req = Requests(np.array([1000, 1000]), np.array([4000, 4000]), cached_tokens=0)
    req.arrival_s = [0.0, 1.0]
    r.waiting.append(0)
    for k in range(9000):
        if k == 1:
            r.waiting.append(1)
        r.plan(req, float(k))
        r.commit(req, k + 1.0, 1.0, lambda _rid, _t: None)
    return int(req.scheduled_s[1]), r.preemptions


def test_a_request_waits_until_the_pool_holds_all_to_completion() -> None:
    # a pool of 8,000 cannot hold both to completion (10,000): the ratio rule lets r1 in as the
    # ratio falls and retracts one when the pool fills; ignore_eos waits for r0 to finish
    ratio_step, ratio_retractions = _admitted_at(False, 8000)
    eos_step, eos_retractions = _admitted_at(True, 8000)
    assert ratio_step < 600 and ratio_retractions > 0
    assert eos_step >= 3999 and eos_retractions == 0
    # in a pool of 12,000 both fit to completion: r1 gets in at once
    assert _admitted_at(True, 12_000) == (1, 0)
