"""The JSON form of an estimate: the keys the CLI, the dashboard, sweeps and golden files read.

SI units throughout (seconds and bytes); a key is None where the estimate has no such figure
(no TDP, no price, no offload, no speculation, not disaggregated, a static batch). ``notes`` (a
list of sentences) is there only when the estimate assumes something beyond what was asked.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from genmodel._cost import PhaseCost
from genmodel._intervals import COVERAGE, estimate_intervals
from genmodel._options import Offload, Speculation
from genmodel._phases import Estimate


def phase_dict(cost: PhaseCost) -> dict[str, Any]:
    """The JSON form of a phase: time_s, compute_s, memory_s, comm_s, overhead_s, bound, and the
    collectives."""
    return {
        "time_s": cost.time_s,
        "compute_s": cost.compute_s,
        "memory_s": cost.memory_s,
        "comm_s": cost.comm_s,
        "comm_hidden_s": cost.comm_hidden_s,
        "offload_s": cost.offload_s,
        "offload_hidden_s": cost.offload_hidden_s,
        "overhead_s": cost.overhead_s,
        "bound": cost.bound,
        "comm_breakdown": dict(cost.comm_breakdown),
        "dominant_collective": cost.dominant_collective,
    }


def interval_dict(est: Estimate, coverage: float = COVERAGE) -> dict[str, Any]:
    """The intervals of the headline metrics: ``ttft_s_interval``, ``tpot_s_interval``,
    ``output_tokens_per_s_interval`` ([lo, hi], same units), ``interval_coverage`` (fraction of
    measurements each should hold), ``interval_evidence`` (calibrated, transferred, datasheet) and
    ``interval_basis`` (per metric: the residual group, its cases and the widening factor)."""
    ivs = estimate_intervals(est, coverage=coverage)
    first = next(iter(ivs.values()))
    return {
        **{f"{m}_interval": iv.as_list() for m, iv in ivs.items()},
        "interval_coverage": coverage,
        "interval_evidence": first.evidence,
        "interval_basis": {
            m: {"group": iv.group, "cases": iv.num_cases, "widening": iv.widening} for m, iv in ivs.items()
        },
    }


def estimate_dict(est: Estimate, *, coverage: float = COVERAGE) -> dict[str, Any]:
    """The JSON form of an estimate: its plan, precisions, latencies, throughputs with their
    intervals at ``coverage`` (:func:`interval_dict`), memory, the phases (:func:`phase_dict`) and
    the run options (SI units: seconds and bytes)."""
    m, o = est.memory, est.options
    return {
        "model": est.model_id,
        "hardware": est.hardware_id,
        "system": est.system_id or est.hardware_id,
        "mode": est.mode,
        "devices": est.num_devices,
        "tp": est.plan.tp,
        "pp": est.plan.pp,
        "ep": est.plan.ep,
        "dp": est.plan.dp,
        "cp": est.plan.cp,
        "weight_dtype": est.precision.weight_dtype,
        "act_dtype": est.precision.act_dtype,
        "kv_dtype": est.precision.kv_dtype,
        # the modules kept in another precision than weight_dtype (a quantised checkpoint's)
        "keep_modules": dict(est.precision.keep_modules),
        "input_tokens": est.input_tokens,
        "output_tokens": est.output_tokens,
        "batch": est.batch,
        "ttft_s": est.ttft_s,
        "tpot_s": est.tpot_s,
        "e2e_s": est.e2e_s,
        "output_tokens_per_s": est.output_tokens_per_s,
        "output_tokens_per_s_per_device": est.output_tokens_per_s_per_device,
        "prefill_tokens_per_s_per_device": est.prefill_tokens_per_s_per_device,
        "decode_tokens_per_s_per_device": est.decode_tokens_per_s_per_device,
        **interval_dict(est, coverage),
        "joules_per_output_token": est.joules_per_output_token,
        "usd_per_million_output_tokens": est.usd_per_million_output_tokens,
        "memory": {
            "weights_bytes_per_device": m.weights_bytes_per_device,
            "kv_cache_bytes_per_device": m.kv_cache_bytes_per_device,
            "activation_bytes_per_device": m.activation_bytes_per_device,
            "total_bytes_per_device": m.total_bytes_per_device,
            "capacity_bytes_per_device": m.capacity_bytes_per_device,
            "usable_bytes_per_device": m.usable_bytes_per_device,
            "fits": m.fits,
            "device_bytes_per_device": m.device_bytes_per_device,
            "offloaded_bytes_per_device": m.offloaded_bytes_per_device,
            "kv_bytes_per_sequence": m.kv_bytes_per_sequence,
            "swap_s_per_sequence": m.swap_time_s(),
            "tiers": [t.to_dict() for t in m.tiers],
        },
        "prefill": phase_dict(est.prefill),
        "decode": phase_dict(est.decode),
        "comm_overlap_frac": est.comm_overlap_frac,
        "redundant_experts": o.redundant_experts,
        "moe_imbalance": o.moe_imbalance,
        "speculation": _speculation_dict(o.speculation),
        "disaggregated": o.disaggregated,
        "kv_transfer_s": est.kv_transfer_s,
        "kv_transfer_exposed_s": est.kv_transfer_exposed_s,
        "decode_stall_s": est.decode_stall_s,
        "kv_block_tokens": o.kv_block_tokens,
        "prefix_hit_rate": o.prefix_hit_rate,
        "sparse_attention_frac": o.sparse_attention_frac,
        "prefill_chunk": o.prefill_chunk,
        "offload": _offload_dict(o.offload),
        "serving": None if est.serving is None else dataclasses.asdict(est.serving),
        # only when there is something to say (a precision the device lacks, a long context)
        **({"notes": list(est.notes)} if est.notes else {}),
    }


def _offload_dict(offload: Offload) -> dict[str, Any] | None:
    if not offload.any:
        return None
    return {
        "kv": None if offload.kv is None else offload.kv.label,
        "weights": None if offload.weights is None else offload.weights.label,
        "experts": None if offload.experts is None else offload.experts.label,
        "kv_window": offload.kv_window,
        "expert_hit_rate": offload.expert_hit_rate,
        "overlap": offload.overlap,
    }


def _speculation_dict(spec: Speculation | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    return {
        "draft_tokens": spec.draft_tokens,
        "acceptance_rate": spec.acceptance_rate,
        "draft_model": "mtp" if spec.draft_model is None else spec.draft_model.id,
        "tokens_per_step": spec.tokens_per_step,
    }
