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

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from genmodel._attention import AttentionStep
from genmodel._errors import SpecError
from genmodel._hardware import Device
from genmodel._model import LOGIT_BYTES, ModelSpec
from genmodel._parallel import MoeLayout
from genmodel._units import DTYPE_BYTES, Num, ceil, check_amount, maximum, power, where
from genmodel._workload import Precision


@dataclass(frozen=True, slots=True)
class Op:
    """One operator of a step, summed over the layers it occurs in, for one device.

    ``rows`` is the number of token rows a GEMM multiplies (for row-tile padding); 0 elsewhere.
    ``moe_calls`` is the number of fused-MoE kernel chains the operator runs (the routed experts:
    one per MoE layer), each costing the device's ``moe_layer_latency_s``; 0 elsewhere.
    ``latent`` marks MLA's absorbed decode attention, which runs at ``mla_decode_frac``.
    ``exps`` counts an attention operator's softmax exponentials (special-function work).
    ``dtype`` is a GEMM's precision where it differs from the step's (an operator a quantised
    checkpoint keeps wider: :meth:`Precision.for_module`); "" elsewhere.
    """

    name: str
    kind: str  # "gemm", "attention" or "elementwise"
    flops: Num
    weight_bytes: Num
    act_bytes: Num
    kv_bytes: Num
    rows: Num = 0
    moe_calls: Num = 0
    calls: Num = 0
    latent: bool = False
    exps: Num = 0
    dtype: str = ""

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


def set_slots_init(cls: type) -> None:
    """Give the frozen slots dataclass ``cls`` an ``__init__`` that sets each field's slot through
    the slot's descriptor: the generated one goes through ``object.__setattr__`` per field (frozen),
    four times the cost, and a plan search makes hundreds of operators and their times per layout.
    The same signature (fields in order, their defaults) and the same instance; it stays frozen."""
    fields = dataclasses.fields(cls)
    if any(not f.init or f.default_factory is not dataclasses.MISSING for f in fields):
        raise TypeError(f"{cls.__name__}: only fields with plain defaults")  # (none here)
    namespace: dict[str, object] = {f"_set_{f.name}": getattr(cls, f.name).__set__ for f in fields}
    params = []
    for f in sorted(fields, key=lambda f: bool(f.kw_only)):  # (the keyword-only ones last, after *)
        if f.kw_only and "*" not in params:
            params.append("*")
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
    body = "".join(f"\n    _set_{f.name}(self, {f.name})" for f in fields)
    exec(f"def __init__(self, {', '.join(params)}):{body}", namespace)  # (as dataclasses makes its own)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"  # type: ignore[attr-defined]
    cls.__init__ = init  # type: ignore[misc]


set_slots_init(Op)
set_slots_init(OpTime)


def _gemm(
    name: str, tokens: Num, k: Num, n: Num, step: Precision, *, count: Num = 1, calls: Num | None = None
) -> Op:
    # 2 FLOPs per multiply-accumulate; weights k x n read once; activations in (k) and out (n).
    # (The sizes are multiplied first, then the token rows: one product over a batch grid.)
    # ``calls`` kernels run them (``count`` unless batched, as the per-head MLA absorptions are);
    # in the precisions the checkpoint keeps this operator in (the step's unless it keeps it wider)
    p = step.for_module(name)
    return Op(
        name,
        "gemm",
        flops=2 * k * n * count * tokens,
        weight_bytes=k * n * p.weight_bytes * count,
        act_bytes=(k + n) * p.act_bytes * count * tokens,
        kv_bytes=0,
        rows=tokens,
        calls=count if calls is None else calls,
        dtype=_own_dtype(p, step),
    )


def _own_dtype(p: Precision, step: Precision) -> str:
    """An operator's :attr:`Op.dtype`: the GEMM precision of ``p`` (what the checkpoint keeps it in)
    where it differs from the step's, else ""."""
    return "" if p is step or p.gemm_dtype == step.gemm_dtype else p.gemm_dtype


def _elementwise(name: str, elements: Num, p: Precision, *, count: Num = 1) -> Op:
    # one read and one write per element; a handful of FLOPs are negligible next to the bytes
    return Op(name, "elementwise", 0, 0, 2 * elements * p.act_bytes * count, 0)


