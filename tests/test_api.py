"""genmodel._api: the public estimate and validation against published measurements.

Validation source: validation/validation_public.csv (shipped as genmodel.validation; measurement
sources in validation/measurements_public.csv).
Tolerance, static cases: MAPE < 20 % (the issue's target), and no single case off by 40 % or more,
on the established static cases (P01-P19, those the shared efficiencies were fitted and assessed
on). The static cases added later on platforms the fit never saw (P22-P38, P50, P51-P69, P70-P74,
P80-P83, P95-P100, P115-P120: MI300X and MI325X with vLLM, B200 and GB200 with TensorRT-LLM, llama.cpp
and MLC on Jetson, DeepSeek on GB200 and GB300 and on Ascend 910C beyond P16) are held out: each must be
covered and their errors are reported per family in the README; their bound is a regression guard,
not a claim of accuracy.
Serving cases (``--concurrency``, AIConfigurator silicon_sample.csv on NVIDIA GPUs, and the held-out
PS101-PS110: ROCm/ATOM's vLLM benchmark on MI355X): mean TPOT error < 30 %; TTFT is systematically
under-predicted (the README explains why), so its bound (mean < 85 %) only guards against regressions.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import inspect
import math
import statistics
from pathlib import Path
from typing import Any

import pytest

import genmodel
from genmodel import SpecError
from genmodel.report import estimate_dict

ROOT = Path(__file__).resolve().parent.parent
STATIC_CATEGORIES = {"dense_a100", "dense_h100", "dense_h200", "edge", "long_context"}
MAPE_TOLERANCE = 20.0  # percent: the issue target
MAX_CASE_APE = 40.0
#: the established static cases: the 19 public cases of 2025, which tools/fit_efficiency.py fitted
#: the shared efficiencies on; the tolerance above applies to them
ESTABLISHED_STATIC = frozenset(f"P{i:02d}" for i in range(1, 20))
#: held-out static cases (added after the fit, on MI300X, Jetson with llama.cpp, GB200 and Ascend): a
#: regression guard on their mean error, not a claim (the README gives them per family)
HELD_OUT_STATIC_MAPE = 60.0
HELD_OUT_RATE_MAPE = 60.0  # the rate-driven cases (PS111-PS137): a regression guard
# serving bounds hold for either serving model: the simulation (the default) and the closed form
SERVING_TPOT_MAPE = 30.0
SERVING_TTFT_MAPE = 85.0  # a regression guard, not a claim of accuracy


@pytest.fixture(scope="module")
def report() -> genmodel.ValidationReport:
    return genmodel.validate()


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return genmodel.read_cases(genmodel.public_cases_path())


def test_every_static_case_is_covered(report: genmodel.ValidationReport, rows: list[dict[str, str]]) -> None:
    # issue 3: every static case, the expert-parallel DeepSeek-V3/R1 and CloudMatrix384 ones included
    wanted = {r["id"] for r in rows if r["mode"] == "static"}
    assert {"P14", "P15", "P16"} <= wanted
    assert len(wanted) >= 29
    covered = {c.id for c in report.cases}
    skipped = {i: reason for i, reason in report.skipped}
    assert wanted <= covered, {i: skipped.get(i) for i in wanted - covered}


def test_every_case_is_covered_or_skipped_with_a_reason(
    report: genmodel.ValidationReport, rows: list[dict[str, str]]
) -> None:
    covered = {c.id for c in report.cases}
    skipped = dict(report.skipped)
    assert covered | set(skipped) == {r["id"] for r in rows}
    assert not covered & set(skipped)
    for case_id, reason in report.skipped:
        assert len(reason) > 10, case_id


def _static(report: genmodel.ValidationReport, rows: list[dict[str, str]]) -> list[genmodel.CaseResult]:
    ids = {r["id"] for r in rows if r["mode"] == "static"} & ESTABLISHED_STATIC
    return [c for c in report.cases if c.id in ids]


def _held_out_static(
    report: genmodel.ValidationReport, rows: list[dict[str, str]]
) -> list[genmodel.CaseResult]:
    ids = {r["id"] for r in rows if r["mode"] == "static"} - ESTABLISHED_STATIC
    return [c for c in report.cases if c.id in ids]


def test_mape_over_static_cases_is_within_tolerance(
    report: genmodel.ValidationReport, rows: list[dict[str, str]]
) -> None:
    static = _static(report, rows)
    assert len(static) == len(ESTABLISHED_STATIC)
    assert statistics.mean(c.ape for c in static) < MAPE_TOLERANCE
    assert report.median_ape == pytest.approx(statistics.median(c.ape for c in report.cases))


def test_no_static_case_is_a_wild_outlier(
    report: genmodel.ValidationReport, rows: list[dict[str, str]]
) -> None:
    worst = max(_static(report, rows), key=lambda c: c.ape)
    assert worst.ape < MAX_CASE_APE, f"{worst.id}: measured {worst.measured}, predicted {worst.predicted}"


def test_held_out_static_cases_are_covered_and_guarded(
    report: genmodel.ValidationReport, rows: list[dict[str, str]]
) -> None:
    held = _held_out_static(report, rows)
    assert len(held) >= 10
    # the platforms no fit has seen: AMD, Jetson with llama.cpp, GB200, Ascend 910C (P70-P74), and the
    # MLPerf Offline rows P95-P100 (Mixtral on MI325X, FP4 Llama-2-70B on B200)
    hardware = {r["id"]: r["hardware"] for r in rows}
    model = {r["id"]: r["model"] for r in rows}
    assert {"mi300x", "mi325x", "jetson-agx-orin-64gb", "gb200", "b200", "ascend-910c"} <= {
        hardware[c.id] for c in held
    }
    assert "mixtral-8x7b" in {model[c.id] for c in held}
    assert statistics.mean(c.ape for c in held) < HELD_OUT_STATIC_MAPE


def test_every_serving_case_is_covered_with_its_errors(
    report: genmodel.ValidationReport, rows: list[dict[str, str]]
) -> None:
    serving = {r["id"] for r in rows if r["mode"] == "concurrency"}
    assert len(serving) >= 110
    # off NVIDIA too: the held-out ATOM-vLLM cases on MI355X (PS101-PS110), added after every fit
    hardware = {r["id"]: r["hardware"] for r in rows}
    assert "mi355x" in {hardware[i] for i in serving}
    covered = {c.id: c for c in report.cases}
    assert serving <= set(covered)
    tpot = [covered[i].ape for i in serving if covered[i].metric == "tpot_s"]
    ttft = [covered[i].ape for i in serving if covered[i].metric == "ttft_s"]
    assert statistics.mean(tpot) < SERVING_TPOT_MAPE
    assert statistics.mean(ttft) < SERVING_TTFT_MAPE


@pytest.fixture(scope="module")
def closed_report() -> genmodel.ValidationReport:
    return genmodel.validate(serving="closed-form")


def test_readme_serving_tables_are_current(
    report: genmodel.ValidationReport,
    closed_report: genmodel.ValidationReport,
    rows: list[dict[str, str]],
) -> None:
    spec = importlib.util.spec_from_file_location(
        "make_serving_tables", ROOT / "tools" / "make_serving_tables.py"
    )
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    by_id = {r["id"]: r for r in rows}
    sim, closed = report.to_dict(), closed_report.to_dict()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rerun = "README serving tables out of date: rerun tools/make_serving_tables.py (its docstring says how)"
    assert tool.summary(sim, closed, by_id) in readme, rerun
    assert tool.cases(sim, closed, by_id) in readme, rerun


def test_rate_cases_are_simulated_and_guarded(
    report: genmodel.ValidationReport,
    closed_report: genmodel.ValidationReport,
    rows: list[dict[str, str]],
) -> None:
    """The held-out cases at a request rate (PS111-PS137): every one simulated; the closed form's
    open loop predicts most and skips the others with the reason (a rate above its capacity);
    both MAPEs under a regression guard (not a claim of accuracy: docs/validation.md reports them
    per row)."""
    rate = {r["id"] for r in rows if r["mode"] == "rate"}
    assert len(rate) >= 20
    covered = {c.id: c for c in report.cases if c.id in rate}
    assert set(covered) == rate and {c.serving_model for c in covered.values()} == {"simulated"}
    assert statistics.mean(c.ape for c in covered.values()) < HELD_OUT_RATE_MAPE
    closed = {c.id: c for c in closed_report.cases if c.id in rate}
    skipped = {i: r for i, r in closed_report.skipped if i in rate}
    assert set(closed) | set(skipped) == rate and len(closed) >= 20
    assert {c.serving_model for c in closed.values()} == {"closed-form"}
    assert statistics.mean(c.ape for c in closed.values()) < HELD_OUT_RATE_MAPE
    assert all("queue would grow" in r for r in skipped.values())


def test_closed_form_serving_cases_hold_the_same_bounds(
    closed_report: genmodel.ValidationReport, rows: list[dict[str, str]]
) -> None:
    closed = closed_report
    serving = {r["id"] for r in rows if r["mode"] == "concurrency"}
    cases = [c for c in closed.cases if c.id in serving]
    assert len(cases) == len(serving) and {c.serving_model for c in cases} == {"closed-form"}
    assert statistics.mean(c.ape for c in cases if c.metric == "tpot_s") < SERVING_TPOT_MAPE
    assert statistics.mean(c.ape for c in cases if c.metric == "ttft_s") < SERVING_TTFT_MAPE


def test_validation_json_says_which_serving_model_and_engine(
    report: genmodel.ValidationReport, rows: list[dict[str, str]]
) -> None:
    by_id = {r["id"]: r for r in rows}
    for c in report.to_dict()["cases"]:
        row = by_id[c["id"]]
        if row["mode"] in ("concurrency", "rate"):  # a rate case is always simulated
            assert (c["serving_model"], c["engine"]) == ("simulated", row["engine"] or "vllm"), c["id"]
        else:
            assert (c["serving_model"], c["engine"]) == (None, None), c["id"]
    assert {"sglang", "trtllm", "vllm"} <= {c.engine for c in report.cases}


def test_validate_simulates_a_serving_case_with_its_engine(
    tmp_path: Path, rows: list[dict[str, str]]
) -> None:
    row = next(r for r in rows if r["mode"] == "concurrency" and r["pp"] == "1")
    path = tmp_path / "cases.csv"
    kw = {
        k: int(row[k]) if k in ("tp", "ep", "dp", "input_tokens", "output_tokens") else row[k]
        for k in ("tp", "ep", "dp", "input_tokens", "output_tokens", "weight_dtype", "act_dtype", "kv_dtype")
    }
    for engine, column, flag in (("sglang", "sglang", "trtllm"), ("trtllm", "", "trtllm")):
        _write_cases(path, [{**row, "engine": column}])
        case = genmodel.validate(path, engine=flag).cases[0]
        sim = genmodel.simulate(
            row["model"], row["hardware"], concurrency=int(row["batch"]), engine=engine, **kw
        )
        mean = sim.ttft_s.mean if row["metric"] == "ttft_s" else sim.tpot_s.mean
        assert (case.serving_model, case.engine) == ("simulated", engine)
        assert case.predicted == pytest.approx(mean, rel=1e-9)
    closed = genmodel.validate(path, serving="closed-form").cases[0]
    est = genmodel.estimate(
        row["model"], row["hardware"], concurrency=int(row["batch"]), serving="closed-form", **kw
    )
    assert closed.predicted == pytest.approx(getattr(est, row["metric"]), rel=1e-12)
    with pytest.raises(genmodel.SpecError, match="serving="):
        genmodel.validate(path, serving="queue")


def test_validation_json_keys(report: genmodel.ValidationReport) -> None:
    d = report.to_dict()
    assert {"cases", "mape", "median_ape", "within_25pct", "by_category", "by_metric", "skipped"} <= set(d)
    assert {"id", "metric", "measured", "predicted", "ape"} <= set(d["cases"][0])
    assert 0 <= d["within_25pct"] <= 1
    assert sum(g["n"] for g in d["by_category"].values()) == len(d["cases"])
    assert sum(g["n"] for g in d["by_metric"].values()) == len(d["cases"])
    assert all({"id", "reason"} <= set(s) for s in d["skipped"])


def test_case_result_ape() -> None:
    c = genmodel.CaseResult(id="x", category="c", metric="ttft_s", measured=2.0, predicted=2.5)
    assert c.ape == pytest.approx(25.0)
    r = genmodel.ValidationReport(cases=(c,))
    assert r.mape == pytest.approx(25.0)
    assert r.within_25pct == pytest.approx(1.0)


def _write_cases(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_validate_a_user_csv_matches_estimate(tmp_path: Path, rows: list[dict[str, str]]) -> None:
    row = next(r for r in rows if r["id"] == "P02")
    path = tmp_path / "cases.csv"
    _write_cases(path, [row])
    rep = genmodel.validate(path)
    assert [c.id for c in rep.cases] == ["P02"]
    est = genmodel.estimate(
        row["model"],
        row["hardware"],
        tp=int(row["tp"]),
        batch=int(row["batch"]),
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        weight_dtype=row["weight_dtype"],
        act_dtype=row["act_dtype"],
        kv_dtype=row["kv_dtype"],
    )
    assert rep.cases[0].predicted == pytest.approx(getattr(est, row["metric"]))
    assert rep.cases[0].measured == pytest.approx(float(row["measured"]))


def test_validate_rejects_malformed_csvs(tmp_path: Path, rows: list[dict[str, str]]) -> None:
    with pytest.raises(SpecError, match="file not found"):
        genmodel.validate(tmp_path / "none.csv")
    short = tmp_path / "short.csv"
    short.write_text("id,model\nx,llama-3.1-8b\n", encoding="utf-8")
    with pytest.raises(SpecError, match="missing columns"):
        genmodel.validate(short)
    bad_metric = tmp_path / "metric.csv"
    _write_cases(bad_metric, [{**rows[0], "metric": "speed"}])
    rep = genmodel.validate(bad_metric)  # a case genmodel cannot predict is skipped, with the reason
    assert rep.cases == ()
    assert "metric='speed'" in dict(rep.skipped)[rows[0]["id"]]
    bad_measured = tmp_path / "measured.csv"
    _write_cases(bad_measured, [{**rows[0], "measured": "n/a"}])
    with pytest.raises(SpecError, match="measured='n/a'"):
        genmodel.validate(bad_measured)


def test_default_precision() -> None:
    p = genmodel.default_precision("int4")
    assert (p.weight_dtype, p.act_dtype, p.kv_dtype) == ("int4", "bf16", "bf16")
    p = genmodel.default_precision("fp8")
    assert (p.weight_dtype, p.act_dtype, p.kv_dtype) == ("fp8", "fp8", "bf16")
    assert genmodel.default_precision("fp32").kv_dtype == "fp32"


def test_case_options_apply_only_where_given(tmp_path: Path) -> None:
    # the bundled options turn on MTP and two-microbatch overlap for P16, as its source describes
    options = genmodel.read_case_options(genmodel.public_options_path())
    assert options["P16"]["draft_tokens"] == "1"
    with_options = {c.id: c.predicted for c in genmodel.validate().cases}
    rows = genmodel.read_cases(genmodel.public_cases_path())
    p16 = [r for r in rows if r["id"] == "P16"]
    plain = tmp_path / "p16.csv"
    with plain.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(p16[0]))
        writer.writeheader()
        writer.writerows(p16)
    without = genmodel.validate(plain).cases[0].predicted
    assert with_options["P16"] != pytest.approx(without, rel=0.01)
    bad = tmp_path / "bad_options.csv"
    bad.write_text("id,warp_drive\nP16,1\n")
    with pytest.raises(genmodel.SpecError, match="unknown columns warp_drive"):
        genmodel.validate(plain, options_path=bad)


def test_v1_latency_rows_find_their_prompts_in_the_prefix_cache(report: genmodel.ValidationReport) -> None:
    # vLLM V1 caches prompts by default and benchmark_latency sends the same prompts in every
    # iteration, so the timed runs of P25-P26 and P60-P69 prefill only each prompt's last partial
    # block (validation/case_options.csv gives the sources). Checked on what it moves most: the
    # 2,048-token prompts at batch 128 (P66) take 5.91 s longer than 128-token ones (P64) in AMD's
    # ROCm/vllm dev-docker README @040de12d (52.394 - 46.484 s): longer decode contexts only, where
    # a full prefill of 128 x 2,048 tokens alone would be predicted at ~9 s. Tolerance 15 %.
    options = genmodel.read_case_options(genmodel.public_options_path())
    assert float(options["P66"]["prefix_hit_rate"]) == pytest.approx(2032 / 2048)
    assert float(options["P64"]["prefix_hit_rate"]) == pytest.approx(112 / 128)
    assert "prefix_hit_rate" not in options.get("P53", {})  # vLLM 0.6.7's V0 caches no prefixes by default
    got = {c.id: c for c in report.cases}
    measured = got["P66"].measured - got["P64"].measured
    assert got["P66"].predicted - got["P64"].predicted == pytest.approx(measured, rel=0.15)


def test_options_object_and_keywords_give_the_same_estimate() -> None:
    kw = {"tp": 2, "batch": 8, "input_tokens": 4000, "output_tokens": 200}
    tier = genmodel.attached_tier("host", device=genmodel.load_device("h100-sxm"))
    options = genmodel.RunOptions(
        prefix_hit_rate=0.25,
        overlap_microbatches=2,
        speculation=genmodel.Speculation(
            draft_tokens=2, acceptance_rate=0.6, draft_model=genmodel.load_model("llama-3.2-1b")
        ),
        offload=genmodel.Offload(kv=tier, kv_window=1024),
    )
    by_object = genmodel.estimate("llama-3.1-70b", "h100-sxm", options=options, **kw)  # type: ignore[arg-type]
    by_keywords = genmodel.estimate(
        "llama-3.1-70b",
        "h100-sxm",
        prefix_hit_rate=0.25,
        overlap_microbatches=2,
        draft_tokens=2,
        acceptance_rate=0.6,
        draft_model="llama-3.2-1b",
        kv_offload="host",
        kv_window=1024,
        **kw,  # type: ignore[arg-type]
    )
    assert by_object.options == options == by_keywords.options
    assert estimate_dict(by_object) == estimate_dict(by_keywords)
    # keywords replace the object's fields; draft_tokens=0 turns speculation off
    mixed = genmodel.run_options("h100-sxm", options=options, prefix_hit_rate=0.5, draft_tokens=0)
    assert mixed.prefix_hit_rate == 0.5 and mixed.speculation is None and mixed.offload == options.offload
    assert genmodel.run_options(options=options, acceptance_rate=0.9).speculation == dataclasses.replace(
        options.speculation, acceptance_rate=0.9
    )
    assert genmodel.run_options(draft_tokens=1).speculation == genmodel.Speculation(draft_tokens=1)
    with pytest.raises(SpecError, match=r"prefix_hit=0\.5 is not a run option"):
        genmodel.estimate("llama-3.1-8b", "h100-sxm", prefix_hit=0.5, **kw)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="'host' needs the device"):
        genmodel.run_options(kv_offload="host")


def test_a_misspelt_keyword_names_the_closest_keyword_of_the_function_or_run_option() -> None:
    """A notebook user writes the CLI's spellings (``tpot_slo="20ms"``, ``prefix_hit``,
    ``request_rate``) or a near miss (``batch_size``): the error names the keyword they meant, a
    parameter of the function called as well as a run option, not only the list of run options."""
    kw = {"input_tokens": 100, "output_tokens": 10}
    cases = [
        (genmodel.estimate, {"prefix_hit": 0.5}, r"did you mean prefix_hit_rate\b"),
        (genmodel.estimate, {"batch_size": 4}, r"did you mean batch \(a keyword of estimate\)"),
        (genmodel.plan, {"devices": 1, "tpot_slo": "20ms"}, r"did you mean tpot_slo_s \(a keyword of plan\)"),
        (genmodel.plan, {"devices": 1, "request_rate": 3.0}, r"request_rate_per_s \(a keyword of plan\)"),
        (
            genmodel.requirements,
            {"ttft_slo_s": 1.0, "tpot_slo": "6ms"},
            r"tpot_slo_s \(a keyword of requirements\)",
        ),
        (genmodel.simulate, {"concurrency": 2, "engine_name": "vllm"}, r"engine \(a keyword of simulate\)"),
    ]
    for fn, extra, message in cases:
        with pytest.raises(SpecError, match=message):
            fn("llama-3.1-8b", "h100-sxm", **kw, **extra)  # type: ignore[operator]
    with pytest.raises(SpecError, match=r"^foo=1 is not a run option \(run options: comm_overlap_frac"):
        genmodel.estimate("llama-3.1-8b", "h100-sxm", foo=1, **kw)  # type: ignore[arg-type]


def test_every_run_option_field_has_its_spec() -> None:
    leaves = {
        (f.name,) for f in dataclasses.fields(genmodel.RunOptions) if f.name not in ("speculation", "offload")
    }
    leaves |= {("speculation", f.name) for f in dataclasses.fields(genmodel.Speculation)}
    leaves |= {("offload", f.name) for f in dataclasses.fields(genmodel.Offload)}
    specs = genmodel.OPTION_SPECS
    assert {s.path for s in specs} == leaves
    assert len({s.name for s in specs}) == len({s.flag for s in specs}) == len(specs)
    # the edge defaults are the fields' defaults (speculation: off, its switch at 0 draft tokens)
    assert genmodel.run_options(**{s.name: s.default for s in specs}) == genmodel.RunOptions()
    for s in specs:
        assert s.help.endswith((".", ")")) and s.flag.startswith("--")


def test_sweep_takes_the_options_object() -> None:
    options = genmodel.RunOptions(prefix_hit_rate=0.5)
    kw = {"input_tokens": 2000, "output_tokens": 100}
    rows = genmodel.sweep(
        models=["llama-3.1-8b"],
        hardware=["h100-sxm"],
        input_tokens=[2000],
        output_tokens=[100],
        options=options,
        scheduler="in-process",
    )
    est = genmodel.estimate("llama-3.1-8b", "h100-sxm", options=options, **kw)
    assert rows["ttft_s"].iloc[0] == pytest.approx(est.ttft_s, rel=1e-12)
    assert est.ttft_s < genmodel.estimate("llama-3.1-8b", "h100-sxm", **kw).ttft_s


def test_plan_passes_every_run_option_to_its_best_estimate() -> None:
    # plan() used to re-estimate its best plan with only the chunk size, dropping the other options
    options = genmodel.RunOptions(prefix_hit_rate=0.5, kv_block_tokens=1, overlap_microbatches=2)
    workload = {"input_tokens": 2000, "output_tokens": 200}
    rep = genmodel.plan(
        "llama-3.1-8b", "h100-sxm", devices=2, ttft_slo_s=1.0, tpot_slo_s=0.05, options=options, **workload
    )
    b = rep.best
    assert b is not None and b.options == options
    again = genmodel.estimate(
        "llama-3.1-8b",
        "h100-sxm",
        tp=b.plan.tp,
        pp=b.plan.pp,
        ep=b.plan.ep,
        dp=b.plan.dp,
        concurrency=b.batch,
        serving="closed-form",  # the plan search's serving model
        warmup_restart=False,  # and its steady load's client: no benchmark restart after the warm-up
        options=options,
        **workload,
    )
    assert estimate_dict(again) == estimate_dict(b)
    plain = genmodel.plan("llama-3.1-8b", "h100-sxm", devices=2, ttft_slo_s=1.0, tpot_slo_s=0.05, **workload)
    assert plain.best is not None and plain.best.ttft_s != pytest.approx(b.ttft_s, rel=0.05)
    with pytest.raises(SpecError, match="disaggregated"):
        genmodel.plan(
            "llama-3.1-8b", "h100-sxm", devices=2, options=genmodel.RunOptions(disaggregated=True), **workload
        )


def test_validate_streams_the_csv(tmp_path: Path, rows: list[dict[str, str]]) -> None:
    # rows are read one at a time: cases before an undecodable byte deep in the file are predicted
    # (their progress reported) before the file's error; a whole read would fail before any case
    row = next(r for r in rows if r["id"] == "P02")
    path = tmp_path / "long.csv"
    _write_cases(path, [{**row, "id": f"P02-{i}"} for i in range(400)])  # ~50 kB, past any read buffer
    with path.open("ab") as f:
        f.write(b"\xff\xfe bad bytes\n")
    done: list[str] = []
    with pytest.raises(SpecError, match="cannot be read as CSV"):
        genmodel.validate(path, on_case=done.append)
    assert len(done) >= 100


def test_validate_keeps_a_bounded_number_of_estimates(
    tmp_path: Path, rows: list[dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import genmodel._validate as v

    a, b = (next(r for r in rows if r["id"] == i) for i in ("P02", "P03"))
    path = tmp_path / "cases.csv"
    _write_cases(path, [{**a, "id": "a1"}, {**a, "id": "a2"}, {**b, "id": "b"}, {**a, "id": "a3"}])
    assert genmodel.count_cases(path) == 4
    runs: list[str] = []
    real = v._estimate_case

    def counted(row: dict[str, str], *args: Any, **kwargs: Any) -> Any:
        runs.append(row["id"])
        return real(row, *args, **kwargs)

    monkeypatch.setattr(v, "_estimate_case", counted)
    genmodel.validate(path)
    assert runs == ["a1", "b"]  # a2 and a3 share a1's estimate
    runs.clear()
    monkeypatch.setattr(v, "_MEMO_DEPLOYMENTS", 1)  # room for one: b pushes a1's out
    report = genmodel.validate(path)
    assert runs == ["a1", "b", "a3"]
    assert [c.id for c in report.cases] == ["a1", "a2", "b", "a3"]


def test_estimate_warmup_restart_adds_the_measured_burst() -> None:
    # the drained warm-up restarts every client together: the measured phase opens with a burst
    # of prefills, so its mean TTFT is above the straight-on client's, in both serving models
    kw = {"input_tokens": 2000, "output_tokens": 100, "concurrency": 64, "engine": "vllm"}
    for serving in ("simulated", "closed-form"):
        restart = genmodel.estimate("llama-3.1-8b", "h100-sxm", serving=serving, **kw)
        straight = genmodel.estimate("llama-3.1-8b", "h100-sxm", serving=serving, warmup_restart=False, **kw)
        assert restart.ttft_s > straight.ttft_s, serving


def test_estimate_draws_the_clients_lengths_within_their_spread() -> None:
    # a closed loop whose lengths are spread is the simulation of those clients (seed 0); the
    # closed form takes the means, and of the spread only that the clients fall out of step after
    # a round that starts together (genmodel._wave, Wave.in_step): nearer the simulation's TTFT than
    # with the wave's bursts every round; a static batch has no spread, and a spread of 1 is refused
    kw: dict[str, Any] = {"input_tokens": 1000, "output_tokens": 200, "concurrency": 16}
    spread = {"input_spread": 0.3, "output_spread": 0.3}
    fixed = genmodel.estimate("llama-3.1-8b", "h100-sxm", **kw)
    drawn = genmodel.estimate("llama-3.1-8b", "h100-sxm", **kw, **spread)
    sim = genmodel.simulate("llama-3.1-8b", "h100-sxm", **kw, **spread)
    assert (drawn.ttft_s, drawn.tpot_s) == pytest.approx((sim.ttft_s.mean, sim.tpot_s.mean))
    assert drawn.ttft_s != pytest.approx(fixed.ttft_s, rel=1e-3)
    closed = [
        genmodel.estimate("llama-3.1-8b", "h100-sxm", serving="closed-form", **kw, **s) for s in ({}, spread)
    ]
    assert closed[1].ttft_s < closed[0].ttft_s
    assert abs(math.log(closed[1].ttft_s / drawn.ttft_s)) < abs(math.log(closed[0].ttft_s / drawn.ttft_s))
    with pytest.raises(SpecError, match=r"input_spread=1\.0 must be in \[0, 1\)"):
        genmodel.estimate("llama-3.1-8b", "h100-sxm", **kw, input_spread=1.0)
    with pytest.raises(SpecError, match="need concurrency="):
        genmodel.estimate("llama-3.1-8b", "h100-sxm", input_tokens=1000, output_tokens=200, batch=4, **spread)


@pytest.mark.parametrize(
    "name",
    [
        "estimate",
        "simulate",
        "plan",
        "compare",
        "requirements",
        "memory_report",
        "sweep",
        "validate",
        "calibrate",
    ],
)
def test_each_entry_point_says_what_it_returns(name: str) -> None:
    # help(genmodel.plan) in a notebook said what plan searches but not what it gives back
    doc = inspect.getdoc(getattr(genmodel, name)) or ""
    returns = doc.partition("\nReturns:\n")[2]
    assert returns.strip(), f"{name}: no Returns section"
    if name == "plan":  # the report's fields a notebook reads
        assert all(f"``{key}``" in returns for key in ("best", "pareto", "to_dict()"))
