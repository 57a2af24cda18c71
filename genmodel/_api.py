"""The public API: one estimate by id (static or serving), its run options, and memory reports.

Modelling assumptions: none of its own; this layer resolves ids through ``genmodel.io`` and calls
the core (:mod:`genmodel._phases`, :mod:`genmodel._serving`). Plans are in :mod:`genmodel._planning`,
validation in :mod:`genmodel._validate`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from genmodel._engines import Engine
from genmodel._errors import InfeasibleError, SpecError, UnknownEntryError
from genmodel._hardware import AttachedTier, Device
from genmodel._memory import paged_tokens
from genmodel._model import ModelSpec
from genmodel._options import DEFAULT_OPTIONS, OptionSpec, RunOptions, with_values
from genmodel._parallel import Plan
from genmodel._phases import Estimate, estimate_static
from genmodel._profiles import apply_profile
from genmodel._scalars import plain_scalars
from genmodel._servingmodel import SERVING_MODELS, ServingSpec
from genmodel._simestimate import StepTables
from genmodel._system import System, as_system
from genmodel._units import DTYPE_BYTES, check_weight_dtype, dtype_id
from genmodel._workload import KEEP_CHECKPOINT, LengthSpreads, Precision, keep_rule
from genmodel.io import device_profile, load_hardware, load_memory_tier, load_model, load_profile, load_system
from genmodel.report import estimate_dict


def default_precision(
    weight_dtype: str = "bf16",
    act_dtype: str | None = None,
    kv_dtype: str | None = None,
    *,
    model: ModelSpec | None = None,
    keep_modules: str = KEEP_CHECKPOINT,
) -> Precision:
    """Precisions with defaults: activations as the weights (bf16 under 4-bit weights and under a
    quantised format such as q8_0, whose weights are dequantised), KV bf16; the modules kept in
    another precision as ``keep_modules`` says (:func:`genmodel._workload.keep_rule`): by
    default those the published ``weight_dtype`` checkpoint of ``model`` keeps
    (:meth:`ModelSpec.kept_modules_for`; none without a model), ``none``, or ``module=dtype``
    pairs over the checkpoint's.

    Dtypes are taken in any case (``FP8``, ``BF16``), as their lower-case ids.

    Raises:
        SpecError: an unknown dtype or a malformed ``keep_modules``.
    """
    weight_dtype = check_weight_dtype("weight_dtype", dtype_id(weight_dtype))
    act_dtype = None if act_dtype is None else dtype_id(act_dtype)
    kv_dtype = None if kv_dtype is None else dtype_id(kv_dtype)
    if act_dtype is None:
        plain = weight_dtype in DTYPE_BYTES and DTYPE_BYTES[weight_dtype] >= 1
        act_dtype = weight_dtype if plain else "bf16"
    if kv_dtype is None:
        kv_dtype = "fp32" if act_dtype == "fp32" else "bf16"
    keep = keep_rule(keep_modules, () if model is None else model.kept_modules_for(weight_dtype))
    return Precision(weight_dtype=weight_dtype, act_dtype=act_dtype, kv_dtype=kv_dtype, keep_modules=keep)


def attached_tier(
    spec: str | AttachedTier | None, field_name: str = "tier", device: Device | None = None
) -> AttachedTier | None:
    """A memory tier by id, ``ID:N`` for N of them per node, ``host`` for the device's own host
    memory tier, or as given.

    Raises:
        SpecError: N is not a positive integer, or ``host`` for a device without one.
        UnknownEntryError: no such tier.
    """
    if spec is None or isinstance(spec, AttachedTier):
        return spec
    name, _, count = spec.partition(":")
    if name == "host":
        if device is None:
            raise SpecError(f"{field_name}={spec!r}: 'host' needs the device whose host memory it names")
        if device.host is None:
            raise SpecError(
                f"{field_name}={spec!r}: hardware={device.id} has no host memory tier in hardware_db"
            )
        name = device.host.tier_id
    n = 1
    if count:
        if not count.isdigit() or int(count) < 1:
            raise SpecError(f"{field_name}={spec!r}: the count after ':' must be an integer >= 1")
        n = int(count)
    return AttachedTier(tier=load_memory_tier(name), count=n)


def run_options(
    hardware: str | Device | System | None = None,
    *,
    options: RunOptions | None = None,
    **values: Any,
) -> RunOptions:
    """:class:`RunOptions` from keyword values, as :func:`estimate` takes them.

    Args:
        hardware: the device (or system, or its id) whose host memory ``'host'`` names; needed
            only for an offload tier given as ``'host'``.
        options: the options to start from (default: every option at its default).
        values: options by their keyword (:data:`OPTION_SPECS`: ``prefix_hit_rate=0.5``,
            ``draft_tokens=1``, ``kv_offload="host"``, ...); memory tiers and draft models may be
            given by id; ``draft_tokens=0`` turns speculation off.

    Returns:
        ``options`` with those fields replaced.

    Raises:
        SpecError: an unknown keyword or a value the options reject. UnknownEntryError: an
            unknown tier or model id.
    """
    base = DEFAULT_OPTIONS if options is None else options
    if not values:
        return base
    device = None
    if hardware is not None:
        device = (load_hardware(hardware) if isinstance(hardware, str) else as_system(hardware)).device

    def load(spec: OptionSpec, value: str) -> Any:
        if spec.load == "tier":
            return attached_tier(value, spec.name, device)
        if spec.load == "profile":
            return load_profile(value)
        return load_model(value)

    return with_values(base, values, load)


def _system(hardware: str | Device | System, system: str | System | None) -> System:
    """The system of ``hardware``, or ``system`` (which must be built from the same device).

    A Device object implies the system its id implies (its figures as given, in that system's
    fabric), so ``estimate(m, load_device("h100-sxm"))`` equals ``estimate(m, "h100-sxm")``. A device
    whose id is not in the database, or whose links were added, removed or edited beyond their
    bandwidth, gets the system its own links make (:meth:`System.of_device`); a link bandwidth
    edit scales the fabric tiers of its level (:func:`_system_of_device`).
    """
    if isinstance(hardware, Device):
        hw = _system_of_device(hardware)
    elif isinstance(hardware, System):
        hw = hardware
    elif isinstance(hardware, str):
        hw = load_hardware(hardware)
    else:  # (the cached loader met a list with a TypeError: unhashable)
        raise SpecError(f"hardware={hardware!r} must be an id (a string), a Device or a System")
    if system is None:
        return hw
    chosen = load_system(system) if isinstance(system, str) else system
    if chosen.device.id != hw.device.id:
        raise SpecError(
            f"system={chosen.id} is built from hardware={chosen.device.id}, not {hw.device.id}; "
            "give the system alone as --hardware"
        )
    return chosen.with_device(hw.device)


def system_of(hardware: str | Device | System) -> System:
    """The system an estimate on ``hardware`` runs in: an id's, the one a Device implies (see
    :func:`_system`), or a System as given."""
    return _system(hardware, None)


def _system_of_device(device: Device) -> System:
    """The database's system for ``device.id`` around ``device``, else the bare device's system.

    A link whose bandwidth alone was edited keeps the system, with the fabric tiers of its level
    scaled by the same factor, so more link bandwidth is never a slower fabric; a link added,
    removed or otherwise edited makes the device's own system from its links.
    """
    try:
        known = load_hardware(device.id)
    except UnknownEntryError:
        return as_system(device)
    factors = _link_factors(known.device, device) if known.device.id == device.id else None
    if factors is None:
        return as_system(device)
    fabric = tuple(
        dataclasses.replace(t, bandwidth_bytes_per_s=t.bandwidth_bytes_per_s * factors[t.level])
        if factors[t.level] != 1
        else t
        for t in known.fabric
    )
    return dataclasses.replace(known, device=device, fabric=fabric)


def _link_factors(old: Device, new: Device) -> dict[str, float] | None:
    """New over old link bandwidth per level (scale_up, scale_out); None when a link was added,
    removed or changed in more than its bandwidth."""
    factors = {}
    for level in ("scale_up", "scale_out"):
        a, b = getattr(old, level), getattr(new, level)
        if a is None or b is None:
            if a is not b:
                return None
            factors[level] = 1.0
        elif dataclasses.replace(b, bandwidth_bytes_per_s=a.bandwidth_bytes_per_s) != a:
            return None
        else:
            factors[level] = b.bandwidth_bytes_per_s / a.bandwidth_bytes_per_s
    return factors


def profiled(hw: System, run: RunOptions, engine: str | Engine | None) -> tuple[System, RunOptions]:
    """The system with the profile in force applied, and the run options that name it.

    The profile is ``run.profile``; if None and an ``engine`` serves the run, the database's
    profile of the device for that engine (hardware_db/profiles/); else none (the device
    file's values, which the ``default`` profile documents).
    """
    profile = run.profile
    if profile is None and engine is not None:
        profile = device_profile(hw.device.id, engine if isinstance(engine, str) else engine.name)
        if profile is not None:
            run = dataclasses.replace(run, profile=profile)
    return apply_profile(hw, profile), run


def check_moe_options(model: ModelSpec, run: RunOptions, *, ep: int | None = None) -> None:
    """Refuse run options that only a mixture-of-experts model has a use for, given a dense one,
    and a single-batch overlap that has nothing to hide or nothing to hide it behind (they would
    change nothing, silently).

    Args:
        ep: the expert-parallel degree of the one plan estimated; None for a search over plans
            (whose ep > 1 layouts have a combine to hide).

    Raises:
        SpecError: ``expert_offload``, ``combine_overlap`` (other than ``none``) or
            ``redundant_experts`` (> 0) with a model without experts; ``combine_overlap='shared'``
            with a model without shared experts; ``combine_overlap`` at ``ep=1`` (no combine
            all-to-all: the experts' outputs stay on their device).
    """
    if model.moe is not None:
        if run.combine_overlap == "shared" and not model.moe.shared_intermediate_size:
            raise SpecError(
                f"combine_overlap='shared' needs shared experts; {model.id} has none "
                "('down' hides the combine behind the routed experts' down GEMM)"
            )
        if run.combine_overlap != "none" and ep == 1:
            raise SpecError(
                f"combine_overlap={run.combine_overlap!r} needs expert parallelism (ep > 1): at ep=1 "
                "there is no combine all-to-all to hide"
            )
        return
    if run.offload.experts is not None:
        raise SpecError(f"expert_offload={run.offload.experts.label}: model={model.id} has no experts")
    if run.combine_overlap != "none":
        raise SpecError(
            f"combine_overlap={run.combine_overlap!r} needs a mixture-of-experts model; {model.id} is dense"
        )
    if run.redundant_experts:
        raise SpecError(
            f"redundant_experts={run.redundant_experts} needs a mixture-of-experts model; {model.id} is dense"
        )


def _plan(devices: int | None, **degrees: int) -> Plan:
    plan = Plan(**degrees)
    if devices is not None and devices != plan.num_devices:
        shown = ", ".join(f"{k}={degrees[k]}" for k in ("tp", "pp", "dp", "cp"))
        raise SpecError(f"devices={devices} must equal tp*pp*dp*cp={plan.num_devices} ({shown})")
    return plan


@plain_scalars
def estimate(
    model: str | ModelSpec,
    hardware: str | Device | System,
    *,
    input_tokens: int,
    output_tokens: int,
    batch: int | str | None = None,
    concurrency: int | None = None,
    devices: int | None = None,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    dp: int = 1,
    cp: int = 1,
    system: str | System | None = None,
    weight_dtype: str = "bf16",
    act_dtype: str | None = None,
    kv_dtype: str | None = None,
    ideal: bool = False,
    serving: str = SERVING_MODELS[0],
    engine: str | Engine = "vllm",
    step_tables: StepTables | None = None,
    requests_per_client: int | None = None,
    warmup_requests: int | None = None,
    warmup_restart: bool = True,
    warmup_replay: bool = True,
    input_spread: float = 0.0,
    output_spread: float = 0.0,
    options: RunOptions | None = None,
    **option_values: Any,
) -> Estimate:
    """Estimate TTFT, TPOT, throughput and memory of ``model`` on ``hardware`` under a plan.

    Args:
        model: a model id or alias (``genmodel models list``), a config.json path, or a ModelSpec.
        hardware: a device or system id or alias (``genmodel hw list``), a Device or a System. A
            device implies the system built from it (h100-sxm: dgx-h100).
        input_tokens: prompt tokens per request.
        output_tokens: generated tokens per request.
        batch: static batch over the whole deployment, or "max" (largest that fits); default 1.
        concurrency: clients in a closed loop against a continuously batching server (serving
            mode): ttft_s and tpot_s are then the means a request sees, from ``serving``.
        devices: total devices; must equal tp * pp * dp * cp when given.
        tp, pp, ep, dp, cp: tensor, pipeline, expert, data (attention-DP for MoE models) and
            context parallel degrees; ep divides tp * dp.
        system: a system id (or System) whose fabric connects the devices; its device must be
            ``hardware``'s.
        weight_dtype, act_dtype, kv_dtype: precisions (fp32, bf16, fp16, fp8, int8, fp4, int4);
            weights also a quantised format with its scales (q4_0, q4_k_m, q8_0, ...:
            ``genmodel.WEIGHT_FORMATS``).
        ideal: every efficiency 1 and no overheads (the pure roofline bound).
        serving: with ``concurrency``, the serving model: "simulated" (the default: the engine's
            scheduler step by step, the clients started together, 12 requests each of which
            the first 2 are a warm-up left out of the means) or
            "closed-form" (the steady state the plan search uses). A deployment the simulation
            does not cover (pp, cp, overlapped microbatches, speculation, offload) gets the
            closed form, with a note in ``serving.notes``.
        engine: the simulated engine: vllm (0.10, the default), sglang (0.5), trtllm (1.0), or
            an :class:`Engine` with its knobs changed.
        step_tables: step-cost tables to reuse across simulated estimates of the same
            deployment (:class:`StepTables`; None: each estimate builds its own).
        requests_per_client: with the simulated serving model, the requests each client sends,
            warm-up included (None: 12, as genai-perf sends them in AIConfigurator's harness).
        warmup_requests: with the simulated serving model, each client's first requests, sent
            but left out of the means (a benchmark's warm-up phase; None: 2, fewer when a client
            sends fewer than 3).
        warmup_restart: the warm-up drains, then every client starts its measured requests
            together, as perf_analyzer (under genai-perf) does (the default); False: each client
            goes straight on (a steady load: the plan re-check's client). Both serving models.
        warmup_replay: with the restart, each client's first measured requests send the prompts
            of its warm-up again, as perf_analyzer's restarted workers do (the default); an engine
            with ``prefix_caching`` (vLLM, SGLang) finds them cached. False: fresh prompts. The
            simulated serving model only.
        input_spread, output_spread: with ``concurrency``, each request's prompt and output
            length drawn uniformly within +- this fraction of ``input_tokens`` and
            ``output_tokens`` (in [0, 1); a random dataset's range ratio; seed 0); 0, the default:
            every request the given lengths. The simulated serving model draws them; the closed
            form (and a deployment the simulation does not cover) takes the means, and of the
            spread only that the clients fall out of step after a round that starts together.
        options: how the serving stack runs the plan (:class:`RunOptions`: overlap, MoE load,
            speculation, paging, prefix cache, sparse attention, chunked prefill, offload tiers).
        option_values: the same options by keyword, replacing those of ``options``; the
            keywords are the names of :data:`OPTION_SPECS` (``comm_overlap_frac``,
            ``overlap_microbatches``, ``redundant_experts``, ``moe_imbalance``, ``draft_tokens``,
            ``acceptance_rate``, ``draft_model``, ``disaggregated``, ``allreduce_algorithm``,
            ``kv_block_tokens``, ``prefix_hit_rate``, ``sparse_attention_frac``,
            ``prefill_chunk``, ``profile``, ``kv_offload``, ``weight_offload``, ``expert_offload``,
            ``kv_window``, ``expert_hit_rate``, ``offload_overlap``); see :func:`run_options`.

    Returns:
        An :class:`Estimate`; :func:`genmodel.report.estimate_dict` gives its JSON keys.

    Raises:
        SpecError: malformed arguments, an unknown serving model. UnknownEntryError: unknown
            ids or engine. InfeasibleError: the plan cannot run (divisibility, memory).
    """
    m = model if isinstance(model, ModelSpec) else load_model(model)  # (load_model names a wrong type)
    hw = _system(hardware, system)
    spec = ServingSpec(
        engine=engine,
        requests_per_client=requests_per_client,
        warmup_requests=warmup_requests,
        warmup_restart=warmup_restart,
        warmup_replay=warmup_replay,
        spreads=LengthSpreads(input_spread=input_spread, output_spread=output_spread),
    )
    served = spec.serving_model(serving, device=hw.device, tables=step_tables)
    plan = _plan(devices, tp=tp, pp=pp, ep=ep, dp=dp, cp=cp)
    run = run_options(hw, options=options, **option_values)
    hw, run = profiled(hw, run, None if concurrency is None else engine)
    check_moe_options(m, run, ep=ep)
    precision = default_precision(weight_dtype, act_dtype, kv_dtype, model=m, keep_modules=run.keep_modules)
    tokens = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    if concurrency is None:
        if not spec.spreads.fixed:
            raise SpecError(
                "input_spread= and output_spread= need concurrency= (serving): a static batch has one length"
            )
        spec.check_closed_loop("a static batch")
        n = 1 if batch is None else batch
        return estimate_static(m, hw, plan, precision, batch=n, ideal=ideal, options=run, **tokens)
    if batch is not None:
        raise SpecError("give either batch= (static) or concurrency= (serving), not both")
    if run.disaggregated:
        raise SpecError(
            "disaggregated=True with concurrency=: the serving estimate is co-located; "
            "genmodel.plan(..., disaggregated=True) sizes separate prefill and decode pools"
        )
    return served.estimate(
        m, hw, plan, precision, concurrency=concurrency, ideal=ideal, options=run, **tokens
    )


@plain_scalars
def max_concurrency(
    model: str | ModelSpec,
    hardware: str | Device | System,
    *,
    context_tokens: int,
    output_tokens: int = 1,
    options: RunOptions | None = None,
    **estimate_args: Any,
) -> int:
    """Most sequences of ``context_tokens`` tokens (prompt + output) the deployment holds at once;
    0 when not even one fits. ``options`` and ``estimate_args`` are :func:`estimate`'s (run
    options; plan, dtypes and run options by keyword)."""
    if context_tokens <= output_tokens:
        raise SpecError(f"context_tokens={context_tokens} must exceed output_tokens={output_tokens}")
    try:
        est = estimate(
            model,
            hardware,
            input_tokens=context_tokens - output_tokens,
            output_tokens=output_tokens,
            batch="max",
            options=options,
            **estimate_args,
        )
    except InfeasibleError:
        return 0
    return est.batch


@plain_scalars
def memory_report(
    model: str | ModelSpec,
    hardware: str | Device | System,
    *,
    input_tokens: int,
    output_tokens: int,
    batch: int | str | None = "max",
    contexts: int | Sequence[int] = (),
    options: RunOptions | None = None,
    **estimate_args: Any,
) -> dict[str, Any]:
    """Where every byte of a deployment lives, per memory tier, and how many users fit.

    Args:
        batch: sequences to place (default "max": the most that fit).
        contexts: context lengths (tokens per sequence) for the capacity -> concurrency curve
            (one length, or several).
        options: the run options (:class:`RunOptions`), as :func:`estimate` takes them.
        estimate_args: :func:`estimate`'s plan, dtypes and run options by keyword.

    Returns:
        JSON-ready: ``batch``, ``kv_bytes_per_token_per_device``, ``kv_bytes_per_sequence``,
        ``swap_s_per_sequence`` (a context switch to the KV tier), ``tiers`` (per tier: id,
        medium, bytes per device by kind, capacity and bandwidth per device), ``fits``, and
        ``concurrency`` (per context: the max concurrent sequences).
    """
    est = estimate(
        model,
        hardware,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        batch=batch,
        options=options,
        **estimate_args,
    )
    m = est.memory
    context = input_tokens + output_tokens
    d = estimate_dict(est)
    contexts = (contexts,) if isinstance(contexts, int) else contexts  # (an int was a TypeError)
    return {
        "model": est.model_id,
        "hardware": est.hardware_id,
        "system": d["system"],
        "devices": est.num_devices,
        "tp": est.plan.tp,
        "pp": est.plan.pp,
        "ep": est.plan.ep,
        "dp": est.plan.dp,
        "cp": est.plan.cp,
        "weight_dtype": est.precision.weight_dtype,
        "kv_dtype": est.precision.kv_dtype,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "batch": est.batch,
        "kv_block_tokens": est.options.kv_block_tokens,
        "kv_bytes_per_token_per_device": m.kv_bytes_per_sequence
        / paged_tokens(context, est.options.kv_block_tokens),
        "kv_bytes_per_sequence": m.kv_bytes_per_sequence,
        "swap_s_per_sequence": m.swap_time_s(),
        "fits": m.fits,
        "tiers": [t.to_dict() for t in m.tiers],
        "offload": d["offload"],
        "ttft_s": est.ttft_s,
        "tpot_s": est.tpot_s,
        "concurrency": [
            {
                "context_tokens": c,
                "max_concurrency": _users(model, hardware, c, output_tokens, options, estimate_args),
            }
            for c in contexts
        ],
    }


def _users(
    model: str | ModelSpec,
    hardware: str | Device | System,
    context: int,
    output_tokens: int,
    options: RunOptions | None,
    estimate_args: dict[str, Any],
) -> int:
    """The sequences of ``context`` tokens that fit (:func:`max_concurrency`).

    Raises:
        SpecError: as max_concurrency's, named by the context (a context beyond the model's did
            not say which it was, only input_tokens + output_tokens=... of the context).
    """
    try:
        return max_concurrency(
            model,
            hardware,
            context_tokens=context,
            output_tokens=min(output_tokens, context - 1),
            options=options,
            **estimate_args,
        )
    except SpecError as exc:
        raise SpecError(f"contexts: {context:,} tokens: {exc}") from None
