"""Unit constants and the type-dispatching helpers every formula uses.

Inside genmodel every quantity is in SI base units (seconds, bytes, FLOPs, watts) and says so in its
name. Human units (GB, TB/s, ms, GiB) appear only at the edges (YAML, CLI, reports); they are converted
once, in ``genmodel.io``, with the constants below.

Formulas take ``Num`` — a Python float, a NumPy array or a SymPy expression — and use only arithmetic
plus :func:`maximum`, :func:`minimum`, :func:`where`, :func:`ceil`, :func:`floor`, :func:`log` and
:func:`power`, so that one formula serves a single estimate, a vectorised plan search and a
symbolic derivation.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeAlias

from genmodel._errors import SpecError, did_you_mean

if TYPE_CHECKING:
    import numpy as np
    import sympy

    Num: TypeAlias = float | int | np.ndarray[Any, Any] | sympy.Expr
else:
    Num: TypeAlias = Any

# Decimal prefixes: rates, FLOPs and marketing capacities.
KB = 1e3
MB = 1e6
GB = 1e9
TB = 1e12
KFLOP = 1e3
GFLOP = 1e9
TFLOP = 1e12
PFLOP = 1e15
# Binary prefixes: only where a spec says GiB.
KiB = 2.0**10
MiB = 2.0**20
GiB = 2.0**30
# Time.
MS = 1e-3
US = 1e-6
NS = 1e-9
HOUR = 3600.0


#: Bytes per element of each precision genmodel knows. fp4/int4 are half a byte (scales ignored).
DTYPE_BYTES: Mapping[str, float] = MappingProxyType(
    {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "fp4": 0.5, "int4": 0.5}
)


def check_dtype(name: str, value: str) -> str:
    """Return ``value`` if it is a known precision, else raise :class:`SpecError` naming ``name``."""
    if value not in DTYPE_BYTES:
        raise SpecError(
            f"{name}={value!r} must be one of {', '.join(DTYPE_BYTES)}{did_you_mean(value, DTYPE_BYTES)}"
        )
    return value


#: Quantised weight formats that store their scales beside the weights: name -> (bits per weight,
#: scales included; the plain precision the weights are dequantised from, which the GEMM is asked
#: in). Block formats of ggml (llama.cpp's GGUF), from the block structs of ggml/src/ggml-common.h
#: (ggml-org/llama.cpp): block_q4_0 is an fp16 scale + 16 bytes for 32 weights (18 B / 32 = 4.5
#: bits), block_q4_1 adds an fp16 min (5.0), block_q5_0 22 B / 32 (5.5), block_q8_0 34 B / 32
#: (8.5); the k-quants use 256-weight super-blocks: block_q4_K 144 B (4.5), block_q5_K 176 B
#: (5.5), block_q6_K 210 B (6.5625). The _K_M / _K_S names are llama.cpp's mixes (some tensors,
#: such as attn_v, ffn_down and output, one or two formats wider): their whole-model bits per weight
#: are those of llama.cpp's quantize table for Llama-3.1-8B (tools/quantize/README.md: Q4_K_S
#: 4.6672, Q4_K_M 4.8944, Q5_K_M 5.7036), a property of the mix on that model, close on other
#: Llama-class models. Compute: the weights are dequantised to the activations' precision (or
#: multiplied as int8 against quantised activations); genmodel asks the GEMM in the wider of the
#: format's plain precision and the activations', and ignores the dequantisation's own work.
#: MLC LLM's q4f16_1 (python/mlc_llm/quantization/quantization.py, mlc-ai/mlc-llm: GroupQuantize,
#: int4 with one fp16 scale per group of 32, embedding and final layer quantised too) is 4.5 bits.
#: MXFP4 (OCP Microscaling Formats (MX) Specification v1.0: a block of 32 FP4 E2M1 elements sharing
#: one 8-bit E8M0 scale, (32 x 4 + 8) / 32 = 4.25 bits) is how gpt-oss ships its experts (its model
#: card, arXiv:2508.10925: 4.25 bits per parameter); its plain precision is fp4.
WEIGHT_FORMATS: Mapping[str, tuple[float, str]] = MappingProxyType(
    {
        "q4_0": (4.5, "int4"),
        "q4_1": (5.0, "int4"),
        "q5_0": (5.5, "int8"),
        "q8_0": (8.5, "int8"),
        "q4_k": (4.5, "int4"),
        "q5_k": (5.5, "int8"),
        "q6_k": (6.5625, "int8"),
        "q4_k_s": (4.6672, "int4"),
        "q4_k_m": (4.8944, "int4"),
        "q5_k_m": (5.7036, "int8"),
        "q4f16_1": (4.5, "int4"),
        "mxfp4": (4.25, "fp4"),
    }
)

#: Bytes per weight element of every weight precision: the plain ones and :data:`WEIGHT_FORMATS`.
WEIGHT_DTYPE_BYTES: Mapping[str, float] = MappingProxyType(
    {**DTYPE_BYTES, **{name: bits / 8 for name, (bits, _) in WEIGHT_FORMATS.items()}}
)


def check_weight_dtype(name: str, value: str) -> str:
    """Return ``value`` if it is a plain precision or a :data:`WEIGHT_FORMATS` format, else raise
    :class:`SpecError` naming ``name``."""
    if value not in WEIGHT_DTYPE_BYTES:
        raise SpecError(
            f"{name}={value!r} must be one of {', '.join(WEIGHT_DTYPE_BYTES)}"
            + did_you_mean(value, WEIGHT_DTYPE_BYTES)
        )
    return value


def dtype_id(value: str) -> str:
    """A precision's id as the database spells it, given in any case (``FP8`` -> ``fp8``,
    ``Q4_K_M`` -> ``q4_k_m``); a value that is no known precision in any case, as given (for the
    check to name it as the user wrote it)."""
    lower = str(value).strip().lower()  # (str: a Python caller's other type is refused as given)
    return lower if lower in WEIGHT_DTYPE_BYTES else value


def plain_dtype(value: str) -> str:
    """The plain precision of a weight precision: itself, or a format's dequantised precision."""
    return WEIGHT_FORMATS[value][1] if value in WEIGHT_FORMATS else value


