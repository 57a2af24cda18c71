"""A package's public names, imported on first use (PEP 562).

The package lists its public names twice, side by side in its ``__init__``: as imports in its
``if TYPE_CHECKING:`` block, which type checkers read and nothing runs (written as type checkers
take a re-export: ``from m import x as x``, or ``NAME = module.attribute``), and as a static table,
public name -> the module that defines it (``"module:attribute"`` where the name there differs, as
entry points write it), which :func:`attach` reads. tests/test_package.py checks that the two agree.
At run time nothing is read but that table: no source, so a package installed as bytecode alone
works too, and ``import genmodel`` loads no module of the model.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def attach(
    package: str, public: Mapping[str, str], *, submodules: Iterable[str] = (), extra: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for PACKAGE (``attach(__name__, _PUBLIC)`` in its __init__).

    Args:
        package: the package's name.
        public: each public name -> the module that defines it under that name, or
            ``"module:attribute"`` for another name there.
        submodules: subpackages given as attributes, imported when first asked for.
        extra: names defined in the package itself that belong to ``__all__`` (``__version__``).

    Returns:
        ``__getattr__``, which gives ``__all__`` and each public name (imported from its module on
        first use and kept in the package), and ``__dir__``.
    """
    namespace = sys.modules[package].__dict__
    where = dict(public)
    submodules, names = frozenset(submodules), sorted({*where, *extra})

    def __getattr__(name: str) -> Any:
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        if name == "__all__":
            value: Any = list(names)
        elif name in where:
            module, _, attr = where[name].partition(":")
            value = getattr(importlib.import_module(module), attr or name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *where})

    return __getattr__, __dir__
