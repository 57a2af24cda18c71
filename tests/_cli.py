"""Running the CLI in-process for the tests: a success, or a bad-input exit (code 2, one red line)."""

from __future__ import annotations

from genmodel.cli._app import app
from typer.testing import CliRunner

runner = CliRunner()


def cli_ok(args: list[str], *, columns: int = 80) -> str:
    """stdout of a command that must succeed, at a terminal ``columns`` wide."""
    result = runner.invoke(app, args, env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.stdout


def cli_bad(args: list[str]) -> str:
    """stderr of a command that must fail on bad input: exit code 2, one line, no traceback."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr
