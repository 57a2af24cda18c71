"""genmodel.plan with the serving simulation: the closed form prunes, the simulation decides.

Checks: percentile SLOs (API and CLI), a candidate that meets the SLOs in the closed form but misses
them in simulation is never the answer, the answer is exactly the simulation of that plan, the
disagreement between the two serving models is reported, the best plan per weight dtype and the
top plans, and the CLI flags (run options, --engine, --serving, --recheck, --top).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from _cli import cli_bad, cli_ok, runner
from genmodel.cli._app import app

import genmodel
from genmodel._candidates import Slo, statistic_name
from genmodel._recheck import Deployment, Recheck, recheck, requests_per_client, simulable
from genmodel.io import load_hardware, load_model

#: Llama-3.1-70B fp8 on one 8-GPU H100 node, chat lengths
KW: dict[str, Any] = {"devices": 8, "input_tokens": 2000, "output_tokens": 500, "weight_dtype": "fp8"}
#: a p99 TTFT target the closed form's best meets (M/D/1 tail and the wave's groups: 0.78 s) and
#: its simulation misses (0.84 s: the tail of the groups' steps, which the closed form adds as a mean)
TTFT_P99 = 0.8
TIGHT = {"ttft_slo_s": TTFT_P99, "ttft_quantile": 0.99, "tpot_slo_s": 0.03}
#: the same deployment searched over two weight precisions, with SLOs both can meet
BOTH_DTYPES: dict[str, Any] = {**KW, "weight_dtype": ["fp8", "bf16"], "ttft_slo_s": 1.0, "tpot_slo_s": 0.05}


@pytest.fixture(scope="module")
def tight() -> genmodel.PlanReport:
    return genmodel.plan("llama-3.1-70b", "h100-sxm", **KW, **TIGHT)


def test_a_candidate_that_passes_the_closed_form_but_fails_simulation_is_not_the_answer(
    tight: genmodel.PlanReport,
) -> None:
    first = tight.rechecked[0]
    c = tight.result.candidates
    # the closed form's best meets the SLOs there, and misses the p99 TTFT target in simulation
    assert first.index == int(tight.result.ranking()[0]) and c.meets_slo[first.index]
    assert first.closed_ttft_s <= TTFT_P99 < first.simulated_ttft_s
    assert not first.meets_slo
    b = tight.best
    assert b is not None and tight.check is not None and tight.check.meets_slo
    assert tight.check.index != first.index
    assert tight.check.simulated_ttft_s <= TTFT_P99 and tight.check.ttft_s["p99"] <= TTFT_P99
    assert b.tpot_s <= 0.03 and b.serving is not None and b.serving.serving_model == "simulated"
    # nothing returned as meeting the SLOs missed them in simulation
    d = tight.to_dict()
    assert all(r["simulated_ttft_s"] <= TTFT_P99 for r in d["rechecked"] if r["meets_slo"])
    assert d["best"]["simulated"]["ttft_s"]["p99"] <= TTFT_P99


def test_with_one_recheck_none_passes_and_the_report_says_so() -> None:
    rep = genmodel.plan("llama-3.1-70b", "h100-sxm", recheck=1, **KW, **TIGHT)
    assert rep.best is None and len(rep.rechecked) == 1 and not rep.rechecked[0].meets_slo
    note = rep.to_dict()["serving"]["note"]
    assert "the one candidate re-checked does not meet" in note and "--recheck" in note
    # the closed form alone returns the candidate the simulation refused
    closed = genmodel.plan("llama-3.1-70b", "h100-sxm", recheck=0, **KW, **TIGHT)
    assert closed.best is not None and closed.serving == "closed-form"


def test_the_answer_is_the_simulation_of_that_plan(tight: genmodel.PlanReport) -> None:
    b = tight.best
    assert b is not None
    # at least 256 requests measured after each client's warm-up, two or more per client
    assert (
        requests_per_client(1) == 257 and requests_per_client(100) == 4 and requests_per_client(10_000) == 3
    )
    sim = genmodel.simulate(
        "llama-3.1-70b",
        "h100-sxm",
        tp=b.plan.tp,
        pp=b.plan.pp,
        ep=b.plan.ep,
        dp=b.plan.dp,
        weight_dtype="fp8",
        input_tokens=2000,
        output_tokens=500,
        concurrency=b.batch,
        requests_per_client=requests_per_client(b.batch),
        warmup_requests=1,
        warmup_restart=False,  # the re-check's warm-up flows straight into the measured requests
    )
    assert b.ttft_s == pytest.approx(sim.ttft_s.mean, rel=1e-12)
    assert b.tpot_s == pytest.approx(sim.tpot_s.mean, rel=1e-12)
    check = tight.check
    assert check is not None
    for name in ("p50", "p90", "p99"):
        assert check.ttft_s[name] == pytest.approx(getattr(sim.ttft_s, name), rel=1e-12)
        assert check.tpot_s[name] == pytest.approx(getattr(sim.tpot_s, name), rel=1e-12)
    assert check.ttft_s["p90"] <= check.ttft_s["p95"] <= check.ttft_s["p99"]


def test_the_disagreement_with_the_closed_form_is_reported(tight: genmodel.PlanReport) -> None:
    cf = tight.to_dict()["best"]["closed_form"]
    assert cf["ttft_statistic"] == "p99" and cf["tpot_statistic"] == "mean"
    assert cf["ttft_rel_diff"] == pytest.approx(cf["simulated_ttft_s"] / cf["ttft_s"] - 1)
    assert cf["tpot_rel_diff"] == pytest.approx(cf["simulated_tpot_s"] / cf["tpot_s"] - 1)
    b = tight.best
    assert b is not None and cf["simulated_tpot_s"] == b.tpot_s


def test_a_tpot_percentile_is_judged_on_the_simulated_requests() -> None:
    rep = genmodel.plan(
        "llama-3.1-70b", "h100-sxm", ttft_slo_s=1.0, tpot_slo_s=0.045, tpot_quantile=0.9, **KW
    )
    assert rep.check is not None and rep.check.tpot_s["p90"] <= 0.045
    assert rep.to_dict()["slo"]["tpot_statistic"] == "p90"
    with pytest.raises(genmodel.SpecError, match=r"tpot_quantile=1\.5"):
        Slo(tpot_quantile=1.5)
    assert statistic_name(None) == "mean" and statistic_name(0.99) == "p99"


def test_best_per_weight_dtype_side_by_side() -> None:
    rep = genmodel.plan("llama-3.1-70b", "h100-sxm", top=3, **BOTH_DTYPES)
    rows = {r["weight_dtype"]: r for r in rep.to_dict()["by_weight_dtype"]}
    assert set(rows) == {"fp8", "bf16"}
    best = [r for r in rows.values() if r["is_best"]]
    assert len(best) == 1 and best[0]["goodput_vs_best"] == pytest.approx(1.0)
    assert rep.best is not None and best[0]["weight_dtype"] == rep.best.precision.weight_dtype
    for r in rows.values():  # each dtype's own best, re-checked, meets the SLOs
        assert r["ttft_s"] <= 1.0 and r["tpot_s"] <= 0.05 and r["goodput_vs_best"] <= 1.0
    top = rep.to_dict()["top"]
    assert len(top) == 3
    assert len({(t["tp"], t["pp"], t["ep"], t["dp"], t["weight_dtype"]) for t in top}) == 3
    goodput = [t["output_tokens_per_s_per_device"] for t in top]
    assert goodput == sorted(goodput, reverse=True)


def test_a_request_rate_is_simulated_as_poisson_arrivals_per_copy() -> None:
    rep = genmodel.plan(
        "llama-3.1-70b", "h100-sxm", request_rate_per_s=20.0, ttft_slo_s=1.0, tpot_slo_s=0.05, **KW
    )
    assert rep.check is not None and rep.instances is not None and rep.best is not None
    assert "Poisson" in rep.check.arrivals
    assert (
        rep.best.serving is not None
        and rep.best.serving.request_rate_per_s * rep.instances == pytest.approx(20.0, rel=1e-12)
    )
    b = rep.best  # tokens/s of a copy at its share of the traffic, in flight by Little's law
    assert b.output_tokens_per_s == pytest.approx(20.0 / rep.instances * 500, rel=0.01)
    # the copies at the closed form's full-load rate serve the traffic
    assert rep.check.closed.serving is not None
    assert rep.instances * rep.check.closed.serving.request_rate_per_s >= 20.0
    assert rep.devices_needed == rep.instances * rep.best.plan.num_devices


def _fake_result(goodputs: list[float]) -> Any:
    """A search result over one layout, a candidate per goodput (best first), for recheck()."""
    m, system = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    from genmodel._search import search

    r = search(
        m,
        system,
        devices=1,
        input_tokens=100,
        output_tokens=10,
        precisions=[genmodel.default_precision("bf16", None, None)],
    )
    n = len(goodputs)
    c = r.candidates
    import dataclasses

    cands = dataclasses.replace(
        c,
        layout=np.zeros(n, dtype=int),
        batch=np.arange(n, 0, -1, dtype=float),
        concurrency=np.arange(n, 0, -1, dtype=float) * 10,
        devices=np.ones(n),
        rate_per_s=np.ones(n),
        ttft_s=np.full(n, 0.1),
        tpot_s=np.full(n, 0.01),
        tokens_per_s_per_device=np.array(goodputs),
        tokens_per_s_per_user=np.full(n, 100.0),
        meets_slo=np.ones(n, dtype=bool),
    )
    return dataclasses.replace(r, candidates=cands, layouts=r.layouts[:1]), m, system


def test_recheck_never_answers_with_a_miss_and_backs_off_by_the_shortfall() -> None:
    goodputs = [1000.0 - 10 * k for k in range(90)]  # 1000 down to 110
    result, m, system = _fake_result(goodputs)
    slo = Slo(ttft_s=1.0)
    dep = Deployment(
        model=m,
        system=system,
        options=genmodel.RunOptions(),
        slo=slo,
        input_tokens=100,
        output_tokens=10,
        engine=genmodel.engine_preset("vllm"),
    )
    est = genmodel.estimate(
        m, system, concurrency=10, input_tokens=100, output_tokens=10, serving="closed-form"
    )
    calls: list[float] = []

    def check(res: Any, i: int, d: Deployment) -> Recheck:  # the simulated TTFT grows with goodput
        g = float(res.candidates.tokens_per_s_per_device[i])
        calls.append(g)
        ttft = g / 500  # meets 1 s up to 500 tokens/s per device
        return Recheck(
            index=i,
            estimate=est,
            closed=est,
            closed_ttft_s=0.1,
            closed_tpot_s=0.01,
            simulated_ttft_s=ttft,
            simulated_tpot_s=0.01,
            meets_slo=ttft <= 1.0,
        )

    ranked = np.arange(len(goodputs))
    answer, tried = recheck(result, ranked, dep, budget=8, better=lambda k: -goodputs[k.index], check=check)
    assert answer is not None and answer.meets_slo
    assert all(t.meets_slo == (calls[k] <= 500) for k, t in enumerate(tried))
    # the first try is the closed form's best, the second is scaled down by the shortfall (1/2)
    assert calls[0] == 1000.0 and calls[1] <= 500.0
    assert 450.0 <= goodputs[answer.index] <= 500.0 and len(tried) <= 8
    # with every candidate missing, there is no answer
    none, tried = recheck(
        result, ranked, dep, budget=8, better=lambda k: 0, check=lambda res, i, d: _miss(check(res, i, d))
    )
    assert none is None and 0 < len(tried) <= 8


def _miss(k: Recheck) -> Recheck:
    import dataclasses

    return dataclasses.replace(k, meets_slo=False)


def test_layouts_the_simulation_does_not_cover_are_never_rechecked() -> None:
    r = genmodel.plan(
        "llama-3.1-8b", "h100-sxm", devices=4, input_tokens=500, output_tokens=100, serving="closed-form"
    )
    mask = simulable(r.result, genmodel.RunOptions())
    pps = np.array([lay.plan.pp for lay in r.result.layouts])
    assert (mask == (pps == 1)).all() and (~mask).any()
    rep = genmodel.plan(
        "llama-3.1-8b", "h100-sxm", devices=4, input_tokens=500, output_tokens=100, tpot_slo_s=0.02
    )
    assert all(k.estimate.plan.pp == 1 for k in rep.rechecked)


# --- CLI ---

TINY = ["plan", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "2"]
TINY += ["--input-tokens", "500", "--output-tokens", "100"]


@pytest.mark.parametrize(
    ("flag", "value", "expect"),
    [
        ("--ttft-slo", "p98:2s", "must be one of mean, p50, p90, p95, p99"),
        ("--ttft-slo", "p99:2", "needs a unit"),
        ("--tpot-slo", "max:50ms", "tpot_slo='max:50ms'"),
        ("--tpot-slo", "p90:", "tpot_slo='p90:'"),
        ("--recheck", "-1", "recheck='-1'"),
        ("--recheck", "1001", "recheck=1001"),
        ("--top", "0", "top=0"),
        ("--serving", "magic", "serving='magic'"),
        ("--engine", "tgi", "tgi"),
    ],
)
def test_cli_refuses_bad_plan_options_in_one_line(flag: str, value: str, expect: str) -> None:
    assert expect in cli_bad([*TINY, flag, value])


def test_cli_percentile_slos_and_the_simulated_answer() -> None:
    out = cli_ok([*TINY, "--ttft-slo", "p99:1s", "--tpot-slo", "p90:30ms", "--format", "json"])
    d = json.loads(out)
    assert d["slo"]["ttft_quantile"] == 0.99 and d["slo"]["tpot_quantile"] == 0.9
    assert d["slo"]["ttft_s"] == 1.0 and d["slo"]["tpot_s"] == pytest.approx(0.03)
    assert d["serving"]["model"] == "simulated" and d["serving"]["engine"] == "vllm"
    b = d["best"]
    assert b["simulated"]["ttft_s"]["p99"] <= 1.0 and b["simulated"]["tpot_s"]["p90"] <= 0.03
    mean = json.loads(cli_ok([*TINY, "--ttft-slo", "mean:1s", "--format", "json"]))
    assert mean["slo"]["ttft_quantile"] is None and mean["slo"]["ttft_statistic"] == "mean"
    table = cli_ok([*TINY, "--ttft-slo", "p99:1s", "--tpot-slo", "30ms", "--top", "2"], columns=120)
    assert "closed form vs simulated" in table and "p99 <= 1 s" in table and "top 2 plans" in table


def test_cli_engine_serving_and_run_options_reach_plan_compare_and_sweep() -> None:
    sg = json.loads(cli_ok([*TINY, "--tpot-slo", "30ms", "--engine", "sglang", "--format", "json"]))
    assert sg["serving"]["engine"] == "sglang"
    cf = json.loads(cli_ok([*TINY, "--tpot-slo", "30ms", "--serving", "closed-form", "--format", "json"]))
    assert cf["serving"]["model"] == "closed-form" and cf["best"]["serving"]["serving_model"] == "closed-form"
    zero = json.loads(cli_ok([*TINY, "--tpot-slo", "30ms", "--recheck", "0", "--format", "json"]))
    assert zero["serving"]["model"] == "closed-form" and zero["rechecked"] == []
    hit = json.loads(cli_ok([*TINY, "--tpot-slo", "30ms", "--prefix-hit", "0.5", "--format", "json"]))
    assert hit["best"]["ttft_s"] < sg["best"]["ttft_s"] or hit["best"]["ttft_s"] != cf["best"]["ttft_s"]
    rows = json.loads(
        cli_ok(
            [
                "compare", "--model", "llama-3.1-8b", "--hardware", "h100-sxm,h200-sxm", "--devices", "1",
                "--input-tokens", "500", "--output-tokens", "100", "--tpot-slo", "p90:30ms",
                "--serving", "closed-form", "--prefix-hit", "0.5", "--format", "json",
            ]
        )
    )  # fmt: skip
    assert all(r["error"] is None for r in rows)
    sweep = runner.invoke(
        app,
        [
            "sweep", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--concurrency", "8",
            "--input-tokens", "500", "--output-tokens", "100", "--format", "json",
            "--serving", "closed-form", "--engine", "sglang", "--prefix-hit", "0.5",
        ],
    )  # fmt: skip
    assert sweep.exit_code == 0, sweep.output
    row = json.loads(sweep.stdout)[0]
    assert row["serving.serving_model"] == "closed-form" and row["prefix_hit_rate"] == 0.5


def test_cli_says_when_no_rechecked_plan_meets_the_slos_in_simulation() -> None:
    args = ["plan", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--devices", "8"]
    args += ["--input-tokens", "2000", "--output-tokens", "500", "--weight-dtype", "fp8"]
    args += ["--ttft-slo", "p99:800ms", "--tpot-slo", "30ms", "--recheck", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 3, result.output
    assert "the one candidate re-checked does not meet the SLOs in simulation" in result.stderr
    assert "--recheck" in result.stderr and "Traceback" not in result.output


def test_the_closed_form_also_gives_the_best_per_weight_dtype() -> None:
    rep = genmodel.plan("llama-3.1-70b", "h100-sxm", serving="closed-form", **BOTH_DTYPES)
    assert rep.serving == "closed-form" and not rep.rechecked and rep.best is not None
    by = {b.weight_dtype: b for b in rep.by_dtype}
    assert set(by) == {"fp8", "bf16"}
    assert by[rep.best.precision.weight_dtype].best == rep.best
    other = by["bf16" if rep.best.precision.weight_dtype == "fp8" else "fp8"].best
    assert other is not None and other.precision.weight_dtype != rep.best.precision.weight_dtype
    assert other.output_tokens_per_s_per_device <= rep.goodput
    assert other.ttft_s <= 1.0 and other.tpot_s <= 0.05
    # one dtype: no side-by-side rows
    one = genmodel.plan(
        "llama-3.1-70b", "h100-sxm", **KW, ttft_slo_s=1.0, tpot_slo_s=0.05, serving="closed-form"
    )
    assert one.by_dtype == () and one.to_dict()["by_weight_dtype"] == []


def test_pareto_points_must_be_a_count() -> None:
    # pareto_points=-1 raised NumPy's ValueError (found by the fuzz suite)
    for bad in (-1, 2.5, True):
        with pytest.raises(genmodel.SpecError, match=r"pareto_points=.* must be an integer >= 0"):
            genmodel.plan(
                "llama-3.1-8b", "h100-sxm", devices=2, input_tokens=100, output_tokens=10, pareto_points=bad
            )


def test_plan_report_repr_is_short_and_compare_takes_devices() -> None:
    report = genmodel.plan(
        "llama-3.1-8b", "h100-sxm", devices=2, input_tokens=1000, output_tokens=200, serving="closed-form"
    )
    text = repr(report)
    assert text.startswith("PlanReport(llama-3.1-8b on 2 devices of dgx-h100") and len(text) < 1_000
    assert "Pareto points" in text and "pareto" not in text.split("Pareto")[0].lower()
    device = genmodel.io.load_hardware("h100-sxm").device
    rows = genmodel.compare(
        "llama-3.1-8b",
        [device, "h200-sxm"],
        devices=1,
        input_tokens=500,
        output_tokens=100,
        serving="closed-form",
    )
    assert [r["hardware"] for r in rows] == ["h100-sxm", "h200-sxm"]
