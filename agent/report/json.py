"""``hostguard/result/v1`` JSON: the source every other report form can be rendered from."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from agent.result import AuditRun, Result

SCHEMA = "hostguard/result/v1"


def result_dict(result: Result) -> dict[str, Any]:
    """One check's entry."""
    check = result.check
    waiver = result.waiver
    return {
        "id": check.id,
        "kind": check.kind,
        "title": check.title,
        "severity": check.severity.value,
        "status": result.status.value,
        "message": result.message,
        "policy": check.policy,
        "location": {"path": check.location.path, "line": check.location.line,
                     "column": check.location.col},
        "evidence": {"expected": result.evidence.expected, "actual": result.evidence.actual,
                     "items": [dict(i) for i in result.evidence.items]},
        "waiver": None if waiver is None else {
            "reason": waiver.reason, "expires": waiver.expires.isoformat(),
            "hosts": list(waiver.hosts), "status": result.waived_status.value
            if result.waived_status else None,
            "location": {"path": waiver.location.path, "line": waiver.location.line,
                         "column": waiver.location.col},
        },
        "rationale": check.rationale,
        "remediation": check.remediation,
        "references": list(check.references),
        "spec": check.raw_spec,
        "duration_ms": result.duration_ms,
    }


def as_dict(run: AuditRun) -> dict[str, Any]:
    """The whole run, in a stable key order."""
    failed_by_severity: dict[str, int] = {}
    for r in run.results:
        if r.status.value == "fail":
            sev = r.check.severity.value
            failed_by_severity[sev] = failed_by_severity.get(sev, 0) + 1
    return {
        "schema": SCHEMA,
        "tool": {"name": "hostguard", "version": run.tool_version},
        "host": {**asdict(run.host), "root": run.root, "labels": dict(sorted(run.labels.items()))},
        "policy": {"digest": run.policy_digest, "files": [asdict(f) for f in run.policies]},
        "started": run.started,
        "duration_ms": run.duration_ms,
        "summary": {"total": len(run.results), **run.counts,
                    "failed_by_severity": failed_by_severity},
        "results": [result_dict(r) for r in run.results],
    }


def render(run: AuditRun) -> str:
    """Indented JSON with a trailing newline."""
    # ensure_ascii: control and bidi characters in host data arrive escaped, never raw.
    return json.dumps(as_dict(run), indent=2, ensure_ascii=True) + "\n"
