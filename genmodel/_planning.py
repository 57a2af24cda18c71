"""Capacity planning: the best serving plan of a device budget or a request rate, and platforms compared.

Modelling assumptions: none of its own. The plan space is evaluated vectorised in the closed form
by :mod:`genmodel._search`; the best candidates are then simulated with the engine's scheduler
(:mod:`genmodel._recheck`: the closed form prunes, the simulation decides), or, in the closed form
(``serving="closed-form"``), estimated again alone: ``best`` is what :func:`genmodel.estimate` says.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from genmodel._api import check_moe_options, default_precision, profiled, run_options
from genmodel._candidates import DEFAULT_RECHECK, MAX_RECHECK, statistic_name
from genmodel._engines import Engine
from genmodel._errors import SpecError
from genmodel._hardware import Device
from genmodel._intervals import model_kind, pessimistic_factors
from genmodel._model import ModelSpec
from genmodel._options import RunOptions
from genmodel._parallel import Plan
from genmodel._phases import Estimate
from genmodel._planrows import (
    DtypeBest,
    check_dict,
    dtype_row,
    layout_dict,
    pareto_rows,
    rank_key,
    ranked_meeting,
    recheck_row,
    report_repr,
    top_rows,
)
from genmodel._recheck import Deployment, Recheck, closed_form_wave, recheck
from genmodel._scalars import plain_scalars
from genmodel._search import Disaggregated, SearchResult, Slo, check_objective, copies_needed, search
from genmodel._serving import estimate_serving
from genmodel._servingmodel import check_serving, engine_for
from genmodel._stepcost import check_simulable
from genmodel._system import System, as_system
from genmodel._wave import Wave
from genmodel._workload import KEEP_CHECKPOINT, Precision
from genmodel.io import load_hardware, load_model
from genmodel.report import estimate_dict


def _precisions(
    weight_dtype: str | Sequence[str],
    act_dtype: str | None,
    kv_dtype: str | None,
    model: ModelSpec | None = None,
    keep_modules: str = KEEP_CHECKPOINT,
) -> list[Precision]:
    names = [weight_dtype] if isinstance(weight_dtype, str) else list(weight_dtype)
    return [default_precision(w, act_dtype, kv_dtype, model=model, keep_modules=keep_modules) for w in names]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanReport:
    """What :func:`plan` found: the best serving plan as an :class:`Estimate`, the Pareto frontier,
    and how many candidates were evaluated, could run, and why the others could not."""

    model_id: str
    system_id: str
    devices: int
    slo: Slo
    result: SearchResult
    best: Estimate | None
    disaggregated: Disaggregated | None
    pareto: tuple[dict[str, Any], ...]
    #: the traffic planned for (requests/s; None: a fixed deployment of ``devices``)
    request_rate_per_s: float | None = None
    #: what ``best`` optimises (:data:`genmodel._search.OBJECTIVES`)
    objective: str = "goodput"
    #: the pessimistic bound the targets were checked on (:func:`genmodel._intervals.pessimistic_factors`)
    risk: dict[str, Any] | None = None
    #: the serving model of the answer: "simulated" (the closed form prunes, the simulation
    #: re-checks) or "closed-form"
    serving: str = "closed-form"
    #: the simulated engine (None for the closed form)
    engine: str | None = None
    #: candidates the simulation may re-check per weight dtype
    recheck_budget: int = 0
    #: the re-check of ``best`` (None: closed form only, or nothing met the SLOs)
    check: Recheck | None = None
    #: every candidate re-checked, in order
    rechecked: tuple[Recheck, ...] = ()
    #: the best plan of each weight dtype searched, when there are several
    by_dtype: tuple[DtypeBest, ...] = ()
    #: the best plans of the closed form's ranking, one per layout and dtype (JSON rows)
    top: tuple[dict[str, Any], ...] = ()
    #: what the answer is not: why the simulation was left out ("" if nothing)
    note: str = ""

    def __repr__(self) -> str:
        """A few lines: the search's counts and the best plan (:func:`report_repr`)."""
        head = (self.model_id, self.system_id, self.devices)
        return report_repr(*head, result=self.result, best=self.best, pareto=len(self.pareto))

    @property
    def instances(self) -> int | None:
        """Copies of the best plan needed for the request rate (None without one or without a plan)."""
        if self.request_rate_per_s is None or self.best is None or self.best.serving is None:
            return None
        if self.check is not None and self.check.instances is not None:
            return self.check.instances
        return _instances(self.request_rate_per_s, self.best.serving.request_rate_per_s)

    @property
    def devices_needed(self) -> int | None:
        """Devices in all for the request rate: instances x the best plan's devices."""
        n = self.instances
        return None if n is None or self.best is None else n * self.best.plan.num_devices

    @property
    def evaluated(self) -> int:
        """Candidate plans evaluated (layouts x precisions x running batch sizes)."""
        return self.result.evaluated

    @property
    def plans_per_s(self) -> float:
        """Candidates evaluated per second."""
        return self.result.evaluated / self.result.elapsed_s

    @property
    def goodput(self) -> float:
        """Output tokens/s per device of the best co-located plan (0 when none meets the SLOs)."""
        return 0.0 if self.best is None else self.best.output_tokens_per_s_per_device

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: evaluated, feasible, elapsed_s, best, pareto (docs/cli.md), and more."""
        r = self.result
        best = None if self.best is None else _plan_row(self.best)
        if best is not None and self.request_rate_per_s is not None:
            best["instances"] = self.instances
            best["devices_needed"] = self.devices_needed
        if best is not None and self.check is not None:
            best.update(check_dict(self.check, self.slo))
        d = self.disaggregated
        disagg = None
        if d is not None:
            disagg = {
                "prefill": layout_dict(d.prefill),
                "decode": layout_dict(d.decode),
                "prefill_instances": d.prefill_instances,
                "decode_instances": d.decode_instances,
                "devices": d.devices,
                "decode_batch": d.decode_batch,
                "request_rate_per_s": d.request_rate_per_s,
                "ttft_s": d.ttft_s,
                "tpot_s": d.tpot_s,
                "kv_transfer_exposed_s": d.kv_transfer_exposed_s,
                "output_tokens_per_s_per_device": d.tokens_per_s_per_device,
                "goodput_gain_vs_colocated": (
                    None if self.goodput == 0 else d.tokens_per_s_per_device / self.goodput
                ),
            }
            if self.request_rate_per_s is not None:
                disagg["devices_saved_vs_colocated"] = (
                    None if self.devices_needed is None else self.devices_needed - d.devices
                )
        return {
            "model": self.model_id,
            "system": self.system_id,
            "devices": self.devices,
            "request_rate_per_s": self.request_rate_per_s,
            "objective": self.objective,
            "slo": {
                "ttft_s": self.slo.ttft_s,
                "tpot_s": self.slo.tpot_s,
                "ttft_quantile": self.slo.ttft_quantile,
                "tpot_quantile": self.slo.tpot_quantile,
                "ttft_statistic": statistic_name(self.slo.ttft_quantile),
                "tpot_statistic": statistic_name(self.slo.tpot_quantile),
                "itl_max_s": self.slo.itl_max_s,
            },
            "serving": self._serving_dict(),
            "evaluated": r.evaluated,
            "feasible": r.feasible,
            "meeting_slo": int(r.candidates.meets_slo.sum()),
            "above_step_budget": int((~r.candidates.within_budget).sum()),
            "elapsed_s": r.elapsed_s,
            "plans_per_s": self.plans_per_s,
            "best": best,
            "pareto": list(self.pareto),
            "violations": dict(sorted(r.violations.items(), key=lambda kv: -kv[1])),
            "disaggregated": disagg,
            "risk": self.risk,
            "rechecked": [recheck_row(k) for k in self.rechecked],
            "by_weight_dtype": [
                dtype_row(b, self.best, self.request_rate_per_s, self.devices_needed) for b in self.by_dtype
            ],
            "top": list(self.top),
        }

    def _serving_dict(self) -> dict[str, Any]:
        """How the answer was reached: the serving model, engine, load simulated and re-checks."""
        simulated = self.serving == "simulated"
        load = (
            None
            if not simulated
            else "Poisson arrivals at the request rate shared by the copies"
            if self.request_rate_per_s is not None
            else "closed-loop clients at the plan's concurrency, started together; each one's first "
            "request a warm-up, left out"
        )
        note = self.note
        if simulated and self.best is None and self.rechecked:
            note = (
                (
                    "the one candidate re-checked does not meet the SLOs in simulation; "
                    if len(self.rechecked) == 1
                    else f"none of the {len(self.rechecked)} candidates re-checked meets the SLOs in "
                    "simulation; "
                )
                + "widen the search with a larger recheck (--recheck 32), relax the targets, or see "
                "the closed form's answer with serving='closed-form'"
            )
        elif simulated and self.best is None and self.result.candidates.meets_slo.any():
            note = (
                "the simulation covers none of the candidates that meet the SLOs in the closed form "
                "(it needs pp = 1 and cp = 1); see the closed form's answer with serving='closed-form'"
            )
        return {
            "model": self.serving,
            "engine": self.engine,
            "load": load,
            "recheck": self.recheck_budget,
            "rechecked": len(self.rechecked),
            "note": note,
        }


#: the most plans ``top`` may list
MAX_TOP = 1_000


def _check_plan_args(*, objective: str, serving: str, recheck: int, top: int, pareto_points: int) -> None:
    """Refuse an unknown objective or serving model, or a recheck, top or pareto_points out of bounds.

    Raises:
        SpecError: ``name=value must ...``.
    """
    check_objective(objective)
    check_serving(serving)
    if isinstance(recheck, bool) or not isinstance(recheck, int) or not 0 <= recheck <= MAX_RECHECK:
        raise SpecError(f"recheck={recheck!r} must be an integer between 0 and {MAX_RECHECK}")
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_TOP:
        raise SpecError(f"top={top!r} must be an integer between 1 and {MAX_TOP}")
    if isinstance(pareto_points, bool) or not isinstance(pareto_points, int) or pareto_points < 0:
        raise SpecError(f"pareto_points={pareto_points!r} must be an integer >= 0")


def _not_simulable(options: RunOptions) -> str:
    """Why the simulation covers no plan with these run options ("" if it does)."""
    try:
        check_simulable(Plan(), options)
    except SpecError as exc:
        return f"serving='simulated' fell back to the closed form: {exc}"
    return ""


def _simulated(report: PlanReport, dep: Deployment, budget: int, precisions: list[Precision]) -> PlanReport:
    """``report`` with the answer the simulation re-checks (per precision, then the best of them)."""
    bests: list[DtypeBest] = []
    tried: list[Recheck] = []
    for p in precisions:
        check, done = recheck(
            report.result,
            ranked_meeting(report.result, report.objective, p),
            dep,
            budget=budget,
            better=lambda k: rank_key(k.estimate, report.objective, k.instances),
        )
        tried += done
        if check is None:
            bests.append(DtypeBest(weight_dtype=p.weight_dtype, best=None))
        else:
            bests.append(
                DtypeBest(
                    weight_dtype=p.weight_dtype, best=check.estimate, check=check, instances=check.instances
                )
            )
    found = [b for b in bests if b.best is not None]
    win = None
    if found:
        win = min(found, key=lambda b: rank_key(b.best, report.objective, b.instances))  # type: ignore[arg-type]
    return replace(
        report,
        best=None if win is None else win.best,
        check=None if win is None else win.check,
        rechecked=tuple(tried),
        by_dtype=tuple(bests) if len(bests) > 1 else (),
        serving="simulated",
        engine=dep.engine.name,
        recheck_budget=budget,
    )


def _closed_by_dtype(
    report: PlanReport,
    best: Estimate | None,
    args: _Args,
    precisions: list[Precision],
) -> tuple[DtypeBest, ...]:
    """The closed form's best of each precision, when there are several (``best`` for its own)."""
    if len(precisions) < 2:
        return ()
    rate = report.request_rate_per_s
    out = []
    for p in precisions:
        mine = best
        if best is None or best.precision != p:
            mine = _best(report.result, args, report.slo, report.objective, rate, precision=p)
        n = (
            None
            if rate is None or mine is None or mine.serving is None
            else _instances(rate, mine.serving.request_rate_per_s)
        )
        out.append(DtypeBest(weight_dtype=p.weight_dtype, best=mine, instances=n))
    return tuple(out)


