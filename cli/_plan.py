"""`genmodel plan` and `genmodel compare`: parse -> call genmodel.plan / genmodel.compare -> render."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

import genmodel
from genmodel.report import format_seconds, pareto_figure, to_csv, to_json

from ._app import (
    ActDtypeOpt,
    Format,
    HardwareOpt,
    InputOpt,
    KvDtypeOpt,
    ModelOpt,
    OutputOpt,
    OutputTokensOpt,
    _emit,
    _emit_tables,
    _friendly,
    err,
)
from ._requirements import parse_seconds

DevicesOpt = Annotated[int, typer.Option("--devices", help="Device budget (every plan uses all of it).")]
TtftSloOpt = Annotated[str | None, typer.Option(help="TTFT target: 2s, 500ms, 0.5 (seconds).")]
TpotSloOpt = Annotated[str | None, typer.Option(help="TPOT target: 50ms, 20us, 0.05.")]
QuantileOpt = Annotated[
    float | None, typer.Option(help="Make the TTFT target a quantile (0.9, 0.99) of an M/D/1 queue.")
]
DtypesOpt = Annotated[
    str, typer.Option("--weight-dtype", help="Weight precision; a comma list searches each (fp8,bf16).")
]
PlotOpt = Annotated[Path | None, typer.Option(help="Write the Pareto frontier as an interactive HTML plot.")]


def _dtypes(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def register(app: typer.Typer) -> None:
    """Add the ``plan`` and ``compare`` commands to ``app``."""

    @app.command()
    @_friendly
    def plan(
        model: ModelOpt,
        hardware: HardwareOpt,
        devices: DevicesOpt,
        input_tokens: InputOpt,
        output_tokens: OutputTokensOpt,
        ttft_slo: TtftSloOpt = None,
        tpot_slo: TpotSloOpt = None,
        ttft_quantile: QuantileOpt = None,
        weight_dtype: DtypesOpt = "bf16",
        act_dtype: ActDtypeOpt = None,
        kv_dtype: KvDtypeOpt = None,
        disaggregated: Annotated[
            bool, typer.Option(help="Also size separate prefill and decode pools (DistServe).")
        ] = False,
        format: Annotated[Format, typer.Option(help="Output format.")] = Format.table,
        output: OutputOpt = None,
        plot: PlotOpt = None,
    ) -> None:
        """Search every serving plan of a device budget for the best goodput within the SLOs.

        Example: genmodel plan --model deepseek-v3 --hardware ascend-910c --devices 384
        --input-tokens 4096 --output-tokens 1024 --ttft-slo 2s --tpot-slo 50ms --weight-dtype int8
        """
        report = genmodel.plan(
            model,
            hardware,
            devices=devices,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            ttft_slo_s=parse_seconds("ttft_slo", ttft_slo),
            tpot_slo_s=parse_seconds("tpot_slo", tpot_slo),
            ttft_quantile=ttft_quantile,
            weight_dtype=_dtypes(weight_dtype),
            act_dtype=act_dtype,
            kv_dtype=kv_dtype,
            disaggregated=disaggregated,
        )
        d = report.to_dict()
        if plot is not None:
            plot.parent.mkdir(parents=True, exist_ok=True)
            pareto_figure(d).write_html(str(plot), include_plotlyjs="cdn")
            err.print(f"wrote {plot}")
        if format is Format.json:
            _emit(to_json(d), output)
        elif format is Format.csv:
            _emit(to_csv(d["pareto"]), output)
        else:
            _emit_tables(_plan_tables(d), output)

    @app.command()
    @_friendly
    def compare(
        model: ModelOpt,
        hardware: Annotated[str, typer.Option(help="Comma-separated hardware ids (h100-sxm,h200-sxm).")],
        devices: Annotated[str, typer.Option(help="One budget for all, or one per hardware id (8,8,16).")],
        input_tokens: InputOpt,
        output_tokens: OutputTokensOpt,
        ttft_slo: TtftSloOpt = None,
        tpot_slo: TpotSloOpt = None,
        weight_dtype: DtypesOpt = "bf16",
        act_dtype: ActDtypeOpt = None,
        kv_dtype: KvDtypeOpt = None,
        format: Annotated[Format, typer.Option(help="Output format.")] = Format.table,
        output: OutputOpt = None,
    ) -> None:
        """The best plan of one workload on several platforms: goodput, latency, cost, energy.

        Example: genmodel compare --model llama-3.1-70b --hardware h100-sxm,h200-sxm,mi300x
        --devices 8 --input-tokens 2000 --output-tokens 500 --ttft-slo 1s --tpot-slo 40ms --weight-dtype fp8
        """
        ids = _dtypes(hardware)
        budgets: list[int] = []
        for v in _dtypes(devices):
            if not v.isdigit() or int(v) < 1:
                raise genmodel.SpecError(f"devices={devices!r} must be integers >= 1, comma-separated")
            budgets.append(int(v))
        rows = genmodel.compare(
            model,
            ids,
            devices=budgets[0] if len(budgets) == 1 else budgets,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            ttft_slo_s=parse_seconds("ttft_slo", ttft_slo),
            tpot_slo_s=parse_seconds("tpot_slo", tpot_slo),
            weight_dtype=_dtypes(weight_dtype),
            act_dtype=act_dtype,
            kv_dtype=kv_dtype,
        )
        if format is Format.json:
            _emit(to_json(rows), output)
        elif format is Format.csv:
            _emit(to_csv(rows), output)
        else:
            _emit_tables([_compare_table(rows)], output)


def _fmt(value: Any, digits: str = ".3g") -> str:
    return "-" if value is None else format(value, digits)


def _plan_tables(d: dict[str, Any]) -> list[Table]:
    head = Table(title=f"{d['model']} on {d['devices']} x {d['system']}", show_header=False)
    head.add_row("evaluated", f"{d['evaluated']:,} candidate plans in {d['elapsed_s']:.2f} s")
    head.add_row("can run / meet SLOs", f"{d['feasible']:,} / {d['meeting_slo']:,}")
    for reason, n in list(d["violations"].items())[:4]:
        head.add_row("ruled out", f"{n:,} x {reason}")
    tables = [head]
    best = d["best"]
    t = Table(title="best plan (co-located, re-estimated alone)")
    for col in (
        "tp",
        "pp",
        "ep",
        "dp",
        "dtype",
        "clients",
        "TTFT",
        "TPOT",
        "tok/s/device",
        "$/Mtok",
        "J/tok",
    ):
        t.add_column(col, justify="right")
    if best is None:
        t.add_row(*["-"] * 11)
    else:
        t.add_row(
            *(str(best[k]) for k in ("tp", "pp", "ep", "dp", "weight_dtype", "concurrency")),
            format_seconds(best["ttft_s"]),
            format_seconds(best["tpot_s"]),
            _fmt(best["output_tokens_per_s_per_device"], ".1f"),
            _fmt(best["usd_per_million_output_tokens"], ".3f"),
            _fmt(best["joules_per_output_token"], ".3f"),
        )
    tables.append(t)
    dis = d["disaggregated"]
    if dis is not None:
        g = Table(title="disaggregated (DistServe): prefill pool + decode pool")
        for col in ("prefill", "decode", "TTFT", "TPOT", "tok/s/device", "vs co-located"):
            g.add_column(col, justify="right")
        p, q = dis["prefill"], dis["decode"]
        gain = dis["goodput_gain_vs_colocated"]
        g.add_row(
            f"{dis['prefill_instances']} x tp{p['tp']} pp{p['pp']} dp{p['dp']} ep{p['ep']}",
            f"{dis['decode_instances']} x tp{q['tp']} pp{q['pp']} dp{q['dp']} ep{q['ep']}",
            format_seconds(dis["ttft_s"]),
            format_seconds(dis["tpot_s"]),
            _fmt(dis["output_tokens_per_s_per_device"], ".1f"),
            "-" if gain is None else f"{gain:.2f}x",
        )
        tables.append(g)
    f = Table(title=f"Pareto frontier ({len(d['pareto'])} points): tokens/s per device vs per user")
    for col in ("tp", "pp", "ep", "dp", "dtype", "clients", "TTFT", "TPOT", "tok/s/dev", "tok/s/user", "SLO"):
        f.add_column(col, justify="right")
    for p in d["pareto"][:: max(1, len(d["pareto"]) // 12)]:
        f.add_row(
            *(str(p[k]) for k in ("tp", "pp", "ep", "dp", "weight_dtype")),
            f"{p['concurrency']:.0f}",
            format_seconds(p["ttft_s"]),
            format_seconds(p["tpot_s"]),
            f"{p['output_tokens_per_s_per_device']:.1f}",
            f"{p['output_tokens_per_s_per_user']:.1f}",
            "yes" if p["meets_slo"] else "no",
        )
    tables.append(f)
    return tables


def _compare_table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="best plan per platform")
    for col in ("hardware", "devices", "plan", "clients", "TTFT", "TPOT", "tok/s/device", "$/Mtok", "J/tok"):
        t.add_column(col, justify="right")
    for r in rows:
        if r.get("error"):
            t.add_row(r["hardware"], str(r["devices"]), f"[red]{r['error'][:60]}[/red]", *["-"] * 6)
            continue
        t.add_row(
            r["hardware"],
            str(r["devices"]),
            f"tp{r['tp']} pp{r['pp']} ep{r['ep']} dp{r['dp']} {r['weight_dtype']}",
            str(r["concurrency"]),
            format_seconds(r["ttft_s"]),
            format_seconds(r["tpot_s"]),
            _fmt(r["output_tokens_per_s_per_device"], ".1f"),
            _fmt(r["usd_per_million_output_tokens"], ".3f"),
            _fmt(r["joules_per_output_token"], ".3f"),
        )
    return t