#: plain Python numbers: the common case, decided without looking at the type's module
_PLAIN = (float, int, bool)


def _is_symbolic(x: object) -> bool:
    return type(x) not in _PLAIN and type(x).__module__.startswith("sympy")


def _is_array(x: object) -> bool:
    return type(x) not in _PLAIN and type(x).__module__ == "numpy" and not isinstance(x, float)


def check_amount(name: str, value: Num, *, positive: bool = False) -> None:
    """Refuse an amount (bytes, tokens, seconds) that is not finite, or negative (or zero, with
    ``positive``), at a public function's boundary. A plain number or a NumPy array is checked
    (every element); a symbol, a pint quantity or any other type passes, as formulas take them.

    Raises:
        SpecError: ``name=value must be >= 0 and finite`` (``> 0``).
    """
    if isinstance(value, int | float):
        bad: Any = None if math.isfinite(value) and (value > 0 if positive else value >= 0) else value
    elif _is_array(value) and value.dtype.kind in "iuf":
        np = sys.modules["numpy"]  # (loaded: value is one of its arrays)
        if not value.size:
            return
        # (two reductions decide the common case, the ufuncs' own: a NaN fails both comparisons)
        low = np.minimum.reduce(value, axis=None)
        if (low > 0 if positive else low >= 0) and np.maximum.reduce(value, axis=None) < math.inf:
            return
        wrong = ~np.isfinite(value) | ((value <= 0) if positive else (value < 0))
        bad = float(value[wrong].flat[0]) if wrong.any() else None
    else:
        return
    if bad is not None:
        raise SpecError(f"{name}={bad!r} must be {'> 0' if positive else '>= 0'} and finite")


_NUMBERS, _ARRAYS, _SYMBOLS = 0, 1, 2


def _family(*values: object) -> int:
    """_SYMBOLS if any value is symbolic, else _ARRAYS if any is a NumPy array, else _NUMBERS
    (one look at each type, as :func:`_is_symbolic` and :func:`_is_array` decide)."""
    found = _NUMBERS
    for x in values:
        kind = type(x)
        if kind in _PLAIN:
            continue
        module = kind.__module__
        if module.startswith("sympy"):
            return _SYMBOLS
        if module == "numpy" and not isinstance(x, float):
            found = _ARRAYS
    return found


def _arrays_and_numbers(a: object, b: object) -> bool:
    """Whether each of ``a`` and ``b`` is a plain number or a NumPy ndarray (at least one an array,
    as the caller has checked): :func:`_family` would say _ARRAYS."""
    np = sys.modules.get("numpy")  # (not loaded: no value is one of its arrays)
    if np is None:
        return False
    kind_a, kind_b = type(a), type(b)
    return (kind_a is np.ndarray or kind_a in _PLAIN) and (kind_b is np.ndarray or kind_b in _PLAIN)


