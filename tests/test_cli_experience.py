"""The CLI as a user meets it: help with runnable examples, one set of output options, plots, progress
on stderr only, documented exit codes, --version, shell completion, and a fast start."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.completion
from _cli import cli_bad, cli_ok, runner
from genmodel.cli import _options
from genmodel.cli._app import app
from rich.console import Console
from rich.text import Text

import genmodel
from genmodel.io import load_model_yaml
from genmodel.report import _figures

ROOT = typer.main.get_command(app)


def _walk(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group (click's, or the copy newer typer versions carry) with its path."""
    yield path, cmd
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        yield from _walk(sub, (*path, name))


COMMANDS = dict(_walk(ROOT))
#: commands whose examples are shown but not run here (`dashboard` starts a server)
NOT_RUN = {("dashboard",)}


def _examples(cmd: Any) -> list[str]:
    """The commands of an "Examples" block, continuation lines joined, as the user reads them."""
    plain = Text.from_markup(cmd.epilog or "").plain.replace("\\\n", " ")
    return [line.strip() for line in plain.splitlines() if line.strip().startswith("genmodel ")]


EXAMPLES = list(
    dict.fromkeys(ex for path, cmd in COMMANDS.items() if path not in NOT_RUN for ex in _examples(cmd))
)
#: commands that give results: each has --format table|json|csv and --output FILE
RESULT_COMMANDS = [
    ("estimate",),
    ("memory",),
    ("validate",),
    ("plan",),
    ("compare",),
    ("requirements",),
    ("sweep",),
    ("hw", "list"),
    ("hw", "show"),
    ("models", "list"),
    ("models", "show"),
]
PLOT_COMMANDS = [("plan",), ("compare",), ("sweep",)]
W = ["--input-tokens", "1000", "--output-tokens", "100"]
#: a cheap invocation of each result command (no --format, no --output)
CHEAP: dict[str, list[str]] = {
    "estimate": ["estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", *W],
    "memory": ["memory", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", *W, "--contexts", "8192"],
    "validate": ["validate"],
    "plan": ["plan", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "1", *W],
    "compare": [
        "compare",
        "--model",
        "llama-3.1-8b",
        "--hardware",
        "h100-sxm,h200-sxm",
        "--devices",
        "1",
        *W,
    ],
    "requirements": [
        *("requirements", "--model", "llama-3.2-1b", "--hardware", "h100-sxm", "--batch", "4", *W),
        *("--tpot-slo", "2ms", "--resource", "memory_bandwidth"),
    ],
    "sweep": ["sweep", "--model", "llama-3.2-1b", "--hardware", "h100-sxm", "--batch", "1,8", *W],
    "hw list": ["hw", "list"],
    "hw show": ["hw", "show", "h100-sxm"],
    "models list": ["models", "list"],
    "models show": ["models", "show", "llama-3.1-8b"],
}
HEAVY = {"plotly", "pandas", "scipy", "sympy", "dask", "distributed", "streamlit", "pyarrow", "kaleido"}


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda p: " ".join(p) or "genmodel")
def test_every_command_has_a_one_line_summary_and_examples(path: tuple[str, ...]) -> None:
    cmd = COMMANDS[path]
    text = cli_ok([*path, "--help"], columns=100)
    summary = (cmd.help or "").split("\n\n")[0]
    assert summary and len(_flat(summary)) <= 100 and "Example" not in summary
    assert _flat(summary) in _flat(text)
    assert "Examples" in text
    assert 1 <= len(_examples(cmd)) <= 3
    block = Text.from_markup(cmd.epilog or "").plain.split("\n\n")[1]  # after the "Examples" header
    for line in block.splitlines():
        assert line.strip() in text  # shown as written: no wrapping at 100 columns
        assert len(line) <= 78, f"{line!r} wraps in an 80-column terminal"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: " ".join(e.split()[1:4]))
