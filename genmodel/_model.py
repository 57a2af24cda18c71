"""Model architecture specifications: dense and MoE decoders, with an attention kind per block.

Modelling assumptions:
- A decoder of ``num_layers`` identical attention blocks; each block's feed-forward is either a
  gated MLP (gate, up, down projections) or a mixture of experts with optional shared experts.
  The first ``num_dense_layers`` blocks of an MoE model are dense (DeepSeek ``first_k_dense_replace``).
- Every block has the same attention projections (:mod:`genmodel._attention`: MHA/GQA/MQA or
  MLA); ``num_sliding_window_layers`` of the blocks attend to the last ``sliding_window`` tokens
  only (:class:`~genmodel._attention.SlidingWindow`).
- Norms and biases are counted in parameters; rotary embeddings have none.
- A request's context (prompt + output) is at most ``max_position_embeddings``, the longest the
  published config supports (:func:`context_note`); beyond it only on request, with a note.
"""

from __future__ import annotations

from dataclasses import dataclass

from genmodel._attention import Attention, FullAttention, SlidingWindow
from genmodel._errors import SpecError, require_ints
from genmodel._units import Num

#: bytes per logit: logits are written in fp32 for sampling
LOGIT_BYTES = 4.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MoeSpec:
    """Mixture of experts: routed experts, top-k, expert FFN size and shared experts."""

    num_experts: int
    num_experts_per_tok: int
    expert_intermediate_size: int
    #: Total intermediate size of the always-active shared expert(s); 0 for none.
    shared_intermediate_size: int = 0
    #: Dense (non-MoE) blocks, e.g. DeepSeek-V3's first 3.
    num_dense_layers: int = 0

    def __post_init__(self) -> None:
        require_ints(
            where="moe.",
            num_experts=self.num_experts,
            num_experts_per_tok=self.num_experts_per_tok,
            expert_intermediate_size=self.expert_intermediate_size,
        )
        if self.num_experts_per_tok > self.num_experts:
            raise SpecError(
                f"moe.num_experts_per_tok={self.num_experts_per_tok} must be <= "
                f"num_experts={self.num_experts}"
            )
        if self.shared_intermediate_size < 0 or self.num_dense_layers < 0:
            raise SpecError("moe.shared_intermediate_size and num_dense_layers must be >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """A decoder-only transformer, as its published config.json describes it."""

    id: str
    name: str = ""
    #: the config.json's first ``architectures`` entry (e.g. "LlamaForCausalLM"): which of an
    #: engine's model classes runs it; "" = not given
    architecture: str = ""
    hidden_size: int
    num_layers: int
    #: the attention of every block (:mod:`genmodel._attention`); sliding-window blocks wrap it
    attention: FullAttention
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool = False
    #: the window of the sliding-window blocks, and how many of the blocks have one
    sliding_window: int | None = None
    num_sliding_window_layers: int = 0
    max_position_embeddings: int | None = None
    moe: MoeSpec | None = None
    #: Extra multi-token-prediction blocks (DeepSeek MTP); stored, not run by default.
    num_mtp_layers: int = 0
    source: str = ""
    #: per quantised weight precision (fp4, ...), the modules the published checkpoint of that
    #: precision keeps in another one: (weight dtype, ((module or class, dtype), ...)) pairs, as
    #: :attr:`genmodel._workload.Precision.keep_modules` takes them (the model YAML's
    #: ``checkpoints``, each with its source); () for a model without such a checkpoint
    kept_modules: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    def __post_init__(self) -> None:
        owner = f"model {self.id}"
        require_ints(
            where=f"{owner}.",
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            intermediate_size=self.intermediate_size,
            vocab_size=self.vocab_size,
        )
        if self.sliding_window is not None and self.sliding_window < 1:
            raise SpecError(f"{owner}.sliding_window={self.sliding_window!r} must be >= 1")
        if not 0 <= self.num_sliding_window_layers <= self.num_layers:
            raise SpecError(
                f"{owner}.num_sliding_window_layers={self.num_sliding_window_layers} must be in "
                f"[0, num_layers={self.num_layers}]"
            )
        if self.num_sliding_window_layers and self.sliding_window is None:
            raise SpecError(f"{owner}: num_sliding_window_layers > 0 needs a sliding_window")
        if self.moe is not None and self.moe.num_dense_layers > self.num_layers:
            raise SpecError(
                f"{owner}: moe.num_dense_layers={self.moe.num_dense_layers} must be <= "
                f"num_layers={self.num_layers}"
            )

    def kept_modules_for(self, weight_dtype: str) -> tuple[tuple[str, str], ...]:
        """The modules the published ``weight_dtype`` checkpoint keeps in another precision
        (:attr:`kept_modules`); () when the model names none for that precision."""
        return dict(self.kept_modules).get(weight_dtype, ())

    @property
    def attention_layers(self) -> tuple[tuple[Attention, int], ...]:
        """Each attention kind of the blocks and how many blocks have it: the full-attention
        blocks first, then the sliding-window ones (if any)."""
        n_swa = self.num_sliding_window_layers
        if not n_swa:
            return ((self.attention, self.num_layers),)
        assert self.sliding_window is not None
        window = SlidingWindow(attention=self.attention, window=self.sliding_window)
        return ((self.attention, self.num_layers - n_swa), (window, n_swa))

    @property
    def params_per_expert(self) -> int:
        """Weights of one routed expert of one block: gate, up and down projections (0 if dense)."""
        return 0 if self.moe is None else 3 * self.hidden_size * self.moe.expert_intermediate_size

    @property
    def num_moe_layers(self) -> int:
        """Blocks whose feed-forward is a mixture of experts."""
        return 0 if self.moe is None else self.num_layers - self.moe.num_dense_layers

    @property
    def num_dense_layers(self) -> int:
        """Blocks whose feed-forward is a dense gated MLP."""
        return self.num_layers - self.num_moe_layers


def context_note(model: ModelSpec, context_tokens: int, *, allow: bool) -> str | None:
    """Check a request's context against the model's maximum (``max_position_embeddings``).

    Args:
        model: the architecture; a model without a published maximum is never refused.
        context_tokens: prompt plus output tokens of the longest request.
        allow: estimate a longer context anyway (``allow_long_context``).

    Returns:
        None within the maximum; beyond it (and allowed), the note the estimate carries.

    Raises:
        SpecError: the context exceeds the maximum and ``allow`` is False.
    """
    limit = model.max_position_embeddings
    if limit is None or context_tokens <= limit:
        return None
    what = (
        f"input_tokens + output_tokens={context_tokens:,} exceeds the maximum context of model "
        f"{model.id}, max_position_embeddings={limit:,}"
    )
    if not allow:
        raise SpecError(
            f"{what}; --allow-long-context (allow_long_context=True) estimates it anyway "
            "(quality beyond the trained context needs RoPE scaling, which is not modelled)"
        )
    return (
        f"{what}: estimated as asked (allow_long_context); the cost is modelled, but quality "
        "beyond the trained context depends on RoPE scaling (YaRN, NTK), which is not"
    )


def attention_params_per_device(model: ModelSpec, tp: Num) -> Num:
    """Attention weights of one block held by one tensor-parallel rank (biases and norms included).

    The kind's projections (:meth:`~genmodel._attention.Attention.params_per_device`; MLA
    down-projections are replicated on every rank, heads are split), plus the block's input norm.
    """
    d = model.hidden_size
    return model.attention.params_per_device(d, tp) + d  # + the input RMSNorm


def count_params(model: ModelSpec) -> dict[str, int]:
    """Parameter counts by part: attention, dense MLP, experts, shared experts, router, embeddings.

    Returns:
        A dict with keys ``attention``, ``mlp``, ``experts``, ``shared_experts``, ``router``,
        ``embedding``, ``lm_head``, ``final_norm`` and ``total``.
    """
    d = model.hidden_size
    attention = model.num_layers * int(attention_params_per_device(model, 1))
    # gated MLP: gate and up (d -> ff) and down (ff -> d), plus the post-attention norm
    mlp = model.num_dense_layers * (3 * d * model.intermediate_size + d)
    experts = shared = router = 0
    if model.moe is not None:
        moe, n = model.moe, model.num_moe_layers
        experts = n * moe.num_experts * model.params_per_expert
        shared = n * 3 * d * moe.shared_intermediate_size
        router = n * (d * moe.num_experts + d)  # router weights + post-attention norm
    embedding = model.vocab_size * d
    lm_head = 0 if model.tie_word_embeddings else model.vocab_size * d
    parts = {
        "attention": attention,
        "mlp": mlp,
        "experts": experts,
        "shared_experts": shared,
        "router": router,
        "embedding": embedding,
        "lm_head": lm_head,
        "final_norm": d,
    }
    parts["total"] = sum(parts.values())
    return parts