def _instances(request_rate_per_s: float, instance_rate_per_s: float) -> int:
    """Copies of an instance serving ``instance_rate_per_s`` needed for the whole request rate."""
    return int(copies_needed(request_rate_per_s, instance_rate_per_s))


def _plan_row(est: Estimate) -> dict[str, Any]:
    """The plan fields and the estimate keys of one serving estimate (``best`` in the JSON)."""
    return {**estimate_dict(est), "concurrency": est.batch}


@plain_scalars
def plan(
    model: str | ModelSpec,
    hardware: str | Device | System,
    *,
    devices: int,
    input_tokens: int,
    output_tokens: int,
    ttft_slo_s: float | None = None,
    tpot_slo_s: float | None = None,
    ttft_quantile: float | None = None,
    tpot_quantile: float | None = None,
    weight_dtype: str | Sequence[str] = "bf16",
    act_dtype: str | None = None,
    kv_dtype: str | None = None,
    disaggregated: bool = False,
    request_rate_per_s: float | None = None,
    objective: str = "goodput",
    itl_max_slo_s: float | None = None,
    prefill_chunks: Sequence[int | None] | None = None,
    pareto_points: int = 50,
    serving: str = "simulated",
    engine: str | Engine = "vllm",
    recheck: int = DEFAULT_RECHECK,
    top: int = 5,
    options: RunOptions | None = None,
    risk: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    **option_values: Any,
) -> PlanReport:
    """Find the serving plan of ``devices`` devices with the highest goodput within the SLOs, or
    (given a request rate) the plan that serves that traffic within the SLOs on the fewest devices.

    Every tp x pp x dp (x ep) layout, precision (each ``weight_dtype`` given) and running batch is
    evaluated vectorised in the closed form (:mod:`genmodel._search`). By default the best
    candidates of each weight dtype are then simulated (``serving``, ``engine``, ``recheck``;
    :mod:`genmodel._recheck`) and ``best`` is the best that meets the SLOs in simulation, with the
    simulated figures; a candidate that misses them there is never ``best``. With
    ``serving="closed-form"`` the best candidate is estimated again, alone, with :func:`estimate`
    at its (rounded) concurrency, so ``best`` is exactly what ``estimate`` says of that plan.

    Args:
        devices: the device budget (every layout uses all of it; dp makes replicas); with
            ``request_rate_per_s``, the largest instance (copy of the plan) considered.
        request_rate_per_s: traffic in requests/s: ``instances`` copies of ``best`` serve it, with
            ``devices_needed`` devices in all (each copy counted at its full-load rate).
        objective: ``goodput`` (default; for a request rate: the fewest devices), ``cost`` and
            ``energy`` (the same order on one platform: price and power per device are constants;
            they differ across platforms in :func:`compare`), or ``latency`` (the lowest TPOT that
            meets the SLOs).
        itl_max_slo_s: the longest gap between two tokens of a running request (a decode step plus
            the prefill piece run before the next one). Chunked prefill bounds it, at the price of
            reading the weights once more per chunk, so with this target the chunk sizes
            ``prefill_chunks`` are searched too (default: one pass and
            :data:`DEFAULT_PREFILL_CHUNKS` below ``input_tokens``; without it, the ``prefill_chunk``
            of ``options``: one pass unless it names one).
        ttft_slo_s, tpot_slo_s: targets in seconds (None: none), means unless
            ``ttft_quantile`` / ``tpot_quantile`` make them a quantile (0.5, 0.9, 0.95, 0.99: p50
            ... p99). The search judges a TTFT quantile by the M/D/1 tail and a TPOT quantile by
            the mean inter-token latency; the simulation judges both on its requests.
        serving: "simulated" (default): the closed form prunes, then the engine's scheduler is
            simulated on the best candidates and the first that meets the SLOs there is ``best``,
            with the simulated figures (:mod:`genmodel._recheck`); "closed-form": the closed
            form's best, re-estimated alone.
        engine: the simulated engine: vllm (default), sglang, trtllm, or an :class:`Engine`.
        recheck: candidates the simulation may try per weight dtype (0: the closed form only).
        top: the best plans of the closed form's ranking listed in ``top`` (one per layout).
        disaggregated: also size separate prefill and decode pools (DistServe) and compare.
        pareto_points: at most this many points of the frontier, spread along it.
        options: how the stack runs every plan (:class:`RunOptions`), for the search and for the
            re-estimate of ``best`` alike; the searched chunk size replaces its ``prefill_chunk``.
        risk: check the targets on a pessimistic bound: ``p80`` takes the upper end of the 80 %
            interval of TTFT and TPOT (:mod:`genmodel._intervals`); on one platform that is the
            prediction against each target divided by a constant factor (``risk`` in the JSON),
            and ranking by the lower end of throughput is ranking by throughput.
        on_progress: called during the search with (layouts evaluated, layouts in all), for a
            progress bar (the re-check follows the last call).
        option_values: run options by keyword, replacing those of ``options``
            (:func:`genmodel.run_options`; ``disaggregated`` is plan's own argument).

    Returns:
        A :class:`PlanReport`: ``best`` (an :class:`Estimate`; None when no plan meets the SLOs),
        ``pareto`` (the frontier's rows: the plan's degrees and dtypes, ``concurrency``,
        ``ttft_s``, ``tpot_s``, ``output_tokens_per_s_per_device``,
        ``output_tokens_per_s_per_user``, ``meets_slo``), ``top``, ``by_dtype``,
        ``disaggregated``, and with a request rate ``instances`` and ``devices_needed``;
        ``to_dict()`` gives the JSON keys of ``genmodel plan --format json`` (SI units).

    Raises:
        SpecError, UnknownEntryError: bad arguments. InfeasibleError: no layout can run at all.
    """
    _check_plan_args(
        objective=objective, serving=serving, recheck=recheck, top=top, pareto_points=pareto_points
    )
    m = model if isinstance(model, ModelSpec) else load_model(model)  # (load_model names a wrong type)
    hw = load_hardware(hardware) if isinstance(hardware, str) else as_system(hardware)
    engine = engine_for(engine, hw.device)
    slo = Slo(
        ttft_s=ttft_slo_s,
        tpot_s=tpot_slo_s,
        ttft_quantile=ttft_quantile,
        tpot_quantile=tpot_quantile,
        itl_max_s=itl_max_slo_s,
    )
    answered_by = "simulated" if serving == "simulated" and recheck > 0 else "closed-form"
    factors = (
        None
        if risk is None
        else pessimistic_factors(
            hw.device.id,
            risk,
            serving_model=answered_by,
            engine=engine.name,
            kind=model_kind(m),
        )
    )
    checked = slo if factors is None else _pessimistic_slo(slo, factors)
    run = run_options(hw, options=options, **option_values)
    hw, run = profiled(hw, run, engine)  # the named profile, else the device's own for the engine
    check_moe_options(m, run, ep=1 if devices == 1 else None)  # (one device: every layout has ep=1)
    if run.disaggregated:
        raise SpecError(
            "options.disaggregated=True: plan() searches co-located serving plans; "
            "plan(..., disaggregated=True) sizes separate prefill and decode pools"
        )
    precisions = list(dict.fromkeys(_precisions(weight_dtype, act_dtype, kv_dtype, m, run.keep_modules)))
    if prefill_chunks is None:
        below = [c for c in DEFAULT_PREFILL_CHUNKS if c < input_tokens]
        prefill_chunks = [run.prefill_chunk] if itl_max_slo_s is None else [None, *below]
    wave = closed_form_wave(engine, request_rate_per_s)  # the re-check's clients started together
    result = search(
        m,
        hw,
        devices=devices,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        slo=checked,
        precisions=precisions,
        disaggregated=disaggregated,
        request_rate_per_s=request_rate_per_s,
        prefill_chunks=prefill_chunks,
        options=run,
        wave=wave,
        pool=engine.kv_pool,
        on_progress=on_progress,
    )
    report = PlanReport(
        model_id=m.id,
        system_id=hw.id,
        devices=devices,
        slo=slo,
        result=result,
        best=None,
        disaggregated=result.disaggregated,
        pareto=pareto_rows(result, pareto_points),
        request_rate_per_s=request_rate_per_s,
        objective=objective,
        top=top_rows(result, objective, top),
        risk=factors,
    )
    fallback = _not_simulable(run) if serving == "simulated" and recheck > 0 else ""
    if serving == "closed-form" or recheck == 0 or fallback:
        report = replace(report, note=fallback)
        args = (m, hw, run, input_tokens, output_tokens, wave)
        best = _best(result, args, checked, objective, request_rate_per_s)
        return replace(report, best=best, by_dtype=_closed_by_dtype(report, best, args, precisions))
    dep = Deployment(
        model=m,
        system=hw,
        options=run,
        slo=checked,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        engine=engine,
        request_rate_per_s=request_rate_per_s,
    )
    return _simulated(report, dep, recheck, precisions)


