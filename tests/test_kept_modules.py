"""Modules a published quantised checkpoint keeps in a wider precision (issue 15).

NVIDIA's NVFP4 DeepSeek-R1 checkpoints leave the MLA projections, the LM head, the embedding and the
routers out of quantisation (TensorRT-Model-Optimizer examples/deepseek/ptq.py disables '*attn*'
and '*head*'; Model-Optimizer issue 150: the attention projections are stored in BF16), and the
engines run such excluded layers as plain BF16 GEMMs (vLLM's ModelOpt config:
UnquantizedLinearMethod). workloads/models/deepseek-v3.yaml states it under ``checkpoints``; a
run may say otherwise with ``keep_modules`` (``--keep-modules``). Checked here: the kept modules'
bytes and GEMM peak in a step, the weight memory, the estimate, the vectorised search (equal to
the estimate), and the bad input the option refuses.
"""

from __future__ import annotations

import collections
import csv
import json
from pathlib import Path

import numpy as np
import pytest
from _cli import cli_bad, cli_ok

import genmodel
from genmodel import Plan, SpecError, default_precision
from genmodel._ops import Rates, forward_ops, roofline_step
from genmodel._search import Slo, _evaluate
from genmodel._servingmodel import ClosedForm, serving_model
from genmodel._sizes import weight_bytes_per_device
from genmodel._units import WEIGHT_DTYPE_BYTES
from genmodel._workload import Precision, check_keep_rule, keep_rule, parse_keep_modules
from genmodel.io import load_hardware, load_model

DS = load_model("deepseek-v3")
_MODELS = Path(__file__).resolve().parents[1] / "workloads" / "models"
FP4 = Precision(weight_dtype="fp4", act_dtype="fp4", kv_dtype="fp8")
#: DeepSeek-V3's MLA projections (config.json): (k, n) of q_a, q_b, kv_a, kv_b, o
MLA = {
    "q_a_proj": (7168, 1536),
    "q_b_proj": (1536, 128 * 192),
    "kv_a_proj": (7168, 576),
    "kv_b_proj": (512, 128 * 256),
    "o_proj": (128 * 128, 7168),
}
W = {"input_tokens": 2048, "output_tokens": 256}
#: bytes of an fp4 activation element (the kept GEMMs read theirs in bf16)
DS_ACT_FP4 = FP4.act_bytes


def _kept() -> Precision:
    return default_precision("fp4", "fp4", "fp8", model=DS)


def test_deepseek_fp4_checkpoint_keeps_the_mla_head_embedding_and_router_in_bf16() -> None:
    assert dict(_kept().keep_modules) == {
        "attention": "bf16",
        "lm_head": "bf16",
        "embedding": "bf16",
        "router": "bf16",
    }
    # no rule for a weight dtype without a published checkpoint, nor without a model
    assert default_precision("int8", model=DS).keep_modules == ()
    assert default_precision("fp4", "fp4").keep_modules == ()
    assert default_precision("fp4", "fp4", model=DS, keep_modules="none").keep_modules == ()


def test_deepseek_fp8_checkpoint_keeps_the_head_embedding_and_router_and_stores_the_mla_in_fp8() -> None:
    # DeepSeek's own FP8 weights (README_WEIGHTS.md; inference/model.py: every Linear fp8, the output
    # head, the embedding and the Gate bf16): the MLA projections are FP8, not kept
    fp8 = default_precision("fp8", model=DS)
    assert dict(fp8.keep_modules) == {"lm_head": "bf16", "embedding": "bf16", "router": "bf16"}
    assert default_precision("fp8", model=load_model("deepseek-r1")).keep_modules == fp8.keep_modules
    plain = Precision(weight_dtype="fp8", act_dtype="fp8")
    step = {"num_seqs": 4, "new_tokens": 1, "past_tokens": 2000}
    kept = {op.name: op for op in forward_ops(DS, default_precision("fp8", "fp8", model=DS), **step)}
    ops = {op.name: op for op in forward_ops(DS, plain, **step)}
    for name, (k, n) in MLA.items():
        assert kept[name].weight_bytes == ops[name].weight_bytes == pytest.approx(k * n * DS.num_layers)
        assert kept[name].dtype == ""
    assert kept["lm_head"].weight_bytes == pytest.approx(7168 * 129280 * 2)
    assert ops["lm_head"].weight_bytes == pytest.approx(7168 * 129280 * 1)
    assert kept["lm_head"].dtype == kept["router"].dtype == "bf16"
    assert kept["experts"].weight_bytes == ops["experts"].weight_bytes
    assert DS.moe is not None
    extra = weight_bytes_per_device(DS, fp8, Plan(tp=8)) - weight_bytes_per_device(DS, plain, Plan(tp=8))
    # the head and the embedding split over tp=8, the routers replicated, 1 byte more a weight
    routers = DS.num_moe_layers * 7168 * DS.moe.num_experts
    assert extra == pytest.approx(2 * 129280 * 7168 / 8 + routers, rel=1e-12)


