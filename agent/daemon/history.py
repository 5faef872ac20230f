"""Audit history in SQLite: every run's full result, hash-chained so that edits show.

One row per run in ``runs`` holds the run's ``hostguard/result/v1`` JSON in canonical form
(``canonical_json``) plus a few columns copied out of it for queries; ``checks`` indexes each
run's verdicts for fast diffs; ``chain_meta`` holds the chain's anchor and head.

Canonical JSON
    ``json.dumps(as_dict(run), separators=(",", ":"), ensure_ascii=True, allow_nan=False)``
    encoded as UTF-8. ``ensure_ascii`` makes it pure ASCII: non-ASCII text and lone surrogates
    (undecodable host data) travel as ``\\uXXXX`` escapes. Keys keep the result document's own
    order (fixed by ``as_dict``; a spec and evidence rows as the audit had them), not sorted:
    ``history show`` must render exactly what the audit rendered, and HTML orders evidence
    columns as the rows list them. Runs stored sorted by an older hostguard still verify (the
    digests are over the bytes stored).

Hash chain and verification: ``agent.daemon.chain`` (the digests, the links, the anchor and
head in ``chain_meta`` and how ``verify`` names an edited, deleted or reordered run). Retention
(``prune``) deletes a prefix of the chain only and stores the last deleted run's hash as the new
anchor. ``verify`` also compares each run's copied columns and check index with its stored JSON.

Seccomp applications (the daemon's ``enforce:`` bindings) go into ``applications``, one row per
application with its JSON document in canonical form, in a hash chain of their own (links as the
runs', metadata keys ``applications_*``). The table comes with the first application recorded,
which makes the file schema version 2; a history without one stays version 1.

Durability: WAL with ``synchronous=FULL``. In WAL mode ``NORMAL`` is safe against a killed
process but may lose the last committed runs on power loss or a kernel crash; ``FULL`` syncs the
WAL at every commit, one extra fsync per audit (every few minutes), so a run once recorded stays
recorded. Each ``record`` is one ``BEGIN IMMEDIATE ... COMMIT`` transaction: a process killed at
any moment leaves either the whole run or nothing of it.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as dt
import itertools
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.core.digest import sha256_hex
from agent.core.record import record
from agent.daemon import chain
from agent.daemon.chain import GENESIS, Link, Problem, chain_hash
from agent.report.json import as_dict
from agent.result import AuditRun, Status

SCHEMA_VERSION = 2
"""The newest ``PRAGMA user_version`` this code reads and writes: 2 has ``applications``, 1
(what a history is until the first application is recorded) has not."""
APPLICATIONS = "applications_"
"""Prefix of the applications chain's keys in ``chain_meta``."""
APPLICATION_FORMAT = "hostguard/application/v1"
"""``format`` of an application's stored document."""
APPLICATION_ID = 0x48674831
"""``PRAGMA application_id`` marking a hostguard history (``HgH1``)."""
FILE_MODE = 0o640
"""The database holds host data (process names, command lines): not world-readable."""

_DDL = (
    """CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started TEXT NOT NULL,
        started_us INTEGER NOT NULL,
        hostname TEXT NOT NULL,
        policy_digest TEXT NOT NULL,
        counts TEXT NOT NULL,
        canonical_json BLOB NOT NULL,
        json_sha256 TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        run_hash TEXT NOT NULL
    )""",
    "CREATE INDEX runs_started ON runs (started_us, id)",
    """CREATE TABLE checks (
        run_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        check_id TEXT NOT NULL,
        status TEXT NOT NULL,
        severity TEXT NOT NULL,
        kind TEXT NOT NULL,
        evidence_digest TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID""",
    "CREATE INDEX checks_by_id ON checks (check_id, run_id)",
    "CREATE TABLE chain_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
)
_DDL_2 = (
    """CREATE TABLE applications (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        at_us INTEGER NOT NULL,
        binding TEXT NOT NULL,
        pid INTEGER NOT NULL,
        start_time INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        canonical_json BLOB NOT NULL,
        json_sha256 TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        entry_hash TEXT NOT NULL
    )""",
    "CREATE INDEX applications_process ON applications (pid, start_time, id)",
)
"""What schema version 2 adds."""


