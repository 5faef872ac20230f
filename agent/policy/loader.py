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
from agent.core.schema_errors import (
    SchemaReport,
    schema_report,
    short,
    wrong_document,
)
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
             validator: Callable[[], Draft202012Validator], prefix: Path_ = ()) -> SchemaReport:
    """:func:`schema_report` of ``data`` against ``schema_``: no error at once when
    :func:`~agent.core.quickcheck.accepts` it, else those of ``validator()`` (a validator of
    the same schema), located and in words."""
    if accepts(schema_, data):
        return _VALID
    return schema_report(doc, data, validator(), prefix)


_VALID = SchemaReport(())


def parse_policy(doc: Document, today: dt.date) -> tuple[Policy | None, list[Diagnostic]]:
    """Validate one document; its :class:`Policy` is None only when the schema rejects it."""
    data = doc.data
    wrong = wrong_document(doc, data, "Policy", "hostguard policy")
    if wrong is not None:
        return None, [wrong]
    report = validate(doc, data, schema.shipped(), _validator)
    builder = _PolicyBuilder(doc, today, report)
    if report.diagnostics:
        # No policy, but the semantic checks of the parts the schema accepted still run: one
        # lint pass reports an expired waiver beside a misspelled key.
        builder.check_parts()
        return None, sorted({*report.diagnostics, *builder.diagnostics})
    # Semantic errors still yield a policy, so cross-file checks (extends, overrides, waivers)
    # can run and report everything in one lint pass; callers refuse to audit on any error.
    return builder.build(), builder.diagnostics


class _PolicyBuilder:
    """Semantic checks over a document: all of it when the schema accepted it (:meth:`build`),
    else the parts it accepted (:meth:`check_parts`)."""

    def __init__(self, doc: Document, today: dt.date, schema_: SchemaReport) -> None:
        self.doc = doc
        self.today = today
        self.sound = schema_.sound
        """Whether a part of the document passed the schema (all of it, in :meth:`build`)."""
        self.diagnostics: list[Diagnostic] = []
        self.name = ""

    def report(self, path: Path_, message: str, rule: str, level: Level = Level.ERROR) -> None:
        self.diagnostics.append(Diagnostic(self.doc.at(path), level, message, rule))

    def check_parts(self) -> None:
        """The semantic checks of a document the schema rejected, on the parts it accepted."""
        hosts = self.doc.data.get("hosts")
        self.globs(("hosts", "hostnames"), hosts.get("hostnames") if isinstance(hosts, dict)
                   else None)
        seen: dict[str, Location] = {}
        for i, entry in enumerate(self.entries("checks")):
            at: Path_ = ("checks", i)
            if not isinstance(entry, dict):
                continue
            if "id" in entry and self.sound((*at, "id")):
                self.duplicate(i, entry["id"], seen)
            if all(k in entry and self.sound((*at, k)) for k in ("kind", "spec")):
                self.spec(entry["kind"], entry["spec"], (*at, "spec"))
        for i, raw in enumerate(self.entries("waivers")):
            self.waiver(i, raw)

    def entries(self, section: str) -> list[Any]:
        """Every entry of a top-level list (none when it is not a list)."""
        found = self.doc.data.get(section)
        return found if isinstance(found, list) else []

    def build(self) -> Policy:
        data = self.doc.data
        meta = data["metadata"]
        self.name = meta["name"]
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

    def globs(self, path: Path_, raw: Any) -> tuple[str, ...]:
        """The hostname globs of the list ``raw`` (at ``path``) that passed the schema."""
        patterns = [(i, p) for i, p in enumerate(raw) if self.sound((*path, i))] \
            if isinstance(raw, list) else []
        for i, pattern in patterns:
            problem = hostname_glob_problem(pattern)
            if problem:
                self.report((*path, i), f"invalid hostname glob {short(pattern)}: {problem}",
                            "invalid-glob")
        return tuple(p for _, p in patterns)

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
        return tuple(c for i, entry in enumerate(raw)
                     if (c := self.check(i, entry, seen, hosts)) is not None)

    def duplicate(self, i: int, cid: str, seen: dict[str, Location]) -> bool:
        """True (and reported) when ``checks[i]``'s id was seen before; else it is noted."""
        if cid in seen:
            self.report(("checks", i, "id"), f"duplicate check id {cid!r} (first defined at "
                        f"line {seen[cid].line})", "duplicate-id")
            return True
        seen[cid] = self.doc.at(("checks", i))
        return False

    def check(self, i: int, entry: dict[str, Any], seen: dict[str, Location],
              hosts: HostSelector) -> Check | None:
        """The check at ``checks[i]``, after its semantic checks; ``seen``: ids so far."""
        cid = entry["id"]
        if self.duplicate(i, cid, seen):
            return None
        spec = self.spec(entry["kind"], entry["spec"], ("checks", i, "spec"))
        return Check(
            id=cid, kind=entry["kind"], title=entry["title"],
            severity=Severity(entry["severity"]), rationale=entry["rationale"],
            remediation=entry["remediation"],
            references=tuple(entry.get("references", [])), spec=spec,
            raw_spec=entry["spec"], location=seen[cid], policy=self.name, hosts=hosts,
        )

    def override(self, i: int, raw: dict[str, Any]) -> Override:
        fields = {k: v for k, v in raw.items() if k != "id"}
        return Override(raw["id"], fields, self.doc.at(("overrides", i)), i)

    def waiver(self, i: int, raw: Any) -> Waiver | None:
        """The waiver at ``waivers[i]``, after the semantic checks of each of its parts that
        passed the schema (all of them, unless called by :meth:`check_parts`)."""
        at: Path_ = ("waivers", i)
        if not isinstance(raw, dict):
            return None

        def given(key: str) -> bool:
            return key in raw and self.sound((*at, key))

        whose = f"waiver for {raw['check']!r}" if given("check") else "waiver"
        if given("reason") and not raw["reason"].strip():
            self.report((*at, "reason"), "waiver has an empty reason", "waiver-reason")
        expires = None
        if given("expires"):
            try:
                expires = dt.date.fromisoformat(raw["expires"])
            except ValueError:
                self.report((*at, "expires"), f"{short(raw['expires'])} is not a valid date",
                            "schema")
        if expires is not None and expires < self.today:
            self.report((*at, "expires"), f"{whose} expired on {expires.isoformat()}",
                        "waiver-expired")
        elif expires is not None and expires > one_year_after(self.today):
            self.report((*at, "expires"), f"{whose} runs until {expires.isoformat()}, more "
                        "than a year away", "waiver-long", Level.WARNING)
        hosts = self.globs((*at, "hosts"), raw.get("hosts", []))
        if expires is None or not self.sound(at):
            return None
        return Waiver(raw["check"], raw["reason"], expires, hosts, self.doc.at(at))
