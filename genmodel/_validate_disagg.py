"""Validation cases of disaggregated serving: their columns, their checks and their prediction.

A row with ``disaggregated`` true describes a prefill pool and a decode pool (``prefill_tp``,
``prefill_ep``, ``prefill_dp``, ``prefill_workers``, ``prefill_max_batch`` and the same for
``decode_``; an empty cell is 1, or the engine's cap for ``*_max_batch``). ``devices`` is the
total of both pools, and ``tp``, ``pp``, ``ep``, ``dp`` may be empty. The ``batch`` column is the
number of closed-loop clients (``mode`` ``concurrency``), or a ``rate`` row's columns give its
open-loop arrivals (:mod:`genmodel._validate_rate`).

Modelling assumptions: none of its own; each case is one :func:`genmodel.simulate` with
``disaggregated=True``, the engine of the row's ``engine`` column (else the one asked for).
"""

from __future__ import annotations

from typing import Any

from genmodel._errors import SpecError
from genmodel._options import MAX_DEVICES
from genmodel._simresult import SimulationResult
from genmodel._simulate_api import simulate
from genmodel._validate_rate import arrival_keywords, simulated_metric

#: the optional columns of a disaggregated case, after ``disaggregated``
POOL_COLUMNS = tuple(
    f"{side}_{name}" for side in ("prefill", "decode") for name in ("tp", "ep", "dp", "workers", "max_batch")
)
DISAGGREGATED_COLUMNS = ("disaggregated", *POOL_COLUMNS)

_TRUE, _FALSE = ("true", "1", "yes"), ("", "false", "0", "no")


def is_disaggregated(row: dict[str, str], where: str) -> bool:
    """Whether the row is a disaggregated case (its ``disaggregated`` column).

    Raises:
        SpecError: ``where: disaggregated=... must be true or false``.
    """
    value = (row.get("disaggregated") or "").strip().lower()
    if value not in _TRUE + _FALSE:
        raise SpecError(f"{where}: disaggregated={row.get('disaggregated')!r} must be true or false")
    return value in _TRUE


def pool_values(row: dict[str, str], where: str) -> dict[str, int | None]:
    """The pool columns of a row as integers (None where empty).

    Raises:
        SpecError: ``where: column=value must be an integer ...``, naming the first malformed column.
    """
    out: dict[str, int | None] = {}
    for name in POOL_COLUMNS:
        value = (row.get(name) or "").strip()
        if not value:
            out[name] = None
            continue
        if not (value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_DEVICES):
            raise SpecError(
                f"{where}: {name}={row.get(name)!r} must be an integer between 1 and {MAX_DEVICES:,}"
            )
        out[name] = int(value)
    return out


def is_disaggregated_serving(row: dict[str, str], where: str) -> bool:
    """Whether the row is a disaggregated serving case: ``disaggregated`` true and ``mode``
    concurrency or rate (a static row with ``disaggregated`` true is :func:`genmodel.estimate`'s run
    option: one plan, with the KV transfer added to its TTFT).

    Raises:
        SpecError: ``where: disaggregated=... must be true or false``.
    """
    return is_disaggregated(row, where) and row.get("mode") in ("concurrency", "rate")


def check_disaggregated_row(row: dict[str, str], where: str) -> bool:
    """Check a row's disaggregated columns; whether it is a disaggregated serving case.

    A disaggregated serving case has its ``pp`` (if given) 1 and its ``devices`` the total of
    both pools; any other row must leave the pool columns empty.

    Raises:
        SpecError: ``where: column=value ...`` naming the malformed column.
    """
    serving = is_disaggregated_serving(row, where)
    pools = pool_values(row, where)
    if not serving:
        given = [k for k, v in pools.items() if v is not None]
        if given:
            raise SpecError(
                f"{where}: {given[0]}={row[given[0]]!r} needs disaggregated=true and mode=concurrency or rate"
            )
        return False
    if (row.get("pp") or "1").strip() != "1":
        raise SpecError(f"{where}: pp={row.get('pp')!r} must be 1 or empty for a disaggregated case")
    total = sum(
        (pools[f"{side}_workers"] or 1) * (pools[f"{side}_tp"] or 1) * (pools[f"{side}_dp"] or 1)
        for side in ("prefill", "decode")
    )
    if (row.get("devices") or "").strip() != str(total):
        raise SpecError(
            f"{where}: devices={row.get('devices')!r} must be both pools' devices, "
            "prefill_workers x prefill_tp x prefill_dp + decode_workers x decode_tp x decode_dp "
            f"= {total}"
        )
    return True


def simulate_case(row: dict[str, str], *, engine: str, options: dict[str, Any]) -> SimulationResult:
    """Simulate a disaggregated case (a row :func:`check_disaggregated_row` accepted).

    Args:
        row: the case.
        engine: the engine when the row's ``engine`` column is empty.
        options: the row's run options (``system``, ``cp`` and :data:`~genmodel.OPTION_SPECS`).
    """
    pools = pool_values(row, f"case {row['id']}")
    return simulate(
        row["model"],
        row["hardware"],
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        **arrival_keywords(row),
        weight_dtype=row["weight_dtype"],
        act_dtype=row["act_dtype"] or None,
        kv_dtype=row["kv_dtype"] or None,
        engine=(row.get("engine") or "").strip() or engine,
        disaggregated=True,
        **pools,  # type: ignore[arg-type]
        **{k: v for k, v in options.items() if k != "disaggregated"},
    )


def predict_disaggregated(
    row: dict[str, str],
    *,
    serving: str,
    engine: str,
    options: dict[str, Any],
    done: dict[tuple[tuple[str, str], ...], SimulationResult | str],
    key: tuple[tuple[str, str], ...],
) -> float | str:
    """The metric of a disaggregated case, or why it cannot be predicted.

    Args:
        serving: the serving model asked for; only "simulated" serves these cases.
        done: simulations already run, by ``key`` (the TTFT and TPOT rows of one measurement
            share one).
    """
    return simulated_metric(
        row,
        serving=serving,
        run=lambda: simulate_case(row, engine=engine, options=options),
        done=done,
        key=key,
        kind="a disaggregated case",
    )
