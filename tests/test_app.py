"""The dashboard (``genmodel.app``) through ``streamlit.testing.v1.AppTest``; ``genmodel dashboard``.

Every page is run from the installed entry script (``genmodel/app/main.py``, found with
importlib.resources as the CLI finds it), an input is changed, and the test checks that no exception
is shown, that the plotly charts are there, and that the numbers shown (metrics, chart data) are what
the public API returns for the same inputs. The URL query parameters are checked both ways: they set
the widgets, and the widgets write them back.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.resources
import inspect
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _cli import cli_ok, runner
from genmodel.cli import _dashboard
from genmodel.cli._app import app as cli_app
from streamlit.testing.v1 import AppTest

import genmodel
from genmodel.report import format_bytes, format_seconds, roofline_figure, roofline_points

MAIN = Path(str(importlib.resources.files("genmodel.app").joinpath("main.py")))
# generous: the first run of a test process imports plotly and streamlit's runtime
TIMEOUT_S = 60

# the pages' defaults, as the pages set them (a changed default must change the test too)
ESTIMATE = {
    "model": "llama-3.1-70b",
    "hardware": "h100-sxm",
    "input_tokens": 1000,
    "output_tokens": 500,
    "batch": 16,
    "tp": 8,
}
PLAN = {
    "model": "llama-3.1-70b",
    "hardware": "h100-sxm",
    "devices": 8,
    "input_tokens": 2000,
    "output_tokens": 500,
    "ttft_slo_s": 1000 * 1e-3,
    "tpot_slo_s": 40 * 1e-3,
    "weight_dtype": ["fp8", "bf16"],
}
SERVING = {
    "model": "llama-3.1-8b",
    "hardware": "h100-sxm",
    "input_tokens": 1000,
    "output_tokens": 200,
    "tp": 1,
    "ep": 1,
    "dp": 1,
    "weight_dtype": "bf16",
}
SERVING_LOAD = {"concurrency": 64, "requests_per_client": genmodel.REQUESTS_PER_CLIENT}
LONG_CONTEXT = {
    "tp": 8,
    "input_tokens": 127_000,
    "output_tokens": 1000,
    "weight_dtype": "bf16",
    "contexts": (4096, 8192, 16384, 32768, 65536, 131072),
}
MOE_EPS = (8, 16, 32, 64, 128, 256)


def _open(page: str | None = None, **params: str) -> AppTest:
    """Run the dashboard on ``page`` (a script next to main.py; None: the default page) with these
    URL query parameters; assert that it ran without an exception."""
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT_S)
    if page is not None:
        at.run()  # the navigation must be registered before switching pages
        at.query_params.clear()
        at.switch_page(page)
    at.query_params.update(params)
    return _rerun(at)


def _rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    """The st.metric values by label (the last one of a repeated label)."""
    return {m.label: m.value for m in at.metric}


def _figures(at: AppTest) -> dict[str, dict[str, Any]]:
    """The plotly charts' specs (data and layout) by title text; at least one chart per page."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert specs, "no plotly chart on the page"
    return {s["layout"].get("title", {}).get("text", ""): s for s in specs}


def _figure(at: AppTest, title_part: str) -> dict[str, Any]:
    found = [s for t, s in _figures(at).items() if title_part in t]
    assert len(found) == 1, (title_part, list(_figures(at)))
    return found[0]


def _trace(fig: dict[str, Any], name: str) -> dict[str, Any]:
    found = [t for t in fig["data"] if t.get("name") == name]
    assert len(found) == 1, (name, [t.get("name") for t in fig["data"]])
    return found[0]


# ---- the command -------------------------------------------------------------------------------


def test_dashboard_help() -> None:
    text = cli_ok(["dashboard", "--help"], columns=120)
    assert "--port" in text and "--host" in text and "Streamlit" in text


def _served(monkeypatch: pytest.MonkeyPatch, args: list[str], code: int = 0) -> dict[str, str]:
    """Run ``genmodel dashboard ARGS`` with the child replaced; the streamlit flags it would get."""
    calls: list[list[str]] = []

    def fake_serve(command: list[str]) -> int:
        calls.append(command)
        return code

    monkeypatch.setattr(_dashboard, "serve", fake_serve)
    result = runner.invoke(cli_app, ["dashboard", *args])
    assert result.exit_code == code, result.output
    (command,) = calls
    assert command[1:4] == ["-m", "streamlit", "run"]
    assert Path(command[4]) == MAIN and MAIN.is_file() and MAIN.parent.name == "app"
    return dict(zip(command[5::2], command[6::2], strict=True))


def test_dashboard_runs_streamlit_on_the_installed_entry_script(monkeypatch: pytest.MonkeyPatch) -> None:
    flags = _served(monkeypatch, ["--port", "8599", "--host", "0.0.0.0"])
    assert flags == {
        "--server.port": "8599",
        "--server.headless": "true",
        "--browser.gatherUsageStats": "false",
        "--client.toolbarMode": "viewer",
        "--server.address": "0.0.0.0",
    }
    assert _dashboard.streamlit_command()[6] == "8501"  # the default port
    # the child's exit code is the command's
    assert _served(monkeypatch, [], code=3)["--server.port"] == "8501"


def test_dashboard_listens_on_loopback_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 16: Streamlit's own default is every interface
    assert _served(monkeypatch, [])["--server.address"] == "127.0.0.1"
    assert _served(monkeypatch, ["--host", "::1"])["--server.address"] == "::1"


def test_dashboard_rejects_a_bad_port_or_host() -> None:
    assert runner.invoke(cli_app, ["dashboard", "--port", "0"]).exit_code == 2
    result = runner.invoke(cli_app, ["dashboard", "--host", " "])
    assert result.exit_code == 2 and "--host" in result.output


