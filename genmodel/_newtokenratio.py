"""SGLang's ``new_token_ratio`` rule as data: its defaults and what they derive (the scheduler's
state that runs it is :mod:`genmodel._newtokens`). A value module below the engines, which name it
in the SGLang preset.
"""

from __future__ import annotations

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
    #: the requests ask to ignore EOS and the radix cache is off: SGLang 0.4 admits them by
    #: ``PrefillAdder.add_one_req_ignore_eos`` (:func:`genmodel._newtokens.fits_to_completion`)
    ignore_eos: bool = False

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
#: SGLang's ``--swa-full-tokens-ratio`` default (python/sglang/srt/server_args.py swa_full_tokens_ratio
#: 0.8): with sliding-window layers it keeps two pools, the sliding one holding this many tokens per
#: token of the full-layer one (model_executor/model_runner_kv_cache_mixin.py set_num_tokens_hybrid_swa;
#: ``Engine.swa_pool`` "split")
SGLANG_SWA_FULL_TOKENS_RATIO = 0.8
#: SGLang's decode steps between two evictions of a request's sliding-pool tokens, per token of the
#: window (environ.py SGLANG_SWA_EVICTION_INTERVAL_MULTIPLIER, default 1.0, sglang PR 22645; the
#: eviction itself: PR 17220, schedule_batch.py ScheduleBatch.maybe_evict_swa; genmodel._windowkv.SlidingPool)
SGLANG_SWA_EVICTION_INTERVAL = 1.0
