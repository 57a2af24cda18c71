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

import numpy as np


class WindowKv:
    """The tokens of the pool the decoding sequences' sliding-window layers have freed, as the
    scheduler's decode-step counter ``g`` advances."""

    def __init__(self, share: float, keep: int) -> None:
        self.share, self.keep = share, keep
        self.young: dict[int, tuple[int, int]] = {}  # rid -> (g at which it reaches keep, past0 - g0)
        self.heap: list[tuple[int, int]] = []
        self.n_old = 0
        # the old ones are past keep by old_base + n_old * g tokens in all (old_base: their past0 - g0 - keep)
        self.old_base = 0

    def saved(self, g: int) -> int:
        """Tokens of the pool the decoding sequences do not hold at step ``g``."""
        return math.floor(self.share * (self.old_base + self.n_old * g)) if self.n_old else 0

    def saved_ahead(self, gs: np.ndarray) -> np.ndarray:
        """:meth:`saved` as it will read at each later step of ``gs`` once :meth:`advance`
        reached it, no sequence entering or leaving before then (a run's steps ahead); nothing
        changes here."""
        young = sorted(
            (cross, entry[1])
            for cross, rid in self.heap
            if (entry := self.young.get(rid)) is not None and entry[0] == cross
        )
        crosses = np.array([c for c, _ in young], dtype=np.int64)
        offsets = np.zeros(len(young) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([e - self.keep for _, e in young], dtype=np.int64)
        crossed = np.searchsorted(crosses, gs, side="right")  # the young ones old by then
        n = self.n_old + crossed
        past = self.old_base + offsets[crossed] + n * gs
        return np.where(n > 0, np.floor(self.share * past), 0).astype(np.int64)

    def saved_of(self, tokens: int) -> int:
        """What one sequence of ``tokens`` cached tokens does not hold."""
        return math.floor(self.share * max(tokens - self.keep, 0))

    def enter(self, rid: int, past: int, g: int) -> None:
        """``rid`` decodes from step ``g`` on, with ``past`` tokens cached."""
        if past >= self.keep:
            self.n_old += 1
            self.old_base += past - g - self.keep
        else:
            cross = g + self.keep - past
            self.young[rid] = (cross, past - g)
            heapq.heappush(self.heap, (cross, rid))

    def leave(self, rid: int, past: int, g: int) -> None:
        """``rid`` stops decoding at step ``g`` (completed, preempted or retracted), ``past`` cached."""
        if self.young.pop(rid, None) is None:
            self.n_old -= 1
            self.old_base -= past - g - self.keep

    def advance(self, g: int) -> None:
        """The counter reached ``g``: the young sequences that reached ``keep`` are old."""
        heap = self.heap
        while heap and heap[0][0] <= g:
            cross, rid = heapq.heappop(heap)
            entry = self.young.get(rid)
            if entry is not None and entry[0] == cross:
                del self.young[rid]
                self.n_old += 1
                self.old_base += entry[1] - self.keep
