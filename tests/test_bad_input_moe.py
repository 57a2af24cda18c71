"""A new user's pass over the models and options added together (gpt-oss, Qwen3 dense, Kimi-K2, mxfp4,
--combine-overlap): bad input gives one red line and exit code 2, never a silent no-op or a traceback;
the help names mxfp4; CSV cells that hold lists parse back."""

from __future__ import annotations

import dataclasses

import pytest
from _cli import cli_bad, cli_ok

import genmodel
from genmodel import InfeasibleError, SpecError
from genmodel._enginepresets import engine_preset
from genmodel._servingmodel import engine_for
from genmodel.io import load_hardware

DENSE = ["--model", "qwen3-8b", "--hardware", "h100-sxm", "--input-tokens", "1000", "--output-tokens", "100"]
MOE_ONLY = [
    (["--combine-overlap", "shared"], "combine_overlap='shared' needs a mixture-of-experts model"),
    (["--combine-overlap", "down"], "combine_overlap='down' needs a mixture-of-experts model"),
    (["--redundant-experts", "2"], "redundant_experts=2 needs a mixture-of-experts model"),
    (["--expert-offload", "host"], "has no experts"),
]


@pytest.mark.parametrize(("extra", "said"), MOE_ONLY)
@pytest.mark.parametrize("command", ["estimate", "plan", "compare"])
def test_an_expert_option_with_a_dense_model_is_refused_not_ignored(
    command: str, extra: list[str], said: str
) -> None:
    budget = [] if command == "estimate" else ["--devices", "2"]
    assert said in cli_bad([command, *DENSE, *budget, *extra])


#: Qwen3-30B-A3B: routed experts only; DeepSeek-V3: a shared expert too
NO_SHARED = [
    "--model",
    "qwen3-30b-a3b",
    "--hardware",
    "h100-sxm",
    "--input-tokens",
    "1000",
    "--output-tokens",
    "100",
]


@pytest.mark.parametrize("command", ["estimate", "plan", "compare"])
def test_combine_overlap_beside_shared_experts_a_model_lacks_is_refused(command: str) -> None:
    budget = ["--tp", "2", "--ep", "2"] if command == "estimate" else ["--devices", "2"]
    line = cli_bad([command, *NO_SHARED, *budget, "--combine-overlap", "shared"])
    assert "combine_overlap='shared' needs shared experts; qwen3-30b-a3b has none" in line


@pytest.mark.parametrize("mode", ["shared", "down"])
def test_combine_overlap_without_expert_parallelism_is_refused(mode: str) -> None:
    # at ep=1 no combine all-to-all runs: the overlap had nothing to hide
    args = [
        "estimate",
        "--model",
        "deepseek-v3",
        "--hardware",
        "h200-sxm",
        "--tp",
        "8",
        "--weight-dtype",
        "fp8",
    ]
    line = cli_bad([*args, "--input-tokens", "1000", "--output-tokens", "100", "--combine-overlap", mode])
    assert f"combine_overlap='{mode}' needs expert parallelism (ep > 1): at ep=1" in line
    ep = genmodel.estimate(
        "deepseek-v3",
        "h200-sxm",
        tp=8,
        ep=8,
        weight_dtype="fp8",
        input_tokens=1000,
        output_tokens=100,
        combine_overlap=mode,
    )
    assert ep.decode.comm_hidden_s > 0


def test_plan_on_one_device_refuses_combine_overlap() -> None:
    # every layout of one device has ep=1; on two, the ep=2 layouts have a combine to hide
    args = ["plan", *NO_SHARED, "--combine-overlap", "down", "--serving", "closed-form"]
    assert "needs expert parallelism (ep > 1)" in cli_bad([*args, "--devices", "1"])
    assert (
        genmodel.plan(
            "qwen3-30b-a3b",
            "h100-sxm",
            devices=2,
            input_tokens=1000,
            output_tokens=100,
            combine_overlap="down",
            serving="closed-form",
        ).best
        is not None
    )


def test_the_api_refuses_combine_overlap_on_a_dense_model_and_keeps_it_on_a_moe_one() -> None:
    with pytest.raises(SpecError, match="qwen3-8b is dense"):
        genmodel.estimate("qwen3-8b", "h100-sxm", input_tokens=100, output_tokens=10, combine_overlap="down")
    # (at ep > 1: at ep=1 there is no combine to hide, refused below)
    est = genmodel.estimate(
        "gpt-oss-20b", "h100-sxm", tp=2, ep=2, input_tokens=100, output_tokens=10, combine_overlap="down"
    )
    assert est.decode.comm_hidden_s > 0


@pytest.mark.parametrize(
    "command", ["estimate", "memory", "plan", "compare", "simulate", "requirements", "sweep"]
)
def test_the_weight_dtype_help_names_mxfp4(command: str) -> None:
    text = " ".join(cli_ok([command, "--help"], columns=400).split())
    assert "--weight-dtype" in text and "mxfp4" in text


