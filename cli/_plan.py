"""`genmodel plan` and `genmodel compare`: parse -> call genmodel.plan / genmodel.compare -> render."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

import genmodel
from genmodel.report import compare_figure, figure_format, format_seconds, pareto_figure, to_csv, to_json

from ._options import (
    EXIT_NO_PLAN,
    MAX_TOKENS,
    NO_RUN_OPTIONS,
    ActDtypeOpt,
    EngineOpt,
    Format,
    FormatOpt,
    HardwareOpt,
    InputOpt,
    KvDtypeOpt,
    ModelOpt,
    OutputOpt,
    OutputTokensOpt,
    PlotOpt,
    emit,
    emit_tables,
    err,
    examples,
    friendly,
    lenient_float,
    lenient_int,
    parse_int,
    parse_ints,
    parse_seconds,
    plan_progress,
    with_run_options,
    working,
    write_plot,
)
from ._requirements import parse_slo

DevicesOpt = Annotated[
    int, typer.Option("--devices", help="Device budget (every plan uses all of it).", parser=lenient_int)
]
QuantileOpt = Annotated[
    float | None,
    typer.Option(
        help="Deprecated: give the percentile in --ttft-slo (p99:2s).", parser=lenient_float, hidden=True
    ),
]
PlanTtftSloOpt = Annotated[
    str | None,
    typer.Option(
        "--ttft-slo",
        help="TTFT target with its unit, a mean (2s) or a percentile (p99:2s; mean, p50, p90, p95, p99).",
    ),
]
PlanTpotSloOpt = Annotated[
    str | None,
    typer.Option(
        "--tpot-slo",
        help="TPOT target with its unit, a mean (50ms) or a percentile (p90:50ms; mean, p50, p90, p95, p99).",
    ),
]
RecheckOpt = Annotated[
    int,
    typer.Option(
        help="Candidates of the closed form's frontier that the serving simulation re-checks per weight "
        "dtype (0: the closed form only).",
        parser=lenient_int,
    ),
]
TopOpt = Annotated[
    int | None,
    typer.Option(
        help="Also list the N best plans of the closed form's ranking (one per layout).", parser=lenient_int
    ),
]
PlanServingOpt = Annotated[
    str,
    typer.Option(
        "--serving",
        help="simulated (default: the closed form prunes, the engine's scheduler re-checks the best) | "
        "closed-form.",
    ),
]
#: the run options ``plan`` and ``compare`` take as flags (``--disaggregated`` is plan's own, and
#: ``--prefill-chunks`` searches chunk sizes)
PLAN_RUN_OPTIONS = tuple(
    s.name for s in genmodel.OPTION_SPECS if s.name not in ("disaggregated", "prefill_chunk")
)
RateOpt = Annotated[
    float | None,
    typer.Option(
        "--request-rate",
        help="Traffic in requests/s: plan the fewest devices that serve it (--devices is then the "
        "largest copy of a plan considered).",
        parser=lenient_float,
    ),
]
ItlMaxOpt = Annotated[
    str | None,
    typer.Option(
        "--itl-max-slo",
        help="Longest gap between two tokens (a decode step plus the prefill piece before the next, "
        "e.g. 150ms); searches chunked-prefill sizes too.",
    ),
]
ChunksOpt = Annotated[
    str | None,
    typer.Option(
        help="Chunked-prefill sizes to search, comma-separated; 'none' is one pass (default with "
        "--itl-max-slo: none,256,...,8192 below the prompt; else none).",
    ),
]
ObjectiveOpt = Annotated[
    str,
    typer.Option(
        help="goodput (tokens/s per device; for --request-rate: fewest devices), cost, energy (as "
        "goodput on one platform), or latency (lowest TPOT within the SLOs).",
    ),
]
RiskOpt = Annotated[
    str | None,
    typer.Option(
        help="Check the targets on a pessimistic bound: p80 = the upper end of the 80 % interval of "
        "TTFT and TPOT (README: How much to trust a number).",
    ),
]
DtypesOpt = Annotated[
    str,
    typer.Option(
        "--weight-dtype",
        help="Weight precision (fp32|bf16|fp16|fp8|int8|fp4|int4|mxfp4|q4_0|q4_k_m|q8_0|...); "
        "a comma list searches each (fp8,bf16).",
    ),
]


def _names(name: str, value: str) -> list[str]:
    """A comma-separated list of ids or dtypes; an empty item is refused (as :func:`parse_ints` does).

    Raises:
        genmodel.SpecError: an empty list or item.
    """
    items = [v.strip() for v in value.split(",")]
    if not all(items):
        raise genmodel.SpecError(f"{name}={value!r} has an empty value: give names, comma-separated")
    return items


def _chunks(value: str) -> list[int | None]:
    out: list[int | None] = []
    for v in value.split(","):
        if v.strip().lower() == "none":
            out.append(None)
            continue
        try:
            out.append(parse_int("prefill_chunks", v))
        except genmodel.SpecError:
            raise genmodel.SpecError(
                f"prefill_chunks={value!r} must be token counts (1 to {MAX_TOKENS:,}) or 'none', "
                "comma-separated"
            ) from None
    return out


def _slos(ttft_slo: str | None, tpot_slo: str | None, ttft_quantile: float | None) -> dict[str, Any]:
    """plan's SLO keywords from the flags (``--ttft-quantile``, deprecated, unless --ttft-slo names one)."""
    ttft_s, ttft_q = parse_slo("ttft_slo", ttft_slo)
    tpot_s, tpot_q = parse_slo("tpot_slo", tpot_slo)
    if ttft_quantile is not None:
        if ttft_q is not None and ttft_q != ttft_quantile:
            raise genmodel.SpecError(
                f"ttft_quantile={ttft_quantile!r} contradicts ttft_slo={ttft_slo!r}: give the percentile "
                "in --ttft-slo only"
            )
        ttft_q = ttft_quantile
    return {"ttft_slo_s": ttft_s, "tpot_slo_s": tpot_s, "ttft_quantile": ttft_q, "tpot_quantile": tpot_q}


