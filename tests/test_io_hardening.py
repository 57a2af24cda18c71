"""genmodel.io on bad input: a corrupted database copy, hostile YAML and config.json, ids too long.

Each test builds its own copy of the shipped database in ``tmp_path`` and passes it as ``db=`` (the
API), or points the shipped folders at it (the CLI, which always reads the shipped database). Every
failure must be one GenModelError naming the file, and on the command line exit code 2, one line,
no traceback.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from _cli import cli_bad, cli_ok

import genmodel
from genmodel import SpecError, UnknownEntryError
from genmodel.io import (
    MAX_ID_CHARS,
    MAX_JSON_BYTES,
    MAX_YAML_ALIASES,
    MAX_YAML_BYTES,
    _db,
    _load,
    list_ids,
    load_device,
    load_device_yaml,
    load_hardware,
    load_hf_config,
    load_link,
    load_memory_tier,
    load_model,
    load_scenario,
    load_system,
    read_yaml_file,
)
from genmodel.io._schema import DeviceY

# "billion laughs": nine levels of nine aliases each, 9**9 strings once expanded
ALIAS_BOMB = "lol1: &l1 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(2, 10)
)
ESTIMATE = ["estimate", "--model", "llama-3.1-8b", "--input-tokens", "100", "--output-tokens", "10"]


def _estimate_of(model: str) -> list[str]:
    """The smallest estimate of ``model`` (an id or a config file) on an H100: a command that fails
    where the model is read."""
    return [
        "estimate",
        "--model",
        model,
        "--hardware",
        "h100-sxm",
        "--input-tokens",
        "1",
        "--output-tokens",
        "2",
    ]


def _copy_db(root: Path) -> Path:
    """A copy of the shipped database under ``root`` (``hardware_db/``, ``workloads/``)."""
    for top in ("hardware_db", "workloads"):
        shutil.copytree(Path(str(resources.files(f"genmodel.{top}"))), root / top)
    return root


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return _copy_db(tmp_path / "db")


def _edit(db: Path, relative: str, old: str, new: str) -> None:
    path = db / relative
    text = path.read_text(encoding="utf-8")
    assert re.search(old, text, flags=re.M), f"{relative}: {old!r} not found"
    path.write_text(re.sub(old, new, text, count=1, flags=re.M), encoding="utf-8")


def _clear_caches() -> None:
    for module in (_db, _load):
        for value in vars(module).values():
            if hasattr(value, "cache_clear"):
                value.cache_clear()


@pytest.fixture
def shipped(db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The copy in ``db`` read as if it were the shipped database (for the CLI)."""
    _clear_caches()
    monkeypatch.setattr(_db, "shipped_folder", lambda kind: db / _db._FOLDERS[kind][1])
    yield db
    _clear_caches()  # the next test reads the real shipped database again


# ---- YAML limits ---------------------------------------------------------------------------------------


def test_an_alias_bomb_fails_fast_naming_the_file(db: Path) -> None:
    with (db / "hardware_db/devices/b200.yaml").open("a", encoding="utf-8") as f:
        f.write(ALIAS_BOMB)
    with pytest.raises(SpecError, match=rf"b200\.yaml: YAML alias references .* at most {MAX_YAML_ALIASES}"):
        load_device("b200", db=db)
    assert load_device("h100", db=db).id == "h100-sxm"  # the other files still load


def test_a_few_anchors_and_aliases_are_allowed(db: Path) -> None:
    source = "  source: NVIDIA H100 datasheet (SXM up to 700 W)"
    _edit(
        db,
        "hardware_db/devices/h100-sxm.yaml",
        re.escape(source),
        "  source: &datasheet NVIDIA H100 datasheet",
    )
    _edit(
        db, "hardware_db/devices/h100-sxm.yaml", r"^  source: indicative on-demand.*$", "  source: *datasheet"
    )
    y = read_yaml_file(db / "hardware_db/devices/h100-sxm.yaml", DeviceY)
    assert y.price.source == y.power.source == "NVIDIA H100 datasheet"
    assert load_device("h100-sxm", db=db) == load_device("h100-sxm")


