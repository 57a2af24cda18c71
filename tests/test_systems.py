"""Systems (hardware_db/systems/) and the features that need one: loading by device or system id,
the system= option, max_devices, speculative decoding (MTP, draft models), disaggregated
prefill/decode (KV-cache transfer) and context parallelism."""

from __future__ import annotations

import dataclasses
from importlib import resources

import pytest
import yaml

import genmodel
from genmodel import InfeasibleError, Precision, SpecError, Speculation, System, UnknownEntryError
from genmodel.report import estimate_dict

SYSTEM_IDS = genmodel.list_ids("system")


# ---- the database ---------------------------------------------------------------------------------


def test_there_are_systems() -> None:
    assert {"dgx-h100", "cloudmatrix384", "mi300x-platform"} <= set(SYSTEM_IDS)


@pytest.mark.parametrize("system_id", SYSTEM_IDS)
def test_every_system_loads_and_its_fabric_grows_outward(system_id: str) -> None:
    s = genmodel.load_system(system_id)
    assert isinstance(s, System)
    assert s.id == system_id
    assert s.device.id in genmodel.list_ids("hardware")
    assert genmodel.load_device(s.device.id) == s.device
    domains = [t.num_domain_devices for t in s.fabric]
    assert all(d is not None for d in domains[:-1])
    inner = [d for d in domains if d is not None]
    assert inner == sorted(inner)
    assert len(set(inner)) == len(inner)  # strictly growing
    levels = [t.level for t in s.fabric]
    assert levels == sorted(levels, key=["scale_up", "scale_out"].index)  # no scale-up outside scale-out
    for t in s.fabric:
        assert 0 < s.bus_frac(t) <= 1
        assert t.bandwidth_bytes_per_s > 0
        assert t.latency_s >= 0
        assert t.group_bandwidth_bytes_per_s(2) <= t.bandwidth_bytes_per_s
    # a node fits in the scale-up domain (the outermost scale-up tier: a PCIe server of NVLink-bridged
    # pairs has a node of 8 around domains of 2); the deployment holds at least one node
    up = [t.num_domain_devices for t in s.fabric if t.level == "scale_up"]
    assert not up or up[-1] is None or s.num_node_devices <= up[-1]
    assert s.max_devices is None or s.max_devices >= s.num_node_devices
    assert 0 <= s.comm_overlap_frac <= 1
    # the innermost tier holds a group of its own size, the outermost any group
    assert s.tier_index(1) == 0
    assert s.tier_index(10**6) == len(s.fabric) - 1


@pytest.mark.parametrize(
    ("name", "system_id"),
    [
        ("h100-sxm", "dgx-h100"),
        ("h100", "dgx-h100"),  # a device alias
        ("dgx-h100", "dgx-h100"),
        ("hgx-h100", "dgx-h100"),  # a system alias
        ("cm384", "cloudmatrix384"),
        ("ascend-910c", "cloudmatrix384"),
        ("mi300x", "mi300x-platform"),
    ],
)
def test_load_hardware_gives_the_usual_system(name: str, system_id: str) -> None:
    s = genmodel.load_hardware(name)
    assert s.id == system_id
    assert s == genmodel.load_system(system_id)


def test_a_device_without_a_system_file_implies_one() -> None:
    s = genmodel.load_hardware("l40s")
    device = genmodel.load_device("l40s")
    assert s.id == "l40s"
    assert "l40s" not in SYSTEM_IDS
    assert s.device == device
    assert s == System.of_device(device)
    assert device.scale_up is not None
    assert s.fabric[0].bandwidth_bytes_per_s == pytest.approx(device.scale_up.bandwidth_bytes_per_s)


def test_unknown_hardware_lists_devices_and_systems() -> None:
    with pytest.raises(UnknownEntryError) as info:
        genmodel.load_hardware("dgx-h1000")
    message = str(info.value)
    assert "dgx-h100" in message
    assert "h100-sxm" in message
    assert "cloudmatrix384" in message
    assert "dgx-h100" in info.value.closest
    with pytest.raises(UnknownEntryError, match="cloudmatrix384"):
        genmodel.load_system("cloudmatrix385")


