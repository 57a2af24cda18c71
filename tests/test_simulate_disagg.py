"""The serving simulation's disaggregated pools and swap preemption: laws, physics, API, CLI, validate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _cli import cli_bad, cli_ok
from _simlaws import assert_every_request_counted, assert_littles_law, two_requests_each
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import genmodel
from genmodel._phases import kv_transfer_time
from genmodel._sizes import kv_bytes_per_sequence
from genmodel.io import load_hardware, load_model

_8B: dict[str, object] = {"model": "llama-3.1-8b", "hardware": "h100-sxm", "weight_dtype": "fp8"}
_POOLS: dict[str, object] = {"disaggregated": True, "prefill_workers": 2, "decode_workers": 2}


def _disagg(**kwargs: object) -> genmodel.SimulationResult:
    args: dict[str, object] = {
        **_8B,
        **_POOLS,
        "input_tokens": 1500,
        "output_tokens": 120,
        "warmup_requests": 0,
    }
    args.update(kwargs)
    return genmodel.simulate(**args)  # type: ignore[arg-type]


def _transfer_s(input_tokens: int, *, system: object = "h100-sxm", tp: int = 1) -> float:
    """The closed form's KV transfer of one prompt between a prefill and a decode instance of ``tp``."""
    model = load_model("llama-3.1-8b")
    hw = load_hardware(system) if isinstance(system, str) else system
    precision = genmodel.default_precision("fp8")
    return float(
        kv_transfer_time(
            model,
            hw,
            genmodel.Plan(tp=tp),
            precision,
            seqs_per_replica=1.0,
            input_tokens=input_tokens,  # type: ignore[arg-type]
        )
    )


# ---- the laws ----------------------------------------------------------------------------------


@pytest.mark.parametrize("first_token", ["decode", "prefill"])
def test_every_request_completes_and_every_token_is_counted(first_token: str) -> None:
    r = _disagg(
        concurrency=12,
        requests_per_client=5,
        input_spread=0.5,
        output_spread=0.5,
        records=True,
        seed=4,
        first_token=first_token,
    )
    rec = r.records
    assert rec is not None and r.requests == 60
    assert rec.prefill_end_s is not None and rec.kv_arrival_s is not None and rec.decode_replica is not None
    assert not np.isnan(rec.finish_s).any()
    assert r.generated_tokens == int(rec.output_tokens.sum())
    assert (rec.arrival_s <= rec.scheduled_s).all() and (rec.scheduled_s < rec.prefill_end_s).all()
    assert (rec.prefill_end_s < rec.kv_arrival_s).all() and (rec.first_token_s <= rec.finish_s).all()
    if first_token == "decode":  # the decode worker's first step emits it, after the transfer
        assert (rec.kv_arrival_s < rec.first_token_s).all()
    else:
        assert (rec.first_token_s == rec.prefill_end_s).all()
    assert sorted(set(rec.replica.tolist())) == [0, 1] and sorted(set(rec.decode_replica.tolist())) == [0, 1]
    row = rec.rows()[0]
    assert row["queue_s"] + row["prefill_s"] + row["kv_transfer_s"] == pytest.approx(
        rec.kv_arrival_s[0] - rec.arrival_s[0]
    )
    d = r.to_dict()
    assert d["first_token"] == first_token and d["routing"] == "least-loaded"
    for pool in ("prefill_pool", "decode_pool"):
        assert 0 < d[pool]["busy_frac"] <= 1 and d[pool]["workers"] == 2 and d[pool]["devices"] == 2
    assert r.output_tokens_per_s_per_device == pytest.approx(r.output_tokens_per_s / 4)


def test_littles_law_holds_on_the_records() -> None:
    n = 10
    r = _disagg(
        concurrency=n, requests_per_client=20, output_spread=0.5, input_spread=0.5, seed=2, records=True
    )
    assert_littles_law(r, n, 20)