def test_the_examples_in_help_run_as_written(
    example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_model_yaml("qwen3-30b-a3b").config.model_dump(exclude_none=True)
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")  # for `models import`
    args = shlex.split(example)
    assert args[0] == "genmodel"
    result = runner.invoke(app, args[1:], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    for flag in ("--output", "-o", "--plot"):
        if flag in args:
            written = tmp_path / args[args.index(flag) + 1]
            assert written.stat().st_size > 0
            assert f"wrote {written.name}" in result.stderr
    if "--format" in args and args[args.index("--format") + 1] == "json" and "--output" not in args:
        assert json.loads(result.stdout)


def test_top_level_help_lists_commands_and_documents_exit_codes() -> None:
    text = cli_ok(["--help"], columns=100)
    for name in (
        "estimate",
        "memory",
        "validate",
        "plan",
        "compare",
        "requirements",
        "sweep",
        "hw",
        "models",
    ):
        assert re.search(rf"^\W*{name}\s+\w", text, re.M), name  # listed with its description
    assert "Exit codes" in text
    for code in (0, 1, _options.EXIT_BAD_INPUT, _options.EXIT_NO_PLAN):
        assert re.search(rf"^\s*{code}\s+\w", text, re.M), code
    assert "--install-completion" in text and "--version" in text


def test_version() -> None:
    assert cli_ok(["--version"]).strip() == f"genmodel {genmodel.__version__}"


def test_shell_completion_script_and_id_completion(monkeypatch: pytest.MonkeyPatch) -> None:
    # typer finds the shell from the parent processes (under make that is sh, which it cannot serve)
    monkeypatch.setattr(typer.completion, "_get_shell_name", lambda: "bash")
    script = runner.invoke(app, ["--show-completion"], prog_name="genmodel")
    assert script.exit_code == 0, script.output
    assert "_GENMODEL_COMPLETE=complete_bash" in script.stdout

    def complete(line: str) -> list[str]:
        env = {"_GENMODEL_COMPLETE": "complete_bash", "_TYPER_COMPLETE_ARGS": line}
        env |= {"COMP_WORDS": line, "COMP_CWORD": str(len(line.split()) - 1)}
        result = runner.invoke(app, [], prog_name="genmodel", env=env)
        assert result.exit_code == 0, result.output
        return result.stdout.split()

    models = complete("genmodel estimate --model llama-3.1-")
    assert "llama-3.1-8b" in models and "qwen3-32b" not in models
    assert "h100-sxm" in complete("genmodel plan --hardware h10")
    assert "cloudmatrix384" in complete("genmodel hw show cloud")


@pytest.mark.parametrize("path", RESULT_COMMANDS, ids=" ".join)
def test_result_commands_share_the_output_options(path: tuple[str, ...]) -> None:
    params = {p.name: p for p in COMMANDS[path].params if p.param_type_name == "option"}
    fmt, output = params["format"], params["output"]
    assert fmt.opts == ["--format"]
    assert set(output.opts) == {"--output", "-o"}
    assert fmt.help is not None and fmt.help.startswith(_options.FORMAT_HELP)
    assert output.help is not None and output.help.startswith(_options.OUTPUT_HELP)
    if path in PLOT_COMMANDS:
        assert params["plot"].opts == ["--plot"] and params["plot"].help == _options.PLOT_HELP


@pytest.mark.parametrize("name", list(CHEAP))
def test_json_and_csv_parse_and_output_writes_only_the_file(name: str, tmp_path: Path) -> None:
    args = CHEAP[name]
    data: Any = json.loads(cli_ok([*args, "--format", "json"]))
    assert data
    rows = list(csv.DictReader(io.StringIO(cli_ok([*args, "--format", "csv"]))))
    assert rows and len(rows[0]) > 1
    # --output: the file, and on stderr only the line that says so
    target = tmp_path / "out" / ("rows.csv" if name == "sweep" else "result.json")
    result = runner.invoke(
        app, [*args, *([] if name == "sweep" else ["--format", "json"]), "-o", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert str(target) in result.stderr.strip().splitlines()[-1]
    if name == "sweep":
        assert len(list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))) == 2
    else:
        written = json.loads(target.read_text(encoding="utf-8"))
        assert type(written) is type(data) and len(written) == len(data)  # plan's timings differ
        table = tmp_path / "table.txt"
        result = runner.invoke(app, [*args, "--output", str(table)])
        assert result.exit_code == 0 and result.stdout == ""
        assert table.read_text(encoding="utf-8").strip()


@pytest.mark.parametrize("name", [n for n in CHEAP if n not in ("sweep", "validate")])  # (sweep: by suffix)
def test_an_output_file_named_json_or_csv_is_written_in_that_format(name: str, tmp_path: Path) -> None:
    # without --format, `-o result.json` wrote the table's box drawing into result.json
    args = CHEAP[name]
    cli_ok([*args, "-o", str(tmp_path / "result.json")])
    assert json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))
    cli_ok([*args, "-o", str(tmp_path / "result.CSV")])
    assert len(next(csv.reader(io.StringIO((tmp_path / "result.CSV").read_text(encoding="utf-8"))))) > 1
    other = "table" if name.endswith(" show") else "json"  # (the show commands default to JSON)
    line = cli_bad([*args, "--format", other, "-o", str(tmp_path / "result.csv")])
    assert f"format={other}" in line and "give --format csv" in line
    assert not (tmp_path / "result.csv").exists()


