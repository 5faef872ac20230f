"""The SQLite history: recording, copied columns checked by ``verify``, retention, ``at``,
``diff``, crash safety, foreign files, and ``hostguard history`` through real subprocesses
(the hash chain under tampering: ``test_chain.py``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agent import audit
from agent.audit_policies import load_for_audit
from agent.cli.render import RUN_FORMATS
from agent.daemon.chain import GENESIS
from agent.daemon.config import REPORT_FORMATS
from agent.daemon.history import (
    Change,
    CorruptHistory,
    History,
    HistoryError,
    NotVerified,
    canonical_json,
    parse_time,
)
from agent.report import json as json_report
from agent.report import text as text_report
from agent.report.score import evidence_digest
from agent.report.writer import FORMATS
from agent.result import AuditRun
from tests.authoring import TRADING_ROOT, write
from tests.daemon.histories import STARTED, problems, tamper
from tests.support import PROJECT, run_cli


# -- recording and reading -----------------------------------------------------------------------
def test_record_and_read_back(db: Path, runs: list[AuditRun]) -> None:
    assert problems(db) == []
    with History(db) as history:
        listed = history.runs()
        assert [(r.id, r.started, r.hostname) for r in listed] == [
            (i, STARTED[i], "trd-gw-01") for i in range(1, 6)]
        assert [dict(r.counts) for r in listed][2] == {
            "pass": 0, "fail": 2, "error": 1, "waived": 0, "not_applicable": 0}
        assert [r.total for r in listed] == [2, 2, 3, 2, 2]
        assert [r.policy_digest for r in listed] == [r.policy_digest for r in runs]
        assert [r.id for r in history.runs("2026-11-24T12:00:00Z")] == [3, 4, 5]
        assert [r.id for r in history.runs("2026-11-24T13:00:01+01:00")] == [4, 5]
        for i, run in enumerate(runs, 1):
            assert history.load(i) == json.loads(json_report.render(run))
        assert history.checks(3) == [
            ("KRN-001", "fail", "high", "sysctl", "sha256:" + evidence_digest(runs[2].results[0]
                                                                              .evidence)),
            ("LAT-001", "fail", "high", "sysctl", "sha256:" + evidence_digest(runs[2].results[1]
                                                                              .evidence)),
            ("KRN-009", "error", "high", "sysctl", "sha256:" + evidence_digest(runs[2].results[2]
                                                                               .evidence)),
        ]
        with pytest.raises(HistoryError, match=r"history\.db: no run 6$"):
            history.load(6)


def test_stored_form_and_hash_chain_as_documented(db: Path, runs: list[AuditRun]) -> None:
    con = sqlite3.connect(db)
    rows = con.execute("SELECT id, canonical_json, json_sha256, prev_hash, run_hash FROM runs "
                       "ORDER BY id").fetchall()
    meta = dict(con.execute("SELECT key, value FROM chain_meta").fetchall())
    assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert con.execute("PRAGMA user_version").fetchone() == (1,)
    assert con.execute("PRAGMA application_id").fetchone() == (0x48674831,)
    con.close()
    prev = "0" * 64
    for number, ((run_id, blob, content, prev_hash, run_hash), run) in enumerate(
            zip(rows, runs, strict=True), 1):
        assert run_id == number
        # The result document's own key order, not sorted (history show must give it back).
        expected = json.dumps(json.loads(json_report.render(run)),
                              separators=(",", ":")).encode()
        assert bytes(blob) == expected == canonical_json(json_report.as_dict(run))
        assert content == hashlib.sha256(expected).hexdigest()
        assert prev_hash == prev
        assert run_hash == hashlib.sha256(bytes.fromhex(prev) + hashlib.sha256(expected)
                                          .digest()).hexdigest()
        prev = run_hash
    assert meta == {"anchor_hash": GENESIS, "anchor_id": "0", "head_hash": prev, "head_id": "5",
                    "pruned_runs": "0"}
    assert stat.S_IMODE(db.stat().st_mode) == 0o640


def test_load_run_rebuilds_every_format(db: Path, runs: list[AuditRun]) -> None:
    with History(db) as history:
        again = history.load_run(3)
    assert json_report.render(again) == json_report.render(runs[2])
    for name, (_, render) in FORMATS.items():
        if name != "html":  # html embeds nothing run-specific that load could lose; see CLI test
            assert render(again) == render(runs[2]), name


def test_at_is_the_last_run_started_at_or_before(db: Path, tmp_path: Path,
                                                 runs: list[AuditRun]) -> None:
    with History(db) as history:
        def at(moment: str) -> int | None:
            found = history.at(moment)
            return None if found is None else found.id

        assert at("2026-11-24T09:59:59Z") is None
        assert at("2026-11-24T10:00:00Z") == 1
        assert at("2026-11-24T11:59:59Z") == 2
        assert at("2026-11-24T12:00:00Z") == 3
        assert at("2026-11-24T13:30:00+01:00") == 3  # 12:30 UTC
        assert at("2026-11-24T12:30:00") == 3  # no offset: UTC
        assert at("2030-01-01") == 5
        # The clock stepped back: run 6 started before run 5; state in force goes by start time.
        stepped = dataclasses.replace(runs[0], started="2026-11-24T13:30:00Z")
        assert history.record(stepped) == 6
        assert at("2026-11-24T13:45:00Z") == 6
        assert at("2026-11-24T14:10:00Z") == 5
        following = history.following(history.summary(6))
        assert following is not None and following.id == 5
        assert history.verify() == []
    with pytest.raises(ValueError, match=r"not an ISO 8601 time: 'yesterday'"):
        parse_time("yesterday")


def test_diff(db: Path) -> None:
    with History(db) as history:
        assert history.diff(2, 3) == [Change("KRN-001", "pass", "fail", True),
                                      Change("KRN-009", None, "error", False)]
        assert history.diff(3, 4) == [Change("KRN-001", "fail", "pass", True),
                                      Change("KRN-009", "error", None, False),
                                      Change("LAT-001", "fail", "pass", True)]
        assert history.diff(1, 4) == [Change("KRN-001", "pass", "pass", True)]
        assert history.diff(4, 5) == []
        with pytest.raises(HistoryError, match="no run 9"):
            history.diff(1, 9)


# -- copied columns ------------------------------------------------------------------------------
def test_edited_start_time_is_named(db: Path) -> None:
    # Moving a run in time would change what `at` answers.
    tamper(db, "UPDATE runs SET started = '2026-11-24T10:30:00Z', "
               "started_us = started_us - 5400000000 WHERE id = 3")
    assert problems(db) == ["run 3 (started 2026-11-24T10:30:00Z): edited: column started, "
                            "started_us disagrees with the stored JSON"]



# -- retention -----------------------------------------------------------------------------------
def test_prune_by_count_keeps_the_chain_verifiable(db: Path, runs: list[AuditRun]) -> None:
    with History(db) as history:
        assert history.prune(max_runs=3) == [1, 2]
        assert history.verify() == []
        assert [r.id for r in history.runs()] == [3, 4, 5]
        assert history.anchor()[0] == 2 and history.anchor()[2] == 2
        assert history.at("2026-11-24T11:30:00Z") is None
        with pytest.raises(HistoryError, match=r"run 1 was pruned \(runs up to 2\)"):
            history.load(1)
        assert history.record(runs[1]) == 6  # ids are never reused
        assert history.prune(max_runs=10) == []
        assert history.verify() == []
    tamper(db, "DELETE FROM runs WHERE id = 3", "DELETE FROM checks WHERE run_id = 3")
    assert problems(db) == ["run 3: deleted: run 3 missing after the pruned runs (up to 2), "
                            "before run 4 (started 2026-11-24T13:00:00Z)"]


def test_prune_by_age_takes_a_prefix_only(db: Path, runs: list[AuditRun]) -> None:
    now = dt.datetime(2026, 11, 25, 12, 30, tzinfo=dt.UTC)
    with History(db) as history:
        # Run 6 started long ago (a clock step) but after run 5: only the prefix goes.
        assert history.record(dataclasses.replace(runs[0], started="2026-01-01T00:00:00Z")) == 6
        assert history.prune(max_age_days=1, now=now) == [1, 2, 3]  # before 11-24T12:30
        assert [r.id for r in history.runs()] == [4, 5, 6]
        assert history.verify() == []
        assert history.prune(max_age_days=0, now=now) == [4, 5, 6]
        assert history.runs() == []
        assert history.verify() == []
        assert history.record(runs[2]) == 7
        assert history.verify() == []
        with pytest.raises(ValueError, match="max_runs must be at least 1, not 0"):
            history.prune(max_runs=0)


def test_prune_refuses_a_tampered_history(db: Path) -> None:
    tamper(db, "DELETE FROM runs WHERE id = 4", "DELETE FROM checks WHERE run_id = 4")
    with History(db) as history:
        with pytest.raises(NotVerified) as caught:
            history.prune(max_runs=1)
        assert [str(p) for p in caught.value.problems] == [
            "run 4: deleted: run 4 missing after run 3, before run 5 (started "
            "2026-11-24T14:00:00Z)"]
        assert [r.id for r in history.runs()] == [1, 2, 3, 5]


# -- foreign, damaged and missing files ----------------------------------------------------------
def test_foreign_files_are_refused_clearly(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("not a database at all, just some text that is long enough" * 20)
    with pytest.raises(HistoryError, match=r"notes\.db: not a hostguard history \(not an SQLite "
                       r"database file\)$"):
        History(text)
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t (x)")
    con.close()
    with pytest.raises(HistoryError, match=r"other\.db: an SQLite database, but not a hostguard "
                       r"history \(application_id 0x0\)$"):
        History(other)
    newer = tmp_path / "newer.db"
    History(newer).close()
    con = sqlite3.connect(newer)
    con.execute("PRAGMA user_version = 7")
    con.close()
    with pytest.raises(HistoryError, match=r"written by a newer hostguard \(history schema 7; "
                       r"this one reads 2\)$"):
        History(newer)
    with pytest.raises(HistoryError, match=r"absent\.db: no history database there$"):
        History(tmp_path / "absent.db", create=False)
    assert not (tmp_path / "absent.db").exists()
    with pytest.raises(HistoryError, match="is a folder"):
        History(tmp_path)
    # A writer killed between creating the file and initialising it leaves 0 bytes: readers
    # say so, the next writer initialises it.
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(HistoryError, match=r"empty\.db: an empty database, not a history yet$"):
        History(empty, create=False)
    with History(empty) as history:
        assert history.verify() == [] and history.runs() == []


def test_damaged_pages_are_reported_not_raised(db: Path) -> None:
    with History(db) as history:  # the last close checkpoints the WAL into the file
        history.verify()
    size = db.stat().st_size
    with db.open("r+b") as handle:  # scribble over every page after the header page
        handle.seek(4096)
        handle.write(b"\xa5" * (size - 4096))
    with pytest.raises(CorruptHistory, match=r"history\.db: the database is corrupt \(database "
                       r"disk image is malformed\)$"):
        problems(db)
    # `verify` answers "not intact"; other commands cannot use it.
    message = f"hostguard: {db}: the database is corrupt (database disk image is malformed)\n"
    assert history_cli("verify", "--db", str(db)) == (1, "", message)
    assert history_cli("list", "--db", str(db)) == (2, "", message)


# -- crash safety --------------------------------------------------------------------------------
CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from agent.daemon.history import History
    from agent.report.load import load_run
    import json
    run = load_run(json.loads(Path(sys.argv[2]).read_text()))
    history = History(Path(sys.argv[1]))
    if sys.argv[3] == "hang":
        def hang():
            print("in-transaction", flush=True)
            time.sleep(60)
        history._before_commit = hang
        history.record(run)
    else:
        while True:
            print(history.record(run), flush=True)
""")


