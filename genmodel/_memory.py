"""Memory per device: weights, KV cache and activations, and the largest batch that fits.

Modelling assumptions:
- Weights are stored in the weight precision, sharded as the operators are (attention heads and FFN
  columns over ``tp``, layers over ``pp``, routed expert slots (experts plus redundant replicas)
  ceil((E+r)/ep) per device and each split over ``tp*dp/ep``;
  vocabulary-parallel embedding and LM head over ``tp``); norms, MLA down-projections and the
  router are replicated. With PP the first stage holds the embedding and the last the LM head; the
  larger of the two is counted.
- The KV cache holds every token of every sequence on the replica for the full-attention layers,
  and the last ``sliding_window`` tokens for the sliding-window layers; KV heads fewer than ``tp``
  are replicated, as is MLA's latent cache; context parallelism splits it over ``cp``.
- A speculative-decoding draft (a draft model, or the target's MTP block) adds its weights and
  its KV cache; an MTP block shares the target's embedding and LM head.
- Activations: the transient working set of a prefill chunk of at most ``max_batched_tokens``
  tokens (TensorRT-LLM's default ``max_num_tokens`` = 8192) plus fp32 logits per sequence.
- Usable memory is the device capacity less any OS reserve, times the engine's usable fraction
  (vLLM's default ``gpu_memory_utilization`` = 0.9).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from genmodel._errors import InfeasibleError
from genmodel._hardware import Device
from genmodel._model import ModelSpec, attention_params_per_device
from genmodel._parallel import Plan
from genmodel._units import GB, Num, maximum, minimum
from genmodel._workload import Precision

#: Prefill tokens processed per forward pass by default (TensorRT-LLM ``max_num_tokens`` default).
MAX_BATCHED_TOKENS = 8192
_LOGIT_BYTES = 4.0


def weight_bytes_per_device(
    model: ModelSpec, precision: Precision, plan: Plan, *, redundant_experts: int = 0
) -> Num:
    """Bytes of weights one device holds under ``plan`` (the fullest device, with ``redundant_experts``)."""
    d, tp = model.hidden_size, plan.tp
    layer = model.num_layers * attention_params_per_device(model, tp)
    layer += model.num_dense_layers * (3 * d * model.intermediate_size / tp + d)
    if model.moe is not None:
        moe = model.moe
        moe_tp = plan.tp * plan.dp / plan.ep
        slots = math.ceil((moe.num_experts + redundant_experts) / plan.ep)
        experts = slots * 3 * d * moe.expert_intermediate_size / moe_tp
        shared = 3 * d * moe.shared_intermediate_size / tp
        layer += model.num_moe_layers * (experts + shared + d * moe.num_experts + d)
    per_stage = layer / plan.pp
    embedding = model.vocab_size * d / tp
    head = 0 if model.tie_word_embeddings else model.vocab_size * d / tp
    ends = embedding + head + d if plan.pp == 1 else maximum(embedding, head + d)
    return (per_stage + ends) * precision.weight_bytes


def kv_bytes_per_sequence(
    model: ModelSpec, precision: Precision, context_tokens: Num, *, tp: Num = 1, pp: Num = 1, cp: Num = 1
) -> Num:
    """KV-cache bytes one sequence of ``context_tokens`` tokens occupies on one device.

    Per token and full-attention layer: 2 * kv_heads * head_dim elements (K and V), or
    kv_lora_rank + qk_rope_head_dim for MLA; sliding-window layers keep at most the window.
    Split over ``tp`` (KV heads), ``pp`` (layers) and ``cp`` (tokens).
    """
    per_layer: Num
    if model.mla is not None:
        per_layer = model.kv_elements_per_token_per_layer  # the latent is replicated on every rank
    else:
        per_layer = 2 * maximum(model.num_kv_heads / tp, 1) * model.head_dim
    n_swa = model.num_sliding_window_layers
    tokens: Num = (model.num_layers - n_swa) * context_tokens
    if n_swa:
        assert model.sliding_window is not None
        tokens = tokens + n_swa * minimum(context_tokens, model.sliding_window)
    return tokens * per_layer * precision.kv_bytes / pp / cp


def kv_bytes_per_token(model: ModelSpec, precision: Precision) -> float:
    """KV-cache bytes per token for the whole model (all layers, no sharding, no window)."""
    return float(model.num_layers * model.kv_elements_per_token_per_layer * precision.kv_bytes)


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
    logits = seqs_per_replica * model.vocab_size / tp * _LOGIT_BYTES
    return chunk * per_token + logits


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryExtras:
    """What a deployment keeps in memory beyond the model itself.

    Attributes:
        redundant_experts: extra expert replicas (EPLB) on top of the model's experts.
        draft: a speculative-decoding draft run on the same devices (its weights and KV count).
        draft_shares_vocab: the draft uses the target's embedding and LM head (an MTP block).
    """

    redundant_experts: int = 0
    draft: ModelSpec | None = None
    draft_shares_vocab: bool = False


NO_EXTRAS = MemoryExtras()


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryUse:
    """Bytes per device by kind, against the device's capacity."""

    weights_bytes_per_device: float
    kv_cache_bytes_per_device: float
    activation_bytes_per_device: float
    capacity_bytes_per_device: float
    usable_bytes_per_device: float

    @property
    def total_bytes_per_device(self) -> float:
        """Weights + KV cache + activations."""
        return (
            self.weights_bytes_per_device + self.kv_cache_bytes_per_device + self.activation_bytes_per_device
        )

    @property
    def fits(self) -> bool:
        """Whether the total fits in the usable memory."""
        return self.total_bytes_per_device <= self.usable_bytes_per_device