def test_the_same_seed_gives_the_same_result() -> None:
    kwargs: dict[str, object] = {
        "request_rate": 20.0,
        "requests": 60,
        "input_spread": 0.4,
        "output_spread": 0.4,
    }
    a, b = _disagg(seed=7, **kwargs), _disagg(seed=7, **kwargs)
    c = _disagg(seed=8, **kwargs)
    for key in ("ttft_s", "tpot_s", "itl_s", "e2e_s"):
        assert getattr(a, key) == getattr(b, key)
    assert a.steps == b.steps and a.simulated_s == b.simulated_s
    assert a.ttft_s != c.ttft_s


_DEPLOYMENTS: list[tuple[str, str, dict[str, object]]] = [
    ("llama-3.2-1b", "h100-sxm", {}),
    ("llama-3.1-8b", "a100-sxm-80gb", {"prefill_tp": 2, "decode_tp": 1}),
    ("qwen3-30b-a3b", "h200-sxm", {"decode_ep": 2, "decode_dp": 2}),
]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    deployment=st.sampled_from(_DEPLOYMENTS),
    engine=st.sampled_from(genmodel.ENGINES),
    first_token=st.sampled_from(["decode", "prefill"]),
    routing=st.sampled_from(["least-loaded", "round-robin"]),
    clients=st.integers(1, 16),
    workers=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    cap=st.integers(1, 32),
    input_tokens=st.integers(2, 2500),
    output_tokens=st.integers(1, 40),
)
def test_laws_over_random_disaggregated_deployments(
    deployment: tuple[str, str, dict[str, object]],
    engine: str,
    first_token: str,
    routing: str,
    clients: int,
    workers: tuple[int, int],
    cap: int,
    input_tokens: int,
    output_tokens: int,
) -> None:
    plan = deployment[2]
    r = two_requests_each(
        deployment,
        clients,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        engine=engine,
        disaggregated=True,
        prefill_workers=workers[0],
        decode_workers=workers[1],
        decode_max_batch=cap,
        first_token=first_token,
        routing=routing,
    )
    assert_every_request_counted(r, clients)
    rec = r.records
    assert rec is not None and rec.prefill_end_s is not None
    assert (rec.scheduled_s < rec.prefill_end_s).all() and (rec.first_token_s <= rec.finish_s).all()
    d = r.to_dict()
    assert d["decode_pool"]["mean_running_batch"] <= workers[1] * plan.get("decode_dp", 1) * cap + 1e-9  # type: ignore[operator]
    for pool in ("prefill_pool", "decode_pool"):
        assert 0 <= d[pool]["busy_frac"] <= 1 + 1e-9
        assert d[pool]["kv_peak_bytes_per_device"] <= d[pool]["kv_capacity_bytes_per_device"]


# ---- the physics -------------------------------------------------------------------------------


def test_a_huge_prefill_pool_gives_the_prefill_alone_plus_the_transfer() -> None:
    n_in, clients = 2000, 8
    alone = genmodel.estimate(input_tokens=n_in, output_tokens=50, batch=1, **_8B)  # type: ignore[arg-type]
    kwargs: dict[str, object] = {
        "concurrency": clients,
        "requests_per_client": 3,
        "input_tokens": n_in,
        "output_tokens": 50,
        "prefill_workers": clients,
        "decode_workers": clients,
    }
    # the prefill worker's token: no queue, so TTFT is the prefill alone
    pre = _disagg(first_token="prefill", **kwargs)
    assert pre.queue_s == 0
    assert pre.ttft_s.mean == pytest.approx(alone.ttft_s, rel=1e-9)
    # the decode worker's token: the prefill, the transfer, and one decode step at the prompt's context
    dec = _disagg(first_token="decode", **kwargs)
    transfer = _transfer_s(n_in)
    assert dec.to_dict()["kv_transfer_s"]["mean"] == pytest.approx(transfer, rel=1e-9)
    assert alone.ttft_s + transfer < dec.ttft_s.mean <= alone.ttft_s + transfer + alone.tpot_s
    # an idle decode replica per request: its decode steps are the single-request ones
    assert dec.tpot_s.mean == pytest.approx(alone.tpot_s, rel=2e-2)


