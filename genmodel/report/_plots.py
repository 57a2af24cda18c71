"""Plotly figures built from the JSON forms of results (no formulas: only what the API returned)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def pareto_figure(plan: Mapping[str, Any]) -> Any:
    """The Pareto frontier of a :func:`genmodel.plan` JSON: tokens/s per device vs per user.

    Points meeting the SLOs are filled (without targets, every point is, in one trace); the best
    co-located plan (and the disaggregated one, when searched) are marked. Returns a
    ``plotly.graph_objects.Figure``.
    """
    import plotly.graph_objects as go

    pts = plan["pareto"]
    fig = go.Figure()
    slo = plan.get("slo") or {}
    targets = any(slo.get(k) is not None for k in ("ttft_s", "tpot_s", "itl_max_s"))
    # (no targets: every point meets them, one trace named for what it is)
    names: tuple[tuple[bool, str], ...] = ((True, "meets the SLOs"), (False, "misses the SLOs"))
    if not targets:
        names = ((True, "Pareto frontier"),)
    for meets, name in names:
        sel = [p for p in pts if p["meets_slo"] == meets]
        fig.add_trace(
            go.Scatter(
                x=[p["output_tokens_per_s_per_user"] for p in sel],
                y=[p["output_tokens_per_s_per_device"] for p in sel],
                mode="lines+markers",
                name=name,
                marker={"symbol": "circle" if meets else "circle-open", "size": 8},
                text=[
                    f"tp={p['tp']} pp={p['pp']} ep={p['ep']} dp={p['dp']} {p['weight_dtype']}<br>"
                    f"concurrency {p['concurrency']:.0f}, TTFT {p['ttft_s'] * 1e3:.0f} ms, "
                    f"TPOT {p['tpot_s'] * 1e3:.1f} ms"
                    for p in sel
                ],
                hoverinfo="text",
            )
        )
    best = plan.get("best")
    if best is not None:
        fig.add_trace(
            go.Scatter(
                x=[1 / best["tpot_s"]],
                y=[best["output_tokens_per_s_per_device"]],
                mode="markers",
                name="best (co-located)",
                marker={"symbol": "star", "size": 16},
            )
        )
    d = plan.get("disaggregated")
    if d is not None:
        fig.add_trace(
            go.Scatter(
                x=[1 / d["tpot_s"]],
                y=[d["output_tokens_per_s_per_device"]],
                mode="markers",
                name="best (disaggregated)",
                marker={"symbol": "diamond", "size": 14},
            )
        )
    rate = plan.get("request_rate_per_s")
    scope = f"{plan['devices']} x" if rate is None else f"copies of up to {plan['devices']}"
    if slo.get("tpot_s"):
        fig.add_vline(x=1 / slo["tpot_s"], line_dash="dot", annotation_text="TPOT SLO")
    fig.update_layout(
        title=f"{plan['model']} on {scope} {plan['system']}: throughput vs interactivity",
        xaxis_title="output tokens/s per user (1 / TPOT)",
        yaxis_title="output tokens/s per device",
        template="plotly_white",
    )
    return fig


def interval_figure(estimate: Mapping[str, Any], *, title: str | None = None) -> Any:
    """The headline metrics of an estimate's JSON (or a plan's ``best``) with their intervals as
    error bars, each relative to its prediction (1 = the prediction; log scale).

    Returns a ``plotly.graph_objects.Figure``.
    """
    import plotly.graph_objects as go

    names = {"ttft_s": "TTFT", "tpot_s": "TPOT", "output_tokens_per_s": "output tokens/s"}
    ratios = {k: [b / estimate[k] for b in estimate[f"{k}_interval"]] for k in names}
    fig = go.Figure(
        go.Scatter(
            x=list(names.values()),
            y=[1.0] * len(names),
            mode="markers",
            marker={"size": 10},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [hi - 1 for _, hi in ratios.values()],
                "arrayminus": [1 - lo for lo, _ in ratios.values()],
            },
            text=[
                f"{estimate[k]:.4g} (interval {estimate[f'{k}_interval'][0]:.4g} to "
                f"{estimate[f'{k}_interval'][1]:.4g})"
                for k in names
            ],
            hoverinfo="text+x",
        )
    )
    fig.update_layout(
        title=title
        or f"{estimate['interval_coverage']:.0%} intervals ({estimate['interval_evidence']}), "
        "relative to the prediction",
        yaxis={"title": "measured / predicted", "type": "log"},
        template="plotly_white",
        height=360,
    )
    return fig
