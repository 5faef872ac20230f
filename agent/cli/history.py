"""``hostguard history ...``: read, check and prune the audit history (part of the CLI layer).

Every subcommand takes ``--db PATH`` or ``--config PATH`` (the daemon's configuration, whose
``history`` key names the database; default ``/etc/hostguard/hostguard.yaml``). Exit status: 0
done (``verify``: intact; ``diff``: no change; ``at``: a run was in force), 1 the negative
answer (``verify``: tampered or damaged; ``diff``: changes; ``at``: no run in force; ``prune``:
refused because the history does not verify), 2 unusable database, configuration or arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.cli.args import add_color, use_color
from agent.cli.output import say_invalid, say_wrote, write_output
from agent.cli.render import RUN_FORMATS, rendered
from agent.daemon.config import DEFAULT_PATH, load_config
from agent.daemon.history import (
    Change,
    CorruptHistory,
    History,
    HistoryError,
    NotVerified,
    RunSummary,
)
from agent.daemon.history import parse_time as _parse_time
from agent.result import Status

EXIT_USAGE = 2


def _clean(text: str) -> str:
    # Host data (hostnames) may carry terminal escapes: show them instead of obeying them.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _run_id(value: str) -> int | str:
    if value == "latest":
        return value
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a run id or 'latest', not {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"run ids start at 1, not {number}")
    return number


def _time(value: str) -> str:
    try:
        _parse_time(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
        least = 1 if kind is int else 0
        if number < least:
            bound = "at least 1" if least else "zero or more"
            raise argparse.ArgumentTypeError(f"must be {bound}, not {value}")
        return number
    return parse


def add_parsers(sub: Any) -> None:
    """Register ``hostguard history`` and its subcommands."""
    history = sub.add_parser(
        "history", help="the audit history: list, show, diff, at, verify, prune, applications",
        description="The daemon's SQLite history of every audit run, hash-chained. Exit 0 done, "
        "1 the negative answer (tampered, changes, no run in force, prune refused), 2 unusable "
        "database, configuration or arguments.")
    hsub = history.add_subparsers(dest="history_command", required=True, metavar="SUBCOMMAND")
    where = argparse.ArgumentParser(add_help=False)
    group = where.add_mutually_exclusive_group()
    group.add_argument("--db", type=Path, metavar="PATH", help="the history database")
    group.add_argument("--config", type=Path, metavar="PATH",
                       help=f"daemon configuration naming it (default {DEFAULT_PATH})")

    def add(name: str, help_: str, handler: Callable[[argparse.Namespace], int]) -> Any:
        parser = hsub.add_parser(name, parents=[where], help=help_, description=help_)
        parser.set_defaults(handler=handler)
        return parser

    add("verify", "check every run's hashes and the chain; exit 1 naming what was edited, "
        "deleted or reordered, 0 intact", _verify)
    listing = add("list", "one line per run", _list)
    listing.add_argument("--since", type=_time, metavar="TIME",
                         help="runs started at or after this ISO 8601 time")
    show = add("show", "re-render a stored run as any report format", _show)
    show.add_argument("run", type=_run_id, metavar="RUN", help="run id or 'latest'")
    show.add_argument("--format", choices=RUN_FORMATS, default="text")
    show.add_argument("-o", "--output", type=Path, metavar="FILE",
                      help="write here (atomically, mode 0640) instead of stdout")
    show.add_argument("--verbose", "-v", action="store_true",
                      help="text only: list passing checks too")
    add_color(show)
    diff = add("diff", "checks whose status or evidence changed between two runs; exit 1 when "
               "something changed", _diff)
    diff.add_argument("run_a", type=_run_id, metavar="RUN_A")
    diff.add_argument("run_b", type=_run_id, metavar="RUN_B")
    at = add("at", "the compliance state in force at a moment: the last run started at or "
             "before it", _at)
    at.add_argument("timestamp", type=_time, metavar="TIMESTAMP",
                    help="ISO 8601 (2026-11-24T19:30:00Z; no offset means UTC)")
    at.add_argument("--verbose", "-v", action="store_true", help="list passing checks too")
    applications = add("applications", "one line per seccomp application of the daemon's "
                       "enforce: bindings (or their stored JSON documents)", _applications)
    applications.add_argument("--since", type=_time, metavar="TIME",
                              help="applications made at or after this ISO 8601 time")
    applications.add_argument("--format", choices=["text", "json"], default="text")
    prune = add("prune", "delete the oldest runs, keeping the chain verifiable", _prune)
    prune.add_argument("--max-age-days", type=_positive(float), metavar="N",
                       help="delete runs started more than N days ago")
    prune.add_argument("--max-runs", type=_positive(int), metavar="N",
                       help="keep only the newest N runs")


def _open(args: argparse.Namespace) -> History | CorruptHistory | None:
    """The history named by ``--db`` or the configuration, or what was wrong after saying it
    (``None`` for anything but a damaged database)."""
    path = args.db
    if path is None:
        config_path = args.config or DEFAULT_PATH
        if not config_path.is_file():
            print(f"hostguard: {config_path}: no such configuration (name the database with "
                  f"--db PATH)", file=sys.stderr)
            return None
        config = load_config(config_path)
        if isinstance(config, list):
            say_invalid(config, f"{config_path}: invalid configuration")
            return None
        if config.history is None:
            print(f"hostguard: {config_path}: sets no history database (key `history`)",
                  file=sys.stderr)
            return None
        path = config.history
    try:
        return History(path, create=False)
    except HistoryError as exc:
        print(f"hostguard: {exc}", file=sys.stderr)
        return exc if isinstance(exc, CorruptHistory) else None


def _with_history(args: argparse.Namespace, body: Callable[[History], int]) -> int:
    history = _open(args)
    if not isinstance(history, History):  # a damaged database fails `verify` (1), not usage
        return 1 if args.history_command == "verify" and history is not None else EXIT_USAGE
    try:
        return body(history)
    except HistoryError as exc:
        print(f"hostguard: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        history.close()


def _resolve(history: History, run: int | str) -> int:
    if run == "latest":
        latest = history.latest()
        if latest is None:
            raise HistoryError(f"{history.path}: no runs recorded")
        return latest.id
    assert isinstance(run, int)
    return run


def _counts(summary: RunSummary) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in summary.counts.items() if n)
    return f"{summary.total} checks: {counts or 'nothing checked'}"


# -- verify ---------------------------------------------------------------------------------------
def _verify(args: argparse.Namespace) -> int:
    def body(history: History) -> int:
        try:
            problems = history.verify()
        except CorruptHistory as exc:
            print(f"hostguard: {exc}", file=sys.stderr)
            return 1
        if problems:
            for problem in problems:
                print(problem)
            print(f"{history.path}: {len(problems)} problem(s): the history was tampered with "
                  f"or damaged")
            return 1
        runs = history.runs()
        anchor_id, _, pruned = history.anchor()
        head_id, head_hash = history.head()
        kept = (f"{len(runs)} run(s) ({runs[0].id}..{runs[-1].id})" if runs else "no runs")
        after = f" after {pruned} pruned (up to run {anchor_id})" if pruned else ""
        print(f"{history.path}: intact: {kept}{after}, chain head run {head_id} {head_hash}")
        chain = history.application_head()
        if chain is not None:
            print(f"{history.path}: intact: {len(history.applications())} application(s), "
                  f"chain head application {chain[0]} {chain[1]}")
        return 0
    return _with_history(args, body)


# -- applications ---------------------------------------------------------------------------------
def _applications(args: argparse.Namespace) -> int:
    def body(history: History) -> int:
        found = history.applications()
        if args.since is not None:
            bound = _parse_time(args.since)
            found = [a for a in found if _parse_time(a["at"]) >= bound]
        if args.format == "json":
            print(json.dumps(found, indent=2, sort_keys=True, ensure_ascii=True))
            return 0
        print(f"{'ID':>6}  {'AT':<27}  {'BINDING':<12}  {'PID':>7}  {'OUTCOME':<9}  "
              f"{'MODE':<7}  PROOF / REASON")
        for entry in found:
            proof = (entry.get("reason") if entry["outcome"] == "failed"
                     else "equivalent" if entry.get("equivalent")
                     else f"{entry.get('differences')} difference(s)")
            print(f"{entry['id']:>6}  {entry['at']:<27}  {_clean(entry['binding']):<12}  "
                  f"{entry['pid']:>7}  {entry['outcome']:<9}  {entry['mode']:<7}  "
                  f"{_clean(str(proof))} ({_clean(str(entry.get('comm', '')))!r})")
        return 0
    return _with_history(args, body)


# -- list -----------------------------------------------------------------------------------------
_COLUMNS = (("PASS", Status.PASS), ("FAIL", Status.FAIL), ("ERROR", Status.ERROR),
            ("WAIVED", Status.WAIVED), ("N/A", Status.NOT_APPLICABLE))


def _list(args: argparse.Namespace) -> int:
    def body(history: History) -> int:
        runs = history.runs(args.since)
        hosts = [_clean(r.hostname) for r in runs]
        width = max([4, *(len(h) for h in hosts)])
        head = "  ".join(name for name, _ in _COLUMNS)
        print(f"{'ID':>6}  {'STARTED':<20}  {'HOST':<{width}}  CHECKS  {head}  POLICY")
        for run, host in zip(runs, hosts, strict=True):
            cells = "  ".join(f"{run.counts.get(s.value, 0):>{len(n)}}" for n, s in _COLUMNS)
            print(f"{run.id:>6}  {run.started:<20}  {host:<{width}}  {run.total:>6}  {cells}  "
                  f"{run.policy_digest[:12]}")
        return 0
    return _with_history(args, body)


# -- show -----------------------------------------------------------------------------------------
def _show(args: argparse.Namespace) -> int:
    if args.verbose and args.format != "text":
        print("hostguard: --verbose applies to --format text only", file=sys.stderr)
        return EXIT_USAGE

    def body(history: History) -> int:
        color = use_color(args.color, sys.stdout if args.output is None else None)
        data = rendered(history.load_run(_resolve(history, args.run)), args.format, args.verbose,
                        color=color)
        if isinstance(data, str):
            raise HistoryError(data)
        error = write_output(data, args.output, 0o640)
        if error is not None:
            raise HistoryError(error)
        if args.output is not None:
            say_wrote(args.output)
        return 0
    return _with_history(args, body)


# -- diff -----------------------------------------------------------------------------------------
def change_line(change: Change) -> str:
    """``KRN-001: pass -> fail``, ``LAT-001: fail, evidence changed``, ``NEW-1: absent -> pass``."""
    if change.old_status == change.new_status:
        return f"{change.check_id}: {change.old_status}, evidence changed"
    old = change.old_status or "absent"
    new = change.new_status or "absent"
    extra = ", evidence changed" if change.evidence_changed else ""
    return f"{change.check_id}: {old} -> {new}{extra}"


def _diff(args: argparse.Namespace) -> int:
    def body(history: History) -> int:
        a = history.summary(_resolve(history, args.run_a))
        b = history.summary(_resolve(history, args.run_b))
        changes = history.diff(a.id, b.id)
        what = f"{len(changes)} change(s)" if changes else "no changes"
        print(f"run {a.id} (started {a.started}) -> run {b.id} (started {b.started}): {what}")
        for change in changes:
            print(change_line(change))
        return 1 if changes else 0
    return _with_history(args, body)


# -- at -------------------------------------------------------------------------------------------
def _at(args: argparse.Namespace) -> int:
    moment = _parse_time(args.timestamp)
    shown = moment.isoformat(timespec="seconds").replace("+00:00", "Z")

    def body(history: History) -> int:
        run = history.at(moment)
        if run is None:
            anchor_id, _, _ = history.anchor()
            runs = history.runs()
            first = (f"the oldest run kept, run {runs[0].id}, started {runs[0].started}" if runs
                     else "no runs are recorded")
            pruned = f"runs up to {anchor_id} were pruned; " if anchor_id else ""
            print(f"no run in force at {shown}: {pruned}{first}")
            return 1
        nxt = history.following(run)
        until = (f"until run {nxt.id} started {nxt.started}" if nxt is not None
                 else "still in force (the newest run)")
        print(f"in force at {shown}: run {run.id}, started {run.started}, {until}")
        print(f"host {_clean(run.hostname)}, policy {run.policy_digest}")
        print(_counts(run))
        for check_id, status, severity, _kind, _digest in history.checks(run.id):
            if args.verbose or status not in (Status.PASS.value, Status.NOT_APPLICABLE.value):
                print(f"  {status:<14} {severity:<8} {check_id}")
        return 0
    return _with_history(args, body)


# -- prune ----------------------------------------------------------------------------------------
def _prune(args: argparse.Namespace) -> int:
    if args.max_age_days is None and args.max_runs is None:
        print("hostguard: history prune needs --max-age-days N and/or --max-runs N",
              file=sys.stderr)
        return EXIT_USAGE

    def body(history: History) -> int:
        try:
            gone = history.prune(args.max_age_days, args.max_runs)
        except NotVerified as exc:
            for problem in exc.problems:
                print(problem)
            print(f"hostguard: {history.path} does not verify: nothing pruned (pruning would "
                  f"destroy the evidence)", file=sys.stderr)
            return 1
        kept = len(history.runs())
        if not gone:
            print(f"nothing to prune; {kept} run(s) kept")
        else:
            span = f"run {gone[0]}" if len(gone) == 1 else f"runs {gone[0]}..{gone[-1]}"
            print(f"pruned {len(gone)} run(s) ({span}); {kept} kept, chain anchored at run "
                  f"{gone[-1]}")
        return 0
    return _with_history(args, body)