def memory_use(
    model: ModelSpec,
    device: Device,
    plan: Plan,
    precision: Precision,
    *,
    batch: int,
    input_tokens: int,
    output_tokens: int,
    extras: MemoryExtras = NO_EXTRAS,
) -> MemoryUse:
    """Memory per device for ``batch`` sequences (whole deployment) of input+output tokens.

    ``extras`` adds redundant expert replicas and a speculative-decoding draft.
    """
    seqs = math.ceil(batch / plan.dp)
    context = input_tokens + output_tokens
    kv = seqs * kv_bytes_per_sequence(model, precision, context, tp=plan.tp, pp=plan.pp, cp=plan.cp)
    act = activation_bytes_per_device(
        model, precision, plan, seqs_per_replica=seqs, prefill_tokens=seqs * input_tokens / plan.cp
    )
    r = extras.redundant_experts
    weights = weight_bytes_per_device(model, precision, plan, redundant_experts=r)
    draft = extras.draft
    if draft is not None:
        draft_plan = dataclasses.replace(plan, pp=1, ep=plan.ep if draft.moe is not None else 1)
        weights += weight_bytes_per_device(draft, precision, draft_plan, redundant_experts=r)
        if extras.draft_shares_vocab:
            vocab = draft.vocab_size * draft.hidden_size / plan.tp
            weights -= vocab * (1 if draft.tie_word_embeddings else 2) * precision.weight_bytes
        kv += seqs * kv_bytes_per_sequence(draft, precision, context, tp=plan.tp, cp=plan.cp)
    return MemoryUse(
        weights_bytes_per_device=float(weights),
        kv_cache_bytes_per_device=float(kv),
        activation_bytes_per_device=float(act),
        capacity_bytes_per_device=device.memory_capacity_bytes,
        usable_bytes_per_device=device.usable_memory_bytes,
    )


def require_one_sequence(
    model: ModelSpec,
    device: Device,
    plan: Plan,
    precision: Precision,
    *,
    input_tokens: int,
    output_tokens: int,
    extras: MemoryExtras = NO_EXTRAS,
) -> None:
    """Raise :class:`InfeasibleError` unless one sequence per replica fits in memory."""
    one = memory_use(
        model,
        device,
        plan,
        precision,
        batch=plan.dp,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        extras=extras,
    )
    if not one.fits:
        raise InfeasibleError(
            [
                f"model={model.id} needs {one.total_bytes_per_device / GB:.1f} GB per device for one "
                f"sequence of {input_tokens + output_tokens} tokens (weights "
                f"{one.weights_bytes_per_device / GB:.1f} GB), more than the usable "
                f"{one.usable_bytes_per_device / GB:.1f} GB of hardware={device.id}; "
                "raise tp, pp or ep (with dp), or use a narrower weight dtype"
            ]
        )


def max_batch(
    model: ModelSpec,
    device: Device,
    plan: Plan,
    precision: Precision,
    *,
    input_tokens: int,
    output_tokens: int,
    extras: MemoryExtras = NO_EXTRAS,
) -> int:
    """The largest batch (whole deployment, a multiple of ``dp``) whose memory fits.

    Raises:
        InfeasibleError: not even one sequence per replica fits.
    """

    require_one_sequence(
        model,
        device,
        plan,
        precision,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        extras=extras,
    )

    def fits(seqs: int) -> bool:
        return memory_use(
            model,
            device,
            plan,
            precision,
            batch=seqs * plan.dp,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            extras=extras,
        ).fits

    # memory grows monotonically with the batch: bracket the boundary, then bisect it
    lo, hi = 1, 2
    while fits(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo * plan.dp
