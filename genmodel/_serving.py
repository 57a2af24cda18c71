"""Serving: a continuously batching server at steady state (``estimate --concurrency``, plan search).

Modelling assumptions:
- Serving (``concurrency`` N): N clients in a closed loop, each sending its next request when the
  last completes, against a continuously batching server (Orca, Yu et al. OSDI 2022; vLLM) that
  runs one request's prefill P between decode steps of its running batch B (per replica). Each
  replica's steady state at B is :func:`~genmodel._servingpoint.serving_point` (rate, prefill share,
  ITL, the closed loop's prefill wait; its module's assumptions), and B solves
  N = X (Z + TTFT + (O-1) ITL) (Little's law). When N's sequences do not fit the KV memory, B is
  the most that fit and the others wait for a slot: TTFT = N / X - (O-1) ITL, where the request
  being prefilled holds one of the B slots
  (B - X P decode: :func:`~genmodel._servingpoint.slot_held_itl_s`), less what the slots' own
  rounds of the wave put before their first token (:func:`kv_limited_rounds`); with one request a
  client the queue drains once and the last running requests decode without prefills
  (:func:`~genmodel._wave.one_shot_ttft_s`, :func:`~genmodel._wave.one_shot_itl_s`). A client that
  takes Z to send its next request (the engine's ``reply_latency_s``, a closed loop's think time) is
  out of the engine that long, and Z is in its TTFT as well (the legs between a request and its
  first token are those of the reply).
- The wave of a benchmark's clients started together (all N prompts at once, and the groups or
  bursts it leaves behind) is a term of its own, added to the steady TTFT when ``wave`` is given
  (:mod:`genmodel._wave`). The prefills of the wave are those the steady state interleaves with the
  decode steps, moved before the first token: the rate stays the steady state's and the ITL gives
  back what TTFT takes, (N / X - TTFT) / (O-1) (Little's law), at least a bare decode step
  (:func:`~genmodel._servingpoint.after_wave`).
- With ``wave`` (an engine), the other requests' prompts cost the decode steps what the engine
  runs, D, not a lone prefill P: the groups of prompts a step holds, and an engine's mixed steps
  sharing the decode step's weight reads; and a graphed decode batch costs the captured size it is
  padded to (:mod:`genmodel._interleave`).
- An open loop (requests at a rate, Poisson; :func:`estimate_open_loop`) is the same replica with
  every request someone else's (N -> infinity): its decode batch B is the one at which the
  replica completes requests as fast as they arrive, X(B) = lambda.
- A request's time outside the forward steps (the serving frontend: HTTP, tokenisation,
  detokenisation, streaming), the efficiency ``request_overhead_s``, is added once to its TTFT
  (so to its end-to-end latency) after the steady state is solved: the clients it keeps out of
  the engine are not taken from the load (at 0.1 s against requests of seconds, a few per cent).
"""

from __future__ import annotations

from typing import Any

from genmodel._cost import GROUP_OPS
from genmodel._engines import WHOLE_SEQUENCES, KvPool
from genmodel._errors import SpecError, require_ints
from genmodel._hardware import Device
from genmodel._instep import admitted_batch, pool_wait
from genmodel._interleave import decode_steps, graph_pads, group_terms, interleaving
from genmodel._memory import MemoryExtras, MemoryUse, engine_max_batch, memory_use
from genmodel._midwait import mid_decode_wait
from genmodel._model import ModelSpec
from genmodel._options import DEFAULT_OPTIONS, RunOptions
from genmodel._parallel import Plan
from genmodel._phases import (
    Estimate,
    ServingState,
    StepTerms,
    decode_pass,
    deployment_fields,
    mean_decode_context,
    prefill_pass,
    prepare,
)
from genmodel._replay import replayed_ttft_s
from genmodel._servingpoint import (
    ServingPoint,
    after_wave,
    serving_point,
    slot_held_itl_s,
    solve_batch,
    step_under_way_s,
)
from genmodel._system import System
from genmodel._units import maximum
from genmodel._wave import (
    Wave,
    eager_prefill,
    engine_chunked,
    one_shot_itl_s,
    one_shot_ttft_s,
    release_wait_s,
    wave_extra_s,
)
from genmodel._workload import Precision


