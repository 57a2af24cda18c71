"""Capacity planning: the best serving plan of a device budget or a request rate, and platforms compared.

Modelling assumptions: none of its own. The plan space is evaluated vectorised by
:mod:`genmodel._search`; the best candidates are then estimated again, alone, with the same run
options, so ``best`` is exactly what :func:`genmodel.estimate` says of that plan.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from genmodel._api import default_precision, run_options
from genmodel._errors import InfeasibleError, SpecError
from genmodel._hardware import Device, System
from genmodel._model import ModelSpec
from genmodel._options import RunOptions
from genmodel._phases import Estimate, as_system
from genmodel._search import Disaggregated, Layout, SearchResult, Slo, check_objective, copies_needed, search
from genmodel._serving import estimate_serving
from genmodel._workload import Precision
from genmodel.io import load_hardware, load_model
from genmodel.report import estimate_dict


def _precisions(
    weight_dtype: str | Sequence[str], act_dtype: str | None, kv_dtype: str | None
) -> list[Precision]:
    names = [weight_dtype] if isinstance(weight_dtype, str) else list(weight_dtype)
    return [default_precision(w, act_dtype, kv_dtype) for w in names]


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

    @property
    def instances(self) -> int | None:
        """Copies of the best plan needed for the request rate (None without one or without a plan)."""
        if self.request_rate_per_s is None or self.best is None or self.best.serving is None:
            return None
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
        d = self.disaggregated
        disagg = None
        if d is not None:
            disagg = {
                "prefill": _layout_dict(d.prefill),
                "decode": _layout_dict(d.decode),
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
                "itl_max_s": self.slo.itl_max_s,
            },
            "evaluated": r.evaluated,
            "feasible": r.feasible,
            "meeting_slo": int(r.candidates.meets_slo.sum()),
            "elapsed_s": r.elapsed_s,
            "plans_per_s": self.plans_per_s,
            "best": best,
            "pareto": list(self.pareto),
            "violations": dict(sorted(r.violations.items(), key=lambda kv: -kv[1])),
            "disaggregated": disagg,
        }


def _layout_dict(layout: Layout) -> dict[str, Any]:
    p, q = layout.plan, layout.precision
    return {
        "tp": p.tp,
        "pp": p.pp,
        "ep": p.ep,
        "dp": p.dp,
        "devices": p.num_devices,
        "weight_dtype": q.weight_dtype,
        "act_dtype": q.act_dtype,
        "kv_dtype": q.kv_dtype,
        "prefill_chunk": layout.prefill_chunk,
    }


def _instances(request_rate_per_s: float, instance_rate_per_s: float) -> int:
    """Copies of an instance serving ``instance_rate_per_s`` needed for the whole request rate."""
    return int(copies_needed(request_rate_per_s, instance_rate_per_s))


def _plan_row(est: Estimate) -> dict[str, Any]:
    """The plan fields and the estimate keys of one serving estimate (``best`` in the JSON)."""
    return {**estimate_dict(est), "concurrency": est.batch}


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
    weight_dtype: str | Sequence[str] = "bf16",
    act_dtype: str | None = None,
    kv_dtype: str | None = None,
    disaggregated: bool = False,
    request_rate_per_s: float | None = None,
    objective: str = "goodput",
    itl_max_slo_s: float | None = None,
    prefill_chunks: Sequence[int | None] | None = None,
    pareto_points: int = 50,
    options: RunOptions | None = None,
    **option_values: Any,
) -> PlanReport:
    """Find the serving plan of ``devices`` devices with the highest goodput within the SLOs, or
    (given a request rate) the plan that serves that traffic within the SLOs on the fewest devices.

    Every tp x pp x dp (x ep) layout, precision (each ``weight_dtype`` given) and running batch is
    evaluated vectorised (:mod:`genmodel._search`); the best candidate is then estimated again,
    alone, with :func:`estimate` at its (rounded) concurrency, so ``best`` is exactly what
    ``estimate`` says of that plan, and it meets the SLOs.

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
        ttft_slo_s, tpot_slo_s: targets in seconds (None: none); ``ttft_quantile`` makes the TTFT
            target a quantile (0.9, 0.99) of an M/D/1 queue instead of the mean.
        disaggregated: also size separate prefill and decode pools (DistServe) and compare.
        pareto_points: at most this many points of the frontier, spread along it.
        options: how the stack runs every plan (:class:`RunOptions`), for the search and for the
            re-estimate of ``best`` alike; the searched chunk size replaces its ``prefill_chunk``.
        option_values: run options by keyword, replacing those of ``options``
            (:func:`genmodel.run_options`; ``disaggregated`` is plan's own argument).

    Raises:
        SpecError, UnknownEntryError: bad arguments. InfeasibleError: no layout can run at all.
    """
    check_objective(objective)
    m = load_model(model) if isinstance(model, str) else model
    hw = load_hardware(hardware) if isinstance(hardware, str) else as_system(hardware)
    slo = Slo(ttft_s=ttft_slo_s, tpot_s=tpot_slo_s, ttft_quantile=ttft_quantile, itl_max_s=itl_max_slo_s)
    run = run_options(hw, options=options, **option_values)
    if run.disaggregated:
        raise SpecError(
            "options.disaggregated=True: plan() searches co-located serving plans; "
            "plan(..., disaggregated=True) sizes separate prefill and decode pools"
        )
    if prefill_chunks is None:
        below = [c for c in DEFAULT_PREFILL_CHUNKS if c < input_tokens]
        prefill_chunks = [run.prefill_chunk] if itl_max_slo_s is None else [None, *below]
    result = search(
        m,
        hw,
        devices=devices,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        slo=slo,
        precisions=_precisions(weight_dtype, act_dtype, kv_dtype),
        disaggregated=disaggregated,
        request_rate_per_s=request_rate_per_s,
        prefill_chunks=prefill_chunks,
        options=run,
    )
    best = _best(result, m, hw, run, slo, input_tokens, output_tokens, objective, request_rate_per_s)
    return PlanReport(
        model_id=m.id,
        system_id=hw.id,
        devices=devices,
        slo=slo,
        result=result,
        best=best,
        disaggregated=result.disaggregated,
        pareto=_pareto(result, pareto_points),
        request_rate_per_s=request_rate_per_s,
        objective=objective,
    )


def _best(
    result: SearchResult,
    model: ModelSpec,
    system: System,
    options: RunOptions,
    slo: Slo,
    input_tokens: int,
    output_tokens: int,
    objective: str,
    request_rate_per_s: float | None,
) -> Estimate | None:
    """The best few candidates, re-estimated alone at their integer concurrency with the same run
    options: the best of the first that still meets the SLOs (rounding the clients can move it
    across a target), or None."""
    c = result.candidates
    best: Estimate | None = None

    def key(est: Estimate) -> tuple[float, float, float]:  # smaller is better, as ranking() orders
        goodput = est.output_tokens_per_s_per_device
        devices = 0.0
        if request_rate_per_s is not None and est.serving is not None:
            devices = _instances(request_rate_per_s, est.serving.request_rate_per_s) * est.plan.num_devices
        if objective == "latency":
            return (est.tpot_s, devices, -goodput)
        return (devices, -goodput, est.tpot_s)

    ranked: list[int] = list(result.ranking(objective)[:20]) if c.meets_slo.any() else []
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
            )
            if _meets(est, slo) and (best is None or key(est) < key(best)):
                best = est
        if best is not None:
            break
    return best


def _pareto(result: SearchResult, points: int) -> tuple[dict[str, Any], ...]:
    """At most ``points`` points of the Pareto frontier, spread along it, as JSON rows."""
    import numpy as np

    c = result.candidates
    frontier = result.pareto_indices()
    if len(frontier) > points:
        keep = np.unique(np.linspace(0, len(frontier) - 1, points).round().astype(int))
        frontier = [frontier[k] for k in keep]
    return tuple(
        {
            **_layout_dict(result.layouts[c.layout[i]]),
            "batch_per_replica": float(c.batch[i]),
            "request_rate_per_s": float(c.rate_per_s[i]),
            "concurrency": float(c.concurrency[i]),
            "ttft_s": float(c.ttft_s[i]),
            "tpot_s": float(c.tpot_s[i]),
            "output_tokens_per_s_per_device": float(c.tokens_per_s_per_device[i]),
            "output_tokens_per_s_per_user": float(c.tokens_per_s_per_user[i]),
            "meets_slo": bool(c.meets_slo[i]),
        }
        for i in frontier
    )


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


def compare(
    model: str | ModelSpec,
    hardware: Sequence[str],
    *,
    devices: int | Sequence[int],
    input_tokens: int,
    output_tokens: int,
    options: RunOptions | None = None,
    **plan_args: Any,
) -> list[dict[str, Any]]:
    """The best plan of the same workload on each hardware id, side by side.

    ``devices`` is one budget for all, or one per hardware id. ``options`` (the run options) and
    ``plan_args`` (SLOs, dtypes, objective, run options by keyword) are :func:`plan`'s. Each row:
    hardware, devices, the best plan's fields and metrics (goodput, TTFT, TPOT, $/Mtok, J/token),
    or ``error`` when no plan runs or meets the SLOs there.
    """
    # one number is one budget for all (plan() refuses one that is no integer >= 1)
    budgets = [devices] * len(hardware) if isinstance(devices, int | float) else list(devices)
    if len(budgets) != len(hardware):
        raise SpecError(f"devices has {len(budgets)} entries for {len(hardware)} hardware ids")
    rows: list[dict[str, Any]] = []
    for hw_id, n in zip(hardware, budgets, strict=True):
        row: dict[str, Any] = {"hardware": hw_id, "devices": n}
        try:
            report = plan(
                model,
                hw_id,
                devices=n,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                options=options,
                **plan_args,
            )
        except InfeasibleError as exc:
            rows.append({**row, "error": str(exc)})
            continue
        row["evaluated"] = report.evaluated
        if report.best is None:
            rows.append({**row, "error": "no plan meets the SLOs"})
            continue
        b = report.best
        rows.append(
            {
                **row,
                "tp": b.plan.tp,
                "pp": b.plan.pp,
                "ep": b.plan.ep,
                "dp": b.plan.dp,
                "weight_dtype": b.precision.weight_dtype,
                "concurrency": b.batch,
                **(
                    {}
                    if report.request_rate_per_s is None
                    else {"instances": report.instances, "devices_needed": report.devices_needed}
                ),
                "ttft_s": b.ttft_s,
                "tpot_s": b.tpot_s,
                "output_tokens_per_s_per_device": b.output_tokens_per_s_per_device,
                "usd_per_million_output_tokens": b.usd_per_million_output_tokens,
                "joules_per_output_token": b.joules_per_output_token,
                "error": None,
            }
        )
    return rows
