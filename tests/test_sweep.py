"""genmodel.sweep and `genmodel sweep`: the grid, its rows, the laws, error rows, files, Dask."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _cli import cli_bad, cli_ok, runner
from genmodel.cli._app import app
from hypothesis import given, settings
from hypothesis import strategies as st

import genmodel

SMALL: dict[str, Any] = {
    "models": ["llama-3.1-8b", "qwen2.5-7b"],
    "hardware": ["h100-sxm", "a100-sxm-80gb"],
    "input_tokens": [512],
    "output_tokens": [64, 256],
    "plans": [{"tp": 1}, {"tp": 2}],
    "batch": [1, 16],
    "scale": {"memory_bandwidth": [1.0, 2.0]},
}
SMALL_POINTS = 2 * 2 * 1 * 2 * 2 * 2 * 2


def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    return df.astype(object).where(df.notna(), None).to_dict(orient="records")  # type: ignore[return-value]


def test_grid_size_order_and_columns() -> None:
    df = genmodel.sweep(**SMALL)
    assert len(df) == SMALL_POINTS
    inputs = [
        "model",
        "hardware",
        "scale.flops",
        "scale.memory_bandwidth",
        "scale.memory_capacity",
        "scale.scale_up_bandwidth",
        "scale.scale_out_bandwidth",
        "tp",
        "pp",
        "ep",
        "dp",
        "cp",
        "batch",
        "input_tokens",
        "output_tokens",
        "error",
    ]
    assert list(df.columns[: len(inputs)]) == inputs
    for key in (
        "ttft_s",
        "tpot_s",
        "e2e_s",
        "output_tokens_per_s",
        "output_tokens_per_s_per_device",
        "batch_resolved",
        "memory.fits",
        "prefill.bound",
        "decode.bound",
        "joules_per_output_token",
        "usd_per_million_output_tokens",
    ):
        assert key in df.columns, key
    # models outermost, output tokens innermost; every combination exactly once
    assert list(df["model"][: SMALL_POINTS // 2]) == ["llama-3.1-8b"] * (SMALL_POINTS // 2)
    assert list(df["output_tokens"][:2]) == [64, 256]
    combos = df[["model", "hardware", "scale.memory_bandwidth", "tp", "batch", "output_tokens"]]
    assert not combos.duplicated().any()
    assert set(df["scale.flops"]) == {1.0}
    assert df["error"].isna().all()
    assert df["batch_resolved"].dtype == "int64"


def test_each_row_is_the_estimate_on_the_scaled_system() -> None:
    df = genmodel.sweep(**SMALL)
    for row in _rows(df)[::5]:
        system = genmodel.load_hardware(row["hardware"]).scaled(
            memory_bandwidth=row["scale.memory_bandwidth"]
        )
        est = genmodel.estimate(
            row["model"],
            system,
            tp=row["tp"],
            batch=row["batch"],
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
        )
        assert row["tpot_s"] == pytest.approx(est.tpot_s, rel=1e-12)
        assert row["ttft_s"] == pytest.approx(est.ttft_s, rel=1e-12)
        assert row["memory.fits"] is est.memory.fits
        assert row["decode.bound"] == est.decode.bound


@settings(max_examples=25)
@given(
    model=st.sampled_from(["llama-3.2-1b", "llama-3.1-8b", "qwen3-30b-a3b"]),
    hardware=st.sampled_from(["h100-sxm", "a100-sxm-80gb", "l40s"]),
    batch=st.integers(min_value=1, max_value=256),
    input_tokens=st.integers(min_value=1, max_value=8000),
    tp=st.sampled_from([1, 2, 4]),
)
def test_more_memory_bandwidth_never_slows_decode(
    model: str, hardware: str, batch: int, input_tokens: int, tp: int
) -> None:
    df = genmodel.sweep(
        models=[model],
        hardware=[hardware],
        input_tokens=[input_tokens],
        output_tokens=[32],
        plans=[{"tp": tp}],
        batch=[batch],
        scale={"memory_bandwidth": [1.0, 2.0]},
        estimate_options={"weight_dtype": "fp8" if hardware == "h100-sxm" else "bf16"},
    )
    base, fast = _rows(df)
    assert (base["error"] is None) == (fast["error"] is None)
    if base["error"] is not None:
        return
    assert fast["tpot_s"] <= base["tpot_s"] * (1 + 1e-12)
    assert fast["ttft_s"] <= base["ttft_s"] * (1 + 1e-12)
    if base["decode.bound"] == "memory":
        assert fast["tpot_s"] < base["tpot_s"]


def test_memory_bound_decode_gets_faster_and_more_flops_never_slows_prefill() -> None:
    df = genmodel.sweep(
        models=["llama-3.1-8b"],
        hardware=["h100-sxm"],
        input_tokens=[2000],
        output_tokens=[100],
        batch=[1],
        scale={"memory_bandwidth": [1.0, 2.0], "flops": [1.0, 2.0]},
    )
    rows = {(r["scale.flops"], r["scale.memory_bandwidth"]): r for r in _rows(df)}
    assert rows[1.0, 1.0]["decode.bound"] == "memory"  # batch-1 decode streams the weights
    assert rows[1.0, 2.0]["tpot_s"] < 0.8 * rows[1.0, 1.0]["tpot_s"]
    assert rows[1.0, 1.0]["prefill.bound"] == "compute"
    assert rows[2.0, 1.0]["ttft_s"] < rows[1.0, 1.0]["ttft_s"]
    for bw in (1.0, 2.0):
        assert rows[2.0, bw]["tpot_s"] <= rows[1.0, bw]["tpot_s"]


def test_infeasible_points_are_rows_with_their_error() -> None:
    df = genmodel.sweep(
        models=["llama-3.1-8b", "llama-3.1-70b"],
        hardware=["h100-sxm"],
        input_tokens=[1000],
        output_tokens=[100],
        plans=[{"tp": 1}, {"tp": 3}],
        batch=[1, "max"],
    )
    assert len(df) == 8
    rows = _rows(df)
    by_key = {(r["model"], r["tp"], r["batch"]): r for r in rows}
    assert "tp=3 must divide num_attention_heads=32" in by_key["llama-3.1-8b", 3, "1"]["error"]
    assert "more than the usable" in by_key["llama-3.1-70b", 1, "max"]["error"]
    ok = by_key["llama-3.1-8b", 1, "max"]
    assert ok["error"] is None and ok["batch_resolved"] > 1 and ok["memory.fits"] is True
    for r in rows:
        assert (r["error"] is None) == (r["tpot_s"] is not None)
    assert df["batch"].tolist() == ["1", "max"] * 4  # "max" among integers: one column type
    assert str(df["batch_resolved"].dtype) == "Int64"  # integers with gaps for the error rows
    assert str(df["memory.fits"].dtype) == "boolean"


def test_concurrency_points_are_rows() -> None:
    df = genmodel.sweep(
        models=["llama-3.1-8b"],
        hardware=["h100-sxm"],
        input_tokens=[1000],
        output_tokens=[100],
        concurrency=[1, 8],
    )
    assert list(df["concurrency"]) == [1, 8]
    assert "batch" not in df.columns
    for r in _rows(df):  # the serving model may not be built yet: then each row says so
        assert (r["error"] is None) == (r["tpot_s"] is not None)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"models": ["llama-9"]}, genmodel.UnknownEntryError, "model='llama-9'"),
        ({"hardware": ["h100-sxm", "h1000"]}, genmodel.UnknownEntryError, "h1000"),
        ({"scale": {"bandwidth": [2.0]}}, genmodel.SpecError, "'bandwidth' is not a scale factor"),
        ({"scale": {"flops": [1.0, 0.0]}}, genmodel.SpecError, "flops=0.0 must be > 0"),
        ({"scale": {"flops": [math.inf]}}, genmodel.SpecError, "finite"),
        ({"scale": {"flops": []}}, genmodel.SpecError, "at least one"),
        ({"plans": [{"tp": 2, "tq": 1}]}, genmodel.SpecError, "'tq' is not a degree"),
        ({"plans": [{"tp": 0}]}, genmodel.SpecError, "tp=0"),
        ({"batch": [1, "most"]}, genmodel.SpecError, "batch='most'"),
        ({"batch": [1], "concurrency": [4]}, genmodel.SpecError, "not both"),
        ({"input_tokens": [0]}, genmodel.SpecError, "input_tokens=0"),
        ({"output_tokens": []}, genmodel.SpecError, "at least one"),
        ({"models": "llama-3.1-8b"}, genmodel.SpecError, "not one string"),
        ({"estimate_options": {"weight_dtype": "fp7"}}, genmodel.SpecError, "fp7"),
        ({"estimate_options": {"tp": 2}}, genmodel.SpecError, "set by the grid"),
        ({"estimate_options": {"idael": True}}, genmodel.SpecError, r"idael=True .*; did you mean ideal\?"),
        ({"scheduler": "dask"}, genmodel.SpecError, "scheduler='dask'"),
        ({"scheduler": "in-process", "workers": 2}, genmodel.SpecError, "workers=2"),
        ({"scheduler": "tcp://127.0.0.1:1", "workers": 2}, genmodel.SpecError, "its own workers"),
        ({"workers": 0}, genmodel.SpecError, "workers=0"),
    ],
)
def test_bad_grids_fail_before_any_point_runs(
    change: dict[str, Any], error: type[Exception], match: str
) -> None:
    progress: list[tuple[int, int]] = []
    with pytest.raises(error, match=match):
        genmodel.sweep(**{**SMALL, **change}, on_progress=lambda done, total: progress.append((done, total)))
    assert progress == []


def test_progress_counts_every_point_once() -> None:
    progress: list[tuple[int, int]] = []
    genmodel.sweep(**SMALL, on_progress=lambda done, total: progress.append((done, total)))
    assert len(progress) > 1
    assert all(total == SMALL_POINTS for _, total in progress)
    done = [d for d, _ in progress]
    assert done == sorted(done) and done[-1] == SMALL_POINTS


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_files_round_trip(tmp_path: Path, suffix: str) -> None:
    df = genmodel.sweep(**{**SMALL, "plans": [{"tp": 1}, {"tp": 3}], "batch": [1, "max"]})
    path = genmodel.write_table(df, tmp_path / "out" / f"sweep{suffix}")
    assert path.exists() and [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
    back = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    assert list(back.columns) == list(df.columns)
    assert len(back) == len(df)
    pd.testing.assert_series_equal(back["tpot_s"], df["tpot_s"], check_dtype=False, rtol=1e-12)
    assert back["error"].isna().tolist() == df["error"].isna().tolist()
    assert back["error"].dropna().tolist() == df["error"].dropna().tolist()
    assert back["model"].tolist() == df["model"].tolist()
    if suffix == ".parquet":  # Parquet keeps the types
        pd.testing.assert_frame_equal(back, df, check_dtype=False)


def test_write_table_refuses_an_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(genmodel.SpecError, match=r"\.csv, \.parquet"):
        genmodel.write_table(pd.DataFrame({"a": [1]}), tmp_path / "sweep.xlsx")
    assert list(tmp_path.iterdir()) == []


TINY: dict[str, Any] = {**SMALL, "models": ["llama-3.2-1b"], "hardware": ["h100-sxm"]}


def test_a_local_dask_cluster_gives_the_in_process_rows() -> None:
    progress: list[tuple[int, int]] = []
    expected = genmodel.sweep(**TINY, scheduler="in-process")
    got = genmodel.sweep(
        **TINY, scheduler="local", workers=2, on_progress=lambda d, n: progress.append((d, n))
    )
    pd.testing.assert_frame_equal(got, expected)
    assert len(progress) > 1 and progress[-1] == (len(expected), len(expected))


def test_a_scheduler_address_is_used_through_the_same_client() -> None:
    from distributed import LocalCluster

    expected = genmodel.sweep(**TINY, scheduler="in-process")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        got = genmodel.sweep(**TINY, scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(got, expected)


def test_an_unreachable_scheduler_is_a_spec_error() -> None:
    import dask

    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(genmodel.SpecError, match="cannot connect"),
    ):
        genmodel.sweep(**TINY, scheduler="tcp://127.0.0.1:1")


# --- CLI -------------------------------------------------------------------------------------------

SWEEP = [
    "sweep",
    "--model",
    "llama-3.2-1b,llama-3.1-8b",
    "--hardware",
    "h100-sxm",
    "--hardware",
    "a100-sxm-80gb",
    "--tp",
    "1,3",
    "--batch",
    "1,max",
    "--input-tokens",
    "512",
    "--output-tokens",
    "64,128",
    "--scale",
    "memory-bandwidth=1,2",
]
SWEEP_POINTS = 2 * 2 * 2 * 2 * 2 * 2


def test_cli_csv_and_json_on_stdout_are_the_api_rows() -> None:
    rows = list(csv.DictReader(io.StringIO(cli_ok([*SWEEP, "--format", "csv"]))))
    assert len(rows) == SWEEP_POINTS
    assert {r["scale.memory_bandwidth"] for r in rows} == {"1.0", "2.0"}
    assert sum(bool(r["error"]) for r in rows) == SWEEP_POINTS // 2  # every tp=3 row
    records = json.loads(cli_ok([*SWEEP, "--format", "json"]))
    api = _rows(
        genmodel.sweep(
            models=["llama-3.2-1b", "llama-3.1-8b"],
            hardware=["h100-sxm", "a100-sxm-80gb"],
            plans=[{"tp": 1, "pp": 1, "ep": 1, "dp": 1}, {"tp": 3, "pp": 1, "ep": 1, "dp": 1}],
            batch=[1, "max"],
            input_tokens=[512],
            output_tokens=[64, 128],
            scale={"memory_bandwidth": [1, 2]},
        )
    )
    assert len(records) == SWEEP_POINTS
    for got, want in zip(records, api, strict=True):
        assert got["error"] == want["error"]
        if want["tpot_s"] is None:
            assert got["tpot_s"] is None
        else:
            assert got["tpot_s"] == pytest.approx(want["tpot_s"], rel=1e-12)


def test_cli_table_shows_rows_and_errors() -> None:
    text = cli_ok([*SWEEP, "--format", "table"], columns=250)
    assert "sweep: 64 points" in text
    assert "tp=3 must divide" in text
    assert "memory_bandwidth x" in text


def test_cli_writes_parquet_and_summarises_on_stderr(tmp_path: Path) -> None:
    out = tmp_path / "sweep.parquet"
    result = runner.invoke(app, [*SWEEP, "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith(f"sweep: {SWEEP_POINTS} points, {SWEEP_POINTS // 2} errors, ")
    assert str(out) in summary
    back = pd.read_parquet(out)
    assert len(back) == SWEEP_POINTS and back["error"].notna().sum() == SWEEP_POINTS // 2


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--model", "llama-9"], "llama-9"),
        (["--scale", "bandwidth=2"], "bandwidth"),
        (["--scale", "flops"], "NAME=v1,v2"),
        (["--scale", "flops=fast"], "must be numbers"),
        (["--tp", "1,two"], "tp='two'"),
        (["--batch", "1,most"], "batch='most'"),
        (["--concurrency", "4"], "not both"),
        (["--output", "sweep.xlsx"], "xlsx"),
        (["--output", "sweep.csv", "--format", "json"], "--format is for stdout"),
        (["--scheduler", "dask"], "scheduler='dask'"),
    ],
)
def test_cli_bad_input_is_one_red_line(args: list[str], match: str) -> None:
    assert match in cli_bad([*SWEEP, *args])


def test_cli_mirroring_keywords_give_the_old_spelling_s_rows() -> None:
    old = genmodel.sweep(**SMALL)
    new = genmodel.sweep(
        model=SMALL["models"],
        hardware=SMALL["hardware"],
        input_tokens=512,  # one value or a list, as the CLI's comma lists
        output_tokens=(64, 256),
        tp=range(1, 3),  # any collection
        batch=[1, 16],
        scale=SMALL["scale"],
    )
    pd.testing.assert_frame_equal(old, new)
    dtypes = genmodel.sweep(
        model="llama-3.1-8b", hardware="h100-sxm", input_tokens=512, output_tokens=64, weight_dtype="fp8"
    )
    assert list(dtypes["weight_dtype"]) == ["fp8"]


def test_model_and_hardware_may_come_first_as_in_estimate() -> None:
    # sweep("llama-3.1-8b", "h100-sxm", ...), as estimate, plan and simulate are called, was a
    # TypeError (0 positional arguments); hardware left out is named
    kw = {"input_tokens": 512, "output_tokens": 64, "batch": [1, 8]}
    by_position = genmodel.sweep("llama-3.1-8b", ["h100-sxm", "h200-sxm"], **kw)
    pd.testing.assert_frame_equal(
        by_position, genmodel.sweep(model="llama-3.1-8b", hardware=["h100-sxm", "h200-sxm"], **kw)
    )
    with pytest.raises(genmodel.SpecError, match=r"^hardware= must name at least one device"):
        genmodel.sweep("llama-3.1-8b", **kw)


def test_objects_are_grid_values_and_a_what_if_copy_gets_its_own_label() -> None:
    import dataclasses

    h100 = genmodel.load_device("h100-sxm")
    faster = dataclasses.replace(h100, memory_bandwidth_bytes_per_s=2 * h100.memory_bandwidth_bytes_per_s)
    model = genmodel.load_model("llama-3.1-8b")
    df = genmodel.sweep(
        model=model,
        hardware=["h100-sxm", faster, genmodel.load_system("dgx-h100")],
        input_tokens=1000,
        output_tokens=100,
        batch=8,
    )
    rows = _rows(df)
    assert [r["hardware"] for r in rows] == ["h100-sxm", "h100-sxm#2", "dgx-h100"]
    assert rows[0]["model"] == "llama-3.1-8b"
    for row, hw in zip(rows, ["h100-sxm", faster, "dgx-h100"], strict=True):
        est = genmodel.estimate(model, hw, batch=8, input_tokens=1000, output_tokens=100)
        assert row["tpot_s"] == pytest.approx(est.tpot_s, rel=1e-12)
    assert rows[1]["tpot_s"] < rows[0]["tpot_s"]  # the copy is really the faster device
    assert rows[2]["tpot_s"] == pytest.approx(rows[0]["tpot_s"], rel=1e-12)  # h100-sxm implies dgx-h100


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"model": ["llama-3.1-8b"]}, "not both"),
        ({"tp": [1, 2]}, "not both"),
        ({"models": None}, "at least one model"),
        ({"hardware": [3.5]}, "hardware=3.5 must be"),
        ({"models": [None]}, "model=None must be"),
    ],
)
def test_both_spellings_or_a_wrong_object_are_refused(change: dict[str, Any], match: str) -> None:
    with pytest.raises(genmodel.SpecError, match=match):
        genmodel.sweep(**{**SMALL, **change})


def test_an_empty_axis_is_named_as_the_keyword_was_given() -> None:
    with pytest.raises(genmodel.SpecError, match=r"^model=\[\] must list"):  # it said models=[]
        genmodel.sweep(model=[], hardware="h100-sxm", input_tokens=100, output_tokens=10)


def test_a_misspelt_keyword_is_named_with_the_closest() -> None:
    # it said "estimate_options: 'prefix_hit' is not an option of estimate" and listed 40 names
    kw = {"input_tokens": 100, "output_tokens": 10}
    with pytest.raises(
        genmodel.SpecError, match=r"^prefix_hit=0\.5 is not a keyword .*; did you mean prefix_hit_rate\?"
    ):
        genmodel.sweep("llama-3.1-8b", "h100-sxm", prefix_hit=0.5, **kw)
    with pytest.raises(genmodel.SpecError, match=r"^batch_size=4 .*; did you mean batch\?"):
        genmodel.sweep("llama-3.1-8b", "h100-sxm", batch_size=4, **kw)
