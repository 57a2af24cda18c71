"""Preemption of a scheduler's sequences when its KV pool overflows, and the blocks a preempted
sequence leaves cached (vLLM V1's on-demand allocation; a fixed reservation of less than the whole
output overflows the same way).

Modelling assumptions (the functions act on one replica's scheduler state,
:class:`~genmodel._scheduler.Replica`, and its requests, :class:`~genmodel._scheduler.Requests`):
- When decode growth overflows the pool, the most recently admitted running sequence is preempted:
  one still prefilling before any decoding one (vLLM V1's ``running.pop()``). It loses its KV and
  goes back to the head of the queue to recompute its prompt and the tokens it has generated, or,
  with swap preemption and room on the offload tier, its KV is copied out and back on resumption.
  At least one sequence keeps running.
- With the engine's prefix cache on, a preempted sequence's whole blocks stay in the pool as
  evictable cache: other sequences' growth evicts them, least recently freed first, only when no
  other block is free; on resumption the blocks still cached are hits that need the pool's room
  but no compute, and at least the prompt's last token is computed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def preempt_overflow(r: Any, req: Any) -> None:
    """Preempt the latest admitted sequences until the pool holds the rest: on-demand, those
    still prefilling first (vLLM V1 preempts the last of its running list), then decoding ones."""
    on_demand = r.engine.admission == "on-demand"
    before = r.preemptions
    while r.held() > r.capacity and on_demand and r.prefilling and r.running > 1:
        _preempt_prefill(r, req, r.prefilling.pop())
    while r.held() > r.capacity and r.n_dec > 1:
        rid = r.decoding.pop()
        if req.finish_s[rid] >= 0:
            continue  # completed (lazily removed)
        generated = r.g - req.g0[rid]
        r.stop_decoding(req, rid)
        r.release(req, rid)
        req.version[rid] += 1  # its completion in the heap no longer counts
        req.left[rid] -= generated
        tokens = req.past0[rid] + generated
        swap = r.swap
        if swap is not None and r.swapped_tokens + tokens <= swap.capacity_tokens:
            req.past0[rid] = tokens  # copied out, and back on resumption
            req.todo[rid] = 0
            req.swapped[rid] = True
            r.swapped_tokens += tokens
            r.copy_s += swap.copy_s(tokens)
        else:
            req.todo[rid] = tokens  # recompute everything it holds (less what stays cached)
            req.past0[rid] = 0
            keep(r, rid, tokens)
        req.done[rid] = 0
        req.preemptions[rid] += 1
        r.preemptions += 1
        r.waiting.appendleft(rid)
    r.preempted = on_demand and r.preemptions > before


def refused_after(r: Any, req: Any, now: float, budget: int) -> bool:
    """Whether the queue's head would be refused by the pool, were it tested in this plan, which
    admits no one after a preemption: on-demand (vLLM) only, a decode-only step, ``budget`` left
    for the head (False where anything else would decide it: the overlap scheduler, the running
    cap, a resumption, a reply still on its way, no chunk). The plans after it test the head as
    a refusing plan's successors do, so a run of decode steps may start at this one."""
    e = r.engine
    if r.reserve or r.sglang is not None or r.defer or e.overlap_scheduler or r.chunks:
        return False
    rid = r.waiting[0]
    if budget <= 0 or r.running >= e.max_num_seqs or req.arrival_s[rid] > now or req.todo[rid] == 0:
        return False
    hits = cache_hits(r, req, rid)
    take = r._take(req.todo[rid] - hits, budget, new=True)
    return bool(take) and r.held() + hits + r._need(req, rid, take) > r.capacity


def _preempt_prefill(r: Any, req: Any, rid: int) -> None:
    """Preempt ``rid`` while it prefills: its computed chunks are freed (and may stay cached)."""
    r.prefill_done -= req.done[rid]
    r.release(req, rid)
    keep(r, rid, req.done[rid])
    req.done[rid] = 0
    req.preemptions[rid] += 1
    r.preemptions += 1
    r.waiting.appendleft(rid)


