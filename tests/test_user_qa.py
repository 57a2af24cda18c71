"""What a new user meets on the CLI (qa5): a plan without latency targets says nothing about
SLOs it was not given; a bare device across nodes says what fabric it assumes (estimate, plan,
simulate, compare); dtypes in any case; a count that is no integer says so; help paragraphs wrap
at the terminal's width."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _cli import cli_bad, cli_ok

import genmodel

TOKENS = {"input_tokens": 100, "output_tokens": 10}

# a step budget (vLLM's 8,192 tokens) that keeps few 4,000-token prompts' requests decoding: the
# engine's cap on the running batch is far below what the memory holds
SHORT_OUTPUT = {
    "model": "llama-3.1-8b",
    "hardware": "h100-sxm",
    "devices": 2,
    "input_tokens": 4000,
    "output_tokens": 20,
    "serving": "closed-form",
}
PLAN_ARGS = [
    "plan",
    *(x for k, v in SHORT_OUTPUT.items() for x in (f"--{k.replace('_', '-')}", str(v))),
]


def test_a_plan_without_targets_leaves_batches_above_the_step_budget_off_its_frontier() -> None:
    d = genmodel.plan(**SHORT_OUTPUT).to_dict()
    assert d["above_step_budget"] > 0 and d["meeting_slo"] == d["feasible"] - d["above_step_budget"]
    # every point of the frontier is one the engine runs at (none is marked as missing a target
    # nobody gave)
    assert d["pareto"] and all(p["meets_slo"] for p in d["pareto"])


def test_the_plan_table_has_an_slo_column_only_with_targets() -> None:
    plain = cli_ok(PLAN_ARGS, columns=140)
    assert "SLO ┃" not in plain and "meet SLOs" not in plain
    assert "no latency targets given" in plain and "step budget keeps decoding" in plain
    targeted = cli_ok([*PLAN_ARGS, "--ttft-slo", "2s"], columns=140)
    assert "SLO ┃" in targeted and "meet SLOs" in targeted
    rows = json.loads(cli_ok([*PLAN_ARGS, "--format", "json"]))
    assert rows["pareto"] and all(p["meets_slo"] for p in rows["pareto"])


def test_a_bare_device_across_nodes_says_what_fabric_it_assumes() -> None:
    # no system file describes 64 H100 PCIe cards: nodes of its 8-card PCIe domain, joined by the
    # device file's scale-out link, as many as asked; the estimate says so
    kwargs = {"input_tokens": 1000, "output_tokens": 100, "tp": 8}
    many = genmodel.estimate("llama-3.1-70b", "h100-pcie", dp=8, **kwargs)
    (note,) = many.notes
    assert note.startswith("h100-pcie has no system in hardware_db: its 64 devices are taken as 8 nodes of 8")
    assert "25 GB/s per device, with no limit on their number" in note
    # within one node, or on a system file's fabric, nothing is assumed beyond the database
    assert genmodel.estimate("llama-3.1-70b", "h100-pcie", **kwargs).notes == ()
    assert genmodel.estimate("llama-3.1-70b", "h100-sxm", dp=8, **kwargs).notes == ()
    args = ["plan", "--model", "llama-3.1-70b", "--hardware", "h100-pcie", "--devices", "64"]
    shown = cli_ok(
        [*args, "--input-tokens", "1000", "--output-tokens", "100", "--serving", "closed-form"], columns=140
    )
    assert "h100-pcie has no system in hardware_db" in shown


_FABRIC = "h100-pcie has no system in hardware_db: its 16 devices are taken as 2 nodes of 8"
_SIM: dict[str, Any] = {"input_tokens": 500, "output_tokens": 20, "concurrency": 16, "requests_per_client": 3}


def _flags(kwargs: dict[str, Any]) -> list[str]:
    return [x for k, v in kwargs.items() for x in (f"--{k.replace('_', '-')}", str(v))]


def test_a_simulation_says_what_its_deployment_assumes_as_the_estimate_does() -> None:
    # 16 H100 PCIe cards span two nodes of no system file: the simulation's result, its JSON and
    # its table say what fabric it takes, word for word the estimate's note
    sim = genmodel.simulate("llama-3.1-8b", "h100-pcie", dp=16, **_SIM)
    est = genmodel.estimate("llama-3.1-8b", "h100-pcie", dp=16, input_tokens=500, output_tokens=20)
    assert sim.notes == est.notes and sim.notes[0].startswith(_FABRIC)
    assert sim.to_dict()["notes"] == list(est.notes)
    # a precision the device has no units for: the same note as the estimate's
    (note,) = genmodel.simulate("llama-3.1-8b", "a100-sxm-80gb", weight_dtype="fp8", **_SIM).notes
    assert note.startswith("fp8 is not native on a100-sxm-80gb")
    # within one node nothing is assumed: no notes, and no key
    assert "notes" not in genmodel.simulate("llama-3.1-8b", "h100-pcie", dp=8, **_SIM).to_dict()
    args = ["simulate", *_flags({"model": "llama-3.1-8b", "hardware": "h100-pcie", "dp": 16, **_SIM})]
    assert f"note: {_FABRIC}" in cli_ok(args, columns=400)
    assert json.loads(cli_ok([*args, "--format", "json"]))["notes"] == list(est.notes)


def test_a_disaggregated_simulation_notes_the_fabric_of_both_pools_together() -> None:
    # each pool fits one node, but the two do not, and the KV moves between them over the
    # scale-out link: one note for the 16 devices, none per pool
    pools = {"prefill_dp": 8, "decode_dp": 8, "disaggregated": True}
    (note,) = genmodel.simulate("llama-3.1-8b", "h100-pcie", **pools, **_SIM).notes
    assert note.startswith(_FABRIC)
    # a note both pools' checks give is said once, not per pool
    fp8 = genmodel.simulate("llama-3.1-8b", "a100-sxm-80gb", weight_dtype="fp8", **pools, **_SIM)
    once = genmodel.estimate("llama-3.1-8b", "a100-sxm-80gb", weight_dtype="fp8", **TOKENS)
    assert fp8.notes == once.notes and len(once.notes) == 1


def test_compare_says_what_each_platforms_best_plan_assumes() -> None:
    kw = {"devices": 16, "input_tokens": 500, "output_tokens": 20, "serving": "closed-form"}
    pcie, sxm = genmodel.compare("llama-3.1-8b", ["h100-pcie", "h100-sxm"], **kw)
    assert len(pcie["notes"]) == 1 and pcie["notes"][0].startswith(_FABRIC)
    assert "notes" not in sxm  # a system file's fabric: nothing assumed
    args = ["compare", *_flags({"model": "llama-3.1-8b", "hardware": "h100-pcie,h100-sxm", **kw})]
    assert f"note (h100-pcie): {_FABRIC}" in cli_ok(args, columns=400)


@pytest.mark.parametrize("command", ["estimate", "plan", "memory"])
def test_dtypes_are_taken_in_any_case_as_their_lower_case_ids(command: str) -> None:
    args = [command, "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--input-tokens", "100"]
    args += ["--output-tokens", "10", "--weight-dtype", "FP8", "--act-dtype", "Fp8", "--kv-dtype", "BF16"]
    args += ["--devices", "1", "--serving", "closed-form"] if command == "plan" else []
    d = json.loads(cli_ok([*args, "--format", "json"]))
    est = d["best"] if command == "plan" else d
    assert (est["weight_dtype"], est["kv_dtype"]) == ("fp8", "bf16")
    assert est.get("act_dtype", "fp8") == "fp8"  # (memory's JSON has no activation dtype)
    # a quantised format too; a name no case makes known is refused as written
    assert (
        genmodel.estimate("gpt-oss-20b", "h100-sxm", weight_dtype="MXFP4", **TOKENS).precision.weight_dtype
        == "mxfp4"
    )
    assert "weight_dtype='FX8' must be one of" in cli_bad([a if a != "FP8" else "FX8" for a in args])


def test_a_validation_csv_takes_dtypes_in_any_case(tmp_path: Path) -> None:
    lines = genmodel.public_cases_path().read_text(encoding="utf-8").splitlines()
    shouted = tmp_path / "cases.csv"
    rows = [lines[0], *(line.replace(",fp16,fp16,fp16,", ",FP16,Fp16,fp16,") for line in lines[1:4])]
    assert all(",FP16,Fp16,fp16," in r for r in rows[1:])
    shouted.write_text("\n".join(rows) + "\n", encoding="utf-8")
    plain = tmp_path / "plain.csv"
    plain.write_text("\n".join(lines[:4]) + "\n", encoding="utf-8")
    assert genmodel.validate(shouted).to_dict()["cases"] == genmodel.validate(plain).to_dict()["cases"]


@pytest.mark.parametrize("value", ["-5", "1.5", "many"])
def test_a_count_that_is_no_integer_is_refused_as_such(value: str) -> None:
    # '-5 must be a number' was what the user read: -5 is one
    args = ["estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--output-tokens", "5"]
    line = cli_bad([*args, "--input-tokens", value])
    assert f"input_tokens='{value}' must be an integer, between 1 and 10,000,000" in line


def test_help_paragraphs_wrap_at_the_terminal_not_at_the_source_lines() -> None:
    # typer keeps a docstring's line breaks: a paragraph wrapped at 100 columns in the source was
    # cut again at 80 ("... 'binding' names / what the / platform lacks")
    import typer.main
    from genmodel.cli._app import app

    def commands(c: Any, path: str = "") -> Iterator[tuple[str, Any]]:
        for name, sub in getattr(c, "commands", {}).items():
            yield from commands(sub, f"{path} {name}")
        if not hasattr(c, "commands"):
            yield path, c

    found = list(commands(typer.main.get_command(app)))
    assert len(found) >= 12
    for path, c in found:
        assert c.help, path
        for paragraph in c.help.split("\n\n"):
            assert "\n" not in paragraph, (path, paragraph[:80])
    text = cli_ok(["requirements", "--help"], columns=80)
    assert "'binding' names what the platform lacks" in " ".join(text.replace("│", " ").split())


def test_compare_budgets_that_do_not_match_the_platforms_say_what_to_give() -> None:
    args = ["compare", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "2,4"]
    line = cli_bad([*args, "--input-tokens", "10", "--output-tokens", "5"])
    assert "devices=[2, 4] has 2 entries for 1 hardware id (h100-sxm): give one budget for all" in line


@pytest.mark.parametrize(
    ("flags", "same_as"),
    [
        (["--engine", "SGLang"], ["--engine", "sglang"]),
        (
            ["--engine", "TRTLLM", "--serving", "Closed-Form"],
            ["--engine", "trtllm", "--serving", "closed-form"],
        ),
    ],
)
def test_choices_are_read_in_any_case(flags: list[str], same_as: list[str]) -> None:
    """--engine, --serving and --format ids, like dtypes, are read in any case."""
    args = ["estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--input-tokens", "100"]
    args += ["--output-tokens", "100", "--concurrency", "4"]
    upper = json.loads(cli_ok([*args, *flags, "--format", "JSON"]))
    lower = json.loads(cli_ok([*args, *same_as, "--format", "json"]))
    for out in (upper, lower):
        out.pop("elapsed_s", None)
    assert upper == lower
    default = json.loads(cli_ok([*args, "--format", "json"]))  # (vllm: the engine was read)
    assert upper["ttft_s"] != default["ttft_s"]


@pytest.mark.parametrize("command", ["estimate", "sweep"])
def test_batch_max_is_read_in_any_case(command: str) -> None:
    # the choices, dtypes and ids were read in any case, but --batch MAX was refused
    args = [command, "--model", "llama-3.2-1b", "--hardware", "h100-sxm", "--input-tokens", "100"]
    args += ["--output-tokens", "10", "--format", "json"]
    upper = json.loads(cli_ok([*args, "--batch", "MAX"]))
    lower = json.loads(cli_ok([*args, "--batch", "max"]))
    if command == "sweep":
        upper, lower = upper[0], lower[0]
    assert upper["batch"] == lower["batch"] and upper["tpot_s"] == lower["tpot_s"]
