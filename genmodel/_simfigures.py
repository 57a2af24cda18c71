"""The figures every serving simulation reports from its requests: which requests are measured,
their latency percentiles, time split and rates, the inter-token gaps of the decoding replicas, and
the per-request records (:mod:`genmodel._simulate` aggregated, :mod:`genmodel._simulate_disagg`
disaggregated).

Modelling assumptions: TTFT = first token - arrival; TPOT per request = (last - first token) /
(output - 1); ITL per decode step, weighted by its decode tokens; rates over the window from the
first measured arrival to the last measured completion.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from genmodel._errors import SpecError
from genmodel._scheduler import Replica, Requests
from genmodel._simresult import Percentiles


def itl_samples(replicas: list[Replica]) -> tuple[np.ndarray, np.ndarray]:
    """Every decode step's gap since the replica's last one, and its decode tokens (the weight)."""
    one_v: list[float] = []
    one_w: list[float] = []
    runs_v: list[np.ndarray] = []
    runs_w: list[np.ndarray] = []
    for r in replicas:
        for gaps, n in r.itl:
            if isinstance(gaps, float):
                one_v.append(gaps)
                one_w.append(n)
            else:
                runs_v.append(gaps)
                runs_w.append(np.full(len(gaps), float(n)))
    values = np.concatenate([np.array(one_v), *runs_v])
    weights = np.concatenate([np.array(one_w), *runs_w])
    return values, weights


def measured_requests(warmup: int, starts: np.ndarray, client_of: np.ndarray, n: int) -> np.ndarray:
    """Which of the ``n`` requests the figures count: all but each closed-loop client's first
    ``warmup`` (``starts``: each client's first request; ``client_of``: each request's client).

    Raises:
        SpecError: the warm-up leaves no request to measure.
    """
    measured = np.ones(n, dtype=bool)
    if warmup:
        measured = (np.arange(n) - starts[client_of]) >= warmup
    if not measured.any():
        raise SpecError(f"warmup_requests={warmup} leaves no request to measure")
    return measured


def request_figures(
    req: Requests,
    measured: np.ndarray,
    decoders: list[Replica],
    prefill_end: np.ndarray | None = None,
    *,
    request_overhead_s: float = 0.0,
) -> tuple[dict[str, Any], np.ndarray]:
    """The :class:`SimulationResult` fields of the measured requests that every simulation shares
    (latency percentiles, the time split, counts and rates), and the ITL samples' weights.

    ``decoders``: the replicas that ran the decode steps (their inter-token gaps); ``prefill_end``:
    when each prompt's prefill ended, where that is not its first token (disaggregated serving);
    ``request_overhead_s``: each request's time in the serving frontend, added once to its TTFT
    and e2e (not to the engine's time split ``queue_s``/``prefill_s``/``decode_s``, nor to the
    records).
    """
    arrival, scheduled, first, finish = (
        req.array(n) for n in ("arrival_s", "scheduled_s", "first_token_s", "finish_s")
    )
    assert not np.isnan(finish).any(), "every request completes"
    a, f, ft = arrival[measured], finish[measured], first[measured]
    out = req.output_tokens[measured]
    multi = out > 1
    window = float(f.max() - a.min())
    values, weights = itl_samples(decoders)
    ends = first if prefill_end is None else prefill_end
    figures = {
        "ttft_s": Percentiles.of(ft - a + request_overhead_s),
        "tpot_s": Percentiles.of((f - ft)[multi] / (out[multi] - 1)),
        "itl_s": Percentiles.of(values, weights),
        "e2e_s": Percentiles.of(f - a + request_overhead_s),
        "request_overhead_s": request_overhead_s,
        "queue_s": float((scheduled[measured] - a).mean()),
        "prefill_s": float((ends[measured] - scheduled[measured]).mean()),
        "decode_s": float((f - ft).mean()),
        "requests": int(measured.sum()),
        "generated_tokens": len(arrival) + round(float(weights.sum())),
        "request_rate_per_s": float(measured.sum()) / window if window > 0 else math.inf,
        "output_tokens_per_s": float(out.sum()) / window if window > 0 else math.inf,
    }
    return figures, weights


def record_arrays(req: Requests, measured: np.ndarray) -> dict[str, np.ndarray]:
    """The per-request columns of :class:`RequestRecords` every simulation keeps."""
    return {
        **{n: req.array(n) for n in ("arrival_s", "scheduled_s", "first_token_s", "finish_s")},
        "input_tokens": req.input_tokens.copy(),
        "output_tokens": req.output_tokens.copy(),
        "replica": req.array("replica"),
        "preemptions": req.array("preemptions"),
        "measured": measured,
    }