def test_fewer_prefill_workers_queue_the_prompts() -> None:
    few = _disagg(concurrency=32, requests_per_client=4, prefill_workers=1)
    many = _disagg(concurrency=32, requests_per_client=4, prefill_workers=4)
    assert few.ttft_s.mean > many.ttft_s.mean
    assert few.to_dict()["prefill_pool"]["busy_frac"] > many.to_dict()["prefill_pool"]["busy_frac"]


def test_a_reply_latency_is_in_a_lone_clients_ttft_and_cycle_as_aggregated() -> None:
    """The client's reply (Engine.reply_latency_s) is in each TTFT once and delays each next
    request by as much, so four requests of one client take three replies longer; the decode is
    untouched."""
    kw = {"concurrency": 1, "requests_per_client": 4, "warmup_requests": 0}
    zero, late = (_disagg(reply_latency_s=r, **kw) for r in (0.0, 0.01))
    assert late.ttft_s.mean - zero.ttft_s.mean == pytest.approx(0.01, rel=1e-6)
    assert late.simulated_s - zero.simulated_s == pytest.approx(0.03, rel=1e-6)
    assert late.tpot_s.mean == pytest.approx(zero.tpot_s.mean, rel=1e-12)


def test_the_transfer_is_kv_bytes_over_the_link_between_the_pools() -> None:
    model, precision = load_model("llama-3.1-8b"), genmodel.default_precision("fp8")
    system = load_hardware("h100-sxm")
    short, long = (
        _disagg(concurrency=2, requests_per_client=1, input_tokens=n).to_dict()["kv_transfer_s"]["mean"]
        for n in (1000, 4000)
    )
    tier = system.tier_for(2)
    bandwidth = tier.peer_bandwidth_bytes_per_s() * system.bus_frac(tier)
    extra_bytes = float(
        kv_bytes_per_sequence(model, precision, 4000, tp=1)
        - kv_bytes_per_sequence(model, precision, 1000, tp=1)
    )
    assert long - short == pytest.approx(extra_bytes / bandwidth, rel=1e-9)
    # half the link bandwidth, twice the bytes' time
    slow = system.scaled(scale_up_bandwidth=0.5)
    got = _disagg(hardware=slow, concurrency=2, requests_per_client=1, input_tokens=4000)
    latency = long - float(kv_bytes_per_sequence(model, precision, 4000, tp=1)) / bandwidth
    assert got.to_dict()["kv_transfer_s"]["mean"] - latency == pytest.approx(2 * (long - latency), rel=1e-9)


def test_pools_beyond_one_nvlink_domain_move_kv_over_the_scale_out_network() -> None:
    kwargs: dict[str, object] = {**_8B, "disaggregated": True, "concurrency": 2, "requests_per_client": 1}
    kwargs.update(input_tokens=4000, output_tokens=20)
    inside = genmodel.simulate(prefill_tp=4, decode_tp=4, **kwargs)  # type: ignore[arg-type]
    across = genmodel.simulate(prefill_tp=8, decode_tp=8, **kwargs)  # type: ignore[arg-type]
    t_in, t_across = (r.to_dict()["kv_transfer_s"]["mean"] for r in (inside, across))
    assert t_in == pytest.approx(_transfer_s(4000, tp=4), rel=1e-9)
    # half the bytes per device, but InfiniBand instead of NVLink
    assert t_across == pytest.approx(_transfer_s(4000, tp=8), rel=1e-9) and t_across > t_in


def test_moe_pools_step_their_attention_dp_ranks_in_lockstep() -> None:
    r = genmodel.simulate(
        "qwen3-30b-a3b",
        "h200-sxm",
        concurrency=8,
        requests_per_client=2,
        warmup_requests=0,
        input_tokens=800,
        output_tokens=40,
        disaggregated=True,
        prefill_ep=2,
        prefill_dp=2,
        decode_ep=2,
        decode_dp=2,
        decode_workers=2,
        records=True,
    )
    assert r.requests == 16 and r.records is not None and r.records.decode_replica is not None
    assert sorted(set(r.records.decode_replica.tolist())) == [0, 1, 2, 3]
    assert r.to_dict()["decode_pool"]["devices"] == 4


