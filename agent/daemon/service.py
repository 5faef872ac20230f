"""``hostguard daemon``: scheduled audits under systemd, with reload, watchdog and fault tolerance.

The main thread loads the configuration and policies, then alternates audits and waits. Signal
handlers only set flags (and abort a running audit on SIGTERM/SIGINT, which writes nothing); the
main loop acts on them between steps. A helper thread pets the systemd watchdog while the main
loop shows progress, so a hung audit stops the pets and systemd restarts the service.

Scheduling: audits start every ``interval`` seconds plus a random jitter; an audit that overruns
its interval skips the slots it overlapped (start times never queue), so audits never overlap and
never run back to back to catch up.

The history's hash chain is verified in full after the first run recorded, after each reload and
then every ``VERIFY_PERIOD`` seconds (a full verification reads every stored run, so not every
cycle); the outcome is exported as ``hostguard_history_chain_broken``.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from agent import __version__, audit
from agent.audit_policies import load_for_audit
from agent.core.diagnostic import Level
from agent.core.record import record
from agent.daemon import metrics, resources
from agent.daemon.config import Config, load_config
from agent.daemon.history import CorruptHistory, History, NotVerified
from agent.daemon.log import log
from agent.daemon.notify import notify, status_text, watchdog_interval
from agent.daemon.placement import place_self
from agent.daemon.wakeup import Wakeup
from agent.host.dump_cache import DumpCache
from agent.host.fdwalk import FdWalk
from agent.host.snapshot import OwnListener
from agent.policy.resolve import PolicySet
from agent.report import score as scoring
from agent.report.writer import write_reports
from agent.result import AuditRun, Result

if TYPE_CHECKING:
    from agent.daemon.enforce import Enforcer

VERIFY_PERIOD = 3600.0
"""Seconds between full verifications of the history by the daemon."""
EXIT_OK = 0
EXIT_INVALID = 2
"""Invalid configuration or policies at start (nothing audited)."""
EXIT_WRITE = 4
"""``--once``: the audit ran but some of its results could not be written."""


class _Stop(BaseException):
    """Raised by the SIGTERM/SIGINT handler to abandon a running audit (nothing is written)."""


@record
class Loaded:
    """A configuration with its policies, linted completely."""

    config: Config
    """The configuration."""
    policy_set: PolicySet
    """Its policies, merged."""
    files: int
    """Policy files loaded."""


def load_all(config_path: Path, today: dt.date) -> Loaded | list[str]:
    """Configuration and policies, or every problem (located ``path:line:col`` lines)."""
    config = load_config(config_path)
    if isinstance(config, list):
        return [str(d) for d in config if d.level is Level.ERROR]
    found = load_for_audit((str(p) for p in config.policies), today)
    policy_set = found.policy_set
    problems = [f"policy path {u}" for u in found.usage] + [str(d) for d in found.errors]
    policies = sum(1 for f in policy_set.files if f.policy is not None)
    if found.refused and not problems:  # not a single check
        problems.append(f"{config_path}: no policy checks found in "
                        f"{', '.join(str(p) for p in config.policies)}")
    if not config.root.is_dir():
        problems.append(f"{config_path}: root {config.root}: not a folder")
    return problems or Loaded(config, policy_set, policies)


def summary(run: AuditRun) -> str:
    """One line for ``STATUS=`` and the log: counts by status and duration."""
    c = run.counts
    return (f"last audit {run.started}: {plural(len(run.results), 'check')}, "
            f"{c.get('pass', 0)} pass, "
            f"{c.get('fail', 0)} fail, {c.get('error', 0)} error, {c.get('waived', 0)} waived, "
            f"{c.get('not_applicable', 0)} not applicable, score {_percent(scoring.score(run))}"
            + ("; NOT EVALUATED: no check applies to this host" if run.not_evaluated else ""))


def audit_done(cycle: int, run: AuditRun) -> None:
    """Log the audit's counts, and loudly a run in which not a single check applied."""
    log("audit-done", cycle=cycle, duration_ms=run.duration_ms, extra=run.counts)
    if run.not_evaluated:
        log("audit-not-evaluated", level="warning", cycle=cycle, checks=len(run.results),
            reason=run.not_applicable_reasons())


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}%"