def _no_plan(message: str) -> None:
    """Exit with code 3 after the result is out: the search ran, but nothing meets the targets."""
    err.print(f"[yellow]{message}[/yellow] (exit code {EXIT_NO_PLAN})", markup=True)
    raise typer.Exit(EXIT_NO_PLAN)


def register(app: typer.Typer) -> None:
    """Add the ``plan`` and ``compare`` commands to ``app``."""

    @app.command(
        epilog=examples(
            "# the best serving plan of 384 Ascend 910C for DeepSeek-V3 within the targets",
            "genmodel plan --model deepseek-v3 --hardware ascend-910c --devices 384 \\\n"
            "    --input-tokens 4096 --output-tokens 1024 --ttft-slo 2s --tpot-slo 50ms \\\n"
            "    --weight-dtype int8",
            "# also size disaggregated pools; the Pareto frontier as interactive HTML",
            "genmodel plan --model llama-2-13b --hardware a100-sxm-80gb --devices 8 \\\n"
            "    --input-tokens 512 --output-tokens 128 --ttft-slo 200ms --tpot-slo 40ms \\\n"
            "    --disaggregated --plot pareto.html",
            "# how many H100s for 20 requests/s: copies of the best plan of up to 8 devices",
            "genmodel plan --model llama-3.1-70b --hardware h100-sxm --devices 8 \\\n"
            "    --request-rate 20 --input-tokens 2000 --output-tokens 500 \\\n"
            "    --ttft-slo 1s --tpot-slo 50ms --weight-dtype fp8,bf16",
        )
    )
    @friendly
    @with_run_options(*PLAN_RUN_OPTIONS)
    def plan(
        model: ModelOpt,
        hardware: HardwareOpt,
        devices: DevicesOpt,
        input_tokens: InputOpt,
        output_tokens: OutputTokensOpt,
        ttft_slo: PlanTtftSloOpt = None,
        tpot_slo: PlanTpotSloOpt = None,
        ttft_quantile: QuantileOpt = None,
        weight_dtype: DtypesOpt = "bf16",
        act_dtype: ActDtypeOpt = None,
        kv_dtype: KvDtypeOpt = None,
        disaggregated: Annotated[
            bool, typer.Option(help="Also size separate prefill and decode pools (DistServe).")
        ] = False,
        request_rate: RateOpt = None,
        objective: ObjectiveOpt = "goodput",
        itl_max_slo: ItlMaxOpt = None,
        prefill_chunks: ChunksOpt = None,
        risk: RiskOpt = None,
        serving: PlanServingOpt = "simulated",
        engine: EngineOpt = "vllm",
        recheck: RecheckOpt = genmodel.DEFAULT_RECHECK,
        top: TopOpt = None,
        run_options: Mapping[str, Any] = NO_RUN_OPTIONS,
        format: FormatOpt = Format.table,
        output: OutputOpt = None,
        plot: PlotOpt = None,
    ) -> None:
        """Search every serving plan of a device budget for the best goodput within the SLOs.

        With --request-rate: the plan, and the number of its copies, that serve the traffic within
        the SLOs on the fewest devices (each copy counted at its full-load rate).

        The closed form prunes the plan space; the engine's scheduler is then simulated on the best
        candidates (--recheck of them; closed-loop clients at the plan's concurrency, started
        together; for --request-rate, Poisson arrivals at each copy's share), and the answer shown
        is the simulated one. A plan that misses the SLOs in simulation is never shown as meeting
        them. --serving closed-form plans on the closed form alone.

        The plot is the Pareto frontier (tokens/s per device vs per user), and so is --format csv
        (a row per point; the best plan is in the table and the JSON). Exit code 3 when no plan
        meets the targets (the result is still printed).
        """
        if plot is not None:
            figure_format(plot)  # a wrong suffix or a missing renderer fails before the search
        with plan_progress() as on_progress:
            report = genmodel.plan(
                model,
                hardware,
                devices=devices,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                **_slos(ttft_slo, tpot_slo, ttft_quantile),
                weight_dtype=_names("weight_dtype", weight_dtype),
                act_dtype=act_dtype,
                kv_dtype=kv_dtype,
                disaggregated=disaggregated,
                request_rate_per_s=request_rate,
                objective=objective,
                itl_max_slo_s=parse_seconds("itl_max_slo", itl_max_slo),
                prefill_chunks=None if prefill_chunks is None else _chunks(prefill_chunks),
                risk=risk,
                serving=serving,
                engine=engine,
                recheck=recheck,
                top=top or 5,
                on_progress=on_progress,
                **run_options,
            )
        d = report.to_dict()
        if top is None:
            d["top"] = d["top"][:0] if format is Format.table else d["top"]
        if plot is not None:
            write_plot(pareto_figure(d), plot)
        if format is Format.json:
            emit(to_json(d), output)
        elif format is Format.csv:
            emit(to_csv(d["pareto"]), output)
        else:
            emit_tables(_plan_tables(d), output)
        if d["best"] is None:
            _no_plan(d["serving"]["note"] or "no plan meets the targets")

    @app.command(
        epilog=examples(
            "# one workload on four platforms, fp8 or bf16 weights; bars as HTML",
            "genmodel compare --model llama-3.1-70b --devices 8 \\\n"
            "    --hardware h100-sxm,h200-sxm,b200,mi300x --weight-dtype fp8,bf16 \\\n"
            "    --input-tokens 2000 --output-tokens 500 --ttft-slo 1s --tpot-slo 40ms \\\n"
            "    --plot compare.html",
        )
    )
    @friendly
    @with_run_options(*PLAN_RUN_OPTIONS)
    def compare(
        model: ModelOpt,
        hardware: Annotated[str, typer.Option(help="Comma-separated hardware ids (h100-sxm,h200-sxm).")],
        devices: Annotated[str, typer.Option(help="One budget for all, or one per hardware id (8,8,16).")],
        input_tokens: InputOpt,
        output_tokens: OutputTokensOpt,
        ttft_slo: PlanTtftSloOpt = None,
        tpot_slo: PlanTpotSloOpt = None,
        weight_dtype: DtypesOpt = "bf16",
        act_dtype: ActDtypeOpt = None,
        kv_dtype: KvDtypeOpt = None,
        request_rate: RateOpt = None,
        serving: PlanServingOpt = "simulated",
        engine: EngineOpt = "vllm",
        recheck: RecheckOpt = genmodel.DEFAULT_RECHECK,
        run_options: Mapping[str, Any] = NO_RUN_OPTIONS,
        format: FormatOpt = Format.table,
        output: OutputOpt = None,
        plot: PlotOpt = None,
    ) -> None:
        """The best plan of one workload on several platforms: goodput, latency, cost, energy.

        With --request-rate, also the devices each platform needs for that traffic.

        The plot is bars of goodput, cost and energy per platform. Exit code 3 when no platform has
        a plan that meets the targets (the result is still printed).
        """
        if plot is not None:
            figure_format(plot)
        ids = _names("hardware", hardware)
        budgets = parse_ints("devices", devices)
        with working(f"planning on {len(ids)} platform{'s' if len(ids) > 1 else ''}"):
            rows = genmodel.compare(
                model,
                ids,
                devices=budgets[0] if len(budgets) == 1 else budgets,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                **_slos(ttft_slo, tpot_slo, None),
                weight_dtype=_names("weight_dtype", weight_dtype),
                act_dtype=act_dtype,
                kv_dtype=kv_dtype,
                request_rate_per_s=request_rate,
                serving=serving,
                engine=engine,
                recheck=recheck,
                **run_options,
            )
        if plot is not None:
            write_plot(compare_figure(rows), plot)
        if format is Format.json:
            emit(to_json(rows), output)
        elif format is Format.csv:
            emit(to_csv(rows), output)
        else:
            emit_tables([_compare_table(rows)], output)
        if all(r.get("error") for r in rows):
            _no_plan("no platform has a plan that meets the targets")