def maximum(a: Num, b: Num) -> Num:
    """Elementwise maximum of two quantities (float, NumPy array or SymPy expression)."""
    if type(a) in _PLAIN and type(b) in _PLAIN:  # the scalar estimate's path, checked first
        return a if a >= b else b
    if _arrays_and_numbers(a, b):  # (a plan search's path: what _family says of them, decided faster)
        return sys.modules["numpy"].maximum(a, b)
    family = _family(a, b)
    if family == _SYMBOLS:
        import sympy

        return sympy.Max(a, b)
    if family == _ARRAYS:
        import numpy as np

        return np.maximum(a, b)
    return a if a >= b else b


def minimum(a: Num, b: Num) -> Num:
    """Elementwise minimum of two quantities (float, NumPy array or SymPy expression)."""
    if type(a) in _PLAIN and type(b) in _PLAIN:
        return a if a <= b else b
    if _arrays_and_numbers(a, b):  # (a plan search's path: what _family says of them, decided faster)
        return sys.modules["numpy"].minimum(a, b)
    family = _family(a, b)
    if family == _SYMBOLS:
        import sympy

        return sympy.Min(a, b)
    if family == _ARRAYS:
        import numpy as np

        return np.minimum(a, b)
    return a if a <= b else b


def where(cond: Any, a: Num, b: Num) -> Num:
    """``a`` where ``cond`` holds, else ``b`` (elementwise for arrays, Piecewise for SymPy)."""
    if type(cond) in _PLAIN and type(a) in _PLAIN and type(b) in _PLAIN:
        return a if cond else b
    family = _family(cond, a, b)
    if family == _SYMBOLS:
        import sympy

        return sympy.Piecewise((a, cond), (b, True))
    if family == _ARRAYS:
        import numpy as np

        return np.where(cond, a, b)
    return a if cond else b


def ceil(a: Num) -> Num:
    """Ceiling of a quantity (float, NumPy array or SymPy expression)."""
    if type(a) in _PLAIN:
        return float(math.ceil(a))
    if _is_symbolic(a):
        import sympy

        return sympy.ceiling(a)
    if _is_array(a):
        import numpy as np

        return np.ceil(a)
    return float(math.ceil(a))


def floor(a: Num) -> Num:
    """Floor of a quantity (float, NumPy array or SymPy expression)."""
    return -ceil(-a)


def log(a: Num) -> Num:
    """Natural logarithm of a quantity (float, NumPy array or SymPy expression)."""
    if type(a) in _PLAIN:
        return math.log(a)
    if _is_symbolic(a):
        import sympy

        return sympy.log(a)
    if _is_array(a):
        import numpy as np

        return np.log(a)
    return math.log(a)


#: powers below 2**-1100 are zero in floating point (the smallest subnormal is 2**-1074)
_UNDERFLOW_LOG2 = -1100.0


def power(base: Num, exponent: Num) -> Num:
    """``base ** exponent`` (float, NumPy array or SymPy expression).

    The same as ``**``; for a base in (0, 1) raised to a float array, the elements whose power is
    certainly zero in floating point (below 2**-1100) are set to zero without evaluating them:
    the vectorised ``pow`` takes a slow path for every result that underflows (about 20 times
    slower), and a plan search raises the chance that a token misses an expert to the power of
    hundreds of thousands of tokens. Every other element is NumPy's power, as ``**`` gives it.
    """
    if type(base) is not float or not 0.0 < base < 1.0 or not _is_array(exponent):
        return base**exponent
    array: Any = exponent
    if array.dtype.char != "d" or not array.flags.c_contiguous:
        return base**array  # (a strided array may take another loop: leave it to NumPy)
    tiny = array * math.log2(base) < _UNDERFLOW_LOG2
    if not tiny.any():
        return base**array
    import numpy as np

    out = np.zeros(array.shape)
    keep = ~tiny
    out[keep] = base ** array[keep]
    return out


def divided(value: Num, a: Num, b: Num) -> Num:
    """``value / a / b``, or ``value`` itself when ``a`` and ``b`` are the float 1.0 and it is a
    float or a float64 array: the quotient's bits, without making them again (a plan search's
    decode steps have one microbatch and no split: :func:`~genmodel._forwardpass.microbatches`)."""
    if type(a) is float and a == 1.0 and type(b) is float and b == 1.0:
        kind = type(value)
        if kind is float or (kind.__module__ == "numpy" and value.dtype.char == "d"):  # type: ignore[union-attr]
            return value
    return value / a / b