def _child(db: Path, result: Path, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(result), mode],
                            stdout=subprocess.PIPE, text=True, env=env)


def test_kill_before_commit_leaves_no_partial_run(db: Path, tmp_path: Path,
                                                  runs: list[AuditRun]) -> None:
    result = tmp_path / "run.json"
    result.write_text(json_report.render(runs[2]))
    child = _child(db, result, "hang")
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "in-transaction\n"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM checks WHERE run_id = 6").fetchone() == (0,)
    con.close()
    with History(db) as history:
        assert history.verify() == []
        assert [r.id for r in history.runs()] == [1, 2, 3, 4, 5]
        assert history.record(runs[0]) == 6
        assert history.verify() == []


def test_kill_at_any_moment_keeps_every_completed_run(tmp_path: Path,
                                                      runs: list[AuditRun]) -> None:
    result = tmp_path / "run.json"
    result.write_text(json_report.render(runs[2]))
    db = tmp_path / "history.db"
    History(db).close()
    completed: list[int] = []
    for delay in (0.05, 0.2, 0.35, 0.5, 0.65):
        child = _child(db, result, "loop")
        try:
            assert child.stdout is not None
            first = child.stdout.readline()  # started recording: kill some time after
            assert first.strip().isdigit(), first
            time.sleep(delay)
            child.send_signal(signal.SIGKILL)
            child.wait(10)
            completed.extend([int(first), *(int(line) for line in child.stdout.read().split())])
        finally:
            child.kill()
            child.wait(10)
        with History(db) as history:
            assert history.verify() == []
            ids = [r.id for r in history.runs()]
        assert set(completed) <= set(ids)
        # At most the one run committed but not yet printed when the kill came.
        assert len(ids) - len(completed) in (0, 1)
        completed = ids
        assert ids == list(range(1, len(ids) + 1))


