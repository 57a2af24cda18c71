"""The exception family of genmodel: one root, each error says ``name=value`` and what was expected."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


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