def expected_experts_touched(num_experts: Num, top_k: Num, tokens: Num) -> Num:
    """Expected number of distinct experts at least one of ``tokens`` routes to (uniform routing).

    Each token picks k of E experts; an expert is missed by one token with probability 1-k/E, so
    E*(1-(1-k/E)^tokens) are touched (GenZ, Bambhaniya et al. 2024, Sec. MoE).

    Raises:
        SpecError: tokens not finite or negative, num_experts not > 0, or top_k outside
            (0, num_experts].
    """
    check_amount("tokens", tokens)
    check_amount("num_experts", num_experts, positive=True)
    check_amount("top_k", top_k, positive=True)
    if isinstance(top_k, int | float) and isinstance(num_experts, int | float) and top_k > num_experts:
        raise SpecError(f"top_k={top_k!r} must be <= num_experts={num_experts!r}")
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
    d = model.hidden_size
    tokens = _row_tokens(num_seqs, new_tokens, cp, split_new_tokens)
    n_layers = model.num_layers
    table = p.for_module("embedding").weight_bytes  # the embedding rows read, as the checkpoint stores them
    ops: list[Op] = [Op("embedding", "elementwise", 0, tokens * d * table, tokens * d * p.act_bytes, 0)]

    def gemm(name: str, k: Num, n: Num, count: Num, calls: Num | None = None) -> None:
        # a GEMM over the step's token rows (tokens x k times k x n, count times, in ``calls`` kernels)
        ops.append(_gemm(name, tokens, k, n, p, count=count, calls=calls))

    step = AttentionStep(
        num_seqs=num_seqs,
        new_tokens=new_tokens,
        past_tokens=past_tokens,
        tp=tp,
        cp=cp,
        absorbed=absorb_mla,
        kv_read_frac=kv_read_frac,
        act_bytes=p.act_bytes,
        kv_bytes=p.kv_bytes,
    )
    # the attention kind's projections around its fused attention, one per group of layers
    before, after = model.attention.projections(step, d, n_layers)
    for g in before:
        gemm(g.name, g.k, g.n, g.count, g.calls)
    for kind, count in model.attention_layers:
        if count:
            w = kind.attention_work(step, count)
            ops.append(
                Op(w.name, "attention", w.flops, 0, w.act_bytes, w.kv_bytes, latent=w.latent, exps=w.exps)
            )
    for g in after:
        gemm(g.name, g.k, g.n, g.count, g.calls)

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
    head = p.for_module("lm_head")
    ops.append(
        Op(
            "lm_head",
            "gemm",
            flops=2 * last * d * vocab,
            weight_bytes=d * vocab * head.weight_bytes,
            act_bytes=last * (d * head.act_bytes + vocab * LOGIT_BYTES),
            kv_bytes=0,
            rows=last,
            calls=1,
            dtype=_own_dtype(head, p),
        )
    )
    return ops


def _row_tokens(num_seqs: Num, new_tokens: Num, cp: Num, split_new_tokens: bool) -> Num:
    """Tokens of the replica a device's non-attention operators see (cp splits a prefill's)."""
    return num_seqs * new_tokens / cp if split_new_tokens else num_seqs * new_tokens


def _experts_op(
    model: ModelSpec,
    p: Precision,
    tokens: Num,
    tp: Num,
    moe: MoeLayout | None,
    missed: dict[tuple[float, int | None], Num] | None = None,
) -> Op:
    """The routed experts of a step over ``tokens`` token rows (:func:`forward_ops`; ``missed``
    as :func:`experts_op` keeps them)."""
    spec = model.moe
    assert spec is not None
    d, n_moe, k = model.hidden_size, model.num_moe_layers, spec.num_experts_per_tok
    expert_params = model.params_per_expert
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
    base = 1 - k / slots
    if missed is None:
        touched = local_slots * (1 - power(base, instance_tokens))
    else:
        key = (base, None if moe is None else moe.dp)  # (the instance's tokens: these tokens x dp)
        if key not in missed:
            missed[key] = power(base, instance_tokens)
        touched = local_slots * (1 - missed[key])
    routed = instance_tokens * k * share  # token-expert pairs on the busiest device's slots
    # per pair: the gate/up GEMM reads the token (d) and the intermediate is written, activated and
    # read back (3 I_e / moe_tp), in the activation precision; the down GEMM writes the pair's
    # partial output (d) and the combine reads it back, both in 16 bits (the Triton fused-MoE's
    # bf16 intermediate_cache3 summed by moe_sum; TensorRT-LLM's CUTLASS MoE's bf16 GEMM2 rows
    # summed by finalizeMoeRouting), whatever the GEMM inputs' precision
    pair_bytes = (d + 3 * spec.expert_intermediate_size / moe_tp) * p.act_bytes + 2 * d * p.partial_sum_bytes
    return Op(
        "experts",
        "gemm",
        flops=2 * routed * expert_params / moe_tp * n_moe,
        weight_bytes=touched * expert_params / moe_tp * p.weight_bytes * n_moe,
        act_bytes=routed * pair_bytes * n_moe,
        kv_bytes=0,
        rows=routed / touched,  # tokens per expert GEMM
        moe_calls=n_moe,  # one fused-MoE kernel chain per MoE layer (Rates.time)
    )


