"""The public serving simulation: :func:`simulate` by ids, on top of :func:`genmodel.estimate`'s specs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from genmodel._api import attached_tier, estimate, profiled
from genmodel._arrivals import Arrivals
from genmodel._engines import Engine
from genmodel._errors import InfeasibleError, SpecError, require_ints
from genmodel._hardware import AttachedTier, Device
from genmodel._model import ModelSpec
from genmodel._phases import Estimate
from genmodel._scalars import plain_scalars
from genmodel._servingmodel import ServingSpec
from genmodel._simestimate import length_draws
from genmodel._simresult import SimulationResult
from genmodel._simulate import simulate_serving
from genmodel._simulate_disagg import FIRST_TOKENS, ROUTINGS, WorkerPool, simulate_disaggregated
from genmodel._system import System, as_system
from genmodel._workload import LengthSpreads
from genmodel.io import load_hardware, load_model, load_system
from genmodel.io._trace import read_trace

#: requests of an open loop by default (a closed loop's client sends a simulated estimate's:
#: :attr:`~genmodel._servingmodel.ServingSpec.per_client`)
DEFAULT_REQUESTS = 500


@plain_scalars
def simulate(
    model: str | ModelSpec,
    hardware: str | Device | System,
    *,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    concurrency: int | None = None,
    request_rate: float | None = None,
    trace: str | Path | tuple[tuple[float, int, int], ...] | None = None,
    requests_per_client: int | None = None,
    requests: int | None = None,
    warmup_requests: int | None = None,
    warmup_restart: bool = True,
    warmup_replay: bool = True,
    burstiness_cv: float | None = None,
    input_spread: float = 0.0,
    output_spread: float = 0.0,
    engine: str | Engine = "vllm",
    max_num_seqs: int | None = None,
    max_batched_tokens: int | None = None,
    admission: str | None = None,
    preemption: str | None = None,
    prefix_caching: bool | None = None,
    swap_tier: str | AttachedTier | None = None,
    chunked_prefill: bool | None = None,
    mixed: bool | None = None,
    step_overhead_s: float | None = None,
    overlap_scheduler: bool | None = None,
    prefill_launch_s: float | None = None,
    release_after_launch: bool | None = None,
    reply_latency_s: float | None = None,
    seed: int = 0,
    records: bool = False,
    timeline: bool = False,
    system: str | System | None = None,
    ideal: bool = False,
    disaggregated: bool = False,
    prefill_tp: int | None = None,
    prefill_ep: int | None = None,
    prefill_dp: int | None = None,
    prefill_workers: int | None = None,
    prefill_max_batch: int | None = None,
    decode_tp: int | None = None,
    decode_ep: int | None = None,
    decode_dp: int | None = None,
    decode_workers: int | None = None,
    decode_max_batch: int | None = None,
    routing: str | None = None,
    first_token: str | None = None,
    **options: Any,
) -> SimulationResult:
    """Simulate an engine's scheduler serving a load on a deployment, step by step.

    Args:
        model: a model id or alias, a config.json path, or a ModelSpec.
        hardware: a device or system id, a Device or a System (as :func:`genmodel.estimate`).
        input_tokens, output_tokens: mean prompt and output tokens per request (not with a trace).
        concurrency: N closed-loop clients, started together (as the benchmark clients).
        request_rate: requests per second of a Poisson process (gamma with ``burstiness_cv``).
        trace: a CSV file (``arrival_s,input_tokens,output_tokens``) or its rows.
        requests_per_client: closed loop: requests per client, warm-up included (default 12, as
            genai-perf sends them in AIConfigurator's harness; :data:`REQUESTS_PER_CLIENT`).
        requests: total requests (closed loop: split over the clients; open loop: default 500).
        warmup_requests: closed loop: each client's first requests, left out of every figure
            (default 2, :data:`WARMUP_REQUESTS`, fewer when a client sends fewer than 3).
        warmup_restart: closed loop with a warm-up: the measured requests wait until every
            warm-up request has completed, then all clients start together again (perf_analyzer,
            under genai-perf, runs its warm-up so); False = each client goes straight on.
        warmup_replay: with the restart, each client's first measured requests send the prompts
            of its warm-up again (perf_analyzer's restarted workers), which an engine with
            ``prefix_caching`` finds cached; False = fresh prompts.
        burstiness_cv: coefficient of variation of the gaps between arrivals (gamma process).
        input_spread, output_spread: lengths drawn uniformly within +-spread of the mean (0: fixed).
        engine: vllm (vLLM 0.10 V1, the default), sglang (SGLang 0.5), trtllm (TensorRT-LLM 1.0),
            or an :class:`Engine`.
        max_num_seqs, max_batched_tokens, admission, preemption, chunked_prefill, mixed,
            step_overhead_s, overlap_scheduler, prefill_launch_s, prefix_caching,
            release_after_launch, reply_latency_s: override the engine's knobs (None: the
            preset's; :class:`Engine`'s attributes). ``preemption="swap"`` copies a preempted
            sequence's KV to the offload tier and back instead of recomputing it;
            ``overlap_scheduler`` chooses a step's batch while the step before it runs;
            ``prefill_launch_s`` is the host time per kernel launch of a step with prefill tokens,
            run outside CUDA graphs: such a step takes at least its kernels times it;
            ``prefix_caching=False`` recomputes a preempted sequence's whole KV, where vLLM's
            prefix cache, on by default, keeps the blocks no other sequence has needed since;
            ``release_after_launch`` (with the overlap scheduler) sends a step's tokens only once
            the next step is launched; ``reply_latency_s`` (seconds, >= 0) is a closed-loop
            client's reply, from a response's last token to its next request reaching the
            scheduler, also in every TTFT and e2e.
        swap_tier: the offload tier of swap preemption: a memory tier id, ``ID:N`` for N per node,
            or ``host`` (the default: the device's host memory in hardware_db); only with
            preemption="swap" (else refused).
        seed: seed of the random lengths and arrival times (the same seed, the same result).
        records: keep the per-request records (``result.records``).
        timeline: keep the running batch, the queue and the KV use over time
            (``result.timeline``: arrays ``t_s``, ``running``, ``queued``,
            ``kv_used_bytes_per_device``, a step function; also under ``timeline`` in ``to_dict()``).
        system: a system id whose fabric connects the devices (as :func:`genmodel.estimate`).
        ideal: peak figures, no efficiencies or overheads.
        disaggregated: a prefill pool and a decode pool with the KV transfer between them
            (:mod:`genmodel._simulate_disagg`); the plan is then per pool, and ``tp``, ``ep``,
            ``dp`` are not given (``devices``, if given, must be both pools' total).
        prefill_tp, prefill_ep, prefill_dp, prefill_workers: each prefill instance's plan, and
            the instances (default 1 each); decode_tp, decode_ep, decode_dp, decode_workers: the
            same for the decode pool.
        prefill_max_batch, decode_max_batch: each pool's cap on running sequences per replica
            (default: the engine's ``max_num_seqs``).
        routing: "least-loaded" (default) or "round-robin" over each pool's replicas.
        first_token: "decode" (default: the decode worker's first step emits it, as clients of
            vLLM, Dynamo and llm-d see it) or "prefill" (the prefill worker's token, DistServe).
        options: :func:`genmodel.estimate`'s plan, dtype and run options (tp, pp, ep, dp, devices,
            weight_dtype, act_dtype, kv_dtype, prefix_hit_rate, ...).

    Returns:
        The :class:`SimulationResult`; ``to_dict()`` gives the JSON keys.

    Raises:
        SpecError: bad arguments (not exactly one arrival process, an unknown engine knob value,
            a negative rate, an unreadable trace). UnknownEntryError: an unknown id or engine.
        InfeasibleError: the deployment does not fit.
    """
    kinds = [
        k
        for k, v in (("concurrency", concurrency), ("request_rate", request_rate), ("trace", trace))
        if v is not None
    ]
    if len(kinds) != 1:
        raise SpecError(
            "give exactly one of concurrency=, request_rate= or trace="
            + (f" (got {', '.join(kinds)})" if kinds else "")
        )
    knobs = {
        "max_num_seqs": max_num_seqs,
        "max_batched_tokens": max_batched_tokens,
        "admission": admission,
        "preemption": preemption,
        "prefix_caching": prefix_caching,
        "chunked_prefill": chunked_prefill,
        "mixed": mixed,
        "step_overhead_s": step_overhead_s,
        "overlap_scheduler": overlap_scheduler,
        "prefill_launch_s": prefill_launch_s,
        "release_after_launch": release_after_launch,
        "reply_latency_s": reply_latency_s,
    }
    spec = ServingSpec(
        requests_per_client=requests_per_client,
        warmup_requests=warmup_requests,
        warmup_restart=warmup_restart,
        warmup_replay=warmup_replay,
        burstiness_cv=burstiness_cv,
        spreads=LengthSpreads(input_spread=input_spread, output_spread=output_spread),
        engine=engine,
        knobs=tuple(knobs.items()),
        seed=seed,
    )
    arrivals, lengths = _arrivals(
        spec,
        concurrency=concurrency,
        request_rate=request_rate,
        trace=trace,
        requests=requests,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )
    pools = {
        "prefill_tp": prefill_tp,
        "prefill_ep": prefill_ep,
        "prefill_dp": prefill_dp,
        "prefill_workers": prefill_workers,
        "prefill_max_batch": prefill_max_batch,
        "decode_tp": decode_tp,
        "decode_ep": decode_ep,
        "decode_dp": decode_dp,
        "decode_workers": decode_workers,
        "decode_max_batch": decode_max_batch,
    }
    prompts, outputs = length_draws(spec.spreads, *lengths)
    common: dict[str, Any] = {
        "arrivals": arrivals,
        "input_tokens": prompts,
        "output_tokens": outputs,
        "seed": spec.seed,
        "ideal": ideal,
        "records": records,
    }
    if disaggregated:
        if timeline:
            raise SpecError("timeline=True is kept for aggregated simulations only (not disaggregated=True)")
        return _simulate_disaggregated(
            model,
            hardware,
            system,
            lengths,
            pools,
            options,
            spec=spec,
            swap_tier=swap_tier,
            routing=routing,
            first_token=first_token,
            common=common,
        )
    stray = {**pools, "routing": routing, "first_token": first_token}
    given = [f"{k}={v!r}" for k, v in stray.items() if v is not None]
    if given:
        raise SpecError(f"{', '.join(given)}: needs disaggregated=True")
    # the specs exactly as estimate() builds them (and its checks: plan, dtypes, one sequence fits)
    check = estimate(
        model,
        hardware,
        input_tokens=lengths[0],
        output_tokens=lengths[1],
        batch=1,
        system=system,
        ideal=ideal,
        **options,
    )
    m, hw = _specs(model, hardware, system)
    chosen = spec.engine_on(hw.device)
    hw, run = profiled(hw, check.options, chosen.name)
    result = simulate_serving(
        m,
        hw,
        check.plan,
        check.precision,
        engine=chosen,
        options=run,
        swap_tier=_swap_tier(chosen, swap_tier, hw.device),
        timeline=timeline,
        **common,
    )
    return dataclasses.replace(result, notes=check.notes)  # what estimate() would say of it


def _specs(
    model: str | ModelSpec, hardware: str | Device | System, system: str | System | None
) -> tuple[ModelSpec, System]:
    """The model and the system, as :func:`genmodel.estimate` resolves them."""
    m = model if isinstance(model, ModelSpec) else load_model(model)  # (load_model names a wrong type)
    hw = load_hardware(hardware) if isinstance(hardware, str) else as_system(hardware)
    if system is not None:
        hw = (load_system(system) if isinstance(system, str) else system).with_device(hw.device)
    return m, hw


#: the pools of a disaggregated simulation, in the order of their specs
_POOLS = ("prefill", "decode")

#: the plan keywords that are per pool in a disaggregated simulation
_PLAN_KEYS = ("tp", "pp", "ep", "dp", "cp", "devices")


def _simulate_disaggregated(
    model: str | ModelSpec,
    hardware: str | Device | System,
    system: str | System | None,
    lengths: tuple[int, int],
    pools: dict[str, int | None],
    options: dict[str, Any],
    *,
    spec: ServingSpec,
    swap_tier: str | AttachedTier | None,
    routing: str | None,
    first_token: str | None,
    common: dict[str, Any],
) -> SimulationResult:
    """:func:`simulate` with ``disaggregated=True``: each pool's plan checked as :func:`estimate`
    checks one (a prefill instance holds prompts only), then :func:`simulate_disaggregated`."""
    devices = options.pop("devices", None)
    per_pool = [k for k in _PLAN_KEYS if options.get(k) not in (None, 1)]
    if per_pool:
        raise SpecError(
            f"{', '.join(f'{k}={options[k]!r}' for k in per_pool)}: with disaggregated=True the plan is "
            "per pool (prefill_tp=, prefill_ep=, prefill_dp=, decode_tp=, ...)"
        )
    for k in _PLAN_KEYS:
        options.pop(k, None)
    given: dict[str, Any] = {k: v for k, v in pools.items() if v is not None}
    require_ints(**given)  # each named as given (a pool's check names its worker's field: tp=)
    m, hw = _specs(model, hardware, system)
    base = spec.engine_on(hw.device)
    specs = []
    for side, output in (("prefill", 1), ("decode", lengths[1])):
        degrees: dict[str, Any] = {k: _or_one(pools[f"{side}_{k}"]) for k in ("tp", "ep", "dp")}
        try:
            check = estimate(
                model,
                hardware,
                input_tokens=lengths[0],
                output_tokens=output,
                batch=1,
                system=system,
                ideal=common["ideal"],
                **degrees,
                **options,
            )
        except InfeasibleError as exc:  # name the pool
            raise InfeasibleError([f"{side} pool: {v}" for v in exc.violations]) from None
        cap = pools[f"{side}_max_batch"]
        specs.append(
            (
                check,
                WorkerPool(
                    plan=check.plan,
                    engine=base.replace(max_num_seqs=cap),
                    workers=_or_one(pools[f"{side}_workers"]),
                ),
            )
        )
    (check, pre), (decode_check, dec) = specs
    hw, run = profiled(hw, check.options, base.name)  # the profile in force, as an aggregated run's
    if devices is not None and devices != pre.devices + dec.devices:
        raise SpecError(
            f"devices={devices} must equal the pools' devices: prefill {pre.workers} x "
            f"{pre.plan.num_devices} + decode {dec.workers} x {dec.plan.num_devices} = "
            f"{pre.devices + dec.devices}"
        )
    result = simulate_disaggregated(
        m,
        hw,
        check.precision,
        prefill=pre,
        decode=dec,
        options=run,
        routing=routing or ROUTINGS[0],
        first_token=first_token or FIRST_TOKENS[0],
        swap_tier=_swap_tier(dec.engine, swap_tier, hw.device),
        **common,
    )
    notes = _pool_notes(hw, check, decode_check, devices=pre.devices + dec.devices)
    return dataclasses.replace(result, notes=notes)


def _pool_notes(hw: System, prefill: Estimate, decode: Estimate, *, devices: int) -> tuple[str, ...]:
    """Both pools' notes, as :func:`estimate` gives each pool's: one that both give once, another
    with its pool named; the fabric's note is the whole deployment's (``devices``), not a pool's,
    since the KV moves between the pools over that fabric."""
    own = [[n for n in est.notes if n != hw.fabric_note(est.plan.num_devices)] for est in (prefill, decode)]
    both = [n for n in own[0] if n in own[1]]
    named = [
        f"{side} pool: {n}" for side, notes in zip(_POOLS, own, strict=True) for n in notes if n not in both
    ]
    return (*both, *named, *filter(None, [hw.fabric_note(devices)]))


def _or_one(value: int | None) -> int:
    return 1 if value is None else value


def _swap_tier(engine: Engine, spec: str | AttachedTier | None, device: Device) -> AttachedTier | None:
    """The offload tier of swap preemption (None for recompute); ``host`` by default.

    Raises:
        SpecError: the device has no such tier (e.g. no host memory tier in hardware_db); a tier
            given to an engine that preempts by recompute (it would go unused, unchecked).
    """
    if engine.preemption != "swap":
        if spec is not None:
            raise SpecError(
                f"swap_tier={spec if isinstance(spec, str) else spec.tier.id!r} needs preemption='swap' "
                f"(engine {engine.name} preempts by {engine.preemption})"
            )
        return None
    try:
        return attached_tier("host" if spec is None else spec, "swap_tier", device)
    except SpecError as exc:
        raise SpecError(f"preemption='swap' needs a KV offload tier: {exc}") from None


def _arrivals(
    spec: ServingSpec,
    *,
    concurrency: int | None,
    request_rate: float | None,
    trace: str | Path | tuple[tuple[float, int, int], ...] | None,
    requests: int | None,
    input_tokens: int | None,
    output_tokens: int | None,
) -> tuple[Arrivals, tuple[int, int]]:
    """The arrival process of ``spec``'s client, and the (input, output) lengths to check the
    deployment with."""
    if spec.burstiness_cv is not None and request_rate is None:
        raise SpecError(
            f"burstiness_cv={spec.burstiness_cv!r} shapes request_rate= arrivals only: give request_rate="
        )
    if concurrency is None:
        spec.check_closed_loop("request_rate=" if trace is None else "trace=")
    if trace is not None:
        if input_tokens is not None or output_tokens is not None:
            raise SpecError("a trace gives each request's lengths: drop input_tokens= and output_tokens=")
        rows = read_trace(trace) if isinstance(trace, (str, Path)) else tuple(trace)
        arrivals = Arrivals(kind="trace", trace=rows)
        return arrivals, (max(r[1] for r in rows), max(r[2] for r in rows))
    if input_tokens is None or output_tokens is None:
        raise SpecError("input_tokens= and output_tokens= are needed without a trace")
    if concurrency is not None:
        arrivals = _closed_loop(spec, concurrency, requests)
    else:
        assert request_rate is not None
        arrivals = Arrivals(
            kind="poisson" if spec.burstiness_cv is None else "gamma",
            rate_per_s=request_rate,
            cv=1.0 if spec.burstiness_cv is None else spec.burstiness_cv,
            requests=DEFAULT_REQUESTS if requests is None else requests,
        )
    return arrivals, (input_tokens, output_tokens)


def _closed_loop(spec: ServingSpec, concurrency: int, requests: int | None) -> Arrivals:
    """``concurrency`` closed-loop clients of ``spec``, sending ``requests`` in all if given."""
    fewest = spec.per_client  # the default warm-up leaves each client one measured request
    if isinstance(requests, int) and isinstance(concurrency, int) and concurrency > 0:
        fewest = requests // concurrency  # (the requests split over the clients)
    return Arrivals(
        kind="closed",
        clients=concurrency,
        requests_per_client=spec.per_client,
        warmup_requests=spec.warmup(fewest),
        warmup_restart=spec.warmup_restart,
        warmup_replay=spec.warmup_replay,
        requests=requests,
    )
