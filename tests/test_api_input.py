"""The Python API refuses arguments of the wrong type with a SpecError naming the argument and the
value (as the CLI does bad input), never an AttributeError or TypeError from deep inside."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

import genmodel

SMALL = {"input_tokens": 100, "output_tokens": 10}


@pytest.mark.parametrize("model", [None, 123])
def test_a_model_that_is_no_id_or_spec_is_refused(model: Any) -> None:
    for call in (
        lambda: genmodel.estimate(model, "h100-sxm", **SMALL),
        lambda: genmodel.simulate(model, "h100-sxm", concurrency=1, **SMALL),
        lambda: genmodel.plan(model, "h100-sxm", devices=1, **SMALL),
        lambda: genmodel.requirements(model, "h100-sxm", ttft_slo_s=1.0, **SMALL),
    ):
        with pytest.raises(genmodel.SpecError, match=f"model={model!r}"):
            call()


@pytest.mark.parametrize("hardware", [None, 123])
def test_hardware_that_is_no_id_device_or_system_is_refused(hardware: Any) -> None:
    for call in (
        lambda: genmodel.estimate("llama-3.1-8b", hardware, **SMALL),
        lambda: genmodel.simulate("llama-3.1-8b", hardware, concurrency=1, **SMALL),
        lambda: genmodel.plan("llama-3.1-8b", hardware, devices=1, **SMALL),
        lambda: genmodel.requirements("llama-3.1-8b", hardware, ttft_slo_s=1.0, **SMALL),
    ):
        with pytest.raises(genmodel.SpecError, match=f"hardware={hardware!r}"):
            call()


@pytest.mark.parametrize(("name", "value"), [("comm_overlap_frac", "0.5"), ("acceptance_rate", True)])
def test_a_bounded_run_option_that_is_no_number_is_refused(name: str, value: Any) -> None:
    with pytest.raises(genmodel.SpecError, match=f"{name}={value!r} must be a number"):
        genmodel.estimate("llama-3.1-8b", "h100-sxm", **SMALL, **{name: value})
    # None stays 'unset' (the system's overlap)
    genmodel.estimate("llama-3.1-8b", "h100-sxm", **SMALL, comm_overlap_frac=None)


def test_a_risk_that_is_no_text_and_a_short_trace_row_are_refused() -> None:
    with pytest.raises(genmodel.SpecError, match=r"risk=0\.8 must be p50 to p95"):
        genmodel.plan("llama-3.1-8b", "h100-sxm", devices=1, risk=0.8, **SMALL)  # type: ignore[arg-type]
    with pytest.raises(genmodel.SpecError, match=r"trace row 2: \(1\.0, 5\) must be \(arrival_s"):
        genmodel.simulate("llama-3.1-8b", "h100-sxm", trace=((0.0, 5, 5), (1.0, 5)))  # type: ignore[arg-type]
    with pytest.raises(genmodel.SpecError, match="arrival_s=nan"):
        genmodel.simulate("llama-3.1-8b", "h100-sxm", trace=((math.nan, 5, 5),))


def test_compare_and_sweep_refuse_a_platform_or_model_given_twice() -> None:
    with pytest.raises(genmodel.SpecError, match=r"hardware='h100-sxm' is given twice with devices=1"):
        genmodel.compare("llama-3.1-8b", ["h100-sxm", "h100-sxm"], devices=1, **SMALL)
    with pytest.raises(genmodel.SpecError, match=r"hardware='H100-SXM' is given twice"):
        genmodel.compare("llama-3.1-8b", "h100-sxm,H100-SXM", devices=1, **SMALL)
    with pytest.raises(genmodel.SpecError, match=r"model='llama-3.1-8b' is given twice"):
        genmodel.sweep(model=["llama-3.1-8b", "llama-3.1-8b"], hardware="h100-sxm", **SMALL)
    h100 = genmodel.load_hardware("h100-sxm")
    with pytest.raises(genmodel.SpecError, match=r"hardware='dgx-h100' is given twice"):
        genmodel.sweep(model="llama-3.1-8b", hardware=[h100, h100], **SMALL)
    with pytest.raises(genmodel.SpecError, match=r"input_tokens=100 is given twice"):
        genmodel.sweep(model="llama-3.1-8b", hardware="h100-sxm", input_tokens=[100, 100], output_tokens=10)
    # a what-if copy that kept its id is another platform (labelled ID#2), not a repeat
    faster = h100.scaled(memory_bandwidth=2.0)
    rows = genmodel.sweep(model="llama-3.1-8b", hardware=[h100, faster], **SMALL)
    assert list(rows["hardware"]) == ["dgx-h100", "dgx-h100#2"]


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("profile", 123, "profile=123 must be a profile id or YAML file, or a Profile"),
        ("kv_offload", 1.0, "kv_offload=1.0 must be a memory tier id"),
        ("allow_long_context", "yes", "allow_long_context='yes' must be True or False"),
    ],
)
def test_a_run_option_of_the_wrong_type_is_refused_by_name(name: str, value: Any, said: str) -> None:
    # profile=123 was an AttributeError ('int' object has no attribute 'values')
    with pytest.raises(genmodel.SpecError, match=re.escape(said)):
        genmodel.estimate("llama-3.1-8b", "h100-sxm", **SMALL, **{name: value})


def test_a_profile_may_be_an_object_or_a_path() -> None:
    h100 = genmodel.load_profile("h100-vllm")
    path = Path(genmodel.__file__).resolve().parent.parent / "hardware_db" / "profiles" / "h100-vllm.yaml"
    by_path = genmodel.estimate("llama-3.1-8b", "h100-sxm", **SMALL, profile=path)
    assert by_path.tpot_s == genmodel.estimate("llama-3.1-8b", "h100-sxm", **SMALL, profile=h100).tpot_s


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"request_rate": True}, "request_rate=True must be a number > 0"),
        ({"request_rate": "5"}, "request_rate='5' must be a number > 0"),
        ({"request_rate": 2.0, "burstiness_cv": True}, "burstiness_cv=True must be a number > 0"),
        ({"concurrency": 2, "chunked_prefill": "yes"}, "chunked_prefill='yes' must be True or False"),
        ({"concurrency": 2, "prefix_caching": 1}, "prefix_caching=1 must be True or False"),
        ({"concurrency": 2, "step_overhead_s": True}, "step_overhead_s=True must be a number"),
    ],
)
def test_simulate_refuses_a_bool_as_a_number_and_text_as_a_bool(changes: dict[str, Any], said: str) -> None:
    # request_rate=True ran at 1 request/s; chunked_prefill='yes' was taken as true
    with pytest.raises(genmodel.SpecError, match=re.escape(said)):
        genmodel.simulate("llama-3.1-8b", "h100-sxm", requests=4, **SMALL, **changes)


def test_a_speculation_option_without_draft_tokens_is_refused() -> None:
    for given in ({"acceptance_rate": 0.5}, {"draft_tokens": 0, "draft_model": "llama-3.2-1b"}):
        name = next(k for k in given if k != "draft_tokens")
        with pytest.raises(genmodel.SpecError, match=f"{name}=.* needs draft_tokens of 1 or more"):
            genmodel.estimate("llama-3.1-8b", "h100-sxm", **SMALL, **given)
    genmodel.estimate("llama-3.1-8b", "h100-sxm", **SMALL, draft_tokens=0)  # off, said so: fine


def test_hardware_given_as_a_list_is_refused_as_such() -> None:
    # a list (a notebook user's ["h100-sxm"], as compare and sweep take) was a TypeError: unhashable
    for call in (
        lambda: genmodel.estimate("llama-3.1-8b", ["h100-sxm"], **SMALL),
        lambda: genmodel.simulate("llama-3.1-8b", ["h100-sxm"], concurrency=1, **SMALL),
        lambda: genmodel.memory_report("llama-3.1-8b", ["h100-sxm"], **SMALL),
    ):
        with pytest.raises(genmodel.SpecError, match=re.escape("hardware=['h100-sxm'] must be an id")):
            call()


def test_memory_report_takes_one_context_length_as_well_as_several() -> None:
    # contexts=8192 was a TypeError ('int' object is not iterable)
    one = genmodel.memory_report("llama-3.1-8b", "h100-sxm", contexts=8192, **SMALL)["concurrency"]
    assert one == genmodel.memory_report("llama-3.1-8b", "h100-sxm", contexts=[8192], **SMALL)["concurrency"]


def test_numpy_scalars_are_taken_as_the_numbers_they_hold() -> None:
    """A notebook loops over ``np.arange`` or a DataFrame's cells: NumPy integers and floats give
    the same answer, and JSON, as Python's (they were refused as 'must be an integer')."""
    import json

    import numpy as np

    from genmodel import report

    as_np = {"input_tokens": np.int64(100), "output_tokens": np.int32(10)}
    est = genmodel.estimate("llama-3.1-8b", "h100-sxm", tp=np.int64(2), batch=np.int64(4), **as_np)
    ref = genmodel.estimate("llama-3.1-8b", "h100-sxm", tp=2, batch=4, **SMALL)
    assert json.dumps(report.estimate_dict(est)) == json.dumps(report.estimate_dict(ref))
    sim = genmodel.simulate("llama-3.1-8b", "h100-sxm", concurrency=np.int64(2), seed=np.int64(1), **as_np)
    assert sim.ttft_s == genmodel.simulate("llama-3.1-8b", "h100-sxm", concurrency=2, seed=1, **SMALL).ttft_s
    rep = genmodel.plan("llama-3.1-8b", "h100-sxm", devices=np.int64(1), ttft_slo_s=np.float64(1.0), **as_np)
    assert rep.best is not None and rep.best.plan.tp == 1
    assert genmodel.estimate.__name__ == "estimate" and "Estimate" in (genmodel.estimate.__doc__ or "")


@pytest.mark.parametrize(
    ("keyword", "value"), [("tpot_slo_s", "20ms"), ("ttft_slo_s", -1.0), ("itl_max_slo_s", True)]
)
def test_plan_and_compare_refuse_a_target_that_is_no_positive_number_by_its_keyword(
    keyword: str, value: Any
) -> None:
    # tpot_slo_s="20ms" (the CLI's spelling) was a TypeError from inside the search; -1 was
    # reported as 'tpot_s=-1', a name the caller never wrote
    expect = f"{keyword}={value!r} must be a positive number of seconds"
    with pytest.raises(genmodel.SpecError, match=re.escape(expect)):
        genmodel.plan("llama-3.1-8b", "h100-sxm", devices=1, **SMALL, **{keyword: value})
    with pytest.raises(genmodel.SpecError, match=re.escape(expect)):
        genmodel.compare("llama-3.1-8b", ["h100-sxm"], devices=1, **SMALL, **{keyword: value})