def _pessimistic_slo(slo: Slo, factors: dict[str, Any]) -> Slo:
    """The targets a prediction must meet for its pessimistic end to meet ``slo``: each divided by
    the factor of its metric (the longest gap is decode steps: TPOT's)."""

    def tighter(target: float | None, metric: str) -> float | None:
        return None if target is None else target / float(factors[metric])

    return replace(
        slo,
        ttft_s=tighter(slo.ttft_s, "ttft_s"),
        tpot_s=tighter(slo.tpot_s, "tpot_s"),
        itl_max_s=tighter(slo.itl_max_s, "tpot_s"),
    )


#: what the closed form's best plans are estimated with: model, system, run options, lengths, wave
_Args = tuple[ModelSpec, System, RunOptions, int, int, Wave | None]


def _best(
    result: SearchResult,
    args: _Args,
    slo: Slo,
    objective: str,
    request_rate_per_s: float | None,
    *,
    precision: Precision | None = None,
) -> Estimate | None:
    """The best few candidates (of ``precision``, or all), re-estimated alone at their integer
    concurrency with the same run options: the best of the first that still meets the SLOs
    (rounding the clients can move it across a target), or None."""
    model, system, options, input_tokens, output_tokens, wave = args
    c = result.candidates
    best: Estimate | None = None

    def key(est: Estimate) -> tuple[float, float, float]:  # smaller is better, as ranking() orders
        n = None
        if request_rate_per_s is not None and est.serving is not None:
            n = _instances(request_rate_per_s, est.serving.request_rate_per_s)
        return rank_key(est, objective, n)

    ranked: list[int] = list(ranked_meeting(result, objective, precision)[:20])
    for i in ranked:
        if not c.meets_slo[i]:
            break
        layout = result.layouts[c.layout[i]]
        for clients in sorted({max(1, math.floor(c.concurrency[i])), max(1, round(c.concurrency[i]))}):
            est = estimate_serving(
                model,
                system,
                layout.plan,
                layout.precision,
                concurrency=clients,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                options=replace(options, prefill_chunk=layout.prefill_chunk),
                wave=wave,
            )
            if _meets(est, slo) and (best is None or key(est) < key(best)):
                best = est
        if best is not None:
            break
    return best


def _meets(est: Estimate, slo: Slo) -> bool:
    ok = slo.tpot_s is None or est.tpot_s <= slo.tpot_s * (1 + 1e-9)
    if slo.ttft_s is not None and slo.ttft_quantile is None:
        ok = ok and est.ttft_s <= slo.ttft_s * (1 + 1e-9)
    if slo.itl_max_s is not None:  # a decode step, then the longest prefill piece
        stall = est.prefill.time_s if est.decode_stall_s is None else est.decode_stall_s
        ok = ok and est.decode.time_s + stall <= slo.itl_max_s * (1 + 1e-9)
    return ok


#: chunked-prefill sizes searched when a longest-gap target is given (and None: one pass)
DEFAULT_PREFILL_CHUNKS = (256, 512, 1024, 2048, 4096, 8192)
