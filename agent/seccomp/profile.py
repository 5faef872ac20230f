"""Seccomp profile files: YAML ``kind: SeccompProfile`` -> located :class:`Profile`.

A profile file, in full (docs/seccomp.md)::

    apiVersion: hostguard/v1
    kind: SeccompProfile
    metadata: {name: trading-gateway}
    extends: [base.yaml]                  # relative to this file; merged as below
    default_action: {errno: 1}            # kill_process | kill_thread | trap | log | allow
    architectures: [native]               # other ABIs of the CPU (x86, x32) are killed
    no_new_privs: true
    mode: enforce                         # or log: would-be-denied calls allowed and logged
    rules:                                # the allow side, in order
      - syscalls: [socket]
        args: [{index: 0, op: eq, value: 2}]
      - syscalls: ["@io-event", read]
        action: allow                     # the default action of a rule
      - syscalls: [ptrace]
        acknowledged: "the in-process profiler attaches to its own threads"
    deny:                                 # applied after the rules: a deny wins
      - syscalls: [mount]
        action: {errno: 1}                # the default action of a deny entry

Merging (``extends``): bases are loaded depth-first in the order listed, each file once however
often it is reached; their rules come first, then the file's own, and likewise for ``deny``.
``default_action``, ``architectures``, ``mode`` and ``no_new_privs`` are taken from the last file
in that order that sets them (the extending file last). A cycle is an error.

:func:`load_profile` is what the compiler and ``hostguard exec`` call; :func:`resolve_document`
also returns where each part is written, for ``hostguard lint`` (:mod:`agent.seccomp.lint`).
Every error is a located :class:`Diagnostic`; nothing here raises on bad input. :func:`to_yaml`
writes a :class:`Profile` back as such a file (what ``hostguard seccomp import`` prints).

``python -m agent.seccomp.profile --write`` regenerates ``agent/seccomp/profile.schema.json``;
``--check`` exits 1 when the shipped file is stale.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from agent.core import schemafile
from agent.core.diagnostic import Diagnostic, Level
from agent.core.location import Location, display_path
from agent.core.record import record
from agent.core.schema_errors import (
    SchemaReport,
    dotted,
    schema_report,
    short,
    suggest,
    wrong_document,
)
from agent.core.yamlload import Document, LoadError, Path_, load_file
from agent.seccomp import syscalls
from agent.seccomp.model import (
    ARG_OPS,
    MAX_ERRNO,
    U64_MAX,
    Action,
    ActionKind,
    ArgCondition,
    Profile,
    Rule,
    profile_name,
)

KIND = "SeccompProfile"
SCHEMA_ID = "https://hostguard.invalid/schema/seccomp-profile-v1.json"
DENY_DEFAULT = Action(ActionKind.ERRNO, 1)
"""Action of a ``deny`` entry that names none: EPERM."""
_SCALARS = ("default_action", "architectures", "mode", "no_new_privs")
_NAME = r"^@?[A-Za-z0-9_-]{1,64}$"
_TEXT = {"type": "string", "minLength": 1}


def build_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a profile file."""
    rule_fields: dict[str, Any] = {
        "syscalls": {
            "type": "array", "minItems": 1,
            "items": {"type": "string", "pattern": _NAME},
            "description": "Syscall names and systemd @groups.",
        },
        "action": {"$ref": "#/$defs/action"},
        "args": {"type": "array", "maxItems": 6, "items": {"$ref": "#/$defs/arg"},
                 "description": "Argument conditions; all must hold."},
        "acknowledged": {**_TEXT, "description": "Why a dangerous syscall is allowed on purpose."},
    }
    properties: dict[str, Any] = {
        "metadata": schemafile.METADATA,
        "extends": {"type": "array", "items": _TEXT,
                    "description": "Base profiles, relative to this file."},
        "default_action": {"$ref": "#/$defs/action"},
        "rules": {"type": "array", "items": {"$ref": "#/$defs/rule"}},
        "deny": {"type": "array", "items": {"$ref": "#/$defs/rule"}},
        "architectures": {
            "type": "array", "minItems": 1, "uniqueItems": True,
            "items": {"enum": list(syscalls.ARCHES)},
            "description": "libseccomp architecture names; default [native].",
        },
        "no_new_privs": {"type": "boolean"},
        "mode": {"enum": ["enforce", "log"]},
    }
    return {
        **schemafile.document(SCHEMA_ID, "hostguard seccomp profile",
                              "A hostguard seccomp profile (docs/seccomp.md).", kind=KIND,
                              required=["metadata"], properties=properties),
        # A file that extends nothing must say what happens to unlisted syscalls.
        "if": {"not": {"required": ["extends"]}},
        "then": {"required": ["default_action"]},
        "$defs": {
            "action": {
                "if": {"type": "string"},
                "then": {"enum": [k.value for k in ActionKind if k is not ActionKind.ERRNO]},
                "else": {
                    "type": "object",
                    "required": ["errno"],
                    "additionalProperties": False,
                    "properties": {"errno": {"type": "integer", "minimum": 0,
                                             "maximum": MAX_ERRNO}},
                },
            },
            "rule": {
                "type": "object",
                "required": ["syscalls"],
                "additionalProperties": False,
                "properties": rule_fields,
            },
            "arg": {
                "type": "object",
                "required": ["index", "op", "value"],
                "additionalProperties": False,
                "properties": {
                    "index": {"type": "integer", "minimum": 0, "maximum": 5},
                    "op": {"enum": list(ARG_OPS)},
                    "value": {"type": "integer", "minimum": 0, "maximum": U64_MAX},
                    "mask": {"type": "integer", "minimum": 0, "maximum": U64_MAX},
                },
                "if": {"properties": {"op": {"const": "masked_eq"}}, "required": ["op"]},
                "then": {"required": ["mask"]},
            },
        },
    }


