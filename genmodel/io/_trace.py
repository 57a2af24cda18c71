"""Reading a request trace for the serving simulation: CSV with ``arrival_s,input_tokens,output_tokens``."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from genmodel._arrivals import MAX_ARRIVAL_S
from genmodel._errors import SpecError

TRACE_COLUMNS = ("arrival_s", "input_tokens", "output_tokens")


def read_trace(path: str | Path) -> tuple[tuple[float, int, int], ...]:
    """The requests of a trace file, in file order.

    Args:
        path: a CSV file with a header naming ``arrival_s`` (seconds from the start, 0 to 1e9),
            ``input_tokens`` and ``output_tokens`` (integers >= 1); other columns are ignored.

    Returns:
        (arrival_s, input_tokens, output_tokens) per request.

    Raises:
        SpecError: the file cannot be read, lacks a column, has a malformed value, or no rows.
    """
    where = str(path)
    try:
        # utf-8-sig: a spreadsheet's byte-order mark; names stripped: "arrival_s, input_tokens"
        with Path(path).open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None:
                raise SpecError(f"trace={where}: the file is empty (need a header {','.join(TRACE_COLUMNS)})")
            reader.fieldnames = [name.strip() for name in reader.fieldnames]
            missing = [c for c in TRACE_COLUMNS if c not in reader.fieldnames]
            if missing:
                raise SpecError(
                    f"trace={where}: column {missing[0]} missing (need {','.join(TRACE_COLUMNS)}; "
                    f"the header is {','.join(reader.fieldnames)[:200]!r})"
                )
            rows = [_row(where, i, r) for i, r in enumerate(reader, start=2)]
    except OSError as exc:
        raise SpecError(f"trace={where}: cannot be read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SpecError(f"trace={where}: not a CSV file ({exc})") from None
    if not rows:
        raise SpecError(f"trace={where}: no requests")
    return tuple(rows)


def _row(where: str, line: int, row: dict[str, str]) -> tuple[float, int, int]:
    def number(name: str) -> float:
        text = (row.get(name) or "").strip()
        try:
            return float(text)
        except ValueError:
            raise SpecError(f"trace={where}: line {line}: {name}={text!r} must be a number") from None

    arrival = number("arrival_s")
    if not (math.isfinite(arrival) and 0 <= arrival <= MAX_ARRIVAL_S):
        raise SpecError(
            f"trace={where}: line {line}: arrival_s={arrival!r} must be between 0 and {MAX_ARRIVAL_S:.0e} s"
        )
    counts = []
    for name in ("input_tokens", "output_tokens"):
        value = number(name)
        if not (value.is_integer() and value >= 1):
            raise SpecError(f"trace={where}: line {line}: {name}={value!r} must be an integer >= 1")
        counts.append(int(value))
    return arrival, counts[0], counts[1]