def _fmt(value: Any, digits: str = ".3g") -> str:
    return "-" if value is None else format(value, digits)


def _plan_tables(d: dict[str, Any]) -> list[Table]:
    rate = d["request_rate_per_s"]
    scope = f"{d['devices']} devices" if rate is None else f"copies of up to {d['devices']} devices"
    head = Table(title=f"{d['model']} on {scope} of {d['system']}", show_header=False)
    targets = _has_targets(d["slo"])
    _count_rows(head, d, targets)
    tables = [head]
    if d.get("risk"):
        k = d["risk"]
        head.add_row(
            "risk",
            f"{k['risk']} ({k['evidence']}): targets checked on TTFT x {k['ttft_s']:.2f}, "
            f"TPOT x {k['tpot_s']:.2f}",
        )
    best = d["best"]
    if best is not None and best["prefill_chunk"] is not None:
        gap = best["decode"]["time_s"] + best["decode_stall_s"]
        head.add_row(
            "chunked prefill", f"{best['prefill_chunk']} tokens per chunk: longest gap {format_seconds(gap)}"
        )
    if rate is not None and best is not None:
        head.add_row(
            "traffic",
            f"{rate:g} requests/s: {best['instances']} x {best['devices']} devices = "
            f"{best['devices_needed']} devices",
        )
    for note in [] if best is None else best.get("notes", []):
        head.add_row("note", note)  # what the estimate assumes beyond what was asked
    serving = d["serving"]
    simulated = serving["model"] == "simulated"
    if simulated:
        head.add_row(
            "serving",
            f"closed form prunes; {serving['rechecked']} "
            f"{'candidate' if serving['rechecked'] == 1 else 'candidates'} re-checked "
            f"(up to {serving['recheck']} per dtype) by simulating {serving['engine']} ({serving['load']})",
        )
    if best is not None and best.get("closed_form") is not None:
        head.add_row("closed form vs simulated", _disagreement(best["closed_form"]))
    how = f"simulated, {serving['engine']}" if simulated else "closed form, re-estimated alone"
    t = Table(title=f"best plan by {d['objective']} (co-located, {how})")
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
            _with_interval(best, "ttft_s"),
            _with_interval(best, "tpot_s"),
            _fmt(best["output_tokens_per_s_per_device"], ".1f"),
            _fmt(best["usd_per_million_output_tokens"], ".3f"),
            _fmt(best["joules_per_output_token"], ".3f"),
        )
    tables.append(t)
    if best is not None and best.get("simulated") is not None:
        tables.append(_percentile_table(best["simulated"], d["slo"]))
    if d["by_weight_dtype"]:
        tables.append(_dtype_table(d["by_weight_dtype"], rate is not None))
    if d["top"]:
        tables.append(_top_table(d["top"], rate is not None))
    dis = d["disaggregated"]
    if dis is not None:
        g = Table(title="disaggregated (DistServe): prefill pool + decode pool")
        for col in ("prefill", "decode", "TTFT", "TPOT", "tok/s/device", "vs co-located"):
            g.add_column(col, justify="right")
        p, q = dis["prefill"], dis["decode"]
        gain = dis["goodput_gain_vs_colocated"]
        if rate is not None:
            saved = dis["devices_saved_vs_colocated"]
            head.add_row(
                "traffic, disaggregated",
                f"{dis['devices']} devices" + ("" if saved is None else f" ({saved:+d} saved vs co-located)"),
            )
        g.add_row(
            f"{dis['prefill_instances']} x tp{p['tp']} pp{p['pp']} dp{p['dp']} ep{p['ep']}",
            f"{dis['decode_instances']} x tp{q['tp']} pp{q['pp']} dp{q['dp']} ep{q['ep']}",
            format_seconds(dis["ttft_s"]),
            format_seconds(dis["tpot_s"]),
            _fmt(dis["output_tokens_per_s_per_device"], ".1f"),
            "-" if gain is None else f"{gain:.2f}x",
        )
        tables.append(g)
    tables.append(_pareto_table(d["pareto"], targets))
    return tables


