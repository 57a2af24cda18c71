"""What a new user meets on the CLI (qa5): a plan without latency targets says nothing about
SLOs it was not given, ..."""

from __future__ import annotations

import json

from _cli import cli_ok

import genmodel

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