def test_a_self_referencing_alias_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("id: &a [*a]\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"loop\.yaml"):
        read_yaml_file(path, DeviceY)


def test_a_file_over_the_size_limit_is_refused_before_parsing(db: Path) -> None:
    path = db / "hardware_db/devices/l40s.yaml"
    with path.open("a", encoding="utf-8") as f:
        f.write("# padding\n" * (MAX_YAML_BYTES // 10 + 1))
    with pytest.raises(SpecError, match=rf"l40s\.yaml: file size must be at most {MAX_YAML_BYTES} bytes"):
        load_device("l40s", db=db)
    with pytest.raises(SpecError, match="at most 1048576 bytes"):
        read_yaml_file(path, DeviceY)


def test_infinite_figures_are_refused(db: Path) -> None:
    _edit(db, "hardware_db/devices/h100-sxm.yaml", r"usd_per_hour: [0-9.]+", "usd_per_hour: .inf")
    with pytest.raises(SpecError, match=r"h100-sxm\.yaml: price\.usd_per_hour=inf"):
        load_device("h100-sxm", db=db)


def test_bound_violations_read_name_value_must(db: Path) -> None:
    _edit(db, "hardware_db/devices/h100-sxm.yaml", r"tdp_w: [0-9.]+", "tdp_w: -700")
    with pytest.raises(SpecError, match=r"h100-sxm\.yaml: power\.tdp_w=-700 must be > 0"):
        load_device("h100-sxm", db=db)


# ---- one bad file: named, and the rest of the database still works -------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("id: [unclosed\n", r"not valid YAML: .*\(line \d+, column \d+\)"),
        (b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary", r"not UTF-8 text \(byte 0x89 at offset 0\)"),
        ("- a list\n- not a mapping\n", "expected a mapping at the top level, got a list"),
        ("", "expected a mapping at the top level, got an empty document"),
    ],
)
def test_a_malformed_file_is_named_and_the_others_still_load(
    db: Path, content: str | bytes, problem: str
) -> None:
    path = db / "hardware_db/devices/l40s.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(SpecError, match=rf"^\S*/hardware_db/devices/l40s\.yaml: {problem}") as info:
        load_device("l40s", db=db)
    assert "\n" not in str(info.value)
    # lookups that do not need the file work: ids, aliases, systems, suggestions, listings
    assert load_device("h100", db=db).id == "h100-sxm"
    assert load_hardware("h200-sxm", db=db).id == "dgx-h200"
    assert "l40s" in list_ids("hardware", db=db)
    assert list_ids("power mode", db=db) == list_ids("power mode")
    # an unknown id might have been in the bad file: the error says which file could not be read
    with pytest.raises(UnknownEntryError, match=r"did you mean.*could not read .*l40s\.yaml"):
        load_device("h100-sxn", db=db)


def test_aliases_that_are_not_a_list_are_named(db: Path) -> None:
    _edit(db, "hardware_db/devices/rtx-4090.yaml", r"^aliases:.*$", "aliases: 5")
    with pytest.raises(SpecError, match=r"rtx-4090\.yaml: aliases=5 must be a list of ids"):
        load_device("rtx-4090", db=db)
    assert load_device("a100", db=db).id == "a100-sxm-80gb"


def test_a_malformed_memory_tier_or_link_is_named(db: Path) -> None:
    (db / "hardware_db/links/pcie-gen5-x16.yaml").write_text("bandwidth_gb_per_s: [\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"links/pcie-gen5-x16\.yaml: not valid YAML"):
        load_link("pcie-gen5-x16", db=db)
    _edit(db, "hardware_db/memory/cxl-micron-cz120-128gb.yaml", r"^link: .*$", "link: cxl9-x64")
    with pytest.raises(SpecError, match=r"cxl-micron-cz120-128gb\.yaml: link: link='cxl9-x64' is not known"):
        load_memory_tier("cxl-micron-cz120-128gb", db=db)


def test_a_file_whose_id_is_not_its_name_is_named(db: Path) -> None:
    _edit(db, "workloads/scenarios/chat.yaml", r"^id: chat$", "id: chatty")
    with pytest.raises(SpecError, match=r"scenarios/chat\.yaml: id='chatty' must equal the file name 'chat'"):
        load_scenario("chat", db=db)


# ---- a name claimed by two files -----------------------------------------------------------------------


def test_a_duplicate_alias_names_both_files(db: Path) -> None:
    _edit(db, "hardware_db/devices/h200-sxm.yaml", r"^aliases: \[", "aliases: [h100, ")
    message = (
        r"hardware='h100' must name one entry, but .*h100-sxm\.yaml \(alias\) and .*h200-sxm\.yaml \(alias\)"
    )
    with pytest.raises(SpecError, match=message):
        load_device("h100", db=db)
    with pytest.raises(SpecError, match=message):
        load_hardware("H100", db=db)
    assert load_device("h200", db=db).id == "h200-sxm"  # the names only one file claims still work


def test_an_alias_equal_to_another_files_id_names_both_files(db: Path) -> None:
    _edit(db, "hardware_db/devices/h200-sxm.yaml", r"^aliases: \[", "aliases: [h100-sxm, ")
    with pytest.raises(SpecError, match=r"h100-sxm\.yaml \(id\) and .*h200-sxm\.yaml \(alias\)"):
        load_hardware("h100-sxm", db=db)


def test_a_name_claimed_by_a_device_and_a_system_names_both_files(db: Path) -> None:
    _edit(db, "hardware_db/devices/h100-sxm.yaml", r"^aliases: \[", "aliases: [hgx-h100, ")
    with pytest.raises(
        SpecError, match=r"devices/h100-sxm\.yaml \(alias\) and .*systems/dgx-h100\.yaml \(alias\)"
    ):
        load_hardware("hgx-h100", db=db)


def test_a_duplicate_model_alias_names_both_files(db: Path) -> None:
    _edit(db, "workloads/models/llama-3.1-8b.yaml", r"^aliases: \[", "aliases: [llama-3.3-70b, ")
    with pytest.raises(
        SpecError, match=r"llama-3\.1-70b\.yaml \(alias\) and .*llama-3\.1-8b\.yaml \(alias\)"
    ):
        load_model("llama-3.3-70b", db=db)


# ---- a system naming a device the database lacks -------------------------------------------------------


def test_a_system_naming_an_unknown_device_is_an_error(db: Path) -> None:
    _edit(db, "hardware_db/systems/dgx-h100.yaml", r"^device: h100-sxm$", "device: h100-sxmm")
    with pytest.raises(
        SpecError, match=r"systems/dgx-h100\.yaml: device: .*'h100-sxmm' is not known.*h100-sxm"
    ):
        load_system("dgx-h100", db=db)
    # the device's own id used to fall back silently to a system built from its own links
    with pytest.raises(SpecError, match=r"systems/dgx-h100\.yaml: device: .*'h100-sxmm'"):
        load_hardware("h100-sxm", db=db)


def test_a_system_may_name_its_device_by_alias(db: Path) -> None:
    _edit(db, "hardware_db/systems/dgx-h100.yaml", r"^device: h100-sxm$", "device: h100")
    assert load_hardware("h100-sxm", db=db) == load_hardware("h100-sxm")


def test_a_malformed_system_file_is_named_for_a_device_lookup(db: Path) -> None:
    (db / "hardware_db/systems/dgx-b200.yaml").write_text("id: dgx-b200\n  bad: indent\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"systems/dgx-b200\.yaml: not valid YAML"):
        load_hardware("h100-sxm", db=db)  # any system could be the one built from h100-sxm
    assert load_hardware("dgx-h100", db=db).id == "dgx-h100"  # a system by its own id does not need it


# ---- ids -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "load",
    [
        load_device,
        load_device_yaml,
        load_hardware,
        load_system,
        load_memory_tier,
        load_link,
        load_model,
        load_scenario,
    ],
)
def test_an_id_longer_than_the_limit_is_a_spec_error(load: object) -> None:
    name = "x" * (MAX_ID_CHARS + 1)
    with pytest.raises(
        SpecError, match=rf"={name[:40]!r}\.\.\. \({MAX_ID_CHARS + 1} characters\) must be an id"
    ):
        load(name)  # type: ignore[operator]


def test_ids_never_become_paths(db: Path) -> None:
    with pytest.raises(UnknownEntryError):
        load_device("../systems/dgx-h100", db=db)
    with pytest.raises(UnknownEntryError):
        load_model("a\x00b", db=db)
    with pytest.raises(SpecError, match="must be an id"):
        load_device(42, db=db)  # type: ignore[arg-type]


def test_the_api_refuses_a_long_id_in_one_line() -> None:
    with pytest.raises(SpecError, match="must be an id of at most 255 characters"):
        genmodel.estimate("y" * 100_000, "h100-sxm", input_tokens=10, output_tokens=10)
    with pytest.raises(SpecError, match="must be an id of at most 255 characters"):
        genmodel.estimate("llama-3.1-8b", "y" * 300, input_tokens=10, output_tokens=10)


def test_a_long_config_json_path_is_read_as_a_path(tmp_path: Path) -> None:
    deep = tmp_path
    for _ in range(8):
        deep = deep / ("d" * 40)
    deep.mkdir(parents=True)
    (deep / "config.json").write_text(json.dumps(_llama_config()), encoding="utf-8")
    path = str(deep / "config.json")
    assert len(path) > MAX_ID_CHARS
    assert load_model(path).hidden_size == 4096


# ---- HuggingFace config.json ---------------------------------------------------------------------------


def _llama_config() -> dict[str, object]:
    return genmodel.io.load_model_yaml("llama-3.1-8b").config.model_dump(exclude_none=True)


def test_a_deeply_nested_config_json_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"a": ' * 100_000 + "1" + "}" * 100_000, encoding="utf-8")
    with pytest.raises(SpecError, match=r"config\.json: not valid JSON for genmodel: nested too deeply"):
        load_hf_config(path)
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(SpecError, match="nested too deeply"):
        load_model(str(path))


def test_an_oversized_config_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**_llama_config(), "pad": "x" * MAX_JSON_BYTES}), encoding="utf-8")
    with pytest.raises(SpecError, match=rf"file size must be at most {MAX_JSON_BYTES} bytes"):
        load_hf_config(path)