def test_kimi_k2_fp8_checkpoint_keeps_what_deepseeks_keeps() -> None:
    # Moonshot's FP8 weights (config.json quantization_config, the tensors' dtypes): the head, the
    # embedding and the routers bf16, the MLA projections and the experts fp8, as DeepSeek's
    k2 = load_model("kimi-k2")
    fp8 = default_precision("fp8", model=k2)
    assert fp8.keep_modules == default_precision("fp8", model=DS).keep_modules
    assert default_precision("fp4", model=k2).keep_modules == ()  # no fp4 checkpoint of its own
    plain = Precision(weight_dtype="fp8", act_dtype="fp8")
    assert k2.moe is not None
    extra = weight_bytes_per_device(k2, fp8, Plan(tp=8)) - weight_bytes_per_device(k2, plain, Plan(tp=8))
    # the head and the embedding (163,840 x 7,168) split over tp=8, the 60 routers of 384 experts
    # replicated, 1 byte more a weight
    assert extra == pytest.approx(2 * 163840 * 7168 / 8 + 60 * 7168 * 384, rel=1e-12)


def test_kept_projections_read_bf16_weights_and_run_at_the_bf16_peak() -> None:
    step = {"num_seqs": 4, "new_tokens": 512, "past_tokens": 0}
    kept = {op.name: op for op in forward_ops(DS, _kept(), **step)}
    plain = {op.name: op for op in forward_ops(DS, FP4, **step)}
    layers = DS.num_layers
    for name, (k, n) in MLA.items():
        assert kept[name].weight_bytes == pytest.approx(k * n * layers * 2)  # bf16: 2 bytes a weight
        assert plain[name].weight_bytes == pytest.approx(k * n * layers * WEIGHT_DTYPE_BYTES["fp4"])
        assert kept[name].dtype == "bf16" and plain[name].dtype == ""
        assert kept[name].act_bytes == pytest.approx(plain[name].act_bytes * 2 / DS_ACT_FP4)
        assert kept[name].flops == plain[name].flops  # the same work, in another precision
    assert kept["lm_head"].weight_bytes == pytest.approx(7168 * 129280 * 2)
    # the routed experts stay fp4
    assert kept["experts"].weight_bytes == plain["experts"].weight_bytes
    device = load_hardware("b200").device
    rates = Rates.of(device, _kept())
    bf16 = dict(rates.kept_gemm_flops_per_s)["bf16"]
    assert bf16 == pytest.approx(Rates.of(device, default_precision("bf16")).gemm_flops_per_s)
    assert bf16 < rates.gemm_flops_per_s  # B200's fp4 peak is 4x its bf16 one
    times = {t.op.name: t for t in roofline_step(list(kept.values()), device, _kept()).times}
    padded = rates.padding(kept["q_b_proj"].rows)
    assert times["q_b_proj"].compute_s == pytest.approx(kept["q_b_proj"].flops * padded / bf16)


def test_kept_modules_weigh_their_own_bytes_in_memory() -> None:
    plan = Plan(tp=1, ep=8, dp=8)
    kept = weight_bytes_per_device(DS, _kept(), plan)
    plain = weight_bytes_per_device(DS, FP4, plan)
    d, vocab, layers = 7168, 129280, DS.num_layers
    assert DS.moe is not None
    params = layers * sum(k * n for k, n in MLA.values()) + 2 * vocab * d
    params += DS.num_moe_layers * d * DS.moe.num_experts  # the routers
    assert kept - plain == pytest.approx(params * (2 - WEIGHT_DTYPE_BYTES["fp4"]), rel=1e-12)
    est = genmodel.estimate("deepseek-v3", "b200", tp=1, ep=8, dp=8, weight_dtype="fp4", act_dtype="fp4", **W)
    assert est.memory.weights_bytes_per_device == pytest.approx(kept, rel=1e-12)


