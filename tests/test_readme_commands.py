"""The README's commands work as written, and every relative link of README.md and docs/ resolves.

Issue 6: "The README's commands, copied into a fresh shell, work as written." Every command line of
the ```bash blocks of README.md and docs/*.md that starts with ``genmodel`` runs in bash, with this
environment's ``genmodel`` script (next to ``sys.executable``) first on PATH, in an empty temporary
directory (so the files a command writes, ``--output result.json``, land there). It must exit 0, print
something (or write the file it names), and print no traceback. The ```python blocks run too.

Not run, and why:
- ``make ...`` lines: ``make demo``/``make install`` create and fill a virtual environment (network,
  minutes) and ``make test`` runs this suite (recursion); the demo's commands are README commands.
- lines with a ``...`` placeholder (the arguments of the command above) or ``path/to/`` (the user's
  own file): not runnable as written. ``test_readme_command_with_its_placeholders_filled`` runs them
  with the placeholder filled in the obvious way, so they are checked too.
- the commands in ``NOT_RUN`` below, each with its reason.

The commands take about 0.3-1 s each (the CLI's start-up is ~0.25 s), about 15 s in all on an idle
2-core machine, so none is marked slow.

Also here: every relative link (and #anchor) of README.md and docs/*.md resolves, every docs page is
linked from the README and docs/index.md, and docs/cli.md names every command and option of the CLI;
docs/architecture.md has the import-linter contract's layers in order, names every module, names only
files that exist and walks through each kind of change; and no file of the
repo cites the project's design notes or data folder outside it (users do not have them).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: the genmodel script of the environment running the tests
BIN = Path(sys.executable).parent
#: commands (by prefix) that are not run, with the reason
NOT_RUN = {
    "genmodel dashboard": "starts a long-running Streamlit server; the dashboard has its own tests",
}
#: a command that takes longer than this has hung (the slowest, the README's `calibrate` with its
#: leave-one-out refits, takes about a minute of CPU on a slow core, and more wall time when the
#: machine is busy: 154 s at a load of 6)
TIMEOUT_S = 300
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)


def _blocks(path: Path, language: str) -> list[str]:
    """The fenced code blocks of ``path`` in ``language``."""
    text = path.read_text(encoding="utf-8")
    return [body for lang, body in _FENCE.findall(text) if lang == language]


def _command_lines(path: Path) -> list[tuple[str, list[str]]]:
    """(command, the complete commands before it in its block) for each line of the bash blocks.

    Backslash continuations are joined; blank and comment lines dropped.
    """
    out: list[tuple[str, list[str]]] = []
    for block in _blocks(path, "bash"):
        before: list[str] = []
        for line in re.sub(r"\\\n", " ", block).splitlines():
            command = " ".join(line.split())
            if not command or command.startswith("#"):
                continue
            out.append((command, list(before)))
            if not _is_placeholder(command):
                before.append(command)
    return out


def _is_placeholder(command: str) -> bool:
    return "..." in shlex.split(command, comments=True) or "path/to/" in command


def _genmodel_commands() -> list[str]:
    """The runnable ``genmodel`` lines of README.md and docs/, each once (comments aside)."""
    seen: dict[tuple[str, ...], str] = {}
    for path in DOC_FILES:
        for command, _ in _command_lines(path):
            words = shlex.split(command, comments=True)
            if not words or words[0] != "genmodel" or _is_placeholder(command):
                continue
            if any(command.startswith(prefix) for prefix in NOT_RUN):
                continue
            seen.setdefault(tuple(words), command)
    return list(seen.values())


def _placeholder_commands() -> list[tuple[str, str]]:
    """(command as written, command with its placeholder filled) for the README's placeholder lines.

    ``genmodel X ... more`` continues the last complete ``genmodel X`` command of its block;
    ``path/to/config.json`` is a HuggingFace config.json the test writes there.
    """
    out = []
    for command, before in _command_lines(ROOT / "README.md"):
        if not command.startswith("genmodel") or not _is_placeholder(command):
            continue
        filled = command
        if "..." in shlex.split(command, comments=True):
            head, _, tail = command.partition(" ... ")
            full = [c for c in before if c.startswith(head + " ")]
            assert full, f"README: {command!r} has no complete {head!r} command before it in its block"
            filled = f"{shlex.join(shlex.split(full[-1], comments=True))} {tail}"
        out.append((command, filled))
    return out


def _short(command: str) -> str:
    """A test id: the command without ``genmodel`` and its comment, cut to 70 characters."""
    return shlex.join(shlex.split(command, comments=True)).removeprefix("genmodel ")[:70].rstrip()


def _written_files(command: str) -> list[str]:
    """The files a command names with --output/-o/--plot."""
    words = shlex.split(command, comments=True)
    return [words[i + 1] for i, w in enumerate(words[:-1]) if w in ("--output", "-o", "--plot")]


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert (BIN / "genmodel").is_file(), f"no genmodel script next to {sys.executable}: run `make install`"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "120"}
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def _check_ran(command: str, result: subprocess.CompletedProcess[str], cwd: Path) -> None:
    assert result.returncode == 0, f"{command}\nexit {result.returncode}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    files = _written_files(command)
    for name in files:
        assert (cwd / name).is_file() and (cwd / name).stat().st_size > 0, f"{command}: {name} not written"
    assert result.stdout.strip() or files, f"{command}: no output"


def test_the_readme_has_commands_to_check() -> None:
    commands = _genmodel_commands()
    assert len(commands) >= 15, commands
    verbs = ("estimate", "memory", "validate", "sweep", "requirements", "plan", "compare", "hw", "models")
    for verb in verbs:
        assert any(c.startswith(f"genmodel {verb} ") or c == f"genmodel {verb}" for c in commands), verb


@pytest.mark.parametrize("command", _genmodel_commands(), ids=_short)
def test_readme_command_runs(command: str, tmp_path: Path) -> None:
    _check_ran(command, _run(command, tmp_path), tmp_path)


@pytest.mark.parametrize(
    ("written", "command"), [pytest.param(w, c, id=_short(w)) for w, c in _placeholder_commands()]
)
def test_readme_command_with_its_placeholders_filled(written: str, command: str, tmp_path: Path) -> None:
    if "path/to/config.json" in command:
        # a real published config.json: the one workloads/models/llama-3.1-8b.yaml copies
        source = ROOT / "workloads" / "models" / "llama-3.1-8b.yaml"
        spec = yaml.safe_load(source.read_text(encoding="utf-8"))
        (tmp_path / "path" / "to").mkdir(parents=True)
        (tmp_path / "path" / "to" / "config.json").write_text(json.dumps(spec["config"]), encoding="utf-8")
    _check_ran(command, _run(command, tmp_path), tmp_path)


def test_the_placeholder_lines_are_all_filled() -> None:
    placeholders = [c for c, _ in _command_lines(ROOT / "README.md") if c.startswith("genmodel")]
    placeholders = [c for c in placeholders if _is_placeholder(c)]
    assert [w for w, _ in _placeholder_commands()] == placeholders
    assert placeholders, "the README has no placeholder lines: this test and its docstring can go"


@pytest.mark.parametrize(
    "path", [p for p in DOC_FILES if _blocks(p, "python")], ids=lambda p: str(p.relative_to(ROOT))
)
def test_python_blocks_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for i, block in enumerate(_blocks(path, "python")):
        exec(compile(block, f"{path.name} python block {i + 1}", "exec"), {"__name__": "__readme__"})


# ---- links -----------------------------------------------------------------------------------------

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _prose(text: str) -> str:
    """The text without fenced code blocks and inline code spans (links there are not links)."""
    return re.sub(r"`[^`\n]*`", "", _FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: link text kept, lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    out: set[str] = set()
    for line in _FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            slug = _slug(m.group(1))
            n = 0
            while (candidate := slug if n == 0 else f"{slug}-{n}") in out:
                n += 1
            out.add(candidate)
    return out


def _links(path: Path) -> list[str]:
    return [t for t in _LINK.findall(_prose(path.read_text(encoding="utf-8"))) if not re.match(r"^\w+:", t)]


def test_docs_pages_exist_and_have_links() -> None:
    pages = {p.name for p in DOC_FILES}
    assert {"index.md", "cli.md", "architecture.md", "roofline-and-operators.md"} <= pages
    assert "prefill-decode-and-serving.md" in pages
    assert sum(len(_links(p)) for p in DOC_FILES) > 50


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    broken = []
    for target in _links(path):
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    assert not broken, f"{path.relative_to(ROOT)}: " + "; ".join(broken)


def test_every_docs_page_is_linked_from_the_readme_and_the_index() -> None:
    readme = set(_links(ROOT / "README.md"))
    index = set(_links(ROOT / "docs" / "index.md"))
    for page in (ROOT / "docs").glob("*.md"):
        assert f"docs/{page.name}" in readme, f"README.md does not link docs/{page.name}"
        if page.name != "index.md":
            assert page.name in index, f"docs/index.md does not link {page.name}"


# ---- the architecture page ----------------------------------------------------------------------------

ARCHITECTURE = ROOT / "docs" / "architecture.md"
_REPO_PATH = re.compile(
    r"`((?:genmodel|cli|app|tests|tools|hardware_db|workloads|validation|docs)/[\w./-]*)`"
)


def _contract_layers() -> list[list[str]]:
    """The layers of pyproject.toml's "genmodel layers" contract, top to bottom, as module names
    (``_ops``, ``io``)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    block = re.search(r'name = "genmodel layers[^"]*"\s*type = "layers"\s*layers = \[(.*?)\n\]', text, re.S)
    assert block, "pyproject.toml: no layers contract named 'genmodel layers'"
    rows = re.findall(r'^\s*"([^"]+)",', block.group(1), re.M)
    return [[m.strip().removeprefix("genmodel.") for m in row.split("|")] for row in rows]