# a stand-in for streamlit: says it is ready once its handlers are set, then waits for a signal
_CHILD = """
import os, signal, sys, time
from pathlib import Path
mark = Path(sys.argv[1])
def stop(signum, frame):
    mark.write_text(f"stopped by {signum}")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
mark.write_text(f"ready {os.getpid()}")
while True:
    time.sleep(0.05)
"""
_PARENT = "import sys; from genmodel.cli._dashboard import serve; sys.exit(serve(sys.argv[1:]))"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_dashboard_passes_a_signal_on_to_its_child(tmp_path: Path, signum: signal.Signals) -> None:
    """``kill PID`` (or Ctrl-C) of ``genmodel dashboard`` stops the streamlit child too (issue 16:
    subprocess.run left it serving)."""
    mark = tmp_path / "child"
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, sys.executable, "-c", _CHILD, str(mark)], start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60  # a bound on the wait, not a speed check
        while not (mark.is_file() and mark.read_text().startswith("ready")):
            assert parent.poll() is None and time.monotonic() < deadline, "the child never started"
            time.sleep(0.05)
        os.kill(parent.pid, signum)  # the parent alone, as `kill PID` does
        assert parent.wait(timeout=60) == 0
        assert mark.read_text() == f"stopped by {int(signum)}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)


def test_dashboard_returns_the_childs_exit_code() -> None:
    assert _dashboard.serve([sys.executable, "-c", "import sys; sys.exit(3)"]) == 3


# ---- the roofline helper of genmodel.report ------------------------------------------------------


def test_roofline_points_are_the_estimates_operators() -> None:
    est = _estimate()
    for phase in ("decode", "prefill"):
        rows = roofline_points(est, phase=phase)
        ops = getattr(est, phase).ops
        assert [r["operator"] for r in rows] == [t.op.name for t in ops]
        assert sum(r["compute_s"] for r in rows) == pytest.approx(getattr(est, phase).compute_s)
        for r in rows:
            assert r["time_s"] == max(r["compute_s"], r["memory_s"])
            if r["flops"] > 0:
                assert r["achieved_flops_per_s"] * r["time_s"] == pytest.approx(r["flops"])
    with pytest.raises(genmodel.SpecError, match="phase"):
        roofline_points(est, phase="training")


def test_roofline_figure_needs_the_estimates_device() -> None:
    est = _estimate()
    with pytest.raises(genmodel.SpecError, match="h200-sxm"):
        roofline_figure(est, genmodel.load_device("h200-sxm"))
    fig = roofline_figure(est, genmodel.load_hardware("h100-sxm"), phase="prefill")
    roofs = [t for t in fig.data if t.mode == "lines"]
    assert len(roofs) == 1  # bf16 weights, activations and KV: one precision, one roof
    assert max(roofs[0].y) == pytest.approx(genmodel.load_device("h100-sxm").peak_flops_per_s["bf16"])


# ---- Estimate / what-if ------------------------------------------------------------------------


def _estimate(hardware: Any = "h100-sxm", **changes: Any) -> genmodel.Estimate:
    kwargs: dict[str, Any] = {k: v for k, v in ESTIMATE.items() if k != "hardware"}
    kwargs.update(changes)
    return genmodel.estimate(kwargs.pop("model"), hardware, **kwargs)


def test_estimate_page_shows_the_api_numbers_and_charts() -> None:
    at = _open()
    assert at.title[0].value == "Estimate / what-if"
    est = _estimate()
    shown = _metrics(at)
    assert shown["TTFT"] == format_seconds(est.ttft_s)
    assert shown["TPOT"] == format_seconds(est.tpot_s)
    assert shown["Batch"] == f"{est.batch:,}"
    assert shown["Output tokens/s per device"] == f"{est.output_tokens_per_s_per_device:,.1f}"
    assert shown["Memory per device"] == format_bytes(est.memory.device_bytes_per_device)
    memory = _figure(at, "Memory per device")
    assert _trace(memory, "weights")["y"] == pytest.approx([est.memory.weights_bytes_per_device])
    roof = _figure(at, "decode operators against the roofline")
    gemms = _trace(roof, "gemm operators")
    expected = [r for r in roofline_points(est, phase="decode") if r["kind"] == "gemm"]
    assert gemms["text"] == [r["operator"] for r in expected]
    assert gemms["x"] == pytest.approx([r["arithmetic_intensity"] for r in expected])
    # the roofs are the device's datasheet figures
    peak = genmodel.load_device("h100-sxm").peak_flops_per_s["bf16"]
    assert max(max(t["y"]) for t in roof["data"] if t["mode"] == "lines") == pytest.approx(peak)
    # the page's state is in the URL
    assert at.query_params["model"] == "llama-3.1-70b" and at.query_params["tp"] == "8"


def test_estimate_page_follows_changed_inputs_and_writes_them_to_the_url() -> None:
    at = _open()
    at.selectbox(key="estimate.model").set_value("llama-3.1-8b")
    at.number_input(key="estimate.tp").set_value(2)
    at.number_input(key="estimate.input_tokens").set_value(4000)
    _rerun(at)
    est = _estimate(model="llama-3.1-8b", tp=2, input_tokens=4000)
    shown = _metrics(at)
    assert shown["TPOT"] == format_seconds(est.tpot_s)
    assert shown["TTFT"] == format_seconds(est.ttft_s)
    assert at.query_params["model"] == "llama-3.1-8b"
    assert at.query_params["tp"] == "2" and at.query_params["input_tokens"] == "4000"
    # the roofline follows the phase switch
    at.radio(key="estimate.phase").set_value("prefill")
    _rerun(at)
    assert _figure(at, "prefill operators against the roofline")
    table = at.dataframe[0].value
    assert list(table["operator"]) == [r["operator"] for r in roofline_points(est, phase="prefill")]


def test_estimate_what_if_sliders_scale_the_hardware() -> None:
    at = _open()
    before = _metrics(at)["TPOT"]
    at.slider(key="estimate.memory_bandwidth").set_value(2.0)
    _rerun(at)
    faster = _estimate(genmodel.load_hardware("h100-sxm").scaled(memory_bandwidth=2.0))
    assert _metrics(at)["TPOT"] == format_seconds(faster.tpot_s) != before
    assert faster.tpot_s < _estimate().tpot_s
    assert at.query_params["memory_bandwidth"] == "2"
    # the roofline's memory roof moved with the slider
    roof = _figure(at, "decode operators against the roofline")
    roof_line = next(t for t in roof["data"] if t["mode"] == "lines")
    bandwidth = 2.0 * genmodel.load_device("h100-sxm").memory_bandwidth_bytes_per_s
    assert roof_line["y"][0] == pytest.approx(roof_line["x"][0] * bandwidth)


