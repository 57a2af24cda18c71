"""SGLang's admission by its decaying ``new_token_ratio``: the state one replica's scheduler keeps.

Modelling assumptions (SGLang 0.5; every rule and default is :class:`NewTokenRatio`'s,
with its sources):
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
- Tokens to go, summed with the clip, are kept in O(log n) per event: ``clip`` x the sequences further
  than ``clip`` from completion, plus the completion step counts less the step counter for the rest;
  a heap of the steps at which a sequence comes within ``clip`` moves it from the first group to the second.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

from genmodel._errors import SpecError, require_ints


@dataclass(frozen=True, slots=True, kw_only=True)
class NewTokenRatio:
    """SGLang's estimate of the output still to come (``Engine.new_token_ratio``): admission
    reserves, for every running sequence, ``ratio`` x its tokens to go (at most ``clip_tokens``),
    and a new request needs its prompt and all its output (at most ``clip_tokens``) free beside
    that; the ratio starts at ``init``, falls by ``decay`` each decode step down to ``init`` x
    ``min_factor``, returns to ``init`` when nothing runs, and is recomputed on a retraction.

    Source (SGLang 0.5): python/sglang/srt/environ.py ``SGLANG_INIT_NEW_TOKEN_RATIO`` 0.7,
    ``SGLANG_MIN_NEW_TOKEN_RATIO_FACTOR`` 0.14, ``SGLANG_NEW_TOKEN_RATIO_DECAY_STEPS`` 600,
    ``SGLANG_RETRACT_DECODE_STEPS`` 20 (global_config.py before environ.py, the same values);
    managers/scheduler.py ``Scheduler.__init__`` (init = min(0.7 x schedule_conservativeness 1.0,
    1); min = init x 0.14; decay = (init - min) / 600), ``update_running_batch`` (each decode batch:
    ratio = max(ratio - decay, min), or on a retraction the ratio ``retract_decode`` returns) and
    ``self_check_during_idle`` (ratio = init when no batch runs); managers/schedule_policy.py
    ``CLIP_MAX_NEW_TOKENS`` (``SGLANG_CLIP_MAX_NEW_TOKENS_ESTIMATION`` 4096) and ``PrefillAdder``
    (``rem_total_tokens`` = free + evictable tokens - the running requests' min(max_new_tokens -
    len(output_ids), clip) x ratio - what this round admitted; ``add_one_req`` refuses a request
    whose extend_input_len + min(max_new_tokens, clip) >= it, and reserves that much once admitted,
    only the chunk while its prompt is chunked); managers/schedule_batch.py
    ``ScheduleBatch.retract_decode`` (retracts the requests with the fewest output tokens first,
    the longest prompt first among equals, at least one and until the next decode step fits;
    new ratio = min(1, (sum of len(output_ids) + 20 x requests left) / (sum of max_new_tokens + 1))).
    """

    init: float = 0.7
    min_factor: float = 0.14
    decay_steps: int = 600
    retract_decode_steps: int = 20
    clip_tokens: int = 4096

    def __post_init__(self) -> None:
        require_ints(
            decay_steps=self.decay_steps,
            retract_decode_steps=self.retract_decode_steps,
            clip_tokens=self.clip_tokens,
        )
        if not (0 < self.init <= 1 and 0 <= self.min_factor <= 1):
            raise SpecError(f"new_token_ratio init={self.init!r} must be in (0, 1], min_factor in [0, 1]")

    @property
    def min_ratio(self) -> float:
        """The floor the ratio decays to."""
        return min(self.init * self.min_factor, 1.0)

    @property
    def decay(self) -> float:
        """How much the ratio falls per decode step."""
        return (self.init - self.min_ratio) / self.decay_steps


#: SGLang 0.5's defaults (:class:`NewTokenRatio`)
SGLANG_NEW_TOKEN_RATIO = NewTokenRatio()


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

    # ---- the ratio ------------------------------------------------------------------------
    def decayed(self, steps: int) -> None:
        """``steps`` decode-only steps ran."""
        self.ratio = max(self.ratio - steps * self.rule.decay, self.rule.min_ratio)

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
