"""``genmodel sweep``: a grid over models x hardware (scaled) x plans x loads, to CSV/Parquet or stdout.

Parse -> genmodel.sweep -> render. Lists are comma-separated or repeated options; the plan grid is
the product of the --tp, --pp, --ep and --dp lists.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

import genmodel
from genmodel.report import figure_format, format_seconds, sweep_figure, to_json

from ._options import (
    FORMAT_HELP,
    NO_RUN_OPTIONS,
    OUTPUT_HELP,
    STDOUT,
    EngineOpt,
    Format,
    PlotOpt,
    ServingOpt,
    cannot_write,
    err,
    examples,
    friendly,
    lenient_int,
    out,
    output_path,
    parse_int,
    progress_bar,
    with_run_options,
    write_plot,
)

#: the largest factor on a hardware figure
_MAX_SCALE = 1000.0
# above this many points the progress bar shows on stdout output too (always when writing a file)
_PROGRESS_POINTS = 200


def _split(values: list[str] | None, name: str = "") -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]``: comma lists and repeated options alike.

    Raises:
        genmodel.SpecError: an empty value (``--tp ''``, ``--tp 8,``), named ``name``.
    """
    items = [v.strip() for value in values or [] for v in value.split(",")]
    if any(not v for v in items):
        joined = ",".join(values or [])
        raise genmodel.SpecError(f"{name or 'value'}={joined!r} has an empty value (comma-separated list)")
    return items


def _once(name: str, items: list[Any]) -> list[Any]:
    """``items``, none of them given twice (its points would run twice).

    Raises:
        genmodel.SpecError: ``name=value is given twice``.
    """
    repeated = next((v for i, v in enumerate(items) if v in items[:i]), None)
    if repeated is not None:
        raise genmodel.SpecError(f"{name}={repeated!r} is given twice: give each value once")
    return items


def _ints(name: str, values: list[str] | None, default: list[int] | None = None) -> list[int]:
    """The integers of a list option within their bounds (:func:`parse_int`), or ``default``."""
    items = _split(values, name)
    if not items and default is not None:
        return default
    return _once(name, [parse_int(name, v) for v in items])


def _batches(values: list[str] | None) -> list[int | str] | None:
    items = _split(values, "batch")
    if not items:
        return None
    return _once("batch", ["max" if v.strip().lower() == "max" else parse_int("batch", v) for v in items])


def _scales(values: list[str] | None) -> dict[str, list[float]]:
    """``["memory_bandwidth=1,2", "flops=1.5"]`` -> ``{"memory_bandwidth": [1.0, 2.0], "flops": [1.5]}``."""
    out: dict[str, list[float]] = {}
    for value in values or []:
        name, sep, factors = value.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise genmodel.SpecError(
                f"scale={value!r} must be NAME=v1,v2,... (e.g. memory_bandwidth=1,1.5,2)"
            )
        for f in _split([factors], "scale"):
            try:
                factor = float(f)
            except ValueError:
                raise genmodel.SpecError(f"scale={value!r}: the factors must be numbers") from None
            if not 0 < factor <= _MAX_SCALE:
                raise genmodel.SpecError(f"scale={value!r}: each factor must be in (0, {_MAX_SCALE:,g}]")
            out.setdefault(name, []).append(factor)
    return out


def register(app: typer.Typer) -> None:
    """Add the ``sweep`` command to ``app``."""
    app.command(
        epilog=examples(
            "# 2 models x 2 devices x 3 bandwidth factors x 4 TP degrees x 3 batches",
            "genmodel sweep --model llama-3.1-8b,llama-3.1-70b --hardware h100-sxm,mi300x \\\n"
            "    --scale memory_bandwidth=1,1.5,2 --tp 1,2,4,8 --batch 1,32,max \\\n"
            "    --input-tokens 1000 --output-tokens 500 --weight-dtype fp8 \\\n"
            "    --output sweep.parquet --plot sweep.html",
            "# a small grid as CSV on stdout",
            "genmodel sweep --model llama-3.1-8b --hardware h100-sxm,h200-sxm \\\n"
            "    --batch 1,8,64 --input-tokens 1000 --output-tokens 200 --format csv",
        )
    )(friendly(with_run_options()(sweep)))


