"""Self-contained HTML report (Jinja2): one file, inline CSS/JS under a hash-based CSP.

Every template is rendered with autoescape on and ``StrictUndefined``; host and policy data only
ever reach the page through escaped expressions (never ``|safe``), and the page's own stylesheet
and script are allowed by their SHA-256 in the Content-Security-Policy, computed at render time.
No ``'unsafe-inline'``, no inline event handlers, no request to any network or file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from agent.core.location import Location
from agent.policy.model import Severity
from agent.report.score import (
    FAILING,
    Change,
    drift,
    evidence_digest,
    score,
    score_band,
    verdict,
    weights,
)
from agent.result import AuditRun, Result, Status

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATUS_ORDER = (Status.FAIL, Status.ERROR, Status.WAIVED, Status.PASS, Status.NOT_APPLICABLE)
"""Display order: failures first."""
SEVERITY_ORDER = tuple(Severity)
ITEM_LIMIT = 500
"""Evidence rows shown per check; the JSON result keeps them all."""
TOP_SEVERITIES = (Severity.CRITICAL, Severity.HIGH)
"""Failing checks of these severities are named on the first screen."""
TOP_LIMIT = 8
"""At most this many of them there, so the first screen stays one screen; the rest follow."""
_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def visible(value: Any) -> Any:
    """Every ``{{ }}`` output passes here before escaping: control, format (bidi) and
    unpaired-surrogate characters in host data are shown as escapes (``\\x1b``, ``\\u202e``,
    ``\\udcff``) instead of reordering or hiding text; newlines and tabs stay. What is HTML
    already (``__html__``, as escaping sees it: a piece a template rendered) is left as it is:
    its data came through here when it was rendered."""
    if not isinstance(value, str) or value.isprintable() or hasattr(value, "__html__"):
        return value
    return "".join(c if c.isprintable() or c in "\n\t" else repr(c)[1:-1] for c in value)


def environment() -> Environment:
    """The one Jinja2 environment: autoescape for every template, undefined names are errors,
    every expression's text made visible (``visible``)."""
    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                       finalize=visible)


_ENV = environment()


def csp_hash(text: str) -> str:
    """``'sha256-...'`` source expression for an inline ``<style>`` or ``<script>`` body."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def content_security_policy(style: str, script: str) -> str:
    """Nothing may load; only the page's own style and script (by hash) may apply or run."""
    return ("default-src 'none'; "
            f"style-src {csp_hash(style)}; script-src {csp_hash(script)}; "
            "img-src 'none'; base-uri 'none'; form-action 'none'")


def page(template: str, script: str, context: Mapping[str, Any],
         style: str = "report.css") -> str:
    """Render ``template`` with the stylesheet ``style`` and ``script`` included inline."""
    style_text = _ENV.get_template(style).render()
    script_text = _ENV.get_template(script).render()
    for name, body, tag in ((style, style_text, "</style"),
                            (script, script_text, "</script")):
        if tag in body.lower():  # would end the element early
            raise ValueError(f"{name} must not contain {tag}")
    return _ENV.get_template(template).render(
        csp=content_security_policy(style_text, script_text), style=style, script=script,
        **context)


def macros(template: str) -> Any:
    """The macros of ``template`` (a template that only defines macros), to call from Python:
    each call renders through the one environment and returns its escaped HTML."""
    return _ENV.get_template(template).module


def cell(value: Any) -> str:
    """An evidence value as text: scalars as written, structures as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def item_table(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Columns (every key, in order of first appearance) and rows of text cells."""
    columns: dict[str, None] = {}
    for item in items:
        columns.update(dict.fromkeys(str(k) for k in item))
    names = list(columns)
    shown = items[:ITEM_LIMIT]
    rows = [[cell(dict(item).get(k)) for k in names] for item in shown]
    return {"columns": names, "rows": rows, "more": len(items) - len(shown)}


