"""The engine-wide profile parameters: the per-request overhead (``request_overhead_s``, profile
key ``request_overhead_us``), the time a request spends in the serving frontend, added once to TTFT
and e2e under load; and ``expert_memory_frac``, the routed experts' share of ``memory_frac``. Their
fits by tools/fit_profiles.py must find known values again in measurements made with them."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

import genmodel
from genmodel import Efficiency, SpecError
from genmodel._validate import _COLUMNS, _estimate_case
from genmodel.io import load_profile, profile_to_yaml
from genmodel.io._profiles import read_profile_file

ROOT = Path(__file__).resolve().parent.parent
_LOAD = {"input_tokens": 1000, "output_tokens": 100}


def _with(overhead_s: float) -> genmodel.Profile:
    return load_profile("default").with_values(
        {"request_overhead_s": overhead_s}, how="fitted", profile_id="o"
    )


def test_it_is_zero_by_default_and_refused_when_negative() -> None:
    assert Efficiency().request_overhead_s == 0.0
    assert load_profile("default").values["request_overhead_s"] == 0.0
    assert genmodel.load_device("h200-sxm").efficiency.request_overhead_s == 0.0
    with pytest.raises(SpecError, match="request_overhead_s"):
        Efficiency(request_overhead_s=-1e-3)


@pytest.mark.parametrize("serving", ["simulated", "closed-form"])
def test_a_single_request_gains_exactly_the_overhead_in_ttft_and_e2e(serving: str) -> None:
    kw = {"concurrency": 1, "serving": serving, "engine": "sglang", **_LOAD}
    bare = genmodel.estimate("llama-3.1-8b", "h200-sxm", profile=_with(0.0), **kw)
    more = genmodel.estimate("llama-3.1-8b", "h200-sxm", profile=_with(0.125), **kw)
    assert more.ttft_s - bare.ttft_s == pytest.approx(0.125, abs=1e-12)
    assert more.e2e_s - bare.e2e_s == pytest.approx(0.125, abs=1e-12)
    assert more.tpot_s == bare.tpot_s
    assert more.serving is not None and bare.serving is not None
    assert more.serving.request_overhead_s == 0.125 and bare.serving.request_overhead_s == 0.0
    assert more.serving.queue_wait_s == pytest.approx(bare.serving.queue_wait_s)


def test_the_simulation_adds_it_to_every_request_but_not_to_the_engine_time_split() -> None:
    kw = {"concurrency": 8, "engine": "vllm", "requests_per_client": 4, **_LOAD}
    bare = genmodel.simulate("llama-3.1-8b", "h200-sxm", profile=_with(0.0), **kw)
    more = genmodel.simulate("llama-3.1-8b", "h200-sxm", profile=_with(0.2), **kw)
    for q in ("mean", "p50", "p99"):
        assert getattr(more.ttft_s, q) - getattr(bare.ttft_s, q) == pytest.approx(0.2)
        assert getattr(more.e2e_s, q) - getattr(bare.e2e_s, q) == pytest.approx(0.2)
    assert more.queue_s == bare.queue_s and more.prefill_s == bare.prefill_s
    assert more.to_dict()["request_overhead_s"] == 0.2


def test_a_static_estimate_and_ideal_ignore_it() -> None:
    kw = {"batch": 1, **_LOAD}
    assert (
        genmodel.estimate("llama-3.1-8b", "h200-sxm", profile=_with(0.3), **kw).ttft_s
        == genmodel.estimate("llama-3.1-8b", "h200-sxm", profile=_with(0.0), **kw).ttft_s
    )
    ideal = genmodel.estimate(
        "llama-3.1-8b",
        "h200-sxm",
        concurrency=1,
        serving="closed-form",
        ideal=True,
        profile=_with(0.3),
        **_LOAD,
    )
    assert ideal.serving is not None and ideal.serving.request_overhead_s == 0.0


def test_a_profile_with_it_round_trips_in_microseconds(tmp_path: Path) -> None:
    profile = _with(0.0875)
    text = profile_to_yaml(profile)
    assert "request_overhead_us:" in text and "value: 87500" in text
    path = tmp_path / "o.yaml"
    path.write_text(text)
    back = read_profile_file(path)
    assert back == profile
    assert back.efficiency(Efficiency()).request_overhead_s == pytest.approx(0.0875)


# --- the fit of tools/fit_profiles.py ------------------------------------------------------------


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fit_profiles", ROOT / "tools" / "fit_profiles.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


_DENSE = [("llama-3.1-8b", 1, 1), ("llama-3.1-8b", 1, 16), ("llama-3.1-70b", 2, 4), ("llama-3.1-70b", 2, 32)]
_MOE = [("qwen3-30b-a3b", 1, 2), ("qwen3-30b-a3b", 1, 8), ("mixtral-8x7b", 2, 4), ("mixtral-8x7b", 2, 16)]


def _serving_rows(
    overhead_s: float,
    shapes: list[tuple[str, int, int]] = _DENSE,
    metric: str = "ttft_s",
    expert_memory_frac: float = 1.0,
) -> list[dict[str, str]]:
    """A metric under load of SGLang on an H200, made by the model itself with known values, under
    the harness whose cases the engine-wide fits take (fit_profiles.HARNESS)."""
    truth = _with(overhead_s).with_values({"expert_memory_frac": expert_memory_frac}, how="fitted")
    rows = []
    for i, (model, tp, clients) in enumerate(shapes):
        row = {
            "id": f"T{i:02d}",
            "category": "synthetic",
            "mode": "concurrency",
            "model": model,
            "hardware": "h200-sxm",
            "devices": str(tp),
            "tp": str(tp),
            "pp": "1",
            "ep": "1",
            "dp": "1",
            "batch": str(clients),
            "input_tokens": "2000",
            "output_tokens": "64",
            "weight_dtype": "bf16",
            "act_dtype": "bf16",
            "kv_dtype": "bf16",
            "metric": metric,
            "source_id": "synthetic",
            "engine": "sglang",
            "engine_config": "aiconfigurator",
        }
        est = _estimate_case(dict(row, measured="1"), "simulated", "sglang", None, profile=truth)
        rows.append({**row, "measured": repr(float(getattr(est, metric)))})
    return rows


def test_fit_constant_minimises_the_mape() -> None:
    tool = _tool()
    # gaps -0.05, 0.1, 0.5 with weights 1/m = 10, 5, 1: the first reaches half the weight (8),
    # and a negative overhead is clipped to the bound 0
    assert tool.fit_constant([0.1, 0.5, 0.15], [0.2, 1.0, 0.1], (0.0, 0.5)) == 0.0
    assert tool.fit_constant([0.1, 0.1, 0.1], [0.2, 0.2, 0.9], (0.0, 0.5)) == pytest.approx(0.1)
    assert tool.fit_constant([0.1], [9.0], (0.0, 0.5)) == 0.5  # clipped to the bound


def test_the_fit_tool_recovers_a_known_overhead_and_writes_it(tmp_path: Path) -> None:
    tool = _tool()
    rows = _serving_rows(0.137)
    fits = tool.fit_engines(rows, ["sglang"], {}, ["model"], parameters=["request_overhead_s"])
    assert len(fits) == 1
    fit = fits[0]
    assert fit.value == pytest.approx(0.137, abs=1e-9)
    assert all(h == pytest.approx(m, rel=1e-9) for h, m in zip(fit.held, fit.measured, strict=True))
    assert tool.engine_verdict(fit) == (True, "written")
    # end to end: the tool writes it into the device's profile with its cases and method
    path = tmp_path / "m.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*_COLUMNS, "source_id", "engine", "engine_config"])
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "profiles"
    out.mkdir()
    args = ["--cases", str(path), "--only", "h200-sglang", "--out", str(out), "--no-default"]
    assert tool.main(args) == 0
    written = read_profile_file(out / "h200-sglang.yaml")
    assert written.values["request_overhead_s"] == pytest.approx(0.137, rel=1e-3)
    assert written.applies_to("h200-sxm", "sglang", "aiconfigurator")
    assert not written.applies_to("h200-sxm", "sglang")  # fitted under that harness only
    text = (out / "h200-sglang.yaml").read_text()
    assert "T00" in text and "held out by model" in text


def test_the_fit_tool_refuses_an_overhead_the_cases_do_not_show() -> None:
    tool = _tool()
    fits = tool.fit_engines(_serving_rows(0.0), ["sglang"], {}, ["model"], parameters=["request_overhead_s"])
    ok, why = tool.engine_verdict(fits[0])
    assert not ok and "no change" in why


def test_expert_memory_frac_slows_only_the_routed_experts() -> None:
    kw = {"batch": 4, **_LOAD}
    slow = load_profile("default").with_values({"expert_memory_frac": 0.5}, how="fitted")
    dense = [genmodel.estimate("llama-3.1-8b", "h200-sxm", profile=p, **kw) for p in (slow, _with(0.0))]
    assert dense[0].tpot_s == dense[1].tpot_s and dense[0].ttft_s == dense[1].ttft_s
    moe = {"weight_dtype": "fp8", "act_dtype": "fp8", "kv_dtype": "fp8", **kw}
    base = genmodel.estimate("qwen3-30b-a3b", "h200-sxm", **moe)
    assert genmodel.estimate("qwen3-30b-a3b", "h200-sxm", profile=slow, **moe).tpot_s > 1.1 * base.tpot_s


def test_the_fit_tool_recovers_a_known_expert_memory_frac() -> None:
    tool = _tool()
    rows = _serving_rows(0.0, _MOE, "tpot_s", expert_memory_frac=0.6)
    fits = tool.fit_engines(rows, ["sglang"], {}, ["model"], parameters=["expert_memory_frac"])
    assert len(fits) == 1 and fits[0].parameter == "expert_memory_frac"
    assert fits[0].value == pytest.approx(0.6, abs=0.01)
    assert tool.engine_verdict(fits[0]) == (True, "written")
