"""A HuggingFace config.json's fields (:class:`~genmodel.io._schema.HFConfigY`) as a :class:`ModelSpec`.

Reads the Llama, Mistral/Mixtral, Qwen2/Qwen2.5/Qwen3, Qwen-MoE, DeepSeek-V2/V3 and gpt-oss
spellings: the attention kind of every block, the mixture of experts and which blocks have one,
and which blocks attend through a sliding window.
"""

from __future__ import annotations

from genmodel._attention import FullAttention, GroupedQueryAttention, MultiHeadLatentAttention
from genmodel._errors import SpecError
from genmodel._model import ModelSpec, MoeSpec
from genmodel.io._schema import HFConfigY

#: the entries of transformers' ``layer_types`` genmodel models: a block attending to every token,
#: and one attending to the last ``sliding_window`` tokens
FULL_ATTENTION = "full_attention"
SLIDING_ATTENTION = "sliding_attention"


def _layer_is_moe(c: HFConfigY, layer: int, num_experts: int | None) -> bool:
    if num_experts is None or layer in c.mlp_only_layers:
        return False
    if c.first_k_dense_replace is not None:  # DeepSeek
        return layer >= c.first_k_dense_replace and layer % (c.moe_layer_freq or 1) == 0
    step = c.decoder_sparse_step or 1  # Qwen-MoE
    return (layer + 1) % step == 0


def attention_from_hf_config(c: HFConfigY, *, model_id: str) -> FullAttention:
    """The attention kind of a HuggingFace config.json: MLA when ``kv_lora_rank`` is set (DeepSeek),
    else grouped-query attention (MHA and MQA included).

    Raises:
        SpecError: an MLA config lacks a head size, or head_dim is missing and cannot be derived.
    """
    heads = c.num_attention_heads
    if c.kv_lora_rank is not None:
        missing = [k for k in ("qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim") if getattr(c, k) is None]
        if missing:
            raise SpecError(f"model {model_id}: MLA config (kv_lora_rank set) lacks {', '.join(missing)}")
        assert c.qk_nope_head_dim and c.qk_rope_head_dim and c.v_head_dim
        return MultiHeadLatentAttention(
            num_attention_heads=heads,
            q_lora_rank=c.q_lora_rank or 0,
            kv_lora_rank=c.kv_lora_rank,
            qk_nope_head_dim=c.qk_nope_head_dim,
            qk_rope_head_dim=c.qk_rope_head_dim,
            v_head_dim=c.v_head_dim,
        )
    if c.head_dim is not None:
        head_dim = c.head_dim
    else:
        if c.hidden_size % heads:
            raise SpecError(
                f"model {model_id}: head_dim is missing and num_attention_heads={heads} does not "
                f"divide hidden_size={c.hidden_size}"
            )
        head_dim = c.hidden_size // heads
    try:
        return GroupedQueryAttention(
            num_attention_heads=heads,
            num_kv_heads=c.num_key_value_heads or heads,
            head_dim=head_dim,
            qkv_bias=c.attention_bias,
        )
    except SpecError as e:
        raise SpecError(f"model {model_id}: {e}") from e


def model_from_hf_config(c: HFConfigY, *, model_id: str, name: str = "", source: str = "") -> ModelSpec:
    """Build a :class:`ModelSpec` from the fields of a HuggingFace config.json.

    Reads the Llama, Mistral/Mixtral, Qwen2/Qwen2.5/Qwen3, Qwen-MoE, DeepSeek-V2/V3 and gpt-oss spellings.

    Raises:
        SpecError: a field the architecture needs is missing (named, with ``model_id``).
    """
    moe = _moe_from_hf(c, model_id)
    attention = attention_from_hf_config(c, model_id=model_id)
    window, n_swa = _sliding_window_from_hf(c, model_id)
    if c.intermediate_size is None and (moe is None or moe.num_dense_layers):
        raise SpecError(f"model {model_id}: intermediate_size is required for dense layers")
    return ModelSpec(
        id=model_id,
        name=name or model_id,
        architecture=c.architectures[0] if c.architectures else "",
        hidden_size=c.hidden_size,
        num_layers=c.num_hidden_layers,
        attention=attention,
        intermediate_size=c.intermediate_size or (moe.expert_intermediate_size if moe else 1),
        vocab_size=c.vocab_size,
        tie_word_embeddings=c.tie_word_embeddings,
        sliding_window=window if n_swa else None,
        num_sliding_window_layers=n_swa,
        max_position_embeddings=c.max_position_embeddings,
        moe=moe,
        num_mtp_layers=c.num_nextn_predict_layers or 0,
        source=source,
    )


