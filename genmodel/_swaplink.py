"""The offload tier swap preemption copies a preempted sequence's KV to and back from.

Modelling assumptions: one copy of n tokens takes the tier's latency plus n x KV bytes per token per
device over the tier's bandwidth per device while the devices of a node (at most the plan's) copy at
once; the tier's capacity is shared the same way (:class:`~genmodel._hardware.AttachedTier`).
"""

from __future__ import annotations

from dataclasses import dataclass

from genmodel._engines import Engine
from genmodel._errors import SpecError
from genmodel._hardware import AttachedTier
from genmodel._parallel import Plan
from genmodel._system import System


@dataclass(frozen=True, slots=True, kw_only=True)
class SwapLink:
    """The offload tier swap preemption copies KV to: one copy of n tokens takes
    ``latency_s + n * token_bytes / bandwidth_bytes_per_s`` (per device, all devices in parallel)."""

    bandwidth_bytes_per_s: float
    latency_s: float
    token_bytes: float  # KV bytes per token per device
    capacity_tokens: int  # KV tokens one replica may keep on the tier

    def copy_s(self, tokens: int) -> float:
        """Seconds to copy ``tokens`` tokens of KV one way."""
        return self.latency_s + tokens * self.token_bytes / self.bandwidth_bytes_per_s


def swap_link(
    system: System, plan: Plan, engine: Engine, tier: AttachedTier | None, token_bytes: float
) -> SwapLink | None:
    """The swap path of ``engine.preemption == "swap"`` (None for recompute): the tier's share of
    bandwidth and capacity per device while the devices of a node (at most the plan's) copy at once.

    Raises:
        SpecError: swap without a tier, or a tier the device cannot reach.
    """
    if engine.preemption != "swap":
        return None
    device = system.device
    if tier is None:
        raise SpecError(
            f"preemption='swap' needs a KV offload tier: hardware={device.id} has none in hardware_db "
            "(give one, or use preemption='recompute')"
        )
    sharing = min(plan.num_devices, system.num_node_devices)
    return SwapLink(
        bandwidth_bytes_per_s=tier.bandwidth_per_device(device, sharing),
        latency_s=tier.latency_s(device),
        token_bytes=token_bytes,
        capacity_tokens=int(tier.capacity_per_device(sharing) // token_bytes),
    )