def code_spans(text: str) -> list[tuple[bool, str]]:
    """``text`` cut at its Markdown code spans (`` `like this` ``): (is code, text) pieces,
    the backticks dropped. The template puts each code piece in ``<code>``; every piece is
    escaped like any other text (no markup is built here)."""
    pieces: list[tuple[bool, str]] = []
    at = 0
    for match in _CODE_SPAN.finditer(text):
        if match.start() > at:
            pieces.append((False, text[at:match.start()]))
        pieces.append((True, match.group(1)))
        at = match.end()
    if at < len(text) or not pieces:
        pieces.append((False, text[at:]))
    return pieces


def first_line(text: str) -> str:
    """The first non-empty line of a message: the one-line finding."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _location(loc: Location) -> str:
    return f"{loc.path}:{loc.line}"


def check_view(result: Result, index: int) -> dict[str, Any]:
    """Everything one row shows."""
    check = result.check
    waiver = result.waiver
    return {
        "anchor": f"c{index}",
        "order": index,
        "rank": 0,
        "id": check.id,
        "title": check.title,
        "kind": check.kind,
        "severity": check.severity.value,
        "status": result.status.value,
        "message": result.message,
        "expected": result.evidence.expected,
        "actual": result.evidence.actual,
        "table": item_table(result.evidence.items),
        "finding": first_line(result.message),
        "rationale": code_spans(check.rationale),
        "remediation": code_spans(check.remediation),
        "references": list(check.references),
        "policy": check.policy,
        "location": _location(check.location),
        "overridden_at": [_location(o) for o in check.overridden_at],
        "waiver": None if waiver is None else {
            "reason": waiver.reason, "expires": waiver.expires.isoformat(),
            "hosts": list(waiver.hosts), "location": _location(waiver.location),
            "covers": result.waived_status.value if result.waived_status else "",
        },
        "duration_ms": f"{result.duration_ms:.1f}",
    }


def ordered(results: Sequence[Result]) -> list[dict[str, Any]]:
    """Row views, failures first: status, then severity, then policy order."""
    views = [check_view(r, i) for i, r in enumerate(results)]
    rank = sorted(range(len(results)), key=lambda i: (
        STATUS_ORDER.index(results[i].status),
        SEVERITY_ORDER.index(results[i].check.severity), i))
    out = []
    for position, i in enumerate(rank):
        views[i]["rank"] = position
        out.append(views[i])
    return out


def bars(counts: Iterable[tuple[str, int]], width: int = 1000) -> list[dict[str, Any]]:
    """Segments of a 100% stacked bar: name, count, x, width (SVG user units)."""
    pairs = [(name, n) for name, n in counts if n]
    total = sum(n for _, n in pairs)
    out, x = [], 0.0
    for name, n in pairs:
        w = width * n / total
        out.append({"name": name, "count": n, "x": round(x, 2), "width": round(w, 2)})
        x += w
    return out


def summary_view(run: AuditRun) -> dict[str, Any]:
    """Score, counts by status and severity, chart geometry."""
    by_status = {s.value: 0 for s in STATUS_ORDER}
    matrix = {sev.value: {s.value: 0 for s in STATUS_ORDER} for sev in SEVERITY_ORDER}
    failing_kinds: dict[str, dict[str, int]] = {}
    for r in run.results:
        by_status[r.status.value] += 1
        matrix[r.check.severity.value][r.status.value] += 1
        if r.status in FAILING:
            entry = failing_kinds.setdefault(r.check.kind, {"fail": 0, "error": 0})
            entry[r.status.value] += 1
    passed, total = weights(run)
    value = score(run)
    kinds = sorted(failing_kinds.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    widest = max((sum(v.values()) for _, v in kinds), default=0)
    kind_bars = [{"kind": k, "fail": v["fail"], "error": v["error"],
                  "fail_width": round(600 * v["fail"] / widest, 2),
                  "error_width": round(600 * v["error"] / widest, 2), "y": 28 * i}
                 for i, (k, v) in enumerate(kinds)]
    band, meaning = score_band(value)
    return {
        "score": "n/a" if value is None else f"{value:.1f}",
        "band": band,
        "meaning": meaning,
        "passed_weight": passed, "total_weight": total,
        "weights": [(sev.value, sev.weight) for sev in SEVERITY_ORDER],
        "total": len(run.results),
        "by_status": by_status,
        "by_severity": [(sev, matrix[sev]) for sev in matrix],
        "status_bar": bars(by_status.items()),
        "kind_bars": kind_bars,
        "kind_height": max(28 * len(kind_bars), 28),
    }


def run_view(run: AuditRun) -> dict[str, Any]:
    """Host facts and policy files for the header."""
    host = run.host
    return {
        "hostname": host.hostname,
        "facts": [("hostname", host.hostname), ("kernel", host.kernel_release or "unknown"),
                  ("kernel build", host.kernel_version or "unknown"),
                  ("boot id", host.boot_id or "unknown"),
                  ("machine id", host.machine_id or "unknown"),
                  ("architecture", host.arch or "unknown"), ("os", host.os_name or "unknown"),
                  ("root", run.root), ("started (UTC)", run.started),
                  ("duration", f"{run.duration_ms:.0f} ms"),
                  ("hostguard", run.tool_version or "unknown")],
        "labels": sorted(run.labels.items()),
        "policies": [{"name": p.name, "version": p.version or "", "path": p.path,
                      "sha256": p.sha256} for p in run.policies],
        "policy_names": sorted({p.name for p in run.policies}),
        "digest": run.policy_digest,
        "started": run.started,
    }


def _side(result: Result | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {"status": result.status.value, "expected": result.evidence.expected,
            "actual": result.evidence.actual, "digest": evidence_digest(result.evidence)[:16],
            "message": result.message}


def drift_view(run: AuditRun, baseline: AuditRun) -> dict[str, Any]:
    """The drift section: one list per kind of change."""
    found = drift(run, baseline)

    def rows(changes: Sequence[Change]) -> list[dict[str, Any]]:
        return [{"id": c.id, "title": c.title, "before": _side(c.before), "after": _side(c.after)}
                for c in changes]

    return {
        "baseline": {"hostname": baseline.host.hostname, "started": baseline.started,
                     "digest": baseline.policy_digest,
                     "score": "n/a" if score(baseline) is None else f"{score(baseline):.1f}"},
        "same_host": baseline.host.hostname == run.host.hostname,
        "same_policy": baseline.policy_digest == run.policy_digest,
        "empty": found.empty,
        "sections": [
            ("newly-failing", "Newly failing", rows(found.newly_failing)),
            ("fixed", "Fixed", rows(found.fixed)),
            ("status-changed", "Other status changes", rows(found.status_changed)),
            ("evidence-changed", "Same status, changed evidence", rows(found.evidence_changed)),
            ("removed", "No longer checked", rows(found.removed)),
        ],
    }


def verdict_view(run: AuditRun, checks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The first screen's verdict and the failing critical and high checks (``checks`` in
    display order: failures first, then severity)."""
    found = verdict(run)
    top = [c for c in checks if c["status"] in {s.value for s in FAILING}
           and c["severity"] in {s.value for s in TOP_SEVERITIES}]
    failing = sum(1 for c in checks if c["status"] in {s.value for s in FAILING})
    return {"state": found.state, "words": found.words, "detail": found.detail,
            "top": top[:TOP_LIMIT], "top_more": len(top) - len(top[:TOP_LIMIT]),
            "top_total": len(top), "other_failing": failing - len(top)}


def render(run: AuditRun, baseline: AuditRun | None = None) -> str:
    """The whole report; with ``baseline``, a drift section against that earlier run."""
    checks = ordered(run.results)
    return page("report.html.j2", "report.js", {
        "run": run_view(run),
        "summary": summary_view(run),
        "verdict": verdict_view(run, checks),
        "checks": checks,
        "statuses": [s.value for s in STATUS_ORDER],
        "severities": [s.value for s in SEVERITY_ORDER],
        "kinds": sorted({r.check.kind for r in run.results}),
        "drift": None if baseline is None else drift_view(run, baseline),
    })
