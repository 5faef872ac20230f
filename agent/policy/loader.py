"""One policy file: YAML document -> schema validation -> located :class:`Policy`.

Cross-file work (``extends``, overrides, duplicate ids across files) lives in ``resolve.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.checks import KINDS
from agent.checks.base import SpecError
from agent.core.diagnostic import Diagnostic, Level
from agent.core.location import Location
from agent.core.quickcheck import accepts
from agent.core.schema_errors import json_type, schema_diagnostics, short, wrong_document
from agent.core.yamlload import Document, Path_
from agent.policy import schema
from agent.policy.globs import hostname_glob_problem
from agent.policy.model import Check, HostSelector, Override, Policy, Severity, Waiver

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator


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
    from jsonschema import Draft202012Validator  # noqa: PLC0415 - only for an invalid document

    return Draft202012Validator(schema.shipped())


@cache
def _spec_validator(kind: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator  # noqa: PLC0415 - only for an invalid document

    return Draft202012Validator(dict(KINDS[kind].spec_schema))


def validate(doc: Document, data: Any, schema_: Mapping[str, Any],
             validator: Callable[[], Draft202012Validator], prefix: Path_ = ()) -> list[Diagnostic]:
    """:func:`schema_diagnostics` of ``data`` against ``schema_``: none at once when
    :func:`~agent.core.quickcheck.accepts` it, else those of ``validator()`` (a validator of
    the same schema), located and in words."""
    if accepts(schema_, data):
        return []
    return schema_diagnostics(doc, data, validator(), prefix)


def _error(loc: Location, message: str, rule: str) -> Diagnostic:
    return Diagnostic(loc, Level.ERROR, message, rule)


def parse_policy(doc: Document, today: dt.date) -> tuple[Policy | None, list[Diagnostic]]:
    """Validate one document; its :class:`Policy` is None only when the schema rejects it."""
    data = doc.data
    if not isinstance(data, dict):
        return None, [_error(doc.at(()), f"a policy is a mapping, not {json_type(data)}",
                             "unknown-document")]
    wrong = wrong_document(doc, data, "Policy", "hostguard policy")
    if wrong is not None:
        return None, [wrong]
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
                            dict(raw.get("labels", {})), self.name, self.doc.key_at(("hosts",)))

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
