"""The per-operator roofline of an estimate: rows for a table and a plotly figure.

Each operator of a phase (summed over the layers it occurs in, for one device) is placed by its
arithmetic intensity (FLOPs per byte of device memory traffic) against the device's roofs: the
datasheet peak FLOP/s of each precision the phase computes in, and the peak memory bandwidth
(Williams, Waterman, Patterson, "Roofline", CACM 2009). The operators' achieved FLOP/s come from
the estimate's own operator times (which include the device's efficiencies), so they sit below
the datasheet roofs. Operators without FLOPs (norms, residuals) have no place on a log axis and
appear only in the rows.
"""

from __future__ import annotations

from typing import Any

from genmodel._errors import SpecError
from genmodel._hardware import Device
from genmodel._phases import Estimate, PhaseCost
from genmodel._system import System
from genmodel._units import MS, TB, TFLOP
from genmodel._workload import Precision

_PHASES = ("decode", "prefill")


def _phase(estimate: Estimate, phase: str) -> PhaseCost:
    if phase not in _PHASES:
        raise SpecError(f"phase={phase!r} must be one of {', '.join(_PHASES)}")
    cost: PhaseCost = getattr(estimate, phase)
    return cost


def _device(estimate: Estimate, hardware: Device | System) -> Device:
    device = hardware.device if isinstance(hardware, System) else hardware
    if device.id != estimate.hardware_id:
        raise SpecError(
            f"hardware={device.id} is not the device of the estimate (hardware={estimate.hardware_id})"
        )
    return device


def roofline_points(estimate: Estimate, *, phase: str = "decode") -> list[dict[str, Any]]:
    """One row per operator of ``phase`` (per device, one step): FLOPs, bytes, times, intensity.

    Args:
        estimate: an :class:`Estimate` (from :func:`genmodel.estimate`).
        phase: "decode" (one decode step) or "prefill" (the prefill pass).

    Returns:
        Rows with ``operator``, ``kind`` (gemm, attention, elementwise), ``flops``, ``bytes``,
        ``arithmetic_intensity`` (FLOP/byte; None without bytes), ``compute_s``, ``memory_s``,
        ``time_s`` (the larger of the two), ``bound`` ("compute" or "memory") and
        ``achieved_flops_per_s`` (FLOPs over ``time_s``; 0 for an operator without time).

    Raises:
        SpecError: an unknown phase.
    """
    rows: list[dict[str, Any]] = []
    for t in _phase(estimate, phase).ops:
        flops, moved = float(t.op.flops), float(t.op.bytes)
        compute_s, memory_s, time_s = float(t.compute_s), float(t.memory_s), float(t.time_s)
        rows.append(
            {
                "operator": t.op.name,
                "kind": t.op.kind,
                "flops": flops,
                "bytes": moved,
                "arithmetic_intensity": float(t.arithmetic_intensity) if moved > 0 else None,
                "compute_s": compute_s,
                "memory_s": memory_s,
                "time_s": time_s,
                "bound": "compute" if compute_s >= memory_s else "memory",
                "achieved_flops_per_s": flops / time_s if time_s > 0 else 0.0,
            }
        )
    return rows


def roofline_figure(estimate: Estimate, hardware: Device | System, *, phase: str = "decode") -> Any:
    """The roofline plot of one phase: operators by arithmetic intensity against the device's roofs.

    Args:
        estimate: an :class:`Estimate`.
        hardware: the device (or system) the estimate ran on, for its peak FLOP/s per precision
            and its memory bandwidth (pass the same what-if figures the estimate used).
        phase: "decode" or "prefill".

    Returns:
        A ``plotly.graph_objects.Figure`` with log axes: one roof per precision the phase computes
        in (GEMMs in the wider of weights and activations; attention in the activation and KV
        precisions), the memory-bandwidth slope, and one marker per operator with FLOPs (size
        by its time).

    Raises:
        SpecError: an unknown phase, or ``hardware`` is not the estimate's device.
    """
    import plotly.graph_objects as go

    device = _device(estimate, hardware)
    rows = [r for r in roofline_points(estimate, phase=phase) if r["flops"] > 0 and r["bytes"] > 0]
    fig = go.Figure()
    for trace in [*_roof_traces(device, estimate.precision, rows), *_operator_traces(rows)]:
        fig.add_trace(trace)
    fig.update_layout(
        title=f"{estimate.model_id} on {device.id}: {phase} operators against the roofline (per device)",
        xaxis={"title": "arithmetic intensity (FLOP per byte of memory traffic)", "type": "log"},
        yaxis={
            "title": "FLOP/s (achieved by the operator; roofs: datasheet peaks)",
            "type": "log",
            "exponentformat": "SI",
        },
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def _roof_traces(device: Device, p: Precision, rows: list[dict[str, Any]]) -> list[Any]:
    """One roof per precision the phase computes in, highest first, over the operators' range of
    intensities (solid: the GEMM precision's)."""
    import plotly.graph_objects as go

    bandwidth = device.memory_bandwidth_bytes_per_s
    dtypes = dict.fromkeys(device.compute_dtype(d) for d in (p.gemm_dtype, p.act_dtype, p.kv_dtype))
    peaks = {d: device.peak_flops_per_s[d] for d in dtypes}
    intensities = [r["arithmetic_intensity"] for r in rows]
    ridges = [peak / bandwidth for peak in peaks.values()]
    x_min = min([*intensities, *ridges]) / 4
    x_max = max([*intensities, *ridges]) * 4
    traces = []
    for dtype, peak in sorted(peaks.items(), key=lambda kv: -kv[1]):
        ridge = peak / bandwidth
        xs = [x_min, ridge, x_max] if x_min < ridge else [x_min, x_max]
        traces.append(
            go.Scatter(
                x=xs,
                # the roof: bandwidth-bound left of the ridge point, compute-bound right of it
                y=[min(peak, x * bandwidth) for x in xs],
                mode="lines",
                name=f"{dtype} peak {peak / TFLOP:,.0f} TFLOP/s, memory {bandwidth / TB:.2f} TB/s",
                line={"dash": "solid" if dtype == device.compute_dtype(p.gemm_dtype) else "dash"},
                hoverinfo="name",
            )
        )
    return traces


def _operator_traces(rows: list[dict[str, Any]]) -> list[Any]:
    """One marker trace per operator kind; marker size grows with the operator's time."""
    import plotly.graph_objects as go

    longest = max((r["time_s"] for r in rows), default=0.0)
    traces = []
    for kind in dict.fromkeys(r["kind"] for r in rows):
        sel = [r for r in rows if r["kind"] == kind]
        traces.append(
            go.Scatter(
                x=[r["arithmetic_intensity"] for r in sel],
                y=[r["achieved_flops_per_s"] for r in sel],
                mode="markers",
                name=f"{kind} operators",
                text=[r["operator"] for r in sel],
                marker={"size": [8 + 24 * (r["time_s"] / longest) ** 0.5 for r in sel], "opacity": 0.8},
                customdata=[[r["time_s"] / MS, r["bound"]] for r in sel],
                hovertemplate="%{text}<br>%{x:.3g} FLOP/B, %{y:.3s}FLOP/s<br>"
                "%{customdata[0]:.3f} ms, %{customdata[1]}-bound<extra></extra>",
            )
        )
    return traces