def cache_hits(r: Any, req: Any, rid: int) -> int:
    """Prompt tokens of a preempted ``rid`` whose KV is still cached, in whole blocks; at least
    the last token is computed again (vLLM's get_computed_blocks caps a hit at the request's
    tokens less one)."""
    kept: int = r.kept.get(rid, 0)
    if not kept:
        return 0
    block: int = r.engine.kv_block_tokens
    todo: int = req.todo[rid]
    return min(kept, (todo - 1) // block * block)


@dataclass(frozen=True, slots=True)
class CacheSeen:
    """What a plan that refused the waiting head saw of the pool, before it evicted: the tokens
    held and cached, those cached before the head's (least recently freed), the head's, and the
    step's budget left for it."""

    held: int
    cached: int
    ahead: int
    head: int
    budget: int

    @classmethod
    def of(cls, r: Any, head: int, budget: int) -> CacheSeen:
        """``r``'s pool as the plan's test of ``head`` saw it."""
        ahead = 0
        for rid, tokens in r.kept.items():
            if rid == head:
                break
            ahead += tokens
        return cls(r.held(), r.kept_sum, ahead, r.kept.get(head, 0), budget)


def refused_for(r: Any, req: Any, seen: CacheSeen, steps: int) -> int:
    """How many of the next ``steps`` decode-only steps' plans keep refusing the waiting head that
    a plan refused having seen ``seen``: the first j (1 .. steps - 1) whose test admits it, else
    ``steps``. The pool's growth evicts cached blocks, least recently freed first, whole blocks: the
    plan j steps on has seen ceil(excess / block) blocks evicted since, excess = the tokens held
    then, j decode tokens a sequence (less what sliding windows free: ``Replica.grown``) and those
    cached then less the capacity; once eviction
    reaches the head's blocks its hits fall (:func:`cache_hits`), and with chunked prefill its
    first chunk grows by as much up to the budget, so the test can change. Unchunked, a head whose
    hits change may take its prompt whole, or no chunk at all (not tested, refused or not): the
    run stops before eviction reaches its blocks, whether this plan refused it or took no chunk."""
    settled = _settled(r, req, seen, steps)
    if settled is not None:
        return settled
    head, block = r.waiting[0], r.engine.kv_block_tokens
    j = np.arange(1, steps)
    held = seen.held + r.grown(j)  # (the held tokens of the plan j steps on)
    # (np.minimum and np.maximum: the same as np.clip, without its overhead on short arrays)
    evicted = np.minimum(np.maximum(-(-(held + seen.cached - r.capacity) // block) * block, 0), seen.cached)
    if not r.engine.chunked_prefill:
        return _first(evicted > seen.ahead, steps)
    todo: int = req.todo[head]
    hits = np.minimum(
        np.maximum(seen.head - np.maximum(evicted - seen.ahead, 0), 0), (todo - 1) // block * block
    )
    need = hits + np.minimum(todo - hits, seen.budget) + block // 2  # (as _admit: hits, chunk, half a block)
    return _first(held + need <= r.capacity, steps)


def _settled(r: Any, req: Any, seen: CacheSeen, steps: int) -> int | None:
    """:func:`refused_for` where the plans 1 and ``steps`` - 1 on decide it, else None. Without
    sliding windows the held tokens grow ``n_dec`` a step, so the evicted tokens never fall, nor
    grow the head's test's hits (a chunk grows at most as they fall: the need is
    min(todo, hits + budget) + half a block): a test that admits the head at plan 1 is the first,
    and one that refuses it at plan 1 with the last plan's need (the least) refuses it at every plan."""
    if r.window is not None or steps < 2:
        return None
    block: int = r.engine.kv_block_tokens
    cached, ahead, n_dec = seen.cached, seen.ahead, int(r.n_dec)
    held_1, held_last = seen.held + n_dec, seen.held + n_dec * (steps - 1)
    evicted_1 = min(max(-(-(held_1 + cached - r.capacity) // block) * block, 0), cached)
    evicted_last = min(max(-(-(held_last + cached - r.capacity) // block) * block, 0), cached)
    if not r.engine.chunked_prefill:
        return 1 if evicted_1 > ahead else steps if evicted_last <= ahead else None
    todo: int = req.todo[r.waiting[0]]

    def need(evicted: int) -> int:
        hits = min(max(seen.head - max(evicted - ahead, 0), 0), (todo - 1) // block * block)
        return hits + min(todo - hits, seen.budget) + block // 2

    if held_1 + need(evicted_1) <= r.capacity:
        return 1
    return steps if held_1 + need(evicted_last) > r.capacity else None


def _first(hits: np.ndarray, steps: int) -> int:
    """1 + the index of the first True of ``hits``, else ``steps``."""
    i = int(hits.argmax()) if len(hits) else 0
    return i + 1 if len(hits) and hits[i] else steps


def reuse(r: Any, req: Any, rid: int, hits: int) -> None:
    """Admitted ``rid`` takes back ``hits`` cached tokens: computed, held, not in the cache."""
    r.kept_sum -= r.kept.pop(rid)
    req.done[rid] = hits
    r.prefill_done += hits


def keep(r: Any, rid: int, tokens: int) -> None:
    """Preempted ``rid``'s whole blocks of ``tokens`` computed tokens stay cached (newest last)."""
    kept = tokens // r.engine.kv_block_tokens * r.engine.kv_block_tokens
    if r.keep_cache and kept:
        r.kept[rid] = kept
        r.kept_sum += kept


def evict(r: Any, pending: int = 0) -> None:
    """Evict cached blocks of preempted sequences, least recently freed first, until the pool
    holds them besides the running sequences' tokens and ``pending`` tokens this step adds."""
    excess = r.held() + pending + r.kept_sum - r.capacity
    block = r.engine.kv_block_tokens
    while excess > 0 and r.kept:
        rid = next(iter(r.kept))
        kept = r.kept[rid]
        drop = min(kept, -(-excess // block) * block)
        if drop == kept:
            del r.kept[rid]
        else:
            r.kept[rid] = kept - drop
        r.kept_sum -= drop
        excess -= drop