def _moe_from_hf(c: HFConfigY, model_id: str) -> MoeSpec | None:
    """The mixture of experts (Mixtral and gpt-oss, Qwen-MoE and DeepSeek spellings), or None for a
    dense model."""
    num_experts = c.num_local_experts or c.num_experts or c.n_routed_experts
    if num_experts is None:
        return None
    top_k = c.num_experts_per_tok or c.experts_per_token
    if top_k is None:
        raise SpecError(f"model {model_id}: num_experts_per_tok is required for an MoE config")
    if c.experts_per_token is not None and c.experts_per_token != top_k:
        raise SpecError(
            f"model {model_id}: experts_per_token={c.experts_per_token} contradicts "
            f"num_experts_per_tok={top_k}"
        )
    expert_ff = c.moe_intermediate_size or c.intermediate_size
    if expert_ff is None:
        raise SpecError(f"model {model_id}: moe_intermediate_size or intermediate_size is required")
    shared = c.shared_expert_intermediate_size or 0
    if c.n_shared_experts:
        shared = c.n_shared_experts * expert_ff
    n_moe = sum(_layer_is_moe(c, i, num_experts) for i in range(c.num_hidden_layers))
    return MoeSpec(
        num_experts=num_experts,
        num_experts_per_tok=top_k,
        expert_intermediate_size=expert_ff,
        shared_intermediate_size=shared,
        num_dense_layers=c.num_hidden_layers - n_moe,
    )


def _sliding_window_from_hf(c: HFConfigY, model_id: str) -> tuple[int | None, int]:
    """(window in tokens, layers that use it): transformers' ``layer_types`` when the config lists
    them (gpt-oss: "sliding_attention" and "full_attention" alternate), else Mistral-style (window
    set, every layer) or Qwen2-style (use_sliding_window, layers from max_window_layers on);
    (None, 0) for none.

    Raises:
        SpecError: ``layer_types`` does not give one entry per layer, names a kind genmodel does
        not model (linear attention, chunked attention), or has sliding layers without a window.
    """
    window, n_swa = None, 0
    if c.layer_types is not None:
        n_swa = _sliding_layers(c, model_id)
        window = c.sliding_window if n_swa else None
    elif c.sliding_window is not None and c.use_sliding_window is not False:
        window = c.sliding_window
        start = c.max_window_layers if c.use_sliding_window and c.max_window_layers is not None else 0
        n_swa = max(0, c.num_hidden_layers - start)
    if window is not None and c.max_position_embeddings is not None and window >= c.max_position_embeddings:
        window, n_swa = None, 0  # a window as long as the context changes nothing
    return window, n_swa


def _sliding_layers(c: HFConfigY, model_id: str) -> int:
    """How many entries of ``layer_types`` are "sliding_attention" (checked: one entry per layer,
    each full or sliding attention, a ``sliding_window`` when any is sliding)."""
    types = c.layer_types or []
    if len(types) != c.num_hidden_layers:
        raise SpecError(
            f"model {model_id}: layer_types lists {len(types)} entries, "
            f"num_hidden_layers={c.num_hidden_layers}"
        )
    unknown = sorted(set(types) - {FULL_ATTENTION, SLIDING_ATTENTION})
    if unknown:
        raise SpecError(
            f"model {model_id}: layer_types={unknown[0]!r} is not modelled (only "
            f"{FULL_ATTENTION!r} and {SLIDING_ATTENTION!r})"
        )
    n_swa = types.count(SLIDING_ATTENTION)
    if n_swa and c.sliding_window is None:
        raise SpecError(
            f"model {model_id}: layer_types lists {SLIDING_ATTENTION!r} but sliding_window is not set"
        )
    return n_swa
