"""The README's long-context table is what the model computes today (rerun the notebook if not)."""

from __future__ import annotations

from pathlib import Path

import genmodel

ROOT = Path(__file__).parent.parent
LONG = {"tp": 8, "input_tokens": 127_000, "output_tokens": 1_000}


def _row(est: genmodel.Estimate) -> str:
    tpot = f"{est.tpot_s * 1e3:.0f} ms" if est.tpot_s < 0.1 else f"{est.tpot_s:.3g} s"
    rate = est.batch / est.tpot_s
    return (
        f"| {est.batch} | {tpot} | {rate:.0f} |" if rate >= 10 else f"| {est.batch} | {tpot} | {rate:.1f} |"
    )


def test_readme_llama_128k_cxl_table_is_current() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    base = genmodel.estimate("llama-3.1-70b", "h100-sxm", batch="max", **LONG)
    cmmd = genmodel.estimate(
        "llama-3.1-70b", "h100-sxm", batch="max", kv_offload="cxl-samsung-cmm-d-128gb:4", **LONG
    )
    sparse = genmodel.estimate(
        "llama-3.1-70b",
        "h100-sxm",
        batch=cmmd.batch,
        kv_offload="cxl-samsung-cmm-d-128gb:4",
        sparse_attention_frac=0.1,
        **LONG,
    )
    leo = genmodel.estimate(
        "llama-3.1-70b", "h100-sxm", batch="max", kv_offload="cxl-astera-leo-512gb", **LONG
    )
    assert base.batch < cmmd.batch
    for est in (base, cmmd, sparse, leo):
        assert _row(est) in readme.replace(",", ""), f"README row out of date: {_row(est)}"
