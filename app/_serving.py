"""Serving: an engine's scheduler serving a load on one deployment, step by step, beside the closed form.

Widgets -> :func:`genmodel.simulate` (with its per-request records and its timeline) and, for
closed-loop clients, :func:`genmodel.estimate` with ``serving="closed-form"`` -> metrics, the
percentile table, CDFs of TTFT and TPOT per request, the running batch, the queue and the KV cache
over time, the two serving models side by side, and downloads of the records (CSV) and the result
(JSON). The numbers are the API's; the page only sorts values for the CDFs.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st
from genmodel.app import _cached, _ui

import genmodel
from genmodel.report import to_csv, to_json

_ARRIVALS = ("closed-loop clients", "Poisson arrivals")
#: Engine.admission's values ("preset": the engine's own)
_ADMISSIONS = ("preset", "reserve", "on-demand")
_QUANTILES = ("mean", "p50", "p90", "p99")
_LATENCIES = {
    "ttft_s": "TTFT",
    "tpot_s": "TPOT (per request)",
    "itl_s": "ITL (per token)",
    "e2e_s": "end-to-end",
}
_SECONDS_AXIS = {"tickformat": "~s", "ticksuffix": "s"}


def _arrival_inputs(p: _ui.Params) -> dict[str, Any]:
    """The arrival process: N closed-loop clients (and requests each) or a Poisson rate (and requests)."""
    kind = p.radio("Arrivals", _ARRIVALS, "arrivals", _ARRIVALS[0])
    if kind == _ARRIVALS[0]:
        return {
            "concurrency": p.integer(
                "Clients (closed loop, started together)", "concurrency", 64, max_value=100_000
            ),
            "requests_per_client": p.integer(
                f"Requests per client (the first {genmodel.WARMUP_REQUESTS} a warm-up, left out)",
                "requests_per_client",
                genmodel.REQUESTS_PER_CLIENT,
                min_value=genmodel.WARMUP_REQUESTS + 1,
                max_value=1000,
            ),
            "request_rate": None,
            "requests": None,
        }
    return {
        "concurrency": None,
        "requests_per_client": None,
        "request_rate": p.number(
            "Request rate (requests/s)", "request_rate", 5.0, min_value=0.01, max_value=1e5, step=1.0
        ),
        "requests": p.integer("Requests", "requests", 500, max_value=100_000),
    }


def _engine_inputs(p: _ui.Params, hardware: str) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """The engine preset and its overridden knobs (0 or "preset": the preset's value)."""
    engine = p.select(
        "Engine",
        genmodel.ENGINES,
        "engine",
        genmodel.ENGINES[0],
        help="The scheduler simulated: vLLM 0.10 (V1), SGLang 0.5 or TensorRT-LLM 1.0, with the "
        "defaults each picks on this device.",
    )
    preset = _cached.engine_knobs(engine, hardware)
    box = st.sidebar.expander("Engine knobs (overrides)", expanded=False)
    with p.into(box):
        box.caption(
            f"Preset {preset['name']} {preset['version']}: {preset['max_num_seqs']:,} running "
            f"sequences, {preset['max_batched_tokens']:,} tokens per step, "
            f"{preset['admission']} KV admission."
        )
        seqs = p.integer(
            "Max running sequences (0: preset)", "max_num_seqs", 0, min_value=0, max_value=1_000_000
        )
        budget = p.integer(
            "Token budget per step (0: preset)", "max_batched_tokens", 0, min_value=0, max_value=10_000_000
        )
        admission = p.select(
            "KV admission",
            _ADMISSIONS,
            "admission",
            "preset",
            help="reserve: KV blocks for the whole sequence at admission; on-demand: blocks as "
            "tokens arrive, preempting (recompute) when the pool is full.",
        )
    knobs = (
        ("max_num_seqs", seqs or None),
        ("max_batched_tokens", budget or None),
        ("admission", None if admission == "preset" else admission),
    )
    return engine, tuple((k, v) for k, v in knobs if v is not None)


def _cdf_figure(values: list[float], *, title: str, means: dict[str, float | None]) -> go.Figure:
    """The empirical CDF of ``values`` (one step per request), with vertical lines at ``means``."""
    xs = sorted(values)
    n = len(xs)
    fig = go.Figure(
        go.Scatter(
            x=xs,
            y=[(i + 1) / n for i in range(n)],
            mode="lines",
            line_shape="hv",
            name="simulated requests",
        )
    )
    for name, x in means.items():
        if x is not None:
            fig.add_trace(go.Scatter(x=[x, x], y=[0, 1], mode="lines", line={"dash": "dash"}, name=name))
    fig.update_layout(
        title=title,
        xaxis={"title": "seconds", **_SECONDS_AXIS},
        yaxis={"title": "share of requests", "range": [0, 1.02]},
        template="plotly_white",
        height=360,
    )
    return fig


def _load_figure(timeline: dict[str, list[float]]) -> go.Figure:
    """The running batch and the queue over time (step lines)."""
    fig = go.Figure()
    for key, name in (("running", "running batch"), ("queued", "queue")):
        fig.add_trace(
            go.Scatter(x=timeline["t_s"], y=timeline[key], mode="lines", line_shape="hv", name=name)
        )
    fig.update_layout(
        title="Running batch and queue over time (all replicas)",
        xaxis={"title": "time", **_SECONDS_AXIS},
        yaxis_title="requests",
        template="plotly_white",
        height=360,
    )
    return fig


def _kv_figure(timeline: dict[str, list[float]], capacity_bytes: float) -> go.Figure:
    """KV cache in use per device over time, against the pool's capacity."""
    t = timeline["t_s"]
    fig = go.Figure(
        go.Scatter(
            x=t, y=timeline["kv_used_bytes_per_device"], mode="lines", line_shape="hv", name="KV in use"
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[t[0], t[-1]],
            y=[capacity_bytes, capacity_bytes],
            mode="lines",
            line={"dash": "dash"},
            name="KV pool",
        )
    )
    fig.update_layout(
        title="KV cache in use over time (per device, fullest replica)",
        xaxis={"title": "time", **_SECONDS_AXIS},
        yaxis={"title": "bytes per device", **_ui.BYTES_AXIS},
        template="plotly_white",
        height=360,
    )
    return fig


def _percentile_rows(r: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {"latency": label, **{q: _ui.format_seconds(r[key][q]) for q in _QUANTILES}}
        for key, label in _LATENCIES.items()
    ]


def _versus_rows(r: dict[str, Any], cf: dict[str, Any]) -> list[dict[str, Any]]:
    """Simulated means beside the closed form's steady state, and the closed form's difference."""
    s = cf["serving"]
    pairs = (
        ("mean TTFT", r["ttft_s"]["mean"], cf["ttft_s"], _ui.format_seconds),
        ("mean TPOT", r["tpot_s"]["mean"], cf["tpot_s"], _ui.format_seconds),
        ("mean end-to-end", r["e2e_s"]["mean"], cf["e2e_s"], _ui.format_seconds),
        ("requests/s", r["request_rate_per_s"], s["request_rate_per_s"], lambda v: f"{v:,.3g}"),
        ("output tokens/s", r["output_tokens_per_s"], cf["output_tokens_per_s"], lambda v: f"{v:,.1f}"),
        (
            "running batch (closed form: decode batch)",
            r["mean_running_batch"],
            s["decode_batch"],
            lambda v: f"{v:,.1f}",
        ),
    )
    return [
        {
            "figure": name,
            "simulated": fmt(sim),
            "closed form": fmt(closed),
            "closed form vs simulated": f"{(closed - sim) / sim:+.1%}" if sim else "-",
        }
        for name, sim, closed, fmt in pairs
    ]


def _metrics(r: dict[str, Any]) -> None:
    metrics = [
        ("Requests measured", f"{r['requests']:,}", None),
        ("Requests/s", f"{r['request_rate_per_s']:,.3g}", "Measured requests over the measured window."),
        ("Output tokens/s", f"{r['output_tokens_per_s']:,.1f}", "Whole deployment."),
        ("Output tokens/s per device", f"{r['output_tokens_per_s_per_device']:,.1f}", None),
        ("Mean running batch", f"{r['mean_running_batch']:,.1f}", "Sequences per step, time-averaged."),
        ("Preemptions", f"{r['preemptions']:,}", "Sequences evicted when the KV pool ran out."),
        (
            "KV peak per device",
            _ui.format_bytes(r["kv_peak_bytes_per_device"]),
            f"of a pool of {_ui.format_bytes(r['kv_capacity_bytes_per_device'])} per device",
        ),
        (
            "Steps / simulated time",
            f"{r['steps']:,} / {_ui.format_seconds(r['simulated_s'])}",
            f"Simulated in {_ui.format_seconds(r['elapsed_s'])} of wall time.",
        ),
    ]
    for start in range(0, len(metrics), 4):
        for col, (label, value, help) in zip(st.columns(4), metrics[start : start + 4], strict=True):
            col.metric(label, value, help=help)


def _closed_form(view: dict[str, Any]) -> None:
    st.subheader("Closed form beside the simulation")
    cf = view["closed_form"]
    if cf is None:
        st.info(f"No closed form here: {view['closed_form_error']}.")
        return
    st.caption(
        "The closed form (``serving='closed-form'``, the plan search's steady state) for the same "
        "clients; the last column is its difference from the simulated mean."
    )
    st.dataframe(_versus_rows(view["result"], cf), hide_index=True, key="serving.versus_table")


def _exports(view: dict[str, Any]) -> None:
    left, right = st.columns(2)
    left.download_button(
        "Per-request records (CSV)",
        to_csv(view["records"]),
        file_name="serving_records.csv",
        mime="text/csv",
        key="serving.records_csv",
    )
    right.download_button(
        "Result (JSON)",
        to_json({"simulated": view["result"], "closed_form": view["closed_form"]}),
        file_name="serving_result.json",
        mime="application/json",
        key="serving.result_json",
    )


def render() -> None:
    """Draw the page."""
    st.title("Serving under load")
    st.caption(
        "An engine's scheduler serving a load on one deployment, step by step (each step costed by "
        "genmodel's formulas for exactly that batch): latency distributions, the running batch and "
        "queue over time, and the closed form of the same load beside it."
    )
    p = _ui.Params("serving")
    model = p.select("Model", _ui.model_ids(), "model", "llama-3.1-8b")
    hardware = _ui.select_hardware(p)
    input_tokens = p.integer("Input tokens per request", "input_tokens", 1000, step=100)
    output_tokens = p.integer("Output tokens per request", "output_tokens", 200, min_value=2, step=100)
    arrivals = _arrival_inputs(p)
    engine, knobs = _engine_inputs(p, hardware)
    seed = p.integer("Seed (arrival times)", "seed", 0, min_value=0, max_value=2**31 - 1)
    st.sidebar.markdown("**Parallel plan** (pipeline and context parallelism are not simulated)")
    plan = tuple(
        (name, p.integer(label, name, 1, max_value=1024))
        for name, label in (
            ("tp", "TP (tensor parallel)"),
            ("ep", "EP (expert parallel; divides TP x DP)"),
            ("dp", "DP (data / attention-DP)"),
        )
    )
    st.sidebar.markdown("**Precision**")
    weight_dtype = p.select("Weights", _ui.WEIGHT_DTYPES, "weight_dtype", "bf16")
    act_dtype = p.select("Activations", ["auto", *_ui.DTYPES], "act_dtype", "auto")
    kv_dtype = p.select("KV cache", ["auto", *_ui.DTYPES], "kv_dtype", "auto")
    with p.errors():
        view = _cached.serving_view(
            model,
            hardware,
            plan=plan,
            dtypes=(
                weight_dtype,
                None if act_dtype == "auto" else act_dtype,
                None if kv_dtype == "auto" else kv_dtype,
            ),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            engine=engine,
            knobs=knobs,
            seed=seed,
            **arrivals,
        )
    r = view["result"]
    e = r["engine"]
    st.markdown(
        f"**{e['name']} {e['version']}**: {e['max_num_seqs']:,} running sequences, "
        f"{e['max_batched_tokens']:,} tokens per step, {e['admission']} KV admission, "
        f"{'chunked' if e['chunked_prefill'] else 'whole'} prefill"
        f"{', mixed with decode' if e['mixed'] else ', in steps of its own'}."
    )
    _ui.show_notes(r.get("notes", []))
    _metrics(r)
    st.subheader("Latency percentiles")
    st.dataframe(_percentile_rows(r), hide_index=True, key="serving.percentiles_table")

    measured = [row for row in view["records"] if not row["warmup"]]
    cf = view["closed_form"]
    left, right = st.columns(2)
    left.plotly_chart(
        _cdf_figure(
            [row["ttft_s"] for row in measured],
            title="TTFT per request (CDF)",
            means={"simulated mean": r["ttft_s"]["mean"], "closed-form mean": cf and cf["ttft_s"]},
        ),
        key="serving.ttft_chart",
    )
    right.plotly_chart(
        _cdf_figure(
            [row["tpot_s"] for row in measured if row["tpot_s"] is not None],
            title="TPOT per request (CDF)",
            means={"simulated mean": r["tpot_s"]["mean"], "closed-form mean": cf and cf["tpot_s"]},
        ),
        key="serving.tpot_chart",
    )
    left, right = st.columns(2)
    left.plotly_chart(_load_figure(r["timeline"]), key="serving.load_chart")
    right.plotly_chart(_kv_figure(r["timeline"], r["kv_capacity_bytes_per_device"]), key="serving.kv_chart")

    _closed_form(view)
    st.subheader("Export")
    with p.errors():  # JSON refuses a non-finite figure: one error box, not a traceback
        _exports(view)
    with st.expander("Engine knobs used, with their sources"):
        st.json(e, expanded=True)
    p.finish()


render()
