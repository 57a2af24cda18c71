"""What the sliding-window layers of a running sequence do not hold in an engine's KV pool.

Modelling assumptions:
- The scheduler's pool counts tokens of the whole model (every layer). Where the engine frees a
  sliding-window layer's blocks as its window slides (``Engine.swa_pool`` "window": vLLM V1's
  hybrid KV-cache manager), a decoding sequence of ``L`` cached tokens holds only ``keep`` of
  them in its sliding-window layers (the window and one block), so it holds
  ``L - share * max(0, L - keep)`` tokens' worth of the pool, ``share`` being the sliding-window
  layers' part of a token's KV bytes. A sequence still prefilling holds its computed tokens in
  every layer (vLLM allocates a chunk's blocks and the window before it, and frees the blocks
  left behind once the chunk is computed).
- The saving is kept as a sum over the decoding sequences in O(log n) per event: those past
  ``keep`` ("old") grow it by one token per decode step each; the younger ones join them at the
  decode step at which they reach ``keep`` (a heap of those steps). Saved tokens are rounded
  down: the pool is never credited with more than it frees.
"""

from __future__ import annotations

import heapq
import math
from typing import Any

import numpy as np

from genmodel._engines import KvPool
from genmodel._model import ModelSpec
from genmodel._newtokenratio import SGLANG_SWA_EVICTION_INTERVAL
from genmodel._sizes import sglang_sliding_keep


class WindowKv:
    """The tokens of the pool the decoding sequences' sliding-window layers have freed, as the
    scheduler's decode-step counter ``g`` advances."""

    def __init__(self, share: float, keep: int) -> None:
        self.share, self.keep = share, keep
        self.young: dict[
            int, tuple[int, int]
        ] = {}  # rid -> (g at which it reaches its keep, past0 - g0 - keep)
        self.heap: list[tuple[int, int]] = []
        self.keeps: dict[int, int] = {}  # rid -> its own keep, where not ``keep``
        self.n_old = 0
        # the old ones are past their keep by old_base + n_old * g tokens in all (old_base: past0 - g0 - keep)
        self.old_base = 0
        #: (the young ones' crossings in order, the cumulative sums of their offsets) for
        #: saved_ahead, until a young one enters, leaves or grows old (None: to be sorted again)
        self.ahead: tuple[np.ndarray, np.ndarray] | None = None

    def saved(self, g: int) -> int:
        """Tokens of the pool the decoding sequences do not hold at step ``g``."""
        return math.floor(self.share * (self.old_base + self.n_old * g)) if self.n_old else 0

    def saved_ahead(self, gs: np.ndarray) -> np.ndarray:
        """:meth:`saved` as it will read at each later step of ``gs`` once :meth:`advance`
        reached it, no sequence entering or leaving before then (a run's steps ahead); nothing
        changes here."""
        if self.ahead is None:
            young = sorted(
                (cross, entry[1])
                for cross, rid in self.heap
                if (entry := self.young.get(rid)) is not None and entry[0] == cross
            )
            offsets = np.zeros(len(young) + 1, dtype=np.int64)
            offsets[1:] = np.cumsum([e for _, e in young], dtype=np.int64)
            self.ahead = (np.array([c for c, _ in young], dtype=np.int64), offsets)
        crosses, offsets = self.ahead
        crossed = np.searchsorted(crosses, gs, side="right")  # the young ones old by then
        n = self.n_old + crossed
        past = self.old_base + offsets[crossed] + n * gs
        return np.where(n > 0, np.floor(self.share * past), 0).astype(np.int64)

    def saved_of(self, tokens: int) -> int:
        """What one sequence of ``tokens`` cached tokens does not hold."""
        return math.floor(self.share * max(tokens - self.keep, 0))

    def enter(self, rid: int, past: int, g: int, keep: int | None = None) -> None:
        """``rid`` decodes from step ``g`` on, with ``past`` tokens cached; ``keep``: the tokens
        it keeps (None: :attr:`keep`)."""
        if keep is None:
            keep = self.keep
        else:
            self.keeps[rid] = keep
        if past >= keep:
            self.n_old += 1
            self.old_base += past - g - keep
        else:
            cross = g + keep - past
            self.young[rid] = (cross, past - g - keep)
            heapq.heappush(self.heap, (cross, rid))
            self.ahead = None

    def leave(self, rid: int, past: int, g: int) -> None:
        """``rid`` stops decoding at step ``g`` (completed, preempted or retracted), ``past`` cached."""
        keep = self.keeps.pop(rid, self.keep)
        if self.young.pop(rid, None) is None:
            self.n_old -= 1
            self.old_base -= past - g - keep
        else:
            self.ahead = None

    def advance(self, g: int) -> None:
        """The counter reached ``g``: the young sequences that reached ``keep`` are old."""
        heap = self.heap
        while heap and heap[0][0] <= g:
            cross, rid = heapq.heappop(heap)
            entry = self.young.get(rid)
            if entry is not None and entry[0] == cross:
                del self.young[rid]
                self.ahead = None
                self.n_old += 1
                self.old_base += entry[1]


