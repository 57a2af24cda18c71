"""Phases of inference: prefill (TTFT), decode (TPOT) and the static-batch estimate that joins them.

Modelling assumptions:
- Static batching: ``batch`` sequences (whole deployment, split evenly over ``dp`` replicas) are
  prefilled together, then decoded together for ``output_tokens - 1`` steps.
- A step's time on one device is the sum of its operators' roofline times, plus the collectives
  it waits for, plus a fixed per-step overhead. Collectives per block: the tensor-parallel
  all-reduce after attention and after a dense FFN (Megatron-LM); for MoE blocks the all-reduce
  (MoE-TP inside a replica), an all-gather and reduce-scatter (MoE-TP over attention-DP
  replicas), or the expert-parallel dispatch and combine all-to-alls (plus an all-gather over tp).
- A fraction ``comm_overlap_frac`` of the collectives hides behind compute: exposed =
  comm - f * min(comm, compute). Or, explicitly, the pass splits into m microbatches (two-batch
  overlap in SGLang, microbatch pipelining in CloudMatrix-Infer) that alternate, so a pass takes
  m * max(B, K) + min(B, K) for one microbatch's operator time B and collective time K, and every
  microbatch reads the weights again.
- Context parallelism (ring attention, Liu et al. 2023): in prefill each of the cp ranks passes its
  KV block around the ring, cp-1 hops per layer, overlapped with that layer's attention; in decode
  the ranks' partial attention outputs are combined by an all-reduce per layer.
- TPOT is the decode step at the mean context of the output, past = input + (output-2)/2 tokens;
  this is exact while attention stays on one side of its roofline ridge (it is linear in context).
- Speculative decoding (Leviathan et al. 2023; DeepSeek-V3 MTP): k draft steps (a draft model, or
  the target's MTP block) then one verify step over k+1 tokens; with per-token acceptance a, a step
  yields (1 - a^(k+1)) / (1 - a) tokens, and TPOT is the step time over that.
- Pipeline parallelism: the replica's sequences split into m = min(seqs, pp) microbatches; prefill
  takes (m + pp - 1) stage times (the pipeline fill, GPipe, Huang et al. 2019), and a decode round
  gives every microbatch one token in pp stage times.
- Disaggregated prefill/decode (DistServe, Splitwise): the prompt's KV cache moves from the prefill
  device to its decode peer layer by layer while the prefill runs, so only what has not overlapped
  (at least the last layer's share) adds to TTFT.
- Chunked prefill (Sarathi, Agrawal et al. 2023): the prompt runs in passes of ``prefill_chunk``
  tokens, each attending to everything before it and reading the weights again; a prefix-cache hit
  skips the cached tokens. ``decode_stall_s`` is one new request's prefill (or its longest chunk):
  the longest a running decode batch waits for it.
- Sparse (top-k) attention reads a fraction of the cached KV in decode; the cache keeps every token.
- Offload: a step's offloaded share of KV, expert and weight reads crosses the host link
  (:meth:`~genmodel._memory.MemoryUse.transfer_time_s`); prefetched layer by layer, only what the
  step's own work does not cover is exposed.
- Energy uses the device's TDP (an upper bound); cost its price per device-hour.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from genmodel._collectives import (
    ALGORITHMS,
    allgather_time,
    allreduce_time,
    alltoall_time,
    p2p_time,
    reduce_scatter_time,
)
from genmodel._errors import InfeasibleError, SpecError, require_ints
from genmodel._evaluate import step_operators
from genmodel._hardware import Device, System
from genmodel._memory import (
    KV_BLOCK_TOKENS,
    NO_OFFLOAD,
    MemoryExtras,
    MemoryUse,
    Offload,
    kv_bytes_per_sequence,
    max_batch,
    memory_use,
    require_one_sequence,
)
from genmodel._model import ModelSpec
from genmodel._ops import MoeLayout, OpTime, check_expert_options
from genmodel._parallel import Plan, check_plan, ep_dispatch_bytes, moe_layout
from genmodel._units import HOUR, Num, floor, maximum, minimum, where
from genmodel._workload import Precision


@dataclass(frozen=True, slots=True, kw_only=True)
class Speculation:
    """Speculative decoding: k drafted tokens per step, each accepted with probability a.

    ``draft_model`` None means the target's own multi-token-prediction block (DeepSeek MTP).
    """

    draft_tokens: int = 1
    acceptance_rate: float = 0.7
    draft_model: ModelSpec | None = None

    def __post_init__(self) -> None:
        require_ints(draft_tokens=self.draft_tokens)
        if not 0 <= self.acceptance_rate <= 1:
            raise SpecError(f"acceptance_rate={self.acceptance_rate!r} must be in [0, 1]")

    @property
    def tokens_per_step(self) -> float:
        """Expected tokens a verify step yields: (1 - a^(k+1)) / (1 - a) (Leviathan et al. 2023, Eq. 1)."""
        a, k = self.acceptance_rate, self.draft_tokens
        return float(k + 1) if a == 1 else (1 - a ** (k + 1)) / (1 - a)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """How the serving stack runs a plan, beyond its parallel degrees.

    Attributes:
        comm_overlap_frac: fraction of communication hidden behind compute; None = the system's.
        redundant_experts: extra expert replicas (EPLB) spread over the expert-parallel devices.
        moe_imbalance: busiest expert group's load over the mean; None = uniform-routing estimate.
        speculation: speculative decoding / MTP, or None.
        disaggregated: prefill and decode run on separate devices; the KV cache moves between them.
        allreduce_algorithm: ring, tree, direct or auto (the fastest) for all-reduces.
        overlap_microbatches: split each pass into this many microbatches whose collectives
            overlap the others' compute (SGLang two-batch overlap, CloudMatrix-Infer: 2); each
            microbatch reads the weights again. 1 = no split (``comm_overlap_frac`` applies).
        kv_block_tokens: tokens per paged KV-cache block (block waste); 1 = no paging.
        prefix_hit_rate: fraction of each prompt found in the prefix cache: its prefill is skipped
            and its KV is stored once per replica.
        sparse_attention_frac: fraction of the cached KV a decode step reads (top-k attention).
        prefill_chunk: prefill in chunks of this many tokens per sequence (None: one pass).
        offload: tiers for what does not fit the device (KV, weights, experts).
    """

    comm_overlap_frac: float | None = None
    redundant_experts: int = 0
    moe_imbalance: float | None = None
    speculation: Speculation | None = None
    disaggregated: bool = False
    allreduce_algorithm: str = "ring"
    overlap_microbatches: int = 1
    kv_block_tokens: int = KV_BLOCK_TOKENS
    prefix_hit_rate: float = 0.0
    sparse_attention_frac: float = 1.0
    prefill_chunk: int | None = None
    offload: Offload = NO_OFFLOAD

    def __post_init__(self) -> None:
        require_ints(overlap_microbatches=self.overlap_microbatches, kv_block_tokens=self.kv_block_tokens)
        if self.prefill_chunk is not None:
            require_ints(prefill_chunk=self.prefill_chunk)
        if not 0 <= self.prefix_hit_rate < 1:
            raise SpecError(f"prefix_hit_rate={self.prefix_hit_rate!r} must be in [0, 1)")
        if not 0 < self.sparse_attention_frac <= 1:
            raise SpecError(f"sparse_attention_frac={self.sparse_attention_frac!r} must be in (0, 1]")
        f = self.comm_overlap_frac
        if f is not None and not 0 <= f <= 1:
            raise SpecError(f"comm_overlap_frac={f!r} must be in [0, 1]")
        check_expert_options(self.redundant_experts, self.moe_imbalance)
        if self.allreduce_algorithm not in ALGORITHMS:
            raise SpecError(
                f"allreduce_algorithm={self.allreduce_algorithm!r} must be one of {', '.join(ALGORITHMS)}"
            )

    def overlap_frac(self, system: System) -> float:
        """The communication overlap fraction in force: this run's, else the system's default."""
        return system.comm_overlap_frac if self.comm_overlap_frac is None else self.comm_overlap_frac


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseCost:
    """Time of one phase on the critical path, split by what bounds it.

    ``compute_s`` and ``memory_s`` are the sums of the operators' compute and memory times;
    ``compute_bound_s`` and ``memory_bound_s`` the time of the operators each bounds (an operator
    costs the larger of the two); ``comm_s`` the collectives left exposed after overlap
    (``comm_hidden_s`` were hidden), ``comm_breakdown`` each kind of collective before overlap;
    ``overhead_s`` the fixed cost. The phase takes their sum, :attr:`time_s`.
    """

    compute_s: float
    memory_s: float
    compute_bound_s: float
    memory_bound_s: float
    comm_s: float
    overhead_s: float
    comm_hidden_s: float = 0.0
    #: transfers to and from offload tiers left exposed, and hidden behind the step
    offload_s: float = 0.0
    offload_hidden_s: float = 0.0
    comm_breakdown: Mapping[str, float] = field(default_factory=dict)
    ops: tuple[OpTime, ...] = field(repr=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "comm_breakdown", MappingProxyType(dict(self.comm_breakdown)))

    @property
    def _terms(self) -> dict[str, float]:
        return {
            "compute": self.compute_bound_s,
            "memory": self.memory_bound_s,
            "comm": self.comm_s,
            "offload": self.offload_s,
            "overhead": self.overhead_s,
        }

    @property
    def time_s(self) -> float:
        """Critical-path time: compute- and memory-bound operators, exposed collectives and
        offload transfers, overhead."""
        return sum(self._terms.values())

    @property
    def bound(self) -> str:
        """The largest term: compute, memory, comm, offload or overhead."""
        terms = self._terms
        return max(terms, key=terms.__getitem__)

    @property
    def dominant_collective(self) -> str | None:
        """The collective that takes the most time, or None without communication."""
        busy = {k: v for k, v in self.comm_breakdown.items() if v > 0}
        return max(busy, key=busy.__getitem__) if busy else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: time_s, compute_s, memory_s, comm_s, overhead_s, bound, and the collectives."""
        return {
            "time_s": self.time_s,
            "compute_s": self.compute_s,
            "memory_s": self.memory_s,
            "comm_s": self.comm_s,
            "comm_hidden_s": self.comm_hidden_s,
            "offload_s": self.offload_s,
            "offload_hidden_s": self.offload_hidden_s,
            "overhead_s": self.overhead_s,
            "bound": self.bound,
            "comm_breakdown": dict(self.comm_breakdown),
            "dominant_collective": self.dominant_collective,
        }


