"""Bytes per device of each kind: weights, KV cache and activations.

Modelling assumptions:
- Weights are stored in the weight precision (the modules a quantised checkpoint keeps wider in
  theirs: :meth:`~genmodel._workload.Precision.for_module`), sharded as the operators are
  (attention heads and FFN columns over ``tp``, layers over ``pp``, routed expert slots (experts
  plus redundant replicas) ceil((E+r)/ep) per device and each split over ``tp*dp/ep``;
  vocabulary-parallel embedding and LM head over ``tp``); norms, MLA down-projections and the
  router are replicated. With PP the first stage holds the embedding and the last the LM head;
  the larger of the two is counted.
- The KV cache holds, per layer, the tokens its attention kind keeps (every token for full
  attention, the last ``sliding_window`` for sliding-window layers) times the elements that kind
  caches per token (:mod:`genmodel._attention`); KV heads fewer than ``tp`` are replicated, as is
  MLA's latent; context parallelism splits it over ``cp``.
- Activations: the transient working set of a prefill chunk of at most ``max_batched_tokens``
  tokens (TensorRT-LLM's default ``max_num_tokens`` = 8192) plus fp32 logits per sequence.

Where these bytes go (device, offload tiers) and how many sequences fit is :mod:`genmodel._memory`.
"""

from __future__ import annotations

import dataclasses
import math

from genmodel._attention import AttentionStep, SlidingWindow
from genmodel._model import LOGIT_BYTES, ModelSpec, attention_params_per_device
from genmodel._newtokenratio import SGLANG_SWA_EVICTION_INTERVAL
from genmodel._parallel import Plan
from genmodel._units import Num, maximum, minimum
from genmodel._workload import Precision

#: Prefill tokens processed per forward pass by default (TensorRT-LLM ``max_num_tokens`` default).
MAX_BATCHED_TOKENS = 8192


def _expert_params_per_layer(model: ModelSpec, plan: Plan, redundant_experts: int) -> float:
    """Routed-expert weights of one MoE block on the fullest device: ceil((E+r)/ep) expert slots,
    each split over the tp*dp/ep MoE-TP devices."""
    if model.moe is None:
        return 0.0
    moe = model.moe
    moe_tp = plan.tp * plan.dp / plan.ep
    slots = math.ceil((moe.num_experts + redundant_experts) / plan.ep)
    return slots * model.params_per_expert / moe_tp


def expert_bytes_per_device(
    model: ModelSpec, precision: Precision, plan: Plan, *, redundant_experts: int = 0
) -> float:
    """Bytes of routed-expert weights one device holds (a part of :func:`weight_bytes_per_device`)."""
    per_layer = _expert_params_per_layer(model, plan, redundant_experts)
    return float(per_layer * model.num_moe_layers / plan.pp * precision.weight_bytes)


def weight_bytes_per_device(
    model: ModelSpec, precision: Precision, plan: Plan, *, redundant_experts: int = 0
) -> Num:
    """Bytes of weights one device holds under ``plan`` (the fullest device, with ``redundant_experts``).

    Each module in the precision the checkpoint stores it in (:meth:`Precision.for_module`: the
    weight precision unless ``keep_modules`` keeps it in another).
    """
    d, tp = model.hidden_size, plan.tp
    w = precision.weight_bytes
    layer = model.num_layers * _attention_weight_bytes(model, precision, tp)
    layer += model.num_dense_layers * (3 * d * model.intermediate_size / tp + d) * w
    if model.moe is not None:
        moe = model.moe
        experts = _expert_params_per_layer(model, plan, redundant_experts)
        shared = 3 * d * moe.shared_intermediate_size / tp
        router = d * moe.num_experts * precision.for_module("router").weight_bytes
        layer += model.num_moe_layers * ((experts + shared + d) * w + router)
    per_stage = layer / plan.pp
    vocab = model.vocab_size * d / tp
    embedding = vocab * precision.for_module("embedding").weight_bytes
    head = 0 if model.tie_word_embeddings else vocab * precision.for_module("lm_head").weight_bytes
    ends = embedding + head + d * w if plan.pp == 1 else maximum(embedding, head + d * w)
    return per_stage + ends