def _ids_and_aliases(package: str) -> list[str]:
    names: list[str] = []
    for entry in resources.files(package).iterdir():
        if entry.name.endswith(".yaml"):
            raw = yaml.safe_load(entry.read_text(encoding="utf-8"))
            names += [str(raw["id"]), *(str(a) for a in raw.get("aliases", []))]
    return names


def test_ids_and_aliases_are_unique_across_devices_and_systems() -> None:
    devices = _ids_and_aliases("genmodel.hardware_db.devices")
    systems = _ids_and_aliases("genmodel.hardware_db.systems")
    names = [n.lower() for n in devices + systems]  # lookups fall back to lower case
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert duplicates == []
    # the lists hold the aliases too, not just the ids
    assert {"h100", "instinct-mi300x"} <= set(devices)
    assert {"cm384", "hgx-h100"} <= set(systems)
    assert len(devices) > len(genmodel.list_ids("hardware"))


# ---- the system= option and max_devices --------------------------------------------------------

L70 = {"input_tokens": 1000, "output_tokens": 32, "batch": 4}


def test_a_device_with_only_a_scale_up_link_cannot_span_more_than_its_domain() -> None:
    h100 = genmodel.load_device("h100-sxm")
    nvlink_only = dataclasses.replace(h100, scale_out=None)
    s = System.of_device(nvlink_only)
    assert s.fabric[-1].num_domain_devices == 8
    # a device without any link runs alone (max_devices=1); one NVSwitch domain holds 8
    assert System.of_device(dataclasses.replace(h100, scale_up=None, scale_out=None)).max_devices == 1
    assert s.max_devices == 8
    with pytest.raises(InfeasibleError, match="max_devices"):
        genmodel.estimate("llama-3.1-70b", nvlink_only, tp=16, input_tokens=100, output_tokens=8)


def test_system_option_equals_giving_the_system_as_hardware() -> None:
    # tp=16 spans two DGX nodes, so the fabric decides the all-reduces
    via_option = genmodel.estimate("llama-3.1-70b", "h100-sxm", system="dgx-h100", tp=16, **L70)
    as_hardware = genmodel.estimate("llama-3.1-70b", "dgx-h100", tp=16, **L70)
    by_device_id = genmodel.estimate("llama-3.1-70b", "h100-sxm", tp=16, **L70)
    assert via_option.ttft_s == pytest.approx(as_hardware.ttft_s, rel=1e-12)
    assert via_option.tpot_s == pytest.approx(as_hardware.tpot_s, rel=1e-12)
    assert by_device_id.ttft_s == pytest.approx(as_hardware.ttft_s, rel=1e-12)
    assert estimate_dict(via_option)["system"] == "dgx-h100"
    assert estimate_dict(via_option)["hardware"] == "h100-sxm"
    # a Device object implies the system its id does: one vocabulary, one answer (issue 16)
    h100 = genmodel.load_device("h100-sxm")
    by_object = genmodel.estimate("llama-3.1-70b", h100, tp=16, **L70)
    assert estimate_dict(by_object)["system"] == "dgx-h100"
    assert by_object.ttft_s == pytest.approx(as_hardware.ttft_s, rel=1e-12)
    # ... with its figures as given (a what-if on the chip keeps the system's fabric)
    faster = dataclasses.replace(h100, memory_bandwidth_bytes_per_s=2 * h100.memory_bandwidth_bytes_per_s)
    what_if = genmodel.estimate("llama-3.1-70b", faster, tp=16, **L70)
    assert estimate_dict(what_if)["system"] == "dgx-h100" and what_if.tpot_s < by_object.tpot_s
    # a link's bandwidth edited keeps the system, its tiers of that level scaled: more NVLink
    # bandwidth is never a slower fabric (it was, by a hair, when it fell back to the bare links)
    assert h100.scale_up is not None
    up = dataclasses.replace(
        h100.scale_up, bandwidth_bytes_per_s=1.015625 * h100.scale_up.bandwidth_bytes_per_s
    )
    kw = {"tp": 2, "batch": 1, "input_tokens": 1, "output_tokens": 1, "weight_dtype": "fp8"}
    base = genmodel.estimate("llama-3.1-8b", h100, **kw)
    wider = genmodel.estimate("llama-3.1-8b", dataclasses.replace(h100, scale_up=up), **kw)
    assert estimate_dict(wider)["system"] == "dgx-h100" and wider.ttft_s <= base.ttft_s
    # a device whose links were added or removed makes its own system from them
    slow_out = dataclasses.replace(h100, scale_out=None)
    assert estimate_dict(genmodel.estimate("llama-3.1-70b", slow_out, tp=8, **L70))["system"] == "h100-sxm"


