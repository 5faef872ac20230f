"""Prometheus metrics of the last audit, for node_exporter's textfile collector.

``write_textfile(run, path)`` writes the text exposition format (version 0.0.4) atomically
(temp file, fsync, rename): the collector reads the old file or the new one, never half of one.
Name the file ``*.prom`` inside the folder given to ``--collector.textfile.directory``.
No sample carries a timestamp (the collector refuses them); ``hostguard_last_run_timestamp_seconds``
says when the audit ran, and node_exporter adds ``node_textfile_mtime_seconds``.

Metrics (all gauges)::

    hostguard_check_status{id,kind,severity}   0 pass, 1 fail, 2 error, 3 waived, 4 not applicable
    hostguard_checks{status}                   checks per status (all five always present)
    hostguard_audit_errors                     checks that could not be evaluated (status error)
    hostguard_score                            hardening score in percent (NaN when nothing weighs)
    hostguard_last_run_timestamp_seconds       start of the audit, Unix time
    hostguard_audit_duration_seconds           wall time of the audit
    hostguard_policy_info{digest}              1; the policy in force
    hostguard_host_info{hostname,kernel,version}  1; the host as the audit saw it

One series per check with the status as its value keeps the series set stable while statuses
change (a ``status`` label would start a new series at every drift). Alert on failing checks with
``hostguard_check_status == 1 or hostguard_check_status == 2``.

Label values are escaped as the format requires (backslash, double quote, line feed); other
control characters, and bytes that were not valid UTF-8 on the host, are written as visible
``\\xNN``/``\\uNNNN`` text, so a hostile hostname can neither break the file nor forge a series.

The file is mode 0644: node_exporter runs as its own unprivileged user and publishes these
values over HTTP anyway, so they are not secrets kept from local users (the history database and
reports, which hold evidence, stay 0640).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from agent.core.atomic import write_atomic
from agent.report.score import score
from agent.result import AuditRun, Status

FILE_MODE = 0o644
STATUS_VALUE = {Status.PASS: 0, Status.FAIL: 1, Status.ERROR: 2, Status.WAIVED: 3,
                Status.NOT_APPLICABLE: 4}
"""``hostguard_check_status`` value of each status."""


def escape_label(value: str) -> str:
    """A label value for the text format: printable, valid UTF-8, ``\\``, ``"``, LF escaped."""
    text = value.encode("utf-8", "backslashreplace").decode("utf-8")
    text = "".join(c if c.isprintable() or c == "\n" else repr(c)[1:-1] for c in text)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def _family(name: str, help_: str,
            samples: Iterable[tuple[Mapping[str, str], float]]) -> list[str]:
    lines = [f"# HELP {name} {help_}", f"# TYPE {name} gauge"]
    lines.extend(f"{name}{_labels(labels)} {_number(value)}" for labels, value in samples)
    return lines


def _unix(started: str) -> float:
    moment = dt.datetime.fromisoformat(started.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def render(run: AuditRun) -> str:
    """The exposition text of one run."""
    seen: set[str] = set()
    checks: list[tuple[Mapping[str, str], float]] = []
    for result in run.results:
        check = result.check
        if check.id in seen:  # a duplicate series would make the collector drop the file
            continue
        seen.add(check.id)
        checks.append(({"id": check.id, "kind": check.kind, "severity": check.severity.value},
                       STATUS_VALUE[result.status]))
    counts = {s: sum(r.status is s for r in run.results) for s in Status}
    value = score(run)
    host = run.host
    lines = [
        *_family("hostguard_check_status", "Status of each check: 0 pass, 1 fail, 2 error, "
                 "3 waived, 4 not applicable.", checks),
        *_family("hostguard_checks", "Checks per status in the last audit.",
                 (({"status": s.value}, n) for s, n in counts.items())),
        *_family("hostguard_audit_errors", "Checks the last audit could not evaluate.",
                 [({}, counts[Status.ERROR])]),
        *_family("hostguard_score", "Hardening score in percent, weighted by severity (NaN "
                 "when nothing weighs).", [({}, math.nan if value is None else value)]),
        *_family("hostguard_last_run_timestamp_seconds", "Start of the last audit, Unix time.",
                 [({}, _unix(run.started))]),
        *_family("hostguard_audit_duration_seconds", "Wall time of the last audit.",
                 [({}, run.duration_ms / 1000)]),
        *_family("hostguard_policy_info", "The policy in force (digest over its files).",
                 [({"digest": run.policy_digest}, 1)]),
        *_family("hostguard_host_info", "The audited host as the audit saw it.",
                 [({"hostname": host.hostname, "kernel": host.kernel_release or "",
                    "version": run.tool_version}, 1)]),
    ]
    return "\n".join(lines) + "\n"


def write_textfile(run: AuditRun, path: Path, mode: int = FILE_MODE) -> None:
    """Write ``render(run)`` to ``path`` atomically."""
    write_atomic(Path(path), render(run).encode("utf-8"), mode=mode)


class Endpoint:
    """``metrics_listen: HOST:PORT``: the same metrics over HTTP, served by prometheus_client.

    Serves the text of the last audit (``render``), re-read through prometheus_client's own
    parser so the HTTP and textfile forms cannot disagree. The server runs in a daemon thread.
    """

    def __init__(self, address: str) -> None:
        self.host, self.port = parse_address(address)
        self._text = ""
        self._lock = threading.Lock()
        self._server: Any = None

    def start(self) -> None:
        """Bind and serve; raises OSError when the address cannot be bound."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        self._server, _ = start_http_server(self.port, addr=self.host, registry=registry)

    def update(self, run: AuditRun) -> None:
        """Serve ``run`` from now on."""
        text = render(run)
        with self._lock:
            self._text = text

    def collect(self) -> Iterable[Any]:
        with self._lock:
            text = self._text
        yield from text_string_to_metric_families(text)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def parse_address(address: str) -> tuple[str, int]:
    """``127.0.0.1:9420`` / ``[::1]:9420`` -> (host, port); ValueError when malformed."""
    host, sep, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"metrics address must be HOST:PORT, not {address!r}")
    return host, int(port)
