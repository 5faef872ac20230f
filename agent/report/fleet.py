"""The fleet page: many hosts' results on one self-contained HTML page.

It opens with the fleet's verdict and the distribution of hardening scores, then the worst hosts
and the most failed checks, then a host x check matrix of coloured status cells (hosts by score,
worst first, hosts with nothing scored last, ties by name; checks by how many hosts fail them),
the table of every check, and one section per host inside the same file (cells and host names
link to its anchors): the page stays one file to archive or mail, with no link that can break.
A host is its hostname and machine id (hostnames collide: every host whose name is unreadable is
``unknown``); when several results are of the same host, the latest (by start time) is shown and
the others are listed as superseded.

A result is reduced to what the page shows of it as soon as it is added (``view`` where the
result file is read, or ``Fleet.add`` of a run): its status per check, and its section already
rendered (``fleet_host.html.j2``: the paragraph about the host and the rows of its failing,
erroring and waived checks). ``view`` reads the result document itself (``hostguard/result/v1``,
once ``load.validate`` has accepted it, by the rules ``load_run`` holds to), not a run rebuilt
from it; ``Fleet.add`` makes a run that document first (``json.as_dict``), so there is one way
from a result to its view. So ``report merge`` holds one full result at a time, whatever the size
of the fleet, and its worker processes render the sections, leaving the page only what the whole
fleet decides (order, names, columns, and the anchors that join them). Same Jinja2 environment,
escaping and hash-based Content-Security-Policy as the host report.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Container, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from markupsafe import Markup

from agent.policy.model import Severity
from agent.report.html import macros, page
from agent.report.json import as_dict
from agent.report.score import percent, weighed
from agent.result import AuditRun, Status

SYMBOLS = {"pass": "\u2713", "fail": "\u2717", "error": "!", "waived": "W", "not_applicable": "-"}
"""Matrix cell text, readable without colour (and in print); the cell's background says it too."""
SHOWN = (Status.FAIL, Status.ERROR, Status.WAIVED)
"""Statuses listed in a host's section (passing and not applicable ones are only counted)."""
TOP = 10
"""Hosts and checks named in the worst-first lists at the top."""
BANDS = ((50.0, "bad"), (80.0, "poor"), (95.0, "fair"), (100.0, "good"))
"""Score bands (upper bound, name) that colour scores and the distribution."""
_SEVERITIES = tuple(Severity)
_STATUS_RANK = {s.value: i for i, s in enumerate(SHOWN)}
_SEVERITY_RANK = {s.value: i for i, s in enumerate(_SEVERITIES)}
_STATUSES = {s.value: s for s in Status}
_SEVERITY_OF = {s.value: s for s in _SEVERITIES}
# A matrix cell holds no host or policy data (a status, and a link made of two integers), so a
# row of cells is put together here from these fixed pieces: one expression per row for the
# template instead of three per cell, which is most of a thousand-host page's rendering.
_EMPTY = '<td class="c"></td>'
_PLAIN = {status: f'<td class="c s-{status}">{symbol}</td>' for status, symbol in SYMBOLS.items()}
_LINKED = {status: f'<td class="c s-{status}"><a href="#h{{:d}}-{{:d}}">{symbol}</a></td>'
           for status, symbol in SYMBOLS.items()}

class Row(NamedTuple):
    """One failing, erroring or waived check of a host, as its section lists it."""

    id: str
    title: str
    kind: str
    severity: str
    status: str
    message: str
    expected: str
    actual: str


class CheckInfo(NamedTuple):
    """A check as the fleet names it (from the first result that carried it)."""

    title: str
    kind: str
    severity: str


class HostView(NamedTuple):
    """What the page shows of one run: facts the whole fleet weighs, and the host's section
    already rendered (escaped ``Markup``), so that a worker process renders it, not the page."""

    hostname: str
    machine_id: str | None
    started: str
    digest: str
    score: float | None
    counts: dict[str, int]
    statuses: dict[str, str]
    """Check id -> status, for every result."""
    critical: int
    """Failing checks of critical severity."""
    high: int
    """Failing checks of high severity."""
    summary: Markup
    """The section's paragraph: kernel, boot id, policies, counts."""
    rows: tuple[tuple[str, Markup], ...]
    """The failing, erroring and waived checks, most severe first: (check id, the table row
    after its id, which only the page can write: it names the check's matrix column)."""