def render() -> str:
    """The schema as the shipped file holds it."""
    return json.dumps(build_schema(), indent=2) + "\n"


@cache
def shipped() -> dict[str, Any]:
    """The schema file shipped in the package."""
    return schemafile.shipped(__file__, "profile.schema.json")


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(shipped())


@record
class RuleSource:
    """A rule with the positions of what it is made of."""

    rule: Rule
    """The rule, groups expanded."""
    section: str
    """``rules`` or ``deny``."""
    names: tuple[Location, ...]
    """Position of each entry of ``rule.written``."""
    args_at: Location | None = None
    """Position of the ``args`` list, when there is one."""

    def origin(self, syscall: str) -> Location:
        """Where ``syscall`` enters the rule: its own entry, or the first group naming it."""
        for written, where in zip(self.rule.written, self.names, strict=True):
            if written == syscall:
                return where
        for written, where in zip(self.rule.written, self.names, strict=True):
            if syscalls.is_group(written) and syscall in syscalls.expand([written]):
                return where
        return self.rule.location or self.names[0]

    def written_directly(self, syscall: str) -> bool:
        """True when ``syscall`` is written by name (not only reached through a group)."""
        return syscall in self.rule.written


@record
class LocatedProfile:
    """A merged profile and the positions of its parts (for the linter)."""

    profile: Profile
    """The merged profile."""
    rules: tuple[RuleSource, ...]
    """``profile.rules`` with positions."""
    deny: tuple[RuleSource, ...]
    """``profile.deny`` with positions."""
    positions: dict[str, Location] = field(default_factory=dict)
    """Where each of ``default_action``, ``architectures``, ``mode``, ``no_new_privs`` that took
    effect is written."""
    architecture_positions: tuple[Location, ...] = ()
    """Position of each entry of ``profile.architectures`` (empty when defaulted)."""


@record
class _File:
    """One file's own content, before merging."""

    doc: Document
    name: str
    extends: tuple[tuple[str, Location], ...]
    given: dict[str, tuple[Any, Location]]
    rules: tuple[RuleSource, ...]
    deny: tuple[RuleSource, ...]
    arch_positions: tuple[Location, ...]


def _error(loc: Location, message: str, rule: str) -> Diagnostic:
    return Diagnostic(loc, Level.ERROR, message, rule)


def action_of(raw: Any) -> Action:
    """A schema-valid action value -> :class:`Action`."""
    if isinstance(raw, dict):
        return Action(ActionKind.ERRNO, int(raw["errno"]))
    return Action(ActionKind(raw))


