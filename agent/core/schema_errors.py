"""JSON Schema errors in words, located in the YAML they came from.

Every hostguard document (policy, seccomp profile, agent config) is validated by jsonschema and
its errors reworded here: an unknown key with the nearest known one, a missing key, a value of
the wrong type or outside an enum, each at the line and column of the offending node.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from agent.core.diagnostic import Diagnostic, Level
from agent.core.location import Location
from agent.core.record import record
from agent.core.schemafile import API_VERSION
from agent.core.yamlload import Document, Path_

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError


def short(value: Any, limit: int = 60) -> str:
    """``repr`` of user data, cut so a hostile 1 MB string cannot flood the output."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def suggest(word: str, choices: list[str], cutoff: float = 0.6) -> str:
    """`` (did you mean 'x'?)`` when a close choice exists."""
    import difflib  # noqa: PLC0415 - only a document with a mistake pays for it

    close = difflib.get_close_matches(word, choices, n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


def dotted(path: Path_) -> str:
    """``("checks", 0, "spec", "op")`` -> ``checks[0].spec.op``: names a node in messages."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _NAME.fullmatch(part):
            text += f".{part}" if text else part
        else:  # a user's key (labels, parameter names): quoted, one line, bounded
            text += f"[{short(part)}]"
    return text or "document"


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


def json_type(value: Any) -> str:
    """The JSON name of a loaded value's type (``object``, ``array``, ``string`` ...)."""
    return {
        bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
        dict: "object", type(None): "null",
    }.get(type(value), type(value).__name__)


def wrong_document(doc: Document, data: Any, kind: str, noun: str) -> Diagnostic | None:
    """Why ``data`` (``doc``'s) is not a hostguard document of ``kind`` (``noun`` in words), at
    its ``apiVersion`` or else its ``kind``; None when it is one. Another tool's file (no
    hostguard ``apiVersion`` nor ``kind``) is called so, with what it holds instead."""
    wanted = f"apiVersion {API_VERSION!r}, kind {kind!r}"
    if not isinstance(data, dict):  # an Ansible playbook (a list), a lone string ...
        return _error(doc.at(()), f"not a hostguard document: it holds {_article(json_type(data))}"
                      f", not a mapping; a {noun} is a mapping with {wanted}", "unknown-document")
    api, found = data.get("apiVersion"), data.get("kind")
    if api == API_VERSION and found == kind:
        return None
    where = doc.at(("apiVersion",) if api != API_VERSION else ("kind",))
    fields = (("apiVersion", api), ("kind", found))
    given = [f"{name} {short(value)}" for name, value in fields if value is not None]
    missing = [f"no {name}" for name, value in fields if value is None]
    if (isinstance(api, str) and api.startswith("hostguard/")) or found == kind:
        return _error(where, f"not a {noun}: {', '.join(given + missing)} (expected "
                      f"{API_VERSION!r}, {kind!r})", "unknown-document")
    # Another tool's file: a docker-compose file, a Kubernetes manifest, Ansible variables.
    has = " but ".join(" and ".join(part) for part in (given, missing) if part)
    keys = ", ".join(short(k, 30) for k in list(data)[:_KEYS_SHOWN])
    more = ", ..." if len(data) > _KEYS_SHOWN else ""
    shown = f" (top-level keys: {keys}{more})" if keys and not given else ""
    return _error(where, f"not a hostguard document: it has {has}{shown}; a {noun} has "
                  f"{wanted}", "unknown-document")


_KEYS_SHOWN = 5
"""Top-level keys named when telling what a foreign document is."""


@record
class SchemaReport:
    """A document's schema errors in words, and which of its parts they leave usable.

    The semantic checks run on the usable parts (:meth:`sound`) of a document the schema
    rejects, so one lint pass reports every independent problem: a misspelled syscall is found
    even when the same file has an argument index out of range.
    """

    diagnostics: tuple[Diagnostic, ...]
    """Sorted, one per location and message."""
    broken: tuple[tuple[Path_, bool], ...] = ()
    """Where each error is, and whether it spoils what lies beneath (a wrong type or value
    does; a missing key spoils only its mapping; an unknown key spoils nothing)."""

    def sound(self, path: Path_) -> bool:
        """True when the node at ``path`` and all it holds passed the schema (unknown keys
        aside), so a semantic check may read it as the schema describes it."""
        size = len(path)
        for where, deep in self.broken:
            if where[:size] == path or (deep and path[: len(where)] == where):
                return False
        return True


def schema_report(
    doc: Document, data: Any, validator: Draft202012Validator, prefix: Path_ = ()
) -> SchemaReport:
    """Schema errors of ``data`` (found at ``prefix`` in ``doc``), located and in words, with
    the parts of ``data`` they spoil (paths relative to ``data``)."""
    found: dict[tuple[Location, str], Diagnostic] = {}
    broken: dict[tuple[Path_, bool], None] = {}
    for err in validator.iter_errors(data):
        for leaf in _leaf_errors(err):
            if leaf.validator != "additionalProperties":
                broken[(tuple(leaf.absolute_path), leaf.validator != "required")] = None
        for diag in _translate(doc, err, prefix):
            found.setdefault((diag.location, diag.message), diag)
    return SchemaReport(tuple(sorted(found.values())), tuple(broken))


def schema_diagnostics(
    doc: Document, data: Any, validator: Draft202012Validator, prefix: Path_ = ()
) -> list[Diagnostic]:
    """Schema errors of ``data`` (found at ``prefix`` in ``doc``), located and in words."""
    return list(schema_report(doc, data, validator, prefix).diagnostics)


def _error(loc: Location, message: str, rule: str) -> Diagnostic:
    return Diagnostic(loc, Level.ERROR, message, rule)


def _leaf_errors(err: ValidationError) -> Iterator[ValidationError]:
    # if/then and allOf wrap the real complaint; report the innermost ones.
    if err.validator in ("allOf", "then") and err.context:
        for sub in err.context:
            yield from _leaf_errors(sub)
    else:
        yield err


def _translate(doc: Document, top: ValidationError, prefix: Path_) -> Iterator[Diagnostic]:
    for err in _leaf_errors(top):
        path: Path_ = (*prefix, *err.absolute_path)
        where = doc.at(path)
        name = dotted(path)
        kind = err.validator
        expected: Any = err.validator_value
        if kind == "additionalProperties" and isinstance(err.instance, dict):
            rules: Any = err.schema
            known = sorted(rules.get("properties", {}))
            unused = [k for k in known if k not in err.instance]  # a key present is not meant
            for key in sorted(set(err.instance) - set(known)):
                yield _error(doc.key_at((*path, key)),
                             f"unknown key {short(key)}{suggest(key, unused)}", "unknown-key")
        elif kind == "required":
            present: Any = err.instance
            missing = [k for k in expected if k not in present]
            for key in missing:
                yield _error(where, f"missing required key {key!r} in {name}", "schema")
        elif kind == "enum" and path and path[-1] == "kind" and len(path) >= 3:
            # A check's kind (checks[i].kind): the enum is the registry's names.
            known = sorted(map(str, expected))
            yield _error(where, f"unknown check kind {short(err.instance)}"
                         f"{suggest(str(err.instance), known)}; known: {', '.join(known)}",
                         "unknown-kind")
        elif kind == "enum":
            options = ", ".join(map(str, expected))
            yield _error(where, f"{name} must be one of {options}, not {short(err.instance)}"
                         f"{suggest(str(err.instance), [str(v) for v in expected])}",
                         "schema")
        elif kind == "type":
            wanted = " or ".join(expected) if isinstance(expected, list) else str(expected)
            yield _error(where, f"{name} must be {_article(wanted)}, not "
                         f"{json_type(err.instance)} {short(err.instance)}", "schema")
        elif kind == "anyOf":
            yield _error(where, f"{name} has the wrong type: {short(err.instance)}", "schema")
        elif kind == "pattern":
            yield _error(where, f"{name} value {short(err.instance)} does not match "
                         f"{expected}", "schema")
        elif kind == "const":
            yield _error(where, f"{name} must be {expected!r}, not "
                         f"{short(err.instance)}", "schema")
        elif kind in ("minLength", "minItems", "minProperties"):
            yield _error(where, f"{name} must not be empty", "schema")
        else:
            yield _error(where, f"{name}: {err.message[:200]}", "schema")


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word
