"""Workload specifications: precisions per tensor class and scenarios (prompt/output lengths, SLOs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from genmodel._errors import SpecError, require_ints
from genmodel._units import (
    DTYPE_BYTES,
    WEIGHT_DTYPE_BYTES,
    Num,
    check_dtype,
    check_weight_dtype,
    maximum,
    plain_dtype,
)

#: The operator classes a quantised checkpoint may keep in another precision than its weight
#: format, with the operators (names of :func:`genmodel._ops.forward_ops`) of each: every attention
#: kind's projections, the LM head, the embedding table and the MoE router. An operator's own name
#: may be given as well, and wins over its class (``attention=bf16,o_proj=fp4``).
MODULE_CLASSES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "attention": ("qkv_proj", "q_proj", "q_a_proj", "q_b_proj", "kv_a_proj", "kv_b_proj", "o_proj"),
        "lm_head": ("lm_head",),
        "embedding": ("embedding",),
        "router": ("router",),
    }
)
#: each operator's class
_CLASS_OF: Mapping[str, str] = MappingProxyType({op: c for c, ops in MODULE_CLASSES.items() for op in ops})
#: operators that multiply by another one's weights: MLA's absorbed decode GEMMs hold kv_b_proj's
_WEIGHTS_OF: Mapping[str, str] = MappingProxyType({"q_absorb": "kv_b_proj", "v_absorb": "kv_b_proj"})
#: what ``keep_modules`` text may say instead of a rule
KEEP_CHECKPOINT = "checkpoint"
KEEP_NONE = "none"

KeepRule = tuple[tuple[str, str], ...]


def check_keep_rule(name: str, rule: KeepRule) -> KeepRule:
    """``rule`` (module or class, precision) pairs, each checked.

    Raises:
        SpecError: ``name: module='x' must be one of ...`` or a precision that is not a plain dtype.
    """
    for module, dtype in rule:
        if module not in MODULE_CLASSES and module not in _CLASS_OF:
            known = ", ".join(dict.fromkeys([*MODULE_CLASSES, *_CLASS_OF]))
            raise SpecError(f"{name}: module={module!r} must be one of {known}")
        check_dtype(f"{name}: {module}", dtype)
    return tuple((str(m), str(d)) for m, d in rule)


def parse_keep_modules(text: str) -> KeepRule | None:
    """The rule a ``keep_modules`` text gives: ``checkpoint`` (None: the published checkpoint's
    rule of the model, :attr:`~genmodel._model.ModelSpec.kept_modules`), ``none`` (() : every GEMM
    in the weight precision), or ``module=dtype`` pairs separated by commas (``attention=bf16,
    o_proj=fp4``; a module is a class of :data:`MODULE_CLASSES` or one of its operators), which
    :func:`keep_rule` lays over the checkpoint's.

    Raises:
        SpecError: ``keep_modules='...'`` with what was expected.
    """
    text = text.strip()
    if text == KEEP_CHECKPOINT:
        return None
    if text == KEEP_NONE:
        return ()
    pairs = [part.partition("=") for part in text.split(",")]
    if not text or any(not sep or not m.strip() or not d.strip() for m, sep, d in pairs):
        raise SpecError(
            f"keep_modules={text!r} must be '{KEEP_CHECKPOINT}', '{KEEP_NONE}' or module=dtype pairs "
            "separated by commas (attention=bf16,lm_head=bf16)"
        )
    return check_keep_rule(f"keep_modules={text!r}", tuple((m.strip(), d.strip()) for m, _, d in pairs))


def keep_rule(text: str, checkpoint: KeepRule) -> KeepRule:
    """The modules kept in another precision when a run says ``text`` (:func:`parse_keep_modules`)
    and the model's published checkpoint of the weight precision keeps ``checkpoint``: that rule,
    none, or the given pairs over it (a module given the weight precision is then not kept).

    Raises:
        SpecError: a malformed ``text``.
    """
    given = parse_keep_modules(text)
    if given is None or not given:
        return checkpoint if given is None else ()
    return tuple({**dict(checkpoint), **dict(given)}.items())


@dataclass(frozen=True, slots=True, kw_only=True)
class Precision:
    """Storage precision of weights, activations and the KV cache.

    A GEMM runs in the wider of the weight and activation precisions (W4A16 runs in fp16, W8A8 in
    fp8/int8), on the device's units for that precision or the next wider one it has. Weights may
    also be a quantised format with its scales (:data:`genmodel._units.WEIGHT_FORMATS`, such as
    llama.cpp's q4_0 or q4_k_m): they take the format's bytes per weight in memory and transfers,
    and the GEMM counts them as the format's plain precision (int4, int8).

    ``keep_modules`` names the operators whose weights stay in another precision, as published
    quantised checkpoints keep some modules wider (NVIDIA's NVFP4 DeepSeek-R1 keeps its attention
    projections in BF16: its ``hf_quant_config.json`` lists them in ``exclude_modules``): pairs
    of (class of :data:`MODULE_CLASSES` or operator name, precision). Such an operator's weights
    take that precision in memory and reads, its activations the wider of that and
    ``act_dtype``, and its GEMM runs in the wider of the two (:meth:`for_module`).
    """

    weight_dtype: str = "bf16"
    act_dtype: str = "bf16"
    kv_dtype: str = "bf16"
    keep_modules: KeepRule = ()

    def __post_init__(self) -> None:
        check_weight_dtype("weight_dtype", self.weight_dtype)
        check_dtype("act_dtype", self.act_dtype)
        check_dtype("kv_dtype", self.kv_dtype)
        object.__setattr__(self, "keep_modules", check_keep_rule("keep_modules", tuple(self.keep_modules)))

    def for_module(self, name: str) -> Precision:
        """The precisions operator ``name`` runs in: this one, unless :attr:`keep_modules` keeps
        it (by its name, else by its class) in another weight precision than ``weight_dtype``;
        then weights in that precision and activations in the wider of it and ``act_dtype``."""
        if not self.keep_modules:
            return self
        rules = dict(self.keep_modules)
        name = _WEIGHTS_OF.get(name, name)
        dtype = rules.get(name) or rules.get(_CLASS_OF.get(name, ""))
        if dtype is None or dtype == self.weight_dtype:
            return self
        act = max(dtype, self.act_dtype, key=DTYPE_BYTES.__getitem__)
        return Precision(weight_dtype=dtype, act_dtype=act, kv_dtype=self.kv_dtype)

    @property
    def kept_gemm_dtypes(self) -> tuple[str, ...]:
        """The GEMM precisions of the kept operators (:meth:`for_module`) other than :attr:`gemm_dtype`."""
        dtypes = {self.for_module(m).gemm_dtype for m, _ in self.keep_modules}
        return tuple(sorted(dtypes - {self.gemm_dtype}))

    @property
    def weight_bytes(self) -> float:
        """Bytes per weight element (a quantised format's scales included)."""
        return WEIGHT_DTYPE_BYTES[self.weight_dtype]

    @property
    def act_bytes(self) -> float:
        """Bytes per activation element."""
        return DTYPE_BYTES[self.act_dtype]

    @property
    def kv_bytes(self) -> float:
        """Bytes per KV-cache element."""
        return DTYPE_BYTES[self.kv_dtype]

    @property
    def gemm_dtype(self) -> str:
        """Precision the GEMMs are requested in: the wider of weights and activations."""
        w, a = plain_dtype(self.weight_dtype), self.act_dtype
        return w if DTYPE_BYTES[w] > DTYPE_BYTES[a] else a

    @property
    def attention_dtype(self) -> str:
        """Precision attention math is requested in: the wider of the activation and KV-cache
        precisions, at least fp8 (a bf16 cache means bf16 attention math even under fp8 GEMMs, as
        in FlashMLA and FlashAttention-3)."""
        wider = max(self.act_dtype, self.kv_dtype, key=DTYPE_BYTES.__getitem__)
        return wider if DTYPE_BYTES[wider] >= 1 else "fp8"

    @property
    def partial_sum_bytes(self) -> float:
        """Bytes per element of a GEMM output that is summed afterwards (the routed experts' per-pair
        outputs before their combine): 16 bits, as the GEMM epilogues write them (bf16) even when
        the GEMM inputs are 8 or 4 bits; 32 bits under fp32 activations."""
        return max(DTYPE_BYTES[self.act_dtype], 2.0)

    @property
    def comm_bytes(self) -> float:
        """Bytes per element of activations exchanged by collectives.

        Frameworks reduce partial sums in 16 bits even when GEMM inputs are 8 or 4 bits
        (TensorRT-LLM and vLLM all-reduce in the model dtype).
        """
        return max(DTYPE_BYTES[self.act_dtype], 2.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class LengthSpreads:
    """How far the requests' prompt and output lengths spread around their means: each drawn
    uniformly within +- this fraction of its mean (a random dataset's range ratio, as the
    benchmarks' ``--random-range-ratio`` draws them); 0: every request the mean length.

    One value for the serving engine's client (:class:`~genmodel._servingmodel.ServingSpec`) and
    the simulated serving model (:class:`~genmodel._servingmodel.Simulated`); the keywords
    ``input_spread`` and ``output_spread`` of :func:`genmodel.estimate` and
    :func:`genmodel.simulate` build it.

    Raises:
        SpecError: ``input_spread=... must be in [0, 1) ...`` naming the one outside.
    """

    input_spread: float = 0.0
    output_spread: float = 0.0

    def __post_init__(self) -> None:
        for name in ("input_spread", "output_spread"):
            spread = getattr(self, name)
            if not 0 <= spread < 1:
                raise SpecError(f"{name}={spread!r} must be in [0, 1): lengths within +-{name} of the mean")
            object.__setattr__(self, name, float(spread))

    @property
    def fixed(self) -> bool:
        """Every request has the mean lengths (both spreads 0)."""
        return not (self.input_spread or self.output_spread)


#: every request the mean lengths
FIXED_LENGTHS = LengthSpreads()


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """A request shape with its latency targets."""

    id: str
    name: str = ""
    input_tokens: int
    output_tokens: int
    ttft_slo_s: float | None = None
    tpot_slo_s: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        require_ints(
            where=f"scenario {self.id}: ", input_tokens=self.input_tokens, output_tokens=self.output_tokens
        )
        for name in ("ttft_slo_s", "tpot_slo_s"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise SpecError(f"scenario {self.id}: {name}={value!r} must be > 0")


def mean_decode_context(input_tokens: Num, output_tokens: Num) -> Num:
    """Tokens cached at the mean decode step of a request: input + (output - 2) / 2.

    The decode steps of a request run at contexts input .. input + output - 2 (the first output
    token comes from the prefill); their mean stands for all of them, exact while attention stays
    on one side of its roofline ridge (it is linear in context). At least the input (one output
    token: no decode step at all).
    """
    return input_tokens + maximum(output_tokens - 2, 0) / 2