def _mentions(name: str, line: str) -> bool:
    return re.search(rf"(?<![\w./]){re.escape(name)}(?![\w/])", line) is not None


def test_the_architecture_diagram_has_the_contract_layers_in_order() -> None:
    """Every layer of the import-linter contract is a row of the page's diagram, in the same order."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## Layers", 1)[1]
    diagram = _FENCE.search(section)
    assert diagram, "docs/architecture.md: no diagram under ## Layers"
    lines = diagram.group(2).splitlines()
    layers = _contract_layers()
    assert len(layers) >= 15, layers
    previous = -1
    for layer in layers:
        rows = []
        for module in layer:
            found = [i for i, line in enumerate(lines) if _mentions(module, line)]
            assert found, f"docs/architecture.md: the diagram has no row for {module}"
            rows.append(found[0])
        assert min(rows) > previous, f"docs/architecture.md: {layer} is out of the contract's order"
        previous = max(rows)


def test_the_architecture_page_names_every_module() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    modules = sorted(p.stem for p in (ROOT / "genmodel").glob("_*.py") if p.stem != "__init__")
    modules += [
        f"io/{p.name}" for p in sorted((ROOT / "genmodel" / "io").glob("_*.py")) if p.stem != "__init__"
    ]
    missing = [m for m in modules if not _mentions(m.split("/")[-1].removesuffix(".py"), text)]
    assert not missing, f"docs/architecture.md does not name {missing}"


def test_the_architecture_page_names_only_files_that_exist() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    named = {p.rstrip("/") for p in _REPO_PATH.findall(text) if "NEW-" not in p}
    assert len(named) > 20, named
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"


def test_the_architecture_page_walks_through_each_kind_of_change() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    headings = set(re.findall(r"^### (.+)$", text, re.M))
    kinds = {"A device", "A model family", "An attention kind", "A collective algorithm", "A run option"}
    assert kinds | {"A serving model", "An engine preset"} <= headings
    attention = text.split("### An attention kind", 1)[1].split("\n### ", 1)[0]
    # what a new kind must supply: every method the Attention base class leaves to its kinds
    import inspect

    from genmodel._attention import Attention

    for name, member in vars(Attention).items():
        if name.startswith("_") or not (callable(member) or isinstance(member, property)):
            continue
        assert f"`{name}" in attention, f"docs/architecture.md: the attention walkthrough omits {name}"
        source = inspect.getsource(member.fget if isinstance(member, property) else member)
        if "NotImplementedError" in source:
            assert name in attention.split("It inherits", 1)[0], f"{name} is required, not inherited"
    for path in (
        "genmodel/_attention.py",
        "genmodel/io/_schema.py",
        "genmodel/io/_hfconfig.py",
        "tests/test_attention.py",
    ):
        assert path in attention, f"docs/architecture.md: the attention walkthrough omits {path}"
    serving = text.split("### A serving model", 1)[1].split("\n### ", 1)[0]
    for name in ("genmodel/_serving.py", "estimate_serving", "serving_at_batch", "simulate_serving"):
        assert name in serving, f"docs/architecture.md: the serving-model walkthrough omits {name}"


# ---- the repo is self-contained -----------------------------------------------------------------------

#: the project's design notes live outside the repo, where users cannot read them; pieces joined so
#: that this file does not match itself
_OUTSIDE = "shared"
_NOTES = "DES" + "IGN"
_CITES_OUTSIDE = re.compile(rf"\b{_NOTES}\b|\.\./{_OUTSIDE}\b|/work/{_OUTSIDE}\b")
_SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", "build", "dist", "node_modules"}


def _repo_files() -> list[Path]:
    """The files of the checkout: tracked and untracked-but-not-ignored (git), else a walk that
    skips environments, caches and build output."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout.decode("utf-8", "replace")
        files = [ROOT / name for name in listed.split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        files = [
            p
            for p in ROOT.rglob("*")
            if p.is_file()
            and not any(part in _SKIP_DIRS or part.endswith((".egg-info", "_cache")) for part in p.parts)
        ]
    return [p for p in files if p.is_file()]


def test_the_citation_pattern_catches_what_it_must() -> None:
    notes = f"{_NOTES}.md"
    for cited in (f"see {notes}", f"(as {notes})", f"{_NOTES} places it", f"../{_OUTSIDE}/data/x.csv"):
        assert _CITES_OUTSIDE.search(cited), cited
    for fine in (f"{_NOTES}_HARDWARE", "prefix-shared", "shared_with_host", "docs/architecture.md"):
        assert not _CITES_OUTSIDE.search(fine), fine


def test_no_file_in_the_repo_cites_the_design_notes_outside_it() -> None:
    """README, pyproject.toml, docstrings, docs/, cli/, app/, tools/ and tests cite docs/architecture.md
    or docs/cli.md, never the design notes or the data folder outside the repo."""
    files = _repo_files()
    assert any(p.name == "README.md" for p in files) and len(files) > 100, len(files)
    found = []
    for path in files:
        if path.stat().st_size > 20_000_000:
            continue
        text = path.read_bytes().decode("utf-8", "ignore")
        for number, line in enumerate(text.splitlines(), 1):
            if _CITES_OUTSIDE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not found, "cite docs/architecture.md or docs/cli.md instead:\n" + "\n".join(found)


# ---- the CLI reference --------------------------------------------------------------------------------


def _cli_commands() -> dict[str, list[str]]:
    """Every genmodel command (``hw list`` for a subcommand) with its option names (``NAME`` for an
    argument), from typer's click commands (duck-typed: typer may vendor its own click)."""
    import typer
    from genmodel.cli._app import app

    out: dict[str, list[str]] = {}

    def walk(command: Any, prefix: str) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, f"{prefix} {name}".strip())
            return
        names = []
        for p in command.params:
            if p.param_type_name == "option" and p.name != "help":
                names.append(max(p.opts, key=len))
            elif p.param_type_name == "argument":
                names.append(p.name.upper())
        out[prefix] = names

    walk(typer.main.get_command(app), "")
    return out