def sweep(
    model: Annotated[list[str], typer.Option(help="Model ids (comma-separated or repeated).")],
    hardware: Annotated[list[str], typer.Option(help="Device or system ids (comma-separated or repeated).")],
    input_tokens: Annotated[list[str], typer.Option(help="Prompt lengths, e.g. 1000,8000.")],
    output_tokens: Annotated[list[str], typer.Option(help="Generated lengths, e.g. 100,1000.")],
    tp: Annotated[list[str] | None, typer.Option(help="Tensor-parallel degrees (default 1).")] = None,
    pp: Annotated[list[str] | None, typer.Option(help="Pipeline-parallel degrees (default 1).")] = None,
    ep: Annotated[list[str] | None, typer.Option(help="Expert-parallel degrees (default 1).")] = None,
    dp: Annotated[list[str] | None, typer.Option(help="Data-parallel degrees (default 1).")] = None,
    batch: Annotated[
        list[str] | None, typer.Option(help="Static batches (whole deployment) or 'max' (default 1).")
    ] = None,
    concurrency: Annotated[
        list[str] | None, typer.Option(help="Closed-loop client counts (serving mode) instead of --batch.")
    ] = None,
    scale: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=v1,v2,...: factors on a hardware figure, NAME one of flops, memory_bandwidth, "
            "memory_capacity, scale_up_bandwidth, scale_out_bandwidth (repeatable)."
        ),
    ] = None,
    weight_dtype: Annotated[
        str, typer.Option(help="fp32|bf16|fp16|fp8|int8|fp4|int4|mxfp4|q4_0|q4_k_m|q8_0|...")
    ] = "bf16",
    act_dtype: Annotated[str | None, typer.Option(help="Activation dtype (default: as weights).")] = None,
    kv_dtype: Annotated[str | None, typer.Option(help="KV-cache dtype (default: bf16).")] = None,
    serving: ServingOpt = "simulated",
    engine: EngineOpt = "vllm",
    run_options: Mapping[str, Any] = NO_RUN_OPTIONS,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="'in-process', 'local' (a Dask LocalCluster) or a Dask scheduler address "
            "(tcp://host:8786); default: in-process for small grids, a LocalCluster for large ones."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Local Dask worker processes (default: cores).", parser=lenient_int)
    ] = None,
    format: Annotated[
        Format | None,
        typer.Option(
            "--format", help=f"{FORMAT_HELP} Default table; with --output, the file's suffix chooses."
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help=f"{OUTPUT_HELP} CSV (.csv) or Parquet (.parquet, .pq) by suffix.",
            parser=output_path,
        ),
    ] = None,
    plot: PlotOpt = None,
) -> None:
    """Estimate every point of a grid: models x hardware x scale factors x plans x batches x lengths.

    One row per point (inputs, error, and the estimate's keys flattened with dots); points that
    cannot run are rows with their error. Large grids run on Dask. The plot is output tokens/s
    per device against tokens/s per user, one series per model and hardware.
    """
    if output is STDOUT:  # --output -: as no --output (the --format chosen, or a table)
        output = None
    if output is not None and format is not None:
        raise genmodel.SpecError(
            f"format={format.value}: --format is for stdout; the suffix of --output {output} "
            "chooses CSV or Parquet"
        )
    if output is not None:
        genmodel.table_format(output)  # a wrong suffix fails now, not after the sweep
    if plot is not None:
        figure_format(plot)
    models, hardware_ids = (
        _once("model", _split(model, "model")),
        _once("hardware", _split(hardware, "hardware")),
    )
    plans = [
        {"tp": t, "pp": p, "ep": e, "dp": d}
        for t, p, e, d in itertools.product(
            _ints("tp", tp, [1]), _ints("pp", pp, [1]), _ints("ep", ep, [1]), _ints("dp", dp, [1])
        )
    ]
    kwargs: dict[str, Any] = {
        "models": models,
        "hardware": hardware_ids,
        "input_tokens": _ints("input_tokens", input_tokens),
        "output_tokens": _ints("output_tokens", output_tokens),
        "plans": plans,
        "batch": _batches(batch),
        "concurrency": _ints("concurrency", concurrency) if concurrency else None,
        "scale": _scales(scale),
        "estimate_options": {
            "weight_dtype": weight_dtype,
            "act_dtype": act_dtype,
            "kv_dtype": kv_dtype,
            "serving": serving,
            "engine": engine,
            **run_options,
        },
        "scheduler": scheduler,
        "workers": workers,
    }
    # the grid's size, for whether to show a bar (genmodel.sweep checks every axis)
    axes = [models, hardware_ids, kwargs["input_tokens"], kwargs["output_tokens"], plans]
    axes += [kwargs["batch"] or kwargs["concurrency"] or [1], *kwargs["scale"].values()]
    show_bar = output is not None or math.prod(len(a) for a in axes) > _PROGRESS_POINTS
    start = time.perf_counter()
    with progress_bar("sweep", enabled=show_bar) as progress:
        task = progress.add_task("sweep", total=None)
        rows = genmodel.sweep(
            **kwargs, on_progress=lambda done, total: progress.update(task, completed=done, total=total)
        )
    elapsed = time.perf_counter() - start
    errors = int(rows["error"].notna().sum())
    records: list[dict[str, Any]] = []
    if plot is not None or (output is None and format is not Format.csv):
        records = rows.astype(object).where(rows.notna(), None).to_dict(orient="records")
    if plot is not None:
        write_plot(sweep_figure(records), plot)
    where = ""
    if output is not None:
        with cannot_write("output", output):
            where = f", wrote {genmodel.write_table(rows, output)}"
    elif format is Format.csv:
        out.print(rows.to_csv(index=False), markup=False, end="")
    elif format is Format.json:
        out.print(to_json(records), markup=False)
    else:
        out.print(_table(records))
    counts = f"{len(rows)} point{'s' * (len(rows) != 1)}, {errors} error{'s' * (errors != 1)}"
    err.print(f"sweep: {counts}, {elapsed:.1f} s{where}", markup=False)


