"""The daemon's ``enforce:`` bindings on real processes: a cycle puts the filter on a live child
(proved by the kernel's own answer, the loaded stack read back, the history and the metrics),
leaves it alone afterwards, backs off from a process it cannot filter, and turns log into enforce
on the binding's day."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.core.digest import sha256_hex
from agent.daemon.enforce import BACKOFF_FIRST
from agent.daemon.history import History
from agent.daemon.service import Service
from agent.host.seccomp_dump import dump_filters
from agent.seccomp import verify
from agent.seccomp.compile import build_filter
from agent.seccomp.profile import load_profile
from tests.authoring import write
from tests.daemon.harness import KPTR_PASS, parse
from tests.live import LiveChildren, live_children, threaded
from tests.support import need_root, run_cli

NO_MKDIR = """apiVersion: hostguard/v1
kind: SeccompProfile
metadata: {name: no-mkdir}
default_action: allow
deny:
  - syscalls: [mkdir, mkdirat]
    action: {errno: 95}
"""
"""Denies mkdir with EOPNOTSUPP (95), lets everything else through."""

MKDIR_ON_SIGNAL = """
import os, signal, sys, time
target = sys.argv[2]
def attempt(signum, frame):
    try:
        os.mkdir(target)
        os.rmdir(target)
        print("made", flush=True)
    except OSError as exc:
        print(exc.errno, flush=True)
signal.signal(signal.SIGUSR1, attempt)
print("ready", flush=True)
while True:
    time.sleep(1)
"""
"""A child that tries a mkdir on SIGUSR1 and prints the errno (or ``made``)."""


class Clock:
    """The service's monotonic clock, moved by the test (the back-off is measured on it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def children() -> Iterator[LiveChildren]:
    need_root()
    with live_children(60) as started:
        yield started


def mkdir_child(children: LiveChildren, tmp_path: Path) -> tuple[int, str, Any]:
    """A MKDIR_ON_SIGNAL child with a marker of its own: (pid, marker, Popen)."""
    marker = f"hg-enforce-{uuid.uuid4().hex}"
    child = children.start([sys.executable, "-c", MKDIR_ON_SIGNAL, marker,
                            str(tmp_path / f"made-{marker}")], reports=True)
    assert children.ready_line(child) == "ready\n"
    return child.pid, marker, child


def mkdir_answer(children: LiveChildren, child: Any) -> str:
    os.kill(child.pid, signal.SIGUSR1)
    return children.ready_line(child).strip()


def config(tmp_path: Path, bindings: list[dict[str, Any]]) -> Path:
    write(tmp_path / "policies" / "base.yaml",
          {"apiVersion": "hostguard/v1", "kind": "Policy", "metadata": {"name": "base"},
           "checks": [KPTR_PASS]})
    (tmp_path / "no-mkdir.yaml").write_text(NO_MKDIR, encoding="utf-8")
    return write(tmp_path / "hostguard.yaml", {
        "apiVersion": "hostguard/v1", "kind": "AgentConfig", "policies": ["policies"],
        "history": "state/history.db", "metrics": "state/hostguard.prom",
        "enforce": bindings})


def binding(ident: str, marker: str, **extra: Any) -> dict[str, Any]:
    return {"id": ident, "cmdline": marker, "profile": "no-mkdir.yaml", "mode": "enforce",
            **extra}


def started(path: Path, clock: Clock | None = None) -> Service:
    service = Service(path, clock=clock or Clock(), place=False)
    assert service.start() is None
    return service