def test_round_robin_routing_cycles_through_the_replicas() -> None:
    r = _disagg(request_rate=5.0, requests=9, routing="round-robin", prefill_workers=3, records=True)
    assert r.records is not None and r.records.decode_replica is not None
    assert r.records.replica.tolist() == [i % 3 for i in range(9)]
    assert r.records.decode_replica.tolist() == [i % 2 for i in range(9)]


def test_one_output_token_ends_on_the_prefill_worker() -> None:
    r = _disagg(concurrency=3, output_tokens=1, first_token="prefill", records=True)
    assert r.records is not None and r.records.prefill_end_s is not None
    assert (r.records.finish_s == r.records.prefill_end_s).all()
    assert r.generated_tokens == r.requests and r.to_dict()["decode_pool"]["steps"] == 0


# ---- swap preemption ---------------------------------------------------------------------------

# Llama-3.1-8B in bf16 on a 24 GB RTX 4090 keeps ~40k tokens of KV: 48 clients of 2000 tokens
# overflow it as they decode
_SWAP: dict[str, object] = {
    "model": "llama-3.1-8b",
    "hardware": "rtx-4090",
    "input_tokens": 1000,
    "output_tokens": 1000,
    "concurrency": 48,
    "requests_per_client": 2,
}


def test_swap_costs_more_than_no_preemption_and_less_than_recompute() -> None:
    # Physics: recomputing a preempted sequence's c tokens costs about 2 x params x c FLOPs
    # (8B: ~140 us per token at 70 % of the 4090's 165 TFLOP/s); swapping them costs
    # 2 x c x KV bytes per token / link bandwidth (128 KiB / 25.6 GB/s of PCIe 4: ~10 us per token
    # both ways). Swap wins unless the link is below ~2 GB/s. No preemption at all (4x the memory)
    # is faster still: the preempted sequences neither wait nor copy.
    recompute = genmodel.simulate(preemption="recompute", **_SWAP)  # type: ignore[arg-type]
    swap = genmodel.simulate(preemption="swap", **_SWAP)  # type: ignore[arg-type]
    roomy = genmodel.simulate(**{**_SWAP, "hardware": load_hardware("rtx-4090").scaled(memory_capacity=4)})  # type: ignore[arg-type]
    assert recompute.preemptions > 0 and swap.preemptions > 0 and roomy.preemptions == 0
    assert swap.swap_s is not None and swap.swap_s > 0 and recompute.swap_s is None
    assert roomy.simulated_s < swap.simulated_s < recompute.simulated_s
    assert roomy.e2e_s.mean < swap.e2e_s.mean < recompute.e2e_s.mean
    assert swap.generated_tokens == recompute.generated_tokens == 96 * 1000
    assert "swap_s" in swap.to_dict() and "swap_s" not in recompute.to_dict()


def test_a_slower_swap_tier_costs_more_per_copy() -> None:
    fast = genmodel.simulate(preemption="swap", **_SWAP)  # type: ignore[arg-type]
    slow = genmodel.simulate(preemption="swap", swap_tier="nvme-gen5-ssd", **_SWAP)  # type: ignore[arg-type]
    assert fast.swap_s is not None and slow.swap_s is not None
    assert slow.swap_s / slow.preemptions > fast.swap_s / fast.preemptions


def test_swap_without_an_offload_tier_is_a_spec_error() -> None:
    with pytest.raises(genmodel.SpecError, match="preemption='swap' needs a KV offload tier"):
        genmodel.simulate(
            "llama-3.2-1b",
            "jetson-agx-orin-64gb",
            concurrency=2,
            input_tokens=100,
            output_tokens=10,
            preemption="swap",
        )


