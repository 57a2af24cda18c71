"""genmodel CLI: parse -> call the public API -> render. No formulas here.

Exit codes: 0 success; 2 bad input (unknown id, malformed file or argument, infeasible plan),
printed as one red line without a traceback; 1 an unexpected internal error.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

import genmodel
from genmodel.report import flatten, format_bytes, format_seconds, to_csv, to_json

app = typer.Typer(
    help="Analytical model of LLM inference on hardware platforms: latency, throughput, memory.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
hw_app = typer.Typer(help="The hardware database (hardware_db/).", no_args_is_help=True)
models_app = typer.Typer(help="Model architectures (workloads/models/).", no_args_is_help=True)
app.add_typer(hw_app, name="hw")
app.add_typer(models_app, name="models")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def _friendly(fn: F) -> F:
    """Turn a GenModelError into one red line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except genmodel.GenModelError as exc:
            err.print(f"[red]error:[/red] {exc}", markup=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _emit(text: str, output: Path | None) -> None:
    """Print ``text``, or write it whole to ``output`` (via a temporary file: never half-written)."""
    if output is None:
        out.print(text, markup=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    os.replace(tmp, output)
    err.print(f"wrote {output}")


def _batch(value: str | None) -> int | str | None:
    if value is None or value == "max":
        return value
    try:
        return int(value)
    except ValueError:
        raise genmodel.SpecError(f"batch={value!r} must be an integer >= 1 or 'max'") from None


OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write to FILE instead of stdout.")]
ModelOpt = Annotated[str, typer.Option(help="Model id or alias, or a HF config.json path.")]
HardwareOpt = Annotated[
    str, typer.Option(help="Device or system id or alias (genmodel hw list); a device implies its system.")
]
InputOpt = Annotated[int, typer.Option(help="Prompt tokens per request.")]
OutputTokensOpt = Annotated[int, typer.Option(help="Generated tokens per request.")]
TpOpt = Annotated[int, typer.Option(help="Tensor-parallel degree.")]
PpOpt = Annotated[int, typer.Option(help="Pipeline-parallel degree.")]
EpOpt = Annotated[int, typer.Option(help="Expert-parallel degree (divides tp*dp).")]
DpOpt = Annotated[int, typer.Option(help="Data-parallel degree (attention-DP for MoE models).")]
CpOpt = Annotated[int, typer.Option(help="Context-parallel degree (ring attention).")]
WeightDtypeOpt = Annotated[str, typer.Option(help="fp32|bf16|fp16|fp8|int8|fp4|int4")]
ActDtypeOpt = Annotated[str | None, typer.Option(help="Activation dtype (default: as weights).")]
KvDtypeOpt = Annotated[str | None, typer.Option(help="KV-cache dtype (default: bf16).")]
KvBlockOpt = Annotated[
    int, typer.Option("--kv-block", help="Tokens per paged KV block (vLLM: 16; 1 = no block waste).")
]
PrefixHitOpt = Annotated[
    float, typer.Option("--prefix-hit", help="Fraction of each prompt found in the prefix cache [0, 1).")
]
SparseOpt = Annotated[
    float,
    typer.Option("--sparse-attention", help="Fraction of the cached KV a decode step reads (top-k/Quest)."),
]
ChunkOpt = Annotated[
    int | None, typer.Option("--prefill-chunk", help="Chunked prefill: tokens per chunk (default: one pass).")
]
_TIER_HELP = (
    "Memory tier id (genmodel hw list), ID:N for N per node, or 'host', that takes the {} that do not fit."
)
KvOffloadOpt = Annotated[str | None, typer.Option("--kv-offload", help=_TIER_HELP.format("KV cache bytes"))]
WeightOffloadOpt = Annotated[str | None, typer.Option("--weight-offload", help=_TIER_HELP.format("weights"))]
ExpertOffloadOpt = Annotated[
    str | None, typer.Option("--expert-offload", help=_TIER_HELP.format("MoE experts"))
]
KvWindowOpt = Annotated[
    int | None,
    typer.Option("--kv-window", help="Keep only each sequence's last N tokens of KV on the device."),
]
ExpertHitOpt = Annotated[
    float | None,
    typer.Option("--expert-hit-rate", help="Touched experts found on the device (default: share kept)."),
]
OffloadOverlapOpt = Annotated[
    bool,
    typer.Option("--offload-overlap/--no-offload-overlap", help="Prefetch offloaded bytes behind compute."),
]


@app.command()
@_friendly
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
    batch: Annotated[str | None, typer.Option(help="Static batch (whole deployment) or 'max'.")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Closed-loop clients (serving mode).")] = None,
    weight_dtype: WeightDtypeOpt = "bf16",
    act_dtype: ActDtypeOpt = None,
    kv_dtype: KvDtypeOpt = None,
    overlap: Annotated[
        float | None,
        typer.Option(help="Fraction of communication hidden behind compute (default: system's)."),
    ] = None,
    microbatches: Annotated[
        int, typer.Option(help="Overlapping microbatches per pass (2 = two-batch overlap).")
    ] = 1,
    redundant_experts: Annotated[int, typer.Option(help="Extra expert replicas (EPLB).")] = 0,
    moe_imbalance: Annotated[
        float | None, typer.Option(help="Busiest/mean expert load (default: uniform-routing estimate).")
    ] = None,
    draft_tokens: Annotated[int, typer.Option(help="Speculative tokens per step (0 = off; MTP).")] = 0,
    acceptance: Annotated[
        float, typer.Option(help="Acceptance rate per drafted token (0.7: CloudMatrix-Infer with MTP).")
    ] = 0.7,
    draft_model: Annotated[
        str | None, typer.Option(help="Draft model id (default: the model's MTP block).")
    ] = None,
    disaggregated: Annotated[
        bool, typer.Option(help="Prefill and decode on separate devices (adds the KV transfer).")
    ] = False,
    allreduce: Annotated[str, typer.Option(help="All-reduce algorithm: ring|tree|direct|auto.")] = "ring",
    kv_block: KvBlockOpt = genmodel.KV_BLOCK_TOKENS,
    prefix_hit: PrefixHitOpt = 0.0,
    sparse_attention: SparseOpt = 1.0,
    prefill_chunk: ChunkOpt = None,
    kv_offload: KvOffloadOpt = None,
    weight_offload: WeightOffloadOpt = None,
    expert_offload: ExpertOffloadOpt = None,
    kv_window: KvWindowOpt = None,
    expert_hit_rate: ExpertHitOpt = None,
    offload_overlap: OffloadOverlapOpt = True,
    ideal: Annotated[bool, typer.Option(help="Pure roofline: every efficiency 1.")] = False,
    ops: Annotated[bool, typer.Option(help="Also show the per-operator breakdown (table).")] = False,
    format: Annotated[Format, typer.Option(help="Output format.")] = Format.table,
    output: OutputOpt = None,
) -> None:
    """Estimate TTFT, TPOT, throughput and memory of a model on hardware under a plan.

    Example: genmodel estimate --model llama-3.1-70b --hardware h100-sxm --tp 2 --batch max
    --input-tokens 1000 --output-tokens 1000 --weight-dtype fp8 --act-dtype fp8 --kv-dtype fp8

    DeepSeek-V3 decode with attention-DP and 72-way EP over 9 DGX H100 nodes:
    genmodel estimate --model deepseek-v3 --hardware dgx-h100 --dp 72 --ep 72 --batch 18432
    --input-tokens 2000 --output-tokens 64 --weight-dtype fp8 --act-dtype fp8

    Llama-3.1-70B at 128K with the KV that does not fit in four CXL expanders per node:
    genmodel estimate --model llama-3.1-70b --hardware h100-sxm --tp 8 --batch 16
    --input-tokens 127000 --output-tokens 1000 --kv-offload cxl-samsung-cmm-d-128gb:4
    """
    est = genmodel.estimate(
        model,
        hardware,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        batch=_batch(batch),
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
        comm_overlap_frac=overlap,
        overlap_microbatches=microbatches,
        redundant_experts=redundant_experts,
        moe_imbalance=moe_imbalance,
        draft_tokens=draft_tokens,
        acceptance_rate=acceptance,
        draft_model=draft_model,
        disaggregated=disaggregated,
        allreduce_algorithm=allreduce,
        ideal=ideal,
        kv_block_tokens=kv_block,
        prefix_hit_rate=prefix_hit,
        sparse_attention_frac=sparse_attention,
        prefill_chunk=prefill_chunk,
        kv_offload=kv_offload,
        weight_offload=weight_offload,
        expert_offload=expert_offload,
        kv_window=kv_window,
        expert_hit_rate=expert_hit_rate,
        offload_overlap=offload_overlap,
    )
    if format is Format.json:
        _emit(to_json(est.to_dict()), output)
    elif format is Format.csv:
        _emit(to_csv([est.to_dict()]), output)
    else:
        _emit_tables([_estimate_table(est), *([_ops_table(est)] if ops else [])], output)
    _warn_unless_fits(est.batch, est.memory)


def _warn_unless_fits(batch: int, memory: genmodel.MemoryUse) -> None:
    for tier in memory.tiers or ():
        if not tier.fits:
            err.print(
                f"[yellow]warning:[/yellow] batch={batch} needs {format_bytes(tier.bytes)} per device "
                f"in {tier.id}, more than its {format_bytes(tier.capacity_bytes)} (usable share)",
                markup=True,
            )


def _contexts(value: str | None) -> tuple[int, ...]:
    if not value:
        return ()
    try:
        contexts = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise genmodel.SpecError(f"contexts={value!r} must be comma-separated integers") from None
    if any(c < 2 for c in contexts):
        raise genmodel.SpecError(f"contexts={value!r}: every context must be >= 2 tokens")
    return contexts


@app.command()
@_friendly
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
    kv_block: KvBlockOpt = genmodel.KV_BLOCK_TOKENS,
    prefix_hit: PrefixHitOpt = 0.0,
    kv_offload: KvOffloadOpt = None,
    weight_offload: WeightOffloadOpt = None,
    expert_offload: ExpertOffloadOpt = None,
    kv_window: KvWindowOpt = None,
    format: Annotated[Format, typer.Option(help="Output format.")] = Format.table,
    output: OutputOpt = None,
) -> None:
    """Show where every byte lives, per memory tier, and how many users fit per context.

    Example: genmodel memory --model llama-3.1-70b --hardware h100-sxm --tp 8 --input-tokens 127000
    --output-tokens 1000 --kv-offload cxl-samsung-cmm-d-128gb:4 --contexts 8192,32768,131072
    """
    r = genmodel.memory_report(
        model,
        hardware,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        batch=_batch(batch),
        contexts=_contexts(contexts),
        tp=tp,
        pp=pp,
        ep=ep,
        dp=dp,
        cp=cp,
        weight_dtype=weight_dtype,
        act_dtype=act_dtype,
        kv_dtype=kv_dtype,
        kv_block_tokens=kv_block,
        prefix_hit_rate=prefix_hit,
        kv_offload=kv_offload,
        weight_offload=weight_offload,
        expert_offload=expert_offload,
        kv_window=kv_window,
    )
    if format is Format.json:
        _emit(to_json(r), output)
        return
    if format is Format.csv:
        _emit(to_csv(r["tiers"]), output)
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
    _emit_tables(tables, output)


def _emit_tables(tables: list[Table], output: Path | None) -> None:
    if output is None:
        for t in tables:
            out.print(t)
        return
    with open(os.devnull, "w") as sink:
        console = Console(record=True, width=120, file=sink)
        for t in tables:
            console.print(t)
        text = console.export_text()
    _emit(text, output)


def _estimate_table(est: genmodel.Estimate) -> Table:
    d = est.to_dict()
    plan = est.plan
    degrees = " ".join(
        f"{k}={v}"
        for k, v in (("tp", plan.tp), ("pp", plan.pp), ("dp", plan.dp), ("ep", plan.ep), ("cp", plan.cp))
        if v > 1 or k == "tp"
    )
    t = Table(
        title=f"{est.model_id} on {est.num_devices}x {est.hardware_id} ({d['system']}; {degrees}, "
        f"{est.precision.weight_dtype} weights, batch {est.batch}, {est.input_tokens} in / "
        f"{est.output_tokens} out)"
    )
    t.add_column("metric")
    t.add_column("value", justify="right")
    rows = [
        ("TTFT (prefill of the batch)", format_seconds(est.ttft_s)),
        ("TPOT (mean decode step)", format_seconds(est.tpot_s)),
        ("end-to-end latency", format_seconds(est.e2e_s)),
        ("output tokens/s (deployment)", f"{est.output_tokens_per_s:,.1f}"),
        ("output tokens/s per device", f"{est.output_tokens_per_s_per_device:,.1f}"),
        ("prefill tokens/s per device", f"{est.prefill_tokens_per_s_per_device:,.1f}"),
        ("decode tokens/s per device", f"{est.decode_tokens_per_s_per_device:,.1f}"),
    ]
    for phase in ("prefill", "decode"):
        p = d[phase]
        rows.append(
            (
                f"{phase}: bound / compute / memory / comm",
                f"{p['bound']} / {format_seconds(p['compute_s'])} / "
                f"{format_seconds(p['memory_s'])} / {format_seconds(p['comm_s'])}",
            )
        )
        if p["dominant_collective"] is not None:
            total = sum(p["comm_breakdown"].values())
            rows.append(
                (
                    f"{phase}: collectives (dominant; hidden by overlap)",
                    f"{format_seconds(total)} ({p['dominant_collective']}; "
                    f"{format_seconds(p['comm_hidden_s'])} hidden)",
                )
            )
        if p["offload_s"] + p["offload_hidden_s"] > 0:
            rows.append(
                (
                    f"{phase}: offload transfers (exposed; hidden)",
                    f"{format_seconds(p['offload_s'])}; {format_seconds(p['offload_hidden_s'])}",
                )
            )
    if d["prefill_chunk"] is not None or d["prefix_hit_rate"]:
        rows.append(("decode stall per new request's prefill", format_seconds(d["decode_stall_s"])))
    if d["speculation"] is not None:
        rows.append(("speculative tokens per step", f"{d['speculation']['tokens_per_step']:.2f}"))
    if d["kv_transfer_s"] is not None:
        rows.append(
            (
                "KV transfer to decode (exposed)",
                f"{format_seconds(d['kv_transfer_s'])} ({format_seconds(d['kv_transfer_exposed_s'])})",
            )
        )
    m = d["memory"]
    rows += [
        ("weights per device", format_bytes(m["weights_bytes_per_device"])),
        ("KV cache per device", format_bytes(m["kv_cache_bytes_per_device"])),
        ("activations per device", format_bytes(m["activation_bytes_per_device"])),
        (
            "on device / usable per device",
            f"{format_bytes(m['device_bytes_per_device'])} / "
            f"{format_bytes(m['usable_bytes_per_device'])} ({'fits' if m['fits'] else 'DOES NOT FIT'})",
        ),
    ]
    for tier in m["tiers"][1:]:
        rows.append(
            (
                f"offloaded to {tier['id']} / its share",
                f"{format_bytes(tier['bytes_per_device'])} / "
                f"{format_bytes(tier['capacity_bytes_per_device'])}",
            )
        )
    if est.usd_per_million_output_tokens is not None:
        rows.append(("USD per million output tokens", f"{est.usd_per_million_output_tokens:.3f}"))
    if est.joules_per_output_token is not None:
        rows.append(("joules per output token (at TDP)", f"{est.joules_per_output_token:.3f}"))
    for name, value in rows:
        t.add_row(name, value)
    return t


def _ops_table(est: genmodel.Estimate) -> Table:
    t = Table(title="per-operator time per device (decode step | prefill)")
    for col in (
        "operator",
        "decode",
        "decode bound",
        "prefill",
        "prefill bound",
        "AI (FLOP/B, decode)",
    ):
        t.add_column(col, justify="left" if col == "operator" else "right")
    for dec, pre in zip(est.decode.ops, est.prefill.ops, strict=True):
        t.add_row(
            dec.op.name,
            format_seconds(float(dec.time_s)),
            "compute" if dec.compute_s >= dec.memory_s else "memory",
            format_seconds(float(pre.time_s)),
            "compute" if pre.compute_s >= pre.memory_s else "memory",
            f"{float(dec.arithmetic_intensity):.1f}",
        )
    return t


@app.command()
@_friendly
def validate(
    cases: Annotated[
        Path | None, typer.Argument(help="CSV of cases (default: bundled public cases).")
    ] = None,
    options: Annotated[
        Path | None,
        typer.Option(help="CSV of run options per case id (default: the bundled ones for the public cases)."),
    ] = None,
    format: Annotated[Format, typer.Option(help="Output format.")] = Format.table,
    output: OutputOpt = None,
) -> None:
    """Predict published measurements and report per-case errors and MAPE."""
    from rich.progress import Progress

    total = len(genmodel.read_cases(cases or genmodel.public_cases_path()))
    with Progress(console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("validating", total=total)
        report = genmodel.validate(cases, options_path=options, on_case=lambda _id: progress.advance(task))
    d = report.to_dict()
    if format is Format.json:
        _emit(to_json(d), output)
        return
    if format is Format.csv:
        _emit(to_csv(d["cases"]), output)
        return
    t = Table(
        title=f"validation: {d['covered']} cases, MAPE {d['mape']:.1f}%, median "
        f"{d['median_ape']:.1f}%, {d['within_25pct']:.0%} within 25% ({len(d['skipped'])} skipped)"
    )
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
    _emit_tables([t], output)


@hw_app.command("list")
@_friendly
def hw_list(format: Annotated[Format, typer.Option(help="Output format.")] = Format.table) -> None:
    """List devices (and their power modes), systems, memory tiers and links, each with its kind."""
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
        _list_out(devices + systems + tiers + links, format, "hardware")
        return
    _list_out(devices, format, "devices")
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
    _list_out(rows, format, "systems")
    _list_out(tiers, format, "memory tiers (for --kv-offload, --weight-offload, --expert-offload)")
    if links:
        _list_out(links, format, "links")


@hw_app.command("show")
@_friendly
def hw_show(
    hardware: Annotated[str, typer.Argument(help="Device, power mode, system, memory tier or link id.")],
) -> None:
    """Show one device's, system's, memory tier's or link's figures and sources."""
    for show in (
        lambda i: genmodel.describe_memory_tier(genmodel.load_memory_tier(i)),
        lambda i: genmodel.load_link_yaml(i).model_dump(),
    ):
        try:
            out.print(to_json(show(hardware)), markup=False)
            return
        except genmodel.UnknownEntryError:
            pass
    try:
        out.print(to_json(genmodel.load_device_yaml(hardware).model_dump()), markup=False)
    except genmodel.UnknownEntryError:
        hw = genmodel.load_hardware(hardware)
        if hw.id == hw.device.id:  # a power mode: the device as loaded
            out.print(to_json(genmodel.describe_device(hw.device)), markup=False)
        else:
            out.print(to_json(genmodel.describe_system(hw)), markup=False)


@models_app.command("list")
@_friendly
def models_list(
    format: Annotated[Format, typer.Option(help="Output format.")] = Format.table,
) -> None:
    """List the model ids with their size and attention kind."""
    rows = [genmodel.describe_model(genmodel.load_model(i)) for i in genmodel.list_ids("model")]
    _list_out(rows, format, "models")


@models_app.command("show")
@_friendly
def models_show(
    model: Annotated[str, typer.Argument(help="Model id, alias or config.json path.")],
) -> None:
    """Show one model's architecture and parameter counts."""
    out.print(to_json(genmodel.describe_model(genmodel.load_model(model), full=True)), markup=False)


@models_app.command("import")
@_friendly
def models_import(
    config: Annotated[Path, typer.Argument(help="A HuggingFace config.json (or its folder).")],
    model_id: Annotated[str | None, typer.Option("--id", help="Id for the model.")] = None,
    output: OutputOpt = None,
) -> None:
    """Read a HuggingFace config.json; print (or write) it as a workloads/models YAML file."""
    path = config / "config.json" if config.is_dir() else config
    _emit(genmodel.hf_config_to_yaml(path, model_id=model_id), output)


def _list_out(rows: list[dict[str, Any]], format: Format, title: str) -> None:
    if format is Format.json:
        out.print(to_json(rows), markup=False)
    elif format is Format.csv:
        out.print(to_csv(rows), markup=False, end="")
    else:
        flat = [flatten(r) for r in rows]
        keys: list[str] = []
        for f in flat:
            keys.extend(k for k in f if k not in keys)
        t = Table(title=title)
        for k in keys:
            t.add_column(k.removeprefix("dense_tflops."), no_wrap=k == "id")
        for f in flat:
            t.add_row(
                *(
                    "-" if f.get(k) is None else f"{f[k]:.4g}" if isinstance(f[k], float) else str(f[k])
                    for k in keys
                )
            )
        out.print(t)


from . import _sweep as _sweep_cmd  # noqa: E402

_sweep_cmd.register(app)


from . import _requirements as _requirements_cmd  # noqa: E402

_requirements_cmd.register(app)


from . import _plan as _plan_cmd  # noqa: E402

_plan_cmd.register(app)


def main() -> None:
    """Entry point of the ``genmodel`` command."""
    try:
        app()
    except genmodel.GenModelError as exc:  # pragma: no cover - commands catch their own
        err.print(f"[red]error:[/red] {exc}", markup=True)
        sys.exit(2)
