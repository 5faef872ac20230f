"""YAML loading that keeps a position for every node and refuses hostile input.

PyYAML's ``safe_load`` loses positions, silently keeps the last of two duplicate keys, resolves
``off`` to ``False`` (YAML 1.1) and recurses once per nesting level. This module builds plain
JSON-like data straight from the parser's event stream with an explicit stack, so that:

* every value and every mapping key has a :class:`Location`;
* duplicate keys, non-string keys and unknown tags are located errors;
* scalars follow the YAML 1.2 core schema (only ``true``/``false`` are booleans, dates stay
  strings);
* nesting depth and alias expansion are bounded (no "billion laughs"), and so is the file size.

Any failure is returned as a :class:`LoadError` carrying a located message; nothing raises.
"""

from __future__ import annotations

import codecs
import math
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.core.digest import sha256_hex
from agent.core.location import Location
from agent.core.record import record

MAX_BYTES = 2 * 1024 * 1024
"""Policies are a few kilobytes; anything past this is refused unread."""
MAX_DEPTH = 64
"""The format nests five levels deep; 64 leaves room for specs while stopping nesting bombs."""
MAX_NODES = 200_000
"""Upper bound on nodes after alias expansion."""

Path_ = tuple[str | int, ...]
"""A JSON-pointer-like path into the data: mapping keys and sequence indices."""

_PARSER_LOADER: Any = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader

_NULL = re.compile(r"~|null|Null|NULL|")
_TRUE = re.compile(r"true|True|TRUE")
_FALSE = re.compile(r"false|False|FALSE")
_INT10 = re.compile(r"[-+]?[0-9]+")
_INT8 = re.compile(r"0o[0-7]+")
_INT16 = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT_TAG, _BOOL, _NULL_TAG = (
    _TAG + "str", _TAG + "int", _TAG + "float", _TAG + "bool", _TAG + "null",
)
_MAP_TAGS = {None, "!", _TAG + "map"}
_SEQ_TAGS = {None, "!", _TAG + "seq"}


@record
class LoadError:
    """Why a file could not be loaded, with the position of the problem."""

    location: Location
    """Where the problem is (1:1 when the whole file is at fault)."""
    message: str
    """Human sentence."""
    rule: str
    """Lint rule id (``yaml-syntax``, ``duplicate-key``, ``yaml-limits`` ...)."""


@record
class Document:
    """A loaded YAML document: plain data plus the position of each node."""

    path: str
    """The file as named by the user."""
    data: Any
    """dict / list / str / int / float / bool / None."""
    sha256: str
    """Digest of the file's bytes."""
    positions: Mapping[Path_, Location] = field(repr=False)
    """Start of each value, by path."""
    key_positions: Mapping[Path_, Location] = field(repr=False)
    """Start of each mapping key, by the path of the value it introduces."""

    def at(self, path: Path_) -> Location:
        """Position of the value at ``path``, or of its nearest located ancestor."""
        for end in range(len(path), -1, -1):
            loc = self.positions.get(tuple(path[:end]))
            if loc is not None:
                return loc
        return Location(self.path)

    def key_at(self, path: Path_) -> Location:
        """Position of the key that introduces ``path`` (falls back to the value)."""
        return self.key_positions.get(tuple(path)) or self.at(path)


