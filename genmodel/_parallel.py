"""Parallel plans, their feasibility, and how MoE experts and their tokens spread over devices.

Modelling assumptions:
- A plan is TP x CP x DP devices per pipeline stage, times PP stages. Attention (and dense layers)
  run per replica: ``tp`` devices share heads and FFN columns (Megatron-LM, Shoeybi et al. 2019,
  Sec. 3), ``cp`` devices share each sequence (ring attention), ``dp`` replicas share the batch.
- MoE layers of one stage form one instance over all ``tp * dp`` devices (attention-DP with MoE-EP,
  as DeepSeek-V3, SGLang and CloudMatrix-Infer deploy it): ``ep`` devices hold different experts,
  each expert split over ``tp * dp / ep`` devices (MoE-TP; ``ep = 1`` is pure MoE-TP).
  With E experts, r redundant replicas (EPLB) and ``ep`` groups, a device holds ceil((E+r)/ep)
  expert slots; under uniform routing its share of the token-expert pairs is its slots/(E+r),
  times a load-imbalance factor (the expected busiest device over the mean).
- Default imbalance: balls into bins, the busiest of ep groups receives about
  mean + sqrt(2 mean ln ep) of the routed pairs (Raab and Steger, "Balls into bins - a simple and
  tight analysis", RANDOM 1998, Thm. 1) for uniform routing; a measured factor may be given
  instead (real routers are skewed; EPLB replicas bring it back toward 1).
- PP splits the layers evenly over ``pp`` stages; activations cross each stage boundary once per
  microbatch (point-to-point).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from genmodel._errors import InfeasibleError, require_ints
from genmodel._hardware import Device
from genmodel._model import ModelSpec
from genmodel._ops import MoeLayout
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
        require_ints(**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    @property
    def num_devices(self) -> int:
        """Devices the plan occupies: tp * cp * dp * pp."""
        return self.tp * self.pp * self.dp * self.cp

    @property
    def num_stage_devices(self) -> int:
        """Devices of one pipeline stage: tp * cp * dp."""
        return self.tp * self.dp * self.cp

    def seqs_per_replica(self, batch: int) -> int:
        """Sequences on the fullest of the dp replicas when ``batch`` spread over them: ceil(batch / dp)."""
        return math.ceil(batch / self.dp)


def plan_violations(plan: Plan, model: ModelSpec, device: Device) -> list[str]:
    """Reasons ``plan`` cannot run ``model`` on ``device`` (empty when it can).

    Divisibility: tp divides the attention heads and, for grouped-query attention, the KV heads
    (tp <= KV heads) or is a multiple of them (:meth:`~genmodel._attention.Attention.tp_violations`);
    pp at most one stage per layer; ep divides tp*dp (devices hold ceil(experts/ep) experts, so
    ep need not divide the experts); at most one expert group per expert.
    """
    out: list[str] = []
    m = model
    out.extend(m.attention.tp_violations(plan.tp))
    if plan.pp > m.num_layers:
        out.append(f"pp={plan.pp} must be <= num_layers={m.num_layers}")
    if plan.ep > 1:
        if m.moe is None:
            out.append(f"ep={plan.ep} needs a mixture-of-experts model; {m.id} is dense")
        else:
            if plan.ep > m.moe.num_experts:
                out.append(f"ep={plan.ep} must be <= num_experts={m.moe.num_experts}")
            if (plan.tp * plan.dp) % plan.ep:
                out.append(f"ep={plan.ep} must divide tp*dp={plan.tp * plan.dp}")
    return out


def check_plan(plan: Plan, model: ModelSpec, device: Device) -> None:
    """Raise :class:`InfeasibleError` listing every violation of :func:`plan_violations`."""
    violations = plan_violations(plan, model, device)
    if violations:
        raise InfeasibleError(violations)


def moe_layout(plan: Plan, *, redundant_experts: int = 0, imbalance: float | None = None) -> MoeLayout:
    """The MoE layout of ``plan``: ep expert groups over its tp * dp devices per stage."""
    return MoeLayout(
        ep=plan.ep, dp=plan.dp, tp=plan.tp, redundant_experts=redundant_experts, imbalance=imbalance
    )


def ep_dispatch_bytes(
    tokens_per_device: Num,
    hidden_size: int,
    element_bytes: float,
    *,
    top_k: int,
    layout: MoeLayout,
    domain_devices: int | None,
    dedup_domains: bool = True,
) -> tuple[Num, Num]:
    """Bytes one device sends in one expert-parallel dispatch (or receives in the combine).

    Each of the device's tokens goes to its top-k experts, each split over ``moe_tp`` devices: k *
    moe_tp copies of a hidden vector, of which (n-1)/n land on other devices (n = tp * dp). A token
    bound for several devices of one remote domain crosses the scale-out tier once and is forwarded
    inside it (DeepSeek-V3 report, Sec. 3.2.2; DeepEP normal kernels): with U domains, it reaches
    U(1 - (1 - 1/U)^k) of them, (U-1)/U of those remote. Without ``dedup_domains`` (DeepEP
    low-latency kernels, used in decode) every copy for a remote domain crosses it: the remote
    peers' share, (n - D)/(n - 1) of the copies.

    Returns:
        (send_bytes, scale_out_bytes): all bytes sent to other devices (every one crosses the
        scale-up tier once), and the part that leaves the domain (0 inside one domain).
    """
    n = layout.num_devices
    vector = hidden_size * element_bytes
    copies = top_k * layout.moe_tp
    send = tokens_per_device * copies * (n - 1) / n * vector
    if domain_devices is None or n <= domain_devices:
        return send, 0 * send
    if not dedup_domains:
        return send, send * (n - domain_devices) / (n - 1)
    domains = math.ceil(n / domain_devices)
    reached = domains * (1 - (1 - 1 / domains) ** top_k)
    return send, tokens_per_device * reached * (domains - 1) / domains * vector
