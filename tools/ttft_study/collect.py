"""Collect per-case step times from genmodel's public API for the serving TTFT cases."""
import csv, json, math, re, sys
import genmodel
from genmodel._validate import _options  # run options of a case (overlap etc.), same as validate()
from pathlib import Path

HERE = Path(__file__).resolve().parent  # outputs are written next to the scripts

rows = list(csv.DictReader(open(HERE.parent.parent / "validation" / "validation_public.csv")))
byid = {r["id"]: r for r in rows}
out = []
for r in rows:
    if r["mode"] != "concurrency" or r["metric"] != "ttft_s":
        continue
    # paired TPOT row: same notes, metric tpot_s
    tp_row = next((q for q in rows if q["mode"] == "concurrency" and q["metric"] == "tpot_s"
                   and q["notes"] == r["notes"] and q["source_id"] == r["source_id"]), None)
    src = r["source_id"]
    m = re.search(r"(vllm|sglang|trtllm)\s*(\S+)?", src)
    fw = m.group(1) if m else ("nim" if "NIM" in src else "other")
    common = dict(input_tokens=int(r["input_tokens"]), output_tokens=int(r["output_tokens"]),
                  devices=int(r["devices"]), tp=int(r["tp"]), pp=int(r["pp"]), ep=int(r["ep"]), dp=int(r["dp"]),
                  weight_dtype=r["weight_dtype"], act_dtype=r["act_dtype"], kv_dtype=r["kv_dtype"], **_options(r))
    N = int(r["batch"]); dp = int(r["dp"]); S = int(r["input_tokens"]); O = int(r["output_tokens"])
    base = genmodel.estimate(r["model"], r["hardware"], concurrency=N, **common)
    nr = math.ceil(N / dp)
    # decode step and batched prefill of k prompts per replica, k = 1..nr (grid)
    ks = sorted(set([1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]) | {nr})
    ks = [k for k in ks if k <= max(nr, 1)]
    grid = {}
    for k in ks:
        e = genmodel.estimate(r["model"], r["hardware"], batch=k * dp, **common)
        grid[k] = dict(prefill_s=e.prefill.time_s, prefill_overhead_s=e.prefill.overhead_s,
                       decode_s=e.decode.time_s, decode_overhead_s=e.decode.overhead_s)
    # chunked prefill of one prompt at 8192 / 16384 token chunks (for S > C)
    chunk = {}
    for C in (2048, 8192, 16384):
        if S > C:
            e = genmodel.estimate(r["model"], r["hardware"], batch=dp, prefill_chunk=C, **common)
            chunk[C] = e.prefill.time_s
    out.append(dict(
        id=r["id"], fw=fw, version=(m.group(2) if m else ""), model=r["model"], hw=r["hardware"],
        N=N, dp=dp, tp=int(r["tp"]), ep=int(r["ep"]), S=S, O=O, wdt=r["weight_dtype"], notes=r["notes"],
        meas_ttft=float(r["measured"]), meas_tpot=float(tp_row["measured"]) if tp_row else None,
        tpot_id=tp_row["id"] if tp_row else None,
        pred_ttft=base.ttft_s, pred_tpot=base.tpot_s, P=base.prefill.time_s,
        step_B=base.decode.time_s, B=base.serving.decode_batch / dp, rho=base.serving.prefill_busy_frac,
        kv_limited=base.serving.kv_limited, max_running=base.serving.max_running,
        grid=grid, chunk=chunk,
    ))
    print(r["id"], fw, N, S, O, round(base.ttft_s, 4), r["measured"], file=sys.stderr)
json.dump(out, open(HERE / "cases.json", "w"), indent=1)
print(len(out))