def test_estimate_page_reads_its_state_from_the_url() -> None:
    at = _open(model="llama-3.1-8b", hardware="h200-sxm", tp="2", batch="4", weight_dtype="fp8")
    assert at.selectbox(key="estimate.hardware").value == "h200-sxm"
    assert at.number_input(key="estimate.tp").value == 2
    est = _estimate("h200-sxm", model="llama-3.1-8b", tp=2, batch=4, weight_dtype="fp8")
    assert _metrics(at)["TPOT"] == format_seconds(est.tpot_s)
    assert _metrics(at)["Batch"] == "4"


def test_estimate_page_takes_a_quantised_weight_format_from_the_url() -> None:
    at = _open(weight_dtype="q4_k_m")
    assert at.selectbox(key="estimate.weight_dtype").value == "q4_k_m"
    est = _estimate(weight_dtype="q4_k_m")
    assert _metrics(at)["TPOT"] == format_seconds(est.tpot_s)
    assert _metrics(at)["Memory per device"] == format_bytes(est.memory.device_bytes_per_device)


@pytest.mark.parametrize(
    ("page", "weights", "others"),
    [
        ("main.py", "estimate.weight_dtype", ["estimate.act_dtype", "estimate.kv_dtype"]),
        ("_serving.py", "serving.weight_dtype", ["serving.act_dtype", "serving.kv_dtype"]),
        ("_long_context.py", "long_context.weight_dtype", ["long_context.kv_dtype"]),
        ("_plan.py", "plan.weight_dtype", []),
        ("_compare.py", "compare.weight_dtype", []),
    ],
)
def test_weight_selectors_offer_the_quantised_formats_and_the_others_plain_dtypes(
    page: str, weights: str, others: list[str]
) -> None:
    at = _open(None if page == "main.py" else page)
    widget = at.get("multiselect" if page in ("_plan.py", "_compare.py") else "selectbox")
    options = {w.key: list(w.options) for w in widget}
    assert options[weights] == list(genmodel.WEIGHT_DTYPE_BYTES)
    assert {"q4_0", "q4_k_m", "q8_0", "q4f16_1"} <= set(options[weights])
    for key in others:
        assert [o for o in options[key] if o != "auto"] == list(genmodel.DTYPE_BYTES)


def test_estimate_page_serving_mode_and_bad_input() -> None:
    at = _open(mode="serving (concurrency)", concurrency="32")
    est = _estimate(batch=None, concurrency=32)
    assert _metrics(at)["TPOT"] == format_seconds(est.tpot_s)
    # an invalid query parameter falls back to the default; one of another page is dropped
    at = _open(model="no-such-model", tp="many", stray="1")
    assert at.selectbox(key="estimate.model").value == ESTIMATE["model"]
    assert at.number_input(key="estimate.tp").value == ESTIMATE["tp"]
    assert at.toast and "stray" not in at.query_params
    # a plan that cannot run is one error box, not a traceback
    at.number_input(key="estimate.tp").set_value(3)
    _rerun(at)
    assert len(at.error) == 1 and "tp=3" in at.error[0].value
    assert at.query_params["tp"] == "3"


def test_estimate_page_serving_model_and_engine_selectors() -> None:
    at = _open(mode="serving (concurrency)", concurrency="32")
    assert tuple(at.radio(key="estimate.serving").options) == genmodel.SERVING_MODELS
    assert tuple(at.selectbox(key="estimate.engine").options) == genmodel.ENGINES
    simulated = _estimate(batch=None, concurrency=32)
    assert simulated.serving is not None and simulated.serving.serving_model == "simulated"
    assert any("Serving model: **simulated** (vllm)" in c.value for c in at.caption)
    at.selectbox(key="estimate.engine").set_value("sglang")
    _rerun(at)
    trt = _estimate(batch=None, concurrency=32, engine="sglang")
    assert _metrics(at)["TTFT"] == format_seconds(trt.ttft_s) != format_seconds(simulated.ttft_s)
    assert at.query_params["engine"] == "sglang"
    at.radio(key="estimate.serving").set_value("closed-form")
    _rerun(at)
    closed = _estimate(batch=None, concurrency=32, serving="closed-form")
    assert _metrics(at)["TPOT"] == format_seconds(closed.tpot_s)
    assert any("Serving model: **closed-form**" in c.value for c in at.caption)
    assert not [s for s in at.selectbox if s.key == "estimate.engine"] and "engine" not in at.query_params
    # a static batch has no serving model
    at.radio(key="estimate.mode").set_value("static batch")
    _rerun(at)
    assert not [r for r in at.radio if r.key == "estimate.serving"]


def _notes(at: AppTest) -> list[str]:
    """The note captions of the page's main area (an API result's notes, as _ui.show_notes draws them)."""
    return [c.value for c in at.main.caption if c.value.startswith("Note")]


def test_estimate_page_shows_the_estimates_notes() -> None:
    assert not _notes(_open())  # none on h100-sxm in bf16
    at = _open(hardware="a100-sxm-80gb", weight_dtype="fp8")
    est = _estimate("a100-sxm-80gb", weight_dtype="fp8")
    assert est.notes and _notes(at) == [f"Note: {n}" for n in est.notes]
    assert "fp8 is not native on a100-sxm-80gb" in _notes(at)[0]


# ---- Plan search -------------------------------------------------------------------------------


def test_plan_page_best_plan_and_pareto_match_the_api() -> None:
    at = _open("_plan.py")
    assert at.title[0].value == "Plan search"
    report = genmodel.plan(**PLAN, disaggregated=True).to_dict()
    shown = _metrics(at)
    assert shown["Plans evaluated"] == f"{report['evaluated']:,}"
    assert shown["Best plan's goodput"] == f"{report['best']['output_tokens_per_s_per_device']:,.1f}"
    pareto = _figure(at, "throughput vs interactivity")
    meets = _trace(pareto, "meets the SLOs")
    expected = [p["output_tokens_per_s_per_device"] for p in report["pareto"] if p["meets_slo"]]
    assert meets["y"] == pytest.approx(expected)
    goodput = _figure(at, "aggregated vs disaggregated")
    assert goodput["data"][0]["y"] == pytest.approx(
        [
            report["best"]["output_tokens_per_s_per_device"],
            report["disaggregated"]["output_tokens_per_s_per_device"],
        ]
    )

    at.number_input(key="plan.tpot_ms").set_value(25)
    at.checkbox(key="plan.disaggregated").uncheck()
    _rerun(at)
    changed = genmodel.plan(**{**PLAN, "tpot_slo_s": 25 * 1e-3}).to_dict()
    assert _metrics(at)["Meet the SLOs"] == f"{changed['meeting_slo']:,}"
    assert changed["meeting_slo"] != report["meeting_slo"]
    assert changed["best"] is not None
    assert _metrics(at)["Best plan's goodput"] == (
        f"{changed['best']['output_tokens_per_s_per_device']:,.1f}"
    )
    assert at.query_params["tpot_ms"] == "25" and at.query_params["disaggregated"] == "0"
    assert "aggregated vs disaggregated" in " ".join(_figures(at))  # the co-located bar alone