PLAN = ["plan", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "1", *W]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([*PLAN, "--plot", "pareto.svg"], "expected a file ending in .html"),
        ([*CHEAP["compare"], "--plot", "bars.jpg"], "expected a file ending in .html"),
        ([*CHEAP["sweep"], "--plot", "sweep.pdf"], "expected a file ending in .html"),
        (["hw", "show", "h100-sxn", "--format", "table"], "did you mean"),
        (["models", "show", "llama-9", "--format", "csv"], "llama-9"),
    ],
    ids=["plan svg", "compare jpg", "sweep pdf", "hw show", "models show"],
)
def test_bad_values_are_one_red_line_and_exit_2(args: list[str], message: str) -> None:
    assert message in cli_bad(args)


@pytest.mark.parametrize("name", list(CHEAP))
def test_an_unknown_format_is_a_usage_error(name: str) -> None:
    result = runner.invoke(app, [*CHEAP[name], "--format", "yaml"])
    assert result.exit_code == 2
    text = _flat(re.sub(r"[│╭╮╰╯─]", " ", result.output))  # without the error box
    assert "'yaml' is not one of 'table', 'json', 'csv'" in text
    assert "Traceback" not in result.output


def test_png_without_a_static_renderer_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_figures, "_has_static_renderer", lambda: False)
    target = tmp_path / "pareto.png"
    assert "pip install kaleido" in cli_bad([*PLAN, "--plot", str(target)])
    assert not target.exists()


@pytest.mark.skipif(importlib.util.find_spec("kaleido") is not None, reason="a static renderer is installed")
def test_a_failing_static_renderer_is_one_red_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_figures, "_has_static_renderer", lambda: True)  # plotly then fails on its own
    assert "PNG export failed" in cli_bad([*PLAN, "--plot", str(tmp_path / "pareto.png")])
    assert list(tmp_path.iterdir()) == []  # no half-written file


def test_write_figure_png_is_written_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Fig:
        def write_image(self, path: str, format: str) -> None:
            assert format == "png"
            Path(path).write_bytes(b"\x89PNG fake")

    class Broken:
        def write_image(self, path: str, format: str) -> None:
            Path(path).write_bytes(b"half")
            raise RuntimeError("Kaleido requires Google Chrome to be installed.\nmore")

    monkeypatch.setattr(_figures, "_has_static_renderer", lambda: True)
    target = tmp_path / "sub" / "fig.png"
    assert genmodel.report.write_figure(Fig(), target) == target
    assert target.read_bytes() == b"\x89PNG fake"
    with pytest.raises(genmodel.SpecError, match="requires Google Chrome"):
        genmodel.report.write_figure(Broken(), target)
    assert target.read_bytes() == b"\x89PNG fake"  # the old file, untouched
    assert [p.name for p in target.parent.iterdir()] == ["fig.png"]


def test_no_plan_meeting_the_targets_exits_3_with_the_result_printed() -> None:
    result = runner.invoke(app, [*PLAN, "--tpot-slo", "10us", "--format", "json"])
    assert result.exit_code == _options.EXIT_NO_PLAN == 3, result.output
    d = json.loads(result.stdout)
    assert d["best"] is None and d["evaluated"] > 0
    assert "no plan meets the targets" in result.stderr
    result = runner.invoke(app, [*CHEAP["compare"], "--tpot-slo", "10us", "--format", "json"])
    assert result.exit_code == 3, result.output
    assert all(r["error"] for r in json.loads(result.stdout))
    ok = runner.invoke(app, [*CHEAP["compare"], "--tpot-slo", "50ms", "--format", "json"])
    assert ok.exit_code == 0 and not any(r["error"] for r in json.loads(ok.stdout))


