"""One policy file: YAML document -> schema validation -> located :class:`Policy`.

Cross-file work (``extends``, overrides, duplicate ids across files) lives in ``resolve.py``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.checks import KINDS
from agent.checks.base import SpecError
from agent.core.diagnostic import Diagnostic, Level
from agent.core.location import Location
from agent.core.yamlload import Document, Path_
from agent.policy import schema
from agent.policy.globs import hostname_glob_problem
from agent.policy.model import Check, HostSelector, Override, Policy, Severity, Waiver
from agent.policy.quickcheck import accepts

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError


def one_year_after(day: dt.date) -> dt.date:
    """The same date a year later (29 February -> 28 February): waivers running past it get a
    warning, as they are meant to be temporary."""
    if day.year >= dt.MAXYEAR:
        return dt.date.max
    return day.replace(year=day.year + 1, day=28 if (day.month, day.day) == (2, 29) else day.day)


# jsonschema is imported only when a document is not plainly valid (quickcheck.accepts says
# no): then it decides, and words every error.


@cache
def _validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator  # noqa: PLC0415

    return Draft202012Validator(schema.shipped())


@cache
def _spec_validator(kind: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator  # noqa: PLC0415

    return Draft202012Validator(dict(KINDS[kind].spec_schema))


def validate(doc: Document, data: Any, schema_: Mapping[str, Any],
             validator: Callable[[], Draft202012Validator], prefix: Path_ = ()) -> list[Diagnostic]:
    """:func:`schema_diagnostics` of ``data`` against ``schema_``: none at once when
    :func:`~agent.policy.quickcheck.accepts` it, else those of ``validator()`` (a validator of
    the same schema), located and in words."""
    if accepts(schema_, data):
        return []
    return schema_diagnostics(doc, data, validator(), prefix)


def short(value: Any, limit: int = 60) -> str:
    """``repr`` of user data, cut so a hostile 1 MB string cannot flood the output."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error(loc: Location, message: str, rule: str) -> Diagnostic:
    return Diagnostic(loc, Level.ERROR, message, rule)


def suggest(word: str, choices: list[str], cutoff: float = 0.6) -> str:
    """`` (did you mean 'x'?)`` when a close choice exists."""
    import difflib  # noqa: PLC0415 - only a policy with a mistake pays for it

    close = difflib.get_close_matches(word, choices, n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


def schema_diagnostics(
    doc: Document, data: Any, validator: Draft202012Validator, prefix: Path_ = ()
) -> list[Diagnostic]:
    """Schema errors of ``data`` (found at ``prefix`` in ``doc``), located and in words."""
    found: dict[tuple[Location, str], Diagnostic] = {}
    for err in validator.iter_errors(data):
        for diag in _translate(doc, err, prefix):
            found.setdefault((diag.location, diag.message), diag)
    return sorted(found.values())


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
            known = sorted(KINDS)
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
                         f"{_json_type(err.instance)} {short(err.instance)}", "schema")
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


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _json_type(value: Any) -> str:
    return {
        bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
        dict: "object", type(None): "null",
    }.get(type(value), type(value).__name__)


def parse_policy(doc: Document, today: dt.date) -> tuple[Policy | None, list[Diagnostic]]:
    """Validate one document; its :class:`Policy` is None only when the schema rejects it."""
    data = doc.data
    if not isinstance(data, dict):
        return None, [_error(doc.at(()), f"a policy is a mapping, not {_json_type(data)}",
                             "unknown-document")]
    api, kind = data.get("apiVersion"), data.get("kind")
    if api != schema.API_VERSION or kind != "Policy":
        where = doc.at(("apiVersion",) if api != schema.API_VERSION else ("kind",))
        return None, [_error(where, f"not a hostguard policy: apiVersion {short(api)}, kind "
                             f"{short(kind)} (expected {schema.API_VERSION!r}, 'Policy')",
                             "unknown-document")]
    diagnostics = validate(doc, data, schema.shipped(), _validator)
    if diagnostics:
        return None, diagnostics
    # Semantic errors still yield a policy, so cross-file checks (extends, overrides, waivers)
    # can run and report everything in one lint pass; callers refuse to audit on any error.
    builder = _PolicyBuilder(doc, today)
    return builder.build(), builder.diagnostics