def _attention_weight_bytes(model: ModelSpec, precision: Precision, tp: Num) -> Num:
    """Bytes of one block's attention weights on a device: each projection in the precision its
    operator runs in (:meth:`Precision.for_module`), its norms and biases in the weight precision."""
    params = attention_params_per_device(model, tp)
    if not precision.keep_modules:
        return params * precision.weight_bytes
    # the projections as a prefill step runs them (MLA's kv_b_proj whole, not absorbed)
    step = AttentionStep(num_seqs=1, new_tokens=1, past_tokens=0, tp=tp, act_bytes=0.0, kv_bytes=0.0)
    before, after = model.attention.projections(step, model.hidden_size, 1)
    total: Num = 0.0
    for g in (*before, *after):
        total = total + g.k * g.n * g.count * precision.for_module(g.name).weight_bytes
        params = params - g.k * g.n * g.count
    return total + params * precision.weight_bytes


def kv_bytes_per_sequence(
    model: ModelSpec, precision: Precision, context_tokens: Num, *, tp: Num = 1, pp: Num = 1, cp: Num = 1
) -> Num:
    """KV-cache bytes one sequence of ``context_tokens`` tokens occupies on one device.

    Per layer, each attention kind's tokens kept (:meth:`~genmodel._attention.Attention.cached_tokens`:
    the context, or at most the window of a sliding-window layer) times its elements per token
    (:meth:`~genmodel._attention.Attention.kv_elements_per_token`: 2 * kv_heads * head_dim for
    K and V, kv_lora_rank + qk_rope_head_dim for MLA's latent). Split over ``tp`` (KV heads),
    ``pp`` (layers) and ``cp`` (tokens).
    """
    elements: Num | None = None
    for kind, count in model.attention_layers:
        if count:
            part = count * kind.cached_tokens(context_tokens) * kind.kv_elements_per_token(tp)
            elements = part if elements is None else elements + part
    assert elements is not None
    return elements * precision.kv_bytes / pp / cp


def pool_kv_model(model: ModelSpec, swa_slack: int | None) -> ModelSpec:
    """``model`` as an engine's KV pool holds a running sequence (``KvPool.swa_slack``): its
    sliding-window layers keep the last ``sliding_window + swa_slack`` tokens, or with
    ``swa_slack`` None every token, as full-attention layers (one pool of whole-model tokens). A
    model without sliding-window layers is returned as it is.

    Source (``Engine.swa_pool`` "window", slack one block): vLLM V1's hybrid KV-cache manager
    (v1/core/kv_cache_coordinator.py HybridKVCacheCoordinator; single_type_kv_cache_manager.py
    SlidingWindowManager: get_num_skipped_tokens = max(0, computed - sliding_window + 1), and
    remove_skipped_blocks frees the whole blocks before them), so a sequence keeps its window and
    at most the block it starts inside (kv_cache_interface.py SlidingWindowSpec bounds its memory
    by the window's blocks plus one).
    """
    if not model.num_sliding_window_layers:
        return model
    assert model.sliding_window is not None
    if swa_slack is None:
        return dataclasses.replace(model, num_sliding_window_layers=0, sliding_window=None)
    if not swa_slack:
        return model
    return dataclasses.replace(model, sliding_window=model.sliding_window + swa_slack)


def split_kv_scale(model: ModelSpec, swa_ratio: float | None, tp: Num = 1) -> float:
    """What a token of SGLang's full-layer pool costs, as a share of a token's KV bytes in every layer
    (``KvPool.swa_ratio``; 1 without sliding-window layers or without split pools).

    SGLang keeps a model with sliding-window layers in two pools sized in one memory (sglang
    python/sglang/srt/model_executor/model_runner_kv_cache_mixin.py ``set_num_tokens_hybrid_swa``,
    commit 001ccef0): full tokens = memory / (F x n_full + ratio x S x n_swa) and sliding tokens =
    ratio x full tokens, F and S the per-layer bytes of a token, ``max_total_num_tokens`` being the
    full pool's. A running sequence of L tokens takes L of the full pool and at most its window (and
    a page) of the sliding one. genmodel counts the pool in full-pool tokens, each costing
    1 - (1 - ratio) x share of a whole-model token (share: :func:`sliding_kv_share`; 0.9 on gpt-oss),
    and takes the full pool as the one that binds: the sliding pool holds ratio x the full pool's
    tokens, so it binds only where the running sequences' window-clipped tokens exceed ratio x their
    whole lengths (sequences shorter than about (window + page) / ratio tokens), which is not checked.
    """
    if swa_ratio is None or not model.num_sliding_window_layers:
        return 1.0
    return 1.0 - (1.0 - swa_ratio) * sliding_kv_share(model, tp)