def _count_rows(head: Table, d: dict[str, Any], targets: bool) -> None:
    """The search's counts: evaluated, can run (and meet the SLOs, where any target was given),
    the main reasons layouts could not run, and the batches above the engine's step budget."""
    head.add_row("evaluated", f"{d['evaluated']:,} candidate plans in {d['elapsed_s']:.2f} s")
    if targets:
        head.add_row("can run / meet SLOs", f"{d['feasible']:,} / {d['meeting_slo']:,}")
    else:
        head.add_row("can run", f"{d['feasible']:,} (no latency targets given)")
    for reason, n in list(d["violations"].items())[:4]:
        head.add_row("ruled out", f"{n:,} x {reason}")
    if d["above_step_budget"]:
        engine = d["serving"]["engine"] or "the engine"
        head.add_row(
            "left out",
            f"{d['above_step_budget']:,} x running batch above what {engine}'s step budget keeps decoding",
        )


def _has_targets(slo: dict[str, Any]) -> bool:
    """Whether the plan was asked to meet any latency target (TTFT, TPOT or the longest gap)."""
    return any(slo[k] is not None for k in ("ttft_s", "tpot_s", "itl_max_s"))


def _pareto_table(points: list[dict[str, Any]], targets: bool) -> Table:
    """Up to about a dozen points of the Pareto frontier; the SLO column only when there are targets
    (without any, every point meets them: ``meets_slo`` is true throughout)."""
    f = Table(title=f"Pareto frontier ({len(points)} points): tokens/s per device vs per user")
    cols = ["tp", "pp", "ep", "dp", "dtype", "clients", "TTFT", "TPOT", "tok/s/dev", "tok/s/user"]
    for col in cols if not targets else [*cols, "SLO"]:
        f.add_column(col, justify="right")
    for p in points[:: max(1, len(points) // 12)]:
        f.add_row(
            *(str(p[k]) for k in ("tp", "pp", "ep", "dp", "weight_dtype")),
            f"{p['concurrency']:.0f}",
            format_seconds(p["ttft_s"]),
            format_seconds(p["tpot_s"]),
            f"{p['output_tokens_per_s_per_device']:.1f}",
            f"{p['output_tokens_per_s_per_user']:.1f}",
            *([("yes" if p["meets_slo"] else "no")] if targets else []),
        )
    return f


def _with_interval(best: dict[str, Any], key: str) -> str:
    """``12.3 ms (9.8 ms–16.1 ms)``: a latency with its interval (``interval_coverage`` of measurements)."""
    lo, hi = best[f"{key}_interval"]
    return f"{format_seconds(best[key])} ({format_seconds(lo)}–{format_seconds(hi)})"


def _signed_pct(rel: float | None) -> str:
    return "-" if rel is None else f"{rel:+.0%}"


def _disagreement(cf: dict[str, Any]) -> str:
    """``TTFT mean 0.22 s -> 1.23 s (+466%), TPOT mean ...``: the closed form, then the simulation."""
    parts = []
    for name in ("ttft", "tpot"):
        parts.append(
            f"{name.upper()} {cf[f'{name}_statistic']} {format_seconds(cf[f'{name}_s'])} -> "
            f"{format_seconds(cf[f'simulated_{name}_s'])} ({_signed_pct(cf[f'{name}_rel_diff'])})"
        )
    return ", ".join(parts)


def _percentile_table(sim: dict[str, Any], slo: dict[str, Any]) -> Table:
    """The best plan's simulated TTFT and TPOT by statistic, the SLO's own marked with its target."""
    t = Table(title=f"best plan, simulated: {sim['load']}")
    stats = list(sim["ttft_s"])
    for col in ("", *stats, "target"):
        t.add_column(col, justify="right")
    for name in ("ttft", "tpot"):
        target = slo[f"{name}_s"]
        shown = "-" if target is None else f"{slo[f'{name}_statistic']} <= {format_seconds(target)}"
        t.add_row(name.upper(), *(format_seconds(sim[f"{name}_s"][k]) for k in stats), shown)
    return t


def _dtype_table(rows: list[dict[str, Any]], traffic: bool) -> Table:
    """The best plan of each weight dtype side by side, and how far each is from the best."""
    t = Table(title="best plan per weight dtype")
    cols = ["dtype", "plan", "clients", "TTFT", "TPOT", "tok/s/device", "vs best"]
    for col in cols if not traffic else [*cols, "devices needed"]:
        t.add_column(col, justify="right")
    for r in rows:
        if r.get("error"):
            t.add_row(r["weight_dtype"], Text(r["error"], style="red"), *["-"] * (len(t.columns) - 2))
            continue
        vs = "best" if r["is_best"] else _vs_best(r)
        t.add_row(
            r["weight_dtype"],
            f"tp{r['tp']} pp{r['pp']} ep{r['ep']} dp{r['dp']}",
            str(r["concurrency"]),
            format_seconds(r["ttft_s"]),
            format_seconds(r["tpot_s"]),
            _fmt(r["output_tokens_per_s_per_device"], ".1f"),
            vs,
            *([_copies(r["instances"], r["devices_needed"])] if traffic else []),
        )
    return t


def _vs_best(row: dict[str, Any]) -> str:
    """``0.62x goodput, +8 devices``: a dtype's best against the overall best."""
    text = "-" if row.get("goodput_vs_best") is None else f"{row['goodput_vs_best']:.2f}x goodput"
    if row.get("devices_vs_best") is not None:
        text += f", {row['devices_vs_best']:+d} devices"
    return text


def _top_table(rows: list[dict[str, Any]], traffic: bool) -> Table:
    """The best plans of the closed form's ranking, one per layout (closed-form figures)."""
    t = Table(title=f"top {len(rows)} plans of the closed form's ranking (one per layout)")
    cols = ["tp", "pp", "ep", "dp", "dtype", "clients", "TTFT", "TPOT", "tok/s/device"]
    for col in cols if not traffic else [*cols, "copies x size = needed"]:
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(
            *(str(r[k]) for k in ("tp", "pp", "ep", "dp", "weight_dtype")),
            f"{r['concurrency']:.0f}",
            format_seconds(r["ttft_s"]),
            format_seconds(r["tpot_s"]),
            _fmt(r["output_tokens_per_s_per_device"], ".1f"),
            *([_copies(r["instances"], r["devices_needed"])] if traffic else []),
        )
    return t


def _compare_table(rows: list[dict[str, Any]]) -> Table:
    # what a platform's best plan assumes beyond what was asked (as plan's note rows)
    notes = [f"note ({r['hardware']}): {escape(n)}" for r in rows for n in r.get("notes", [])]
    t = Table(title="best plan per platform", caption="\n".join(notes) or None, caption_justify="left")
    traffic = any("devices_needed" in r for r in rows)
    cols = ["hardware", "devices", "plan", "clients", "TTFT", "TPOT", "tok/s/device", "$/Mtok", "J/tok"]
    for col in cols if not traffic else [*cols[:2], "copies x size = needed", *cols[2:]]:
        t.add_column(col, justify="right")
    for r in rows:
        if r.get("error"):
            gap = ["-"] * (7 if traffic else 6)
            t.add_row(r["hardware"], str(r["devices"]), Text(r["error"][:60], style="red"), *gap)
            continue
        t.add_row(
            r["hardware"],
            str(r["devices"]),
            *([_copies(r["instances"], r["devices_needed"])] if traffic else []),
            f"tp{r['tp']} pp{r['pp']} ep{r['ep']} dp{r['dp']} {r['weight_dtype']}",
            str(r["concurrency"]),
            format_seconds(r["ttft_s"]),
            format_seconds(r["tpot_s"]),
            _fmt(r["output_tokens_per_s_per_device"], ".1f"),
            _fmt(r["usd_per_million_output_tokens"], ".3f"),
            _fmt(r["joules_per_output_token"], ".3f"),
        )
    return t


def _copies(instances: int, devices_needed: int) -> str:
    """``11 x 4 = 44``: copies of the best plan, devices per copy, devices in all."""
    return f"{instances} x {devices_needed // instances} = {devices_needed}"