def test_swap_preemption_in_the_decode_pool() -> None:
    kwargs = {k: v for k, v in _SWAP.items() if k != "model"}
    r = genmodel.simulate("llama-3.1-8b", disaggregated=True, preemption="swap", **kwargs)  # type: ignore[arg-type]
    assert r.preemptions > 0 and r.swap_s is not None and r.swap_s > 0
    assert r.generated_tokens == 96 * 1000


# ---- arguments, CLI and validate ---------------------------------------------------------------


def test_bad_arguments_are_errors() -> None:
    base: dict[str, object] = {**_8B, "concurrency": 2, "input_tokens": 100, "output_tokens": 10}
    with pytest.raises(genmodel.SpecError, match="decode_tp=2: needs disaggregated=True"):
        genmodel.simulate(decode_tp=2, **base)  # type: ignore[arg-type]
    with pytest.raises(genmodel.SpecError, match="tp=2: with disaggregated=True the plan is per pool"):
        genmodel.simulate(disaggregated=True, tp=2, **base)  # type: ignore[arg-type]
    with pytest.raises(genmodel.SpecError, match="routing='nearest'"):
        genmodel.simulate(disaggregated=True, routing="nearest", **base)  # type: ignore[arg-type]
    with pytest.raises(genmodel.SpecError, match="devices=3 must equal the pools' devices"):
        genmodel.simulate(disaggregated=True, devices=3, **base)  # type: ignore[arg-type]
    with pytest.raises(genmodel.InfeasibleError, match="prefill pool: tp=3"):
        genmodel.simulate(disaggregated=True, prefill_tp=3, **base)  # type: ignore[arg-type]
    with pytest.raises(genmodel.SpecError, match="workers=0"):
        genmodel.simulate(disaggregated=True, decode_workers=0, **base)  # type: ignore[arg-type]


_CLI = ["simulate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--input-tokens", "500"]
_CLI += ["--output-tokens", "20", "--concurrency", "4"]


def test_cli_disaggregated(tmp_path: Path) -> None:
    flags = ["--disaggregated", "--prefill-workers", "2", "--decode-tp", "2", "--decode-max-batch", "8"]
    data = json.loads(cli_ok([*_CLI, *flags, "--format", "json"]))
    assert data["decode_pool"]["tp"] == 2 and data["decode_pool"]["max_batch"] == 8
    assert data["prefill_pool"]["workers"] == 2 and set(data["kv_transfer_s"]) == {
        "mean",
        "p50",
        "p90",
        "p99",
    }
    records = tmp_path / "records.csv"
    assert "decode pool" in cli_ok([*_CLI, *flags, "--records", str(records)], columns=120)
    assert "kv_transfer_s" in records.read_text().splitlines()[0]


def test_cli_bad_input_is_one_red_line() -> None:
    assert "needs disaggregated=True" in cli_bad([*_CLI, "--decode-tp", "2"])
    assert "per pool" in cli_bad([*_CLI, "--disaggregated", "--tp", "2"])
    assert "first_token='client'" in cli_bad([*_CLI, "--disaggregated", "--first-token", "client"])
    jetson = ["simulate", "--model", "llama-3.2-1b", "--hardware", "jetson-agx-orin-64gb"]
    jetson += ["--input-tokens", "100", "--output-tokens", "10", "--concurrency", "2"]
    assert "needs a KV offload tier" in cli_bad([*jetson, "--preemption", "swap"])


_HEADER = (
    "id,category,mode,model,hardware,devices,tp,pp,ep,dp,batch,input_tokens,output_tokens,"
    "weight_dtype,act_dtype,kv_dtype,metric,measured,engine,disaggregated,prefill_tp,prefill_workers,"
    "decode_tp,decode_workers,decode_max_batch\n"
)
_ROW = (
    "{id},serving,concurrency,llama-3.1-8b,h100-sxm,{devices},,,,,16,1500,100,fp8,fp8,fp8,"
    "{metric},{measured},vllm,{flag},1,2,{dtp},1,{cap}\n"
)