def test_system_of_another_device_is_rejected() -> None:
    with pytest.raises(SpecError, match="system=cloudmatrix384 is built from hardware=ascend-910c"):
        genmodel.estimate(
            "llama-3.1-8b", "h100-sxm", system="cloudmatrix384", input_tokens=100, output_tokens=8
        )


def test_plans_beyond_the_systems_size_are_infeasible() -> None:
    cm = genmodel.load_system("cloudmatrix384")
    assert cm.max_devices == 384
    with pytest.raises(InfeasibleError, match="devices=512 must be <= max_devices=384") as info:
        genmodel.estimate(
            "deepseek-v3",
            "cloudmatrix384",
            tp=1,
            dp=512,
            ep=256,
            weight_dtype="int8",
            input_tokens=100,
            output_tokens=8,
        )
    assert len(info.value.violations) == 1


# ---- speculative decoding -----------------------------------------------------------------------


def test_tokens_per_step() -> None:
    assert Speculation(draft_tokens=1, acceptance_rate=0.7).tokens_per_step == pytest.approx(1.7)
    assert Speculation(draft_tokens=3, acceptance_rate=1.0).tokens_per_step == pytest.approx(4.0)
    assert Speculation(draft_tokens=3, acceptance_rate=0.0).tokens_per_step == pytest.approx(1.0)
    assert Speculation(draft_tokens=2, acceptance_rate=0.5).tokens_per_step == pytest.approx(1.75)
    with pytest.raises(SpecError, match="draft_tokens=0"):
        Speculation(draft_tokens=0)
    with pytest.raises(SpecError, match=r"acceptance_rate=1\.5"):
        Speculation(acceptance_rate=1.5)


CM384_DS = {
    "tp": 1,
    "dp": 160,
    "ep": 160,
    "batch": 15360,
    "input_tokens": 4096,
    "output_tokens": 64,
    "weight_dtype": "int8",
    "act_dtype": "int8",
    "kv_dtype": "bf16",
}


@pytest.fixture(scope="module")
def cm384_plain() -> genmodel.Estimate:
    # CloudMatrix-Infer's decode deployment: DeepSeek-V3 over 160 NPUs, 96 sequences each
    return genmodel.estimate("deepseek-v3", "cloudmatrix384", **CM384_DS)


def test_mtp_speculation_on_cloudmatrix384(cm384_plain: genmodel.Estimate) -> None:
    mtp = genmodel.estimate("deepseek-v3", "cloudmatrix384", draft_tokens=1, acceptance_rate=0.7, **CM384_DS)
    spec = estimate_dict(mtp)["speculation"]
    assert spec["tokens_per_step"] == pytest.approx(1.7)
    assert spec["draft_model"] == "mtp"
    assert spec["draft_tokens"] == 1
    assert estimate_dict(cm384_plain)["speculation"] is None
    assert estimate_dict(cm384_plain)["system"] == "cloudmatrix384"
    # prefill does not speculate
    assert mtp.ttft_s == pytest.approx(cm384_plain.ttft_s, rel=1e-12)
    perfect = genmodel.estimate(
        "deepseek-v3", "cloudmatrix384", draft_tokens=1, acceptance_rate=1.0, **CM384_DS
    )
    assert estimate_dict(perfect)["speculation"]["tokens_per_step"] == pytest.approx(2.0)
    assert perfect.decode_tokens_per_s_per_device > cm384_plain.decode_tokens_per_s_per_device
    # a higher acceptance never lowers the decode rate
    assert perfect.decode_tokens_per_s_per_device > mtp.decode_tokens_per_s_per_device


