"""The options every genmodel command shares, defined once, and the output they control.

``--format table|json|csv`` chooses the rendering, ``--output FILE`` writes it to a file instead of
stdout (whole or not at all; ``wrote FILE`` goes to stderr), ``--plot FILE`` writes a figure (HTML,
or PNG where a static renderer is installed). Progress bars and spinners go to stderr, and only when
stderr is a terminal, so they never mix with the data on stdout. Bad input (:class:`GenModelError`)
is one red line on stderr and exit code 2.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

import genmodel

#: exit codes (documented in ``genmodel --help``)
EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_NO_PLAN = 3

out = Console(highlight=False, soft_wrap=True)
#: columns of a table written to a file or a pipe (a terminal uses its own width)
PLAIN_WIDTH = 120
err = Console(stderr=True, highlight=False, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


class Format(str, Enum):
    """The renderings of a result: a table for people, JSON or CSV for programs."""

    table = "table"
    json = "json"
    csv = "csv"


def _complete(*kinds: str) -> Callable[[str], list[str]]:
    """Shell completion of the ids of ``kinds`` (as :func:`genmodel.list_ids` names them)."""

    def complete(incomplete: str) -> list[str]:
        return [i for kind in kinds for i in genmodel.list_ids(kind) if i.startswith(incomplete)]

    return complete


def _complete_dtypes(incomplete: str) -> list[str]:
    return [d for d in genmodel.DTYPE_BYTES if d.startswith(incomplete)]


complete_hardware = _complete("hardware", "system", "power mode")
complete_models = _complete("model")

FORMAT_HELP = "Output format: table (for people), json or csv (for programs)."
OUTPUT_HELP = "Write the result to FILE instead of stdout (whole or not at all)."
PLOT_HELP = "Also write a plot to FILE: interactive HTML (.html), or PNG (.png; needs kaleido and Chrome)."
FormatOpt = Annotated[Format, typer.Option("--format", help=FORMAT_HELP)]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help=OUTPUT_HELP)]
PlotOpt = Annotated[Path | None, typer.Option("--plot", help=PLOT_HELP)]
ModelOpt = Annotated[
    str, typer.Option(help="Model id or alias, or a HF config.json path.", autocompletion=complete_models)
]
HardwareOpt = Annotated[
    str,
    typer.Option(
        help="Device or system id or alias (genmodel hw list); a device implies its system.",
        autocompletion=complete_hardware,
    ),
]
InputOpt = Annotated[int, typer.Option(help="Prompt tokens per request.")]
OutputTokensOpt = Annotated[int, typer.Option(help="Generated tokens per request.")]
TpOpt = Annotated[int, typer.Option(help="Tensor-parallel degree.")]
PpOpt = Annotated[int, typer.Option(help="Pipeline-parallel degree.")]
EpOpt = Annotated[int, typer.Option(help="Expert-parallel degree (divides tp*dp).")]
DpOpt = Annotated[int, typer.Option(help="Data-parallel degree (attention-DP for MoE models).")]
CpOpt = Annotated[int, typer.Option(help="Context-parallel degree (ring attention).")]
WeightDtypeOpt = Annotated[
    str, typer.Option(help="fp32|bf16|fp16|fp8|int8|fp4|int4", autocompletion=_complete_dtypes)
]
ActDtypeOpt = Annotated[
    str | None, typer.Option(help="Activation dtype (default: as weights).", autocompletion=_complete_dtypes)
]
KvDtypeOpt = Annotated[
    str | None, typer.Option(help="KV-cache dtype (default: bf16).", autocompletion=_complete_dtypes)
]
BatchOpt = Annotated[str | None, typer.Option(help="Static batch (whole deployment) or 'max'.")]
ConcurrencyOpt = Annotated[int | None, typer.Option(help="Closed-loop clients (serving mode).")]
TtftSloOpt = Annotated[str | None, typer.Option(help="TTFT target: 2s, 500ms, 0.5 (seconds).")]
TpotSloOpt = Annotated[str | None, typer.Option(help="TPOT target: 50ms, 20us, 0.05.")]


def parse_batch(value: str | None) -> int | str | None:
    """A ``--batch`` value: an integer, ``'max'`` or None.

    Raises:
        genmodel.SpecError: anything else.
    """
    if value is None or value == "max":
        return value
    try:
        return int(value)
    except ValueError:
        raise genmodel.SpecError(f"batch={value!r} must be an integer >= 1 or 'max'") from None


#: the default of a command's ``run_options`` parameter (filled by :func:`with_run_options`)
NO_RUN_OPTIONS: Mapping[str, Any] = MappingProxyType({})


def _run_option(spec: genmodel.OptionSpec) -> inspect.Parameter:
    """One run option as a typer parameter: its flag, help, type and default from its spec."""
    kind: Any = spec.type if spec.default is not None else spec.type | None
    option = typer.Option(spec.flags, help=spec.help)
    return inspect.Parameter(
        spec.name,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        default=spec.default,
        annotation=Annotated[kind, option],
    )


def with_run_options(*names: str) -> Callable[[F], F]:
    """Give a command the CLI flags of the run options (:data:`genmodel.OPTION_SPECS`), all or ``names``.

    The command declares ``run_options: Mapping[str, Any] = NO_RUN_OPTIONS`` where the flags go in
    its ``--help``, and receives there the values given, by the keyword of :func:`genmodel.estimate`
    (pass them on as ``**run_options``). The flags, defaults and help come from the options' fields,
    so a new run option needs no change here.
    """
    specs = [s for s in genmodel.OPTION_SPECS if not names or s.name in names]
    unknown = set(names) - {s.name for s in specs}
    assert not unknown, f"not run options: {sorted(unknown)}"

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn, eval_str=True)
        params: list[inspect.Parameter] = []
        for p in signature.parameters.values():
            params += [_run_option(s) for s in specs] if p.name == "run_options" else [p]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {s.name: kwargs.pop(s.name) for s in specs if s.name in kwargs}
            return fn(*args, run_options=values, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper  # type: ignore[return-value]

    return decorate


def examples(*lines: str) -> str:
    """The "Examples" block of a command's ``--help`` (rich markup): ``# comments`` dim, commands as written.

    Each command is a real one a test runs; break long ones with `` \\`` and an indented next line,
    so that they stay copy-pasteable in an 80-column terminal. (No indentation of the block: click
    strips a uniform one from an epilog.)
    """
    body = "\n".join(f"[dim]{escape(line)}[/dim]" if line.startswith("#") else escape(line) for line in lines)
    return f"[bold]Examples[/bold]\n\n{body}"


def friendly(fn: F) -> F:
    """Turn a GenModelError into one red line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except genmodel.GenModelError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", markup=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper  # type: ignore[return-value]