#: what the expert-parallel combine of a decode step can run beside (:func:`combine_overlap_s`)
COMBINE_OVERLAPS = ("none", "shared", "down")


def combine_overlap_s(mode: str, times: Sequence[OpTime]) -> Num:
    """Operator time of a decode step that its MoE combine runs beside under SGLang's single-batch
    overlap (``--enable-single-batch-overlap``): the combine goes out on a second stream while the
    shared experts run (``shared``), and, with a MoE runner whose down GEMM signals its finished
    tiles, while the routed experts' down GEMM runs too (``down``): a third of their time, the down
    projection's share of a gated expert's weights and FLOPs; ``none``: 0.

    Source: sglang ``python/sglang/srt/single_batch_overlap.py`` (``SboFlags``: the combine beside
    the shared experts whenever the overlap is on; beside the down GEMM only with the FlashInfer
    CuTe DSL runner, DeepGEMM's signalling GEMM being Hopper's only; the combine's sends on 32 SMs
    on Blackwell, which this leaves out, so the hidden time is an upper bound), and the LMSYS GB200
    post II ("we overlap the combine communication with both the down GEMM and the shared experts").
    """
    total: Num = 0.0
    for t in times:
        if t.op.name == "shared_experts" and mode != "none":
            total = total + t.time_s
        elif t.op.name == "experts" and mode == "down":
            total = total + t.time_s / 3
    return total


def roofline(op: Op, device: Device, precision: Precision) -> OpTime:
    """Roofline time of one operator: max(FLOPs / achieved FLOP/s, bytes / achieved B/s).

    GEMMs run at ``efficiency.gemm_frac`` of the peak for the GEMM precision, with rows padded to
    the kernel's row tile; attention at ``attention_frac`` of the peak for the wider of the
    activation and KV-cache precisions (at least 8-bit), MLA's absorbed decode attention at
    ``mla_decode_frac`` (its own kernels: hardware_db/EFFICIENCY.md), and no faster than the
    device's special-function units compute the softmax's exponentials (``Device.exp_per_s``, where
    the device file gives it: a flash-attention kernel overlaps the two, so the longer one counts);
    memory traffic at
    ``memory_frac`` of peak bandwidth,
    the routed experts' at ``expert_memory_frac`` of that (grouped GEMMs over small expert slices),
    plus ``moe_layer_latency_s`` per MoE layer on their memory side: the fixed time of a fused-MoE
    kernel chain (routing, token alignment, two grouped GEMMs, activation, combine) that a decode
    step at few tokens per expert pays and a compute-bound step hides.
    Source: Williams, Waterman, Patterson, "Roofline", CACM 2009; the fixed MoE time from published
    fused-MoE kernel timings (hardware_db/EFFICIENCY.md, ``moe_layer_latency_us``).
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
    mla_decode_flops_per_s: Num  # achieved FLOP/s of MLA's absorbed decode attention
    gemm_tile_tokens: int
    gemm_small_tile_tokens: int  # 0: no small-M kernel (every GEMM pads to gemm_tile_tokens)
    expert_memory_bytes_per_s: Num  # achieved memory bandwidth of the routed experts' GEMMs
    moe_layer_latency_s: Num = 0.0  # fixed time of one fused-MoE kernel chain (one MoE layer)
    gemm_latency_s: Num = 0.0  # fixed time of one dense GEMM kernel
    exp_per_s: Num = 0.0  # special-function exponentials per second (0: not bounded)
    # achieved FLOP/s of the GEMMs a checkpoint keeps in another precision, by that precision
    kept_gemm_flops_per_s: tuple[tuple[str, Num], ...] = ()

    @classmethod
    def of(cls, device: Device, precision: Precision) -> Rates:
        """The achieved rates of ``device`` for ``precision`` (peaks times efficiencies)."""
        eff = device.efficiency
        # scores and context run in the wider of the query (activation) and KV-cache precisions
        attention_dtype = device.compute_dtype(precision.attention_dtype)
        scale = device.matmul_scale
        # likewise a device whose memory reaches less of its peak in a streaming benchmark
        memory = device.memory_bandwidth_bytes_per_s * eff.memory_frac * device.memory_scale
        attention_peak = device.peak_flops_per_s[attention_dtype] * scale.get(attention_dtype, 1.0)
        return cls(
            memory_bytes_per_s=memory,
            gemm_flops_per_s=_gemm_flops_per_s(device, precision.gemm_dtype),
            attention_flops_per_s=attention_peak * eff.attention_frac,
            mla_decode_flops_per_s=attention_peak * eff.mla_decode_frac,
            gemm_tile_tokens=eff.gemm_tile_tokens,
            gemm_small_tile_tokens=eff.gemm_small_tile_tokens,
            expert_memory_bytes_per_s=memory * eff.expert_memory_frac,
            moe_layer_latency_s=eff.moe_layer_latency_s,
            gemm_latency_s=eff.gemm_latency_s,
            exp_per_s=device.exp_per_s,
            kept_gemm_flops_per_s=tuple(
                (g, _gemm_flops_per_s(device, g)) for g in precision.kept_gemm_dtypes
            ),
        )

    def padding(self, rows: Num) -> Num:
        """Work a GEMM of ``rows`` token rows does over its useful work: rows padded to the tile,
        or to the small-M kernels' token tile where there are no more rows than it."""
        tile = self.gemm_tile_tokens
        padded = ceil(rows / tile) * tile
        small = self.gemm_small_tile_tokens
        if type(rows) is float or type(rows) is int:  # (a scalar step: the helpers' plain branches)
            if small and rows <= small:
                padded = float(math.ceil(rows / small)) * small
            return padded / (rows if rows >= 1e-30 else 1e-30)
        if small:  # swap-AB kernels of small M (hardware_db/EFFICIENCY.md)
            padded = where(rows <= small, ceil(rows / small) * small, padded)
        return padded / maximum(rows, 1e-30)

    def time(self, op: Op, padded: Num) -> OpTime:
        """Roofline time of ``op`` (a GEMM's row padding given, as :meth:`padding` says)."""
        if op.name == "experts":  # streamed at the experts' rate, after their kernels' fixed time
            memory_s = op.bytes / self.expert_memory_bytes_per_s + op.moe_calls * self.moe_layer_latency_s
        else:  # a GEMM's kernels each take a fixed time besides streaming (gemm_latency_s)
            memory_s = op.bytes / self.memory_bytes_per_s + op.calls * self.gemm_latency_s
        if op.kind == "gemm":
            rate = dict(self.kept_gemm_flops_per_s)[op.dtype] if op.dtype else self.gemm_flops_per_s
            compute_s = op.flops * padded / rate
        elif op.kind == "attention":
            compute_s = op.flops / (self.mla_decode_flops_per_s if op.latent else self.attention_flops_per_s)
            if self.exp_per_s:  # the softmax's exponentials, overlapped with the matrix work
                compute_s = maximum(compute_s, op.exps / self.exp_per_s)
        else:
            compute_s = 0 * memory_s  # elementwise FLOPs are negligible next to their bytes
        return OpTime(op, compute_s, memory_s)