def test_a_list_in_a_csv_cell_is_json_a_reader_can_parse() -> None:
    import csv
    import io
    import json

    text = cli_ok(["hw", "list", "--format", "csv"])
    row = next(r for r in csv.DictReader(io.StringIO(text)) if r["id"] == "hls-gaudi3")
    cells = [v for v in row.values() if v.startswith("[")]
    assert cells, row
    for cell in cells:
        assert isinstance(json.loads(cell), list)


@pytest.mark.parametrize("hardware", ["gaudi3", "tpu-v6e", "mi300x"])
def test_tensorrt_llm_on_another_vendors_device_is_refused(hardware: str) -> None:
    args = ["simulate", "--model", "gpt-oss-20b", "--hardware", hardware, "--weight-dtype", "mxfp4"]
    args += ["--engine", "trtllm", "--concurrency", "4", "--input-tokens", "100", "--output-tokens", "10"]
    assert "runs on NVIDIA GPUs only" in cli_bad(args)


def test_the_vendors_an_engine_runs_on_are_its_presets_field_and_the_refusal_reads_it() -> None:
    nvidia, amd = (load_hardware(h).device for h in ("h100-sxm", "mi300x"))
    assert engine_preset("trtllm").vendors == ("NVIDIA",)
    assert engine_preset("vllm").vendors == engine_preset("sglang").vendors == ()
    amd_only = dataclasses.replace(engine_preset("vllm"), name="amd-only", vendors=("AMD",))
    assert engine_for(amd_only, amd) is amd_only
    with pytest.raises(
        InfeasibleError,
        match="engine='amd-only' runs on AMD GPUs only; h100-sxm is NVIDIA's: use vllm, sglang, trtllm",
    ):
        engine_for(amd_only, nvidia)
    anywhere = dataclasses.replace(engine_preset("trtllm"), vendors=())  # the field, not the name
    assert engine_for(anywhere, amd) is anywhere
    for bad in (["NVIDIA"], ("",), (1,)):
        with pytest.raises(SpecError, match="vendors="):
            dataclasses.replace(engine_preset("vllm"), vendors=bad)


def test_compare_names_the_platform_tensorrt_llm_cannot_run_on_and_answers_the_others() -> None:
    rows = genmodel.compare(
        "qwen3-8b", ["h100-sxm", "mi300x"], devices=1, input_tokens=200, output_tokens=20, engine="trtllm"
    )
    assert rows[0]["tp"] == 1 and not rows[0].get("error")
    assert "NVIDIA GPUs only" in rows[1]["error"]


def test_a_model_too_big_at_bf16_names_its_published_narrower_checkpoints() -> None:
    args = ["estimate", "--model", "gpt-oss-120b", "--hardware", "h100-sxm"]
    args += ["--input-tokens", "100", "--output-tokens", "10"]
    assert "(published checkpoints of gpt-oss-120b: mxfp4, fp4)" in cli_bad(args)
    # asked in its published precision already: nothing to point at
    assert "published" not in cli_bad(["estimate", *args[1:4], "l4", *args[5:], "--weight-dtype", "mxfp4"])
    assert "published" not in cli_bad(["estimate", "--model", "qwen3-32b", "--hardware", "l4", *args[5:]])
    # DeepSeek-V3 / R1: the official FP8 weights and NVIDIA's NVFP4 ones, widest first
    for model in ("deepseek-v3", "deepseek-r1"):
        text = cli_bad(["estimate", "--model", model, *args[3:]])
        assert "(published checkpoints of deepseek-v3: fp8, fp4)" in text


def test_the_sweep_summary_counts_one_point_and_one_error_in_the_singular() -> None:
    from _cli import runner
    from genmodel.cli._app import app

    args = ["sweep", "--model", "qwen3-8b", "--hardware", "h100-sxm", "--input-tokens", "100"]
    result = runner.invoke(app, [*args, "--output-tokens", "10", "--combine-overlap", "shared"])
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines()[-1].startswith("sweep: 1 point, 1 error, ")


def test_a_plan_with_no_layout_that_runs_says_of_what_in_words() -> None:
    args = ["plan", "--model", "gpt-oss-120b", "--hardware", "h100-sxm", "--devices", "1"]
    line = cli_bad([*args, "--input-tokens", "1000", "--output-tokens", "100"])
    assert "no layout of 1 device runs gpt-oss-120b (bf16 weights): 1 layout: memory: " in line


def test_a_table_shows_a_float_of_ten_thousand_or_more_in_plain_digits() -> None:
    from genmodel.cli._tables import cell

    assert cell(13125.0) == "13,125" and cell(989.4) == "989.4" and cell(3.35e12) == "3.35e+12"
    text = cli_ok(["hw", "show", "b300", "--format", "table"], columns=200)
    assert "13,125" in text and "1.312e+04" not in text
