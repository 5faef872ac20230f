"""Rebuild an ``AuditRun`` from ``hostguard/result/v1`` JSON, so every renderer works off the host.

The document is validated first (``validate``: ``result.schema.json``, then what the schema
cannot say: real waiver dates, a summary that matches the results); a document that is not valid
raises ``ResultLoadError`` naming the JSON path (``$.results[3].status``) and what is wrong. The
fleet page reads documents that ``validate`` accepted as they are, without rebuilding the run.

A fleet's results repeat its policies: every host that runs the same policy files carries the
same check definitions (id, title, rationale, spec, ...; ``DEFINITION``), each beside its own
verdict. So the quick schema check (``quickcheck``) judges the definitions of a document once
for every document that carries the very same ones, and the ``Check`` objects rebuilt from them
are kept (``_vouched``). The rest of each document is checked every time, against the same
schema with the definitions' own properties left out (``_schemas``): ``properties`` is a
conjunction over keys, so a document fits the whole schema exactly when it fits that one and each
of its results fits the result schema. Anything the quick check does not vouch for is judged and
worded by jsonschema, as before.

A loaded run is render-ready, not re-evaluable: a check's ``spec`` is its spec as written (the
same mapping as ``raw_spec``), not the kind's parsed object.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import fields
from functools import cache
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from agent.core import schemafile
from agent.core.location import Location
from agent.core.quickcheck import accepts
from agent.host.facts import HostFacts
from agent.policy.model import Check, HostSelector, Severity, Waiver
from agent.report.json import SCHEMA
from agent.result import AuditRun, Evidence, PolicyFile, Result, Status

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError


_STATUSES = {s.value: s for s in Status}
_SEVERITIES = {s.value: s for s in Severity}
"""Enum members by value: a dict lookup per result instead of an enum call (a fleet of result
files holds hundreds of thousands); the schema has admitted only these values."""


_WORDS = ("id", "kind", "title", "severity", "policy", "rationale", "remediation")
"""A result's check definition: its strings, compared as they are (a string is equal to nothing
but the same string) ..."""
_PARTS = ("location", "overridden_at", "hosts", "roots", "references", "spec")
"""... and its structures, compared as canonical JSON (``_canonical``)."""
DEFINITION = _WORDS + _PARTS
"""The keys of a result that define its check, the same in every host's result of that check;
the others (status, message, evidence, waiver, duration) are the host's verdict."""
_words = itemgetter(*_WORDS)
_parts = itemgetter(*_PARTS)
_canonical = json.JSONEncoder(ensure_ascii=True, check_circular=False).encode
"""Parsed JSON has no cycles; ``1``, ``1.0`` and ``true``, key order and every escape stay
apart, so equal text means equal values (where ``==`` would take ``1`` for ``true``)."""
_Definitions = tuple[tuple[tuple[str, ...], ...], str]
_CHECKS: dict[_Definitions, list[Check]] = {}
"""The checks of documents whose definitions the schema accepted, by those definitions: keys
come only from accepted documents, so their words are strings, which only equal strings match."""
_CHECKS_LIMIT = 64
"""Sets of definitions kept at most (a fleet runs a few policy sets; past this, start over)."""


class ResultLoadError(ValueError):
    """The data is not a valid ``hostguard/result/v1`` document; the message names where."""


@cache
def schema() -> dict[str, Any]:
    """The shipped ``result.schema.json``."""
    return schemafile.shipped(__file__, "result.schema.json")


@cache
def validator() -> Draft202012Validator:
    """A validator for ``schema()`` (checked once to be a valid 2020-12 schema); imported only
    when a document is not plainly valid (``quickcheck.accepts`` says no): it decides, and words
    every error."""
    from jsonschema import Draft202012Validator  # noqa: PLC0415 - only documents quickcheck cannot vouch for

    Draft202012Validator.check_schema(schema())
    return Draft202012Validator(schema())


