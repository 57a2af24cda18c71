"""Disaggregated serving by simulation: a prefill pool and a decode pool, and the KV transfer between.

Modelling assumptions:
- Each pool is ``workers`` identical instances of one plan (tp, ep, dp), each replica scheduling
  as the engine does (:mod:`genmodel._scheduler`), with the pool's cap on running sequences. All
  replicas of both pools run on one clock: an event loop over step ends and arrivals.
- A request is routed to a prefill replica when it arrives, prefilled there (prefill chunks only:
  the prefill worker emits no decode steps), its KV is then moved to a decode replica, which holds
  the prompt's KV in its own pool and decodes it.
- Routing, at the moment a request (or its KV) arrives: "least-loaded" sends it to the prefill
  replica with the fewest prompt tokens left to compute, and to the decode replica with the fewest
  sequences running or waiting (ties to the lowest index), as Dynamo's and llm-d's KV-aware routers
  approximate; "round-robin" cycles through the replicas.
- The KV transfer of one request takes :func:`~genmodel._phases.kv_transfer_time` for its prompt:
  each prefill device sends its shard to a decode peer over the innermost fabric tier holding a
  prefill and a decode instance together (DistServe, Zhong et al. OSDI 2024, Sec. 4), and with
  pools of different sizes the side with the larger shard per device sets the time. The transfer
  starts when the prefill ends (the decode side pulls the finished blocks, as vLLM's
  NixlConnector does), so none of it hides behind the prefill, unlike the closed form's
  layer-by-layer streaming (:func:`~genmodel._phases.exposed_transfer_s`). Transfers do not
  contend with each other or with the collectives.
- The prefill replica frees the prompt's KV when the prefill ends (the transfer is short next to
  a step); a decode replica admits the request when its pool holds the prompt, and preempts (by
  recompute on the decode worker, or swap) as an aggregated replica does.
- First token, ``first_token``: "decode" (the default) counts it when the decode worker's first
  step emits it: the client streams from the decode worker, which loads all the prompt's KV but
  its last token and recomputes that token to sample the first output (vLLM's KV connectors,
  ``get_num_new_matched_tokens`` = prompt - 1; NVIDIA Dynamo and llm-d stream from it), so
  TTFT = queue + prefill + KV transfer + wait for a decode slot + one decode step.
  "prefill": the prefill worker's token is the first token (DistServe's TTFT, Sec. 2; TensorRT-LLM's
  disaggregated server returns the context phase's token), so TTFT = queue + prefill and the
  transfer delays the second token.
- An MoE pool's attention-DP ranks step in lockstep, their routed experts at the group's mean
  tokens per rank, an idle rank's tokens counted, with the engine's padding and CUDA-graph rules
  between ranks (:func:`~genmodel._lockstep.lockstep`), and run its engine's per-rank knobs
  (:func:`~genmodel._engines.rank_engine`: SGLang's chunk over the DP size, its lower
  ``new_token_ratio``), as in the aggregated simulation.
- A closed-loop client's reply, the engine's ``reply_latency_s``, delays its next request and is
  in its TTFT and e2e, as in the aggregated simulation; the tokens of a step leave when it ends
  (``release_after_launch`` is not modelled between pools).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import time
from dataclasses import dataclass, field

import numpy as np

from genmodel._arrivals import Arrivals, Lengths, requests_of
from genmodel._engines import Engine, rank_engine
from genmodel._errors import InfeasibleError, SpecError, require_ints
from genmodel._hardware import AttachedTier, Device
from genmodel._lockstep import lockstep
from genmodel._model import ModelSpec
from genmodel._options import RunOptions
from genmodel._parallel import Plan
from genmodel._phases import kv_transfer_time
from genmodel._scheduler import RUN_STEPS, Replica, Requests, step_ends
from genmodel._simfigures import WarmupBarrier, measured_requests, record_arrays, request_figures
from genmodel._simresult import (
    DisaggregatedStats,
    Percentiles,
    PoolStats,
    RequestRecords,
    SimulationResult,
)
from genmodel._simulate import ReplicaSetup, setup_replicas
from genmodel._stepcost import check_simulable
from genmodel._swaplink import SwapLink, swap_link
from genmodel._system import System
from genmodel._workload import Precision

ROUTINGS = ("least-loaded", "round-robin")
FIRST_TOKENS = ("decode", "prefill")

_STEP, _ARRIVE, _KV = 0, 1, 2  # event kinds: a step (or run) ends, a request arrives, its KV arrives


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerPool:
    """One pool of disaggregated serving: ``workers`` instances of ``plan``, each replica scheduling
    with ``engine`` (its ``max_num_seqs`` is the pool's batch cap)."""

    plan: Plan
    engine: Engine
    workers: int = 1

    def __post_init__(self) -> None:
        require_ints(workers=self.workers)

    @property
    def devices(self) -> int:
        """Devices of the whole pool."""
        return self.workers * self.plan.num_devices


@dataclass(slots=True, eq=False)
class _Group:
    """Replicas that step together (one, or an MoE worker's attention-DP ranks) and their step."""

    replicas: list[Replica]
    prefill: bool
    busy: bool = False
    duration: float = 0.0
    run: tuple[np.ndarray, np.ndarray] | None = None  # (ends, durations) of a run of decode steps
    busy_s: float = 0.0
    steps: int = 0


@dataclass(slots=True, eq=False)
class _Pool:
    """A pool's replicas, its groups and where routing stands."""

    spec: WorkerPool
    setup: ReplicaSetup
    replicas: list[Replica] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)  # indices into the simulation's groups
    next_rr: int = 0


