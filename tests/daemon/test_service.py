"""``hostguard daemon`` as a real subprocess: sd_notify, reload, stop, faults, scheduling."""

from __future__ import annotations

import ctypes
import datetime as dt
import itertools
import json
import os
import platform
import re
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent import audit
from agent.daemon.history import History
from agent.daemon.service import Watchdog, next_start, summary
from agent.policy.resolve import resolve
from tests.authoring import TRADING_ROOT, check, policy, write
from tests.daemon.harness import (
    KPTR_FAIL,
    KPTR_PASS,
    STATUS_LINE,
    SWAPPINESS,
    Daemon,
    Listener,
    parse,
    wait_for,
    write_config,
)
from tests.daemon.histories import tamper
from tests.support import need, need_root, need_tool, run_cli

ONE_PASS = "1 check, 1 pass, 0 fail, 0 error, 0 waived, 0 not applicable, score 100%"


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[Listener]:
    sock = Listener(tmp_path)
    yield sock
    sock.close()


def statuses(listener: Listener) -> list[str]:
    return [m for m in listener.texts() if m.startswith("STATUS=") and "; last audit " in m]


def test_notify_sequence_watchdog_and_stop(tmp_path: Path, listener: Listener) -> None:
    config = write_config(tmp_path, output_dir="out")
    daemon = Daemon(config, listener, env={"WATCHDOG_USEC": "1000000"})
    try:
        wait_for(lambda: len(statuses(listener)) >= 2, what="two audits")
        sched = Path(f"/proc/{daemon.proc.pid}/sched").read_text()
        time.sleep(1.6)  # watchdog pets counted over a known window
        code, elapsed = daemon.stop()
    finally:
        daemon.kill()
    assert code == 0
    assert elapsed < 5
    texts = listener.texts()
    audits = len(daemon.events("audit-done"))
    assert texts[:2] == ["READY=1", "STATUS=loaded 1 check from 1 policy file"]
    assert texts[-1] == "STOPPING=1"
    assert len(texts) == 3 + audits
    for text in texts[2:-1]:
        match = STATUS_LINE.fullmatch(text)
        assert match is not None and match.group("counts") == ONE_PASS, text
    # WATCHDOG=1 every half of WATCHDOG_USEC, from the first half second on.
    pets = [t for t, m in listener.messages if m == "WATCHDOG=1"]
    ready = listener.messages[0][0]
    span = listener.messages[-1][0] - ready
    assert abs(len(pets) - span / 0.5) <= 2, (len(pets), span)
    gaps = [b - a for a, b in itertools.pairwise(pets)]
    assert all(0.4 < g < 0.9 for g in gaps), gaps
    # One report per audit, complete and private.
    reports = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in reports if p.name.startswith(".")] == []
    assert 1 <= len(reports) <= audits  # same-second names replace each other atomically
    for report in reports:
        assert json.loads(report.read_text())["summary"]["pass"] == 1
        assert stat.S_IMODE(report.stat().st_mode) == 0o640
    assert [(e["step"], e["outcome"], e["reason"]) for e in daemon.events("placement")] == [
        ("all", "skipped", "--no-placement")]
    assert re.search(r"^policy\s+:\s+0$", sched, re.M), sched  # SCHED_OTHER, as started


