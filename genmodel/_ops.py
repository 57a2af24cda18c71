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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from genmodel._errors import SpecError, require_ints
from genmodel._hardware import Device
from genmodel._model import ModelSpec
from genmodel._units import DTYPE_BYTES, Num, ceil, maximum, minimum, where
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
    # 2 FLOPs per multiply-accumulate; weights k x n read once; activations in (k) and out (n)
    return Op(
        name,
        "gemm",
        flops=2 * tokens * k * n * count,
        weight_bytes=k * n * p.weight_bytes * count,
        act_bytes=tokens * (k + n) * p.act_bytes * count,
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
    return num_experts * (1 - (1 - top_k / num_experts) ** tokens)


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
    # tokens of the replica this device's non-attention operators see
    tokens = num_seqs * new_tokens / cp if split_new_tokens else num_seqs * new_tokens
    heads = model.num_attention_heads / tp
    kv_heads = maximum(model.num_kv_heads / tp, 1)  # KV heads fewer than tp are replicated
    step_tokens = num_seqs * new_tokens  # all new tokens of the replica's sequences
    n_full = model.num_layers - model.num_sliding_window_layers
    n_swa = model.num_sliding_window_layers
    n_layers = model.num_layers
    ops: list[Op] = [
        Op("embedding", "elementwise", 0, tokens * d * p.weight_bytes, tokens * d * p.act_bytes, 0)
    ]
    windows: list[tuple[str, int, int | None]] = [("attention", n_full, None)]
    if n_swa:
        windows.append(("attention_swa", n_swa, model.sliding_window))

    if model.mla is None:
        qkv_out = (heads + 2 * kv_heads) * hd
        ops.append(_gemm("qkv_proj", tokens, d, qkv_out, p, count=n_layers))
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
        ops.append(_gemm("o_proj", tokens, heads * hd, d, p, count=n_layers))
    else:
        m = model.mla
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        latent = m.kv_lora_rank + m.qk_rope_head_dim
        if m.q_lora_rank:
            ops.append(_gemm("q_a_proj", tokens, d, m.q_lora_rank, p, count=n_layers))
            ops.append(_gemm("q_b_proj", tokens, m.q_lora_rank, heads * qk, p, count=n_layers))
        else:
            ops.append(_gemm("q_proj", tokens, d, heads * qk, p, count=n_layers))
        ops.append(_gemm("kv_a_proj", tokens, d, latent, p, count=n_layers))
        if absorb_mla:
            # DeepSeek-V2 Sec. 2.1.2: W_UK folds into the query, W_UV into the output, so
            # attention runs over the shared latent (MQA-like, latent+rope wide) directly.
            # a batched GEMM per head: (tokens x nope) @ (nope x kv_lora)
            ops.append(
                _gemm("q_absorb", tokens, m.qk_nope_head_dim, m.kv_lora_rank, p, count=n_layers * heads)
            )
            attn_dims = latent + m.kv_lora_rank  # score over latent+rope, context over latent
            q_width = heads * (latent + m.kv_lora_rank)
        else:
            ops.append(
                _gemm(
                    "kv_b_proj",
                    tokens,
                    m.kv_lora_rank,
                    heads * (m.qk_nope_head_dim + m.v_head_dim),
                    p,
                    count=n_layers,
                )
            )
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
            ops.append(_gemm("v_absorb", tokens, m.kv_lora_rank, m.v_head_dim, p, count=n_layers * heads))
        ops.append(_gemm("o_proj", tokens, heads * m.v_head_dim, d, p, count=n_layers))

    # two RMSNorms and two residual adds per block: read x (and residual), write out
    ops.append(_elementwise("norm_residual", 3 * tokens * d, p, count=2 * n_layers))

    n_dense = model.num_dense_layers
    if n_dense:
        ff = model.intermediate_size / tp
        ops.append(_gemm("gate_up_proj", tokens, d, 2 * ff, p, count=n_dense))
        ops.append(_elementwise("act_mul", 1.5 * tokens * ff, p, count=n_dense))  # read 2ff, write ff
        ops.append(_gemm("down_proj", tokens, ff, d, p, count=n_dense))

    if model.moe is not None:
        spec = model.moe
        n_moe = model.num_moe_layers
        k = spec.num_experts_per_tok
        ops.append(_gemm("router", tokens, d, spec.num_experts, p, count=n_moe))
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
        touched = local_slots * (1 - (1 - k / slots) ** instance_tokens)
        routed = instance_tokens * k * share  # token-expert pairs on the busiest device's slots
        ops.append(
            Op(
                "experts",
                "gemm",
                flops=2 * routed * expert_params / moe_tp * n_moe,
                weight_bytes=touched * expert_params / moe_tp * p.weight_bytes * n_moe,
                act_bytes=routed * (2 * d + 3 * spec.expert_intermediate_size / moe_tp) * p.act_bytes * n_moe,
                kv_bytes=0,
                rows=routed / touched,  # tokens per expert GEMM
            )
        )
        if spec.shared_intermediate_size:
            sff = spec.shared_intermediate_size / tp
            ops.append(_gemm("shared_experts", tokens, d, 3 * sff, p, count=n_moe))

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


def roofline(op: Op, device: Device, precision: Precision) -> OpTime:
    """Roofline time of one operator: max(FLOPs / achieved FLOP/s, bytes / achieved B/s).

    GEMMs run at ``efficiency.gemm_frac`` of the peak for the GEMM precision, with rows padded to
    the kernel's row tile; attention at ``attention_frac`` of the peak for the wider of the
    activation and KV-cache precisions (at least 8-bit); memory traffic at ``memory_frac`` of peak bandwidth.
    Source: Williams, Waterman, Patterson, "Roofline", CACM 2009.
    """
    eff = device.efficiency
    memory_s = op.bytes / (device.memory_bandwidth_bytes_per_s * eff.memory_frac)
    if op.kind == "gemm":
        tile = eff.gemm_tile_tokens
        padded = ceil(op.rows / tile) * tile / maximum(op.rows, 1e-30)
        dtype = device.compute_dtype(precision.gemm_dtype)
        frac = eff.gemm_low_precision_frac if DTYPE_BYTES[dtype] <= 1 else eff.gemm_frac
        compute_s = op.flops * padded / (device.peak_flops_per_s[dtype] * frac)
    elif op.kind == "attention":
        # scores and context run in the wider of the query (activation) and KV-cache precisions:
        # a bf16 cache means bf16 attention math even under fp8 GEMMs (FlashMLA, FlashAttention-3)
        wider = max(precision.act_dtype, precision.kv_dtype, key=DTYPE_BYTES.__getitem__)
        dtype = wider if DTYPE_BYTES[wider] >= 1 else "fp8"
        compute_s = op.flops / (device.peak_for(dtype) * eff.attention_frac)
    else:
        compute_s = 0 * memory_s  # elementwise FLOPs are negligible next to their bytes
    return OpTime(op, compute_s, memory_s)