def test_an_integer_of_thousands_of_digits_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_llama_config()).replace("4096", "9" * 5000, 1), encoding="utf-8")
    with pytest.raises(SpecError, match="not valid JSON for genmodel"):
        load_hf_config(path)


ABSURD = [
    ("hidden_size", 10**12, r"hidden_size=1000000000000 must be <= 262144"),
    ("num_hidden_layers", 0, r"num_hidden_layers=0 must be >= 1"),
    ("num_hidden_layers", -3, r"num_hidden_layers=-3 must be >= 1"),
    ("num_hidden_layers", 10**9, r"num_hidden_layers=1000000000 must be <= 4096"),
    ("vocab_size", 10**15, r"vocab_size=1000000000000000 must be <= 4194304"),
    ("num_attention_heads", 10**7, r"num_attention_heads=10000000 must be <= 4096"),
    ("num_key_value_heads", 0, r"num_key_value_heads=0 must be >= 1"),
    ("head_dim", 10**8, r"head_dim=100000000 must be <= 4096"),
    ("intermediate_size", 10**13, r"intermediate_size=10000000000000 must be <= 1048576"),
    ("max_position_embeddings", 10**15, r"max_position_embeddings=1000000000000000 must be <= 1073741824"),
    ("num_local_experts", 10**9, r"num_local_experts=1000000000 must be <= 16384"),
    ("hidden_size", 10**40, r"hidden_size=100000\.\.\.\(41 digits\) must be <= 262144"),
    ("hidden_size", 1e400, r"hidden_size=inf: "),
]


