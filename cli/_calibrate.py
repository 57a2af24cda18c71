"""``genmodel calibrate``: fit an efficiency profile to your own measurements.

Parse -> :func:`genmodel.calibrate` -> render (and write the profile YAML). No formulas here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

import genmodel
from genmodel.report import to_csv, to_json

from ._options import (
    STDOUT,
    Format,
    FormatOpt,
    emit,
    emit_tables,
    err,
    examples,
    friendly,
    out,
    output_path,
    write_text,
)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} %"


def _log(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _at_bound(p: dict[str, Any]) -> str:
    """What to say of a fitted parameter that ended on an end of its range: the rows ask for more
    than a physically sane value (a miss the profile cannot explain, or rows in other units)."""
    if p["status"] != "fitted" or p["bounds"] is None:
        return ""
    lo, hi = p["bounds"]
    for end, value in (("lower", lo), ("upper", hi)):
        if abs(p["value"] - value) <= 1e-6 * (hi - lo):
            return f"at the {end} end of its range [{lo:.4g}, {hi:.4g}]: the rows push it past that"
    return ""


def _tables(d: dict[str, Any]) -> list[Table]:
    summary = Table(
        title=f"calibrate {d['hardware']}: {d['rows']} rows, base {d['base']}; MAPE "
        f"{_pct(d['mape_before'])} -> {_pct(d['mape_after'])} in sample, "
        f"{_pct(d['mape_held_out'])} held out (leave one out); RMS log error (what the fit "
        f"minimises) {_log(d['rms_log_before'])} -> {_log(d['rms_log_after'])} in sample, "
        f"{_log(d['rms_log_held_out'])} held out"
    )
    for col in ("parameter", "status", "base", "fitted", "sensitivity", "why"):
        summary.add_column(col, justify="right" if col in ("base", "fitted", "sensitivity") else "left")
    for p in d["parameters"]:
        sens = p["sensitivity"]
        summary.add_row(
            p["name"],
            p["status"],
            f"{p['base']:.4g}",
            f"{p['value']:.4g}",
            "-" if sens is None else f"{sens:.1%}",
            p["note"] or _at_bound(p),
        )
    outliers = d["outliers"]
    cases = Table(
        title="cases: measured and predicted (base, fitted, held out)",
        caption=f"possible outliers (the fit off by more than e = 2.7x, |log error| > 1; a row far off "
        f"can raise the MAPE of a fit that lowers the RMS log error): {', '.join(outliers)}"
        if outliers
        else None,
        caption_justify="left",
    )
    for col in ("id", "metric", "measured", "base", "fitted", "held out"):
        cases.add_column(col, justify="left" if col in ("id", "metric") else "right")
    for c in d["cases"]:
        held = c["held_out"]
        cases.add_row(
            c["id"],
            c["metric"],
            f"{c['measured']:.4g}",
            f"{c['before']:.4g}",
            f"{c['after']:.4g}",
            "-" if held is None else f"{held:.4g}",
        )
    tables = [summary, cases]
    if d["skipped"]:  # rows the model cannot predict (a rate case, a deployment that does not fit)
        skipped = Table(title=f"{len(d['skipped'])} rows left out of the fit (the model cannot predict them)")
        skipped.add_column("id")
        skipped.add_column("reason")
        for s in d["skipped"]:
            skipped.add_row(s["id"], s["reason"])
        tables.append(skipped)
    return tables


def register(app: typer.Typer) -> None:
    """Add the ``calibrate`` command to ``app``."""

    @app.command(
        epilog=examples(
            "# fit a profile to the bundled A100 cases, from the default profile",
            "genmodel calibrate --device a100-sxm-80gb --base default -o a100-mine.yaml",
            "# one parameter only, as JSON (your own CSV: genmodel calibrate FILE ...)",
            "genmodel calibrate --device a100-sxm-80gb --parameter memory_frac \\\n    --format json",
        )
    )
    @friendly
    def calibrate(
        cases: Annotated[
            Path | None,
            typer.Argument(
                help="CSV of measurements, in the columns of validate (default: bundled public cases)."
            ),
        ] = None,
        device: Annotated[
            str | None, typer.Option(help="Device whose rows to fit (needed when the CSV has several).")
        ] = None,
        base: Annotated[
            str | None,
            typer.Option(help="Profile to start from (id or file; default: the device's own, else default)."),
        ] = None,
        parameter: Annotated[
            list[str] | None,
            typer.Option(help="Parameter to fit (repeatable; default: every one the data pins down)."),
        ] = None,
        profile_id: Annotated[
            str | None, typer.Option("--id", help="Id of the fitted profile (default: DEVICE-calibrated).")
        ] = None,
        cross_validate: Annotated[
            bool, typer.Option(help="Also refit leaving each row out, to report the held-out error.")
        ] = True,
        output: Annotated[
            Path | None,
            typer.Option(
                "--output",
                "-o",
                help="Write the fitted profile (YAML) to FILE (-: to stdout, and the report to stderr).",
                parser=output_path,
            ),
        ] = None,
        format: FormatOpt = Format.table,
    ) -> None:
        """Fit an efficiency profile to measurements (bounded least squares on log-error).

        Reports which parameters the rows pin down (fitted) and which they cannot (kept at the
        base), the error before and after, and the leave-one-out error. The profile written with
        -o loads with --profile FILE.
        """
        result = genmodel.calibrate(
            str(cases or genmodel.public_cases_path()),
            device=device,
            base=base,
            parameters=parameter,
            profile_id=profile_id,
            cross_validate=cross_validate,
        )
        if output is not None:
            write_text(genmodel.profile_to_yaml(result.profile), output)
        screen = err if output is STDOUT else out  # the profile on stdout: the report beside it
        d = result.to_dict()
        if format is Format.json:
            emit(to_json(d), None, screen=screen)
        elif format is Format.csv:
            emit(to_csv(d["parameters"]), None, screen=screen)
        else:
            emit_tables(_tables(d), None, screen=screen)
