"""genmodel CLI: parse -> call the public API -> render. No formulas here.

Exit codes: 0 success; 2 bad input (unknown id, malformed file or argument, a plan or model that
cannot run), printed as one red line without a traceback; 3 a plan search (``plan``, ``compare``)
that ran but found no plan meeting the targets (its result is still printed); 1 an unexpected
internal error. The shared options (``--format``, ``--output``, ``--plot``, ...) are in ``_options``.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import io
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from typer import Abort
from typer.main import get_command_name
from typer.models import CommandInfo

try:  # typer's own copy of click (typer 0.22 on); before, click itself
    from typer._click.core import ParameterSource
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover
    from click.core import ParameterSource  # type: ignore[assignment,no-redef,unused-ignore]
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError  # type: ignore[assignment,no-redef,unused-ignore]
    from click.globals import get_current_context  # type: ignore[assignment,no-redef,unused-ignore]

import genmodel
from genmodel.report import flatten, format_bytes, format_seconds, to_csv, to_json

from ._options import (
    EXIT_BAD_INPUT,
    EXIT_NO_PLAN,
    NO_RUN_OPTIONS,
    ActDtypeOpt,
    BatchOpt,
    ConcurrencyOpt,
    CpOpt,
    DpOpt,
    EngineOpt,
    EpOpt,
    Format,
    FormatOpt,
    HardwareOpt,
    InputOpt,
    KvDtypeOpt,
    ModelOpt,
    OutputOpt,
    OutputTokensOpt,
    PpOpt,
    RequestsPerClientOpt,
    ServingOpt,
    TpOpt,
    WarmupReplayOpt,
    WarmupRequestsOpt,
    WarmupRestartOpt,
    WeightDtypeOpt,
    complete_hardware,
    complete_models,
    emit,
    emit_tables,
    err,
    examples,
    friendly,
    out,
    parse_batch,
    parse_ints,
    progress_bar,
    with_run_options,
)
from ._tables import (
    DEVICE_COLUMNS,
    LINK_COLUMNS,
    SYSTEM_COLUMNS,
    TIER_COLUMNS,
    cell,
    estimate_table,
    key_table,
    ops_records,
    ops_table,
)

_TOP_EPILOG = (
    examples(
        "# a model on a platform: TTFT, TPOT, throughput, memory",
        "genmodel estimate --model llama-3.1-8b --hardware h100-sxm \\\n"
        "    --input-tokens 1000 --output-tokens 200",
        "# the best serving plan of 8 H100s within latency targets",
        "genmodel plan --model llama-3.1-70b --hardware h100-sxm --devices 8 \\\n"
        "    --input-tokens 2000 --output-tokens 500 --ttft-slo 1s --tpot-slo 40ms",
        "# what is in the hardware database",
        "genmodel hw list",
    )
    + "\n\n[bold]Output[/bold]\n\n"
    "--format table|json|csv on every command that gives results; --output FILE writes the "
    "file whole instead of stdout (and says 'wrote FILE' on stderr; --output - is stdout; a "
    "FILE.json or FILE.csv is written in that format); "
    "--plot FILE.html or FILE.png on plan, compare and sweep. Progress goes to stderr, only at a "
    "terminal. "
    "Shell completion: genmodel --install-completion.\n\n"
    "[bold]Exit codes[/bold]\n\n"
    "0  success\n"
    f"{EXIT_BAD_INPUT}  bad input: an unknown id (the closest are suggested), a malformed file or\n"
    "   argument, a plan or model that cannot run; one red line on stderr\n"
    f"{EXIT_NO_PLAN}  plan, compare: the search ran but no plan meets the TTFT/TPOT targets\n"
    "   (the result is still printed)\n"
    "1  an unexpected internal error (a bug: please report it with its traceback)"
)


#: the commands defined here (the others are in :data:`COMMAND_MODULES`); ``app`` has them all
base_app = typer.Typer(
    help="Analytical model of LLM inference on hardware platforms: latency, throughput, memory, plans.",
    epilog=_TOP_EPILOG,
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
hw_app = typer.Typer(
    help="The hardware database (hardware_db/): devices, systems, memory tiers, links.",
    epilog=examples("genmodel hw list", "genmodel hw show h100-sxm"),
    rich_markup_mode="rich",
    no_args_is_help=True,
)
models_app = typer.Typer(
    help="Model architectures (workloads/models/), and importing a HuggingFace config.json.",
    epilog=examples("genmodel models list", "genmodel models show deepseek-v3"),
    rich_markup_mode="rich",
    no_args_is_help=True,
)
base_app.add_typer(hw_app, name="hw")
base_app.add_typer(models_app, name="models")


def _show_version(value: bool) -> None:
    if value:
        out.print(f"genmodel {genmodel.__version__}", markup=False)
        raise typer.Exit()


@base_app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", help="Show the version and exit.", is_eager=True, callback=_show_version),
    ] = False,
) -> None:
    pass


@base_app.command(
    epilog=examples(
        "# Llama-3.1-70B on two H100s in fp8: the largest batch that fits memory",
        "genmodel estimate --model llama-3.1-70b --hardware h100-sxm --tp 2 \\\n"
        "    --batch max --input-tokens 1000 --output-tokens 1000 \\\n"
        "    --weight-dtype fp8 --act-dtype fp8 --kv-dtype fp8",
        "# 64 clients against a continuously batching server, as JSON in a file",
        "genmodel estimate --model llama-3.1-8b --hardware h100-sxm \\\n"
        "    --concurrency 64 --input-tokens 1000 --output-tokens 200 \\\n"
        "    --format json --output estimate.json",
        "# DeepSeek-V3 decode: attention-DP and 72-way EP over 9 DGX H100 nodes",
        "genmodel estimate --model deepseek-v3 --hardware dgx-h100 --dp 72 --ep 72 \\\n"
        "    --batch 18432 --input-tokens 2000 --output-tokens 64 \\\n"
        "    --weight-dtype fp8 --act-dtype fp8",
    )
)
@friendly
@with_run_options()
def estimate(
    model: ModelOpt,
    hardware: HardwareOpt,
    input_tokens: InputOpt,
    output_tokens: OutputTokensOpt,
    devices: Annotated[int | None, typer.Option(help="Total devices (= tp*pp*dp*cp).")] = None,
    tp: TpOpt = 1,
    pp: PpOpt = 1,
    ep: EpOpt = 1,
    dp: DpOpt = 1,
    cp: CpOpt = 1,
    system: Annotated[
        str | None, typer.Option(help="System id whose fabric joins the devices (genmodel hw list).")
    ] = None,
    batch: BatchOpt = None,
    concurrency: ConcurrencyOpt = None,
    weight_dtype: WeightDtypeOpt = "bf16",
    act_dtype: ActDtypeOpt = None,
    kv_dtype: KvDtypeOpt = None,
    run_options: Mapping[str, Any] = NO_RUN_OPTIONS,
    ideal: Annotated[bool, typer.Option(help="Pure roofline: every efficiency 1.")] = False,
    serving: ServingOpt = "simulated",
    engine: EngineOpt = "vllm",
    requests_per_client: RequestsPerClientOpt = None,
    warmup_requests: WarmupRequestsOpt = None,
    warmup_restart: WarmupRestartOpt = True,
    warmup_replay: WarmupReplayOpt = True,
    input_spread: Annotated[
        float,
        typer.Option(
            help="With --concurrency, prompt lengths drawn uniformly within +-this fraction of "
            "--input-tokens (0: fixed; the simulated clients', the closed form takes the mean)."
        ),
    ] = 0.0,
    output_spread: Annotated[
        float,
        typer.Option(
            help="With --concurrency, output lengths drawn uniformly within +-this fraction of "
            "--output-tokens (0: fixed; the simulated clients', the closed form takes the mean)."
        ),
    ] = 0.0,
    ops: Annotated[
        bool,
        typer.Option(
            help="Also show the per-operator breakdown "
            "(JSON: an 'ops' list; CSV: a row per phase and operator)."
        ),
    ] = False,
    format: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Estimate TTFT, TPOT, throughput and memory of a model on hardware under a plan.

    --batch N is a static batch (prefilled together, then decoded together); --concurrency N is N
    clients in a closed loop against a continuously batching server, by default simulated step by
    step (--serving closed-form: the steady state). JSON keys are in SI units.
    """
    microbatches = run_options.get("overlap_microbatches", 1)
    static = parse_batch(batch)
    sequences = 1 if static is None and concurrency is None else static  # estimate's default batch
    if isinstance(sequences, int) and microbatches > sequences:
        raise genmodel.SpecError(
            f"overlap_microbatches={microbatches} must be at most the batch, {sequences} (each microbatch "
            "holds at least one sequence)"
        )
    est = genmodel.estimate(
        model,
        hardware,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        batch=static,
        concurrency=concurrency,
        devices=devices,
        tp=tp,
        pp=pp,
        ep=ep,
        dp=dp,
        cp=cp,
        system=system,
        weight_dtype=weight_dtype,
        act_dtype=act_dtype,
        kv_dtype=kv_dtype,
        ideal=ideal,
        serving=serving,
        engine=engine,
        requests_per_client=requests_per_client,
        warmup_requests=warmup_requests,
        warmup_restart=warmup_restart,
        warmup_replay=warmup_replay,
        input_spread=input_spread,
        output_spread=output_spread,
        **run_options,
    )
    if est.serving is None and _given("engine", "serving"):
        est = dataclasses.replace(est, notes=(*est.notes, STATIC_IGNORES_SERVING))
    if format is Format.json:  # --ops: the per-operator records too (they were dropped)
        emit(
            to_json({**genmodel.report.estimate_dict(est), **({"ops": ops_records(est)} if ops else {})}),
            output,
        )
    elif format is Format.csv:
        emit(to_csv(ops_records(est) if ops else [genmodel.report.estimate_dict(est)]), output)
    else:
        emit_tables([estimate_table(est), *([ops_table(est)] if ops else [])], output)
    _warn_unless_fits(est.batch, est.memory)


