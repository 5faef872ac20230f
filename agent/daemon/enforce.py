"""The daemon's ``enforce:`` bindings: each cycle, each binding's filter on what it selects.

For every binding (:class:`agent.daemon.config.Binding`) the process table is read once and the
binding's selector (the checks' own, :class:`agent.checks.selectors.Selector`) picks processes.
A selected process that does not carry the binding's filter yet gets it through
:func:`agent.enforce.apply.apply_filter` (which refuses a process that may run on an isolated CPU
unless the binding says ``stop_isolated``, and leaves alone one already carrying an equivalent
stack), and every attempt is handed to ``record``: the daemon stores it in the history's
application chain and counts it in the metrics.

- One apply at a time: the bindings and their processes are worked through in order, in the
  daemon's main thread.
- A process is named by (pid, start time): a pid reused by another process is another process.
  Once a binding's filter is on it (applied, or found there), it is not touched again while its
  filter count stays what it was after the apply (a filter stack only grows): later cycles cost
  a read of ``/proc`` and nothing else. A filter changed by the binding (its profile, or its mode
  on the ``enforce_from`` day) is applied anew.
- A failed attempt is recorded with the reason and retried after a back-off per (pid, start time,
  binding) that doubles from :data:`BACKOFF_FIRST` up to :data:`BACKOFF_MAX`; a process is tried
  at most once per cycle.
- A process selected by two bindings gets neither filter (which one was meant cannot be known;
  two stacked filters prove equal to neither profile); a process the selector cannot tell
  (an unreadable field) is left alone. Both are logged once per process.
- The profile is compiled once per binding and mode while the configuration is in force; a
  profile that cannot be compiled fails each selected process's attempt, with the same back-off.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.checks.selectors import host_text
from agent.core.digest import sha256_hex
from agent.core.record import record
from agent.daemon.config import Binding
from agent.daemon.history import APPLICATION_FORMAT
from agent.daemon.log import log
from agent.daemon.metrics import OUTCOMES
from agent.enforce.apply import Applied, ApplyError, apply_filter
from agent.host.fdwalk import FdWalk
from agent.host.processes import Process, read_processes
from agent.seccomp.compile import CompiledFilter, build_filter
from agent.seccomp.plan import CompileError

BACKOFF_FIRST = 60.0
"""Seconds before a failed application is tried again the first time."""
BACKOFF_MAX = 6 * 3600.0
"""The longest wait between two attempts on one process."""

_Key = tuple[int, int, str]
"""(pid, start time, binding id)."""


@record
class Failing:
    """A process whose application failed: how often, and when it may be tried again."""

    failures: int
    retry_at: float
    """On the enforcer's clock."""


@record
class Tally:
    """What the metrics show of the bindings (the daemon's lifetime and its last cycle)."""

    attempts: Mapping[tuple[str, str], int]
    """(binding, outcome) -> attempts since the daemon started."""
    enforced: Mapping[str, int]
    """Binding -> processes it selected in the last cycle that carry its filter."""
    pending: Mapping[str, int]
    """Binding -> processes it selected in the last cycle that do not (failed, waiting)."""


