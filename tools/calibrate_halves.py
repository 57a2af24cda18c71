"""Split-half check of calibration on the bundled cases: does a fit on half of one device's rows
improve the error on the other half?

The rows of one device (and mode, and engine) are split into two halves by alternate measurements
(a serving run's TTFT and TPOT rows stay together); each half is fitted with
:func:`genmodel.calibrate` from the base profile and the other half is predicted with the base and
with the fit. Prints one line per direction: rows, the parameters fitted, the in-sample MAPE before
and after, and the held-out half's MAPE with the base and with the fit.

    python tools/calibrate_halves.py h100-sxm static
    python tools/calibrate_halves.py b200 concurrency --engine trtllm --base default

The README ("Efficiency profiles and calibration") quotes its output.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import genmodel
from genmodel._intervalfit import measurement_unit
from genmodel._validate import predict_case


def halves(device: str, mode: str, engine: str | None) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The device's bundled rows of ``mode`` (and ``engine``), split by alternate measurements."""
    rows = [
        r
        for r in genmodel.read_cases(genmodel.public_cases_path())
        if r["hardware"] == device and r["mode"] == mode and (engine is None or r.get("engine") == engine)
    ]
    units = sorted({measurement_unit(r) for r in rows})
    side = {u: i % 2 for i, u in enumerate(units)}
    return [r for r in rows if side[measurement_unit(r)] == 0], [
        r for r in rows if side[measurement_unit(r)] == 1
    ]


def mape(rows: list[dict[str, str]], profile: genmodel.Profile) -> float:
    """MAPE (%) of ``rows`` predicted with ``profile``."""
    return statistics.fmean(
        abs(predict_case(r, profile=profile) / float(r["measured"]) - 1) * 100 for r in rows
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("device")
    p.add_argument("mode", choices=("static", "concurrency"))
    p.add_argument("--engine", help="only the rows of this engine")
    p.add_argument("--base", help="base profile (default: as genmodel calibrate picks it)")
    args = p.parse_args()
    a, b = halves(args.device, args.mode, args.engine)
    for fit_on, held in ((a, b), (b, a)):
        fit = genmodel.calibrate(fit_on, base=args.base, cross_validate=False)
        base = genmodel.load_profile(fit.base)
        print(
            f"{args.device} {args.mode} {args.engine or 'any engine'}: fit on {len(fit_on)} rows from "
            f"{fit.base} ({', '.join(fit.fitted)}): in sample {fit.mape_before:.1f} % -> "
            f"{fit.mape_after:.1f} %; other half ({len(held)} rows) {mape(held, base):.1f} % -> "
            f"{mape(held, fit.profile):.1f} %"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
