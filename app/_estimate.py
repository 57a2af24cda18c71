"""Estimate / what-if: one deployment's TTFT, TPOT, throughput, memory per tier and roofline.

Widgets -> :func:`genmodel.estimate` on the chosen hardware scaled by the what-if factors
(:meth:`genmodel.System.scaled`) -> metrics, plotly charts and the per-operator table of
:func:`genmodel.report.roofline_points`.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st
from genmodel.app import _cached, _ui

import genmodel
from genmodel.report import interval_figure

#: What each System.scaled factor multiplies, for the slider labels.
_FACTOR_LABELS = {
    "flops": "peak FLOP/s (every precision)",
    "memory_bandwidth": "HBM bandwidth",
    "memory_capacity": "HBM capacity",
    "scale_up_bandwidth": "scale-up link bandwidth (NVLink, UB, ...)",
    "scale_out_bandwidth": "scale-out link bandwidth (InfiniBand, RoCE, ...)",
}
_SECONDS_AXIS = {"tickformat": "~s", "ticksuffix": "s"}


def _hardware_caption(figures: dict[str, Any], scale: dict[str, float]) -> str:
    device, system = figures["device"], figures["system"]
    peaks = ", ".join(f"{k} {v:,.0f}" for k, v in device["dense_tflops"].items())
    fabric = "; ".join(f"{t['level']} {t['bandwidth_gb_per_s']:,.0f} GB/s" for t in system["fabric"])
    changed = ", ".join(f"{_FACTOR_LABELS[k]} x{v:g}" for k, v in scale.items() if v != 1)
    return (
        f"**{system['id']}** ({device['name']}): dense TFLOP/s {peaks}; HBM {device['memory_gib']:g} GiB at "
        f"{device['bandwidth_tb_per_s']:g} TB/s; fabric per device: {fabric}."
        + (f" What-if: {changed}." if changed else "")
    )


def _iv(d: dict[str, Any], key: str) -> str:
    """The interval of a latency, for a metric's help text."""
    lo, hi = d[f"{key}_interval"]
    return (
        f"{d['interval_coverage']:.0%} interval ({d['interval_evidence']}): "
        f"{_ui.format_seconds(lo)} to {_ui.format_seconds(hi)}."
    )


def _memory_figure(tiers: list[dict[str, Any]]) -> go.Figure:
    labels = [str(t["id"]) for t in tiers]
    return _ui.tier_bytes_figure(
        labels, tiers, title="Memory per device, by tier", capacity_name="usable capacity", height=380
    )


def _terms_figure(terms: dict[str, dict[str, float]]) -> go.Figure:
    fig = go.Figure()
    phases = list(terms)
    for term in terms[phases[0]]:
        fig.add_trace(
            go.Bar(
                y=phases,
                x=[terms[p][term] for p in phases],
                name=term,
                orientation="h",
                hovertemplate="%{x:.3s}s<extra>" + term + "</extra>",
            )
        )
    fig.update_layout(
        barmode="stack",
        barnorm="percent",
        title="Where the time goes (share of each phase's critical path)",
        xaxis={"title": "% of the phase", "range": [0, 100]},
        template="plotly_white",
        height=300,
    )
    return fig


