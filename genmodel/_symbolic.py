"""The step time and the static TTFT/TPOT as closed forms in a platform's figures (SymPy).

Modelling assumptions and method:
- The symbolic form (:func:`symbolic_step_time`) is ``step_cost`` itself run on a system whose
  figures are SymPy symbols: ``F`` (the dense peak FLOP/s of the precision the GEMMs run in; every
  other precision's peak scales with it, as :meth:`System.scaled` scales them), ``B_mem`` (device
  memory bandwidth), ``B_up`` and ``B_out`` (per-device bandwidth of the innermost scale-up and
  scale-out fabric tiers; outer tiers of a level scale with it). The formulas take SymPy as they
  take floats, so the operators, roofline, collectives (``Max``/``Min`` where an all-to-all spans
  two tiers or ``auto`` picks an algorithm), overlap, microbatches and offload are the same code.
- :func:`solve_closed_form` solves such a form, lambdified, for the factor on one figure that
  meets a target (``scipy.optimize.brentq``); time is non-increasing in every figure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from genmodel._forwardpass import StepSpecs
from genmodel._hardware import Device
from genmodel._memory import MemoryUse
from genmodel._model import ModelSpec
from genmodel._options import DEFAULT_OPTIONS, RunOptions
from genmodel._parallel import Plan
from genmodel._phases import (
    decode_pass,
    exposed_transfer_s,
    kv_transfer_time,
    mean_decode_context,
    prefill_pass,
)
from genmodel._system import SCALE_FACTORS, System, as_system
from genmodel._workload import Precision

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
#: The resources latencies depend on (memory capacity only decides what fits).
LATENCY_RESOURCES = ("flops", "memory_bandwidth", "scale_up_bandwidth", "scale_out_bandwidth")
#: Factors searched: below X_MIN a resource counts as unused, above X_MAX as unlimited.
X_MIN = 1e-12
X_MAX = 1e12


def symbol(resource: str) -> sympy.Symbol:
    """The SymPy symbol of a latency resource (``F``, ``B_mem``, ``B_up``, ``B_out``)."""
    import sympy

    return sympy.Symbol(SYMBOL_NAMES[resource], positive=True)


def _tier_bandwidth(system: System, level: str) -> float | None:
    """Per-device bandwidth of the innermost fabric tier of ``level`` (scale_up, scale_out)."""
    for tier in system.fabric:
        if tier.level == level:
            return tier.bandwidth_bytes_per_s
    return None


def platform_value(system: System, precision: Precision, resource: str) -> float | None:
    """The platform's figure for a resource (flops: the dense peak of the GEMM precision); None
    when the system has no fabric tier of that level."""
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
    for resource in LATENCY_RESOURCES:
        value = platform_value(system, precision, resource)
        if value is not None:
            out[symbol(resource)] = value
    return out


def _symbolic_device(device: Device, precision: Precision) -> Device:
    """The device with its peaks F * (peak / peak of the GEMM precision), its exponential rate in
    the same proportion (as :meth:`System.scaled` scales it) and bandwidth B_mem."""
    f, b = symbol("flops"), symbol("memory_bandwidth")
    ref = device.peak_for(precision.gemm_dtype)
    return dataclasses.replace(
        device,
        peak_flops_per_s={k: f * (v / ref) for k, v in device.peak_flops_per_s.items()},
        exp_per_s=f * (device.exp_per_s / ref),
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
            bandwidth_bytes_per_s=symbol(f"{t.level}_bandwidth")
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
    options: RunOptions = DEFAULT_OPTIONS,
    memory: MemoryUse | None = None,
) -> sympy.Expr:
    """The time of one forward pass (``step_cost(...).time_s``) as a SymPy expression in the
    platform's figures.

    Args:
        model, system, plan, precision, phase, num_seqs, new_tokens, past_tokens, options, memory:
            as :func:`~genmodel._forwardpass.step_cost`.

    Returns:
        An expression in ``F`` (flop/s: dense peak of the GEMM precision; every precision's peak
        scales with it), ``B_mem`` (memory bandwidth, B/s), ``B_up`` and ``B_out`` (scale-up and
        scale-out tier bandwidth per device, B/s), all ``sympy.Symbol(name, positive=True)``.
        ``expr.subs(resource_symbols(system, precision))`` equals ``step_cost(...).time_s``: it is
        the same function (:func:`~genmodel._forwardpass.step_terms`) run on a system whose figures are
        the symbols (the formulas take SymPy as they take floats and NumPy arrays).

    Source: Williams et al., "Roofline", CACM 2009; alpha-beta (Hockney 1994) as in
    :mod:`genmodel._collectives`.
    """
    sym = _symbolic_system(as_system(system), precision)
    specs = StepSpecs(
        model=model, hardware=sym, plan=plan, precision=precision, options=options, memory=memory
    )
    expr: sympy.Expr = specs.terms(
        phase, num_seqs=num_seqs, new_tokens=new_tokens, past_tokens=past_tokens
    ).time_s
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
    options: RunOptions = DEFAULT_OPTIONS,
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


def along(fn: Callable[..., float], values: Mapping[Any, float], sym: Any) -> Callable[[float], float]:
    """fn of the platform's figures ``values`` with ``sym``'s figure multiplied by a factor x."""
    names = list(values)
    at = list(values.values())
    if sym not in values:
        return lambda x: float(fn(*at))
    i = names.index(sym)

    def at_factor(x: float) -> float:
        args = list(at)
        args[i] = at[i] * x
        return float(fn(*args))

    return at_factor


def solve_closed_form(fn: Callable[[float], float], target: float) -> float | None:
    """Root of fn(x) = target for a non-increasing fn (a closed form along one figure), or None
    if it is out of [X_MIN, X_MAX] or the form does not evaluate."""
    from scipy.optimize import brentq

    try:
        if fn(X_MAX) > target or fn(X_MIN) <= target:
            return None
        lo = hi = 1.0
        while fn(hi) > target:
            hi *= 4
        while fn(lo) <= target:
            lo /= 4
        return float(brentq(lambda x: fn(x) - target, lo, hi, xtol=1e-15, rtol=1e-14))
    except (ArithmeticError, ValueError):  # a closed form that does not evaluate: polish from 1
        return None