class Enforcer:
    """The bindings' state across cycles: what carries which filter, what is backing off."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 root: Path = Path("/")) -> None:
        self.clock = clock
        self.root = root
        """Where ``/proc`` is read: the host whose processes get the filters."""
        self.carried: dict[_Key, tuple[str, int | None]] = {}
        """Processes known to carry a binding's filter: its digest and their filter count."""
        self.failing: dict[_Key, Failing] = {}
        self.attempts: dict[tuple[str, str], int] = {}
        self.enforced: dict[str, int] = {}
        self.pending: dict[str, int] = {}
        self._bindings: Sequence[Binding] = ()
        self._compiled: dict[tuple[str, str], CompiledFilter | str] = {}
        self._told: set[tuple[Any, ...]] = set()
        """Conflicts and unsure selections already logged (once per process)."""

    def tally(self) -> Tally:
        return Tally(dict(self.attempts), dict(self.enforced), dict(self.pending))

    def cycle(self, bindings: Sequence[Binding], day: dt.date,
              record: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
        """Apply each binding's filter where it is missing; every attempt's document, each
        also handed to ``record`` as soon as it is made."""
        if bindings is not self._bindings:  # a (re)loaded configuration: profiles read anew
            self._bindings, self._compiled = bindings, {}
        self.enforced = {b.id: 0 for b in bindings}
        self.pending = {b.id: 0 for b in bindings}
        if not bindings:
            return []
        fields = {"seccomp", "seccomp_filters"}
        for binding in bindings:
            fields |= binding.selector.process_fields()
        table = read_processes(self.root, fields=fields, fd_walk=FdWalk.serial())
        done: list[dict[str, Any]] = []
        for proc in table.processes.values():
            chosen = self._choose(bindings, proc)
            if chosen is not None:
                entry = self._one(chosen, proc, day)
                if entry is not None:
                    record(entry)
                    done.append(entry)
        alive = {(p.pid, p.start_time) for p in table.processes.values()}
        for known in (self.carried, self.failing):
            for key in [k for k in known if k[:2] not in alive]:
                del known[key]
        self._told = {t for t in self._told if t[:2] in alive}
        return done

    def _choose(self, bindings: Iterable[Binding], proc: Process) -> Binding | None:
        """The one binding that selects ``proc``, if exactly one does (others are logged)."""
        chosen: list[Binding] = []
        for binding in bindings:
            verdict = binding.selector(proc)
            if verdict is True:
                chosen.append(binding)
            elif isinstance(verdict, str):
                self._tell((proc.pid, proc.start_time, "unsure", binding.id), "enforce-unsure",
                           binding=binding.id, pid=proc.pid, comm=host_text(proc.name),
                           reason=f"might be selected: {verdict}; left alone")
        if len(chosen) > 1:
            names = ",".join(b.id for b in chosen)
            self._tell((proc.pid, proc.start_time, "conflict", names), "enforce-conflict",
                       pid=proc.pid, comm=host_text(proc.name), bindings=names,
                       reason="selected by more than one binding: none applied")
            for binding in chosen:
                self.pending[binding.id] += 1
            return None
        return chosen[0] if chosen else None

    def _tell(self, key: tuple[Any, ...], event: str, **fields: object) -> None:
        if key not in self._told:
            self._told.add(key)
            log(event, level="warning", extra=fields)

    def _one(self, binding: Binding, proc: Process, day: dt.date) -> dict[str, Any] | None:
        """Apply ``binding`` to ``proc`` unless it carries the filter or is backing off; the
        attempt's document, or None when nothing was tried."""
        key = (proc.pid, proc.start_time, binding.id)
        mode = binding.mode_on(day)
        compiled = self._compile(binding, mode)
        digest = sha256_hex(compiled.bpf()) if isinstance(compiled, CompiledFilter) else None
        if digest is not None and self.carried.get(key) == (digest, proc.seccomp_filters):
            self.enforced[binding.id] += 1
            return None
        failing = self.failing.get(key)
        if failing is not None and self.clock() < failing.retry_at:
            self.pending[binding.id] += 1
            return None
        entry = _document(binding, proc, mode, digest)
        if isinstance(compiled, str):
            return self._failed(key, entry, f"the profile cannot be compiled: {compiled}", None)
        try:
            applied = apply_filter(proc.pid, compiled, start_time=proc.start_time,
                                   stop_isolated=binding.stop_isolated)
        except ApplyError as exc:
            return self._failed(key, entry, exc.reason, exc.changed)
        entry.update(_proof(applied))
        self.failing.pop(key, None)
        self.carried[key] = (applied.digest, applied.filters)
        self.enforced[binding.id] += 1
        self._count(binding.id, applied.outcome)
        log(f"enforce-{applied.outcome}", level="info" if applied.proof.equivalent else "warning",
            binding=binding.id, pid=proc.pid, start_time=proc.start_time,
            comm=host_text(proc.name), mode=mode, digest=applied.digest,
            equivalent=applied.proof.equivalent, differences=len(applied.proof.differences),
            stop_ns=applied.stop_ns, threads=applied.threads, filters=applied.filters)
        return entry

    def _failed(self, key: _Key, entry: dict[str, Any], reason: str,
                changed: str | None) -> dict[str, Any]:
        before = self.failing.get(key)
        failures = 1 if before is None else before.failures + 1
        wait = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1))
        self.failing[key] = Failing(failures, self.clock() + wait)
        binding = entry["binding"]
        self.pending[binding] += 1
        self._count(binding, "failed")
        entry.update(outcome="failed", reason=reason, changed=changed, failures=failures,
                     retry_in_s=wait)
        log("enforce-failed", level="error", binding=binding, pid=entry["pid"],
            start_time=entry["start_time"], comm=entry["comm"], mode=entry["mode"],
            reason=reason, changed=changed, failures=failures, retry_in_s=wait)
        return entry

    def _count(self, binding: str, outcome: str) -> None:
        assert outcome in OUTCOMES, outcome
        self.attempts[(binding, outcome)] = self.attempts.get((binding, outcome), 0) + 1

    def _compile(self, binding: Binding, mode: str) -> CompiledFilter | str:
        """The binding's filter in ``mode`` (compiled once per configuration), or why not."""
        key = (binding.id, mode)
        if key not in self._compiled:
            try:
                self._compiled[key] = build_filter(binding.profile, mode)
            except CompileError as exc:
                self._compiled[key] = str(exc)
        return self._compiled[key]


def _document(binding: Binding, proc: Process, mode: str, digest: str | None) -> dict[str, Any]:
    """An attempt's stored document (``hostguard/application/v1``) before its outcome."""
    now = dt.datetime.now(dt.UTC)
    return {"format": APPLICATION_FORMAT,
            "at": now.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "binding": binding.id, "selector": binding.selector.describe(),
            "profile": str(binding.profile_path), "pid": proc.pid,
            "start_time": proc.start_time, "comm": host_text(proc.name), "mode": mode,
            "digest": digest, "outcome": None, "tid": None, "threads": None, "filters": None,
            "set_no_new_privs": None, "stop_ns": None, "equivalent": None, "differences": None,
            "reason": None, "changed": None, "failures": None, "retry_in_s": None}


def _proof(applied: Applied) -> dict[str, Any]:
    return {"outcome": applied.outcome, "digest": applied.digest, "tid": applied.tid,
            "threads": applied.threads, "filters": applied.filters,
            "set_no_new_privs": applied.set_nnp, "stop_ns": applied.stop_ns,
            "equivalent": applied.proof.equivalent,
            "differences": len(applied.proof.differences)}