def render() -> None:
    """Draw the page."""
    st.title("Estimate / what-if")
    st.caption(
        "One deployment of a model on a platform: latency, throughput, memory and the operators' "
        "roofline. Edit the hardware's figures under *What-if* in the sidebar."
    )
    p = _ui.Params("estimate")
    model = p.select("Model", _ui.model_ids(), "model", "llama-3.1-70b")
    hardware = _ui.select_hardware(p)
    input_tokens = p.integer("Input tokens per request", "input_tokens", 1000, step=100)
    output_tokens = p.integer("Output tokens per request", "output_tokens", 500, step=100)
    mode = p.radio("Load", ["static batch", "serving (concurrency)"], "mode", "static batch")
    batch: int | str | None = None
    concurrency: int | None = None
    serving: dict[str, str] = {}
    if mode == "static batch":
        if p.checkbox("Largest batch that fits", "batch_max", False):
            batch = "max"
        else:
            batch = p.integer("Batch (sequences, whole deployment)", "batch", 16)
    else:
        concurrency = p.integer("Concurrent clients (closed loop)", "concurrency", 64)
        serving = _ui.serving_inputs(p)
    st.sidebar.markdown("**Parallel plan**")
    tp = p.integer("TP (tensor parallel)", "tp", 8, max_value=1024)
    pp = p.integer("PP (pipeline parallel)", "pp", 1, max_value=1024)
    ep = p.integer("EP (expert parallel; divides TP x DP)", "ep", 1, max_value=1024)
    dp = p.integer("DP (data / attention-DP)", "dp", 1, max_value=1024)
    st.sidebar.markdown("**Precision**")
    weight_dtype = p.select("Weights", _ui.WEIGHT_DTYPES, "weight_dtype", "bf16")
    act_dtype = p.select("Activations", ["auto", *_ui.DTYPES], "act_dtype", "auto")
    kv_dtype = p.select("KV cache", ["auto", *_ui.DTYPES], "kv_dtype", "auto")
    with p.into(st.sidebar.expander("What-if: hardware figures", expanded=False)):
        scale = {
            f: p.slider(
                f"{_FACTOR_LABELS[f]} (x)", f, 1.0, min_value=0.25, max_value=4.0, step=0.05, format="%.2fx"
            )
            for f in genmodel.SCALE_FACTORS
        }
    scale_key = tuple(sorted(scale.items()))
    with p.errors():
        figures = _cached.what_if_system(hardware, scale_key)
        view = _cached.estimate_view(
            model,
            hardware,
            scale_key,
            tp=tp,
            pp=pp,
            ep=ep,
            dp=dp,
            batch=batch,
            concurrency=concurrency,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            weight_dtype=weight_dtype,
            act_dtype=None if act_dtype == "auto" else act_dtype,
            kv_dtype=None if kv_dtype == "auto" else kv_dtype,
            **serving,
        )
    st.markdown(_hardware_caption(figures, scale))
    d = view["estimate"]
    _ui.show_notes(d.get("notes", []))
    mem = d["memory"]
    usd, joules = d["usd_per_million_output_tokens"], d["joules_per_output_token"]
    served = d["serving"]
    if served is not None:
        st.caption(_ui.serving_caption(served))
    metrics = [
        (
            "TTFT",
            _ui.format_seconds(d["ttft_s"]),
            (
                "Time to first token (the prefill of the batch)."
                if served is None
                else "Mean time to first token a request sees (queue, its prefill, the steps it shares)."
            )
            + f" {_iv(d, 'ttft_s')}",
        ),
        (
            "TPOT",
            _ui.format_seconds(d["tpot_s"]),
            (
                "Mean decode step: time per output token."
                if served is None
                else "Mean time per output token after the first, as a request sees it."
            )
            + f" {_iv(d, 'tpot_s')}",
        ),
        ("End-to-end latency", _ui.format_seconds(d["e2e_s"]), "TTFT + (output tokens - 1) x TPOT."),
        ("Batch", f"{d['batch']:,}", "Sequences in flight (resolved), whole deployment."),
        ("Output tokens/s", f"{d['output_tokens_per_s']:,.1f}", "Whole deployment."),
        ("Output tokens/s per device", f"{d['output_tokens_per_s_per_device']:,.1f}", None),
        (
            "Memory per device",
            _ui.format_bytes(mem["device_bytes_per_device"]),
            f"of {_ui.format_bytes(mem['usable_bytes_per_device'])} usable",
        ),
        ("Devices", f"{d['devices']}", None),
        ("Prefill bound by", d["prefill"]["bound"], None),
        ("Decode bound by", d["decode"]["bound"], None),
        ("USD per M output tokens", "-" if usd is None else f"{usd:.3f}", "At the device's price per hour."),
        ("Joules per output token", "-" if joules is None else f"{joules:.3f}", "At TDP (an upper bound)."),
    ]
    for start in range(0, len(metrics), 4):
        for col, (label, value, help) in zip(st.columns(4), metrics[start : start + 4], strict=True):
            col.metric(label, value, help=help)
    if not mem["fits"]:
        st.warning(
            f"batch={d['batch']} does not fit: {_ui.format_bytes(mem['total_bytes_per_device'])} per "
            f"device against {_ui.format_bytes(mem['usable_bytes_per_device'])} usable."
        )
    left, right = st.columns(2)
    left.plotly_chart(_memory_figure(mem["tiers"]), key="estimate.memory_chart")
    right.plotly_chart(_terms_figure(view["terms"]), key="estimate.terms_chart")
    st.plotly_chart(interval_figure(d), key="estimate.interval_chart")

    st.subheader("Roofline")
    with p.into(st):
        phase = p.radio("Phase", ["decode", "prefill"], "phase", "decode")
    st.plotly_chart(view["roofline"][phase], key="estimate.roofline_chart")
    st.caption(
        "Each marker is one operator (all layers, one device) at its arithmetic intensity and the "
        "FLOP/s it achieves in the estimate; the lines are the device's datasheet roofs. Operators "
        "without FLOPs (norms, residuals) are listed below only."
    )
    rows = view["ops"][phase]
    st.dataframe(
        [
            {
                "operator": r["operator"],
                "kind": r["kind"],
                "bound": r["bound"],
                "time": _ui.format_seconds(r["time_s"]),
                "compute": _ui.format_seconds(r["compute_s"]),
                "memory": _ui.format_seconds(r["memory_s"]),
                "FLOPs": r["flops"],
                "bytes": r["bytes"],
                "FLOP/byte": r["arithmetic_intensity"],
            }
            for r in rows
        ],
        column_config={
            "FLOPs": st.column_config.NumberColumn(format="compact"),
            "bytes": st.column_config.NumberColumn(format="compact"),
            "FLOP/byte": st.column_config.NumberColumn(format="%.2f"),
        },
        hide_index=True,
        key="estimate.ops_table",
    )
    with st.expander("JSON (genmodel estimate --format json)"):
        st.json(d, expanded=False)
    p.finish()


render()
