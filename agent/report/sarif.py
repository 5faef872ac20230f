"""SARIF 2.1.0 for audit results (code-scanning dashboards, SARIF viewers).

- ``tool.driver.rules``: one per check, in policy order: ``shortDescription`` the title,
  ``fullDescription`` the rationale, ``help`` the remediation (plain text only: policy text is not
  trusted as markdown), ``properties`` severity, kind, tags, references and a GitHub
  ``security-severity``; ``defaultConfiguration.level`` from the severity.
- ``results``: one per check that needs attention, located at the policy file line of the check:
  ``fail`` -> kind ``fail`` with level from severity (critical/high ``error``, medium ``warning``,
  low/info ``note``); ``error`` (could not be evaluated, never compliant) -> kind ``fail`` with
  level ``error`` and ``properties.status`` ``error``; ``waived`` -> the waived verdict's result
  with a ``suppressions`` entry (``external``, ``accepted``, justification = the waiver's reason,
  located at the waiver). Passing and not-applicable checks are counted in ``run.properties``
  only: SARIF consumers such as GitHub code scanning ignore ``kind`` and would raise them as
  alerts.
- ``invocations[0]``: start and end time, the audited host's facts in ``properties``.

Relative policy paths use ``uriBaseId`` ``SRCROOT`` (the folder the audit ran from), left
undefined in ``originalUriBaseIds`` because a report rendered elsewhere cannot know it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import asdict
from typing import Any

from agent.core import sarif as common
from agent.policy.model import Severity
from agent.result import AuditRun, Result, Status

LEVELS = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning",
          Severity.LOW: "note", Severity.INFO: "note"}
"""SARIF level of a failed check, by severity."""
SECURITY_SEVERITY = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5",
                     Severity.LOW: "3.0"}
"""GitHub code scanning's numeric severity (info checks carry none)."""


def rule(result: Result) -> dict[str, Any]:
    """The reporting descriptor of one check."""
    check = result.check
    properties: dict[str, Any] = {"severity": check.severity.value, "kind": check.kind,
                                  "policy": check.policy,
                                  "tags": ["hostguard", check.kind, check.severity.value],
                                  "references": list(check.references)}
    if check.severity in SECURITY_SEVERITY:
        properties["security-severity"] = SECURITY_SEVERITY[check.severity]
    return {
        "id": check.id,
        "shortDescription": {"text": check.title},
        "fullDescription": {"text": check.rationale or check.title},
        "help": {"text": check.remediation or "No remediation given."},
        "defaultConfiguration": {"level": LEVELS[check.severity]},
        "properties": properties,
    }


def _verdict(result: Result) -> Status:
    if result.status is Status.WAIVED:
        return result.waived_status or Status.FAIL
    return result.status


def finding(result: Result, index: int, hostname: str) -> dict[str, Any] | None:
    """The SARIF result of one check, or None for pass and not applicable."""
    check = result.check
    if result.status in (Status.PASS, Status.NOT_APPLICABLE):
        return None
    verdict = _verdict(result)
    level = "error" if verdict is Status.ERROR else LEVELS[check.severity]
    prefix = "could not be evaluated: " if verdict is Status.ERROR else ""
    evidence = result.evidence
    text = (f"{check.id}: {prefix}{result.message}\n"
            f"expected: {evidence.expected}\nactual: {evidence.actual}")
    fingerprint = hashlib.sha256(f"{hostname}\0{check.id}".encode(errors="surrogateescape"))
    entry: dict[str, Any] = {
        "ruleId": check.id,
        "ruleIndex": index,
        "kind": "fail",
        "level": level,
        "message": {"text": text},
        "locations": [common.physical_location(check.location.path, check.location.line,
                                               check.location.col)],
        "partialFingerprints": {"hostguardHostCheck/v1": fingerprint.hexdigest()},
        "properties": {"status": result.status.value, "severity": check.severity.value,
                       "evidence": {"expected": evidence.expected, "actual": evidence.actual,
                                    "items": [dict(i) for i in evidence.items]}},
    }
    if result.waiver is not None:
        waiver = result.waiver
        entry["suppressions"] = [{
            "kind": "external", "status": "accepted", "justification": waiver.reason,
            "location": common.physical_location(waiver.location.path, waiver.location.line,
                                                 waiver.location.col),
            "properties": {"expires": waiver.expires.isoformat(), "hosts": list(waiver.hosts),
                           "waived_status": verdict.value},
        }]
    return entry


def _end_time(started: str, duration_ms: float) -> str:
    start = dt.datetime.fromisoformat(started.replace("Z", "+00:00"))
    end = start + dt.timedelta(milliseconds=duration_ms)
    return end.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def render(run: AuditRun) -> str:
    """A SARIF 2.1.0 log with one run."""
    hostname = run.host.hostname
    rules = [rule(r) for r in run.results]
    results = [entry for i, r in enumerate(run.results)
               if (entry := finding(r, i, hostname)) is not None]
    host = {**asdict(run.host), "root": run.root, "labels": dict(sorted(run.labels.items()))}
    sarif_run: dict[str, Any] = {
        "tool": {"driver": common.driver(rules)},
        "automationDetails": {"id": f"hostguard/audit/{hostname}/"},
        "columnKind": "unicodeCodePoints",
        "invocations": [{
            "executionSuccessful": True,
            "startTimeUtc": run.started,
            "endTimeUtc": _end_time(run.started, run.duration_ms),
            "machine": hostname,
            "properties": {"host": host},
        }],
        "results": results,
        "properties": {
            "schema": "hostguard/result/v1",
            "policy": {"digest": run.policy_digest,
                       "files": [asdict(f) for f in run.policies]},
            "summary": {"total": len(run.results), **run.counts},
        },
    }
    return common.log([sarif_run])