@pytest.mark.parametrize(("field", "value", "message"), ABSURD)
def test_absurd_config_sizes_are_refused(tmp_path: Path, field: str, value: float, message: str) -> None:
    path = tmp_path / "config.json"
    config = {**_llama_config(), field: value}
    if field == "num_local_experts":
        config["num_experts_per_tok"] = 2
    path.write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(SpecError, match=rf"config\.json: {message}"):
        load_hf_config(path)
    with pytest.raises(SpecError, match=message):
        genmodel.io.hf_config_to_yaml(path)  # what `genmodel models import` prints


def test_absurd_sizes_in_a_database_model_are_named(db: Path) -> None:
    _edit(db, "workloads/models/llama-3.1-8b.yaml", r"hidden_size: 4096", "hidden_size: 1000000000000")
    with pytest.raises(
        SpecError, match=r"models/llama-3\.1-8b\.yaml: config: hidden_size=1000000000000 must be <="
    ):
        load_model("llama-3.1-8b", db=db)


def test_every_shipped_model_is_within_the_limits() -> None:
    for model_id in list_ids("model"):
        assert load_model(model_id).id == model_id


# ---- the command line: exit code 2, one line naming the file, no traceback ----------------------------


def test_cli_duplicate_alias_names_both_files(shipped: Path) -> None:
    _edit(shipped, "hardware_db/devices/h200-sxm.yaml", r"^aliases: \[", "aliases: [h100, ")
    err = cli_bad([*ESTIMATE, "--hardware", "h100"])
    assert "h100-sxm.yaml" in err
    assert "h200-sxm.yaml" in err


def test_cli_one_malformed_file_is_named_and_the_rest_works(shipped: Path) -> None:
    (shipped / "hardware_db/devices/l40s.yaml").write_bytes(b"\x00\xff binary")
    cli_ok([*ESTIMATE, "--hardware", "h100", "--format", "json"])
    assert "l40s.yaml: not UTF-8 text" in cli_bad([*ESTIMATE, "--hardware", "l40s"])
    assert "l40s.yaml" in cli_bad(["hw", "list"])
    assert "could not read hardware_db/devices/l40s.yaml" in cli_bad([*ESTIMATE, "--hardware", "l40x"])