def view(document: Mapping[str, Any]) -> HostView:
    """A ``hostguard/result/v1`` document (one ``validate`` accepted) reduced to what the fleet
    page shows of it: read from the document itself, which holds all of it, rather than from a
    rebuilt run (``Fleet.add`` makes a run a document first)."""
    counts = dict.fromkeys((s.value for s in Status), 0)
    statuses: dict[str, str] = {}
    rows = []
    verdicts = []
    for r in document["results"]:
        verdict = _STATUSES[r["status"]]
        status = verdict.value  # one string object per status: pickled once per view
        counts[status] += 1
        statuses[r["id"]] = status
        verdicts.append((verdict, _SEVERITY_OF[r["severity"]]))
        if status in _STATUS_RANK:
            evidence = r["evidence"]
            rows.append(Row(r["id"], r["title"], r["kind"], r["severity"], status, r["message"],
                            evidence["expected"], evidence["actual"]))
    rows.sort(key=lambda row: (_SEVERITY_RANK[row.severity], _STATUS_RANK[row.status], row.id))
    failed = Counter(row.severity for row in rows if row.status == "fail")
    host = document["host"]
    policy = document["policy"]
    started = document["started"]
    summary = macros("fleet_host.html.j2").summary({
        "kernel": host["kernel_release"] or "unknown", "boot_id": host["boot_id"] or "unknown",
        "started": started, "policies": ", ".join(sorted({f["name"] for f in policy["files"]})),
        "digest": policy["digest"], "counts": counts})
    return HostView(host["hostname"], host["machine_id"], started, policy["digest"],
                    percent(weighed(verdicts)), counts, statuses, failed["critical"],
                    failed["high"], summary, tuple((row.id, _row(row)) for row in rows))


@lru_cache(maxsize=4096)
def _row(row: Row) -> Markup:
    """``row`` rendered (``fleet_host.html.j2``): what it shows is all of what it is, and across
    a fleet the same check fails the same way on many hosts, so each is rendered once."""
    rendered: Markup = macros("fleet_host.html.j2").row(row)
    return rendered


def checks(document: Mapping[str, Any], known: Container[str] = ()) -> dict[str, CheckInfo]:
    """How a result ``document`` (as ``view`` takes it) names its checks, by id, but those
    ``known`` already."""
    return {r["id"]: CheckInfo(r["title"], r["kind"], r["severity"])
            for r in document["results"] if r["id"] not in known}


def host_key(host: HostView, index: int) -> tuple[str, str | int]:
    """Who a result is about: its hostname and machine id. Hostnames collide (every host whose
    name could not be read is ``unknown``), so two results are one host only when both match; a
    result without a machine id is a host of its own (``index``), since nothing shows it is the
    same machine as another."""
    return host.hostname, host.machine_id if host.machine_id else index


def latest(hosts: Sequence[HostView]) -> tuple[list[HostView], list[HostView]]:
    """(the latest view per host (``host_key``), the older ones it supersedes)."""
    best: dict[tuple[str, str | int], HostView] = {}
    older: list[HostView] = []
    for index, host in enumerate(hosts):
        key = host_key(host, index)
        kept = best.get(key)
        if kept is None:
            best[key] = host
        elif host.started > kept.started:
            older.append(kept)
            best[key] = host
        else:
            older.append(host)
    return list(best.values()), older


def label(host: HostView, names: Counter[str]) -> str:
    """How ``host`` is named on the page: its hostname, with its machine id (or that it has
    none, and when it ran) where ``names`` counts more than one host of that name."""
    name = host.hostname
    if names[name] > 1:
        machine = host.machine_id
        name += f" (machine {machine})" if machine else f" (no machine id, {host.started})"
    return name


def band(value: float | None) -> str:
    """The score band's name (``none`` when nothing was scored)."""
    if value is None:
        return "none"
    return next(name for upper, name in BANDS if value <= upper)


