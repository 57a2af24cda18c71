"""What every public entry point does to its arguments first: NumPy scalars become Python ones.

A caller's numbers often come from NumPy (``np.arange``, a DataFrame's cell), and ``np.int64`` is no
``int``: :func:`plain_scalars` converts them once, at the door, so that the checks
(:func:`~genmodel._errors.require_ints`), the specs and the JSON inside see plain Python values.
No modelling assumptions; used only by the public functions (:mod:`genmodel._api` and the modules
above it), so it sits right below them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from genmodel._errors import UnknownKeywordError

_P = ParamSpec("_P")
_R = TypeVar("_R")


def plain_scalars(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Let a public function take NumPy scalars where it takes Python numbers (an ``np.int64`` from
    ``np.arange`` or a DataFrame's cell, also inside a list or tuple): each becomes the int, float,
    bool or str it holds before ``fn`` sees it. A misspelt keyword's error
    (:class:`~genmodel._errors.UnknownKeywordError`) also offers ``fn``'s own keywords as the
    closest match."""

    own = tuple(p.name for p in inspect.signature(fn).parameters.values() if p.kind is not p.VAR_KEYWORD)

    @functools.wraps(fn)
    def with_plain_scalars(*args: Any, **kwargs: Any) -> _R:
        try:
            return fn(*[_plain(a) for a in args], **{k: _plain(v) for k, v in kwargs.items()})
        except UnknownKeywordError as exc:
            if exc.keyword in kwargs:  # a caller's typo: its own keywords are candidates too
                exc.add_candidates(fn.__name__, own)
            raise

    return with_plain_scalars


def _plain(value: Any) -> Any:
    """``value`` as a Python scalar if it is a NumPy one (a list's or tuple's items too)."""
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value) if any(map(_numpy_scalar, value)) else value
    return value.item() if _numpy_scalar(value) else value


def _numpy_scalar(value: Any) -> bool:
    return type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0
