"""What the ``genmodel`` command loads to start: a static estimate from the shell loads neither NumPy
nor another command's module, and ``--help`` not the serving model; the command built for one
command gives that command's output. Module sets only, never timings (tools/bench_estimate.py
measures the times)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from _cli import runner
from genmodel.cli._app import COMMAND_MODULES, app, base_app, command_app

ESTIMATE = ["estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--input-tokens", "128"]
ESTIMATE += ["--output-tokens", "128"]
#: modules a command may not need: every command's own module is imported only for it
OTHER_COMMANDS = {f"genmodel.cli.{module}" for module in COMMAND_MODULES.values()}


def _loaded(argv: list[str]) -> set[str]:
    """The modules ``genmodel ARGV`` (the entry point, in a fresh interpreter) has loaded at its end."""
    code = (
        "import io, contextlib, sys\n"
        "from genmodel.cli._app import main\n"
        f"sys.argv = ['genmodel', *{argv!r}]\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main()\n    except SystemExit as e:\n        assert not e.code, e.code\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(proc.stdout.split())


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_a_static_estimate_from_the_shell_loads_no_numpy_and_no_other_command(fmt: str) -> None:
    loaded = _loaded([*ESTIMATE, "--format", fmt])
    assert {"genmodel._phases", "typer", "pydantic"} <= loaded  # (the listing sees the estimate's modules)
    assert "numpy" not in loaded
    assert not loaded & OTHER_COMMANDS
    assert "rich.progress" not in loaded


def test_a_command_of_its_own_module_loads_that_module_only() -> None:
    loaded = _loaded(["requirements", "--help"])
    assert "genmodel.cli._requirements" in loaded
    assert not loaded & (OTHER_COMMANDS - {"genmodel.cli._requirements"})


def test_help_loads_every_command_but_not_the_serving_model() -> None:
    loaded = _loaded(["--help"])
    assert loaded >= OTHER_COMMANDS
    assert not loaded & {"genmodel._serving", "genmodel._phases", "numpy", "pydantic", "yaml"}


def _names(app_: object) -> list[str]:
    from typer.main import get_command

    return list(get_command(app_).commands)  # type: ignore[arg-type, attr-defined]


def test_command_modules_names_every_command_of_its_own_module() -> None:
    names = _names(app)
    assert set(_names(base_app)) <= set(names)
    assert set(names) - set(_names(base_app)) == set(COMMAND_MODULES)
    for name in names:
        assert _names(command_app(["genmodel", name])) == [name]
    for argv in (["genmodel"], ["genmodel", "--help"], ["genmodel", "estimat"], ["genmodel", "--version"]):
        assert command_app(argv) is app


@pytest.mark.parametrize(
    "args",
    [
        [*ESTIMATE, "--format", "json"],
        [*ESTIMATE, "--tp", "0"],
        [*ESTIMATE, "--bogus", "1"],
        ["estimate", "--help"],
        ["hw", "show", "h100-sxm"],
        ["requirements", "--help"],
    ],
)
def test_the_one_command_app_gives_the_full_apps_output(args: list[str]) -> None:
    full = runner.invoke(app, args, prog_name="genmodel")
    one = runner.invoke(command_app(["genmodel", *args]), args, prog_name="genmodel")
    assert (one.exit_code, one.stdout, one.stderr) == (full.exit_code, full.stdout, full.stderr)
    if args[-1] == "json":
        assert json.loads(one.stdout)["ttft_s"] > 0
