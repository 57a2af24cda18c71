"""The options every genmodel command shares, defined once, and the output they control.

``--format table|json|csv`` chooses the rendering, ``--output FILE`` writes it to a file instead of
stdout (whole or not at all; ``wrote FILE`` goes to stderr; ``-`` is stdout, as Unix tools read it),
``--plot FILE`` writes a figure (HTML, or PNG where a static renderer is installed). Progress bars
and spinners go to stderr, and only when stderr is a terminal, so they never mix with the data on
stdout. Bad input (:class:`GenModelError`) is one red line on stderr and exit code 2; a warning
(``--profile`` made for another device) is one yellow line on stderr.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import genmodel

if TYPE_CHECKING:
    from rich.progress import Progress

#: exit codes (documented in ``genmodel --help``)
EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_NO_PLAN = 3

out = Console(highlight=False, soft_wrap=True, emoji=False)
#: columns of a table written to a file or a pipe (a terminal uses its own width)
PLAIN_WIDTH = 120
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
F = TypeVar("F", bound=Callable[..., Any])


class Format(str, Enum):
    """The renderings of a result: a table for people, JSON or CSV for programs."""

    table = "table"
    json = "json"
    csv = "csv"


#: the most devices and tokens a CLI option takes: far beyond any deployment, small enough that no
#: search or loop runs away on them
MAX_DEVICES = 1_000_000
MAX_TOKENS = 10_000_000
_OPTION_NAMES = {spec.name: spec for spec in genmodel.OPTION_SPECS}
#: the bounds (inclusive) of the CLI's own numeric options by parameter name; the run options'
#: are in their specs (:attr:`genmodel.OptionSpec.bounds`). :func:`friendly` checks both before a
#: command runs, and :func:`parse_int` the integers given in text (lists, 'max' or a number).
BOUNDS: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        **dict.fromkeys(("tp", "pp", "ep", "dp", "cp", "devices"), (1, MAX_DEVICES)),
        **dict.fromkeys(("input_tokens", "output_tokens", "batch", "concurrency"), (1, MAX_TOKENS)),
        "contexts": (2, MAX_TOKENS),
        "prefill_chunks": (1, MAX_TOKENS),
        # a rate's sign is the API's to check (plan's and simulate's messages name their keywords)
        "request_rate": (-math.inf, 1e9),
        "ttft_quantile": (1e-6, 1 - 1e-6),
        "workers": (1, 1024),
        "recheck": (0, 1000),
        "top": (1, 1000),
    }
)
_ASCII_INT = re.compile(r"^\s*[+]?[0-9]+\s*$", re.ASCII)


class _Unparsed(str):
    """A value click could not read as a number: kept as text, refused by :func:`friendly` in one line."""

    kind = "a number"


class _UnparsedInt(_Unparsed):
    """A value click could not read as an integer (``-5``, ``1.5``, ``many``)."""

    kind = "an integer"


def lenient_int(text: Any) -> Any:
    """An ``--option`` integer as click reads it, except that a value that is no integer reaches the
    command as :class:`_Unparsed` text, so that the error is one red line, not click's usage box."""
    if not isinstance(text, str):  # a default
        return text
    return int(text) if _ASCII_INT.match(text) else _UnparsedInt(text)


def lenient_float(text: Any) -> Any:
    """As :func:`lenient_int`, for a float."""
    if not isinstance(text, str):  # a default
        return text
    try:
        return float(text)
    except ValueError:
        return _Unparsed(text)


def _show(bound: float) -> str:
    """A bound as people read it: 1,000,000 or 0.5."""
    return f"{int(bound):,}" if float(bound).is_integer() else f"{bound:g}"


