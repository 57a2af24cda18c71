"""genmodel.io: the YAML database, HuggingFace config.json import, and error messages naming the field."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from _devices import ALL_DEVICES

import genmodel
from genmodel import InfeasibleError, SpecError, UnknownEntryError
from genmodel.io import load_model_yaml, model_from_hf_config, read_yaml_file
from genmodel.io._schema import DeviceY, MemoryTierY, ModelY

# the model ids other code may rely on (docs/cli.md, "Interfaces"); the hardware ids: tests/_devices.py
DESIGN_MODELS = [
    "llama-2-7b",
    "llama-2-13b",
    "llama-2-70b",
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.1-405b",
    "llama-3.2-1b",
    "llama-3.2-3b",
    "qwen2.5-7b",
    "qwen3-32b",
    "mixtral-8x7b",
    "mixtral-8x22b",
    "qwen3-30b-a3b",
    "qwen3-235b-a22b",
    "deepseek-v3",
]
DATA = Path(genmodel.__file__).resolve().parent.parent


# ---- the database loads ------------------------------------------------------------------------------


def test_every_database_file_is_listed_and_loads() -> None:
    kinds = {
        "hardware": genmodel.load_device,
        "memory tier": genmodel.load_memory_tier,
        "model": genmodel.load_model,
        "scenario": genmodel.load_scenario,
    }
    for kind, load in kinds.items():
        ids = genmodel.list_ids(kind)
        assert ids, kind
        for i in ids:
            assert load(i).id == i  # type: ignore[operator]


def test_list_ids_match_the_yaml_files_on_disk() -> None:
    folders = {
        "hardware": "hardware_db/devices",
        "memory tier": "hardware_db/memory",
        "model": "workloads/models",
        "scenario": "workloads/scenarios",
    }
    for kind, folder in folders.items():
        on_disk = sorted(p.stem for p in (DATA / folder).glob("*.yaml"))
        if on_disk:  # a source checkout (editable install); a wheel has no such tree
            assert genmodel.list_ids(kind) == on_disk


@pytest.mark.parametrize("model_id", DESIGN_MODELS)
def test_design_model_ids_resolve(model_id: str) -> None:
    m = genmodel.load_model(model_id)
    assert m.id == model_id
    assert len(m.source) >= 3


@pytest.mark.parametrize("hardware_id", ALL_DEVICES)
def test_design_hardware_ids_resolve_with_a_source_in_every_section(hardware_id: str) -> None:
    assert genmodel.load_device(hardware_id).id == hardware_id
    y = genmodel.load_device_yaml(hardware_id)
    sections: list[Any] = [y.compute, y.memory.local, y.power, y.price, y.efficiency]
    sections += [
        s for s in (y.memory.host, y.interconnect.scale_up, y.interconnect.scale_out) if s is not None
    ]
    for s in sections:
        assert s.source.strip(), f"{hardware_id}: {type(s).__name__} has no source"


def test_hardware_list_is_exactly_the_design_list() -> None:
    assert sorted(genmodel.list_ids("hardware")) == sorted(ALL_DEVICES)
    assert len(set(ALL_DEVICES)) == len(ALL_DEVICES)  # no device in two batches


@pytest.mark.parametrize(
    ("alias", "target"), [("llama-3.3-70b", "llama-3.1-70b"), ("deepseek-r1", "deepseek-v3")]
)
def test_aliases_resolve(alias: str, target: str) -> None:
    assert genmodel.load_model(alias) == genmodel.load_model(target)


def test_hardware_alias_resolves() -> None:
    assert genmodel.load_device("h100") == genmodel.load_device("h100-sxm")


def test_scenario_units_are_converted() -> None:
    for i in genmodel.list_ids("scenario"):
        s = genmodel.load_scenario(i)
        assert s.input_tokens >= 1
        if s.tpot_slo_s is not None:
            assert 1e-4 < s.tpot_slo_s < 10  # milliseconds in YAML, seconds inside


# ---- errors --------------------------------------------------------------------------------------------


def test_unknown_ids_name_the_closest() -> None:
    with pytest.raises(UnknownEntryError, match=r"did you mean.*llama-3\.1-8b") as info:
        genmodel.load_model("llama-3.1-7b")
    assert info.value.kind == "model"
    assert "llama-3.1-8b" in info.value.closest
    with pytest.raises(UnknownEntryError, match=r"did you mean.*h100-sxm"):
        genmodel.load_device("h100-sxn")
    with pytest.raises(UnknownEntryError):
        genmodel.load_scenario("no-such-scenario")
    with pytest.raises(LookupError):  # UnknownEntryError is a LookupError for callers that catch that
        genmodel.load_device("zzzzzz")


def test_estimate_errors() -> None:
    kw = {"input_tokens": 100, "output_tokens": 100}
    with pytest.raises(InfeasibleError, match="tp=3 must divide"):
        genmodel.estimate("llama-3.1-8b", "h100-sxm", tp=3, **kw)
    with pytest.raises(InfeasibleError, match=r"llama-3\.1-405b"):
        genmodel.estimate("llama-3.1-405b", "a100-sxm-40gb", **kw)
    for bad in ({"input_tokens": 0}, {"output_tokens": -5}, {"input_tokens": 1.5}):
        with pytest.raises(SpecError, match=next(iter(bad))):
            genmodel.estimate("llama-3.1-8b", "h100-sxm", **{**kw, **bad})  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="devices=3 must equal tp\\*pp\\*dp\\*cp=2"):
        genmodel.estimate("llama-3.1-8b", "h100-sxm", tp=2, devices=3, **kw)
    with pytest.raises(SpecError, match="batch='lots'"):
        genmodel.estimate("llama-3.1-8b", "h100-sxm", batch="lots", **kw)
    with pytest.raises(SpecError, match="batch=0"):
        genmodel.estimate("llama-3.1-8b", "h100-sxm", batch=0, **kw)
    with pytest.raises(SpecError, match="weight_dtype='fp6'"):
        genmodel.estimate("llama-3.1-8b", "h100-sxm", weight_dtype="fp6", **kw)
    with pytest.raises(SpecError, match="not both"):
        genmodel.estimate("llama-3.1-8b", "h100-sxm", concurrency=8, batch=2, **kw)
    with pytest.raises(SpecError, match="concurrency=0"):
        genmodel.estimate("llama-3.1-8b", "h100-sxm", concurrency=0, **kw)
    with pytest.raises(SpecError, match="output_tokens=1 must be >= 2 in serving mode"):
        genmodel.estimate("llama-3.1-8b", "h100-sxm", concurrency=8, input_tokens=8, output_tokens=1)


def _device_doc() -> dict[str, Any]:
    text = (DATA / "hardware_db/devices/h100-sxm.yaml").read_text(encoding="utf-8")
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


def test_the_unmodified_device_file_validates(tmp_path: Path) -> None:
    path = tmp_path / "h100-sxm.yaml"
    path.write_text(yaml.safe_dump(_device_doc()), encoding="utf-8")
    y = read_yaml_file(path, DeviceY)
    assert y.id == "h100-sxm"
    assert genmodel.io.device_from_yaml(y) == genmodel.load_device("h100-sxm")


def test_unknown_yaml_key_is_named_with_its_path(tmp_path: Path) -> None:
    doc = _device_doc()
    doc["memory"]["local"]["bandwith_tb_per_s"] = 3.35  # misspelt
    path = tmp_path / "h100-sxm.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(SpecError, match=r"memory\.local\.bandwith_tb_per_s: unknown field"):
        read_yaml_file(path, DeviceY)


def test_negative_capacity_is_named(tmp_path: Path) -> None:
    doc = _device_doc()
    doc["memory"]["local"]["capacity_gib"] = -80
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(SpecError, match=r"memory\.local\.capacity_gib=-80"):
        read_yaml_file(path, DeviceY)


def test_missing_field_and_bad_yaml_are_reported(tmp_path: Path) -> None:
    doc = _device_doc()
    del doc["efficiency"]["memory_frac"]
    path = tmp_path / "missing.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(SpecError, match=r"efficiency\.memory_frac: required field is missing"):
        read_yaml_file(path, DeviceY)
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: [unclosed\n", encoding="utf-8")
    with pytest.raises(SpecError, match="not valid YAML"):
        read_yaml_file(broken, DeviceY)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n", encoding="utf-8")
    with pytest.raises(SpecError, match="mapping"):
        read_yaml_file(scalar, MemoryTierY)


def test_malformed_config_json(tmp_path: Path) -> None:
    not_json = tmp_path / "config.json"
    not_json.write_text("{ hidden_size: 4096", encoding="utf-8")
    with pytest.raises(SpecError, match="not valid JSON"):
        genmodel.load_hf_config(not_json)
    config = load_model_yaml("llama-3.1-8b").config.model_dump(exclude_none=True)
    del config["hidden_size"]
    missing = tmp_path / "missing" / "config.json"
    missing.parent.mkdir()
    missing.write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(SpecError, match="hidden_size: required field is missing"):
        genmodel.load_hf_config(missing)
    with pytest.raises(SpecError, match="file not found"):
        genmodel.load_hf_config(tmp_path / "nope.json")
    array = tmp_path / "array.json"
    array.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(SpecError, match="JSON object"):
        genmodel.load_hf_config(array)


def test_a_model_directory_without_a_config_json_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a HuggingFace snapshot folder given before its config.json was downloaded was 'not known',
    # with the list of bundled ids, as if the path were a misspelt id
    folder = tmp_path / "my-model"
    folder.mkdir()
    with pytest.raises(SpecError, match=r"model='.*my-model' is a directory with no config\.json in it"):
        genmodel.load_model(str(folder))
    monkeypatch.chdir(tmp_path)  # a folder named as a bundled id is still the id
    (tmp_path / "llama-3.1-8b").mkdir()
    assert genmodel.load_model("llama-3.1-8b").id == "llama-3.1-8b"


@pytest.mark.parametrize(
    "model_id",
    [
        "llama-3.1-8b",
        "deepseek-v3",
        "qwen3-235b-a22b",
        "mixtral-8x7b",
        "qwen3-32b",
        "gpt-oss-120b",
        "kimi-k2",
    ],
)
def test_config_json_reproduces_the_database_model(tmp_path: Path, model_id: str) -> None:
    config = load_model_yaml(model_id).config.model_dump()
    config["some_key_genmodel_ignores"] = {"rope_scaling": 8}
    path = tmp_path / model_id / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(config), encoding="utf-8")
    from_json = genmodel.load_hf_config(path)
    assert from_json.id == model_id  # the folder name
    reference = genmodel.load_model(model_id)
    # (the modules a published checkpoint keeps wider are the database's, not the config.json's)
    same = {"id": reference.id, "name": reference.name, "source": reference.source}
    assert from_json.kept_modules == ()
    assert dataclasses.replace(from_json, **same, kept_modules=reference.kept_modules) == reference
    # estimate accepts a config.json path as the model
    assert genmodel.load_model(str(path)) == from_json


def test_multimodal_text_config_is_unwrapped(tmp_path: Path) -> None:
    config = load_model_yaml("llama-3.1-8b").config.model_dump(exclude_none=True)
    path = tmp_path / "vlm.json"
    path.write_text(json.dumps({"architectures": ["X"], "text_config": config}), encoding="utf-8")
    m = genmodel.load_hf_config(path, model_id="vlm")
    assert m.architecture == "X"  # the wrapper's class, which an engine's per-architecture count keys on
    assert dataclasses.replace(
        m, id="llama-3.1-8b", name="", source="", architecture=""
    ) == dataclasses.replace(genmodel.load_model("llama-3.1-8b"), name="", source="", architecture="")


def test_hf_config_to_yaml_round_trips(tmp_path: Path) -> None:
    config = load_model_yaml("deepseek-v3").config.model_dump(exclude_none=True)
    src = tmp_path / "DeepSeek-V3" / "config.json"
    src.parent.mkdir()
    src.write_text(json.dumps({**config, "quantization_config": {"fmt": "e4m3"}}), encoding="utf-8")
    text = genmodel.hf_config_to_yaml(src, model_id="my-deepseek")
    out = tmp_path / "my-deepseek.yaml"
    out.write_text(text, encoding="utf-8")
    y = read_yaml_file(out, ModelY)
    assert y.id == "my-deepseek"
    back = model_from_hf_config(y.config, model_id=y.id)
    ref = genmodel.load_model("deepseek-v3")
    # (the database file's checkpoints: rule is not part of a config.json)
    assert (
        dataclasses.replace(back, id=ref.id, name=ref.name, source=ref.source, kept_modules=ref.kept_modules)
        == ref
    )


@pytest.mark.parametrize(
    ("model_id", "folder", "expected"),
    [
        ("My Model", "x", "my-model"),
        (None, "Llama 3 (8B)", "llama-3-8b"),
        ("Qwen/Qwen2.5-7B", "x", "qwen-qwen2.5-7b"),
    ],
)
def test_hf_config_to_yaml_gives_an_id_that_loads_back(
    tmp_path: Path, model_id: str | None, folder: str, expected: str
) -> None:
    # 'Llama 3 (8B)' became the id 'llama-3-(8b)', which the model schema then refused to load
    config = load_model_yaml("llama-3.2-1b").config.model_dump(exclude_none=True)
    src = tmp_path / folder / "config.json"
    src.parent.mkdir()
    src.write_text(json.dumps(config), encoding="utf-8")
    out = tmp_path / "m.yaml"
    out.write_text(genmodel.hf_config_to_yaml(src, model_id=model_id), encoding="utf-8")
    assert read_yaml_file(out, ModelY).id == expected


def test_hf_config_to_yaml_refuses_an_id_without_a_letter_or_digit(tmp_path: Path) -> None:
    src = tmp_path / "config.json"
    src.write_text(json.dumps(load_model_yaml("llama-3.2-1b").config.model_dump(exclude_none=True)))
    with pytest.raises(genmodel.SpecError, match="model_id='///' has no letter or digit"):
        genmodel.hf_config_to_yaml(src, model_id="///")


def test_sliding_window_configs() -> None:
    base = load_model_yaml("llama-3.1-8b").config
    mistral = base.model_copy(update={"sliding_window": 4096, "max_position_embeddings": 32768})
    m = model_from_hf_config(mistral, model_id="m")
    assert m.sliding_window == 4096
    assert m.num_sliding_window_layers == m.num_layers
    off = base.model_copy(update={"sliding_window": 4096, "use_sliding_window": False})
    assert model_from_hf_config(off, model_id="q").num_sliding_window_layers == 0
    qwen2 = base.model_copy(
        update={
            "sliding_window": 4096,
            "use_sliding_window": True,
            "max_window_layers": 28,
            "max_position_embeddings": 32768,
        }
    )
    assert model_from_hf_config(qwen2, model_id="q").num_sliding_window_layers == base.num_hidden_layers - 28


# huggingface.co/openai/gpt-oss-20b/blob/main/config.json as published (transformers 4.55.0.dev0), every key
GPT_OSS_20B = {
    "architectures": ["GptOssForCausalLM"],
    "attention_bias": True,
    "attention_dropout": 0.0,
    "eos_token_id": 200002,
    "experts_per_token": 4,
    "head_dim": 64,
    "hidden_act": "silu",
    "hidden_size": 2880,
    "initial_context_length": 4096,
    "initializer_range": 0.02,
    "intermediate_size": 2880,
    "layer_types": ["sliding_attention", "full_attention"] * 12,
    "max_position_embeddings": 131072,
    "model_type": "gpt_oss",
    "num_attention_heads": 64,
    "num_experts_per_tok": 4,
    "num_hidden_layers": 24,
    "num_key_value_heads": 8,
    "num_local_experts": 32,
    "output_router_logits": False,
    "pad_token_id": 199999,
    "quantization_config": {
        "modules_to_not_convert": [
            "model.layers.*.self_attn",
            "model.layers.*.mlp.router",
            "model.embed_tokens",
            "lm_head",
        ],
        "quant_method": "mxfp4",
    },
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "beta_fast": 32.0,
        "beta_slow": 1.0,
        "factor": 32.0,
        "original_max_position_embeddings": 4096,
        "rope_type": "yarn",
        "truncate": False,
    },
    "rope_theta": 150000,
    "router_aux_loss_coef": 0.9,
    "sliding_window": 128,
    "swiglu_limit": 7.0,
    "tie_word_embeddings": False,
    "transformers_version": "4.55.0.dev0",
    "use_cache": True,
    "vocab_size": 201088,
}


def test_published_gpt_oss_config_json_reads_layer_types_and_experts(tmp_path: Path) -> None:
    path = tmp_path / "gpt-oss-20b" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(GPT_OSS_20B), encoding="utf-8")
    m = genmodel.load_hf_config(path)
    # alternating layer_types: half the 24 blocks attend to the last 128 tokens, not all 24
    assert (m.sliding_window, m.num_sliding_window_layers, m.num_layers) == (128, 12, 24)
    assert m.moe is not None
    assert (m.moe.num_experts, m.moe.num_experts_per_tok, m.moe.expert_intermediate_size) == (32, 4, 2880)
    assert m.num_dense_layers == 0 and m.moe.shared_intermediate_size == 0
    a = m.attention
    assert isinstance(a, genmodel.GroupedQueryAttention)
    assert (a.num_attention_heads, a.num_kv_heads, a.head_dim, a.qkv_bias) == (64, 8, 64, True)
    db = genmodel.load_model("gpt-oss-20b")
    assert (
        dataclasses.replace(m, id=db.id, name=db.name, source=db.source, kept_modules=db.kept_modules) == db
    )


def test_layer_types_decide_the_sliding_window_layers() -> None:
    base = load_model_yaml("gpt-oss-120b").config
    assert model_from_hf_config(base, model_id="g").num_sliding_window_layers == 18
    # without layer_types a window applies to every block (Mistral's spelling): 36, not the published 18
    assert (
        model_from_hf_config(
            base.model_copy(update={"layer_types": None}), model_id="g"
        ).num_sliding_window_layers
        == 36
    )
    every = base.model_copy(update={"layer_types": ["sliding_attention"] * 36})
    assert model_from_hf_config(every, model_id="g").num_sliding_window_layers == 36
    # transformers 5 writes layer_types for every Qwen config: all full attention, window or not
    full = load_model_yaml("qwen3-32b").config.model_copy(
        update={"layer_types": ["full_attention"] * 64, "sliding_window": 4096}
    )
    assert model_from_hf_config(full, model_id="q").num_sliding_window_layers == 0
    # a window as long as the context changes nothing
    long = base.model_copy(update={"sliding_window": 131072})
    assert model_from_hf_config(long, model_id="g").num_sliding_window_layers == 0
    # top-k in gpt-oss's other spelling alone
    alone = base.model_copy(update={"num_experts_per_tok": None})
    moe = model_from_hf_config(alone, model_id="g").moe
    assert moe is not None and moe.num_experts_per_tok == 4


@pytest.mark.parametrize(
    ("model", "update", "message"),
    [
        (
            "gpt-oss-20b",
            {"layer_types": ["full_attention"] * 23},
            "layer_types lists 23 entries, num_hidden_layers=24",
        ),
        (
            "gpt-oss-20b",
            {"layer_types": ["linear_attention", "full_attention"] * 12},
            "layer_types='linear_attention' is not modelled",
        ),
        (
            "gpt-oss-20b",
            {"sliding_window": None},
            "layer_types lists 'sliding_attention' but sliding_window is not set",
        ),
        ("gpt-oss-20b", {"experts_per_token": 2}, "experts_per_token=2 contradicts num_experts_per_tok=4"),
        ("mixtral-8x7b", {"num_experts_per_tok": None}, "num_experts_per_tok is required for an MoE config"),
        (
            "qwen3-30b-a3b",
            {"moe_intermediate_size": None, "intermediate_size": None},
            "moe_intermediate_size or intermediate_size is required",
        ),
        ("deepseek-v3", {"v_head_dim": None}, r"MLA config \(kv_lora_rank set\) lacks v_head_dim"),
        (
            "llama-3.1-8b",
            {"head_dim": None, "num_attention_heads": 30, "num_key_value_heads": 6},
            "head_dim is missing and num_attention_heads=30 does not divide hidden_size=4096",
        ),
        ("llama-3.1-8b", {"intermediate_size": None}, "intermediate_size is required for dense layers"),
    ],
)
def test_hf_config_missing_fields_are_named(model: str, update: dict[str, Any], message: str) -> None:
    config = load_model_yaml(model).config.model_copy(update=update)
    with pytest.raises(SpecError, match=f"model x: {message}"):
        model_from_hf_config(config, model_id="x")
