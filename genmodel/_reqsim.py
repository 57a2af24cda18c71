"""Requirements under load on the serving simulation: the least of one resource at which the
engine's simulated scheduler meets the TTFT/TPOT targets, each a mean or a percentile.

Modelling assumptions and method:
- Each trial runs the deployment's N closed-loop clients through the engine's scheduler
  (:meth:`~genmodel._servingmodel.Simulated.simulate`) on the platform scaled by one factor
  (:meth:`System.scaled`, the memory capacity the pre-solve assumed kept), as a simulated estimate
  (``estimate(..., concurrency=N)``) and ``genmodel simulate`` run them: the same benchmark client
  (12 requests each, the first 2 a warm-up left out, every client restarting together after it)
  and fixed lengths, so there is no random draw: the same call gives the same answer.
- A target is judged on the measured requests' TTFT (with the frontend's request overhead) and
  TPOT at its statistic: the mean, or ``numpy.percentile`` of the requests' figures, as
  ``simulate`` reports p50, p90 and p99 (p95 the same way).
- More of a resource never makes a step slower, so the simulated figures do not grow with it, up
  to the scheduler's discrete effects (which step a prompt lands in: a figure can move by a
  fraction of a step as the steps' timing shifts). The solve brackets the answer by geometric
  steps from a guess (the closed form's answer for the same targets, else the platform's figure)
  and bisects on the factor's logarithm to a relative width of :data:`SIM_RTOL`: the answer is the
  bracket's upper end, where the simulation meets every target, and its lower end (at most
  SIM_RTOL below) misses one, which names the target that sets the requirement.
- A resource does not enter the targets when the simulated figures are the same with ``X_MIN`` and
  ``X_MAX`` times it (unused, whether or not they are met); alone it cannot meet them when the
  simulation with ``X_MAX`` times it still misses one (unreachable); it is unused when they hold
  with ``X_MIN`` times it.
- The simulation does not cover pipeline or context parallelism, overlapped microbatches or a
  single-batch overlap, speculative decoding or offload tiers
  (:func:`~genmodel._stepcost.check_simulable`): there a mean
  target is solved on the closed form, as a simulated estimate falls back to it (with a note), and
  a percentile is refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from genmodel._candidates import statistic_name
from genmodel._capacity import Deployment, Fitted
from genmodel._errors import SpecError
from genmodel._phases import Estimate
from genmodel._serving import estimate_serving
from genmodel._servingmodel import Simulated
from genmodel._simestimate import fallback_note, simulated_estimate
from genmodel._symbolic import X_MAX, X_MIN
from genmodel._units import MS

if TYPE_CHECKING:
    from genmodel._simresult import SimulationResult

#: the relative width of the final bracket: the answer meets the targets in simulation and the
#: factor 1 / (1 + SIM_RTOL) times it misses one (1 %: well inside the model's own error)
SIM_RTOL = 0.01
_TARGET_NAMES = {"ttft_s": "ttft_slo_s", "tpot_s": "tpot_slo_s"}


def statistic_figure(sim: SimulationResult, metric: str, quantile: float | None) -> float:
    """The measured requests' ``metric`` (ttft_s or tpot_s) at a statistic: the mean (None) or
    the quantile (0.99: the p99), as :class:`~genmodel._simresult.SimulationResult` computes its
    percentiles (TTFT with the request overhead; TPOT of outputs over one token)."""
    import numpy as np

    r = sim.records
    assert r is not None, "simulated with records=True"
    m = r.measured
    if metric == "ttft_s":
        values = (r.first_token_s - r.arrival_s)[m] + sim.request_overhead_s
    else:
        out = r.output_tokens[m]
        multi = out > 1
        values = (r.finish_s - r.first_token_s)[m][multi] / (out[multi] - 1)
    if len(values) == 0:
        return math.nan
    return float(values.mean()) if quantile is None else float(np.percentile(values, quantile * 100))


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatedLoad:
    """The deployment under its clients, as every trial of the solve simulates it.

    Attributes:
        fitted: the deployment on the platform with enough memory (the capacity pre-solve).
        served: the engine and benchmark client (:class:`~genmodel._servingmodel.Simulated`).
        quantiles: each metric's target statistic (None: the mean).
    """

    fitted: Fitted
    served: Simulated
    quantiles: Mapping[str, float | None]
    #: trials run so far, by their factors (the bracket revisits none; the base is reused)
    _runs: dict[tuple[tuple[str, float], ...], SimulationResult] = field(
        default_factory=dict, repr=False, compare=False
    )

    def run(self, **factors: float) -> SimulationResult:
        """The simulation on the platform scaled by ``factors`` (and the assumed memory capacity)."""
        key = tuple(sorted(factors.items()))
        if key not in self._runs:
            d = self.fitted.deployment
            assert d.concurrency is not None
            system = d.system.scaled(**{"memory_capacity": self.fitted.assumed, **factors})
            self._runs[key] = self.served.simulate(
                d.model,
                system,
                d.plan,
                d.precision,
                **_load(d),
                records=True,
                itl=False,  # (the targets are the requests' TTFT and TPOT)
            )
        return self._runs[key]

    def figures(self, **factors: float) -> dict[str, float]:
        """TTFT and TPOT at their targets' statistics on the scaled platform."""
        sim = self.run(**factors)
        return {m: statistic_figure(sim, m, self.quantiles.get(m)) for m in _TARGET_NAMES}

    def base(self) -> Estimate:
        """The simulated estimate on the platform (with the assumed memory): the simulated means,
        the closed form's phases and memory (:func:`~genmodel._simestimate.simulated_estimate`)."""
        d = self.fitted.deployment
        assert d.concurrency is not None
        closed = estimate_serving(
            d.model,
            d.system.scaled(memory_capacity=self.fitted.assumed),
            d.plan,
            d.precision,
            **_load(d),
            wave=self.served.wave,
        )
        return simulated_estimate(closed, self.run())


