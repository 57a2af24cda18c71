"""Expert parallelism and attention-DP: EP dispatch bytes, the MoE layout (expert slots, load
imbalance), "sharded FLOPs sum to unsharded" over TP x CP and EP x DP x TP plans, and the EP
collectives an estimate reports."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import genmodel
from genmodel import MoeLayout, Plan, Precision, SpecError, ep_dispatch_bytes, forward_ops
from genmodel.report import estimate_dict

BF16 = Precision()
FP8 = Precision(weight_dtype="fp8", act_dtype="fp8", kv_dtype="bf16")

# ---- EP dispatch bytes ----------------------------------------------------------------------------

HIDDEN = 7168
ELEMENT = 1.0  # fp8 dispatch
TOKENS = 96.0  # tokens one device dispatches


@pytest.mark.parametrize(
    ("tp", "dp", "ep", "top_k", "domain"),
    [
        (1, 8, 8, 8, None),
        (1, 16, 16, 8, 8),
        (2, 8, 8, 8, 8),
        (4, 8, 16, 2, 8),
        (1, 32, 32, 4, 16),
        (8, 4, 4, 1, 8),
        (1, 160, 160, 8, 384),
        (2, 6, 4, 8, 8),  # 12 devices: not a whole number of domains
    ],
)
@pytest.mark.parametrize("dedup", [False, True])
def test_dispatch_conserves_the_routed_copies(
    tp: int, dp: int, ep: int, top_k: int, domain: int | None, dedup: bool
) -> None:
    layout = MoeLayout(ep=ep, dp=dp, tp=tp)
    n = tp * dp
    send, out = ep_dispatch_bytes(
        TOKENS, HIDDEN, ELEMENT, top_k=top_k, layout=layout, domain_devices=domain, dedup_domains=dedup
    )
    # every token goes to its top-k experts, each split over moe_tp devices; 1/n of those copies
    # land on the sending device itself
    copies = TOKENS * top_k * layout.moe_tp
    sent = send / (HIDDEN * ELEMENT)
    kept = copies / n
    assert n * (sent + kept) == pytest.approx(n * TOKENS * top_k * layout.moe_tp, rel=1e-12)
    assert 0 <= out <= send
    inside_one_domain = domain is None or n <= domain
    if inside_one_domain:
        assert out == pytest.approx(0.0)
    elif not dedup:
        # the remote peers' share of the copies
        assert out == pytest.approx(send * (n - domain) / (n - 1))
    else:
        u = math.ceil(n / domain)
        reached = u * (1 - (1 - 1 / u) ** top_k)  # distinct domains a token's experts live in
        assert out == pytest.approx(TOKENS * reached * (u - 1) / u * HIDDEN * ELEMENT)


@given(
    u=st.integers(min_value=2, max_value=48),
    domain=st.sampled_from([4, 8, 16]),
    top_k=st.integers(min_value=1, max_value=16),
    tokens=st.floats(min_value=1.0, max_value=1e5),
)
def test_dedup_never_sends_more_across_domains(u: int, domain: int, top_k: int, tokens: float) -> None:
    layout = MoeLayout(ep=u * domain, dp=u * domain)
    common = {"top_k": top_k, "layout": layout, "domain_devices": domain}
    send, dedup = ep_dispatch_bytes(tokens, HIDDEN, ELEMENT, dedup_domains=True, **common)
    send2, plain = ep_dispatch_bytes(tokens, HIDDEN, ELEMENT, dedup_domains=False, **common)
    assert send == pytest.approx(send2)  # dedup changes only what crosses the scale-out tier
    assert 0 < dedup <= plain * (1 + 1e-12)
    assert plain <= send
    if top_k == 1:  # one copy per token: nothing to deduplicate
        assert dedup == pytest.approx(plain)


def test_dispatch_bytes_scale_with_tokens_hidden_and_element_size() -> None:
    layout = MoeLayout(ep=16, dp=16)
    one = ep_dispatch_bytes(10.0, HIDDEN, 1.0, top_k=8, layout=layout, domain_devices=8)
    four = ep_dispatch_bytes(20.0, HIDDEN, 2.0, top_k=8, layout=layout, domain_devices=8)
    assert four[0] == pytest.approx(4 * one[0])
    assert four[1] == pytest.approx(4 * one[1])


# ---- MoE layout ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("experts", "redundant", "ep", "expected"),
    [(256, 0, 1, 256), (256, 0, 16, 16), (256, 32, 16, 18), (256, 32, 160, 2), (128, 0, 48, 3), (8, 0, 8, 1)],
)
def test_experts_per_device_is_the_ceiling_of_slots_over_ep(
    experts: int, redundant: int, ep: int, expected: int
) -> None:
    layout = MoeLayout(ep=ep, dp=ep, redundant_experts=redundant)
    assert layout.experts_per_device(experts) == expected
    assert expected == math.ceil((experts + redundant) / ep)
    assert layout.num_slots(experts) == experts + redundant


def test_moe_tp_and_devices() -> None:
    layout = MoeLayout(ep=4, dp=8, tp=2)
    assert layout.num_devices == 16
    assert layout.moe_tp == 4


@pytest.mark.parametrize("pairs", [1.0, 64.0, 1e6])
def test_imbalance_is_one_without_ep(pairs: float) -> None:
    assert MoeLayout(ep=1, dp=8).imbalance_factor(pairs) == pytest.approx(1.0)


@pytest.mark.parametrize("ep", [2, 8, 64, 256])
def test_uniform_routing_imbalance_exceeds_one_and_falls_with_load(ep: int) -> None:
    layout = MoeLayout(ep=ep, dp=ep)
    loads = [1e-6, 1.0, 10.0, 1e3, 1e5, 1e8]
    factors = [float(layout.imbalance_factor(p)) for p in loads]
    assert all(f > 1 for f in factors)
    assert all(a >= b for a, b in itertools.pairwise(factors))
    assert factors[-2] > factors[-1]  # strictly decreasing where the cap does not bind
    assert factors[0] == pytest.approx(ep)  # capped: at worst every pair lands on one group
    assert all(f <= ep for f in factors)
    mean = 1e5 / ep
    assert factors[4] == pytest.approx(min(1 + math.sqrt(2 * math.log(ep) / mean), ep))


def test_explicit_imbalance_is_returned_as_given() -> None:
    layout = MoeLayout(ep=16, dp=16, imbalance=1.3)
    assert layout.imbalance_factor(1.0) == pytest.approx(1.3)
    assert layout.imbalance_factor(1e6) == pytest.approx(1.3)
    assert MoeLayout(ep=1, imbalance=2.0).imbalance_factor(10.0) == pytest.approx(2.0)


def test_busiest_device_share_is_capped_at_everything() -> None:
    layout = MoeLayout(ep=4, dp=4, imbalance=8.0)
    assert layout.device_pair_share(256, 100.0) == pytest.approx(1.0)
    assert MoeLayout(ep=4, dp=4, imbalance=1.0).device_pair_share(256, 100.0) == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ep": 3, "dp": 4}, r"ep=3 must divide tp\*dp=4"),
        ({"ep": 16, "dp": 4, "tp": 2}, r"ep=16 must divide tp\*dp=8"),
        ({"ep": 4, "dp": 4, "imbalance": 0.9}, r"imbalance=0\.9"),
        ({"ep": 0}, "ep=0"),
        ({"dp": 2, "redundant_experts": -1}, "redundant_experts=-1"),
    ],
)
def test_invalid_layouts_raise_spec_error(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(SpecError, match=match):
        MoeLayout(**kwargs)  # type: ignore[arg-type]


# ---- sharded FLOPs sum to unsharded -----------------------------------------------------------


def _flops(ops: list[genmodel.Op], kinds: tuple[str, ...] = ("gemm", "attention")) -> float:
    return float(sum(op.flops for op in ops if op.kind in kinds))


def _by_name(ops: list[genmodel.Op]) -> dict[str, genmodel.Op]:
    return {op.name: op for op in ops}


@given(
    tp=st.sampled_from([1, 2, 4, 8]),
    cp=st.sampled_from([1, 2, 4]),
    seqs=st.integers(min_value=1, max_value=16),
    chunks=st.integers(min_value=1, max_value=512),
    past=st.integers(min_value=0, max_value=4096),
)
def test_dense_tp_cp_flops_sum_to_unsharded(tp: int, cp: int, seqs: int, chunks: int, past: int) -> None:
    m = genmodel.load_model("llama-3.1-8b")
    new = cp * chunks  # new tokens divisible by cp
    kwargs = {"num_seqs": seqs, "new_tokens": new, "past_tokens": past, "split_new_tokens": True}
    one = forward_ops(m, BF16, tp=1, cp=1, **kwargs)
    rank = forward_ops(m, BF16, tp=tp, cp=cp, **kwargs)
    # every tp x cp rank does the same work (heads split over tp, tokens over cp)
    assert tp * cp * _flops(rank) == pytest.approx(_flops(one), rel=1e-9)
    assert tp * cp * _flops(rank, ("attention",)) == pytest.approx(_flops(one, ("attention",)), rel=1e-9)
    assert _flops(rank, ("attention",)) > 0


MOE_MODELS = {"deepseek-v3": 256, "qwen3-30b-a3b": 128}


@st.composite
def _moe_plans(draw: st.DrawFn) -> tuple[str, int, int, int]:
    model_id = draw(st.sampled_from(sorted(MOE_MODELS)))
    tp = draw(st.sampled_from([1, 2, 4]))
    dp = draw(st.sampled_from([1, 2, 4, 8, 16, 32]))
    experts = MOE_MODELS[model_id]
    divisors = [e for e in range(1, tp * dp + 1) if (tp * dp) % e == 0 and experts % e == 0]
    ep = draw(st.sampled_from(divisors))
    return model_id, tp, dp, ep


@given(
    plan=_moe_plans(),
    seqs=st.integers(min_value=1, max_value=64),
    new=st.sampled_from([1, 2, 17, 512]),
    past=st.integers(min_value=0, max_value=4096),
)
def test_moe_ep_dp_tp_flops_sum_to_unsharded(
    plan: tuple[str, int, int, int], seqs: int, new: int, past: int
) -> None:
    model_id, tp, dp, ep = plan
    m = genmodel.load_model(model_id)
    layout = MoeLayout(ep=ep, dp=dp, tp=tp, redundant_experts=0, imbalance=1.0)
    kwargs = {"new_tokens": new, "past_tokens": past}
    device = _by_name(forward_ops(m, BF16, num_seqs=seqs, tp=tp, moe=layout, **kwargs))
    instance = _by_name(forward_ops(m, BF16, num_seqs=seqs * dp, tp=1, **kwargs))
    replica = _by_name(forward_ops(m, BF16, num_seqs=seqs, tp=1, **kwargs))
    # the MoE instance's tp*dp devices together compute every routed pair of all dp replicas once
    assert tp * dp * device["experts"].flops == pytest.approx(instance["experts"].flops, rel=1e-9)
    # attention stays per replica: its tp devices share the heads
    assert tp * device["attention"].flops == pytest.approx(replica["attention"].flops, rel=1e-9)
    assert device["experts"].flops > 0


@pytest.mark.parametrize(
    ("ep", "redundant", "whole"),
    [(16, 16, True), (32, 32, True), (8, 0, True), (160, 0, False), (16, 8, False)],
)
def test_redundant_slots_keep_the_routed_pairs_when_ep_divides_them(
    ep: int, redundant: int, whole: bool
) -> None:
    m = genmodel.load_model("deepseek-v3")  # 256 experts
    layout = MoeLayout(ep=ep, dp=ep, redundant_experts=redundant, imbalance=1.0)
    kwargs = {"new_tokens": 1, "past_tokens": 2000, "tp": 1}
    device = _by_name(forward_ops(m, BF16, num_seqs=8, moe=layout, **kwargs))["experts"].flops
    instance = _by_name(forward_ops(m, BF16, num_seqs=8 * ep, **kwargs))["experts"].flops
    if whole:  # every device holds (E + r) / ep slots: the pairs split exactly
        assert ep * device == pytest.approx(instance, rel=1e-9)
    else:  # the fullest device holds ceil((E + r) / ep) slots: more than an even share
        slots = 256 + redundant
        assert ep * device == pytest.approx(instance * ep * math.ceil(slots / ep) / slots, rel=1e-9)
        assert ep * device > instance


def test_default_imbalance_makes_the_busiest_device_do_more_than_its_share() -> None:
    m = genmodel.load_model("deepseek-v3")
    kwargs = {"num_seqs": 4, "new_tokens": 1, "past_tokens": 1000, "tp": 1}
    even = _by_name(forward_ops(m, BF16, moe=MoeLayout(ep=16, dp=16, imbalance=1.0), **kwargs))
    uniform = _by_name(forward_ops(m, BF16, moe=MoeLayout(ep=16, dp=16), **kwargs))
    assert uniform["experts"].flops > even["experts"].flops


# ---- the EP collectives of an estimate -----------------------------------------------------------

DS_DECODE = {"input_tokens": 1000, "output_tokens": 100, "weight_dtype": "fp8", "tp": 1}


@pytest.fixture(scope="module")
def ep16() -> genmodel.Estimate:
    # DeepSeek-V3 over two DGX H100 nodes: attention-DP 16, EP 16, 64 sequences per device
    return genmodel.estimate("deepseek-v3", "h100-sxm", dp=16, ep=16, batch=16 * 64, **DS_DECODE)


def test_ep_decode_reports_dispatch_and_combine(ep16: genmodel.Estimate) -> None:
    d = estimate_dict(ep16)
    assert d["system"] == "dgx-h100"
    assert d["ep"] == 16
    assert d["dp"] == 16
    for phase in ("prefill", "decode"):
        breakdown = d[phase]["comm_breakdown"]
        assert breakdown["ep_dispatch"] > 0
        assert breakdown["ep_combine"] > 0
        assert "moe_allgather" not in breakdown
        assert "tp_allgather" not in breakdown  # tp=1: nothing to gather back
        assert d[phase]["dominant_collective"] in ("ep_dispatch", "ep_combine")
    decode = d["decode"]["comm_breakdown"]
    # the combine returns 16-bit outputs, the dispatch sends fp8 tokens
    assert decode["ep_combine"] > decode["ep_dispatch"]
    assert d["decode"]["dominant_collective"] == "ep_combine"


def test_ep_inside_one_node_communicates_less_than_across_two() -> None:
    # DeepSeek-V3's fp8 weights do not fit 8 H100s at EP 8, so compare the decode steps directly
    with pytest.raises(genmodel.InfeasibleError, match="per device"):
        genmodel.estimate("deepseek-v3", "h100-sxm", dp=8, ep=8, batch=8 * 64, **DS_DECODE)
    system = genmodel.load_system("dgx-h100")
    model = genmodel.load_model("deepseek-v3")

    def decode(n: int) -> genmodel.PhaseCost:
        return genmodel.step_cost(
            model,
            system,
            Plan(dp=n, ep=n),
            FP8,
            phase="decode",
            num_seqs=64,  # per replica, i.e. per device
            new_tokens=1,
            past_tokens=1050,
        )

    one_node, two_nodes = decode(8), decode(16)
    assert sum(one_node.comm_breakdown.values()) < sum(two_nodes.comm_breakdown.values())
    assert one_node.comm_s < two_nodes.comm_s
    for name in ("ep_dispatch", "ep_combine"):
        assert one_node.comm_breakdown[name] < two_nodes.comm_breakdown[name]


def test_all_to_all_waits_for_the_busiest_receiver() -> None:
    # the busiest device receives (and returns) its experts' share of the routed pairs: with twice
    # the mean load it moves twice the bytes; balanced (1.0), every device the mean
    system = genmodel.load_system("dgx-h100")
    model = genmodel.load_model("deepseek-v3")
    plan = Plan(dp=16, ep=16)

    def decode(imbalance: float) -> dict[str, float]:
        options = genmodel.RunOptions(moe_imbalance=imbalance)
        cost = genmodel.step_cost(
            model,
            system,
            plan,
            FP8,
            phase="decode",
            num_seqs=64,
            new_tokens=1,
            past_tokens=1050,
            options=options,
        )
        return dict(cost.comm_breakdown)

    balanced, skewed = decode(1.0), decode(2.0)
    for name in ("ep_dispatch", "ep_combine"):
        fixed = 2 * balanced[name] - skewed[name]  # the per-call latency, the same in both
        assert 0 < fixed < balanced[name]
        assert skewed[name] - fixed == pytest.approx(2 * (balanced[name] - fixed), rel=1e-9)


def test_microbatch_overlap_hides_communication(ep16: genmodel.Estimate) -> None:
    assert ep16.decode.comm_hidden_s == pytest.approx(0.0)  # dgx-h100: comm_overlap_frac 0
    assert ep16.prefill.comm_hidden_s == pytest.approx(0.0)
    tbo = genmodel.estimate(
        "deepseek-v3", "h100-sxm", dp=16, ep=16, batch=16 * 64, overlap_microbatches=2, **DS_DECODE
    )
    assert estimate_dict(tbo)["decode"]["comm_hidden_s"] > 0
    assert estimate_dict(tbo)["prefill"]["comm_hidden_s"] > 0


def test_full_comm_overlap_is_never_slower_than_none() -> None:
    kwargs = {"dp": 16, "ep": 16, "batch": 16 * 64, **DS_DECODE}
    none = genmodel.estimate("deepseek-v3", "h100-sxm", comm_overlap_frac=0.0, **kwargs)
    full = genmodel.estimate("deepseek-v3", "h100-sxm", comm_overlap_frac=1.0, **kwargs)
    assert full.tpot_s <= none.tpot_s
    assert full.ttft_s <= none.ttft_s
    assert full.decode.comm_s < none.decode.comm_s
    assert full.decode.comm_hidden_s > 0
    assert estimate_dict(full)["comm_overlap_frac"] == pytest.approx(1.0)


def test_moe_tp_over_replicas_gathers_and_scatters() -> None:
    # ep=1 with dp=8: every device holds a 1/8 slice of every expert (MoE-TP over the replicas)
    est = genmodel.estimate(
        "qwen3-30b-a3b", "h100-sxm", dp=8, ep=1, batch=64, input_tokens=512, output_tokens=16
    )
    breakdown = estimate_dict(est)["decode"]["comm_breakdown"]
    assert breakdown["moe_allgather"] > 0
    assert breakdown["moe_reduce_scatter"] == pytest.approx(breakdown["moe_allgather"])
    assert "ep_dispatch" not in breakdown


# ---- single-batch overlap (SGLang): the decode step's combine beside other operators ------------


@pytest.mark.parametrize("mode", ["shared", "down"])
def test_single_batch_overlap_hides_the_combine_behind_what_it_runs_beside(
    ep16: genmodel.Estimate, mode: str
) -> None:
    sbo = genmodel.estimate(
        "deepseek-v3", "h100-sxm", dp=16, ep=16, batch=16 * 64, combine_overlap=mode, **DS_DECODE
    )
    times = {t.op.name: t.time_s for t in sbo.decode.ops}
    beside = times["shared_experts"] + (times["experts"] / 3 if mode == "down" else 0.0)
    combine = sbo.decode.comm_breakdown["ep_combine"]
    hidden = min(combine, beside)
    assert 0 < hidden <= combine
    # the collectives before overlap are the same; the step is shorter by exactly the hidden time
    assert sbo.decode.comm_breakdown == pytest.approx(ep16.decode.comm_breakdown, rel=1e-12)
    assert sbo.decode.comm_hidden_s == pytest.approx(hidden, rel=1e-9)
    assert ep16.tpot_s - sbo.tpot_s == pytest.approx(hidden, rel=1e-6)
    # a decode-step overlap (DeepEP's low-latency combine): the prefill does not move
    assert sbo.ttft_s == pytest.approx(ep16.ttft_s, rel=1e-12)


def test_the_down_gemm_overlap_hides_at_least_the_shared_experts_overlap() -> None:
    kwargs = {"dp": 16, "ep": 16, "batch": 16 * 64, **DS_DECODE}
    shared = genmodel.estimate("deepseek-v3", "h100-sxm", combine_overlap="shared", **kwargs)
    down = genmodel.estimate("deepseek-v3", "h100-sxm", combine_overlap="down", **kwargs)
    assert down.decode.comm_hidden_s > shared.decode.comm_hidden_s
    assert down.tpot_s < shared.tpot_s


def test_without_shared_experts_only_the_down_gemm_hides_the_combine() -> None:
    # Qwen3-30B-A3B has no shared experts: beside them the combine would hide nothing, so 'shared'
    # is refused (it was a silent no-op), and 'down' hides it behind the routed experts' down GEMM
    kwargs = {"dp": 8, "ep": 8, "batch": 8 * 64, "input_tokens": 1000, "output_tokens": 100}
    none = genmodel.estimate("qwen3-30b-a3b", "h100-sxm", **kwargs)
    with pytest.raises(
        SpecError, match="combine_overlap='shared' needs shared experts; qwen3-30b-a3b has none"
    ):
        genmodel.estimate("qwen3-30b-a3b", "h100-sxm", combine_overlap="shared", **kwargs)
    down = genmodel.estimate("qwen3-30b-a3b", "h100-sxm", combine_overlap="down", **kwargs)
    assert none.decode.comm_hidden_s == pytest.approx(0.0)
    assert down.decode.comm_hidden_s > 0
    assert down.tpot_s < none.tpot_s


def test_single_batch_overlap_is_refused_where_it_does_not_apply() -> None:
    kwargs = {"dp": 16, "ep": 16, "batch": 16 * 64, **DS_DECODE}
    with pytest.raises(SpecError, match="combine_overlap"):
        genmodel.estimate("deepseek-v3", "h100-sxm", combine_overlap="both", **kwargs)
    # SGLang runs either the single-batch or the two-batch overlap
    with pytest.raises(SpecError, match="overlap_microbatches"):
        genmodel.estimate(
            "deepseek-v3", "h100-sxm", combine_overlap="shared", overlap_microbatches=2, **kwargs
        )


def test_the_serving_simulation_leaves_the_single_batch_overlap_to_the_closed_form() -> None:
    est = genmodel.estimate(
        "deepseek-v3", "h100-sxm", dp=16, ep=16, concurrency=256, combine_overlap="shared", **DS_DECODE
    )
    assert est.serving is not None
    assert "fell back to the closed-form" in est.serving.notes
    assert "combine_overlap='shared' must be 'none'" in est.serving.notes
