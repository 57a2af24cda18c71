"""``genmodel.compare``: the best plan of one workload on several platforms, side by side.

Modelling assumptions: none of its own; each platform's row is :func:`genmodel.plan`'s answer
(:mod:`genmodel._planning`) for its device budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from genmodel._errors import InfeasibleError, SpecError
from genmodel._hardware import Device
from genmodel._model import ModelSpec
from genmodel._options import RunOptions
from genmodel._phases import Estimate
from genmodel._planning import plan
from genmodel._scalars import plain_scalars
from genmodel._system import System


@plain_scalars
def compare(
    model: str | ModelSpec,
    hardware: Sequence[str | Device | System],
    *,
    devices: int | Sequence[int],
    input_tokens: int,
    output_tokens: int,
    options: RunOptions | None = None,
    **plan_args: Any,
) -> list[dict[str, Any]]:
    """The best plan of the same workload on each hardware id, side by side.

    ``hardware`` is a list of ids (or a comma-separated string of them); ``devices`` is one budget
    for all, or one per hardware id. ``options`` (the run options) and
    ``plan_args`` (SLOs and their percentiles, dtypes, objective, serving, engine, recheck, run
    options by keyword) are :func:`plan`'s: by default each platform's answer is the simulated
    re-check of its closed-form best. Each row:
    hardware, devices, the best plan's fields and metrics (goodput, TTFT, TPOT, $/Mtok, J/token),
    or ``error`` when no plan runs or meets the SLOs there; ``notes`` when the best plan's estimate
    assumes something beyond what was asked (as :func:`estimate`'s notes, and a simulated
    re-check's fall back to the closed form).

    Returns:
        One row (a JSON-ready dict, SI units) per hardware id, in the order given: the rows of
        ``genmodel compare --format json``.
    """
    if isinstance(hardware, str):  # "h100-sxm,h200-sxm", as the CLI takes it (not one id per letter)
        hardware = [h.strip() for h in hardware.split(",")]
    if not hardware:
        raise SpecError(f"hardware={list(hardware)!r} must name at least one platform")
    # one number is one budget for all (plan() refuses one that is no integer >= 1)
    budgets = [devices] * len(hardware) if isinstance(devices, int | float) else list(devices)
    if len(budgets) != len(hardware):
        names = ", ".join(str(getattr(h, "id", h)) for h in hardware)  # (a Device or System: its id)
        ids = f"{len(hardware)} hardware id{'s' if len(hardware) > 1 else ''} ({names})"
        raise SpecError(
            f"devices={budgets!r} has {len(budgets)} entries for {ids}: "
            "give one budget for all, or one per hardware id"
        )
    _refuse_repeats(hardware, budgets)
    rows: list[dict[str, Any]] = []
    for hw_id, n in zip(hardware, budgets, strict=True):
        row: dict[str, Any] = {"hardware": hw_id if isinstance(hw_id, str) else hw_id.id, "devices": n}
        try:
            report = plan(
                model,
                hw_id,
                devices=n,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                options=options,
                **plan_args,
            )
        except InfeasibleError as exc:
            rows.append({**row, "error": str(exc)})
            continue
        row["evaluated"] = report.evaluated
        if report.best is None:
            rows.append({**row, "error": report._serving_dict()["note"] or "no plan meets the SLOs"})
            continue
        b = report.best
        rows.append(
            {
                **row,
                "tp": b.plan.tp,
                "pp": b.plan.pp,
                "ep": b.plan.ep,
                "dp": b.plan.dp,
                "weight_dtype": b.precision.weight_dtype,
                "concurrency": b.batch,
                **(
                    {}
                    if report.request_rate_per_s is None
                    else {"instances": report.instances, "devices_needed": report.devices_needed}
                ),
                "ttft_s": b.ttft_s,
                "tpot_s": b.tpot_s,
                "output_tokens_per_s_per_device": b.output_tokens_per_s_per_device,
                "usd_per_million_output_tokens": b.usd_per_million_output_tokens,
                "joules_per_output_token": b.joules_per_output_token,
                "error": None,
                **_notes(b),
            }
        )
    return rows


def _notes(best: Estimate) -> dict[str, list[str]]:
    """The ``notes`` key of a row: the best estimate's notes and its serving state's (none: no key)."""
    notes = [*best.notes, *([best.serving.notes] if best.serving is not None and best.serving.notes else [])]
    return {"notes": notes} if notes else {}


def _refuse_repeats(hardware: Sequence[Any], budgets: Sequence[Any]) -> None:
    """Refuse a platform given twice with one budget (its id in any case, or an equal object),
    which would be planned twice for the same row; the same platform at two budgets is a
    comparison, and two ids of one system (``h100-sxm``, ``dgx-h100``) are the rows asked for.

    Raises:
        SpecError: ``hardware='ID' is given twice``.
    """
    seen: list[tuple[str, Device | System | None, Any]] = []
    for hw, n in zip(hardware, budgets, strict=True):
        label = hw.casefold() if isinstance(hw, str) else getattr(hw, "id", "")
        obj = hw if isinstance(hw, Device | System) else None
        if (label, obj, n) in seen:
            shown = hw if isinstance(hw, str) else label
            raise SpecError(f"hardware={shown!r} is given twice with devices={n!r}: give each platform once")
        seen.append((label, obj, n))