def check_number(name: str, value: Any, bounds: tuple[float, float]) -> None:
    """Refuse a number that is not finite or outside ``bounds`` (inclusive), or text click could
    not read as a number.

    Raises:
        genmodel.SpecError: ``name=value must be ...``.
    """
    low, high = bounds
    span = f"at most {_show(high)}" if low == -math.inf else f"between {_show(low)} and {_show(high)}"
    if isinstance(value, _Unparsed):
        raise genmodel.SpecError(f"{name}={str(value)!r} must be {value.kind}, {span}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise genmodel.SpecError(f"{name}={value!r} must be a finite number, {span}")
    if not low <= value <= high:
        raise genmodel.SpecError(f"{name}={value!r} must be {span}")


#: seconds per unit of a time option
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}
_TIME = re.compile(
    r"^\s*([+-])?(\d+(?:\.\d*)?|\.\d+)(e[+-]?\d+)?\s*(s|ms|us|µs)?\s*$", re.IGNORECASE | re.ASCII
)
#: the longest time target taken (a day: beyond it a target says nothing about serving)
MAX_SECONDS = 86400.0


def parse_seconds(name: str, value: str | None, *, zero: bool = False) -> float | None:
    """A time option in seconds: a number with its unit, ``2s``, ``500ms`` or ``20us``.

    A bare number is refused (``--tpot-slo 50`` could mean 50 ms or 50 s), with both as the hint.

    Args:
        zero: 0 is a time the option takes (a latency that may be nothing); else it must be positive.

    Raises:
        genmodel.SpecError: no unit, or not a finite time of at most a day, positive (at least 0
            with ``zero``); the message names the option and the value given.
    """
    if value is None:
        return None
    match = _TIME.match(value)
    if match is None:
        raise genmodel.SpecError(f"{name}={value!r} must be a time such as 50ms or 2s (units: s, ms, us)")
    sign, number, exponent, unit = match.groups()
    if unit is None:
        bare = value.strip()
        raise genmodel.SpecError(f"{name}={value!r} needs a unit: {bare}ms or {bare}s?")
    seconds = float((sign or "") + number + (exponent or "")) * _TIME_UNITS[unit.lower()]
    in_range = (seconds >= 0 if zero else seconds > 0) and seconds <= MAX_SECONDS
    if not in_range:
        span = (
            f"a time between 0 s and {MAX_SECONDS:g} s"
            if zero
            else f"a positive time of at most {MAX_SECONDS:g} s"
        )
        raise genmodel.SpecError(f"{name}={value!r} must be {span}, such as 50ms or 2s")
    return seconds + 0.0  # (-0ms: 0.0)


def parse_int(name: str, text: str) -> int:
    """An integer given as text (ASCII digits), within the bounds of ``name`` (:data:`BOUNDS`).

    Raises:
        genmodel.SpecError: empty, not an integer (``²``, ``1.5``), or out of bounds.
    """
    low, high = BOUNDS.get(name, (-math.inf, math.inf))
    if not _ASCII_INT.match(text):
        raise genmodel.SpecError(f"{name}={text!r} must be an integer between {_show(low)} and {_show(high)}")
    value = int(text)
    check_number(name, value, (low, high))
    return value


def parse_ints(name: str, text: str) -> list[int]:
    """A comma-separated list of integers (:func:`parse_int`); an empty item is refused.

    Raises:
        genmodel.SpecError: an empty list or item, or an item :func:`parse_int` refuses.
    """
    items = text.split(",")
    if any(not item.strip() for item in items):
        raise genmodel.SpecError(f"{name}={text!r} has an empty value: integers, comma-separated")
    return [parse_int(name, item) for item in items]


#: the longest file name most file systems take (bytes)
_NAME_MAX = 255