class _Fail(Exception):
    def __init__(self, error: LoadError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass
class _Frame:
    container: dict[str, Any] | list[Any]
    path: Path_
    mark: Location
    anchor: str | None
    size: int = 1
    key: str | None = None
    key_mark: Location | None = None
    merging: bool = False
    merges: list[tuple[Any, Location]] = field(default_factory=list)


def load_file(path: Path, display: str | None = None) -> Document | LoadError:
    """Read and parse one policy file; ``display`` is the name used in locations."""
    name = display if display is not None else str(path)
    try:
        # O_NONBLOCK: a FIFO or device named *.yaml must not hang the linter; refuse it below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return LoadError(Location(name), "not a regular file", "read-error")
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        return LoadError(Location(name), f"cannot read file: {exc.strerror or exc}", "read-error")
    if len(raw) > MAX_BYTES:
        return LoadError(
            Location(name),
            f"file is larger than the {MAX_BYTES // (1024 * 1024)} MiB limit for a policy",
            "file-too-large",
        )
    return load_bytes(raw, name)


def load_bytes(raw: bytes, name: str) -> Document | LoadError:
    """Parse ``raw`` (UTF-8, optional BOM) as one YAML document."""
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        text = raw[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = bom + exc.start  # utf-8-sig would count from after the BOM
        line = raw.count(b"\n", 0, bad) + 1
        # Columns count characters, as elsewhere; the bytes before the bad one are valid UTF-8.
        start = max(raw.rfind(b"\n", 0, bad) + 1, bom)
        col = len(raw[start:bad].decode("utf-8")) + 1
        return LoadError(
            Location(name, line, col),
            f"not UTF-8 text: byte 0x{raw[bad]:02x} cannot be decoded",
            "encoding",
        )
    try:
        data, positions, keys = _Builder(name, text).build()
    except _Fail as fail:
        return fail.error
    return Document(name, data, sha256_hex(raw), positions, keys)


def _mark(name: str, mark: Any) -> Location:
    return Location(name, mark.line + 1, mark.column + 1)


class _Builder:
    """Turns the parser's events into data, with an explicit stack instead of recursion."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self.positions: dict[Path_, Location] = {}
        self.keys: dict[Path_, Location] = {}
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.stack: list[_Frame] = []
        self.nodes = 0
        self.documents = 0
        self.result: Any = None

    def fail(self, location: Location, message: str, rule: str) -> _Fail:
        return _Fail(LoadError(location, message, rule))

    def build(self) -> tuple[Any, dict[Path_, Location], dict[Path_, Location]]:
        parser = _PARSER_LOADER(self.text)
        try:
            while True:
                event = parser.get_event()
                if event is None or isinstance(event, yaml.StreamEndEvent):
                    break
                self.handle(event)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = _mark(self.name, mark) if mark is not None else Location(self.name)
            message = " ".join(str(p) for p in (exc.context, exc.problem) if p)
            if mark is not None and self._char_at(mark.line, mark.column) == "\t":
                message = "a tab character cannot indent or start YAML content; use spaces"
            if "exceeded maximum nesting depth" in message:  # libyaml's flow-level limit (1000)
                raise self.fail(where, f"nesting deeper than {MAX_DEPTH} levels",
                                "yaml-limits") from None
            raise self.fail(where, message or "invalid YAML", "yaml-syntax") from None
        except yaml.reader.ReaderError as exc:
            position = exc.position
            if yaml.__with_libyaml__:  # libyaml counts bytes of the UTF-8 text, not characters
                position = len(self.text.encode()[:position].decode("utf-8", "ignore"))
            raise self.fail(self._offset(position), exc.reason, "yaml-syntax") from None
        except yaml.YAMLError as exc:
            raise self.fail(Location(self.name), str(exc), "yaml-syntax") from None
        finally:
            parser.dispose()
        if self.documents == 0:
            raise self.fail(Location(self.name), "file holds no YAML document", "empty-file")
        return self.result, self.positions, self.keys

    def _char_at(self, line: int, column: int) -> str:
        lines = self.text.split("\n", line + 1)
        return lines[line][column : column + 1] if line < len(lines) else ""

    def _offset(self, position: int) -> Location:
        line = self.text.count("\n", 0, position) + 1
        return Location(self.name, line, position - (self.text.rfind("\n", 0, position) + 1) + 1)

    def handle(self, event: Any) -> None:
        mark = _mark(self.name, event.start_mark)
        if isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise self.fail(mark, "file holds more than one YAML document",
                                "multiple-documents")
        elif isinstance(event, yaml.ScalarEvent):
            if self._expecting_key():
                self._take_key(event, mark)
            else:
                self._attach(self._scalar(event, mark), mark, event.anchor, 1)
        elif isinstance(event, yaml.AliasEvent):
            if self._expecting_key():
                raise self.fail(mark, "an alias cannot be a mapping key", "yaml-key")
            if any(frame.anchor == event.anchor for frame in self.stack):
                raise self.fail(mark, f"recursive alias: *{event.anchor} refers to a node that "
                                "contains it", "yaml-syntax")
            if event.anchor not in self.anchors:
                raise self.fail(mark, f"alias *{event.anchor} names no complete anchor",
                                "yaml-syntax")
            value, size = self.anchors[event.anchor]
            self._attach(value, mark, None, size)
        elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            self._open(event, mark)
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            self._close()

    def _expecting_key(self) -> bool:
        return bool(self.stack) and isinstance(self.stack[-1].container, dict) and (
            self.stack[-1].key is None
        )

    def _child_path(self) -> Path_:
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.container, list):
            return (*top.path, len(top.container))
        assert top.key is not None
        return (*top.path, top.key)

    def _take_key(self, event: Any, mark: Location) -> None:
        top = self.stack[-1]
        if event.tag not in (None, "!", _STR) or event.anchor:
            raise self.fail(mark, "mapping keys must be plain strings", "yaml-key")
        key = event.value
        assert isinstance(top.container, dict)
        if key == "<<" and not event.style and event.tag is None:
            top.key, top.key_mark, top.merging = "<<", mark, True
            return
        if key in top.container:
            first = self.keys.get((*top.path, key))
            where = f" (first at line {first.line}, column {first.col})" if first else ""
            raise self.fail(mark, f"duplicate key {_short(key)}{where}", "duplicate-key")
        top.key, top.key_mark = key, mark
        self.keys[(*top.path, key)] = mark

    def _open(self, event: Any, mark: Location) -> None:
        if self._expecting_key():
            raise self.fail(mark, "mapping keys must be plain strings", "yaml-key")
        is_map = isinstance(event, yaml.MappingStartEvent)
        if event.tag not in (_MAP_TAGS if is_map else _SEQ_TAGS):
            raise self.fail(mark, f"unsupported YAML tag {_shown_tag(event.tag)}",
                            "yaml-syntax")
        if len(self.stack) >= MAX_DEPTH:
            raise self.fail(mark, f"nesting deeper than {MAX_DEPTH} levels", "yaml-limits")
        self._count(1, mark)
        container: dict[str, Any] | list[Any] = {} if is_map else []
        self.stack.append(_Frame(container, self._child_path(), mark, event.anchor))

    def _close(self) -> None:
        frame = self.stack.pop()
        if isinstance(frame.container, dict):
            for merged, where in frame.merges:
                for key, value in merged.items():
                    frame.container.setdefault(key, value)
                    self.keys.setdefault((*frame.path, key), where)
        self._attach(frame.container, frame.mark, frame.anchor, frame.size, opened=True)

    def _count(self, size: int, mark: Location) -> None:
        self.nodes += size
        if self.nodes > MAX_NODES:
            raise self.fail(
                mark, f"document expands to more than {MAX_NODES} nodes (alias bomb?)",
                "yaml-limits",
            )

    def _attach(
        self, value: Any, mark: Location, anchor: str | None, size: int, opened: bool = False
    ) -> None:
        if not opened:
            self._count(size, mark)
        if anchor is not None:
            self.anchors[anchor] = (value, size)
        if not self.stack:
            self.result = value
            self.positions[()] = mark
            return
        top = self.stack[-1]
        top.size += size
        path = self._child_path()
        if isinstance(top.container, list):
            top.container.append(value)
        elif top.merging:
            self._merge(top, value, mark)
            top.key, top.merging = None, False
            return
        else:
            assert top.key is not None
            top.container[top.key] = value
            top.key = None
        self.positions[path] = mark

    def _merge(self, top: _Frame, value: Any, mark: Location) -> None:
        sources = value if isinstance(value, list) else [value]
        if not sources or not all(isinstance(s, dict) for s in sources):
            raise self.fail(mark, "a '<<' merge key takes a mapping or a list of them", "yaml-key")
        top.merges.extend((s, mark) for s in sources)

    def _scalar(self, event: Any, mark: Location) -> Any:
        value: str = event.value
        tag = event.tag
        plain = event.implicit[0] and not event.style  # libyaml says "", PyYAML None
        if tag in (None, "!"):
            return _resolve(value) if plain else value
        if tag == _STR:
            return value
        resolved = _resolve(value)
        expected = {_INT: int, _FLOAT_TAG: float, _BOOL: bool, _NULL_TAG: type(None)}.get(tag)
        if expected is None:
            raise self.fail(mark, f"unsupported YAML tag {_shown_tag(tag)}", "yaml-syntax")
        if expected is float and isinstance(resolved, int) and not isinstance(resolved, bool):
            return float(resolved)
        if type(resolved) is not expected:
            raise self.fail(mark, f"{_short(value)} is not a valid {tag[len(_TAG):]}",
                            "yaml-syntax")
        return resolved


def _short(text: str, limit: int = 60) -> str:
    """``repr`` of user text, cut: one line, and a hostile 1 MB key cannot flood the output."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _shown_tag(tag: str) -> str:
    """``tag:yaml.org,2002:python/object`` -> ``!!python/object``, as the author wrote it."""
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag


def _resolve(text: str) -> Any:
    """YAML 1.2 core schema resolution of a plain scalar."""
    if _NULL.fullmatch(text):
        return None
    if _TRUE.fullmatch(text):
        return True
    if _FALSE.fullmatch(text):
        return False
    try:
        if _INT10.fullmatch(text):
            return int(text, 10)
        if _INT8.fullmatch(text):
            return int(text[2:], 8)
        if _INT16.fullmatch(text):
            return int(text[2:], 16)
    except ValueError:  # more digits than Python converts: keep the text
        return text
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INF.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN.fullmatch(text):
        return math.nan
    return text