def test_cli_alias_bomb_fails_fast(shipped: Path) -> None:
    with (shipped / "hardware_db/devices/h100-sxm.yaml").open("a", encoding="utf-8") as f:
        f.write(ALIAS_BOMB)
    assert "h100-sxm.yaml: YAML alias references" in cli_bad(["hw", "show", "h100-sxm"])
    assert "h100-sxm.yaml: YAML alias references" in cli_bad([*ESTIMATE, "--hardware", "h100"])


def test_cli_aliases_not_a_list(shipped: Path) -> None:
    _edit(shipped, "hardware_db/devices/h100-sxm.yaml", r"^aliases:.*$", "aliases: 5")
    assert "h100-sxm.yaml: aliases=5 must be a list of ids" in cli_bad([*ESTIMATE, "--hardware", "h100-sxm"])


def test_cli_system_naming_an_unknown_device(shipped: Path) -> None:
    _edit(shipped, "hardware_db/systems/dgx-h100.yaml", r"^device: h100-sxm$", "device: h100-sxmm")
    assert "dgx-h100.yaml: device:" in cli_bad([*ESTIMATE, "--hardware", "h100-sxm"])


def test_cli_long_ids_are_one_line() -> None:
    long_id = "z" * 300
    assert "must be an id of at most 255 characters" in cli_bad([*ESTIMATE, "--hardware", long_id])
    assert "must be an id of at most 255 characters" in cli_bad(_estimate_of(long_id))
    assert "must be an id of at most 255 characters" in cli_bad(["hw", "show", long_id])
    assert "must be an id of at most 255 characters" in cli_bad(["models", "show", long_id])


def test_cli_hostile_config_json(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    assert "nested too deeply" in cli_bad(["models", "import", str(deep)])
    huge = tmp_path / "huge" / "config.json"
    huge.parent.mkdir()
    huge.write_text(json.dumps({**_llama_config(), "hidden_size": 10**12}), encoding="utf-8")
    assert "hidden_size=1000000000000 must be <= 262144" in cli_bad(["models", "import", str(huge)])
    assert "hidden_size=1000000000000 must be <= 262144" in cli_bad(_estimate_of(str(huge)))


def test_cli_models_import_of_a_path_too_long_is_one_line(tmp_path: Path) -> None:
    assert "File name too long" in cli_bad(["models", "import", str(tmp_path / ("c" * 300))])
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(_llama_config()), encoding="utf-8")
    assert "id: my-model" in cli_ok(["models", "import", str(folder)])


def test_a_file_of_many_problems_is_one_short_line(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text("".join(f"key{i}: {i}\n" for i in range(2_000)), encoding="utf-8")
    with pytest.raises(
        SpecError, match=r"many\.yaml: id: required field is missing; .* and \d+ more problems$"
    ) as info:
        read_yaml_file(path, DeviceY)
    assert len(str(info.value)) < 2000


def test_a_database_folder_that_does_not_exist_is_named(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"db='.*nowhere' must be a folder"):
        load_device("h100-sxm", db=tmp_path / "nowhere")


@pytest.fixture
def umask_022() -> Iterator[None]:
    import os

    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_written_files_get_the_umask_mode_or_keep_their_own(tmp_path: Path, umask_022: None) -> None:
    # every file was 0o600 (the temporary file's, from mkstemp), even one written over a 0o644 file
    import os

    import pandas as pd
    import plotly.graph_objects as go

    mode = lambda p: os.stat(p).st_mode & 0o777  # noqa: E731
    est = ["estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--input-tokens", "100"]
    est += ["--output-tokens", "10", "--format", "json", "--output"]
    cli_ok([*est, str(tmp_path / "e.json")])
    assert mode(tmp_path / "e.json") == 0o644
    (tmp_path / "kept.json").write_text("{}")
    os.chmod(tmp_path / "kept.json", 0o640)
    cli_ok([*est, str(tmp_path / "kept.json")])
    assert mode(tmp_path / "kept.json") == 0o640
    genmodel.io.write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
    assert mode(tmp_path / "t.csv") == 0o644
    genmodel.report.write_figure(go.Figure(), tmp_path / "f.html")
    assert mode(tmp_path / "f.html") == 0o644
