"""``genmodel simulate``: an engine's scheduler serving a load, step by step (latency percentiles).

Parse -> :func:`genmodel.simulate` -> render. No formulas here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

import genmodel
from genmodel.report import format_bytes, format_seconds, to_csv, to_json

from ._options import (
    NO_RUN_OPTIONS,
    ActDtypeOpt,
    AdmissionOpt,
    DpOpt,
    EngineOpt,
    EpOpt,
    Format,
    FormatOpt,
    HardwareOpt,
    KvDtypeOpt,
    MaxBatchedTokensOpt,
    MaxNumSeqsOpt,
    ModelOpt,
    OutputOpt,
    OverlapSchedulerOpt,
    PpOpt,
    ProfileOpt,
    TpOpt,
    WarmupReplayOpt,
    WarmupRestartOpt,
    WeightDtypeOpt,
    emit,
    emit_tables,
    examples,
    friendly,
    output_path,
    parse_seconds,
    profile_option,
    with_run_options,
    write_text,
)

_LATENCIES = ("ttft_s", "tpot_s", "itl_s", "e2e_s")


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command to ``app``."""
    app.command(
        epilog=examples(
            "# 64 clients started together against vLLM's defaults on one H200",
            "genmodel simulate --model llama-3.1-8b --hardware h200-sxm \\\n"
            "    --concurrency 64 --input-tokens 1000 --output-tokens 200 \\\n"
            "    --weight-dtype fp8",
            "# Poisson arrivals at 5 requests/s against SGLang, as JSON",
            "genmodel simulate --model llama-3.1-70b --hardware h100-sxm --tp 4 \\\n"
            "    --request-rate 5 --requests 200 --input-tokens 2000 --output-tokens 300 \\\n"
            "    --engine sglang --weight-dtype fp8 --format json",
        )
    )(simulate)


