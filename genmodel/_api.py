"""The public API: estimates and validation by id, on top of the database in ``genmodel.io``."""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from genmodel._errors import GenModelError, InfeasibleError, SpecError
from genmodel._hardware import AttachedTier, Device, System
from genmodel._memory import KV_BLOCK_TOKENS, Offload, paged_tokens
from genmodel._model import ModelSpec
from genmodel._parallel import Plan
from genmodel._phases import (
    Estimate,
    RunOptions,
    Speculation,
    as_system,
    estimate_static,
)
from genmodel._search import Disaggregated, Layout, SearchResult, Slo, check_objective, copies_needed, search
from genmodel._serving import estimate_serving
from genmodel._units import DTYPE_BYTES, check_dtype
from genmodel._workload import Precision
from genmodel.io import load_hardware, load_memory_tier, load_model, load_system
from genmodel.report import estimate_dict

#: Metrics a validation case may name: the numeric keys of an estimate.
METRICS = (
    "ttft_s",
    "tpot_s",
    "e2e_s",
    "output_tokens_per_s",
    "output_tokens_per_s_per_device",
    "prefill_tokens_per_s_per_device",
    "decode_tokens_per_s_per_device",
)


def default_precision(
    weight_dtype: str = "bf16", act_dtype: str | None = None, kv_dtype: str | None = None
) -> Precision:
    """Precisions with defaults: activations as the weights (bf16 under 4-bit weights), KV bf16."""
    check_dtype("weight_dtype", weight_dtype)
    if act_dtype is None:
        act_dtype = weight_dtype if DTYPE_BYTES[weight_dtype] >= 1 else "bf16"
    if kv_dtype is None:
        kv_dtype = "fp32" if act_dtype == "fp32" else "bf16"
    return Precision(weight_dtype=weight_dtype, act_dtype=act_dtype, kv_dtype=kv_dtype)


def attached_tier(
    spec: str | AttachedTier | None, field_name: str = "tier", device: Device | None = None
) -> AttachedTier | None:
    """A memory tier by id, ``ID:N`` for N of them per node, ``host`` for the device's own host
    memory tier, or as given.

    Raises:
        SpecError: N is not a positive integer, or ``host`` for a device without one.
        UnknownEntryError: no such tier.
    """
    if spec is None or isinstance(spec, AttachedTier):
        return spec
    name, _, count = spec.partition(":")
    if name == "host":
        if device is None:
            raise SpecError(f"{field_name}={spec!r}: 'host' needs the device whose host memory it names")
        if device.host is None:
            raise SpecError(
                f"{field_name}={spec!r}: hardware={device.id} has no host memory tier in hardware_db"
            )
        name = device.host.tier_id
    n = 1
    if count:
        if not count.isdigit() or int(count) < 1:
            raise SpecError(f"{field_name}={spec!r}: the count after ':' must be an integer >= 1")
        n = int(count)
    return AttachedTier(tier=load_memory_tier(name), count=n)


