"""Size limits of the library's code: no function above cyclomatic complexity 20 (radon), no module
over 650 lines, and no cache keyed on ``id()`` (an object's id is reused once it is freed, so such a
key can return another object's entry)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from radon.complexity import cc_visit

import genmodel

PACKAGE = Path(genmodel.__file__).resolve().parent
FILES = sorted(PACKAGE.rglob("*.py"))
#: the largest cyclomatic complexity (radon cc) of any function or method (grade C ends at 20)
MAX_COMPLEXITY = 20
#: the most lines a module may have (modules stay near 600 lines; 650 leaves room for a fix)
MAX_MODULE_LINES = 650
#: ``id(`` as a call of the builtin (not ``model_id(`` or ``obj.id(``)
_ID_CALL = re.compile(r"(?<![\w.])id\(")

#: Modules excused from a check, with the checks they fail (none today; an entry needs a reason).
KNOWN_OFFENDERS: dict[str, frozenset[str]] = {}


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _excused(path: Path, check: str) -> bool:
    return check in KNOWN_OFFENDERS.get(_name(path), frozenset())


def _blocks(blocks: list[Any]) -> Iterator[Any]:
    """Every function, method and closure radon found (classes are judged by their methods)."""
    for block in blocks:
        if hasattr(block, "closures"):  # a function or method
            yield block
            yield from _blocks(block.closures)


def _too_complex(code: str) -> list[str]:
    return [
        f"{b.fullname} (line {b.lineno}): complexity {b.complexity} > {MAX_COMPLEXITY}"
        for b in _blocks(cc_visit(code))
        if b.complexity > MAX_COMPLEXITY
    ]


def _id_calls(code: str) -> list[str]:
    """Lines that call ``id(`` outside a comment."""
    return [
        f"line {n}: {line.strip()}"
        for n, line in enumerate(code.splitlines(), start=1)
        if _ID_CALL.search(line.split("#", 1)[0])
    ]


def test_there_is_code_to_check() -> None:
    assert len(FILES) >= 20
    assert set(KNOWN_OFFENDERS) <= {_name(p) for p in FILES}


@pytest.mark.parametrize("path", FILES, ids=_name)
def test_no_function_is_too_complex(path: Path) -> None:
    if _excused(path, "complexity"):
        pytest.skip("known offender (KNOWN_OFFENDERS)")
    assert not _too_complex(path.read_text(encoding="utf-8")), _name(path)


@pytest.mark.parametrize("path", FILES, ids=_name)
def test_no_module_is_too_long(path: Path) -> None:
    if _excused(path, "lines"):
        pytest.skip("known offender (KNOWN_OFFENDERS)")
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_name(path)} has {lines} lines, more than {MAX_MODULE_LINES}"


@pytest.mark.parametrize("path", FILES, ids=_name)
def test_no_cache_is_keyed_on_id(path: Path) -> None:
    if _excused(path, "id"):
        pytest.skip("known offender (KNOWN_OFFENDERS)")
    assert not _id_calls(path.read_text(encoding="utf-8")), _name(path)


def test_the_checks_catch_an_offender() -> None:
    branches = "\n".join(f"    if x == {i}:\n        return {i}" for i in range(MAX_COMPLEXITY))
    complex_code = f"def f(x):\n{branches}\n    return -1\n"
    assert _too_complex(complex_code) == [f"f (line 1): complexity {MAX_COMPLEXITY + 1} > {MAX_COMPLEXITY}"]
    method = "class C:\n    def m(self, x):\n" + "\n".join("    " + line for line in branches.splitlines())
    assert _too_complex(method)
    closure = "def outer():\n" + "\n".join("    " + line for line in complex_code.splitlines())
    assert _too_complex(closure)
    assert not _too_complex("def g(x):\n    return x + 1\n")
    assert _id_calls("key = (id(model), n)\n") == ["line 1: key = (id(model), n)"]
    assert not _id_calls("x = model_id(m)\ny = dev.id(1)\n# cached by id(obj)\n")