def plural(count: int, noun: str) -> str:
    """``1 check``, ``2 checks``."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def evidence_digest(result: Result) -> str:
    """``sha256:<hex>`` of a result's evidence in canonical JSON, as the drift log prints it (the
    same digest the HTML report's drift section and the history compare)."""
    return "sha256:" + scoring.evidence_digest(result.evidence)


def next_start(start: float, end: float, interval: float, jitter: float) -> tuple[float, int]:
    """The next start after an audit that ran from ``start`` to ``end``, and the slots skipped.

    The next slot is ``start + k * interval`` for the smallest ``k >= 1`` after ``end``: an
    overrunning audit makes the next one wait for its slot instead of queueing behind it.
    """
    k = max(1, math.floor((end - start) / interval) + 1)
    return start + k * interval + jitter, k - 1


class Watchdog:
    """Pets the systemd watchdog every ``period / 2`` while the main loop shows progress."""

    def __init__(self, period: float, heartbeat: Callable[[], float],
                 send: Callable[[str], bool] = notify,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.period = period
        """``WATCHDOG_USEC`` in seconds."""
        self.heartbeat = heartbeat
        self.send = send
        self.clock = clock
        self.stopped = threading.Event()
        self.pets = 0
        self.withheld = False
        self.thread = threading.Thread(target=self._run, name="watchdog", daemon=True)

    def alive(self) -> bool:
        """The main loop made progress within one watchdog period."""
        return self.clock() - self.heartbeat() < self.period

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=2)

    def _run(self) -> None:
        while not self.stopped.wait(self.period / 2):
            if self.alive():
                if self.withheld:
                    log("watchdog-resumed")
                    self.withheld = False
                self.send("WATCHDOG=1")
                self.pets += 1
            elif not self.withheld:
                self.withheld = True
                log("watchdog-withheld", level="error", reason="main loop made no progress",
                    stalled_s=round(self.clock() - self.heartbeat(), 1))