class HistoryError(Exception):
    """The history cannot be used (missing, not a history, corrupt, newer schema, unknown run)."""


class CorruptHistory(HistoryError):
    """SQLite finds the database file damaged (``database disk image is malformed``)."""


class NotVerified(HistoryError):
    """``prune`` refused: the history does not verify (pruning would destroy the evidence)."""

    def __init__(self, path: Path, problems: Sequence[Problem]) -> None:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{path}: does not verify, nothing pruned: {problems[0]}{more}")
        self.problems = tuple(problems)
        """What ``verify`` found."""


@record
class RunSummary:
    """One stored run, without its results."""

    id: int
    """Run id: 1, 2, ... in recording order; never reused, not renumbered by pruning."""
    started: str
    """UTC start time as in the result JSON."""
    hostname: str
    """Audited host (host data: escape before display)."""
    policy_digest: str
    """Digest of the policy in force."""
    counts: Mapping[str, int]
    """Results per status (every status present)."""
    run_hash: str
    """The run's link in the hash chain."""

    @property
    def total(self) -> int:
        """Number of checks."""
        return sum(self.counts.values())


@record
class Change:
    """One check that differs between two runs."""

    check_id: str
    """Check id."""
    old_status: str | None
    """Status in the first run; ``None`` when the check was not there."""
    new_status: str | None
    """Status in the second run; ``None`` when the check is gone."""
    evidence_changed: bool
    """Both runs have the check and its evidence digests differ."""


@record
class _Row:
    id: int
    started: str
    started_us: int
    hostname: str
    policy_digest: str
    counts: str
    blob: bytes
    json_sha256: str
    prev_hash: str
    run_hash: str

    @property
    def link(self) -> Link:
        return Link(self.id, self.started, sha256_hex(self.blob), self.json_sha256,
                    self.prev_hash, self.run_hash)


# -- pure helpers -------------------------------------------------------------------------------
def canonical_json(data: Mapping[str, Any]) -> bytes:
    """The canonical bytes that are stored and hashed (keys in ``data``'s own order)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("utf-8")


def evidence_digest(evidence: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of a result entry's evidence in canonical JSON (the daemon's drift log
    prints the same digest)."""
    data = {"expected": evidence["expected"], "actual": evidence["actual"],
            "items": list(evidence["items"])}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return "sha256:" + sha256_hex(text.encode())


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 time (``2026-11-24T19:30:00Z``, ``...+01:00``, or a date) as aware UTC;
    a time without offset is taken as UTC. Raises ``ValueError`` naming the text."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text!r} (e.g. 2026-11-24T19:30:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _micros(moment: dt.datetime) -> int:
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _counts(data: Mapping[str, Any]) -> str:
    summary = data["summary"]
    return json.dumps({s.value: summary.get(s.value, 0) for s in Status}, sort_keys=True,
                      separators=(",", ":"))


def _check_rows(data: Mapping[str, Any]) -> list[tuple[int, str, str, str, str, str]]:
    return [(i, r["id"], r["status"], r["severity"], r["kind"], evidence_digest(r["evidence"]))
            for i, r in enumerate(data["results"])]


def _columns(data: Mapping[str, Any]) -> dict[str, Any]:
    """The columns copied out of a result document."""
    return {"started": data["started"], "started_us": _micros(parse_time(data["started"])),
            # Undecodable host bytes (lone surrogates) cannot go into a TEXT column as they are.
            "hostname": data["host"]["hostname"].encode("utf-8", "backslashreplace")
            .decode("utf-8"), "policy_digest": data["policy"]["digest"],
            "counts": _counts(data)}


def _application_columns(document: Mapping[str, Any]) -> dict[str, Any]:
    """The columns copied out of an application's document (in the table's order)."""
    if document.get("format") != APPLICATION_FORMAT:
        raise ValueError(f"format {document.get('format')!r} is not {APPLICATION_FORMAT!r}")
    return {"at": str(document["at"]), "at_us": _micros(parse_time(document["at"])),
            "binding": str(document["binding"]), "pid": int(document["pid"]),
            "start_time": int(document["start_time"]), "outcome": str(document["outcome"])}


