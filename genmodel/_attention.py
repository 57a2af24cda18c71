"""Attention kinds: what each caches per token, the weights it holds and the operators of a step.

Each kind is a frozen value that supplies the facts the rest of genmodel asks of an attention
block, so that a new kind is one class here (plus its config keys in ``io``):

- :meth:`~Attention.kv_elements_per_token`: elements the KV cache stores per token and layer on
  one device;
- :meth:`~Attention.cached_tokens`: tokens of a sequence's context the cache keeps;
- :meth:`~Attention.params_per_device`: weights of one block's attention on one tensor-parallel
  rank;
- :meth:`~Attention.projections` and :meth:`~Attention.attention_work`: the operators of one
  forward step (the projection GEMMs, and the fused attention itself);
- :meth:`~Attention.tp_violations`: what a tensor-parallel degree must respect.

Kinds:
- :class:`GroupedQueryAttention`: MHA (one KV head per query head), GQA, MQA (one KV head); K and
  V of ``head_dim`` per KV head are cached; KV heads fewer than ``tp`` are replicated (Megatron-LM
  heads split over tp; Ainslie et al., "GQA", EMNLP 2023).
- :class:`MultiHeadLatentAttention`: DeepSeek-V2/V3 MLA caches one latent of ``kv_lora_rank +
  qk_rope_head_dim`` elements per token, shared by all heads and replicated on every tp rank; in
  decode the up-projections are absorbed into the query and output (DeepSeek-V2, Sec. 2.1).
- :class:`SlidingWindow`: the layers of a kind that attend to, and keep, only the last ``window``
  tokens (Mistral 7B, Jiang et al. 2023). A model mixes them with full layers per layer
  (:attr:`~genmodel._model.ModelSpec.attention_layers`): the projections and the per-token cache
  are the wrapped kind's, only the keys a query sees and the tokens kept change.

Attention is fused (FlashAttention/FlashDecoding): it reads Q, K, V (from the cache for past
tokens) and writes O once; the causal mask halves the score work of a prefill.
"""

from __future__ import annotations

from dataclasses import dataclass

from genmodel._errors import SpecError, require_ints
from genmodel._units import Num, maximum, minimum, where


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


@dataclass(frozen=True, slots=True, kw_only=True)
class AttentionStep:
    """One forward step as an attention block sees it, on one device.

    Attributes:
        num_seqs: sequences in the step (on this replica).
        new_tokens: tokens each sequence adds (prompt length in prefill, 1 in decode).
        past_tokens: tokens each sequence already has in the KV cache.
        tp: tensor-parallel degree (heads are split over it).
        cp: context-parallel degree (attention work and the cache are split over it).
        absorbed: MLA runs with its up-projections absorbed (decode).
        kv_read_frac: fraction of the cached tokens full-attention layers read (top-k attention).
        act_bytes: bytes per activation element.
        kv_bytes: bytes per KV-cache element.
    """

    num_seqs: Num
    new_tokens: Num
    past_tokens: Num
    tp: Num = 1
    cp: Num = 1
    absorbed: bool = False
    kv_read_frac: Num = 1.0
    act_bytes: float
    kv_bytes: float


@dataclass(frozen=True, slots=True)
class Gemm:
    """A GEMM over the step's token rows: (tokens x k) @ (k x n), ``count`` times, in ``calls``
    kernels (None: ``count``; fewer where one batched kernel runs several, as per head)."""

    name: str
    k: Num
    n: Num
    count: Num
    calls: Num | None = None


@dataclass(frozen=True, slots=True)
class AttentionWork:
    """The fused attention of a step, summed over ``count`` layers, on one device; ``latent``:
    MLA's absorbed decode attention (its own kernels and efficiency, ``mla_decode_frac``);
    ``exps``: the softmax's exponentials, one per (query, key) pair and query head, which run on
    the special-function units, not the matrix units (``genmodel._ops.Rates.time``)."""

    name: str
    flops: Num
    act_bytes: Num
    kv_bytes: Num
    latent: bool = False
    exps: Num = 0


#: the GEMMs before and after a block's fused attention
Projections = tuple[list[Gemm], list[Gemm]]


