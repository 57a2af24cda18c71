"""Candidate TTFT models: in-sample and leave-one-group-out errors."""
import json, math, sys
import numpy as np
from scipy.optimize import minimize
from pathlib import Path

HERE = Path(__file__).resolve().parent  # outputs are written next to the scripts

cs = json.load(open(HERE / "cases.json"))
sim = json.load(open(HERE / "sim.json"))
ANOM = {"PS003", "PS017", "PS019"}
for c in cs:
    c["nr"] = math.ceil(c["N"] / c["dp"])
    for R in ("1", "3", "10"):
        c[f"sim{R}"], c[f"simitl{R}"], c["wave1"] = sim[c["id"]][R]
    c["family"] = "deepseek" if c["model"].startswith("deepseek") else c["model"]

def base(c, p): return c["pred_ttft"]

# each model: (name, n_params, f(case, params), x0, per_framework)
MODELS = [
    ("M0 steady state (current)", 0, lambda c, p: c["pred_ttft"], []),
    ("M1 sync waves, first wave only (sim R=1)", 0, lambda c, p: c["sim1"], []),
    ("M2 sync waves, sim R=3 per client", 0, lambda c, p: c["sim3"], []),
    ("M3 sync waves, sim R=10 per client", 0, lambda c, p: c["sim10"], []),
    ("M4 steady + a", 1, lambda c, p: c["pred_ttft"] + p[0], [0.1]),
    ("M5 steady + a_fw (per framework)", "fw", lambda c, p: c["pred_ttft"] + p[0], [0.1]),
    ("M6 steady + a + b N_r", 2, lambda c, p: c["pred_ttft"] + p[0] + p[1] * c["nr"], [0.1, 0.001]),
    ("M7 steady + a + b N_r S", 2, lambda c, p: c["pred_ttft"] + p[0] + p[1] * c["nr"] * c["S"] * 1e-6, [0.1, 0.1]),
    ("M8 steady x k", 1, lambda c, p: c["pred_ttft"] * p[0], [3.0]),
    ("M9 (1-w) steady + w wave1", 1, lambda c, p: (1 - p[0]) * c["pred_ttft"] + p[0] * c["wave1"], [0.1]),
    ("M10 (1-w) steady + w wave1 + a", 2, lambda c, p: (1 - p[0]) * c["pred_ttft"] + p[0] * c["wave1"] + p[1], [0.1, 0.1]),
    ("M11 sim R=10 + a", 1, lambda c, p: c["sim10"] + p[0], [0.1]),
    ("M12 max(steady, sim R=10) ... no const", 0, lambda c, p: max(c["pred_ttft"], c["sim10"]), []),
    ("M14 steady + k ITL_pred", 1, lambda c, p: c["pred_ttft"] + p[0] * c["pred_tpot"], [10.0]),
    ("M15 steady + a + k ITL_pred", 2, lambda c, p: c["pred_ttft"] + p[0] + p[1] * c["pred_tpot"], [0.05, 10.0]),
    ("M16 max(steady, simR10) + k ITL_pred", 1, lambda c, p: max(c["pred_ttft"], c["sim10"]) + p[0] * c["pred_tpot"], [10.0]),
    ("M17 steady + k_fw ITL_pred (per fw)", "fw", lambda c, p: c["pred_ttft"] + p[0] * c["pred_tpot"], [10.0]),
    ("M13 steady + a + b P", 2, lambda c, p: c["pred_ttft"] + p[0] + p[1] * c["P"], [0.1, 1.0]),
]

def ape(pred, meas): return abs(pred - meas) / meas

def loss(f, p, train):
    return float(np.mean([ape(f(c, p), c["meas_ttft"]) for c in train]))

def fit(f, x0, train):
    if not x0:
        return []
    best = None
    for scale in (1.0, 0.3, 3.0):
        r = minimize(lambda p: loss(f, p, train), np.array(x0) * scale, method="Nelder-Mead",
                     options=dict(xatol=1e-6, fatol=1e-7, maxiter=4000))
        if best is None or r.fun < best.fun:
            best = r
    return list(best.x)

def fit_model(m, train):
    name, k, f, x0 = m
    if k == "fw":
        pooled = fit(f, x0, train)
        per = {fw: fit(f, x0, [c for c in train if c["fw"] == fw]) for fw in {c["fw"] for c in train}}
        return lambda c: f(c, per.get(c["fw"], pooled)), {"pooled": pooled, **per}
    p = fit(f, x0, train)
    return (lambda c: f(c, p)), p

def stats(pairs):
    e = [ape(p, m) for p, m in pairs]
    under = sum(p < m for p, m in pairs)
    return 100 * np.mean(e), 100 * np.median(e), under, len(pairs) - under

def evaluate(m, train_filter):
    rows = {}
    train_all = [c for c in cs if train_filter(c)]
    pred, params = fit_model(m, train_all)
    rows["in"] = {c["id"]: pred(c) for c in cs}
    for g in ("fw", "hw", "model"):
        out = {}
        for val in sorted({c[g] for c in cs}):
            tr = [c for c in cs if c[g] != val and train_filter(c)]
            pr, _ = fit_model(m, tr)
            for c in cs:
                if c[g] == val:
                    out[c["id"]] = pr(c)
        rows[g] = out
    return rows, params

def fmt(s): return f"{s[0]:6.1f} {s[1]:6.1f} {s[2]:3d}/{s[3]:<3d}"

if __name__ == "__main__":
    excl = len(sys.argv) > 1 and sys.argv[1] == "excl"
    filt = (lambda c: c["id"] not in ANOM) if excl else (lambda c: True)
    print(f"training set: {'48 (PS003, PS017, PS019 excluded from fitting)' if excl else 'all 51'}")
    print("errors: MAPE %, median APE %, under/over; 'all' = 51 cases, 'clean' = 48 without PS003/PS017/PS019")
    hdr = f"{'model':44} {'in-sample all':>20} {'in clean':>20} {'LOGO fw clean':>20} {'LOGO hw clean':>20} {'LOGO model clean':>20} {'LOGO fw all':>20}"
    print(hdr)
    results = {}
    for m in MODELS:
        rows, params = evaluate(m, filt)
        results[m[0]] = {k: v for k, v in rows.items()}
        meas = {c["id"]: c["meas_ttft"] for c in cs}
        def s(key, clean):
            return stats([(rows[key][i], meas[i]) for i in rows[key] if not (clean and i in ANOM)])
        print(f"{m[0][:44]:44} {fmt(s('in', False)):>20} {fmt(s('in', True)):>20} {fmt(s('fw', True)):>20} "
              f"{fmt(s('hw', True)):>20} {fmt(s('model', True)):>20} {fmt(s('fw', False)):>20}  params={np.round(params, 4).tolist() if not isinstance(params, dict) else {k: np.round(v, 3).tolist() for k, v in params.items()}}")
    json.dump(results, open(HERE / f"results_{'excl' if excl else 'all'}.json", "w"))