# -- command line --------------------------------------------------------------------------------
def history_cli(*args: str) -> tuple[int, str, str]:
    done = run_cli("history", *args)
    return done.returncode, done.stdout, done.stderr


def test_cli_verify_and_list(db: Path) -> None:
    con = sqlite3.connect(db)
    head = con.execute("SELECT run_hash FROM runs WHERE id = 5").fetchone()[0]
    con.close()
    assert history_cli("verify", "--db", str(db)) == (
        0, f"{db}: intact: 5 run(s) (1..5), chain head run 5 {head}\n", "")
    code, out, err = history_cli("list", "--db", str(db), "--since", "2026-11-24T12:00:00Z")
    assert (code, err) == (0, "")
    with History(db) as history:
        digests = [r.policy_digest[:12] for r in history.runs()]
    assert out.splitlines() == [
        "    ID  STARTED               HOST       CHECKS  PASS  FAIL  ERROR  WAIVED  N/A  POLICY",
        f"     3  2026-11-24T12:00:00Z  trd-gw-01       3     0     2      1       0    0  "
        f"{digests[2]}",
        f"     4  2026-11-24T13:00:00Z  trd-gw-01       2     2     0      0       0    0  "
        f"{digests[3]}",
        f"     5  2026-11-24T14:00:00Z  trd-gw-01       2     2     0      0       0    0  "
        f"{digests[4]}",
    ]
    tamper(db, "DELETE FROM runs WHERE id = 3", "DELETE FROM checks WHERE run_id = 3")
    assert history_cli("verify", "--db", str(db)) == (
        1, "run 3: deleted: run 3 missing after run 2, before run 4 (started "
           f"2026-11-24T13:00:00Z)\n{db}: 1 problem(s): the history was tampered with or "
           "damaged\n", "")
    code, out, err = history_cli("prune", "--db", str(db), "--max-runs", "1")
    assert (code, err) == (1, f"hostguard: {db} does not verify: nothing pruned (pruning would "
                              "destroy the evidence)\n")


