"""The serving simulation re-checks the plan search's best candidates: the closed form prunes, the
simulation decides.

Modelling assumptions:
- A candidate of the search (:mod:`genmodel._search`) is run again at its integer client count N
  through the engine's scheduler (:func:`~genmodel._simulate.simulate_serving`): N closed-loop
  clients started together, as the benchmark clients and ``estimate(..., concurrency=N)`` run
  them, except that each client's first request is a warm-up left out of the figures
  (:data:`RECHECK_WARMUP_REQUESTS`) that flows straight into the measured requests (no
  benchmark's drain and restart: the load planned for is steady, not a benchmark's start),
  followed by at least two measured ones, more for few clients
  (:func:`requests_per_client`). For a request rate R served by n copies of the candidate, one
  copy takes Poisson arrivals at R / n requests/s (as many requests as the closed loop measures);
  its answer states that rate, and the requests in flight (Little's law) as its concurrency.
- The SLOs are judged on the simulated per-request figures at their statistic (mean or a
  percentile of TTFT and TPOT); a longest-gap target (``itl_max_s``) stays the closed form's.
- A layout the simulation does not cover (:func:`~genmodel._stepcost.check_simulable`: pipeline
  or context parallelism, ...) is never re-checked, so never the answer: the closed form alone
  cannot vouch for it (``serving="closed-form"`` plans on the closed form alone).
- Order (:func:`recheck`): first the closed form's best. After a miss, the best-ranked candidate
  whose closed-form goodput is lower in proportion to the shortfall (target / simulated figure);
  after a pass, a bisection in goodput between the best pass and the lowest miss, until they are
  within :data:`RESOLUTION_FRAC` or ``budget`` candidates are spent. One candidate per layout and
  integer client count. The answer is the best of those that met the SLOs in simulation, by the
  plan's objective on their simulated figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from genmodel._arrivals import Arrivals, Lengths
from genmodel._candidates import SLO_STATISTICS, copies_needed
from genmodel._engines import Engine
from genmodel._errors import InfeasibleError, SpecError
from genmodel._forwardpass import StepSpecs
from genmodel._model import ModelSpec
from genmodel._options import RunOptions
from genmodel._parallel import Plan
from genmodel._phases import Estimate
from genmodel._search import SearchResult, Slo
from genmodel._serving import estimate_serving
from genmodel._simestimate import StepTables, simulated_estimate
from genmodel._simulate import simulate_serving
from genmodel._stepcost import StepCostTable, check_simulable
from genmodel._system import System
from genmodel._wave import BenchmarkClient, Wave
from genmodel._workload import Precision

if TYPE_CHECKING:
    import numpy as np

    from genmodel._simresult import SimulationResult


@dataclass(frozen=True, slots=True, kw_only=True)
class Recheck:
    """One candidate of the search, estimated again alone: simulated, with the closed form beside it.

    Attributes:
        index: the candidate's index in :attr:`SearchResult.candidates`.
        estimate: the answer for the candidate: the simulated means (``serving.serving_model`` is
            "simulated"), the phases and memory of the closed form.
        closed: the closed-form estimate at the same client count.
        ttft_s, tpot_s: the simulated figures by statistic (mean, p50, p90, p95, p99; and the
            SLO's own percentile).
        closed_ttft_s, closed_tpot_s: the closed form's figure at each SLO's statistic.
        simulated_ttft_s, simulated_tpot_s: the simulation's figure at the same statistic.
        meets_slo: whether the answer meets every target.
        instances: copies of the plan serving the request rate (None without one).
        arrivals: the load that was simulated, in words.
    """

    index: int
    estimate: Estimate
    closed: Estimate
    ttft_s: dict[str, float] = field(default_factory=dict)
    tpot_s: dict[str, float] = field(default_factory=dict)
    closed_ttft_s: float
    closed_tpot_s: float
    simulated_ttft_s: float
    simulated_tpot_s: float
    meets_slo: bool
    instances: int | None = None
    arrivals: str = ""

    def disagreement(self) -> dict[str, float | None]:
        """(simulated - closed form) / closed form of TTFT and TPOT at the SLO's statistics."""

        def rel(sim: float, cf: float) -> float | None:
            return sim / cf - 1 if cf > 0 else None

        return {
            "ttft_rel_diff": rel(self.simulated_ttft_s, self.closed_ttft_s),
            "tpot_rel_diff": rel(self.simulated_tpot_s, self.closed_tpot_s),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """What every re-check of one search shares: the model, system, run options, lengths, SLOs and load."""

    model: ModelSpec
    system: System
    options: RunOptions
    slo: Slo
    input_tokens: int
    output_tokens: int
    engine: Engine
    request_rate_per_s: float | None = None
    #: step-cost tables of the layouts re-checked so far (candidates of one layout share one)
    tables: StepTables = field(default_factory=StepTables)

    def table(self, plan: Plan, precision: Precision, options: RunOptions) -> StepCostTable:
        """The step-cost table of a layout, built once for any client count: it covers the
        engine's token budget (or a lone prompt over it) and its whole running batch."""
        return self.tables.get(
            StepSpecs(
                model=self.model, hardware=self.system, plan=plan, precision=precision, options=options
            ),
            engine=self.engine,
            input_tokens=self.input_tokens,
            running=self.engine.max_num_seqs,
        )

    @property
    def wave(self) -> Wave | None:
        """:func:`closed_form_wave` of this engine and load."""
        return closed_form_wave(self.engine, self.request_rate_per_s)


def closed_form_wave(engine: Engine, request_rate_per_s: float | None) -> Wave | None:
    """The wave of the re-check's clients (:data:`RECHECK_CLIENT`) on ``engine``, the closed form's
    term for it in the search and the re-check; None for a request rate (Poisson arrivals send none)."""
    return None if request_rate_per_s is not None else Wave.of(engine, RECHECK_CLIENT)


def _percentile(values: np.ndarray[Any, Any], quantile: float | None) -> float:
    import numpy as np

    if len(values) == 0:
        return math.nan
    return float(values.mean()) if quantile is None else float(np.percentile(values, quantile * 100))


def _per_request(sim: SimulationResult) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Each measured request's TTFT, and TPOT (decode time / (output - 1), for outputs over one
    token), from the simulation's records: the figures behind its percentiles."""
    r = sim.records
    assert r is not None
    m = r.measured
    ttft = (r.first_token_s - r.arrival_s)[m]
    out = r.output_tokens[m]
    multi = out > 1
    tpot = (r.finish_s - r.first_token_s)[m][multi] / (out[multi] - 1)
    return ttft, tpot


def _figures(values: np.ndarray[Any, Any], quantile: float | None) -> dict[str, float]:
    figures = {name: _percentile(values, q) for name, q in SLO_STATISTICS.items()}
    if quantile is not None:
        figures.setdefault(f"p{quantile * 100:.10g}", _percentile(values, quantile))
    return figures


def _meets(est: Estimate, slo: Slo, ttft: float, tpot: float) -> bool:
    """Whether TTFT and TPOT (at the SLOs' statistics) and the longest gap meet the targets."""
    ok = slo.tpot_s is None or tpot <= slo.tpot_s * (1 + 1e-9)
    ok = ok and (slo.ttft_s is None or ttft <= slo.ttft_s * (1 + 1e-9))
    if slo.itl_max_s is not None:  # a decode step, then the longest prefill piece
        stall = est.prefill.time_s if est.decode_stall_s is None else est.decode_stall_s
        ok = ok and est.decode.time_s + stall <= slo.itl_max_s * (1 + 1e-9)
    return ok


def _at_rate(est: Estimate, rate_per_s: float) -> Estimate:
    """A copy simulated under Poisson arrivals, stated at its share of the rate: the requests in
    flight by Little's law (rate x mean end-to-end latency) as its concurrency, so that its tokens/s
    are rate x output tokens (the simulation's own rate also counts the drain after the last arrival)."""
    assert est.serving is not None
    in_flight = max(1, round(rate_per_s * est.e2e_s))
    serving = replace(est.serving, concurrency=in_flight, request_rate_per_s=rate_per_s)
    return replace(est, batch=in_flight, serving=serving)


def recheck_one(result: SearchResult, index: int, dep: Deployment) -> Recheck:
    """Candidate ``index`` of ``result`` estimated again alone, simulated (module docstring).

    Raises:
        InfeasibleError: one request does not fit the engine's KV pool.
    """
    c = result.candidates
    layout = result.layouts[int(c.layout[index])]
    clients = max(1, round(float(c.concurrency[index])))
    options = replace(dep.options, prefill_chunk=layout.prefill_chunk)
    closed = estimate_serving(
        dep.model,
        dep.system,
        layout.plan,
        layout.precision,
        concurrency=clients,
        input_tokens=dep.input_tokens,
        output_tokens=dep.output_tokens,
        options=options,
        wave=dep.wave,
    )
    assert closed.serving is not None
    slo = dep.slo
    # the closed form at each SLO's statistic: the search's TTFT quantile (M/D/1), TPOT's mean
    cf_ttft = closed.ttft_s if slo.ttft_quantile is None else float(c.ttft_s[index])
    cf_tpot = closed.tpot_s
    instances: int | None = None
    rate = math.nan
    arrivals = Arrivals.closed(RECHECK_CLIENT, clients)
    per_client = arrivals.requests_per_client
    words = f"{clients} closed-loop clients x {per_client} requests, the first of each a warm-up"
    if dep.request_rate_per_s is not None:
        instances = int(copies_needed(dep.request_rate_per_s, closed.serving.request_rate_per_s))
        rate = dep.request_rate_per_s / instances
        requests = (per_client - RECHECK_CLIENT.warmup_requests) * clients
        arrivals = Arrivals(kind="poisson", rate_per_s=rate, requests=requests)
        words = f"Poisson arrivals at {rate:.4g} requests/s per copy, {requests} requests"
    sim = simulate_serving(
        dep.model,
        dep.system,
        layout.plan,
        layout.precision,
        engine=dep.engine,
        arrivals=arrivals,
        input_tokens=Lengths(mean=dep.input_tokens),
        output_tokens=Lengths(mean=dep.output_tokens),
        options=options,
        records=True,
        table=dep.table(layout.plan, layout.precision, options),
        itl=False,  # (the re-check judges the requests' TTFT and TPOT)
    )
    ttft, tpot = _per_request(sim)
    sim_ttft, sim_tpot = _percentile(ttft, slo.ttft_quantile), _percentile(tpot, slo.tpot_quantile)
    est = simulated_estimate(closed, sim)
    if instances is not None:
        est = _at_rate(est, rate)
    return Recheck(
        index=index,
        estimate=est,
        closed=closed,
        ttft_s=_figures(ttft, slo.ttft_quantile),
        tpot_s=_figures(tpot, slo.tpot_quantile),
        closed_ttft_s=cf_ttft,
        closed_tpot_s=cf_tpot,
        simulated_ttft_s=sim_ttft,
        simulated_tpot_s=sim_tpot,
        meets_slo=_meets(est, slo, sim_ttft, sim_tpot),
        instances=instances,
        arrivals=words,
    )


#: requests of each closed-loop client left out of a re-check's figures: the clients start
#: together, as benchmark clients do, and the burst of their first prompts is not the steady state
#: a deployment is planned for (it would set every percentile of TTFT). One, where a simulated
#: estimate's benchmark client leaves out :data:`genmodel._servingmodel.WARMUP_REQUESTS` (2): the
#: re-check runs a few requests per client, for speed, and the second wave's bunching it keeps errs
#: on the safe side of a TTFT target
RECHECK_WARMUP_REQUESTS = 1

#: the fewest requests a re-check measures: each client sends at least two after its warm-up, and
#: more when there are few clients, so that a p99 rests on a few hundred requests
MEASURED_REQUESTS_MIN = 256


#: the re-check's benchmark client (:func:`requests_per_client`), whose wave the closed form adds
RECHECK_CLIENT = BenchmarkClient(
    requests_per_client=RECHECK_WARMUP_REQUESTS + 2,
    warmup_requests=RECHECK_WARMUP_REQUESTS,
    measured_requests_min=MEASURED_REQUESTS_MIN,
    restart_after_warmup=False,  # the warm-up leaves the start's burst out; no benchmark's restart
)


def requests_per_client(clients: int) -> int:
    """Requests each of ``clients`` closed-loop clients sends in a re-check, its warm-up included:
    :data:`RECHECK_WARMUP_REQUESTS` + max(2, ceil(:data:`MEASURED_REQUESTS_MIN` / clients))
    (:data:`RECHECK_CLIENT`)."""
    return int(RECHECK_CLIENT.requests(clients))


#: the re-check stops refining once the goodput of the best candidate that meets the SLOs in
#: simulation is within this fraction of the lowest that misses them
RESOLUTION_FRAC = 0.1


def _shortfall(check: Recheck, slo: Slo) -> float:
    """The smallest target / simulated figure of the targets ``check`` missed (1: none missed)."""
    ratio = 1.0
    for target, figure in ((slo.ttft_s, check.simulated_ttft_s), (slo.tpot_s, check.simulated_tpot_s)):
        if target is not None and figure > target:
            ratio = min(ratio, target / figure)
    return ratio


@dataclass(slots=True)
class _Bracket:
    """Where the answer lies, in closed-form output tokens/s per device: above ``low`` (the best
    that met the SLOs in simulation), below ``high`` (the lowest that missed them), at most ``aim``."""

    low: float = 0.0
    high: float = math.inf
    aim: float = math.inf

    def narrow(self, goodput: float, check: Recheck, slo: Slo) -> None:
        """Take in a re-checked candidate of closed-form goodput ``goodput``: aim below a miss in
        proportion to its shortfall, or between the bounds after a pass (bisection)."""
        if check.meets_slo:
            self.low = max(self.low, goodput)
        else:
            self.high = min(self.high, goodput)
        if self.low == 0.0:  # nothing met the SLOs yet: scale the load down by the shortfall
            self.aim = min(self.high * _shortfall(check, slo), self.high * (1 - RESOLUTION_FRAC))
        else:
            self.aim = math.sqrt(self.low * self.high) if math.isfinite(self.high) else math.inf

    def done(self) -> bool:
        """Whether the bounds are within :data:`RESOLUTION_FRAC` of each other."""
        return self.low > 0 and self.high <= self.low * (1 + RESOLUTION_FRAC)


def simulable(result: SearchResult, options: RunOptions) -> np.ndarray[Any, Any]:
    """Per layout of ``result``: whether the simulation covers it (pp = cp = 1, ...)."""
    import numpy as np

    def covered(plan: Plan) -> bool:
        try:
            check_simulable(plan, options)
        except SpecError:
            return False
        return True

    return np.array([covered(lay.plan) for lay in result.layouts], dtype=bool)


def recheck(
    result: SearchResult,
    ranked: np.ndarray[Any, Any],
    dep: Deployment,
    *,
    budget: int,
    better: Callable[[Recheck], Any],
    check: Callable[[SearchResult, int, Deployment], Recheck] = recheck_one,
) -> tuple[Recheck | None, list[Recheck]]:
    """The best of the ``ranked`` candidates (best first, each meeting the SLOs in the closed form)
    that meets the SLOs in simulation, by at most ``budget`` re-checks.

    The first re-check is the closed form's best. After a miss, the next is the best-ranked
    candidate whose closed-form goodput is lower in proportion to the shortfall (the target over
    the simulated figure); after a pass, the search bisects (in goodput) between the best pass and
    the lowest miss, until they are within :data:`RESOLUTION_FRAC` or the budget is spent.
    Layouts the simulation does not cover (:func:`simulable`) are left out.

    Args:
        better: the order of the answers (smaller is better), on their re-checked figures.

    Returns:
        (the best that meets the SLOs in simulation, by ``better``, or None; every candidate
        re-checked, in order).
    """
    c = result.candidates
    if len(ranked):
        ranked = ranked[simulable(result, dep.options)[c.layout[ranked]]]
    goodput = c.tokens_per_s_per_device[ranked]
    bracket = _Bracket()
    tried: list[Recheck] = []
    seen: set[tuple[int, int]] = set()
    while len(tried) < budget and not bracket.done():
        pick = _next(result, ranked, goodput, bracket, seen)
        if pick is None:
            break
        try:
            done = check(result, int(ranked[pick]), dep)
        except InfeasibleError:  # one request does not fit the engine's KV pool: not an answer
            continue
        tried.append(done)
        bracket.narrow(float(goodput[pick]), done, dep.slo)
    passed = [t for t in tried if t.meets_slo]
    return (min(passed, key=better) if passed else None), tried


def _next(
    result: SearchResult,
    ranked: np.ndarray[Any, Any],
    goodput: np.ndarray[Any, Any],
    bracket: _Bracket,
    seen: set[tuple[int, int]],
) -> int | None:
    """The position in ``ranked`` of the best-ranked candidate not yet re-checked (by layout and
    integer clients) whose goodput is above the bracket's low and at most its aim (and below its
    high), or None."""
    import numpy as np

    c = result.candidates
    top = min(bracket.aim, bracket.high * (1 - 1e-12))
    for h in np.flatnonzero((goodput > bracket.low * (1 + 1e-12)) & (goodput <= top)):
        i = ranked[h]
        key = (int(c.layout[i]), max(1, round(float(c.concurrency[i]))))
        if key not in seen:
            seen.add(key)
            return int(h)
    return None
