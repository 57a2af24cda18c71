"""The public API calls of the pages, cached with ``st.cache_data`` on their (hashable) arguments.

Each function calls :mod:`genmodel` and returns plain data (the API's JSON forms, rows of the
API's fields, plotly figures from :mod:`genmodel.report`), so the cache can pickle it. Nothing here
computes a model quantity: the numbers are the API's.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

import genmodel
from genmodel.report import describe_device, describe_system, estimate_dict, roofline_figure, roofline_points

_PHASES = ("prefill", "decode")
#: The additive terms of a phase's critical path (they sum to its ``time_s``), as labelled here.
PHASE_TERMS = (
    "compute-bound operators",
    "memory-bound operators",
    "communication (exposed)",
    "offload transfers (exposed)",
    "fixed overhead",
)


def _terms(cost: genmodel.PhaseCost) -> dict[str, float]:
    """The PhaseCost fields behind each of :data:`PHASE_TERMS`."""
    values = (cost.compute_bound_s, cost.memory_bound_s, cost.comm_s, cost.offload_s, cost.overhead_s)
    return dict(zip(PHASE_TERMS, values, strict=True))


@st.cache_data(show_spinner=False, max_entries=512)
def what_if_system(hardware: str, scale: tuple[tuple[str, float], ...]) -> dict[str, Any]:
    """The figures of ``hardware``'s system with ``System.scaled`` factors applied."""
    system = genmodel.load_hardware(hardware).scaled(**dict(scale))
    return {"device": describe_device(system.device), "system": describe_system(system)}


@st.cache_data(show_spinner=False, max_entries=512)
def estimate_view(
    model: str,
    hardware: str,
    scale: tuple[tuple[str, float], ...],
    *,
    tp: int,
    pp: int,
    ep: int,
    dp: int,
    batch: int | str | None,
    concurrency: int | None,
    input_tokens: int,
    output_tokens: int,
    weight_dtype: str,
    act_dtype: str | None,
    kv_dtype: str | None,
    serving: str = genmodel.SERVING_MODELS[0],
    engine: str = genmodel.ENGINES[0],
) -> dict[str, Any]:
    """:func:`genmodel.estimate` on ``hardware`` scaled by ``scale`` (what-if figures); with
    ``concurrency``, by the ``serving`` model (``engine``'s scheduler when simulated).

    Returns the estimate's JSON form, each phase's critical-path terms, the per-operator rows
    and the roofline figure of each phase (against the same scaled device).
    """
    system = genmodel.load_hardware(hardware).scaled(**dict(scale))
    est = genmodel.estimate(
        model,
        system,
        tp=tp,
        pp=pp,
        ep=ep,
        dp=dp,
        batch=batch,
        concurrency=concurrency,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        weight_dtype=weight_dtype,
        act_dtype=act_dtype,
        kv_dtype=kv_dtype,
        serving=serving,
        engine=engine,
    )
    return {
        "estimate": estimate_dict(est),
        "terms": {p: _terms(getattr(est, p)) for p in _PHASES},
        "ops": {p: roofline_points(est, phase=p) for p in _PHASES},
        "roofline": {p: roofline_figure(est, system, phase=p) for p in _PHASES},
    }