def test_compare_and_sweep_figures_show_what_the_api_returned(tmp_path: Path) -> None:
    rows = genmodel.compare(
        "llama-3.1-8b",
        ["h100-sxm", "rtx-4090"],
        devices=1,
        input_tokens=1000,
        output_tokens=100,
        tpot_slo_s=0.02,
    )
    fig = genmodel.report.compare_figure(rows)
    assert len(fig.data) == 3
    goodput = list(fig.data[0].y)
    for row, y in zip(rows, goodput, strict=True):
        assert y == (None if row["error"] else pytest.approx(row["output_tokens_per_s_per_device"]))
    records = [
        {
            "model": "m",
            "hardware": "h",
            "tp": 1,
            "batch": b,
            "error": None,
            "tpot_s": t,
            "output_tokens_per_s_per_device": g,
        }
        for b, t, g in ((1, 0.01, 100.0), (8, 0.02, 400.0))
    ] + [{"model": "m", "hardware": "h", "tp": 3, "batch": 1, "error": "tp=3", "tpot_s": None}]
    fig = genmodel.report.sweep_figure(records)
    assert len(fig.data) == 1
    assert list(fig.data[0].x) == pytest.approx([100.0, 50.0])
    assert list(fig.data[0].y) == [100.0, 400.0]
    path = genmodel.report.write_figure(fig, tmp_path / "sweep.html")
    assert "plotly" in path.read_text(encoding="utf-8")


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """stderr treated as a terminal, so that progress bars and spinners are drawn."""
    monkeypatch.setattr(_options, "err", Console(stderr=True, force_terminal=True, width=80))


@pytest.mark.parametrize(
    ("args", "label"),
    [(["validate"], "validating"), (PLAN, "searching plans"), (CHEAP["compare"], "planning on 2 platforms")],
)
def test_progress_goes_to_stderr_never_into_json(args: list[str], label: str, terminal: None) -> None:
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)
    assert label in result.stderr
    assert "\x1b" not in result.stdout


def _imported(code: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = {
        line.rsplit("|", 1)[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    return {name.split(".")[0] for name in names}


def test_the_cli_imports_no_heavy_library_to_start_or_estimate() -> None:
    assert "typer" in _imported("import genmodel.cli._app")  # the parse sees imports at all
    assert not _imported("import genmodel.cli._app") & HEAVY
    # --help loads neither the arrays nor the database's parsers (genmodel's names load on use)
    assert not _imported("import genmodel.cli._app") & {"numpy", "pydantic", "yaml"}
    run = (
        "import sys; from genmodel.cli._app import main; sys.argv = ['genmodel', 'estimate', '--model', "
        "'llama-3.1-8b', '--hardware', 'h100-sxm', '--input-tokens', '128', '--output-tokens', '128']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code"
    )
    assert not _imported(run) & HEAVY


def test_tables_in_a_pipe_are_as_wide_as_in_a_file() -> None:
    # not a terminal and no COLUMNS (make, a pipe): 120 columns, so headers are not cut to "clie…"
    args = ["plan", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "2", *W]
    result = runner.invoke(app, [*args, "--tpot-slo", "30ms"], env={"COLUMNS": None})
    assert result.exit_code == 0, result.output
    assert "tok/s/device" in result.stdout and "clients" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= _options.PLAIN_WIDTH


def test_user_text_is_printed_as_given_not_as_emoji(tmp_path: Path) -> None:
    """rich turns ``:smile:`` into an emoji unless told not to: ids and values a user typed come back
    verbatim, in the red line and in JSON written to stdout."""
    args = "estimate --model :smile: --hardware h100-sxm --input-tokens 8 --output-tokens 8"
    message = cli_bad(args.split())
    assert ":smile:" in message and "\N{SMILING FACE WITH OPEN MOUTH}" not in message
    cases = tmp_path / "cases.csv"
    with open(genmodel.public_cases_path(), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    row = next(r for r in rows if r["id"] == "P05")
    with open(cases, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        writer.writeheader()
        writer.writerow({**row, "id": "run:fire:1"})
    out = cli_ok(["validate", str(cases), "--format", "json"])
    assert json.loads(out)["cases"][0]["id"] == "run:fire:1"


def test_plan_csv_is_the_pareto_frontier_and_the_help_says_so() -> None:
    # plan --format csv writes the frontier, not the best plan: the help said only that the plot is
    args = [*CHEAP["plan"], "--serving", "closed-form"]
    frontier = json.loads(cli_ok([*args, "--format", "json"]))["pareto"]
    rows = list(csv.DictReader(io.StringIO(cli_ok([*args, "--format", "csv"]))))
    assert [(int(r["tp"]), float(r["concurrency"])) for r in rows] == [
        (p["tp"], float(p["concurrency"])) for p in frontier
    ]
    assert "so is --format csv" in " ".join(cli_ok(["plan", "--help"], columns=200).split())
