"""``hostguard/result/v1`` JSON: the source every other report form can be rendered from.

The document is described by ``agent/report/result.schema.json`` (shipped in the package) and read
back by ``agent.report.load.load_run``. Order is stable so two runs diff cleanly: results in policy
order, keys in a fixed order, mappings whose order carries no meaning (labels, counts by severity)
sorted or in severity order.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from agent.core.location import Location
from agent.policy.model import HostSelector, Severity
from agent.result import AuditRun, Result

SCHEMA = "hostguard/result/v1"


def location_dict(location: Location) -> dict[str, Any]:
    """``{"path", "line", "column"}``."""
    return {"path": location.path, "line": location.line, "column": location.col}


def selector_dict(selector: HostSelector) -> dict[str, Any]:
    """``{"hostnames": [...], "labels": {...}}``; empty lists/objects select every host."""
    return {"hostnames": list(selector.hostnames), "labels": dict(sorted(selector.labels.items()))}


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
        "location": location_dict(check.location),
        "overridden_at": [location_dict(loc) for loc in check.overridden_at],
        "hosts": selector_dict(check.hosts),
        "roots": [selector_dict(s) for s in check.roots],
        "evidence": {"expected": result.evidence.expected, "actual": result.evidence.actual,
                     "items": [dict(i) for i in result.evidence.items]},
        "waiver": None if waiver is None else {
            "reason": waiver.reason, "expires": waiver.expires.isoformat(),
            "hosts": list(waiver.hosts), "status": result.waived_status.value
            if result.waived_status else None,
            "location": location_dict(waiver.location),
        },
        "rationale": check.rationale,
        "remediation": check.remediation,
        "references": list(check.references),
        "spec": check.raw_spec,
        "duration_ms": result.duration_ms,
    }


def as_dict(run: AuditRun) -> dict[str, Any]:
    """The whole run, in a stable key order."""
    failed = [r.check.severity for r in run.results if r.status.value == "fail"]
    failed_by_severity = {s.value: failed.count(s) for s in Severity if s in failed}
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
