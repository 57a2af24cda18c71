"""Regenerate the command sections of docs/cli.md from the typer app (every command's options).

The hand-written introduction (everything before the first ``### `genmodel`` heading) is kept;
the sections after it are rebuilt from the click commands behind ``genmodel --help``, so the
reference cannot drift from the CLI. ``tests/test_readme_commands.py`` checks that it has not.

Usage: python tools/make_cli_reference.py [--check]
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import typer
from genmodel.cli._app import app

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
FIRST_SECTION = "### `genmodel "
LINKS = {
    "estimate": "[prefill, decode and serving](prefill-decode-and-serving.md), "
    "[roofline](roofline-and-operators.md), [memory](memory-and-kv-cache.md)",
    "memory": "[memory, the KV cache and memory tiers](memory-and-kv-cache.md)",
    "validate": "[validation](validation.md)",
    "sweep": "[sweeps](sweeps.md)",
    "requirements": "[requirements](requirements.md)",
    "plan": "[capacity planning](capacity-planning.md)",
    "compare": "[capacity planning](capacity-planning.md#compare)",
    "dashboard": "[dashboard](dashboard.md)",
    "hw list": "[hardware database](hardware-database.md)",
    "hw show": "[hardware database](hardware-database.md)",
    "models list": "[hardware database: models](hardware-database.md#adding-a-device)",
    "models show": "[hardware database: models](hardware-database.md#adding-a-device)",
    "models import": "[hardware database: models](hardware-database.md#adding-a-device)",
}


# typer carries its own copy of click, so parameters are told apart by their kind, not their class
def _type_name(p: Any, ctx: Any) -> str:
    name = str(p.display_type(ctx)).strip("<>")
    if name == "bool":
        return "flag"
    if name.startswith("list["):
        return name[5:-1] + ", comma list or repeated"
    return name.replace("int range", "int")


def _default(p: Any) -> str:
    if p.required:
        return "required"
    d: Any = p.default
    if d is None or d in ((), []):
        return ""
    d = getattr(d, "value", d)
    if isinstance(d, bool):
        off = (p.secondary_opts or [""])[0]
        return f"`{p.opts[0] if d else off}`" if off else ("on" if d else "off")
    return f"`{d}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _section(name: str, cmd: Any) -> list[str]:
    lines = [f"### `genmodel {name}`", ""]
    text = inspect.cleandoc(cmd.help or "")
    for para in (" ".join(p.split()) for p in text.split("\n\n") if p.strip()):
        if not para.startswith("Example"):
            lines += [para, ""]
    args = [p for p in cmd.params if p.param_type_name == "argument"]
    usage = f"genmodel {name} [OPTIONS]" + "".join(
        f" {a.name.upper()}" if a.required else f" [{a.name.upper()}]" for a in args if a.name
    )
    lines += ["```text", usage, "```", "", "| option | type | default | what it does |", "|---|---|---|---|"]
    ctx = cmd.make_context(name.split()[-1], [], resilient_parsing=True)
    for p in cmd.params:
        if p.param_type_name == "argument" and p.name:
            need = "required" if p.required else "optional"
            lines.append(
                f"| `{p.name.upper()}` | argument | {need} | {_cell(getattr(p, 'help', None) or '')} |"
            )
        elif p.param_type_name == "option" and p.name != "help":
            names = ", ".join(f"`{o}`" for o in [*sorted(p.opts, key=len, reverse=True), *p.secondary_opts])
            kind, default = _cell(_type_name(p, ctx)), _cell(_default(p))
            lines.append(f"| {names} | {kind} | {default} | {_cell(p.help or '')} |")
    if name in LINKS:
        lines += ["", f"Formulas and details: {LINKS[name]}."]
    return [*lines, ""]


def _commands(cmd: Any, prefix: str = "") -> list[tuple[str, Any]]:
    subs: dict[str, Any] | None = getattr(cmd, "commands", None)  # a group
    if subs is not None:
        return [c for n, sub in subs.items() for c in _commands(sub, f"{prefix} {n}".strip())]
    return [(prefix, cmd)]


def reference() -> str:
    """docs/cli.md as it should read: its introduction, then one section per command."""
    intro = DOC.read_text(encoding="utf-8").split(FIRST_SECTION)[0]
    body = [line for name, cmd in _commands(typer.main.get_command(app)) for line in _section(name, cmd)]
    return intro + "\n".join(body).rstrip() + "\n"


def main() -> int:
    text = reference()
    if "--check" in sys.argv[1:]:
        current = DOC.read_text(encoding="utf-8")
        if current != text:
            print("docs/cli.md is out of date: run python tools/make_cli_reference.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
