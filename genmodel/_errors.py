"""The exception family of genmodel: one root, each error says ``name=value`` and what was expected."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")


def plain_scalars(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Let a public function take NumPy scalars where it takes Python numbers (an ``np.int64`` from
    ``np.arange`` or a DataFrame's cell, also inside a list or tuple): each becomes the int, float,
    bool or str it holds before ``fn`` sees it, so the checks (:func:`require_ints`) and the JSON
    see plain Python values."""

    @functools.wraps(fn)
    def with_plain_scalars(*args: Any, **kwargs: Any) -> _R:
        return fn(*[_plain(a) for a in args], **{k: _plain(v) for k, v in kwargs.items()})

    return with_plain_scalars


def _plain(value: Any) -> Any:
    """``value`` as a Python scalar if it is a NumPy one (a list's or tuple's items too)."""
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value) if any(map(_numpy_scalar, value)) else value
    return value.item() if _numpy_scalar(value) else value


def _numpy_scalar(value: Any) -> bool:
    return type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0


def require_ints(*, minimum: int = 1, where: str = "", **values: object) -> None:
    """Raise :class:`SpecError` unless every value is an integer (not a bool) >= ``minimum``.

    ``where`` prefixes each name in the message (``"model x."``, ``"scenario y: "``).
    """
    for name, value in values.items():
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= minimum):
            raise SpecError(f"{where}{name}={value!r} must be an integer >= {minimum}")


class GenModelError(Exception):
    """Root of every error genmodel raises on purpose."""


class SpecError(GenModelError, ValueError):
    """A specification (YAML file, config.json, argument) is malformed or impossible."""


class InfeasibleError(GenModelError):
    """A plan cannot run: carries the list of violations, each a ``name=value ...`` sentence."""

    def __init__(self, violations: Sequence[str]) -> None:
        self.violations = tuple(violations)
        super().__init__("; ".join(self.violations))


class UnknownEntryError(GenModelError, LookupError):
    """An id is not in the database; the message lists the closest known ids."""

    def __init__(self, kind: str, name: str, known: Iterable[str], aliases: Iterable[str] = ()) -> None:
        known = sorted(set(known))
        self.kind = kind
        self.name = name
        self.closest = tuple(difflib.get_close_matches(name, [*known, *aliases], n=3, cutoff=0.4))
        hint = f"; did you mean {', '.join(self.closest)}?" if self.closest else ""
        super().__init__(f"{kind}={name!r} is not known{hint} (known ids: {', '.join(known)})")

    def __str__(self) -> str:
        return str(self.args[0])
