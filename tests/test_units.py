"""genmodel._units: the type-dispatching helpers every formula uses (float, NumPy, SymPy)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st

from genmodel._errors import SpecError
from genmodel._units import DTYPE_BYTES, GB, GiB, ceil, check_dtype, maximum, minimum, where

finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)


@given(finite, finite)
def test_maximum_minimum_on_floats(a: float, b: float) -> None:
    assert maximum(a, b) == max(a, b)
    assert minimum(a, b) == min(a, b)
    assert minimum(a, b) <= maximum(a, b)


def test_maximum_minimum_on_arrays_are_elementwise() -> None:
    a = np.array([1.0, 5.0, -3.0])
    b = np.array([2.0, 4.0, -3.0])
    np.testing.assert_array_equal(maximum(a, b), [2.0, 5.0, -3.0])
    np.testing.assert_array_equal(minimum(a, b), [1.0, 4.0, -3.0])
    # a scalar broadcasts against an array, on either side
    np.testing.assert_array_equal(maximum(a, 2.0), [2.0, 5.0, 2.0])
    np.testing.assert_array_equal(minimum(0.0, a), [0.0, 0.0, -3.0])


def test_maximum_minimum_on_sympy_are_symbolic() -> None:
    x = sympy.Symbol("x", positive=True)
    hi = maximum(x, 3)
    lo = minimum(x, 3)
    assert isinstance(hi, sympy.Basic)
    assert float(hi.subs(x, 5)) == pytest.approx(5.0)
    assert float(hi.subs(x, 1)) == pytest.approx(3.0)
    assert float(lo.subs(x, 5)) == pytest.approx(3.0)
    assert float(lo.subs(x, 1)) == pytest.approx(1.0)


def test_where_on_floats_arrays_and_sympy() -> None:
    assert where(True, 1.0, 2.0) == pytest.approx(1.0)
    assert where(False, 1.0, 2.0) == pytest.approx(2.0)
    a = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(where(a > 1.5, a, 0.0), [0.0, 2.0, 3.0])
    x = sympy.Symbol("x")
    expr = where(x > 2, x, -x)
    assert isinstance(expr, sympy.Piecewise)
    assert float(expr.subs(x, 3)) == pytest.approx(3.0)
    assert float(expr.subs(x, 1)) == pytest.approx(-1.0)


@given(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False))
def test_ceil_on_floats(a: float) -> None:
    c = ceil(a)
    assert isinstance(c, float)
    assert c >= a
    assert c - 1 < a
    assert c == int(c)


def test_ceil_on_arrays_and_sympy() -> None:
    np.testing.assert_array_equal(ceil(np.array([0.1, 1.0, 2.5, -0.5])), [1.0, 1.0, 3.0, -0.0])
    x = sympy.Symbol("x")
    expr = ceil(x / 64)
    assert isinstance(expr, sympy.ceiling)
    assert float(expr.subs(x, 65)) == pytest.approx(2.0)
    assert float(expr.subs(x, 64)) == pytest.approx(1.0)


def test_dtype_bytes_and_prefixes() -> None:
    assert DTYPE_BYTES["bf16"] == pytest.approx(2.0)
    assert DTYPE_BYTES["fp8"] == pytest.approx(1.0)
    assert DTYPE_BYTES["int4"] == pytest.approx(0.5)
    assert DTYPE_BYTES["fp4"] == pytest.approx(0.5)
    assert set(DTYPE_BYTES) == {"fp32", "bf16", "fp16", "fp8", "int8", "fp4", "int4"}
    assert float(GB) == pytest.approx(1e9)
    assert float(GiB) == pytest.approx(1073741824.0)


def test_check_dtype_rejects_unknown_precision_naming_it() -> None:
    assert check_dtype("weight_dtype", "fp8") == "fp8"
    with pytest.raises(SpecError, match=r"weight_dtype='fp6'"):
        check_dtype("weight_dtype", "fp6")


def test_power_equals_the_operator_even_where_it_underflows() -> None:
    import numpy as np

    from genmodel._units import power

    exponents = np.concatenate([np.arange(0.0, 50.0), np.geomspace(50.0, 5e6, 400)])
    for base in (1e-9, 0.3, 1 - 8 / 256, 1 - 1e-6, 0.999999999):
        assert np.array_equal(power(base, exponents), base**exponents)
    assert power(0.5, 3.0) == 0.125 and power(2.0, exponents[:3]).tolist() == [1.0, 2.0, 4.0]
