"""Prometheus metrics of the last audit, for node_exporter's textfile collector.

``write_textfile(run, path)`` writes the text exposition format (version 0.0.4) atomically
(temp file, fsync, rename): the collector reads the old file or the new one, never half of one.
Name the file ``*.prom`` inside the folder given to ``--collector.textfile.directory``.
No sample carries a timestamp (the collector refuses them); ``hostguard_last_run_timestamp_seconds``
says when the audit ran, and node_exporter adds ``node_textfile_mtime_seconds``.

Metrics (gauges)::

    hostguard_check_status{id,kind,severity}   0 pass, 1 fail, 2 error, 3 waived, 4 not applicable
    hostguard_checks{status}                   checks per status (all five always present)
    hostguard_audit_errors                     checks that could not be evaluated (status error)
    hostguard_score                            hardening score in percent (NaN when nothing weighs)
    hostguard_last_run_timestamp_seconds       start of the audit, Unix time
    hostguard_audit_duration_seconds           wall time of the audit
    hostguard_policy_info{digest}              1; the policy in force
    hostguard_host_info{hostname,kernel,version}  1; the host as the audit saw it

The daemon adds its own resource watch (``agent.daemon.resources``)::

    hostguard_cycle_cpu_seconds                CPU time of the last cycle (with reaped children)
    hostguard_cycle_rss_bytes                  resident memory at the end of the last cycle
    hostguard_cycles_over_budget_total         counter: cycles over their CPU or RSS budget
    hostguard_cycles_skipped_total             counter: cycles skipped after one over budget

and what else only the running daemon knows (``Service``)::

    hostguard_audit_interval_seconds           the configured ``interval`` (for staleness alerts)
    hostguard_history_chain_broken             1 when the history's last verification found a
                                               problem or could not run, else 0 (absent without
                                               a history)

With ``enforce:`` bindings (``agent.daemon.enforce``), per binding id::

    hostguard_enforce_applications_total{binding,outcome}  counter: attempts since the daemon
                                               started, by outcome (applied, unchanged, failed)
    hostguard_enforce_processes{binding}       processes it selected in the last cycle that
                                               carry its filter
    hostguard_enforce_pending_processes{binding}  processes it selected in the last cycle that
                                               do not (failed, backing off, or in conflict)

One series per check with the status as its value keeps the series set stable while statuses
change (a ``status`` label would start a new series at every drift), at a fifth of the series a
state set costs. Alert on failing checks with ``hostguard_check_status == 1``; the rules shipped
in ``deploy/prometheus/hostguard.rules.yml`` are tested against this module's output.

Label values are escaped as the format requires (backslash, double quote, line feed); other
control characters, and bytes that were not valid UTF-8 on the host, are written as visible
``\\xNN``/``\\uNNNN`` text, so a hostile hostname can neither break the file nor forge a series.

The file is mode 0644: node_exporter runs as its own unprivileged user and publishes these
values over HTTP anyway, so they are not secrets kept from local users (the history database and
reports, which hold evidence, stay 0640). Folders the daemon creates for it are 0755 whatever the
umask, as the collector lists its folder; folders that exist are left as they are.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from agent.core.atomic import write_atomic
from agent.core.record import record
from agent.report.score import score
from agent.result import AuditRun, Status

if TYPE_CHECKING:  # psutil is imported where the daemon runs, not where configurations are linted
    from agent.daemon.enforce import Tally
    from agent.daemon.resources import Watch

OUTCOMES = ("applied", "unchanged", "failed")
"""Outcomes of an application, each a series of ``hostguard_enforce_applications_total``."""

FILE_MODE = 0o644
FOLDER_MODE = 0o755
"""Mode of the folders made for the metrics file (the textfile collector lists its folder)."""
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


def _family(name: str, help_: str, samples: Iterable[tuple[Mapping[str, str], float]],
            kind: str = "gauge") -> list[str]:
    lines = [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
    lines.extend(f"{name}{_labels(labels)} {_number(value)}" for labels, value in samples)
    return lines


def _unix(started: str) -> float:
    moment = dt.datetime.fromisoformat(started.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _watched(watch: Watch) -> list[str]:
    lines = []
    if watch.last is not None:
        lines += [
            *_family("hostguard_cycle_cpu_seconds", "CPU time of the last cycle, user and "
                     "system, with the child processes it reaped.",
                     [({}, round(watch.last.cpu_seconds, 6))]),
            *_family("hostguard_cycle_rss_bytes", "Resident memory of the daemon at the end "
                     "of the last cycle.", [({}, watch.last.rss_bytes)]),
        ]
    return [
        *lines,
        *_family("hostguard_cycles_over_budget_total", "Cycles over their CPU or memory "
                 "budget.", [({}, watch.over_budget)], "counter"),
        *_family("hostguard_cycles_skipped_total", "Cycles skipped because the one before "
                 "went over budget.", [({}, watch.skipped)], "counter"),
    ]


def _enforced(tally: Tally) -> list[str]:
    bindings = sorted(tally.enforced.keys() | {b for b, _ in tally.attempts})
    return [
        *_family("hostguard_enforce_applications_total", "Seccomp applications attempted by "
                 "each enforce: binding since the daemon started, by outcome.",
                 [({"binding": b, "outcome": o}, tally.attempts.get((b, o), 0))
                  for b in bindings for o in OUTCOMES], "counter"),
        *_family("hostguard_enforce_processes", "Processes each enforce: binding selected in "
                 "the last cycle that carry its filter.",
                 [({"binding": b}, tally.enforced.get(b, 0)) for b in bindings]),
        *_family("hostguard_enforce_pending_processes", "Processes each enforce: binding "
                 "selected in the last cycle that do not carry its filter.",
                 [({"binding": b}, tally.pending.get(b, 0)) for b in bindings]),
    ]


def render(run: AuditRun, watch: Watch | None = None, service: Service | None = None,
           enforce: Tally | None = None) -> str:
    """The exposition text of one run (and of the daemon's resource watch, its state and its
    ``enforce:`` bindings, when given)."""
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
        *(_watched(watch) if watch is not None else []),
        *(_service(service) if service is not None else []),
        *(_enforced(enforce) if enforce is not None else []),
    ]
    return "\n".join(lines) + "\n"


def write_textfile(run: AuditRun, path: Path, mode: int = FILE_MODE, *,
                   watch: Watch | None = None, service: Service | None = None,
                   enforce: Tally | None = None) -> None:
    """Write ``render(run, watch, service, enforce)`` to ``path`` atomically, making its
    folders as needed."""
    path = Path(path)
    make_folders(path.parent)
    write_atomic(path, render(run, watch, service, enforce).encode("utf-8"), mode=mode)


def make_folders(folder: Path, mode: int = FOLDER_MODE) -> None:
    """Create ``folder`` and its missing parents with ``mode``, whatever the umask (the unit's
    is 0027); existing folders keep the mode their administrator gave them."""
    missing: list[Path] = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:  # made meanwhile by someone else: theirs
            continue
        path.chmod(mode)


class Endpoint:
    """``metrics_listen: HOST:PORT``: the same metrics over HTTP, served by prometheus_client.

    Serves the text of the last audit (``render``), re-read through prometheus_client's own
    parser so the HTTP and textfile forms cannot disagree. The server runs in a daemon thread.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        """``HOST:PORT`` as configured."""
        self.host, self.port = parse_address(address)
        self._text = ""
        self._lock = threading.Lock()
        self._server: Any = None

    def start(self) -> None:
        """Bind and serve; raises OSError when the address cannot be bound."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        self._server, _ = start_http_server(self.port, addr=self.host, registry=registry)

    def update(self, run: AuditRun, watch: Watch | None = None,
               service: Service | None = None, enforce: Tally | None = None) -> None:
        """Serve ``run`` (and ``watch``, ``service``, ``enforce``) from now on."""
        text = render(run, watch, service, enforce)
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


@record
class Service:
    """What only the running daemon knows, besides its resource watch."""

    interval_seconds: float
    """The configured ``interval``: a rule needs it to tell a stale audit from a slow one."""
    history_broken: bool | None = None
    """The last verification of the history found a problem or could not run; ``None`` when
    no history is configured or none was verified yet."""


def _service(service: Service) -> list[str]:
    lines = _family("hostguard_audit_interval_seconds", "Configured seconds between audit "
                    "starts (before jitter).", [({}, service.interval_seconds)])
    if service.history_broken is not None:
        lines += _family("hostguard_history_chain_broken", "1 when the history's last "
                         "verification found tampering or damage or could not run, else 0.",
                         [({}, int(service.history_broken))])
    return lines