def _gemm_flops_per_s(device: Device, gemm_dtype: str) -> Num:
    """Achieved FLOP/s of a GEMM requested in ``gemm_dtype``: the peak of the units that run it
    times the GEMM efficiency of that width, and the device's matmul scale."""
    eff = device.efficiency
    dtype = device.compute_dtype(gemm_dtype)
    frac = eff.gemm_low_precision_frac if DTYPE_BYTES[dtype] <= 1 else eff.gemm_frac
    # a device whose matrix units reach less of their peak than the fitted ones (clocks falling
    # under dense load) reaches that much less (hardware_db/EFFICIENCY.md)
    return device.peak_flops_per_s[dtype] * frac * device.matmul_scale.get(dtype, 1.0)


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

    def sums(self) -> tuple[Num, ...]:
        """The step's sums, every field but :attr:`times`, in their order (``StepRoofline(times,
        *sums)`` makes the roofline again)."""
        return tuple(getattr(self, name) for name in _ROOFLINE_SUMS)


set_slots_init(StepRoofline)

#: the fields of :class:`StepRoofline` that sum its operators' times (all but ``times``)
_ROOFLINE_SUMS = tuple(f.name for f in dataclasses.fields(StepRoofline) if f.name != "times")


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
    missed: dict[tuple[float, int | None], Num] | None = None,
) -> Op:
    """The routed experts of a step, as :func:`forward_ops` makes them (arguments as there).

    The one operator of :func:`forward_ops` that depends on ``moe``: steps that differ only in the
    MoE layout share every other operator (:mod:`genmodel._evaluate` reuses them). ``missed``:
    the chances that no token routes to a slot, kept by (1 - k/slots, replicas) for steps with
    these same tokens (most MoE layouts of a search share them: the same numbers, made once).
    """
    tokens = _row_tokens(num_seqs, new_tokens, cp, split_new_tokens)
    return _experts_op(model, precision, tokens, tp, moe, missed)