@cache
def _schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    """(``schema()`` with each result's ``DEFINITION`` properties accepting anything, ``schema()``
    of one result entry): a document fits ``schema()`` exactly when it fits the first and each
    of its results fits the second."""
    root = schema()
    result = root["$defs"]["result"]
    unknown = set(DEFINITION) - set(result["properties"])
    if unknown:  # the schema and DEFINITION drifted apart: fail loudly, never skip a check
        raise ValueError(f"result.schema.json has no result propert(ies) {sorted(unknown)}")
    rest = {key: True if key in DEFINITION else sub for key, sub in result["properties"].items()}
    defs = {**root["$defs"], "result": {**result, "properties": rest}}
    return {**root, "$defs": defs}, {"$defs": root["$defs"], "$ref": "#/$defs/result"}


def _vouched(data: Any) -> list[Check] | None:
    """The check of each result when ``quickcheck`` vouches for the whole document, else
    ``None`` (invalid, or not for the quick check to judge: ask jsonschema)."""
    document, one_result = _schemas()
    if not accepts(document, data):
        return None
    results = data["results"]
    key: _Definitions | None
    try:
        key = (tuple(map(_words, results)), _canonical(list(map(_parts, results))))
        checks = _CHECKS.get(key)
    except (TypeError, ValueError, RecursionError):  # a word that is a list or an object, or
        key, checks = None, None  # data that is not parsed JSON: judged below, and not kept
    if checks is None:
        for entry in results:
            if not accepts(one_result, entry):
                return None
        if key is None:
            checks = [_check(entry) for entry in results]
        else:  # kept for other documents: built from a copy, never this one's mutable parts
            private = json.loads(key[1])
            checks = [_check({**dict(zip(_WORDS, words, strict=True)),
                              **dict(zip(_PARTS, parts, strict=True))})
                      for words, parts in zip(key[0], private, strict=True)]
            if len(_CHECKS) >= _CHECKS_LIMIT:
                _CHECKS.clear()
            _CHECKS[key] = checks
    return checks


def json_path(parts: Iterable[str | int]) -> str:
    """``["results", 3, "status"]`` -> ``$.results[3].status``."""
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _describe(error: ValidationError) -> str:
    # oneOf/anyOf errors are vague at the top; the deepest sub-error says what to fix.
    while error.context:
        error = max(error.context, key=lambda e: len(e.absolute_path))
        if not error.context:
            break
    return f"{json_path(error.absolute_path)}: {error.message}"


