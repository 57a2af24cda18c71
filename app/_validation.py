"""Validation: predicted vs measured for the bundled public cases, with the errors.

:func:`genmodel.validate` on ``validation/validation_public.csv`` (published measurements and
serving benchmarks, with their run options) -> its summary figures, a predicted-vs-measured scatter
and the per-case table; the filters choose which cases are drawn and listed.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st
from genmodel.app import _cached, _ui


def _scatter(cases: list[dict[str, Any]]) -> go.Figure:
    fig = go.Figure()
    for metric in sorted({c["metric"] for c in cases}):
        sel = [c for c in cases if c["metric"] == metric]
        fig.add_trace(
            go.Scatter(
                x=[c["measured"] for c in sel],
                y=[c["predicted"] for c in sel],
                mode="markers",
                name=metric,
                text=[c["id"] for c in sel],
                customdata=[[c["category"], c["ape"]] for c in sel],
                hovertemplate="%{text} (%{customdata[0]})<br>measured %{x:.4g}, predicted %{y:.4g}"
                "<br>error %{customdata[1]:.1f} %<extra></extra>",
            )
        )
    values = [v for c in cases for v in (c["measured"], c["predicted"])]
    return _ui.finish_parity_figure(
        fig, values, title="Predicted vs measured (each metric in its SI unit: seconds or tokens/s)"
    )


def _by_group(groups: dict[str, dict[str, float]], title: str) -> go.Figure:
    fig = go.Figure(
        go.Bar(
            x=list(groups),
            y=[g["mape"] for g in groups.values()],
            text=[f"{g['mape']:.0f}%" for g in groups.values()],
            textposition="outside",
            customdata=[g["n"] for g in groups.values()],
            hovertemplate="%{x}: MAPE %{y:.1f} % over %{customdata} cases<extra></extra>",
        )
    )
    fig.update_layout(title=title, yaxis_title="MAPE (%)", template="plotly_white", height=360)
    return fig


def render() -> None:
    """Draw the page."""
    st.title("Validation")
    st.caption(
        "Every bundled public case predicted with genmodel.validate(): published measurements (sources "
        "in validation/) and serving benchmarks, each run as `genmodel estimate` with its options "
        "(`genmodel simulate` for a case at a request rate)."
    )
    p = _ui.Params("validation")
    with p.errors():
        d = _cached.validation_view()
    cases = d["cases"]
    categories = p.multiselect(
        "Categories",
        sorted({c["category"] for c in cases}),
        "category",
        sorted({c["category"] for c in cases}),
    )
    metrics = p.multiselect(
        "Metrics", sorted({c["metric"] for c in cases}), "metric", sorted({c["metric"] for c in cases})
    )
    shown = [c for c in cases if c["category"] in categories and c["metric"] in metrics]
    cols = st.columns(5)
    cols[0].metric("Cases predicted", f"{d['covered']}")
    cols[1].metric("MAPE (all cases)", f"{d['mape']:.1f} %")
    cols[2].metric("Median error", f"{d['median_ape']:.1f} %")
    cols[3].metric("Within 25 %", f"{d['within_25pct']:.0%}")
    cols[4].metric("Skipped", f"{len(d['skipped'])}")
    st.plotly_chart(_scatter(shown), key="validation.scatter_chart")
    st.caption(f"{len(shown)} of {len(cases)} cases shown (filters in the sidebar).")
    left, right = st.columns(2)
    left.plotly_chart(_by_group(d["by_category"], "Error by category"), key="validation.category_chart")
    right.plotly_chart(_by_group(d["by_metric"], "Error by metric"), key="validation.metric_chart")
    st.dataframe(
        shown,
        column_config={
            "measured": st.column_config.NumberColumn(format="%.4g"),
            "predicted": st.column_config.NumberColumn(format="%.4g"),
            "ape": st.column_config.NumberColumn("error %", format="%.1f"),
        },
        hide_index=True,
        key="validation.cases_table",
    )
    if d["skipped"]:
        with st.expander(f"{len(d['skipped'])} skipped cases (not modelled yet)"):
            st.dataframe(d["skipped"], hide_index=True, key="validation.skipped_table")

    p.finish()


render()
