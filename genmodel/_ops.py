"""Operators of a forward step: FLOPs and bytes per device, and their roofline time.

Modelling assumptions (sources in each function):
- A step processes ``new_tokens`` new tokens for each of ``num_seqs`` sequences that already have
  ``past_tokens`` tokens cached: prefill is (new=S, past=0), a decode step is (new=1, past=c).
- GEMMs cost 2 FLOPs per multiply-accumulate and read their weights once per step; activations are
  read and written once per operator (no fusion beyond flash attention and gated activations).
- Attention is fused (FlashAttention/FlashDecoding): it reads Q, K, V (from the cache for past
  tokens) and writes O once; the causal mask halves the score work of a prefill.
- Tensor parallelism shards attention heads and FFN columns over ``tp`` devices (Megatron-LM);
  KV heads fewer than ``tp`` are replicated, and MLA's latent cache is replicated on every rank.
- MoE experts spread as a :class:`~genmodel._parallel.MoeLayout` says (expert groups, experts
  split over MoE-TP devices, redundant replicas, load imbalance); a step reads the weights of the
  experts its tokens touch, E*(1-(1-k/E)^tokens) in expectation for uniform routing, and the
  busiest device computes its share of the routed pairs.
- Context parallelism splits each sequence over ``cp`` devices: attention work and the cached KV
  divide by cp (zig-zag placement balances the causal mask); the other operators divide by cp
  when the step brings many new tokens (prefill), and are repeated on every rank in decode.
- The LM head computes logits only for the last token of each sequence.
- Per-operator time is the roofline max(compute, memory) with the device's efficiencies; GEMM rows
  are padded to the kernel's row tile.

Every function here is plain arithmetic, the same on floats, NumPy arrays and SymPy
expressions. How a plan search evaluates them fast (GEMMs timed as one block, sums over stacked
arrays, operators reused across steps) is :mod:`genmodel._evaluate`'s business, which gives the
same numbers as these functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from genmodel._errors import SpecError, require_ints
from genmodel._hardware import Device
from genmodel._model import ModelSpec
from genmodel._units import DTYPE_BYTES, Num, ceil, maximum, minimum, power, where
from genmodel._workload import Precision

#: logits are written in fp32 for sampling
_LOGIT_BYTES = 4.0


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


@dataclass(frozen=True, slots=True)
class Op:
    """One operator of a step, summed over the layers it occurs in, for one device.

    ``rows`` is the number of token rows a GEMM multiplies (for row-tile padding); 0 elsewhere.
    """

    name: str
    kind: str  # "gemm", "attention" or "elementwise"
    flops: Num
    weight_bytes: Num
    act_bytes: Num
    kv_bytes: Num
    rows: Num = 0

    @property
    def bytes(self) -> Num:
        """All bytes the operator moves to or from device memory."""
        return self.weight_bytes + self.act_bytes + self.kv_bytes


@dataclass(frozen=True, slots=True)
class OpTime:
    """Roofline time of one operator on one device."""

    op: Op
    compute_s: Num
    memory_s: Num

    @property
    def time_s(self) -> Num:
        """max(compute, memory): the roofline bound of this operator."""
        return maximum(self.compute_s, self.memory_s)

    @property
    def arithmetic_intensity(self) -> Num:
        """FLOPs per byte moved."""
        return self.op.flops / self.op.bytes


def attended_pairs(past_tokens: Num, new_tokens: Num, window: Num | None = None) -> Num:
    """(query, key) pairs a causal step attends to for one sequence.

    Query j (1-based position p+1..p+q) sees min(j, window) keys, so without a window the sum is
    q*p + q(q+1)/2 — half the full q x (p+q) square when p = 0 (the causal mask).
    """
    p, q = past_tokens, new_tokens
    full = q * p + q * (q + 1) / 2
    if window is None:
        return full
    w = window
    straddle = (w * (w + 1) / 2 - p * (p + 1) / 2) + (p + q - w) * w
    return where(p + q <= w, full, where(p >= w, q * w, straddle))


def _gemm(name: str, tokens: Num, k: Num, n: Num, p: Precision, *, count: Num = 1) -> Op:
    # 2 FLOPs per multiply-accumulate; weights k x n read once; activations in (k) and out (n).
    # (The sizes are multiplied first, then the token rows: one product over a batch grid.)
    return Op(
        name,
        "gemm",
        flops=2 * k * n * count * tokens,
        weight_bytes=k * n * p.weight_bytes * count,
        act_bytes=(k + n) * p.act_bytes * count * tokens,
        kv_bytes=0,
        rows=tokens,
    )


def _elementwise(name: str, elements: Num, p: Precision, *, count: Num = 1) -> Op:
    # one read and one write per element; a handful of FLOPs are negligible next to the bytes
    return Op(name, "elementwise", 0, 0, 2 * elements * p.act_bytes * count, 0)


def expected_experts_touched(num_experts: Num, top_k: Num, tokens: Num) -> Num:
    """Expected number of distinct experts at least one of ``tokens`` routes to (uniform routing).

    Each token picks k of E experts; an expert is missed by one token with probability 1-k/E, so
    E*(1-(1-k/E)^tokens) are touched (GenZ, Bambhaniya et al. 2024, Sec. MoE).
    """
    return num_experts * (1 - power(1 - top_k / num_experts, tokens))


def forward_ops(
    model: ModelSpec,
    precision: Precision,
    *,
    num_seqs: Num,
    new_tokens: Num,
    past_tokens: Num,
    tp: Num = 1,
    cp: Num = 1,
    split_new_tokens: bool = True,
    moe: MoeLayout | None = None,
    absorb_mla: bool = False,
    kv_read_frac: Num = 1.0,
) -> list[Op]:
    """Operators of one forward step of the whole model, per tensor-parallel rank.

    Args:
        model: the architecture.
        precision: storage precisions of weights, activations and KV cache.
        num_seqs: sequences in the step (on this replica).
        new_tokens: tokens each sequence adds in this step (prompt length in prefill, 1 in decode).
        past_tokens: tokens each sequence already has in the KV cache.
        tp: tensor-parallel degree (heads and FFN columns are split over it).
        cp: context-parallel degree (each sequence split over it; ring attention).
        split_new_tokens: whether cp also splits the new tokens of the non-attention operators
            (prefill); in decode every cp rank repeats them.
        moe: how routed experts spread over the MoE instance (default: pure MoE-TP over ``tp``).
        absorb_mla: run MLA with the up-projections absorbed into query and output (decode).
        kv_read_frac: fraction of the cached tokens the full-attention layers attend to (sparse
            or top-k KV attention: Quest, Tang et al. ICML 2024; ShadowKV, Sun et al. 2024).

    Returns:
        Operators whose FLOPs and bytes are summed over all layers, for one device.

    Source: Megatron-LM TP sharding (Shoeybi et al. 2019, Sec. 3); FLOPs per token 2*params
    (Kaplan et al. 2020, Sec. 2.1); attention 4*heads*head_dim per (query, key) pair.
    """
    p = precision
    d, hd = model.hidden_size, model.head_dim
    tokens = _row_tokens(num_seqs, new_tokens, cp, split_new_tokens)
    heads = model.num_attention_heads / tp
    kv_heads = maximum(model.num_kv_heads / tp, 1)  # KV heads fewer than tp are replicated
    step_tokens = num_seqs * new_tokens  # all new tokens of the replica's sequences
    n_full = model.num_layers - model.num_sliding_window_layers
    n_swa = model.num_sliding_window_layers
    n_layers = model.num_layers
    ops: list[Op] = [
        Op("embedding", "elementwise", 0, tokens * d * p.weight_bytes, tokens * d * p.act_bytes, 0)
    ]

    def gemm(name: str, k: Num, n: Num, count: Num) -> None:
        # a GEMM over the step's token rows (tokens x k times k x n, count times)
        ops.append(_gemm(name, tokens, k, n, p, count=count))

    windows: list[tuple[str, int, int | None]] = [("attention", n_full, None)]
    if n_swa:
        windows.append(("attention_swa", n_swa, model.sliding_window))

    if model.mla is None:
        qkv_out = (heads + 2 * kv_heads) * hd
        gemm("qkv_proj", d, qkv_out, n_layers)
        kv_per_token = 2 * kv_heads * hd
        for name, count, window in windows:
            if not count:
                continue
            past = past_tokens * kv_read_frac if window is None else past_tokens
            pairs = attended_pairs(past, new_tokens, window)
            cached = past if window is None else minimum(past, window)
            ops.append(
                Op(
                    name,
                    "attention",
                    # QK^T and PV: 2 FLOPs per MAC, head_dim MACs each, per pair and head
                    flops=4 * num_seqs * heads * hd * pairs * count / cp,
                    weight_bytes=0,
                    # Q and O, plus the fresh K and V of this step
                    act_bytes=step_tokens * (2 * heads * hd + kv_per_token) * p.act_bytes * count / cp,
                    # read the cached past, write this step's K and V
                    kv_bytes=(num_seqs * cached + step_tokens) * kv_per_token * p.kv_bytes * count / cp,
                )
            )
        gemm("o_proj", heads * hd, d, n_layers)
    else:
        m = model.mla
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        latent = m.kv_lora_rank + m.qk_rope_head_dim
        if m.q_lora_rank:
            gemm("q_a_proj", d, m.q_lora_rank, n_layers)
            gemm("q_b_proj", m.q_lora_rank, heads * qk, n_layers)
        else:
            gemm("q_proj", d, heads * qk, n_layers)
        gemm("kv_a_proj", d, latent, n_layers)
        if absorb_mla:
            # DeepSeek-V2 Sec. 2.1.2: W_UK folds into the query, W_UV into the output, so
            # attention runs over the shared latent (MQA-like, latent+rope wide) directly.
            # a batched GEMM per head: (tokens x nope) @ (nope x kv_lora)
            gemm("q_absorb", m.qk_nope_head_dim, m.kv_lora_rank, n_layers * heads)
            attn_dims = latent + m.kv_lora_rank  # score over latent+rope, context over latent
            q_width = heads * (latent + m.kv_lora_rank)
        else:
            gemm("kv_b_proj", m.kv_lora_rank, heads * (m.qk_nope_head_dim + m.v_head_dim), n_layers)
            attn_dims = qk + m.v_head_dim
            q_width = heads * (qk + m.v_head_dim) + heads * (qk + m.v_head_dim)
        past = past_tokens * kv_read_frac
        pairs = attended_pairs(past, new_tokens)
        ops.append(
            Op(
                "attention",
                "attention",
                flops=2 * num_seqs * heads * attn_dims * pairs * n_layers / cp,
                weight_bytes=0,
                act_bytes=step_tokens * q_width * p.act_bytes * n_layers / cp,
                kv_bytes=(num_seqs * past + step_tokens) * latent * p.kv_bytes * n_layers / cp,
            )
        )
        if absorb_mla:
            # a batched GEMM per head: (tokens x kv_lora) @ (kv_lora x v)
            gemm("v_absorb", m.kv_lora_rank, m.v_head_dim, n_layers * heads)
        gemm("o_proj", heads * m.v_head_dim, d, n_layers)

    # two RMSNorms and two residual adds per block: read x (and residual), write out
    ops.append(_elementwise("norm_residual", 3 * tokens * d, p, count=2 * n_layers))

    n_dense = model.num_dense_layers
    if n_dense:
        ff = model.intermediate_size / tp
        gemm("gate_up_proj", d, 2 * ff, n_dense)
        ops.append(_elementwise("act_mul", 1.5 * tokens * ff, p, count=n_dense))  # read 2ff, write ff
        gemm("down_proj", ff, d, n_dense)

    if model.moe is not None:
        spec = model.moe
        n_moe = model.num_moe_layers
        gemm("router", d, spec.num_experts, n_moe)
        ops.append(_experts_op(model, p, tokens, tp, moe))
        if spec.shared_intermediate_size:
            sff = spec.shared_intermediate_size / tp
            gemm("shared_experts", d, 3 * sff, n_moe)

    # final norm, then logits for the last token of each sequence only (on one of the cp ranks,
    # which take turns across sequences)
    last = num_seqs / cp if split_new_tokens else num_seqs
    ops.append(_elementwise("final_norm", last * d, p))
    vocab = model.vocab_size / tp
    ops.append(
        Op(
            "lm_head",
            "gemm",
            flops=2 * last * d * vocab,
            weight_bytes=d * vocab * p.weight_bytes,
            act_bytes=last * (d * p.act_bytes + vocab * _LOGIT_BYTES),
            kv_bytes=0,
            rows=last,
        )
    )
    return ops


def _row_tokens(num_seqs: Num, new_tokens: Num, cp: Num, split_new_tokens: bool) -> Num:
    """Tokens of the replica a device's non-attention operators see (cp splits a prefill's)."""
    return num_seqs * new_tokens / cp if split_new_tokens else num_seqs * new_tokens


def _experts_op(model: ModelSpec, p: Precision, tokens: Num, tp: Num, moe: MoeLayout | None) -> Op:
    """The routed experts of a step over ``tokens`` token rows (:func:`forward_ops`)."""
    spec = model.moe
    assert spec is not None
    d, n_moe, k = model.hidden_size, model.num_moe_layers, spec.num_experts_per_tok
    expert_params = 3 * d * spec.expert_intermediate_size  # gate, up, down
    if moe is None:  # pure MoE-TP over this replica's tp devices: every device has every expert
        slots, local_slots, moe_tp = spec.num_experts, spec.num_experts, tp
        instance_tokens = tokens
        share: Num = 1.0
    else:
        slots = moe.num_slots(spec.num_experts)
        local_slots = moe.experts_per_device(spec.num_experts)
        moe_tp = moe.moe_tp
        instance_tokens = tokens * moe.dp  # every replica's tokens go through one instance
        share = moe.device_pair_share(spec.num_experts, instance_tokens * k)
    # an expert slot is touched when one of the instance's tokens routes to it
    touched = local_slots * (1 - power(1 - k / slots, instance_tokens))
    routed = instance_tokens * k * share  # token-expert pairs on the busiest device's slots
    return Op(
        "experts",
        "gemm",
        flops=2 * routed * expert_params / moe_tp * n_moe,
        weight_bytes=touched * expert_params / moe_tp * p.weight_bytes * n_moe,
        act_bytes=routed * (2 * d + 3 * spec.expert_intermediate_size / moe_tp) * p.act_bytes * n_moe,
        kv_bytes=0,
        rows=routed / touched,  # tokens per expert GEMM
    )


def roofline(op: Op, device: Device, precision: Precision) -> OpTime:
    """Roofline time of one operator: max(FLOPs / achieved FLOP/s, bytes / achieved B/s).

    GEMMs run at ``efficiency.gemm_frac`` of the peak for the GEMM precision, with rows padded to
    the kernel's row tile; attention at ``attention_frac`` of the peak for the wider of the
    activation and KV-cache precisions (at least 8-bit); memory traffic at ``memory_frac`` of peak bandwidth.
    Source: Williams, Waterman, Patterson, "Roofline", CACM 2009.
    """
    rates = Rates.of(device, precision)
    padded = rates.padding(op.rows) if op.kind == "gemm" else 1.0
    return rates.time(op, padded)


@dataclass(frozen=True, slots=True)
class Rates:
    """What a device achieves for one precision: the figures :func:`roofline` divides by."""

    memory_bytes_per_s: Num  # achieved memory bandwidth
    gemm_flops_per_s: Num  # achieved FLOP/s of a GEMM in the precision's GEMM dtype
    attention_flops_per_s: Num  # achieved FLOP/s of fused attention
    gemm_tile_tokens: int

    @classmethod
    def of(cls, device: Device, precision: Precision) -> Rates:
        """The achieved rates of ``device`` for ``precision`` (peaks times efficiencies)."""
        eff = device.efficiency
        dtype = device.compute_dtype(precision.gemm_dtype)
        frac = eff.gemm_low_precision_frac if DTYPE_BYTES[dtype] <= 1 else eff.gemm_frac
        # scores and context run in the wider of the query (activation) and KV-cache precisions:
        # a bf16 cache means bf16 attention math even under fp8 GEMMs (FlashMLA, FlashAttention-3)
        wider = max(precision.act_dtype, precision.kv_dtype, key=DTYPE_BYTES.__getitem__)
        attention_dtype = wider if DTYPE_BYTES[wider] >= 1 else "fp8"
        return cls(
            memory_bytes_per_s=device.memory_bandwidth_bytes_per_s * eff.memory_frac,
            gemm_flops_per_s=device.peak_flops_per_s[dtype] * frac,
            attention_flops_per_s=device.peak_for(attention_dtype) * eff.attention_frac,
            gemm_tile_tokens=eff.gemm_tile_tokens,
        )

    def padding(self, rows: Num) -> Num:
        """Work a GEMM of ``rows`` token rows does over its useful work: rows padded to the tile."""
        tile = self.gemm_tile_tokens
        return ceil(rows / tile) * tile / maximum(rows, 1e-30)

    def time(self, op: Op, padded: Num) -> OpTime:
        """Roofline time of ``op`` (a GEMM's row padding given, as :meth:`padding` says)."""
        memory_s = op.bytes / self.memory_bytes_per_s
        if op.kind == "gemm":
            compute_s = op.flops * padded / self.gemm_flops_per_s
        elif op.kind == "attention":
            compute_s = op.flops / self.attention_flops_per_s
        else:
            compute_s = 0 * memory_s  # elementwise FLOPs are negligible next to their bytes
        return OpTime(op, compute_s, memory_s)


@dataclass(frozen=True, slots=True)
class StepRoofline:
    """The roofline of a step's operators, and their sums over the step.

    ``compute_s`` and ``memory_s`` sum the operators' compute and memory times; an operator costs
    the larger of the two and counts as bound by it, so ``compute_bound_s`` sums the compute time
    of the compute-bound operators and ``memory_bound_s`` the memory time of the others;
    ``attention_s`` is the roofline time of the attention operators.
    """

    times: tuple[OpTime, ...]
    compute_s: Num
    memory_s: Num
    compute_bound_s: Num
    memory_bound_s: Num
    attention_s: Num

    @classmethod
    def of(cls, times: Sequence[OpTime]) -> StepRoofline:
        """The sums over a step's operator times, added in their order."""
        compute_s: Num = 0.0
        memory_s: Num = 0.0
        compute_bound_s: Num = 0.0
        memory_bound_s: Num = 0.0
        attention_s: Num = 0.0
        for t in times:
            compute_s = compute_s + t.compute_s
            memory_s = memory_s + t.memory_s
            compute_bound = t.compute_s >= t.memory_s  # an operator is bound by its larger time
            compute_bound_s = compute_bound_s + where(compute_bound, t.compute_s, 0.0)
            memory_bound_s = memory_bound_s + where(compute_bound, 0.0, t.memory_s)
            if t.op.kind == "attention":
                attention_s = attention_s + maximum(t.compute_s, t.memory_s)
        return cls(tuple(times), compute_s, memory_s, compute_bound_s, memory_bound_s, attention_s)


def roofline_step(ops: Sequence[Op], device: Device, precision: Precision) -> StepRoofline:
    """:func:`roofline` of every operator of a step, and the step's sums (:class:`StepRoofline`).

    Args:
        ops: the step's operators (:func:`forward_ops`), in order.
        device: the device they run on.
        precision: the precisions they run in.

    Returns:
        Each operator's time and the sums over the step, added in the operators' order.

    Source: as :func:`roofline`; an operator is bound by the larger of its two times.
    """
    rates = Rates.of(device, precision)
    times = [rates.time(op, rates.padding(op.rows) if op.kind == "gemm" else 1.0) for op in ops]
    return StepRoofline.of(times)


def experts_op(
    model: ModelSpec,
    precision: Precision,
    *,
    num_seqs: Num,
    new_tokens: Num,
    tp: Num,
    cp: Num,
    split_new_tokens: bool,
    moe: MoeLayout | None,
) -> Op:
    """The routed experts of a step, as :func:`forward_ops` makes them (arguments as there).

    The one operator of :func:`forward_ops` that depends on ``moe``: steps that differ only in the
    MoE layout share every other operator (:mod:`genmodel._evaluate` reuses them).
    """
    tokens = _row_tokens(num_seqs, new_tokens, cp, split_new_tokens)
    return _experts_op(model, precision, tokens, tp, moe)