def test_plan_page_for_a_request_rate_shows_the_devices_needed() -> None:
    at = _open("_plan.py")
    assert "Devices needed" not in _metrics(at)  # a budget, not traffic, by default
    at.checkbox(key="plan.traffic").check()
    _rerun(at)
    assert at.number_input(key="plan.devices").label.startswith("Largest copy")
    at.number_input(key="plan.request_rate").set_value(30.0)
    _rerun(at)
    report = genmodel.plan(**PLAN, disaggregated=True, request_rate_per_s=30.0)
    d = report.to_dict()
    assert report.devices_needed is not None and report.instances is not None and report.best is not None
    shown = _metrics(at)
    assert shown["Devices needed"] == f"{report.devices_needed:,}"
    assert shown["Copies x devices per copy"] == f"{report.instances:,} x {report.best.plan.num_devices:,}"
    assert shown["Devices needed, disaggregated"] == f"{d['disaggregated']['devices']:,}"
    assert shown["Devices saved by disaggregating"] == f"{d['disaggregated']['devices_saved_vs_colocated']:,}"
    table = at.dataframe[0].value
    assert list(table["devices needed"]) == [report.devices_needed, d["disaggregated"]["devices"]]
    assert at.query_params["traffic"] == "1" and at.query_params["request_rate"] == "30"
    # more traffic needs more devices
    at.number_input(key="plan.request_rate").set_value(120.0)
    _rerun(at)
    more = genmodel.plan(**PLAN, disaggregated=True, request_rate_per_s=120.0)
    assert more.devices_needed is not None and more.devices_needed > report.devices_needed
    assert _metrics(at)["Devices needed"] == f"{more.devices_needed:,}"


def test_plan_page_reads_the_request_rate_from_the_url() -> None:
    at = _open("_plan.py", traffic="1", request_rate="50", disaggregated="0", devices="4")
    report = genmodel.plan(**{**PLAN, "devices": 4}, request_rate_per_s=50.0)
    assert report.devices_needed is not None
    shown = _metrics(at)
    assert shown["Devices needed"] == f"{report.devices_needed:,}"
    assert "Devices needed, disaggregated" not in shown
    # a rate that is not a valid value falls back to the default (20 requests/s)
    at = _open("_plan.py", traffic="1", request_rate="-3")
    assert at.toast and at.number_input(key="plan.request_rate").value == 20.0
    assert at.query_params["request_rate"] == "20"
    assert _metrics(at)["Devices needed"] == (
        f"{genmodel.plan(**PLAN, disaggregated=True, request_rate_per_s=20.0).devices_needed:,}"
    )
    # unticked, the rate leaves the URL and the page plans a budget again
    at.checkbox(key="plan.traffic").uncheck()
    _rerun(at)
    assert "request_rate" not in at.query_params and "Devices needed" not in _metrics(at)


def test_plan_page_objective_changes_the_best_plan() -> None:

    at = _open("_plan.py")
    assert tuple(at.selectbox(key="plan.objective").options) == genmodel.OBJECTIVES
    goodput = genmodel.plan(**PLAN, disaggregated=True).to_dict()["best"]
    assert _metrics(at)["Best plan's TPOT"] == format_seconds(goodput["tpot_s"])
    at.selectbox(key="plan.objective").set_value("latency")
    _rerun(at)
    latency = genmodel.plan(**PLAN, disaggregated=True, objective="latency").to_dict()
    best = latency["best"]
    assert latency["objective"] == "latency" and best["tpot_s"] < goodput["tpot_s"]
    shown = _metrics(at)
    assert shown["Best plan's TPOT"] == format_seconds(best["tpot_s"])
    assert shown["Best plan's goodput"] == (f"{best['output_tokens_per_s_per_device']:,.1f}")
    assert at.dataframe[0].value["TPOT"][0] == format_seconds(best["tpot_s"])
    assert any("by latency" in h.value for h in at.subheader)
    assert at.query_params["objective"] == "latency"


def test_plan_page_serving_selectors_follow_the_api() -> None:
    """The plan page offers the serving model and engine that genmodel.plan takes (none: a note
    says the search uses the closed form)."""
    at = _open("_plan.py")
    takes = inspect.signature(genmodel.plan).parameters
    radios = [r for r in at.radio if r.key == "plan.serving"]
    if "serving" not in takes:
        assert not radios and any("closed form" in c.value for c in at.sidebar.caption)
        return
    (radio,) = radios
    assert tuple(radio.options) == genmodel.SERVING_MODELS and radio.value == genmodel.SERVING_MODELS[0]
    radio.set_value("closed-form")
    _rerun(at)
    closed = genmodel.plan(**PLAN, disaggregated=True, serving="closed-form").to_dict()["best"]
    assert _metrics(at)["Best plan's TPOT"] == format_seconds(closed["tpot_s"])
    assert at.query_params["serving"] == "closed-form"
    assert not [s for s in at.selectbox if s.key == "plan.engine"]  # no engine for the closed form


# ---- Serving under load ------------------------------------------------------------------------


def _simulate(**changes: Any) -> genmodel.SimulationResult:
    args: dict[str, Any] = {**SERVING, **SERVING_LOAD, **changes}
    return genmodel.simulate(args.pop("model"), args.pop("hardware"), records=True, timeline=True, **args)


def _closed_form(**changes: Any) -> genmodel.Estimate:
    args: dict[str, Any] = {**SERVING, "concurrency": SERVING_LOAD["concurrency"], **changes}
    return genmodel.estimate(args.pop("model"), args.pop("hardware"), serving="closed-form", **args)