def test_the_estimate_runs_the_checkpoint_unless_told_otherwise() -> None:
    args = {"tp": 1, "ep": 8, "dp": 8, "batch": 32, "weight_dtype": "fp4", "act_dtype": "fp4", **W}
    default = genmodel.estimate("deepseek-v3", "b200", **args)
    spelled = genmodel.estimate(
        "deepseek-v3", "b200", keep_modules="attention=bf16,lm_head=bf16,embedding=bf16,router=bf16", **args
    )
    all_fp4 = genmodel.estimate("deepseek-v3", "b200", keep_modules="none", **args)
    v2 = genmodel.estimate("deepseek-v3", "b200", keep_modules="o_proj=fp4", **args)
    assert default.ttft_s == spelled.ttft_s and default.tpot_s == spelled.tpot_s
    # BF16 projections: slower prefill and decode than all fp4; the -v2 checkpoint in between
    assert all_fp4.ttft_s < v2.ttft_s < default.ttft_s
    assert all_fp4.tpot_s < v2.tpot_s < default.tpot_s
    assert dict(v2.precision.keep_modules)["o_proj"] == "fp4"
    assert genmodel.report.estimate_dict(default)["keep_modules"]["attention"] == "bf16"


def test_keep_rules_lay_given_modules_over_the_checkpoint() -> None:
    ckpt = (("attention", "bf16"), ("lm_head", "bf16"))
    assert keep_rule("checkpoint", ckpt) == ckpt
    assert keep_rule("none", ckpt) == ()
    assert dict(keep_rule("o_proj=fp4, q_b_proj=fp8", ckpt)) == {
        **dict(ckpt),
        "o_proj": "fp4",
        "q_b_proj": "fp8",
    }
    p = Precision(
        weight_dtype="fp4", act_dtype="fp4", keep_modules=keep_rule("o_proj=fp4,q_b_proj=fp8", ckpt)
    )
    assert p.for_module("o_proj") is p  # kept in the weight precision: not kept
    assert p.for_module("q_b_proj").gemm_dtype == "fp8"
    assert p.for_module("kv_a_proj").weight_dtype == "bf16"  # by its class
    assert p.for_module("v_absorb").weight_dtype == "bf16"  # kv_b_proj's weights
    assert p.for_module("experts") is p
    assert p.kept_gemm_dtypes == ("bf16", "fp8")


@pytest.mark.parametrize("concurrency", [16, 256])
def test_the_search_equals_the_estimate_on_an_fp4_deepseek_plan(concurrency: int) -> None:
    plan = Plan(tp=1, ep=8, dp=8)
    common = {"tp": 1, "ep": 8, "dp": 8, "weight_dtype": "fp4", "act_dtype": "fp4", "kv_dtype": "fp8", **W}
    est = genmodel.estimate(
        "deepseek-v3", "b200", concurrency=concurrency, serving="closed-form", warmup_replay=False, **common
    )
    assert est.serving is not None and est.precision == _kept()
    served = serving_model("closed-form", device=load_hardware("b200").device)
    assert isinstance(served, ClosedForm)
    b = est.serving.decode_batch / plan.dp
    layout, arrays = _evaluate(
        DS,
        load_hardware("b200"),
        plan,
        _kept(),
        W["input_tokens"],
        W["output_tokens"],
        Slo(),
        genmodel.RunOptions(),
        collections.Counter(),
        batches=np.array([1.0, b, b + 1]),
        wave=served.wave,
    )
    assert layout is not None
    assert arrays["ttft_s"][1] == pytest.approx(est.ttft_s, rel=1e-9)
    assert arrays["tpot_s"][1] == pytest.approx(est.tpot_s, rel=1e-9)
    assert layout.max_batch == est.serving.max_running
    # (the rule is in force: all-fp4 projections give another figure)
    _, plain = _evaluate(
        DS,
        load_hardware("b200"),
        plan,
        FP4,
        W["input_tokens"],
        W["output_tokens"],
        Slo(),
        genmodel.RunOptions(),
        collections.Counter(),
        batches=np.array([b]),
        wave=served.wave,
    )
    assert plain["tpot_s"][0] < arrays["tpot_s"][1]


def test_the_simulated_steps_cost_the_kept_modules() -> None:
    args = {"tp": 1, "ep": 8, "dp": 8, "weight_dtype": "fp4", "act_dtype": "fp4", "kv_dtype": "fp8"}
    kw = {"input_tokens": 512, "output_tokens": 32, "concurrency": 8, "requests_per_client": 2, **args}
    kept = genmodel.simulate("deepseek-v3", "b200", **kw)
    plain = genmodel.simulate("deepseek-v3", "b200", keep_modules="none", **kw)
    assert plain.tpot_s.mean < kept.tpot_s.mean


