"""The KV transfer of disaggregated prefill/decode: the prompts' KV cache from a prefill device to its
decode peer, and the part of it the TTFT waits for.

Modelling assumptions (DistServe, Zhong et al., OSDI 2024, Sec. 4; Splitwise, Patel et al., ISCA
2024): each device sends its own shard of the cache to one peer, point to point over the innermost
tier that holds both pools; the transfer streams layer by layer while the prefill runs, so only what
has not overlapped (at least the last layer's share) adds to TTFT.
"""

from __future__ import annotations

from genmodel._collectives import p2p_time
from genmodel._model import ModelSpec
from genmodel._parallel import Plan
from genmodel._sizes import kv_bytes_per_sequence
from genmodel._system import System
from genmodel._units import Num, maximum
from genmodel._workload import Precision


def kv_transfer_time(
    model: ModelSpec,
    system: System,
    plan: Plan,
    precision: Precision,
    *,
    seqs_per_replica: float,
    input_tokens: int,
    group_devices: int | None = None,
) -> Num:
    """Time to move the prompts' KV cache from each prefill device to its decode peer.

    Each device sends its own shard (its heads, layers and tokens) to one peer, over the innermost
    tier that holds both pools (2x the plan's devices; CloudMatrix384's UB holds both, separate DGX
    nodes need the scale-out network). ``group_devices`` overrides that pair's size (a prefill and
    a decode instance of different sizes). Source: DistServe (Zhong et al., OSDI 2024), Sec. 4.
    """
    per_device = seqs_per_replica * kv_bytes_per_sequence(
        model, precision, input_tokens, tp=plan.tp, pp=plan.pp, cp=plan.cp
    )
    group = 2 * plan.num_devices if group_devices is None else group_devices
    return p2p_time(per_device, system, group_devices=group)


def exposed_transfer_s(transfer_s: Num, prefill_s: Num, num_layers: int) -> Num:
    """The part of a KV transfer left on the TTFT: streamed layer by layer behind the prefill, so
    only what the prefill of the other layers does not cover, and at least the last layer's share,
    waits (DistServe, Zhong et al. OSDI 2024, Sec. 4)."""
    return maximum(transfer_s / num_layers, transfer_s - prefill_s * (num_layers - 1) / num_layers)
