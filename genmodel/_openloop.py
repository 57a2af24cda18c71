"""The serving closed form fed an open loop: requests arriving at a rate (Poisson), in steady state.

Modelling assumptions:
- Each replica prefills the arrivals it is sent one at a time (an M/D/1 queue of prefills) between
  decode steps of the running batch, which Little's law sizes from the rate and the time a request
  decodes for; the KV pool caps that batch (:func:`estimate_open_loop`).
- See the open-loop section of docs/prefill-decode-and-serving.md for the derivation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from genmodel._engines import WHOLE_SEQUENCES, KvPool
from genmodel._errors import InfeasibleError, SpecError
from genmodel._hardware import Device
from genmodel._memory import memory_use
from genmodel._model import ModelSpec
from genmodel._options import DEFAULT_OPTIONS, RunOptions
from genmodel._parallel import Plan
from genmodel._phases import decode_pass, mean_decode_context, prefill_pass
from genmodel._serving import pool_fit
from genmodel._servingpoint import ServingPoint, serving_point, solve_batch, ttft_quantile_s
from genmodel._system import System
from genmodel._workload import Precision


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenLoopPoint:
    """The steady state of a deployment fed an open loop (Poisson arrivals at a rate).

    Attributes:
        request_rate_per_s: the arrival rate of the whole deployment.
        decode_batch: sequences in each decode step, per replica.
        prefill_busy_frac: share of a replica's time spent in prefill, rho = lambda P.
        prefill_s: one request's prefill, P.
        ttft_s: mean time to first token (the frontend's time included).
        itl_s: mean inter-token latency, also every request's TPOT (each sees the same, so it is
            the median TPOT too).
        itl_p50_s: the median gap between two tokens: a gap holds the bare decode step t(B), plus
            a prefill P in the share lambda ITL of gaps that one interleaves into, so t(B) while
            that share is below one half, else t(B) + P.
        e2e_s: ttft_s + (O-1) itl_s.
        ttft_quantile_s: the p50, p90 and p99 of TTFT (:func:`md1_wait_quantile_s`).
    """

    request_rate_per_s: float
    decode_batch: float
    prefill_busy_frac: float
    prefill_s: float
    ttft_s: float
    itl_s: float
    itl_p50_s: float
    e2e_s: float
    ttft_quantile_s: dict[str, float]


def estimate_open_loop(
    model: ModelSpec,
    hardware: System | Device,
    plan: Plan,
    precision: Precision,
    *,
    request_rate: float,
    input_tokens: int,
    output_tokens: int,
    ideal: bool = False,
    options: RunOptions = DEFAULT_OPTIONS,
    pool: KvPool = WHOLE_SEQUENCES,
) -> OpenLoopPoint:
    """The closed form of an open loop: requests arrive at ``request_rate`` per second (Poisson),
    spread evenly over the ``dp`` replicas.

    Each replica is :func:`serving_point` with every request someone else's (N -> infinity): at
    decode batch B it completes X(B) = B / ((O-1) t(B) + B P) requests per second, so its running
    batch is the B at which X(B) equals its arrival rate lambda (Little's law for the decode phase,
    B = lambda (O-1) ITL); ITL = t(B) / (1 - rho) with rho = lambda P, and a new request waits for
    the step under way and the prefills queued before it (M/D/1). Assumes a decode step is always
    under way (at a rate so low that B < 1 the step-under-way term counts a step that may not run).
    ``pool``: the engine's KV pool (``Engine.kv_pool``), as the closed loop's wave carries it.

    Raises:
        SpecError: output_tokens < 2, a rate that is not > 0. InfeasibleError: the plan cannot run,
            one sequence does not fit, or the rate is above what the replicas complete at the most
            sequences their memory holds (the queue would grow without bound).
    """
    if output_tokens < 2:
        raise SpecError(f"output_tokens={output_tokens} must be >= 2 for a request rate")
    if not request_rate > 0:
        raise SpecError(f"request_rate={request_rate!r} must be > 0")
    system, extras, device, most, lengths = pool_fit(
        model, hardware, plan, precision, input_tokens, output_tokens, ideal, options, pool
    )
    mem = memory_use(model, device, plan, precision, batch=most, **lengths, extras=extras)
    terms, _ = prefill_pass(
        model, system, plan, precision, num_seqs=1.0, input_tokens=input_tokens, options=options, memory=mem
    )
    prefill_s = float(terms.time_s)
    past = mean_decode_context(input_tokens, output_tokens)
    steps: dict[float, float] = {}

    def point(batch: float) -> ServingPoint:
        if batch not in steps:
            steps[batch] = float(
                decode_pass(
                    model,
                    system,
                    plan,
                    precision,
                    num_seqs=batch,
                    past_tokens=past,
                    options=options,
                    memory=mem,
                ).time_s
            )
        return serving_point(
            prefill_s=prefill_s,
            step_s=steps[batch],
            decode_batch=batch,
            output_tokens=output_tokens,
            clients=math.inf,
        )

    per_replica = request_rate / plan.dp
    cap = most / plan.dp
    top = float(point(cap).rate_per_s)
    if per_replica >= top:
        raise InfeasibleError(
            [
                f"request_rate={request_rate:g}/s must be below the {top * plan.dp:.3g}/s the "
                f"{plan.dp} replica(s) complete at {most} running sequences (the queue would grow "
                "without bound)"
            ]
        )
    batch = solve_batch(lambda b: float(point(b).rate_per_s), per_replica, cap)
    state = point(batch)
    overhead_s = system.device.efficiency.request_overhead_s
    itl_s = float(state.itl_s)
    rho = float(state.prefill_busy_frac)
    quantiles = {
        name: float(ttft_quantile_s(state, prefill_s, q)) + overhead_s
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
    }
    ttft_s = float(state.ttft_s) + overhead_s
    return OpenLoopPoint(
        request_rate_per_s=request_rate,
        decode_batch=batch,
        prefill_busy_frac=rho,
        prefill_s=prefill_s,
        ttft_s=ttft_s,
        itl_s=itl_s,
        itl_p50_s=steps[batch] + (prefill_s if per_replica * itl_s >= 0.5 else 0.0),
        e2e_s=ttft_s + (output_tokens - 1) * itl_s,
        ttft_quantile_s=quantiles,
    )