def _table(at: AppTest, column: str) -> Any:
    """The one table on the page with this column."""
    (frame,) = [d.value for d in at.dataframe if column in d.value.columns]
    return frame


def test_serving_page_shows_the_simulation_beside_the_closed_form() -> None:
    at = _open("_serving.py")
    assert at.title[0].value == "Serving under load"
    r, cf = _simulate(), _closed_form()
    assert r.records is not None and r.timeline is not None
    shown = _metrics(at)
    assert shown["Requests measured"] == f"{r.requests:,}"
    assert shown["Output tokens/s"] == f"{r.output_tokens_per_s:,.1f}"
    assert shown["Mean running batch"] == f"{r.mean_running_batch:,.1f}"
    assert shown["Preemptions"] == f"{r.preemptions:,}"
    assert shown["KV peak per device"] == format_bytes(r.kv_peak_bytes_per_device)
    percentiles = _table(at, "latency")
    assert list(percentiles["latency"]) == ["TTFT", "TPOT (per request)", "ITL (per token)", "end-to-end"]
    assert list(percentiles.iloc[0, 1:]) == [
        format_seconds(getattr(r.ttft_s, q)) for q in ("mean", "p50", "p90", "p99")
    ]
    assert percentiles["p99"][1] == format_seconds(r.tpot_s.p99)
    # the CDFs: one step per request, up to 1, with both serving models' means
    rows = [row for row in r.records.rows() if not row["warmup"]]
    ttft = _figure(at, "TTFT per request (CDF)")
    steps = _trace(ttft, "simulated requests")
    assert steps["x"] == pytest.approx(sorted(row["ttft_s"] for row in rows))
    assert steps["y"][-1] == 1 and steps["line"]["shape"] == "hv"
    assert _trace(ttft, "simulated mean")["x"] == pytest.approx([r.ttft_s.mean] * 2)
    assert _trace(ttft, "closed-form mean")["x"] == pytest.approx([cf.ttft_s] * 2)
    tpot = _figure(at, "TPOT per request (CDF)")
    assert _trace(tpot, "simulated requests")["x"] == pytest.approx(sorted(row["tpot_s"] for row in rows))
    assert _trace(tpot, "closed-form mean")["x"] == pytest.approx([cf.tpot_s] * 2)
    # the load and the KV cache over time are the simulation's timeline
    load = _figure(at, "Running batch and queue over time")
    assert _trace(load, "running batch")["y"] == r.timeline.running.tolist()
    assert _trace(load, "queue")["y"] == r.timeline.queued.tolist()
    assert _trace(load, "queue")["x"] == pytest.approx(r.timeline.t_s.tolist())
    kv = _figure(at, "KV cache in use over time")
    assert max(_trace(kv, "KV in use")["y"]) == pytest.approx(r.kv_peak_bytes_per_device)
    assert _trace(kv, "KV pool")["y"][0] == pytest.approx(r.kv_capacity_bytes_per_device)
    # the closed form beside it, with its difference
    versus = _table(at, "closed form vs simulated")
    row = versus[versus["figure"] == "mean TTFT"].iloc[0]
    assert row["simulated"] == format_seconds(r.ttft_s.mean)
    assert row["closed form"] == format_seconds(cf.ttft_s)
    assert row["closed form vs simulated"] == f"{(cf.ttft_s - r.ttft_s.mean) / r.ttft_s.mean:+.1%}"
    assert at.query_params["engine"] == "vllm" and at.query_params["concurrency"] == "64"


def test_serving_page_changes_engine_and_its_knobs() -> None:
    at = _open("_serving.py")
    vllm = _metrics(at)["Output tokens/s"]
    at.selectbox(key="serving.engine").set_value("sglang")
    _rerun(at)
    r = _simulate(engine="sglang")
    assert r.engine.name == "sglang" and any("sglang" in m.value for m in at.markdown)
    # the preset's values are named beside the knobs, in the sidebar
    preset = genmodel.engine_preset("sglang", genmodel.load_device("h100-sxm"))
    (note,) = [c.value for c in at.sidebar.caption if c.value.startswith("Preset")]
    assert f"{preset.max_batched_tokens:,} tokens per step" in note and "sglang" in note
    assert not [c for c in at.main.caption if c.value.startswith("Preset")]
    assert _metrics(at)["Output tokens/s"] == f"{r.output_tokens_per_s:,.1f}" != vllm
    assert at.query_params["engine"] == "sglang"
    # the knobs override the preset: a cap of 16 running sequences and reserved KV
    at.number_input(key="serving.max_num_seqs").set_value(16)
    at.selectbox(key="serving.admission").set_value("reserve")
    _rerun(at)
    capped = _simulate(engine="sglang", max_num_seqs=16, admission="reserve")
    assert capped.timeline is not None and capped.timeline.running.max() == 16
    assert max(_trace(_figure(at, "Running batch and queue"), "running batch")["y"]) == 16
    assert _metrics(at)["Mean running batch"] == f"{capped.mean_running_batch:,.1f}"
    assert _table(at, "latency")["mean"][0] == format_seconds(capped.ttft_s.mean)
    assert at.query_params["max_num_seqs"] == "16" and at.query_params["admission"] == "reserve"
    # 0 is the preset again
    at.number_input(key="serving.max_num_seqs").set_value(0)
    at.selectbox(key="serving.admission").set_value("preset")
    _rerun(at)
    assert _metrics(at)["Output tokens/s"] == f"{r.output_tokens_per_s:,.1f}"


def test_serving_page_poisson_arrivals_and_bad_input() -> None:
    at = _open("_serving.py", arrivals="Poisson arrivals", request_rate="4", requests="100", seed="7")
    r = _simulate(concurrency=None, requests_per_client=None, request_rate=4.0, requests=100, seed=7)
    shown = _metrics(at)
    assert shown["Requests measured"] == "100"
    assert shown["Requests/s"] == f"{r.request_rate_per_s:,.3g}"
    assert _trace(_figure(at, "TTFT per request (CDF)"), "simulated mean")["x"][0] == pytest.approx(
        r.ttft_s.mean
    )
    # no closed form for an open loop: a note, not an error, and no closed-form line
    assert any("closed-loop clients" in i.value for i in at.info)
    assert [t["name"] for t in _figure(at, "TTFT per request (CDF)")["data"]] == [
        "simulated requests",
        "simulated mean",
    ]
    # a plan that cannot run is one error box
    at.number_input(key="serving.tp").set_value(3)
    _rerun(at)
    assert len(at.error) == 1 and "tp=3" in at.error[0].value