@cache
def _known_names() -> tuple[str, ...]:
    """Syscall names for did-you-mean: every name of the groups and of the native table."""
    names = set(syscalls.expand(list(syscalls.GROUPS)))
    names.update(n for nr in range(600) if (n := syscalls.name_of(nr)) is not None)
    return tuple(sorted(names))


def parse_file(doc: Document) -> tuple[_File | None, list[Diagnostic]]:
    """One document's own profile content; None when the schema rejects it."""
    data = doc.data
    wrong = wrong_document(doc, data, KIND, "seccomp profile")
    if wrong is not None:
        return None, [wrong]
    report = schema_report(doc, data, _validator())
    if report.diagnostics:
        return None, sorted({*report.diagnostics, *_sound_part_errors(doc, report)})
    diagnostics: list[Diagnostic] = []
    sections = {
        section: tuple(_rule(doc, (section, i), raw, section, diagnostics)
                       for i, raw in enumerate(data.get(section, [])))
        for section in ("rules", "deny")
    }
    given = {key: (data[key], doc.at((key,))) for key in _SCALARS if key in data}
    parsed = _File(
        doc=doc,
        name=data["metadata"]["name"],
        extends=tuple((p, doc.at(("extends", i))) for i, p in enumerate(data.get("extends", []))),
        given=given,
        rules=sections["rules"],
        deny=sections["deny"],
        arch_positions=tuple(doc.at(("architectures", i))
                             for i in range(len(data.get("architectures", [])))),
    )
    return parsed, diagnostics


def _sound_part_errors(doc: Document, report: SchemaReport) -> list[Diagnostic]:
    """The name and argument errors of the entries a rejected document's schema accepted: one
    lint pass finds a misspelled syscall beside an argument index out of range."""
    found: list[Diagnostic] = []
    for section in ("rules", "deny"):
        rules = doc.data.get(section)
        for i, raw in enumerate(rules if isinstance(rules, list) else []):
            at: Path_ = (section, i)
            names = raw.get("syscalls") if isinstance(raw, dict) else None
            for j, name in enumerate(names if isinstance(names, list) else []):
                if report.sound((*at, "syscalls", j)):
                    found.extend(_name_errors(doc.at((*at, "syscalls", j)), name))
            args = raw.get("args") if isinstance(raw, dict) else None
            for k, cond in enumerate(args if isinstance(args, list) else []):
                if report.sound((*at, "args", k)):
                    found.extend(_arg_errors(doc, (*at, "args", k), cond))
    return found


def _name_errors(where: Location, name: str) -> list[Diagnostic]:
    """An unknown group or syscall name written at ``where``."""
    if syscalls.is_group(name) and name not in syscalls.GROUPS:
        return [_error(where, f"unknown syscall group {short(name)}"
                       f"{suggest(name, list(syscalls.GROUPS))}", "seccomp-unknown-group")]
    if not syscalls.is_group(name) and (
            syscalls.lookup(name).status is syscalls.Status.UNKNOWN):
        return [_error(where, f"unknown syscall {short(name)}"
                       f"{suggest(name, list(_known_names()), 0.75)}", "seccomp-unknown-syscall")]
    return []


def _arg_errors(doc: Document, at: Path_, cond: dict[str, Any]) -> list[Diagnostic]:
    """A schema-valid argument condition (at ``at``) that makes no sense."""
    if "mask" in cond and cond["op"] != "masked_eq":
        return [_error(doc.key_at((*at, "mask")), f"{dotted(at)}: mask is only meaningful "
                       f"with op masked_eq, not {cond['op']}", "seccomp-arg")]
    return []


def _rule(doc: Document, at: Path_, raw: dict[str, Any], section: str,
          diagnostics: list[Diagnostic]) -> RuleSource:
    written: tuple[str, ...] = tuple(raw["syscalls"])
    names = tuple(doc.at((*at, "syscalls", j)) for j in range(len(written)))
    usable: list[str] = []
    for name, where in zip(written, names, strict=True):
        errors = _name_errors(where, name)
        diagnostics.extend(errors)
        if not any(e.rule == "seccomp-unknown-group" for e in errors):
            usable.append(name)
    args: list[ArgCondition] = []
    for k, cond in enumerate(raw.get("args", [])):
        diagnostics.extend(_arg_errors(doc, (*at, "args", k), cond))
        args.append(ArgCondition(cond["index"], cond["op"], cond["value"], cond.get("mask")))
    default = DENY_DEFAULT if section == "deny" else Action(ActionKind.ALLOW)
    rule = Rule(
        syscalls=syscalls.expand(usable),
        action=action_of(raw["action"]) if "action" in raw else default,
        args=tuple(args),
        written=written,
        acknowledged=raw.get("acknowledged"),
        location=doc.at(at),
    )
    args_at = doc.key_at((*at, "args")) if "args" in raw else None
    return RuleSource(rule, section, names, args_at)