@st.cache_data(show_spinner=False, max_entries=128)
def plan_view(
    model: str,
    hardware: str,
    *,
    devices: int,
    input_tokens: int,
    output_tokens: int,
    ttft_slo_s: float | None,
    tpot_slo_s: float | None,
    ttft_quantile: float | None,
    weight_dtypes: tuple[str, ...],
    disaggregated: bool,
    request_rate_per_s: float | None = None,
    objective: str = "goodput",
    serving_args: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    """:func:`genmodel.plan` as its JSON form (with ``request_rate_per_s``: the plan and the number
    of its copies that serve that traffic; ``devices`` is then the largest copy considered);
    ``serving_args``: the serving model and engine keywords plan takes (:func:`_ui.serving_inputs`)."""
    report = genmodel.plan(
        model,
        hardware,
        devices=devices,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        ttft_slo_s=ttft_slo_s,
        tpot_slo_s=tpot_slo_s,
        ttft_quantile=ttft_quantile,
        weight_dtype=list(weight_dtypes),
        disaggregated=disaggregated,
        request_rate_per_s=request_rate_per_s,
        objective=objective,
        **dict(serving_args),
    )
    return report.to_dict()


@st.cache_data(show_spinner=False, max_entries=128)
def compare_view(
    model: str,
    hardware: tuple[str, ...],
    *,
    devices: int,
    input_tokens: int,
    output_tokens: int,
    ttft_slo_s: float | None,
    tpot_slo_s: float | None,
    weight_dtypes: tuple[str, ...],
    request_rate_per_s: float | None = None,
    serving_args: tuple[tuple[str, str], ...] = (),
) -> list[dict[str, Any]]:
    """:func:`genmodel.compare`: the best plan of the workload on each hardware id (with
    ``request_rate_per_s``: each row also has ``instances`` and ``devices_needed``);
    ``serving_args`` as :func:`plan_view`'s."""
    return genmodel.compare(
        model,
        list(hardware),
        devices=devices,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        ttft_slo_s=ttft_slo_s,
        tpot_slo_s=tpot_slo_s,
        weight_dtype=list(weight_dtypes),
        request_rate_per_s=request_rate_per_s,
        **dict(serving_args),
    )


@st.cache_data(show_spinner=False, max_entries=128)
def memory_view(
    model: str,
    hardware: str,
    *,
    tp: int,
    input_tokens: int,
    output_tokens: int,
    weight_dtype: str,
    kv_dtype: str,
    kv_offload: str | None,
    sparse_attention_frac: float,
    contexts: tuple[int, ...],
    allow_long_context: bool = False,
) -> dict[str, Any]:
    """:func:`genmodel.memory_report`: bytes per tier at the largest batch, users per context."""
    return genmodel.memory_report(
        model,
        hardware,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        batch="max",
        contexts=contexts,
        tp=tp,
        weight_dtype=weight_dtype,
        kv_dtype=kv_dtype,
        kv_offload=kv_offload,
        sparse_attention_frac=sparse_attention_frac,
        allow_long_context=allow_long_context,
    )


@st.cache_data(show_spinner=False, max_entries=128)
def ep_view(
    model: str,
    system: str,
    *,
    weight_dtype: str,
    kv_dtype: str,
    ep_degrees: tuple[int, ...],
    seqs_per_device: int,
    input_tokens: int,
    output_tokens: int,
) -> list[dict[str, Any]]:
    """Decode of ``model`` on ``system`` per EP degree: attention data-parallel over the same
    devices as the experts (tp=1, dp=ep), ``seqs_per_device`` sequences on each device (as
    tools/ep_study.py). One row per degree: the estimate's decode figures, or the error."""
    rows: list[dict[str, Any]] = []
    for ep in ep_degrees:
        row: dict[str, Any] = {"system": system, "ep": ep, "devices": ep, "error": None}
        try:
            est = genmodel.estimate(
                model,
                system,
                tp=1,
                dp=ep,
                ep=ep,
                batch=seqs_per_device * ep,  # the whole deployment's sequences
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                weight_dtype=weight_dtype,
                act_dtype=weight_dtype,
                kv_dtype=kv_dtype,
            )
        except genmodel.GenModelError as exc:
            rows.append({**row, "error": str(exc)})
            continue
        d = estimate_dict(est)
        rows.append(
            {
                **row,
                "tpot_s": est.tpot_s,
                "decode_step_s": d["decode"]["time_s"],
                "comm_s": d["decode"]["comm_s"],
                "comm_hidden_s": d["decode"]["comm_hidden_s"],
                "dominant_collective": d["decode"]["dominant_collective"],
                "decode_tokens_per_s_per_device": est.decode_tokens_per_s_per_device,
                "fits": d["memory"]["fits"],
                **_terms(est.decode),
            }
        )
    return rows


@st.cache_data(show_spinner=False)
def validation_view() -> dict[str, Any]:
    """:func:`genmodel.validate` on the bundled public cases, as its JSON form."""
    return genmodel.validate().to_dict()


@st.cache_data(show_spinner=False, max_entries=64)
def engine_knobs(engine: str, hardware: str) -> dict[str, Any]:
    """The knobs of ``engine``'s preset on ``hardware``'s device (:func:`genmodel.engine_preset`)."""
    return genmodel.engine_preset(engine, genmodel.load_hardware(hardware).device).to_dict()


@st.cache_data(show_spinner=False, max_entries=64)
def serving_view(
    model: str,
    hardware: str,
    *,
    plan: tuple[tuple[str, int], ...],
    dtypes: tuple[str, str | None, str | None],
    input_tokens: int,
    output_tokens: int,
    concurrency: int | None,
    requests_per_client: int | None,
    request_rate: float | None,
    requests: int | None,
    engine: str,
    knobs: tuple[tuple[str, Any], ...],
    seed: int,
) -> dict[str, Any]:
    """:func:`genmodel.simulate` with its per-request records and timeline, and, for closed-loop
    clients, the closed form's estimate of the same load (``serving="closed-form"``).

    ``plan`` holds tp/ep/dp, ``dtypes`` the weight, activation and KV precisions, ``knobs`` the
    engine's overridden knobs (max_num_seqs, max_batched_tokens, admission). Returns ``result``
    (the simulation's JSON form with ``timeline``), ``records`` (one row per request) and
    ``closed_form`` (the estimate's JSON form), or ``closed_form_error`` (why there is none).
    """
    weight_dtype, act_dtype, kv_dtype = dtypes
    deployment: dict[str, Any] = {
        **dict(plan),
        "weight_dtype": weight_dtype,
        "act_dtype": act_dtype,
        "kv_dtype": kv_dtype,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
    }
    result = genmodel.simulate(
        model,
        hardware,
        concurrency=concurrency,
        requests_per_client=requests_per_client,
        request_rate=request_rate,
        requests=requests,
        engine=engine,
        seed=seed,
        records=True,
        timeline=True,
        **dict(knobs),
        **deployment,
    )
    assert result.records is not None
    view: dict[str, Any] = {
        "result": result.to_dict(),
        "records": result.records.rows(),
        "closed_form": None,
        "closed_form_error": None,
    }
    if concurrency is None:
        view["closed_form_error"] = "the closed form models N closed-loop clients, not a request rate"
        return view
    try:
        est = genmodel.estimate(model, hardware, concurrency=concurrency, serving="closed-form", **deployment)
    except genmodel.GenModelError as exc:
        view["closed_form_error"] = str(exc)
    else:
        view["closed_form"] = estimate_dict(est)
    return view


@st.cache_data(show_spinner=False)
def bundled_devices() -> list[str]:
    """The device ids of the bundled public cases."""
    rows = genmodel.read_cases(genmodel.public_cases_path())
    return sorted({genmodel.load_hardware(r["hardware"]).device.id for r in rows})


def _uploaded(data: bytes, name: str, use: Any) -> Any:
    """``use(path)`` on the uploaded CSV written to a private temporary folder under its own file
    name (the same reader as ``genmodel calibrate FILE``); an error names the file, not the folder."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="genmodel-upload-") as folder:
        path = Path(folder) / (Path(name).name or "upload.csv")
        path.write_bytes(data)
        try:
            return use(path)
        except genmodel.GenModelError as exc:
            text = str(exc)
            if folder in text:
                raise genmodel.SpecError(text.replace(f"{folder}/", "")) from None
            raise


@st.cache_data(show_spinner=False, max_entries=32)
def upload_devices(data: bytes, name: str) -> list[str]:
    """The hardware ids of the rows of an uploaded validation CSV, as written, in order of first use.

    Raises:
        genmodel.SpecError: not a CSV with the validation columns.
    """
    rows = _uploaded(data, name, genmodel.read_cases)
    return list(dict.fromkeys(r["hardware"] for r in rows))


@st.cache_data(show_spinner=False, max_entries=32)
def calibrate_view(
    upload: tuple[bytes, str] | None,
    *,
    device: str | None,
    base: str | None,
    modes: tuple[str, ...] = (),
    cross_validate: bool = True,
) -> dict[str, Any]:
    """:func:`genmodel.calibrate` as ``genmodel calibrate`` runs it: on an uploaded CSV (its bytes
    and file name) or, with ``upload=None``, on the bundled public cases, the rows of ``device``;
    ``modes`` (bundled cases only) keeps the rows of these modes (static, concurrency).
    Returns the calibration's JSON form and ``yaml``, the fitted profile as a YAML file.
    """

    def fit(cases: Any) -> genmodel.Calibration:
        return genmodel.calibrate(cases, device=device, base=base, cross_validate=cross_validate)

    if upload is not None:
        result = _uploaded(upload[0], upload[1], fit)
    else:
        rows = genmodel.read_cases(genmodel.public_cases_path())
        result = fit([r for r in rows if r["mode"] in modes])
    return {**result.to_dict(), "yaml": genmodel.profile_to_yaml(result.profile)}
