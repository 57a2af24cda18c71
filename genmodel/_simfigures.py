"""The figures every serving simulation reports from its requests: which requests are measured,
their latency percentiles, time split and rates, the inter-token gaps of the decoding replicas, and
the per-request records (:mod:`genmodel._simulate` aggregated, :mod:`genmodel._simulate_disagg`
disaggregated); and the benchmark client's warm-up barrier both share.

Modelling assumptions: TTFT = first token - arrival; TPOT per request = (last - first token) /
(output - 1); ITL per decode step, weighted by its decode tokens; rates over the window from the
first measured arrival to the last measured completion.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from genmodel._engines import Engine
from genmodel._errors import SpecError
from genmodel._scheduler import Replica, Requests
from genmodel._simresult import Percentiles


def itl_samples(replicas: list[Replica]) -> tuple[np.ndarray, np.ndarray]:
    """Every decode step's gap since the replica's last one, and its decode tokens (the weight):
    first the single steps' of every replica in turn, then the runs' (replicas that share one
    list of gaps, as :mod:`genmodel._symmetry` makes them, have it split once)."""
    split: list[tuple[object, tuple[np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray]]]] = []
    parts = []
    for r in replicas:
        done = next((part for itl, part in reversed(split) if itl is r.itl), None)
        if done is None:
            one_v: list[float] = []
            one_w: list[float] = []
            runs_v: list[np.ndarray] = []
            runs_w: list[np.ndarray] = []
            for gaps, n in r.itl:
                if isinstance(gaps, float):
                    one_v.append(gaps)
                    one_w.append(n)
                else:
                    runs_v.append(gaps)
                    runs_w.append(np.full(len(gaps), float(n)))
            done = (np.array(one_v, dtype=float), np.array(one_w, dtype=float), runs_v, runs_w)
            split.append((r.itl, done))
        parts.append(done)
    values = np.concatenate([p[0] for p in parts] + [v for p in parts for v in p[2]])
    weights = np.concatenate([p[1] for p in parts] + [w for p in parts for w in p[3]])
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


def replay_warmup_prompts(
    req: Requests, starts: np.ndarray, engine: Engine, *, warmup: int, replicas: int, capacity: int
) -> None:
    """Give each closed-loop client's first ``warmup`` measured requests (``starts``: each
    client's first request; ``warmup`` 0: a client that does not restart and replay its warm-up,
    or an open loop) the prefix-cache hit of a prompt the engine has already seen, where the
    engine caches prefixes (``engine.prefix_caching``): the benchmark client sends them the
    prompts of its warm-up again (a hit leaves the tokens after the last whole KV block,
    ``engine.kv_block_tokens``, within all but the prompt's last token to compute), while the
    replica has not yet had to evict them: the KV it has filled since it started (the warm-up's
    prompts and outputs, then the measured rounds' outputs and unmatched tails; clients dealt
    round-robin over ``replicas``) is within its pool of ``capacity`` tokens (blocks are evicted
    only once the pool has no block left that was never used, vllm/v1/core/kv_cache_utils.py
    FreeKVCacheBlockQueue; SGLang's radix cache evicts only when an allocation needs the memory).

    Source: perf_analyzer (under genai-perf) runs its measured phase with fresh workers
    (load_manager.cc ``WaitForWarmupAndCleanup`` clears the threads, their configurations and
    workers), and each worker's context walks the input data from its thread's index, ``thread_id``
    + k x the active threads (infer_context.h: ``data_step_id_(thread_id)``; infer_context.cc
    ``UpdateJsonData``), as the warm-up's did: client c's k-th measured request sends the prompt of
    its k-th warm-up request (genai-perf's synthetic prompts are one input file of
    ``--num-dataset-entries`` entries, 12 x concurrency in AIConfigurator's harness).
    """
    clients, block_tokens = len(starts) - 1, engine.kv_block_tokens
    if not (engine.prefix_caching and warmup) or clients <= 0:
        return
    filled = [0] * replicas
    for c in range(clients):
        for rid in range(int(starts[c]), min(int(starts[c]) + warmup, int(starts[c + 1]))):
            filled[c % replicas] += int(req.input_tokens[rid] + req.output_tokens[rid])
    for k in range(warmup):
        tails = [0] * replicas
        for c in range(clients):
            rid = int(starts[c]) + warmup + k
            if rid >= int(starts[c + 1]):
                continue
            r = c % replicas
            n = int(req.input_tokens[rid])
            hit = max((n - 1) // block_tokens * block_tokens, req.past0[rid])
            if filled[r] <= capacity and hit > req.past0[rid]:
                req.past0[rid], req.todo[rid] = hit, n - hit
            tails[r] += req.todo[rid] + int(req.output_tokens[rid])
        filled = [f + t for f, t in zip(filled, tails, strict=True)]


class WarmupBarrier:
    """A closed loop's warm-up run as a phase of its own, as perf_analyzer (under genai-perf) runs
    it: each client's first measured request is held until every client's warm-up requests have
    completed, then all of them are sent at once (the measured phase starts with the clients
    synchronised again). perf_analyzer src/concurrency_manager.cc ``PerformWarmup`` sends the
    warm-up requests and waits for them (load_manager.cc ``WaitForWarmupAndCleanup`` joins every
    worker thread); inference_profiler.cc ``Profile`` then starts the measured phase with
    ``ChangeConcurrencyLevel`` (fresh workers) and clears the warm-up's records.

    ``key_of``: each client's barrier (clients of independent replicas, which run one after the
    other, wait for their own replica's warm-up: once drained, a replica starts empty, so the
    latencies are the same as with one barrier for all); None = one barrier. ``keys``: how many
    barriers (None: those ``key_of`` names; more when a replica has no client, whose barrier never
    opens).
    """

    def __init__(
        self,
        warmup: int,
        starts: np.ndarray,
        client_of: np.ndarray,
        key_of: list[int] | None = None,
        keys: int | None = None,
    ) -> None:
        self.warmup = warmup
        self.starts = starts
        self.client_of = client_of
        clients = len(starts) - 1
        self.key_of = key_of if key_of is not None else [0] * clients
        keys = max(max(self.key_of, default=-1) + 1, keys or 0)
        self.total = [0] * keys  # warm-up requests behind each barrier
        for c in range(clients):
            self.total[self.key_of[c]] += min(int(starts[c + 1] - starts[c]), warmup)
        self.done = [0] * keys
        self.held: list[list[int]] = [[] for _ in range(keys)]
        #: when each barrier opened (-1 until it does)
        self.opened_s = [-1.0] * keys

    def finished(self, rid: int, now: float) -> list[int] | None:
        """Request ``rid`` completed at ``now``: None = not a warm-up request (its client sends its
        next one as usual); otherwise the requests to send now (a further warm-up request of the
        client, or, once the last warm-up request has completed, every client's first measured
        one)."""
        if not self.warmup:
            return None
        client = int(self.client_of[rid])
        position = rid - int(self.starts[client])
        if position >= self.warmup:
            return None
        key = self.key_of[client]
        self.done[key] += 1
        sent: list[int] = []
        if rid + 1 < self.starts[client + 1]:
            if position == self.warmup - 1:
                self.held[key].append(rid + 1)
            else:
                sent.append(rid + 1)
        if self.done[key] == self.total[key]:
            sent += self.held[key]
            self.held[key] = []
            self.opened_s[key] = now
        return sent


def align_restarts(
    opened: list[float],
    spans: list[tuple[float, float]],
    req: Requests,
    measured: np.ndarray,
    group_of: dict[int, int],
    samples: list[list[tuple[float, int, int, int]]] | None,
) -> list[tuple[float, float]]:
    """Independent replicas ran one after the other, each restarting its clients when its own
    warm-up had drained: move each one's measured phase to the latest restart, when every
    replica's warm-up has drained (each starts it empty, so only its times move)."""
    last = max(opened)
    shift = [last - t if t >= 0 else 0.0 for t in opened]
    for rid in np.flatnonzero(measured).tolist():
        dt = shift[group_of[req.replica[rid]]]
        for times in (req.arrival_s, req.scheduled_s, req.first_token_s, req.finish_s):
            times[rid] += dt
    if samples is not None:
        for g, rows in enumerate(samples):
            samples[g] = [
                (t + shift[g], b, q, kv) if t >= opened[g] else (t, b, q, kv) for t, b, q, kv in rows
            ]
    return [(first, end + shift[g]) for g, (first, end) in enumerate(spans)]


def request_figures(
    req: Requests,
    measured: np.ndarray,
    decoders: list[Replica],
    prefill_end: np.ndarray | None = None,
    *,
    itl: bool = True,
    request_overhead_s: float = 0.0,
) -> tuple[dict[str, Any], np.ndarray]:
    """The :class:`SimulationResult` fields of the measured requests that every simulation shares
    (latency percentiles, the time split, counts and rates), and the ITL samples' weights.

    ``decoders``: the replicas that ran the decode steps (their inter-token gaps); ``prefill_end``:
    when each prompt's prefill ended, where that is not its first token (disaggregated serving);
    ``itl``: False leaves out the ITL percentiles (NaN; a sort of every decode step's gap) and
    the weights (empty), for a caller that reads only the requests' figures.
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
    if itl:
        values, weights = itl_samples(decoders)
        itl_s, decode_tokens = Percentiles.of(values, weights), round(float(weights.sum()))
    else:  # (the decode tokens as the weights' sum counts them: integers, exact in either sum)
        weights, itl_s, decode_tokens = np.zeros(0), Percentiles.of(np.zeros(0)), 0
        counted: list[tuple[object, int]] = []  # (a list of gaps, its tokens): twins share one
        for r in decoders:
            tokens = next((t for itl, t in reversed(counted) if itl is r.itl), None)
            if tokens is None:
                tokens = sum(n * (1 if isinstance(gaps, float) else len(gaps)) for gaps, n in r.itl)
                counted.append((r.itl, tokens))
            decode_tokens += tokens
    ends = first if prefill_end is None else prefill_end
    figures = {
        "ttft_s": Percentiles.of(ft - a + request_overhead_s),
        "tpot_s": Percentiles.of((f - ft)[multi] / (out[multi] - 1)),
        "itl_s": itl_s,
        "e2e_s": Percentiles.of(f - a + request_overhead_s),
        "request_overhead_s": request_overhead_s,
        "queue_s": float((scheduled[measured] - a).mean()),
        "prefill_s": float((ends[measured] - scheduled[measured]).mean()),
        "decode_s": float((f - ft).mean()),
        "requests": int(measured.sum()),
        "generated_tokens": len(arrival) + decode_tokens,
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
