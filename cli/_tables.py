"""The tables of ``estimate`` (static and serving mode, per operator) and the key columns of
``hw list``: records from :mod:`genmodel.report` as rich tables. No formulas here."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rich.markup import escape
from rich.table import Table

import genmodel
from genmodel.report import flatten, format_bytes, format_seconds

#: what the phase line's figures are (shown as the table's caption)
_BOUND_NOTE = (
    "bound / compute / memory / comm: bound names the largest contributor to the step time (the "
    "compute-bound operators' time, the memory-bound operators', exposed comm, offload or "
    "overhead); compute and memory are the sums of every operator's compute and memory times, so "
    "a compute-bound step can show the larger memory sum; comm is the collectives left exposed."
)


def estimate_table(est: genmodel.Estimate) -> Table:
    d = genmodel.report.estimate_dict(est)
    plan = est.plan
    degrees = " ".join(
        f"{k}={v}"
        for k, v in (("tp", plan.tp), ("pp", plan.pp), ("dp", plan.dp), ("ep", plan.ep), ("cp", plan.cp))
        if v > 1 or k == "tp"
    )
    serving = d.get("serving")
    load = f"{serving['concurrency']} clients" if serving else f"batch {est.batch}"
    t = Table(
        title=f"{est.model_id} on {est.num_devices}x {est.hardware_id} ({d['system']}; {degrees}, "
        f"{est.precision.weight_dtype} weights, {load}, {est.input_tokens} in / "
        f"{est.output_tokens} out)",
        # what the figures assume beyond the asked first, then what the phase line means
        caption="\n".join([*(f"note: {escape(n)}" for n in est.notes), _BOUND_NOTE]),
        caption_justify="left",
    )
    t.add_column("metric")
    t.add_column("value", justify="right")
    rows = _serving_rows(d, serving) if serving else _static_rows(est)
    rows = [_with_interval(d, name, value) for name, value in rows]
    rows.append(
        (
            "interval (in brackets)",
            f"{d['interval_coverage']:.0%} of measurements, {d['interval_evidence']} "
            f"({_EVIDENCE_NOTE[d['interval_evidence']]})",
        )
    )
    rows += _phase_rows(d)
    rows += _memory_rows(d)
    if est.usd_per_million_output_tokens is not None:
        rows.append(("USD per million output tokens", f"{est.usd_per_million_output_tokens:.3f}"))
    if est.joules_per_output_token is not None:
        rows.append(("joules per output token (at TDP)", f"{est.joules_per_output_token:.3f}"))
    for name, value in rows:
        t.add_row(name, value)
    return t


#: what each evidence level means (the interval row of the estimate table)
_EVIDENCE_NOTE = {
    "calibrated": "this device has bundled measurements",
    "transferred": "only its family's devices have",
    "datasheet": "nothing of its family measured",
}

#: the table rows that show a headline metric, and its JSON key
_HEADLINE_ROWS = {
    "TTFT (prefill of the batch)": "ttft_s",
    "TPOT (mean decode step)": "tpot_s",
    "output tokens/s (deployment)": "output_tokens_per_s",
    "mean TTFT a request sees (queue wait + prefill)": "ttft_s",
    "mean inter-token latency (TPOT)": "tpot_s",
}


def _with_interval(d: Mapping[str, Any], name: str, value: str) -> tuple[str, str]:
    """``12.3 ms (9.8–16.1)``: a headline row with its interval in brackets."""
    key = _HEADLINE_ROWS.get(name)
    if key is None:
        return name, value
    lo, hi = d[f"{key}_interval"]
    if key in ("ttft_s", "tpot_s"):
        return name, f"{value} ({format_seconds(lo)}–{format_seconds(hi)})"
    return name, f"{value} ({lo:,.1f}–{hi:,.1f})"


def _static_rows(est: genmodel.Estimate) -> list[tuple[str, str]]:
    """A static batch: prefilled together, then decoded together."""
    return [
        ("TTFT (prefill of the batch)", format_seconds(est.ttft_s)),
        ("TPOT (mean decode step)", format_seconds(est.tpot_s)),
        ("end-to-end latency", format_seconds(est.e2e_s)),
        ("output tokens/s (deployment)", f"{est.output_tokens_per_s:,.1f}"),
        ("output tokens/s per device", f"{est.output_tokens_per_s_per_device:,.1f}"),
        ("prefill tokens/s per device", f"{est.prefill_tokens_per_s_per_device:,.1f}"),
        ("decode tokens/s per device", f"{est.decode_tokens_per_s_per_device:,.1f}"),
    ]


def _serving_rows(d: Mapping[str, Any], serving: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Serving mode: what a request sees, and the steady state of the continuously batching server
    (no batch-wide prefill throughput: prefills run one request at a time between decode steps)."""
    rows = [
        ("mean TTFT a request sees (queue wait + prefill)", format_seconds(d["ttft_s"])),
        ("mean inter-token latency (TPOT)", format_seconds(d["tpot_s"])),
        ("mean end-to-end latency of a request", format_seconds(d["e2e_s"])),
        ("output tokens/s (deployment)", f"{d['output_tokens_per_s']:,.1f}"),
        ("output tokens/s per device", f"{d['output_tokens_per_s_per_device']:,.1f}"),
        ("decode tokens/s a request sees (1 / TPOT)", f"{1 / d['tpot_s']:,.1f}"),
        ("serving: clients (closed loop)", f"{serving['concurrency']:,}"),
        ("serving: mean decode batch (sequences per step)", f"{serving['decode_batch']:,.1f}"),
        ("serving: request rate", f"{serving['request_rate_per_s']:,.2f} requests/s"),
        ("serving: prefill share of the time", f"{serving['prefill_busy_frac']:.1%}"),
        ("serving: mean queue wait before prefill", format_seconds(serving["queue_wait_s"])),
        *(
            [("serving: request overhead in TTFT (frontend)", format_seconds(serving["request_overhead_s"]))]
            if serving.get("request_overhead_s")
            else []
        ),
        ("serving: limited by KV-cache memory", "yes" if serving["kv_limited"] else "no"),
        ("serving: max running (sequences the KV cache holds)", f"{serving['max_running']:,}"),
    ]
    for key, label in (("serving_model", "serving model"), ("engine", "engine"), ("notes", "notes")):
        value = serving.get(key, d.get(key))  # in the serving block, or beside it
        if value:
            rows.append((f"serving: {label}", cell(value)))
    return rows