class SlidingPool(WindowKv):
    """SGLang's sliding-window pool beside its full-layer one (``Engine.swa_pool`` "split"), in
    tokens, and what the running sequences hold of it.

    Modelling assumptions (SGLang 0.5 with its radix cache, page size 1):
    - The pool holds ``ratio`` x the full pool's tokens (``set_num_tokens_hybrid_swa``).
    - A sequence still prefilling holds its computed tokens there, as in the full pool.
    - A decoding sequence holds its whole prompt (the radix tree owns it, and the request's lock on
      its last node covers the sliding pool of every node back to one window: a prompt of one
      chunk is one node; mem_cache/swa_radix_cache.py ``SWARadixCache.inc_lock_ref``, and
      ``_evict_swa`` frees nothing below ``cache_protected_len``) and of its generated tokens those
      SGLang has not evicted: ``ScheduleBatch.maybe_evict_swa`` calls ``_evict_swa(req, seqlen - 1)``
      every ``interval`` decode steps of the request (``decode_batch_idx % interval == 1``), which
      frees what lies before ``seqlen - 1 - window - page`` (sglang PR 17220, "Evict swa kv cache
      during decoding", and PR 22645's interval knob). Between two evictions a sequence keeps from
      window + page + 1 to window + page + interval of its generated tokens: the model keeps their
      mean, ``window + page + interval / 2`` (rounded up), the phases of many sequences being spread.
    - The sliding pool's tokens a sequence holds are counted as :class:`WindowKv` counts vLLM's
      (share 1, each sequence its own keep: its prompt plus the generated tokens kept).
    - Admission asks the pool for a request's first chunk, at least a window, and a page beside
      this step's chunks (:meth:`admits`; ``PrefillAdder.rem_swa_tokens`` of SGLang 0.5 in 2026: the
      sliding pool's own budget, without the ratio's reservation, which ``rem_total_tokens`` charges
      the full pool alone); a decode step retracts until both pools hold its tokens
      (:func:`genmodel._newtokens.retract`). Nothing reserves the sliding growth of the sequences
      admitted, so where the sliding pool binds admission fills it and decode steps retract (SGLang
      PR 30013 reports the pool saturating and requests retracted on such workloads).
    - A prompt of several chunks is held whole (SGLang locks only the last nodes back to a window),
      and a prefilling sequence's earlier chunks are not freed: both over-count long prompts.
    """

    def __init__(
        self, capacity: int, window: int, page: int, multiplier: float = SGLANG_SWA_EVICTION_INTERVAL
    ) -> None:
        super().__init__(1.0, sglang_sliding_keep(window, page, multiplier))
        self.capacity, self.window, self.page = capacity, window, page

    def enter(self, rid: int, past: int, g: int, keep: int | None = None) -> None:
        """``rid`` decodes from step ``g`` on, with ``past`` tokens (its prompt) cached."""
        super().enter(rid, past, g, past + self.keep if keep is None else keep)

    def free(self, r: Any) -> int:
        """Tokens of the pool free beside replica ``r``'s running sequences (a
        :class:`~genmodel._scheduler.Replica`: those prefilling hold their computed tokens, those
        decoding what :class:`WindowKv` leaves)."""
        return self.capacity - (int(r.held()) - self.saved(int(r.g)))

    def budget(self, take: int) -> int:
        """What admitting a request whose first chunk is ``take`` tokens asks of the pool: the chunk,
        at least a window (its decode's), and a page (schedule_policy.py
        ``PrefillAdder._swa_budget_for_req``)."""
        return max(take, self.window) + self.page

    def admits(self, r: Any, take: int) -> bool:
        """The pool holds a new request's :meth:`budget` beside the running sequences and the
        budgets of this step's chunks (``PrefillAdder.rem_swa_tokens``, its offset charged by
        ``_update_prefill_budget`` for every chunk admitted or continued)."""
        step = sum(self.budget(t) for t, _ in r.chunks)
        return self.budget(take) <= self.free(r) - step

    def free_ahead(self, r: Any, steps: np.ndarray) -> np.ndarray:
        """:meth:`free` after each of ``steps`` more decode steps of the same sequences."""
        free: np.ndarray = self.capacity - (r.held() + r.n_dec * steps - self.saved_ahead(r.g + steps))
        return free

    def safe_steps(self, r: Any) -> int:
        """Decode steps of the same sequences (at least one) after none of which the next decode
        step's tokens overflow the pool: only the sequences not yet past their keep grow it."""
        if not self.young:
            return 1 << 60
        return max((self.free(r) - int(r.n_dec)) // len(self.young), 1)


def sliding_pool(model: ModelSpec, pool: KvPool, capacity: int, page: int) -> tuple[int, int, int] | None:
    """(sliding pool tokens, window, page) of SGLang's split pools beside a full pool of
    ``capacity`` tokens (:class:`SlidingPool`'s arguments); None without split pools or sliding layers."""
    if pool.swa_ratio is None or not model.num_sliding_window_layers:
        return None
    assert model.sliding_window is not None
    return int(capacity * pool.swa_ratio), model.sliding_window, page
