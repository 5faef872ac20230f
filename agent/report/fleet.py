"""The fleet page: many hosts' results on one self-contained HTML page.

A host x check matrix of status cells, hosts ordered by hardening score (worst first; hosts with
nothing scored last, ties by hostname), checks ordered by how many hosts fail them, and one
section per host inside the same file (cells and host names link to its anchors): the page
stays one file to archive or mail, with no link that can break. A host is its hostname and
machine id (hostnames collide: every host whose name is unreadable is ``unknown``); when several
results are of the same host, the latest (by start time) is shown and the others are listed as
superseded.
Same Jinja2 environment, stylesheet and hash-based Content-Security-Policy as the host report.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from agent.policy.model import Severity
from agent.report.html import page
from agent.report.score import score
from agent.result import AuditRun, Result, Status

SYMBOLS = {"pass": "\u2713", "fail": "\u2717", "error": "!", "waived": "W", "not_applicable": "-"}
"""Matrix cell text, readable without colour (and in print)."""
SHOWN = (Status.FAIL, Status.ERROR, Status.WAIVED)
"""Statuses listed in a host's section (passing and not applicable ones are only counted)."""
_SEVERITIES = tuple(Severity)


def host_key(run: AuditRun, index: int) -> tuple[str, str | int]:
    """Who a result is about: its hostname and machine id. Hostnames collide (every host whose
    name could not be read is ``unknown``), so two results are one host only when both match; a
    result without a machine id is a host of its own (``index``), since nothing shows it is the
    same machine as another."""
    machine = run.host.machine_id
    return run.host.hostname, machine if machine else index


def latest(runs: Sequence[AuditRun]) -> tuple[list[AuditRun], list[AuditRun]]:
    """(the latest run per host (``host_key``), the older ones it supersedes)."""
    best: dict[tuple[str, str | int], AuditRun] = {}
    older: list[AuditRun] = []
    for index, run in enumerate(runs):
        key = host_key(run, index)
        kept = best.get(key)
        if kept is None:
            best[key] = run
        elif run.started > kept.started:
            older.append(kept)
            best[key] = run
        else:
            older.append(run)
    return list(best.values()), older


def label(run: AuditRun, names: Counter[str]) -> str:
    """How ``run``'s host is named on the page: its hostname, with its machine id (or that it
    has none, and when it ran) where ``names`` counts more than one host of that name."""
    name = run.host.hostname
    if names[name] > 1:
        machine = run.host.machine_id
        name += f" (machine {machine})" if machine else f" (no machine id, {run.started})"
    return name


def render(runs: Sequence[AuditRun]) -> str:
    """The fleet page for ``runs`` (at least one)."""
    if not runs:
        raise ValueError("a fleet page needs at least one result")
    current, superseded = latest(runs)
    names = Counter(r.host.hostname for r in current)
    scored = [(score(r), label(r, names), r) for r in current]
    scored.sort(key=lambda sr: (sr[0] is None, sr[0] or 0.0, sr[1]))

    checks: dict[str, dict[str, Any]] = {}
    for _, _, run in scored:
        for r in run.results:
            entry = checks.setdefault(r.check.id, {
                "id": r.check.id, "title": r.check.title, "kind": r.check.kind,
                "severity": r.check.severity.value, "fail": 0, "error": 0, "waived": 0,
                "hosts": 0, "rank": _SEVERITIES.index(r.check.severity)})
            entry["hosts"] += 1
            if r.status.value in ("fail", "error", "waived"):
                entry[r.status.value] += 1
    columns = sorted(checks.values(), key=lambda c: (-c["fail"], -c["error"], c["rank"], c["id"]))
    index = {c["id"]: j for j, c in enumerate(columns)}
    for j, c in enumerate(columns):
        c["anchor"] = f"k{j}"

    hosts = []
    for i, (value, name, run) in enumerate(scored):
        by_id = {r.check.id: r for r in run.results}
        cells = []
        for c in columns:
            found = by_id.get(c["id"])
            if found is None:
                cells.append(("", "", ""))
            else:
                link = f"h{i}-{index[c['id']]}" if found.status in SHOWN else ""
                cells.append((found.status.value, SYMBOLS[found.status.value], link))
        listed = sorted((r for r in run.results if r.status in SHOWN),
                        key=lambda r: (index[r.check.id]))
        hosts.append({
            "anchor": f"h{i}", "hostname": name,
            "score": "n/a" if value is None else f"{value:.1f}",
            "started": run.started, "kernel": run.host.kernel_release or "unknown",
            "boot_id": run.host.boot_id or "unknown", "digest": run.policy_digest,
            "policies": ", ".join(sorted({p.name for p in run.policies})),
            "counts": {s.value: sum(1 for r in run.results if r.status is s) for s in Status},
            "cells": cells,
            "listed": [_row(r, f"h{i}-{index[r.check.id]}") for r in listed],
        })
    values = [v for v, _, _ in scored if v is not None]
    return page("fleet.html.j2", "fleet.js", {
        "hosts": hosts,
        "columns": columns,
        "symbols": list(SYMBOLS.items()),
        "median": f"{statistics.median(values):.1f}" if values else "n/a",
        "lowest": f"{min(values):.1f}" if values else "n/a",
        "digests": len({r.policy_digest for r in current}),
        "superseded": [(label(r, names), r.started) for r in superseded],
    })


def _row(result: Result, anchor: str) -> dict[str, str]:
    return {"anchor": anchor, "id": result.check.id, "title": result.check.title,
            "severity": result.check.severity.value, "status": result.status.value,
            "message": result.message, "expected": result.evidence.expected,
            "actual": result.evidence.actual}