class Service:
    """One daemon process: the loop, its signals and what it tells systemd."""

    def __init__(self, config_path: Path, clock: Callable[[], float] = time.monotonic,
                 place: bool = True) -> None:
        self.config_path = config_path
        self.clock = clock
        self.place = place
        """Place itself at start (``--no-placement``, for tests and debugging, leaves it be)."""
        self.loaded: Loaded | None = None
        self.stop_requested = False
        self.reload_requested = False
        self.in_audit = False
        self.beat = clock()
        self.cycles = 0
        self.previous: dict[str, tuple[str, str]] = {}
        self.last_summary: str | None = None
        """The last audit's summary line (None before the first)."""
        self.loaded_text = ""
        """``loaded N checks from M policy files`` (``reloaded`` after a reload): kept in
        every ``STATUS=``, so that ``systemctl status`` always says what is in force."""
        self.reload_error: str | None = None
        self.random = random.SystemRandom()
        self.endpoint: metrics.Endpoint | None = None
        self.dump_cache = DumpCache()
        """Seccomp filter dumps of unchanged processes, kept for the daemon's lifetime."""
        self.watch = resources.Watch()
        """This process's CPU time and RSS per cycle, against the configured budget."""
        self.skip_next = False
        """The last cycle went over budget: the next one is skipped."""
        self.last_run: AuditRun | None = None
        """The last audit, exported again when a cycle is skipped."""
        self.history_broken: bool | None = None
        """The last verification of the history found problems or failed (None: not yet)."""
        self.verified_at: float | None = None
        """``clock()`` at the last verification of the history (None: verify at the next run)."""
        self.enforcer: Enforcer | None = None
        """The ``enforce:`` bindings' state, from the first cycle that has bindings."""

    # -- signals -------------------------------------------------------------------------
    # Handlers take no lock (the main thread may hold it): the loop's sleep is a Wakeup.
    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requested = True
        if self.in_audit:
            raise _Stop

    def _on_reload(self, signum: int, frame: FrameType | None) -> None:
        self.reload_requested = True

    # -- helpers ---------------------------------------------------------------------------
    def _today(self) -> dt.date:
        return dt.datetime.now(dt.UTC).date()

    def status(self) -> str:
        parts = [self.loaded_text] + ([] if self.last_summary is None else [self.last_summary])
        text = "; ".join(parts)
        if self.reload_error is not None:
            text = f"reload failed, previous configuration in force: {self.reload_error}; {text}"
        return status_text(text)

    def _loaded_line(self, loaded: Loaded) -> str:
        return (f"{plural(len(loaded.policy_set.checks), 'check')} from "
                f"{plural(loaded.files, 'policy file')}")

    def start(self) -> int | None:
        """Place, load; None when ready, else the exit status."""
        log("start", version=__version__, config=str(self.config_path), pid=os.getpid())
        if self.place:
            for step, outcome, details in place_self():
                log("placement", level="info" if outcome == "ok" else "warning", step=step,
                    outcome=outcome, extra=details)
        else:
            log("placement", level="warning", step="all", outcome="skipped",
                reason="--no-placement")
        loaded = load_all(self.config_path, self._today())
        if isinstance(loaded, list):
            for problem in loaded:
                log("config-invalid", level="error", error=problem)
            log("exit", level="error", status=EXIT_INVALID, reason="invalid configuration")
            return EXIT_INVALID
        self.loaded = loaded
        log("loaded", checks=len(loaded.policy_set.checks), files=loaded.files,
            root=str(loaded.config.root), interval_s=loaded.config.interval)
        return self._listen(loaded.config)

    def _listen(self, config: Config) -> int | None:
        """Start the HTTP metrics endpoint when configured (bound once, at start)."""
        if config.metrics_listen is None:
            return None
        endpoint = metrics.Endpoint(config.metrics_listen)
        try:
            endpoint.start()
        except OSError as exc:
            log("metrics-listen-error", level="error", address=config.metrics_listen,
                error=exc.strerror or str(exc))
            return EXIT_INVALID
        self.endpoint = endpoint
        log("metrics-listen", address=config.metrics_listen)
        return None

    # -- one cycle -------------------------------------------------------------------------
    def _audit(self, config: Config) -> AuditRun:
        assert self.loaded is not None
        allowed = frozenset(config.deep_seccomp)
        # Serial: a background audit at idle priority spends as little CPU as it can; a
        # shared fd walk saves wall time (what `hostguard audit` is waited for) but costs more.
        return audit.run(self.loaded.policy_set, config.root, config.labels,
                         deep_allowed=lambda check: check.id in allowed,
                         dump_cache=self.dump_cache, fd_walk=FdWalk.serial(),
                         own_listeners=self.own_listeners())

    def own_listeners(self) -> tuple[OwnListener, ...]:
        """The metrics endpoint this daemon serves (bound at start, kept across reloads): its
        own socket must not fail a ports check (the one rule: ``agent/checks/ports.py``)."""
        if self.endpoint is None:
            return ()
        mine = self.endpoint
        return (OwnListener(os.getpid(), mine.host, mine.port, f"metrics_listen {mine.address}"),)

    def cycle(self) -> bool:
        """One audit and its outputs; True when everything was written."""
        assert self.loaded is not None
        config = self.loaded.config
        if self.skip_next:
            return self._skip()
        self.cycles += 1
        self.watch.begin()
        self.enforce(config)
        log("audit-start", cycle=self.cycles)
        self.in_audit = True
        try:
            run = self._audit(config)
        except Exception as exc:  # churn, a vanished root, a bug: logged, next cycle retries
            self.in_audit = False
            log("audit-error", level="error", cycle=self.cycles,
                error=f"{type(exc).__name__}: {exc}")
            self._measure(config)
            self.last_summary = f"audit {self.cycles} failed: {type(exc).__name__}: {exc}"
            notify("STATUS=" + self.status())
            return False
        finally:
            self.in_audit = False
        audit_done(self.cycles, run)
        self._drift(run)
        ok = self._store(run)
        self._measure(config)
        self.last_run = run
        ok = self._export(run, self.watch) and ok
        self.last_summary = summary(run) + ("" if ok else "; some outputs not written")
        notify("STATUS=" + self.status())
        return ok

    def enforce(self, config: Config) -> None:
        """Apply the ``enforce:`` bindings, before the audit (which then sees the filters).
        Never interrupted by a stop request (a thread held in a ptrace stop is released first);
        each attempt goes to the history in a transaction of its own as soon as it is made."""
        if not config.enforce:
            self.enforcer = None
            return
        if self.enforcer is None:
            # Only a configuration with enforce: loads ptrace injection and the compiler.
            from agent.daemon.enforce import Enforcer  # noqa: PLC0415 - see above

            self.enforcer = Enforcer(self.clock)
        try:
            self.enforcer.cycle(config.enforce, self._today(),
                                lambda entry: self._record_application(config, entry))
        except Exception as exc:  # an unreadable /proc, a bug: logged, the audit still runs
            log("enforce-error", level="error", cycle=self.cycles,
                error=f"{type(exc).__name__}: {exc}")

    def _record_application(self, config: Config, entry: dict[str, Any]) -> None:
        if config.history is None:
            return
        try:
            with History(config.history) as store:
                entry_id = store.record_application(entry)
            log("history-application", path=str(config.history), application=entry_id)
        except Exception as exc:  # sqlite3 errors, a full disk: logged, never lost silently
            log("history-error", level="error", path=str(config.history),
                error=f"{type(exc).__name__}: {exc}", binding=entry["binding"],
                pid=entry["pid"], outcome=entry["outcome"])

    def _measure(self, config: Config) -> None:
        """The cycle's CPU time and RSS against the budget; over it, the next cycle is skipped."""
        usage = self.watch.end()
        over = resources.Budget(config.cpu_budget_seconds, config.rss_budget_mib).exceeded(usage)
        if over:
            self.watch.over_budget += 1
            self.skip_next = True
            log("over-budget", level="warning", cycle=self.cycles, next_cycle="skipped",
                extra=over)

    def _skip(self) -> bool:
        """The cycle after one over budget: no audit; the metrics count the skip."""
        self.skip_next = False
        self.watch.skipped += 1
        log("cycle-skipped", level="warning", after_cycle=self.cycles, reason="over-budget")
        return True if self.last_run is None else self._export(self.last_run, self.watch)

    def _drift(self, run: AuditRun) -> None:
        current = {r.check.id: (r.status.value, evidence_digest(r)) for r in run.results}
        for cid, (status, digest) in current.items():
            old = self.previous.get(cid)
            if old is not None and old[0] != status:
                log("drift", level="warning", check=cid, old=old[0], new=status,
                    evidence=digest)
        self.previous = current

    def publish(self, run: AuditRun) -> bool:
        """Reports, history and metrics; each failure is logged and the others still run."""
        ok = self._store(run)
        return self._export(run) and ok

    def _store(self, run: AuditRun) -> bool:
        """Reports and history; each failure is logged and the other still runs."""
        assert self.loaded is not None
        config = self.loaded.config
        ok = True
        if config.output_dir is not None:
            try:
                for path in write_reports(run, config.reports, config.output_dir, config.keep):
                    log("report", path=str(path))
            except OSError as exc:  # a full or read-only disk: the next cycle tries again
                ok = False
                log("report-error", level="error", dir=str(config.output_dir),
                    error=exc.strerror or str(exc))
            except Exception as exc:  # a renderer bug must not stop the service
                ok = False
                log("report-error", level="error", dir=str(config.output_dir),
                    error=f"{type(exc).__name__}: {exc}")
        if config.history is not None:
            try:
                with History(config.history) as store:
                    run_id = store.record(run)
                    log("history", path=str(config.history), run=run_id)
                    self._verify(store, config.history)
            except Exception as exc:  # sqlite3 errors, a full disk: the next cycle retries
                ok = False
                if isinstance(exc, CorruptHistory):  # damaged: the chain cannot be trusted
                    self.history_broken = True
                log("history-error", level="error", path=str(config.history),
                    error=f"{type(exc).__name__}: {exc}")
        return ok

    def _verify(self, store: History, path: Path) -> None:
        """Verify the whole chain when due, and prune it as configured once it verifies (the
        prune's own verification is the one); a verification that cannot run counts as
        broken."""
        now = self.clock()
        if self.verified_at is not None and now - self.verified_at < VERIFY_PERIOD:
            return
        self.verified_at = now
        self.beat = now  # the audit is done: the watchdog's period starts again for the verify
        self.history_broken = True  # fail closed until the verification says otherwise
        assert self.loaded is not None
        config = self.loaded.config
        if config.history_max_age_days is None and config.history_max_runs is None:
            problems = store.verify()
        else:
            try:
                pruned = store.prune(config.history_max_age_days, config.history_max_runs)
                problems = []
                if pruned:
                    log("history-pruned", path=str(path), runs=len(pruned),
                        first=pruned[0], last=pruned[-1])
            except NotVerified as exc:
                problems = list(exc.problems)
        for problem in problems:
            log("history-broken", level="error", path=str(path), problem=str(problem))
        self.history_broken = bool(problems)
        log("history-verified", level="error" if problems else "info", path=str(path),
            problems=len(problems))

    def _export(self, run: AuditRun, watch: resources.Watch | None = None) -> bool:
        """Metrics, over HTTP and to the textfile (with the resource watch, when given)."""
        assert self.loaded is not None
        config = self.loaded.config
        service = metrics.Service(config.interval,
                                  self.history_broken if config.history is not None else None)
        tally = self.enforcer.tally() if self.enforcer is not None else None
        if self.endpoint is not None:
            self.endpoint.update(run, watch, service, tally)
        if config.metrics is not None:
            try:
                metrics.write_textfile(run, config.metrics, watch=watch, service=service,
                                       enforce=tally)
                log("metrics", path=str(config.metrics))
            except Exception as exc:
                log("metrics-error", level="error", path=str(config.metrics),
                    error=f"{type(exc).__name__}: {exc}")
                return False
        return True

    # -- reload ----------------------------------------------------------------------------
    def reload(self) -> None:
        """Load and lint everything anew; replace the old only when all of it is valid."""
        self.reload_requested = False
        notify(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
        log("reload-start", config=str(self.config_path))
        loaded = load_all(self.config_path, self._today())
        if isinstance(loaded, list):
            for problem in loaded:
                log("reload-invalid", level="error", error=problem)
            more = f" (and {len(loaded) - 1} more)" if len(loaded) > 1 else ""
            self.reload_error = loaded[0] + more
            log("reload-failed", level="error", errors=len(loaded),
                keeping="previous configuration")
        else:
            self.loaded, self.reload_error = loaded, None
            self.verified_at = None  # the history may have moved: verify it at the next run
            log("reload-done", checks=len(loaded.policy_set.checks), files=loaded.files)
            self.loaded_text = f"reloaded {self._loaded_line(loaded)}"
        notify("STATUS=" + self.status())
        notify("READY=1")

    # -- the loop ----------------------------------------------------------------------------
    def serve(self) -> int:
        """Run until SIGTERM/SIGINT."""
        assert self.loaded is not None
        with Wakeup() as wakeup:
            return self._serve(wakeup)

    def _serve(self, wakeup: Wakeup) -> int:
        assert self.loaded is not None
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)
        notify("READY=1")
        self.loaded_text = f"loaded {self._loaded_line(self.loaded)}"
        notify("STATUS=" + self.status())
        period = watchdog_interval()
        dog = None
        if period is not None:
            dog = Watchdog(period, lambda: self.beat, clock=self.clock)
            dog.start()
            log("watchdog", interval_s=period, pet_every_s=period / 2)
        slice_s = period / 4 if period is not None else 1.0
        due = self.clock()
        last_start = due
        try:
            while not self.stop_requested:
                self.beat = self.clock()
                if self.reload_requested:
                    self.reload()
                    config = self.loaded.config
                    due = max(self.clock(), last_start + config.interval)
                    continue
                now = self.clock()
                if now < due:
                    wakeup.wait(min(due - now, slice_s))
                    continue
                last_start = now
                self.cycle()
                end = self.clock()
                config = self.loaded.config
                jitter = self.random.uniform(0, config.jitter) if config.jitter else 0.0
                due, skipped = next_start(last_start, end, config.interval, jitter)
                if skipped:
                    log("overrun", level="warning", cycle=self.cycles,
                        duration_ms=round((end - last_start) * 1000, 3),
                        interval_ms=round(config.interval * 1000, 3), skipped=skipped)
        except _Stop:
            log("audit-abandoned", cycle=self.cycles, reason="stop requested")
        notify("STOPPING=1")
        log("stop", cycles=self.cycles)
        if dog is not None:
            dog.stop()
        if self.endpoint is not None:
            self.endpoint.stop()
        return EXIT_OK

    def once(self) -> int:
        """One audit with every output, then the audit's exit status (4: outputs failed)."""
        assert self.loaded is not None
        config = self.loaded.config
        self.enforce(config)
        run = self._audit(config)
        audit_done(1, run)
        if not self.publish(run):
            return EXIT_WRITE
        return audit.exit_code(run)


def main(config_path: Path, once: bool = False, place: bool = True) -> int:
    """``hostguard daemon``."""
    service = Service(config_path, place=place)
    code = service.start()
    if code is not None:
        return code
    return service.once() if once else service.serve()