def test_placement_idle_class_nice_19_and_idle_io(tmp_path: Path) -> None:
    # Placement comes first, before the policies are read: its log lines need next to no CPU,
    # so they come even while the machine is busy and an idle-class process waits for the CPU.
    daemon = Daemon(write_config(tmp_path), None, place=True)
    try:
        wait_for(lambda: len(daemon.events("placement")) == 4, timeout=60, what="placement")
        pid = daemon.proc.pid
        sched = Path(f"/proc/{pid}/sched").read_text()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ioprio = None
        if platform.machine() == "x86_64":
            libc = ctypes.CDLL(None, use_errno=True)
            ioprio = libc.syscall(252, 1, pid)  # ioprio_get(IOPRIO_WHO_PROCESS, pid)
    finally:
        daemon.kill()
    assert re.search(r"^policy\s+:\s+5$", sched, re.M), sched  # SCHED_IDLE
    assert fields[16] == "19"  # nice (field 19 of stat)
    assert ioprio is None or ioprio >> 13 == 3  # IOPRIO_CLASS_IDLE
    placement = {e["step"]: e["outcome"] for e in daemon.events("placement")}
    assert placement == {"affinity": "ok", "scheduler": "ok", "nice": "ok", "ioprio": "ok"}


def test_abstract_socket_and_sigint(tmp_path: Path) -> None:
    listener = Listener(tmp_path, abstract=True)
    daemon = Daemon(write_config(tmp_path), listener)
    try:
        wait_for(lambda: len(statuses(listener)) >= 1, what="an audit")
        code, elapsed = daemon.stop(signal.SIGINT)
    finally:
        daemon.kill()
        listener.close()
    assert (code, elapsed < 5) == (0, True)
    texts = listener.texts(watchdog=True)
    assert texts[:2] == ["READY=1", "STATUS=loaded 1 check from 1 policy file"]
    assert "WATCHDOG=1" not in texts  # no WATCHDOG_USEC, no pets
    assert texts[-1] == "STOPPING=1"


