"""SGLang's admission by its decaying ``new_token_ratio``: the state one replica's scheduler keeps.

Modelling assumptions (SGLang 0.5; every rule and default is
:class:`~genmodel._newtokenratio.NewTokenRatio`'s, with its sources):
- A new request is admitted when its prompt and all its output (at most ``clip_tokens``) fit, strictly,
  in the pool's free tokens less ``ratio`` x the running sequences' tokens to go (each at most
  ``clip_tokens``) and less what this step already admitted; a prompt admitted in chunks reserves its
  output only with the chunk that finishes it. The sequences being prefilled hold what they computed.
- The ratio falls by ``decay`` each decode-only step (a mixed step leaves it) to its floor, returns to
  ``init`` when nothing runs, and after a retraction is (output so far + ``retract_decode_steps`` per
  sequence left) / (their whole outputs + 1), at most 1.
- A retraction, when the next decode step's tokens do not fit, takes the sequences with the fewest
  output tokens first (the longest prompt first among equals), at least one, until the step fits;
  they lose their KV (recompute) and join the end of the queue (``_add_request_to_queue`` appends).
- With split pools (a model with sliding-window layers, :class:`~genmodel._windowkv.SlidingPool`) the
  ratio rule above holds for the full pool, and the sliding pool must hold the request's first chunk
  (at least a window) and a page beside what this step's chunks take of it the same way
  (:meth:`~genmodel._windowkv.SlidingPool.admits`); a retraction runs until the next decode step fits
  both pools (schedule_batch.py ``check_decode_mem``). With ``ignore_eos`` only the full pool is checked.
- Tokens to go, summed with the clip, are kept in O(log n) per event: ``clip`` x the sequences further
  than ``clip`` from completion, plus the completion step counts less the step counter for the rest;
  a heap of the steps at which a sequence comes within ``clip`` moves it from the first group to the second.
- With ``ignore_eos`` (the requests ignore EOS, the radix cache is off) a request is admitted when the
  pool holds every running sequence to completion (:func:`fits_to_completion`), and a step admits no
  further request once the ratio's budget is spent.
"""

from __future__ import annotations

import heapq
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from genmodel._newtokenratio import NewTokenRatio


class RatioState:
    """The ratio and the clipped tokens to go of one replica's decoding sequences."""

    def __init__(self, rule: NewTokenRatio) -> None:
        self.rule = rule
        self.ratio = rule.init
        self.clip = rule.clip_tokens
        self.far = 0  # decoding sequences more than clip tokens from completion
        self.near = 0  # the others
        self.near_done_sum = 0  # the sum of the others' completion step counts
        self.crossing: list[tuple[int, int, int]] = []  # (step count at which within clip, rid, version)
        self._ratios: tuple[float, np.ndarray] = (np.nan, np.zeros(0))  # (from, the last ratios())

    # ---- the ratio ------------------------------------------------------------------------
    def decayed(self, steps: int) -> None:
        """``steps`` decode-only steps ran."""
        if steps == 1:
            self.ratio = max(self.ratio - self.rule.decay, self.rule.min_ratio)
        elif self.ratio <= self.rule.min_ratio:
            self.ratio = self.rule.min_ratio
        else:
            start, ratios = self._ratios
            if start != self.ratio or len(ratios) < steps:
                ratios = self.ratios(steps)
            self.ratio = float(ratios[steps - 1])

    def ratios(self, steps: int) -> np.ndarray:
        """The ratio after each of the next ``steps`` decode-only steps, rounded as that many
        :meth:`decayed` of one step give it (a sequential sum, then the floor)."""
        falls = np.full(steps, -self.rule.decay)
        falls[0] += self.ratio
        ratios: np.ndarray = np.maximum(np.cumsum(falls, out=falls), self.rule.min_ratio)
        self._ratios = (self.ratio, ratios)
        return ratios

    def reset(self) -> None:
        """Nothing runs: the ratio starts again."""
        self.ratio = self.rule.init

    def decaying(self) -> bool:
        """The ratio still falls, so the reservation shrinks step by step."""
        return self.ratio > self.rule.min_ratio

    def retracted(self, outputs_so_far: Sequence[int], whole_outputs: Sequence[int]) -> None:
        """The ratio after a retraction, from the output tokens so far and the whole outputs of the
        sequences left decoding."""
        steps = self.rule.retract_decode_steps * len(outputs_so_far)
        self.ratio = min(1.0, (sum(outputs_so_far) + steps) / (sum(whole_outputs) + 1))

    # ---- the clipped tokens to go ---------------------------------------------------------
    def started(self, rid: int, version: int, done_at: int, g: int) -> None:
        """Sequence ``rid`` decodes from step count ``g`` and completes at ``done_at``."""
        if done_at - g > self.clip:
            self.far += 1
            heapq.heappush(self.crossing, (done_at - self.clip, rid, version))
        else:
            self.near += 1
            self.near_done_sum += done_at

    def advance(self, versions: Sequence[int], g: int) -> None:
        """Move the sequences that came within ``clip`` of completion by step count ``g``."""
        crossing = self.crossing
        while crossing and crossing[0][0] <= g:
            at, rid, version = heapq.heappop(crossing)
            if version == versions[rid]:
                self.far -= 1
                self.near += 1
                self.near_done_sum += at + self.clip

    def stopped(self, done_at: int, g: int) -> None:
        """A sequence completing at ``done_at`` stops decoding at step count ``g`` (after :meth:`advance`)."""
        if done_at - self.clip <= g:
            self.near -= 1
            self.near_done_sum -= done_at
        else:
            self.far -= 1  # its crossing entry goes stale with its version

    def to_go(self, g: int) -> int:
        """The decoding sequences' tokens to go, each at most ``clip``, at step count ``g``."""
        return self.clip * self.far + self.near_done_sum - g * self.near

    def reserved(self, g: int) -> float:
        """What admission keeps back for the running sequences' output."""
        return self.ratio * self.to_go(g)

    def need(self, prompt_tokens: int, output_tokens: int) -> int:
        """What a new request must find free: its prompt and its output, clipped."""
        return prompt_tokens + min(output_tokens, self.clip)