def write_text(text: str, output: Path) -> None:
    """Write ``text`` whole to ``output`` (via a temporary file beside it: never half-written)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") else text + "\n")
        os.replace(tmp, output)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    err.print(f"wrote {output}", markup=False)


def emit(text: str, output: Path | None) -> None:
    """Print ``text`` on stdout, or write it to ``output`` (and say so on stderr)."""
    if output is None:
        out.print(text, markup=False, end="" if text.endswith("\n") else "\n")
    else:
        write_text(text, output)


def emit_tables(tables: list[Table], output: Path | None) -> None:
    """Print rich tables, or write them as plain text to ``output``."""
    if output is None:
        # piped or redirected (make, less, a file): as wide as a file would be, unless COLUMNS says
        plain = not out.is_terminal and "COLUMNS" not in os.environ
        console = Console(highlight=False, soft_wrap=True, width=PLAIN_WIDTH) if plain else out
        for t in tables:
            console.print(t)
        return
    with open(os.devnull, "w") as sink:
        console = Console(record=True, width=PLAIN_WIDTH, file=sink)
        for t in tables:
            console.print(t)
        text = console.export_text()
    write_text(text, output)


def write_plot(figure: Any, plot: Path) -> None:
    """Write a plotly figure to ``plot`` (HTML or PNG by its suffix) and say so on stderr."""
    genmodel.report.write_figure(figure, plot)
    err.print(f"wrote {plot}", markup=False)


@contextlib.contextmanager
def working(message: str) -> Iterator[None]:
    """A transient spinner on stderr while something runs (only when stderr is a terminal)."""
    if not err.is_terminal:
        yield
        return
    with err.status(message, spinner="dots"):
        yield


def progress_bar(label: str, *, enabled: bool = True) -> Progress:
    """A transient progress bar on stderr (shown only when ``enabled`` and stderr is a terminal)."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not (enabled and err.is_terminal),
    )