@friendly
@with_run_options("keep_modules")
def simulate(
    model: ModelOpt,
    hardware: HardwareOpt,
    input_tokens: Annotated[
        int | None, typer.Option(help="Prompt tokens per request (not with --trace).")
    ] = None,
    output_tokens: Annotated[
        int | None, typer.Option(help="Generated tokens per request (not with --trace).")
    ] = None,
    tp: TpOpt = 1,
    pp: PpOpt = 1,
    ep: EpOpt = 1,
    dp: DpOpt = 1,
    devices: Annotated[int | None, typer.Option(help="Total devices (= tp*pp*dp).")] = None,
    weight_dtype: WeightDtypeOpt = "bf16",
    act_dtype: ActDtypeOpt = None,
    kv_dtype: KvDtypeOpt = None,
    concurrency: Annotated[int | None, typer.Option(help="Closed-loop clients, started together.")] = None,
    requests_per_client: Annotated[
        int | None,
        typer.Option(help="With --concurrency: requests per client, warm-up included (default 12)."),
    ] = None,
    request_rate: Annotated[float | None, typer.Option(help="Poisson arrivals, requests per second.")] = None,
    requests: Annotated[
        int | None, typer.Option(help="Total requests (default 500 with --request-rate).")
    ] = None,
    burstiness_cv: Annotated[
        float | None,
        typer.Option(
            help="With --request-rate: gamma arrivals whose gaps have this coefficient of variation "
            "(1 = Poisson, above 1 = bursty).",
            show_default=False,
        ),
    ] = None,
    input_spread: Annotated[
        float,
        typer.Option(
            help="Prompt lengths drawn uniformly within +-this fraction of --input-tokens (0: fixed)."
        ),
    ] = 0.0,
    output_spread: Annotated[
        float,
        typer.Option(
            help="Output lengths drawn uniformly within +-this fraction of --output-tokens (0: fixed)."
        ),
    ] = 0.0,
    trace: Annotated[
        Path | None, typer.Option(help="CSV trace: arrival_s,input_tokens,output_tokens.")
    ] = None,
    warmup: Annotated[
        int | None,
        typer.Option(
            help="With --concurrency: each client's first requests, left out of the figures (default 2).",
            show_default=False,
        ),
    ] = None,
    warmup_restart: WarmupRestartOpt = True,
    warmup_replay: WarmupReplayOpt = True,
    engine: EngineOpt = "vllm",
    max_num_seqs: MaxNumSeqsOpt = None,
    max_batched_tokens: MaxBatchedTokensOpt = None,
    admission: AdmissionOpt = None,
    overlap_scheduler: OverlapSchedulerOpt = None,
    preemption: Annotated[
        str | None, typer.Option(help="Override: recompute | swap (KV to the offload tier and back).")
    ] = None,
    swap_tier: Annotated[
        str | None, typer.Option(help="Offload tier of --preemption swap: tier id, ID:N or host (default).")
    ] = None,
    prefix_caching: Annotated[
        bool | None,
        typer.Option(
            help="Override: the prefix cache (repeated prompts reuse their KV; a preempted sequence's "
            "blocks stay cached until evicted). On in the vLLM and SGLang presets."
        ),
    ] = None,
    release_after_launch: Annotated[
        bool | None,
        typer.Option(
            help="Override: with the overlap scheduler, a step's tokens leave only once the next step "
            "is launched (its host launch time later when it holds a prompt). On in the SGLang and "
            "TensorRT-LLM presets."
        ),
    ] = None,
    reply_latency: Annotated[
        str | None,
        typer.Option(
            metavar="TIME",
            help="Override: a closed-loop client's reply, from a response's last token to its next "
            "request reaching the scheduler, with its unit (5ms); it is in every TTFT and e2e too. "
            "0s in every preset.",
            show_default=False,
        ),
    ] = None,
    disaggregated: Annotated[
        bool, typer.Option(help="A prefill pool and a decode pool, KV moved between them over the fabric.")
    ] = False,
    prefill_tp: Annotated[int | None, typer.Option(help="Disaggregated: TP of each prefill worker.")] = None,
    prefill_ep: Annotated[int | None, typer.Option(help="Disaggregated: EP of each prefill worker.")] = None,
    prefill_dp: Annotated[int | None, typer.Option(help="Disaggregated: DP of each prefill worker.")] = None,
    prefill_workers: Annotated[int | None, typer.Option(help="Disaggregated: prefill workers.")] = None,
    prefill_max_batch: Annotated[
        int | None, typer.Option(help="Disaggregated: running sequences per prefill replica.")
    ] = None,
    decode_tp: Annotated[int | None, typer.Option(help="Disaggregated: TP of each decode worker.")] = None,
    decode_ep: Annotated[int | None, typer.Option(help="Disaggregated: EP of each decode worker.")] = None,
    decode_dp: Annotated[int | None, typer.Option(help="Disaggregated: DP of each decode worker.")] = None,
    decode_workers: Annotated[int | None, typer.Option(help="Disaggregated: decode workers.")] = None,
    decode_max_batch: Annotated[
        int | None, typer.Option(help="Disaggregated: running sequences per decode replica.")
    ] = None,
    routing: Annotated[
        str | None, typer.Option(help="Disaggregated: least-loaded (default) | round-robin.")
    ] = None,
    first_token: Annotated[
        str | None, typer.Option(help="Disaggregated: decode (default, as clients see it) | prefill.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of random lengths and arrivals.")] = 0,
    records: Annotated[
        Path | None,
        typer.Option(
            help="Write per-request records to this CSV file (-: stdout, with --output FILE).",
            parser=output_path,
        ),
    ] = None,
    profile: ProfileOpt = None,
    allow_long_context: Annotated[
        bool,
        typer.Option(
            help="Allow input + output beyond the model's maximum context (RoPE scaling is not modelled)."
        ),
    ] = False,
    format: FormatOpt = Format.table,
    output: OutputOpt = None,
    run_options: Mapping[str, Any] = NO_RUN_OPTIONS,
) -> None:
    """Simulate a serving engine's scheduler under load: TTFT, TPOT, ITL and e2e percentiles.

    Each step costs genmodel's formulas for exactly that batch. JSON keys are in SI units.
    """
    result = genmodel.simulate(
        model,
        hardware,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        tp=tp,
        pp=pp,
        ep=ep,
        dp=dp,
        devices=devices,
        weight_dtype=weight_dtype,
        act_dtype=act_dtype,
        kv_dtype=kv_dtype,
        concurrency=concurrency,
        requests_per_client=requests_per_client,
        request_rate=request_rate,
        requests=requests,
        burstiness_cv=burstiness_cv,
        input_spread=input_spread,
        output_spread=output_spread,
        trace=None if trace is None else str(trace),
        warmup_requests=warmup,
        warmup_restart=warmup_restart,
        warmup_replay=warmup_replay,
        engine=engine,
        max_num_seqs=max_num_seqs,
        max_batched_tokens=max_batched_tokens,
        admission=admission,
        overlap_scheduler=overlap_scheduler,
        preemption=preemption,
        swap_tier=swap_tier,
        prefix_caching=prefix_caching,
        release_after_launch=release_after_launch,
        reply_latency_s=parse_seconds("reply_latency", reply_latency, zero=True),
        seed=seed,
        records=records is not None,
        **_disaggregated(locals()),
        **profile_option(profile),
        **_long_context(allow_long_context),
        **run_options,
    )
    data = result.to_dict()
    if records is not None and result.records is not None:
        write_text(to_csv(result.records.rows()), records, "records")
    if format is Format.json:
        emit(to_json(data), output)
    elif format is Format.csv:
        emit(to_csv([_flat(data)]), output)
    else:
        emit_tables(_tables(data), output)


