"""Unit constants and the type-dispatching helpers every formula uses.

Inside genmodel every quantity is in SI base units (seconds, bytes, FLOPs, watts) and says so in its
name. Human units (GB, TB/s, ms, GiB) appear only at the edges (YAML, CLI, reports); they are converted
once, in ``genmodel.io``, with the constants below.

Formulas take ``Num`` — a Python float, a NumPy array or a SymPy expression — and use only arithmetic
plus :func:`maximum`, :func:`minimum`, :func:`where`, :func:`ceil` and :func:`floor`, so that one
formula serves a single estimate, a vectorised plan search and a symbolic derivation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeAlias

from genmodel._errors import SpecError

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
        raise SpecError(f"{name}={value!r} must be one of {', '.join(DTYPE_BYTES)}")
    return value


#: plain Python numbers: the common case, decided without looking at the type's module
_PLAIN = (float, int, bool)


def _is_symbolic(x: object) -> bool:
    return type(x) not in _PLAIN and type(x).__module__.startswith("sympy")


def _is_array(x: object) -> bool:
    return type(x) not in _PLAIN and type(x).__module__ == "numpy" and not isinstance(x, float)


def maximum(a: Num, b: Num) -> Num:
    """Elementwise maximum of two quantities (float, NumPy array or SymPy expression)."""
    if type(a) in _PLAIN and type(b) in _PLAIN:  # the scalar estimate's path, checked first
        return a if a >= b else b
    if _is_symbolic(a) or _is_symbolic(b):
        import sympy

        return sympy.Max(a, b)
    if _is_array(a) or _is_array(b):
        import numpy as np

        return np.maximum(a, b)
    return a if a >= b else b


def minimum(a: Num, b: Num) -> Num:
    """Elementwise minimum of two quantities (float, NumPy array or SymPy expression)."""
    if type(a) in _PLAIN and type(b) in _PLAIN:
        return a if a <= b else b
    if _is_symbolic(a) or _is_symbolic(b):
        import sympy

        return sympy.Min(a, b)
    if _is_array(a) or _is_array(b):
        import numpy as np

        return np.minimum(a, b)
    return a if a <= b else b


def where(cond: Any, a: Num, b: Num) -> Num:
    """``a`` where ``cond`` holds, else ``b`` (elementwise for arrays, Piecewise for SymPy)."""
    if type(cond) in _PLAIN and type(a) in _PLAIN and type(b) in _PLAIN:
        return a if cond else b
    if _is_symbolic(cond) or _is_symbolic(a) or _is_symbolic(b):
        import sympy

        return sympy.Piecewise((a, cond), (b, True))
    if _is_array(cond) or _is_array(a) or _is_array(b):
        import numpy as np

        return np.where(cond, a, b)
    return a if cond else b


def ceil(a: Num) -> Num:
    """Ceiling of a quantity (float, NumPy array or SymPy expression)."""
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
    if _is_symbolic(a):
        import sympy

        return sympy.log(a)
    if _is_array(a):
        import numpy as np

        return np.log(a)
    return math.log(a)