def _table(records: list[dict[str, Any]]) -> Table:
    """The headline columns of each row; the file formats carry every column."""
    varied = [
        k
        for k in records[0]
        if (k.startswith("scale.") and len({r[k] for r in records}) > 1)
        or (k in ("pp", "ep", "dp") and any(r[k] != 1 for r in records))
    ]
    load = "concurrency" if "concurrency" in records[0] else "batch"
    columns = ["model", "hardware", *varied, "tp", load, "input_tokens", "output_tokens"]
    t = Table(title=f"sweep: {len(records)} points")
    headers = {"input_tokens": "in", "output_tokens": "out"}
    for c in columns:
        t.add_column(headers.get(c, c.removeprefix("scale.") + (" x" if c.startswith("scale.") else "")))
    for c in ("TTFT", "TPOT", "tok/s/device", "fits", "decode bound / error"):
        t.add_column(c, justify="left" if c.startswith("decode") else "right")
    for r in records:
        cells: list[str | Text] = [f"{r[c]:g}" if isinstance(r[c], float) else str(r[c]) for c in columns]
        if r.get("batch") == "max" and r.get("batch_resolved") is not None:
            cells[columns.index("batch")] = f"max ({r['batch_resolved']})"
        if r["error"] is not None:
            cells += ["-", "-", "-", "-", Text(r["error"], style="red")]
        else:
            cells += [
                format_seconds(r["ttft_s"]),
                format_seconds(r["tpot_s"]),
                f"{r['output_tokens_per_s_per_device']:,.1f}",
                "yes" if r["memory.fits"] else "NO",
                str(r["decode.bound"]),
            ]
        t.add_row(*cells)
    return t