def test_watchdog_pid_of_another_process_is_not_petted(tmp_path: Path, listener: Listener) -> None:
    daemon = Daemon(write_config(tmp_path), listener,
                    env={"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
    try:
        wait_for(lambda: len(statuses(listener)) >= 1, what="an audit")
        time.sleep(0.3)
        daemon.stop()
    finally:
        daemon.kill()
    assert "WATCHDOG=1" not in listener.texts(watchdog=True)


def test_reload_with_a_valid_policy(tmp_path: Path, listener: Listener) -> None:
    config = write_config(tmp_path)
    daemon = Daemon(config, listener)
    try:
        wait_for(lambda: len(statuses(listener)) >= 1, what="first audit")
        write(tmp_path / "policies" / "base.yaml", policy("base", [KPTR_FAIL, SWAPPINESS]))
        before = len(listener.texts())
        daemon.send(signal.SIGHUP)
        wait_for(lambda: "READY=1" in listener.texts()[before:], what="READY=1 after reload")
        wait_for(lambda: any("2 checks, 1 pass, 1 fail" in m for m in statuses(listener)),
                 what="an audit with the new policy")
        code, _ = daemon.stop()
    finally:
        daemon.kill()
    assert code == 0
    reload_msgs = listener.texts()[before:before + 3]
    assert re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=\d+", reload_msgs[0]), reload_msgs
    assert re.fullmatch(r"STATUS=reloaded 2 checks from 1 policy file; last audit \S+: "
                        + ONE_PASS, reload_msgs[1]), reload_msgs
    assert reload_msgs[2] == "READY=1"
    # The check whose verdict changed is logged as drift, with its evidence digest.
    [drift] = daemon.events("drift")
    assert (drift["check"], drift["old"], drift["new"]) == ("KRN-001", "pass", "fail")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", drift["evidence"])
    assert [e["checks"] for e in daemon.events("reload-done")] == ["2"]


def test_reload_with_invalid_policy_or_deleted_folder_keeps_the_old(
        tmp_path: Path, listener: Listener) -> None:
    config = write_config(tmp_path)
    base = tmp_path / "policies" / "base.yaml"
    daemon = Daemon(config, listener)
    try:
        wait_for(lambda: len(statuses(listener)) >= 1, what="first audit")
        bad = policy("base", [KPTR_FAIL])
        bad["checks"][0]["severty"] = "high"
        write(base, bad)
        before = len(listener.texts())
        daemon.send(signal.SIGHUP)
        wait_for(lambda: "READY=1" in listener.texts()[before:], what="READY=1 after reload")
        failed = listener.texts()[before + 1]
        # The next audit still runs the old policy, and the status keeps the error.
        wait_for(lambda: len([m for m in listener.texts()[before + 3:]
                              if "last audit" in m]) >= 1, what="audit after the bad reload")
        after_bad = next(m for m in listener.texts()[before + 3:] if "last audit" in m)
        # A deleted policy folder: the same.
        for child in base.parent.iterdir():
            child.unlink()
        base.parent.rmdir()
        mark = len(listener.texts())
        daemon.send(signal.SIGHUP)
        wait_for(lambda: "READY=1" in listener.texts()[mark:], what="READY=1 after 2nd reload")
        gone = listener.texts()[mark + 1]
        wait_for(lambda: any("last audit" in m for m in listener.texts()[mark + 3:]),
                 what="audit after the folder went")
        code, _ = daemon.stop()
    finally:
        daemon.kill()
    assert code == 0
    located = f"{base}:21:7: error: unknown key 'severty' [unknown-key]"
    kept = "loaded 1 check from 1 policy file"
    assert failed == f"STATUS=reload failed, previous configuration in force: {located}; " \
        f"{kept}; last audit {failed.split('last audit ')[1]}"
    assert after_bad.startswith(f"STATUS=reload failed, previous configuration in force: "
                                f"{located}; {kept}; last audit ")
    assert after_bad.endswith(ONE_PASS)
    assert gone.startswith(f"STATUS=reload failed, previous configuration in force: policy "
                           f"path {base.parent}: No such file or directory; {kept}; "
                           "last audit ")
    errors = [e["error"] for e in daemon.events("reload-invalid")]
    assert errors == [located, f"policy path {base.parent}: No such file or directory"]
    assert all(m.endswith(ONE_PASS) for m in statuses(listener)[-1:])


def test_overrunning_audits_never_overlap(tmp_path: Path, listener: Listener) -> None:
    # An interval far shorter than any audit: every audit overruns.
    config = write_config(tmp_path, interval=0.0002)
    daemon = Daemon(config, listener)
    try:
        wait_for(lambda: len(daemon.events("audit-done")) >= 20, what="20 audits")
        daemon.stop()
    finally:
        daemon.kill()
    cycle_lines = [(t, line) for t, line in daemon.lines
                   if line.startswith(("event=audit-start", "event=audit-done"))]
    kinds = [line.split()[0] for _, line in cycle_lines]
    n = kinds.count("event=audit-start")
    # Strictly start, done, start, done ...: the next start waits for the previous end.
    assert kinds[: 2 * (n - 1)] == ["event=audit-start", "event=audit-done"] * (n - 1)
    starts = [t for t, line in cycle_lines if line.startswith("event=audit-start")]
    dones = [t for t, line in cycle_lines if line.startswith("event=audit-done")]
    assert all(s >= d for s, d in zip(starts[1:], dones, strict=False))
    overruns = daemon.events("overrun")
    assert len(overruns) >= n - 1
    for event in overruns:
        duration, interval = float(event["duration_ms"]), float(event["interval_ms"])
        assert interval == 0.2
        assert abs(int(event["skipped"]) - duration // interval) <= 1


def test_a_storm_of_reloads_during_short_sleeps_never_stalls_the_loop(
        tmp_path: Path, listener: Listener) -> None:
    # Signals landing while the loop sleeps or wakes: a handler that took the lock the main
    # thread held (threading.Event.set) hung the daemon, and SIGTERM then never stopped it.
    config = write_config(tmp_path, interval=0.0002)
    daemon = Daemon(config, listener)
    try:
        wait_for(lambda: len(daemon.events("audit-done")) >= 3, what="first audits")
        end = time.monotonic() + 1
        while time.monotonic() < end:
            daemon.send(signal.SIGHUP)
            time.sleep(0.0005)
        reloads = len(daemon.events("reload-done"))
        daemon.send(signal.SIGHUP)
        wait_for(lambda: len(daemon.events("reload-done")) > reloads, what="one more reload")
        code, elapsed = daemon.stop()
    finally:
        daemon.kill()
    assert (code, elapsed < 5) == (0, True)
    assert len(daemon.events("reload-done")) > 10
    assert listener.texts()[-1] == "STOPPING=1"


def test_next_start_skips_the_slots_an_audit_overran() -> None:
    assert next_start(100.0, 100.5, 10.0, 0.0) == (110.0, 0)
    assert next_start(100.0, 100.5, 10.0, 2.5) == (112.5, 0)
    assert next_start(100.0, 125.0, 10.0, 0.0) == (130.0, 2)
    assert next_start(100.0, 110.0, 10.0, 0.0) == (120.0, 1)


def test_watchdog_stops_petting_when_the_main_loop_hangs() -> None:
    pets: list[tuple[float, float]] = []  # (when, the heartbeat then)
    beat = [time.monotonic()]

    def send(message: str) -> bool:
        assert message == "WATCHDOG=1"
        pets.append((time.monotonic(), beat[0]))
        return True

    def live_loop() -> bool:  # the main loop shows progress while the dog is watched
        beat[0] = time.monotonic()
        return len(pets) >= 3

    dog = Watchdog(0.2, lambda: beat[0], send)
    dog.start()
    try:
        wait_for(live_loop, what="pets while the loop is alive")
        last_beat = beat[0]
        wait_for(lambda: dog.withheld, what="pets withheld once the loop hangs")
    finally:
        dog.stop()
    assert not dog.thread.is_alive()
    # Every pet vouched for a loop seen alive within one period; none came after that.
    assert all(when - heartbeat < 0.2 for when, heartbeat in pets), pets
    assert pets[-1][0] < last_beat + 0.2
    assert dog.pets == len(pets) >= 3


def test_churning_processes_and_sigterm_mid_audit(tmp_path: Path, listener: Listener) -> None:
    # Root "/": the real /proc, read while processes come and go; SIGTERM lands mid-audit.
    write_config(tmp_path)
    checks = [check("PRC-001", "process", {"name": "telnetd", "forbidden": True}),
              check("PRC-002", "process", {"name": "*", "not_root": True})]
    write(tmp_path / "policies" / "procs.yaml", policy("procs", checks))
    config = write_config(tmp_path, root="/", interval=0.001)
    daemon = Daemon(config, listener)
    stop_churn = threading.Event()

    def churn() -> None:
        while not stop_churn.wait(0.005):  # leave CPU time to the daemon
            subprocess.run(["true"], check=False)

    churner = threading.Thread(target=churn, daemon=True)
    churner.start()
    try:
        wait_for(lambda: len(daemon.events("audit-done")) >= 3, timeout=30,
                 what="audits under churn")
        code, elapsed = daemon.stop()
    finally:
        stop_churn.set()
        churner.join(5)
        daemon.kill()
    assert code == 0
    assert elapsed < 5
    assert daemon.events("audit-error") == []
    assert listener.texts()[-1] == "STOPPING=1"
    assert not list(tmp_path.rglob(".*.tmp"))


def test_invalid_configuration_at_start_exits_2_with_located_errors(tmp_path: Path,
                                                                  listener: Listener) -> None:
    config = write_config(tmp_path)
    write(tmp_path / "policies" / "base.yaml", {**policy("base", [KPTR_PASS]), "extra": 1})
    daemon = Daemon(config, listener)
    try:
        code = daemon.proc.wait(10)
        daemon.reader.join(2)
    finally:
        daemon.kill()
    assert code == 2
    errors = [e["error"] for e in daemon.events("config-invalid")]
    assert len(errors) == 1
    assert re.fullmatch(re.escape(str(tmp_path / "policies" / "base.yaml"))
                        + r":\d+:\d+: error: unknown key 'extra'.* \[unknown-key\]", errors[0])
    assert listener.texts(watchdog=True) == []  # never READY


def test_once_writes_the_report_and_returns_the_audit_status(tmp_path: Path) -> None:
    config = write_config(tmp_path, output_dir="out")
    ok = run_cli("daemon", "--config", str(config), "--once", "--no-placement")
    assert ok.returncode == 0, ok.stderr
    [report] = (tmp_path / "out").iterdir()
    assert json.loads(report.read_text())["summary"]["pass"] == 1
    write(tmp_path / "policies" / "base.yaml", policy("base", [KPTR_FAIL]))
    failing = run_cli("daemon", "--config", str(config), "--once", "--no-placement")
    assert failing.returncode == 1


def test_once_when_no_check_applies_says_so_and_exits_5(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    write(tmp_path / "policies" / "base.yaml", policy("base", [KPTR_FAIL],
                                                      hosts={"labels": {"role": "gateway"}}))
    done = run_cli("daemon", "--config", str(config), "--once", "--no-placement")
    assert done.returncode == 5, done.stderr
    [event] = [parse(line) for line in done.stderr.splitlines()
               if line.startswith("event=audit-not-evaluated")]
    base = tmp_path / "policies" / "base.yaml"
    assert (event["level"], event["checks"]) == ("warning", "1")
    assert event["reason"] == (f"policy 'base' ({base}:8:3) does not select host 'trd-gw-01': it "
                               "needs label role=gateway, the host has no label 'role' (1 check)")
    # The STATUS= line the daemon serves says it too, after the counts it always carries.
    run = audit.run(resolve([base], dt.date.today()), TRADING_ROOT, {})
    assert summary(run).endswith(", 1 not applicable, score n/a; NOT EVALUATED: no check "
                                 "applies to this host")


def test_a_daemon_in_the_root_folder_names_policies_by_absolute_path(tmp_path: Path) -> None:
    # A service runs in /: paths relative to it read as relative to wherever the reader is
    # ("tmp/.../policies/base.yaml"), in reports, history and the journal alike.
    config = write_config(tmp_path, output_dir="out")
    ok = run_cli("daemon", "--config", str(config), "--once", "--no-placement", cwd=Path("/"))
    assert ok.returncode == 0, ok.stderr
    [report] = (tmp_path / "out").iterdir()
    result = json.loads(report.read_text())
    base = str(tmp_path / "policies" / "base.yaml")
    assert [f["path"] for f in result["policy"]["files"]] == [base]
    assert [r["location"]["path"] for r in result["results"]] == [base]
    write(tmp_path / "policies" / "base.yaml", {**policy("base", [KPTR_PASS]), "extra": 1})
    bad = run_cli("daemon", "--config", str(config), "--once", "--no-placement", cwd=Path("/"))
    assert bad.returncode == 2
    assert f" error={json.dumps(base + ':')[:-1]}" in bad.stderr, bad.stderr


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    need_root()
    need_tool("mount")
    out = tmp_path / "out"
    out.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(out)],
                             check=False, capture_output=True, text=True)
    need(mounted.returncode == 0, f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    yield out
    subprocess.run(["umount", "-l", str(out)], check=False)


def test_disk_full_is_logged_and_the_next_cycle_recovers(tmp_path: Path, tiny_disk: Path,
                                                         listener: Listener) -> None:
    filler = tiny_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:  # fill the tmpfs to the last byte
        while os.write(fd, b"\0" * 1024):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    config = write_config(tmp_path, output_dir="out")
    daemon = Daemon(config, listener)
    try:
        wait_for(lambda: len(daemon.events("report-error")) >= 2, what="two failed writes")
        failed_status = statuses(listener)[-1]
        filler.unlink()
        wait_for(lambda: len(daemon.events("report")) >= 1, what="a report after space freed")
        code, _ = daemon.stop()
    finally:
        daemon.kill()
    assert code == 0
    errors = daemon.events("report-error")
    assert {e["error"] for e in errors} == {"No space left on device"}
    assert failed_status.endswith(ONE_PASS + "; some outputs not written")
    names = sorted(p.name for p in tiny_disk.iterdir())
    assert not [n for n in names if n.startswith(".")], names  # no temporary file left behind
    for name in names:
        assert json.loads((tiny_disk / name).read_text())["summary"]["pass"] == 1
    assert os.path.ismount(tiny_disk)


def test_each_cycle_records_history_and_metrics(tmp_path: Path, listener: Listener) -> None:
    config = write_config(tmp_path, history="state/history.db", metrics="metrics/hostguard.prom")
    daemon = Daemon(config, listener)
    try:
        wait_for(lambda: len(daemon.events("metrics")) >= 2, what="two cycles with outputs")
        daemon.stop()
    finally:
        daemon.kill()
    recorded = [int(e["run"]) for e in daemon.events("history")]
    assert recorded == list(range(1, len(recorded) + 1))
    with History(tmp_path / "state" / "history.db", create=False) as history:
        assert [r.id for r in history.runs()] == recorded
        assert history.verify() == []
    families = {f.name for f in text_string_to_metric_families(
        (tmp_path / "metrics" / "hostguard.prom").read_text())}
    assert families >= {"hostguard_check_status", "hostguard_cycle_cpu_seconds",
                        "hostguard_cycle_rss_bytes", "hostguard_cycles_skipped"}
    assert daemon.events("history-error") == daemon.events("metrics-error") == []
    assert daemon.events("over-budget") == daemon.events("cycle-skipped") == []  # no budget


def _samples(path: Path) -> dict[str, float]:
    """Unlabelled samples of a textfile, by name."""
    return {s.name: s.value for f in text_string_to_metric_families(path.read_text())
            for s in f.samples if not s.labels}


def test_a_tampered_history_is_exported_as_a_broken_chain(tmp_path: Path,
                                                          listener: Listener) -> None:
    # Verified after the first run recorded and after a reload: an intruder's edit in between
    # turns hostguard_history_chain_broken from 0 to 1 at the first cycle after the reload.
    config = write_config(tmp_path, history="state/history.db", metrics="metrics/hostguard.prom",
                          interval=0.5)
    textfile = tmp_path / "metrics" / "hostguard.prom"
    daemon = Daemon(config, listener)
    try:
        wait_for(lambda: len(daemon.events("metrics")) >= 1, what="a cycle with metrics")
        intact = _samples(textfile)
        assert intact["hostguard_history_chain_broken"] == 0
        assert intact["hostguard_audit_interval_seconds"] == 0.5
        tamper(tmp_path / "state" / "history.db", "UPDATE runs SET hostname = 'x' WHERE id = 1")
        daemon.send(signal.SIGHUP)
        wait_for(lambda: textfile.exists() and _samples(textfile).get(
            "hostguard_history_chain_broken") == 1, what="the broken chain exported")
        cycles = len(daemon.events("history"))
        wait_for(lambda: len(daemon.events("metrics")) > cycles, what="one more cycle")
        daemon.stop()
    finally:
        daemon.kill()
    verified = daemon.events("history-verified")
    assert [e["problems"] for e in verified[:1]] == ["0"]
    assert verified[-1]["problems"] == "1" and verified[-1]["level"] == "error"
    with History(tmp_path / "state" / "history.db", create=False) as history:
        started = history.summary(1).started
    assert [e["problem"] for e in daemon.events("history-broken")] == [
        f"run 1 (started {started}): edited: column hostname disagrees with the stored JSON"]
    # Verified once per period, not every cycle: twice here (start, reload) whatever the cycles;
    # the cycle after the one that found the problem still exports it.
    assert len(verified) == 2 < len(daemon.events("history"))
    assert _samples(textfile)["hostguard_history_chain_broken"] == 1


def test_the_history_is_pruned_when_it_verifies_and_kept_when_it_does_not(
        tmp_path: Path, listener: Listener) -> None:
    # The prune runs with the (hourly) verification: at the start, then at each reload here.
    config = write_config(tmp_path, history="state/history.db", metrics="metrics/hostguard.prom",
                          interval=0.3, history_max_runs=2)
    database = tmp_path / "state" / "history.db"
    textfile = tmp_path / "metrics" / "hostguard.prom"
    daemon = Daemon(config, listener)
    try:
        wait_for(lambda: len(daemon.events("history")) >= 4, what="four runs recorded")
        daemon.send(signal.SIGHUP)
        wait_for(lambda: len(daemon.events("history-pruned")) >= 1, what="a prune")
        pruned = daemon.events("history-pruned")[0]
        with History(database, create=False) as history:
            kept = [r.id for r in history.runs()]
            assert history.verify() == []
        # The newest two when it pruned, and the runs recorded since.
        assert kept[0] == int(pruned["last"]) + 1 and len(kept) >= 2
        assert pruned["first"] == "1" and int(pruned["runs"]) == int(pruned["last"])
        tamper(database, f"UPDATE runs SET hostname = 'x' WHERE id = {kept[0]}")
        cycles = len(daemon.events("history"))
        daemon.send(signal.SIGHUP)
        wait_for(lambda: len(daemon.events("history")) > cycles + 2, what="cycles after reload")
        wait_for(lambda: _samples(textfile).get("hostguard_history_chain_broken") == 1,
                 what="the broken chain exported")
        daemon.stop()
    finally:
        daemon.kill()
    # A history that does not verify is not pruned: the evidence stays.
    assert len(daemon.events("history-pruned")) == 1
    with History(database, create=False) as history:
        assert next(r.id for r in history.runs()) == kept[0]
    assert daemon.events("history-verified")[-1]["problems"] == "1"


@pytest.mark.parametrize(("budget", "fields"), [
    ({"cpu_budget_seconds": 0.000001}, ("cpu_s", "cpu_budget_s")),
    ({"rss_budget_mib": 1}, ("rss_mib", "rss_budget_mib")),
])
def test_a_cycle_over_budget_is_logged_and_the_next_skipped(
        tmp_path: Path, listener: Listener, budget: dict[str, float],
        fields: tuple[str, ...]) -> None:
    # A budget no real cycle fits: every cycle goes over it, every other slot is skipped.
    config = write_config(tmp_path, interval=0.2, metrics="metrics/hostguard.prom", **budget)
    daemon = Daemon(config, listener)
    try:
        wait_for(lambda: len(daemon.events("over-budget")) >= 3, what="three cycles over")
        daemon.stop()
    finally:
        daemon.kill()
    watched = [parse(line) for _, line in daemon.lines if line.startswith(
        ("event=audit-start ", "event=over-budget ", "event=cycle-skipped "))]
    assert [(e["event"], e.get("cycle") or e["after_cycle"]) for e in watched[:8]] == [
        ("audit-start", "1"), ("over-budget", "1"), ("cycle-skipped", "1"),
        ("audit-start", "2"), ("over-budget", "2"), ("cycle-skipped", "2"),
        ("audit-start", "3"), ("over-budget", "3")]
    over = watched[1]
    assert over["level"] == "warning" and over["next_cycle"] == "skipped"
    assert set(over) == {"event", "level", "cycle", "next_cycle", *fields}
    used, allowed = (float(over[f]) for f in fields)
    assert used > allowed == next(iter(budget.values()))
    assert watched[2]["reason"] == "over-budget"
    families = {f.name: f for f in text_string_to_metric_families(
        (tmp_path / "metrics" / "hostguard.prom").read_text())}
    value = {name: families[name].samples[0].value for name in (
        "hostguard_cycles_over_budget", "hostguard_cycles_skipped", "hostguard_cycle_cpu_seconds",
        "hostguard_cycle_rss_bytes")}
    # Written after each over-budget cycle and each skip: the counters are the events'.
    assert value["hostguard_cycles_over_budget"] == len(daemon.events("over-budget"))
    assert value["hostguard_cycles_skipped"] == len(daemon.events("cycle-skipped"))
    assert value["hostguard_cycle_cpu_seconds"] > 0
    assert value["hostguard_cycle_rss_bytes"] > 1024 * 1024


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_metrics_listen_serves_the_last_audit_over_http(tmp_path: Path, listener: Listener) -> None:
    import urllib.request  # noqa: PLC0415

    port = _free_port()
    config = write_config(tmp_path, metrics_listen=f"127.0.0.1:{port}",
                          metrics="metrics/hostguard.prom")
    daemon = Daemon(config, listener)
    try:
        wait_for(lambda: len(daemon.events("metrics")) >= 1, what="a cycle with metrics")
        assert [e["address"] for e in daemon.events("metrics-listen")] == [f"127.0.0.1:{port}"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            served = {f.name: f for f in text_string_to_metric_families(reply.read().decode())}
        daemon.stop()
    finally:
        daemon.kill()
    textfile = {f.name: f for f in text_string_to_metric_families(
        (tmp_path / "metrics" / "hostguard.prom").read_text())}
    assert set(served) >= set(textfile) >= {"hostguard_check_status", "hostguard_score",
                                            "hostguard_audit_interval_seconds"}
    status = {s.labels["id"]: s.value for s in served["hostguard_check_status"].samples}
    assert status == {"KRN-001": 0.0}  # the fixture host passes the one check


def test_metrics_listen_on_a_busy_port_stops_the_start(tmp_path: Path) -> None:
    import socket  # noqa: PLC0415

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(tmp_path, metrics_listen=f"127.0.0.1:{port}")
        done = run_cli("daemon", "--config", str(config), "--no-placement", timeout=30)
    assert done.returncode == 2
    assert "metrics-listen-error" in done.stderr


def test_metrics_listen_must_be_host_and_port(tmp_path: Path) -> None:
    config = write_config(tmp_path, metrics_listen="localhost")
    done = run_cli("lint", str(config))
    assert done.returncode == 1
    assert "metrics address must be HOST:PORT, not 'localhost'" in done.stdout


def test_the_daemon_reads_the_fd_tables_itself(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A background audit spends as little CPU as it can: no fd-walk helper, even where
    `hostguard audit` would start one (here: forced for any number of processes)."""
    from agent.daemon import service as service_module  # noqa: PLC0415
    from agent.host import fdwalk  # noqa: PLC0415

    config = write_config(tmp_path, root="/")
    write(tmp_path / "policies" / "base.yaml", policy("base", [
        check("NET-1", "ports", {"forbid": [23]})]))
    monkeypatch.setattr(fdwalk, "helpers_for", lambda count: 1)
    started: list[int] = []
    real_walk = fdwalk.Walk.__init__

    def counting(self: fdwalk.Walk, proc: str, pids: Any, helpers: int) -> None:
        real_walk(self, proc, pids, helpers)
        started.extend(child.pid for child in self.helpers)

    monkeypatch.setattr(fdwalk.Walk, "__init__", counting)
    loaded = service_module.load_all(config, dt.date(2026, 11, 24))
    assert isinstance(loaded, service_module.Loaded)
    service = service_module.Service(config)
    service.loaded = loaded
    run = service._audit(loaded.config)
    assert [r.check.id for r in run.results] == ["NET-1"]
    assert started == []
    walk = fdwalk.walk("/proc", [os.getpid()])  # what a one-shot audit would do
    assert started and walk.helpers
    walk.cancel()
