"""A package's public names, imported on first use (PEP 562), listed once: in the package's
``if TYPE_CHECKING:`` block, which type checkers read and this module reads too.

The block holds two forms, the ones type checkers take as re-exported (PEP 484's redundant alias;
a module-level variable)::

    from genmodel._api import estimate as estimate       # public name ``estimate``
    from genmodel import _intervals                      # (private: for the line below)
    INTERVAL_COVERAGE = _intervals.COVERAGE              # public name under another name

At run time nothing in the block runs: :func:`attach` gives the package a ``__getattr__`` that reads
the block (once, on the first public name asked for) and imports each name from its module when it
is first used, so that ``import genmodel`` loads no module of the model; ``__all__`` and ``__dir__``
come from the same block. The block is read from the package's own source, through the import
system's loader as ``inspect.getsource`` does (so from a zip too), never from user data.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from typing import Any


def public_names(package: str) -> dict[str, tuple[str, str]]:
    """The public names of the ``if TYPE_CHECKING:`` block of PACKAGE's __init__.

    Returns:
        public name -> (the module that defines it, its name there).
    """
    import ast  # only when a public name is first asked for: ``import genmodel`` stays light

    spec = sys.modules[package].__spec__
    source = spec.loader.get_source(package) if spec and spec.loader else None  # type: ignore[attr-defined]
    if source is None:
        raise ImportError(f"{package}: its public names are read from its source, which is not installed")
    tree = ast.parse(source, f"{package}/__init__.py")
    block = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    imported: dict[str, tuple[str, str]] = {}
    public: dict[str, tuple[str, str]] = {}
    for node in block.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                imported[alias.asname or alias.name] = (node.module, alias.name)
                if alias.asname == alias.name:
                    public[alias.name] = (node.module, alias.name)
        elif isinstance(node, ast.Assign):
            value = node.value
            assert isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name), ast.unparse(node)
            package, module = imported[value.value.id]
            for target in node.targets:
                public[ast.unparse(target)] = (f"{package}.{module}", value.attr)
    return public


def attach(
    package: str, *, submodules: Iterable[str] = (), extra: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for PACKAGE (``attach(__name__)`` in its __init__).

    Args:
        package: the package's name; the ``if TYPE_CHECKING:`` block of its __init__ lists the
            public names.
        submodules: subpackages given as attributes, imported when first asked for.
        extra: names defined in the package itself that belong to ``__all__`` (``__version__``).

    Returns:
        ``__getattr__``, which gives ``__all__`` and each public name (imported from its module on
        first use and kept in the package), and ``__dir__``.
    """
    namespace = sys.modules[package].__dict__
    submodules, extra = frozenset(submodules), tuple(extra)
    where: dict[str, tuple[str, str]] = {}

    def _where() -> dict[str, tuple[str, str]]:
        if not where:
            where.update(public_names(package))
        return where

    def __getattr__(name: str) -> Any:
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        if name == "__all__":
            value: Any = sorted({*_where(), *extra})
        elif name in _where():
            module, attr = where[name]
            value = getattr(importlib.import_module(module), attr)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *_where()})

    return __getattr__, __dir__