#: estimate's note where --engine or --serving is given for a static batch (refusing them would
#: refuse validate's static rows, which pass both to every row)
STATIC_IGNORES_SERVING = "--engine/--serving apply under load (--concurrency); a static batch ignores them"


def _given(*names: str) -> bool:
    """Whether any of these options of the running command was given (on the command line or by an
    environment variable), not left at its default."""
    ctx = get_current_context(silent=True)
    sources = [None if ctx is None else ctx.get_parameter_source(n) for n in names]
    return any(s not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP) for s in sources)


def _warn_unless_fits(batch: int, memory: genmodel.MemoryUse) -> None:
    for tier in memory.tiers or ():
        if not tier.fits:
            err.print(
                f"[yellow]warning:[/yellow] batch={batch} needs {format_bytes(tier.bytes)} per device "
                f"in {tier.id}, more than its {format_bytes(tier.capacity_bytes)} (usable share)",
                markup=True,
            )


def _contexts(value: str | None) -> tuple[int, ...]:
    if value is None:
        return ()
    return tuple(parse_ints("contexts", value))


@base_app.command(
    epilog=examples(
        "# Llama-3.1-70B at 128K tokens, the KV beyond HBM in 4 CXL expanders per node",
        "genmodel memory --model llama-3.1-70b --hardware h100-sxm --tp 8 \\\n"
        "    --input-tokens 127000 --output-tokens 1000 \\\n"
        "    --kv-offload cxl-samsung-cmm-d-128gb:4 --contexts 8192,32768,131072",
    )
)
@friendly
@with_run_options(
    "kv_block_tokens",
    "prefix_hit_rate",
    "kv_offload",
    "weight_offload",
    "expert_offload",
    "kv_window",
    "allow_long_context",
)
def memory(
    model: ModelOpt,
    hardware: HardwareOpt,
    input_tokens: InputOpt,
    output_tokens: OutputTokensOpt,
    tp: TpOpt = 1,
    pp: PpOpt = 1,
    ep: EpOpt = 1,
    dp: DpOpt = 1,
    cp: CpOpt = 1,
    batch: Annotated[str, typer.Option(help="Sequences to place (whole deployment), or 'max'.")] = "max",
    contexts: Annotated[
        str | None,
        typer.Option(help="Comma-separated context lengths for the users-that-fit curve, e.g. 8192,131072."),
    ] = None,
    weight_dtype: WeightDtypeOpt = "bf16",
    act_dtype: ActDtypeOpt = None,
    kv_dtype: KvDtypeOpt = None,
    run_options: Mapping[str, Any] = NO_RUN_OPTIONS,
    format: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Show where every byte lives, per memory tier, and how many users fit per context.

    --format csv writes one row per tier (bytes per device by kind, capacity, bandwidth), then,
    with --contexts, one row per context (context_tokens, max_concurrency) with the tier columns
    empty; --format json gives the same as "tiers" and "concurrency".
    """
    r = genmodel.memory_report(
        model,
        hardware,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        batch=parse_batch(batch),
        contexts=_contexts(contexts),
        tp=tp,
        pp=pp,
        ep=ep,
        dp=dp,
        cp=cp,
        weight_dtype=weight_dtype,
        act_dtype=act_dtype,
        kv_dtype=kv_dtype,
        **run_options,
    )
    if format is Format.json:
        emit(to_json(r), output)
        return
    if format is Format.csv:  # one CSV: the tier rows, then the curve's rows (the other columns empty)
        emit(to_csv([*r["tiers"], *r["concurrency"]]), output)
        return
    t = Table(
        title=f"{r['model']} on {r['devices']}x {r['hardware']}: batch {r['batch']} of "
        f"{r['input_tokens']} + {r['output_tokens']} tokens, bytes per device by tier"
    )
    for col in ("tier", "medium", "weights", "KV cache", "activations", "total", "capacity", "bandwidth"):
        t.add_column(col, justify="left" if col in ("tier", "medium") else "right", no_wrap=col == "tier")
    for tier in r["tiers"]:
        t.add_row(
            tier["id"],
            tier["medium"],
            format_bytes(tier["weights_bytes_per_device"]),
            format_bytes(tier["kv_cache_bytes_per_device"]),
            format_bytes(tier["activation_bytes_per_device"]),
            format_bytes(tier["bytes_per_device"]),
            format_bytes(tier["capacity_bytes_per_device"]),
            f"{tier['bandwidth_bytes_per_s'] / 1e9:,.1f} GB/s",
        )
    summary = Table(title="KV cache and users")
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    swap = r["swap_s_per_sequence"]
    for name, value in (
        ("KV bytes per token per device", format_bytes(r["kv_bytes_per_token_per_device"])),
        ("KV bytes per sequence per device", format_bytes(r["kv_bytes_per_sequence"])),
        ("sequences placed (batch)", f"{r['batch']}"),
        ("fits", "yes" if r["fits"] else "NO"),
        ("swap one sequence to the KV tier", "-" if swap is None else format_seconds(swap)),
        ("TTFT / TPOT at this batch", f"{format_seconds(r['ttft_s'])} / {format_seconds(r['tpot_s'])}"),
    ):
        summary.add_row(name, value)
    tables = [t, summary]
    if r["concurrency"]:
        curve = Table(title="users that fit per context (tokens per sequence)")
        curve.add_column("context", justify="right")
        curve.add_column("max concurrency", justify="right")
        for row in r["concurrency"]:
            curve.add_row(f"{row['context_tokens']:,}", f"{row['max_concurrency']:,}")
        tables.append(curve)
    emit_tables(tables, output)


@base_app.command(
    epilog=examples(
        "# the bundled public cases: published measurements against predictions",
        "genmodel validate",
        "# per-case errors as CSV",
        "genmodel validate --format csv --output validation.csv",
    )
)
@friendly
def validate(
    cases: Annotated[
        Path | None, typer.Argument(help="CSV of cases (default: bundled public cases).")
    ] = None,
    options: Annotated[
        Path | None,
        typer.Option(
            help="CSV of run options per case id (default: the bundled ones for the public cases); "
            "an id that matches no case is refused."
        ),
    ] = None,
    serving: ServingOpt = "simulated",
    engine: Annotated[
        str, typer.Option(help="Simulated engine of cases without an engine column: vllm | sglang | trtllm.")
    ] = "vllm",
    skip_invalid: Annotated[
        bool, typer.Option(help="Skip malformed rows (listed as skipped) instead of refusing the file.")
    ] = False,
    summary: Annotated[
        bool, typer.Option(help="Table: only the summary (MAPE in all and per metric), not every case.")
    ] = False,
    profile: Annotated[
        str | None,
        typer.Option(
            help="Efficiency profile of every case: an id or a YAML file (default: each case's own, "
            "by its hardware and engine columns)."
        ),
    ] = None,
    format: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Predict published measurements and report per-case errors and MAPE.

    Concurrency cases are simulated with the engine of their engine column (--serving closed-form:
    the steady state); rate cases (mode rate) too (--serving closed-form: its open loop). The CSV is
    read as a stream, a row at a time.
    """
    total = genmodel.count_cases(cases)
    with progress_bar("validating") as progress:
        task = progress.add_task("validating", total=total)
        report = genmodel.validate(
            cases,
            options_path=options,
            serving=serving,
            engine=engine,
            on_case=lambda _id: progress.advance(task),
            skip_invalid=skip_invalid,
            profile=profile,
        )
    d = report.to_dict()
    if format is Format.json:
        emit(to_json(d), output)
        return
    if format is Format.csv:
        emit(to_csv(d["cases"], columns=genmodel.ValidationReport.CASE_KEYS), output)
        return
    title = _validation_title(d)
    if summary:
        emit_tables([_validation_summary(d, title)], output)
        return
    t = Table(title=title)
    for col in ("id", "category", "metric", "measured", "predicted", "error %"):
        t.add_column(col, justify="left" if col in ("id", "category", "metric") else "right")
    for c in d["cases"]:
        t.add_row(
            c["id"],
            c["category"],
            c["metric"],
            f"{c['measured']:.4g}",
            f"{c['predicted']:.4g}",
            f"{c['ape']:.1f}",
        )
    emit_tables([t, *_skipped_table(d["skipped"])], output)


def _validation_title(d: Mapping[str, Any]) -> str:
    """The summary line of a validation report (no MAPE when every row was skipped)."""
    skipped = f"({len(d['skipped'])} skipped)"
    if not d["covered"]:
        return f"validation: no case predicted {skipped}"
    inside, nominal = d["interval_coverage"]["inside"], d["interval_coverage"]["nominal"]
    # inside is None when no case has an interval (rate-driven and disaggregated cases have none)
    intervals = "no interval" if inside is None else f"{inside:.0%} inside their {nominal:.0%} interval"
    return (
        f"validation: {d['covered']} cases, MAPE {d['mape']:.1f}%, median "
        f"{d['median_ape']:.1f}%, {d['within_25pct']:.0%} within 25%, {intervals} {skipped}"
    )


def _skipped_table(skipped: list[dict[str, str]]) -> list[Table]:
    """The skipped cases with their reasons (none when no case was skipped)."""
    if not skipped:
        return []
    t = Table(title="skipped cases")
    t.add_column("id")
    t.add_column("reason", overflow="fold")
    for s in skipped:
        t.add_row(s["id"], s["reason"])
    return [t]


def _validation_summary(d: Mapping[str, Any], title: str) -> Table:
    """MAPE per metric, the summary line as the title (--format json has every grouping)."""
    t = Table(title=title)
    for col in ("metric", "cases", "MAPE %"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for name, g in d["by_metric"].items():
        t.add_row(name, f"{g['n']:,}", f"{g['mape']:.1f}")
    return t


@hw_app.command(
    "list",
    epilog=examples(
        "genmodel hw list",
        "# every device, system, memory tier and link as CSV",
        "genmodel hw list --format csv --output hardware.csv",
    ),
)
@friendly
def hw_list(
    format: FormatOpt = Format.table,
    output: OutputOpt = None,
    wide: Annotated[
        bool, typer.Option(help="Every column of every record (the table needs about 230 columns).")
    ] = False,
) -> None:
    """List devices (and their power modes), systems, memory tiers and links, each with its kind.

    The table shows the key figures, with units in the headers (it fits 100 columns); --wide shows
    every field, as JSON and CSV always do.
    """
    devices = [
        genmodel.describe_device(genmodel.load_device(i))
        for i in [*genmodel.list_ids("hardware"), *genmodel.list_ids("power mode")]
    ]
    systems = [genmodel.describe_system(genmodel.load_system(i)) for i in genmodel.list_ids("system")]
    tiers = [
        genmodel.describe_memory_tier(genmodel.load_memory_tier(i)) for i in genmodel.list_ids("memory tier")
    ]
    links = [
        genmodel.describe_link(i, genmodel.load_link(i), genmodel.load_link_yaml(i).kind)
        for i in genmodel.list_ids("link")
    ]
    if format is not Format.table:
        _rows_out([("hardware", devices + systems + tiers + links)], format, output)
        return
    rows = [
        {
            "id": s["id"],
            "device": s["device"],
            "per node": s["devices_per_node"],
            "max devices": s["max_devices"],
            "fabric (GB/s per device per direction, x domain)": " | ".join(
                f"{t['bandwidth_gb_per_s']:g}" + (f" x{t['domain_devices']}" if t["domain_devices"] else "")
                for t in s["fabric"]
            ),
        }
        for s in systems
    ]
    tiers_title = "memory tiers (for --kv-offload, --weight-offload, --expert-offload)"
    if wide:
        sections = [("devices", devices), ("systems", rows), (tiers_title, tiers)]
        _rows_out([*sections, *([("links", links)] if links else [])], format, output)
        return
    tables = [
        key_table("devices and power modes (--wide: every field)", devices, DEVICE_COLUMNS),
        key_table(
            "systems (fabric: GB/s per device per direction at each tier, x the devices it joins)",
            rows,
            SYSTEM_COLUMNS,
        ),
        key_table(tiers_title, tiers, TIER_COLUMNS),
    ]
    if links:
        tables.append(key_table("links", links, LINK_COLUMNS))
    emit_tables(tables, output)


def _hardware_record(hardware: str) -> dict[str, Any]:
    """The record ``hw show`` prints: a memory tier, a link, a device file, a power mode or a system."""
    shows: tuple[Callable[[str], dict[str, Any]], ...] = (
        lambda i: genmodel.describe_memory_tier(genmodel.load_memory_tier(i)),
        lambda i: genmodel.load_link_yaml(i).model_dump(),
    )
    for show in shows:
        try:
            return show(hardware)
        except genmodel.UnknownEntryError:
            pass
    try:
        return genmodel.load_device_yaml(hardware).model_dump()
    except genmodel.UnknownEntryError:
        hw = genmodel.load_hardware(hardware)
        if hw.id == hw.device.id:  # a power mode: the device as loaded
            return genmodel.describe_device(hw.device)
        return genmodel.describe_system(hw)


@hw_app.command(
    "show",
    epilog=examples(
        "genmodel hw show h100-sxm",
        "# a system's fabric tiers as a two-column table",
        "genmodel hw show cloudmatrix384 --format table",
    ),
)
@friendly
def hw_show(
    hardware: Annotated[
        str,
        typer.Argument(
            help="Device, power mode, system, memory tier or link id.", autocompletion=complete_hardware
        ),
    ],
    format: FormatOpt = Format.json,
    output: OutputOpt = None,
) -> None:
    """Show one device's, system's, memory tier's or link's figures and sources (JSON by default)."""
    _record_out(_hardware_record(hardware), format, output)


@models_app.command(
    "list",
    epilog=examples("genmodel models list", "genmodel models list --format json --output models.json"),
)
@friendly
def models_list(format: FormatOpt = Format.table, output: OutputOpt = None) -> None:
    """List the model ids with their size and attention kind."""
    rows = [genmodel.describe_model(genmodel.load_model(i)) for i in genmodel.list_ids("model")]
    _rows_out([("models", rows)], format, output)


@models_app.command(
    "show",
    epilog=examples("genmodel models show deepseek-v3", "genmodel models show qwen3-32b --format table"),
)
@friendly
def models_show(
    model: Annotated[
        str, typer.Argument(help="Model id, alias or config.json path.", autocompletion=complete_models)
    ],
    format: FormatOpt = Format.json,
    output: OutputOpt = None,
) -> None:
    """Show one model's architecture and parameter counts (JSON by default)."""
    _record_out(genmodel.describe_model(genmodel.load_model(model), full=True), format, output)


@models_app.command(
    "import",
    epilog=examples(
        "# a HuggingFace config.json as a workloads/models YAML file",
        "genmodel models import config.json --id my-model --output my-model.yaml",
    ),
)
@friendly
def models_import(
    config: Annotated[Path, typer.Argument(help="A HuggingFace config.json (or its folder).")],
    model_id: Annotated[str | None, typer.Option("--id", help="Id for the model.")] = None,
    output: OutputOpt = None,
) -> None:
    """Read a HuggingFace config.json; print (or write) it as a workloads/models YAML file."""
    emit(genmodel.hf_config_to_yaml(config, model_id=model_id), output)


def _rows_out(sections: list[tuple[str, list[dict[str, Any]]]], format: Format, output: Path | None) -> None:
    """Rows as one JSON list or CSV, or one table per (title, rows) section."""
    if format is Format.json:
        emit(to_json([r for _, rows in sections for r in rows]), output)
        return
    if format is Format.csv:
        emit(to_csv([r for _, rows in sections for r in rows]), output)
        return
    tables = []
    for title, rows in sections:
        flat = [flatten(r) for r in rows]
        keys: list[str] = []
        for f in flat:
            keys.extend(k for k in f if k not in keys)
        t = Table(title=title)
        for k in keys:
            t.add_column(k.removeprefix("dense_tflops."), no_wrap=k == "id")
        for f in flat:
            t.add_row(*(escape(cell(f.get(k))) for k in keys))
        tables.append(t)
    emit_tables(tables, output)


def _record_out(record: dict[str, Any], format: Format, output: Path | None) -> None:
    """One record as JSON, a one-row CSV (flattened keys), or a field/value table."""
    if format is Format.json:
        emit(to_json(record), output)
    elif format is Format.csv:
        flat = {
            k: json.dumps(v, default=str) if isinstance(v, list | tuple) else v
            for k, v in flatten(record).items()
        }
        emit(to_csv([flat]), output)
    else:
        t = Table(title=str(record.get("id", "")), show_header=True)
        t.add_column("field", no_wrap=True)
        t.add_column("value")
        for k, v in flatten(record).items():
            if isinstance(v, list) and v and all(isinstance(item, dict) for item in v):
                for i, item in enumerate(v):  # a list of records (a system's fabric tiers): one row per field
                    for kk, vv in flatten(item).items():
                        t.add_row(f"{k}[{i}].{kk}", escape(cell(vv)))
            else:
                t.add_row(k, escape(cell(v)))
        emit_tables([t], output)


#: the commands each defined in a module of its own (``register(app)``), by name: a module is
#: imported only when its command runs or the whole :data:`app` is asked for (``--help``)
COMMAND_MODULES: Mapping[str, str] = {
    "sweep": "_sweep",
    "requirements": "_requirements",
    "plan": "_plan",
    "compare": "_plan",
    "simulate": "_simulate",
    "calibrate": "_calibrate",
    "dashboard": "_dashboard",
}
#: every command, those of :data:`COMMAND_MODULES` after :data:`base_app`'s (made on first use)
app: typer.Typer


def _reflowed(doc: str) -> str:
    """A command's docstring as its help: each paragraph one line (rich wraps it at the terminal's
    width; typer keeps a docstring's line breaks, so a paragraph wrapped at 100 columns came out
    ragged at 80), the paragraphs apart; one starting with ``\b`` kept as written."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


def _reflow_help(commands: Iterable[CommandInfo]) -> None:
    """Give each of ``commands`` without a help of its own its docstring, reflowed (:func:`_reflowed`)."""
    for command in commands:
        if command.help is None and command.callback is not None and command.callback.__doc__:
            command.help = _reflowed(command.callback.__doc__)


def _with_modules(modules: Iterable[str]) -> typer.Typer:
    """:data:`base_app` (left as it is) with the commands of ``modules`` after its own."""
    full = copy.copy(base_app)
    full.registered_commands = list(base_app.registered_commands)
    full.registered_groups = list(base_app.registered_groups)
    for module in modules:
        importlib.import_module(f"{__package__}.{module}").register(full)
    _reflow_help(full.registered_commands)
    for group in full.registered_groups:
        if group.typer_instance is not None:
            _reflow_help(group.typer_instance.registered_commands)
    return full


def _full_app() -> typer.Typer:
    """:data:`app`, made once."""
    full = globals().get("app")
    if full is None:
        globals()["app"] = full = _with_modules(dict.fromkeys(COMMAND_MODULES.values()))
    return full


def __getattr__(name: str) -> Any:
    if name == "app":
        return _full_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _command_name(command: CommandInfo) -> str:
    """The name a command is run by, as typer gives it (``hw_list`` registered as ``list``: ``list``)."""
    return command.name or get_command_name(getattr(command.callback, "__name__", ""))


def command_app(argv: Sequence[str]) -> typer.Typer:
    """The app to run ``argv`` with: only the command it names, where it names one (typer reads
    the signature of every command it holds before it runs one, and a command's own module is
    imported only for it), else :data:`app` (``--help``, ``--version``, a misspelt command, shell
    completion). The output is the same either way."""
    name = argv[1] if len(argv) > 1 else ""
    module = COMMAND_MODULES.get(name)
    one = _with_modules([module] if module else [])
    one.registered_commands = [c for c in one.registered_commands if _command_name(c) == name]
    one.registered_groups = [g for g in one.registered_groups if g.name == name]
    if not one.registered_commands and not one.registered_groups:
        return _full_app()
    return one


def main() -> None:
    """Entry point of the ``genmodel`` command.

    A usage error (an unknown option or command, a value click cannot parse, a missing option) is
    one red line and exit code 2, as every other bad input is (click's own box took five lines).
    A character the terminal's encoding lacks (an interval's en dash on an ASCII or cp437 console)
    is printed as '?', not a UnicodeEncodeError.
    """
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")
    try:
        code = command_app(sys.argv)(standalone_mode=False)
    except NoArgsIsHelpError:  # bare `genmodel`: the help, as typer shows it (nothing ran)
        command_app(sys.argv)()
    except UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "genmodel"
        message = " ".join(exc.format_message().replace("Value error, ", "").split())  # (typer's prefix)
        err.print(f"[red]error:[/red] {escape(message)} ({where} --help)", markup=True)
        sys.exit(EXIT_BAD_INPUT)
    except ClickException as exc:  # pragma: no cover - click's file errors; none of ours
        err.print(f"[red]error:[/red] {escape(exc.format_message())}", markup=True)
        sys.exit(exc.exit_code)
    except Abort:
        err.print("Aborted!", markup=False)
        sys.exit(1)
    except genmodel.GenModelError as exc:  # pragma: no cover - commands catch their own
        err.print(f"[red]error:[/red] {escape(str(exc))}", markup=True)
        sys.exit(EXIT_BAD_INPUT)
    sys.exit(code if isinstance(code, int) else 0)
