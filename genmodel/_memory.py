"""Memory per device: where the weights, KV cache and activations go, and the largest batch that fits.

Modelling assumptions:
- The bytes of each kind per device are :mod:`genmodel._sizes`'s (weights sharded as the
  operators are, the KV cache each attention kind keeps, a prefill chunk's activations).
- A speculative-decoding draft (a draft model, or the target's MTP block) adds its weights and
  its KV cache; an MTP block shares the target's embedding and LM head.
- Usable memory is the device capacity less any OS reserve, times the engine's usable fraction
  (vLLM's default ``gpu_memory_utilization`` = 0.9).
- Paged KV cache (vLLM PagedAttention, Kwon et al. SOSP 2023): a sequence holds whole blocks of
  ``kv_block_tokens`` tokens, so up to a block less one token per sequence is wasted.
- Prefix caching (vLLM automatic prefix caching, SGLang RadixAttention): ``shared_prefix_tokens``
  of every prompt on a replica are one cached prefix, stored once (whole blocks only).
- Offload: what does not fit the device's usable memory moves to the tiers the user names, in
  this order: KV cache (the oldest tokens; or, with a window, every token older than the last
  ``kv_window`` of each sequence), then MoE experts, then the other weights. The devices of a
  node share the tiers' capacity (:class:`~genmodel._hardware.AttachedTier`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from genmodel._engines import WHOLE_SEQUENCES, KvPool
from genmodel._errors import InfeasibleError, require_ints
from genmodel._hardware import AttachedTier, Device
from genmodel._kvpool import engine_pool
from genmodel._model import ModelSpec
from genmodel._options import KV_BLOCK_TOKENS, NO_OFFLOAD, Offload
from genmodel._parallel import Plan
from genmodel._sizes import (
    activation_bytes_per_device,
    expert_bytes_per_device,
    kv_bytes_per_sequence,
    pool_kv_model,
    sliding_bind,
    split_kv_scale,
    weight_bytes_per_device,
)
from genmodel._units import GB, WEIGHT_DTYPE_BYTES, Num, maximum
from genmodel._workload import Precision

#: the kinds of bytes an offload moves, in the order they move
_SPILL_ORDER = ("kv", "experts", "weights")


@dataclass(frozen=True, slots=True, kw_only=True)
class TierUse:
    """Bytes one device keeps in one memory tier, and what the tier gives that device."""

    id: str
    medium: str
    capacity_bytes: float
    bandwidth_bytes_per_s: float
    weights_bytes: float = 0.0
    kv_bytes: float = 0.0
    activation_bytes: float = 0.0

    @property
    def bytes(self) -> float:
        """Everything the device keeps in this tier."""
        return self.weights_bytes + self.kv_bytes + self.activation_bytes

    @property
    def fits(self) -> bool:
        """Whether the bytes fit the device's share of the tier (a relative 1e-9 slack)."""
        return self.bytes <= self.capacity_bytes * (1 + 1e-9)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (bytes per device, capacity per device, bandwidth per device)."""
        return {
            "id": self.id,
            "medium": self.medium,
            "bytes_per_device": self.bytes,
            "weights_bytes_per_device": self.weights_bytes,
            "kv_cache_bytes_per_device": self.kv_bytes,
            "activation_bytes_per_device": self.activation_bytes,
            "capacity_bytes_per_device": self.capacity_bytes,
            "bandwidth_bytes_per_s": self.bandwidth_bytes_per_s,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Spill:
    """One kind of bytes ('kv', 'experts', 'weights') partly kept in an offload tier."""

    kind: str
    tier_id: str
    bytes: float
    #: the offloaded share of that kind's bytes
    frac: float
    bandwidth_bytes_per_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryExtras:
    """What a deployment keeps in memory beyond the model itself.

    Attributes:
        redundant_experts: extra expert replicas (EPLB) on top of the model's experts.
        draft: a speculative-decoding draft run on the same devices (its weights and KV count).
        draft_shares_vocab: the draft uses the target's embedding and LM head (an MTP block).
        kv_block_tokens: tokens per KV-cache block (paging); 1 = no block waste.
        shared_prefix_tokens: prompt tokens every sequence of a replica shares in the prefix cache.
        offload: the tiers that take what does not fit the device.
        sharing: devices of a node that share the offload tiers.
        kv_scale: what a token of the model's KV costs in the pool, as a share of its bytes (SGLang's
            split pools: :func:`~genmodel._sizes.split_kv_scale`; the draft's KV is not scaled).
    """

    redundant_experts: int = 0
    draft: ModelSpec | None = None
    draft_shares_vocab: bool = False
    kv_block_tokens: int = KV_BLOCK_TOKENS
    shared_prefix_tokens: int = 0
    offload: Offload = NO_OFFLOAD
    sharing: int = 1
    kv_scale: float = 1.0
    #: the activations an engine's profile run takes off the memory before it sizes the KV pool
    #: (:func:`~genmodel._kvpool.engine_pool`), in place of the batch's own; None: the batch's
    step_activation_bytes: float | None = None

    def __post_init__(self) -> None:
        require_ints(kv_block_tokens=self.kv_block_tokens, sharing=self.sharing)
        require_ints(minimum=0, shared_prefix_tokens=self.shared_prefix_tokens)


NO_EXTRAS = MemoryExtras()


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryUse:
    """Bytes per device by kind, against the device's capacity."""

    weights_bytes_per_device: float
    kv_cache_bytes_per_device: float
    activation_bytes_per_device: float
    capacity_bytes_per_device: float
    usable_bytes_per_device: float
    #: where the bytes live: the device's own memory first, then each offload tier
    tiers: tuple[TierUse, ...] = ()
    spills: tuple[Spill, ...] = ()
    #: routed-expert weights (a part of the weights)
    expert_bytes_per_device: float = 0.0
    #: one sequence's KV cache on one device (for swap times)
    kv_bytes_per_sequence: float = 0.0
    #: achieved bandwidth of the device's host link to the offload tiers (None: none named)
    host_link_bytes_per_s: float | None = None
    #: achieved bandwidth of the KV offload tier per device (None: no KV offload tier)
    kv_tier_bytes_per_s: float | None = None

    @property
    def total_bytes_per_device(self) -> float:
        """Weights + KV cache + activations, in every tier."""
        return (
            self.weights_bytes_per_device + self.kv_cache_bytes_per_device + self.activation_bytes_per_device
        )

    @property
    def device_bytes_per_device(self) -> float:
        """Bytes in the device's own memory (HBM, GDDR or unified LPDDR)."""
        return self.tiers[0].bytes if self.tiers else self.total_bytes_per_device

    @property
    def offloaded_bytes_per_device(self) -> float:
        """Bytes kept in offload tiers."""
        return self.total_bytes_per_device - self.device_bytes_per_device

    @property
    def fits(self) -> bool:
        """Whether the device's own memory holds its share and every offload tier its share."""
        if not self.tiers:
            return self.total_bytes_per_device <= self.usable_bytes_per_device
        return all(t.fits for t in self.tiers)

    def spill_frac(self, kind: str) -> float:
        """The offloaded share of ``kind`` ('kv', 'experts', 'weights'; 'weights' excludes experts)."""
        return sum(s.frac for s in self.spills if s.kind == kind)

    def transfer_time_s(
        self, *, kv: Num, experts: Num, weights: Num, expert_hit_rate: float | None = None
    ) -> Num:
        """Time to move one step's offloaded bytes between the device and its tiers.

        Args:
            kv: KV-cache bytes the step reads and writes; the offloaded share crosses the link.
            experts: routed-expert weight bytes the step reads; the misses cross the link.
            weights: other weight bytes the step reads; the offloaded share crosses the link.
            expert_hit_rate: touched experts found on the device; None = the share kept there.

        Each tier moves its bytes at its bandwidth per device, and all of them share the device's
        host link: the time is the larger of the slowest tier and the host link.
        """
        per_tier: dict[str, Num] = {}
        total: Num = 0.0
        step = {"kv": kv, "experts": experts, "weights": weights}
        for spill in self.spills:
            share = spill.frac
            if spill.kind == "experts" and expert_hit_rate is not None:
                share = 1 - expert_hit_rate
            moved = step[spill.kind] * share
            total += moved
            per_tier[spill.tier_id] = per_tier.get(spill.tier_id, 0.0) + moved / spill.bandwidth_bytes_per_s
        if not per_tier:
            return 0.0
        slowest: Num = 0.0 if self.host_link_bytes_per_s is None else total / self.host_link_bytes_per_s
        for seconds in per_tier.values():
            slowest = maximum(slowest, seconds)
        return slowest

    def swap_time_s(self) -> float | None:
        """Time to move one sequence's KV cache to the KV offload tier or back (a context switch);
        None without a KV offload tier."""
        if self.kv_tier_bytes_per_s is None:
            return None
        return self.kv_bytes_per_sequence / self.kv_tier_bytes_per_s


