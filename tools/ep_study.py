"""DeepSeek-V3 decode versus expert-parallel degree on DGX H100 nodes and on CloudMatrix384.

Prints the markdown table shown in the README ("Expert parallelism at scale"): for each EP degree
(attention data-parallel over the same devices, tp=1), the decode step (TPOT), decode tokens/s per
device, the share of the step spent in exposed communication and the dominant collective, at a
fixed number of sequences per device. Run: ``python tools/ep_study.py``.
"""

from __future__ import annotations

import genmodel

SEQS_PER_DEVICE = 128
INPUT_TOKENS = 2000
OUTPUT_TOKENS = 64
EP_DEGREES = (8, 16, 32, 64, 128, 256)
PLATFORMS = (
    # (system, weight and activation dtype, as deployed: fp8 on Hopper, int8 on Ascend)
    ("dgx-h100", "fp8"),
    ("cloudmatrix384", "int8"),
)


def rows() -> list[dict[str, object]]:
    """One row per (platform, EP degree): the decode figures, or why the plan cannot run."""
    out: list[dict[str, object]] = []
    for system, dtype in PLATFORMS:
        for ep in EP_DEGREES:
            row: dict[str, object] = {"system": system, "ep": ep}
            try:
                est = genmodel.estimate(
                    "deepseek-v3",
                    system,
                    tp=1,
                    dp=ep,
                    ep=ep,
                    batch=SEQS_PER_DEVICE * ep,
                    input_tokens=INPUT_TOKENS,
                    output_tokens=OUTPUT_TOKENS,
                    weight_dtype=dtype,
                    act_dtype=dtype,
                    kv_dtype="bf16",
                )
            except genmodel.GenModelError as exc:
                row["note"] = str(exc).split(";")[0]
                out.append(row)
                continue
            d = est.decode
            row.update(
                tpot_ms=est.tpot_s * 1e3,
                tokens_per_s_per_device=est.decode_tokens_per_s_per_device,
                comm_share=d.comm_s / d.time_s,
                dominant=d.dominant_collective or "-",
                fits=est.memory.fits,
            )
            out.append(row)
    return out


def markdown() -> str:
    """The table as markdown."""
    lines = [
        "| system | EP (= attention DP) | TPOT | decode tok/s/device | exposed comm share "
        "| dominant collective |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows():
        if "note" in r:
            lines.append(f"| {r['system']} | {r['ep']} | - | - | - | cannot run: {r['note']} |")
            continue
        fits = "" if r["fits"] else " (KV does not fit)"
        rate = f"{r['tokens_per_s_per_device']:,.0f}{fits}"
        lines.append(
            f"| {r['system']} | {r['ep']} | {r['tpot_ms']:.1f} ms | {rate} "
            f"| {r['comm_share']:.0%} | {r['dominant']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())