class _Resolver:
    """Loads files once each and merges ``extends`` depth-first."""

    def __init__(self) -> None:
        self.files: dict[Path, tuple[_File | None, list[Diagnostic]]] = {}
        self.diagnostics: list[Diagnostic] = []

    def parsed(self, key: Path, doc: Document) -> tuple[_File | None, list[Diagnostic]]:
        if key not in self.files:
            self.files[key] = parse_file(doc)
            self.diagnostics.extend(self.files[key][1])
        return self.files[key]

    def order(self, key: Path, doc: Document, stack: tuple[Path, ...],
              out: dict[Path, _File]) -> bool:
        """Add ``doc`` and its bases to ``out`` depth-first; False when something is broken."""
        parsed, problems = self.parsed(key, doc)
        if parsed is None:
            return False
        ok = not any(d.level is Level.ERROR for d in problems)
        for written, where in parsed.extends:
            base = Path(doc.path).parent / written
            base_key = Path(os.path.realpath(base))
            if base_key in stack or base_key == key:
                chain = " -> ".join(display_path(p) for p in (*stack, key, base_key))
                self.diagnostics.append(_error(where, f"extends cycle: {chain}", "extends-cycle"))
                ok = False
                continue
            if base_key in out:
                continue
            loaded = load_file(base, display_path(base))
            if isinstance(loaded, LoadError):
                rule = "extends-missing" if loaded.rule == "read-error" else "extends-invalid"
                self.diagnostics.append(_error(where, f"cannot load {short(written)}: "
                                               f"{loaded.location}: {loaded.message}", rule))
                ok = False
                continue
            before = len(self.diagnostics)
            if not self.order(base_key, loaded, (*stack, key), out):
                first = next((d for d in self.diagnostics[before:]
                              if d.level is Level.ERROR), None)
                if first is None:
                    first = next((d for d in self.files[base_key][1]
                                  if d.level is Level.ERROR), None)
                detail = f" (first: {first})" if first else ""
                self.diagnostics.append(_error(where, f"base profile {short(written)} has "
                                               f"errors{detail}", "extends-invalid"))
                ok = False
        out.setdefault(key, parsed)
        return ok


def resolve_document(doc: Document) -> tuple[LocatedProfile | None, list[Diagnostic]]:
    """``doc`` merged with every profile it extends, and every problem found on the way.

    The profile is None only when ``doc`` itself is not schema-valid; it may come with errors
    (unknown names, broken bases) that forbid using it, which :func:`load_profile` enforces.
    """
    resolver = _Resolver()
    key = Path(os.path.realpath(doc.path))
    files: dict[Path, _File] = {}
    resolver.order(key, doc, (), files)
    own = resolver.files[key][0]
    if own is None:
        return None, sorted(set(resolver.diagnostics))
    merged: dict[str, tuple[Any, Location]] = {}
    arch_positions: tuple[Location, ...] = ()
    for parsed in files.values():
        merged.update(parsed.given)
        if "architectures" in parsed.given:
            arch_positions = parsed.arch_positions
    rules = tuple(r for parsed in files.values() for r in parsed.rules)
    deny = tuple(r for parsed in files.values() for r in parsed.deny)
    default = merged.get("default_action")
    diagnostics = resolver.diagnostics
    broken = any(d.rule.startswith("extends-") for d in diagnostics)
    if default is None and not broken:  # every file extends something, and no base said it
        diagnostics.append(_error(doc.at(()), "no default_action here or in any base profile",
                                  "schema"))
    profile = Profile(
        name=own.name,
        default_action=action_of(default[0]) if default else Action(ActionKind.KILL_PROCESS),
        rules=tuple(r.rule for r in rules),
        deny=tuple(r.rule for r in deny),
        architectures=tuple(merged["architectures"][0]) if "architectures" in merged
        else ("native",),
        no_new_privs=bool(merged["no_new_privs"][0]) if "no_new_privs" in merged else True,
        mode=str(merged["mode"][0]) if "mode" in merged else "enforce",
        path=doc.path,
        location=doc.at(()),
        extends=tuple(p for p, _ in own.extends),
    )
    positions = {k: where for k, (_, where) in merged.items()}
    located = LocatedProfile(profile, rules, deny, positions, arch_positions)
    return located, sorted(set(diagnostics))