def test_speculation_without_mtp_needs_a_draft_model() -> None:
    kwargs = {"input_tokens": 512, "output_tokens": 32, "batch": 4}
    with pytest.raises(SpecError, match="num_mtp_layers=0"):
        genmodel.estimate("llama-3.1-8b", "h100-sxm", draft_tokens=1, **kwargs)
    plain = genmodel.estimate("llama-3.1-8b", "h100-sxm", **kwargs)
    drafted = genmodel.estimate(
        "llama-3.1-8b", "h100-sxm", draft_tokens=1, draft_model="llama-3.2-1b", **kwargs
    )
    assert estimate_dict(drafted)["speculation"]["draft_model"] == "llama-3.2-1b"
    assert drafted.memory.weights_bytes_per_device > plain.memory.weights_bytes_per_device
    assert drafted.memory.weights_bytes_per_device < 2 * plain.memory.weights_bytes_per_device


# ---- disaggregated prefill/decode ---------------------------------------------------------------

L70_DISAGG = {"tp": 8, "batch": 8, "input_tokens": 2000, "output_tokens": 64}


@pytest.mark.parametrize("hardware", ["dgx-h100", "cloudmatrix384"])
def test_disaggregation_adds_the_exposed_kv_transfer_to_ttft(hardware: str) -> None:
    plain = genmodel.estimate("llama-3.1-70b", hardware, **L70_DISAGG)
    split = genmodel.estimate("llama-3.1-70b", hardware, disaggregated=True, **L70_DISAGG)
    d = estimate_dict(split)
    assert d["disaggregated"] is True
    assert estimate_dict(plain)["kv_transfer_s"] is None
    assert d["kv_transfer_s"] > 0
    assert 0 < d["kv_transfer_exposed_s"] <= d["kv_transfer_s"]
    assert split.ttft_s >= plain.ttft_s
    assert split.ttft_s == pytest.approx(plain.ttft_s + d["kv_transfer_exposed_s"])
    assert split.tpot_s == pytest.approx(plain.tpot_s)


def test_kv_transfer_is_faster_over_ub_than_across_infiniband() -> None:
    model = genmodel.load_model("llama-3.1-70b")
    precision = Precision()  # bf16 KV cache on both
    # each device's shard: 8 sequences (one replica) of 2000 tokens, 1/8 of the KV heads
    kv_bytes = 8 * genmodel.kv_bytes_per_sequence(model, precision, 2000, tp=8)
    times = {}
    for hardware in ("dgx-h100", "cloudmatrix384"):
        s = genmodel.load_system(hardware)
        est = genmodel.estimate("llama-3.1-70b", hardware, disaggregated=True, **L70_DISAGG)
        assert est.kv_transfer_s is not None
        # prefill and decode pools together: 2 * 8 devices
        tier = s.tier_for(16)
        expected = (
            s.device.efficiency.collective_latency_s
            + tier.latency_s
            + kv_bytes / (tier.peer_bandwidth_bytes_per_s() * s.bus_frac(tier))
        )
        assert est.kv_transfer_s == pytest.approx(expected)
        times[hardware] = est.kv_transfer_s
    assert genmodel.load_system("dgx-h100").tier_for(16).level == "scale_out"  # 2 * 8 > 8: IB
    assert genmodel.load_system("cloudmatrix384").tier_for(16).level == "scale_up"  # UB holds 384
    assert times["cloudmatrix384"] < times["dgx-h100"]


# ---- context parallelism --------------------------------------------------------------------------

LONG = {"input_tokens": 65536, "output_tokens": 128, "batch": 1}


