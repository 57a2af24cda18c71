"""Rate-driven validation cases (mode=rate): an open loop at a request rate, predicted by the
serving simulation (Poisson arrivals, a fixed seed), aggregated or disaggregated, and by the closed
form's open loop where it has the figure; a malformed rate value is one line naming the row and the
column (exit code 2 on the CLI)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from _cli import cli_bad, cli_ok

import genmodel
from genmodel._validate_rate import SEED

_FIELDS = [
    *("id", "category", "mode", "model", "hardware", "devices", "tp", "pp", "ep", "dp", "batch"),
    *("input_tokens", "output_tokens", "weight_dtype", "act_dtype", "kv_dtype", "metric", "measured"),
    *("engine", "profile", "request_rate", "requests", "burstiness_cv", "input_spread", "output_spread"),
    *("disaggregated", "prefill_tp", "prefill_workers", "decode_tp", "decode_workers"),
]
_BASE = {
    "category": "serving_rate",
    "mode": "rate",
    "model": "llama-3.1-8b",
    "hardware": "h100-sxm",
    "devices": "1",
    "tp": "1",
    "pp": "1",
    "ep": "1",
    "dp": "1",
    "input_tokens": "1000",
    "output_tokens": "200",
    "weight_dtype": "bf16",
    "act_dtype": "bf16",
    "kv_dtype": "bf16",
    "measured": "0.1",
    "engine": "vllm",
    "request_rate": "4",
    "requests": "200",
}
_SIM = {"input_tokens": 1000, "output_tokens": 200, "weight_dtype": "bf16", "act_dtype": "bf16"}


def _cases(tmp_path: Path, *rows: dict[str, str]) -> Path:
    path = tmp_path / "cases.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=_FIELDS)
        w.writeheader()
        for row in rows:
            w.writerow({**_BASE, **row})
    return path


def test_a_rate_case_is_the_simulation_at_that_rate(tmp_path: Path) -> None:
    path = _cases(
        tmp_path,
        {"id": "r-ttft", "metric": "ttft_s"},
        {"id": "r-tpot50", "metric": "tpot_p50_s", "measured": "0.01"},
        {"id": "r-e2e99", "metric": "e2e_p99_s", "measured": "3"},
        {"id": "r-fast", "metric": "ttft_s", "request_rate": "40"},
    )
    report = genmodel.validate(path)
    got = {c.id: c for c in report.cases}
    assert not report.skipped and set(got) == {"r-ttft", "r-tpot50", "r-e2e99", "r-fast"}
    sim = genmodel.simulate(
        "llama-3.1-8b", "h100-sxm", request_rate=4.0, requests=200, seed=SEED, kv_dtype="bf16", **_SIM
    )
    assert got["r-ttft"].predicted == pytest.approx(sim.ttft_s.mean)
    assert got["r-tpot50"].predicted == pytest.approx(sim.tpot_s.p50)
    assert got["r-e2e99"].predicted == pytest.approx(sim.e2e_s.p99)
    assert (got["r-ttft"].serving_model, got["r-ttft"].engine) == ("simulated", "vllm")
    assert got["r-ttft"].profile is None  # h100-sxm has no vLLM profile: the device file's values
    # ten times the rate queues the prompts: the rate reaches the prediction
    assert got["r-fast"].predicted > 2 * got["r-ttft"].predicted


def test_the_closed_form_of_an_open_loop_agrees_with_the_simulation(tmp_path: Path) -> None:
    """The closed form's open loop (genmodel._openloop.estimate_open_loop) against the simulation of
    the same rate: the same deployment, two models; they must agree on the means."""
    rows = [{"id": f"r-{m}", "metric": m} for m in ("ttft_s", "tpot_s", "itl_p50_s", "e2e_s")]
    path = _cases(tmp_path, *[{**r, "requests": "2000"} for r in rows])
    sim = {c.id: c.predicted for c in genmodel.validate(path).cases}
    closed = genmodel.validate(path, serving="closed-form")
    assert not closed.skipped and {(c.serving_model, c.engine) for c in closed.cases} == {
        ("closed-form", None)
    }
    for c in closed.cases:
        assert c.predicted == pytest.approx(sim[c.id], rel=0.1), c.id  # (within 4 % now)
    # at a tenth of the rate the wait all but goes: TTFT falls towards one prefill, TPOT to a bare step
    slow = genmodel.validate(
        _cases(tmp_path, *[{**r, "request_rate": "0.4"} for r in rows]), serving="closed-form"
    )
    got = {c.metric: c.predicted for c in slow.cases}
    fast = {c.metric: c.predicted for c in closed.cases}
    assert got["ttft_s"] < fast["ttft_s"] and got["tpot_s"] < fast["tpot_s"]
    assert got["itl_p50_s"] == pytest.approx(got["tpot_s"], rel=0.05)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"metric": "tpot_p99_s"}, "is the simulation's only"),
        ({"burstiness_cv": "3"}, "M/D/1 (Poisson arrivals)"),
        ({"request_rate": "500"}, "the queue would grow without bound"),
        ({"disaggregated": "true", "tp": "", "pp": "", "ep": "", "dp": "", "devices": "3", "prefill_tp": "1",
          "prefill_workers": "1", "decode_tp": "2", "decode_workers": "1"}, "simulation only"),
    ],
)  # fmt: skip
def test_what_the_closed_form_cannot_say_of_a_rate_case_is_skipped_with_the_reason(
    tmp_path: Path, row: dict[str, str], reason: str
) -> None:
    path = _cases(tmp_path, {"id": "r", "metric": "ttft_s", **row})
    closed = genmodel.validate(path, serving="closed-form")
    assert not closed.cases and reason in closed.skipped[0][1]
    assert genmodel.validate(path).cases  # the simulation predicts it


def test_spread_lengths_and_the_inter_token_latency_are_the_simulations(tmp_path: Path) -> None:
    spread = {"input_spread": "0.9", "output_spread": "0.5"}
    path = _cases(
        tmp_path,
        {"id": "itl", "metric": "itl_p50_s", **spread},
        {"id": "e2e50", "metric": "e2e_p50_s", **spread},
        {"id": "e2e99", "metric": "e2e_p99_s", **spread},
        {"id": "fixed99", "metric": "e2e_p99_s"},
    )
    got = {c.id: c.predicted for c in genmodel.validate(path).cases}
    sim = genmodel.simulate(
        "llama-3.1-8b",
        "h100-sxm",
        request_rate=4.0,
        requests=200,
        seed=SEED,
        kv_dtype="bf16",
        input_spread=0.9,
        output_spread=0.5,
        **_SIM,
    )
    assert got["itl"] == pytest.approx(sim.itl_s.p50)
    assert got["e2e50"] == pytest.approx(sim.e2e_s.p50)
    # outputs of 100-300 tokens: the slowest requests are longer than any of fixed 200 tokens
    assert got["e2e99"] > 1.2 * got["fixed99"]


def test_a_concurrency_case_may_carry_its_clients_spread(tmp_path: Path) -> None:
    """A closed-loop row with input_spread/output_spread is the estimate of clients whose lengths
    are drawn within them (the simulation's; the closed form sends the means, and takes of the
    spread only that the clients fall out of step after a round that starts together), not the row
    without them: the spread is part of the estimate the rows of one measurement share."""
    row = {"mode": "concurrency", "batch": "16", "request_rate": "", "requests": "", "metric": "ttft_s"}
    spread = {"input_spread": "0.3", "output_spread": "0.3"}
    path = _cases(
        tmp_path,
        {"id": "fixed", **row},
        {"id": "spread", **row, **spread},
        {"id": "spread-tpot", **row, **spread, "metric": "tpot_s", "measured": "0.01"},
    )
    got = {c.id: c.predicted for c in genmodel.validate(path).cases}
    est = genmodel.estimate(
        "llama-3.1-8b",
        "h100-sxm",
        concurrency=16,
        input_spread=0.3,
        output_spread=0.3,
        kv_dtype="bf16",
        **_SIM,
    )
    assert (got["spread"], got["spread-tpot"]) == pytest.approx((est.ttft_s, est.tpot_s))
    assert got["spread"] != pytest.approx(got["fixed"], rel=1e-3)
    closed = {c.id: c.predicted for c in genmodel.validate(path, serving="closed-form").cases}
    closed_est = genmodel.estimate(
        "llama-3.1-8b", "h100-sxm", concurrency=16, input_spread=0.3, output_spread=0.3, kv_dtype="bf16",
        **{**_SIM, "serving": "closed-form"},
    )  # fmt: skip
    assert closed["spread"] == pytest.approx(closed_est.ttft_s)
    assert closed["spread"] < closed["fixed"]  # (the fixed lengths' wave: every round a burst)


def test_bursty_arrivals_wait_longer_than_poisson_ones(tmp_path: Path) -> None:
    path = _cases(
        tmp_path,
        {"id": "poisson", "metric": "ttft_p99_s", "request_rate": "15"},
        {"id": "bursty", "metric": "ttft_p99_s", "request_rate": "15", "burstiness_cv": "4"},
    )
    got = {c.id: c.predicted for c in genmodel.validate(path).cases}
    assert got["bursty"] > got["poisson"]


def test_a_disaggregated_rate_case_simulates_both_pools(tmp_path: Path) -> None:
    pools = {"tp": "", "pp": "", "ep": "", "dp": "", "devices": "3", "disaggregated": "true"}
    pools |= {"prefill_tp": "1", "prefill_workers": "1", "decode_tp": "2", "decode_workers": "1"}
    path = _cases(tmp_path, {"id": "d", "metric": "tpot_s", **pools})
    case = genmodel.validate(path).cases[0]
    sim = genmodel.simulate(
        "llama-3.1-8b",
        "h100-sxm",
        request_rate=4.0,
        requests=200,
        seed=SEED,
        kv_dtype="bf16",
        disaggregated=True,
        prefill_tp=1,
        prefill_workers=1,
        decode_tp=2,
        decode_workers=1,
        **_SIM,
    )
    assert sim.disaggregated is not None and case.predicted == pytest.approx(sim.tpot_s.mean)


def test_a_percentile_of_an_estimated_case_is_skipped_with_the_reason(tmp_path: Path) -> None:
    row = {"id": "c", "mode": "concurrency", "batch": "8", "metric": "ttft_p90_s", "request_rate": ""}
    report = genmodel.validate(_cases(tmp_path, {**row, "requests": ""}))
    assert not report.cases and "predicted for rate-driven and disaggregated" in report.skipped[0][1]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"request_rate": "0"}, "request_rate='0' must be a number > 0"),
        ({"request_rate": "fast"}, "request_rate='fast' must be a number > 0"),
        ({"request_rate": ""}, "request_rate='' must be a number > 0"),
        ({"request_rate": "inf"}, "request_rate='inf' must be a number > 0"),
        ({"requests": "2.5"}, "requests='2.5' must be an integer"),
        ({"burstiness_cv": "-1"}, "burstiness_cv='-1' must be a number > 0"),
        ({"input_spread": "1"}, "input_spread='1' must be a number in \\[0, 1\\)"),
        (
            {"mode": "static", "batch": "1", "request_rate": "", "requests": "", "output_spread": "0.5"},
            "output_spread='0.5' needs mode=rate or concurrency",
        ),
        ({"batch": "8"}, "batch='8' must be empty for a rate case"),
        ({"mode": "concurrency", "batch": "8"}, "request_rate='4' needs mode=rate"),
        # a concurrency row may give the spreads (below), no other rate column, and no spread of 1
        ({"mode": "concurrency", "batch": "8", "input_spread": "0.1"}, "request_rate='4' needs mode=rate"),
        (
            {"mode": "concurrency", "batch": "8", "request_rate": "", "requests": "", "output_spread": "1"},
            "output_spread='1' must be a number in \\[0, 1\\)",
        ),
        ({"mode": "open"}, "mode='open' must be one of static, concurrency, rate"),
    ],
)
def test_a_malformed_rate_value_names_the_row_and_column(
    tmp_path: Path, row: dict[str, str], message: str
) -> None:
    path = _cases(tmp_path, {"id": "r1", "metric": "ttft_s", **row})
    with pytest.raises(genmodel.SpecError, match="line 2 \\(case r1\\): " + message):
        genmodel.validate(path)
    line = cli_bad(["validate", str(path)])  # one red line, exit code 2
    assert message.split("=")[0] in line and "\n" not in line.strip()


def test_a_rate_case_runs_with_its_devices_engine_profile(tmp_path: Path) -> None:
    """As a closed-loop case: the profile its row names (h200-sglang), named in the result, with its
    frontend time in the TTFT; a row naming none runs with its device's profile for its engine as
    the engine ships (none for SGLang on an H200: h200-sglang is AIConfigurator's harness's)."""
    row = {"id": "h", "metric": "ttft_p50_s", "hardware": "h200-sxm", "engine": "sglang", "request_rate": "1"}
    named = genmodel.validate(_cases(tmp_path, {**row, "profile": "h200-sglang"})).cases[0]
    plain = genmodel.validate(_cases(tmp_path, row), profile="default").cases[0]
    bare = genmodel.validate(_cases(tmp_path, row)).cases[0]
    overhead = genmodel.io.load_profile("h200-sglang").values["request_overhead_s"]
    assert (named.profile, plain.profile) == ("h200-sglang", "default")
    assert named.predicted - plain.predicted == pytest.approx(overhead, rel=0.05)
    assert bare.predicted == pytest.approx(plain.predicted, rel=1e-9)


def test_the_cli_reports_cases_that_have_no_interval(tmp_path: Path) -> None:
    """A file of rate cases only (no interval): the table's title says so, under either serving
    model, and with every case skipped."""
    path = _cases(tmp_path, {"id": "r", "metric": "ttft_s"})
    for serving in ("simulated", "closed-form"):
        text = cli_ok(["validate", str(path), "--serving", serving, "--summary"], columns=200)
        assert "1 cases" in text and "no interval (0 skipped)" in text
    skipped = _cases(tmp_path, {"id": "r", "metric": "tpot_p99_s"})
    text = cli_ok(["validate", str(skipped), "--serving", "closed-form"], columns=200)
    assert "no case predicted (1 skipped)" in text and "nan" not in text