def simulated_load(
    fitted: Fitted, served: Simulated, quantiles: Mapping[str, float | None]
) -> tuple[SimulatedLoad | None, str]:
    """The load to solve on, or (None, why) where the simulation does not cover the plan and every
    target is a mean (the closed form then answers, as a simulated estimate falls back to it).

    Raises:
        SpecError: a percentile target on a plan the simulation does not cover.
    """
    from genmodel._stepcost import check_simulable

    d = fitted.deployment
    try:
        check_simulable(d.plan, d.options)
    except SpecError as exc:
        asked = [
            f"{_TARGET_NAMES[m].removesuffix('_s')}={statistic_name(q)}" for m, q in quantiles.items() if q
        ]
        if asked:
            raise SpecError(
                f"{', '.join(asked)} under load needs the serving simulation, which does not cover this "
                f"plan: {exc}; give a mean target (solved on the closed form)"
            ) from None
        return None, fallback_note(exc)
    return SimulatedLoad(fitted=fitted, served=served, quantiles=dict(quantiles)), ""


def solve_simulated(
    load: SimulatedLoad, resource: str, targets: Mapping[str, float], guess: float | None
) -> tuple[float, str | None, str, str | None]:
    """(factor, set_by, status, reason) of a latency resource in simulation (module docstring).

    ``guess``: a factor to start the bracket from (None or out of range: the platform's, 1).
    """

    def missed(x: float) -> str | None:
        figures = load.figures(**{resource: x})
        return next((m for m, slo in targets.items() if not figures[m] <= slo), None)

    least, most = load.figures(**{resource: X_MIN}), load.figures(**{resource: X_MAX})
    if all(math.isclose(least[m], most[m], rel_tol=1e-12) for m in targets):
        return (
            0.0,
            None,
            "unused",
            f"{resource} does not enter {', '.join(targets)}: no step of this plan uses it",
        )
    short = missed(X_MAX)
    if short is not None:
        return math.inf, short, "unreachable", _unreachable(load, resource, short, targets[short])
    bracket = _bracket(missed, 1.0 if guess is None or not X_MIN < guess < X_MAX else guess)
    if bracket is None:
        reason = f"{', '.join(targets)} meet their targets with almost none of {resource} (1e-12 of it)"
        return 0.0, None, "unused", reason
    lo, hi, set_by = bracket
    while hi / lo > 1 + SIM_RTOL:
        mid = math.sqrt(lo * hi)
        miss = missed(mid)
        if miss is None:
            hi = mid
        else:
            lo, set_by = mid, miss
    return hi, set_by, "binding" if hi > 1 else "met", None


def _bracket(missed: Callable[[float], str | None], x0: float) -> tuple[float, float, str] | None:
    """(lo, hi, the target missed at lo): lo misses a target, hi meets them all; None when they
    hold down to X_MIN. Geometric steps from ``x0``, each ratio the square of the last (2, 4, 16,
    ...), within [X_MIN, X_MAX]; the targets are known to hold at X_MAX."""
    ratio = 2.0
    miss = missed(x0)
    if miss is None:
        hi = x0
        while hi > X_MIN:
            lo = max(hi / ratio, X_MIN)
            miss = missed(lo)
            if miss is not None:
                return lo, hi, miss
            hi, ratio = lo, ratio * ratio
        return None
    lo = x0
    while True:
        hi = min(lo * ratio, X_MAX)
        above = missed(hi)
        if above is None:
            return lo, hi, miss
        lo, miss, ratio = hi, above, ratio * ratio


def _unreachable(load: SimulatedLoad, resource: str, metric: str, target: float) -> str:
    stat = statistic_name(load.quantiles.get(metric))
    value = load.figures(**{resource: X_MAX})[metric]
    return (
        f"{_TARGET_NAMES[metric]}={target:g} ({stat}) cannot be met by {resource} alone: with unlimited "
        f"{resource} the simulated {stat} {metric} is still {value / MS:.4g} ms (the engine's step "
        "overhead, the other resources' operators, the clients' queueing)"
    )


def _load(d: Deployment) -> dict[str, Any]:
    """The load and run of a deployment under a concurrency, as the serving models take them."""
    return {
        "concurrency": d.concurrency,
        "input_tokens": d.input_tokens,
        "output_tokens": d.output_tokens,
        "ideal": d.ideal,
        "options": d.options,
    }
