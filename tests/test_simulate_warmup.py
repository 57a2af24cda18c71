"""The benchmark client's warm-up phase: drained, then every client restarts together (perf_analyzer)."""

from __future__ import annotations

import numpy as np
import pytest

import genmodel

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
    """Once drained, the engine is empty again: the measured phase is a fresh synchronised start."""
    drained = _sim(concurrency=8, requests_per_client=5, warmup_requests=2, dp=dp)
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
