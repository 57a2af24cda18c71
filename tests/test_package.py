"""The package's public names are loaded on first use (genmodel/_lazy.py for genmodel/__init__.py and
genmodel/report/__init__.py): each is listed once, in the ``if TYPE_CHECKING:`` block, in a form type
checkers take as re-exported; run eagerly, that block gives the very objects the lazy names give, and
``__all__`` is its names; ``import genmodel`` itself loads no module of the model."""

from __future__ import annotations

import ast
import subprocess
import sys
import types
from pathlib import Path

import pytest

import genmodel
import genmodel.report

PACKAGES = [genmodel, genmodel.report]
#: names a package defines itself
OWN = {"genmodel": {"__version__"}, "genmodel.report": set()}


def _typing_block(package: types.ModuleType) -> list[ast.stmt]:
    """The statements of the ``if TYPE_CHECKING:`` block of the package's __init__."""
    tree = ast.parse(Path(str(package.__file__)).read_text(encoding="utf-8"))
    return next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING").body


def _re_exported(block: list[ast.stmt]) -> list[str]:
    """The names the block re-exports as type checkers read it (PEP 484: ``from m import x as x``; a
    module-level variable); fails on any other statement (a plain ``from m import x`` would be
    private to type checkers) but a module import that a variable reads."""
    names, modules, read = [], set(), set()
    for node in block:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.asname == alias.name:
                    names.append(alias.name)
                else:
                    assert alias.asname is None, ast.unparse(node)
                    modules.add(alias.name)
        else:
            assert isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute), ast.unparse(node)
            assert isinstance(node.value.value, ast.Name), ast.unparse(node)
            read.add(node.value.value.id)
            names += [ast.unparse(target) for target in node.targets]
    assert modules == read  # each plain import is a module for the variables
    return names


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_each_public_name_is_listed_once_as_a_re_export_and_all_is_those_names(
    package: types.ModuleType,
) -> None:
    names = _re_exported(_typing_block(package))
    assert len(names) == len(set(names))
    assert sorted(package.__all__) == sorted({*names, *OWN[package.__name__]})


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_every_public_name_is_the_object_the_typing_block_imports(package: types.ModuleType) -> None:
    eager: dict[str, object] = {}
    exec(compile(ast.Module(body=_typing_block(package), type_ignores=[]), "<block>", "exec"), eager)
    for name in package.__all__:
        if name not in OWN[package.__name__]:
            assert getattr(package, name) is eager[name], name
    assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match="no attribute 'estimat'"):
        package.estimat  # noqa: B018


def test_importing_the_package_loads_no_model_module() -> None:
    code = "import sys, genmodel.report; print(sorted(m for m in sys.modules if m.startswith('genmodel')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['genmodel', 'genmodel._lazy', 'genmodel.report']"


def test_a_static_estimate_loads_neither_the_simulator_nor_the_planner() -> None:
    code = (
        "import sys, genmodel\n"
        "genmodel.estimate('llama-3.1-8b', 'h100-sxm', input_tokens=128, output_tokens=128)\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('genmodel._'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(out.split())
    assert "genmodel._phases" in loaded  # (the listing sees the estimate's modules)
    assert not loaded & {"genmodel._simulate", "genmodel._scheduler", "genmodel._search", "genmodel._recheck"}
