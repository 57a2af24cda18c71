"""Issue 16 as a new user meets it: honest serving-mode output, and bad input that gives one red line
and exit code 2 (never a traceback or a hang). Each test is a repro from the issue."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from _cli import cli_bad, cli_ok

import genmodel
from genmodel.io._trace import read_trace

SERVING = [
    "estimate",
    "--model",
    "llama-3.1-70b",
    "--hardware",
    "h100-sxm",
    "--tp",
    "4",
    "--concurrency",
    "93",
    "--input-tokens",
    "2000",
    "--output-tokens",
    "500",
    "--weight-dtype",
    "fp8",
]
STATIC = ["estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm"]
STATIC += ["--input-tokens", "1000", "--output-tokens", "100"]


def test_serving_estimate_says_what_its_numbers_are() -> None:
    text = cli_ok(SERVING, columns=200)
    for label in (
        "mean TTFT a request sees",
        "mean inter-token latency (TPOT)",
        "93 clients",
        "mean decode batch",
        "request rate",
        "prefill share",
        "queue wait",
        "limited by KV-cache memory",
        "max running",
    ):
        assert label in text, label
    # static-batch quantities that mean nothing under continuous batching
    for label in ("prefill tokens/s per device", "TTFT (prefill of the batch)", "TPOT (mean decode step)"):
        assert label not in text, label


def test_static_estimate_keeps_its_labels_and_defines_the_bound_line() -> None:
    text = cli_ok(STATIC, columns=200)
    assert "TTFT (prefill of the batch)" in text
    assert "prefill tokens/s per device" in text
    assert "serving:" not in text
    assert "decode: bound / compute / memory / comm (note below)" in text
    assert "sums of every operator's compute and memory times" in text
    assert "bound names the largest contributor" in text


SMALL = ["--model", "llama-3.1-8b", "--input-tokens", "1000", "--output-tokens", "200"]
SMALL += ["--ttft-slo", "1s", "--tpot-slo", "50ms"]


def test_compare_traffic_column_shows_the_devices_per_copy() -> None:
    args = ["compare", *SMALL, "--hardware", "h100-sxm", "--devices", "4", "--request-rate", "50"]
    args += ["--format", "json"]

    (row,) = json.loads(cli_ok(args))
    size = row["tp"] * row["pp"] * row["dp"]
    text = cli_ok(args[:-2], columns=200)
    assert f"{row['instances']} x {size} = {row['devices_needed']}" in text
    assert "copies x size = needed" in text


def test_plan_header_says_devices_of_which_system() -> None:
    text = cli_ok(["plan", *SMALL, "--hardware", "h100-sxm", "--devices", "4"], columns=200)
    assert "llama-3.1-8b on 4 devices of dgx-h100" in text
    rate = cli_ok(
        ["plan", *SMALL, "--hardware", "h100-sxm", "--devices", "4", "--request-rate", "10"], columns=200
    )
    assert "on copies of up to 4 devices of dgx-h100" in rate


PLAN = ["plan", *SMALL[:6], "--hardware", "h100-sxm", "--devices", "8"]
EST = ["estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--input-tokens", "100"]
EST += ["--output-tokens", "10"]
SWEEP = ["sweep", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--input-tokens", "100"]
SWEEP += ["--output-tokens", "10"]
REQ = ["requirements", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--input-tokens", "100"]
REQ += ["--output-tokens", "10"]
COMPARE = ["compare", *SMALL[:6], "--hardware", "h100-sxm"]


@pytest.mark.parametrize(
    "base", [PLAN, REQ, [*COMPARE, "--devices", "8"]], ids=["plan", "requirements", "compare"]
)
@pytest.mark.parametrize("flag", ["--ttft-slo", "--tpot-slo"])
def test_a_bare_slo_number_is_refused_with_a_hint(base: list[str], flag: str) -> None:
    line = cli_bad([*base, flag, "50"])
    assert "needs a unit: 50ms or 50s?" in line


@pytest.mark.parametrize("value", ["1e400ms", "1e400", "inf", "nan", "-5ms", "-1", "0ms", "2days"])
def test_slos_that_are_no_time_are_refused(value: str) -> None:
    cli_bad([*PLAN, "--tpot-slo", value])


def test_slos_with_units_still_work() -> None:
    cli_ok([*PLAN, "--ttft-slo", "1s", "--tpot-slo", "50ms"])
    cli_ok([*PLAN, "--ttft-slo", "1.5e3ms", "--tpot-slo", "5e-2s"])


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0", "x", ""])
def test_request_rate_must_be_a_finite_positive_number(value: str) -> None:
    cli_bad([*PLAN, "--request-rate", value])


HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    "args",
    [
        [*EST, "--tp", HUGE],
        [*EST, "--batch", HUGE],
        [*EST, "--concurrency", HUGE],
        [*EST[:-1], HUGE],
        [*EST, "--input-tokens", HUGE],
        [*EST, "--devices", HUGE],
        [*EST, "--draft-tokens", HUGE],
        [*EST, "--draft-tokens", "17"],
        [*EST, "--moe-imbalance", "inf"],
        [*EST, "--overlap", "nan"],
        [*EST, "--microbatches", "1000"],
        [*EST, "--microbatches", "2", "--batch", "1"],
        [*EST, "--tp", ""],
        [*EST, "--tp", "²"],
        [*EST, "--concurrency", ""],
        [*EST, "--batch", "²"],
        ["memory", *EST[1:], "--contexts", "8192,"],
        [*PLAN[:-1], HUGE],
        [*PLAN[:-1], ""],
        [*PLAN, "--prefill-chunks", "2,,3"],
        [*COMPARE, "--devices", HUGE],
        [*COMPARE, "--devices", "8,"],
        [*COMPARE, "--devices", ""],
        [*SWEEP, "--tp", "²"],
        [*SWEEP, "--tp", ""],
        [*SWEEP, "--tp", "8,"],
        [*SWEEP, "--tp", HUGE],
        [*SWEEP, "--batch", f"1,{HUGE}"],
        [*SWEEP, "--concurrency", ""],
        [*SWEEP, "--scale", "flops=inf"],
        [*SWEEP[:-1], HUGE],
        [*REQ, "--tp", HUGE],
    ],
)
def test_numbers_out_of_bounds_or_empty_are_one_line(args: list[str]) -> None:
    cli_bad(args)


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ([*COMPARE, "--devices", "8", "--hardware", ""], "hardware"),
        ([*COMPARE, "--devices", "8", "--hardware", "h100-sxm,,h200-sxm"], "hardware"),
        ([*COMPARE, "--devices", "8", "--weight-dtype", "fp8,"], "weight_dtype"),
        ([*PLAN, "--weight-dtype", "fp8,,bf16"], "weight_dtype"),
    ],
)
def test_an_empty_item_of_a_comma_list_of_names_is_refused(args: list[str], name: str) -> None:
    # as an empty integer is (--devices 8,): not skipped, and not 'no platform meets the targets'
    assert f"{name}=" in cli_bad([*args, "--serving", "closed-form"])


def test_compare_in_python_takes_a_comma_string_and_refuses_no_hardware() -> None:
    kw = {"devices": 1, "input_tokens": 100, "output_tokens": 10, "serving": "closed-form"}
    with pytest.raises(genmodel.SpecError, match="at least one platform"):
        genmodel.compare("llama-3.1-8b", [], **kw)
    rows = genmodel.compare("llama-3.1-8b", "h100-sxm,h200-sxm", **kw)
    assert [r["hardware"] for r in rows] == ["h100-sxm", "h200-sxm"]


def test_the_run_options_bounds_hold_in_the_api_too() -> None:
    with pytest.raises(genmodel.SpecError, match="draft_tokens"):
        genmodel.estimate("llama-3.1-8b", "h100-sxm", input_tokens=10, output_tokens=10, draft_tokens=10**20)
    with pytest.raises(genmodel.SpecError, match="moe_imbalance"):
        genmodel.estimate(
            "llama-3.1-8b", "h100-sxm", input_tokens=10, output_tokens=10, moe_imbalance=math.inf
        )


def _bad_paths(tmp_path: Path) -> dict[str, str]:
    """Paths no result may be written to, each by what it is."""
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link.html").symlink_to(tmp_path / "target.html")
    (tmp_path / "file").write_text("x")
    return {
        "directory": str(tmp_path),
        "empty": "",
        "fifo": str(tmp_path / "fifo"),
        "device": os.devnull,
        "symlink": str(tmp_path / "link.html"),
        "under a file": str(tmp_path / "file" / "out.txt"),
        "long name": str(tmp_path / ("a" * 300)),
    }


@pytest.mark.parametrize("flag", ["--output", "--plot"])
def test_output_and_plot_paths_are_checked_before_the_computation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: str
) -> None:
    def no_search(*args: object, **kwargs: object) -> None:
        raise AssertionError("the path must be refused before the search")

    monkeypatch.setattr(genmodel, "plan", no_search)
    for what, path in _bad_paths(tmp_path).items():
        suffix = ".html" if flag == "--plot" and what in ("under a file", "long name") else ""
        line = cli_bad([*PLAN, flag, path + suffix])
        assert flag.strip("-") in line, what
    assert (tmp_path / "fifo").exists() and not (tmp_path / "target.html").exists()
    assert os.path.islink(tmp_path / "link.html")


def test_estimate_output_to_a_special_file_is_refused(tmp_path: Path) -> None:
    for what, path in _bad_paths(tmp_path).items():
        assert "output" in cli_bad([*EST, "--output", path]), what
    assert stat.S_ISFIFO(os.stat(tmp_path / "fifo").st_mode)


def test_output_to_a_new_folder_is_written_whole(tmp_path: Path) -> None:
    target = tmp_path / "new" / "estimate.json"
    cli_ok([*EST, "--format", "json", "--output", str(target)])
    assert json.loads(target.read_text())["model"] == "llama-3.1-8b"
    assert [p.name for p in target.parent.iterdir()] == ["estimate.json"]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_json_never_carries_nan_or_infinity(bad: float) -> None:
    with pytest.raises(genmodel.GenModelError, match=r"memory\.tiers\[1\]\.bytes=.* not a finite number"):
        genmodel.report.to_json({"memory": {"tiers": [{"bytes": 1.0}, {"bytes": bad}]}})
    assert json.loads(genmodel.report.to_json({"a": (1.0, None, "x")})) == {"a": [1.0, None, "x"]}


def test_moe_imbalance_inf_never_reaches_the_json() -> None:
    line = cli_bad(["estimate", *SERVING[1:], "--moe-imbalance", "inf", "--format", "json"])
    assert "moe_imbalance=inf" in line


def _cases(tmp_path: Path, changes: dict[str, str], *, bom: bool = False) -> Path:
    """A validation CSV of two public cases, the second with ``changes``."""
    rows = genmodel.read_cases(genmodel.public_cases_path())[:2]
    rows[1] = {**rows[1], **changes}
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path / "cases.csv"
    path.write_text(("\ufeff" if bom else "") + buf.getvalue(), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("input_tokens", "12x"),
        ("tp", "²"),
        ("batch", HUGE),
        ("mode", "dynamic"),
        ("measured", "0"),
        ("measured", "-3"),
        ("measured", "nan"),
        ("measured", "inf"),
        ("measured", ""),
    ],
)
def test_validate_refuses_a_malformed_row_naming_line_and_column(
    tmp_path: Path, column: str, value: str
) -> None:
    path = _cases(tmp_path, {column: value})
    line = cli_bad(["validate", str(path)])
    assert "line 3" in line and f"{column}=" in line
    rows = json.loads(cli_ok(["validate", str(path), "--skip-invalid", "--format", "json"]))
    assert rows["covered"] == 1
    assert f"{column}=" in rows["skipped"][0]["reason"]


def test_validate_with_every_case_skipped_gives_null_figures_and_the_reasons(tmp_path: Path) -> None:
    path = _cases(tmp_path, {"model": "llama-2-7bb"})
    rows = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([rows[0], rows[2]]) + "\n", encoding="utf-8")  # the unknown model only
    d = json.loads(cli_ok(["validate", str(path), "--format", "json"]))
    assert d["covered"] == 0 and d["mape"] is None and d["median_ape"] is None and d["within_25pct"] is None
    text = cli_ok(["validate", str(path)], columns=200)
    assert "no case predicted (1 skipped)" in text and "nan" not in text
    assert "skipped cases" in text and "model='llama-2-7bb' is not known" in text


@pytest.mark.parametrize("value", ["-3", "1000", "abc"])
def test_validate_refuses_a_run_option_out_of_its_bounds_as_a_malformed_row(
    tmp_path: Path, value: str
) -> None:
    # out of bounds, the case was skipped as one genmodel cannot model ('abc' was refused)
    cases = _cases(tmp_path, {})
    options = tmp_path / "options.csv"
    second = genmodel.read_cases(cases)[1]["id"]
    options.write_text(f"id,overlap_microbatches\n{second},{value}\n", encoding="utf-8")
    line = cli_bad(["validate", str(cases), "--options", str(options)])
    assert "line 3" in line and "overlap_microbatches=" in line
    rows = json.loads(
        cli_ok(["validate", str(cases), "--options", str(options), "--skip-invalid", "--format", "json"])
    )
    assert rows["covered"] == 1 and "overlap_microbatches=" in rows["skipped"][0]["reason"]


def test_validate_refuses_options_for_no_case_naming_the_file_and_the_id(tmp_path: Path) -> None:
    # a typo in an options id would drop that case's options without a word
    cases = _cases(tmp_path, {})
    options = tmp_path / "options.csv"
    first = genmodel.read_cases(cases)[0]["id"]
    options.write_text(f"id,overlap_microbatches\n{first},2\nP9999,2\n", encoding="utf-8")
    for extra in ([], ["--skip-invalid"]):
        line = cli_bad(["validate", str(cases), "--options", str(options), *extra])
        assert "options.csv" in line and "'P9999'" in line and "matches no case" in line


def test_validate_refuses_a_case_id_given_twice(tmp_path: Path) -> None:
    # two rows of one id: its options and its results could not be told apart
    first = genmodel.read_cases(genmodel.public_cases_path())[0]["id"]
    path = _cases(tmp_path, {"id": first})
    line = cli_bad(["validate", str(path), "--skip-invalid"])
    assert "cases.csv" in line and f"{first!r}" in line and "given twice (lines 2 and 3)" in line


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda line: line.replace(",", ",1,", 1), "1 field more than the header"),  # 1,000 unquoted
        (lambda line: ",".join(line.split(",")[:7]), "has 7 fields where"),  # a line cut short
    ],
    ids=["unquoted comma", "cut short"],
)
@pytest.mark.parametrize("command", ["validate", "calibrate"])
def test_a_row_whose_fields_do_not_match_the_header_is_refused_naming_its_line(
    tmp_path: Path, command: str, edit: Callable[[str], str], said: str
) -> None:
    # an extra field was a traceback in validate (TypeError: unhashable type: 'list'); a missing one
    # read as pp=None
    path = _cases(tmp_path, {})
    head, first, second = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([head, first, edit(second)]) + "\n", encoding="utf-8")
    header = len(head.split(","))
    said = said.replace(
        "1 field more than the header", f"has {header + 1} fields where the header has {header}"
    )
    line = cli_bad([command, str(path)])
    assert "line 3 (case " in line and said in line
    if command == "validate":  # a malformed row: --skip-invalid skips it
        rows = json.loads(cli_ok(["validate", str(path), "--skip-invalid", "--format", "json"]))
        assert rows["covered"] == 1 and said in rows["skipped"][0]["reason"]


def test_calibrate_refuses_a_case_id_given_twice(tmp_path: Path) -> None:
    # as validate does (it fitted both rows, and its table showed the id twice)
    first = genmodel.read_cases(genmodel.public_cases_path())[0]["id"]
    line = cli_bad(["calibrate", str(_cases(tmp_path, {"id": first}))])
    assert f"{first!r}" in line and "given twice (lines 2 and 3)" in line


def test_validate_refuses_an_options_id_given_twice(tmp_path: Path) -> None:
    # two option rows of one case: the last one silently won
    cases = _cases(tmp_path, {})
    options = tmp_path / "options.csv"
    first = genmodel.read_cases(cases)[0]["id"]
    options.write_text(f"id,overlap_microbatches\n{first},2\n{first},1\n", encoding="utf-8")
    line = cli_bad(["validate", str(cases), "--options", str(options)])
    assert "options.csv" in line and f"{first!r}" in line and "given twice (lines 2 and 3)" in line


def test_validate_reads_a_csv_with_a_byte_order_mark(tmp_path: Path) -> None:
    rows = json.loads(cli_ok(["validate", str(_cases(tmp_path, {}, bom=True)), "--format", "json"]))
    assert rows["covered"] == 2


def test_hw_list_is_readable_at_100_columns() -> None:
    text = cli_ok(["hw", "list"], columns=100)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 100
    ids = [*genmodel.list_ids("hardware"), *genmodel.list_ids("power mode"), *genmodel.list_ids("system")]
    ids += [*genmodel.list_ids("memory tier"), *genmodel.list_ids("link")]
    cells = {cell.strip() for line in text.splitlines() for cell in line.split("│")}
    assert set(ids) <= cells  # each id whole in its own cell
    for unit in ("GiB", "TB/s", "TFLOP/s", "GB/s", "ns"):
        assert unit in text


def test_hw_list_wide_shows_every_field() -> None:
    text = cli_ok(["hw", "list", "--wide"], columns=250)
    assert "name" in text and "NVIDIA H100 SXM5 80GB" in text
    assert "NVIDIA H100 SXM5 80GB" not in cli_ok(["hw", "list"], columns=250)


def test_serving_rows_show_the_serving_model_and_engine_where_given() -> None:
    from genmodel.cli._tables import _serving_rows

    est = genmodel.estimate("llama-3.1-8b", "h100-sxm", concurrency=8, input_tokens=100, output_tokens=10)
    d = genmodel.report.estimate_dict(est)
    inside = {**d["serving"], "serving_model": "simulated", "engine": "vllm"}
    rows = dict(_serving_rows(d, inside))
    assert rows["serving: serving model"] == "simulated" and rows["serving: engine"] == "vllm"
    bare = {k: v for k, v in d["serving"].items() if k not in ("serving_model", "engine")}
    rows = dict(_serving_rows({**d, "serving_model": "closed-form"}, bare))
    assert rows["serving: serving model"] == "closed-form"


SIM = ["simulate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--input-tokens", "100"]
SIM += ["--output-tokens", "10", "--concurrency", "2", "--requests-per-client", "2", "--warmup", "1"]


@pytest.mark.parametrize("tier", ["nosuch-tier", "host"])
def test_a_swap_tier_without_swap_preemption_is_refused(tier: str) -> None:
    # vLLM's preset preempts by recompute: the tier (even a misspelt one) went unused, unchecked
    line = cli_bad([*SIM, "--swap-tier", tier])
    assert f"swap_tier='{tier}' needs preemption='swap'" in line
    cli_ok([*SIM, "--swap-tier", "host", "--preemption", "swap"])
    assert "nosuch-tier" in cli_bad([*SIM, "--swap-tier", "nosuch-tier", "--preemption", "swap"])


RATE = [*SIM[:9], "--requests", "3"]


@pytest.mark.parametrize("rate", ["1e-300", "1e-9"])
def test_a_rate_whose_requests_arrive_beyond_the_clock_is_refused(rate: str) -> None:
    # 1e-300 requests/s put the arrivals near 1e300 s, where a step's milliseconds round away:
    # the simulation gave a p50 TTFT of 0 s
    line = cli_bad([*RATE, "--request-rate", rate])
    assert f"request_rate={float(rate)!r}" in line and "beyond the simulation's 1e+09 s" in line
    d = json.loads(cli_ok([*RATE, "--request-rate", "1e-6", "--format", "json"]))
    assert d["ttft_s"]["p50"] > 0


def test_a_trace_arrival_beyond_the_clock_is_refused(tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("arrival_s,input_tokens,output_tokens\n0,100,10\n1e300,100,10\n", encoding="utf-8")
    line = cli_bad([*SIM[:5], "--trace", str(trace)])
    assert "line 3: arrival_s=1e+300 must be between 0 and 1e+09 s" in line
    with pytest.raises(genmodel.SpecError, match=r"trace row 2: arrival_s=10000000000\.0 must be between"):
        genmodel.simulate("llama-3.1-8b", "h100-sxm", trace=((0.0, 100, 10), (1e10, 100, 10)))


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--prefill-tp", "0"),
        ("--decode-workers", "0"),
        ("--prefill-max-batch", "0"),
        ("--decode-dp", "-1"),
    ],
)
def test_a_bad_pool_flag_is_named_as_given(flag: str, value: str) -> None:
    # it was named as the pool's worker field (tp=0, workers=0, max_num_seqs=0)
    line = cli_bad([*SIM, "--disaggregated", flag, value])
    assert f"{flag[2:].replace('-', '_')}={value}" in line


def test_records_to_a_json_file_are_refused(tmp_path: Path) -> None:
    # the per-request records are CSV: --records r.json wrote CSV into r.json
    line = cli_bad([*SIM, "--records", str(tmp_path / "r.json")])
    assert "records=" in line and "give a FILE.csv" in line
    assert not (tmp_path / "r.json").exists()


def test_records_are_named_and_never_the_same_file_as_the_output(tmp_path: Path) -> None:
    same = tmp_path / "same.csv"
    line = cli_bad([*SIM, "--records", str(same), "--output", str(tmp_path / "." / "same.csv")])
    assert "records=" in line and "is also --output" in line
    assert not same.exists()
    assert "records=" in cli_bad([*SIM, "--records", str(tmp_path)])  # it said output=
    cli_ok([*SIM, "--records", str(tmp_path / "r.csv"), "--output", str(tmp_path / "o.txt")])
    assert (tmp_path / "r.csv").read_text().startswith("request,arrival_s,")
    assert "Latency (simulated)" in (tmp_path / "o.txt").read_text()  # (an o.csv is CSV)


@pytest.mark.parametrize(
    "args",
    [
        [*EST, "--requests-per-client", "5"],
        [*EST, "--warmup-requests", "1"],
        [*REQ, "--ttft-slo", "1s", "--requests-per-client", "3"],
        [*REQ, "--ttft-slo", "1s", "--max-num-seqs", "4"],
        [*SIM[:9], "--request-rate", "5", "--requests", "5", "--warmup", "2"],
        [*SIM[:9], "--request-rate", "5", "--requests", "5", "--requests-per-client", "2"],
    ],
)
def test_closed_loop_settings_without_closed_loop_clients_are_refused(args: list[str]) -> None:
    # they went unused: a static batch and an open loop have no client to warm up
    line = cli_bad(args)
    assert "only with concurrency= (closed-loop clients)" in line


def test_closed_loop_settings_are_refused_with_a_trace_too(tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("arrival_s,input_tokens,output_tokens\n0,100,10\n", encoding="utf-8")
    assert "not trace=" in cli_bad([*SIM[:5], "--trace", str(trace), "--warmup", "1"])
    cli_ok([*SIM[:5], "--trace", str(trace)])


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ([*EST, "--tpp", "2"], "No such option: --tpp (Possible options: --ep, --pp, --tp)"),
        ([*EST, "--format", "xml"], "Invalid value for '--format': 'xml' is not one of"),
        (EST[:3], "Missing option '--hardware'."),
        (["estimat"], "No such command 'estimat'. Did you mean 'estimate'"),
        (["hw", "show"], "Missing argument 'hardware'."),
    ],
)
def test_a_usage_error_from_the_shell_is_one_red_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    # click's box took five lines of stderr (the usage, a hint, and the message in a frame)
    from genmodel.cli._app import main

    monkeypatch.setattr("sys.argv", ["genmodel", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and said in line and line.endswith("--help)")


def test_the_entry_point_keeps_the_exit_codes_of_success_and_no_plan(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from genmodel.cli._app import main

    for args, code in (
        ([*EST, "--format", "json"], 0),
        ([*PLAN, "--tpot-slo", "1us"], 3),
        (["--version"], 0),
    ):
        monkeypatch.setattr(
            "sys.argv", ["genmodel", *args, *(["--serving", "closed-form"] if code == 3 else [])]
        )
        with pytest.raises(SystemExit) as exc:
            main()
        assert exc.value.code == code, args
    assert "genmodel" in capsys.readouterr().out


def test_a_terminal_without_unicode_gets_question_marks_not_a_traceback() -> None:
    # an interval's en dash (8.38 ms–12.77 ms) raised UnicodeEncodeError on an ASCII stdout
    import subprocess
    import sys

    code = f"import sys\nfrom genmodel.cli._app import main\nsys.argv = ['genmodel', *{EST!r}]\nmain()\n"
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "COLUMNS": "120"}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-600:]
    assert b"Traceback" not in proc.stderr and b" ms?" in proc.stdout


def test_output_dash_is_stdout_and_dot_slash_dash_is_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `--output -` wrote a file named '-'; as Unix tools read it, '-' is stdout (on every command)
    monkeypatch.chdir(tmp_path)
    d = json.loads(cli_ok([*EST, "--format", "json", "--output", "-"]))
    assert d["model"] == "llama-3.1-8b"
    assert json.loads(cli_ok(["models", "show", "llama-3.1-8b", "-o", "-"]))["id"] == "llama-3.1-8b"
    assert cli_ok([*SWEEP, "--format", "csv", "-o", "-"]).startswith("model,hardware,")
    assert not (tmp_path / "-").exists()
    cli_ok(["models", "show", "llama-3.1-8b", "-o", "./-"])  # a file named '-', asked for as one
    assert json.loads((tmp_path / "-").read_text(encoding="utf-8"))["id"] == "llama-3.1-8b"


def test_records_dash_is_stdout_beside_an_output_file(tmp_path: Path) -> None:
    sim = ["simulate", *EST[1:], "--concurrency", "2", "--records", "-"]
    assert "records='-' would mix with the result on stdout" in cli_bad(sim)
    assert "records='-'" in cli_bad([*sim, "--output", "-"])
    text = cli_ok([*sim, "--format", "json", "--output", str(tmp_path / "sim.json")])
    assert text.startswith("request,arrival_s,")
    assert json.loads((tmp_path / "sim.json").read_text(encoding="utf-8"))["requests"] > 0


def test_calibrate_output_dash_puts_the_profile_on_stdout_and_the_report_on_stderr(tmp_path: Path) -> None:
    from _cli import runner
    from genmodel.cli._app import app

    args = ["calibrate", "--device", "a100-sxm-80gb", "--parameter", "memory_frac", "--no-cross-validate"]
    result = runner.invoke(app, [*args, "--format", "json", "-o", "-"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stderr)["hardware"] == "a100-sxm-80gb"
    path = tmp_path / "mine.yaml"
    path.write_text(result.stdout, encoding="utf-8")  # stdout is the profile file, nothing else
    assert genmodel.load_profile(str(path)).hardware == ("a100-sxm-80gb",)


def test_validate_csv_with_no_case_predicted_still_has_its_header(tmp_path: Path) -> None:
    path = _cases(tmp_path, {"model": "llama-2-7bb"})
    rows = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([rows[0], rows[2]]) + "\n", encoding="utf-8")  # the unknown model only
    text = cli_ok(["validate", str(path), "--format", "csv"])
    assert text.splitlines() == [",".join(genmodel.ValidationReport.CASE_KEYS)]
    full = cli_ok(["validate", str(_cases(tmp_path, {})), "--format", "csv"])
    assert full.splitlines()[0] == text.strip()  # the same header as with cases


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            [*COMPARE, "--devices", "4", "--hardware", "h100-sxm,h100-sxm"],
            "hardware='h100-sxm' is given twice",
        ),
        (
            [*COMPARE, "--devices", "4", "--hardware", "h100-sxm,H100-SXM"],
            "hardware='H100-SXM' is given twice",
        ),
        (["sweep", *SWEEP[1:], "--model", "llama-3.1-8b"], "model='llama-3.1-8b' is given twice"),
        ([*SWEEP, "--hardware", "H100-sxm"], "hardware='H100-sxm' is given twice"),
        ([*SWEEP, "--batch", "1,8,1"], "batch=1 is given twice"),
        ([*SWEEP, "--tp", "1,2", "--tp", "2"], "tp=2 is given twice"),
    ],
)
def test_a_value_given_twice_is_refused_not_run_twice(args: list[str], said: str) -> None:
    assert said in cli_bad(args)


def test_one_platform_at_two_budgets_is_a_comparison() -> None:
    rows = json.loads(
        cli_ok(
            [
                *COMPARE,
                "--hardware",
                "h100-sxm,h100-sxm",
                "--devices",
                "1,2",
                "--serving",
                "closed-form",
                "--format",
                "json",
            ]
        )
    )
    assert [r["devices"] for r in rows] == [1, 2]


def test_a_profile_made_for_another_device_is_applied_with_a_warning() -> None:
    # a profile calibrated for one device was carried over to another silently
    from _cli import runner
    from genmodel.cli._app import app

    result = runner.invoke(app, [*EST, "--profile", "h200-vllm", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["hardware"] == "h100-sxm"  # stdout is the JSON alone
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("warning: profile h200-vllm was made for h200-sxm, not h100-sxm")
    for args in (
        ["--profile", "h100-vllm"],  # its own device
        ["--profile", "default"],  # made for every device
        ["--hardware", "h200-sxm", "--profile", "h200-vllm"],
    ):
        quiet = runner.invoke(app, [*EST, *args, "--format", "json"])
        assert quiet.exit_code == 0 and quiet.stderr == "", (args, quiet.output)
    sweep = runner.invoke(
        app, [*SWEEP, "--hardware", "h200-sxm", "--profile", "h200-vllm", "--format", "csv"]
    )
    assert "not h100-sxm:" in sweep.stderr and "h200-sxm," not in sweep.stderr.split("not")[1]


@pytest.mark.parametrize("extra", [[], ["--draft-tokens", "0"]])
def test_acceptance_without_speculation_is_refused_not_ignored(extra: list[str]) -> None:
    # every run option's default was passed on, --draft-tokens 0 with it, so --acceptance was dropped
    line = cli_bad([*EST, "--acceptance", "0.5", *extra])
    assert "acceptance_rate=0.5 needs draft_tokens of 1 or more" in line
    plan = cli_bad([*PLAN, "--acceptance", "0.5", *extra, "--serving", "closed-form"])
    assert "acceptance_rate=0.5 needs draft_tokens" in plan
    spec = ["--acceptance", "0.5", "--draft-tokens", "2", "--draft-model", "llama-3.2-1b"]
    on = json.loads(cli_ok([*EST, *spec, "--format", "json"]))
    assert on["tpot_s"] != json.loads(cli_ok([*EST, "--format", "json"]))["tpot_s"]


def test_a_spreadsheets_trace_is_read_and_a_header_it_cannot_use_is_shown(tmp_path: Path) -> None:
    # Excel's "CSV UTF-8" starts with a byte-order mark, and "a, b" headers have spaces: both read as
    # 'column arrival_s missing'; an empty file said the same, and a ';' header was not shown
    rows = "0,100,10\n0.5,200,20\n"
    plain = tmp_path / "plain.csv"
    plain.write_text("arrival_s,input_tokens,output_tokens\n" + rows, encoding="utf-8")
    for name, text in (
        ("bom.csv", "\ufeffarrival_s,input_tokens,output_tokens\n"),
        ("spaced.csv", "arrival_s, input_tokens, output_tokens\n"),
    ):
        path = tmp_path / name
        path.write_text(text + rows, encoding="utf-8")
        assert read_trace(path) == read_trace(plain) == ((0.0, 100, 10), (0.5, 200, 20))
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    assert "the file is empty" in cli_bad([*SIM[:5], "--trace", str(empty)])
    semi = tmp_path / "semi.csv"
    semi.write_text("arrival_s;input_tokens;output_tokens\n0;100;10\n", encoding="utf-8")
    assert "the header is 'arrival_s;input_tokens;output_tokens'" in cli_bad([*SIM[:5], "--trace", str(semi)])


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--weight-dtype", "fp9"], "weight_dtype='fp9' must be one of fp32,"),
        (["--weight-dtype", "q4km"], "; did you mean q4_k_m?"),
        (["--kv-dtype", "bf61"], "; did you mean bf16?"),
        (
            ["--concurrency", "2", "--serving", "closed"],
            "serving='closed' must be one of simulated, closed-form; did you mean closed-form?",
        ),
    ],
)
def test_a_misspelt_choice_suggests_the_closest(args: list[str], line: str) -> None:
    # an unknown id suggested the closest ids, but a misspelt dtype, serving model, objective or
    # engine knob only listed the choices
    assert line in cli_bad([*EST, *args])
    assert "did you mean" not in cli_bad([*EST, "--weight-dtype", "xyz"])
    with pytest.raises(genmodel.SpecError, match=r"objective='goodputs' .*; did you mean goodput\?$"):
        genmodel.plan(
            "llama-3.1-8b", "h100-sxm", devices=1, input_tokens=100, output_tokens=10, objective="goodputs"
        )
    with pytest.raises(genmodel.SpecError, match=r"; did you mean on-demand\?$"):
        genmodel.simulate(
            "llama-3.1-8b",
            "h100-sxm",
            concurrency=1,
            input_tokens=100,
            output_tokens=10,
            admission="on_demand",
        )
