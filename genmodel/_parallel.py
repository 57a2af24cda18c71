"""Parallel plans: their feasibility, how MoE experts and their tokens spread over devices, and
the collectives a plan adds to a step.

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
- Collectives of a step (:func:`step_collectives`), per block: the tensor-parallel all-reduce
  after attention and after a dense FFN (Megatron-LM); for MoE blocks the all-reduce (MoE-TP inside
  a replica), an all-gather and reduce-scatter (MoE-TP over attention-DP replicas), or the
  expert-parallel dispatch and combine all-to-alls (plus an all-gather over tp), which last until
  the busiest device has received its experts' share of the routed pairs: the mean device's bytes
  times the busiest share over the mean (the slot count and the load imbalance above). Context
  parallelism (ring attention, Liu et al. 2023): in prefill each of the cp ranks passes its KV
  block around the ring, cp-1 hops per layer, overlapped with that layer's attention; in decode
  the ranks' partial attention outputs are combined by an all-reduce per layer.

A plan is a value the operators read (``_ops`` sits above this module): the sharding of each
operator is written with the operator, the collectives between operators are written here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

from genmodel._collectives import allgather_time, allreduce_time, alltoall_time, p2p_time, reduce_scatter_time
from genmodel._errors import InfeasibleError, SpecError, require_ints
from genmodel._hardware import Device
from genmodel._model import ModelSpec
from genmodel._system import System
from genmodel._units import Num, maximum, minimum
from genmodel._workload import Precision


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """How a model is spread over devices: tensor, pipeline, expert, data and context parallel degrees."""

    tp: int = 1
    pp: int = 1
    ep: int = 1
    dp: int = 1
    cp: int = 1

    def __post_init__(self) -> None:
        require_ints(tp=self.tp, pp=self.pp, ep=self.ep, dp=self.dp, cp=self.cp)

    @property
    def num_devices(self) -> int:
        """Devices the plan occupies: tp * cp * dp * pp."""
        return self.tp * self.pp * self.dp * self.cp

    @property
    def num_stage_devices(self) -> int:
        """Devices of one pipeline stage: tp * cp * dp."""
        return self.tp * self.dp * self.cp

    def server_gpus(self, *, moe: bool) -> int:
        """GPUs of one serving engine (a server): its TP group, or for an MoE model all attention-DP
        ranks, which one server runs in lockstep (the engines' ``tp_size`` under DP attention)."""
        return self.tp * self.dp if moe else self.tp

    def seqs_per_replica(self, batch: int) -> int:
        """Sequences on the fullest of the dp replicas when ``batch`` spread over them: ceil(batch / dp)."""
        return math.ceil(batch / self.dp)


def check_expert_options(redundant_experts: int, imbalance: float | None) -> None:
    """Raise :class:`SpecError` unless redundant_experts >= 0 and imbalance (when given) >= 1."""
    require_ints(minimum=0, redundant_experts=redundant_experts)
    if imbalance is not None and not imbalance >= 1:
        raise SpecError(f"moe_imbalance={imbalance!r} must be >= 1 (busiest over mean)")


@dataclass(frozen=True, slots=True, kw_only=True)
class MoeLayout:
    """How routed experts spread over the ``tp * dp`` devices of one MoE instance (one stage).

    Attributes:
        ep: expert-parallel groups (devices holding different experts).
        dp: attention data-parallel replicas feeding the instance.
        tp: tensor-parallel degree of attention (each replica's tokens are split over it).
        redundant_experts: extra replicas of (hot) experts, as EPLB places them.
        imbalance: busiest device's routed pairs over the mean; None = the balls-into-bins estimate
            for uniform routing.
    """

    ep: int = 1
    dp: int = 1
    tp: int = 1
    redundant_experts: int = 0
    imbalance: float | None = None

    def __post_init__(self) -> None:
        require_ints(ep=self.ep, dp=self.dp, tp=self.tp)
        if (self.tp * self.dp) % self.ep:
            raise SpecError(f"ep={self.ep} must divide tp*dp={self.tp * self.dp}")
        check_expert_options(self.redundant_experts, self.imbalance)

    @property
    def num_devices(self) -> int:
        """Devices of the instance: tp * dp."""
        return self.tp * self.dp

    @property
    def moe_tp(self) -> int:
        """Devices each expert is split over: tp * dp / ep."""
        return self.num_devices // self.ep

    def num_slots(self, num_experts: int) -> int:
        """Expert slots: the experts plus their redundant replicas."""
        return num_experts + self.redundant_experts

    def experts_per_device(self, num_experts: int) -> int:
        """Expert slots on the fullest device: ceil((E + r) / ep)."""
        return math.ceil(self.num_slots(num_experts) / self.ep)

    def imbalance_factor(self, routed_pairs: Num) -> Num:
        """Busiest expert group's routed pairs over the mean, for ``routed_pairs`` in the instance.

        The given factor, or 1 + sqrt(2 ln(ep) / mean) for uniform routing (balls into bins, Raab
        and Steger 1998), capped at ep (everything on one group).
        """
        if self.imbalance is not None:
            return self.imbalance + 0 * routed_pairs
        if self.ep == 1:
            return 1 + 0 * routed_pairs
        mean = routed_pairs / self.ep
        return minimum(1 + (2 * math.log(self.ep) / mean) ** 0.5, float(self.ep))

    def device_pair_share(self, num_experts: int, routed_pairs: Num) -> Num:
        """Fraction of the instance's routed pairs the busiest device's experts compute."""
        share = self.experts_per_device(num_experts) / self.num_slots(num_experts)
        return minimum(share * self.imbalance_factor(routed_pairs), 1.0)


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


@functools.lru_cache(maxsize=256)  # (a search asks for each layout's several times; it is frozen)
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


def step_collectives(
    model: ModelSpec,
    system: System,
    plan: Plan,
    precision: Precision,
    layout: MoeLayout | None,
    *,
    algorithm: str,
    phase: str,
    seqs: Num,
    new_tokens: Num,
    attention_s: Num,
    reuse: Callable[[tuple[str, int, str], System, Num, Callable[[], Num]], Num] | None = None,
) -> tuple[dict[str, Num], Num]:
    """Per-kind collective time of one microbatch through the whole model, and the CP ring's share.

    The plan's schedule of collectives for a step (the module docstring): the tensor-parallel
    all-reduces, the MoE all-gather/reduce-scatter or expert-parallel dispatch and combine, and
    the context-parallel ring (prefill) or combine (decode), each with ``algorithm`` (ring, tree,
    direct or auto) where it has a choice. ``seqs`` sequences of ``new_tokens`` tokens each on the
    replica; ``attention_s`` is the step's attention time the CP ring overlaps.

    ``reuse(names, system, message, make)``: the tensor-parallel collectives' times kept by their
    message (:func:`~genmodel._evaluate.reused`; None: each made here).

    Returns (breakdown, cp_ring_s) where cp_ring_s is the ring-attention transfer left exposed
    after it overlapped the attention it feeds (already included in the breakdown).
    """
    d, tp, dp, cp = model.hidden_size, plan.tp, plan.dp, plan.cp
    prefill = phase == "prefill"
    rows = seqs * new_tokens / (cp if prefill else 1)  # token rows on one device
    message = rows * d * precision.comm_bytes
    algo = algorithm
    out: dict[str, Num] = {}

    def add(name: str, seconds: Num) -> None:
        out[name] = out.get(name, 0.0) + seconds

    def over_tp(collective: Callable[..., Num]) -> Num:  # one collective of the message over tp
        def make() -> Num:
            return collective(message, tp, system, algorithm=algo)

        return make() if reuse is None else reuse((collective.__name__, tp, algo), system, message, make)

    if tp > 1:
        ar = over_tp(allreduce_time)
        # after attention in every block, after each dense FFN, and after the vocab-parallel embedding
        add("tp_allreduce", (model.num_layers + model.num_dense_layers + 1) * ar)
        if model.moe is not None and plan.ep == 1 and dp == 1:
            add("tp_allreduce", model.num_moe_layers * ar)
    if model.moe is not None and layout is not None and (plan.ep > 1 or dp > 1):
        n_moe = model.num_moe_layers
        n = tp * dp
        if plan.ep == 1:
            # MoE-TP over all replicas: gather every replica's tokens, reduce-scatter the outputs
            gathered = message * dp
            add("moe_allgather", n_moe * allgather_time(gathered, n, system, algorithm=algo))
            add("moe_reduce_scatter", n_moe * reduce_scatter_time(gathered, n, system, algorithm=algo))
        else:
            domain = system.fabric[0].num_domain_devices if len(system.fabric) > 1 else None
            k = model.moe.num_experts_per_tok
            # every device sends its own tokens, but the busiest receives its experts' share of the
            # routed pairs (and returns their outputs): the all-to-all lasts until it has
            busiest = maximum(layout.device_pair_share(model.moe.num_experts, rows * dp * k) * plan.ep, 1.0)
            for name, element_bytes in (
                ("ep_dispatch", precision.act_bytes),  # tokens leave in the activation dtype (fp8 in DeepEP)
                ("ep_combine", precision.comm_bytes),  # weighted outputs return in 16 bits
            ):
                # prefill sends a token once per remote domain (DeepEP normal kernels); decode
                # sends every copy straight to its device (DeepEP low-latency kernels)
                send, outside = ep_dispatch_bytes(
                    rows / tp,
                    d,
                    element_bytes,
                    top_k=k,
                    layout=layout,
                    domain_devices=domain,
                    dedup_domains=prefill,
                )
                # (only a prefill's all-to-all takes the bytes that leave the scale-up domain)
                spans = domain is not None and n > domain and prefill
                send, outside = send * busiest, outside * busiest if spans else None
                t = alltoall_time(send, n, system, scale_out_bytes=outside)
                add(name, n_moe * t)
            if tp > 1:  # each tp rank combined 1/tp of the tokens: gather them back
                add("tp_allgather", n_moe * over_tp(allgather_time))
    cp_ring: Num = 0.0
    if cp > 1:
        kv_elements = model.attention.kv_elements_per_token(tp)
        if prefill:
            # every rank passes its KV block cp-1 hops around the ring, overlapped with attention
            block = seqs * new_tokens / cp * kv_elements * precision.kv_bytes
            hop = p2p_time(block, system, group_devices=tp * cp)
            ring = model.num_layers * (cp - 1) * hop
            cp_ring = maximum(ring - attention_s, 0.0)
            add("cp_ring", ring)
        else:
            # combine the ranks' partial attention outputs (fp32 partial sums and their log-sum-exp)
            partial = seqs * (model.attention.heads / tp) * (model.attention.head_dim + 1) * 4
            add("cp_combine", model.num_layers * allreduce_time(partial, cp, system, algorithm=algo))
    return out, cp_ring


def pp_send_time(
    model: ModelSpec, system: System, plan: Plan, precision: Precision, *, seqs: Num, new_tokens: Num
) -> Num:
    """Point-to-point sends of one microbatch's activations across the pp - 1 stage boundaries
    (``seqs`` sequences of ``new_tokens`` tokens, split over cp)."""
    message = seqs * new_tokens / plan.cp * model.hidden_size * precision.comm_bytes
    hop = p2p_time(message, system, group_devices=2 * plan.num_stage_devices)
    return (plan.pp - 1) * hop