#: The time fields of a phase (scaled and summed together).
_TIMES = (
    "compute_s",
    "memory_s",
    "compute_bound_s",
    "memory_bound_s",
    "comm_s",
    "overhead_s",
    "comm_hidden_s",
    "offload_s",
    "offload_hidden_s",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepTerms:
    """The terms of :class:`PhaseCost` as ``Num``: floats for one estimate, NumPy arrays when a
    plan search evaluates many batch sizes at once (the same formulas either way)."""

    compute_s: Num
    memory_s: Num
    compute_bound_s: Num
    memory_bound_s: Num
    comm_s: Num
    overhead_s: Num
    comm_hidden_s: Num
    offload_s: Num
    offload_hidden_s: Num
    comm_breakdown: Mapping[str, Num]
    ops: tuple[OpTime, ...] = ()

    @property
    def time_s(self) -> Num:
        """Critical-path time, as :attr:`PhaseCost.time_s`."""
        return self.compute_bound_s + self.memory_bound_s + self.comm_s + self.offload_s + self.overhead_s

    def scaled(self, factor: float) -> StepTerms:
        """Every time multiplied by ``factor`` (e.g. per accepted token)."""
        return dataclasses.replace(
            self,
            **{name: getattr(self, name) * factor for name in _TIMES},
            comm_breakdown={k: v * factor for k, v in self.comm_breakdown.items()},
        )

    def plus(self, other: StepTerms) -> StepTerms:
        """Two passes run one after the other (a draft and a verify step, two prefill chunks)."""
        names = dict(self.comm_breakdown)
        for k, v in other.comm_breakdown.items():
            names[k] = names.get(k, 0.0) + v
        return StepTerms(
            **{name: getattr(self, name) + getattr(other, name) for name in _TIMES},
            comm_breakdown=names,
            ops=self.ops + other.ops,
        )

    def cost(self) -> PhaseCost:
        """The scalar :class:`PhaseCost` (only for float terms)."""
        return PhaseCost(
            **{name: float(getattr(self, name)) for name in _TIMES},
            comm_breakdown={k: float(v) for k, v in self.comm_breakdown.items() if float(v) > 0},
            ops=self.ops,
        )


def as_system(hardware: System | Device) -> System:
    """A system as given, or the usual system a bare device implies."""
    return hardware if isinstance(hardware, System) else System.of_device(hardware)


def _step_collectives(
    model: ModelSpec,
    system: System,
    plan: Plan,
    precision: Precision,
    options: RunOptions,
    layout: MoeLayout | None,
    *,
    phase: str,
    seqs: Num,
    new_tokens: Num,
    attention_s: Num,
) -> tuple[dict[str, Num], Num]:
    """Per-kind collective time of one microbatch through the whole model, and the CP ring's share.

    Returns (breakdown, cp_ring_s) where cp_ring_s is the ring-attention transfer left exposed
    after it overlapped the attention it feeds (already included in the breakdown).
    """
    d, tp, dp, cp = model.hidden_size, plan.tp, plan.dp, plan.cp
    prefill = phase == "prefill"
    rows = seqs * new_tokens / (cp if prefill else 1)  # token rows on one device
    message = rows * d * precision.comm_bytes
    algo = options.allreduce_algorithm
    out: dict[str, Num] = {}

    def add(name: str, seconds: Num) -> None:
        out[name] = out.get(name, 0.0) + seconds

    if tp > 1:
        ar = allreduce_time(message, tp, system, algorithm=algo)
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
                spans = domain is not None and n > domain
                t = alltoall_time(send, n, system, scale_out_bytes=outside if spans and prefill else None)
                add(name, n_moe * t)
            if tp > 1:  # each tp rank combined 1/tp of the tokens: gather them back
                add("tp_allgather", n_moe * allgather_time(message, tp, system, algorithm=algo))
    cp_ring: Num = 0.0
    if cp > 1:
        if model.mla is not None:
            kv_elements = float(model.kv_elements_per_token_per_layer)
        else:
            kv_elements = 2 * max(model.num_kv_heads / tp, 1) * model.head_dim
        if prefill:
            # every rank passes its KV block cp-1 hops around the ring, overlapped with attention
            block = seqs * new_tokens / cp * kv_elements * precision.kv_bytes
            hop = p2p_time(block, system, group_devices=tp * cp)
            ring = model.num_layers * (cp - 1) * hop
            cp_ring = maximum(ring - attention_s, 0.0)
            add("cp_ring", ring)
        else:
            # combine the ranks' partial attention outputs (fp32 partial sums and their log-sum-exp)
            partial = seqs * (model.num_attention_heads / tp) * (model.head_dim + 1) * 4
            add("cp_combine", model.num_layers * allreduce_time(partial, cp, system, algorithm=algo))
    return out, cp_ring


def step_terms(
    model: ModelSpec,
    hardware: System | Device,
    plan: Plan,
    precision: Precision,
    *,
    phase: str,
    num_seqs: Num,
    new_tokens: Num,
    past_tokens: Num,
    options: RunOptions = RunOptions(),
    memory: MemoryUse | None = None,
) -> StepTerms:
    """:func:`step_cost` as :class:`StepTerms`: ``num_seqs``, ``new_tokens`` and ``past_tokens``
    may be NumPy arrays (broadcast together), as a plan search gives them (the operators are
    evaluated by :func:`~genmodel._evaluate.step_operators`: the plain formulas' numbers)."""
    if phase not in ("prefill", "decode"):
        raise SpecError(f"phase={phase!r} must be 'prefill' or 'decode'")
    system = as_system(hardware)
    device = system.device
    pp = plan.pp
    # (both counts are exactly 1 with one stage and no split: no need to evaluate them per batch)
    micro = 1.0 if pp == 1 else maximum(1.0, minimum(num_seqs, float(pp)))
    # two-batch overlap / microbatch pipelining: the pass runs as m halves whose collectives
    # overlap the other halves' compute
    splits = options.overlap_microbatches
    m = 1.0 if splits == 1 else maximum(1.0, minimum(float(splits), floor(num_seqs / micro * new_tokens)))
    seqs = num_seqs / micro / m
    layout = None
    if model.moe is not None:
        layout = moe_layout(
            plan, redundant_experts=options.redundant_experts, imbalance=options.moe_imbalance
        )
    ops, roof = step_operators(
        model,
        precision,
        device,
        num_seqs=seqs,
        new_tokens=new_tokens,
        past_tokens=past_tokens,
        tp=plan.tp,
        cp=plan.cp,
        split_new_tokens=phase == "prefill",
        moe=layout,
        absorb_mla=phase == "decode",
        kv_read_frac=options.sparse_attention_frac if phase == "decode" else 1.0,
    )
    factor = (micro + pp - 1) / pp if phase == "prefill" else 1.0
    compute_s, memory_s = roof.compute_s, roof.memory_s
    compute_bound_s, memory_bound_s = roof.compute_bound_s, roof.memory_bound_s
    attention_s = roof.attention_s
    breakdown, cp_exposed = _step_collectives(
        model,
        system,
        plan,
        precision,
        options,
        layout,
        phase=phase,
        seqs=seqs,
        new_tokens=new_tokens,
        attention_s=attention_s,
    )
    breakdown = {k: v * factor for k, v in breakdown.items()}
    if pp > 1:
        message = seqs * new_tokens / plan.cp * model.hidden_size * precision.comm_bytes
        hop = p2p_time(message, system, group_devices=2 * plan.num_stage_devices)
        breakdown["pp_send"] = (pp - 1) * hop
    busy_s = (compute_bound_s + memory_bound_s) * factor  # one microbatch's operators
    ring_s = breakdown.get("cp_ring", 0.0)
    ring_hidden_s = ring_s - cp_exposed * factor  # ring attention overlaps by construction
    comm_s: Num = sum(breakdown.values(), 0.0) - ring_hidden_s  # one microbatch's collectives
    # m microbatches alternate compute and communication; the first's compute (or the last's
    # communication) has nothing to hide behind. One microbatch: a fixed fraction overlaps.
    overlap = options.overlap_frac(system)
    one_total_s = busy_s + comm_s - overlap * minimum(comm_s, busy_s)
    one_hidden_s = overlap * minimum(comm_s, busy_s) + ring_hidden_s
    if splits == 1:  # (no split: the split pass need not be evaluated)
        total_s, hidden_s = one_total_s, one_hidden_s
    else:
        split_total_s = m * maximum(busy_s, comm_s) + minimum(busy_s, comm_s)
        total_s = where(m > 1, split_total_s, one_total_s)
        hidden_s = where(m > 1, m * (busy_s + comm_s) - split_total_s + m * ring_hidden_s, one_hidden_s)
    transfer_s: Num = 0.0
    offload_s: Num = 0.0
    if memory is not None and memory.spills:
        kv_bytes: Num = 0.0
        expert_bytes: Num = 0.0
        weight_bytes: Num = 0.0
        for op in ops:
            kv_bytes = kv_bytes + op.kv_bytes
            if op.name == "experts":
                expert_bytes = expert_bytes + op.weight_bytes
            else:
                weight_bytes = weight_bytes + op.weight_bytes
        transfer_s = (
            m
            * factor
            * memory.transfer_time_s(
                kv=kv_bytes,
                experts=expert_bytes,
                weights=weight_bytes,
                expert_hit_rate=options.offload.expert_hit_rate,
            )
        )
        # prefetched layer by layer, a transfer hides behind the step's own work
        offload_s = maximum(transfer_s - total_s, 0.0) if options.offload.overlap else transfer_s
    return StepTerms(
        compute_s=m * compute_s * factor,
        memory_s=m * memory_s * factor,
        compute_bound_s=m * compute_bound_s * factor,
        memory_bound_s=m * memory_bound_s * factor,
        comm_s=total_s - m * busy_s,  # what the operators' time does not cover
        overhead_s=device.efficiency.step_overhead_s,
        comm_hidden_s=hidden_s,
        offload_s=offload_s,
        offload_hidden_s=transfer_s - offload_s,
        comm_breakdown={k: m * v for k, v in breakdown.items()},
        ops=roof.times,
    )


def step_cost(
    model: ModelSpec,
    hardware: System | Device,
    plan: Plan,
    precision: Precision,
    *,
    phase: str,
    num_seqs: float,
    new_tokens: float,
    past_tokens: float,
    options: RunOptions = RunOptions(),
    memory: MemoryUse | None = None,
) -> PhaseCost:
    """Cost of one forward pass of ``num_seqs`` sequences through one pipeline replica.

    Args:
        phase: "prefill" (new_tokens = prompt, MLA unabsorbed) or "decode" (MLA with absorbed
            up-projections).
        num_seqs: sequences on the replica.
        new_tokens: tokens each sequence adds in the pass.
        past_tokens: tokens each sequence already has cached.
        options: overlap, redundant experts, load imbalance, collective algorithm, sparse
            attention (decode) and offload policy.
        memory: where the deployment's bytes live; the offloaded share of the step's reads
            crosses the host link (prefetched behind the step unless ``options.offload.overlap``
            is False).

    With pp stages the sequences run as m = min(num_seqs, pp) microbatches. A prefill's last
    microbatch leaves the pipe after (m + pp - 1) stage times; a decode round, which gives every
    sequence one token, takes pp stage times (the stages work on different microbatches at once).
    """
    return step_terms(
        model,
        hardware,
        plan,
        precision,
        phase=phase,
        num_seqs=num_seqs,
        new_tokens=new_tokens,
        past_tokens=past_tokens,
        options=options,
        memory=memory,
    ).cost()


def prefill_pass(
    model: ModelSpec,
    hardware: System | Device,
    plan: Plan,
    precision: Precision,
    *,
    num_seqs: Num,
    input_tokens: int,
    options: RunOptions = RunOptions(),
    memory: MemoryUse | None = None,
) -> tuple[StepTerms, StepTerms]:
    """The prefill of ``num_seqs`` prompts of ``input_tokens``, and its longest chunk alone.

    A prefix-cache hit skips the cached part of the prompt; chunked prefill runs the rest in
    passes of at most ``options.prefill_chunk`` tokens, each attending to everything before it
    and reading the weights again (Sarathi, Agrawal et al. 2023).

    Returns:
        (prefill, longest_chunk): the whole prefill, and the longest pass of one sequence's prompt
        (the longest a running decode batch waits for one new request): the last, which attends to
        the most context, or the full chunk before it when the last is a short remainder.
    """
    cached = min(round(options.prefix_hit_rate * input_tokens), input_tokens - 1)
    chunk = options.prefill_chunk or input_tokens - cached

    def run(seqs: Num, new_tokens: int, past_tokens: int) -> StepTerms:
        return step_terms(
            model,
            hardware,
            plan,
            precision,
            phase="prefill",
            num_seqs=seqs,
            new_tokens=new_tokens,
            past_tokens=past_tokens,
            options=options,
            memory=memory,
        )

    total = None
    for start in range(cached, input_tokens, chunk):
        piece = run(num_seqs, min(chunk, input_tokens - start), start)
        total = piece if total is None else total.plus(piece)
    assert total is not None
    last = input_tokens - (input_tokens - cached - 1) % chunk - 1
    if last == cached and isinstance(num_seqs, float) and num_seqs == 1:
        return total, total  # one sequence in one pass: the last chunk is the whole prefill
    longest = run(1.0, input_tokens - last, last)
    if input_tokens - last < chunk and last - chunk >= cached:  # a remainder after full chunks
        full = run(1.0, chunk, last - chunk)
        if type(full.time_s) is float and type(longest.time_s) is float and full.time_s > longest.time_s:
            longest = full  # (symbolic figures keep the last: the stall is a numeric report)
    return total, longest


def decode_pass(
    model: ModelSpec,
    hardware: System | Device,
    plan: Plan,
    precision: Precision,
    *,
    num_seqs: Num,
    past_tokens: Num,
    options: RunOptions = RunOptions(),
    memory: MemoryUse | None = None,
) -> StepTerms:
    """One decode step per output token: a plain step, or with speculation the verify step over
    k+1 tokens plus k draft steps, over the tokens a step yields (Leviathan et al. 2023)."""

    def run(m: ModelSpec, p: Plan, new_tokens: int) -> StepTerms:
        return step_terms(
            m,
            hardware,
            p,
            precision,
            phase="decode",
            num_seqs=num_seqs,
            new_tokens=new_tokens,
            past_tokens=past_tokens,
            options=options,
            memory=memory,
        )

    spec = options.speculation
    if spec is None:
        return run(model, plan, 1)
    draft = mtp_model(model) if spec.draft_model is None else spec.draft_model
    step = run(model, plan, spec.draft_tokens + 1)  # the verify pass
    draft_plan = dataclasses.replace(plan, pp=1, ep=plan.ep if draft.moe is not None else 1)
    one_draft = run(draft, draft_plan, 1)
    for _ in range(spec.draft_tokens):
        step = step.plus(one_draft)
    return step.scaled(1 / spec.tokens_per_step)


def mtp_model(model: ModelSpec) -> ModelSpec:
    """The target's multi-token-prediction block as a one-layer model (DeepSeek-V3 report, Sec. 2.2).

    Raises:
        SpecError: the model has no MTP block.
    """
    if not model.num_mtp_layers:
        raise SpecError(
            f"model={model.id} has no multi-token-prediction block (num_mtp_layers=0); give a draft model"
        )
    moe = None if model.moe is None else dataclasses.replace(model.moe, num_dense_layers=0)
    return dataclasses.replace(
        model,
        id=f"{model.id}-mtp",
        num_layers=model.num_mtp_layers,
        num_sliding_window_layers=0,
        sliding_window=None,
        moe=moe,
        num_mtp_layers=0,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ServingState:
    """The serving mode's steady state for the whole deployment (JSON key ``serving``)."""

    concurrency: int
    decode_batch: float
    request_rate_per_s: float
    prefill_busy_frac: float
    queue_wait_s: float
    kv_limited: bool
    max_running: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    """What a deployment does: latencies, throughputs, memory, and the phases' breakdown."""

    model_id: str
    hardware_id: str
    system_id: str = ""
    plan: Plan
    precision: Precision
    mode: str
    batch: int
    input_tokens: int
    output_tokens: int
    ttft_s: float
    tpot_s: float
    prefill: PhaseCost
    decode: PhaseCost
    memory: MemoryUse
    tdp_w: float | None = None
    usd_per_hour: float | None = None
    options: RunOptions = RunOptions()
    comm_overlap_frac: float = 0.0
    #: KV-cache transfer from the prefill to the decode device per replica (disaggregated only).
    kv_transfer_s: float | None = None
    kv_transfer_exposed_s: float | None = None
    #: the longest a running decode batch waits while one new request's prefill (or its last
    #: chunk, with chunked prefill) runs
    decode_stall_s: float | None = None
    #: the steady state of the serving mode (None for a static batch)
    serving: ServingState | None = None

    @property
    def num_devices(self) -> int:
        """Devices of the deployment."""
        return self.plan.num_devices

    @property
    def e2e_s(self) -> float:
        """End-to-end latency of a request: ttft + (output_tokens - 1) * tpot."""
        return self.ttft_s + (self.output_tokens - 1) * self.tpot_s

    @property
    def output_tokens_per_s(self) -> float:
        """Output tokens per second of the whole deployment: batch * output_tokens / e2e."""
        return self.batch * self.output_tokens / self.e2e_s

    @property
    def output_tokens_per_s_per_device(self) -> float:
        """Output tokens per second per device."""
        return self.output_tokens_per_s / self.num_devices

    @property
    def prefill_tokens_per_s_per_device(self) -> float:
        """Prompt tokens per second per device during prefill: batch * input / ttft / devices."""
        return self.batch * self.input_tokens / self.ttft_s / self.num_devices

    @property
    def decode_tokens_per_s_per_device(self) -> float:
        """Tokens per second per device during decode: batch / tpot / devices."""
        return self.batch / self.tpot_s / self.num_devices

    @property
    def joules_per_output_token(self) -> float | None:
        """Energy per output token at TDP (an upper bound); None without a TDP."""
        if self.tdp_w is None:
            return None
        return self.tdp_w * self.num_devices / self.output_tokens_per_s

    @property
    def usd_per_million_output_tokens(self) -> float | None:
        """Cost per million output tokens at the device's hourly price; None without a price."""
        if self.usd_per_hour is None:
            return None
        return self.usd_per_hour * self.num_devices / HOUR / self.output_tokens_per_s * 1e6

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, with the keys of DESIGN.md (SI units: seconds and bytes)."""
        m, o = self.memory, self.options
        return {
            "model": self.model_id,
            "hardware": self.hardware_id,
            "system": self.system_id or self.hardware_id,
            "mode": self.mode,
            "devices": self.num_devices,
            "tp": self.plan.tp,
            "pp": self.plan.pp,
            "ep": self.plan.ep,
            "dp": self.plan.dp,
            "cp": self.plan.cp,
            "weight_dtype": self.precision.weight_dtype,
            "act_dtype": self.precision.act_dtype,
            "kv_dtype": self.precision.kv_dtype,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "batch": self.batch,
            "ttft_s": self.ttft_s,
            "tpot_s": self.tpot_s,
            "e2e_s": self.e2e_s,
            "output_tokens_per_s": self.output_tokens_per_s,
            "output_tokens_per_s_per_device": self.output_tokens_per_s_per_device,
            "prefill_tokens_per_s_per_device": self.prefill_tokens_per_s_per_device,
            "decode_tokens_per_s_per_device": self.decode_tokens_per_s_per_device,
            "joules_per_output_token": self.joules_per_output_token,
            "usd_per_million_output_tokens": self.usd_per_million_output_tokens,
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
            "prefill": self.prefill.to_dict(),
            "decode": self.decode.to_dict(),
            "comm_overlap_frac": self.comm_overlap_frac,
            "redundant_experts": self.options.redundant_experts,
            "moe_imbalance": self.options.moe_imbalance,
            "speculation": _speculation_dict(self.options.speculation),
            "disaggregated": self.options.disaggregated,
            "kv_transfer_s": self.kv_transfer_s,
            "kv_transfer_exposed_s": self.kv_transfer_exposed_s,
            "decode_stall_s": self.decode_stall_s,
            "kv_block_tokens": o.kv_block_tokens,
            "prefix_hit_rate": o.prefix_hit_rate,
            "sparse_attention_frac": o.sparse_attention_frac,
            "prefill_chunk": o.prefill_chunk,
            "offload": _offload_dict(o.offload),
            "serving": None if self.serving is None else dataclasses.asdict(self.serving),
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


def kv_transfer_time(
    model: ModelSpec,
    system: System,
    plan: Plan,
    precision: Precision,
    *,
    seqs_per_replica: float,
    input_tokens: int,
) -> Num:
    """Time to move the prompts' KV cache from each prefill device to its decode peer.

    Each device sends its own shard (its heads, layers and tokens) to one peer, over the innermost
    tier that holds both pools (2x the plan's devices; CloudMatrix384's UB holds both, separate DGX
    nodes need the scale-out network). Source: DistServe (Zhong et al., OSDI 2024), Sec. 4.
    """
    per_device = seqs_per_replica * kv_bytes_per_sequence(
        model, precision, input_tokens, tp=plan.tp, pp=plan.pp, cp=plan.cp
    )
    return p2p_time(per_device, system, group_devices=2 * plan.num_devices)


def exposed_transfer_s(transfer_s: Num, prefill_s: Num, num_layers: int) -> Num:
    """The part of a KV transfer left on the TTFT: streamed layer by layer behind the prefill, so
    only what the prefill of the other layers does not cover, and at least the last layer's share,
    waits (DistServe, Zhong et al. OSDI 2024, Sec. 4)."""
    return maximum(transfer_s / num_layers, transfer_s - prefill_s * (num_layers - 1) / num_layers)


def prepare(
    model: ModelSpec,
    hardware: System | Device,
    plan: Plan,
    precision: Precision,
    *,
    input_tokens: int,
    output_tokens: int,
    ideal: bool,
    options: RunOptions,
) -> tuple[System, MemoryExtras]:
    """Check a deployment and return its system (ideal when asked) and what its memory holds
    beyond the model's weights and KV cache (draft model, paging, prefix, offload tiers).

    Raises:
        SpecError: a non-positive length. InfeasibleError: the plan violates divisibility, or
        needs more devices than the system has.
    """
    require_ints(input_tokens=input_tokens, output_tokens=output_tokens)
    system = as_system(hardware)
    check_plan(plan, model, system.device)
    if system.max_devices is not None and plan.num_devices > system.max_devices:
        raise InfeasibleError(
            [f"devices={plan.num_devices} must be <= max_devices={system.max_devices} of system={system.id}"]
        )
    if ideal:
        system = system.ideal()
    spec = options.speculation
    draft = None
    if spec is not None:
        draft = mtp_model(model) if spec.draft_model is None else spec.draft_model
    extras = MemoryExtras(
        redundant_experts=options.redundant_experts,
        draft=draft,
        draft_shares_vocab=spec is not None and spec.draft_model is None,
        kv_block_tokens=options.kv_block_tokens,
        shared_prefix_tokens=round(options.prefix_hit_rate * input_tokens),
        offload=options.offload,
        sharing=min(plan.num_devices, system.num_node_devices),
    )
    return system, extras


def estimate_static(
    model: ModelSpec,
    hardware: System | Device,
    plan: Plan,
    precision: Precision,
    *,
    batch: int | str,
    input_tokens: int,
    output_tokens: int,
    ideal: bool = False,
    options: RunOptions = RunOptions(),
) -> Estimate:
    """Estimate a static batch: prefill all sequences together, then decode them together.

    Args:
        model: the architecture.
        hardware: a system, or a device (its usual system); efficiencies apply unless ``ideal``.
        plan: the parallel plan; ``plan.num_devices`` devices are used.
        precision: weight, activation and KV-cache precisions.
        batch: sequences in the whole deployment, or "max" for the largest that fits memory.
        input_tokens: prompt tokens per sequence.
        output_tokens: generated tokens per sequence (the first comes from the prefill).
        ideal: use peak figures with no efficiency losses or overheads (the roofline bound).
        options: overlap, redundant experts, imbalance, speculative decoding, disaggregation.

    Returns:
        The :class:`Estimate`; ``memory.fits`` is False when an explicit batch does not fit.

    Raises:
        SpecError: a non-positive size or an unknown batch keyword.
        InfeasibleError: the plan violates divisibility, or one sequence does not fit in memory.
    """
    system, extras = prepare(
        model,
        hardware,
        plan,
        precision,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        ideal=ideal,
        options=options,
    )
    device = system.device
    lengths = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    if batch == "max":
        resolved = max_batch(model, device, plan, precision, **lengths, extras=extras)
    elif isinstance(batch, int) and not isinstance(batch, bool) and batch >= 1:
        resolved = batch
        require_one_sequence(model, device, plan, precision, **lengths, extras=extras)
    else:
        raise SpecError(f"batch={batch!r} must be an integer >= 1 or 'max'")
    seqs = float(math.ceil(resolved / plan.dp))
    mem = memory_use(model, device, plan, precision, batch=resolved, **lengths, extras=extras)

    prefill_terms, stall_terms = prefill_pass(
        model, system, plan, precision, num_seqs=seqs, input_tokens=input_tokens, options=options, memory=mem
    )
    prefill = prefill_terms.cost()
    stall = float(stall_terms.time_s)
    past = input_tokens + max(output_tokens - 2, 0) / 2
    decode = decode_pass(
        model, system, plan, precision, num_seqs=seqs, past_tokens=past, options=options, memory=mem
    ).cost()
    ttft_s = prefill.time_s
    transfer_s = exposed_s = None
    if options.disaggregated:
        transfer_s = float(
            kv_transfer_time(model, system, plan, precision, seqs_per_replica=seqs, input_tokens=input_tokens)
        )
        exposed_s = float(exposed_transfer_s(transfer_s, prefill.time_s, model.num_layers))
        ttft_s += exposed_s
    return Estimate(
        model_id=model.id,
        hardware_id=device.id,
        system_id=system.id,
        plan=plan,
        precision=precision,
        mode="static",
        batch=resolved,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        ttft_s=ttft_s,
        tpot_s=decode.time_s,
        prefill=prefill,
        decode=decode,
        memory=mem,
        tdp_w=device.tdp_w,
        usd_per_hour=device.usd_per_hour,
        options=options,
        comm_overlap_frac=options.overlap_frac(system),
        kv_transfer_s=transfer_s,
        kv_transfer_exposed_s=exposed_s,
        decode_stall_s=stall,
    )
