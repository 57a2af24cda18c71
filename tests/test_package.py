"""The package's public names are loaded on first use (genmodel/__init__.py, genmodel/report/__init__.py):
the lazy tables agree with the imports type checkers read and with ``__all__``, every name resolves to
its module's object, and ``import genmodel`` itself loads no module of the model."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import genmodel
import genmodel.report

PACKAGES = [genmodel, genmodel.report]


def _typing_imports(package: object) -> dict[str, tuple[str, str]]:
    """public name -> (module, name there), from the ``if TYPE_CHECKING:`` block of its __init__."""
    tree = ast.parse(Path(package.__file__).read_text(encoding="utf-8"))  # type: ignore[attr-defined]
    block = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    return {
        (a.asname or a.name): (node.module or "", a.name)
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for a in node.names
    }


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_the_lazy_table_is_the_typing_imports_and_all(package: object) -> None:
    typed = _typing_imports(package)
    where = package._WHERE  # type: ignore[attr-defined]
    lazy = {name: spot if isinstance(spot, tuple) else (spot, name) for name, spot in where.items()}
    assert lazy == typed
    assert set(typed) == set(package.__all__) - {"__version__"}  # type: ignore[attr-defined]


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_every_public_name_is_its_modules_object(package: object) -> None:
    for name, (module, attr) in _typing_imports(package).items():
        assert getattr(package, name) is getattr(importlib.import_module(module), attr), name
    assert set(package.__all__) <= set(dir(package))  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="no attribute 'estimat'"):
        package.estimat  # type: ignore[attr-defined]  # noqa: B018


def test_importing_the_package_loads_no_model_module() -> None:
    code = "import sys, genmodel.report; print(sorted(m for m in sys.modules if m.startswith('genmodel')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['genmodel', 'genmodel.report']"


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