def estimate_serving(
    model: ModelSpec,
    hardware: System | Device,
    plan: Plan,
    precision: Precision,
    *,
    concurrency: int,
    input_tokens: int,
    output_tokens: int,
    ideal: bool = False,
    options: RunOptions = DEFAULT_OPTIONS,
    wave: Wave | None = None,
) -> Estimate:
    """Estimate a continuously batching server with ``concurrency`` clients in a closed loop.

    Each of the ``dp`` replicas serves concurrency/dp clients (each of ``concurrency`` replicas one
    client when there are fewer clients than replicas; the others are idle); its steady state is
    :func:`serving_point` at the decode batch B where the clients it keeps busy equal its share
    (module docstring). ``ttft_s`` is the mean time to first token, ``tpot_s`` the mean
    inter-token latency; ``prefill`` is one request's prefill and ``decode`` the bare decode step
    of the running batch (without the prefills that interleave with it). With ``wave`` (an
    engine's admission and a benchmark client), TTFT adds the wave of the clients started together
    (:func:`~genmodel._wave.wave_extra_s`; :func:`after_wave` for the ITL and rate), or when the KV
    memory caps the batch, the wave of the slots' rounds (:func:`kv_limited_rounds`).

    Raises:
        SpecError: concurrency < 1 or output_tokens < 2 (a closed loop needs a decode phase).
        InfeasibleError: the plan cannot run, or one sequence does not fit.
    """
    _require_closed_loop(concurrency, output_tokens)
    wave, pool, think_s = _on_ranks(wave, model, plan)
    options = engine_chunked(wave, input_tokens, options)  # (a prompt over the engine's budget: its chunks)
    system, extras, device, most, lengths = pool_fit(
        model, hardware, plan, precision, input_tokens, output_tokens, ideal, options, pool
    )
    running = min(concurrency, most)
    mem = memory_use(model, device, plan, precision, batch=running, **lengths, extras=extras)
    prefill_terms, stall_terms = prefill_pass(
        model, system, plan, precision, num_seqs=1.0, input_tokens=input_tokens, options=options, memory=mem
    )
    prefill_s = float(prefill_terms.time_s)
    # the clients spread over the replicas; with fewer clients than replicas the others are idle,
    # and a busy replica has at least one client (a fraction of one has no closed loop)
    replicas = min(plan.dp, concurrency)
    clients = concurrency / replicas  # per busy replica
    # an MoE model's attention-DP ranks share the routed experts: with idle ranks the experts serve
    # the busy ranks' tokens and the idle ranks' (SGLang none, a dummy token elsewhere, or the busy
    # ranks' where the engine pads them to those: Wave.idle_ranks, the simulation's
    # genmodel._lockstep), a prompt's and a decode step's
    busy = replicas / plan.dp if model.moe is not None else 1.0
    tp = plan.server_gpus(moe=model.moe is not None)

    def idle_ranks(tokens: float, prefill: bool) -> tuple[float, bool]:
        """(the idle ranks' tokens per rank over the group, whether the decode step is eager)"""
        each, eager = (
            (1.0, False) if wave is None else wave.idle_ranks(tokens, prefill=prefill, busy=busy, tp=tp)
        )
        return (1 - busy) * each, eager

    if busy < 1:
        idle_terms, _ = prefill_pass(
            model, system, plan, precision, num_seqs=busy + idle_ranks(input_tokens, True)[0] / input_tokens,
            input_tokens=input_tokens, options=options, memory=mem, need_longest=False,
        )  # fmt: skip
        prefill_s -= _group_s(prefill_terms) - _group_s(idle_terms)
    # a request's own prefill passes are eager steps: at least their kernels' host time
    # (genmodel._hostcost); the steady state's load keeps the GPU time, the host launches of a
    # step being shared by the prompts it holds, and TTFT adds what the host time adds
    # (a step's overhead, each pass's: the prefill's own sums its passes')
    step_overhead_s = system.device.efficiency.step_overhead_s
    host_s, eager_prefill_s = eager_prefill(
        model, plan, precision, wave, input_tokens, options, prefill_s, step_overhead_s
    )
    past = mean_decode_context(input_tokens, output_tokens)

    steps: dict[float, StepTerms] = {}  # the decode step at each batch tried (the last is reported)
    step_times: dict[float, float] = {}  # its time: idle ranks' experts out, eager ones at their launches
    shared: dict[float, float | None] = {}  # D, each prompt's time in the others' decode (None: P)
    pads = graph_pads(wave, model, plan)  # the captured decode batches a graphed one is padded to
    # S(m), the GPU's time (the load's), and D at a batch from its decode step
    full_gpu_s, shared_at = interleaving(
        (model, system, plan, precision, options, mem),
        wave,
        input_tokens,
        prefill_s,
        host_s + step_overhead_s if host_s else 0.0,
    )

    def decode_at(batch: Any, scale: Any = 1.0) -> StepTerms:
        return decode_pass(
            model,
            system,
            plan,
            precision,
            num_seqs=batch,
            past_tokens=past * scale,
            options=options,
            memory=mem,
        )

    padded_steps: dict[tuple[float, float], StepTerms] = {}  # by (rows, context scale)

    def padded_at(rows: Any, scale: Any) -> StepTerms:  # (the solver meets the same whole batches)
        key = (_one(rows), _one(scale))
        if key not in padded_steps:
            padded_steps[key] = decode_at(*key)
        return padded_steps[key]

    def point(batch: float, whole: float | None = None) -> ServingPoint:
        """The steady state at ``batch``, its decode-only steps holding ``whole`` where the clients
        stay in step (:meth:`Wave.decode_only_batch`; None: the cap, every client it admits)."""
        if batch not in steps:
            step = steps[batch] = decode_at(batch)
            step_s, padded = decode_steps(padded_at, batch, pads, step)  # (graphs padded)
            step_s = float(step_s)
            eager_s = host_s + float(step.overhead_s)
            forced = False  # (a decode step the ranks' lockstep runs eagerly)
            if busy < 1:
                idle_tokens, forced = idle_ranks(batch, False)
                step_s -= _group_s(step) - _group_s(decode_at(batch * busy + idle_tokens))
            whole = cap if whole is None else whole
            graphed = batch if wave is None else wave.decode_only_batch(batch, whole)  # (in step: all)
            step_times[batch] = eager_decode_steps(wave, model, plan, graphed, step_s, eager_s)
            if forced:
                step_times[batch] = max(step_times[batch], eager_s)
            # the prompts' groups, their mixed steps, and a step with prompts at least an eager one
            shared[batch] = shared_at(batch, padded, step_times[batch])
        return serving_point(
            prefill_s=prefill_s,
            step_s=step_times[batch],
            decode_batch=batch,
            output_tokens=output_tokens,
            clients=clients,
            think_s=think_s + eager_prefill_s - prefill_s,  # (out of the decode batch that long too)
            interleaved_s=shared[batch],
        )

    # the KV memory's most, or the budget's (a mixed engine's steps admit a few prompts each)
    cap, by_memory = batch_cap(wave, clients, most / plan.dp, input_tokens, output_tokens)
    at_cap = point(cap)
    queue = float(at_cap.clients) < clients  # (the clients queue: for memory, or for the budget)
    kv_limited = queue and by_memory  # (the budget's queue keeps the wave's rounds)
    batch = cap if queue else solve_batch(lambda b: float(point(b).clients), clients, cap)
    state = at_cap if batch == cap else point(batch)
    rate, itl_s = float(state.rate_per_s), float(state.itl_s)
    if kv_limited:  # the prompt being prefilled holds one of the pool's slots (genmodel._servingpoint)
        itl_s = float(slot_held_itl_s(state, prefill_s, step_times[batch], output_tokens))
    # clients not decoding are waiting for (or in) their prefill: Little's law
    queued_s = (
        (clients - rate * (output_tokens - 1) * itl_s) / rate - think_s if queue else float(state.ttft_s)
    )
    queued_s += eager_prefill_s - prefill_s
    ttft_s = queued_s
    # a burst's first tokens that wait for the launch of the eager step after their own (release
    # after launch; a term of the wave, so not where the KV memory caps the batch); their last
    # tokens wait as long, inside e2e: added after the steady state is solved, as the frontend's
    # time, so the load the engine sees is not reduced
    release_s = 0.0
    if wave is not None:
        full = max(full_gpu_s, host_s + step_overhead_s)  # one eager step
    if wave is not None and kv_limited:  # (one request a client: the queue drains once)
        once = (clients, cap, rate, itl_s, input_tokens, output_tokens, eager_prefill_s, full)
        queued_s = ttft_s = one_shot_queue_s(wave, *once, queued_s)
        itl_s = one_shot_itl_s(wave, clients, cap, itl_s, step_times[batch])
        if wave.client.requests(clients) != 1:  # the slots' own rounds (kv_limited_rounds)
            steady_s = float(state.ttft_s) + eager_prefill_s - prefill_s
            under_way = float(step_under_way_s(state, clients, step_times[batch]))
            prompts = (input_tokens, eager_prefill_s, full, steady_s, under_way)
            cycle = (rate, itl_s, step_times[batch], output_tokens, think_s)
            queued_s, itl_s = kv_limited_rounds(wave, cap, prompts, cycle, queued_s)
            ttft_s = queued_s
    elif wave is not None:
        extra = wave_extra_s(
            wave,
            clients=clients,
            input_tokens=input_tokens,
            prefill_s=eager_prefill_s,
            full_step_s=full,
            steady_ttft_s=ttft_s,
            step_wait_s=step_under_way_s(state, clients, step_times[batch]),
        )
        ttft_s += float(extra)
        step_s = step_times[batch]
        itl, rate_wave = after_wave(clients, rate, ttft_s, itl_s, step_s, output_tokens, think_s)
        itl_s, rate = float(itl), float(rate_wave)
        queued_s = ttft_s  # the engine's wait, the wave's included
        release_s = float(release_wait_s(wave, clients, input_tokens, host_s))
        step_s = step_times[batch]

        def steady_ttft_s(replay_prefill_s: float) -> tuple[float, float]:  # at the same running batch
            replayed = serving_point(
                prefill_s=replay_prefill_s,
                step_s=step_s,
                decode_batch=batch,
                output_tokens=output_tokens,
                clients=clients,
                think_s=think_s,
                interleaved_s=shared[batch],
            )
            return float(replayed.ttft_s), float(step_under_way_s(replayed, clients, step_s))

        replay = replayed_ttft_s(
            (model, system, plan, precision, options, mem),
            wave,
            clients=clients,
            lengths=(input_tokens, output_tokens),
            capacity_tokens=most / plan.dp * (input_tokens + lengths["output_tokens"]),
            fresh=(
                eager_prefill_s,
                full,
                queued_s - float(extra),
                float(step_under_way_s(state, clients, step_s)),
            ),
            steady_ttft_s=steady_ttft_s,
            host_s=(host_s, step_overhead_s),
        )
        if replay is not None:  # the client replays its warm-up's prompts, and the engine has them
            queued_s, release_s = replay
            rate = clients / (think_s + queued_s + (output_tokens - 1) * itl_s)  # (Little, as after_wave)
    # clients in step outgrow an on-demand pool sized at their mean progress: the wait for it
    # before the first token where that is longer (genmodel._instep)
    decoding = float(batch)
    decode_s = think_s + (output_tokens - 1) * itl_s + prefill_s - eager_prefill_s  # (of a cycle)
    args = (clients, most / plan.dp, (input_tokens, output_tokens), decode_s, queued_s + release_s)
    past_mean = kv_limited  # (the clients outnumber what the pool holds at their mean progress)
    # (a round that outgrows the pool shrinks its batch as it goes: its mean, rounded up, graphed)
    lock = pool_wait(wave, *args, lambda b: float(point(b, b).rate_per_s))
    if lock is not None:
        (queued_s, rate, decoding), release_s, kv_limited, past_mean = lock, 0.0, True, False
    # at the KV limit, a pool that retracts to the end of its queue, or (past the mean) preempts
    # to its head, puts a part of the wait mid-decode, in the ITL (genmodel._midwait)
    split = (clients, most / plan.dp, (input_tokens, output_tokens), queued_s, itl_s, eager_prefill_s)
    queued_s, itl_s = mid_decode_wait(wave, kv_limited, *split, past_mean=past_mean)
    # the request's time in the serving frontend, once (the load the engine sees is not reduced),
    # and the client's reply, whose legs lie before the first token too
    overhead_s = device.efficiency.request_overhead_s + think_s
    ttft_s = queued_s + release_s + overhead_s
    decode = steps[batch].cost()
    return Estimate(
        **deployment_fields(model, system, plan, precision, options, input_tokens, output_tokens),
        mode="concurrency",
        batch=concurrency,
        ttft_s=ttft_s,
        tpot_s=itl_s,
        prefill=prefill_terms.cost(),
        decode=decode,
        memory=mem,
        decode_stall_s=float(stall_terms.time_s),
        serving=ServingState(
            concurrency=concurrency,
            decode_batch=decoding * replicas,
            request_rate_per_s=rate * replicas,
            prefill_busy_frac=float(state.prefill_busy_frac),
            queue_wait_s=queued_s - eager_prefill_s,
            kv_limited=kv_limited,
            max_running=most,
            request_overhead_s=overhead_s,
        ),
    )