@pytest.mark.parametrize("text", ["attention=bf17", "foo=bf16", "attention", "", "attention=bf16,,"])
def test_bad_keep_modules_are_refused(text: str) -> None:
    with pytest.raises(SpecError, match="keep_modules"):
        parse_keep_modules(text)
    base = ["estimate", "--model", "deepseek-v3", "--hardware", "b200", "--devices", "8", "--ep", "8"]
    base += ["--dp", "8", "--input-tokens", "100", "--output-tokens", "10", "--weight-dtype", "fp4"]
    assert "keep_modules" in cli_bad([*base, "--keep-modules", text])


def test_a_model_file_with_an_unknown_kept_module_is_refused() -> None:
    with pytest.raises(SpecError, match=r"checkpoints\.fp4\.keep: module='mlp'"):
        check_keep_rule("checkpoints.fp4.keep", (("mlp", "bf16"),))


def test_the_cli_takes_keep_modules_on_estimate_and_plan() -> None:
    base = [
        "--model",
        "deepseek-v3",
        "--hardware",
        "b200",
        "--input-tokens",
        "1000",
        "--output-tokens",
        "100",
    ]
    base += ["--weight-dtype", "fp4", "--act-dtype", "fp4"]
    layout = ["--devices", "8", "--ep", "8", "--dp", "8"]
    out = cli_ok(["estimate", *base, *layout, "--keep-modules", "o_proj=fp4", "--format", "json"])
    assert json.loads(out)["keep_modules"]["o_proj"] == "fp4"
    slo = ["--ttft-slo", "10s", "--tpot-slo", "1s", "--recheck", "0"]
    out = cli_ok(["plan", *base, "--devices", "8", *slo, "--keep-modules", "none", "--format", "json"])
    assert '"best"' in out


@pytest.mark.parametrize(
    ("model", "dtype"),
    [
        # ModelOpt's NVFP4 recipe (NVFP4_DEFAULT_CFG: '*lm_head*' disabled) as NVIDIA's
        # Llama-3.3-70B-Instruct-FP4 checkpoint was made with it; the embedding is no linear layer
        ("llama-3.1-70b", "bf16"),
        # NVIDIA's MLPerf llama2-70b harness quantises the float16 chat model with that recipe
        ("llama-2-70b", "fp16"),
    ],
)
def test_llama_fp4_checkpoints_keep_the_lm_head_and_embedding(model: str, dtype: str) -> None:
    m = load_model(model)
    kept = default_precision("fp4", "fp4", "fp8", model=m)
    assert dict(kept.keep_modules) == {"lm_head": dtype, "embedding": dtype}
    assert default_precision("fp8", model=m).keep_modules == ()  # the rule is the fp4 checkpoint's only
    step = {"num_seqs": 8, "new_tokens": 1, "past_tokens": 1000}
    ops = {op.name: op for op in forward_ops(m, kept, **step)}
    plain = {op.name: op for op in forward_ops(m, FP4, **step)}
    d, vocab = m.hidden_size, m.vocab_size
    assert ops["lm_head"].weight_bytes == pytest.approx(d * vocab * 2)
    assert plain["lm_head"].weight_bytes == pytest.approx(d * vocab * WEIGHT_DTYPE_BYTES["fp4"])
    # the transformer blocks' linear layers stay fp4
    assert all(ops[n].weight_bytes == plain[n].weight_bytes for n in ops if n not in ("lm_head", "embedding"))
    plan = Plan(tp=1)
    extra = weight_bytes_per_device(m, kept, plan) - weight_bytes_per_device(m, FP4, plan)
    assert extra == pytest.approx(2 * vocab * d * (2 - WEIGHT_DTYPE_BYTES["fp4"]), rel=1e-12)


def test_p115_runs_the_checkpoint_its_post_names() -> None:
    # vLLM's GB300 post serves nvidia/DeepSeek-R1-0528-NVFP4: the deepseek-v3 fp4 rule, said so
    with open(genmodel.public_options_path(), newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["id"] == "P115")
    assert row["keep_modules"] == "checkpoint"
    assert "nvidia/DeepSeek-R1-0528-NVFP4" in row["source"]
    # the deepseek-v3 fp4 rule's checkpoint
    assert "nvidia/DeepSeek-R1-0528-NVFP4" in (_MODELS / "deepseek-v3.yaml").read_text()