def fits_to_completion(free: int, tokens_left: Sequence[int], tokens_held: Sequence[int]) -> bool:
    """SGLang 0.4's fit for a request that ignores EOS with the radix cache off: ``free`` tokens
    (the pool's, less this step's prompts and the new prompt) hold the requests of
    ``tokens_left`` (output still to generate, all of it: ``ignore_eos`` sets the ratio to 1) and
    ``tokens_held`` (prompt and output so far), the new one included, as they complete one after
    another, the fewest tokens left first.

    Source: sglang 0.4.1 python/sglang/srt/managers/schedule_policy.py
    ``PrefillAdder.add_one_req_ignore_eos`` (chosen by ``add_one_req`` when
    ``req.sampling_params.ignore_eos and self.tree_cache.disable``): sorted by tokens left, the
    i-th of n refuses when ``cur_rem_tokens + tokens_freed - decode_steps * (n - i) <= 0``, with
    ``decode_steps`` the next request's tokens left (its own for the last) and ``tokens_freed``
    what the earlier ones held. (0.5 uses each request's own tokens left and keeps
    ``IGNORE_EOS_RESERVE_TOKENS`` 1 per request; no bundled 0.5 run turns the radix cache off.)
    """
    left = np.asarray(tokens_left, dtype=np.int64)
    keep = left > 0
    order = np.argsort(left[keep], kind="stable")
    left, held = left[keep][order], np.asarray(tokens_held, dtype=np.int64)[keep][order]
    if not len(left):
        return free > 0
    steps = np.append(left[1:], left[-1])
    freed = np.cumsum(held) - held
    return bool(np.all(free + freed - steps * (len(left) - np.arange(len(left))) > 0))


def ignore_eos_fits(req: Any, replica: Any, rid: int) -> bool:
    """:func:`fits_to_completion` for the waiting ``rid`` of ``req`` (the simulator's requests) at
    ``replica`` (its scheduler): its decoding sequences (completed ones skipped) and those it
    prefills; free are the pool's tokens less those held, this step's prompts and ``rid``'s."""
    g = replica.g
    live = [d for d in replica.decoding if req.g0[d] + req.left[d] > g]
    new = [*replica.prefilling, rid]
    left = [req.g0[d] + req.left[d] - g for d in live] + [req.left[p] + 1 for p in new]
    held = [req.past0[d] + g - req.g0[d] for d in live] + [int(req.input_tokens[p]) for p in new]
    free = replica.capacity - replica.held() - replica.chunk_tokens - int(req.input_tokens[rid])
    return fits_to_completion(free, left, held)