def _require_closed_loop(concurrency: int, output_tokens: int) -> None:
    """Refuse a load :func:`estimate_serving` cannot serve: no whole number of clients, or no decode
    phase."""
    require_ints(concurrency=concurrency)
    if output_tokens < 2:
        raise SpecError(
            f"output_tokens={output_tokens} must be >= 2 in serving mode (concurrency); "
            "use batch= for a prefill-only estimate"
        )


def _on_ranks(wave: Wave | None, model: ModelSpec, plan: Plan) -> tuple[Wave | None, KvPool, float]:
    """(the wave with the knobs each attention-DP rank of an MoE model runs, the engine's KV pool, the
    clients' reply latency: out of the engine, a think time, and before each first token); without
    a wave, whole sequences and an instant reply."""
    if wave is None:
        return None, WHOLE_SEQUENCES, 0.0
    wave = wave.on_ranks(moe=model.moe is not None, dp=plan.dp)
    return wave, wave.pool, wave.reply_latency_s


def kv_limited_rounds(
    wave: Wave,
    slots: float,
    prompts: tuple[int, float, float, float, float],
    cycle: tuple[float, float, float, int, float],
    queued_s: float,
) -> tuple[float, float]:
    """(TTFT, ITL) of a replica whose clients queue for the ``slots`` its KV memory holds
    (``queued_s``: Little's law at the slot-held ITL, ``cycle``'s). The slots' requests, admitted
    together as a round's finish together, are a wave of their own: the round's later prompts run
    before the earlier ones' decode steps, and the wave's term (:func:`~genmodel._wave.wave_extra_s`
    for ``slots`` clients, on the steady TTFT at the cap) puts that time before their first token,
    which :func:`~genmodel._servingpoint.after_wave` takes out of their decode: the ITL those
    clients would see, at most the slot-held one. A request's cycle N / X stays (the rate is the
    cap's), so the TTFT is the queue for a slot and what the decode gives back,
    ``queued_s`` + (O - 1) (slot-held ITL - ITL). A prefill-bound engine whose prompts run in steps
    of their own (SGLang's defaults) admits a round's whole slots' prompts before it decodes again,
    so a request admitted early waits for the round's other prefills after its first token:
    Llama-3.1-405B fp8 at TP8 on B200, 8,000/100, 512 clients over 469 slots: 1.28 s a token simulated, 2.69 s
    slot-held, 1.38 s so. Not for one request a client (its queue drains once:
    :func:`one_shot_queue_s`). ``prompts``: (I, the request's prefill, the wave's full step, the
    steady TTFT at the cap, the part of it that waits for the step under way); ``cycle``: (rate,
    slot-held ITL, decode step, O, think time)."""
    rate, itl_s, step_s, output_tokens, think_s = cycle
    input_tokens, prefill_s, full_s, steady_s, under_way_s = prompts
    extra = wave_extra_s(wave, slots, input_tokens, prefill_s, full_s, steady_s, under_way_s)
    itl, _ = after_wave(slots, rate, steady_s + float(extra), itl_s, step_s, output_tokens, think_s)
    itl = min(float(itl), itl_s)
    return queued_s + (output_tokens - 1) * (itl_s - itl), itl