def test_cli_show_re_renders_past_reports(db: Path, runs: list[AuditRun]) -> None:
    code, out, err = history_cli("show", "3", "--format", "json", "--db", str(db))
    assert (code, out, err) == (0, json_report.render(runs[2]), "")
    code, out, err = history_cli("show", "latest", "--db", str(db))
    assert (code, err) == (0, "")
    assert out.startswith("hostguard audit of trd-gw-01 (kernel 6.1.0-18-amd64) at "
                          "2026-11-24T14:00:00Z: 2 checks, 2 pass")
    for name in ("junit", "sarif", "html"):
        code, out, err = history_cli("show", "3", "--format", name, "--db", str(db))
        assert (code, err) == (0, ""), name
        if name != "html":
            assert out == FORMATS[name][1](runs[2]), name
        else:
            assert out.lstrip().lower().startswith("<!doctype html>")
    target = db.parent / "out" / "r3.sarif"
    assert history_cli("show", "3", "--format", "sarif", "-o", str(target), "--db",
                       str(db)) == (0, f"wrote {target}\n", "")
    assert target.read_text() == FORMATS["sarif"][1](runs[2])
    assert history_cli("show", "9", "--db", str(db)) == (2, "", f"hostguard: {db}: no run 9\n")


def _shown(db: Path, fmt: str, target: Path) -> bytes:
    done = run_cli("history", "show", "latest", "--format", fmt, "-o", str(target), "--db",
                   str(db))
    assert (done.returncode, done.stdout, done.stderr) == (0, f"wrote {target}\n", ""), fmt
    return target.read_bytes()


