"""Deterministic closed-loop simulation of a token-budget continuous-batching server.

All step times come from genmodel (cases.json: batched prefill of k prompts, decode step at batch d).
No fitted constants: the token budget C per step is the framework's published default.
"""
import json, math
import numpy as np
from pathlib import Path

HERE = Path(__file__).resolve().parent  # outputs are written next to the scripts

# Published defaults (see report): vLLM max_num_batched_tokens (API server, >=70 GiB GPU, not A100) 8192;
# SGLang chunked_prefill_size 8192 (H100/H200, < 160 GiB), 16384 (B200); TRT-LLM max_num_tokens 8192.
def budget(c):
    if c["fw"] == "sglang":
        return 16384 if c["hw"] == "b200" else 8192
    return 8192

def funcs(c):
    S = c["S"]
    g = {int(k): v for k, v in c["grid"].items()}
    ks = sorted(g)
    tok = [0.0] + [k * S for k in ks]
    pf = [0.0] + [g[k]["prefill_s"] for k in ks]
    C = budget(c)
    if S > C and str(C) in c["chunk"]:
        n = math.ceil(S / C)
        per = c["chunk"][str(C)] / n
        # a chunk of C tokens costs one chunk pass; more tokens scale along the chunk passes
        tok = [0.0, float(C), float(S)] + [k * S for k in ks[1:]]
        pf = [0.0, per, c["chunk"][str(C)]] + [g[k]["prefill_s"] for k in ks[1:]]
    dd = [0.0] + [float(k) for k in ks]
    dt = [0.0] + [g[k]["decode_s"] for k in ks]
    ov = g[ks[0]]["decode_overhead_s"]
    tok, pf = np.array(tok), np.array(pf)
    order = np.argsort(tok); tok, pf = tok[order], pf[order]
    def t_pf(T):
        if T <= 0:
            return 0.0
        if T > tok[-1]:
            return pf[-1] * T / tok[-1]
        return float(np.interp(T, tok, pf))
    def t_dec(d):
        if d <= 0:
            return 0.0
        if d > dd[-1]:
            return dt[-1] * d / dd[-1]
        return float(np.interp(d, dd, dt))
    def step(T, d):
        a, b = t_pf(T), t_dec(d)
        return a + b - (ov if a > 0 and b > 0 else 0.0)
    return step, t_dec

def simulate(c, rounds, policy=None, stagger=0.0):
    """Mean TTFT and ITL over all requests of `rounds` requests per client (per replica)."""
    S, O = c["S"], c["O"]
    n = math.ceil(c["N"] / c["dp"])
    cap = max(1, int(c["max_running"] / c["dp"]))
    C = budget(c)
    policy = policy or ("prefill_first" if c["fw"] == "sglang" else "mixed")
    step, t_dec = funcs(c)
    now = 0.0
    queue = [[i * stagger, S, i] for i in range(n)]  # [arrival, prefill tokens left, client]
    queue.sort()
    running = []  # [decode steps left, first token time, client]
    done_count = [0] * n
    ttfts, itls, first_wave = [], [], []
    target = rounds * n
    finished = 0
    while finished < target:
        arrived = [q for q in queue if q[0] <= now + 1e-15]
        admit_room = cap - len(running)
        if arrived and admit_room > 0:
            d = len(running) if policy == "mixed" else 0
            room = C - d if policy == "mixed" else C
            T = 0; completed = []
            k = 0
            for q in arrived:
                if room <= 0 or k >= admit_room:
                    break
                take = min(room, q[1]); q[1] -= take; room -= take; T += take; k += 1
                if q[1] == 0:
                    completed.append(q)
            dt = step(T, d)
            now += dt
            if policy == "mixed":
                for r in running:
                    r[0] -= 1
            for q in completed:
                queue.remove(q)
                ttft = now - q[0]
                ttfts.append(ttft)
                if done_count[q[2]] == 0:
                    first_wave.append(ttft)
                running.append([O - 1, now, q[2]])
        elif running:
            # pure decode until the next completion or the next arrival
            kmin = min(r[0] for r in running)
            tnext = min((q[0] for q in queue if q[0] > now), default=math.inf)
            dtd = t_dec(len(running))
            if tnext < math.inf:
                kmin = max(1, min(kmin, math.ceil((tnext - now) / dtd)))
            now += kmin * dtd
            for r in running:
                r[0] -= kmin
        else:
            now = min(q[0] for q in queue)
            continue
        still = []
        for r in running:
            if r[0] <= 0:
                itls.append((now - r[1]) / (O - 1)); finished += 1; done_count[r[2]] += 1
                if done_count[r[2]] < rounds:
                    queue.append([now, S, r[2]])
            else:
                still.append(r)
        running = still
        queue.sort()
    return float(np.mean(ttfts)), float(np.mean(itls)), float(np.mean(first_wave))

if __name__ == "__main__":
    import sys, time
    cs = json.load(open(HERE / "cases.json"))
    res = {}
    t0 = time.time()
    for c in cs:
        res[c["id"]] = {}
        for R in (1, 3, 10):
            res[c["id"]][R] = simulate(c, R)
        print(c["id"], c["fw"], c["N"], c["S"], c["meas_ttft"], [round(res[c["id"]][R][0], 3) for R in (1, 3, 10)],
              "tpot", c["meas_tpot"], round(res[c["id"]][10][1], 4), round(time.time() - t0, 1), flush=True)
    json.dump(res, open(HERE / "sim.json", "w"))
