"""One-line summaries of devices and models for listings (human units)."""

from __future__ import annotations

from typing import Any

from genmodel._attention import MultiHeadLatentAttention
from genmodel._hardware import Device, Link, MemoryTier
from genmodel._model import ModelSpec, count_params
from genmodel._system import System
from genmodel._units import GB, TB, TFLOP, US, GiB


def describe_device(d: Device) -> dict[str, Any]:
    """Headline figures of a device: id, name, memory, bandwidth, dense peaks, fabric, power, price."""
    up = d.scale_up
    return {
        "id": d.id,
        "kind": "device",
        "name": d.name,
        "memory_gib": round(d.memory_capacity_bytes / GiB, 1),
        "bandwidth_tb_per_s": round(d.memory_bandwidth_bytes_per_s / TB, 3),
        "dense_tflops": {k: round(v / TFLOP, 1) for k, v in d.peak_flops_per_s.items()},
        "scale_up_gb_per_s": None if up is None else round(up.bandwidth_bytes_per_s / GB, 1),
        "tdp_w": d.tdp_w,
        "usd_per_hour": d.usd_per_hour,
    }


def describe_memory_tier(t: MemoryTier) -> dict[str, Any]:
    """Headline figures of a memory tier: medium, capacity, bandwidth, latency and its link."""
    return {
        "id": t.id,
        "kind": "memory tier",
        "name": t.name,
        "medium": t.medium,
        "capacity_gib": round(t.capacity_bytes / GiB, 1),
        "bandwidth_gb_per_s": round(t.bandwidth_bytes_per_s / GB, 2),
        "latency_ns": round(t.latency_s * 1e9, 1),
        "link": None if t.link is None else t.link.name,
        "link_gb_per_s": None if t.link is None else round(t.link.bandwidth_bytes_per_s / GB, 2),
        "power_w": t.power_w,
    }


def describe_link(link_id: str, link: Link, kind: str) -> dict[str, Any]:
    """Headline figures of a standard link: bandwidth per direction and latency."""
    return {
        "id": link_id,
        "kind": "link",
        "name": link.name,
        "link_kind": kind,
        "bandwidth_gb_per_s": round(link.bandwidth_bytes_per_s / GB, 2),
        "latency_us": round(link.latency_s / US, 3),
    }


def describe_system(s: System) -> dict[str, Any]:
    """Headline figures of a system: its device, node size, size limit and fabric tiers."""
    return {
        "id": s.id,
        "kind": "system",
        "name": s.name,
        "device": s.device.id,
        "devices_per_node": s.num_node_devices,
        "max_devices": s.max_devices,
        "comm_overlap_frac": s.comm_overlap_frac,
        "fabric": [
            {
                "name": t.name,
                "level": t.level,
                "topology": t.topology,
                "domain_devices": t.num_domain_devices,
                "bandwidth_gb_per_s": round(t.bandwidth_bytes_per_s / GB, 2),
                "latency_us": round(t.latency_s / US, 3),
                "bus_frac": s.bus_frac(t),
            }
            for t in s.fabric
        ],
    }


def describe_model(m: ModelSpec, *, full: bool = False) -> dict[str, Any]:
    """Size and shape of a model; ``full`` adds every architecture field and parameter counts."""
    params = count_params(m)
    a = m.attention
    active = params["total"]
    if m.moe is not None:
        unused = m.moe.num_experts - m.moe.num_experts_per_tok
        active -= m.num_moe_layers * unused * m.params_per_expert
    row: dict[str, Any] = {
        "id": m.id,
        "params_b": round(params["total"] / 1e9, 2),
        "active_params_b": round(active / 1e9, 2),
        "layers": m.num_layers,
        "hidden": m.hidden_size,
        "attention": a.kind,
        "heads": a.heads,
        "kv_heads": a.kv_heads,
        "experts": 0 if m.moe is None else m.moe.num_experts,
        "top_k": 0 if m.moe is None else m.moe.num_experts_per_tok,
    }
    if full:
        row |= {
            "name": m.name,
            "head_dim": a.head_dim,
            "intermediate_size": m.intermediate_size,
            "vocab_size": m.vocab_size,
            "tie_word_embeddings": m.tie_word_embeddings,
            "sliding_window": m.sliding_window,
            "num_sliding_window_layers": m.num_sliding_window_layers,
            "mla": None
            if not isinstance(a, MultiHeadLatentAttention)
            else {
                "q_lora_rank": a.q_lora_rank,
                "kv_lora_rank": a.kv_lora_rank,
                "qk_nope_head_dim": a.qk_nope_head_dim,
                "qk_rope_head_dim": a.qk_rope_head_dim,
                "v_head_dim": a.v_head_dim,
            },
            "moe": None
            if m.moe is None
            else {
                "expert_intermediate_size": m.moe.expert_intermediate_size,
                "shared_intermediate_size": m.moe.shared_intermediate_size,
                "num_dense_layers": m.moe.num_dense_layers,
            },
            "kv_elements_per_token_per_layer": int(a.kv_elements_per_token()),
            "params": params,
            # per quantised weight dtype, the modules its published checkpoint keeps in another precision
            "kept_modules": {w: dict(rule) for w, rule in m.kept_modules},
            "source": m.source,
        }
    return row
