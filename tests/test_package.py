"""The package's public names are loaded on first use (genmodel/_lazy.py for genmodel/__init__.py and
genmodel/report/__init__.py): each is listed once in the ``if TYPE_CHECKING:`` block, in a form type
checkers take as re-exported, and once in the static ``_PUBLIC`` table the lazy names are read from,
which must say the same; run eagerly, that block gives the very objects the lazy names give, and
``__all__`` is its names; ``import genmodel`` itself loads no module of the model and no heavy library,
and reads no source (a bytecode-only install works)."""

from __future__ import annotations

import ast
import compileall
import shutil
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


def _re_exports(block: list[ast.stmt]) -> list[tuple[str, str]]:
    """(name, where) of each name the block re-exports as type checkers read it (PEP 484: ``from m
    import x as x``; a module-level variable), where as ``_PUBLIC`` writes it: the module, or
    ``module:attribute`` where the name differs. Fails on any other statement (a plain ``from m
    import x`` would be private to type checkers) but a module import that a variable reads."""
    pairs: list[tuple[str, str]] = []
    modules: dict[str, str] = {}
    read = set()
    for node in block:
        if isinstance(node, ast.ImportFrom):
            assert node.module is not None, ast.unparse(node)
            for alias in node.names:
                if alias.asname == alias.name:
                    pairs.append((alias.name, node.module))
                else:
                    assert alias.asname is None, ast.unparse(node)
                    modules[alias.name] = f"{node.module}.{alias.name}"
        else:
            assert isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute), ast.unparse(node)
            assert isinstance(node.value.value, ast.Name), ast.unparse(node)
            read.add(node.value.value.id)
            where = f"{modules[node.value.value.id]}:{node.value.attr}"
            pairs += [(ast.unparse(target), where) for target in node.targets]
    assert set(modules) == read  # each plain import is a module for the variables
    return pairs


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_each_public_name_is_listed_once_as_a_re_export_and_all_is_those_names(
    package: types.ModuleType,
) -> None:
    names = [name for name, _ in _re_exports(_typing_block(package))]
    assert len(names) == len(set(names))
    assert sorted(package.__all__) == sorted({*names, *OWN[package.__name__]})


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_the_lazy_table_names_the_modules_the_typing_block_imports_from(package: types.ModuleType) -> None:
    """The table the names are loaded from and the block type checkers read cannot drift apart:
    the same names, from the same modules, in the same order (to read side by side)."""
    assert list(package._PUBLIC.items()) == _re_exports(_typing_block(package))


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


#: libraries ``import genmodel`` must not load (the numerics, the parsers, the CLI's, and ``ast``,
#: which reading the names from source needed)
HEAVY = {"numpy", "scipy", "sympy", "yaml", "pydantic", "typer", "rich", "plotly", "ast"}


def _loaded_by(code: str) -> set[str]:
    """The modules a fresh interpreter loads to run ``code`` (beyond those it starts with)."""
    script = (
        f"import sys\nbefore = set(sys.modules)\n{code}\nprint(' '.join(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_genmodel_and_its_list_of_names_load_nothing_heavy() -> None:
    loaded = _loaded_by("import genmodel\nassert len(genmodel.__all__) > 100 and 'estimate' in dir(genmodel)")
    assert "genmodel._lazy" in loaded  # (the listing sees what the import loaded)
    assert {m for m in loaded if m.startswith("genmodel")} == {"genmodel", "genmodel._lazy"}
    assert not {m.partition(".")[0] for m in loaded} & HEAVY


def test_a_bytecode_only_install_gives_the_public_names(tmp_path: Path) -> None:
    """No source is read for the names: a package installed as .pyc files alone imports them."""
    copy = tmp_path / "genmodel"
    shutil.copytree(Path(str(genmodel.__file__)).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert compileall.compile_dir(copy, quiet=1, legacy=True)  # module.pyc beside where module.py was
    for source in copy.rglob("*.py"):
        source.unlink()
    code = (
        "import genmodel, genmodel.report\n"
        "print(genmodel.__file__, len(genmodel.__all__), genmodel.Plan().tp, genmodel.INTERVAL_COVERAGE > 0,"
        " genmodel.report.format_bytes(2e9))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    where, count, tp, coverage, size = proc.stdout.split(maxsplit=4)
    assert where == str(copy / "__init__.pyc")  # (the copy, not the installed source)
    assert (int(count), tp, coverage) == (len(genmodel.__all__), "1", "True") and size.strip()


def test_a_static_estimate_loads_neither_the_simulator_nor_the_planner() -> None:
    loaded = _loaded_by(
        "import genmodel\ngenmodel.estimate('llama-3.1-8b', 'h100-sxm', input_tokens=128, output_tokens=128)"
    )
    assert "genmodel._phases" in loaded  # (the listing sees the estimate's modules)
    assert not loaded & {"genmodel._simulate", "genmodel._scheduler", "genmodel._search", "genmodel._recheck"}