def test_history_show_is_what_the_daemons_audit_wrote_in_every_format(tmp_path: Path) -> None:
    # The shipped policies on the fixture host: specs whose keys are not in alphabetical order,
    # evidence rows whose columns are not either (process, kernel_cmdline).
    out, db = tmp_path / "out", tmp_path / "history.db"
    config = write(tmp_path / "hostguard.yaml", {
        "apiVersion": "hostguard/v1", "kind": "AgentConfig",
        "policies": [str(PROJECT / "policies")], "labels": {"role": "gateway"},
        "root": str(TRADING_ROOT), "output_dir": str(out), "reports": list(REPORT_FORMATS),
        "history": str(db)})
    done = run_cli("daemon", "--config", str(config), "--once", "--no-placement")
    assert done.returncode in (0, 1, 3), done.stderr
    assert set(REPORT_FORMATS) == set(FORMATS)  # every report format is written and compared
    data = json.loads(next(out.glob("*.json")).read_text())
    assert any(list(r["spec"]) != sorted(r["spec"]) for r in data["results"])
    assert any(list(i) != sorted(i) for r in data["results"] for i in r["evidence"]["items"])
    for name, (extension, _) in FORMATS.items():
        [written] = [p for p in out.iterdir() if p.name.endswith(f"Z.{extension}")]
        assert _shown(db, name, tmp_path / f"shown.{extension}") == written.read_bytes(), name


def test_history_show_is_what_hostguard_audit_rendered_in_every_format(tmp_path: Path) -> None:
    # The path the daemon takes, in process: one run, rendered by the functions
    # `hostguard audit` calls (stdout text and JSON, --report files), then stored.
    policy_set = load_for_audit([str(PROJECT / "policies")], dt.date(2026, 6, 1)).policy_set
    run = audit.run(policy_set, TRADING_ROOT, {"role": "gateway"}, dt.date(2026, 6, 1))
    db = tmp_path / "history.db"
    with History(db) as history:
        history.record(run)
    audit_rendered = {"text": text_report.render(run), "json": json_report.render(run),
                      **{name: render(run) for name, (_, render) in FORMATS.items()}}
    assert set(audit_rendered) == set(RUN_FORMATS)
    for name, body in audit_rendered.items():
        expected = body if isinstance(body, bytes) else body.encode("utf-8", "backslashreplace")
        assert _shown(db, name, tmp_path / f"shown.{name}") == expected, name


def test_cli_diff_and_at(db: Path) -> None:
    assert history_cli("diff", "3", "4", "--db", str(db)) == (1, (
        "run 3 (started 2026-11-24T12:00:00Z) -> run 4 (started 2026-11-24T13:00:00Z): "
        "3 change(s)\n"
        "KRN-001: fail -> pass, evidence changed\n"
        "KRN-009: error -> absent\n"
        "LAT-001: fail -> pass, evidence changed\n"), "")
    assert history_cli("diff", "1", "4", "--db", str(db))[1].splitlines()[1:] == [
        "KRN-001: pass, evidence changed"]
    assert history_cli("diff", "4", "latest", "--db", str(db)) == (0, (
        "run 4 (started 2026-11-24T13:00:00Z) -> run 5 (started 2026-11-24T14:00:00Z): "
        "no changes\n"), "")
    with History(db) as history:
        digest = history.summary(3).policy_digest
    assert history_cli("at", "2026-11-24T13:30:00+01:00", "--db", str(db)) == (0, (
        "in force at 2026-11-24T12:30:00Z: run 3, started 2026-11-24T12:00:00Z, until run 4 "
        "started 2026-11-24T13:00:00Z\n"
        f"host trd-gw-01, policy {digest}\n"
        "3 checks: 2 fail, 1 error\n"
        "  fail           high     KRN-001\n"
        "  fail           high     LAT-001\n"
        "  error          high     KRN-009\n"), "")
    assert history_cli("at", "2026-11-24T09:00:00Z", "--db", str(db)) == (1, (
        "no run in force at 2026-11-24T09:00:00Z: the oldest run kept, run 1, started "
        "2026-11-24T10:00:00Z\n"), "")
    code, _, err = history_cli("at", "noon", "--db", str(db))
    assert code == 2 and "not an ISO 8601 time: 'noon'" in err


