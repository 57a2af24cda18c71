"""Laws every serving simulation keeps, one engine's replicas (tests/test_simulate.py) and a prefill
pool beside a decode pool (tests/test_simulate_disagg.py) alike: both files check them through
these helpers, so a law is written once."""

from __future__ import annotations

import numpy as np
import pytest

import genmodel


def assert_littles_law(r: genmodel.SimulationResult, clients: int, requests_per_client: int) -> None:
    """L = X W on the records of ``clients`` closed-loop clients of ``requests_per_client`` measured
    requests each: the time-average number of requests in the system, swept over the arrival and
    finish events, equals the throughput times the mean time in the system; and until the first
    client is done, exactly ``clients`` requests are in it."""
    rec = r.records
    assert rec is not None
    events = sorted([(t, 1) for t in rec.arrival_s] + [(t, -1) for t in rec.finish_s])
    start, end = events[0][0], events[-1][0]
    area, in_system, last = 0.0, 0, start
    for t, step in events:
        area += in_system * (t - last)
        in_system, last = in_system + step, t
    assert area / (end - start) == pytest.approx(r.request_rate_per_s * r.e2e_s.mean, rel=1e-9)
    first_done = min(rec.finish_s[rec.measured].reshape(clients, requests_per_client)[:, -1])
    for t in np.linspace(0, first_done, 50, endpoint=False):
        assert int(((rec.arrival_s <= t) & (rec.finish_s > t)).sum()) == clients


def two_requests_each(
    deployment: tuple[str, str, dict[str, object]], clients: int, **kwargs: object
) -> genmodel.SimulationResult:
    """``clients`` closed-loop clients of two measured requests each (prompts spread +-30 %) on
    ``deployment`` (model, hardware, its plan keywords), with their records; ``kwargs``: the load's
    lengths, the engine and the rest."""
    model, hardware, plan = deployment
    return genmodel.simulate(
        model,
        hardware,
        concurrency=clients,
        requests_per_client=2,
        warmup_requests=0,
        input_spread=0.3,
        records=True,
        **kwargs,  # type: ignore[arg-type]
        **plan,  # type: ignore[arg-type]
    )


def assert_every_request_counted(r: genmodel.SimulationResult, clients: int) -> None:
    """Every request of :func:`two_requests_each` is served, every generated token counted, and none
    outlasts the simulation."""
    rec = r.records
    assert rec is not None and r.requests == 2 * clients
    assert r.generated_tokens == int(rec.output_tokens.sum())
    assert (rec.finish_s - rec.arrival_s).max() <= r.simulated_s + 1e-12
