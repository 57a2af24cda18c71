"""``genmodel requirements``: the least FLOP/s, bandwidth or capacity a platform needs for targets.

Parse -> :func:`genmodel.requirements` -> render. No formulas here.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

import genmodel
from genmodel.report import format_bytes, format_seconds, to_csv, to_json

from ._options import (
    ActDtypeOpt,
    AdmissionOpt,
    BatchOpt,
    ConcurrencyOpt,
    DpOpt,
    EngineOpt,
    EpOpt,
    Format,
    FormatOpt,
    HardwareOpt,
    InputOpt,
    KvDtypeOpt,
    MaxBatchedTokensOpt,
    MaxNumSeqsOpt,
    ModelOpt,
    OutputOpt,
    OutputTokensOpt,
    OverlapSchedulerOpt,
    PpOpt,
    ProfileOpt,
    RequestsPerClientOpt,
    ServingOpt,
    TpOpt,
    WarmupRequestsOpt,
    WarmupRestartOpt,
    WeightDtypeOpt,
    emit,
    emit_tables,
    examples,
    friendly,
    parse_batch,
    parse_seconds,
    profile_option,
    working,
)

ReqTtftSloOpt = Annotated[
    str | None,
    typer.Option(
        "--ttft-slo",
        help="TTFT target with its unit, a mean (2s) or a percentile (p99:2s; mean, p50, p90, p95, "
        "p99); with --concurrency a percentile needs --serving simulated (the default).",
    ),
]
ReqTpotSloOpt = Annotated[
    str | None,
    typer.Option(
        "--tpot-slo",
        help="TPOT target with its unit, a mean (50ms) or a percentile (p90:50ms); with --concurrency "
        "a percentile needs --serving simulated (the default).",
    ),
]
#: (divisor, unit) for showing each resource's figures
_TERA, _GIGA = 1e12, 1e9
_TARGET_NAMES = {"ttft_s": "TTFT", "tpot_s": "TPOT", "fits": "fit"}
_SHOW = {
    "flops": (_TERA, "TFLOP/s"),
    "memory_bandwidth": (_TERA, "TB/s"),
    "scale_up_bandwidth": (_GIGA, "GB/s"),
    "scale_out_bandwidth": (_GIGA, "GB/s"),
}


def parse_slo(name: str, value: str | None) -> tuple[float | None, float | None]:
    """A latency target: ``2s`` or ``mean:2s`` (the mean), or ``p99:2s`` (a percentile).

    Returns:
        (seconds or None, the quantile or None for the mean).

    Raises:
        genmodel.SpecError: an unknown statistic, or a time :func:`parse_seconds` refuses; the
            message names the option and the value given.
    """
    if value is None:
        return None, None
    stat, sep, time_text = value.partition(":")
    if not sep:
        return parse_seconds(name, value), None
    key = stat.strip().lower()
    if key not in genmodel.SLO_STATISTICS:
        raise genmodel.SpecError(
            f"{name}={value!r}: the statistic {stat.strip()!r} must be one of "
            f"{', '.join(genmodel.SLO_STATISTICS)} (e.g. p99:2s)"
        )
    try:
        seconds = parse_seconds(name, time_text.strip())
    except genmodel.SpecError as exc:
        raise genmodel.SpecError(f"{name}={value!r}: {exc}") from None
    return seconds, genmodel.SLO_STATISTICS[key]


def _show(resource: str, value: float | None) -> str:
    if value is None:
        return "-"
    if resource == "memory_capacity":
        return format_bytes(value)
    scale, unit = _SHOW[resource]
    v = value / scale
    return f"{v:,.0f} {unit}" if v >= 100 else f"{v:.3g} {unit}"


def _assumption(d: dict[str, Any]) -> str | None:
    """The note line when the deployment does not fit the platform: the memory every figure assumes."""
    if d["memory_capacity_assumed_factor"] == 1.0:
        return None
    cap = next(r for r in d["resources"] if r["resource"] == "memory_capacity")
    return (
        f"note: the deployment does not fit {d['hardware']}'s {format_bytes(cap['platform_value'])} per "
        f"device; the latencies and every other requirement assume "
        f"{format_bytes(d['memory_capacity_assumed_bytes'])} per device "
        f"({d['memory_capacity_assumed_factor']:.3g}x its memory above the OS reserve), the least at which "
        "it fits"
    )


def _table(d: dict[str, Any]) -> Table:
    targets = ", ".join(
        f"{name}{'' if d[stat] == 'mean' else ' ' + d[stat]} <= {format_seconds(d[key])}"
        for name, key, stat in (
            ("TTFT", "ttft_slo_s", "ttft_statistic"),
            ("TPOT", "tpot_slo_s", "tpot_statistic"),
        )
        if d[key] is not None
    )
    if d["meets_targets_now"]:
        verdict = f"meets the targets now; tightest: {', '.join(d['binding']) or 'none'}"
    elif d["binding"]:
        verdict = f"misses the targets now; binding: {', '.join(d['binding'])}"
    else:
        verdict = "misses the targets now, and no single resource meets them"
    assumed = d["memory_capacity_assumed_factor"] != 1.0
    at = f"with {format_bytes(d['memory_capacity_assumed_bytes'])} per device:" if assumed else "now"
    serving = d["serving"]
    load = f"batch {d['batch']}"
    if serving is not None:
        how = "closed form" if serving["serving_model"] == "closed-form" else f"simulated {serving['engine']}"
        load = f"{serving['concurrency']} clients ({how})"
    now = ", ".join(
        f"{name}{'' if d[stat] == 'mean' else ' ' + d[stat]} {format_seconds(d[key])}"
        for name, key, stat in (
            ("TTFT", "ttft_at_statistic_s", "ttft_statistic"),
            ("TPOT", "tpot_at_statistic_s", "tpot_statistic"),
        )
    )
    t = Table(
        title=f"{d['model']} on {d['devices']}x {d['hardware']} ({d['system']}), {load}, "
        f"{d['input_tokens']} in / {d['output_tokens']} out, {targets or 'memory fit'} "
        f"({at} {now}): {verdict}",
        caption="\n".join(
            line
            for line in (_assumption(d), serving and serving["notes"], *(r["reason"] for r in d["resources"]))
            if line
        )
        or None,
        caption_justify="left",
    )
    t.add_column("resource", no_wrap=True)
    for col in ("platform", "required", "factor"):
        t.add_column(col, justify="right", no_wrap=True)
    t.add_column("status (set by)")
    for r in d["resources"]:
        status = r["status"]
        shown = status in ("met", "binding")
        by = _TARGET_NAMES.get(r["set_by"])
        t.add_row(
            r["resource"],
            _show(r["resource"], r["platform_value"]),
            _show(r["resource"], r["required_value"] if shown else None),
            f"{r['factor']:.3g}x" if shown else "-",
            f"{status} ({by})" if by else status,
        )
    return t


def register(app: typer.Typer) -> None:
    """Add the ``requirements`` command to ``app``."""

    @app.command(
        epilog=examples(
            "# what one H100 lacks for TPOT <= 6 ms on Llama-3.1-8B at batch 8",
            "genmodel requirements --model llama-3.1-8b --hardware h100-sxm --batch 8 \\\n"
            "    --input-tokens 1000 --output-tokens 200 --tpot-slo 6ms --ttft-slo 2s",
            "# only the memory bandwidth, as JSON",
            "genmodel requirements --model llama-3.1-8b --hardware h100-sxm --batch 8 \\\n"
            "    --input-tokens 1000 --output-tokens 200 --tpot-slo 6ms \\\n"
            "    --resource memory_bandwidth --format json",
            "# 16 clients on SGLang's simulated scheduler: the FLOP/s for a p99 TTFT",
            "genmodel requirements --model llama-3.1-8b --hardware h100-sxm \\\n"
            "    --concurrency 16 --input-tokens 1000 --output-tokens 200 \\\n"
            "    --ttft-slo p99:300ms --engine sglang --resource flops",
        )
    )
    @friendly
    def requirements(
        model: ModelOpt,
        hardware: HardwareOpt,
        input_tokens: InputOpt,
        output_tokens: OutputTokensOpt,
        batch: BatchOpt = None,
        concurrency: ConcurrencyOpt = None,
        tp: TpOpt = 1,
        pp: PpOpt = 1,
        ep: EpOpt = 1,
        dp: DpOpt = 1,
        weight_dtype: WeightDtypeOpt = "bf16",
        act_dtype: ActDtypeOpt = None,
        kv_dtype: KvDtypeOpt = None,
        ttft_slo: ReqTtftSloOpt = None,
        tpot_slo: ReqTpotSloOpt = None,
        serving: ServingOpt = "simulated",
        engine: EngineOpt = "vllm",
        max_num_seqs: MaxNumSeqsOpt = None,
        max_batched_tokens: MaxBatchedTokensOpt = None,
        admission: AdmissionOpt = None,
        overlap_scheduler: OverlapSchedulerOpt = None,
        requests_per_client: RequestsPerClientOpt = None,
        warmup_requests: WarmupRequestsOpt = None,
        warmup_restart: WarmupRestartOpt = True,
        resource: Annotated[
            list[str] | None,
            typer.Option(
                help="Resource to solve for (repeatable): flops, memory_bandwidth, memory_capacity, "
                "scale_up_bandwidth, scale_out_bandwidth (default: all)."
            ),
        ] = None,
        profile: ProfileOpt = None,
        format: FormatOpt = Format.table,
        output: OutputOpt = None,
    ) -> None:
        """The least FLOP/s, memory bandwidth, capacity or link bandwidth that meets TTFT/TPOT targets.

        Each resource alone (the others at the platform's figures); 'binding' names what the
        platform lacks. A deployment that does not fit the platform gets its memory capacity first,
        and the other resources are solved with that much memory (a note line says so; give an
        explicit --batch or --concurrency for it, not --batch max).

        With --concurrency the targets are judged, as estimate --concurrency judges them by default,
        on the engine's simulated scheduler (a bisection on each resource, to 1 %; about a second
        for tens of clients), a mean or a percentile; --serving closed-form solves on the steady
        state (milliseconds, means only).
        """
        ttft_s, ttft_q = parse_slo("ttft_slo", ttft_slo)
        tpot_s, tpot_q = parse_slo("tpot_slo", tpot_slo)
        if ttft_s is None and tpot_s is None:  # (the API's message names its keywords, not the flags)
            raise genmodel.SpecError("requirements needs a target: give --ttft-slo and/or --tpot-slo")
        extra: dict[str, Any] = {} if concurrency is None else {"concurrency": concurrency}
        if batch is not None:
            extra["batch"] = parse_batch(batch)
        if resource:
            extra["resources"] = tuple(r.replace("-", "_") for r in resource)
        with working("solving for each resource"):
            r = genmodel.requirements(
                model,
                hardware,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                ttft_slo_s=ttft_s,
                tpot_slo_s=tpot_s,
                ttft_quantile=ttft_q,
                tpot_quantile=tpot_q,
                tp=tp,
                pp=pp,
                ep=ep,
                dp=dp,
                weight_dtype=weight_dtype,
                act_dtype=act_dtype,
                kv_dtype=kv_dtype,
                serving=serving,
                engine=engine,
                max_num_seqs=max_num_seqs,
                max_batched_tokens=max_batched_tokens,
                admission=admission,
                overlap_scheduler=overlap_scheduler,
                requests_per_client=requests_per_client,
                warmup_requests=warmup_requests,
                warmup_restart=warmup_restart,
                **extra,
                **profile_option(profile),
            )
        d = r.to_dict()
        if format is Format.json:
            emit(to_json(d), output)
        elif format is Format.csv:
            emit(to_csv(d["resources"]), output)
        else:
            emit_tables([_table(d)], output)