def test_cli_prune(db: Path) -> None:
    assert history_cli("prune", "--max-runs", "2", "--db", str(db)) == (
        0, "pruned 3 run(s) (runs 1..3); 2 kept, chain anchored at run 3\n", "")
    assert history_cli("prune", "--max-runs", "2", "--db", str(db)) == (
        0, "nothing to prune; 2 run(s) kept\n", "")
    code, out, _ = history_cli("verify", "--db", str(db))
    assert code == 0 and "intact: 2 run(s) (4..5) after 3 pruned (up to run 3)" in out
    assert history_cli("prune", "--db", str(db)) == (
        2, "", "hostguard: history prune needs --max-age-days N and/or --max-runs N\n")
    code, _, err = history_cli("prune", "--max-runs", "0", "--db", str(db))
    assert code == 2 and "must be at least 1, not 0" in err


def test_cli_config_and_unusable_databases(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "hostguard.yaml"
    config.write_text(json.dumps({"apiVersion": "hostguard/v1", "kind": "AgentConfig",
                                  "policies": ["policies"], "history": "state/history.db"}))
    code, out, _ = history_cli("verify", "--config", str(config))
    assert code == 0 and out.startswith(f"{tmp_path}/state/history.db: intact: 5 run(s)")
    bare = tmp_path / "bare.yaml"
    bare.write_text(json.dumps({"apiVersion": "hostguard/v1", "kind": "AgentConfig",
                                "policies": ["policies"]}))
    assert history_cli("list", "--config", str(bare)) == (
        2, "", f"hostguard: {bare}: sets no history database (key `history`)\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps({"apiVersion": "hostguard/v1", "kind": "AgentConfig",
                               "policies": ["policies"], "histroy": "x.db"}))
    code, _, err = history_cli("list", "--config", str(bad))
    assert code == 2 and err.endswith(f"hostguard: {bad}: invalid configuration\n")
    assert f"{bad}:1:" in err
    code, _, err = history_cli("list", "--config", str(bad), "--db", str(db))
    assert code == 2 and "not allowed with argument" in err
    absent = tmp_path / "absent.db"
    assert history_cli("verify", "--db", str(absent)) == (
        2, "", f"hostguard: {absent}: no history database there\n")
    assert not absent.exists()
    text = tmp_path / "text.db"
    text.write_text("hello" * 1000)
    assert history_cli("verify", "--db", str(text)) == (
        2, "", f"hostguard: {text}: not a hostguard history (not an SQLite database file)\n")


def test_cli_escapes_hostile_hostnames(tmp_path: Path, runs: list[AuditRun]) -> None:
    hostile = "evil\x1b[2J\nrun 9 forged\u202e\udcff"
    run = dataclasses.replace(runs[2], host=dataclasses.replace(runs[2].host, hostname=hostile))
    db = tmp_path / "h.db"
    with History(db) as history:
        assert history.record(run) == 1
        # Stored as it is but for undecodable bytes; escaped when shown.
        assert history.summary(1).hostname == hostile[:-1] + "\\udcff"
        assert history.load(1)["host"]["hostname"] == hostile
        assert history.verify() == []
    code, out, _ = history_cli("list", "--db", str(db))
    assert code == 0
    assert out.splitlines()[1].split()[2] == "evil\\x1b[2J\\nrun"
    assert len(out.splitlines()) == 2
    code, out, _ = history_cli("at", "2030-01-01", "--db", str(db))
    assert code == 0
    assert out.splitlines()[1].startswith("host evil\\x1b[2J\\nrun 9 forged\\u202e\\udcff, "
                                          "policy ")


def application(n: int, at: str, outcome: str = "applied") -> dict[str, object]:
    """A stored application's document as the daemon writes it (tests.daemon.test_enforce
    checks the daemon's own)."""
    return {"format": "hostguard/application/v1", "at": at, "binding": "gw", "pid": 4000 + n,
            "start_time": 90000 + n, "comm": "fixgw", "outcome": outcome, "mode": "log",
            "digest": "ab" * 32,
            "equivalent": True, "differences": 0, "stop_ns": 1200 * n, "reason": None}


