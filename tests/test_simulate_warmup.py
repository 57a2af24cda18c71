"""The benchmark client's warm-up phase: drained, then every client restarts together (perf_analyzer)."""

from __future__ import annotations

import numpy as np
import pytest

import genmodel
from genmodel._harness import harness_engine

_ARGS: dict[str, object] = {
    "model": "llama-3.2-1b",
    "hardware": "h100-sxm",
    "input_tokens": 3000,
    "output_tokens": 40,
}


def _sim(**kwargs: object) -> genmodel.SimulationResult:
    return genmodel.simulate(**{**_ARGS, **kwargs})  # type: ignore[arg-type]


def _first_measured(r: genmodel.SimulationResult, clients: int, per_client: int, warmup: int) -> np.ndarray:
    assert r.records is not None
    return r.records.arrival_s.reshape(clients, per_client)[:, warmup]


@pytest.mark.parametrize("dp", [1, 2])
def test_the_measured_phase_starts_when_every_warmup_request_has_completed(dp: int) -> None:
    r = _sim(
        concurrency=6, requests_per_client=4, warmup_requests=2, input_spread=0.5, seed=3, dp=dp, records=True
    )
    assert r.records is not None
    starts = _first_measured(r, 6, 4, 2)
    warm_end = float(np.nanmax(r.records.finish_s[~r.records.measured]))
    assert np.all(starts == starts[0])  # every client at once, on every replica
    assert starts[0] >= warm_end
    if dp == 1:
        assert starts[0] == warm_end
    # no measured request starts before the last warm-up request ends
    assert float(np.min(r.records.arrival_s[r.records.measured])) >= warm_end


def test_without_the_restart_each_client_goes_straight_on() -> None:
    r = _sim(
        concurrency=6,
        requests_per_client=4,
        warmup_requests=2,
        input_spread=0.5,
        seed=3,
        records=True,
        warmup_restart=False,
    )
    assert r.records is not None
    per = r.records.arrival_s.reshape(6, 4)
    fin = r.records.finish_s.reshape(6, 4)
    assert np.array_equal(per[:, 2], fin[:, 1])  # each client's next request when its last completes
    assert len(set(per[:, 2].tolist())) > 1  # lengths differ: the clients are no longer together


@pytest.mark.parametrize("dp", [1, 2])
def test_a_drained_warmup_measures_what_a_fresh_start_does(dp: int) -> None:
    """Once drained, the engine is empty again: with fresh prompts (no replay of the warm-up's) the
    measured phase is a fresh synchronised start."""
    drained = _sim(concurrency=8, requests_per_client=5, warmup_requests=2, dp=dp, warmup_replay=False)
    fresh = _sim(concurrency=8, requests_per_client=3, warmup_requests=0, dp=dp)
    straight = _sim(concurrency=8, requests_per_client=5, warmup_requests=2, dp=dp, warmup_restart=False)
    assert drained.ttft_s.mean == pytest.approx(fresh.ttft_s.mean, rel=1e-9)
    assert drained.tpot_s.mean == pytest.approx(fresh.tpot_s.mean, rel=1e-9)
    assert drained.output_tokens_per_s == pytest.approx(fresh.output_tokens_per_s, rel=1e-9)
    assert drained.ttft_s.mean != straight.ttft_s.mean


def test_the_disaggregated_simulation_restarts_its_clients_too() -> None:
    r = genmodel.simulate(
        "llama-3.1-8b",
        "h100-sxm",
        input_tokens=1500,
        output_tokens=60,
        concurrency=4,
        requests_per_client=3,
        warmup_requests=1,
        disaggregated=True,
        prefill_workers=1,
        decode_workers=1,
        input_spread=0.4,
        seed=2,
        records=True,
    )
    assert r.records is not None
    starts = _first_measured(r, 4, 3, 1)
    assert np.all(starts == starts[0])
    assert starts[0] == float(np.nanmax(r.records.finish_s[~r.records.measured]))