def test_serving_page_exports_the_records_and_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.delta_generator import DeltaGenerator

    downloads: dict[str, Any] = {}
    original = DeltaGenerator.download_button

    def capture(self: DeltaGenerator, label: str, data: Any, *args: Any, **kwargs: Any) -> Any:
        downloads[kwargs["file_name"]] = data
        return original(self, label, data, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", capture)
    at = _open("_serving.py")
    assert {b.proto.label for b in at.get("download_button")} == {
        "Per-request records (CSV)",
        "Result (JSON)",
    }
    r, cf = _simulate(), _closed_form()
    assert r.records is not None
    records = list(csv.DictReader(io.StringIO(downloads["serving_records.csv"])))
    expected = r.records.rows()
    assert len(records) == len(expected) == SERVING_LOAD["concurrency"] * SERVING_LOAD["requests_per_client"]
    assert [float(row["ttft_s"]) for row in records] == pytest.approx([row["ttft_s"] for row in expected])
    assert [float(row["tpot_s"]) for row in records] == pytest.approx([row["tpot_s"] for row in expected])
    result = json.loads(downloads["serving_result.json"])
    simulated = result["simulated"]
    assert simulated["ttft_s"] == pytest.approx(r.ttft_s.to_dict())
    assert simulated["steps"] == r.steps and simulated["engine"]["name"] == "vllm"
    assert simulated["timeline"]["running"] == r.timeline.running.tolist()  # type: ignore[union-attr]
    assert result["closed_form"]["tpot_s"] == pytest.approx(cf.tpot_s)
    assert result["closed_form"]["serving"]["serving_model"] == "closed-form"


def test_serving_page_shows_the_simulations_notes() -> None:
    assert not _notes(_open("_serving.py"))
    at = _open("_serving.py", hardware="a100-sxm-80gb", weight_dtype="fp8")
    r = _simulate(hardware="a100-sxm-80gb", weight_dtype="fp8")
    assert r.notes and _notes(at) == [f"Note: {n}" for n in r.notes]
    assert "fp8 is not native on a100-sxm-80gb" in _notes(at)[0]


# ---- Compare platforms -------------------------------------------------------------------------


def _api_compare(hardware: list[str]) -> list[dict[str, Any]]:
    """What the compare page asks of the API for these platforms (its default inputs)."""
    return genmodel.compare(
        "llama-3.1-70b",
        hardware,
        devices=8,
        input_tokens=2000,
        output_tokens=500,
        ttft_slo_s=PLAN["ttft_slo_s"],
        tpot_slo_s=PLAN["tpot_slo_s"],
        weight_dtype=["fp8", "bf16"],
    )


def test_compare_page_shows_each_platforms_notes() -> None:
    at = _open("_compare.py", hardware="a100-sxm-80gb,h100-sxm")
    rows = _api_compare(["a100-sxm-80gb", "h100-sxm"])
    expected = [f"Note ({r['hardware']}): {n}" for r in rows for n in r.get("notes", [])]
    assert expected and _notes(at) == expected
    assert all(n.startswith("Note (a100-sxm-80gb): fp8 is not native") for n in _notes(at))


def test_compare_page_bars_are_the_api_rows() -> None:
    at = _open("_compare.py", hardware="h100-sxm,b200")
    assert at.title[0].value == "Compare platforms"
    rows = _api_compare(["h100-sxm", "b200"])
    fig = _figure(at, "the best plan on each platform")
    bars = {t["name"]: t for t in fig["data"]}
    goodput = bars["output tokens/s per device"]
    assert goodput["x"] == ["h100-sxm x8", "b200 x8"]
    assert goodput["y"] == pytest.approx([r["output_tokens_per_s_per_device"] for r in rows])
    cost = bars["USD per million output tokens"]
    assert cost["y"] == pytest.approx([r["usd_per_million_output_tokens"] for r in rows])
    energy = bars["joules per output token (at TDP)"]
    assert energy["y"] == pytest.approx([r["joules_per_output_token"] for r in rows])
    table = at.dataframe[0].value
    assert list(table["hardware"]) == ["h100-sxm", "b200"]

    at.multiselect(key="compare.hardware").select("mi300x")
    at.number_input(key="compare.devices").set_value(4)
    _rerun(at)
    fig = _figure(at, "the best plan on each platform")
    assert fig["data"][0]["x"] == ["h100-sxm x4", "b200 x4", "mi300x x4"]
    mi300x = genmodel.compare(
        "llama-3.1-70b",
        ["mi300x"],
        devices=4,
        input_tokens=2000,
        output_tokens=500,
        ttft_slo_s=PLAN["ttft_slo_s"],
        tpot_slo_s=PLAN["tpot_slo_s"],
        weight_dtype=["fp8", "bf16"],
    )[0]
    assert fig["data"][0]["y"][-1] == pytest.approx(mi300x["output_tokens_per_s_per_device"])
    assert at.query_params["hardware"] == "h100-sxm,b200,mi300x"


def test_compare_page_with_a_request_rate_shows_the_devices_needed() -> None:
    at = _open("_compare.py", hardware="h100-sxm,b200", traffic="1", request_rate="40")
    rows = genmodel.compare(
        "llama-3.1-70b",
        ["h100-sxm", "b200"],
        devices=8,
        input_tokens=2000,
        output_tokens=500,
        ttft_slo_s=PLAN["ttft_slo_s"],
        tpot_slo_s=PLAN["tpot_slo_s"],
        weight_dtype=["fp8", "bf16"],
        request_rate_per_s=40.0,
    )
    needed = [r["devices_needed"] for r in rows]
    assert all(isinstance(n, int) and n > 0 for n in needed)
    table = at.dataframe[0].value
    assert list(table["devices needed"]) == needed
    assert list(table["copies"]) == [r["instances"] for r in rows]
    bars = _figure(at, "Devices needed for 40 requests/s")
    assert bars["data"][0]["x"] == ["h100-sxm", "b200"] and bars["data"][0]["y"] == needed
    assert at.query_params["request_rate"] == "40"
    # without a rate: no devices-needed column or chart
    at.checkbox(key="compare.traffic").uncheck()
    _rerun(at)
    assert "devices needed" not in at.dataframe[0].value.columns
    assert not [t for t in _figures(at) if "Devices needed" in t]


# ---- Long context & memory tiers ---------------------------------------------------------------


def test_long_context_page_allows_a_context_beyond_the_models_maximum() -> None:
    # Llama 2 (4,096 tokens) at the page's 128K context was an error box that pointed to the CLI's
    # --allow-long-context, which the page did not offer
    refused = _open("_long_context.py", model="llama-2-7b")
    assert "maximum context" in refused.error[0].value and not refused.metric
    at = _open("_long_context.py", model="llama-2-7b", allow_long_context="1")
    assert not at.error
    expect = genmodel.memory_report(
        "llama-2-7b", "h100-sxm", batch="max", kv_offload=None, allow_long_context=True, **LONG_CONTEXT
    )
    assert next(m.value for m in at.metric if m.label == "Users that fit") == f"{expect['batch']:,}"


def test_long_context_page_users_and_tiers_match_memory_report() -> None:
    at = _open("_long_context.py")
    assert at.title[0].value == "Long context & memory tiers"

    def report(kv_dtype: str, offload: str | None) -> dict[str, Any]:
        return genmodel.memory_report(
            "llama-3.1-70b", "h100-sxm", batch="max", kv_dtype=kv_dtype, kv_offload=offload, **LONG_CONTEXT
        )

    hbm, cxl = report("bf16", None), report("bf16", "cxl-samsung-cmm-d-128gb:4")
    users = [m.value for m in at.metric if m.label == "Users that fit"]
    assert users == [f"{hbm['batch']:,}", f"{cxl['batch']:,}"]
    assert cxl["batch"] > hbm["batch"]
    curve = _figure(at, "Users that fit vs context")
    assert _trace(curve, "device memory only")["y"] == [c["max_concurrency"] for c in hbm["concurrency"]]
    spilled = _trace(curve, "+ cxl-samsung-cmm-d-128gb:4")
    assert spilled["y"] == [c["max_concurrency"] for c in cxl["concurrency"]]
    placement = _figure(at, "Where the bytes live")
    assert _trace(placement, "KV cache")["y"] == pytest.approx(
        [t["kv_cache_bytes_per_device"] for t in [*hbm["tiers"], *cxl["tiers"]]]
    )

    at.selectbox(key="long_context.kv_dtype").set_value("fp8")
    at.selectbox(key="long_context.kv_offload").set_value("host")
    _rerun(at)
    hbm8, host8 = report("fp8", None), report("fp8", "host")
    users = [m.value for m in at.metric if m.label == "Users that fit"]
    assert users == [f"{hbm8['batch']:,}", f"{host8['batch']:,}"]
    assert hbm8["batch"] > hbm["batch"]
    assert at.query_params["kv_offload"] == "host"


# ---- MoE & expert parallelism ------------------------------------------------------------------


def _ep_tpots(system: str, dtype: str, seqs: int) -> list[float | None]:
    out: list[float | None] = []
    for ep in MOE_EPS:
        try:
            est = genmodel.estimate(
                "deepseek-v3",
                system,
                tp=1,
                dp=ep,
                ep=ep,
                batch=seqs * ep,
                input_tokens=2000,
                output_tokens=64,
                weight_dtype=dtype,
                act_dtype=dtype,
                kv_dtype="bf16",
            )
        except genmodel.InfeasibleError:
            out.append(None)
        else:
            out.append(est.tpot_s)
    return out


def test_moe_page_tpot_and_comm_share_match_the_api() -> None:
    at = _open("_moe.py")
    assert at.title[0].value == "MoE & expert parallelism"
    tpot = _figure(at, "TPOT vs EP degree")
    for system, dtype in (("dgx-h100", "fp8"), ("cloudmatrix384", "int8")):
        expected = _ep_tpots(system, dtype, 128)
        trace = _trace(tpot, system)
        assert trace["x"] == [ep for ep, t in zip(MOE_EPS, expected, strict=True) if t is not None]
        assert trace["y"] == pytest.approx([t for t in expected if t is not None])
    # the share chart stacks the decode step's terms, normalised to 100 % by plotly
    shares = _figure(at, "communication share")
    assert shares["layout"]["barnorm"] == "percent"
    comm = [t for t in shares["data"] if t["name"] == "communication (exposed)"]
    assert len(comm) == 2 and all(y > 0 for t in comm for y in t["y"])
    # the table names why EP 8 cannot run on one H100 node
    table = at.dataframe[0].value
    assert table.loc[(table["system"] == "dgx-h100") & (table["EP"] == 8), "why not"].item()

    at.number_input(key="moe.seqs_per_device").set_value(32)
    at.multiselect(key="moe.systems").unselect("cloudmatrix384")
    _rerun(at)
    tpot = _figure(at, "TPOT vs EP degree")
    assert [t["name"] for t in tpot["data"]] == ["dgx-h100"]
    assert tpot["data"][0]["y"] == pytest.approx(
        [t for t in _ep_tpots("dgx-h100", "fp8", 32) if t is not None]
    )
    assert at.query_params["seqs_per_device"] == "32" and at.query_params["systems"] == "dgx-h100"


# ---- Validation --------------------------------------------------------------------------------


def test_validation_page_matches_validate() -> None:
    at = _open("_validation.py")
    assert at.title[0].value == "Validation"
    report = genmodel.validate()
    shown = _metrics(at)
    assert shown["MAPE (all cases)"] == f"{report.mape:.1f} %"
    assert shown["Cases predicted"] == f"{len(report.cases)}"
    scatter = _figure(at, "Predicted vs measured")
    points = [t for t in scatter["data"] if t["mode"] == "markers"]
    assert sum(len(t["x"]) for t in points) == len(report.cases)

    at.multiselect(key="validation.metric").set_value(["tpot_s"])
    _rerun(at)
    tpot_cases = [c for c in report.cases if c.metric == "tpot_s"]
    scatter = _figure(at, "Predicted vs measured")
    (points,) = [t for t in scatter["data"] if t["mode"] == "markers"]
    assert points["name"] == "tpot_s"
    assert points["x"] == pytest.approx([c.measured for c in tpot_cases])
    assert points["y"] == pytest.approx([c.predicted for c in tpot_cases])
    assert len(at.dataframe[0].value) == len(tpot_cases)
    assert at.query_params["metric"] == "tpot_s"


# ---- Calibrate -----------------------------------------------------------------------------------

# the page's default: the bundled static and serving rows of this device (five static rows, six
# held-out serving rows)
CALIBRATE_DEVICE = "jetson-agx-orin-64gb"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} %"