def test_applications_chain_beside_the_runs(db: Path, tmp_path: Path) -> None:
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone() == (1,)  # no application yet
    con.close()
    with History(db) as history:
        assert history.applications() == []
        assert history.version == 1
        ids = [history.record_application(application(n, f"2026-12-0{n}T10:00:00Z"))
               for n in (1, 2, 3)]
        assert ids == [1, 2, 3]
        assert history.version == 2
        stored = history.applications()
        assert history.verify() == []
    assert [a.pop("id") for a in stored] == [1, 2, 3]
    assert stored == [application(n, f"2026-12-0{n}T10:00:00Z") for n in (1, 2, 3)]
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone() == (2,)
    rows = con.execute("SELECT canonical_json, json_sha256, prev_hash, entry_hash FROM "
                       "applications ORDER BY id").fetchall()
    prev = GENESIS
    for blob, content, prev_hash, entry_hash in rows:  # the runs' links, a chain of their own
        assert content == hashlib.sha256(blob).hexdigest()
        assert prev_hash == prev
        assert entry_hash == hashlib.sha256(bytes.fromhex(prev) + bytes.fromhex(content)) \
            .hexdigest()
        prev = entry_hash
    meta = dict(con.execute("SELECT key, value FROM chain_meta WHERE key LIKE 'applications_%'"))
    assert meta == {"applications_anchor_hash": GENESIS, "applications_anchor_id": "0",
                    "applications_head_hash": prev, "applications_head_id": "3",
                    "applications_pruned_runs": "0"}
    # Tampering names the application, not a run.
    edited = json.dumps({**application(2, "2026-12-02T10:00:00Z"), "outcome": "unchanged"},
                        sort_keys=True, separators=(",", ":")).encode()
    con.execute("UPDATE applications SET canonical_json = ? WHERE id = 2", (edited,))
    con.execute("DELETE FROM applications WHERE id = 3")
    con.commit()
    con.close()
    with History(db) as history:
        found = [str(p) for p in history.verify()]
    assert found == [
        "application 2 (started 2026-12-02T10:00:00Z): edited: its stored JSON does not match "
        "its recorded SHA-256",
        "application 2 (started 2026-12-02T10:00:00Z): edited: column outcome disagrees with "
        "the stored JSON",
        "application 3: deleted: application 3 missing at the end (the chain head records "
        "application 3)",
    ]
    with pytest.raises(HistoryError, match="cannot record the application: format"):
        History(db).record_application({"format": "other"})


def test_prune_by_age_takes_old_applications_too(db: Path) -> None:
    with History(db) as history:
        for n in (1, 2, 3):
            history.record_application(application(n, f"2026-12-0{n}T10:00:00Z"))
        history.prune(max_age_days=1, now=dt.datetime(2026, 12, 3, 12, tzinfo=dt.UTC))
        assert [a["id"] for a in history.applications()] == [3]
        assert history.verify() == []
        assert history.record_application(application(4, "2026-12-04T10:00:00Z")) == 4
        assert history.verify() == []
    result = run_cli("history", "verify", "--db", str(db))
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_applications_and_verify(db: Path) -> None:
    with History(db) as history:
        history.record_application(application(1, "2026-12-01T10:00:00.000001Z"))
        history.record_application({**application(2, "2026-12-02T10:00:00Z", "failed"),
                                    "reason": "thread 4003 \x1b[31m has 0 filter(s)",
                                    "equivalent": None, "comm": "fix\x1bgw"})
        head = history.application_head()
    assert head is not None and head[0] == 2
    listing = run_cli("history", "applications", "--db", str(db))
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["ID", "AT", "BINDING", "PID", "OUTCOME", "MODE", "PROOF", "/",
                                "REASON"]
    assert lines[1].split() == ["1", "2026-12-01T10:00:00.000001Z", "gw", "4001", "applied",
                                "log", "equivalent", "('fixgw')"]
    assert "\x1b" not in listing.stdout and "\\x1b[31m" in lines[2] and "fix\\\\x1bgw" in lines[2]
    since = run_cli("history", "applications", "--db", str(db), "--since", "2026-12-02",
                    "--format", "json")
    assert [a["id"] for a in json.loads(since.stdout)] == [2]
    verified = run_cli("history", "verify", "--db", str(db))
    assert verified.returncode == 0
    assert verified.stdout.splitlines()[1] == (
        f"{db}: intact: 2 application(s), chain head application 2 {head[1]}")