def test_the_restart_waits_for_clients_without_a_measured_request_too() -> None:
    """perf_analyzer waits for every warm-up request, also those of a client with nothing after."""
    r = _sim(concurrency=4, requests=7, warmup_requests=1, input_spread=0.6, seed=5, records=True)
    assert r.records is not None
    measured = r.records.measured
    warm_end = float(np.nanmax(r.records.finish_s[~measured]))
    assert int(measured.sum()) == 3
    assert np.all(r.records.arrival_s[measured] == warm_end)


def _replayed(r: genmodel.SimulationResult, clients: int, per_client: int, warmup: int) -> np.ndarray:
    """Each client's first ``warmup`` measured requests' prefill times."""
    assert r.records is not None
    prefill = (r.records.first_token_s - r.records.scheduled_s).reshape(clients, per_client)
    return np.asarray(prefill[:, warmup : 2 * warmup])


@pytest.mark.parametrize("dp", [1, 2])
def test_restarted_clients_replay_their_warmup_prompts_from_the_prefix_cache(dp: int) -> None:
    """perf_analyzer's restarted workers send the warm-up's prompts again: vLLM (prefix caching on)
    computes only their last block, so those requests' prefill is one short step and the rest stay
    as without the replay; with the replay off, or an engine without prefix caching, nothing changes."""
    kw: dict[str, object] = {"concurrency": 4, "requests_per_client": 6, "warmup_requests": 2, "dp": dp}
    replay = _sim(**kw, records=True)
    fresh = _sim(**kw, records=True, warmup_replay=False)
    off = _sim(**kw, records=True, engine=genmodel.engine_preset("vllm").replace(prefix_caching=False))
    assert replay.records is not None and fresh.records is not None and off.records is not None
    per = 6 // 1
    hit, miss = _replayed(replay, 4, per, 2), _replayed(fresh, 4, per, 2)
    assert np.all(hit < 0.2 * miss)  # the last (partial) block of 3,000 tokens against all of them
    assert replay.ttft_s.mean < fresh.ttft_s.mean
    assert off.ttft_s.mean == fresh.ttft_s.mean and off.tpot_s.mean == fresh.tpot_s.mean
    # the requests after the replayed ones send fresh prompts: a full prefill again
    later = (replay.records.first_token_s - replay.records.scheduled_s).reshape(4, per)[:, 4:]
    assert np.all(later > 5 * float(np.max(hit)))


def test_a_pool_that_cannot_hold_the_warmup_evicts_it_and_nothing_is_replayed() -> None:
    """The warm-up's KV must still be in the pool: 2 x 16 clients x 8,040 tokens (0.26 M) of
    Llama-3.1-8B on one H100, whose pool holds about 0.4 M tokens, is replayed; 2 x 64 x 8,040
    (1.0 M) has been evicted, and the measured phase is as with fresh prompts."""
    one: dict[str, object] = {
        **_ARGS,
        "model": "llama-3.1-8b",
        "input_tokens": 8000,
        "requests_per_client": 3,
    }
    for clients, replayed in ((16, True), (64, False)):
        kw = {**one, "concurrency": clients, "warmup_requests": 2}
        replay = genmodel.simulate(**kw)  # type: ignore[arg-type]
        fresh = genmodel.simulate(**kw, warmup_replay=False)  # type: ignore[arg-type]
        assert (replay.ttft_s.mean < fresh.ttft_s.mean) is replayed
        if not replayed:
            assert replay.ttft_s.mean == fresh.ttft_s.mean


def test_the_engines_that_cache_prefixes() -> None:
    assert genmodel.engine_preset("vllm").prefix_caching  # V1: on by default
    assert genmodel.engine_preset("sglang").prefix_caching  # the radix cache
    trtllm = genmodel.engine_preset("trtllm")
    # AIConfigurator's TensorRT-LLM template writes enable_block_reuse false
    harness = harness_engine(trtllm, "aiconfigurator", concurrency=8, input_tokens=1000)
    assert not harness.prefix_caching