def test_the_cli_reference_lists_every_command_and_option() -> None:
    """docs/cli.md has a section per command that names each of its options (regenerate it from
    ``genmodel CMD --help`` when a command changes)."""
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^### `genmodel ([^`]+)`\n(.*?)(?=^### |\Z)", text, re.S | re.M))
    missing = []
    for command, options in _cli_commands().items():
        if command not in sections:
            missing.append(f"no section ### `genmodel {command}`")
            continue
        missing += [f"{command}: {o}" for o in options if f"`{o}" not in sections[command]]
    assert not missing, "docs/cli.md is out of date: " + "; ".join(missing)


def _cli_flags() -> dict[str, set[str]]:
    """Every genmodel command (``hw list`` for a subcommand) with all its flags (``--no-x`` too)."""
    import typer
    from genmodel.cli._app import app

    out: dict[str, set[str]] = {}

    def walk(command: Any, prefix: str) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, f"{prefix} {name}".strip())
            return
        out[prefix] = {o for p in command.params for o in (*p.opts, *getattr(p, "secondary_opts", ()))}

    walk(typer.main.get_command(app), "")
    return out


def test_the_docs_name_only_flags_their_command_has() -> None:
    """Every ``genmodel COMMAND ... --flag`` of README.md and docs/*.md, in a code span or a line of
    its own, names a flag COMMAND has (docs/architecture.md named ``models show --full``)."""
    flags = _cli_flags()
    wrong = []
    for path in DOC_FILES:
        text = path.read_text(encoding="utf-8")
        for command in re.findall(r"`(genmodel [^`]+)`", text) + re.findall(
            r"^\s*(genmodel [^\n]+)", text, re.M
        ):
            words = command.split()
            name = next((n for n in (" ".join(words[1:3]), words[1]) if n in flags), None)
            if name is None:
                continue  # prose ("genmodel gives ..."), a placeholder (genmodel COMMAND --help)
            given = {w.split("=")[0] for w in words if re.match(r"--[a-z0-9-]+$", w.split("=")[0])}
            wrong += [f"{path.name}: {command!r}: {f}" for f in sorted(given - flags[name] - {"--help"})]
    assert not wrong, "; ".join(wrong)


def test_the_readme_names_every_dashboard_page() -> None:
    """The README's dashboard paragraph counts and names the pages app/main.py registers (it said
    seven and left out calibrate after that page was added)."""
    main = (ROOT / "app" / "main.py").read_text(encoding="utf-8")
    paths = re.findall(r'url_path="(\w+)"(?!, visibility="hidden")', main)
    pages = ["estimate" if p == "home" else p for p in paths]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Dashboard", 1)[1].split("\n## ", 1)[0]
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven"]
    assert f" {words[len(pages)]} pages" in section, f"the README should say {words[len(pages)]} pages"
    assert [p for p in pages if f"**{p}**" not in section] == []
