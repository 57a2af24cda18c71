"""The inverse problem: how much of each resource a platform needs to meet TTFT/TPOT targets.

``requirements`` answers "what HBM bandwidth (FLOP/s, memory capacity, scale-up or scale-out
bandwidth) does this platform need for TPOT <= 50 ms?" for one resource at a time, the others kept
at the platform's figures, and says which resource is binding.

Modelling assumptions and method:
- The symbolic form (:func:`symbolic_step_time`) is ``step_cost`` itself run on a system whose
  figures are SymPy symbols: ``F`` (the dense peak FLOP/s of the precision the GEMMs run in; every
  other precision's peak scales with it, as :meth:`System.scaled` scales them), ``B_mem`` (device
  memory bandwidth), ``B_up`` and ``B_out`` (per-device bandwidth of the innermost scale-up and
  scale-out fabric tiers; outer tiers of a level scale with it). The formulas take SymPy as they
  take floats, so the operators, roofline, collectives (``Max``/``Min`` where an all-to-all spans
  two tiers or ``auto`` picks an algorithm), overlap, microbatches and offload are the same code.
- A requirement is solved on the symbolic form (lambdified, ``scipy.optimize.brentq`` over the
  factor), then verified and polished with ``brentq`` on the real ``estimate`` of the scaled
  platform (:meth:`System.scaled`), so the returned figure always makes ``estimate`` meet the target
  and anything 1e-9 smaller misses it. Time is non-increasing in every resource, so the minimum is
  the root of target - time.
- A resource alone cannot meet a target when the time with an unlimited amount of it (the other
  terms: fixed overhead, the other resources' operators, collectives) is already above the target.
- Memory capacity: the smallest capacity at which the deployment (the resolved batch) fits,
  ``estimate(...).memory.fits``; in serving mode, at which the memory holds every client's sequence
  at once (``serving.max_running >= concurrency``). Capacity changes no latency without offload
  tiers (in serving mode, none once every client's sequence fits).
- A deployment that does not fit the platform (not even one sequence, or not the explicit batch or
  concurrency) has no latency on it to solve from. The least capacity at which it fits is solved
  first, on the platform as given, and every other resource is then solved on the platform with
  that capacity (``Requirements.memory_capacity_assumed_factor``). ``batch="max"`` has no size to
  fit and is refused.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from genmodel._api import estimate
from genmodel._errors import InfeasibleError, SpecError
from genmodel._hardware import SCALE_FACTORS, Device, System
from genmodel._memory import MemoryUse
from genmodel._model import ModelSpec
from genmodel._parallel import Plan
from genmodel._phases import (
    Estimate,
    PhaseCost,
    RunOptions,
    as_system,
    decode_pass,
    exposed_transfer_s,
    kv_transfer_time,
    mean_decode_context,
    prefill_pass,
    step_terms,
)
from genmodel._units import MS
from genmodel._workload import Precision
from genmodel.io import load_hardware, load_model, load_system

if TYPE_CHECKING:
    import sympy

#: Resources a requirement can be asked for, with their SI unit (the factor names of System.scaled).
RESOURCES: Mapping[str, str] = MappingProxyType(
    dict(zip(SCALE_FACTORS, ("flop/s", "bytes/s", "bytes", "bytes/s", "bytes/s"), strict=True))
)
#: Symbol name of each resource in the symbolic form.
SYMBOL_NAMES: Mapping[str, str] = MappingProxyType(
    {"flops": "F", "memory_bandwidth": "B_mem", "scale_up_bandwidth": "B_up", "scale_out_bandwidth": "B_out"}
)
_LATENCY_RESOURCES = ("flops", "memory_bandwidth", "scale_up_bandwidth", "scale_out_bandwidth")
_TARGETS = {"ttft_s": "ttft_slo_s", "tpot_s": "tpot_slo_s"}
#: Factors searched: below _X_MIN a resource counts as unused, above _X_MAX as unlimited.
_X_MIN = 1e-12
_X_MAX = 1e12
#: Relative width to which a requirement is pinned down on the real estimate.
_XTOL = 1e-10
#: RunOptions() as a default argument (frozen, so sharing it is safe)
_DEFAULT_OPTIONS = RunOptions()
_TERM_NAMES = {
    "compute_bound_s": "compute-bound operators",
    "memory_bound_s": "memory-bound operators",
    "comm_s": "exposed collectives",
    "offload_s": "exposed offload transfers",
    "overhead_s": "the fixed per-step overhead",
}


def _symbol(resource: str) -> sympy.Symbol:
    import sympy

    return sympy.Symbol(SYMBOL_NAMES[resource], positive=True)


def _tier_bandwidth(system: System, level: str) -> float | None:
    """Per-device bandwidth of the innermost fabric tier of ``level`` (scale_up, scale_out)."""
    for tier in system.fabric:
        if tier.level == level:
            return tier.bandwidth_bytes_per_s
    return None


def _platform_value(system: System, precision: Precision, resource: str) -> float | None:
    d = system.device
    if resource == "flops":
        return d.peak_for(precision.gemm_dtype)
    if resource == "memory_bandwidth":
        return d.memory_bandwidth_bytes_per_s
    if resource == "memory_capacity":
        return d.memory_capacity_bytes
    return _tier_bandwidth(system, resource.removesuffix("_bandwidth"))


def resource_symbols(hardware: System | Device, precision: Precision) -> dict[sympy.Symbol, float]:
    """The symbols of :func:`symbolic_step_time` mapped to the platform's figures (for ``subs``).

    ``F``: dense peak FLOP/s of the precision the GEMMs run in; ``B_mem``: memory bandwidth (B/s);
    ``B_up``, ``B_out``: per-device bandwidth of the innermost scale-up and scale-out tiers (B/s),
    present only where the system has such a tier.
    """
    system = as_system(hardware)
    out: dict[sympy.Symbol, float] = {}
    for resource in _LATENCY_RESOURCES:
        value = _platform_value(system, precision, resource)
        if value is not None:
            out[_symbol(resource)] = value
    return out


def _symbolic_device(device: Device, precision: Precision) -> Device:
    """The device with its peaks F * (peak / peak of the GEMM precision) and bandwidth B_mem."""
    f, b = _symbol("flops"), _symbol("memory_bandwidth")
    ref = device.peak_for(precision.gemm_dtype)
    return dataclasses.replace(
        device,
        peak_flops_per_s={k: f * (v / ref) for k, v in device.peak_flops_per_s.items()},
        memory_bandwidth_bytes_per_s=b,
    )


def _symbolic_system(system: System, precision: Precision) -> System:
    """The system with its figures replaced by the symbols: peaks ``F``, memory bandwidth ``B_mem``,
    and every scale-up (scale-out) tier's bandwidth in proportion to ``B_up`` (``B_out``), the
    innermost tier of its level (as :meth:`System.scaled` scales a level)."""
    reference = {level: _tier_bandwidth(system, level) for level in ("scale_up", "scale_out")}
    fabric = tuple(
        dataclasses.replace(
            t,
            bandwidth_bytes_per_s=_symbol(f"{t.level}_bandwidth")
            * (t.bandwidth_bytes_per_s / (reference[t.level] or t.bandwidth_bytes_per_s)),
        )
        for t in system.fabric
    )
    return dataclasses.replace(system, device=_symbolic_device(system.device, precision), fabric=fabric)


def symbolic_step_time(
    model: ModelSpec,
    system: System | Device,
    plan: Plan,
    precision: Precision,
    *,
    phase: str,
    num_seqs: float,
    new_tokens: float,
    past_tokens: float,
    options: RunOptions = _DEFAULT_OPTIONS,
    memory: MemoryUse | None = None,
) -> sympy.Expr:
    """The time of one forward pass (``step_cost(...).time_s``) as a SymPy expression in the
    platform's figures.

    Args:
        model, system, plan, precision, phase, num_seqs, new_tokens, past_tokens, options, memory:
            as :func:`~genmodel._phases.step_cost`.

    Returns:
        An expression in ``F`` (flop/s: dense peak of the GEMM precision; every precision's peak
        scales with it), ``B_mem`` (memory bandwidth, B/s), ``B_up`` and ``B_out`` (scale-up and
        scale-out tier bandwidth per device, B/s), all ``sympy.Symbol(name, positive=True)``.
        ``expr.subs(resource_symbols(system, precision))`` equals ``step_cost(...).time_s``: it is
        the same function (:func:`~genmodel._phases.step_terms`) run on a system whose figures are
        the symbols (the formulas take SymPy as they take floats and NumPy arrays).

    Source: Williams et al., "Roofline", CACM 2009; alpha-beta (Hockney 1994) as in
    :mod:`genmodel._collectives`.
    """
    terms = step_terms(
        model,
        _symbolic_system(as_system(system), precision),
        plan,
        precision,
        phase=phase,
        num_seqs=num_seqs,
        new_tokens=new_tokens,
        past_tokens=past_tokens,
        options=options,
        memory=memory,
    )
    expr: sympy.Expr = terms.time_s
    return expr


def symbolic_latencies(
    model: ModelSpec,
    system: System | Device,
    plan: Plan,
    precision: Precision,
    *,
    batch: int,
    input_tokens: int,
    output_tokens: int,
    options: RunOptions = _DEFAULT_OPTIONS,
    memory: MemoryUse | None = None,
) -> tuple[sympy.Expr, sympy.Expr]:
    """(TTFT, TPOT) of a static batch as SymPy expressions in the symbols of :func:`symbolic_step_time`.

    The passes ``estimate_static`` runs (:func:`~genmodel._phases.prefill_pass`,
    :func:`~genmodel._phases.decode_pass`, the exposed KV transfer of a disaggregated deployment),
    on the symbolic system.
    """
    sym = _symbolic_system(as_system(system), precision)
    seqs = float(plan.seqs_per_replica(batch))
    prefill, _ = prefill_pass(
        model, sym, plan, precision, num_seqs=seqs, input_tokens=input_tokens, options=options, memory=memory
    )
    past = mean_decode_context(input_tokens, output_tokens)
    decode = decode_pass(
        model, sym, plan, precision, num_seqs=seqs, past_tokens=past, options=options, memory=memory
    )
    ttft = prefill.time_s
    if options.disaggregated:
        transfer = kv_transfer_time(
            model, sym, plan, precision, seqs_per_replica=seqs, input_tokens=input_tokens
        )
        ttft = ttft + exposed_transfer_s(transfer, ttft, model.num_layers)
    return ttft, decode.time_s


# ---- requirements -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceRequirement:
    """The least amount of one resource (the others at the platform's figures) that meets the targets.

    Attributes:
        resource: flops, memory_bandwidth, memory_capacity, scale_up_bandwidth or scale_out_bandwidth.
        unit: SI unit of the values (flop/s, bytes/s, bytes).
        platform_value: the platform's figure (flops: dense peak of the GEMM precision); None when
            the system has no such tier.
        required_value: the least figure that meets the targets; inf when no amount alone does.
        factor: required over platform as :meth:`System.scaled` applies it (capacity: on the
            memory above the OS reserve); 0 when the targets hold with none of it; inf unreachable.
        status: "met" (the platform has enough), "binding" (it has less than required),
            "unreachable" (no amount alone meets the targets) or "unused" (it does not enter them).
        set_by: the target that sets the requirement (ttft_s, tpot_s, or fits for capacity).
        reason: why a requirement is unreachable or unused.
    """

    resource: str
    unit: str
    platform_value: float | None
    required_value: float
    factor: float
    status: str
    set_by: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (SI units); infinities become None."""

        def finite(x: float | None) -> float | None:
            return None if x is None or math.isinf(x) else x

        return {
            "resource": self.resource,
            "unit": self.unit,
            "platform_value": self.platform_value,
            "required_value": finite(self.required_value),
            "factor": finite(self.factor),
            "status": self.status,
            "set_by": self.set_by,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Requirements:
    """What a platform needs for a model, plan and workload to meet TTFT/TPOT targets.

    ``binding`` names the resources the platform has less of than required; when every target
    is met, the one with the least headroom (the largest factor below 1). ``ttft_expr`` and
    ``tpot_expr`` are the closed forms in the symbols ``symbols`` maps to the platform's figures
    (None in serving mode, which has no static closed form). ``estimate`` is the deployment on the
    platform with ``memory_capacity_assumed_factor`` times its memory (the platform itself when
    the deployment fits it).
    """

    estimate: Estimate = field(repr=False)
    ttft_slo_s: float | None
    tpot_slo_s: float | None
    meets_targets_now: bool
    resources: tuple[ResourceRequirement, ...]
    binding: tuple[str, ...]
    ttft_expr: str | None = None
    tpot_expr: str | None = None
    symbols: Mapping[str, float] = field(default_factory=dict)
    #: |closed form - estimate| / estimate at the platform's figures (TTFT and TPOT, the larger)
    symbolic_rel_error: float | None = None
    #: the memory-capacity factor (of the platform as given, as :meth:`System.scaled` applies it)
    #: of the platform the estimate and every other requirement are computed on: 1 when the
    #: deployment fits the platform, else the least factor at which it fits (the memory_capacity
    #: requirement's), so that those answers assume just enough memory
    memory_capacity_assumed_factor: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "symbols", MappingProxyType(dict(self.symbols)))

    def resource(self, name: str) -> ResourceRequirement:
        """The requirement on one resource.

        Raises:
            SpecError: it was not asked for.
        """
        for r in self.resources:
            if r.resource == name:
                return r
        known = ", ".join(r.resource for r in self.resources)
        raise SpecError(f"resource={name!r} was not computed; computed: {known}")

    def to_dict(self) -> dict[str, Any]:
        """JSON form (SI units: seconds, flop/s, bytes/s, bytes).

        ``fits`` is whether the deployment fits the platform as given; ``ttft_s``, ``tpot_s`` and
        ``memory_capacity_assumed_bytes`` (per device) are those of the estimate, on the platform
        with ``memory_capacity_assumed_factor`` times its memory.
        """
        e = self.estimate
        return {
            "model": e.model_id,
            "hardware": e.hardware_id,
            "system": e.system_id or e.hardware_id,
            "mode": e.mode,
            "devices": e.num_devices,
            "tp": e.plan.tp,
            "pp": e.plan.pp,
            "ep": e.plan.ep,
            "dp": e.plan.dp,
            "cp": e.plan.cp,
            "weight_dtype": e.precision.weight_dtype,
            "act_dtype": e.precision.act_dtype,
            "kv_dtype": e.precision.kv_dtype,
            "input_tokens": e.input_tokens,
            "output_tokens": e.output_tokens,
            "batch": e.batch,
            "ttft_slo_s": self.ttft_slo_s,
            "tpot_slo_s": self.tpot_slo_s,
            "ttft_s": e.ttft_s,
            "tpot_s": e.tpot_s,
            "fits": e.memory.fits and self.memory_capacity_assumed_factor == 1.0,
            "memory_capacity_assumed_factor": self.memory_capacity_assumed_factor,
            "memory_capacity_assumed_bytes": e.memory.capacity_bytes_per_device,
            "meets_targets_now": self.meets_targets_now,
            "binding": list(self.binding),
            "resources": [r.to_dict() for r in self.resources],
            "ttft_expr": self.ttft_expr,
            "tpot_expr": self.tpot_expr,
            "symbols": dict(self.symbols),
            "symbolic_rel_error": self.symbolic_rel_error,
        }


def _check_slo(name: str, value: float | None) -> None:
    if value is not None and not (isinstance(value, int | float) and 0 < value < math.inf):
        raise SpecError(f"{name}={value!r} must be a positive number of seconds")


def _phase_terms(phase: PhaseCost) -> dict[str, float]:
    return {name: float(getattr(phase, name)) for name in _TERM_NAMES}


def _unreachable_reason(resource: str, metric: str, target: float, limit: Estimate) -> str:
    phase = limit.prefill if metric == "ttft_s" else limit.decode
    terms = _phase_terms(phase)
    if metric == "ttft_s" and limit.kv_transfer_exposed_s:
        terms["kv_transfer_exposed_s"] = limit.kv_transfer_exposed_s
    names = {**_TERM_NAMES, "kv_transfer_exposed_s": "the exposed KV transfer"}
    total = sum(terms.values())
    shown = ", ".join(f"{names[k]} {v / MS:.4g} ms" for k, v in terms.items() if v > 1e-6 * total)
    largest = max(terms, key=terms.__getitem__)
    value = float(getattr(limit, metric))
    return (
        f"{_TARGETS[metric]}={target:g} cannot be met by {resource} alone: with unlimited {resource} "
        f"{metric} is still {value / MS:.4g} ms; its {'prefill' if metric == 'ttft_s' else 'decode step'}: "
        f"{shown}; the largest is {names[largest]}"
    )


def _along(fn: Callable[..., float], values: Mapping[Any, float], symbol: Any) -> Callable[[float], float]:
    """fn of the platform's figures with ``symbol``'s figure multiplied by a factor x."""
    names = list(values)
    at = list(values.values())
    if symbol not in values:
        return lambda x: float(fn(*at))
    i = names.index(symbol)

    def along(x: float) -> float:
        args = list(at)
        args[i] = at[i] * x
        return float(fn(*args))

    return along


def _solve_symbolic(fn: Callable[[float], float], target: float) -> float | None:
    """Root of fn(x) = target for a non-increasing fn (the closed form), or None if out of range."""
    from scipy.optimize import brentq

    try:
        if fn(_X_MAX) > target or fn(_X_MIN) <= target:
            return None
        lo = hi = 1.0
        while fn(hi) > target:
            hi *= 4
        while fn(lo) <= target:
            lo /= 4
        return float(brentq(lambda x: fn(x) - target, lo, hi, xtol=1e-15, rtol=1e-14))
    except (ArithmeticError, ValueError):  # a closed form that does not evaluate: polish from 1
        return None


def _solve_real(miss: Callable[[float], float], guess: float | None) -> tuple[float, str | None]:
    """Least factor x with miss(x) <= 0 (miss is non-increasing), polished from ``guess``.

    Returns (x, None); (0, "independent") when the time does not depend on the resource; (0,
    "unused") when the target holds with (almost) none of it; (inf, "unreachable") when no amount
    meets it.
    """
    from scipy.optimize import brentq

    most, least = miss(_X_MAX), miss(_X_MIN)
    if least <= most:  # non-increasing, so equal: the resource does not enter this time
        return 0.0, "independent"
    if most > 0:
        return math.inf, "unreachable"
    if least <= 0:
        return 0.0, "unused"
    x0 = 1.0 if guess is None or not _X_MIN < guess < _X_MAX else guess
    step = 1e-8
    if miss(x0) <= 0:
        hi, lo = x0, x0 / (1 + step)
        while miss(lo) <= 0:
            hi, step = lo, step * 10
            lo = max(hi / (1 + step), _X_MIN)
    else:
        lo, hi = x0, x0 * (1 + step)
        while miss(hi) > 0:
            lo, step = hi, step * 10
            hi = min(lo * (1 + step), _X_MAX)
    root = float(brentq(miss, lo, hi, xtol=_XTOL * lo, rtol=1e-15))
    # brentq's root may sit a rounding error on the missing side: step up to where the target holds
    for x in (root, root * (1 + 1e-12), root * (1 + 1e-11), root * (1 + _XTOL)):
        if lo < x <= hi and miss(x) <= 0:
            return x, None
    return hi, None


def requirements(
    model: str | ModelSpec,
    hardware: str | Device | System,
    *,
    input_tokens: int,
    output_tokens: int,
    ttft_slo_s: float | None = None,
    tpot_slo_s: float | None = None,
    resources: Sequence[str] = tuple(RESOURCES),
    **estimate_kwargs: Any,
) -> Requirements:
    """The least FLOP/s, memory bandwidth, memory capacity or link bandwidth that meets the targets.

    Each resource is varied alone (the others at the platform's figures) through
    :meth:`System.scaled`; the requirement is solved on the closed form (:func:`symbolic_latencies`)
    and verified on :func:`~genmodel.estimate`, so ``estimate`` on the platform scaled by the
    returned factor meets every target (and 1e-9 less misses the binding one).

    Args:
        model: a model id, alias, config.json path, or ModelSpec.
        hardware: a device or system id, a Device or a System.
        input_tokens: prompt tokens per request.
        output_tokens: generated tokens per request.
        ttft_slo_s: TTFT target in seconds (the static batch's prefill; serving mode: the mean).
        tpot_slo_s: TPOT target in seconds (mean decode step).
        resources: which of flops, memory_bandwidth, memory_capacity, scale_up_bandwidth and
            scale_out_bandwidth to solve for.
        estimate_kwargs: :func:`~genmodel.estimate`'s plan, batch (or concurrency), dtype and run
            options. ``batch="max"`` is resolved on the platform and then held fixed.

    When the deployment does not fit the platform (not even one sequence, or not the explicit
    batch), the memory_capacity requirement is solved first (and always reported), and every other
    resource is solved on the platform with that capacity
    (:attr:`Requirements.memory_capacity_assumed_factor`): ``estimate`` on
    ``System.scaled(memory_capacity=that factor, <resource>=its factor)`` fits and meets the targets.

    Returns:
        :class:`Requirements`: per resource the platform's figure, the required one and their
        ratio, the binding resources, and the closed forms of TTFT and TPOT.

    Raises:
        SpecError: no target for a latency resource, an unknown resource, a bad target, or
            estimate's own argument errors. InfeasibleError: the plan cannot run with any amount
            of memory (divisibility, too many devices), or not even one sequence fits and
            ``batch="max"`` gives no size to solve the capacity for (give an explicit batch).
    """
    _check_slo("ttft_slo_s", ttft_slo_s)
    _check_slo("tpot_slo_s", tpot_slo_s)
    resources = (resources,) if isinstance(resources, str) else tuple(dict.fromkeys(resources))
    unknown = [r for r in resources if r not in RESOURCES]
    if unknown or not resources:
        raise SpecError(f"resources={list(resources)!r} must be some of {', '.join(RESOURCES)}")
    targets = {
        metric: slo for metric, slo in (("ttft_s", ttft_slo_s), ("tpot_s", tpot_slo_s)) if slo is not None
    }
    if not targets and any(r in _LATENCY_RESOURCES for r in resources):
        raise SpecError("requirements needs a target: give ttft_slo_s and/or tpot_slo_s")

    spec = load_model(model) if isinstance(model, str) else model
    kwargs = dict(estimate_kwargs)
    chosen = kwargs.pop("system", None)
    failure: InfeasibleError | None = None
    try:
        base: Estimate | None = estimate(
            spec, hardware, input_tokens=input_tokens, output_tokens=output_tokens, system=chosen, **kwargs
        )
    except InfeasibleError as exc:
        base, failure = None, exc
    system = load_hardware(hardware) if isinstance(hardware, str) else as_system(hardware)
    if chosen is not None:
        system = (load_system(chosen) if isinstance(chosen, str) else chosen).with_device(system.device)

    def at_capacity(x: float, **override: Any) -> Estimate:
        """The estimate on the platform with ``x`` times its memory capacity."""
        return estimate(
            spec,
            system.scaled(memory_capacity=x),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            **{**kwargs, **override},
        )

    # a deployment that does not fit: solve the capacity first, the rest with that much memory
    capacity: ResourceRequirement | None = None
    assumed = 1.0
    if base is None or not base.memory.fits:
        if base is not None:
            needed = base.memory.total_bytes_per_device
        else:
            assert failure is not None
            needed = _memory_needed(failure, at_capacity, kwargs.get("batch"))
        capacity = _capacity_requirement(system, needed, at_capacity)
        if math.isfinite(capacity.factor):
            assumed = capacity.factor
            base = at_capacity(assumed)
        elif base is None:
            assert failure is not None and capacity.reason is not None
            raise InfeasibleError([*failure.violations, capacity.reason]) from failure
        if "memory_capacity" not in resources:
            resources = (*resources, "memory_capacity")
    serving = base.mode != "static"
    if not serving:
        kwargs["batch"] = base.batch  # "max" resolved once: only capacity could change it
    enough = system.scaled(memory_capacity=assumed) if assumed != 1.0 else system

    def run(resource: str, x: float) -> Estimate:
        return estimate(
            spec,
            system.scaled(**{"memory_capacity": assumed, resource: x}),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            **kwargs,
        )

    # the closed forms, in the symbols the estimate's (possibly ideal) platform substitutes
    closed: dict[str, Any] = {}
    values: dict[Any, float] = {}
    evaluate: dict[str, Callable[..., float]] = {}
    rel_error = None
    if not serving:
        import sympy

        sym_system = enough.ideal() if kwargs.get("ideal") else enough
        ttft_e, tpot_e = symbolic_latencies(
            spec,
            sym_system,
            base.plan,
            base.precision,
            batch=base.batch,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            options=base.options,
            memory=base.memory,
        )
        closed = {"ttft_s": ttft_e, "tpot_s": tpot_e}
        values = resource_symbols(sym_system, base.precision)
        evaluate = {k: sympy.lambdify(list(values), e, "math") for k, e in closed.items()}
        rel_error = max(
            abs(evaluate[k](*values.values()) - getattr(base, k)) / getattr(base, k) for k in closed
        )

    out: list[ResourceRequirement] = []
    for resource in resources:
        platform = _platform_value(system, base.precision, resource)
        if resource == "memory_capacity":
            out.append(
                capacity or _capacity_requirement(system, base.memory.total_bytes_per_device, at_capacity)
            )
            continue
        if platform is None:
            out.append(
                ResourceRequirement(
                    resource=resource,
                    unit=RESOURCES[resource],
                    platform_value=None,
                    required_value=0.0,
                    factor=0.0,
                    status="unused",
                    reason=f"{resource}: system={system.id} has no {resource.removesuffix('_bandwidth')} "
                    "tier",
                )
            )
            continue
        factor, set_by, reason, status = 0.0, None, None, "unused"
        independent = True
        for metric, slo in targets.items():
            guess = None
            if metric in evaluate:
                guess = _solve_symbolic(_along(evaluate[metric], values, _symbol(resource)), slo)

            def miss(x: float, resource: str = resource, metric: str = metric, slo: float = slo) -> float:
                return float(getattr(run(resource, x), metric)) - slo

            x_t, outcome = _solve_real(miss, guess)
            independent = independent and outcome == "independent"
            if outcome == "unreachable":
                factor, set_by, status = math.inf, metric, "unreachable"
                reason = _unreachable_reason(resource, metric, slo, run(resource, _X_MAX))
                break
            if outcome is None and x_t >= factor:
                factor, set_by = x_t, metric
                status = "binding" if x_t > 1 else "met"
        if status == "unused" and independent:
            reason = f"{resource} does not enter {', '.join(targets)}: no collective of this plan uses it"
        elif status == "unused":
            reason = f"{', '.join(targets)} meet their targets with almost none of {resource} (1e-12 of it)"
        out.append(
            ResourceRequirement(
                resource=resource,
                unit=RESOURCES[resource],
                platform_value=platform,
                required_value=platform * factor,
                factor=factor,
                status=status,
                set_by=set_by,
                reason=reason,
            )
        )
    meets = assumed == 1.0 and base.memory.fits and all(getattr(base, k) <= slo for k, slo in targets.items())
    binding = tuple(r.resource for r in out if r.status == "binding")
    if meets and not binding:  # (a serving memory that cannot hold every client can bind)
        met = [r for r in out if r.status == "met" and r.factor > 0]
        binding = (max(met, key=lambda r: r.factor).resource,) if met else ()

    def show(e: Any) -> str:
        import sympy

        return str(sympy.N(e, 6))

    return Requirements(
        estimate=base,
        ttft_slo_s=ttft_slo_s,
        tpot_slo_s=tpot_slo_s,
        meets_targets_now=meets,
        resources=tuple(out),
        binding=binding,
        ttft_expr=show(closed["ttft_s"]) if closed else None,
        tpot_expr=show(closed["tpot_s"]) if closed else None,
        symbols={str(k): v for k, v in values.items()},
        symbolic_rel_error=rel_error,
        memory_capacity_assumed_factor=assumed,
    )


def _holds(e: Estimate) -> bool:
    """Whether the memory holds the deployment: the batch, or in serving mode every client's sequence."""
    return e.memory.fits and (e.serving is None or e.serving.max_running >= e.serving.concurrency)


def _memory_needed(failure: InfeasibleError, at_capacity: Callable[..., Estimate], batch: Any) -> float:
    """Bytes per device the deployment needs, when it does not run on the platform.

    Raises:
        InfeasibleError: ``failure`` again when the deployment cannot run with unlimited memory
            either (divisibility, too many devices); with a hint when ``batch="max"`` (no size to fit).
    """
    try:  # "max" has no size: probe one sequence to tell a memory failure from the others
        probe = at_capacity(_X_MAX, **({"batch": 1} if batch == "max" else {}))
    except InfeasibleError:
        raise failure from None
    if batch == "max":
        raise InfeasibleError(
            [
                *failure.violations,
                "batch='max' is the largest batch that fits, and none does, so there is no batch to "
                "solve the memory capacity for: give an explicit batch= or concurrency= (--batch N or "
                "--concurrency N) to get the capacity, and the other requirements, for that many sequences",
            ]
        ) from failure
    return probe.memory.total_bytes_per_device


def _capacity_requirement(
    system: System, needed_bytes: float, at_capacity: Callable[..., Estimate]
) -> ResourceRequirement:
    """The least memory capacity at which the deployment fits (bisection on :func:`_holds`).

    ``needed_bytes`` (per device) gives the first guess; capacity is scaled on ``system``.
    """

    def fits(x: float) -> bool:
        try:
            return _holds(at_capacity(x))
        except InfeasibleError:  # not even one sequence fits
            return False

    d = system.device
    unit = RESOURCES["memory_capacity"]
    if not fits(_X_MAX):
        return ResourceRequirement(
            resource="memory_capacity",
            unit=unit,
            platform_value=d.memory_capacity_bytes,
            required_value=math.inf,
            factor=math.inf,
            status="unreachable",
            set_by="fits",
            reason="the deployment does not fit with unlimited device memory (its offload tiers are full)",
        )
    # without offload the boundary is total / usable; bisection makes it exact either way
    guess = needed_bytes / d.usable_memory_bytes
    hi = lo = guess
    step = 1e-9
    while not fits(hi):
        lo, hi, step = hi, hi * (1 + step), step * 10
    while fits(lo):
        hi, lo, step = lo, lo / (1 + step), step * 10
    while hi / lo - 1 > 1e-12:
        mid = (lo + hi) / 2
        if fits(mid):
            hi = mid
        else:
            lo = mid
    required = d.os_reserve_bytes + (d.memory_capacity_bytes - d.os_reserve_bytes) * hi
    return ResourceRequirement(
        resource="memory_capacity",
        unit=unit,
        platform_value=d.memory_capacity_bytes,
        required_value=required,
        factor=hi,
        status="binding" if hi > 1 else "met",
        set_by="fits",
    )
