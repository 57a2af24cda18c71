"""Compare platforms: the same workload's best plan at the SLOs on each hardware, side by side.

Widgets -> :func:`genmodel.compare` (one :func:`genmodel.plan` per hardware id) -> the bars of
:func:`genmodel.report.compare_figure` (throughput at the SLOs, cost per million output tokens,
energy per output token; the chart of ``genmodel compare --plot``) and a table; with a request rate,
each platform's ``devices_needed`` as bars and columns.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st
from genmodel.app import _cached, _ui

import genmodel
from genmodel.report import compare_figure


def _layout(r: dict[str, Any]) -> str:
    return f"tp={r['tp']} pp={r['pp']} ep={r['ep']} dp={r['dp']} {r['weight_dtype']}"


def _devices_figure(rows: list[dict[str, Any]], rate: float) -> go.Figure:
    """Bars of each platform's ``devices_needed`` for the request rate (no bar where no plan)."""
    fig = go.Figure(
        go.Bar(
            x=[r["hardware"] for r in rows],
            y=[None if r["error"] else r["devices_needed"] for r in rows],
            text=[r["error"] or f"{r['instances']} x ({_layout(r)})" for r in rows],
            hoverinfo="x+y+text",
            textposition="auto",
        )
    )
    fig.update_layout(
        title=f"Devices needed for {rate:g} requests/s within the SLOs",
        yaxis_title="devices",
        template="plotly_white",
        height=360,
    )
    return fig


def render() -> None:
    """Draw the page."""
    st.title("Compare platforms")
    st.caption(
        "The best serving plan of one workload on each platform, within the same TTFT and TPOT "
        "targets: goodput, cost and energy per output token (price per hour and TDP from hardware_db); "
        "with a request rate, also the devices each platform needs to serve it."
    )
    p = _ui.Params("compare")
    model = p.select("Model", _ui.model_ids(), "model", "llama-3.1-70b")
    hardware = p.multiselect(
        "Hardware",
        _ui.platform_ids(),
        "hardware",
        ["h100-sxm", "h200-sxm", "b200", "mi300x"],
    )
    rate, devices = _ui.traffic_inputs(
        p,
        what="each platform's plan",
        budget_label="Devices per platform",
        copy_label="Largest copy of a plan per platform (devices)",
    )
    input_tokens, output_tokens, ttft_ms, tpot_ms = _ui.workload_inputs(p)
    dtypes = p.multiselect("Weight precisions to search", _ui.WEIGHT_DTYPES, "weight_dtype", ["fp8", "bf16"])
    serving = _ui.serving_inputs(p, genmodel.plan)  # compare() passes them on to plan()
    if not hardware or not dtypes:
        st.info("Pick at least one platform and one weight precision.")
        p.finish()
        st.stop()
    with p.errors():
        rows = _cached.compare_view(
            model,
            tuple(hardware),
            devices=devices,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            ttft_slo_s=ttft_ms * _ui.MS,
            tpot_slo_s=tpot_ms * _ui.MS,
            weight_dtypes=tuple(dtypes),
            request_rate_per_s=rate,
            serving_args=tuple(serving.items()),
        )
    fig = compare_figure(rows, title=f"{model}: the best plan on each platform within the SLOs")
    st.plotly_chart(fig, key="compare.bars_chart")
    if rate is not None:
        st.plotly_chart(_devices_figure(rows, rate), key="compare.devices_chart")
    st.dataframe(
        [
            {
                "hardware": r["hardware"],
                "devices" if rate is None else "largest copy (devices)": r["devices"],
                "plan": None if r["error"] else _layout(r),
                "concurrency": r.get("concurrency"),
                **(
                    {}
                    if rate is None
                    else {"copies": r.get("instances"), "devices needed": r.get("devices_needed")}
                ),
                "TTFT": None if r["error"] else _ui.format_seconds(r["ttft_s"]),
                "TPOT": None if r["error"] else _ui.format_seconds(r["tpot_s"]),
                "output tokens/s per device": r.get("output_tokens_per_s_per_device"),
                "USD per M output tokens": r.get("usd_per_million_output_tokens"),
                "J per output token": r.get("joules_per_output_token"),
                "why not": r["error"],
            }
            for r in rows
        ],
        column_config={
            "output tokens/s per device": st.column_config.NumberColumn(format="%.1f"),
            "USD per M output tokens": st.column_config.NumberColumn(format="%.3f"),
            "J per output token": st.column_config.NumberColumn(format="%.3f"),
        },
        hide_index=True,
        key="compare.table",
    )
    for r in rows:
        _ui.show_notes(r.get("notes", []), about=r["hardware"])

    p.finish()


render()
