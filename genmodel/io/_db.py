"""The database on disk: files read with limits, and the index of every id and alias of each kind.

A database is a folder holding ``hardware_db/{devices,memory,links,systems,profiles}`` and
``workloads/{models,scenarios}``, one YAML file per entry, named by its id; the one shipped with
genmodel is package data. Reading is defensive, so that one malformed or hostile file fails fast, in
one line that names it:

- a YAML file may be at most ``MAX_YAML_BYTES`` (1 MiB; the largest shipped file is about 6 kB), so a
  50 MB file is refused before it is parsed;
- at most ``MAX_YAML_ALIASES`` (10) alias references (``*name``) per file (the shipped files use
  none), so an alias bomb ("billion laughs") cannot expand into an exponentially large document;
  libyaml itself refuses nesting deeper than 1000 levels;
- an id may be at most ``MAX_ID_CHARS`` (255) characters, the longest file name most file systems
  allow; ids are looked up in the index, never turned into a path.

The index (:class:`Catalog`) reads every file of a kind once (a few kB each) and composes (YAML
nodes, no Python objects yet) only the files whose text contains the name looked up, to learn the
names each claims: its id (the file name), its aliases and a device's power modes. So a name that
two files claim is an error naming both, whichever file comes first, and a lookup composes a few
files, not the whole kind. A file that cannot be read is set aside with the reason, so lookups that
do not need it still work; looking it up names it, and so does an unknown id (the file might have
held it). A name spelled with YAML escapes (``"\\x68100"``) escapes the text test: the index is a
guard against mistakes, not against a hostile database.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import yaml

from genmodel._errors import SpecError, UnknownEntryError

if TYPE_CHECKING:
    from importlib.abc import Traversable

#: The largest YAML file read (bytes).
MAX_YAML_BYTES = 1 << 20
#: The most alias references (``*name``) one YAML file may hold.
MAX_YAML_ALIASES = 10
#: The longest id (characters).
MAX_ID_CHARS = 255

try:  # the C parser is ~10x faster; fall back where PyYAML was built without libyaml
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

_STR_TAG = "tag:yaml.org,2002:str"

# kind -> (the package of the shipped files, the same folder under a database root)
_FOLDERS = MappingProxyType(
    {
        "hardware": ("genmodel.hardware_db.devices", "hardware_db/devices"),
        "memory tier": ("genmodel.hardware_db.memory", "hardware_db/memory"),
        "link": ("genmodel.hardware_db.links", "hardware_db/links"),
        "system": ("genmodel.hardware_db.systems", "hardware_db/systems"),
        "profile": ("genmodel.hardware_db.profiles", "hardware_db/profiles"),
        "model": ("genmodel.workloads.models", "workloads/models"),
        "scenario": ("genmodel.workloads.scenarios", "workloads/scenarios"),
    }
)


def shipped_folder(kind: str) -> Traversable:
    """The folder of ``kind`` in the database shipped with genmodel (package data)."""
    return resources.files(_FOLDERS[kind][0])


def folder(kind: str, db: Path | None) -> Traversable:
    """The folder of ``kind`` in database ``db`` (None: the shipped one)."""
    return shipped_folder(kind) if db is None else db / _FOLDERS[kind][1]


def display(path: Traversable | Path, db: Path | None) -> str:
    """A file as messages name it: relative to the database for the shipped one, else its path."""
    parts = Path(str(path)).parts
    if db is None:
        for anchor in ("hardware_db", "workloads"):
            if anchor in parts:
                return "/".join(parts[parts.index(anchor) :])
    return str(path)


def short(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to about ``limit`` characters (a message stays one readable line)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} characters)"


def check_id(kind: str, name: object) -> str:
    """``name`` if it can be an id of ``kind``, so that lookups never build a path from a huge string.

    Raises:
        SpecError: not a string, or longer than ``MAX_ID_CHARS`` characters.
    """
    if not isinstance(name, str):
        raise SpecError(f"{kind}={short(name)} must be an id (a string)")
    if len(name) > MAX_ID_CHARS:
        raise SpecError(
            f"{kind}={name[:40]!r}... ({len(name)} characters) must be an id of at most "
            f"{MAX_ID_CHARS} characters"
        )
    return name


def read_text(path: Traversable | Path, where: str, *, limit: int) -> str:
    """The UTF-8 text of a file of at most ``limit`` bytes (a leading byte-order mark is dropped).

    Raises:
        SpecError: missing, unreadable, larger than ``limit``, or not UTF-8 text.
    """
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise SpecError(f"{where}: file not found") from None
    except OSError as exc:
        raise SpecError(f"{where}: cannot be read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise SpecError(f"{where}: file size must be at most {limit} bytes ({limit >> 20} MiB); it is larger")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"{where}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})"
        ) from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        text = f"{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    else:
        text = str(exc)
    return " ".join(text.split())


def _check_aliases(root: yaml.Node, where: str) -> None:
    """Count alias references: the composer shares one node per anchor, so each revisit is one."""
    seen: set[yaml.Node] = set()  # nodes hash by identity: a shared (aliased) node is seen twice
    stack = [root]
    aliases = 0
    while stack:
        node = stack.pop()
        if node in seen:
            aliases += 1
            if aliases > MAX_YAML_ALIASES:
                raise SpecError(
                    f"{where}: YAML alias references (*name) must be at most {MAX_YAML_ALIASES} per file; "
                    "write the values out"
                )
            continue
        seen.add(node)
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(x for pair in node.value for x in pair)


def compose(text: str, where: str) -> yaml.Node | None:
    """The YAML node tree of one document, with its alias references counted.

    Raises:
        SpecError: not YAML, more than one document, or more than ``MAX_YAML_ALIASES`` aliases.
    """
    loader = _Loader(text)
    try:
        node: yaml.Node | None = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise SpecError(f"{where}: not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:  # pragma: no cover - the pure-Python parser only; libyaml stops at 1000 levels
        raise SpecError(f"{where}: not valid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    if node is not None and "&" in text:  # no anchor, no alias
        _check_aliases(node, where)
    return node


def construct(node: yaml.Node | None, where: str) -> Any:
    """The Python value of a composed document (mappings, lists, str, int, float, bool, None).

    Raises:
        SpecError: a value YAML cannot build (an integer of more than 4300 digits, a bad timestamp).
    """
    if node is None:
        return None
    loader = _Loader("")
    try:
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise SpecError(f"{where}: not valid YAML: {_yaml_problem(exc)}") from None
    except (ValueError, OverflowError, RecursionError) as exc:
        raise SpecError(f"{where}: not valid YAML: {' '.join(str(exc).split())[:200]}") from None
    finally:
        loader.dispose()


def read_yaml(path: Traversable | Path, where: str) -> Any:
    """The content of a YAML file, within the limits of this module."""
    return construct(compose(read_text(path, where, limit=MAX_YAML_BYTES), where), where)


def _what(node: yaml.Node) -> str:
    return {yaml.ScalarNode: "scalar", yaml.SequenceNode: "list", yaml.MappingNode: "mapping"}.get(
        type(node), "node"
    )


def _strings(node: yaml.Node | None, where: str, field: str) -> list[str]:
    """The strings of a YAML list of ids (``aliases: [a, b]``)."""
    if node is None:
        return []
    if isinstance(node, yaml.SequenceNode) and all(
        isinstance(x, yaml.ScalarNode) and x.tag == _STR_TAG for x in node.value
    ):
        return [str(x.value) for x in node.value]
    shown = str(node.value)[:60] if isinstance(node, yaml.ScalarNode) else f"<a {_what(node)}>"
    raise SpecError(f"{where}: {field}={shown} must be a list of ids")


def _header(node: yaml.Node | None, where: str) -> tuple[list[tuple[str, str]], str | None]:
    """The names a file claims besides its id, each with its role, and the device a system names."""
    if not isinstance(node, yaml.MappingNode):
        got = "an empty document" if node is None else f"a {_what(node)}"
        raise SpecError(f"{where}: expected a mapping at the top level, got {got}")
    top = {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
    claims = [(a, "alias") for a in _strings(top.get("aliases"), where, "aliases")]
    modes = top.get("power_modes")
    if modes is not None:
        if not (
            isinstance(modes, yaml.SequenceNode) and all(isinstance(m, yaml.MappingNode) for m in modes.value)
        ):
            raise SpecError(f"{where}: power_modes must be a list of mappings")
        for i, mode in enumerate(modes.value):
            for key, value in mode.value:
                if not (isinstance(key, yaml.ScalarNode) and key.value == "id"):
                    continue
                if not (isinstance(value, yaml.ScalarNode) and value.tag == _STR_TAG):
                    raise SpecError(f"{where}: power_modes.{i}.id must be an id")
                claims.append((str(value.value), "power mode"))
    device = top.get("device")
    if device is not None and not (isinstance(device, yaml.ScalarNode) and device.tag == _STR_TAG):
        raise SpecError(f"{where}: device must be an id")
    return claims, None if device is None else str(device.value)


@dataclasses.dataclass(frozen=True, slots=True)
class _Document:
    """One file, composed: its node and the names it claims, or why it cannot be read."""

    node: yaml.Node | None
    #: (name, role) pairs the file claims besides its id; role is "alias" or "power mode"
    claims: tuple[tuple[str, str], ...] = ()
    #: the device id a system file names
    device: str | None = None
    #: why the file cannot be read (one line naming it), or None
    problem: str | None = None


# the top-level key under which a file lists the names of each role (a cheap test before composing)
_ROLE_KEYS = MappingProxyType({"alias": "aliases", "power mode": "power_modes"})


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Catalog:
    """Every file of one kind of a database: read once, composed when a lookup may need it.

    A file is composed (and cached) only when its text contains the name looked up, or when every
    file is needed (suggestions, listings, the unreadable files): a lookup by id or alias composes
    one or two files, not the whole kind.
    """

    kind: str
    db: Path | None
    #: stem (the file name without ``.yaml``, its id) -> file
    files: Mapping[str, Traversable]
    #: stem -> the file as messages name it
    where: Mapping[str, str]
    #: stem -> text, for the files that could be read
    texts: Mapping[str, str]
    #: stem -> why it could not be read (too large, not UTF-8, an OS error), for the others
    unreadable: Mapping[str, str]

    def document(self, stem: str) -> _Document:
        """The file ``stem``, composed (cached)."""
        return _document(self.kind, self.db, stem)

    def names(self, role: str) -> list[str]:
        """The names claimed in ``role`` ("id", "alias" or "power mode"), in file order."""
        if role == "id":
            return list(self.files)
        key = _ROLE_KEYS[role]
        found = (
            n for s, t in self.texts.items() if key in t for n, r in self.document(s).claims if r == role
        )
        return list(dict.fromkeys(found))

    def broken(self) -> dict[str, str]:
        """stem -> why it cannot be read, for every file that cannot (composes every file)."""
        return {s: p for s in self.files if (p := self.document(s).problem) is not None}

    def _owners(self, key: str, stems: Iterable[str]) -> list[tuple[str, str]]:
        owners = [(key, "id")] if key in self.files else []
        for stem in stems:
            roles = [r for n, r in self.document(stem).claims if n == key and stem != key]
            owners += [(stem, roles[0])] if roles else []
        return owners

    def find(self, name: str) -> tuple[str, str, str] | None:
        """(stem, role, the name as declared) of the file that claims ``name`` (or its lower case).

        Raises:
            SpecError: two files claim it.
        """
        keys = list(dict.fromkeys((name, name.lower())))
        stems = [s for s, text in self.texts.items() if any(k in text for k in keys)]
        for key in keys:
            owners = self._owners(key, stems)
            if len(owners) > 1:
                raise duplicate(self.kind, key, [(self.where[s], r) for s, r in owners])
            if owners:
                stem, role = owners[0]
                return stem, role, key
        return None

    def raw(self, stem: str) -> Any:
        """The content of the file ``stem``.

        Raises:
            SpecError: the file cannot be read (the message names it).
        """
        doc = self.document(stem)
        if doc.problem is not None:
            raise SpecError(doc.problem)
        return construct(doc.node, self.where[stem])


def duplicate(kind: str, name: str, owners: Iterable[tuple[str, str]]) -> SpecError:
    """The error for a name two files claim: ``owners`` are (file, role) pairs."""
    files = " and ".join(f"{where} ({role})" for where, role in owners)
    return SpecError(f"{kind}={name!r} must name one entry, but {files} both claim it")


def not_found(
    kind: str, name: str, catalogs: Iterable[Catalog], *, roles: Iterable[str] = ("id",)
) -> UnknownEntryError:
    """The error for an unknown id: the closest names, and every file that could not be read."""
    catalogs = list(catalogs)
    known = [n for c in catalogs for role in roles for n in c.names(role)]
    aliases = [n for c in catalogs for n in c.names("alias")]
    err = UnknownEntryError(kind, name, known, aliases)
    broken = [reason for c in catalogs for reason in c.broken().values()]
    if broken:  # the id may be in one of them: say so, in the same line
        err.args = (f"{err.args[0]}; could not read {'; '.join(broken)}",)
    return err


@functools.cache
def listing(kind: str, db: Path | None) -> Mapping[str, Traversable]:
    """stem -> file for every ``*.yaml`` of ``kind`` (hidden files skipped), sorted; no file is read.

    Raises:
        SpecError: ``db`` is given and its folder for ``kind`` cannot be listed.
    """
    if db is not None and not db.is_dir():
        raise SpecError(f"db={str(db)!r} must be a folder holding hardware_db/ and workloads/")
    directory = folder(kind, db)
    try:
        entries = sorted(directory.iterdir(), key=lambda p: p.name)
    except FileNotFoundError:
        entries = []  # a database without this kind
    except OSError as exc:
        raise SpecError(f"{display(directory, db)}: cannot be listed: {exc.strerror or exc}") from None
    return MappingProxyType(
        {
            e.name.removesuffix(".yaml"): e
            for e in entries
            if e.name.endswith(".yaml") and not e.name.startswith(".")
        }
    )


@functools.cache
def catalog(kind: str, db: Path | None) -> Catalog:
    """The index of every file of ``kind`` in database ``db`` (None: the shipped one)."""
    files = listing(kind, db)
    where = {stem: display(path, db) for stem, path in files.items()}
    texts: dict[str, str] = {}
    unreadable: dict[str, str] = {}
    for stem, path in files.items():
        try:
            texts[stem] = read_text(path, where[stem], limit=MAX_YAML_BYTES)
        except SpecError as exc:
            unreadable[stem] = str(exc)
    return Catalog(
        kind=kind,
        db=db,
        files=files,
        where=MappingProxyType(where),
        texts=MappingProxyType(texts),
        unreadable=MappingProxyType(unreadable),
    )


@functools.cache
def _document(kind: str, db: Path | None, stem: str) -> _Document:
    cat = catalog(kind, db)
    where = cat.where[stem]
    if stem in cat.unreadable:
        return _Document(None, problem=cat.unreadable[stem])
    try:
        node = compose(cat.texts[stem], where)
        claims, device = _header(node, where)
    except SpecError as exc:
        return _Document(None, problem=str(exc))
    return _Document(node, tuple(claims), device)