def _phase_rows(d: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Each phase's bound and time split (defined in the caption), collectives and offload."""
    rows: list[tuple[str, str]] = []
    for phase in ("prefill", "decode"):
        p = d[phase]
        rows.append(
            (
                f"{phase}: bound / compute / memory / comm (note below)",
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
    return rows


def _memory_rows(d: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Bytes per device: weights, KV cache, activations, and each offload tier."""
    m = d["memory"]
    rows = [
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
    return rows


def _merged_names(first: list[str], second: list[str]) -> list[str]:
    """The names of both lists in order: ``first``'s, each of ``second``'s own after its predecessor
    (MLA's prefill decompresses the KV where its decode absorbs the projections: the lists differ)."""
    out = list(first)
    for i, name in enumerate(second):
        if name not in out:
            out.insert(out.index(second[i - 1]) + 1 if i and second[i - 1] in out else len(out), name)
    return out


def _op_cells(op: Any) -> tuple[str, str]:
    """An operator's time and what bounds it; dashes where the phase does not run it."""
    if op is None:
        return "—", "—"
    return format_seconds(float(op.time_s)), "compute" if op.compute_s >= op.memory_s else "memory"


def ops_records(est: genmodel.Estimate) -> list[dict[str, Any]]:
    """The per-operator breakdown of ``estimate --ops`` for JSON and CSV: one record per phase and
    operator, per device, SI units: the rows of :func:`genmodel.report.roofline_points` (what the
    dashboard's roofline shows), each with its ``phase``."""
    return [
        {"phase": phase, **row}
        for phase in ("prefill", "decode")
        for row in genmodel.report.roofline_points(est, phase=phase)
    ]


def ops_table(est: genmodel.Estimate) -> Table:
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
    decode = {o.op.name: o for o in est.decode.ops}
    prefill = {o.op.name: o for o in est.prefill.ops}
    for name in _merged_names(list(decode), list(prefill)):
        dec, pre = decode.get(name), prefill.get(name)
        t.add_row(
            name,
            *_op_cells(dec),
            *_op_cells(pre),
            "—" if dec is None else f"{float(dec.arithmetic_intensity):.1f}",
        )
    return t


#: the key columns of ``hw list``: (header with its unit, flattened key of the record)
DEVICE_COLUMNS = (
    ("id", "id"),
    ("memory\nGiB", "memory_gib"),
    ("memory\nTB/s", "bandwidth_tb_per_s"),
    ("bf16\nTFLOP/s", "dense_tflops.bf16"),
    ("fp8\nTFLOP/s", "dense_tflops.fp8"),
    ("scale-up\nGB/s", "scale_up_gb_per_s"),
    ("TDP\nW", "tdp_w"),
    ("USD\nper h", "usd_per_hour"),
)
SYSTEM_COLUMNS = (
    ("id", "id"),
    ("device", "device"),
    ("devices\nper node", "per node"),
    ("max\ndevices", "max devices"),
    ("fabric tiers\nGB/s x domain", "fabric (GB/s per device per direction, x domain)"),
)
TIER_COLUMNS = (
    ("id", "id"),
    ("medium", "medium"),
    ("capacity\nGiB", "capacity_gib"),
    ("bandwidth\nGB/s", "bandwidth_gb_per_s"),
    ("latency\nns", "latency_ns"),
    ("link\nGB/s", "link_gb_per_s"),
)
LINK_COLUMNS = (
    ("id", "id"),
    ("kind", "link_kind"),
    ("bandwidth\nGB/s", "bandwidth_gb_per_s"),
    ("latency\nus", "latency_us"),
)


def key_table(title: str, records: list[dict[str, Any]], columns: tuple[tuple[str, str], ...]) -> Table:
    """A few key columns of ``records``, never wrapped or cut (``-`` where a record has none)."""
    t = Table(title=title)
    for header, _ in columns:
        t.add_column(
            header, justify="left" if header in ("id", "device", "medium", "kind") else "right", no_wrap=True
        )
    for record in records:
        flat = flatten(record)
        t.add_row(*(escape(cell(flat.get(key))) for _, key in columns))
    return t


def cell(value: Any) -> str:
    """One value of a flattened record as table text."""
    if value is None:
        return "-"
    if isinstance(value, float):  # 13,125, not 1.312e+04 (B300's fp4 TFLOP/s in hw show)
        return f"{value:,.0f}" if 1e4 <= abs(value) < 1e9 else f"{value:.4g}"
    if isinstance(value, list | tuple):
        return json.dumps(value, default=str)
    return str(value)