def one_shot_queue_s(
    wave: Wave,
    clients: float,
    running: float,
    rate: float,
    itl_s: float,
    input_tokens: int,
    output_tokens: int,
    prefill_s: float,
    full_step_s: float,
    queued_s: float,
) -> float:
    """``queued_s``, the closed loop's queue, or where each client sends one request, all sent at
    once (no closed loop), the queue that drains once (:func:`~genmodel._wave.one_shot_ttft_s`)."""
    if wave.client.requests(clients) != 1:
        return queued_s
    args = (clients, running, rate, itl_s, input_tokens, output_tokens, prefill_s, full_step_s)
    return float(one_shot_ttft_s(wave, *args))


def batch_cap(
    wave: Wave | None, clients: float, most: float, input_tokens: int, output_tokens: int
) -> tuple[float, bool]:
    """(the most sequences a replica decodes, whether the KV memory sets it): the clients, the
    pool's ``most`` (per replica), or the fewer a mixed engine's budget keeps decoding
    (:func:`~genmodel._instep.admitted_batch`)."""
    memory = min(clients, most)
    admitted = None if wave is None else admitted_batch(wave, input_tokens, output_tokens)
    if admitted is None or admitted >= memory:
        return memory, True
    return admitted, False


def _one(value: Any) -> float:
    """A number, or the one element of an array, as a float."""
    return float(value.item() if hasattr(value, "item") else value)