def estimate(
    model: str | ModelSpec,
    hardware: str | Device | System,
    *,
    input_tokens: int,
    output_tokens: int,
    batch: int | str | None = None,
    concurrency: int | None = None,
    devices: int | None = None,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    dp: int = 1,
    cp: int = 1,
    system: str | System | None = None,
    weight_dtype: str = "bf16",
    act_dtype: str | None = None,
    kv_dtype: str | None = None,
    comm_overlap_frac: float | None = None,
    overlap_microbatches: int = 1,
    redundant_experts: int = 0,
    moe_imbalance: float | None = None,
    draft_tokens: int = 0,
    acceptance_rate: float = 0.7,
    draft_model: str | ModelSpec | None = None,
    disaggregated: bool = False,
    allreduce_algorithm: str = "ring",
    kv_block_tokens: int = KV_BLOCK_TOKENS,
    prefix_hit_rate: float = 0.0,
    sparse_attention_frac: float = 1.0,
    prefill_chunk: int | None = None,
    kv_offload: str | AttachedTier | None = None,
    weight_offload: str | AttachedTier | None = None,
    expert_offload: str | AttachedTier | None = None,
    kv_window: int | None = None,
    expert_hit_rate: float | None = None,
    offload_overlap: bool = True,
    ideal: bool = False,
) -> Estimate:
    """Estimate TTFT, TPOT, throughput and memory of ``model`` on ``hardware`` under a plan.

    Args:
        model: a model id or alias (``genmodel models list``), a config.json path, or a ModelSpec.
        hardware: a device or system id or alias (``genmodel hw list``), a Device or a System. A
            device implies the system built from it (h100-sxm: dgx-h100).
        input_tokens: prompt tokens per request.
        output_tokens: generated tokens per request.
        batch: static batch over the whole deployment, or "max" (largest that fits); default 1.
        concurrency: clients in a closed loop against a continuously batching server (serving
            mode): ttft_s and tpot_s are then the steady-state means a request sees.
        devices: total devices; must equal tp * pp * dp * cp when given.
        tp, pp, ep, dp, cp: tensor, pipeline, expert, data (attention-DP for MoE models) and
            context parallel degrees; ep divides tp * dp.
        system: a system id (or System) whose fabric connects the devices; its device must be
            ``hardware``'s.
        weight_dtype, act_dtype, kv_dtype: precisions (fp32, bf16, fp16, fp8, int8, fp4, int4).
        comm_overlap_frac: fraction of communication hidden behind compute (default: system's).
        overlap_microbatches: split each pass into this many overlapping microbatches (2 =
            SGLang two-batch overlap).
        redundant_experts: extra expert replicas (EPLB); moe_imbalance: busiest/mean expert load.
        draft_tokens: speculative tokens per step (0 = off); acceptance_rate: per drafted token
            (default 0.7, the effective MTP acceptance reported for CloudMatrix-Infer);
            draft_model: a draft model id (default: the model's own MTP block).
        disaggregated: prefill and decode on separate devices; TTFT includes the KV transfer.
        allreduce_algorithm: ring, tree, direct or auto.
        kv_block_tokens: tokens per paged KV block (vLLM default 16; 1 = no block waste).
        prefix_hit_rate: fraction of each prompt already in the prefix cache (its prefill is
            skipped; its KV is shared by the replica's sequences).
        sparse_attention_frac: fraction of the cached KV a decode step reads (top-k attention).
        prefill_chunk: chunked prefill, tokens per chunk (default: the whole prompt in one pass).
        kv_offload, weight_offload, expert_offload: a memory tier id (``genmodel hw list``), with
            ``:N`` for N of them per node (``cxl-samsung-cmm-d-128gb:4``), or ``host`` (the device's
            host memory), that takes the KV cache, weights or MoE experts that do not fit the device.
        kv_window: keep only each sequence's last kv_window tokens on the device (needs kv_offload).
        expert_hit_rate: fraction of touched experts found on the device (default: the share kept).
        offload_overlap: prefetch offloaded bytes behind compute (False: fetch on demand).
        ideal: every efficiency 1 and no overheads (the pure roofline bound).

    Returns:
        An :class:`Estimate`; :func:`genmodel.report.estimate_dict` gives its JSON keys.

    Raises:
        SpecError: malformed arguments. UnknownEntryError: unknown ids.
        InfeasibleError: the plan cannot run (divisibility, memory).
    """
    m = load_model(model) if isinstance(model, str) else model
    hw = load_hardware(hardware) if isinstance(hardware, str) else as_system(hardware)
    if system is not None:
        chosen = load_system(system) if isinstance(system, str) else system
        if chosen.device.id != hw.device.id:
            raise SpecError(
                f"system={chosen.id} is built from hardware={chosen.device.id}, not {hw.device.id}; "
                "give the system alone as --hardware"
            )
        hw = chosen.with_device(hw.device)
    plan = Plan(tp=tp, pp=pp, ep=ep, dp=dp, cp=cp)
    if devices is not None and devices != plan.num_devices:
        raise SpecError(
            f"devices={devices} must equal tp*pp*dp*cp={plan.num_devices} "
            f"(tp={tp}, pp={pp}, dp={dp}, cp={cp})"
        )
    speculation = None
    if draft_tokens:
        draft = load_model(draft_model) if isinstance(draft_model, str) else draft_model
        speculation = Speculation(
            draft_tokens=draft_tokens, acceptance_rate=acceptance_rate, draft_model=draft
        )
    offload = Offload(
        kv=attached_tier(kv_offload, "kv_offload", hw.device),
        weights=attached_tier(weight_offload, "weight_offload", hw.device),
        experts=attached_tier(expert_offload, "expert_offload", hw.device),
        kv_window=kv_window,
        expert_hit_rate=expert_hit_rate,
        overlap=offload_overlap,
    )
    if offload.experts is not None and m.moe is None:
        raise SpecError(f"expert_offload={offload.experts.label}: model={m.id} has no experts")
    options = RunOptions(
        comm_overlap_frac=comm_overlap_frac,
        overlap_microbatches=overlap_microbatches,
        redundant_experts=redundant_experts,
        moe_imbalance=moe_imbalance,
        speculation=speculation,
        disaggregated=disaggregated,
        allreduce_algorithm=allreduce_algorithm,
        kv_block_tokens=kv_block_tokens,
        prefix_hit_rate=prefix_hit_rate,
        sparse_attention_frac=sparse_attention_frac,
        prefill_chunk=prefill_chunk,
        offload=offload,
    )
    precision = default_precision(weight_dtype, act_dtype, kv_dtype)
    if concurrency is not None:
        if batch is not None:
            raise SpecError("give either batch= (static) or concurrency= (serving), not both")
        if disaggregated:
            raise SpecError(
                "disaggregated=True with concurrency=: the serving estimate is co-located; "
                "genmodel.plan(..., disaggregated=True) sizes separate prefill and decode pools"
            )
        return estimate_serving(
            m,
            hw,
            plan,
            precision,
            concurrency=concurrency,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            ideal=ideal,
            options=options,
        )
    return estimate_static(
        m,
        hw,
        plan,
        precision,
        batch=1 if batch is None else batch,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        ideal=ideal,
        options=options,
    )


