"""genmodel._phases: prefill, decode and the static estimate; the issue's headline check and the laws
"more bandwidth or FLOP/s never makes anything slower" and "batch=max fits, one more replica-batch
does not"."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import assume, given, reject
from hypothesis import strategies as st

import genmodel
from genmodel import Plan, Precision, SpecError, memory_use, step_cost
from genmodel.report import estimate_dict

HEADLINE = {
    "tp": 2,
    "batch": "max",
    "input_tokens": 1000,
    "output_tokens": 1000,
    "weight_dtype": "fp8",
    "act_dtype": "fp8",
    "kv_dtype": "fp8",
}
TOP_KEYS = {
    "ttft_s",
    "tpot_s",
    "e2e_s",
    "batch",
    "output_tokens_per_s",
    "output_tokens_per_s_per_device",
    "prefill_tokens_per_s_per_device",
    "decode_tokens_per_s_per_device",
    "memory",
    "prefill",
    "decode",
}
MEMORY_KEYS = {
    "weights_bytes_per_device",
    "kv_cache_bytes_per_device",
    "activation_bytes_per_device",
    "total_bytes_per_device",
    "capacity_bytes_per_device",
    "fits",
}
PHASE_KEYS = {"time_s", "compute_s", "memory_s", "comm_s", "bound"}


def test_headline_llama70b_fp8_on_two_h100() -> None:
    est = genmodel.estimate("llama-3.1-70b", "h100-sxm", **HEADLINE)  # type: ignore[arg-type]
    d = estimate_dict(est)
    assert set(d) >= TOP_KEYS
    assert set(d["memory"]) >= MEMORY_KEYS
    for phase in ("prefill", "decode"):
        assert set(d[phase]) >= PHASE_KEYS
        assert d[phase]["bound"] in ("compute", "memory", "comm", "overhead")
    # 70.55e9 fp8 parameters split over 2 devices
    assert d["memory"]["weights_bytes_per_device"] == pytest.approx(70.55e9 / 2, rel=0.01)
    assert d["e2e_s"] == pytest.approx(d["ttft_s"] + 999 * d["tpot_s"])
    assert d["memory"]["fits"] is True
    assert isinstance(d["batch"], int)
    assert d["batch"] >= 1
    assert d["output_tokens_per_s"] == pytest.approx(d["batch"] * 1000 / d["e2e_s"])
    assert d["output_tokens_per_s_per_device"] == pytest.approx(d["output_tokens_per_s"] / 2)
    assert d["prefill_tokens_per_s_per_device"] == pytest.approx(d["batch"] * 1000 / d["ttft_s"] / 2)
    assert d["decode_tokens_per_s_per_device"] == pytest.approx(d["batch"] / d["tpot_s"] / 2)
    assert d["memory"]["total_bytes_per_device"] <= d["memory"]["capacity_bytes_per_device"]
    # one more sequence does not fit
    over = memory_use(
        genmodel.load_model("llama-3.1-70b"),
        genmodel.load_device("h100-sxm"),
        Plan(tp=2),
        est.precision,
        batch=d["batch"] + 1,
        input_tokens=1000,
        output_tokens=1000,
    )
    assert over.fits is False
    explicit = genmodel.estimate("llama-3.1-70b", "h100-sxm", **{**HEADLINE, "batch": d["batch"] + 1})  # type: ignore[arg-type]
    assert explicit.memory.fits is False


def test_phase_times_are_the_sum_of_their_parts() -> None:
    est = genmodel.estimate(
        "llama-3.1-8b", "a100-sxm-80gb", tp=2, batch=8, input_tokens=512, output_tokens=64
    )
    for phase in (est.prefill, est.decode):
        assert phase.time_s >= phase.comm_s + phase.overhead_s
        assert phase.time_s >= max(phase.compute_s, phase.memory_s)
        assert phase.time_s <= phase.compute_s + phase.memory_s + phase.comm_s + phase.overhead_s + 1e-15
        assert phase.comm_s > 0  # tp=2 all-reduces
    assert est.prefill.bound == "compute"
    assert est.decode.bound == "memory"
    assert est.ttft_s == pytest.approx(est.prefill.time_s)
    assert est.tpot_s == pytest.approx(est.decode.time_s)


def test_single_device_has_no_communication() -> None:
    est = genmodel.estimate("llama-3.1-8b", "h100-sxm", batch=4, input_tokens=100, output_tokens=10)
    assert est.prefill.comm_s == pytest.approx(0.0)
    assert est.decode.comm_s == pytest.approx(0.0)


def test_pipeline_parallel_adds_p2p_and_halves_weights() -> None:
    kw = {"batch": 8, "input_tokens": 256, "output_tokens": 32, "weight_dtype": "fp8"}
    one = genmodel.estimate("llama-3.1-70b", "h100-sxm", tp=2, **kw)  # type: ignore[arg-type]
    two = genmodel.estimate("llama-3.1-70b", "h100-sxm", tp=2, pp=2, **kw)  # type: ignore[arg-type]
    assert two.num_devices == 4
    assert two.memory.weights_bytes_per_device == pytest.approx(
        one.memory.weights_bytes_per_device / 2, rel=0.02
    )
    # without TP the only communication is the stage-to-stage send
    solo = genmodel.estimate("llama-3.1-8b", "h100-sxm", **kw)  # type: ignore[arg-type]
    piped = genmodel.estimate("llama-3.1-8b", "h100-sxm", pp=2, **kw)  # type: ignore[arg-type]
    assert solo.prefill.comm_s == pytest.approx(0.0)
    assert piped.prefill.comm_s > 0
    assert piped.decode.comm_s > 0


def test_energy_and_cost_follow_throughput() -> None:
    est = genmodel.estimate("llama-3.1-8b", "h100-sxm", batch=16, input_tokens=500, output_tokens=200)
    d = genmodel.load_device("h100-sxm")
    assert d.tdp_w is not None
    assert d.usd_per_hour is not None
    assert est.joules_per_output_token == pytest.approx(d.tdp_w / est.output_tokens_per_s)
    assert est.usd_per_million_output_tokens == pytest.approx(
        d.usd_per_hour / 3600 / est.output_tokens_per_s * 1e6
    )


def test_single_output_token_has_no_decode_time_in_e2e() -> None:
    est = genmodel.estimate("llama-3.1-8b", "h100-sxm", batch=1, input_tokens=100, output_tokens=1)
    assert est.e2e_s == pytest.approx(est.ttft_s)


def test_step_cost_rejects_unknown_phase() -> None:
    with pytest.raises(SpecError, match="phase='train'"):
        step_cost(
            genmodel.load_model("llama-3.1-8b"),
            genmodel.load_device("h100-sxm"),
            Plan(),
            Precision(),
            phase="train",
            num_seqs=1,
            new_tokens=1,
            past_tokens=0,
        )


# ---- laws (Hypothesis) ------------------------------------------------------------------------------

cases = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["llama-3.1-8b", "llama-2-7b", "llama-3.1-70b", "qwen3-30b-a3b"]),
        "hardware": st.sampled_from(["h100-sxm", "a100-sxm-80gb", "h200-sxm", "mi300x"]),
        "tp": st.sampled_from([1, 2, 4, 8]),
        "batch": st.integers(min_value=1, max_value=64),
        "input_tokens": st.integers(min_value=1, max_value=4096),
        "output_tokens": st.integers(min_value=1, max_value=1024),
        "weight_dtype": st.sampled_from(["fp8", "int4", "bf16"]),
    }
)


def _estimate(
    case: dict[str, object], device: genmodel.Device | None = None, **kw: object
) -> genmodel.Estimate | None:
    # the laws hold past a model's trained context too (its cost is modelled there, on request)
    args = {"allow_long_context": True, **case, **kw}
    hardware = device if device is not None else genmodel.load_device(str(args.pop("hardware")))
    args.pop("hardware", None)
    model = str(args.pop("model"))
    try:
        return genmodel.estimate(model, hardware, **args)  # type: ignore[arg-type]
    except genmodel.InfeasibleError:
        return None


def _scaled(d: genmodel.Device, what: str, factor: float) -> genmodel.Device:
    if what == "bandwidth":
        return dataclasses.replace(d, memory_bandwidth_bytes_per_s=d.memory_bandwidth_bytes_per_s * factor)
    if what == "flops":
        return dataclasses.replace(d, peak_flops_per_s={k: v * factor for k, v in d.peak_flops_per_s.items()})
    assert d.scale_up is not None
    up = dataclasses.replace(d.scale_up, bandwidth_bytes_per_s=d.scale_up.bandwidth_bytes_per_s * factor)
    return dataclasses.replace(d, scale_up=up)


@given(
    case=cases,
    what=st.sampled_from(["bandwidth", "flops", "link"]),
    factor=st.floats(min_value=1.0, max_value=16.0),
)
def test_more_bandwidth_or_flops_never_slows_anything(
    case: dict[str, object], what: str, factor: float
) -> None:
    base_device = genmodel.load_device(str(case["hardware"]))
    base = _estimate(case, base_device)
    assume(base is not None)
    assert base is not None
    fast = _estimate(case, _scaled(base_device, what, factor))
    assert fast is not None
    assert fast.ttft_s <= base.ttft_s * (1 + 1e-12)
    assert fast.tpot_s <= base.tpot_s * (1 + 1e-12)
    assert fast.e2e_s <= base.e2e_s * (1 + 1e-12)


@given(
    case=cases,
    dtype=st.sampled_from(["bf16", "fp8", "fp16", "int8"]),
    factor=st.floats(min_value=1.0, max_value=16.0),
)
def test_a_faster_unit_for_one_precision_never_slows_anything(
    case: dict[str, object], dtype: str, factor: float
) -> None:
    d = genmodel.load_device(str(case["hardware"]))
    assume(dtype in d.peak_flops_per_s)
    base = _estimate(case, d)
    assume(base is not None)
    assert base is not None
    peaks = dict(d.peak_flops_per_s)
    peaks[dtype] *= factor
    fast = _estimate(case, dataclasses.replace(d, peak_flops_per_s=peaks))
    assert fast is not None
    assert fast.ttft_s <= base.ttft_s * (1 + 1e-12)
    assert fast.tpot_s <= base.tpot_s * (1 + 1e-12)


@given(case=cases)
def test_ideal_is_never_slower_than_the_default(case: dict[str, object]) -> None:
    base = _estimate(case)
    assume(base is not None)
    assert base is not None
    ideal = _estimate(case, ideal=True)
    assert ideal is not None
    assert ideal.ttft_s <= base.ttft_s
    assert ideal.tpot_s <= base.tpot_s
    assert ideal.decode.overhead_s == pytest.approx(0.0)


@given(case=cases, extra=st.integers(min_value=1, max_value=8192))
def test_tpot_is_non_decreasing_in_input_tokens(case: dict[str, object], extra: int) -> None:
    base = _estimate(case)
    longer = _estimate(case, input_tokens=int(case["input_tokens"]) + extra)  # type: ignore[call-overload]
    assume(base is not None and longer is not None)
    assert base is not None
    assert longer is not None
    assert longer.tpot_s >= base.tpot_s * (1 - 1e-12)
    assert longer.ttft_s >= base.ttft_s * (1 - 1e-12)


@given(
    model=st.sampled_from(["llama-3.1-8b", "llama-2-7b", "llama-3.1-70b", "qwen3-32b"]),
    hardware=st.sampled_from(["h100-sxm", "a100-sxm-40gb", "l40s", "jetson-agx-orin-64gb"]),
    tp=st.sampled_from([1, 2, 4]),
    dp=st.sampled_from([1, 2, 3]),
    input_tokens=st.integers(min_value=1, max_value=16384),
    output_tokens=st.integers(min_value=1, max_value=4096),
    weight_dtype=st.sampled_from(["bf16", "fp8", "int4"]),
)
def test_batch_max_fits_and_one_more_per_replica_does_not(
    model: str, hardware: str, tp: int, dp: int, input_tokens: int, output_tokens: int, weight_dtype: str
) -> None:
    kw = {
        "tp": tp,
        "dp": dp,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "weight_dtype": weight_dtype,
        "allow_long_context": True,  # Llama 2 is trained to 4,096 tokens; memory is the law here
    }
    try:
        est = genmodel.estimate(model, hardware, batch="max", **kw)  # type: ignore[arg-type]
    except genmodel.InfeasibleError:
        reject()
    assert est.memory.fits
    assert est.batch % dp == 0
    over = memory_use(
        genmodel.load_model(model),
        genmodel.load_device(hardware),
        Plan(tp=tp, dp=dp),
        est.precision,
        batch=est.batch + dp,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )
    assert not over.fits


def test_the_stall_is_the_longest_chunk_not_a_short_remainder() -> None:
    # 5000 tokens in chunks of 2048: 2048 + 2048 + 904; the middle full chunk is the longest pass
    from genmodel._phases import prefill_pass
    from genmodel.io import load_hardware, load_model

    m, hw, p = (
        load_model("llama-3.1-70b"),
        load_hardware("h100-sxm"),
        genmodel.default_precision("fp8", None, None),
    )
    options = genmodel.RunOptions(prefill_chunk=2048)
    _, longest = prefill_pass(m, hw, Plan(tp=4), p, num_seqs=4.0, input_tokens=5000, options=options)
    pieces = [
        prefill_pass(m, hw, Plan(tp=4), p, num_seqs=1.0, input_tokens=end, options=options)[0].time_s
        for end in (2048, 4096, 5000)
    ]
    times = [pieces[0], pieces[1] - pieces[0], pieces[2] - pieces[1]]  # each chunk alone
    assert longest.time_s == pytest.approx(max(times), rel=1e-9)
    assert times[1] > times[2]  # the remainder is quicker despite its longer context


@pytest.mark.parametrize(
    ("model_id", "hardware", "plan", "options"),
    [
        ("llama-3.1-70b", "h100-sxm", Plan(tp=4, pp=2), genmodel.RunOptions()),
        ("qwen3-235b-a22b", "h200-sxm", Plan(tp=4, dp=2, ep=8), genmodel.RunOptions(overlap_microbatches=2)),
        (
            "deepseek-v3",
            "cloudmatrix384",
            Plan(tp=1, dp=32, ep=32),
            genmodel.RunOptions(overlap_microbatches=2),
        ),
    ],
)
def test_a_decode_step_over_a_batch_grid_is_each_scalar_step_to_the_last_bit(
    model_id: str, hardware: str, plan: Plan, options: genmodel.RunOptions
) -> None:
    # the plan search's candidates are the estimate's own figures: step_terms over an array of
    # batch sizes (the evaluator's stacked path) gives, element by element, the scalar step's times
    import numpy as np

    from genmodel._forwardpass import step_terms
    from genmodel.io import load_hardware, load_model

    m, hw, p = load_model(model_id), load_hardware(hardware), genmodel.default_precision("fp8", None, None)
    seqs = np.array([1.0, 2.0, 5.0, 64.0, 333.0])
    step = {"phase": "decode", "new_tokens": 1, "past_tokens": 2500.0, "options": options}
    grid = step_terms(m, hw, plan, p, num_seqs=seqs, **step)  # type: ignore[arg-type]
    for i, s in enumerate(seqs):
        scalar = step_terms(m, hw, plan, p, num_seqs=float(s), **step)  # type: ignore[arg-type]
        assert np.broadcast_to(grid.time_s, seqs.shape)[i] == scalar.time_s
        assert np.broadcast_to(grid.comm_hidden_s, seqs.shape)[i] == scalar.comm_hidden_s


def test_an_estimate_notes_a_precision_the_device_lacks() -> None:
    work = {"batch": 4, "input_tokens": 1000, "output_tokens": 100}
    emulated = genmodel.estimate("llama-3.1-8b", "a100-sxm-80gb", weight_dtype="fp8", **work)
    assert len(emulated.notes) == 1 and "fp8 is not native on a100-sxm-80gb" in emulated.notes[0]
    assert estimate_dict(emulated)["notes"] == list(emulated.notes)
    native = genmodel.estimate("llama-3.1-8b", "h100-sxm", weight_dtype="fp8", **work)
    assert native.notes == () and "notes" not in estimate_dict(native)  # the JSON keys unchanged
    serving = genmodel.estimate(
        "llama-3.1-8b",
        "a100-sxm-80gb",
        weight_dtype="fp8",
        concurrency=4,
        input_tokens=1000,
        output_tokens=100,
    )
    assert serving.notes == emulated.notes
    # both GEMMs and attention in fp8 on an A100: one note naming both
    both = genmodel.estimate("llama-3.1-8b", "a100-sxm-80gb", weight_dtype="fp8", kv_dtype="fp8", **work)
    assert len(both.notes) == 1 and "GEMMs and attention" in both.notes[0]


def test_a_context_beyond_the_maximum_needs_allow_long_context() -> None:
    work = {"batch": 1, "input_tokens": 16_000, "output_tokens": 100}
    with pytest.raises(SpecError, match="max_position_embeddings=4,096"):
        genmodel.estimate("llama-2-7b", "h100-sxm", **work)
    with pytest.raises(SpecError, match="max_position_embeddings=4,096"):
        genmodel.estimate("llama-2-7b", "h100-sxm", concurrency=2, input_tokens=16_000, output_tokens=100)
    est = genmodel.estimate("llama-2-7b", "h100-sxm", allow_long_context=True, **work)
    assert any("RoPE scaling" in n for n in est.notes)
    same = genmodel.estimate(
        "llama-2-7b", "h100-sxm", options=genmodel.RunOptions(allow_long_context=True), **work
    )
    assert same.tpot_s == est.tpot_s
    with pytest.raises(SpecError, match="max_position_embeddings"):  # the plan search checks it too
        genmodel.plan(
            "llama-2-7b", "h100-sxm", devices=1, input_tokens=16_000, output_tokens=100, tpot_slo_s=1.0
        )


def test_an_estimate_repr_is_a_few_readable_lines() -> None:
    est = genmodel.estimate(
        "llama-3.1-70b",
        "a100-sxm-80gb",
        tp=4,
        batch=16,
        input_tokens=1000,
        output_tokens=200,
        weight_dtype="fp8",
    )
    text = repr(est)
    lines = text.splitlines()
    assert 3 <= len(lines) <= 6 and len(text) < 800, text
    assert lines[0].startswith("Estimate(llama-3.1-70b on 4x a100-sxm-80gb (dgx-a100; tp=4), batch 16")
    assert f"TPOT {est.tpot_s * 1e3:.4g} ms" in text and "GB per device" in text
    assert "note: fp8 is not native" in text
    assert "PhaseCost(" not in text and "OpTime(" not in text  # the breakdown stays in the attributes
