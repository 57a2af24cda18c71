"""The inverse problem on specs: how much of each resource a deployment needs to meet TTFT/TPOT targets.

:func:`solve_requirements` answers "what HBM bandwidth (FLOP/s, memory capacity, scale-up or
scale-out bandwidth) does this platform need for TPOT <= 50 ms?" for one resource at a time, the
others kept at the platform's figures, and says which resource is binding. It takes a
:class:`~genmodel._capacity.Deployment` (specs, not ids: :func:`genmodel.requirements` resolves
those) and runs in three steps: the capacity pre-solve (:func:`~genmodel._capacity.fit_capacity`),
a solve per resource, and the report.

Modelling assumptions and method:
- A requirement is solved on the symbolic form (:func:`~genmodel._symbolic.symbolic_latencies`,
  lambdified, ``scipy.optimize.brentq`` over the factor), then verified and polished with
  ``brentq`` on the real estimate of the scaled platform (:meth:`System.scaled`), so the returned
  figure always makes ``estimate`` meet the target and anything 1e-9 smaller misses it. Time is
  non-increasing in every resource, so the minimum is the root of target - time.
- A resource alone cannot meet a target when the time with an unlimited amount of it (the other
  terms: fixed overhead, the other resources' operators, collectives) is already above the target.
- Under load (``concurrency``) with the simulated serving model (``simulated``), a latency
  resource is solved on the engine's simulated scheduler instead, by bracketing and bisection
  (:mod:`genmodel._reqsim`), its figure a mean or a percentile; the closed form's answer is the
  bracket's first guess.
- Memory capacity (:mod:`genmodel._capacity`): the smallest capacity at which the deployment fits;
  it changes no latency without offload tiers (in serving mode, none once every client's sequence
  fits), under either serving model. A deployment that does not fit the platform gets its capacity
  first, and every other resource is solved with that much memory
  (``Requirements.memory_capacity_assumed_factor``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from genmodel._candidates import statistic_name
from genmodel._capacity import Deployment, Fitted, ResourceRequirement, capacity_requirement, fit_capacity
from genmodel._engines import Engine
from genmodel._errors import SpecError
from genmodel._phases import Estimate, PhaseCost
from genmodel._reqsim import SimulatedLoad, simulated_load, solve_simulated, statistic_figure
from genmodel._servingmodel import Simulated
from genmodel._simestimate import with_note
from genmodel._symbolic import (
    LATENCY_RESOURCES,
    RESOURCES,
    X_MAX,
    X_MIN,
    along,
    platform_value,
    resource_symbols,
    solve_closed_form,
    symbol,
    symbolic_latencies,
)
from genmodel._units import MS

_TARGETS = {"ttft_s": "ttft_slo_s", "tpot_s": "tpot_slo_s"}
#: Relative width to which a requirement is pinned down on the real estimate.
_XTOL = 1e-10
_TERM_NAMES = {
    "compute_bound_s": "compute-bound operators",
    "memory_bound_s": "memory-bound operators",
    "comm_s": "exposed collectives",
    "offload_s": "exposed offload transfers",
    "overhead_s": "the fixed per-step overhead",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Requirements:
    """What a platform needs for a model, plan and workload to meet TTFT/TPOT targets.

    ``binding`` names the resources the platform has less of than required; when every target
    is met, the one with the least headroom (the largest factor below 1). ``ttft_expr`` and
    ``tpot_expr`` are the closed forms in the symbols ``symbols`` maps to the platform's figures
    (None in serving mode, which has no static closed form). ``estimate`` is the deployment on the
    platform with ``memory_capacity_assumed_factor`` times its memory (the platform itself when
    the deployment fits it); under load its ``serving`` says which serving model answered
    (``serving_model``, ``engine``, and ``notes`` on a fall back to the closed form).
    """

    estimate: Estimate = field(repr=False)
    ttft_slo_s: float | None
    tpot_slo_s: float | None
    meets_targets_now: bool
    #: the targets' statistics: None for the mean, else the quantile (0.99: p99): a static batch,
    #: whose requests all share one TTFT and one TPOT, or the serving simulation (:func:`check_quantiles`)
    ttft_quantile: float | None = None
    tpot_quantile: float | None = None
    #: TTFT and TPOT of ``estimate`` at the targets' statistics (the mean, or the simulated
    #: percentile); None: the estimate's own (the mean)
    ttft_at_statistic_s: float | None = None
    tpot_at_statistic_s: float | None = None
    #: the engine whose scheduler was simulated, with its knobs (None: no simulation)
    engine: Engine | None = None
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

    def __repr__(self) -> str:
        """A few lines: the deployment, the targets, one line per resource and what binds (the
        closed forms stay in ``ttft_expr``/``tpot_expr``; :meth:`to_dict` gives everything)."""
        e = self.estimate

        def target(slo_s: float | None, quantile: float | None) -> str:
            if slo_s is None:
                return "-"
            stat = "" if quantile is None else f"{statistic_name(quantile)} "
            return stat + (f"{slo_s:.4g} s" if slo_s >= 1 else f"{slo_s / MS:.4g} ms")

        head = (
            f"Requirements({e.model_id} on {e.num_devices}x {e.system_id or e.hardware_id}, "
            f"TTFT <= {target(self.ttft_slo_s, self.ttft_quantile)}, "
            f"TPOT <= {target(self.tpot_slo_s, self.tpot_quantile)}: "
            f"{'meets the targets' if self.meets_targets_now else 'misses the targets'} now"
        )
        lines = [head, *(f"  {r!r}" for r in self.resources)]
        if self.memory_capacity_assumed_factor != 1:
            lines.append(f"  (assumes {self.memory_capacity_assumed_factor:.3g}x the memory capacity)")
        lines.append(f"  binding: {', '.join(self.binding) or 'none'})")
        return "\n".join(lines)

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

        ``fits`` is whether the deployment fits the platform as given; ``ttft_s``, ``tpot_s`` (the
        means), ``ttft_at_statistic_s``, ``tpot_at_statistic_s`` (at the targets' statistics) and
        ``memory_capacity_assumed_bytes`` (per device) are those of the estimate, on the platform
        with ``memory_capacity_assumed_factor`` times its memory. ``serving`` is the estimate's
        serving state, as ``estimate`` gives it (``serving_model``, ``engine``, ``notes``; None for
        a static batch), ``engine`` the simulated engine's knobs (None without a simulation).
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
            "ttft_quantile": self.ttft_quantile,
            "tpot_quantile": self.tpot_quantile,
            "ttft_statistic": statistic_name(self.ttft_quantile),
            "tpot_statistic": statistic_name(self.tpot_quantile),
            "ttft_s": e.ttft_s,
            "tpot_s": e.tpot_s,
            "ttft_at_statistic_s": e.ttft_s if self.ttft_at_statistic_s is None else self.ttft_at_statistic_s,
            "tpot_at_statistic_s": e.tpot_s if self.tpot_at_statistic_s is None else self.tpot_at_statistic_s,
            "serving": None if e.serving is None else dataclasses.asdict(e.serving),
            "engine": None if self.engine is None else self.engine.to_dict(),
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


# ---- the request ---------------------------------------------------------------------------------


def check_request(
    ttft_slo_s: float | None, tpot_slo_s: float | None, resources: str | Sequence[str]
) -> tuple[dict[str, float], tuple[str, ...]]:
    """The targets by metric (ttft_s, tpot_s) and the resources asked for, without repeats.

    Raises:
        SpecError: a target that is not a positive number of seconds, an unknown resource, or no
            target while a latency resource is asked for.
    """
    _check_slo("ttft_slo_s", ttft_slo_s)
    _check_slo("tpot_slo_s", tpot_slo_s)
    asked = (resources,) if isinstance(resources, str) else tuple(dict.fromkeys(resources))
    unknown = [r for r in asked if r not in RESOURCES]
    if unknown or not asked:
        raise SpecError(f"resources={list(asked)!r} must be some of {', '.join(RESOURCES)}")
    targets = {
        metric: slo for metric, slo in (("ttft_s", ttft_slo_s), ("tpot_s", tpot_slo_s)) if slo is not None
    }
    if not targets and any(r in LATENCY_RESOURCES for r in asked):
        raise SpecError("requirements needs a target: give ttft_slo_s and/or tpot_slo_s")
    return targets, asked


def check_quantiles(
    ttft_quantile: float | None,
    tpot_quantile: float | None,
    concurrency: int | None,
    *,
    simulated: bool = False,
) -> None:
    """Whether the targets' statistics can be honoured: the mean always; a quantile in (0, 1) for a
    static batch, whose requests all prefill together and decode in lockstep, so that every
    percentile of TTFT (TPOT) is the batch's one figure, and under load (``concurrency``) on the
    serving simulation (``simulated``), which gives every request's figures. The serving closed
    form predicts means only: a percentile there is refused rather than read as the mean.

    Raises:
        SpecError: a quantile outside (0, 1), or a quantile with ``concurrency`` on the closed form.
    """
    for name, q in (("ttft_quantile", ttft_quantile), ("tpot_quantile", tpot_quantile)):
        if q is None:
            continue
        if not (isinstance(q, int | float) and 0 < q < 1):
            raise SpecError(f"{name}={q!r} must be in (0, 1), e.g. 0.9 or 0.99 (None: the mean)")
        if concurrency is not None and not simulated:
            raise SpecError(
                f"{name}={q!r} ({statistic_name(q)}) with concurrency={concurrency!r} and "
                "serving='closed-form': the closed form predicts means only; give a mean target, or "
                "serving='simulated' (the default) to solve a percentile on the engine's scheduler"
            )


def solve_requirements(
    deployment: Deployment,
    *,
    ttft_slo_s: float | None = None,
    tpot_slo_s: float | None = None,
    resources: str | Sequence[str] = tuple(RESOURCES),
    ttft_quantile: float | None = None,
    tpot_quantile: float | None = None,
    simulated: Simulated | None = None,
) -> Requirements:
    """The least FLOP/s, memory bandwidth, memory capacity or link bandwidth that meets the targets.

    Each resource is varied alone (the others at the platform's figures) through
    :meth:`System.scaled`, in three steps (module docstring): the capacity pre-solve
    (:func:`fit_capacity`), a solve per resource on the closed form verified on the estimate (or,
    under load with ``simulated``, on the serving simulation: :mod:`genmodel._reqsim`), and the
    report (binding resources, closed forms).

    Args:
        deployment: the specs, plan, load and options; ``batch="max"`` is resolved on the
            platform and then held fixed.
        ttft_slo_s: TTFT target in seconds (the static batch's prefill; serving mode: the mean).
        tpot_slo_s: TPOT target in seconds (mean decode step).
        resources: which of flops, memory_bandwidth, memory_capacity, scale_up_bandwidth and
            scale_out_bandwidth to solve for (memory_capacity is added when the deployment does
            not fit the platform).
        ttft_quantile, tpot_quantile: None (the mean), or the targets' quantile (0.99: p99); a
            static batch, or under load the serving simulation (:func:`check_quantiles`).
        simulated: under load, the engine and benchmark client whose simulated scheduler judges
            the targets (None: the serving closed form of ``deployment.wave``); ignored for a
            static batch.

    Returns:
        :class:`Requirements`.

    Raises:
        SpecError: no target for a latency resource, an unknown resource, a bad target, a
            quantile under load on the closed form, or on a plan the simulation does not cover.
        InfeasibleError: the plan cannot run with any amount of memory, or not even one sequence
            fits and ``batch="max"`` gives no size to solve the capacity for.
    """
    targets, asked = check_request(ttft_slo_s, tpot_slo_s, resources)
    under_load = deployment.concurrency is not None
    simulated = simulated if under_load else None
    check_quantiles(ttft_quantile, tpot_quantile, deployment.concurrency, simulated=simulated is not None)
    fitted = fit_capacity(deployment)
    if fitted.capacity is not None and "memory_capacity" not in asked:
        asked = (*asked, "memory_capacity")
    quantiles = {"ttft_s": ttft_quantile, "tpot_s": tpot_quantile}
    load, note = (None, "") if simulated is None else simulated_load(fitted, simulated, quantiles)
    closed = _closed_forms(fitted)
    solved = tuple(_solve_resource(resource, fitted, targets, closed, load) for resource in asked)
    return _report(
        fitted, targets, solved, closed, quantiles=(ttft_quantile, tpot_quantile), load=load, note=note
    )


# ---- step 2: the solve per resource --------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _ClosedForms:
    """TTFT and TPOT as closed forms in the platform's figures (static mode), lambdified."""

    exprs: Mapping[str, Any]  # metric -> SymPy expression
    values: Mapping[Any, float]  # symbol -> the figure the estimate's platform substitutes
    evaluate: Mapping[str, Callable[..., float]]  # metric -> the lambdified expression
    rel_error: float  # |closed form - estimate| / estimate at the platform's figures, the larger

    def reported(self) -> dict[str, Any]:
        """The fields of :class:`Requirements` that show the closed forms (6 significant digits)."""
        import sympy

        return {
            "ttft_expr": str(sympy.N(self.exprs["ttft_s"], 6)),
            "tpot_expr": str(sympy.N(self.exprs["tpot_s"], 6)),
            "symbols": {str(k): v for k, v in self.values.items()},
            "symbolic_rel_error": self.rel_error,
        }

    def guess(self, metric: str, resource: str, target: float) -> float | None:
        """The factor on ``resource`` at which the closed form of ``metric`` meets ``target``."""
        return solve_closed_form(along(self.evaluate[metric], self.values, symbol(resource)), target)


def _closed_forms(fitted: Fitted) -> _ClosedForms | None:
    """The closed forms of the fitted deployment, in the symbols its (possibly ideal) platform
    substitutes; None in serving mode, which has no static closed form."""
    base, d = fitted.base, fitted.deployment
    if base.mode != "static":
        return None
    import sympy

    enough = d.system.scaled(memory_capacity=fitted.assumed) if fitted.assumed != 1.0 else d.system
    sym_system = enough.ideal() if d.ideal else enough
    ttft_e, tpot_e = symbolic_latencies(
        d.model,
        sym_system,
        base.plan,
        base.precision,
        batch=base.batch,
        input_tokens=d.input_tokens,
        output_tokens=d.output_tokens,
        options=base.options,
        memory=base.memory,
    )
    exprs = {"ttft_s": ttft_e, "tpot_s": tpot_e}
    values = resource_symbols(sym_system, base.precision)
    evaluate = {k: sympy.lambdify(list(values), e, "math") for k, e in exprs.items()}
    rel_error = max(abs(evaluate[k](*values.values()) - getattr(base, k)) / getattr(base, k) for k in exprs)
    return _ClosedForms(exprs=exprs, values=values, evaluate=evaluate, rel_error=rel_error)


def _solve_resource(
    resource: str,
    fitted: Fitted,
    targets: Mapping[str, float],
    closed: _ClosedForms | None,
    load: SimulatedLoad | None = None,
) -> ResourceRequirement:
    """The least amount of ``resource`` (the others at the platform's figures) that meets ``targets``."""
    d = fitted.deployment
    if resource == "memory_capacity":
        return fitted.capacity or capacity_requirement(d, fitted.base.memory.total_bytes_per_device)
    platform = platform_value(d.system, fitted.base.precision, resource)
    if platform is None:
        return ResourceRequirement(
            resource=resource,
            unit=RESOURCES[resource],
            platform_value=None,
            required_value=0.0,
            factor=0.0,
            status="unused",
            reason=f"{resource}: system={d.system.id} has no {resource.removesuffix('_bandwidth')} tier",
        )
    factor, set_by, status, reason = _solve_targets(resource, fitted, targets, closed)
    if load is not None:  # the closed form's answer is the simulated bracket's first guess
        factor, set_by, status, reason = solve_simulated(load, resource, targets, factor)
    return ResourceRequirement(
        resource=resource,
        unit=RESOURCES[resource],
        platform_value=platform,
        required_value=platform * factor,
        factor=factor,
        status=status,
        set_by=set_by,
        reason=reason,
    )


def _solve_targets(
    resource: str, fitted: Fitted, targets: Mapping[str, float], closed: _ClosedForms | None
) -> tuple[float, str | None, str, str | None]:
    """(factor, set_by, status, reason) of a latency resource: the largest factor any target needs."""
    factor, set_by, reason, status = 0.0, None, None, "unused"
    independent = True
    for metric, slo in targets.items():
        guess = None if closed is None else closed.guess(metric, resource, slo)

        def miss(x: float, metric: str = metric, slo: float = slo) -> float:
            return float(getattr(fitted.estimate(resource, x), metric)) - slo

        x_t, outcome = _solve_real(miss, guess)
        independent = independent and outcome == "independent"
        if outcome == "unreachable":
            reason = _unreachable_reason(resource, metric, slo, fitted.estimate(resource, X_MAX))
            return math.inf, metric, "unreachable", reason
        if outcome is None and x_t >= factor:
            factor, set_by = x_t, metric
            status = "binding" if x_t > 1 else "met"
    if status == "unused" and independent:
        reason = f"{resource} does not enter {', '.join(targets)}: no collective of this plan uses it"
    elif status == "unused":
        reason = f"{', '.join(targets)} meet their targets with almost none of {resource} (1e-12 of it)"
    return factor, set_by, status, reason


# ---- step 3: the report --------------------------------------------------------------------------


def _report(
    fitted: Fitted,
    targets: Mapping[str, float],
    solved: tuple[ResourceRequirement, ...],
    closed: _ClosedForms | None,
    quantiles: tuple[float | None, float | None] = (None, None),
    load: SimulatedLoad | None = None,
    note: str = "",
) -> Requirements:
    """The requirements with the binding resources: those the platform lacks, or, when every target
    is met, the one with the least headroom (``quantiles``: the targets' statistics, TTFT and TPOT;
    ``load``: the simulation that judged them, whose figures on the platform are reported; ``note``:
    why a simulated solve fell back to the closed form)."""
    base = with_note(fitted.base, note) if load is None else load.base()
    now = {k: float(getattr(base, k)) for k in _TARGETS}
    if load is not None:
        sim = load.run()
        now = {k: statistic_figure(sim, k, q) for k, q in zip(_TARGETS, quantiles, strict=True)}
    meets = fitted.assumed == 1.0 and base.memory.fits and all(now[k] <= slo for k, slo in targets.items())
    binding = tuple(r.resource for r in solved if r.status == "binding")
    if meets and not binding:  # (a serving memory that cannot hold every client can bind)
        met = [r for r in solved if r.status == "met" and r.factor > 0]
        binding = (max(met, key=lambda r: r.factor).resource,) if met else ()
    return Requirements(
        estimate=base,
        ttft_slo_s=targets.get("ttft_s"),
        tpot_slo_s=targets.get("tpot_s"),
        ttft_quantile=quantiles[0],
        tpot_quantile=quantiles[1],
        ttft_at_statistic_s=now["ttft_s"],
        tpot_at_statistic_s=now["tpot_s"],
        engine=None if load is None else load.served.engine,
        meets_targets_now=meets,
        resources=solved,
        binding=binding,
        memory_capacity_assumed_factor=fitted.assumed,
        **({} if closed is None else closed.reported()),
    )


# ---- helpers -------------------------------------------------------------------------------------


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


def _solve_real(miss: Callable[[float], float], guess: float | None) -> tuple[float, str | None]:
    """Least factor x with miss(x) <= 0 (miss is non-increasing), polished from ``guess``.

    Returns (x, None); (0, "independent") when the time does not depend on the resource; (0,
    "unused") when the target holds with (almost) none of it; (inf, "unreachable") when no amount
    meets it.
    """
    from scipy.optimize import brentq

    most, least = miss(X_MAX), miss(X_MIN)
    if least <= most:  # non-increasing, so equal: the resource does not enter this time
        return 0.0, "independent"
    if most > 0:
        return math.inf, "unreachable"
    if least <= 0:
        return 0.0, "unused"
    x0 = 1.0 if guess is None or not X_MIN < guess < X_MAX else guess
    step = 1e-8
    if miss(x0) <= 0:
        hi, lo = x0, x0 / (1 + step)
        while miss(lo) <= 0:
            hi, step = lo, step * 10
            lo = max(hi / (1 + step), X_MIN)
    else:
        lo, hi = x0, x0 * (1 + step)
        while miss(hi) > 0:
            lo, step = hi, step * 10
            hi = min(lo * (1 + step), X_MAX)
    root = float(brentq(miss, lo, hi, xtol=_XTOL * lo, rtol=1e-15))
    # brentq's root may sit a rounding error on the missing side: step up to where the target holds
    for x in (root, root * (1 + 1e-12), root * (1 + 1e-11), root * (1 + _XTOL)):
        if lo < x <= hi and miss(x) <= 0:
            return x, None
    return hi, None