def max_concurrency(
    model: str | ModelSpec,
    hardware: str | Device | System,
    *,
    context_tokens: int,
    output_tokens: int = 1,
    **options: Any,
) -> int:
    """Most sequences of ``context_tokens`` tokens (prompt + output) the deployment holds at once;
    0 when not even one fits. ``options`` are :func:`estimate`'s (plan, dtypes, offload)."""
    if context_tokens <= output_tokens:
        raise SpecError(f"context_tokens={context_tokens} must exceed output_tokens={output_tokens}")
    try:
        est = estimate(
            model,
            hardware,
            input_tokens=context_tokens - output_tokens,
            output_tokens=output_tokens,
            batch="max",
            **options,
        )
    except InfeasibleError:
        return 0
    return est.batch


def memory_report(
    model: str | ModelSpec,
    hardware: str | Device | System,
    *,
    input_tokens: int,
    output_tokens: int,
    batch: int | str | None = "max",
    contexts: tuple[int, ...] = (),
    **options: Any,
) -> dict[str, Any]:
    """Where every byte of a deployment lives, per memory tier, and how many users fit.

    Args:
        batch: sequences to place (default "max": the most that fit).
        contexts: context lengths (tokens per sequence) for the capacity -> concurrency curve.
        options: :func:`estimate`'s plan, dtype, KV and offload options.

    Returns:
        JSON-ready: ``batch``, ``kv_bytes_per_token_per_device``, ``kv_bytes_per_sequence``,
        ``swap_s_per_sequence`` (a context switch to the KV tier), ``tiers`` (per tier: id,
        medium, bytes per device by kind, capacity and bandwidth per device), ``fits``, and
        ``concurrency`` (per context: the max concurrent sequences).
    """
    est = estimate(
        model, hardware, input_tokens=input_tokens, output_tokens=output_tokens, batch=batch, **options
    )
    m = est.memory
    context = input_tokens + output_tokens
    d = estimate_dict(est)
    return {
        "model": est.model_id,
        "hardware": est.hardware_id,
        "system": d["system"],
        "devices": est.num_devices,
        "tp": est.plan.tp,
        "pp": est.plan.pp,
        "ep": est.plan.ep,
        "dp": est.plan.dp,
        "cp": est.plan.cp,
        "weight_dtype": est.precision.weight_dtype,
        "kv_dtype": est.precision.kv_dtype,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "batch": est.batch,
        "kv_block_tokens": est.options.kv_block_tokens,
        "kv_bytes_per_token_per_device": m.kv_bytes_per_sequence
        / paged_tokens(context, est.options.kv_block_tokens),
        "kv_bytes_per_sequence": m.kv_bytes_per_sequence,
        "swap_s_per_sequence": m.swap_time_s(),
        "fits": m.fits,
        "tiers": [t.to_dict() for t in m.tiers],
        "offload": d["offload"],
        "ttft_s": est.ttft_s,
        "tpot_s": est.tpot_s,
        "concurrency": [
            {
                "context_tokens": c,
                "max_concurrency": max_concurrency(
                    model, hardware, context_tokens=c, output_tokens=min(output_tokens, c - 1), **options
                ),
            }
            for c in contexts
        ],
    }