def check_output_path(name: str, path: Path) -> None:
    """Refuse a path a result cannot be written to whole, before any computation: an empty path, a
    directory, a symbolic link, anything but a regular file (a FIFO, ``/dev/null``), a name too long,
    or a folder that is not one or cannot be written in.

    Raises:
        genmodel.SpecError: ``name=path ...``, saying why.
    """
    text = str(path)
    if text in ("", ".") or not path.name or path.name == "..":
        raise genmodel.SpecError(f"{name}={text!r} must be a file path")
    if len(os.fsencode(path.name)) > _NAME_MAX:
        raise genmodel.SpecError(f"{name}: the file name is longer than {_NAME_MAX} bytes")
    if path.is_symlink():
        raise genmodel.SpecError(f"{name}={text!r} is a symbolic link: give the file it points to")
    if path.exists():
        if path.is_dir():
            raise genmodel.SpecError(f"{name}={text!r} is a directory: give a file in it")
        if not path.is_file():
            raise genmodel.SpecError(f"{name}={text!r} is not a regular file (a FIFO, a device, a socket)")
        if not os.access(path, os.W_OK):
            raise genmodel.SpecError(f"{name}={text!r} is not writable")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise genmodel.SpecError(f"{name}={text!r}: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise genmodel.SpecError(f"{name}={text!r}: cannot write in {folder}")


#: the arguments that name a file a command writes
_WRITTEN = ("output", "plot", "records")
#: ``--output -`` (and ``--records -``): stdout, as Unix tools read a bare ``-`` (:func:`output_path`)
STDOUT = Path("-")


def output_path(text: Any) -> Any:
    """A written file's option as click reads it, except that a bare ``-`` is :data:`STDOUT` (this
    very object: ``./-`` stays a file named ``-``, although pathlib makes both ``Path('-')``)."""
    if not isinstance(text, str):  # a default
        return text
    return STDOUT if text == "-" else Path(text)


def _check_stdout(kwargs: Mapping[str, Any]) -> None:
    """Refuse ``--records -`` where the result goes to stdout too (they would be mixed)."""
    output = kwargs.get("output")
    if kwargs.get("records") is STDOUT and (output is None or output is STDOUT):
        raise genmodel.SpecError(
            "records='-' would mix with the result on stdout: give --output FILE too, or --records FILE"
        )


#: the suffixes of ``--output`` that name a format (with the default table, box drawing was written
#: into result.json); sweep and calibrate choose their files' formats themselves
_FORMAT_SUFFIXES = {".json": Format.json, ".csv": Format.csv}


def _format_by_suffix(command: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """``--output FILE.json`` (``.csv``) writes that format where ``--format`` is the command's
    default; another format given with it is refused (the file would not hold what its name says)."""
    records = kwargs.get("records")  # (simulate's per-request records: CSV only)
    if isinstance(records, Path) and records.suffix.lower() in (".json", ".parquet", ".pq"):
        raise genmodel.SpecError(f"records={str(records)!r}: the records are CSV: give a FILE.csv")
    output, given = kwargs.get("output"), kwargs.get("format")
    named = _FORMAT_SUFFIXES.get(output.suffix.lower()) if isinstance(output, Path) else None
    if (
        command.__name__ in ("sweep", "calibrate")
        or output is STDOUT
        or named is None
        or given in (None, named)
    ):
        return
    if given is inspect.signature(command).parameters["format"].default:
        kwargs["format"] = named
        return
    raise genmodel.SpecError(
        f"format={given.value}: --output {output} names {named.value} by its suffix: give "
        f"--format {named.value}, or a file of another suffix"
    )


def _check_arguments(kwargs: Mapping[str, Any]) -> None:
    """Check each numeric argument of a command against :data:`BOUNDS` or its run option's bounds,
    and the ``output``, ``plot`` and ``records`` paths (:func:`check_output_path`), each its own file."""
    _check_stdout(kwargs)
    paths = {name: kwargs[name] for name in _WRITTEN if isinstance(kwargs.get(name), Path)}
    paths = {name: path for name, path in paths.items() if path is not STDOUT}
    seen: dict[Path, str] = {}
    for name, path in paths.items():
        check_output_path(name, path)
        first = seen.setdefault(path.resolve(), name)
        if first != name:  # the later write would replace the first
            raise genmodel.SpecError(f"{name}={str(path)!r} is also --{first}: give each its own file")
    for name, value in kwargs.items():
        spec = _OPTION_NAMES.get(name)
        if name in BOUNDS:
            check_number(name, value, BOUNDS[name])
        elif spec is not None and spec.bounds is not None:
            check_number(name, value, spec.bounds)
        elif isinstance(value, _Unparsed):
            raise genmodel.SpecError(f"{name}={str(value)!r} must be {value.kind}")


def _complete(*kinds: str) -> Callable[[str], list[str]]:
    """Shell completion of the ids of ``kinds`` (as :func:`genmodel.list_ids` names them)."""

    def complete(incomplete: str) -> list[str]:
        return [i for kind in kinds for i in genmodel.list_ids(kind) if i.startswith(incomplete)]

    return complete


def _complete_dtypes(incomplete: str) -> list[str]:
    return [d for d in genmodel.DTYPE_BYTES if d.startswith(incomplete)]


def _complete_weight_dtypes(incomplete: str) -> list[str]:
    return [d for d in genmodel.WEIGHT_DTYPE_BYTES if d.startswith(incomplete)]


complete_hardware = _complete("hardware", "system", "power mode")
complete_models = _complete("model")

FORMAT_HELP = "Output format: table (for people), json or csv (for programs)."
OUTPUT_HELP = "Write the result to FILE instead of stdout (whole or not at all); - is stdout."
#: (most commands': a FILE.json or FILE.csv is written in that format; sweep's and calibrate's own)
RESULT_OUTPUT_HELP = f"{OUTPUT_HELP} A FILE.json or FILE.csv: that format."
PLOT_HELP = "Also write a plot to FILE: interactive HTML (.html), or PNG (.png; needs kaleido and Chrome)."
FormatOpt = Annotated[Format, typer.Option("--format", help=FORMAT_HELP, case_sensitive=False)]
OutputOpt = Annotated[
    Path | None, typer.Option("--output", "-o", help=RESULT_OUTPUT_HELP, parser=output_path)
]
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
InputOpt = Annotated[int, typer.Option(help="Prompt tokens per request.", parser=lenient_int)]
OutputTokensOpt = Annotated[int, typer.Option(help="Generated tokens per request.", parser=lenient_int)]
TpOpt = Annotated[int, typer.Option(help="Tensor-parallel degree.", parser=lenient_int)]
PpOpt = Annotated[int, typer.Option(help="Pipeline-parallel degree.", parser=lenient_int)]
EpOpt = Annotated[int, typer.Option(help="Expert-parallel degree (divides tp*dp).", parser=lenient_int)]
DpOpt = Annotated[
    int, typer.Option(help="Data-parallel degree (attention-DP for MoE models).", parser=lenient_int)
]
CpOpt = Annotated[int, typer.Option(help="Context-parallel degree (ring attention).", parser=lenient_int)]
WeightDtypeOpt = Annotated[
    str,
    typer.Option(
        help="fp32|bf16|fp16|fp8|int8|fp4|int4, or a quantised format with its scales "
        "(mxfp4|q4_0|q4_k_m|q8_0|...)",
        autocompletion=_complete_weight_dtypes,
    ),
]
ActDtypeOpt = Annotated[
    str | None, typer.Option(help="Activation dtype (default: as weights).", autocompletion=_complete_dtypes)
]
KvDtypeOpt = Annotated[
    str | None, typer.Option(help="KV-cache dtype (default: bf16).", autocompletion=_complete_dtypes)
]
BatchOpt = Annotated[str | None, typer.Option(help="Static batch (whole deployment) or 'max'.")]
ConcurrencyOpt = Annotated[
    int | None, typer.Option(help="Closed-loop clients (serving mode).", parser=lenient_int)
]


def _lower(value: str | None) -> str | None:
    """A choice's id as written in any case (the ids are lower-case, as dtypes are)."""
    return value.lower() if isinstance(value, str) else value


ServingOpt = Annotated[
    str,
    typer.Option(
        help="With --concurrency: simulated (the engine's scheduler, default) | closed-form.", callback=_lower
    ),
]
EngineOpt = Annotated[
    str,
    typer.Option(
        help="Simulated engine: vllm (0.10 V1, default) | sglang (0.5) | trtllm (1.0, NVIDIA GPUs only).",
        callback=_lower,
    ),
]
# overrides of the simulated engine's knobs (None: the preset's), as simulate and requirements take them
MaxNumSeqsOpt = Annotated[
    int | None, typer.Option(help="Override: most running sequences.", parser=lenient_int)
]
MaxBatchedTokensOpt = Annotated[
    int | None, typer.Option(help="Override: token budget per step.", parser=lenient_int)
]
AdmissionOpt = Annotated[str | None, typer.Option(help="Override: reserve | on-demand.")]
OverlapSchedulerOpt = Annotated[
    bool | None,
    typer.Option(help="Override: a step's batch is chosen while the last runs (TensorRT-LLM's way)."),
]
TtftSloOpt = Annotated[str | None, typer.Option(help="TTFT target with its unit: 2s, 500ms.")]
PROFILE_HELP = next(s.help for s in genmodel.OPTION_SPECS if s.name == "profile")
ProfileOpt = Annotated[str | None, typer.Option(help=PROFILE_HELP)]


def profile_option(profile: str | None) -> dict[str, Any]:
    """The ``profile=`` keyword of an estimating call: empty when --profile is not given."""
    return {} if profile is None else {"profile": profile}


TpotSloOpt = Annotated[str | None, typer.Option(help="TPOT target with its unit: 50ms, 20us.")]


def parse_batch(value: str | None) -> int | str | None:
    """A ``--batch`` value: an integer, ``'max'`` (in any case, as the choices are read) or None.

    Raises:
        genmodel.SpecError: anything else.
    """
    if value is None or value.strip().lower() == "max":
        return None if value is None else "max"
    if not _ASCII_INT.match(value):
        raise genmodel.SpecError(f"batch={value!r} must be an integer >= 1 or 'max'")
    return parse_int("batch", value)


#: the default of a command's ``run_options`` parameter (filled by :func:`with_run_options`)
NO_RUN_OPTIONS: Mapping[str, Any] = MappingProxyType({})


def _run_option(spec: genmodel.OptionSpec) -> inspect.Parameter:
    """One run option as a typer parameter: its flag, help, type and default from its spec."""
    kind: Any = spec.type if spec.default is not None else spec.type | None
    lenient = {int: lenient_int, float: lenient_float}.get(spec.type)
    option = typer.Option(spec.flags, help=spec.help, parser=lenient)
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
    """Check the numeric arguments (:data:`BOUNDS`, the run options' bounds), and turn a
    GenModelError into one red line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            _check_arguments(kwargs)
            _format_by_suffix(fn, kwargs)
            warning = profile_warning(kwargs.get("profile"), kwargs.get("hardware"))
            try:
                result = fn(*args, **kwargs)
            except typer.Exit:  # a result (plan's exit code 3) was given: the warning stands
                _warn(warning)
                raise
        except genmodel.GenModelError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", markup=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        _warn(warning)
        return result

    return wrapper  # type: ignore[return-value]


def _warn(warning: str | None) -> None:
    if warning is not None:
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}", markup=True)


def profile_warning(profile: Any, hardware: Any) -> str | None:
    """What to say where ``--profile`` names the devices it was made for (its ``hardware``, as
    ``calibrate`` writes it) and the run's device is not one of them: the profile still applies
    (genmodel/_profiles.py: applied to any other device it is an extrapolation, which may be
    meant), but not silently. None where it names none (``default``), or it or ``hardware`` (an
    id, a comma list or a list of them) cannot be read: the command reports that itself.
    """
    if not isinstance(profile, str) or not hardware:
        return None
    ids = [h for item in ([hardware] if isinstance(hardware, str) else hardware) for h in item.split(",")]
    try:
        loaded = genmodel.load_profile(profile)
        others = loaded.made_for_others(genmodel.load_hardware(h.strip()).device.id for h in ids)
    except genmodel.GenModelError:
        return None
    if not others:
        return None
    return (
        f"profile {profile} was made for {', '.join(loaded.hardware)}, not {', '.join(others)}: its "
        "efficiencies are carried over as they are (an extrapolation)"
    )


def write_text(text: str, output: Path, name: str = "output") -> None:
    """Write ``text`` whole to ``output`` (via a temporary file beside it: never half-written), or
    print it on stdout where ``output`` is :data:`STDOUT`.

    Raises:
        genmodel.SpecError: the file cannot be written (the system's reason), named ``name=``.
    """
    if output is STDOUT:
        emit(text, None)
        return
    check_output_path(name, output)
    with cannot_write(name, output):
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text if text.endswith("\n") else text + "\n")
            os.chmod(tmp, genmodel.report.new_file_mode(output))  # (mkstemp's file is 0o600)
            os.replace(tmp, output)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    err.print(f"wrote {output}", markup=False)


@contextlib.contextmanager
def cannot_write(name: str, path: Path) -> Iterator[None]:
    """Turn an OSError while writing ``path`` into one line (:class:`genmodel.SpecError`)."""
    try:
        yield
    except OSError as exc:
        raise genmodel.SpecError(f"{name}={str(path)!r}: cannot write: {exc.strerror or exc}") from None


def emit(text: str, output: Path | None, *, screen: Console = out) -> None:
    """Print ``text`` on stdout (or ``screen``: :data:`err`), or write it to ``output`` (and say so
    on stderr); ``output`` :data:`STDOUT` prints it."""
    if output is None or output is STDOUT:
        screen.print(text, markup=False, end="" if text.endswith("\n") else "\n")
    else:
        write_text(text, output)


def emit_tables(tables: list[Table], output: Path | None, *, screen: Console = out) -> None:
    """Print rich tables on stdout (or ``screen``: :data:`err`), or write them as plain text to
    ``output``; ``output`` :data:`STDOUT` prints them."""
    if output is None or output is STDOUT:
        # piped or redirected (make, less, a file): as wide as a file would be, unless COLUMNS says
        plain = not screen.is_terminal and "COLUMNS" not in os.environ
        console = (
            Console(file=screen.file, highlight=False, soft_wrap=True, emoji=False, width=PLAIN_WIDTH)
            if plain
            else screen
        )
        for t in tables:
            console.print(t)
        return
    with open(os.devnull, "w") as sink:
        console = Console(record=True, emoji=False, width=PLAIN_WIDTH, file=sink)
        for t in tables:
            console.print(t)
        text = console.export_text()
    write_text(text, output)


def write_plot(figure: Any, plot: Path) -> None:
    """Write a plotly figure to ``plot`` (HTML or PNG by its suffix) and say so on stderr."""
    check_output_path("plot", plot)
    with cannot_write("plot", plot):
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
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not (enabled and err.is_terminal),
    )


@contextlib.contextmanager
def plan_progress() -> Iterator[Callable[[int, int], None]]:
    """A transient bar on stderr while a plan search runs (layouts evaluated of all, from the
    search's ``on_progress``), then a note that the best plans are being simulated; only when
    stderr is a terminal. Yields the ``on_progress`` callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    with bar:
        task = bar.add_task("searching plans (layouts)", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
            if done == total:
                bar.update(task, description="simulating the best plans")

        yield update


RequestsPerClientOpt = Annotated[
    int | None,
    typer.Option(
        help="Simulated --concurrency: requests each client sends, warm-up included (default 12).",
        show_default=False,
    ),
]
WarmupRequestsOpt = Annotated[
    int | None,
    typer.Option(
        help="Simulated --concurrency: each client's first requests, left out of the means (default 2).",
        show_default=False,
    ),
]
WarmupRestartOpt = Annotated[
    bool,
    typer.Option(
        help="With --concurrency: the warm-up drains, then every client starts its measured requests "
        "together (perf_analyzer, under genai-perf); --no-warmup-restart: each client goes straight on."
    ),
]
WarmupReplayOpt = Annotated[
    bool,
    typer.Option(
        help="With the restart: the first measured requests send the warm-up's prompts again "
        "(perf_analyzer), from the prefix cache of an engine that keeps one (vLLM, SGLang); "
        "--no-warmup-replay: fresh prompts."
    ),
]
