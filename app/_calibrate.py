"""Calibrate: fit an efficiency profile to measurements and see the fit.

Widgets -> :func:`genmodel.calibrate` (the fit of ``genmodel calibrate``) on an uploaded CSV in the
columns of ``genmodel validate``, or on the bundled public cases of one device -> which parameters
the rows pinned down and which kept the base profile's value, the error before, after and held out,
a predicted-vs-measured chart, the per-case table, and the fitted profile as a YAML download (it
loads with ``--profile FILE``).
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st
from genmodel.app import _cached, _ui

import genmodel

_SOURCES = ("bundled cases", "upload a CSV")
#: the modes of validation rows: static (--batch) and concurrency (serving)
_MODES = ("static", "concurrency")
#: the base-profile choice that lets calibrate pick (the device's own for the rows' engine, else default)
_AUTO = "auto"
#: the bundled device drawn first: five static rows of two engines (llama.cpp, MLC) on the AGX Orin, a
#: fit of about a second (the A100, drawn first before, now has serving bursts that take half a minute)
_DEVICE = "jetson-agx-orin-64gb"
#: the three predictions of each case, as the chart and the table name them
_SERIES = (
    ("before", "base profile"),
    ("after", "fitted (in sample)"),
    ("held_out", "fitted without the case"),
)


def _log(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} %"


def _scatter(cases: list[dict[str, Any]]) -> go.Figure:
    fig = go.Figure()
    for key, name in _SERIES:
        sel = [c for c in cases if c[key] is not None]
        if not sel:
            continue
        fig.add_trace(
            go.Scatter(
                x=[c["measured"] for c in sel],
                y=[c[key] for c in sel],
                mode="markers",
                name=name,
                text=[f"{c['id']} ({c['metric']})" for c in sel],
                hovertemplate="%{text}<br>measured %{x:.4g}, predicted %{y:.4g}<extra></extra>",
            )
        )
    values = [c[k] for c in cases for k in ("measured", "before", "after", "held_out") if c[k] is not None]
    return _ui.finish_parity_figure(
        fig, values, title="Predicted vs measured, before and after the fit (each metric in its SI unit)"
    )


def _inputs(p: _ui.Params) -> tuple[tuple[bytes, str] | None, str | None, tuple[str, ...]]:
    """The uploaded file (None: the bundled cases), the device and the modes of the rows to fit."""
    source = p.radio("Measurements", _SOURCES, "source", _SOURCES[0])
    if source == _SOURCES[0]:
        device = p.select("Device", _cached.bundled_devices(), "device", _DEVICE)
        modes = p.multiselect(
            "Modes",
            _MODES,
            "mode",
            _MODES,
            help="static: --batch runs; concurrency: serving runs, simulated (slower to fit: "
            "every prediction is a simulation).",
        )
        if not modes:
            st.info("Choose at least one mode of rows to fit.")
            p.finish()
            st.stop()
        return None, device, tuple(modes)
    file = st.file_uploader(
        "CSV of measurements, in the columns of `genmodel validate` (one row per measured metric)",
        type=["csv"],
        key="calibrate.upload",
    )
    if file is None:
        st.info(
            "Upload a CSV to fit (the columns of validation/validation_public.csv: id, category, mode, "
            "model, hardware, devices, tp, pp, ep, dp, batch, input_tokens, output_tokens, weight_dtype, "
            "act_dtype, kv_dtype, metric, measured; optional engine and run options)."
        )
        p.finish()
        st.stop()
    upload = (file.getvalue(), file.name)
    with p.errors():
        found = _cached.upload_devices(*upload)
    device = p.select("Device", found, "upload_device", found[0]) if len(found) > 1 else None
    return upload, device, ()


def _parameters(d: dict[str, Any]) -> None:
    pinned = [p for p in d["parameters"] if p["status"] == "fitted"]
    st.subheader("Parameters")
    st.markdown(
        "**Pinned down by the rows (fitted):** "
        + (", ".join(f"`{p['name']}` {p['base']:.4g} → {p['value']:.4g}" for p in pinned) or "none")
        + f". The others keep the base profile's (`{d['base']}`) value; the table says why."
    )
    st.dataframe(
        [
            {
                "parameter": p["name"],
                "status": p["status"],
                "base": p["base"],
                "fitted": p["value"],
                "sensitivity": None if p["sensitivity"] is None else 100 * p["sensitivity"],
                "why": p["note"],
            }
            for p in d["parameters"]
        ],
        column_config={
            "base": st.column_config.NumberColumn(format="%.4g"),
            "fitted": st.column_config.NumberColumn(format="%.4g"),
            "sensitivity": st.column_config.NumberColumn(
                "sensitivity %",
                format="%.1f",
                help="RMS change of log(prediction) over the parameter's range",
            ),
        },
        hide_index=True,
        key="calibrate.parameters_table",
    )


def render() -> None:
    """Draw the page."""
    st.title("Calibrate a profile")
    st.caption(
        "genmodel.calibrate(), as `genmodel calibrate CASES.csv --device ID --base PROFILE`: bounded "
        "least squares on log(predicted / measured) over the efficiency parameters the rows pin down; "
        "the others keep the base profile's values. Held out: each case predicted by the fit on the "
        "other cases."
    )
    p = _ui.Params("calibrate")
    upload, device, modes = _inputs(p)
    base = p.select(
        "Base profile",
        [_AUTO, *genmodel.list_profiles()],
        "base",
        _AUTO,
        help="The profile the fit starts from and whose values the parameters not pinned keep; "
        "auto: the device's own profile for the rows' engine, else default.",
    )
    cross = p.checkbox("Cross-validate (leave one case out)", "cross_validate", True)
    with p.errors(), st.spinner("Fitting..."):
        d = _cached.calibrate_view(
            upload, device=device, base=None if base == _AUTO else base, modes=modes, cross_validate=cross
        )
    cols = st.columns(5)
    cols[0].metric("Rows fitted", f"{d['rows']}")
    cols[1].metric("Parameters fitted", f"{len(d['fitted'])}")
    cols[2].metric("MAPE, base profile", _pct(d["mape_before"]))
    cols[3].metric("MAPE, fitted (in sample)", _pct(d["mape_after"]))
    cols[4].metric("MAPE, held out", _pct(d["mape_held_out"]))
    st.caption(
        f"RMS log error (what the fit minimises): {_log(d['rms_log_before'])} base, "
        f"{_log(d['rms_log_after'])} fitted (in sample), {_log(d['rms_log_held_out'])} held out; one "
        "case far off can raise the MAPE of a fit that lowers it."
    )
    if d["outliers"]:
        st.caption(f"Possible outliers (the fit off by more than e = 2.7x): {', '.join(d['outliers'])}")
    st.plotly_chart(_scatter(d["cases"]), key="calibrate.scatter_chart")
    st.download_button(
        f"Fitted profile {d['profile']} (YAML)",
        d["yaml"],
        file_name=f"{d['profile']}.yaml",
        mime="application/x-yaml",
        key="calibrate.profile_yaml",
    )
    _parameters(d)
    st.subheader("Cases")
    st.dataframe(
        [{k: c[k] for k in ("id", "metric", "measured", "before", "after", "held_out")} for c in d["cases"]],
        column_config={
            k: st.column_config.NumberColumn(label, format="%.4g")
            for k, label in (("measured", "measured"), *_SERIES)
        },
        hide_index=True,
        key="calibrate.cases_table",
    )
    if d["skipped"]:
        with st.expander(f"{len(d['skipped'])} rows skipped (the model cannot predict them)"):
            st.dataframe(d["skipped"], hide_index=True, key="calibrate.skipped_table")
    p.finish()


render()