def _cases(tmp_path: Path, *rows: dict[str, object]) -> Path:
    path = tmp_path / "cases.csv"
    defaults = {"devices": 4, "flag": "true", "dtp": 2, "cap": 32, "measured": 0.1}
    path.write_text(_HEADER + "".join(_ROW.format(**{**defaults, **r}) for r in rows))
    return path


def test_validate_predicts_disaggregated_rows_with_the_simulation(tmp_path: Path) -> None:
    path = _cases(
        tmp_path,
        {"id": "d-ttft", "metric": "ttft_s"},
        {"id": "d-tpot", "metric": "tpot_s", "measured": 0.01},
        {"id": "d-pre", "metric": "prefill_tokens_per_s_per_device"},
    )
    report = genmodel.validate(path)
    sim = genmodel.simulate(
        "llama-3.1-8b",
        "h100-sxm",
        concurrency=16,
        input_tokens=1500,
        output_tokens=100,
        weight_dtype="fp8",
        act_dtype="fp8",
        kv_dtype="fp8",
        disaggregated=True,
        prefill_tp=1,
        prefill_workers=2,
        decode_tp=2,
        decode_workers=1,
        decode_max_batch=32,
    )
    got = {c.id: c for c in report.cases}
    assert got["d-ttft"].predicted == pytest.approx(sim.ttft_s.mean, rel=1e-12)
    assert got["d-tpot"].predicted == pytest.approx(sim.tpot_s.mean, rel=1e-12)
    assert got["d-ttft"].serving_model == "simulated" and got["d-ttft"].engine == "vllm"
    assert [s[0] for s in report.skipped] == ["d-pre"] and "not predicted" in report.skipped[0][1]
    closed = genmodel.validate(path, serving="closed-form")
    assert not closed.cases and "simulation only" in closed.skipped[0][1]
    slower = genmodel.validate(path, profile="h200-sglang")  # its 162 ms frontend time per request
    moved = {c.id: c.predicted for c in slower.cases}
    overhead = genmodel.io.load_profile("h200-sglang").values["request_overhead_s"]
    assert moved["d-ttft"] - got["d-ttft"].predicted == pytest.approx(overhead, rel=0.05)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"devices": 5}, "devices='5' must be both pools' devices"),
        ({"dtp": "x"}, "decode_tp='x' must be an integer"),
        ({"flag": "maybe"}, "disaggregated='maybe' must be true or false"),
        ({"flag": ""}, "prefill_tp='1' needs disaggregated=true"),
    ],
)
def test_validate_names_the_row_and_column_of_a_malformed_value(
    tmp_path: Path, row: dict[str, object], message: str
) -> None:
    path = _cases(tmp_path, {"id": "d1", "metric": "ttft_s", **row})
    with pytest.raises(genmodel.SpecError, match="line 2 \\(case d1\\): " + message.replace("(", "\\(")):
        genmodel.validate(path)
    assert message.split("=")[0] in cli_bad(["validate", str(path)])


def test_a_profile_applies_to_both_pools_as_to_an_aggregated_run() -> None:
    """A profile's per-request overhead and step figures reach a disaggregated simulation, as a
    named one (h200-sglang, the AIConfigurator harness's profile, no plain server's default)."""
    args: dict[str, object] = {
        "model": "llama-3.1-8b",
        "hardware": "h200-sxm",
        "weight_dtype": "fp8",
        "engine": "sglang",
        "concurrency": 4,
        "requests_per_client": 2,
    }
    own = _disagg(**args, profile="h200-sglang")
    plain = _disagg(**args, profile="default")
    assert _disagg(**args).ttft_s.mean == pytest.approx(plain.ttft_s.mean, rel=1e-9)  # no harness named
    overhead = (
        genmodel.io.load_profile("h200-sglang")
        .efficiency(load_hardware("h200-sxm").device.efficiency)
        .request_overhead_s
    )
    assert overhead > 0.05
    assert own.ttft_s.mean - plain.ttft_s.mean == pytest.approx(overhead, rel=0.05)
