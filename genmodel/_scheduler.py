"""The iteration-level scheduler of a continuously batching engine, one replica at a time.

Modelling assumptions (the engine's knobs are :class:`~genmodel._engines.Engine`'s):
- Each step the scheduler gives every decoding sequence one token, then continues the prompts
  being prefilled, then admits waiting requests in FCFS order, while the step's token budget, the
  cap on running sequences and the KV pool allow. Without chunked prefill a prompt waits until it
  fits the budget whole (or runs alone when nothing else is scheduled). Without mixed steps
  (SGLang) a step that prefills runs no decode tokens.
- The first output token comes out of the step that finishes the prompt; each later one out of a
  decode step. A decoding sequence's cached tokens grow by one per step.
- KV pool in tokens per replica. "reserve": a request takes its prompt and its reserved share of
  the output when admitted and keeps them until it completes. "on-demand": a request holds the
  tokens it has computed (plus half a block of waste); when decode growth overflows the pool the
  most recently admitted running sequence is preempted (:mod:`genmodel._preemption`: vLLM V1's
  ``running.pop()``, recompute or swap, the preempted blocks left as evictable prefix cache with
  ``Engine.prefix_caching``; the blocks of completed requests, whose random prompts nothing
  shares, are taken first, a simplification of vLLM's one LRU queue); the step after a preemption
  admits no waiting request (vLLM V1: "if not preempted_reqs"). A fixed reservation of less than
  the whole output can overflow too: the most recently admitted decoding sequence is then
  preempted the same way. SGLang (``Engine.new_token_ratio``) admits and retracts by its decaying
  estimate instead (:mod:`genmodel._newtokens`): retracted sequences go to the end of the queue.
  On-demand, the blocks of a step's chunks are taken as the step is planned (vLLM allocates them
  as it schedules), so a request admitted later in the same step must fit beside them.
- Overlap scheduler (``Engine.overlap_scheduler``, TensorRT-LLM's PyTorch backend): the batch of a
  step is chosen while the step before it runs, so a request that arrived after that step started
  waits one step more; with nothing running the engine admits an arrival at once. With
  ``Engine.release_after_launch`` a step's tokens (first tokens, completions and so the clients'
  replies) leave only once the next step is launched, its host launch time later when it holds a
  prompt (an eager step), and the engine fetches waiting requests that much later too.
- Bookkeeping is O(1) per step plus O(log n) per event: a global decode-step counter G, the sum of
  the decoding sequences' cached tokens, and a heap of the counter values at which sequences
  complete. Runs of decode-only steps between events are costed and applied together (NumPy),
  with the same results as one step at a time (``DECODE_RUNS``; docs/serving-simulation.md,
  "Runs of decode steps").
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable

import numpy as np

from genmodel._engines import Engine
from genmodel._lockstep import ALONE, Lockstep
from genmodel._newtokens import RatioState, refused_for, retract, sglang_fits
from genmodel._preemption import CacheSeen, cache_hits, evict, preempt_overflow, refused_after, reuse
from genmodel._preemption import refused_for as cached_refused_for
from genmodel._stepcost import StepCostTable
from genmodel._swaplink import SwapLink
from genmodel._windowkv import SlidingPool, WindowKv

#: skip through runs of decode-only steps, each costed and applied as the step-by-step loop would
#: (False: every step is planned and committed on its own, the reference the runs must match)
DECODE_RUNS = True
#: the most decode steps costed at once
RUN_STEPS = 8192


class Requests:
    """Per-request state of a simulation, as Python lists (fast scalar access); times in seconds,
    -1 until they happen. :meth:`array` gives one as a NumPy array (NaN for -1)."""

    def __init__(self, input_tokens: np.ndarray, output_tokens: np.ndarray, cached_tokens: int) -> None:
        n = len(input_tokens)
        self.input_tokens = input_tokens.astype(np.int64)
        self.output_tokens = output_tokens.astype(np.int64)
        self.cached = cached_tokens  # prompt tokens found in the prefix cache
        self.arrival_s: list[float] = [-1.0] * n
        self.scheduled_s: list[float] = [-1.0] * n
        self.first_token_s: list[float] = [-1.0] * n
        self.finish_s: list[float] = [-1.0] * n
        self.replica: list[int] = [0] * n
        self.preemptions: list[int] = [0] * n
        todo = np.maximum(self.input_tokens - cached_tokens, 1)  # (integers: exact)
        self.todo: list[int] = todo.tolist()
        self.past0: list[int] = (self.input_tokens - todo).tolist()
        self.done: list[int] = [0] * n
        self.left: list[int] = (self.output_tokens - 1).tolist()  # decode steps to go
        self.reserved: list[int] = [0] * n
        self.g0: list[int] = [0] * n
        self.version: list[int] = [0] * n
        self.swapped: list[bool] = [False] * n  # KV on the offload tier (swap preemption)

    def array(self, name: str) -> np.ndarray:
        """The list ``name`` as an array; times not reached are NaN."""
        values = np.array(getattr(self, name))
        if values.dtype.kind == "f":
            values[values < 0] = math.nan
        return values


class Replica:
    """The state of one replica's scheduler."""

    def __init__(
        self,
        index: int,
        engine: Engine,
        table: StepCostTable,
        capacity_tokens: int,
        swap: SwapLink | None = None,
        window: WindowKv | None = None,
        slide: SlidingPool | None = None,
    ) -> None:
        self.index = index
        self.engine = engine
        self.table = table
        self.capacity = capacity_tokens
        self.window = window  # what sliding-window layers free of the decoding sequences (None: nothing)
        self.slide = slide  # (SGLang) its sliding-window pool beside the full one counted by capacity
        # SGLang: admission by its decaying new_token_ratio (genmodel/_newtokens.py), not a fixed reservation
        rule = engine.new_token_ratio if engine.admission == "reserve" else None
        self.sglang = RatioState(rule) if rule is not None else None
        self.reserve = engine.admission == "reserve" and self.sglang is None
        # reserving less than the whole output can still overflow: it retracts then
        self.can_overflow = not self.reserve or engine.reserve_output_frac < 1
        self.round_out = 0  # (SGLang) output this step's finishing prompts reserve
        self.preempted = False  # (on-demand) the last commit preempted: this plan admits no one
        self.tested = False  # this plan, held back, would have refused the head (refused_after)
        self.half_block = engine.kv_block_tokens // 2
        self.waiting: deque[int] = deque()
        self.prefilling: list[int] = []
        self.decoding: list[int] = []  # in admission order, completed ones removed lazily
        self.heap: list[tuple[int, int, int]] = []  # (G at completion, request, version)
        self.g = 0  # decode steps this replica has run
        self.n_dec = 0
        self.past_sum = 0  # cached tokens of the decoding sequences
        self.prefill_done = 0  # tokens computed by sequences still prefilling (on-demand)
        self.reserved = 0  # tokens reserved (reserve admission)
        self.running = 0
        self.preemptions = 0
        self.kv_refusals = 0  # admissions the KV pool refused (a prompt that fit the step waited)
        self.peak_tokens = 0
        self.batch_time = 0.0  # integral of the running batch over time
        self.itl: list[tuple[float | np.ndarray, int]] = []  # (gaps between decode steps, tokens)
        self.last_decode_s: float | None = None  # end of the last decode step, while decoding
        self.swap = swap if engine.preemption == "swap" else None
        # on-demand with the prefix cache on: tokens of each preempted sequence's KV still cached,
        # free and evictable, least recently freed first
        self.keep_cache = engine.prefix_caching and engine.admission == "on-demand"
        self.kept: dict[int, int] = {}
        self.kept_sum = 0
        self.swapped_tokens = 0  # KV tokens this replica keeps on the offload tier
        self.copy_s = 0.0  # swap copies the next step runs before its forward pass
        self.swap_s = 0.0  # all swap copies so far
        #: sequences resumed this step whose first token it emits (disaggregated decode workers)
        self.first_pending: list[int] = []
        self.emit_first = False
        # this step's plan
        self.chunks: list[tuple[int, int]] = []
        self.chunk_ids: list[int] = []
        self.chunk_tokens = 0  # their tokens
        self.step_dec = 0
        # overlap scheduler: (start, end) of the last step run, and whether a request waits for
        # the next step only because it arrived after this one's batch was chosen
        self.last_step = (-math.inf, -math.inf)
        self.held_back = False
        self.refused = False  # the KV pool refused the queue's head in this plan
        #: (a waiting head with blocks cached, refused or unchunked) the pool as its test saw it
        self.seen: CacheSeen | None = None
        # release_after_launch: the last step's first tokens and completions, not out yet
        self.defer = engine.release_after_launch and engine.overlap_scheduler and table.prefill_host_s > 0
        self.unsent_first: list[int] = []
        self.unsent_done: list[int] = []
        self.on_sent: Callable[[int, float], None] | None = None
        self.fetch_lag = 0.0  # how much later than its start the step before this one fetched

    # ---- memory -------------------------------------------------------------------------
    def used(self) -> int:
        """KV tokens held now (reserve: reserved)."""
        if self.reserve:
            return self.reserved
        return self.held()

    def held(self) -> int:
        """KV tokens the running sequences have computed (plus half a block of waste each), less
        what their sliding-window layers have freed (:mod:`genmodel._windowkv`)."""
        held = self.past_sum + self.prefill_done + self.running * self.half_block
        return held - self.window.saved(self.g) if self.window is not None else held

    def grown(self, steps: np.ndarray) -> np.ndarray:
        """What :meth:`held` grows by in each of ``steps`` more decode steps of the same sequences
        (a run's): a token each, less what their sliding windows will have freed by then."""
        grown: np.ndarray = self.n_dec * steps
        if self.window is not None:
            grown = grown - (self.window.saved_ahead(self.g + steps) - self.window.saved(self.g))
        return grown

    def held_after(self, steps: int) -> int:
        """:meth:`held` after ``steps`` more decode steps of the same sequences (a run's)."""
        if self.window is None:  # (as grown: a token a step each)
            return self.held() + self.n_dec * steps
        return self.held() + int(self.grown(np.array([steps]))[0])

    def _need(self, req: Requests, rid: int, take: int) -> int:
        """Tokens admitting ``rid`` with a first chunk of ``take`` tokens takes from the pool."""
        e = self.engine
        if self.reserve:
            tokens = req.past0[rid] + req.todo[rid] + math.ceil(req.left[rid] * e.reserve_output_frac) + 1
            tokens = -(-tokens // e.kv_block_tokens) * e.kv_block_tokens
            return tokens - self.window.saved_of(tokens) if self.window is not None else tokens
        return take + e.kv_block_tokens // 2

    # ---- planning a step ----------------------------------------------------------------
    def plan(self, req: Requests, now: float) -> None:
        """Choose this step's decode tokens and prefill chunks."""
        e = self.engine
        budget = e.max_batched_tokens - (self.n_dec if e.mixed and e.budget_counts_decode else 0)
        self.chunks, self.chunk_ids = [], []
        self.chunk_tokens = self.round_out = 0
        self.held_back = self.tested = False
        refusals = self.kv_refusals
        if self.sglang is not None and not self.running:
            self.sglang.reset()
        for rid in self.prefilling:
            budget = self._chunk(req, rid, budget)
            if budget <= 0:
                break
        if self.preempted:
            self._hold_back(req, now, budget)
        else:
            self._admit_waiting(req, now, budget)
        if self.slide is not None and not self.chunks:  # (SGLang) a decode step: both pools must hold it
            retract(self, req, sliding=True)
        self.refused = self.kv_refusals > refusals or self.tested
        self.step_dec = 0 if (self.chunks and not e.mixed) else self.n_dec
        self.seen = None
        if self.kept:
            head = self.waiting[0] if self.waiting else -1
            if head in self.kept and (self.refused or not e.chunked_prefill):
                self.seen = CacheSeen.of(self, head, budget)  # (as its test saw it: before evicting)
            evict(self, self.chunk_tokens + self.step_dec)
        if self.defer:
            self._send(req, now)

    def _hold_back(self, req: Requests, now: float, budget: int) -> None:
        """vLLM V1 schedules no waiting request in a step whose scheduling preempted (scheduler.py
        schedule: "if not preempted_reqs:"); they wait for the next step. The plans after this one
        test the queue's head: where this one's test would have refused it (:func:`refused_after`),
        a run of decode steps may start here, as at a plan that refused it."""
        self.preempted = False
        self.tested = bool(self.waiting) and refused_after(self, req, now, budget)
        self.held_back = bool(self.waiting) and not self.tested

    def _admit_waiting(self, req: Requests, now: float, budget: int) -> None:
        """Admit waiting requests in order while the budget, the running cap and the pool allow."""
        e = self.engine
        cutoff = self._cutoff(now)
        while budget > 0 and self.waiting and self.running < e.max_num_seqs:
            rid = self.waiting[0]
            if req.arrival_s[rid] > cutoff:  # (overlap) not there when this step was chosen
                self.held_back = True
                break
            if req.todo[rid] == 0:  # its KV is resident elsewhere: nothing to prefill
                if not self._resume(req, rid, now):
                    break
                budget -= 1 if e.mixed and e.budget_counts_decode else 0
                continue
            if not self._admit(req, rid, now, budget):
                break
            budget = self._chunk(req, rid, budget)

    def _send(self, req: Requests, now: float) -> None:
        """(release_after_launch) The last step's tokens leave once this step, just planned, is
        launched: its host launch time after ``now`` when it holds a prompt, at once otherwise.
        The next fetch of waiting requests comes as late."""
        lag = self.table.prefill_host_s if self.chunks else 0.0
        self.fetch_lag = lag
        sent = now + lag
        for rid in self.unsent_first:
            req.first_token_s[rid] = sent
        done, self.unsent_first, self.unsent_done = self.unsent_done, [], []
        for rid in done:
            req.finish_s[rid] = sent
            if self.on_sent is not None:
                self.on_sent(rid, sent)
        if done and self.waiting:
            self.held_back = True  # the replies came after this step's batch was chosen

    def pending_tokens(self) -> bool:
        """(release_after_launch) Tokens of the last step wait to leave the engine."""
        return bool(self.unsent_first or self.unsent_done)

    def _admit(self, req: Requests, rid: int, now: float, budget: int) -> bool:
        """Admit the waiting ``rid`` (to prefill) if its first chunk, and any of its blocks still
        cached, fit the pool beside what runs and what this step already takes; False if not."""
        hits = cache_hits(self, req, rid)
        take = self._take(req.todo[rid] - hits, budget, new=True)
        # (a partial reservation also waits for the tokens actually held: no thrashing)
        held = max(self.used(), self.held()) if self.can_overflow else self.used()
        if take == 0:
            return False
        if self.sglang is not None:
            fits = sglang_fits(self, req, rid, take)
        else:
            fits = held + self._planned() + hits + self._need(req, rid, take) <= self.capacity
        if not fits:
            self.kv_refusals += 1
            return False
        self.waiting.popleft()
        self.running += 1
        self.prefilling.append(rid)
        if rid in self.kept:
            reuse(self, req, rid, hits)
        if self.reserve:
            req.reserved[rid] = self._need(req, rid, take)
            self.reserved += req.reserved[rid]
        if req.scheduled_s[rid] < 0:
            req.scheduled_s[rid] = now
        return True

    def _planned(self) -> int:
        """Tokens of this step's prompt chunks (on-demand: the pool's once planned, as vLLM allocates)."""
        return 0 if self.reserve else self.chunk_tokens

    def _cutoff(self, now: float) -> float:
        """The latest arrival this step may admit: ``now``, or with the overlap scheduler, while
        sequences run and the last step ended now, that step's start (when this one was chosen)."""
        start, end = self.last_step
        if not self.engine.overlap_scheduler or end != now or not (self.n_dec or self.prefilling):
            return now
        return start + self.fetch_lag

    def _resume(self, req: Requests, rid: int, now: float) -> bool:
        """Admit a request whose ``past0`` tokens of KV come back (swap-in, or a transfer from a
        prefill worker) straight into decoding; False when the pool cannot hold them yet."""
        tokens = req.past0[rid]
        held = max(self.used(), self.held()) if self.can_overflow else self.used()
        need = self._need(req, rid, tokens)
        if held + need > self.capacity or (self.slide is not None and need > self.slide.free(self)):
            return False
        self.waiting.popleft()
        self.running += 1
        if self.reserve:
            req.reserved[rid] = need
            self.reserved += need
        if req.scheduled_s[rid] < 0:
            req.scheduled_s[rid] = now
        if req.swapped[rid]:
            req.swapped[rid] = False
            self.swapped_tokens -= tokens
            assert self.swap is not None
            self.copy_s += self.swap.copy_s(tokens)
        elif self.emit_first:
            self.first_pending.append(rid)
        req.g0[rid] = self.g
        self.n_dec += 1
        self.past_sum += tokens
        self._started(req, rid, tokens)
        return True

    def _take(self, todo: int, budget: int, new: bool = False) -> int:
        cap = self.engine.max_prefill_tokens
        if new and cap is not None and self.chunks and todo > cap - self._step_inputs():
            return 0  # a further new prompt only within max_prefill_tokens (SGLang), unsplit
        if self.engine.chunked_prefill:
            return min(todo, budget)
        if todo <= budget or (not self.chunks and todo > self.engine.max_batched_tokens):
            return todo  # whole prompts only; a prompt over the whole budget runs alone
        return 0

    def _step_inputs(self) -> int:
        """Tokens the planned step already takes against ``max_prefill_tokens``."""
        e = self.engine
        return sum(c[0] for c in self.chunks) + (self.n_dec if e.mixed and e.budget_counts_decode else 0)

    def _chunk(self, req: Requests, rid: int, budget: int) -> int:
        take = self._take(req.todo[rid] - req.done[rid], budget)
        if take and not self.reserve and self.used() + self._planned() + take > self.capacity:
            take = 0  # on-demand: the chunk's blocks are not free (a decode must complete first)
        elif take and self.slide is not None and self._planned() + take > self.slide.free(self):
            take = 0  # (SGLang) nor in the sliding pool
        if take:
            if self.sglang is not None and req.done[rid] + take >= req.todo[rid]:
                self.round_out += min(req.left[rid] + 1, self.sglang.clip)  # its output, with the last chunk
            self.chunk_tokens += take
            self.chunks.append((take, req.past0[rid] + req.done[rid]))
            self.chunk_ids.append(rid)
        return budget - take

    def step_tokens(self) -> int:
        """Tokens of the planned step (its decodes and prefill chunks)."""
        return self.step_dec + sum(c[0] for c in self.chunks)

    def step_s(self, group: Lockstep = ALONE) -> float:
        """Time of the planned step (0 when it is empty); ``group``: what the replicas in lockstep
        with this one make of it (:func:`~genmodel._lockstep.lockstep`)."""
        if not self.chunks and not self.step_dec:
            return self.copy_s
        past = self.past_sum if self.step_dec else 0
        step = self.table.step_s(
            decode_seqs=self.step_dec,
            decode_past_sum=past,
            chunks=self.chunks,
            group_tokens=group.group,
            rows=group.rows,
            eager=group.eager,
        )
        return step + self.copy_s if self.copy_s else step

    # ---- committing a step --------------------------------------------------------------
    def commit(
        self, req: Requests, now: float, duration: float, on_finish: Callable[[int, float], None]
    ) -> None:
        """Apply the planned step, which ended at ``now`` after ``duration`` seconds."""
        on_finish = self._deferred(on_finish)
        self.batch_time += duration * (self.step_dec + len(self.chunks))
        self.last_step = (now - duration, now)
        if self.copy_s:
            self.swap_s += self.copy_s
            self.copy_s = 0.0
        if self.step_dec:
            if self.sglang is not None and not self.chunks:
                self.sglang.decayed(1)
            self._decoded(req, now, 1, duration, on_finish)
            if self.first_pending:
                self._first_tokens(req, now)
        finished = False
        for (take, _), rid in zip(self.chunks, self.chunk_ids, strict=True):
            req.done[rid] += take
            self.prefill_done += take
            if req.done[rid] >= req.todo[rid]:
                finished = True
                self._prompt_done(req, rid, now, on_finish)
        if finished:  # (one pass per step, not a list.remove per prompt)
            self.prefilling = [rid for rid in self.prefilling if req.done[rid] < req.todo[rid]]
        if self.sglang is not None:
            retract(self, req)
        elif self.can_overflow:
            preempt_overflow(self, req)
        if self.kept:
            evict(
                self,
            )
        self.peak_tokens = max(self.peak_tokens, self.held() if self.can_overflow else self.used())

    def _deferred(self, on_finish: Callable[[int, float], None]) -> Callable[[int, float], None]:
        """``on_finish``, or with release_after_launch, a callback that keeps the completion until
        the next step is planned (:meth:`_send`)."""
        if not self.defer:
            return on_finish
        self.on_sent = on_finish
        return lambda rid, _now: self.unsent_done.append(rid)

    def _decoded(
        self,
        req: Requests,
        now: float,
        steps: int,
        gaps: float | np.ndarray,
        on_finish: Callable[[int, float], None],
    ) -> None:
        """``steps`` decode steps ran; the last ended at ``now``."""
        n = self.n_dec
        if steps == 1 and self.last_decode_s is not None:
            gaps = now - self.last_decode_s  # with the prefill-only steps between
        self.itl.append((gaps, n))
        self.last_decode_s = now
        self.g += steps
        self.past_sum += n * steps
        for kv in (self.window, self.slide):
            if kv is not None:
                kv.advance(self.g)
        heap = self.heap
        if self.sglang is not None:
            self.sglang.advance(req.version, self.g)
        while heap and heap[0][0] <= self.g:
            done_at, rid, version = heapq.heappop(heap)
            if version != req.version[rid]:
                continue
            if self.sglang is not None:
                self.sglang.stopped(done_at, self.g)
            self.stop_decoding(req, rid)
            self.release(req, rid)
            req.finish_s[rid] = now
            on_finish(rid, now)
        if not self.n_dec:
            self.last_decode_s = None

    def _first_tokens(self, req: Requests, now: float) -> None:
        """The sequences resumed this step emitted their first token: it is no inter-token gap."""
        gaps, n = self.itl.pop()
        if n > len(self.first_pending):
            self.itl.append((gaps, n - len(self.first_pending)))
        for rid in self.first_pending:
            req.first_token_s[rid] = now
        self.first_pending = []

    def stop_decoding(self, req: Requests, rid: int) -> None:
        """``rid`` decodes no more (completed, preempted or retracted): its cached tokens leave the sums."""
        past = req.past0[rid] + self.g - req.g0[rid]
        self.n_dec -= 1
        self.past_sum -= past
        for kv in (self.window, self.slide):
            if kv is not None:
                kv.leave(rid, past, self.g)

    def release(self, req: Requests, rid: int) -> None:
        """``rid`` stops running here (completed, preempted or retracted): its reservation is freed."""
        self.running -= 1
        if self.reserve:
            self.reserved -= req.reserved[rid]
            req.reserved[rid] = 0

    def _prompt_done(
        self, req: Requests, rid: int, now: float, on_finish: Callable[[int, float], None]
    ) -> None:
        self.prefill_done -= req.done[rid]
        if req.first_token_s[rid] < 0:
            req.first_token_s[rid] = now
            if self.defer:
                self.unsent_first.append(rid)
        past = req.past0[rid] + req.todo[rid]
        if req.left[rid] <= 0:
            self.release(req, rid)
            req.finish_s[rid] = now
            on_finish(rid, now)
            return
        req.past0[rid] = past
        req.g0[rid] = self.g
        self.n_dec += 1
        self.past_sum += past
        self._started(req, rid, past)

    def _started(self, req: Requests, rid: int, past: int) -> None:
        """``rid`` decodes from now on, with ``past`` tokens cached."""
        for kv in (self.window, self.slide):
            if kv is not None:
                kv.enter(rid, past, self.g)
        self.decoding.append(rid)
        done_at = self.g + req.left[rid]
        heapq.heappush(self.heap, (done_at, rid, req.version[rid]))
        if self.sglang is not None:
            self.sglang.started(rid, req.version[rid], done_at, self.g)

    # ---- runs of decode steps -----------------------------------------------------------
    def steps_to_event(self, req: Requests, sampled: bool = False) -> int:
        """Decode steps the plan just made repeats with only the contexts grown (every plan
        until then runs the same sequences and admits no one): until a sequence completes, the
        pool (on-demand) overflows, or a plan could admit the queue's head that this one refused.
        Save for SGLang and where ``sampled`` (the caller samples the timeline at each run, which
        keeps these runs' ends): the step whose growth overflows ends the run (its plan saw the pool not
        full; :meth:`commit_run` preempts after it as :meth:`commit`), a plan held back after a
        preemption may start one, and a preempted sequence's stale completion ends none."""
        longer = not sampled and self.sglang is None
        alone = self.held_back or (self.tested and not longer)  # (admits, or may)
        if not DECODE_RUNS or self.copy_s or self.first_pending or alone:
            return 1  # a step of its own (copies, first tokens, admits), even with nothing to decode
        if not self.n_dec:
            return 1 << 60
        heap = self.heap
        while longer and heap and heap[0][2] != req.version[heap[0][1]]:
            heapq.heappop(heap)  # (as _decoded would: versions only grow)
        k = heap[0][0] - self.g if heap else 1 << 60
        if self.can_overflow:
            last = 1 if longer else 0  # (the overflowing step)
            k = min(k, max((self.capacity - self.held()) // self.n_dec, 0) + last)
        if self.slide is not None:
            k = min(k, self.slide.safe_steps(self))
        if (self.refused or self.seen is not None) and k >= 2:
            k = self._refused_for(req, min(k, RUN_STEPS))
        return k

    def _refused_for(self, req: Requests, steps: int) -> int:
        """Of the next ``steps`` decode steps, how many the plans keep refusing the queue's head,
        which this plan refused (a run stops at the first plan that admits it). A pool that only
        fills as the contexts grow keeps refusing it, except SGLang's, whose reservation falls with
        the ratio (:func:`~genmodel._newtokens.refused_for`), and one whose growth evicts the
        head's cached blocks (:func:`~genmodel._preemption.refused_for`)."""
        if self.sglang is not None:
            return refused_for(self, req, steps)
        if self.seen is None:
            return steps
        return cached_refused_for(self, req, self.seen, steps)

    def run_s(self, steps: int, group: Lockstep = ALONE) -> np.ndarray:
        """Times of the next ``steps`` decode steps (``group`` as :meth:`step_s`)."""
        if not self.n_dec:
            return np.zeros(steps)
        return self.table.decode_run_s(
            decode_seqs=self.n_dec,
            decode_past_sum=self.past_sum,
            steps=steps,
            group_tokens=group.group,
            rows=group.rows,
            eager=group.eager,
        )

    def commit_run(
        self,
        req: Requests,
        ends: np.ndarray,
        durations: np.ndarray,
        on_finish: Callable[[int, float], None],
    ) -> None:
        """Apply a run of decode steps of these ``durations``, ending at ``ends`` (each step's end,
        summed one step at a time as the step-by-step clock adds them), as that many
        :meth:`commit` would: the same floating-point sums, ratio and ITL gaps, every plan's
        refusal counted, an overflow after the last step retracted or preempted."""
        steps, now = len(durations), float(ends[-1])
        if self.refused:
            self.kv_refusals += steps - 1  # the plans skipped refused it as this one did
        self.last_step = (now - float(durations[-1]), now)
        if not self.n_dec:
            return
        on_finish = self._deferred(on_finish)
        area = durations * self.n_dec
        area[0] += self.batch_time  # (summed one step at a time, as commit adds them)
        self.batch_time = float(area.cumsum()[-1])
        gaps = np.empty(steps)
        gaps[1:] = ends[1:] - ends[:-1]
        gaps[0] = durations[0] if self.last_decode_s is None else ends[0] - self.last_decode_s
        if self.sglang is not None:
            self.sglang.decayed(steps)
        if self.can_overflow:  # what the step before the last left, before the last one's completions
            self.peak_tokens = max(self.peak_tokens, self.held_after(steps - 1))
        if self.kept:  # as the last step's plan evicted for it, before its completions
            evict(self, self.held_after(steps - 1) - self.held() + self.n_dec)
        self._decoded(req, now, steps, gaps, on_finish)
        if self.sglang is not None:
            retract(self, req)
        elif self.can_overflow:
            preempt_overflow(self, req)
        if self.kept:
            evict(
                self,
            )
        self.peak_tokens = max(self.peak_tokens, self.held() if self.can_overflow else self.used())


def step_ends(now: float, durations: np.ndarray) -> np.ndarray:
    """When each of a run's steps ends, starting at ``now``: summed one step at a time (a
    sequential sum), so the same floats as the step-by-step clock's ``now += duration``."""
    ends: np.ndarray = durations.copy()
    ends[0] += now
    return ends.cumsum(out=ends)