def sglang_fits(r: Any, req: Any, rid: int, take: int | None = None) -> bool:
    """(SGLang) ``rid`` fits by the ratio rule or, with ``ignore_eos``, to completion (_newtokens)."""
    state: RatioState = r.sglang
    state.advance(req.version, r.g)
    capacity: int = r.capacity
    taken: int = r.held() + r.chunk_tokens + r.round_out + state.reserved(r.g)
    if state.rule.ignore_eos:  # (add_one_req_ignore_eos; an admission spending the budget ends the step)
        return not (r.round_out and taken >= capacity) and ignore_eos_fits(req, r, rid)
    fits: bool = state.need(req.todo[rid], req.left[rid] + 1) < capacity - taken
    if fits and r.slide is not None:  # split pools: its first chunk (``take``) in the sliding one too
        fits = r.slide.admits(r, min(req.todo[rid], r.engine.max_batched_tokens) if take is None else take)
    return fits


def refused_for(r: Any, req: Any, steps: int) -> int:
    """How many of the next ``steps`` decode-only steps' plans keep refusing the queue's head,
    which the plan just made refused: the first j (1 .. steps - 1) after which the ratio rule
    admits it, else ``steps``. Each plan's test as :func:`sglang_fits` makes it, with the same
    rounding: the pool holds a token more per decoding sequence per step, the ratio falls as
    :meth:`RatioState.ratios`, the tokens to go fall by the sequences within ``clip``, one more
    from each step at which a sequence comes within it; with ``ignore_eos``, the fit to completion
    of every plan (:func:`_fits_to_completion_for`)."""
    state: RatioState = r.sglang
    if state.rule.ignore_eos:
        return _fits_to_completion_for(r, req, steps)
    g = r.g + np.arange(1, steps)
    to_go = state.clip * state.far + state.near_done_sum - g * state.near
    # each sequence still further than clip counts clip until it crosses, one fewer a step after
    # (the heap was advanced to r.g by this plan's test: every crossing left is after it)
    end = r.g + steps
    crossings = sorted(at for at, rid, v in _heap_below(state.crossing, end) if v == req.version[rid])
    if crossings:
        at = np.array(crossings)
        crossed = np.searchsorted(at, g, side="left")  # those with at < g
        to_go -= crossed * g - np.concatenate(([0], np.cumsum(at)))[crossed]
    taken = (r.held() + r.n_dec * (g - r.g)) + state.ratios(steps)[:-1] * to_go  # (the run decays by all)
    rid = r.waiting[0]
    fits = state.need(req.todo[rid], req.left[rid] + 1) < r.capacity - taken
    if r.slide is not None:  # split pools: its first chunk in the sliding one too (sglang_fits)
        need = r.slide.budget(min(req.todo[rid], r.engine.max_batched_tokens))
        fits &= need <= r.slide.free_ahead(r, g - r.g)
    first = int(np.argmax(fits)) if len(fits) else 0
    return first + 1 if len(fits) and fits[first] else steps


def _heap_below(heap: list[tuple[int, int, int]], end: int) -> list[tuple[int, int, int]]:
    """The entries of ``heap`` (a heapq list) whose first item is below ``end``, in no order: a walk
    from the root that stops at each entry at or above it (its children are too)."""
    out: list[tuple[int, int, int]] = []
    todo = [0] if heap and heap[0][0] < end else []
    n = len(heap)
    while todo:
        i = todo.pop()
        out.append(heap[i])
        for child in (2 * i + 1, 2 * i + 2):
            if child < n and heap[child][0] < end:
                todo.append(child)
    return out


