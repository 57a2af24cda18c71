"""The last lines of ``make demo``: the headline capacity answer of a ``genmodel plan`` JSON file.

``make demo`` writes the plan as JSON (``genmodel plan ... --format json --output FILE``) and runs
this script on it, so that the answer is on screen at the end instead of scrolled away above the
plan's tables.

Usage: python tools/demo_summary.py PLAN.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _time(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds >= 1 else f"{seconds * 1e3:.3g} ms"


def summary(plan: dict[str, Any]) -> list[str]:
    """The headline of a plan's JSON: the question, what was searched, and the best plan."""
    slo = plan["slo"]
    targets = ", ".join(
        f"{name} <= {_time(slo[key])}" for name, key in (("TTFT", "ttft_s"), ("TPOT", "tpot_s")) if slo[key]
    )
    lines = [
        f"capacity plan: {plan['model']} on {plan['devices']:,} devices of {plan['system']}"
        + (f", {targets}" if targets else ""),
        f"  {plan['evaluated']:,} plans evaluated in {plan['elapsed_s']:.2g} s; "
        f"{plan['meeting_slo']:,} meet the targets",
    ]
    best = plan["best"]
    if best is None:
        return [*lines, "  best: no plan meets the targets"]
    degrees = " ".join(f"{k}={best[k]}" for k in ("tp", "pp", "ep", "dp", "cp") if best[k] > 1 or k == "tp")
    price = best.get("usd_per_million_output_tokens")
    return [
        *lines,
        f"  best: {degrees}, {best['weight_dtype']} weights, {best['batch']:,} clients: "
        f"TTFT {_time(best['ttft_s'])}, TPOT {_time(best['tpot_s'])}",
        f"        {best['output_tokens_per_s_per_device']:,.1f} output tokens/s per device"
        + ("" if price is None else f", {price:.3g} USD per million output tokens"),
    ]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    print("\n".join(summary(json.loads(Path(argv[0]).read_text(encoding="utf-8")))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