def _bundled_csv(device: str) -> bytes:
    """The bundled public cases of ``device`` as the bytes of a CSV in validate's columns."""
    rows = [r for r in genmodel.read_cases(genmodel.public_cases_path()) if r["hardware"] == device]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _check_calibration_shown(at: AppTest, fit: genmodel.Calibration) -> None:
    """The metrics, the chart, the parameter table and the YAML download are ``fit``'s."""
    shown = _metrics(at)
    assert shown["Rows fitted"] == f"{len(fit.cases)}"
    assert shown["Parameters fitted"] == f"{len(fit.fitted)}"
    assert shown["MAPE, base profile"] == _pct(fit.mape_before)
    assert shown["MAPE, fitted (in sample)"] == _pct(fit.mape_after)
    assert shown["MAPE, held out"] == _pct(fit.mape_held_out)
    (rms,) = [c.value for c in at.main.caption if c.value.startswith("RMS log error")]
    assert f"{fit.rms_log_before:.3f} base, {fit.rms_log_after:.3f} fitted" in rms
    outliers = [c.value for c in at.main.caption if c.value.startswith("Possible outliers")]
    assert outliers == (
        [f"Possible outliers (the fit off by more than e = 2.7x): {', '.join(fit.outliers)}"]
        if fit.outliers
        else []
    )
    scatter = _figure(at, "Predicted vs measured, before and after the fit")
    base, after = _trace(scatter, "base profile"), _trace(scatter, "fitted (in sample)")
    assert base["x"] == pytest.approx([c.measured for c in fit.cases])
    assert base["y"] == pytest.approx([c.before for c in fit.cases])
    assert after["y"] == pytest.approx([c.after for c in fit.cases])
    held = [c.held_out for c in fit.cases if c.held_out is not None]
    if held:
        assert _trace(scatter, "fitted without the case")["y"] == pytest.approx(held)
    else:  # not cross-validated: no such trace
        assert "fitted without the case" not in [t.get("name") for t in scatter["data"]]
    table = _table(at, "parameter")
    status = dict(zip(table["parameter"], table["status"], strict=True))
    assert {name for name, s in status.items() if s == "fitted"} == set(fit.fitted)
    assert status == {p.name: p.status for p in fit.parameters}
    assert any(fit.fitted[0] in m.value and "Pinned down" in m.value for m in at.markdown)
    (button,) = at.get("download_button")
    assert button.proto.label == f"Fitted profile {fit.profile.id} (YAML)"


