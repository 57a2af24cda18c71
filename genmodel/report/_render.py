"""Human units and text formats for results (SI inside, readable outside)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from genmodel._errors import GenModelError
from genmodel._units import GB, MS, US


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to one level with dotted keys: {"memory": {"fits": 1}} -> {"memory.fits": 1}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def _finite(x: Any, where: str = "") -> Any:
    """``x`` with tuples as lists, after checking that every float in it is finite."""
    if isinstance(x, float) and not math.isfinite(x):
        raise GenModelError(
            f"{where or 'value'}={x!r} is not a finite number, and JSON has no NaN or Infinity"
        )
    if isinstance(x, Mapping):
        return {k: _finite(v, f"{where}.{k}" if where else str(k)) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v, f"{where}[{i}]") for i, v in enumerate(x)]
    return x


def to_json(obj: Any) -> str:
    """JSON text that any JSON reader accepts (RFC 8259: no NaN or Infinity).

    Raises:
        GenModelError: a float in ``obj`` is NaN or infinite (the message names its key path);
            the inputs that could lead there are refused at the edges, so this is a guard.
    """
    return json.dumps(_finite(obj), indent=2, allow_nan=False)


def _json_cell(v: Any) -> Any:
    return json.dumps(_finite(v), allow_nan=False) if isinstance(v, list | tuple) else v


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = ()) -> str:
    """CSV text with a header of ``columns``, then the rest of the union of the rows' (flattened)
    keys, in first-seen order (``columns`` give the header of no rows at all); a list value is
    written as JSON."""
    # a list left after flattening (intervals, fabric tiers, memory tiers) is one cell of JSON,
    # which a CSV reader can parse back (Python's repr, with its quotes and None, is no format)
    flat = [{k: _json_cell(v) for k, v in flatten(r).items()} for r in rows]
    header: list[str] = list(columns)
    for r in flat:
        header.extend(k for k in r if k not in header)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return buf.getvalue()


def format_seconds(s: float) -> str:
    """Seconds in the most readable unit: 12.3 us, 45.6 ms, 7.89 s; nothing at all is 0 s."""
    if s == 0:  # no queue wait, no exposed comm: "0.0 us" read as a rounded small time
        return "0 s"
    if s < MS:
        return f"{s / US:.1f} us"
    if s < 1:
        return f"{s / MS:.2f} ms"
    return f"{s:.3g} s"


def format_bytes(b: float) -> str:
    """Bytes in decimal GB (1 GB = 1e9 B), or kB/MB below 0.01 GB."""
    if b == 0 or abs(b) >= 0.01 * GB:
        return f"{b / GB:.2f} GB"
    if abs(b) >= 1e6:
        return f"{b / 1e6:.2f} MB"
    return f"{b / 1e3:.1f} kB"