def eager_decode_steps(
    wave: Wave | None, model: ModelSpec, plan: Plan, batch: Any, step_s: Any, eager_step_s: float
) -> Any:
    """``step_s`` (the decode steps at the running batches ``batch``, a number or an array) with
    those the engine runs without a CUDA graph (:meth:`Wave.eager_decode`, at the server's GPUs)
    at least one eager step, ``eager_step_s`` (the host launches and the step overhead); the
    estimate and the plan search both take it from here."""
    tp = plan.server_gpus(moe=model.moe is not None)
    if wave is None or wave.engine is None or wave.engine.decode_graphs(tp) == (None, ()):
        return step_s  # (every decode batch graphed)
    import numpy as np

    if np.ndim(batch):  # (a plan search's whole batch grid: the rule in array operations)
        if np.min(step_s) >= eager_step_s:  # no step below the floor (False for a NaN): as it is
            return step_s
        eager = wave.engine.eager_decodes(batch, tp)
    else:
        eager = np.array([wave.eager_decode(float(batch), tp)])
    if not eager.any():
        return step_s
    floored = np.where(eager, np.maximum(step_s, eager_step_s), step_s)
    return floored if np.ndim(batch) else float(floored[0])


def _group_s(terms: StepTerms) -> float:
    """The time of a step's operators whose work the expert-parallel group shares (the routed
    experts, genmodel._stepcost's group operators): on attention-DP ranks in lockstep it follows
    the group's mean tokens per rank."""
    return sum(float(maximum(t.compute_s, t.memory_s)) for t in terms.ops if t.op.name in GROUP_OPS)