@pytest.fixture(scope="module")
def cp_pair() -> tuple[genmodel.Estimate, genmodel.Estimate]:
    return (
        genmodel.estimate("llama-3.1-8b", "h100-sxm", cp=1, **LONG),
        genmodel.estimate("llama-3.1-8b", "h100-sxm", cp=4, **LONG),
    )


def test_context_parallel_prefill_is_faster_and_shards_the_kv_cache(
    cp_pair: tuple[genmodel.Estimate, genmodel.Estimate],
) -> None:
    one, four = cp_pair
    assert estimate_dict(four)["cp"] == 4
    assert estimate_dict(four)["devices"] == 4
    assert four.ttft_s < one.ttft_s
    assert four.memory.kv_cache_bytes_per_device == pytest.approx(one.memory.kv_cache_bytes_per_device / 4)
    assert four.memory.weights_bytes_per_device == pytest.approx(one.memory.weights_bytes_per_device)


def test_context_parallel_collectives(cp_pair: tuple[genmodel.Estimate, genmodel.Estimate]) -> None:
    one, four = cp_pair
    prefill = estimate_dict(four)["prefill"]["comm_breakdown"]
    decode = estimate_dict(four)["decode"]["comm_breakdown"]
    assert prefill["cp_ring"] > 0
    assert "cp_combine" not in prefill
    assert decode["cp_combine"] > 0
    assert "cp_ring" not in decode
    assert estimate_dict(one)["prefill"]["comm_breakdown"] == {}
    # the ring overlaps the attention it feeds: at most the ring itself is exposed
    assert four.prefill.comm_s <= prefill["cp_ring"]
    assert four.prefill.comm_hidden_s > 0


def test_ids_are_found_whatever_their_case() -> None:
    assert genmodel.load_hardware("DGX-H100").id == "dgx-h100"
    assert genmodel.load_hardware("H100-SXM").id == "dgx-h100"


# ---- rack-scale NVLink (GB200/GB300 NVL72) and the other platforms added for issue 15 -------------------

NEW_PLATFORMS = {
    "gb200": "gb200-nvl72",
    "gb300": "gb300-nvl72",
    "b300": "dgx-b300",
    "mi325x": "mi325x-platform",
    "mi355x": "mi355x-platform",
}


@pytest.mark.parametrize(("device_id", "system_id"), NEW_PLATFORMS.items())
def test_new_devices_imply_their_systems(device_id: str, system_id: str) -> None:
    s = genmodel.load_hardware(device_id)
    assert s.id == system_id
    assert s.device == genmodel.load_device(device_id)
    assert [t.level for t in s.fabric] == ["scale_up", "scale_out"]
    assert system_id in genmodel.list_ids("system")


@pytest.mark.parametrize("system_id", ["gb200-nvl72", "gb300-nvl72"])
def test_nvl72_racks_are_one_72_device_nvlink_domain(system_id: str) -> None:
    s = genmodel.load_system(system_id)
    up, out = s.fabric
    assert up.num_domain_devices == 72
    assert up.bandwidth_bytes_per_s == pytest.approx(900e9)
    assert s.tier_for(72) is up  # the whole rack without leaving NVLink
    assert s.tier_for(73) is out
    # an 8-GPU Blackwell node leaves NVLink at the ninth GPU
    assert genmodel.load_system("dgx-b200").tier_for(9).level == "scale_out"
    # the device file alone implies the same domain
    assert System.of_device(s.device).fabric[0].num_domain_devices == 72