class Fleet:
    """A fleet page built up one run at a time."""

    def __init__(self) -> None:
        self.hosts: list[HostView] = []
        self.checks: dict[str, CheckInfo] = {}

    def add(self, run: AuditRun) -> None:
        """Keep what the page shows of ``run`` (and nothing else of it)."""
        document = as_dict(run)
        self.add_view(view(document), checks(document))

    def add_view(self, host: HostView, named: dict[str, CheckInfo]) -> None:
        """Keep ``host`` (a ``view``), and the checks it ``named`` that the fleet did not know."""
        for check_id, info in named.items():
            self.checks.setdefault(check_id, info)
        self.hosts.append(host)

    def current(self) -> list[HostView]:
        """The hosts shown (the latest result of each)."""
        return latest(self.hosts)[0]

    def render(self) -> str:
        """The page (at least one run added)."""
        if not self.hosts:
            raise ValueError("a fleet page needs at least one result")
        return page("fleet.html.j2", "fleet.js", self._context(), style="fleet.css")

    def _context(self) -> dict[str, Any]:
        current, superseded = latest(self.hosts)
        names = Counter(h.hostname for h in current)
        ordered = sorted(((label(h, names), h) for h in current),
                         key=lambda nh: (nh[1].score is None, nh[1].score or 0.0, nh[0]))
        columns = self._columns(h for _, h in ordered)
        ids = [c["id"] for c in columns]
        column = {check_id: j for j, check_id in enumerate(ids)}
        hosts = [_host(i, name, h, ids, column) for i, (name, h) in enumerate(ordered)]
        values = [h.score for _, h in ordered if h.score is not None]
        failing = [h for h in hosts if h["failing"]]
        critical = sum(1 for h in hosts if h["critical"])
        if not values:
            verdict = "not-evaluated"
        elif failing:
            verdict = "not-compliant"
        else:
            verdict = "compliant"
        return {
            "hosts": hosts,
            "columns": columns,
            "verdict": verdict,
            "failing_hosts": len(failing),
            "critical_hosts": critical,
            "distribution": distribution(h.score for _, h in ordered),
            "worst": [h for h in hosts if h["failing"]][:TOP],
            "most_failed": [c for c in columns if c["fail"] or c["error"]][:TOP],
            "severities": [s.value for s in _SEVERITIES],
            "kinds": sorted({c["kind"] for c in columns}),
            "symbols": list(SYMBOLS.items()),
            "median": f"{statistics.median(values):.1f}" if values else "n/a",
            "lowest": f"{min(values):.1f}" if values else "n/a",
            "digests": len({h.digest for h in current}),
            "superseded": [(label(h, names), h.started) for h in superseded],
        }

    def _columns(self, hosts: Iterable[HostView]) -> list[dict[str, Any]]:
        """Every check any shown host ran, most failed first, with its counts."""
        tally: dict[str, Counter[str]] = {}
        for host in hosts:
            for check_id, status in host.statuses.items():
                counts = tally.get(check_id)
                if counts is None:
                    counts = tally[check_id] = Counter()
                counts[status] += 1
        columns: list[dict[str, Any]] = []
        for check_id, counts in tally.items():
            info = self.checks[check_id]
            columns.append({"id": check_id, "title": info.title, "kind": info.kind,
                            "severity": info.severity, "fail": counts["fail"],
                            "error": counts["error"], "waived": counts["waived"],
                            "hosts": sum(counts.values()),
                            "rank": _SEVERITIES.index(Severity(info.severity))})
        columns.sort(key=lambda c: (-c["fail"], -c["error"], c["rank"], c["id"]))
        for j, c in enumerate(columns):
            c["anchor"] = f"k{j}"
        return columns


def _host(i: int, name: str, host: HostView, ids: Sequence[str], column: Mapping[str, int]
          ) -> dict[str, Any]:
    """What the page shows of ``host``, the ``i``-th host, named ``name``; ``ids`` are the
    matrix's check ids in column order, ``column`` their index."""
    anchor = f"h{i}"
    statuses = host.statuses
    cells = []
    for j, check_id in enumerate(ids):
        status = statuses.get(check_id)
        if status is None:
            cells.append(_EMPTY)
        elif status in _STATUS_RANK:
            cells.append(_LINKED[status].format(i, j))
        else:
            cells.append(_PLAIN[status])
    return {
        "anchor": anchor, "hostname": name,
        "score": "n/a" if host.score is None else f"{host.score:.1f}",
        "band": band(host.score), "started": host.started,
        "failing": host.counts["fail"] + host.counts["error"],
        "critical": host.critical, "high": host.high,
        "cells": Markup("".join(cells)),  # noqa: S704 - fixed pieces and integers only
        "summary": host.summary,
        # Rows rendered and escaped in fleet_host.html.j2, each after the id that only the page
        # can write (two integers): one piece per host instead of a template loop per row.
        "rows": Markup("".join(f'<tr id="{anchor}-{column[check_id]}"{row}\n'  # noqa: S704
                               for check_id, row in host.rows)),
    }


def distribution(scores: Iterable[float | None]) -> list[dict[str, Any]]:
    """Hosts per score decile (0-9.9, ..., 90-100) and unscored, with bar geometry (SVG units:
    bars 40 wide, at most 100 high)."""
    buckets = [0] * 11
    for value in scores:
        buckets[10 if value is None else min(int(value // 10), 9)] += 1
    highest = max(buckets) or 1
    out = []
    for i, count in enumerate(buckets):
        name = "n/a" if i == 10 else f"{i * 10}-{i * 10 + 9}" if i < 9 else "90-100"
        height = round(100 * count / highest, 1)
        out.append({"name": name, "count": count, "x": 48 * i, "height": height,
                    "y": round(100 - height, 1),
                    "band": "none" if i == 10 else band(i * 10 + 9.9)})
    return out


def render(runs: Sequence[AuditRun]) -> str:
    """The fleet page for ``runs`` (at least one)."""
    fleet = Fleet()
    for run in runs:
        fleet.add(run)
    return fleet.render()