def simulate_disaggregated(
    model: ModelSpec,
    hardware: System | Device,
    precision: Precision,
    *,
    prefill: WorkerPool,
    decode: WorkerPool,
    arrivals: Arrivals,
    input_tokens: Lengths,
    output_tokens: Lengths,
    seed: int = 0,
    ideal: bool = False,
    options: RunOptions = RunOptions(),
    records: bool = False,
    routing: str = ROUTINGS[0],
    first_token: str = FIRST_TOKENS[0],
    swap_tier: AttachedTier | None = None,
) -> SimulationResult:
    """Simulate disaggregated serving: prefill on one pool, KV over the fabric, decode on another.

    Args:
        model, hardware, precision: the model, the system (or device) and the precisions.
        prefill, decode: the pools (plan, engine with the pool's batch cap, workers).
        arrivals, input_tokens, output_tokens, seed, ideal, options, records: as
            :func:`~genmodel._simulate.simulate_serving`.
        routing: "least-loaded" or "round-robin" (module docstring).
        first_token: "decode" or "prefill": which worker's token is the first one (module docstring).
        swap_tier: the offload tier of a decode engine with ``preemption="swap"``.

    Returns:
        The :class:`SimulationResult`, with ``disaggregated`` (the pools' figures and the KV
        transfers) and, with ``records``, each request's prefill end, KV arrival and decode replica.

    Raises:
        SpecError: bad arguments or a deployment the simulation does not cover.
        InfeasibleError: a plan cannot run, the pools need more devices than the system has, or
            one request does not fit a pool.

    Source: DistServe (Zhong et al., OSDI 2024), Splitwise (Patel et al., ISCA 2024); the
    iteration-level scheduler of :mod:`genmodel._scheduler` in each pool.
    """
    start = time.perf_counter()
    require_ints(minimum=0, seed=seed)
    for name, value, allowed in (("routing", routing, ROUTINGS), ("first_token", first_token, FIRST_TOKENS)):
        if value not in allowed:
            raise SpecError(f"{name}={value!r} must be one of {', '.join(allowed)}")
    for pool in (prefill, decode):
        check_simulable(pool.plan, options)
    # each pool's attention-DP ranks run its engine's per-rank knobs (as simulate_serving's do)
    moe = model.moe is not None
    prefill, decode = (
        dataclasses.replace(p, engine=rank_engine(p.engine, moe=moe, dp=p.plan.dp)) for p in (prefill, decode)
    )
    rng = np.random.default_rng(seed)
    req, client_of, starts = requests_of(arrivals, input_tokens, output_tokens, rng, options.prefix_hit_rate)
    n_in, n_out = int(req.input_tokens.max()), int(req.output_tokens.max())
    # a prefill replica holds prompts only; a decode replica whole sequences, and may recompute one
    p_setup = setup_replicas(
        model,
        hardware,
        prefill.plan,
        precision,
        prefill.engine,
        ideal=ideal,
        options=options,
        input_tokens_max=n_in,
        output_tokens_max=1,
    )
    d_setup = setup_replicas(
        model,
        hardware,
        decode.plan,
        precision,
        decode.engine,
        ideal=ideal,
        options=options,
        input_tokens_max=n_in,
        output_tokens_max=n_out,
        prompt_tokens_max=n_in + n_out,
    )
    system = p_setup.system
    total = prefill.devices + decode.devices
    if system.max_devices is not None and total > system.max_devices:
        raise InfeasibleError(
            [
                f"devices={total} (both pools) must be <= max_devices={system.max_devices} "
                f"of system={system.id}"
            ]
        )
    sim = _Simulation(
        req,
        _Pool(prefill, p_setup),
        _Pool(decode, d_setup),
        swap=swap_link(system, decode.plan, decode.engine, swap_tier, d_setup.token_bytes),
        moe=model.moe is not None,
        routing=routing,
        first_token=first_token,
        transfer=_transfer_s(model, system, prefill.plan, decode.plan, precision, req),
        client_of=client_of,
        starts=starts,
        closed=arrivals.kind == "closed",
        warmup=arrivals.warmup_requests if arrivals.kind == "closed" and arrivals.warmup_restart else 0,
    )
    end = sim.run(arrivals)
    return sim.result(arrivals, end=end, records=records, start=start)


