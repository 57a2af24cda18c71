"""Plotly figures of `compare` and `sweep` results, and writing any figure to HTML or PNG.

No formulas beyond what a chart needs (tokens/s per user = 1 / TPOT, as :func:`pareto_figure` plots
it): every number comes from the API's result. plotly is imported when a figure is built, not with
genmodel. PNG needs a static renderer, plotly's optional ``kaleido`` package, which (from version 1)
drives a Chrome browser it does not ship; genmodel does not depend on it, and a ``.png`` request
without it fails with a :class:`SpecError` that says how to get it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from genmodel._errors import SpecError

#: the file suffixes :func:`write_figure` understands, and the format each one means
FIGURE_SUFFIXES = MappingProxyType({".html": "html", ".htm": "html", ".png": "png"})
_KALEIDO_HINT = (
    "PNG export needs plotly's static renderer: pip install kaleido, then kaleido_get_chrome "
    "(it drives a Chrome browser); or write .html"
)


def _has_static_renderer() -> bool:
    """Whether plotly's ``kaleido`` package is importable (it may still lack a browser)."""
    return importlib.util.find_spec("kaleido") is not None


def figure_format(path: str | Path) -> str:
    """The format a figure file's suffix names: ``"html"`` (``.html``, ``.htm``) or ``"png"``.

    Checked before any work is done, so a wrong suffix or a missing renderer fails at once.

    Raises:
        SpecError: another suffix, or ``.png`` without the ``kaleido`` package.
    """
    kind = FIGURE_SUFFIXES.get(Path(path).suffix.lower())
    if kind is None:
        raise SpecError(f"plot={str(path)!r}: expected a file ending in .html (interactive) or .png (image)")
    if kind == "png" and not _has_static_renderer():
        raise SpecError(f"plot={str(path)!r}: {_KALEIDO_HINT}")
    return kind


def write_figure(figure: Any, path: str | Path) -> Path:
    """Write a plotly figure to ``path``: interactive HTML (plotly.js from its CDN) or a PNG image.

    The file is written whole or not at all (a temporary file beside it, then renamed); its folder
    is created if missing.

    Returns:
        The path written.

    Raises:
        SpecError: an unknown suffix, or a PNG that the static renderer could not make (the
            message says why and how to get one).
    """
    kind = figure_format(path)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=target.suffix)
    os.close(fd)
    try:
        if kind == "html":
            figure.write_html(tmp, include_plotlyjs="cdn")
        else:
            try:
                figure.write_image(tmp, format="png")
            # the renderer's failures (no Chrome, a browser that would not start) are the user's
            # environment, not a bug: report them as one line
            except Exception as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise SpecError(f"plot={str(path)!r}: PNG export failed ({first}); {_KALEIDO_HINT}") from None
        os.chmod(tmp, new_file_mode(target))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def new_file_mode(target: Path) -> int:
    """The mode of a file written over ``target`` (via a temporary file, then renamed): the existing
    file's, else a new file's (0o666 less the umask), not mkstemp's 0o600. (genmodel.io keeps a
    copy for its tables: it may not import report.)"""
    try:
        return os.stat(target).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def compare_figure(rows: Sequence[Mapping[str, Any]], *, title: str = "best plan per platform") -> Any:
    """Bars of a :func:`genmodel.compare` result: goodput, cost and energy of each platform's best plan.

    A platform without a plan (its ``error``) shows no bar and names the error on hover. Returns a
    ``plotly.graph_objects.Figure``.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    panels = (
        ("output_tokens_per_s_per_device", "output tokens/s per device"),
        ("usd_per_million_output_tokens", "USD per million output tokens"),
        ("joules_per_output_token", "joules per output token (at TDP)"),
    )
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[name for _, name in panels])
    labels = [f"{r['hardware']} x{r['devices']}" for r in rows]
    hover = [
        str(r["error"])
        if r.get("error")
        else f"tp={r['tp']} pp={r['pp']} ep={r['ep']} dp={r['dp']} {r['weight_dtype']}, "
        f"{r['concurrency']} clients<br>TTFT {r['ttft_s'] * 1e3:.0f} ms, TPOT {r['tpot_s'] * 1e3:.1f} ms"
        for r in rows
    ]
    for col, (key, name) in enumerate(panels, start=1):
        fig.add_trace(
            go.Bar(
                x=labels,
                y=[None if r.get("error") else r.get(key) for r in rows],
                name=name,
                text=hover,
                hoverinfo="x+y+text",
                showlegend=False,
            ),
            row=1,
            col=col,
        )
    fig.update_layout(title=title, template="plotly_white")
    return fig


def sweep_figure(records: Sequence[Mapping[str, Any]], *, title: str | None = None) -> Any:
    """A :func:`genmodel.sweep` result as throughput vs interactivity: one series per model x hardware.

    Each point that ran is output tokens/s per device (y) against output tokens/s per user, 1 / TPOT
    (x), with its inputs on hover; points with an ``error`` are left out. Returns a
    ``plotly.graph_objects.Figure``.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    ok = [r for r in records if not r.get("error")]
    series: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in ok:
        series.setdefault((str(r["model"]), str(r["hardware"])), []).append(r)
    inputs = [k for k in (records[0] if records else {}) if k.startswith("scale.")]
    inputs += ["tp", "pp", "ep", "dp", "batch", "concurrency", "input_tokens", "output_tokens"]
    for (model, hardware), pts in series.items():
        fig.add_trace(
            go.Scatter(
                x=[1 / r["tpot_s"] for r in pts],
                y=[r["output_tokens_per_s_per_device"] for r in pts],
                mode="markers",
                name=f"{model} on {hardware}",
                text=[" ".join(f"{k}={r[k]}" for k in inputs if r.get(k) is not None) for r in pts],
                hoverinfo="x+y+text",
            )
        )
    fig.update_layout(
        title=title or f"sweep: {len(ok)} of {len(records)} points ran",
        xaxis_title="output tokens/s per user (1 / TPOT)",
        yaxis_title="output tokens/s per device",
        template="plotly_white",
    )
    return fig
