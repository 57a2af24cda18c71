"""Plan search: SLO targets -> the best serving plan, the Pareto frontier, aggregated vs disaggregated.

Widgets -> :func:`genmodel.plan` (every tp x pp x dp (x ep) layout, precision and running batch of
the device budget, vectorised; optionally for a request rate, and by an objective) -> its JSON form ->
metrics (devices needed for the traffic), tables and :func:`genmodel.report.pareto_figure`.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st
from genmodel.app import _cached, _ui

import genmodel
from genmodel.report import interval_figure, pareto_figure

_QUANTILES = {"mean": None, "p90": 0.9, "p99": 0.99}
_CLOSED_FORM_ONLY = (
    "Plans are ranked and re-estimated with the closed form (steady state); the Serving page "
    "simulates one deployment step by step."
)
_OBJECTIVE_HELP = (
    "goodput: the most output tokens/s per device within the SLOs (with a request rate: the fewest "
    "devices); cost and energy rank as goodput on one platform (price and power per device are "
    "constants); latency: the lowest TPOT within the SLOs."
)


def _layout(row: dict[str, Any]) -> str:
    return f"tp={row['tp']} pp={row['pp']} ep={row['ep']} dp={row['dp']} {row['weight_dtype']}"


def _best_rows(d: dict[str, Any]) -> list[dict[str, Any]]:
    """The best co-located plan and, when searched, the best disaggregated one, as table rows
    (for a request rate: with the copies of the co-located plan and the devices each needs)."""
    rows: list[dict[str, Any]] = []
    traffic = d["request_rate_per_s"] is not None
    b = d["best"]
    if b is not None:
        rows.append(
            {
                "deployment": "co-located (aggregated)",
                "plan": _layout(b),
                "devices": b["devices"],
                **({"copies": b["instances"], "devices needed": b["devices_needed"]} if traffic else {}),
                "concurrency": b["concurrency"],
                "TTFT": _ui.format_seconds(b["ttft_s"]),
                "TPOT": _ui.format_seconds(b["tpot_s"]),
                f"TPOT {b['interval_coverage']:.0%} interval": " to ".join(
                    _ui.format_seconds(x) for x in b["tpot_s_interval"]
                ),
                "output tokens/s per device": b["output_tokens_per_s_per_device"],
                "USD per M output tokens": b["usd_per_million_output_tokens"],
            }
        )
    g = d["disaggregated"]
    if g is not None:
        rows.append(
            {
                "deployment": "disaggregated prefill / decode",
                "plan": f"{g['prefill_instances']} x prefill ({_layout(g['prefill'])}) + "
                f"{g['decode_instances']} x decode ({_layout(g['decode'])})",
                "devices": g["devices"],
                **({"copies": None, "devices needed": g["devices"]} if traffic else {}),
                "concurrency": g["decode_batch"],
                "TTFT": _ui.format_seconds(g["ttft_s"]),
                "TPOT": _ui.format_seconds(g["tpot_s"]),
                "output tokens/s per device": g["output_tokens_per_s_per_device"],
                "USD per M output tokens": None,
            }
        )
    return rows


def _traffic_metrics(d: dict[str, Any]) -> None:
    """The devices the request rate needs: copies x devices per copy of the best plan, and the
    disaggregated pools' devices with what they save (all from the API's JSON)."""
    b, g = d["best"], d["disaggregated"]
    cols = st.columns(4)
    cols[0].metric("Devices needed", "-" if b is None else f"{b['devices_needed']:,}")
    cols[1].metric(
        "Copies x devices per copy", "-" if b is None else f"{b['instances']:,} x {b['devices']:,}"
    )
    if g is not None:
        saved = g["devices_saved_vs_colocated"]
        cols[2].metric("Devices needed, disaggregated", f"{g['devices']:,}")
        cols[3].metric("Devices saved by disaggregating", "-" if saved is None else f"{saved:,}")


def _goodput_figure(rows: list[dict[str, Any]]) -> go.Figure:
    fig = go.Figure(
        go.Bar(
            x=[r["deployment"] for r in rows],
            y=[r["output tokens/s per device"] for r in rows],
            text=[f"{r['output tokens/s per device']:,.0f}" for r in rows],
            textposition="auto",
        )
    )
    fig.update_layout(
        title="Goodput within the SLOs: aggregated vs disaggregated",
        yaxis_title="output tokens/s per device",
        template="plotly_white",
        height=360,
    )
    return fig


def render() -> None:
    """Draw the page."""
    st.title("Plan search")
    st.caption(
        "Every serving plan of a device budget (tp x pp x dp, with ep for MoE models; each precision; "
        "every running batch) against TTFT and TPOT targets: the best goodput, the Pareto frontier of "
        "throughput against interactivity, and separate prefill and decode pools (DistServe) side by side. "
        "With a request rate: the plan, and the number of its copies, that serve it on the fewest devices."
    )
    p = _ui.Params("plan")
    model = p.select("Model", _ui.model_ids(), "model", "llama-3.1-70b")
    hardware = _ui.select_hardware(p)
    rate, devices = _ui.traffic_inputs(
        p,
        what="the plan",
        budget_label="Devices (budget; every plan uses all)",
        copy_label="Largest copy of a plan (devices)",
    )
    input_tokens, output_tokens, ttft_ms, tpot_ms = _ui.workload_inputs(p)
    quantile = p.radio("TTFT target is the", list(_QUANTILES), "ttft_quantile", "mean")
    dtypes = p.multiselect("Weight precisions to search", _ui.WEIGHT_DTYPES, "weight_dtype", ["fp8", "bf16"])
    disaggregated = p.checkbox("Also size disaggregated prefill/decode pools", "disaggregated", True)
    objective = p.select("Best plan by", genmodel.OBJECTIVES, "objective", "goodput", help=_OBJECTIVE_HELP)
    serving = _ui.serving_inputs(p, genmodel.plan)
    if not serving:
        st.sidebar.caption(_CLOSED_FORM_ONLY)
    if not dtypes:
        st.info("Pick at least one weight precision.")
        p.finish()
        st.stop()
    with p.errors():
        d = _cached.plan_view(
            model,
            hardware,
            devices=devices,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            ttft_slo_s=ttft_ms * _ui.MS,
            tpot_slo_s=tpot_ms * _ui.MS,
            ttft_quantile=_QUANTILES[quantile],
            weight_dtypes=tuple(dtypes),
            disaggregated=disaggregated,
            request_rate_per_s=rate,
            objective=objective,
            serving_args=tuple(serving.items()),
        )
    cols = st.columns(6)
    cols[0].metric("Plans evaluated", f"{d['evaluated']:,}")
    cols[1].metric("Can run", f"{d['feasible']:,}")
    cols[2].metric("Meet the SLOs", f"{d['meeting_slo']:,}")
    cols[3].metric("Search time", _ui.format_seconds(d["elapsed_s"]))
    best = d["best"]
    cols[4].metric(
        "Best plan's goodput",
        "-" if best is None else f"{best['output_tokens_per_s_per_device']:,.1f}",
        help="Output tokens/s per device within the SLOs.",
    )
    cols[5].metric("Best plan's TPOT", "-" if best is None else _ui.format_seconds(best["tpot_s"]))
    if d["request_rate_per_s"] is not None:
        _traffic_metrics(d)
    if best is None:
        st.warning("No co-located plan meets the SLOs; the frontier below shows how close they come.")
    g = d["disaggregated"]
    if g is not None and g["goodput_gain_vs_colocated"] is not None:
        st.markdown(
            f"Disaggregated: **{g['output_tokens_per_s_per_device']:,.1f}** tokens/s per device, "
            f"**x{g['goodput_gain_vs_colocated']:.2f}** the co-located goodput."
        )

    st.subheader(f"Best plans (by {d['objective']})")
    rows = _best_rows(d)
    if rows:
        st.dataframe(rows, hide_index=True, key="plan.best_table")
    left, right = st.columns([3, 2])
    left.plotly_chart(pareto_figure(d), key="plan.pareto_chart")
    if rows:
        right.plotly_chart(_goodput_figure(rows), key="plan.goodput_chart")
    if best is not None:
        st.plotly_chart(interval_figure(best), key="plan.interval_chart")

    st.subheader("Pareto frontier")
    st.dataframe(
        [
            {
                "plan": _layout(r),
                "concurrency": r["concurrency"],
                "TTFT": _ui.format_seconds(r["ttft_s"]),
                "TPOT": _ui.format_seconds(r["tpot_s"]),
                "output tokens/s per device": r["output_tokens_per_s_per_device"],
                "output tokens/s per user": r["output_tokens_per_s_per_user"],
                "meets SLOs": r["meets_slo"],
            }
            for r in d["pareto"]
        ],
        column_config={
            "concurrency": st.column_config.NumberColumn(format="%.0f"),
            "output tokens/s per device": st.column_config.NumberColumn(format="%.1f"),
            "output tokens/s per user": st.column_config.NumberColumn(format="%.1f"),
        },
        hide_index=True,
        key="plan.pareto_table",
    )
    if d["violations"]:
        with st.expander("Why candidates could not run"):
            st.dataframe(
                [{"reason": k, "candidates": v} for k, v in d["violations"].items()],
                hide_index=True,
                key="plan.violations_table",
            )

    p.finish()


render()
