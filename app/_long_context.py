"""Long context & memory tiers: how many users fit per context, and where the KV cache lives.

Widgets -> :func:`genmodel.memory_report` twice (device memory only, and with the KV cache that
does not fit offloaded to a host DDR, CXL or NVMe tier) -> the users-that-fit curve per context
(:func:`genmodel.max_concurrency` inside) and the bytes per device in each tier.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st
from genmodel.app import _cached, _ui

_CONTEXTS = (2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144)
_NONE = "none (device memory only)"


def _concurrency_figure(reports: dict[str, dict[str, Any]]) -> go.Figure:
    fig = go.Figure()
    for name, r in reports.items():
        fig.add_trace(
            go.Scatter(
                x=[c["context_tokens"] for c in r["concurrency"]],
                y=[c["max_concurrency"] for c in r["concurrency"]],
                mode="lines+markers",
                name=name,
            )
        )
    fig.update_layout(
        title="Users that fit vs context length (whole deployment)",
        xaxis={"title": "context (prompt + output tokens per sequence)", "type": "log"},
        yaxis={"title": "max concurrent sequences", "type": "log"},
        template="plotly_white",
        height=420,
    )
    return fig


def _placement_figure(reports: dict[str, dict[str, Any]]) -> go.Figure:
    labels = [f"{name}<br>{t['id']}" for name, r in reports.items() for t in r["tiers"]]
    tiers = [t for r in reports.values() for t in r["tiers"]]
    return _ui.tier_bytes_figure(
        labels,
        tiers,
        title="Where the bytes live at the largest batch (per device, per tier)",
        capacity_name="capacity (usable share)",
        height=420,
    )


def render() -> None:
    """Draw the page."""
    st.title("Long context & memory tiers")
    st.caption(
        "How many sequences of a long context a deployment holds, in device memory alone and with the "
        "KV cache that does not fit spilled to host DDR, CXL memory expanders or NVMe, and what that "
        "does to the decode step."
    )
    p = _ui.Params("long_context")
    model = p.select("Model", _ui.model_ids(), "model", "llama-3.1-70b")
    hardware = _ui.select_hardware(p)
    input_tokens = p.integer("Input tokens per request", "input_tokens", 127_000, step=1000)
    output_tokens = p.integer("Output tokens per request", "output_tokens", 1000, step=100)
    tp = p.integer("TP (tensor parallel)", "tp", 8, max_value=1024)
    weight_dtype = p.select("Weights", _ui.WEIGHT_DTYPES, "weight_dtype", "bf16")
    kv_dtype = p.select("KV cache", _ui.DTYPES, "kv_dtype", "bf16")
    tier = p.select(
        "KV offload tier", [_NONE, "host", *_ui.tier_ids()], "kv_offload", "cxl-samsung-cmm-d-128gb"
    )
    count = 1
    if tier not in (_NONE, "host"):
        count = p.integer("Tiers per node", "tiers_per_node", 4, max_value=64)
    sparse = p.slider(
        "Fraction of the KV a decode step reads (sparse attention)",
        "sparse_attention",
        1.0,
        min_value=0.01,
        max_value=1.0,
        step=0.01,
    )
    contexts = p.int_multiselect("Contexts for the curve", _CONTEXTS, "contexts", _CONTEXTS[1:7])
    allow_long = p.checkbox(
        "Allow contexts beyond the model's maximum",
        "allow_long_context",
        False,
        help="A prompt plus output beyond max_position_embeddings of the model's config.json (4,096 for "
        "Llama 2) is estimated, not refused; quality there depends on RoPE scaling, which is not modelled.",
    )
    offload = None if tier == _NONE else (tier if tier == "host" else f"{tier}:{count}")
    common = {
        "tp": tp,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "weight_dtype": weight_dtype,
        "kv_dtype": kv_dtype,
        "sparse_attention_frac": sparse,
        "contexts": tuple(contexts),
        "allow_long_context": allow_long,
    }
    reports: dict[str, dict[str, Any]] = {}
    with p.errors():
        reports["device memory only"] = _cached.memory_view(model, hardware, kv_offload=None, **common)
        if offload is not None:
            reports[f"+ {offload}"] = _cached.memory_view(model, hardware, kv_offload=offload, **common)

    cols = st.columns(len(reports))
    for col, (name, r) in zip(cols, reports.items(), strict=True):
        col.markdown(f"**{name}**")
        col.metric("Users that fit", f"{r['batch']:,}", help="Sequences of input + output tokens placed.")
        col.metric("TPOT at that batch", _ui.format_seconds(r["tpot_s"]))
        col.metric("TTFT (prefill of the batch)", _ui.format_seconds(r["ttft_s"]))
        col.metric("KV cache per sequence (per device)", _ui.format_bytes(r["kv_bytes_per_sequence"]))
        swap = r["swap_s_per_sequence"]
        col.metric(
            "Swap one sequence to the KV tier",
            "-" if swap is None else _ui.format_seconds(swap),
            help="A context switch: one sequence's KV over the offload tier's link.",
        )
    left, right = st.columns(2)
    if contexts:
        left.plotly_chart(_concurrency_figure(reports), key="long_context.concurrency_chart")
    right.plotly_chart(_placement_figure(reports), key="long_context.placement_chart")
    st.dataframe(
        [
            {
                "deployment": name,
                "tier": t["id"],
                "medium": t["medium"],
                "weights": _ui.format_bytes(t["weights_bytes_per_device"]),
                "KV cache": _ui.format_bytes(t["kv_cache_bytes_per_device"]),
                "activations": _ui.format_bytes(t["activation_bytes_per_device"]),
                "capacity": _ui.format_bytes(t["capacity_bytes_per_device"]),
                "bandwidth per device": f"{_ui.format_bytes(t['bandwidth_bytes_per_s'])}/s",
            }
            for name, r in reports.items()
            for t in r["tiers"]
        ],
        hide_index=True,
        key="long_context.tiers_table",
    )

    p.finish()


render()
