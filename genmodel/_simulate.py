"""Serving under load by simulation: arrivals, an engine's scheduler step by step, and the latencies.

Modelling assumptions:
- Requests arrive from N closed-loop clients started together, from a Poisson or a gamma (bursty)
  process at a rate, or from a trace, with fixed or spread lengths (:mod:`genmodel._arrivals`).
- Each replica runs the engine's scheduler (:mod:`genmodel._scheduler`); every step costs what
  genmodel's step formulas say for exactly that batch (:mod:`genmodel._stepcost`).
- Replicas of a dense model (``dp``) are independent: clients (or arrivals, round-robin) are split
  over them. The attention-DP replicas of an MoE model (dp > 1) share the MoE layers, so they
  step in lockstep: each step takes as long as the slowest replica's. Replicas whose schedule
  another's repeats (closed loops of fixed lengths) are stepped once (:mod:`genmodel._symmetry`).
- The KV pool of a replica is the device's usable memory less the weights and the activations of
  the engine's profile run, a full step (:func:`~genmodel._kvpool.engine_pool`, the closed form's
  pool too), in tokens of KV per device.
- Latencies: TTFT = first token - arrival; TPOT per request = (finish - first token) / (output - 1);
  ITL per token, weighted by the decode tokens of each step (the time since the replica's last
  decode step); e2e = finish - arrival. Warm-up requests are excluded from every figure. The
  time a request spends in the serving frontend (the efficiency ``request_overhead_s``) is added
  once to its TTFT and e2e; it does not delay its arrival at the scheduler. A closed-loop client's
  reply, ``Engine.reply_latency_s`` (0 in the presets), delays its next request and is in TTFT.
- Swap preemption copies a preempted sequence's KV to the offload tier (by default the device's
  host memory) and back (:class:`~genmodel._swaplink.SwapLink`): the tier's bandwidth per device
  is what :meth:`~genmodel._hardware.AttachedTier.bandwidth_per_device` gives while the devices of
  a node copy at once, capped by the device's host link; its capacity is shared the same way.
- Randomness only from a ``numpy.random.Generator`` seeded by ``seed``: the same seed gives the
  same result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from genmodel._arrivals import Arrivals, Lengths, requests_of
from genmodel._engines import Engine, eager_block_kernels, rank_engine
from genmodel._errors import InfeasibleError, require_ints
from genmodel._forwardpass import StepSpecs
from genmodel._hardware import AttachedTier, Device
from genmodel._kvpool import engine_pool
from genmodel._lockstep import lockstep
from genmodel._memory import NO_EXTRAS, MemoryExtras, engine_max_batch, memory_use
from genmodel._model import ModelSpec
from genmodel._options import DEFAULT_OPTIONS, RunOptions
from genmodel._parallel import Plan
from genmodel._phases import prepare
from genmodel._scheduler import RUN_STEPS, Replica, Requests, step_ends
from genmodel._simfigures import (
    WarmupBarrier,
    align_restarts,
    measured_requests,
    record_arrays,
    replay_warmup_prompts,
    request_figures,
)
from genmodel._simresult import RequestRecords, SimulationResult, Timeline
from genmodel._sizes import kv_bytes_per_sequence, sliding_kv_share, split_kv_scale
from genmodel._stepcost import StepCostTable, check_simulable
from genmodel._swaplink import swap_link
from genmodel._symmetry import replica_classes
from genmodel._system import System
from genmodel._units import GB
from genmodel._windowkv import SlidingPool, WindowKv, sliding_pool
from genmodel._workload import Precision


def simulate_serving(
    model: ModelSpec,
    hardware: System | Device,
    plan: Plan,
    precision: Precision,
    *,
    engine: Engine,
    arrivals: Arrivals,
    input_tokens: Lengths,
    output_tokens: Lengths,
    seed: int = 0,
    ideal: bool = False,
    options: RunOptions = DEFAULT_OPTIONS,
    records: bool = False,
    table: StepCostTable | None = None,
    swap_tier: AttachedTier | None = None,
    timeline: bool = False,
    itl: bool = True,
) -> SimulationResult:
    """Simulate a continuously batching engine serving ``arrivals`` on a deployment.

    Args:
        model, hardware, plan, precision: the deployment (as :func:`~genmodel._phases.estimate_static`).
        engine: the scheduler's knobs (:func:`~genmodel._enginepresets.engine_preset`).
        arrivals: closed-loop clients, a Poisson or gamma process, or a trace.
        input_tokens, output_tokens: lengths (a trace gives its own).
        seed: seed of the random lengths and arrival times.
        ideal: peak figures, no efficiencies or overheads.
        options: run options (pp, cp, microbatches, the combine overlap, speculation and offload
            are not simulated).
        records: keep the per-request records.
        timeline: keep the running batch, the queue and the KV use over time (``result.timeline``).
        table: step costs built for this deployment and options (:meth:`StepCostTable.build`), to
            reuse across runs; None = build one (a few tens of milliseconds).
        swap_tier: the offload tier of ``engine.preemption == "swap"`` (e.g. the device's host
            memory); unused otherwise.
        itl: False leaves ``itl_s`` NaN (its percentiles sort every decode step's gap), for a
            caller that reads only the requests' figures (the plan's re-check).

    Returns:
        The :class:`SimulationResult`.

    Raises:
        SpecError: bad arguments, a deployment the simulation does not cover, or swap preemption
            without a tier the device can reach.
        InfeasibleError: the plan cannot run, or one request does not fit the KV pool.

    Source: iteration-level scheduling as in Orca (Yu et al., OSDI 2022), vLLM V1, SGLang and
    TensorRT-LLM (:mod:`genmodel._engines`); step costs from :mod:`genmodel._stepcost`.
    """
    start = time.perf_counter()
    require_ints(minimum=0, seed=seed)
    check_simulable(plan, options)
    engine = rank_engine(engine, moe=model.moe is not None, dp=plan.dp)  # (each rank's knobs)
    rng = np.random.default_rng(seed)
    req, client_of, starts = requests_of(arrivals, input_tokens, output_tokens, rng, options.prefix_hit_rate)
    n_in_max, n_out_max = int(req.input_tokens.max()), int(req.output_tokens.max())
    setup = setup_replicas(
        model,
        hardware,
        plan,
        precision,
        engine,
        ideal=ideal,
        options=options,
        input_tokens_max=n_in_max,
        output_tokens_max=n_out_max,
        most_running=lambda capacity: _most_running(arrivals, engine, plan, capacity),
        table=table,
    )
    system, capacity, token_bytes, table = setup.system, setup.capacity, setup.token_bytes, setup.table
    swap = swap_link(system, plan, engine, swap_tier, token_bytes)
    w = arrivals.warmup_requests if arrivals.warmup_restart and arrivals.warmup_replay else 0
    replay_warmup_prompts(req, starts, engine, warmup=w, replicas=plan.dp, capacity=capacity)
    lockstep = model.moe is not None and plan.dp > 1
    # replicas whose schedule another repeats are not stepped again (:mod:`genmodel._symmetry`)
    lengths = (req.input_tokens, req.output_tokens)
    classes = None
    if arrivals.kind == "closed" and not timeline:
        classes = replica_classes(arrivals.per_client(), plan.dp, *lengths)
    stepped = range(plan.dp) if classes is None else classes.representatives
    made = {
        i: Replica(i, engine, table, capacity, swap, setup.window_kv(), setup.sliding_pool()) for i in stepped
    }
    groups = [list(made.values())] if lockstep else [[r] for r in made.values()]
    weights = None if classes is None or not lockstep else list(classes.weights().values())
    samples: list[list[_Sample]] | None = [[] for _ in groups] if timeline else None
    group_steps, spans = _run(groups, made, plan.dp, req, arrivals, client_of, starts, samples, weights)
    if classes is None:
        replicas, steps = list(made.values()), sum(group_steps)
    else:
        replicas, spans, steps = classes.expand(
            req, made, spans, group_steps, starts, client_of, lockstep=lockstep
        )
    return _result(
        req,
        arrivals,
        client_of,
        starts,
        replicas,
        engine=engine,
        plan=plan,
        steps=steps,
        spans=spans,
        token_bytes=token_bytes,
        capacity=capacity,
        records=records,
        start=start,
        timeline=None if samples is None else Timeline.merge(samples, token_bytes=token_bytes),
        itl=itl,
        request_overhead_s=system.device.efficiency.request_overhead_s + engine.reply_latency_s,
    )


@dataclass(frozen=True, slots=True)
class ReplicaSetup:
    """What the replicas of one deployment share: its system (ideal when asked), KV tokens per
    replica, KV bytes per token per device, the step-cost table, and (where the engine's pool frees
    the blocks a sliding window leaves behind) the sliding-window layers' share of a token's KV
    bytes and the tokens they keep of a sequence; (SGLang's split pools) its sliding pool's arguments."""

    system: System
    capacity: int
    token_bytes: float
    table: StepCostTable
    swa: tuple[float, int] | None = None
    sliding: tuple[int, int, int] | None = None

    def window_kv(self) -> WindowKv | None:
        """A replica's own count of what its sliding-window layers free (None: they free nothing)."""
        return None if self.swa is None else WindowKv(*self.swa)

    def sliding_pool(self) -> SlidingPool | None:
        """A replica's own sliding pool beside its full one (None: one pool)."""
        return None if self.sliding is None else SlidingPool(*self.sliding)


def setup_replicas(
    model: ModelSpec,
    hardware: System | Device,
    plan: Plan,
    precision: Precision,
    engine: Engine,
    *,
    ideal: bool,
    options: RunOptions,
    input_tokens_max: int,
    output_tokens_max: int,
    most_running: Callable[[int], int] | None = None,
    prompt_tokens_max: int | None = None,
    table: StepCostTable | None = None,
) -> ReplicaSetup:
    """Check a deployment, size its KV pool and build (or reuse) its step-cost table.

    Args:
        input_tokens_max, output_tokens_max: the longest request; it must fit the pool.
        most_running: the most sequences a replica runs given its pool (default: the engine's cap,
            at most the pool's tokens).
        prompt_tokens_max: the longest prompt a step may hold whole (default ``input_tokens_max``).
        table: a table to reuse when it covers the steps.

    Raises:
        InfeasibleError: the plan cannot run, or one request does not fit the KV pool.
    """
    system, extras = prepare(
        model,
        hardware,
        plan,
        precision,
        input_tokens=input_tokens_max,
        output_tokens=output_tokens_max,
        ideal=ideal,
        options=options,
    )
    device = system.device
    n_in, n_out = input_tokens_max, output_tokens_max
    # one whole request must fit the memory the engine's fraction gives (TensorRT-LLM's is of what
    # the weights leave free, more than the device's usable share), as the closed form checks it
    lengths = {"input_tokens": n_in, "output_tokens": n_out}
    engine_max_batch(model, device, plan, precision, **lengths, pool=engine.kv_pool, extras=extras)
    capacity, token_bytes = _kv_pool(model, device, plan, precision, engine, extras_input=n_in, extras=extras)
    swa = _window(model, engine, plan.tp)
    need = n_in + n_out + 2 * engine.kv_block_tokens
    if capacity < need:
        raise InfeasibleError(
            [
                f"the KV pool holds {capacity} tokens per replica ({capacity * token_bytes / GB:.2f} GB per "
                f"device), fewer than one request of {need} tokens needs"
            ]
        )
    running = min(engine.max_num_seqs, capacity) if most_running is None else most_running(capacity)
    # a step holds at most the budget (or a lone prompt over it) and every running sequence's decode
    prompt = n_in if prompt_tokens_max is None else prompt_tokens_max
    tokens_max = max(engine.max_batched_tokens, prompt) + running
    if table is None or table.tokens_max < tokens_max:
        table = StepCostTable.build(
            StepSpecs(model=model, hardware=system, plan=plan, precision=precision, options=options),
            tokens_max=tokens_max,
            overhead_s=engine.step_overhead_s,
            prefill_launch_s=engine.prefill_launch_s,
            eager_blocks=eager_block_kernels(engine),
        )
    graphs = engine.cuda_graphs(plan.server_gpus(moe=model.moe is not None))
    sliding = sliding_pool(model, engine.kv_pool, capacity, engine.kv_block_tokens)
    return ReplicaSetup(system, capacity, token_bytes, table.graphed_up_to(*graphs), swa, sliding)


def _window(model: ModelSpec, engine: Engine, tp: int) -> tuple[float, int] | None:
    """(the sliding-window layers' share of a token's KV bytes, the tokens they keep of a running
    sequence) where the engine's pool frees what the window leaves behind; None otherwise."""
    slack = engine.kv_pool.swa_slack
    if slack is None or not model.num_sliding_window_layers:
        return None
    assert model.sliding_window is not None
    return sliding_kv_share(model, tp), model.sliding_window + slack


def _most_running(arrivals: Arrivals, engine: Engine, plan: Plan, capacity: int) -> int:
    """The most sequences one replica can run at once."""
    most = min(engine.max_num_seqs, capacity)
    if arrivals.kind == "closed":
        most = min(most, -(-arrivals.clients // plan.dp))
    return most


def _kv_pool(
    model: ModelSpec,
    device: Device,
    plan: Plan,
    precision: Precision,
    engine: Engine,
    *,
    extras_input: int,
    extras: MemoryExtras = NO_EXTRAS,
) -> tuple[int, float]:
    """(KV tokens one replica's pool holds, KV bytes per token per device): the pool the engine
    sizes (:func:`~genmodel._kvpool.engine_pool`, the closed form's too), usable memory less the
    weights and its profile run's activations, in tokens."""
    lengths = {"input_tokens": extras_input, "output_tokens": 1}
    one = memory_use(model, device, plan, precision, batch=plan.dp, **lengths, extras=extras)
    weights = one.weights_bytes_per_device
    pool = engine_pool(
        model, device, plan, precision, engine.kv_pool, weights_bytes=weights, prompt_tokens=extras_input
    ).kv_bytes
    token_bytes = float(kv_bytes_per_sequence(model, precision, 1.0, tp=plan.tp, pp=plan.pp, cp=plan.cp))
    # SGLang's split pools: a token of its full-layer pool (the one counted) costs less than a whole one
    token_bytes *= split_kv_scale(model, engine.kv_pool.swa_ratio, plan.tp)
    return max(int(pool // token_bytes), 0), token_bytes


def _run(
    groups: list[list[Replica]],
    replicas: dict[int, Replica],
    dp: int,
    req: Requests,
    arrivals: Arrivals,
    client_of: np.ndarray,
    starts: np.ndarray,
    samples: list[list[_Sample]] | None = None,
    weights: list[int] | None = None,
) -> tuple[list[int], list[tuple[float, float]]]:
    """Run every group of replicas to the end; (each group's steps, each group's (first arrival,
    end)); with ``samples``, each group's load over time goes into its list. ``replicas``: those
    stepped, by index (of ``dp``; a closed loop's clients of the others are left alone);
    ``weights``: how many replicas each of a lockstep group's stands for (None: one each)."""
    n_groups = len(groups)
    group_of = {r.index: gi for gi, g in enumerate(groups) for r in g}
    pending: list[list[tuple[float, int]]] = [[] for _ in groups]
    closed = arrivals.kind == "closed"
    warmup = arrivals.warmup_requests if closed and arrivals.warmup_restart else 0
    # clients of replicas not stepped wait behind a barrier of their own that nothing opens (their
    # representative opens its barrier for them); a group without clients has one that never opens
    keys = [group_of.get(c % dp, n_groups) for c in range(arrivals.clients)]
    barrier = WarmupBarrier(warmup, starts, client_of, keys, keys=n_groups + 1)
    if closed:
        begins: list[int] = starts.tolist()
        for c in range(arrivals.clients):
            rid = begins[c]
            rep = c % dp
            if rid == begins[c + 1] or rep not in replicas:
                continue  # a client with no request (fewer requests than clients), or not stepped
            req.replica[rid] = rep
            req.arrival_s[rid] = 0.0
            replicas[rep].waiting.append(rid)
    else:
        for rid in range(len(req.arrival_s)):
            rep = rid % dp
            req.replica[rid] = rep
            pending[group_of[rep]].append((req.arrival_s[rid], rid))

    def on_finish(rid: int, now: float) -> None:
        if not closed:
            return
        nxt = rid + 1
        if nxt < starts[client_of[rid] + 1]:
            req.replica[nxt] = req.replica[rid]
        sent = barrier.finished(rid, now)
        if sent is None:
            sent = [nxt] if nxt < starts[client_of[rid] + 1] else []
        for r in sent:
            req.arrival_s[r] = now + replicas[req.replica[r]].engine.reply_latency_s
            replicas[req.replica[r]].waiting.append(r)

    steps = []
    spans = []
    for gi in range(n_groups):
        s, end = _run_group(
            groups[gi], req, pending[gi], on_finish, None if samples is None else samples[gi], weights
        )
        steps.append(s)
        first = pending[gi][0][0] if pending[gi] else 0.0
        spans.append((first, end))
    if warmup and n_groups > 1:
        measured = measured_requests(warmup, starts, client_of, len(req.input_tokens))
        measured &= np.array([k < n_groups for k in keys])[client_of]  # the stepped replicas' only
        spans = align_restarts(barrier.opened_s[:n_groups], spans, req, measured, group_of, samples)
    return steps, spans


#: (time s, sequences in the step, queued requests, KV tokens held on the fullest replica) of a group
_Sample = tuple[float, int, int, int]


def _kv_tokens(group: list[Replica]) -> int:
    """KV tokens held on the group's fullest replica, as ``peak_tokens`` counts them."""
    return max(r.held() if r.can_overflow else r.used() for r in group)


def _sample(group: list[Replica], now: float, kv_tokens: int) -> _Sample:
    """The group's planned step at ``now`` (its decode sequences and prompt chunks, as
    ``mean_running_batch`` counts them) and queue, with ``kv_tokens``."""
    batch = sum(r.step_dec + len(r.chunks) for r in group)
    return (now, batch, sum(len(r.waiting) for r in group), kv_tokens)


def _plan(group: list[Replica], req: Requests, now: float, samples: list[_Sample] | None) -> bool:
    """Plan every replica's step at ``now`` (``samples``: add the group's load); True if it sent tokens."""
    kv = _kv_tokens(group) if samples is not None else 0
    sent = any(r.pending_tokens() for r in group)
    for r in group:
        r.plan(req, now)
    if samples is not None:
        samples.append(_sample(group, now, kv))
    return sent


def _run_group(
    group: list[Replica],
    req: Requests,
    pending: list[tuple[float, int]],
    on_finish: Any,
    samples: list[_Sample] | None = None,
    weights: list[int] | None = None,
) -> tuple[int, float]:
    """Step one group of replicas (in lockstep) until every request has completed; with
    ``samples``, its load when it idles and at the start of each step (or run of decode steps):
    the sequences the step runs, the requests left waiting, and the KV held as the previous step
    left it (so the largest sample is ``kv_peak_bytes_per_device``)."""
    now, steps, ptr = 0.0, 0, 0
    n_pending = len(pending)
    while True:
        while ptr < n_pending and pending[ptr][0] <= now:
            rid = pending[ptr][1]
            group[0 if len(group) == 1 else req.replica[rid]].waiting.append(rid)
            ptr += 1
        next_arrival = pending[ptr][0] if ptr < n_pending else math.inf
        if idle(group):
            if samples is not None:
                samples.append((now, 0, 0, _kv_tokens(group)))
            if ptr >= n_pending:
                return steps, now
            now = next_arrival
            continue
        sent = _plan(group, req, now, samples)
        if not any(r.chunks for r in group):
            # no prompt runs: nothing changes until a sequence completes, a request arrives or
            # (on-demand) the pool overflows, so the decode steps until then are costed together
            k = min(r.steps_to_event(req, sampled=samples is not None) for r in group)
            if 2 <= k < 1 << 59:
                now, done = _decode_run(group, req, now, k, next_arrival, on_finish, weights, samples)
                steps += done
                continue
        steps_of = [(r.step_tokens(), bool(r.chunks)) for r in group]
        sync = lockstep(group[0].engine, group[0].table, steps_of, weights)
        duration = max(r.step_s(sync) for r in group)
        if duration <= 0:
            now = replan_s(group, req, now, sent)
            continue
        now += duration
        for r in group:
            r.commit(req, now, duration, on_finish)
        steps += 1


def _decode_run(
    group: list[Replica],
    req: Requests,
    now: float,
    k: int,
    next_arrival: float,
    on_finish: Any,
    weights: list[int] | None = None,
    samples: list[_Sample] | None = None,
) -> tuple[float, int]:
    """Cost and apply up to ``k`` decode-only steps at once, stopping after the step in which the
    next request arrives; ``samples``: the load at the start of the last step too (the KV the
    step before left, the run's most, before the last step's completions)."""
    k = min(k, RUN_STEPS)
    sync = lockstep(group[0].engine, group[0].table, [(r.n_dec, False) for r in group], weights)
    durations = group[0].run_s(k, sync)
    for r in group[1:]:
        durations = np.maximum(durations, r.run_s(k, sync))
    ends = step_ends(now, durations)
    if next_arrival < math.inf:
        k = min(k, int(np.searchsorted(ends, next_arrival, side="left")) + 1)
        durations, ends = durations[:k], ends[:k]
    if samples is not None and k > 1:
        kv = max(r.held_after(k - 1) if r.can_overflow else r.used() for r in group)
        samples.append(_sample(group, float(ends[-2]), kv))
    for r in group:
        r.commit_run(req, ends, durations, on_finish)
    return float(ends[-1]), k


def idle(group: list[Replica]) -> bool:
    """Nothing runs, waits or has tokens still to send on any replica of the group."""
    return not any(r.n_dec or r.prefilling or r.waiting or r.pending_tokens() for r in group)


def replan_s(group: list[Replica], req: Requests, now: float, sent: bool) -> float:
    """When the group may plan again after an empty step: at the first waiting request's arrival
    (a closed-loop reply still on its way, ``reply_latency_s``), or at once when the plan just
    sent tokens whose replies may now wait (``release_after_launch``).

    Raises:
        InfeasibleError: nothing will ever run (a waiting request never fits).
    """
    later = min((req.arrival_s[r.waiting[0]] for r in group if r.waiting), default=math.inf)
    if later > now and later < math.inf:
        return later
    if sent:
        return now
    raise InfeasibleError(
        ["a waiting request can never be admitted: the KV pool or max_num_seqs is too small"]
    )


def _result(
    req: Requests,
    arrivals: Arrivals,
    client_of: np.ndarray,
    starts: np.ndarray,
    replicas: list[Replica],
    *,
    engine: Engine,
    plan: Plan,
    steps: int,
    spans: list[tuple[float, float]],
    token_bytes: float,
    capacity: int,
    records: bool,
    start: float,
    timeline: Timeline | None = None,
    itl: bool = True,
    request_overhead_s: float = 0.0,
) -> SimulationResult:
    """The figures of a finished simulation (``itl``: with the ITL percentiles)."""
    warmup = arrivals.warmup_requests if arrivals.kind == "closed" else 0
    measured = measured_requests(warmup, starts, client_of, len(req.input_tokens))
    figures, _ = request_figures(req, measured, replicas, itl=itl, request_overhead_s=request_overhead_s)
    batch = sum(r.batch_time / max(spans[0 if len(spans) == 1 else r.index][1], 1e-30) for r in replicas)
    return SimulationResult(
        **figures,
        output_tokens_per_s_per_device=figures["output_tokens_per_s"] / plan.num_devices,
        mean_running_batch=batch,
        preemptions=sum(r.preemptions for r in replicas),
        kv_refusals=sum(r.kv_refusals for r in replicas),
        kv_peak_bytes_per_device=max(r.peak_tokens for r in replicas) * token_bytes,
        kv_capacity_bytes_per_device=capacity * token_bytes,
        steps=steps,
        simulated_s=max(end for _, end in spans),
        elapsed_s=time.perf_counter() - start,
        engine=engine,
        swap_s=sum(r.swap_s for r in replicas) if engine.preemption == "swap" else None,
        records=RequestRecords(**record_arrays(req, measured)) if records else None,
        timeline=timeline,
    )
