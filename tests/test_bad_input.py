"""Issue 16 as a new user meets it: honest serving-mode output, and bad input that gives one red line
and exit code 2 (never a traceback or a hang). Each test is a repro from the issue."""

from __future__ import annotations

import json

from _cli import cli_ok

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
