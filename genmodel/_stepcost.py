"""The cost of one mixed serving step (decode tokens and prefill chunks together), from a table.

Modelling assumptions:
- A step's time is genmodel's step time (:func:`~genmodel._forwardpass.step_terms`) of exactly that
  batch: the operators' roofline times, the plan's collectives (a fraction hidden behind the
  operators, as ``step_terms`` overlaps them) and the per-step overhead.
- Operators split three ways. Those over the step's token rows (GEMMs, experts, norms, the
  embedding) depend only on the step's total tokens T; those over its sequences' last tokens (final
  norm, LM head) only on the number of sequences S; attention on each sequence's (new, past)
  tokens. Collectives depend on T.
- The table evaluates ``step_terms`` once, vectorised, over every T from 1 to the most a step
  holds, for a decode step (T sequences of one new token) and a prefill (one sequence of T new
  tokens): GEMM row padding, the experts' rows and the collectives make the cost jagged in T, so
  the table keeps every point (a few tens of milliseconds to build). Steps with
  prefill tokens take the prefill operators (MLA unabsorbed), pure decode steps the decode ones.
- Attention FLOPs are linear in the (query, key) pairs and its bytes in the new and cached tokens
  (:func:`~genmodel._ops.forward_ops`), so the table keeps three coefficients per attention
  operator, read off ``step_terms`` at three points; a step's attention sums the FLOPs and bytes of
  its sequences (one fused kernel) and takes the roofline of the sums. Decode attention of n
  sequences uses their summed context (exact for full attention; a sliding window is taken at the
  mean context).
- A step with prefill chunks takes at least ``prefill_host_s``, the host time of launching an eager
  forward's kernels (:mod:`genmodel._hostcost`; 0 where the engine graphs such steps): its time is
  max(GPU time, host time) plus the per-step overhead; decode-only steps replay CUDA graphs, up to
  the engine's ``graph_max_decode_batch`` sequences, and of them only the engine's
  ``graph_decode_sizes`` where it names them (:meth:`StepCostTable.graphed_up_to`): another decode
  batch runs eagerly and takes the same floor. An engine that pads a decode batch up to the next
  size it captured (``graph_pad_sizes``: vLLM, SGLang) replays the graph at that size: the
  operators over token rows and over sequences (GEMMs, experts, norms, LM head) and the collectives
  run the padded batch, the routed experts too (the padding rows carry stale token ids, vLLM
  zeroing only their positions and SGLang their sequence lengths and cache slots, so they route as
  tokens do; vLLM PR 46428, 2026-06, says so, "handled the same way as real tokens", and only from
  it may the top-k skip them, ``VLLM_MOE_SKIP_PADDING``, after every bundled vLLM row; sglang PR
  25852, open, the same of SGLang's Triton path); attention runs the real sequences only (a padding
  sequence holds about one token).
- The table is exact at its grid points: a uniform decode batch at one context and a single
  prefill of T tokens cost what ``step_terms`` says. Supported: pp = 1, cp = 1, one microbatch, no
  speculative decoding, nothing offloaded.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from genmodel._attention import attended_pairs
from genmodel._cost import GROUP_OPS
from genmodel._eagerkernels import EagerBlockKernels
from genmodel._errors import SpecError
from genmodel._forwardpass import StepSpecs
from genmodel._hostcost import eager_host_s
from genmodel._model import ModelSpec
from genmodel._options import RunOptions
from genmodel._parallel import Plan
from genmodel._phases import StepTerms
from genmodel._system import as_system

#: a decode batch no engine exceeds (the graph limit of an engine that graphs every decode batch)
MAX_GRAPHED = 1 << 62
#: operators over the sequences' last tokens (the rest, but attention, run over the step's tokens)
_PER_SEQUENCE_OPS = ("final_norm", "lm_head")


@dataclass(frozen=True, slots=True)
class AttentionCoef:
    """One attention operator of one phase: compute_s = per_pair_s * pairs(past * read_frac, new),
    memory_s = per_new_s * new + per_cached_s * cached, cached = past * read_frac (or the window)."""

    window: int | None
    read_frac: float
    per_pair_s: float
    per_new_s: float
    per_cached_s: float


def check_simulable(plan: Plan, options: RunOptions) -> None:
    """Raise :class:`SpecError` for deployments the step table does not cover."""
    problems = []
    if plan.pp != 1:
        problems.append(f"pp={plan.pp} must be 1")
    if plan.cp != 1:
        problems.append(f"cp={plan.cp} must be 1")
    if options.overlap_microbatches != 1:
        problems.append(f"overlap_microbatches={options.overlap_microbatches} must be 1")
    if options.combine_overlap != "none":
        problems.append(f"combine_overlap={options.combine_overlap!r} must be 'none'")
    if options.speculation is not None:
        problems.append("speculative decoding must be off")
    if options.offload.any:
        problems.append("offload tiers must not be given")
    if options.disaggregated:
        problems.append("disaggregated must be False")
    if problems:
        raise SpecError("the serving simulation needs " + "; ".join(problems))


def token_grid(tokens_max: int) -> np.ndarray:
    """Grid points of T: every step size from 1 to ``tokens_max`` (GEMM row padding, the experts'
    rows and the collectives make the cost jagged in T, so no interpolation is exact)."""
    return np.arange(1.0, max(tokens_max, 1) + 1.0)


class StepCostTable:
    """Step times of one deployment (model, system, plan, precision, options), from a table.

    Build once per deployment with :meth:`build`; :meth:`step_s` costs any mixed step and
    :meth:`decode_run_s` a run of decode steps at once (NumPy).
    """

    def __init__(
        self,
        *,
        tokens_max: int,
        grid: np.ndarray,
        decode_rows_s: np.ndarray,
        prefill_rows_s: np.ndarray,
        decode_group_s: np.ndarray,
        prefill_group_s: np.ndarray,
        seqs_s: np.ndarray,
        decode_comm_s: np.ndarray,
        prefill_comm_s: np.ndarray,
        decode_attention: tuple[AttentionCoef, ...],
        prefill_attention: tuple[AttentionCoef, ...],
        overlap_frac: float,
        overhead_s: float,
        prefill_host_s: float = 0.0,
        group_below_one: tuple[np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0)),
    ) -> None:
        self.tokens_max = tokens_max
        self.grid = grid
        every = np.arange(tokens_max + 1, dtype=float)

        def fill(values: np.ndarray) -> list[float]:
            # index = T; between grid points (none, with the default grid) linear interpolation
            out: list[float] = np.interp(every, grid, values).tolist()
            out[0] = 0.0  # no tokens, no work
            return out

        self.decode_rows = fill(decode_rows_s)
        self.prefill_rows = fill(prefill_rows_s)
        self.decode_group = fill(decode_group_s)
        self.prefill_group = fill(prefill_group_s)
        # the group's operators at a mean of j / dp tokens per rank, j = 1..dp-1 (idle ranks)
        self.decode_group_low = [float(v) for v in group_below_one[0]]
        self.prefill_group_low = [float(v) for v in group_below_one[1]]
        self.seqs = fill(seqs_s)
        self.decode_comm = fill(decode_comm_s)
        self.prefill_comm = fill(prefill_comm_s)
        self.decode_attention = decode_attention
        self.prefill_attention = prefill_attention
        self.overlap_frac = overlap_frac
        self.overhead_s = overhead_s
        self.prefill_host_s = prefill_host_s
        self.graph_max_decode = MAX_GRAPHED  # decode batches up to this replay a CUDA graph
        self.graph_sizes: frozenset[int] | None = None  # only these, where the engine does not pad
        self.graph_pad: list[int] = []  # index n: the captured batch a graphed n is padded up to

    def graphed_up_to(
        self, batch: int | None, sizes: Sequence[int] = (), pads: Sequence[int] = ()
    ) -> StepCostTable:
        """This table for an engine that replays decode batches of at most ``batch`` sequences as
        CUDA graphs and runs larger ones eagerly (None: all graphed); of them, where ``sizes`` are
        given, only those sizes (an engine that does not pad a batch up to a graphed size); where
        ``pads`` are given, a graphed batch runs at the least of them (up to ``batch``) at least
        its size (the engine pads it up to a captured size); a copy when it differs."""
        limit = MAX_GRAPHED if batch is None else batch
        only = frozenset(sizes) if sizes else None
        pad = _pad_map(limit, pads, self.tokens_max)
        if limit == self.graph_max_decode and only == self.graph_sizes and pad == self.graph_pad:
            return self
        table = copy.copy(self)
        table.graph_max_decode, table.graph_sizes, table.graph_pad = limit, only, pad
        return table

    def padded_decode(self, seqs: int) -> int:
        """The batch a decode-only step of ``seqs`` sequences runs its graph at (``seqs`` itself
        where the engine does not pad or runs it eagerly)."""
        return self._padded(seqs)

    def _padded(self, seqs: int) -> int:
        """:meth:`padded_decode`."""
        return self.graph_pad[seqs] if seqs < len(self.graph_pad) else seqs

    def eager_decode(self, seqs: int) -> bool:
        """Whether a decode-only step of ``seqs`` sequences runs without a CUDA graph."""
        return seqs > self.graph_max_decode or (self.graph_sizes is not None and seqs not in self.graph_sizes)

    @classmethod
    def build(
        cls,
        specs: StepSpecs,
        *,
        tokens_max: int,
        overhead_s: float | None = None,
        prefill_launch_s: float = 0.0,
        eager_blocks: tuple[EagerBlockKernels, ...] = (),
    ) -> StepCostTable:
        """Evaluate ``step_terms`` over the grid of T and read off the attention coefficients.

        Args:
            specs: the deployment (nothing offloaded: :func:`check_simulable`).
            tokens_max: the most tokens a step may hold.
            overhead_s: per-step overhead; None = the device's.
            prefill_launch_s: host time per kernel launch of a step with prefill tokens (the
                engine's ``prefill_launch_s``; 0: no host floor).
            eager_blocks: the engine's own kernel counts per architecture
                (``genmodel._engines.eager_block_kernels``); () = the generic count.

        Raises:
            SpecError: a deployment outside what the table covers (:func:`check_simulable`).
        """
        model, plan, precision, options = specs.model, specs.plan, specs.precision, specs.options
        check_simulable(plan, options)
        grid = token_grid(tokens_max)

        def terms(phase: str, seqs: Any, new: Any, past: Any) -> StepTerms:
            return specs.terms(phase, num_seqs=seqs, new_tokens=new, past_tokens=past)

        decode = terms("decode", grid, 1.0, 0.0)
        prefill = terms("prefill", 1.0, grid, 0.0)
        d_rows, d_group, seqs_s, d_comm = _split(decode, grid)
        p_rows, p_group, _, p_comm = _split(prefill, grid)
        # attention-DP ranks in lockstep with idle ones: a mean of j / dp tokens per rank, the
        # instance's j tokens through the routed experts (their time is not linear down to 0 tokens)
        low = np.arange(1.0, plan.dp) / plan.dp
        below_one = (
            _split(terms("decode", low, 1.0, 0.0), low)[1],
            _split(terms("prefill", 1.0, low, 0.0), low)[1],
        )
        return cls(
            tokens_max=tokens_max,
            grid=grid,
            decode_rows_s=d_rows,
            prefill_rows_s=p_rows,
            decode_group_s=d_group,
            prefill_group_s=p_group,
            seqs_s=seqs_s,
            decode_comm_s=d_comm,
            prefill_comm_s=p_comm,
            decode_attention=_attention_coefs(terms, "decode", model, options.sparse_attention_frac),
            prefill_attention=_attention_coefs(terms, "prefill", model, 1.0),
            overlap_frac=options.overlap_frac(as_system(specs.hardware)),
            overhead_s=float(decode.overhead_s) if overhead_s is None else overhead_s,
            prefill_host_s=eager_host_s(
                model, plan, precision, launch_s=prefill_launch_s, blocks=eager_blocks
            ),
            group_below_one=below_one,
        )

    def _check(self, tokens: int) -> None:
        if tokens > self.tokens_max:
            raise SpecError(f"step tokens={tokens} must be <= tokens_max={self.tokens_max} of the table")

    def step_s(
        self,
        *,
        decode_seqs: int,
        decode_past_sum: float,
        chunks: Sequence[tuple[int, int]],
        group_tokens: float | None = None,
        rows: int | None = None,
        eager: bool | None = None,
    ) -> float:
        """Time of one step: ``decode_seqs`` sequences decoding one token each, with
        ``decode_past_sum`` cached tokens between them, and prefill ``chunks`` of (new, past).
        ``group_tokens``: the mean tokens per rank of the expert-parallel group stepping with this
        one (attention-DP replicas in lockstep), which sets the routed experts' time (None: this
        step's tokens, as every rank of a uniform load has; a fractional mean is interpolated
        between the whole token counts around it, below one token taken at its j / dp point).
        ``rows``: the token rows the step runs where its lockstep group pads it
        (:mod:`genmodel._lockstep`; a decode-only step's sequences too, a graph at that batch), None =
        its own (a graphed decode batch padded up by the engine's own rule); ``eager``: whether a
        decode-only step runs without a CUDA graph, None = the engine's own rule
        (:meth:`eager_decode`)."""
        tokens = decode_seqs + sum(c[0] for c in chunks)
        self._check(tokens)
        group: float = tokens if group_tokens is None else group_tokens
        self._check(math.ceil(group))
        seqs = decode_seqs + len(chunks)
        if chunks:
            tokens = tokens if rows is None else max(rows, tokens)  # (a rank padded to the group's)
            group = tokens if group_tokens is None else group
            rows_s = self.prefill_rows[tokens] + _at(self.prefill_group, self.prefill_group_low, group)
            comm = self.prefill_comm[tokens]
        else:
            # a graph replayed at the padded batch (the engine's, or the lockstep group's)
            tokens = seqs = self._padded(decode_seqs) if rows is None else max(rows, decode_seqs)
            group = tokens if group_tokens is None else group
            rows_s = self.decode_rows[tokens] + _at(self.decode_group, self.decode_group_low, group)
            comm = self.decode_comm[tokens]
        busy = rows_s + self.seqs[seqs]
        for i, coef in enumerate(self.decode_attention):
            compute, memory = _decode_attention(coef, decode_seqs, decode_past_sum)
            if chunks:
                pre = self.prefill_attention[i]
                for new, past in chunks:
                    c, m = _chunk_attention(pre, new, past)
                    compute += c
                    memory += m
            busy += compute if compute >= memory else memory
        hidden = self.overlap_frac * (comm if comm < busy else busy)
        gpu = busy + comm - hidden
        eager = self.eager_decode(decode_seqs) if eager is None else eager
        if (chunks or eager) and gpu < self.prefill_host_s:
            gpu = self.prefill_host_s  # an eager step: the host launches are the longer
        return gpu + self.overhead_s

    def decode_run_s(
        self,
        *,
        decode_seqs: int,
        decode_past_sum: float,
        steps: int,
        group_tokens: float | None = None,
        rows: int | None = None,
        eager: bool | None = None,
    ) -> np.ndarray:
        """Times of ``steps`` decode steps of the same ``decode_seqs`` sequences, their summed
        context growing by ``decode_seqs`` each step (as :meth:`step_s` one at a time, with its
        ``group_tokens``, ``rows`` and ``eager``)."""
        n = decode_seqs
        self._check(n)
        group: float = n if group_tokens is None else group_tokens
        self._check(math.ceil(group))
        past = decode_past_sum + n * np.arange(steps, dtype=float)
        # a graph replayed at the padded batch (attention: the n sequences)
        m = self._padded(n) if rows is None else max(rows, n)
        group = m if group_tokens is None else group
        busy: Any = self.decode_rows[m] + _at(self.decode_group, self.decode_group_low, group) + self.seqs[m]
        for coef in self.decode_attention:
            compute, memory = _decode_attention(coef, n, past)
            busy = busy + np.maximum(compute, memory)
        comm = self.decode_comm[m]
        gpu = busy + comm - self.overlap_frac * np.minimum(comm, busy)
        if self.eager_decode(n) if eager is None else eager:  # at least the host launches
            gpu = np.maximum(gpu, self.prefill_host_s)
        return gpu + self.overhead_s  # type: ignore[no-any-return]


def _pad_map(limit: int, pads: Sequence[int], tokens_max: int) -> list[int]:
    """Index n (0 .. the largest of ``pads`` up to ``limit``): the least of those ``pads`` at
    least n, at most ``tokens_max`` (the table's size); [] without ``pads``."""
    captured = sorted(p for p in set(pads) if p <= limit)
    if not captured:
        return []
    out = [0] * (captured[-1] + 1)
    n = 1
    for p in captured:
        while n <= p:
            out[n] = min(p, tokens_max)
            n += 1
    return out


def _at(values: list[float], below_one: list[float], tokens: float) -> float:
    """``values`` (indexed by whole tokens) at ``tokens``: linear between the counts around it, and
    below one token the ``below_one`` point of a mean of j / dp tokens (j = 1..dp-1) nearest it."""
    low = int(tokens)
    if low == tokens:
        return values[low]
    if low == 0 and below_one:
        j = min(max(round(tokens * (len(below_one) + 1)), 1), len(below_one))
        return below_one[j - 1]
    return values[low] + (tokens - low) * (values[low + 1] - values[low])


def _split(terms: StepTerms, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row operators' time, the expert group's operators' time, per-sequence operators' time,
    collectives before overlap) on the grid."""
    rows = np.zeros_like(grid)
    group = np.zeros_like(grid)
    seqs = np.zeros_like(grid)
    for t in terms.ops:
        if t.op.kind == "attention":
            continue
        time = np.broadcast_to(np.maximum(t.compute_s, t.memory_s), grid.shape)
        if t.op.name in _PER_SEQUENCE_OPS:
            seqs = seqs + time
        elif t.op.name in GROUP_OPS:
            group = group + time
        else:
            rows = rows + time
    comm = np.zeros_like(grid)
    for v in terms.comm_breakdown.values():
        comm = comm + np.broadcast_to(v, grid.shape)
    return rows, group, seqs, comm


def _attention_coefs(terms: Any, phase: str, model: ModelSpec, read_frac: float) -> tuple[AttentionCoef, ...]:
    """Coefficients of each attention operator, read off one-sequence steps at (new, past) =
    (1, 0), (2, 0) and (1, 1): compute is per pair, memory per new and per cached token."""
    probes = [terms(phase, 1.0, float(new), float(past)) for new, past in ((1, 0), (2, 0), (1, 1))]
    out = []
    for i, t in enumerate(probes[0].ops):
        if t.op.kind != "attention":
            continue
        window = model.sliding_window if t.op.name == "attention_swa" else None
        frac = read_frac if window is None else 1.0
        (c0, m0), (_, m1), (_, m2) = ((float(p.ops[i].compute_s), float(p.ops[i].memory_s)) for p in probes)
        per_new = m1 - m0  # one more new token, nothing cached
        cached_one = frac  # one past token: cached = frac (a window >= 1 keeps it)
        per_cached = (m2 - m0) / cached_one if cached_one else 0.0
        per_pair = c0 / float(attended_pairs(0.0, 1.0, window))
        out.append(AttentionCoef(window, frac, per_pair, per_new, per_cached))
        # (m0 = per_new * 1: a lone new token with nothing cached)
        assert abs(m0 - per_new) <= 1e-9 * max(abs(m0), 1e-30)
    return tuple(out)


def _decode_attention(coef: AttentionCoef, n: int, past_sum: Any) -> tuple[Any, Any]:
    """(compute_s, memory_s) of n decode sequences with ``past_sum`` cached tokens in all."""
    if coef.window is None:
        past = past_sum * coef.read_frac
        return coef.per_pair_s * (past + n), coef.per_new_s * n + coef.per_cached_s * past
    mean = past_sum / max(n, 1)
    pairs = attended_pairs(mean, 1.0, coef.window)
    cached = np.minimum(mean, coef.window) if isinstance(mean, np.ndarray) else min(mean, coef.window)
    return coef.per_pair_s * pairs * n, (coef.per_new_s + coef.per_cached_s * cached) * n


def _chunk_attention(coef: AttentionCoef, new: int, past: int) -> tuple[float, float]:
    """(compute_s, memory_s) of one prefill chunk of ``new`` tokens after ``past`` cached ones."""
    pairs = float(attended_pairs(float(past), float(new), coef.window))
    cached = past if coef.window is None else min(past, coef.window)
    return coef.per_pair_s * pairs, coef.per_new_s * new + coef.per_cached_s * cached