def test_calibrate_page_fits_the_bundled_cases_of_a_device() -> None:
    at = _open("_calibrate.py")
    assert at.title[0].value == "Calibrate a profile"
    fit = genmodel.calibrate(genmodel.public_cases_path(), device=CALIBRATE_DEVICE)
    assert fit.fitted and fit.mape_held_out is not None  # the page has a fit to show
    _check_calibration_shown(at, fit)
    assert at.query_params["device"] == CALIBRATE_DEVICE and at.query_params["base"] == "auto"
    # another base profile, without the cross-validation, from the URL
    at = _open("_calibrate.py", device=CALIBRATE_DEVICE, base="default", cross_validate="0")
    fit = genmodel.calibrate(
        genmodel.public_cases_path(), device=CALIBRATE_DEVICE, base="default", cross_validate=False
    )
    _check_calibration_shown(at, fit)
    assert _metrics(at)["MAPE, held out"] == "-"
    # a device whose bundled rows are all of the mode left out (the Orin's are all static): one
    # error box, no traceback
    at = _open("_calibrate.py", device=CALIBRATE_DEVICE, base="default", cross_validate="0")
    at.multiselect(key="calibrate.mode").set_value(["concurrency"])
    _rerun(at)
    assert len(at.error) == 1 and f"device='{CALIBRATE_DEVICE}' has no rows" in at.error[0].value


def test_calibrate_page_fits_an_uploaded_csv_and_rejects_a_bad_one(tmp_path: Path) -> None:
    at = _open("_calibrate.py", source="upload a CSV")
    assert not at.get("plotly_chart") and at.info  # nothing to fit before a file comes
    data = _bundled_csv(CALIBRATE_DEVICE)
    at.file_uploader(key="calibrate.upload").set_value(("mine.csv", data, "text/csv"))
    _rerun(at)
    path = tmp_path / "mine.csv"
    path.write_bytes(data)
    _check_calibration_shown(at, genmodel.calibrate(path))
    # a file of two devices: a device selector, and the fit of the one chosen
    two = data + b"\n".join(_bundled_csv("h100-sxm").splitlines()[1:]) + b"\n"
    at.file_uploader(key="calibrate.upload").set_value(("two.csv", two, "text/csv"))
    _rerun(at)
    assert at.selectbox(key="calibrate.upload_device").options == [CALIBRATE_DEVICE, "h100-sxm"]
    assert _metrics(at)["Rows fitted"] == f"{len(genmodel.calibrate(path).cases)}"
    # bad files: one error box naming the file and what is wrong, never a traceback
    for content, expected in (
        (b"id,model\nA,llama-3.1-8b\n", "bad.csv: missing columns"),
        (b"\xff\xfe\x00garbage", "bad.csv: cannot be read as CSV"),
        (b"", "bad.csv: no cases"),
        (  # a field too many (it was read as measured='fast', every column after it shifted)
            data.replace(b",decode_tokens_per_s_per_device,", b",decode_tokens_per_s_per_device,fast,", 1),
            "fields where the header has",
        ),
    ):
        at.file_uploader(key="calibrate.upload").set_value(("bad.csv", content, "text/csv"))
        _rerun(at)
        assert len(at.error) == 1 and expected in at.error[0].value, (expected, [e.value for e in at.error])
        assert "genmodel-upload-" not in at.error[0].value  # the temporary folder is not named
