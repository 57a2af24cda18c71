"""The exception family of genmodel: one root, each error says ``name=value`` and what was expected."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any


def did_you_mean(value: object, choices: Iterable[str]) -> str:
    """``"; did you mean X?"`` with the choice closest to a misspelt ``value`` (``closed`` ->
    ``closed-form``), or ``""`` when none is close: the tail of a ``must be one of`` message."""
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value.lower(), list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


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


class UnknownKeywordError(SpecError, TypeError):
    """A keyword argument that is neither a parameter nor a run option; the message suggests the
    closest of both (``tpot_slo`` -> ``tpot_slo_s``, the CLI's ``prefix_hit`` -> ``prefix_hit_rate``).

    Args:
        keyword, value: what was given.
        known: the run options' keywords.
        aliases: other spellings (the CLI flags' names) by the keyword they stand for.
    """

    def __init__(self, keyword: str, value: Any, known: Iterable[str], aliases: dict[str, str]) -> None:
        self.keyword = keyword
        self.value = value
        self.known = tuple(known)
        self._spellings = {**{k: k for k in self.known}, **aliases}
        self._owners: dict[str, str] = {}
        super().__init__(keyword)

    def add_candidates(self, function: str, names: Iterable[str]) -> None:
        """Also suggest ``function``'s own keyword parameters ``names`` (the outermost function,
        the one the caller called, is added last and named)."""
        for name in names:
            self._spellings.setdefault(name, name)
            self._owners[name] = function

    def __str__(self) -> str:
        spelled = difflib.get_close_matches(self.keyword, list(self._spellings), n=3, cutoff=0.6)
        closest = list(dict.fromkeys(self._spellings[s] for s in spelled))
        shown = [f"{c} (a keyword of {self._owners[c]})" if c in self._owners else c for c in closest]
        hint = f"; did you mean {', '.join(shown)}?" if shown else ""
        return (
            f"{self.keyword}={self.value!r} is not a run option{hint} (run options: {', '.join(self.known)})"
        )