def _fits_to_completion_for(r: Any, req: Any, steps: int) -> int:
    """:func:`refused_for` with ``ignore_eos``: :func:`ignore_eos_fits` for each plan of the run
    (the running sequences a token further and a token nearer completion a step, the pool a token
    fuller per sequence), as integers, in windows of steps growing eightfold until one fits. (The
    fit is not monotone in the steps: a later start ends later, beside fewer of the running ones.)"""
    rid, g = r.waiting[0], r.g
    live = [d for d in r.decoding if req.g0[d] + req.left[d] > g]
    new = [*r.prefilling, rid]
    left0 = np.array([req.g0[d] + req.left[d] - g for d in live] + [req.left[p] + 1 for p in new])
    held0 = np.array([req.past0[d] + g - req.g0[d] for d in live] + [int(req.input_tokens[p]) for p in new])
    grows = np.array([1] * len(live) + [0] * len(new))
    free0 = r.capacity - r.held() - r.chunk_tokens - int(req.input_tokens[rid])
    rank = len(left0) - np.arange(len(left0))  # (the requests still running at each completion)
    first, size = 1, 32
    while first < steps:
        j = np.arange(first, min(first + size, steps))[:, None]
        left, held = left0 - j * grows, held0 + j * grows  # (every one > 0: none completes in the run)
        order = np.argsort(left, axis=1, kind="stable")
        left, held = np.take_along_axis(left, order, 1), np.take_along_axis(held, order, 1)
        nxt = np.concatenate((left[:, 1:], left[:, -1:]), axis=1)
        freed = np.cumsum(held, axis=1) - held
        fits = ((free0 - r.n_dec * j) + freed - nxt * rank > 0).all(axis=1)
        if fits.any():
            return first + int(np.argmax(fits))
        first, size = first + size, size * 8
    return steps


def retract(r: Any, req: Any, sliding: bool = False) -> None:
    """(SGLang) When the next decode step's tokens do not fit, retract the decoding sequences
    with the fewest output tokens (the longest prompt first among equals), at least one, until
    it fits; they recompute and join the end of the queue. The ratio is then recomputed."""
    state = r.sglang
    assert state is not None
    if not _overflows(r, sliding) or r.n_dec <= 1:
        return
    state.advance(req.version, r.g)
    pick = operator.itemgetter(*r.decoding)  # (two or more: n_dec > 1)
    ends = np.add(pick(req.g0), pick(req.left), dtype=np.int64)  # the steps at which they complete
    running = ends > r.g  # (not completed)
    ids = np.array(r.decoding, dtype=np.int64)[running]
    live = len(ids)
    # output tokens so far: the whole output less the decode steps to go
    so_far_of = req.output_tokens[ids] - (ends[running] - r.g)
    # the most output first, the shortest prompt first among equals, admission order among equals
    # (a stable sort; the sequences retracted are popped from the end)
    by = np.lexsort((req.input_tokens[ids], -so_far_of))
    order: list[int] = ids[by].tolist()
    so_far: list[int] = so_far_of[by].tolist()
    retracted: list[int] = []
    while len(order) > 1 and (_overflows(r, sliding) or len(order) == live):
        rid = order.pop()
        so_far.pop()
        retracted.append(rid)
        generated = r.g - req.g0[rid]
        state.stopped(req.g0[rid] + req.left[rid], r.g)
        r.stop_decoding(req, rid)
        r.release(req, rid)
        req.version[rid] += 1  # its completion in the heap no longer counts
        req.left[rid] -= generated
        req.todo[rid], req.past0[rid], req.done[rid] = req.past0[rid] + generated, 0, 0  # recompute all
        req.preemptions[rid] += 1
        r.preemptions += 1
        r.waiting.append(rid)
    r.decoding = ids[~np.isin(ids, retracted)].tolist()  # the others, in admission order
    state.retracted(so_far, req.output_tokens[np.array(order, dtype=np.int64)].tolist())


def _overflows(r: Any, sliding: bool) -> bool:
    """(SGLang) The next decode step's tokens do not fit the pool, or (``sliding``, split pools)
    either of them (schedule_batch.py ``check_decode_mem``: ``_is_available_size_sufficient`` asks
    both). SGLang checks them as it prepares a decode batch (scheduler.py ``update_running_batch``,
    when ``get_new_batch_prefill`` found no prompt to run), so the sliding pool is checked as a
    decode-only step is planned (:meth:`~genmodel._scheduler.Replica.plan`), the full one, as
    before, once a step is committed."""
    return r.held() + r.n_dec > r.capacity or (sliding and r.slide is not None and r.slide.free(r) < r.n_dec)