def paged_tokens(tokens: int, block_tokens: int) -> int:
    """Tokens a sequence's KV blocks hold: ``tokens`` rounded up to whole blocks."""
    return -(-tokens // block_tokens) * block_tokens


def memory_use(
    model: ModelSpec,
    device: Device,
    plan: Plan,
    precision: Precision,
    *,
    batch: int,
    input_tokens: int,
    output_tokens: int,
    extras: MemoryExtras = NO_EXTRAS,
) -> MemoryUse:
    """Memory per device for ``batch`` sequences (whole deployment) of input+output tokens.

    ``extras`` adds redundant expert replicas, a speculative-decoding draft, KV paging and a
    shared prefix, and names the tiers that take what does not fit.
    """
    lengths = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    return _Footprint(model, device, plan, precision, **lengths, extras=extras).use(batch)


#: what a :class:`_Footprint` holds that does not depend on the lengths: weight and expert bytes
#: per device, the usable bytes, the spill tiers (kind, tier, bandwidth and capacity per device),
#: the host link's and the KV tier's bandwidth
_Static = tuple[
    Num, float, float, tuple[tuple[str, AttachedTier, float, float], ...], float | None, float | None
]


def _static(
    model: ModelSpec, device: Device, plan: Plan, precision: Precision, extras: MemoryExtras
) -> _Static:
    """The length-free part of a footprint (:data:`_Static`)."""
    r = extras.redundant_experts
    weights = weight_bytes_per_device(model, precision, plan, redundant_experts=r)
    experts = expert_bytes_per_device(model, precision, plan, redundant_experts=r)
    draft = extras.draft
    if draft is not None:
        draft_plan = dataclasses.replace(plan, pp=1, ep=plan.ep if draft.moe is not None else 1)
        weights += weight_bytes_per_device(draft, precision, draft_plan, redundant_experts=r)
        experts += expert_bytes_per_device(draft, precision, draft_plan, redundant_experts=r)
        if extras.draft_shares_vocab:
            vocab = draft.vocab_size * draft.hidden_size / plan.tp
            head = 0.0 if draft.tie_word_embeddings else precision.for_module("lm_head").weight_bytes
            weights -= vocab * (precision.for_module("embedding").weight_bytes + head)
    offload, sharing = extras.offload, extras.sharing
    # the tier each kind of bytes spills to, in spill order, with what it gives one device
    spill_tiers = tuple(
        (kind, tier, tier.bandwidth_per_device(device, sharing), tier.capacity_per_device(sharing))
        for kind in _SPILL_ORDER
        if (tier := offload.tier_for(kind)) is not None
    )
    host = None
    if offload.any and device.host is not None:
        host = device.host.link.bandwidth_bytes_per_s * device.efficiency.offload_link_frac
    kv_tier = None if offload.kv is None else offload.kv.bandwidth_per_device(device, sharing)
    return weights, experts, device.usable_memory_bytes, spill_tiers, host, kv_tier


class _Footprint:
    """What :func:`memory_use` needs that does not depend on the batch, computed once (for the
    several batches :func:`max_batch` tries); :meth:`use` does the rest, in the same order."""

    def __init__(
        self,
        model: ModelSpec,
        device: Device,
        plan: Plan,
        precision: Precision,
        base: _Footprint | None = None,
        /,
        *,
        input_tokens: int,
        output_tokens: int,
        extras: MemoryExtras,
    ) -> None:
        self.model, self.device, self.plan, self.precision = model, device, plan, precision
        self.input_tokens, self.extras = input_tokens, extras
        context = input_tokens + output_tokens
        self.context = context
        block = extras.kv_block_tokens
        shared = min(extras.shared_prefix_tokens, input_tokens) // block * block  # whole blocks only
        own = paged_tokens(context - shared, block)  # tokens each sequence keeps for itself

        made: dict[tuple[bool, int, int], float] = {}  # (a sequence without a shared prefix: twice)

        def kv_of(m: ModelSpec, tokens: int, pp: int = 1) -> float:
            if not tokens:  # (no shared prefix: no bytes, as the sum over no tokens gives)
                return 0.0
            key = (m is model, tokens, pp)  # (the model's or the draft's)
            if key not in made:
                scale = extras.kv_scale if m is model else 1.0
                made[key] = scale * float(
                    kv_bytes_per_sequence(m, precision, tokens, tp=plan.tp, cp=plan.cp, pp=pp)
                )
            return made[key]

        def kv_parts(m: ModelSpec, pp: int = 1) -> tuple[float, float, float | None]:
            """(KV bytes of the shared prefix, of a sequence with it, of the recent window)."""
            window = extras.offload.kv_window
            recent = None
            if window is not None and window < context:
                recent = kv_of(m, paged_tokens(window, block), pp)
            return kv_of(m, shared, pp), kv_of(m, shared + own, pp), recent

        self.kv_model = kv_parts(model, plan.pp)
        per_sequence = kv_of(model, paged_tokens(context, block), plan.pp)
        draft = extras.draft
        self.kv_draft: tuple[float, float, float | None] | None = None
        if draft is not None:
            self.kv_draft = kv_parts(draft)
            per_sequence += kv_of(draft, paged_tokens(context, block))
        self.per_sequence = per_sequence
        # what does not depend on the lengths (a footprint of other lengths shares it)
        static = _static(model, device, plan, precision, extras) if base is None else base.static
        self.static: _Static = static
        self.weights, self.experts, self.usable, self.spill_tiers, self.host, self.kv_tier_bytes_per_s = (
            static
        )

    def use(self, batch: int) -> MemoryUse:
        """:func:`memory_use` at ``batch`` sequences (whole deployment)."""
        kv, kv_forced, act = self._batch_bytes(batch)
        weights = self.weights
        tiers, spills = self._place(
            weights=float(weights), experts=self.experts, kv=kv, kv_forced=kv_forced, activations=float(act)
        )
        return MemoryUse(
            weights_bytes_per_device=float(weights),
            kv_cache_bytes_per_device=kv,
            activation_bytes_per_device=float(act),
            capacity_bytes_per_device=self.device.memory_capacity_bytes,
            usable_bytes_per_device=self.usable,
            tiers=tiers,
            spills=spills,
            expert_bytes_per_device=self.experts,
            kv_bytes_per_sequence=self.per_sequence,
            host_link_bytes_per_s=self.host,
            kv_tier_bytes_per_s=self.kv_tier_bytes_per_s,
        )

    def fits(self, batch: int) -> bool:
        """``use(batch).fits``: without offload tiers (nothing is moved, the device's own memory
        holds every byte), the same sum and comparison without placing the bytes in tiers."""
        if self.spill_tiers or self.extras.offload.kv is not None:
            return self.use(batch).fits
        kv, _, act = self._batch_bytes(batch)
        # (TierUse.fits of the one tier: its weights, KV and activation bytes against its capacity)
        return float(self.weights) + kv + float(act) <= self.usable * (1 + 1e-9)

    def excess(self, batch: int) -> float:
        """``use(batch)``'s total bytes less the usable bytes (what max_batch's secant steps need,
        without placing the bytes in tiers)."""
        kv, _, act = self._batch_bytes(batch)
        return float(self.weights) + kv + float(act) - self.usable

    def _batch_bytes(self, batch: int) -> tuple[float, float, Num]:
        """(KV bytes, KV bytes older than the offload window, activation bytes) at ``batch``."""
        model, plan = self.model, self.plan
        seqs = plan.seqs_per_replica(batch)

        def kv_replica(parts: tuple[float, float, float | None]) -> tuple[float, float]:
            """(KV bytes of the replica's sequences, bytes older than the offload window)."""
            prefix, full, recent = parts
            total = prefix + seqs * (full - prefix)
            if recent is None:
                return total, 0.0
            return total, max(total - seqs * recent, 0.0)

        kv, kv_forced = kv_replica(self.kv_model)
        profiled = self.extras.step_activation_bytes  # (an engine's pool: its profile run's)
        act: Num = profiled if profiled is not None else 0.0
        if profiled is None:
            act = activation_bytes_per_device(
                model,
                self.precision,
                plan,
                seqs_per_replica=seqs,
                prefill_tokens=seqs * self.input_tokens / plan.cp,
            )
        if self.kv_draft is not None:
            draft_kv, draft_forced = kv_replica(self.kv_draft)
            kv += draft_kv
            kv_forced += draft_forced
        return kv, kv_forced, act

    def _place(
        self, *, weights: float, experts: float, kv: float, kv_forced: float, activations: float
    ) -> tuple[tuple[TierUse, ...], tuple[Spill, ...]]:
        """Put bytes in the device's memory and move what does not fit to the offload tiers."""
        device, offload = self.device, self.extras.offload
        usable = self.usable
        have = {"kv": kv, "experts": experts, "weights": weights - experts}
        over = weights + kv + activations - usable
        moved: dict[str, float] = dict.fromkeys(_SPILL_ORDER, 0.0)
        if offload.kv is not None and kv_forced > 0:
            moved["kv"] = kv_forced
            over -= kv_forced
        for kind, *_ in self.spill_tiers:
            if over <= 0:
                break
            step = min(over, have[kind] - moved[kind])
            moved[kind] += step
            over -= step
        local = TierUse(
            id=device.id,
            medium=device.memory_technology,
            capacity_bytes=usable,
            bandwidth_bytes_per_s=device.memory_bandwidth_bytes_per_s,
            weights_bytes=weights - moved["experts"] - moved["weights"],
            kv_bytes=kv - moved["kv"],
            activation_bytes=activations,
        )
        tiers: dict[str, TierUse] = {}
        spills = []
        for kind, attached, bandwidth, capacity in self.spill_tiers:
            use = tiers.get(attached.label) or TierUse(
                id=attached.label,
                medium=attached.tier.medium,
                capacity_bytes=capacity,
                bandwidth_bytes_per_s=bandwidth,
            )
            if kind == "kv":
                use = dataclasses.replace(use, kv_bytes=use.kv_bytes + moved[kind])
            else:
                use = dataclasses.replace(use, weights_bytes=use.weights_bytes + moved[kind])
            tiers[attached.label] = use
            if moved[kind] > 0:
                frac = moved[kind] / have[kind]
                spills.append(
                    Spill(
                        kind=kind,
                        tier_id=attached.label,
                        bytes=moved[kind],
                        frac=frac,
                        bandwidth_bytes_per_s=bandwidth,
                    )
                )
        return (local, *tiers.values()), tuple(spills)


def require_one_sequence(
    model: ModelSpec,
    device: Device,
    plan: Plan,
    precision: Precision,
    *,
    input_tokens: int,
    output_tokens: int,
    extras: MemoryExtras = NO_EXTRAS,
) -> None:
    """Raise :class:`InfeasibleError` unless one sequence per replica fits in memory."""
    lengths = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    _require_one(_Footprint(model, device, plan, precision, **lengths, extras=extras))


def _published(footprint: _Footprint) -> str:
    """' (published checkpoints of MODEL: D1, D2)', the precisions of the model's published
    checkpoints narrower than the weights asked (gpt-oss-120b at bf16: mxfp4, fp4), widest first;
    '' when the weights asked are one of them, or none is narrower."""
    model, asked = footprint.model, footprint.precision.weight_dtype
    published = [d for d, _ in model.kept_modules]
    narrower = [d for d in published if WEIGHT_DTYPE_BYTES[d] < WEIGHT_DTYPE_BYTES[asked]]
    if asked in published or not narrower:
        return ""
    narrower.sort(key=lambda d: -WEIGHT_DTYPE_BYTES[d])
    return f" (published checkpoints of {model.id}: {', '.join(narrower)})"


def _require_one(footprint: _Footprint) -> None:
    """:func:`require_one_sequence` of a footprint."""
    if footprint.fits(footprint.plan.dp):
        return
    one = footprint.use(footprint.plan.dp)
    if not one.fits:
        model, device, context = footprint.model, footprint.device, footprint.context
        full = [t for t in one.tiers[1:] if not t.fits]
        if full:
            t = full[0]
            raise InfeasibleError(
                [
                    f"memory tier={t.id} would hold {t.bytes / GB:.1f} GB per device for one sequence "
                    f"of {context} tokens per replica, more than its "
                    f"{t.capacity_bytes / GB:.1f} GB share per device; attach more of it (ID:N) "
                    "or use a larger tier"
                ]
            )
        raise InfeasibleError(
            [
                f"model={model.id} needs {one.device_bytes_per_device / GB:.1f} GB per device for one "
                f"sequence of {context} tokens (weights "
                f"{one.weights_bytes_per_device / GB:.1f} GB), more than the usable "
                f"{one.usable_bytes_per_device / GB:.1f} GB of hardware={device.id}; "
                f"raise tp, pp or ep (with dp), use a narrower weight dtype{_published(footprint)}, "
                "or offload (--weight-offload, --kv-offload)"
            ]
        )


def max_batch(
    model: ModelSpec,
    device: Device,
    plan: Plan,
    precision: Precision,
    *,
    input_tokens: int,
    output_tokens: int,
    extras: MemoryExtras = NO_EXTRAS,
) -> int:
    """The largest batch (whole deployment, a multiple of ``dp``) whose memory fits.

    Raises:
        InfeasibleError: not even one sequence per replica fits.
    """
    lengths = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    return _max_batch(_Footprint(model, device, plan, precision, **lengths, extras=extras))


def _max_batch(footprint: _Footprint) -> int:
    """:func:`max_batch` of a footprint."""
    _require_one(footprint)
    plan = footprint.plan

    def fits(seqs: int) -> bool:
        return footprint.fits(seqs * plan.dp)

    # without offload the bytes grow (piecewise) linearly in the batch: a few secant steps find
    # the boundary, which is then checked on both sides
    if not footprint.extras.offload.any:
        a, b = 1, 2
        fa = footprint.excess(plan.dp)  # (one sequence per replica: its total less the usable bytes)
        fb = footprint.excess(b * plan.dp)
        for _ in range(4):
            if fb <= fa:
                break
            guess = max(1, math.floor(b - fb * (b - a) / (fb - fa)))
            if guess == b:
                break
            a, fa = b, fb
            b = guess
            fb = footprint.excess(b * plan.dp)
        if fb <= 0 and not fits(b + 1):
            return b * plan.dp
    # otherwise memory still grows monotonically with the batch: bracket the boundary, bisect it
    lo, hi = 1, 2
    while fits(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo * plan.dp


def engine_max_batch(
    model: ModelSpec,
    device: Device,
    plan: Plan,
    precision: Precision,
    *,
    input_tokens: int,
    output_tokens: int,
    pool: KvPool = WHOLE_SEQUENCES,
    extras: MemoryExtras = NO_EXTRAS,
) -> tuple[Device, int, int]:
    """(``device`` as the engine's KV pool sees it, the most sequences it runs at once, the output
    tokens each holds): one whole sequence per replica must fit, and each running sequence holds its
    prompt and what the engine's admission keeps of its output (``pool``,
    :meth:`~genmodel._engines.KvPool.held_output_tokens`), in the pool the engine sizes
    (:func:`~genmodel._kvpool.engine_pool`: the memory its fraction gives less the weights and its
    profile run's activations, as the simulation's). The default pool is whole sequences beside the
    running batch's activations: :func:`max_batch`.

    Raises:
        InfeasibleError: not even one whole sequence per replica fits.
    """
    whole = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    # a sliding-window layer holds what the engine's pool keeps of it (its window and a block, or all);
    # SGLang's split pools count the full-layer pool's tokens, each at its share of a token's bytes
    scale = split_kv_scale(model, pool.swa_ratio, plan.tp)
    held = min(pool.held_output_tokens(output_tokens), output_tokens)
    bind = sliding_bind(model, pool.swa_ratio, input_tokens, output_tokens, held)  # (SGLang's sliding pool)
    model = pool_kv_model(model, pool.swa_slack)
    if scale != 1.0:
        extras = dataclasses.replace(extras, kv_scale=scale)
    # the pool both serving models size (genmodel._kvpool): the memory of the engine's fraction less
    # the weights and its profile run's activations
    base = _Footprint(model, device, plan, precision, **whole, extras=extras)
    weights = float(base.weights)
    size = engine_pool(
        model, device, plan, precision, pool, weights_bytes=weights, prompt_tokens=input_tokens
    )
    if size.activation_bytes is not None:
        extras = dataclasses.replace(extras, step_activation_bytes=size.activation_bytes)
    same = size.device is device  # (then the length-free part is the base's)
    device = size.device
    footprint = _Footprint(model, device, plan, precision, base if same else None, **whole, extras=extras)
    if held < output_tokens:  # (one whole sequence must fit; the pool holds less of each)
        _require_one(footprint)
        extras = dataclasses.replace(extras, kv_scale=extras.kv_scale * bind) if bind > 1 else extras
        lengths = (input_tokens, held)
        footprint = _Footprint(
            model,
            device,
            plan,
            precision,
            footprint,
            input_tokens=lengths[0],
            output_tokens=lengths[1],
            extras=extras,
        )
    return device, _max_batch(footprint), held