def sglang_sliding_keep(window: int, page: int, multiplier: float) -> int:
    """Generated tokens a decoding request keeps in SGLang's sliding pool, on average: its eviction
    (schedule_batch.py ``_evict_swa``, called every ``interval`` = ``multiplier`` x ``window`` decode
    steps, in whole pages) frees what lies before ``seqlen - 1 - window - page``, so the request keeps
    from ``window + page + 1`` to ``window + page + interval`` of them; the mean, rounded up
    (:class:`~genmodel._windowkv.SlidingPool`)."""
    interval = max(page, int(window * multiplier) // page * page)
    return window + page + -(-interval // 2)


def sliding_bind(
    model: ModelSpec, swa_ratio: float | None, input_tokens: int, output_tokens: int, held: int
) -> float:
    """How many times its full-pool tokens a running sequence costs under SGLang's split pools
    (``KvPool.swa_ratio``), the sliding pool binding first (1 where the full pool binds, and without
    split pools or sliding-window layers): the steady state's sequence holds ``input_tokens + held``
    tokens of the full pool and, of the sliding one (``swa_ratio`` x as many tokens), its whole prompt
    and the mean of min(generated, keep) over its decode, the generated tokens spread evenly over
    0 .. ``output_tokens`` (keep: :func:`sglang_sliding_keep` at SGLang's page size 1 and default
    interval). The closed form's counterpart of the simulation's check of both pools
    (:class:`~genmodel._windowkv.SlidingPool`)."""
    if swa_ratio is None or not model.num_sliding_window_layers:
        return 1.0
    assert model.sliding_window is not None
    keep, out = sglang_sliding_keep(model.sliding_window, 1, SGLANG_SWA_EVICTION_INTERVAL), output_tokens
    generated = out / 2 if out <= keep else keep - keep * keep / (2 * out)
    return max(1.0, (input_tokens + generated) / (swa_ratio * (input_tokens + held)))


def sliding_kv_share(model: ModelSpec, tp: Num = 1) -> float:
    """The share of one token's KV bytes (all layers) that sliding-window layers hold (0 without them)."""
    total = swa = 0.0
    for kind, count in model.attention_layers:
        part = float(count * kind.kv_elements_per_token(tp))
        total += part
        swa += part if isinstance(kind, SlidingWindow) else 0.0
    return swa / total if total else 0.0


def kv_bytes_per_token(model: ModelSpec, precision: Precision) -> float:
    """KV-cache bytes per token for the whole model (all layers, no sharding, no window)."""
    return float(model.num_layers * model.attention.kv_elements_per_token() * precision.kv_bytes)


def activation_bytes_per_device(
    model: ModelSpec,
    precision: Precision,
    plan: Plan,
    *,
    seqs_per_replica: Num,
    prefill_tokens: Num,
) -> Num:
    """Transient activation bytes: the widest layer's working set for one prefill chunk, plus logits."""
    d, tp = model.hidden_size, plan.tp
    ff: Num = model.intermediate_size / tp
    if model.moe is not None:
        moe = model.moe
        ff = maximum(ff, moe.num_experts_per_tok * moe.expert_intermediate_size / tp)
    chunk = minimum(prefill_tokens, MAX_BATCHED_TOKENS)
    # residual, normed input, attention output, and the gate/up/act buffers of the FFN
    per_token = (4 * d + 3 * ff) * precision.act_bytes
    logits = seqs_per_replica * model.vocab_size / tp * LOGIT_BYTES
    return chunk * per_token + logits