# ---- validation -------------------------------------------------------------------------------

_COLUMNS = (
    "id",
    "category",
    "mode",
    "model",
    "hardware",
    "devices",
    "tp",
    "pp",
    "ep",
    "dp",
    "batch",
    "input_tokens",
    "output_tokens",
    "weight_dtype",
    "act_dtype",
    "kv_dtype",
    "metric",
    "measured",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseResult:
    """One validation case: what was measured, what genmodel predicts, the absolute % error."""

    id: str
    category: str
    metric: str
    measured: float
    predicted: float

    @property
    def ape(self) -> float:
        """Absolute percentage error, |predicted - measured| / measured * 100."""
        return abs(self.predicted - self.measured) / abs(self.measured) * 100


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationReport:
    """Per-case errors and their summaries over the covered cases; skipped cases with reasons."""

    cases: tuple[CaseResult, ...]
    skipped: tuple[tuple[str, str], ...] = field(default=())

    @property
    def mape(self) -> float:
        """Mean absolute percentage error over the covered cases."""
        return statistics.fmean(c.ape for c in self.cases) if self.cases else float("nan")

    @property
    def median_ape(self) -> float:
        """Median absolute percentage error."""
        return statistics.median(c.ape for c in self.cases) if self.cases else float("nan")

    @property
    def within_25pct(self) -> float:
        """Fraction of covered cases with an error of at most 25 %."""
        return sum(c.ape <= 25 for c in self.cases) / len(self.cases) if self.cases else float("nan")

    def _grouped(self, key: Callable[[CaseResult], str]) -> dict[str, dict[str, float]]:
        groups: dict[str, list[float]] = defaultdict(list)
        for c in self.cases:
            groups[key(c)].append(c.ape)
        return {k: {"n": len(v), "mape": statistics.fmean(v)} for k, v in sorted(groups.items())}

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of DESIGN.md: cases, mape, median_ape, within_25pct, by_*, skipped."""
        return {
            "cases": [
                {
                    "id": c.id,
                    "category": c.category,
                    "metric": c.metric,
                    "measured": c.measured,
                    "predicted": c.predicted,
                    "ape": c.ape,
                }
                for c in self.cases
            ],
            "covered": len(self.cases),
            "mape": self.mape,
            "median_ape": self.median_ape,
            "within_25pct": self.within_25pct,
            "by_category": self._grouped(lambda c: c.category),
            "by_metric": self._grouped(lambda c: c.metric),
            "skipped": [{"id": i, "reason": r} for i, r in self.skipped],
        }


def _read_csv(path: str | Path) -> tuple[Path, list[dict[str, str]]]:
    """The rows of a CSV file as dicts; a missing or unreadable file is a SpecError naming it."""
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8") as f:
            return p, list(csv.DictReader(f))
    except FileNotFoundError:
        raise SpecError(f"{p}: file not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SpecError(f"{p}: cannot be read as CSV: {exc}") from None


#: Optional columns of a validation CSV (or of its options file): how the measured run was served.
#: Values are parsed with the type of the estimate() argument; an empty cell keeps the default.
OPTION_COLUMNS: dict[str, Callable[[str], Any]] = {
    "system": str,
    "cp": int,
    "comm_overlap_frac": float,
    "overlap_microbatches": int,
    "redundant_experts": int,
    "moe_imbalance": float,
    "draft_tokens": int,
    "acceptance_rate": float,
    "draft_model": str,
    "disaggregated": lambda v: v.strip().lower() in ("1", "true", "yes"),
}


def public_options_path() -> Path:
    """Path of the bundled run options of the public cases (validation/case_options.csv)."""
    return Path(str(resources.files("genmodel.validation").joinpath("case_options.csv")))


def read_case_options(path: str | Path) -> dict[str, dict[str, str]]:
    """Run options per case id from an options CSV (columns: id, any of OPTION_COLUMNS, source)."""
    p, rows = _read_csv(path)
    if rows and "id" not in rows[0]:
        raise SpecError(f"{p}: missing column id")
    unknown = [c for c in (rows[0] if rows else {}) if c not in OPTION_COLUMNS and c not in ("id", "source")]
    if unknown:
        raise SpecError(f"{p}: unknown columns {', '.join(unknown)}; known: {', '.join(OPTION_COLUMNS)}")
    return {r["id"]: {k: v for k, v in r.items() if k in OPTION_COLUMNS and v} for r in rows}


def public_cases_path() -> Path:
    """Path of the bundled public validation cases (validation/validation_public.csv)."""
    return Path(str(resources.files("genmodel.validation").joinpath("validation_public.csv")))


def read_cases(path: str | Path) -> list[dict[str, str]]:
    """Rows of a validation CSV, checked for the required columns."""
    p, rows = _read_csv(path)
    if not rows:
        raise SpecError(f"{p}: no cases")
    missing = [c for c in _COLUMNS if c not in rows[0]]
    if missing:
        raise SpecError(f"{p}: missing columns {', '.join(missing)}")
    return rows


def _int(row: dict[str, str], name: str) -> int:
    try:
        return int(row[name])
    except ValueError:
        raise SpecError(f"case {row['id']}: {name}={row[name]!r} must be an integer") from None


def _options(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, parse in OPTION_COLUMNS.items():
        value = row.get(name) or ""
        if value.strip():
            try:
                out[name] = parse(value.strip())
            except ValueError:
                raise SpecError(f"case {row['id']}: {name}={value!r} is not a valid value") from None
    return out


def predict_case(row: dict[str, str]) -> float:
    """Predict the ``metric`` of one validation row with :func:`estimate` (and its option columns)."""
    metric = row["metric"]
    if metric not in METRICS:
        raise SpecError(f"case {row['id']}: metric={metric!r} must be one of {', '.join(METRICS)}")
    mode = row["mode"]
    if mode not in ("static", "concurrency"):
        raise SpecError(f"case {row['id']}: mode={mode!r} must be 'static' or 'concurrency'")
    n: int | str = row["batch"] if row["batch"] == "max" else _int(row, "batch")
    kwargs: dict[str, Any] = {"batch": n} if mode == "static" else {"concurrency": n}
    est = estimate(
        row["model"],
        row["hardware"],
        input_tokens=_int(row, "input_tokens"),
        output_tokens=_int(row, "output_tokens"),
        devices=_int(row, "devices"),
        tp=_int(row, "tp"),
        pp=_int(row, "pp"),
        ep=_int(row, "ep"),
        dp=_int(row, "dp"),
        weight_dtype=row["weight_dtype"],
        act_dtype=row["act_dtype"],
        kv_dtype=row["kv_dtype"],
        **kwargs,
        **_options(row),
    )
    return float(getattr(est, metric))


def validate(
    path: str | Path | None = None,
    *,
    options_path: str | Path | None = None,
    on_case: Callable[[str], None] | None = None,
) -> ValidationReport:
    """Predict every case of a validation CSV and report the errors.

    Args:
        path: a CSV with the columns of validation/validation_public.csv (default: that file).
        options_path: a CSV of run options per case id (see :data:`OPTION_COLUMNS`: overlap,
            speculative decoding, ...); default: validation/case_options.csv for the public
            cases, none for another file. Option columns in the cases CSV itself apply too.
        on_case: called with each case id after it is done (for progress bars).

    Returns:
        A :class:`ValidationReport`; cases genmodel cannot model yet are skipped with the reason.
    """
    rows = read_cases(public_cases_path() if path is None else path)
    if options_path is None and path is None:
        options_path = public_options_path()
    extra = read_case_options(options_path) if options_path is not None else {}
    rows = [{**row, **extra.get(row["id"], {})} for row in rows]
    results: list[CaseResult] = []
    skipped: list[tuple[str, str]] = []
    for row in rows:
        try:
            predicted = predict_case(row)
        except GenModelError as exc:
            skipped.append((row["id"], str(exc)))
        else:
            try:
                measured = float(row["measured"])
            except ValueError:
                raise SpecError(f"case {row['id']}: measured={row['measured']!r} must be a number") from None
            results.append(
                CaseResult(
                    id=row["id"],
                    category=row["category"],
                    metric=row["metric"],
                    measured=measured,
                    predicted=predicted,
                )
            )
        if on_case is not None:
            on_case(row["id"])
    return ValidationReport(cases=tuple(results), skipped=tuple(skipped))


def _precisions(
    weight_dtype: str | Sequence[str], act_dtype: str | None, kv_dtype: str | None
) -> list[Precision]:
    names = [weight_dtype] if isinstance(weight_dtype, str) else list(weight_dtype)
    return [default_precision(w, act_dtype, kv_dtype) for w in names]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanReport:
    """What :func:`plan` found: the best serving plan as an :class:`Estimate`, the Pareto frontier,
    and how many candidates were evaluated, could run, and why the others could not."""

    model_id: str
    system_id: str
    devices: int
    slo: Slo
    result: SearchResult
    best: Estimate | None
    disaggregated: Disaggregated | None
    pareto: tuple[dict[str, Any], ...]
    #: the traffic planned for (requests/s; None: a fixed deployment of ``devices``)
    request_rate_per_s: float | None = None
    #: what ``best`` optimises (:data:`genmodel._search.OBJECTIVES`)
    objective: str = "goodput"

    @property
    def instances(self) -> int | None:
        """Copies of the best plan needed for the request rate (None without one or without a plan)."""
        if self.request_rate_per_s is None or self.best is None or self.best.serving is None:
            return None
        return _instances(self.request_rate_per_s, self.best.serving.request_rate_per_s)

    @property
    def devices_needed(self) -> int | None:
        """Devices in all for the request rate: instances x the best plan's devices."""
        n = self.instances
        return None if n is None or self.best is None else n * self.best.plan.num_devices

    @property
    def evaluated(self) -> int:
        """Candidate plans evaluated (layouts x precisions x running batch sizes)."""
        return self.result.evaluated

    @property
    def plans_per_s(self) -> float:
        """Candidates evaluated per second."""
        return self.result.evaluated / self.result.elapsed_s

    @property
    def goodput(self) -> float:
        """Output tokens/s per device of the best co-located plan (0 when none meets the SLOs)."""
        return 0.0 if self.best is None else self.best.output_tokens_per_s_per_device

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: evaluated, feasible, elapsed_s, best, pareto (DESIGN.md), and more."""
        r = self.result
        best = None if self.best is None else _plan_row(self.best)
        if best is not None and self.request_rate_per_s is not None:
            best["instances"] = self.instances
            best["devices_needed"] = self.devices_needed
        d = self.disaggregated
        disagg = None
        if d is not None:
            disagg = {
                "prefill": _layout_dict(d.prefill),
                "decode": _layout_dict(d.decode),
                "prefill_instances": d.prefill_instances,
                "decode_instances": d.decode_instances,
                "devices": d.devices,
                "decode_batch": d.decode_batch,
                "request_rate_per_s": d.request_rate_per_s,
                "ttft_s": d.ttft_s,
                "tpot_s": d.tpot_s,
                "kv_transfer_exposed_s": d.kv_transfer_exposed_s,
                "output_tokens_per_s_per_device": d.tokens_per_s_per_device,
                "goodput_gain_vs_colocated": (
                    None if self.goodput == 0 else d.tokens_per_s_per_device / self.goodput
                ),
            }
            if self.request_rate_per_s is not None:
                disagg["devices_saved_vs_colocated"] = (
                    None if self.devices_needed is None else self.devices_needed - d.devices
                )
        return {
            "model": self.model_id,
            "system": self.system_id,
            "devices": self.devices,
            "request_rate_per_s": self.request_rate_per_s,
            "objective": self.objective,
            "slo": {
                "ttft_s": self.slo.ttft_s,
                "tpot_s": self.slo.tpot_s,
                "ttft_quantile": self.slo.ttft_quantile,
                "itl_max_s": self.slo.itl_max_s,
            },
            "evaluated": r.evaluated,
            "feasible": r.feasible,
            "meeting_slo": int(r.candidates.meets_slo.sum()),
            "elapsed_s": r.elapsed_s,
            "plans_per_s": self.plans_per_s,
            "best": best,
            "pareto": list(self.pareto),
            "violations": dict(sorted(r.violations.items(), key=lambda kv: -kv[1])),
            "disaggregated": disagg,
        }


def _layout_dict(layout: Layout) -> dict[str, Any]:
    p, q = layout.plan, layout.precision
    return {
        "tp": p.tp,
        "pp": p.pp,
        "ep": p.ep,
        "dp": p.dp,
        "devices": p.num_devices,
        "weight_dtype": q.weight_dtype,
        "act_dtype": q.act_dtype,
        "kv_dtype": q.kv_dtype,
        "prefill_chunk": layout.prefill_chunk,
    }


def _instances(request_rate_per_s: float, instance_rate_per_s: float) -> int:
    """Copies of an instance serving ``instance_rate_per_s`` needed for the whole request rate."""
    return int(copies_needed(request_rate_per_s, instance_rate_per_s))


def _plan_row(est: Estimate) -> dict[str, Any]:
    """The plan fields and the estimate keys of one serving estimate (``best`` in the JSON)."""
    return {**estimate_dict(est), "concurrency": est.batch}


def plan(
    model: str | ModelSpec,
    hardware: str | Device | System,
    *,
    devices: int,
    input_tokens: int,
    output_tokens: int,
    ttft_slo_s: float | None = None,
    tpot_slo_s: float | None = None,
    ttft_quantile: float | None = None,
    weight_dtype: str | Sequence[str] = "bf16",
    act_dtype: str | None = None,
    kv_dtype: str | None = None,
    disaggregated: bool = False,
    request_rate_per_s: float | None = None,
    objective: str = "goodput",
    itl_max_slo_s: float | None = None,
    prefill_chunks: Sequence[int | None] | None = None,
    pareto_points: int = 50,
) -> PlanReport:
    """Find the serving plan of ``devices`` devices with the highest goodput within the SLOs, or
    (given a request rate) the plan that serves that traffic within the SLOs on the fewest devices.

    Every tp x pp x dp (x ep) layout, precision (each ``weight_dtype`` given) and running batch is
    evaluated vectorised (:mod:`genmodel._search`); the best candidate is then estimated again,
    alone, with :func:`estimate` at its (rounded) concurrency, so ``best`` is exactly what
    ``estimate`` says of that plan, and it meets the SLOs.

    Args:
        devices: the device budget (every layout uses all of it; dp makes replicas); with
            ``request_rate_per_s``, the largest instance (copy of the plan) considered.
        request_rate_per_s: traffic in requests/s: ``instances`` copies of ``best`` serve it, with
            ``devices_needed`` devices in all (each copy counted at its full-load rate).
        objective: ``goodput`` (default; for a request rate: the fewest devices), ``cost`` and
            ``energy`` (the same order on one platform: price and power per device are constants;
            they differ across platforms in :func:`compare`), or ``latency`` (the lowest TPOT that
            meets the SLOs).
        itl_max_slo_s: the longest gap between two tokens of a running request (a decode step plus
            the prefill piece run before the next one). Chunked prefill bounds it, at the price of
            reading the weights once more per chunk, so with this target the chunk sizes
            ``prefill_chunks`` are searched too (default: one pass and
            :data:`DEFAULT_PREFILL_CHUNKS` below ``input_tokens``; without it, one pass only).
        ttft_slo_s, tpot_slo_s: targets in seconds (None: none); ``ttft_quantile`` makes the TTFT
            target a quantile (0.9, 0.99) of an M/D/1 queue instead of the mean.
        disaggregated: also size separate prefill and decode pools (DistServe) and compare.
        pareto_points: at most this many points of the frontier, spread along it.

    Raises:
        SpecError, UnknownEntryError: bad arguments. InfeasibleError: no layout can run at all.
    """
    import numpy as np

    check_objective(objective)
    m = load_model(model) if isinstance(model, str) else model
    hw = load_hardware(hardware) if isinstance(hardware, str) else as_system(hardware)
    slo = Slo(ttft_s=ttft_slo_s, tpot_s=tpot_slo_s, ttft_quantile=ttft_quantile, itl_max_s=itl_max_slo_s)
    if prefill_chunks is None:
        below = [c for c in DEFAULT_PREFILL_CHUNKS if c < input_tokens]
        prefill_chunks = [None] if itl_max_slo_s is None else [None, *below]
    result = search(
        m,
        hw,
        devices=devices,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        slo=slo,
        precisions=_precisions(weight_dtype, act_dtype, kv_dtype),
        disaggregated=disaggregated,
        request_rate_per_s=request_rate_per_s,
        prefill_chunks=prefill_chunks,
    )
    c = result.candidates
    best: Estimate | None = None

    def key(est: Estimate) -> tuple[float, float, float]:  # smaller is better, as ranking() orders
        goodput = est.output_tokens_per_s_per_device
        devices = 0.0
        if request_rate_per_s is not None and est.serving is not None:
            devices = _instances(request_rate_per_s, est.serving.request_rate_per_s) * est.plan.num_devices
        if objective == "latency":
            return (est.tpot_s, devices, -goodput)
        return (devices, -goodput, est.tpot_s)

    # the best few, re-estimated alone at their integer concurrency: the first that still meets
    # the SLOs (rounding the clients can move it across a target)
    ranked: list[int] = list(result.ranking(objective)[:20]) if c.meets_slo.any() else []
    for i in ranked:
        if not c.meets_slo[i]:
            break
        layout = result.layouts[c.layout[i]]
        for clients in sorted({max(1, math.floor(c.concurrency[i])), max(1, round(c.concurrency[i]))}):
            est = estimate_serving(
                m,
                hw,
                layout.plan,
                layout.precision,
                concurrency=clients,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                options=RunOptions(prefill_chunk=layout.prefill_chunk),
            )
            if _meets(est, slo) and (best is None or key(est) < key(best)):
                best = est
        if best is not None:
            break
    frontier = result.pareto_indices()
    if len(frontier) > pareto_points:
        keep = np.unique(np.linspace(0, len(frontier) - 1, pareto_points).round().astype(int))
        frontier = [frontier[k] for k in keep]
    pareto = tuple(
        {
            **_layout_dict(result.layouts[c.layout[i]]),
            "batch_per_replica": float(c.batch[i]),
            "request_rate_per_s": float(c.rate_per_s[i]),
            "concurrency": float(c.concurrency[i]),
            "ttft_s": float(c.ttft_s[i]),
            "tpot_s": float(c.tpot_s[i]),
            "output_tokens_per_s_per_device": float(c.tokens_per_s_per_device[i]),
            "output_tokens_per_s_per_user": float(c.tokens_per_s_per_user[i]),
            "meets_slo": bool(c.meets_slo[i]),
        }
        for i in frontier
    )
    return PlanReport(
        model_id=m.id,
        system_id=hw.id,
        devices=devices,
        slo=slo,
        result=result,
        best=best,
        disaggregated=result.disaggregated,
        pareto=pareto,
        request_rate_per_s=request_rate_per_s,
        objective=objective,
    )


def _meets(est: Estimate, slo: Slo) -> bool:
    ok = slo.tpot_s is None or est.tpot_s <= slo.tpot_s * (1 + 1e-9)
    if slo.ttft_s is not None and slo.ttft_quantile is None:
        ok = ok and est.ttft_s <= slo.ttft_s * (1 + 1e-9)
    if slo.itl_max_s is not None:  # a decode step, then the longest prefill piece
        stall = est.prefill.time_s if est.decode_stall_s is None else est.decode_stall_s
        ok = ok and est.decode.time_s + stall <= slo.itl_max_s * (1 + 1e-9)
    return ok


#: chunked-prefill sizes searched when a longest-gap target is given (and None: one pass)
DEFAULT_PREFILL_CHUNKS = (256, 512, 1024, 2048, 4096, 8192)


def compare(
    model: str | ModelSpec,
    hardware: Sequence[str],
    *,
    devices: int | Sequence[int],
    input_tokens: int,
    output_tokens: int,
    **plan_options: Any,
) -> list[dict[str, Any]]:
    """The best plan of the same workload on each hardware id, side by side.

    ``devices`` is one budget for all, or one per hardware id. Each row: hardware, devices, the
    best plan's fields and metrics (goodput, TTFT, TPOT, $/Mtok, J/token), or ``error`` when no
    plan runs or meets the SLOs there.
    """
    budgets = [devices] * len(hardware) if isinstance(devices, int) else list(devices)
    if len(budgets) != len(hardware):
        raise SpecError(f"devices has {len(budgets)} entries for {len(hardware)} hardware ids")
    rows: list[dict[str, Any]] = []
    for hw_id, n in zip(hardware, budgets, strict=True):
        row: dict[str, Any] = {"hardware": hw_id, "devices": n}
        try:
            report = plan(
                model,
                hw_id,
                devices=n,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                **plan_options,
            )
        except InfeasibleError as exc:
            rows.append({**row, "error": str(exc)})
            continue
        row["evaluated"] = report.evaluated
        if report.best is None:
            rows.append({**row, "error": "no plan meets the SLOs"})
            continue
        b = report.best
        rows.append(
            {
                **row,
                "tp": b.plan.tp,
                "pp": b.plan.pp,
                "ep": b.plan.ep,
                "dp": b.plan.dp,
                "weight_dtype": b.precision.weight_dtype,
                "concurrency": b.batch,
                **(
                    {}
                    if report.request_rate_per_s is None
                    else {"instances": report.instances, "devices_needed": report.devices_needed}
                ),
                "ttft_s": b.ttft_s,
                "tpot_s": b.tpot_s,
                "output_tokens_per_s_per_device": b.output_tokens_per_s_per_device,
                "usd_per_million_output_tokens": b.usd_per_million_output_tokens,
                "joules_per_output_token": b.joules_per_output_token,
                "error": None,
            }
        )
    return rows