def abi_errors(located: LocatedProfile) -> list[Diagnostic]:
    """Errors that depend on the merged profile: other ABIs left open."""
    profile = located.profile
    listed = [syscalls.canonical_arch(a) for a in profile.architectures]
    native = syscalls.native_arch()
    out: list[Diagnostic] = []
    for i, arch in enumerate(listed):
        hosts = [h for h in dict.fromkeys([native, *listed]) if arch in syscalls.other_abis(h)]
        if not hosts:
            continue
        where = (located.architecture_positions[i] if i < len(located.architecture_positions)
                 else located.positions.get("architectures", profile.location or Location("")))
        out.append(_error(where, f"architecture {arch!r} opens a second ABI of {hosts[0]}: its "
                          f"syscalls would pass by {arch} rules instead of being killed (the "
                          "classic filter bypass); list only native", "seccomp-abi-open"))
    return out


def load_profile(path: Path) -> Profile | list[Diagnostic]:
    """The merged :class:`Profile` in the file at ``path``, or the errors that forbid using it.

    Errors are the load, schema and ``extends`` errors, unknown names and other ABIs left open
    (:func:`abi_errors`): exactly the lint errors, so a profile that lints without errors loads.
    Warnings do not stop loading.
    """
    loaded = load_file(path, display_path(path))
    if isinstance(loaded, LoadError):
        return [_error(loaded.location, loaded.message, loaded.rule)]
    located, diagnostics = resolve_document(loaded)
    errors = [d for d in diagnostics if d.level is Level.ERROR]
    if located is not None:
        errors.extend(abi_errors(located))
    if errors or located is None:
        return sorted(set(errors))
    return located.profile


# --- YAML (kind: SeccompProfile) out ------------------------------------------------------------

def to_yaml(profile: Profile, header: Sequence[str] = ()) -> str:
    """The profile as a ``kind: SeccompProfile`` document, as :func:`load_profile` reads it.

    ``header`` lines are written as comments at the top (import notes, provenance).
    """
    doc: dict[str, Any] = {
        "apiVersion": schemafile.API_VERSION,
        "kind": KIND,
        "metadata": {"name": profile_name(profile.name)},
        "default_action": _yaml_action(profile.default_action),
        "architectures": list(profile.architectures),
        "no_new_privs": profile.no_new_privs,
        "mode": profile.mode,
        "rules": [_yaml_rule(r) for r in profile.rules],
        "deny": [_yaml_rule(r) for r in profile.deny],
    }
    if not doc["deny"]:
        del doc["deny"]
    body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100)
    comments = "".join(f"# {part}\n" for text in header for line in text.splitlines()
                       for part in textwrap.wrap(line, 96, subsequent_indent="  ") or [""])
    return comments + body


def _yaml_action(action: Action) -> Any:
    if action.kind is ActionKind.ERRNO:
        return {"errno": action.errno if action.errno is not None else errno.EPERM}
    return action.kind.value


def _yaml_rule(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"syscalls": list(rule.written or rule.syscalls),
                           "action": _yaml_action(rule.action)}
    if rule.args:
        out["args"] = [_yaml_arg(c) for c in rule.args]
    if rule.acknowledged:
        out["acknowledged"] = rule.acknowledged
    return out


def _yaml_arg(cond: ArgCondition) -> dict[str, Any]:
    out: dict[str, Any] = {"index": cond.index, "op": cond.op, "value": cond.value}
    if cond.mask is not None:
        out["mask"] = cond.mask
    return out


def main(argv: list[str] | None = None) -> int:
    return schemafile.main(argv, "agent.seccomp", "profile.schema.json", render)


if __name__ == "__main__":
    sys.exit(main())