class _PolicyBuilder:
    """Semantic checks over a schema-valid document."""

    def __init__(self, doc: Document, today: dt.date) -> None:
        self.doc = doc
        self.today = today
        self.diagnostics: list[Diagnostic] = []
        meta = doc.data["metadata"]
        self.name: str = meta["name"]

    def report(self, path: Path_, message: str, rule: str, level: Level = Level.ERROR) -> None:
        self.diagnostics.append(Diagnostic(self.doc.at(path), level, message, rule))

    def build(self) -> Policy:
        data = self.doc.data
        meta = data["metadata"]
        hosts = self.hosts(data.get("hosts", {}))
        checks = self.checks(data.get("checks", []), hosts)
        overrides = tuple(self.override(i, o) for i, o in enumerate(data.get("overrides", [])))
        waivers = tuple(w for i, raw in enumerate(data.get("waivers", []))
                        if (w := self.waiver(i, raw)) is not None)
        return Policy(
            name=self.name,
            path=self.doc.path,
            sha256=self.doc.sha256,
            description=meta.get("description"),
            version=meta.get("version"),
            extends=tuple((p, self.doc.at(("extends", i)))
                          for i, p in enumerate(data.get("extends", []))),
            hosts=hosts,
            checks=checks,
            overrides=overrides,
            waivers=waivers,
            location=self.doc.at(()),
        )

    def globs(self, path: Path_, patterns: list[str]) -> tuple[str, ...]:
        for i, pattern in enumerate(patterns):
            problem = hostname_glob_problem(pattern)
            if problem:
                self.report((*path, i), f"invalid hostname glob {short(pattern)}: {problem}",
                            "invalid-glob")
        return tuple(patterns)

    def hosts(self, raw: Mapping[str, Any]) -> HostSelector:
        return HostSelector(self.globs(("hosts", "hostnames"), raw.get("hostnames", [])),
                            dict(raw.get("labels", {})))

    def spec(self, kind: str, raw: Mapping[str, Any], at: Path_) -> Any:
        try:
            return KINDS[kind].parse_at(raw, Path(self.doc.path))
        except SpecError as exc:
            for problem in exc.problems:
                self.report((*at, *problem.path), problem.message, problem.rule)
            return None

    def checks(self, raw: list[dict[str, Any]], hosts: HostSelector) -> tuple[Check, ...]:
        seen: dict[str, Location] = {}
        out: list[Check] = []
        for i, entry in enumerate(raw):
            cid = entry["id"]
            if cid in seen:
                first = seen[cid]
                self.report(("checks", i, "id"), f"duplicate check id {cid!r} (first defined at "
                            f"line {first.line})", "duplicate-id")
                continue
            seen[cid] = self.doc.at(("checks", i))
            spec = self.spec(entry["kind"], entry["spec"], ("checks", i, "spec"))
            out.append(Check(
                id=cid, kind=entry["kind"], title=entry["title"],
                severity=Severity(entry["severity"]), rationale=entry["rationale"],
                remediation=entry["remediation"],
                references=tuple(entry.get("references", [])), spec=spec,
                raw_spec=entry["spec"], location=seen[cid], policy=self.name, hosts=hosts,
            ))
        return tuple(out)

    def override(self, i: int, raw: dict[str, Any]) -> Override:
        fields = {k: v for k, v in raw.items() if k != "id"}
        return Override(raw["id"], fields, self.doc.at(("overrides", i)), i)

    def waiver(self, i: int, raw: dict[str, Any]) -> Waiver | None:
        at: Path_ = ("waivers", i)
        if not raw["reason"].strip():
            self.report((*at, "reason"), "waiver has an empty reason", "waiver-reason")
        try:
            expires = dt.date.fromisoformat(raw["expires"])
        except ValueError:
            self.report((*at, "expires"), f"{short(raw['expires'])} is not a valid date",
                        "schema")
            return None
        if expires < self.today:
            self.report((*at, "expires"), f"waiver for {raw['check']!r} expired on "
                        f"{expires.isoformat()}", "waiver-expired")
        elif expires > one_year_after(self.today):
            self.report((*at, "expires"), f"waiver for {raw['check']!r} runs until "
                        f"{expires.isoformat()}, more than a year away", "waiver-long",
                        Level.WARNING)
        hosts = self.globs((*at, "hosts"), raw.get("hosts", []))
        return Waiver(raw["check"], raw["reason"], expires, hosts, self.doc.at(at))
