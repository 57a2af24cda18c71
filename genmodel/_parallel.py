"""Parallel plans, their feasibility, and the cost of the collectives they add.

Modelling assumptions:
- A plan is TP x PP x DP devices; EP spreads MoE experts over devices of the same deployment
  (``ep`` divides ``tp * dp``). SP/CP (``cp``) is carried for later use.
- TP adds two all-reduces of the activations per block (after attention and after the FFN) and
  one after the vocabulary-parallel embedding (Megatron-LM, Shoeybi et al. 2019, Sec. 3).
- Collectives cost alpha-beta: a ring all-reduce over n devices moves 2(n-1)/n of the message
  through each link and takes 2(n-1) latency hops (Thakur, Rabenseifner, Gropp 2005), plus a fixed
  per-call cost. A group larger than the scale-up domain runs at the scale-out link's speed.
- PP splits the layers evenly over ``pp`` stages; activations cross each stage boundary once per
  microbatch (point-to-point).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from genmodel._errors import InfeasibleError, SpecError
from genmodel._hardware import Device, Link
from genmodel._model import ModelSpec
from genmodel._units import Num


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """How a model is spread over devices: tensor, pipeline, expert, data and context parallel degrees."""

    tp: int = 1
    pp: int = 1
    ep: int = 1
    dp: int = 1
    cp: int = 1

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, int) and value >= 1):
                raise SpecError(f"{f.name}={value!r} must be an integer >= 1")

    @property
    def num_devices(self) -> int:
        """Devices the plan occupies: tp * pp * dp * cp."""
        return self.tp * self.pp * self.dp * self.cp


def plan_violations(plan: Plan, model: ModelSpec, device: Device) -> list[str]:
    """Reasons ``plan`` cannot run ``model`` on ``device`` (empty when it can).

    Divisibility: tp divides the attention heads and (when tp <= KV heads) the KV heads;
    pp divides into at most one stage per layer; ep divides the experts and tp*dp.
    """
    out: list[str] = []
    m = model
    if m.num_attention_heads % plan.tp:
        out.append(f"tp={plan.tp} must divide num_attention_heads={m.num_attention_heads}")
    if m.mla is None and plan.tp <= m.num_kv_heads and m.num_kv_heads % plan.tp:
        out.append(f"tp={plan.tp} must divide num_kv_heads={m.num_kv_heads}")
    if m.mla is None and plan.tp > m.num_kv_heads and plan.tp % m.num_kv_heads:
        out.append(f"tp={plan.tp} must be a multiple of num_kv_heads={m.num_kv_heads}")
    if plan.pp > m.num_layers:
        out.append(f"pp={plan.pp} must be <= num_layers={m.num_layers}")
    if plan.ep > 1:
        if m.moe is None:
            out.append(f"ep={plan.ep} needs a mixture-of-experts model; {m.id} is dense")
        else:
            if m.moe.num_experts % plan.ep:
                out.append(f"ep={plan.ep} must divide num_experts={m.moe.num_experts}")
            if (plan.tp * plan.dp) % plan.ep:
                out.append(f"ep={plan.ep} must divide tp*dp={plan.tp * plan.dp}")
    return out


def check_plan(plan: Plan, model: ModelSpec, device: Device) -> None:
    """Raise :class:`InfeasibleError` listing every violation of :func:`plan_violations`."""
    violations = plan_violations(plan, model, device)
    if violations:
        raise InfeasibleError(violations)


def group_link(device: Device, group_devices: int) -> Link:
    """The link a group of ``group_devices`` communicates over.

    Inside the scale-up domain (NVLink, XGMI, HCCS, UB) its link; beyond it, or on a device with no
    scale-up fabric, the scale-out link (InfiniBand, RoCE, Ethernet) bounds a ring.
    """
    up = device.scale_up
    if up is not None and (up.num_domain_devices is None or group_devices <= up.num_domain_devices):
        return up
    if device.scale_out is not None:
        return device.scale_out
    if up is not None:
        return up
    raise InfeasibleError(
        [f"hardware={device.id} has no scale-up or scale-out link for a group of {group_devices}"]
    )


def allreduce_time(message_bytes: Num, num_devices: int, device: Device) -> Num:
    """Time of one ring all-reduce of ``message_bytes`` over ``num_devices`` devices.

    t = c + 2(n-1)*alpha + 2(n-1)/n * S / (B * eff), with c the fixed per-call cost, alpha the
    link's per-hop latency, B its per-direction bandwidth and eff the bus-bandwidth efficiency
    (Thakur et al., "Optimization of Collective Communication Operations in MPICH", 2005, Sec. 4).
    Zero for a single device.
    """
    n = num_devices
    if n <= 1:  # nothing to reduce; zero in seconds, so units still check
        return 0 * message_bytes / device.memory_bandwidth_bytes_per_s
    link = group_link(device, n)
    eff = device.efficiency
    return (
        eff.collective_latency_s
        + 2 * (n - 1) * link.latency_s
        + 2 * (n - 1) / n * message_bytes / (link.bandwidth_bytes_per_s * eff.collective_bus_frac)
    )


def p2p_time(message_bytes: Num, device: Device, *, group_devices: int) -> Num:
    """Time to send ``message_bytes`` from one device to the next (a pipeline stage boundary)."""
    link = group_link(device, group_devices)
    eff = device.efficiency
    return (
        eff.collective_latency_s
        + link.latency_s
        + message_bytes / (link.bandwidth_bytes_per_s * eff.collective_bus_frac)
    )