class History:
    """The history database at ``path``; ``create`` makes a new one when the file is absent
    (or empty)."""

    def __init__(self, path: Path | str, create: bool = True) -> None:
        self.path = Path(path)
        self.version = 0
        """The file's schema version (2 once an application is recorded)."""
        self._before_commit: Callable[[], None] | None = None
        """Test hook: runs inside ``record``'s transaction just before COMMIT."""
        if not self.path.exists():
            if not create:
                raise HistoryError(f"{self.path}: no history database there")
            self._create_file()
        elif self.path.is_dir():
            raise HistoryError(f"{self.path}: is a folder, not a history database")
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot open: {exc}") from None
        try:
            self._open(create)
        except BaseException:
            self._db.close()
            raise

    # -- opening ----------------------------------------------------------------------------
    def _create_file(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        except FileExistsError:
            return  # another process made it first: opened as usual
        except OSError as exc:
            raise HistoryError(f"{self.path}: cannot create: {exc.strerror or exc}") from None
        try:
            os.fchmod(fd, FILE_MODE)  # exact, whatever the umask
        finally:
            os.close(fd)

    def _open(self, create: bool) -> None:
        try:
            app_id, version, tables = self._identity()
            if app_id == 0 and tables == 0:
                if not create:
                    raise HistoryError(f"{self.path}: an empty database, not a history yet")
                self._initialise()
                app_id, version, tables = self._identity()
            if app_id != APPLICATION_ID:
                raise HistoryError(f"{self.path}: an SQLite database, but not a hostguard "
                                   f"history (application_id {app_id:#x})")
            if version > SCHEMA_VERSION:
                raise HistoryError(f"{self.path}: written by a newer hostguard (history schema "
                                   f"{version}; this one reads {SCHEMA_VERSION})")
            if version < 1:
                raise HistoryError(f"{self.path}: unknown history schema version {version}")
            self.version = version
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise HistoryError(f"{self.path}: cannot use write-ahead logging (journal mode "
                                   f"{mode})")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=OFF")
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _error(self, exc: sqlite3.Error) -> HistoryError:
        text = str(exc)
        if "not a database" in text:
            return HistoryError(f"{self.path}: not a hostguard history (not an SQLite database "
                                f"file)")
        if "malformed" in text or "corrupt" in text:
            return CorruptHistory(f"{self.path}: the database is corrupt ({text})")
        return HistoryError(f"{self.path}: {text}")

    def _identity(self) -> tuple[int, int, int]:
        app_id = int(self._db.execute("PRAGMA application_id").fetchone()[0])
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        tables = int(self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
        return app_id, version, tables

    def _initialise(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        with self._transaction():
            # Another process may have initialised it while we waited for the lock.
            if int(self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]):
                return
            for statement in _DDL:
                self._db.execute(statement)
            self._db.executemany("INSERT INTO chain_meta (key, value) VALUES (?, ?)",
                                 [("anchor_hash", GENESIS), ("anchor_id", "0"),
                                  ("head_hash", GENESIS), ("head_id", "0"),
                                  ("pruned_runs", "0")])
            self._db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            self._db.execute("PRAGMA user_version=1")  # 2 with the first application

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite when the last one closes)."""
        self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _meta(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._db.execute("SELECT key, value FROM chain_meta")}

    # -- writing ----------------------------------------------------------------------------
    def record(self, run: AuditRun) -> int:
        """Store ``run`` in one transaction; return its id."""
        data = as_dict(run)
        try:
            blob = canonical_json(data)
            columns = _columns(data)
        except ValueError as exc:
            raise HistoryError(f"cannot record the run: {exc}") from None
        content = sha256_hex(blob)
        with self._errors(), self._transaction():
            meta = self._meta()
            last = self._db.execute("SELECT max(id) FROM runs").fetchone()[0]
            run_id = max(int(meta["head_id"]), int(last or 0)) + 1
            prev = meta["head_hash"]
            run_hash = chain_hash(prev, content)
            self._db.execute(
                "INSERT INTO runs (id, started, started_us, hostname, policy_digest, counts, "
                "canonical_json, json_sha256, prev_hash, run_hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, columns["started"], columns["started_us"], columns["hostname"],
                 columns["policy_digest"], columns["counts"], blob, content, prev, run_hash))
            self._db.executemany(
                "INSERT INTO checks (run_id, seq, check_id, status, severity, kind, "
                "evidence_digest) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(run_id, *row) for row in _check_rows(data)])
            self._db.executemany("UPDATE chain_meta SET value = ? WHERE key = ?",
                                 [(run_hash, "head_hash"), (str(run_id), "head_id")])
            if self._before_commit is not None:
                self._before_commit()
        return run_id

    def record_application(self, document: Mapping[str, Any]) -> int:
        """Store one seccomp application (its ``hostguard/application/v1`` document, with
        ``at``, ``binding``, ``pid``, ``start_time`` and ``outcome``) in one transaction, chained
        after the previous one; return its id. The first makes the file schema version 2."""
        try:
            blob = canonical_json(document)
            columns = _application_columns(document)
        except (ValueError, KeyError, TypeError) as exc:
            raise HistoryError(f"cannot record the application: {exc}") from None
        content = sha256_hex(blob)
        with self._errors(), self._transaction():
            if int(self._db.execute("PRAGMA user_version").fetchone()[0]) < 2:
                for statement in _DDL_2:
                    self._db.execute(statement)
                self._db.executemany(
                    "INSERT INTO chain_meta (key, value) VALUES (?, ?)",
                    [(APPLICATIONS + k, v) for k, v in (
                        ("anchor_hash", GENESIS), ("anchor_id", "0"), ("head_hash", GENESIS),
                        ("head_id", "0"), ("pruned_runs", "0"))])
                self._db.execute("PRAGMA user_version=2")
            meta = self._meta()
            last = self._db.execute("SELECT max(id) FROM applications").fetchone()[0]
            entry_id = max(int(meta[APPLICATIONS + "head_id"]), int(last or 0)) + 1
            prev = meta[APPLICATIONS + "head_hash"]
            entry_hash = chain_hash(prev, content)
            self._db.execute(
                "INSERT INTO applications (id, at, at_us, binding, pid, start_time, outcome, "
                "canonical_json, json_sha256, prev_hash, entry_hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (entry_id, *columns.values(), blob, content, prev, entry_hash))
            self._db.executemany("UPDATE chain_meta SET value = ? WHERE key = ?",
                                 [(entry_hash, APPLICATIONS + "head_hash"),
                                  (str(entry_id), APPLICATIONS + "head_id")])
            if self._before_commit is not None:
                self._before_commit()
        self.version = 2
        return entry_id

    def applications(self) -> builtins.list[dict[str, Any]]:
        """Every stored application's document with its ``id``, oldest first."""
        with self._errors():
            if not self._has_applications():
                return []
            rows = self._db.execute("SELECT id, canonical_json FROM applications "
                                    "ORDER BY id").fetchall()
        out = []
        for entry_id, blob in rows:
            try:
                document = json.loads(bytes(blob))
            except (ValueError, UnicodeDecodeError) as exc:
                raise HistoryError(f"{self.path}: application {entry_id}: stored JSON is "
                                   f"unreadable ({exc}); run `hostguard history verify`") from None
            out.append({"id": int(entry_id), **document})
        return out

    def _has_applications(self) -> bool:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0]) >= 2

    def prune(self, max_age_days: float | None = None, max_runs: int | None = None,
              now: dt.datetime | None = None) -> list[int]:
        """Delete the oldest runs: those started more than ``max_age_days`` ago and all but the
        newest ``max_runs``; return the ids deleted. Applications recorded more than
        ``max_age_days`` ago go too (``max_runs`` counts runs only).

        Only a prefix of the chain goes (a run older than the cutoff that follows a younger one
        stays), and the last deleted run's hash becomes the anchor. A history that does not
        verify is not pruned: that would destroy the evidence.
        """
        if max_runs is not None and max_runs < 1:
            raise ValueError(f"max_runs must be at least 1, not {max_runs}")
        if max_age_days is not None and max_age_days < 0:
            raise ValueError(f"max_age_days must not be negative, not {max_age_days}")
        moment = now or dt.datetime.now(dt.UTC)
        with self._errors(), self._transaction():
            problems = self.verify()
            if problems:
                raise NotVerified(self.path, problems)
            rows = self._db.execute("SELECT id, started_us, run_hash FROM runs "
                                    "ORDER BY id").fetchall()
            cut = 0
            if max_runs is not None:
                cut = max(cut, len(rows) - max_runs)
            if max_age_days is not None:
                cutoff = _micros(moment - dt.timedelta(days=max_age_days))
                old = 0
                while old < len(rows) and rows[old][1] < cutoff:
                    old += 1
                cut = max(cut, old)
            if max_age_days is not None and self._has_applications():
                self._prune_applications(_micros(moment - dt.timedelta(days=max_age_days)))
            if cut == 0:
                return []
            last_id, _, last_hash = rows[cut - 1]
            self._db.execute("DELETE FROM checks WHERE run_id <= ?", (last_id,))
            self._db.execute("DELETE FROM runs WHERE id <= ?", (last_id,))
            pruned = int(self._meta()["pruned_runs"]) + cut
            self._db.executemany("UPDATE chain_meta SET value = ? WHERE key = ?",
                                 [(last_hash, "anchor_hash"), (str(last_id), "anchor_id"),
                                  (str(pruned), "pruned_runs")])
            return [int(r[0]) for r in rows[:cut]]

    def _prune_applications(self, cutoff: int) -> None:
        """Delete the applications recorded before ``cutoff`` (a prefix of their chain)."""
        rows = self._db.execute("SELECT id, at_us, entry_hash FROM applications "
                                "ORDER BY id").fetchall()
        cut = 0
        while cut < len(rows) and rows[cut][1] < cutoff:
            cut += 1
        if cut == 0:
            return
        last_id, _, last_hash = rows[cut - 1]
        self._db.execute("DELETE FROM applications WHERE id <= ?", (last_id,))
        pruned = int(self._meta()[APPLICATIONS + "pruned_runs"]) + cut
        self._db.executemany("UPDATE chain_meta SET value = ? WHERE key = ?",
                             [(last_hash, APPLICATIONS + "anchor_hash"),
                              (str(last_id), APPLICATIONS + "anchor_id"),
                              (str(pruned), APPLICATIONS + "pruned_runs")])

    # -- reading ----------------------------------------------------------------------------
    def _summary(self, row: Sequence[Any]) -> RunSummary:
        counts = json.loads(row[5])
        return RunSummary(int(row[0]), str(row[1]), str(row[3]), str(row[4]),
                          {s.value: int(counts.get(s.value, 0)) for s in Status}, str(row[9]))

    _SELECT = ("SELECT id, started, started_us, hostname, policy_digest, counts, NULL, "
               "json_sha256, prev_hash, run_hash FROM runs")

    def runs(self, since: str | None = None) -> builtins.list[RunSummary]:
        """Every run (started at or after ``since``, an ISO 8601 time), oldest id first."""
        with self._errors():
            if since is None:
                rows = self._db.execute(f"{self._SELECT} ORDER BY id").fetchall()
            else:
                bound = _micros(parse_time(since))
                rows = self._db.execute(f"{self._SELECT} WHERE started_us >= ? ORDER BY id",
                                        (bound,)).fetchall()
            return [self._summary(r) for r in rows]

    def summary(self, run_id: int) -> RunSummary:
        """One run's summary; ``HistoryError`` when there is no such run."""
        with self._errors():
            row = self._db.execute(f"{self._SELECT} WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise HistoryError(self._missing(run_id))
        return self._summary(row)

    def latest(self) -> RunSummary | None:
        """The run recorded last, if any."""
        with self._errors():
            row = self._db.execute(f"{self._SELECT} ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else self._summary(row)

    def _missing(self, run_id: int) -> str:
        meta = self._meta()
        if 0 < run_id <= int(meta["anchor_id"]):
            return f"{self.path}: run {run_id} was pruned (runs up to {meta['anchor_id']})"
        return f"{self.path}: no run {run_id}"

    def load(self, run_id: int) -> dict[str, Any]:
        """The stored ``hostguard/result/v1`` document of a run."""
        with self._errors():
            row = self._db.execute("SELECT canonical_json FROM runs WHERE id = ?",
                                   (run_id,)).fetchone()
        if row is None:
            raise HistoryError(self._missing(run_id))
        try:
            data: dict[str, Any] = json.loads(bytes(row[0]))
        except (ValueError, UnicodeDecodeError) as exc:
            raise HistoryError(f"{self.path}: run {run_id}: stored JSON is unreadable ({exc}); "
                               f"run `hostguard history verify`") from None
        return data

    def load_run(self, run_id: int) -> AuditRun:
        """A stored run rebuilt for the renderers (through ``agent.report.load``)."""
        data = self.load(run_id)
        try:
            from agent.report.load import load_run  # noqa: PLC0415 - only renderers need it
        except ImportError as exc:
            raise HistoryError(f"cannot rebuild run {run_id}: agent.report.load is not in "
                               f"this build ({exc})") from None
        try:
            return load_run(data)
        except ValueError as exc:
            raise HistoryError(f"{self.path}: run {run_id}: {exc}") from None

    def at(self, timestamp: str | dt.datetime) -> RunSummary | None:
        """The compliance state in force at ``timestamp``: the last run started at or before it
        (by start time; the higher id on a tie). ``None`` before the first stored run."""
        moment = parse_time(timestamp) if isinstance(timestamp, str) else timestamp
        with self._errors():
            row = self._db.execute(f"{self._SELECT} WHERE started_us <= ? "
                                   "ORDER BY started_us DESC, id DESC LIMIT 1",
                                   (_micros(moment.astimezone(dt.UTC)),)).fetchone()
        return None if row is None else self._summary(row)

    def following(self, run: RunSummary) -> RunSummary | None:
        """The run that replaced ``run`` as the state in force (the next by start time)."""
        with self._errors():
            after = "(started_us, id) > ((SELECT started_us FROM runs WHERE id = ?), ?)"
            row = self._db.execute(f"{self._SELECT} WHERE {after} ORDER BY started_us, id "
                                   "LIMIT 1", (run.id, run.id)).fetchone()
        return None if row is None else self._summary(row)

    def checks(self, run_id: int) -> builtins.list[tuple[str, str, str, str, str]]:
        """A run's (check id, status, severity, kind, evidence digest) in policy order."""
        with self._errors():
            if self._db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise HistoryError(self._missing(run_id))
            return [(str(a), str(b), str(c), str(d), str(e)) for a, b, c, d, e in
                    self._db.execute("SELECT check_id, status, severity, kind, evidence_digest "
                                     "FROM checks WHERE run_id = ? ORDER BY seq", (run_id,))]

    def diff(self, a: int, b: int) -> builtins.list[Change]:
        """Checks that differ from run ``a`` to run ``b``, by check id; a check that appears,
        disappears, changes status or (same status) changes evidence."""
        old = {c[0]: c for c in self.checks(a)}
        new = {c[0]: c for c in self.checks(b)}
        changes = []
        for cid in sorted(old.keys() | new.keys()):
            before, after = old.get(cid), new.get(cid)
            evidence = before is not None and after is not None and before[4] != after[4]
            old_status = None if before is None else before[1]
            new_status = None if after is None else after[1]
            if old_status != new_status or evidence:
                changes.append(Change(cid, old_status, new_status, evidence))
        return changes

    def anchor(self) -> tuple[int, str, int]:
        """(last pruned run id or 0, anchor hash, runs pruned so far)."""
        with self._errors():
            meta = self._meta()
        return int(meta["anchor_id"]), meta["anchor_hash"], int(meta["pruned_runs"])

    def head(self) -> tuple[int, str]:
        """(newest run id or 0, its hash): record it elsewhere to pin the history."""
        with self._errors():
            meta = self._meta()
        return int(meta["head_id"]), meta["head_hash"]

    def application_head(self) -> tuple[int, str] | None:
        """(newest application id, its hash), or None before the first application."""
        with self._errors():
            if not self._has_applications():
                return None
            meta = self._meta()
        return int(meta[APPLICATIONS + "head_id"]), meta[APPLICATIONS + "head_hash"]

    # -- verifying --------------------------------------------------------------------------
    def verify(self) -> builtins.list[Problem]:
        """Every sign of tampering or damage, in run order; empty when the history is intact."""
        with self._errors():
            return self._verify()

    def _verify(self) -> builtins.list[Problem]:
        found: builtins.list[Problem] = []
        integrity = [str(r[0]) for r in self._db.execute("PRAGMA integrity_check")]
        if integrity != ["ok"]:
            found.append(Problem(None, None, "SQLite integrity check failed: "
                                 + "; ".join(integrity[:5])))
        ends = chain.ends(self._meta())
        if isinstance(ends, Problem):
            return [*found, ends]
        rows = [_Row(*r) for r in self._db.execute(
            "SELECT id, started, started_us, hostname, policy_digest, counts, canonical_json, "
            "json_sha256, prev_hash, run_hash FROM runs ORDER BY id")]
        indexed: dict[int, builtins.list[tuple[Any, ...]]] = {}
        for run_id, *rest in self._db.execute(
                "SELECT run_id, seq, check_id, status, severity, kind, evidence_digest "
                "FROM checks ORDER BY run_id, seq"):
            indexed.setdefault(int(run_id), []).append(tuple(rest))
        ids = {r.id for r in rows}
        links = [row.link for row in rows]
        for row, link in zip(rows, links, strict=True):
            found.extend(chain.digest_problems(link))
            found.extend(self._content_problems(row, indexed.get(row.id, [])))
        found.extend(chain.chain_problems(links, ends))
        found.extend(chain.head_problems(links, ends))
        reported = {p.run_id for p in found}
        for run_id in sorted(indexed.keys() - ids):
            if run_id not in reported:
                found.append(Problem(run_id, None, "deleted: the run is gone but its checks are "
                                     "still indexed"))
        found = sorted(found, key=lambda p: (p.run_id or 0))
        if self._has_applications():
            found.extend(self._verify_applications())
        return found

    def _verify_applications(self) -> builtins.list[Problem]:
        ends = chain.ends(self._meta(), APPLICATIONS)
        if isinstance(ends, Problem):
            return [ends]
        found: builtins.list[Problem] = []
        links = []
        for entry_id, at, at_us, binding, pid, start, outcome, blob, digest, prev, entry_hash in \
                self._db.execute("SELECT id, at, at_us, binding, pid, start_time, outcome, "
                                 "canonical_json, json_sha256, prev_hash, entry_hash FROM "
                                 "applications ORDER BY id"):
            link = Link(int(entry_id), str(at), sha256_hex(bytes(blob)), str(digest), str(prev),
                        str(entry_hash))
            links.append(link)
            found.extend(chain.digest_problems(link, "application"))
            try:
                columns = _application_columns(json.loads(bytes(blob)))
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
                found.append(Problem(link.id, link.started, "edited: its stored JSON is not a "
                                     f"readable application ({type(exc).__name__})",
                                     "application"))
                continue
            stored = {"at": at, "at_us": at_us, "binding": binding, "pid": pid,
                      "start_time": start, "outcome": outcome}
            changed = [k for k in columns if columns[k] != stored[k]]
            if changed:
                found.append(Problem(link.id, link.started, "edited: column " + ", ".join(changed)
                                     + " disagrees with the stored JSON", "application"))
        found.extend(chain.chain_problems(links, ends, "application"))
        found.extend(chain.head_problems(links, ends, "application"))
        return sorted(found, key=lambda p: (p.run_id or 0))

    @staticmethod
    def _content_problems(row: _Row,
                          indexed: Sequence[tuple[Any, ...]]) -> builtins.list[Problem]:
        """A run whose copied columns or check index disagree with its stored JSON."""
        out = []

        def problem(message: str) -> None:
            out.append(Problem(row.id, row.started, message))

        try:
            data = json.loads(row.blob)
            columns = _columns(data)
            check_rows = _check_rows(data)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            problem(f"edited: its stored JSON is not a readable result ({type(exc).__name__})")
            return out
        actual = {"started": row.started, "started_us": row.started_us,
                  "hostname": row.hostname, "policy_digest": row.policy_digest,
                  "counts": row.counts}
        changed = [k for k in columns if columns[k] != actual[k]]
        if changed:
            problem("edited: column " + ", ".join(changed) + " disagrees with the stored JSON")
        for have, want in itertools.zip_longest(indexed, check_rows):
            if have is None or want is None or tuple(have) != want:
                which = (want or have or ("", "?"))[1]
                problem(f"edited: the checks index disagrees with the stored JSON (check "
                        f"{which})")
                break
        return out