def problems(data: Any) -> list[str]:
    """Every schema violation as ``$.path: message``, in document order; empty when valid."""
    if not isinstance(data, dict):
        return [f"$: expected a {SCHEMA} object, found {type(data).__name__}"]
    if data.get("schema") != SCHEMA:
        found = data.get("schema")
        what = "no \"schema\" key" if found is None else f"schema {found!r}"
        return [f"$.schema: not a {SCHEMA} document ({what})"]
    if _vouched(data) is not None:
        return []
    errors = sorted(validator().iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    return [_describe(e) for e in errors]


def validate(data: Any) -> None:
    """Raise ``ResultLoadError`` unless ``data`` (parsed JSON: dicts with string keys, lists,
    strings, numbers, booleans, None) is a valid ``hostguard/result/v1`` document:
    one that fits the schema, whose waivers expire on real dates and whose summary says what its
    results say. Every reader of result files (``load_run``, the fleet page) holds to this."""
    _validated(data)


def _validated(data: Any) -> list[Check]:
    """``validate``, and the check of each result."""
    checks = _vouched(data)
    if checks is None:
        found = problems(data)
        if found:
            more = f" (and {len(found) - 1} more problem(s))" if len(found) > 1 else ""
            raise ResultLoadError(f"invalid {SCHEMA} document: {found[0]}{more}")
        checks = [_check(entry) for entry in data["results"]]  # valid; quickcheck was unsure
    _check_meaning(data)
    return checks


def load_run(data: dict[str, Any]) -> AuditRun:
    """Validate ``data`` (``validate``) and rebuild the run; raise ``ResultLoadError`` when it
    is not valid."""
    checks = _validated(data)
    host = data["host"]
    results = tuple(map(_result, data["results"], checks))
    summary = data["summary"]
    return AuditRun(
        host=HostFacts(**{f.name: host[f.name] for f in fields(HostFacts)}),
        root=host["root"],
        labels=dict(host["labels"]),
        policies=tuple(PolicyFile(f["path"], f["name"], f["version"], f["sha256"])
                       for f in data["policy"]["files"]),
        policy_digest=data["policy"]["digest"],
        started=data["started"],
        duration_ms=data["duration_ms"],
        results=results,
        tool_version=data["tool"]["version"],
        counts={s.value: summary[s.value] for s in Status},
    )


def _location(value: Mapping[str, Any]) -> Location:
    return Location(value["path"], value["line"], value["column"])


def _selector(value: Mapping[str, Any]) -> HostSelector:
    return HostSelector(tuple(value["hostnames"]), dict(value["labels"]))


def _check(entry: Mapping[str, Any]) -> Check:
    return Check(
        id=entry["id"],
        kind=entry["kind"],
        title=entry["title"],
        severity=_SEVERITIES[entry["severity"]],
        rationale=entry["rationale"],
        remediation=entry["remediation"],
        references=tuple(entry["references"]),
        spec=entry["spec"],
        raw_spec=entry["spec"],
        location=_location(entry["location"]),
        policy=entry["policy"],
        hosts=_selector(entry["hosts"]),
        roots=tuple(_selector(s) for s in entry["roots"]),
        overridden_at=tuple(_location(loc) for loc in entry["overridden_at"]),
    )


def _result(entry: Mapping[str, Any], check: Check) -> Result:
    """The result ``entry`` (of a valid document) of ``check``."""
    waiver = None
    waived_status = None
    if entry["waiver"] is not None:
        raw = entry["waiver"]
        waiver = Waiver(check.id, raw["reason"], dt.date.fromisoformat(raw["expires"]),
                        tuple(raw["hosts"]), _location(raw["location"]))
        waived_status = None if raw["status"] is None else _STATUSES[raw["status"]]
    evidence = entry["evidence"]
    return Result(
        check=check,
        status=_STATUSES[entry["status"]],
        message=entry["message"],
        evidence=Evidence(evidence["expected"], evidence["actual"],
                          tuple(map(dict, evidence["items"]))),
        waiver=waiver,
        waived_status=waived_status,
        duration_ms=entry["duration_ms"],
    )


def _check_meaning(data: Mapping[str, Any]) -> None:
    """What the schema cannot say of a document that fits it: each waiver expires on a real date,
    and the summary says what the results say (an edited file is refused, not re-rendered)."""
    results = data["results"]
    for index, entry in enumerate(results):
        if entry["waiver"] is not None:
            expires = entry["waiver"]["expires"]
            try:
                dt.date.fromisoformat(expires)
            except ValueError:
                raise ResultLoadError(f"invalid {SCHEMA} document: $.results[{index}].waiver."
                                      f"expires: {expires!r} is not a date") from None
    summary = data["summary"]
    statuses = Counter(entry["status"] for entry in results)
    expected: dict[str, int] = {"total": len(results)}
    for status in Status:
        expected[status.value] = statuses[status.value]
    for key, count in expected.items():
        if summary[key] != count:
            raise ResultLoadError(f"invalid {SCHEMA} document: $.summary.{key}: "
                                  f"{summary[key]}, but the results hold {count}")
    failed = Counter(entry["severity"] for entry in results if entry["status"] == "fail")
    by_severity = {s.value: failed[s.value] for s in Severity if s.value in failed}
    if dict(summary["failed_by_severity"]) != by_severity:
        raise ResultLoadError(f"invalid {SCHEMA} document: $.summary.failed_by_severity: "
                              f"{summary['failed_by_severity']}, but the results hold "
                              f"{by_severity}")
