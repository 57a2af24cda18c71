"""MoE & expert parallelism: decode TPOT and the communication share against the EP degree.

Widgets -> :func:`genmodel.estimate` per system and EP degree (attention data-parallel over the same
devices as the experts, a fixed number of sequences per device, as ``tools/ep_study.py``) ->
TPOT and throughput curves, and each decode step split into its critical-path terms.
"""

from __future__ import annotations

from typing import Any

import plotly.colors
import plotly.graph_objects as go
import streamlit as st
from genmodel.app import _cached, _ui
from plotly.subplots import make_subplots

_EP_DEGREES = (1, 2, 4, 8, 16, 32, 64, 128, 160, 256, 320, 384)
#: the term of the decode step that is communication (a key of _cached's phase terms)
_COMM = "communication (exposed)"
#: default precision: the first of these the system's device runs natively
_PREFERRED_DTYPES = ("fp8", "int8", "bf16")


def _default_dtype(system: str) -> str:
    native = _cached.what_if_system(system, ())["device"]["dense_tflops"]
    return next((d for d in _PREFERRED_DTYPES if d in native), "bf16")


def _curves(rows: list[dict[str, Any]], key: str, title: str, y_title: str, *, seconds: bool) -> go.Figure:
    fig = go.Figure()
    for system in dict.fromkeys(r["system"] for r in rows):
        sel = [r for r in rows if r["system"] == system and r["error"] is None]
        fig.add_trace(
            go.Scatter(x=[r["ep"] for r in sel], y=[r[key] for r in sel], mode="lines+markers", name=system)
        )
    fig.update_layout(
        title=title,
        xaxis={
            "title": "EP degree (= attention DP = devices)",
            "type": "log",
            "tickvals": sorted({r["ep"] for r in rows}),
        },
        yaxis={"title": y_title, **({"tickformat": "~s", "ticksuffix": "s"} if seconds else {})},
        template="plotly_white",
        height=380,
    )
    return fig


def _shares(rows: list[dict[str, Any]], terms: list[str]) -> go.Figure:
    systems = list(dict.fromkeys(r["system"] for r in rows))
    fig = make_subplots(rows=1, cols=len(systems), subplot_titles=systems, shared_yaxes=True)
    for col, system in enumerate(systems, start=1):
        sel = [r for r in rows if r["system"] == system and r["error"] is None]
        for term, color in zip(terms, plotly.colors.qualitative.Plotly, strict=False):
            fig.add_trace(
                go.Bar(
                    x=[str(r["ep"]) for r in sel],
                    y=[r[term] for r in sel],
                    name=term,
                    marker_color=color,
                    legendgroup=term,
                    showlegend=col == 1,
                    hovertemplate="EP %{x}: %{y:.3s}s<extra>" + term + "</extra>",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="EP degree", row=1, col=col)
    fig.update_layout(
        barmode="stack",
        barnorm="percent",
        title="Decode step by term (% of the step): the communication share per EP degree",
        yaxis_title="% of the decode step",
        template="plotly_white",
        height=420,
    )
    return fig


def render() -> None:
    """Draw the page."""
    st.title("MoE & expert parallelism")
    st.caption(
        "Decode of a mixture-of-experts model with attention data parallelism and expert parallelism over "
        "the same devices (tp=1, dp=ep), a fixed number of sequences per device: how the step and its "
        "communication share change with the EP degree on each system."
    )
    p = _ui.Params("moe")
    model = p.select("Model (MoE)", _ui.moe_model_ids(), "model", "deepseek-v3")
    systems = p.multiselect(
        "Systems", [*_ui.system_ids(), *_ui.hardware_ids()], "systems", ["dgx-h100", "cloudmatrix384"]
    )
    seqs = p.integer("Sequences per device", "seqs_per_device", 128, max_value=100_000)
    input_tokens = p.integer("Input tokens per request", "input_tokens", 2000, step=100)
    output_tokens = p.integer("Output tokens per request", "output_tokens", 64, step=16)
    eps = p.int_multiselect("EP degrees", _EP_DEGREES, "ep", (8, 16, 32, 64, 128, 256))
    kv_dtype = p.select("KV cache", _ui.DTYPES, "kv_dtype", "bf16")
    dtypes = {
        s: p.select(f"Weights and activations on {s}", _ui.DTYPES, f"dtype.{s}", _default_dtype(s))
        for s in systems
    }
    if not systems or not eps:
        st.info("Pick at least one system and one EP degree.")
        p.finish()
        st.stop()
    rows: list[dict[str, Any]] = []
    with p.errors():
        for s in systems:
            rows += _cached.ep_view(
                model,
                s,
                weight_dtype=dtypes[s],
                kv_dtype=kv_dtype,
                ep_degrees=tuple(eps),
                seqs_per_device=seqs,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
            )
    left, right = st.columns(2)
    left.plotly_chart(
        _curves(rows, "tpot_s", "TPOT vs EP degree", "TPOT (decode step)", seconds=True),
        key="moe.tpot_chart",
    )
    right.plotly_chart(
        _curves(
            rows,
            "decode_tokens_per_s_per_device",
            "Decode throughput vs EP degree",
            "decode tokens/s per device",
            seconds=False,
        ),
        key="moe.throughput_chart",
    )
    st.plotly_chart(_shares(rows, list(_cached.PHASE_TERMS)), key="moe.shares_chart")
    st.dataframe(
        [
            {
                "system": r["system"],
                "EP": r["ep"],
                "TPOT": None if r["error"] else _ui.format_seconds(r["tpot_s"]),
                "decode tokens/s per device": r.get("decode_tokens_per_s_per_device"),
                "communication (exposed)": None if r["error"] else _ui.format_seconds(r[_COMM]),
                "dominant collective": r.get("dominant_collective"),
                "KV fits": r.get("fits"),
                "why not": r["error"],
            }
            for r in rows
        ],
        column_config={"decode tokens/s per device": st.column_config.NumberColumn(format="%.0f")},
        hide_index=True,
        key="moe.table",
    )

    p.finish()


render()