def status(pid: int | str) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def start_time(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


Labels = tuple[tuple[str, str], ...]


def samples(path: Path) -> dict[tuple[str, Labels], float]:
    found = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            if sample.name.startswith("hostguard_enforce_"):
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def events(capsys: pytest.CaptureFixture[str], name: str) -> list[dict[str, str]]:
    err = capsys.readouterr().err
    return [parse(line) for line in err.splitlines() if line.startswith(f"event={name} ")]


def test_a_cycle_applies_the_filter_once_with_proof(tmp_path: Path, children: LiveChildren,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    pid, marker, child = mkdir_child(children, tmp_path)
    path = config(tmp_path, [binding("gw", marker)])
    assert status(pid)["Seccomp"] == "0"
    assert mkdir_answer(children, child) == "made"
    service = started(path)
    assert service.cycle()
    # The kernel answers as the profile says, and the loaded stack is the profile's.
    assert (status(pid)["Seccomp"], status(pid)["Seccomp_filters"]) == ("2", "1")
    assert mkdir_answer(children, child) == "95"
    profile = load_profile(tmp_path / "no-mkdir.yaml")
    assert not isinstance(profile, list)
    compiled = build_filter(profile, "enforce")
    loaded = dump_filters(pid)
    assert verify.compare(loaded.filters, compiled).equivalent
    # The history holds the application, chained and verifiable.
    db = tmp_path / "state" / "history.db"
    with History(db) as history:
        (entry,) = history.applications()
        assert history.verify() == []
    assert entry["outcome"] == "applied"
    assert (entry["binding"], entry["pid"], entry["start_time"], entry["mode"]) == (
        "gw", pid, start_time(pid), "enforce")
    assert entry["digest"] == sha256_hex(compiled.bpf())
    assert (entry["equivalent"], entry["differences"], entry["filters"]) == (True, 0, 1)
    assert entry["stop_ns"] > 0 and entry["reason"] is None
    assert entry["profile"] == str(tmp_path / "no-mkdir.yaml")
    assert entry["selector"] == f"cmdline /{marker}/"
    (applied,) = events(capsys, "enforce-applied")
    assert (applied["binding"], applied["pid"], applied["equivalent"]) == ("gw", str(pid), "True")
    gw: Labels = (("binding", "gw"),)
    counted: dict[tuple[str, Labels], float] = {
        ("hostguard_enforce_applications_total", (("binding", "gw"), ("outcome", o))):
        1.0 if o == "applied" else 0.0 for o in ("applied", "unchanged", "failed")}
    counted[("hostguard_enforce_processes", gw)] = 1.0
    counted[("hostguard_enforce_pending_processes", gw)] = 0.0
    assert samples(tmp_path / "state" / "hostguard.prom") == counted
    # The next cycle leaves it alone: no attempt, no second filter, still counted as enforced.
    assert service.cycle()
    assert status(pid)["Seccomp_filters"] == "1"
    assert events(capsys, "enforce-applied") == []
    with History(db) as history:
        assert len(history.applications()) == 1
    assert samples(tmp_path / "state" / "hostguard.prom") == counted
    # A restarted daemon knows nothing: it finds the filter there (a dump) and adds none.
    again = started(path)
    assert again.cycle()
    assert status(pid)["Seccomp_filters"] == "1"
    with History(db) as history:
        first, second = history.applications()
        assert history.verify() == []
    assert (second["outcome"], second["pid"], second["stop_ns"]) == ("unchanged", pid, 0)
    assert (second["equivalent"], second["digest"]) == (True, first["digest"])
    assert len(events(capsys, "enforce-unchanged")) == 1
    assert mkdir_answer(children, child) == "95"


def test_a_failed_apply_is_logged_and_backed_off(tmp_path: Path, children: LiveChildren,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    # THREADED: the main thread carries one filter, its worker none; TSYNC cannot sync them.
    marker = f"hg-enforce-{uuid.uuid4().hex}"
    child = children.start(threaded(marker), reports=True)
    worker = int(children.ready_line(child))
    before = (status(child.pid)["Seccomp_filters"],
              status(f"{child.pid}/task/{worker}")["Seccomp_filters"])
    assert before == ("1", "0")
    clock = Clock()
    service = started(config(tmp_path, [binding("threads", marker)]), clock)
    db = tmp_path / "state" / "history.db"

    def attempts() -> list[dict[str, Any]]:
        with History(db) as history:
            return history.applications()

    assert service.cycle()
    (failed,) = events(capsys, "enforce-failed")
    assert (failed["binding"], failed["pid"], failed["failures"]) == ("threads", str(child.pid),
                                                                      "1")
    assert "carry different filter stacks" in failed["reason"]
    assert float(failed["retry_in_s"]) == BACKOFF_FIRST
    (first,) = attempts()
    assert (first["outcome"], first["failures"], first["equivalent"]) == ("failed", 1, None)
    assert first["reason"] == failed["reason"] and first["changed"] is None
    # Within the back-off nothing is tried, however many cycles run.
    clock.now += BACKOFF_FIRST - 1
    assert service.cycle() and service.cycle()
    assert events(capsys, "enforce-failed") == [] and len(attempts()) == 1
    threads = (("binding", "threads"),)
    assert samples(tmp_path / "state" / "hostguard.prom")[
        ("hostguard_enforce_pending_processes", threads)] == 1.0
    # After it, one more attempt, and the wait doubles.
    clock.now += 2
    assert service.cycle()
    (again,) = events(capsys, "enforce-failed")
    assert (again["failures"], float(again["retry_in_s"])) == ("2", 2 * BACKOFF_FIRST)
    assert [a["outcome"] for a in attempts()] == ["failed", "failed"]
    found = samples(tmp_path / "state" / "hostguard.prom")
    assert found[("hostguard_enforce_applications_total",
                  (("binding", "threads"), ("outcome", "failed")))] == 2.0
    assert found[("hostguard_enforce_processes", threads)] == 0.0
    # The process was left as it was.
    assert (status(child.pid)["Seccomp_filters"],
            status(f"{child.pid}/task/{worker}")["Seccomp_filters"]) == before
    with History(db) as history:
        assert history.verify() == []


def test_log_becomes_enforce_on_the_bindings_day(tmp_path: Path, children: LiveChildren,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    today = dt.datetime.now(dt.UTC).date()
    past_pid, past, past_child = mkdir_child(children, tmp_path)
    future_pid, future, future_child = mkdir_child(children, tmp_path)
    both_pid, both, both_child = mkdir_child(children, tmp_path)
    path = config(tmp_path, [
        binding("past", past, mode="log", enforce_from=str(today - dt.timedelta(days=1))),
        binding("future", future, mode="log", enforce_from=str(today + dt.timedelta(days=1))),
        # Two bindings selecting one process: neither is applied.
        binding("both-a", both), binding("both-b", f"{both}$", mode="log")])
    service = started(path)
    assert service.cycle()
    with History(tmp_path / "state" / "history.db") as history:
        modes = {a["binding"]: (a["outcome"], a["mode"]) for a in history.applications()}
    assert modes == {"past": ("applied", "enforce"), "future": ("applied", "log")}
    profile = load_profile(tmp_path / "no-mkdir.yaml")
    assert not isinstance(profile, list)
    for pid, mode in ((past_pid, "enforce"), (future_pid, "log")):
        assert status(pid)["Seccomp"] == "2"
        assert verify.compare(dump_filters(pid).filters, build_filter(profile, mode)).equivalent
    assert mkdir_answer(children, past_child) == "95"
    assert mkdir_answer(children, future_child) == "made"  # log mode: logged, not denied
    assert status(both_pid)["Seccomp"] == "0"
    assert mkdir_answer(children, both_child) == "made"
    (conflict,) = events(capsys, "enforce-conflict")
    assert (conflict["pid"], conflict["bindings"]) == (str(both_pid), "both-a,both-b")
    found = samples(tmp_path / "state" / "hostguard.prom")
    assert found[("hostguard_enforce_pending_processes", (("binding", "both-a"),))] == 1.0
    assert found[("hostguard_enforce_processes", (("binding", "past"),))] == 1.0


class Dated(Service):
    """A service whose UTC day the test sets (the day decides a binding's mode)."""

    day = dt.date(2026, 12, 13)

    def _today(self) -> dt.date:
        return self.day


def test_on_the_day_the_enforcing_filter_is_stacked(tmp_path: Path, children: LiveChildren,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    pid, marker, child = mkdir_child(children, tmp_path)
    path = config(tmp_path, [binding("gw", marker, mode="log", enforce_from="2026-12-14")])
    service = Dated(path, clock=Clock(), place=False)
    assert service.start() is None
    assert service.cycle() and service.cycle()
    assert status(pid)["Seccomp_filters"] == "1"
    assert mkdir_answer(children, child) == "made"
    service.day = dt.date(2026, 12, 14)
    assert service.cycle()
    # A filter cannot be taken off: the enforcing one goes on top, and the stack proves equal
    # to the profile in enforce mode (deny beats log).
    assert status(pid)["Seccomp_filters"] == "2"
    assert mkdir_answer(children, child) == "95"
    with History(tmp_path / "state" / "history.db") as history:
        logged, enforced = history.applications()
    assert [(a["outcome"], a["mode"], a["filters"], a["equivalent"]) for a in (logged, enforced)
            ] == [("applied", "log", 1, True), ("applied", "enforce", 2, True)]
    assert logged["digest"] != enforced["digest"]
    assert service.cycle()
    assert status(pid)["Seccomp_filters"] == "2"
    assert len(events(capsys, "enforce-applied")) == 2


def test_daemon_once_applies_before_it_audits(tmp_path: Path, children: LiveChildren) -> None:
    pid, marker, child = mkdir_child(children, tmp_path)
    path = config(tmp_path, [binding("gw", marker)])
    result = run_cli("daemon", "--config", str(path), "--once", "--no-placement")
    lines = [parse(line) for line in result.stderr.splitlines()]
    order = [e["event"] for e in lines if e["event"] in ("enforce-applied", "audit-done")]
    assert order == ["enforce-applied", "audit-done"], result.stderr
    assert status(pid)["Seccomp"] == "2"
    assert mkdir_answer(children, child) == "95"
    with History(tmp_path / "state" / "history.db") as history:
        (entry,) = history.applications()
        assert history.verify() == [] and len(history.runs()) == 1
    assert (entry["pid"], entry["outcome"], entry["equivalent"]) == (pid, "applied", True)
