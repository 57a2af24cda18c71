"""Run options: how the serving stack runs a plan beyond its parallel degrees, each defined once.

A :class:`RunOptions` holds the flat options and two parts, :class:`Speculation` and
:class:`Offload`. Every leaf field carries its edge spelling in its metadata (an
:class:`OptionSpec`): the keyword of :func:`genmodel.estimate` and column of a validation CSV, the
CLI flag, the help text and the type of the text value. :data:`OPTION_SPECS` lists them in field
order; the CLI's flags, the validation CSV's option columns and ``estimate``'s keywords are all
derived from it, so a new option is one field here plus its help text.

Modelling assumptions: none; the formulas that read these options cite their sources.
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from genmodel._collectives import ALGORITHMS
from genmodel._errors import SpecError, UnknownKeywordError, require_ints
from genmodel._hardware import AttachedTier
from genmodel._model import ModelSpec
from genmodel._ops import COMBINE_OVERLAPS
from genmodel._parallel import check_expert_options
from genmodel._profiles import Profile
from genmodel._system import System
from genmodel._workload import KEEP_CHECKPOINT, parse_keep_modules

#: vLLM's default KV-cache block (``--block-size`` 16 tokens; vllm/config CacheConfig).
KV_BLOCK_TOKENS = 16
#: the bounds of the options at the edges (CLI flags, validation CSV columns, ``estimate``'s keywords):
#: far beyond any deployment, but small enough that no search or loop runs away on them
MAX_DEVICES = 1_000_000
MAX_TOKENS = 10_000_000
MAX_DRAFT_TOKENS = 16
MAX_MICROBATCHES = 64
MAX_MOE_IMBALANCE = 1_000.0

_TIER_HELP = (
    "Memory tier id (genmodel hw list), ID:N for N per node, or 'host', that takes the {} that do not fit."
)


#: ``type`` (in :class:`OptionSpec`, its field ``type`` hides the builtin)
_Type = type
#: what text a loaded option takes, by :attr:`OptionSpec.load`
_LOADED = {
    "tier": "a memory tier id, ID:N or 'host'",
    "model": "a model id or config.json path",
    "profile": "a profile id or YAML file",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionSpec:
    """How one run option is spelled at the edges (keyword, CSV column, CLI flag) and read from text.

    Attributes:
        name: the keyword of :func:`genmodel.estimate` and the validation CSV column.
        path: the field's path from :class:`RunOptions` (``("offload", "kv")``).
        flag: the CLI flag (``--kv-offload``; booleans also get ``--no-...``).
        help: one line for ``--help``.
        type: the type of the value as given at the edge (int, float, str or bool).
        default: the value at the edge that leaves the option at its default.
        load: how ``genmodel._api`` turns a text value into the field's value: ``"tier"`` (a memory
            tier id, ``ID:N`` or ``host``) or ``"model"`` (a model id); None: as given.
        bounds: the least and the most a numeric value may be (inclusive); None: no bounds.
    """

    name: str
    path: tuple[str, ...]
    flag: str
    help: str
    type: type
    default: Any
    load: str | None = None
    #: the switch of an optional part: its ``default`` (e.g. 0 draft tokens) means no part at all
    switch: bool = False
    bounds: tuple[float, float] | None = None
    #: the field's own type where ``load`` makes it from text (a :class:`Profile`, a
    #: :class:`ModelSpec`, an :class:`AttachedTier`), which is given as it is too
    value_type: _Type | None = None

    def check(self, value: Any) -> None:
        """Refuse a value of a bounded option that is not finite or outside :attr:`bounds`, or not a
        number at all; a boolean option's value that is no bool (``'yes'``); a loaded option's that
        is neither text (a path too) nor :attr:`value_type`. None, where an option may be unset,
        passes.

        Raises:
            SpecError: ``name=value must be ...`` with the bounds or the types taken.
        """
        if value is None:
            return
        if self.value_type is not None and not isinstance(value, str | os.PathLike | self.value_type):
            what, kind = _LOADED.get(self.load or "", "an id"), self.value_type.__name__
            article = "an" if kind[0] in "AEIOU" else "a"
            raise SpecError(f"{self.name}={value!r} must be {what}, or {article} {kind}")
        if self.type is bool and not isinstance(value, bool):
            raise SpecError(f"{self.name}={value!r} must be True or False")
        if self.bounds is None:
            return
        low, high = self.bounds
        if isinstance(value, bool) or not isinstance(value, int | float):  # '0.5' compared as text
            raise SpecError(f"{self.name}={value!r} must be a number between {_show(low)} and {_show(high)}")
        if (isinstance(value, float) and not math.isfinite(value)) or not low <= value <= high:
            raise SpecError(f"{self.name}={value!r} must be between {_show(low)} and {_show(high)}")

    def parse(self, text: str) -> Any:
        """The value of ``text`` (a CSV cell): as the type says; booleans are 1, true or yes.

        Raises:
            ValueError: ``text`` is not a value of the type.
        """
        if self.type is bool:
            return text.strip().lower() in ("1", "true", "yes")
        return self.type(text.strip())

    @property
    def flags(self) -> str:
        """The CLI declaration: the flag, and ``--no-...`` after a slash for a boolean."""
        return f"{self.flag}/--no-{self.flag[2:]}" if self.type is bool else self.flag


def _show(bound: float) -> str:
    """A bound as people read it: 1,000,000 or 0.5."""
    return f"{int(bound):,}" if float(bound).is_integer() else f"{bound:g}"


def option(
    default: Any,
    *,
    help: str,
    flag: str | None = None,
    name: str | None = None,
    load: str | None = None,
    off: Any = dataclasses.MISSING,
    bounds: tuple[float, float] | None = None,
) -> Any:
    """A run-option field with its edge spelling (see :class:`OptionSpec`).

    Args:
        default: the field's default.
        help: the one-line help text.
        flag: the CLI flag (default ``--`` and the name with dashes).
        name: the keyword and CSV column (default: the field name).
        load: see :attr:`OptionSpec.load`.
        off: for the switch of an optional part (``draft_tokens`` of :class:`Speculation`): the
            edge value that means no part at all; it is also the edge default.
        bounds: the least and the most a numeric value may be at the edges (see
            :meth:`OptionSpec.check`).
    """
    meta = {"help": help, "flag": flag, "name": name, "load": load, "off": off, "bounds": bounds}
    return field(default=default, metadata={"option": meta})


def part(cls: type, default: Any) -> Any:
    """A field holding a part of the options (a dataclass of options; None: an optional part off)."""
    return field(default=default, metadata={"part": cls})


@dataclass(frozen=True, slots=True, kw_only=True)
class Speculation:
    """Speculative decoding: k drafted tokens per step, each accepted with probability a.

    ``draft_model`` None means the target's own multi-token-prediction block (DeepSeek MTP).
    """

    draft_tokens: int = option(
        1, help="Speculative tokens per step (0 = off; MTP).", off=0, bounds=(0, MAX_DRAFT_TOKENS)
    )
    acceptance_rate: float = option(
        0.7,
        flag="--acceptance",
        help="Acceptance rate per drafted token (0.7: CloudMatrix-Infer with MTP).",
        bounds=(0, 1),
    )
    draft_model: ModelSpec | None = option(
        None, load="model", help="Draft model id (default: the model's MTP block)."
    )

    def __post_init__(self) -> None:
        require_ints(draft_tokens=self.draft_tokens)
        if not 0 <= self.acceptance_rate <= 1:
            raise SpecError(f"acceptance_rate={self.acceptance_rate!r} must be in [0, 1]")

    @property
    def tokens_per_step(self) -> float:
        """Expected tokens a verify step yields: (1 - a^(k+1)) / (1 - a) (Leviathan et al. 2023, Eq. 1)."""
        a, k = self.acceptance_rate, self.draft_tokens
        return float(k + 1) if a == 1 else (1 - a ** (k + 1)) / (1 - a)


@dataclass(frozen=True, slots=True, kw_only=True)
class Offload:
    """Where what does not fit the device goes, and how its transfers run.

    Attributes:
        kv: tier for KV cache that does not fit (FlexGen, Sheng et al. 2023; vLLM CPU swap space).
        weights: tier for weights that do not fit, streamed layer by layer each step
            (DeepSpeed-Inference ZeRO-Inference, Aminabadi et al. 2022; TPI-LLM).
        experts: tier for MoE experts that do not fit; the device keeps the rest as a cache
            (EdgeMoE, HOBBIT, HybriMoE). Without it, experts go to ``weights``' tier.
        kv_window: keep only each sequence's last ``kv_window`` tokens on the device; older KV
            lives in the ``kv`` tier even when it would fit.
        expert_hit_rate: fraction of touched experts found on the device; None = the fraction
            of experts kept there (uniform routing).
        overlap: transfers are prefetched layer by layer behind compute (only the excess is
            exposed); False = each transfer waits in line (on-demand fetch).
    """

    kv: AttachedTier | None = option(
        None, name="kv_offload", load="tier", help=_TIER_HELP.format("KV cache bytes")
    )
    weights: AttachedTier | None = option(
        None, name="weight_offload", load="tier", help=_TIER_HELP.format("weights")
    )
    experts: AttachedTier | None = option(
        None, name="expert_offload", load="tier", help=_TIER_HELP.format("MoE experts")
    )
    kv_window: int | None = option(
        None, help="Keep only each sequence's last N tokens of KV on the device.", bounds=(1, MAX_TOKENS)
    )
    expert_hit_rate: float | None = option(
        None, help="Touched experts found on the device (default: share kept).", bounds=(0, 1)
    )
    overlap: bool = option(True, name="offload_overlap", help="Prefetch offloaded bytes behind compute.")

    def __post_init__(self) -> None:
        w = self.kv_window
        if w is not None:
            require_ints(kv_window=w)
            if self.kv is None:
                raise SpecError(f"kv_window={w} needs a KV offload tier (kv_offload)")
        h = self.expert_hit_rate
        if h is not None and not 0 <= h <= 1:
            raise SpecError(f"expert_hit_rate={h!r} must be in [0, 1]")

    def tier_for(self, kind: str) -> AttachedTier | None:
        """The tier that takes ``kind`` ('kv', 'experts' or 'weights'), or None."""
        if kind == "experts":
            return self.experts or self.weights
        return self.kv if kind == "kv" else self.weights

    @property
    def any(self) -> bool:
        """Whether any tier is named."""
        return any(t is not None for t in (self.kv, self.weights, self.experts))


NO_OFFLOAD = Offload()


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """How the serving stack runs a plan, beyond its parallel degrees.

    Attributes:
        comm_overlap_frac: fraction of communication hidden behind compute; None = the system's.
        overlap_microbatches: split each pass into this many microbatches whose collectives
            overlap the others' compute (SGLang two-batch overlap, CloudMatrix-Infer: 2); each
            microbatch reads the weights again. 1 = no split (``comm_overlap_frac`` applies).
        combine_overlap: SGLang's single-batch overlap: a decode step's expert-parallel combine runs
            beside the shared experts (``shared``) or also the routed experts' down GEMM (``down``),
            hiding up to their time (:func:`genmodel._ops.combine_overlap_s`); ``none``: it does not.
            Excludes ``overlap_microbatches`` > 1 (two-batch overlap), as SGLang does.
        redundant_experts: extra expert replicas (EPLB) spread over the expert-parallel devices.
        moe_imbalance: busiest expert group's load over the mean; None = uniform-routing estimate.
        speculation: speculative decoding / MTP, or None.
        disaggregated: prefill and decode run on separate devices; the KV cache moves between them.
        allreduce_algorithm: nvls (NCCL's default: in-switch reduction where the fabric has it,
            else ring), ring, tree, direct or auto (the fastest) for all-reduces.
        kv_block_tokens: tokens per paged KV-cache block (block waste); 1 = no paging.
        prefix_hit_rate: fraction of each prompt found in the prefix cache: its prefill is skipped
            and its KV is stored once per replica.
        sparse_attention_frac: fraction of the cached KV a decode step reads (top-k attention).
        prefill_chunk: prefill in chunks of this many tokens per sequence (None: one pass).
        allow_long_context: allow input + output tokens beyond the model's maximum context
            (``max_position_embeddings``); the estimate then carries a note. Off: such a context
            is refused, since the model was not trained on it and its quality there depends on
            RoPE scaling, which genmodel does not model.
        keep_modules: the modules whose weights stay in another precision than the weight dtype
            (:func:`genmodel._workload.parse_keep_modules`): ``checkpoint`` (the default: those the
            model's published checkpoint of the weight dtype keeps, ``ModelSpec.kept_modules``),
            ``none`` (every GEMM in the weight precision), or ``module=dtype`` pairs laid over
            the checkpoint's (:func:`genmodel._workload.keep_rule`).
        profile: the efficiency profile applied to the device (:mod:`genmodel._profiles`); None:
            the device's own profile for the serving engine where the database has one, else the
            device file's values (the ``default`` profile).
        offload: tiers for what does not fit the device (KV, weights, experts).
    """

    comm_overlap_frac: float | None = option(
        None,
        flag="--overlap",
        help="Fraction of communication hidden behind compute (default: system's).",
        bounds=(0, 1),
    )
    overlap_microbatches: int = option(
        1,
        flag="--microbatches",
        help="Overlapping microbatches per pass (2 = two-batch overlap).",
        bounds=(1, MAX_MICROBATCHES),
    )
    combine_overlap: str = option(
        "none",
        help="Single-batch overlap (SGLang): the decode step's MoE combine runs beside the shared experts "
        "(shared) or the down GEMM and the shared experts (down)|none.",
    )
    redundant_experts: int = option(0, help="Extra expert replicas (EPLB).", bounds=(0, MAX_DEVICES))
    moe_imbalance: float | None = option(
        None,
        help="Busiest/mean expert load (default: uniform-routing estimate).",
        bounds=(1, MAX_MOE_IMBALANCE),
    )
    speculation: Speculation | None = part(Speculation, None)
    disaggregated: bool = option(False, help="Prefill and decode on separate devices (adds the KV transfer).")
    allreduce_algorithm: str = option(
        "nvls",
        flag="--allreduce",
        help="All-reduce algorithm: nvls (NCCL's default: NVLink SHARP where the switch has it, else ring)"
        "|ring|tree|direct|auto.",
    )
    kv_block_tokens: int = option(
        KV_BLOCK_TOKENS,
        flag="--kv-block",
        help="Tokens per paged KV block (vLLM: 16; 1 = no block waste).",
        bounds=(1, MAX_TOKENS),
    )
    prefix_hit_rate: float = option(
        0.0,
        flag="--prefix-hit",
        help="Fraction of each prompt found in the prefix cache [0, 1).",
        bounds=(0, 1),
    )
    sparse_attention_frac: float = option(
        1.0,
        flag="--sparse-attention",
        help="Fraction of the cached KV a decode step reads (top-k/Quest).",
        bounds=(0, 1),
    )
    prefill_chunk: int | None = option(
        None, help="Chunked prefill: tokens per chunk (default: one pass).", bounds=(1, MAX_TOKENS)
    )
    allow_long_context: bool = option(
        False,
        help="Allow input + output tokens beyond the model's maximum context "
        "(max_position_embeddings; RoPE scaling is not modelled).",
    )
    keep_modules: str = option(
        KEEP_CHECKPOINT,
        help="Modules whose weights stay in another precision, as a published quantised checkpoint keeps "
        "them: 'checkpoint' (the model's checkpoint of the weight dtype, `genmodel models show`), 'none' "
        "(every GEMM in the weight dtype), or module=dtype pairs over the checkpoint's (o_proj=fp4; "
        "modules: attention, lm_head, embedding, router or a projection such as q_b_proj).",
    )
    profile: Profile | None = option(
        None,
        load="profile",
        help="Efficiency profile: an id (hardware_db/profiles/) or a YAML file (default: the device's own).",
    )
    offload: Offload = part(Offload, NO_OFFLOAD)

    def __post_init__(self) -> None:
        require_ints(overlap_microbatches=self.overlap_microbatches, kv_block_tokens=self.kv_block_tokens)
        if self.prefill_chunk is not None:
            require_ints(prefill_chunk=self.prefill_chunk)
        if not 0 <= self.prefix_hit_rate < 1:
            raise SpecError(f"prefix_hit_rate={self.prefix_hit_rate!r} must be in [0, 1)")
        if not 0 < self.sparse_attention_frac <= 1:
            raise SpecError(f"sparse_attention_frac={self.sparse_attention_frac!r} must be in (0, 1]")
        f = self.comm_overlap_frac
        if f is not None and not 0 <= f <= 1:
            raise SpecError(f"comm_overlap_frac={f!r} must be in [0, 1]")
        check_expert_options(self.redundant_experts, self.moe_imbalance)
        parse_keep_modules(self.keep_modules)
        if self.combine_overlap not in COMBINE_OVERLAPS:
            choices = ", ".join(COMBINE_OVERLAPS)
            raise SpecError(f"combine_overlap={self.combine_overlap!r} must be one of {choices}")
        if self.combine_overlap != "none" and self.overlap_microbatches != 1:
            raise SpecError(
                "combine_overlap (single-batch overlap) needs overlap_microbatches=1 (no two-batch)"
            )
        if self.allreduce_algorithm not in ALGORITHMS:
            raise SpecError(
                f"allreduce_algorithm={self.allreduce_algorithm!r} must be one of {', '.join(ALGORITHMS)}"
            )

    def overlap_frac(self, system: System) -> float:
        """The communication overlap fraction in force: this run's, else the system's default."""
        return system.comm_overlap_frac if self.comm_overlap_frac is None else self.comm_overlap_frac


def _edge_type(hint: Any) -> type:
    """The text-level type of a field's annotation: ``float | None`` -> float."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    kind = args[0]
    assert isinstance(kind, type), hint
    return kind


def _specs(cls: type, path: tuple[str, ...] = ()) -> list[OptionSpec]:
    hints = typing.get_type_hints(cls)
    specs: list[OptionSpec] = []
    for f in dataclasses.fields(cls):
        if "part" in f.metadata:
            specs += _specs(f.metadata["part"], (*path, f.name))
            continue
        meta = f.metadata["option"]
        name = meta["name"] or f.name
        specs.append(
            OptionSpec(
                name=name,
                path=(*path, f.name),
                flag=meta["flag"] or "--" + name.replace("_", "-"),
                help=meta["help"],
                type=str if meta["load"] else _edge_type(hints[f.name]),
                default=f.default if meta["off"] is dataclasses.MISSING else meta["off"],
                load=meta["load"],
                switch=meta["off"] is not dataclasses.MISSING,
                bounds=meta["bounds"],
                value_type=_edge_type(hints[f.name]) if meta["load"] else None,
            )
        )
    return specs


#: Every run option in field order: the CLI flags, CSV columns and ``estimate`` keywords.
OPTION_SPECS: tuple[OptionSpec, ...] = tuple(_specs(RunOptions))
#: The options by keyword.
OPTION_NAMES: Mapping[str, OptionSpec] = MappingProxyType({s.name: s for s in OPTION_SPECS})
#: The parts of the options by field name (each a dataclass of options).
_PARTS: Mapping[str, type] = MappingProxyType(
    {f.name: f.metadata["part"] for f in dataclasses.fields(RunOptions) if "part" in f.metadata}
)
#: The switch of each optional part by part name: the option whose off value means no part.
_SWITCHES: Mapping[str, OptionSpec] = MappingProxyType({s.path[0]: s for s in OPTION_SPECS if s.switch})


def with_values(
    options: RunOptions, values: Mapping[str, Any], load: Callable[[OptionSpec, Any], Any] | None = None
) -> RunOptions:
    """``options`` with the leaves named in ``values`` (keywords of :data:`OPTION_SPECS`) replaced.

    An optional part that is off (None) is built from its class defaults and the values given,
    unless its switch (``draft_tokens``) is at its off value; a switch at its off value turns the
    part off. ``load`` turns an edge value into the field's value (a tier or model id into its
    spec); None keeps values as given.

    Raises:
        SpecError: a keyword that is not a run option, or a value the options reject.
    """
    unknown = sorted(set(values) - set(OPTION_NAMES))
    if unknown:
        flags = {s.flag[2:].replace("-", "_"): s.name for s in OPTION_SPECS}
        raise UnknownKeywordError(unknown[0], values[unknown[0]], OPTION_NAMES, flags)
    by_part: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        spec = OPTION_NAMES[name]
        spec.check(value)
        if load is not None and spec.load is not None and isinstance(value, str | os.PathLike):
            value = load(spec, os.fspath(value))
        by_part.setdefault(spec.path[0] if len(spec.path) > 1 else "", {})[spec.path[-1]] = value
    changes = by_part.pop("", {})
    for part_name, leaves in by_part.items():
        current = getattr(options, part_name)
        switch = _SWITCHES.get(part_name)
        # off: its switch given at the off value, or not given while the part is off
        off = switch is not None and (
            values[switch.name] == switch.default if switch.name in values else current is None
        )
        if off:
            _refuse_leaves_of_an_off_part(part_name, leaves, switch, values)
            changes[part_name] = None
        elif current is None:
            changes[part_name] = _PARTS[part_name](**leaves)
        else:
            changes[part_name] = dataclasses.replace(current, **leaves)
    return dataclasses.replace(options, **changes) if changes else options


def _refuse_leaves_of_an_off_part(
    part: str, leaves: Mapping[str, Any], switch: OptionSpec | None, values: Mapping[str, Any]
) -> None:
    """Refuse a value given (in ``values``, by keyword) for a part that its switch leaves off
    (``acceptance_rate`` without ``draft_tokens``): it would go unused, unchecked. A value at its
    edge default is no request (the CLI passes every flag's default on, and so may a caller).

    Raises:
        SpecError: ``acceptance_rate=0.5 needs draft_tokens of 1 or more ...``.
    """
    assert switch is not None
    specs = [s for s in OPTION_SPECS if s.path[0] == part and s is not switch and s.path[-1] in leaves]
    given = [s.name for s in specs if values[s.name] is not None and values[s.name] != s.default]
    if given:
        raise SpecError(
            f"{given[0]}={values[given[0]]!r} needs {switch.name} of 1 or more ({part} is off at "
            f"{switch.name}={switch.default!r})"
        )


#: the default run options (every knob at its default), the default argument of the functions that take them
DEFAULT_OPTIONS = RunOptions()
