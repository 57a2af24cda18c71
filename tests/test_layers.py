"""Layering (docs/architecture.md, "Layers"): the CLI uses only the public API and the report layer;
the core modules do no I/O."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import genmodel

ROOT = Path(genmodel.__file__).resolve().parent.parent
CLI_FILES = sorted((ROOT / "cli").glob("**/*.py"))
#: the public API and the modules above it (plans, validation, sweeps, simulation, ...) may read
#: files and call it
TOP_FILES = (
    "_api.py", "_planning.py", "_validate.py", "_sweep.py", "_requirements.py", "_simulate_api.py",
    "_calibrate.py", "_compare.py", "__init__.py",
    "_validate_rate.py",  # a rate case's closed form: the specs as estimate() builds them
)  # fmt: skip
CORE_FILES = sorted(p for p in (ROOT / "genmodel").glob("_*.py") if p.name not in TOP_FILES)
ALLOWED_GENMODEL = {"genmodel", "genmodel.report"}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import inside cli/ is fine only between cli modules
                names.append(f".{node.module or ''}")
            elif node.module is not None:
                names.append(node.module)
                if node.module == "genmodel":
                    names += [f"genmodel.{a.name}" for a in node.names if a.name.startswith("_")]
    return names


def test_there_is_code_to_check() -> None:
    assert CLI_FILES
    assert len(CORE_FILES) >= 8


@pytest.mark.parametrize("path", CLI_FILES, ids=lambda p: p.name)
def test_cli_imports_only_the_public_api(path: Path) -> None:
    for name in _imports(path):
        top = name.split(".")[0]
        if top == "genmodel":
            assert name in ALLOWED_GENMODEL, f"{path.name} imports {name}"
        elif name.startswith("."):
            continue
        else:
            # stdlib or a third-party package, never a sibling top-level module of genmodel's tree
            assert top in sys.stdlib_module_names or top in {"typer", "rich", "click", "yaml"}, (
                f"{path.name} imports {name}"
            )


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_core_does_no_io(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            assert name not in {"open", "print", "read_text", "write_text", "input"}, (
                f"{path.name}:{node.lineno} calls {name}()"
            )
    for name in _imports(path):
        assert not name.startswith(("genmodel.io", "genmodel.report", "genmodel._api")), (
            f"{path.name} imports {name}"
        )
        assert name.split(".")[0] not in {"yaml", "json", "csv", "pydantic", "typer", "rich"}, (
            f"{path.name} imports {name}"
        )


def test_import_checker_catches_a_private_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from genmodel._ops import roofline\nfrom genmodel import _units\nimport genmodel.io._load\n"
    )
    names = _imports(bad)
    assert "genmodel._ops" in names
    assert "genmodel._units" in names
    assert "genmodel.io._load" in names
    assert not set(names) <= ALLOWED_GENMODEL


def test_every_data_folder_is_a_packaged_package() -> None:
    # a data folder missing from [tool.setuptools] packages installs fine in editable mode and is
    # absent from a wheel: `pip install .` would then fail on its first lookup
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    root = Path(__file__).resolve().parent.parent
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(config["packages"])
    data = set(config["package-data"])
    for top, package in (("hardware_db", "genmodel.hardware_db"), ("workloads", "genmodel.workloads")):
        for folder in (root / top).iterdir():
            if folder.is_dir() and any(folder.glob("*.yaml")):
                name = f"{package}.{folder.name}"
                assert name in listed, f"{name} missing from [tool.setuptools] packages"
                assert name in data, f"{name} missing from [tool.setuptools.package-data]"
                assert (folder / "__init__.py").is_file()