class Attention:
    """What an attention kind supplies (the methods every kind defines; see the module docstring)."""

    __slots__ = ()

    @property
    def kind(self) -> str:
        """Short name: 'mha', 'gqa', 'mqa', 'mla', or 'swa+' the wrapped kind."""
        raise NotImplementedError

    @property
    def heads(self) -> int:
        """Query heads."""
        raise NotImplementedError

    @property
    def kv_heads(self) -> int:
        """Heads with their own keys and values (MLA: every head, after its up-projection)."""
        raise NotImplementedError

    @property
    def head_dim(self) -> int:
        """Width of one head's query and key."""
        raise NotImplementedError

    def kv_elements_per_token(self, tp: Num = 1) -> Num:
        """Elements the KV cache stores per token and layer on one of ``tp`` devices."""
        raise NotImplementedError

    def cached_tokens(self, context_tokens: Num) -> Num:
        """Tokens of a ``context_tokens`` context the cache keeps: all of them."""
        return context_tokens

    def params_per_device(self, hidden_size: int, tp: Num) -> Num:
        """Weights (and biases) of one block's attention projections on one of ``tp`` ranks."""
        raise NotImplementedError

    def tp_violations(self, tp: int) -> list[str]:
        """Reasons ``tp`` cannot split this attention (empty when it can)."""
        out = []
        if self.heads % tp:
            out.append(f"tp={tp} must divide num_attention_heads={self.heads}")
        return out

    def projections(self, step: AttentionStep, hidden_size: int, num_layers: Num) -> Projections:
        """The GEMMs before and after the fused attention, over ``num_layers`` layers."""
        raise NotImplementedError

    def keys(self, step: AttentionStep) -> tuple[Num, Num]:
        """(query, key) pairs per sequence, and cached tokens read per sequence: the whole past
        (top-k attention reads ``kv_read_frac`` of it)."""
        past = step.past_tokens * step.kv_read_frac
        return attended_pairs(past, step.new_tokens), past

    def attention_work(self, step: AttentionStep, count: Num) -> AttentionWork:
        """The fused attention of ``count`` layers of this kind."""
        pairs, cached = self.keys(step)
        return self.work(step, count, pairs=pairs, cached=cached, name="attention")

    def work(self, step: AttentionStep, count: Num, *, pairs: Num, cached: Num, name: str) -> AttentionWork:
        """The fused attention of ``count`` layers over ``pairs`` (query, key) pairs per sequence
        that read ``cached`` tokens per sequence from the cache."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupedQueryAttention(Attention):
    """Multi-head attention with ``num_kv_heads`` K/V heads shared by groups of query heads.

    MHA when ``num_kv_heads == num_attention_heads``, MQA when it is 1.
    """

    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    #: biases on the q, k and v projections (Qwen2, ``attention_bias``)
    qkv_bias: bool = False

    def __post_init__(self) -> None:
        require_ints(
            num_attention_heads=self.num_attention_heads,
            num_kv_heads=self.num_kv_heads,
            head_dim=self.head_dim,
        )
        if self.num_attention_heads % self.num_kv_heads:
            raise SpecError(
                f"num_kv_heads={self.num_kv_heads} must divide num_attention_heads={self.num_attention_heads}"
            )

    @property
    def kind(self) -> str:
        """'mha', 'mqa' or 'gqa'."""
        if self.num_kv_heads == self.num_attention_heads:
            return "mha"
        return "mqa" if self.num_kv_heads == 1 else "gqa"

    @property
    def heads(self) -> int:
        """Query heads."""
        return self.num_attention_heads

    @property
    def kv_heads(self) -> int:
        """K/V heads."""
        return self.num_kv_heads

    def kv_heads_per_device(self, tp: Num) -> Num:
        """K/V heads on one of ``tp`` devices: KV heads fewer than tp are replicated."""
        return maximum(self.num_kv_heads / tp, 1)

    def kv_elements_per_token(self, tp: Num = 1) -> Num:
        """K and V, one ``head_dim`` vector each per KV head on the device."""
        return 2 * self.kv_heads_per_device(tp) * self.head_dim

    def params_per_device(self, hidden_size: int, tp: Num) -> Num:
        """q, k, v (and their biases) and o projections of the device's heads."""
        d, hd = hidden_size, self.head_dim
        heads = self.num_attention_heads / tp
        width = (heads + 2 * self.kv_heads_per_device(tp)) * hd
        bias = width if self.qkv_bias else 0
        return d * width + bias + heads * hd * d

    def tp_violations(self, tp: int) -> list[str]:
        """tp divides the heads, and the KV heads (tp <= KV heads) or is a multiple of them."""
        out = Attention.tp_violations(self, tp)
        kv = self.num_kv_heads
        if tp <= kv and kv % tp:
            out.append(f"tp={tp} must divide num_kv_heads={kv}")
        if tp > kv and tp % kv:
            out.append(f"tp={tp} must be a multiple of num_kv_heads={kv}")
        return out

    def projections(self, step: AttentionStep, hidden_size: int, num_layers: Num) -> Projections:
        """qkv_proj before, o_proj after."""
        d, hd = hidden_size, self.head_dim
        heads = self.num_attention_heads / step.tp
        qkv_out = (heads + 2 * self.kv_heads_per_device(step.tp)) * hd
        return [Gemm("qkv_proj", d, qkv_out, num_layers)], [Gemm("o_proj", heads * hd, d, num_layers)]

    def work(self, step: AttentionStep, count: Num, *, pairs: Num, cached: Num, name: str) -> AttentionWork:
        """Scores and context over every (query, key) pair and head; Q, O and the fresh K, V move
        as activations, the cached past and this step's K, V as KV cache."""
        s, cp, hd = step, step.cp, self.head_dim
        heads = self.num_attention_heads / s.tp
        kv_per_token = self.kv_elements_per_token(s.tp)
        step_tokens = s.num_seqs * s.new_tokens  # all new tokens of the replica's sequences
        return AttentionWork(
            name,
            # QK^T and PV: 2 FLOPs per MAC, head_dim MACs each, per pair and head
            flops=4 * s.num_seqs * heads * hd * pairs * count / cp,
            # Q and O, plus the fresh K and V of this step
            act_bytes=step_tokens * (2 * heads * hd + kv_per_token) * s.act_bytes * count / cp,
            # read the cached past, write this step's K and V
            kv_bytes=(s.num_seqs * cached + step_tokens) * kv_per_token * s.kv_bytes * count / cp,
            # one exponential per pair and query head (the softmax of the scores)
            exps=s.num_seqs * heads * pairs * count / cp,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MultiHeadLatentAttention(Attention):
    """Multi-head latent attention (DeepSeek-V2/V3): low-rank compressed queries, keys and values."""

    num_attention_heads: int
    #: Rank of the query compression; 0 means queries are projected directly from the hidden state.
    q_lora_rank: int
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int

    def __post_init__(self) -> None:
        require_ints(
            where="mla.",
            num_attention_heads=self.num_attention_heads,
            kv_lora_rank=self.kv_lora_rank,
            qk_nope_head_dim=self.qk_nope_head_dim,
            qk_rope_head_dim=self.qk_rope_head_dim,
            v_head_dim=self.v_head_dim,
        )
        if self.q_lora_rank < 0:
            raise SpecError(f"mla.q_lora_rank={self.q_lora_rank!r} must be >= 0")

    @property
    def kind(self) -> str:
        """'mla'."""
        return "mla"

    @property
    def heads(self) -> int:
        """Query heads."""
        return self.num_attention_heads

    @property
    def kv_heads(self) -> int:
        """Every head has its own keys and values once the latent is up-projected."""
        return self.num_attention_heads

    @property
    def head_dim(self) -> int:
        """Query and key width: the non-rotary and rotary parts."""
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def latent_dim(self) -> int:
        """The cached latent: the compressed KV and the shared rotary key."""
        return self.kv_lora_rank + self.qk_rope_head_dim

    def kv_elements_per_token(self, tp: Num = 1) -> Num:
        """The latent, the same on every tp rank (it is replicated, not split)."""
        return self.latent_dim

    def params_per_device(self, hidden_size: int, tp: Num) -> Num:
        """Down-projections (q_a, kv_a) and their norms on every rank; up-projections and o_proj
        split by heads."""
        d, m = hidden_size, self
        heads = self.num_attention_heads / tp
        qk = self.head_dim
        q = (
            d * m.q_lora_rank + m.q_lora_rank + m.q_lora_rank * heads * qk
            if m.q_lora_rank
            else d * heads * qk
        )
        up = m.kv_lora_rank * heads * (m.qk_nope_head_dim + m.v_head_dim)
        kv = d * self.latent_dim + m.kv_lora_rank + up
        return q + kv + heads * m.v_head_dim * d

    def projections(self, step: AttentionStep, hidden_size: int, num_layers: Num) -> Projections:
        """Query and latent projections before; absorbed in decode (DeepSeek-V2 Sec. 2.1.2): W_UK
        folds into the query and W_UV into the output, so attention runs over the shared latent."""
        d, m = hidden_size, self
        heads = self.num_attention_heads / step.tp
        qk = self.head_dim
        if m.q_lora_rank:
            before = [
                Gemm("q_a_proj", d, m.q_lora_rank, num_layers),
                Gemm("q_b_proj", m.q_lora_rank, heads * qk, num_layers),
            ]
        else:
            before = [Gemm("q_proj", d, heads * qk, num_layers)]
        before.append(Gemm("kv_a_proj", d, self.latent_dim, num_layers))
        after = []
        if step.absorbed:
            # a batched GEMM per head: (tokens x nope) @ (nope x kv_lora)
            before.append(
                Gemm("q_absorb", m.qk_nope_head_dim, m.kv_lora_rank, num_layers * heads, num_layers)
            )
            # a batched GEMM per head: (tokens x kv_lora) @ (kv_lora x v)
            after.append(Gemm("v_absorb", m.kv_lora_rank, m.v_head_dim, num_layers * heads, num_layers))
        else:
            before.append(
                Gemm("kv_b_proj", m.kv_lora_rank, heads * (m.qk_nope_head_dim + m.v_head_dim), num_layers)
            )
        after.append(Gemm("o_proj", heads * m.v_head_dim, d, num_layers))
        return before, after

    def work(self, step: AttentionStep, count: Num, *, pairs: Num, cached: Num, name: str) -> AttentionWork:
        """Absorbed: scores over latent+rope and context over the latent (MQA-like, one shared
        KV head); otherwise per-head K and V of qk and v widths. The cache holds the latent."""
        s, m = step, self
        heads = self.num_attention_heads / s.tp
        if s.absorbed:
            attn_dims = self.latent_dim + m.kv_lora_rank  # score over latent+rope, context over latent
            q_width = heads * (self.latent_dim + m.kv_lora_rank)
        else:
            attn_dims = self.head_dim + m.v_head_dim
            q_width = heads * (self.head_dim + m.v_head_dim) + heads * (self.head_dim + m.v_head_dim)
        step_tokens = s.num_seqs * s.new_tokens
        return AttentionWork(
            name,
            flops=2 * s.num_seqs * heads * attn_dims * pairs * count / s.cp,
            act_bytes=step_tokens * q_width * s.act_bytes * count / s.cp,
            kv_bytes=(s.num_seqs * cached + step_tokens) * self.latent_dim * s.kv_bytes * count / s.cp,
            latent=s.absorbed,
            exps=s.num_seqs * heads * pairs * count / s.cp,
        )


#: the kinds a layer attends to the whole context with
FullAttention = GroupedQueryAttention | MultiHeadLatentAttention


@dataclass(frozen=True, slots=True, kw_only=True)
class SlidingWindow(Attention):
    """Layers of ``attention``'s kind that attend to, and cache, only the last ``window`` tokens.

    The projections, weights and per-token cache are the wrapped kind's; sparse (top-k) KV reads
    apply to full layers only.
    """

    attention: FullAttention
    window: int

    def __post_init__(self) -> None:
        if not (isinstance(self.window, int) and self.window >= 1):
            raise SpecError(f"sliding_window={self.window!r} must be >= 1")

    @property
    def kind(self) -> str:
        """'swa+' the wrapped kind."""
        return f"swa+{self.attention.kind}"

    @property
    def heads(self) -> int:
        """The wrapped kind's query heads."""
        return self.attention.heads

    @property
    def kv_heads(self) -> int:
        """The wrapped kind's K/V heads."""
        return self.attention.kv_heads

    @property
    def head_dim(self) -> int:
        """The wrapped kind's head width."""
        return self.attention.head_dim

    def kv_elements_per_token(self, tp: Num = 1) -> Num:
        """The wrapped kind's."""
        return self.attention.kv_elements_per_token(tp)

    def cached_tokens(self, context_tokens: Num) -> Num:
        """At most the window."""
        return minimum(context_tokens, self.window)

    def params_per_device(self, hidden_size: int, tp: Num) -> Num:
        """The wrapped kind's."""
        return self.attention.params_per_device(hidden_size, tp)

    def tp_violations(self, tp: int) -> list[str]:
        """The wrapped kind's."""
        return self.attention.tp_violations(tp)

    def projections(self, step: AttentionStep, hidden_size: int, num_layers: Num) -> Projections:
        """The wrapped kind's."""
        return self.attention.projections(step, hidden_size, num_layers)

    def keys(self, step: AttentionStep) -> tuple[Num, Num]:
        """Each query sees at most the window; the cache read is at most the window."""
        past = step.past_tokens
        return attended_pairs(past, step.new_tokens, self.window), minimum(past, self.window)

    def attention_work(self, step: AttentionStep, count: Num) -> AttentionWork:
        """The wrapped kind's attention over the window (operator ``attention_swa``)."""
        pairs, cached = self.keys(step)
        return self.attention.work(step, count, pairs=pairs, cached=cached, name="attention_swa")

    def work(self, step: AttentionStep, count: Num, *, pairs: Num, cached: Num, name: str) -> AttentionWork:
        """The wrapped kind's."""
        return self.attention.work(step, count, pairs=pairs, cached=cached, name=name)
