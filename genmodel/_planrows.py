"""The plan report's parts: the best plan per weight dtype, the ranking's top plans, the re-checks
and the Pareto frontier, as values and JSON rows (:mod:`genmodel._planning` assembles them).

Modelling assumptions: none; the figures are the search's (:mod:`genmodel._search`) and the
re-check's (:mod:`genmodel._recheck`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genmodel._candidates import statistic_name
from genmodel._phases import Estimate
from genmodel._recheck import Recheck
from genmodel._search import Layout, SearchResult, Slo
from genmodel._workload import Precision


@dataclass(frozen=True, slots=True, kw_only=True)
class DtypeBest:
    """The best plan of one weight dtype of a search over several (None: none meets the SLOs)."""

    weight_dtype: str
    best: Estimate | None
    check: Recheck | None = None
    #: copies of the plan serving the request rate (None without one)
    instances: int | None = None

    @property
    def devices_needed(self) -> int | None:
        """Devices in all for the request rate (None without one or without a plan)."""
        if self.instances is None or self.best is None:
            return None
        return self.instances * self.best.plan.num_devices


def rank_key(est: Estimate, objective: str, instances: int | None) -> tuple[float, float, float]:
    """Smaller is better, as :meth:`SearchResult.ranking` orders: (devices in all for a rate,
    -goodput, TPOT), or (TPOT, devices, -goodput) for the latency objective."""
    goodput = est.output_tokens_per_s_per_device
    devices = 0.0 if instances is None else float(instances * est.plan.num_devices)
    if objective == "latency":
        return (est.tpot_s, devices, -goodput)
    return (devices, -goodput, est.tpot_s)


def ranked_meeting(result: SearchResult, objective: str, precision: Precision | None = None) -> Any:
    """The candidates that meet the SLOs in the closed form, best first (of one precision, or all)."""
    import numpy as np

    c = result.candidates
    ranked = result.ranking(objective, meeting_only=True)
    if precision is None:
        return ranked
    of_layout = np.array([lay.precision == precision for lay in result.layouts], dtype=bool)
    return ranked[of_layout[c.layout[ranked]]] if len(ranked) else ranked


def top_rows(result: SearchResult, objective: str, n: int) -> tuple[dict[str, Any], ...]:
    """The first ``n`` layouts of the closed form's ranking that meet the SLOs, each at its best
    candidate, as JSON rows."""
    import numpy as np

    c = result.candidates
    ranked = ranked_meeting(result, objective)
    if not len(ranked):
        return ()
    _, first = np.unique(c.layout[ranked], return_index=True)
    rows = []
    for i in ranked[np.sort(first)[:n]]:
        row = {
            **layout_dict(result.layouts[c.layout[i]]),
            "batch_per_replica": float(c.batch[i]),
            "concurrency": float(c.concurrency[i]),
            "request_rate_per_s": float(c.rate_per_s[i]),
            "ttft_s": float(c.ttft_s[i]),
            "tpot_s": float(c.tpot_s[i]),
            "output_tokens_per_s_per_device": float(c.tokens_per_s_per_device[i]),
        }
        if result.request_rate_per_s is not None:
            copies = int(c.instances_for(result.request_rate_per_s)[i])
            row.update(instances=copies, devices_needed=copies * int(c.devices[i]))
        rows.append(row)
    return tuple(rows)


def check_dict(check: Recheck, slo: Slo) -> dict[str, Any]:
    """The re-check of ``best`` in the JSON: the simulated percentiles and the closed form beside them."""
    return {
        "simulated": {"ttft_s": check.ttft_s, "tpot_s": check.tpot_s, "load": check.arrivals},
        "closed_form": {
            "ttft_statistic": statistic_name(slo.ttft_quantile),
            "tpot_statistic": statistic_name(slo.tpot_quantile),
            "ttft_s": check.closed_ttft_s,
            "tpot_s": check.closed_tpot_s,
            "simulated_ttft_s": check.simulated_ttft_s,
            "simulated_tpot_s": check.simulated_tpot_s,
            **check.disagreement(),
        },
    }


def recheck_row(k: Recheck) -> dict[str, Any]:
    """One re-checked candidate in the JSON: its plan, clients, both serving models' figures and their
    disagreement (``ttft_rel_diff``, ``tpot_rel_diff``: simulated / closed form - 1), verdict."""
    e = k.estimate
    return {
        "tp": e.plan.tp,
        "pp": e.plan.pp,
        "ep": e.plan.ep,
        "dp": e.plan.dp,
        "weight_dtype": e.precision.weight_dtype,
        "concurrency": e.batch,
        "closed_form_ttft_s": k.closed_ttft_s,
        "closed_form_tpot_s": k.closed_tpot_s,
        "simulated_ttft_s": k.simulated_ttft_s,
        "simulated_tpot_s": k.simulated_tpot_s,
        **k.disagreement(),
        "output_tokens_per_s_per_device": e.output_tokens_per_s_per_device,
        "meets_slo": k.meets_slo,
    }


def dtype_row(
    b: DtypeBest, best: Estimate | None, request_rate_per_s: float | None, best_devices_needed: int | None
) -> dict[str, Any]:
    """The best plan of one weight dtype in the JSON, and how it differs from the overall ``best``
    (its goodput ratio; for a request rate, the devices it needs more)."""
    row: dict[str, Any] = {"weight_dtype": b.weight_dtype}
    e = b.best
    if e is None:
        return {**row, "error": "no plan meets the SLOs"}
    row.update(
        tp=e.plan.tp,
        pp=e.plan.pp,
        ep=e.plan.ep,
        dp=e.plan.dp,
        devices=e.plan.num_devices,
        concurrency=e.batch,
        ttft_s=e.ttft_s,
        tpot_s=e.tpot_s,
        output_tokens_per_s_per_device=e.output_tokens_per_s_per_device,
        usd_per_million_output_tokens=e.usd_per_million_output_tokens,
        error=None,
        is_best=best is not None and e == best,
    )
    if request_rate_per_s is not None:
        row.update(instances=b.instances, devices_needed=b.devices_needed)
    if best is not None and best.output_tokens_per_s_per_device > 0:
        row["goodput_vs_best"] = e.output_tokens_per_s_per_device / best.output_tokens_per_s_per_device
        if best_devices_needed is not None and b.devices_needed is not None:
            row["devices_vs_best"] = b.devices_needed - best_devices_needed
    return row


def layout_dict(layout: Layout) -> dict[str, Any]:
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


def pareto_rows(result: SearchResult, points: int) -> tuple[dict[str, Any], ...]:
    """At most ``points`` points of the Pareto frontier, spread along it, as JSON rows."""
    import numpy as np

    c = result.candidates
    frontier = result.pareto_indices()
    if len(frontier) > points:
        keep = np.unique(np.linspace(0, len(frontier) - 1, points).round().astype(int))
        frontier = [frontier[k] for k in keep]
    return tuple(
        {
            **layout_dict(result.layouts[c.layout[i]]),
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


def report_repr(
    model_id: str, system_id: str, devices: int, *, result: SearchResult, best: Estimate | None, pareto: int
) -> str:
    """A few lines for a plan report: the search's counts and the best plan's estimate (the Pareto
    rows and the candidates' arrays stay attributes)."""
    head = f"PlanReport({model_id} on {devices:,} devices of {system_id}: {result!r}"
    answer = "  best: none meets the SLOs" if best is None else "  best: " + repr(best).replace("\n", "\n  ")
    return f"{head}\n{answer}\n  {pareto} Pareto points)"