def _transfer_s(
    model: ModelSpec, system: System, p_plan: Plan, d_plan: Plan, precision: Precision, req: Requests
) -> list[float]:
    """Each request's KV transfer: the slower of the prefill side's shards and the decode side's
    (the side with fewer KV shards moves more bytes per device), over the pair's tier."""
    group = p_plan.num_devices + d_plan.num_devices
    by_length: dict[int, float] = {}
    out = []
    for n in req.input_tokens.tolist():
        if n not in by_length:
            by_length[n] = max(
                float(
                    kv_transfer_time(
                        model,
                        system,
                        plan,
                        precision,
                        seqs_per_replica=1.0,
                        input_tokens=n,
                        group_devices=group,
                    )
                )
                for plan in (p_plan, d_plan)
            )
        out.append(by_length[n])
    return out


class _Simulation:
    """The state of one disaggregated run: both pools' replicas, the event heap and the requests."""

    def __init__(
        self,
        req: Requests,
        prefill: _Pool,
        decode: _Pool,
        *,
        swap: SwapLink | None,
        moe: bool,
        routing: str,
        first_token: str,
        transfer: list[float],
        client_of: np.ndarray,
        starts: np.ndarray,
        closed: bool,
        warmup: int = 0,
    ) -> None:
        self.req = req
        self.barrier = WarmupBarrier(warmup, starts, client_of)
        self.pools = (prefill, decode)
        self.routing = routing
        self.first_token = first_token
        self.transfer = transfer
        self.client_of = client_of
        self.starts = starts
        self.closed = closed
        n = len(req.input_tokens)
        self.prefill_end = [-1.0] * n
        self.kv_arrival = [-1.0] * n
        self.decode_replica = [0] * n
        # the prefill phase emits one token and stops; the decode phase's steps are set when it starts
        self.decode_steps = [int(o) - (1 if first_token == "prefill" else 0) for o in req.output_tokens]
        req.left = [0] * n
        self.groups: list[_Group] = []
        self.heap: list[tuple[float, int, int, int]] = []
        self.feeds: list[float] = []  # times of the events that may bring a decode replica work
        self.decode_ends: list[float] = []  # times of the decode steps' ends
        self.order = 0
        # the shortest chain from a completion to a KV arrival: the next request's first prefill
        # step on an idle replica holds at least its prompt or the budget (a step's cost grows
        # with its tokens), then a transfer
        first = min(min(req.todo), prefill.spec.engine.max_batched_tokens)
        self.chain_s = prefill.setup.table.step_s(decode_seqs=0, decode_past_sum=0, chunks=[(first, 0)])
        self.chain_s += min(transfer)
        for is_prefill, pool in ((True, prefill), (False, decode)):
            self._build(pool, is_prefill, moe, swap)

    def _build(self, pool: _Pool, is_prefill: bool, moe: bool, swap: SwapLink | None) -> None:
        spec, setup = pool.spec, pool.setup
        dp = spec.plan.dp
        for _ in range(spec.workers):
            reps = [
                Replica(
                    len(pool.replicas) + i,
                    spec.engine,
                    setup.table,
                    setup.capacity,
                    None if is_prefill else swap,
                    setup.window_kv(),
                    setup.sliding_pool(),
                )
                for i in range(dp)
            ]
            for r in reps:
                r.emit_first = not is_prefill and self.first_token == "decode"
                r.defer = False  # release_after_launch: not modelled between pools
            pool.replicas.extend(reps)
            # an MoE worker's attention-DP ranks share its MoE layers: they step in lockstep
            parts = [reps] if moe and dp > 1 else [[r] for r in reps]
            for part in parts:
                pool.groups.append(len(self.groups))
                self.groups.append(_Group(part, is_prefill))

    # ---- events -------------------------------------------------------------------------
    def _push(self, t: float, kind: int, x: int) -> None:
        self.order += 1
        heapq.heappush(self.heap, (t, self.order, kind, x))
        if kind != _STEP or self.groups[x].prefill:
            heapq.heappush(self.feeds, t)
        else:
            heapq.heappush(self.decode_ends, t)

    def run(self, arrivals: Arrivals) -> float:
        """Process every event; the time of the last one."""
        req = self.req
        if self.closed:
            for c in range(arrivals.clients):
                rid = int(self.starts[c])
                if rid < self.starts[c + 1]:
                    req.arrival_s[rid] = 0.0
                    self._push(0.0, _ARRIVE, rid)
        else:
            for rid, t in enumerate(req.arrival_s):
                self._push(t, _ARRIVE, rid)
        now = 0.0
        heap = self.heap
        while heap:
            now = heap[0][0]
            dirty: set[int] = set()
            while heap and heap[0][0] <= now:
                _, _, kind, x = heapq.heappop(heap)
                if kind == _STEP:
                    self._end_step(x, now)
                    dirty.add(x)
                else:
                    dirty.add(self._route(kind, x))
            for gi in sorted(dirty):
                if not self.groups[gi].busy:
                    self._start(gi, now)
        return now

    def _route(self, kind: int, rid: int) -> int:
        """Queue request ``rid`` (its prompt, or its KV) at a replica; the replica's group."""
        pool = self.pools[0 if kind == _ARRIVE else 1]
        reps = pool.replicas
        req = self.req
        if self.routing == "round-robin":
            i = pool.next_rr % len(reps)
            pool.next_rr += 1
        elif kind == _ARRIVE:
            i = min(range(len(reps)), key=lambda j: self._prompt_load(reps[j]))
        else:
            i = min(range(len(reps)), key=lambda j: reps[j].running + len(reps[j].waiting))
        if kind == _ARRIVE:
            req.replica[rid] = i
        else:
            self.decode_replica[rid] = i
            self.kv_arrival[rid] = self._now_of(rid)
        reps[i].waiting.append(rid)
        return self._group_of(pool, i)

    def _now_of(self, rid: int) -> float:
        return self.prefill_end[rid] + self.transfer[rid]

    def _prompt_load(self, r: Replica) -> int:
        req = self.req
        return sum(req.todo[x] - req.done[x] for x in r.waiting) + sum(
            req.todo[x] - req.done[x] for x in r.prefilling
        )

    def _group_of(self, pool: _Pool, replica: int) -> int:
        per_group = len(pool.replicas) // len(pool.groups)
        return pool.groups[replica // per_group]

    # ---- steps --------------------------------------------------------------------------
    def _start(self, gi: int, now: float) -> None:
        """Plan and start group ``gi``'s next step (or run of decode steps), if it has work."""
        g = self.groups[gi]
        reps, req = g.replicas, self.req
        if not any(r.n_dec or r.prefilling or r.waiting or r.copy_s for r in reps):
            return
        for r in reps:
            r.plan(req, now)
        if not any(r.chunks for r in reps):
            k = min(r.steps_to_event(req) for r in reps)
            if 2 <= k < 1 << 59:
                self._start_run(g, gi, now, min(k, RUN_STEPS))
                return
        sync = lockstep(reps[0].engine, reps[0].table, [(r.step_tokens(), bool(r.chunks)) for r in reps])
        duration = max(r.step_s(sync) for r in reps)
        if duration <= 0:
            pool = "prefill" if g.prefill else "decode"
            raise InfeasibleError(
                [
                    f"a waiting request can never be admitted on a {pool} worker: its KV pool or "
                    "batch cap is too small"
                ]
            )
        g.busy, g.duration, g.run = True, duration, None
        g.busy_s += duration
        g.steps += 1
        self._push(now + duration, _STEP, gi)

    def _horizon(self, now: float) -> float:
        """The earliest time a request's KV could reach a decode replica that does not know of it
        yet: the next KV arrival, request arrival or prefill step end, and (a closed loop's next
        request) the next decode step end plus the shortest prefill step and transfer when a
        prefill replica is idle."""
        feeds, ends = self.feeds, self.decode_ends
        while feeds and feeds[0] <= now:
            heapq.heappop(feeds)
        while ends and ends[0] <= now:
            heapq.heappop(ends)
        horizon = feeds[0] if feeds else math.inf
        if self.closed and ends and not all(self.groups[gi].busy for gi in self.pools[0].groups):
            horizon = min(horizon, ends[0] + self.chain_s)
        return horizon

    def _start_run(self, g: _Group, gi: int, now: float, k: int) -> None:
        """Start up to ``k`` decode-only steps, ending with the step in which the horizon (the
        earliest event that could bring this group work) falls."""
        horizon = self._horizon(now)
        sync = lockstep(g.replicas[0].engine, g.replicas[0].table, [(r.n_dec, False) for r in g.replicas])
        if horizon < math.inf:
            # decode steps only grow longer within a run (their contexts grow): the horizon
            # falls within the first (horizon / first step) + 1 steps
            first = max(r.step_s(sync) for r in g.replicas)
            k = min(k, max(int((horizon - now) / first) + 2, 1)) if first > 0 else k
        durations = g.replicas[0].run_s(k, sync)
        for r in g.replicas[1:]:
            durations = np.maximum(durations, r.run_s(k, sync))
        ends = step_ends(now, durations)
        if horizon < math.inf:
            k = min(k, int(np.searchsorted(ends, horizon, side="left")) + 1)
            durations, ends = durations[:k], ends[:k]
        g.busy, g.run = True, (ends, durations)
        g.busy_s = float(step_ends(g.busy_s, durations)[-1])  # (summed one step at a time)
        g.steps += k
        self._push(float(ends[-1]), _STEP, gi)

    def _end_step(self, gi: int, now: float) -> None:
        g = self.groups[gi]
        g.busy = False
        on_finish = self._prefilled if g.prefill else self._finished
        for r in g.replicas:
            if g.run is None:
                r.commit(self.req, now, g.duration, on_finish)
            else:
                r.commit_run(self.req, *g.run, on_finish)

    def _prefilled(self, rid: int, now: float) -> None:
        """A prompt is done on its prefill replica: send its KV to the decode pool."""
        req = self.req
        self.prefill_end[rid] = now
        steps = self.decode_steps[rid]
        if steps <= 0:  # one output token, the prefill worker's: done
            self._finished(rid, now)
            return
        if self.first_token == "decode":
            req.first_token_s[rid] = -1.0
        req.finish_s[rid] = -1.0
        req.left[rid] = steps
        req.past0[rid] = int(req.input_tokens[rid])
        req.todo[rid] = 0  # resident elsewhere: the decode replica admits it without a prefill
        req.done[rid] = 0
        self._push(now + self.transfer[rid], _KV, rid)

    def _finished(self, rid: int, now: float) -> None:
        """A request is complete: a closed-loop client sends its next one now."""
        if not self.closed:
            return
        sent = self.barrier.finished(rid, now)  # (a warm-up drains before the measured requests)
        if sent is None:
            sent = [rid + 1] if rid + 1 < self.starts[self.client_of[rid] + 1] else []
        at = now + self.pools[0].spec.engine.reply_latency_s  # the client's reply
        for r in sent:
            self.req.arrival_s[r] = at
            self._push(at, _ARRIVE, r)

    # ---- the figures --------------------------------------------------------------------
    def result(self, arrivals: Arrivals, *, end: float, records: bool, start: float) -> SimulationResult:
        """The figures of the finished run (as an aggregated simulation's, plus the pools')."""
        prefill_end = np.array(self.prefill_end)
        kv_arrival = np.where(np.array(self.decode_steps) > 0, np.array(self.kv_arrival), np.nan)
        warmup = arrivals.warmup_requests if self.closed else 0
        measured = measured_requests(warmup, self.starts, self.client_of, len(self.req.input_tokens))
        p_pool, d_pool = self.pools
        # the frontend, once, and the client's reply (the same legs lie before the first token)
        overhead_s = (
            p_pool.setup.system.device.efficiency.request_overhead_s + p_pool.spec.engine.reply_latency_s
        )
        figures, _ = request_figures(
            self.req, measured, d_pool.replicas, prefill_end, request_overhead_s=overhead_s
        )
        devices = p_pool.spec.devices + d_pool.spec.devices
        moved = kv_arrival[measured] - prefill_end[measured]
        pools = (self._pool_stats(p_pool, end), self._pool_stats(d_pool, end))
        return SimulationResult(
            **figures,
            output_tokens_per_s_per_device=figures["output_tokens_per_s"] / devices,
            mean_running_batch=pools[0].mean_running_batch + pools[1].mean_running_batch,
            preemptions=pools[0].preemptions + pools[1].preemptions,
            kv_peak_bytes_per_device=max(p.kv_peak_bytes_per_device for p in pools),
            kv_capacity_bytes_per_device=max(p.kv_capacity_bytes_per_device for p in pools),
            steps=pools[0].steps + pools[1].steps,
            simulated_s=end,
            elapsed_s=time.perf_counter() - start,
            engine=d_pool.spec.engine,
            swap_s=sum(r.swap_s for r in d_pool.replicas)
            if d_pool.spec.engine.preemption == "swap"
            else None,
            disaggregated=DisaggregatedStats(
                prefill=pools[0],
                decode=pools[1],
                kv_transfer_s=Percentiles.of(moved[~np.isnan(moved)]),
                routing=self.routing,
                first_token=self.first_token,
            ),
            records=RequestRecords(
                **record_arrays(self.req, measured),
                prefill_end_s=prefill_end,
                kv_arrival_s=kv_arrival,
                decode_replica=np.array(self.decode_replica),
            )
            if records
            else None,
        )

    def _pool_stats(self, pool: _Pool, end: float) -> PoolStats:
        spec, setup = pool.spec, pool.setup
        groups = [self.groups[gi] for gi in pool.groups]
        span = max(end, 1e-30)
        busy = sum(g.busy_s * len(g.replicas) for g in groups) / (len(pool.replicas) * span)
        return PoolStats(
            workers=spec.workers,
            devices=spec.devices,
            tp=spec.plan.tp,
            ep=spec.plan.ep,
            dp=spec.plan.dp,
            max_batch=spec.engine.max_num_seqs,
            busy_frac=busy,
            mean_running_batch=sum(r.batch_time for r in pool.replicas) / span,
            steps=sum(g.steps for g in groups),
            preemptions=sum(r.preemptions for r in pool.replicas),
            kv_peak_bytes_per_device=max(r.peak_tokens for r in pool.replicas) * setup.token_bytes,
            kv_capacity_bytes_per_device=setup.capacity * setup.token_bytes,
        )