_POOL_FLAGS = (
    "prefill_tp",
    "prefill_ep",
    "prefill_dp",
    "prefill_workers",
    "prefill_max_batch",
    "decode_tp",
    "decode_ep",
    "decode_dp",
    "decode_workers",
    "decode_max_batch",
    "routing",
    "first_token",
)


def _disaggregated(args: dict[str, Any]) -> dict[str, Any]:
    """The disaggregated keywords given (none when aggregated, so the API names a stray one)."""
    given = {k: args[k] for k in _POOL_FLAGS if args[k] is not None}
    if args["disaggregated"]:
        # the plan is per pool: --tp/--ep/--dp at their defaults are not passed on
        return {"disaggregated": True, **given}
    return given


def _flat(data: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict):
            row.update({f"{k}.{kk}": vv for kk, vv in v.items() if k != "engine" or kk != "source"})
        else:
            row[k] = v
    return row


def _tables(data: dict[str, Any]) -> list[Table]:
    lat = Table(title="Latency (simulated)")
    for col in ("metric", "mean", "p50", "p90", "p99"):
        lat.add_column(col, justify="left" if col == "metric" else "right")
    for key in _LATENCIES:
        lat.add_row(key[:-2].upper(), *(format_seconds(data[key][q]) for q in ("mean", "p50", "p90", "p99")))
    # what the run assumes beyond what was asked, as estimate's caption says it
    notes = "\n".join(f"note: {escape(n)}" for n in data.get("notes", []))
    rates = Table(title="Load", caption=notes or None, caption_justify="left")
    rates.add_column("figure")
    rates.add_column("value", justify="right")
    e = data["engine"]
    rows = [
        ("engine", f"{e['name']} {e['version']}"),
        ("requests measured (warm-up left out)", str(data["requests"])),
        ("requests/s", f"{data['request_rate_per_s']:.3g}"),
        ("output tokens/s", f"{data['output_tokens_per_s']:.4g}"),
        ("output tokens/s/device", f"{data['output_tokens_per_s_per_device']:.4g}"),
        ("mean running batch", f"{data['mean_running_batch']:.3g}"),
        (
            "mean queue / prefill / decode",
            " / ".join(format_seconds(data[k]) for k in ("queue_s", "prefill_s", "decode_s")),
        ),
        ("preemptions", str(data["preemptions"])),
        *((("swap copies", format_seconds(data["swap_s"])),) if "swap_s" in data else ()),
        *_pool_rows(data),
        ("KV peak per device", format_bytes(data["kv_peak_bytes_per_device"])),
        ("steps", str(data["steps"])),
        ("simulated", format_seconds(data["simulated_s"])),
        ("wall time", format_seconds(data["elapsed_s"])),
    ]
    for k, v in rows:
        rates.add_row(k, v)
    return [lat, rates]


def _pool_rows(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The disaggregated pools' rows of the load table (none when aggregated)."""
    if "prefill_pool" not in data:
        return []
    rows = []
    for side in ("prefill", "decode"):
        p = data[f"{side}_pool"]
        rows.append(
            (
                f"{side} pool",
                f"{p['workers']} x tp{p['tp']} ep{p['ep']} dp{p['dp']}, busy {p['busy_frac']:.0%}, "
                f"batch {p['mean_running_batch']:.3g}",
            )
        )
    rows.append(("KV transfer (mean)", format_seconds(data["kv_transfer_s"]["mean"])))
    return rows


def _long_context(allow: bool) -> dict[str, Any]:
    """The keyword of ``--allow-long-context`` (none when it is off: the API's default)."""
    return {"allow_long_context": True} if allow else {}