@pytest.mark.parametrize(("tp", "dp"), [(1, 72), (8, 9)])
def test_an_expert_parallel_plan_over_72_gpus_of_gb200_nvl72_stays_on_nvlink(tp: int, dp: int) -> None:
    kwargs: dict[str, object] = {
        "tp": tp,
        "dp": dp,
        "ep": 72,
        "batch": 72 * 16,
        "input_tokens": 2000,
        "output_tokens": 200,
        "weight_dtype": "fp8",
    }
    rack = genmodel.load_system("gb200-nvl72")
    e = genmodel.estimate("deepseek-v3", rack, **kwargs)  # type: ignore[arg-type]
    assert e.plan.num_devices == 72
    assert e.memory.fits
    assert e.decode.comm_s > 0
    # no scale-out tier is used: starving it changes nothing
    cut = genmodel.estimate("deepseek-v3", rack.scaled(scale_out_bandwidth=0.01), **kwargs)  # type: ignore[arg-type]
    assert cut.decode.comm_s == pytest.approx(e.decode.comm_s)
    assert cut.prefill.comm_s == pytest.approx(e.prefill.comm_s)
    assert cut.tpot_s == pytest.approx(e.tpot_s)
    # the same plan over nine 8-GPU B200 nodes crosses InfiniBand, and the cut shows
    nodes = genmodel.load_system("dgx-b200")
    ib = genmodel.estimate("deepseek-v3", nodes, **kwargs)  # type: ignore[arg-type]
    ib_cut = genmodel.estimate("deepseek-v3", nodes.scaled(scale_out_bandwidth=0.01), **kwargs)  # type: ignore[arg-type]
    assert ib_cut.decode.comm_s > 2 * ib.decode.comm_s
    assert e.decode.comm_s < ib.decode.comm_s


def test_grace_memory_takes_the_kv_cache_that_does_not_fit_hbm() -> None:
    kwargs: dict[str, object] = {"tp": 2, "batch": 16, "input_tokens": 100_000, "output_tokens": 1000}
    hbm_only = genmodel.estimate("llama-3.1-70b", "gb200", **kwargs)  # type: ignore[arg-type]
    assert not hbm_only.memory.fits
    e = genmodel.estimate("llama-3.1-70b", "gb200", kv_offload="host", **kwargs)  # type: ignore[arg-type]
    assert e.memory.fits
    _hbm, grace = e.memory.tiers
    assert grace.id == "grace-blackwell-lpddr5x"
    assert grace.kv_bytes > 0
    assert grace.weights_bytes == 0
    # the superchip's two GPUs share one Grace: half of its 480 GiB and of the C2C's 450 GB/s each
    frac = genmodel.load_device("gb200").efficiency.offload_link_frac
    assert grace.capacity_bytes == pytest.approx(240 * 2**30)
    assert grace.bandwidth_bytes_per_s == pytest.approx(450e9 / 2 * frac)
    assert e.memory.kv_tier_bytes_per_s == pytest.approx(grace.bandwidth_bytes_per_s)
    # one GPU alone has the whole Grace
    alone = genmodel.estimate(
        "llama-3.1-70b",
        "gb200",
        batch=4,
        input_tokens=100_000,
        output_tokens=1000,
        kv_offload="grace-blackwell-lpddr5x",
    )
    assert alone.memory.tiers[1].bandwidth_bytes_per_s == pytest.approx(450e9 * frac)
    # host DDR5 behind PCIe Gen5 (an HGX B200) is several times slower per GPU
    pcie = genmodel.estimate("llama-3.1-70b", "b200", kv_offload="host", **kwargs)  # type: ignore[arg-type]
    assert pcie.memory.tiers[1].bandwidth_bytes_per_s * 3 < grace.bandwidth_bytes_per_s


@pytest.mark.parametrize("device_id", NEW_PLATFORMS)
def test_estimate_and_a_small_plan_run_on_each_new_device(device_id: str) -> None:
    e = genmodel.estimate("llama-3.1-8b", device_id, batch=8, input_tokens=1000, output_tokens=100)
    assert e.memory.fits
    assert 0 < e.ttft_s < 1
    assert 0 < e.tpot_s < 0.05
    report = genmodel.plan(
        "llama-3.1-8b",
        device_id,
        devices=8,
        input_tokens=1000,
        output_tokens=200,
        ttft_slo_s=2.0,
        tpot_slo_s=0.05,
    )
    assert report.result.feasible > 0
    assert report.best is not None
    assert report.best.plan.num_devices == 8
    assert report.best.tpot_s <= 0.05