def full_step_s(
    model: ModelSpec,
    system: System,
    plan: Plan,
    precision: Precision,
    wave: Wave,
    input_tokens: int,
    prefill_s: float,
    options: RunOptions,
    memory: MemoryUse | None = None,
) -> float:
    """S(m): the prefill of the m prompts a step of the wave's engine holds
    (:func:`~genmodel._interleave.group_terms`); ``prefill_s`` (one prompt's) when m = 1."""
    if wave.prompts_per_step(input_tokens) == 1:
        return prefill_s
    return float(group_terms(model, system, plan, precision, wave, input_tokens, options, memory)[1].time_s)


def pool_fit(
    model: ModelSpec,
    hardware: System | Device,
    plan: Plan,
    precision: Precision,
    input_tokens: int,
    output_tokens: int,
    ideal: bool,
    options: RunOptions,
    pool: KvPool,
) -> tuple[System, MemoryExtras, Device, int, dict[str, int]]:
    """The run's system and memory extras (:func:`~genmodel._phases.prepare`), the device as the
    engine's KV pool sees it, the most sequences it runs, and the lengths a running one holds
    (:func:`~genmodel._memory.engine_max_batch`)."""
    system, extras = prepare(
        model,
        hardware,
        plan,
        precision,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        ideal=ideal,
        options=options,
    )
    lengths = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    device, most, held = engine_max_batch(
        model, system.device, plan, precision, **lengths, pool=pool, extras=extras
    )
    return system, extras, device, most, {**lengths, "output_tokens": held}
