"""AuditRun builders for the HTML and fleet report tests (results made by hand, no host read)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from html.parser import HTMLParser
from typing import Any

from agent.core.location import Location
from agent.host.facts import HostFacts
from agent.policy.model import Check, Severity, Waiver
from agent.result import AuditRun, Evidence, PolicyFile, Result, Status

SCRIPT = "<script>window.__pwned = 'script'; alert(1)</script>"
IMG = '"><img src=x onerror="window.__pwned = \'img\'; alert(2)">'
TEMPLATE = "{{ 7*7 }}{% if 1 %}jinja{% endif %}"
CLOSE = "</script><script>window.__pwned = 'close'</script></style>"
PAYLOADS = (SCRIPT, IMG, TEMPLATE, CLOSE)
"""Hostile strings: none may run, each must show literally."""


def make_check(cid: str, severity: str = "high", kind: str = "sysctl", *,
               title: str | None = None, line: int = 1, rationale: str = "why",
               remediation: str = "fix it", references: Sequence[str] = ()) -> Check:
    return Check(id=cid, kind=kind, title=title or f"check {cid}", severity=Severity(severity),
                 rationale=rationale, remediation=remediation, references=tuple(references),
                 spec={}, raw_spec={}, location=Location("policies/p.yaml", line, 5),
                 policy="p")


def make_result(check: Check, status: str, actual: str = "", *, expected: str = "",
                items: Sequence[Mapping[str, Any]] = (), message: str | None = None,
                waiver: Waiver | None = None, waived_status: str | None = None) -> Result:
    return Result(check, Status(status), message if message is not None else f"{check.id} {status}",
                  Evidence(expected or f"{check.id} ok", actual or status, tuple(items)),
                  waiver, Status(waived_status) if waived_status else None, 1.5)


def make_waiver(cid: str, reason: str = "vendor fix pending", hosts: Sequence[str] = ()) -> Waiver:
    return Waiver(cid, reason, dt.date(2026, 12, 31), tuple(hosts),
                  Location("policies/p.yaml", 90, 7))


def make_run(hostname: str, results: Sequence[Result], started: str = "2026-06-01T10:00:00Z",
             labels: Mapping[str, str] | None = None, policy_name: str = "p") -> AuditRun:
    counts = {s.value: sum(1 for r in results if r.status is s) for s in Status}
    files = (PolicyFile("policies/p.yaml", policy_name, "1", "ab" * 32),)
    return AuditRun(host=HostFacts(hostname, "6.1.0-18-amd64", "#1 SMP", "0123-boot", "m1",
                                   "x86_64", "Debian 12"),
                    root="/", labels=dict(labels or {}), policies=files,
                    policy_digest="cd" * 32, started=started, duration_ms=12.0,
                    results=tuple(results), tool_version="0.1.0", counts=counts)


def process_items(names: Sequence[str]) -> list[dict[str, Any]]:
    """Evidence rows as the process check writes them."""
    return [{"pid": 800 + i, "name": name, "user": "root", "uid": 0,
             "cmdline": f"/usr/sbin/{name} --flag {name}"} for i, name in enumerate(names)]


def hostile_run() -> AuditRun:
    """A run whose host and policy data carry every payload (and one check of each status)."""
    rows = [*process_items([SCRIPT, IMG, TEMPLATE]),
            {"pid": 900, "name": "telnetd", "user": "nobody", "uid": 65534, "cmdline": CLOSE,
             SCRIPT: "key from the host"}]
    forbidden = make_check("PROC-001", "critical", "process", title=f"no {IMG}",
                           rationale=f"hostile rationale {SCRIPT}", references=[
                               "javascript:window.__pwned='ref'", TEMPLATE])
    results = [
        make_result(make_check("KRN-001", "high"), "pass", "2"),
        make_result(forbidden, "fail", f"{len(rows)} processes", expected="no such process",
                    items=rows,
                    message=f"forbidden processes running: {SCRIPT}"),
        make_result(make_check("LAT-001", "medium", title=TEMPLATE), "fail", "60"),
        make_result(make_check("KRN-009", "low", "sysctl"), "error", "permission denied"),
        make_result(make_check("NET-001", "high", "ports"), "waived", "port 23 open",
                    waiver=make_waiver("NET-001", f"waived because {IMG}"),
                    waived_status="fail"),
        make_result(make_check("CG-001", "info", "cgroup"), "not_applicable", "no cgroup v2"),
    ]
    return make_run(f"trd-{SCRIPT}", results, labels={"role": IMG})


class Page(HTMLParser):
    """A parsed page: every start tag with its attributes, the text, and inline bodies."""

    def __init__(self, body: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.inline: dict[str, list[str]] = {"script": [], "style": []}
        self._in: str | None = None
        self.feed(body)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        if tag in self.inline:
            self._in = tag
            self.inline[tag].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self.inline[self._in][-1] += data
        else:
            self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.tags if name == tag]

    def ids(self) -> set[str]:
        return {attrs["id"] for _, attrs in self.tags if "id" in attrs}

    def plain(self) -> str:
        return "".join(self.text)
