"""``hostguard seccomp learn``: propose the profile additions the kernel's seccomp records call
for (records in :mod:`agent.host.seccomp_log`, the edit in :mod:`agent.seccomp.learn`)."""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import re
import sys
import time
from pathlib import Path
from typing import Any

from agent.cli.output import profile_or_say, say_wrote, write_output
from agent.host import seccomp_log

_NAME = "hostguard seccomp learn"
_RELATIVE = re.compile(r"(\d{1,9})([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def add_learn(commands: Any) -> None:
    """Register ``hostguard seccomp learn``."""
    cmd = commands.add_parser(
        "learn", help="propose profile additions from the kernel's seccomp records",
        usage="hostguard seccomp learn PROFILE --since TIME [--pid PID | --comm NAME | "
        "--exe PATH] [--source kmsg|FILE] [-o FILE]",
        description="Read the kernel's seccomp records (type 1326: calls a mode: log filter "
        "logged, or denied) from /var/log/audit/audit.log when it exists, else the kernel "
        "ring buffer (/dev/kmsg), or --source FILE; keep those since TIME of the process "
        "selected; print the additions to PROFILE as a unified diff (native ABI names, added "
        "to the first allow rule, comments kept). Exit 0 nothing to add, 1 additions "
        "proposed, 2 invalid input.")
    cmd.add_argument("profile", type=Path, metavar="PROFILE")
    cmd.add_argument("--since", required=True, metavar="TIME",
                     help="ISO time (UTC unless it says) or an age: 30s, 10m, 2h, 1d")
    who = cmd.add_mutually_exclusive_group()
    who.add_argument("--pid", type=int, metavar="PID")
    who.add_argument("--comm", metavar="NAME", help="process name (as in /proc/PID/comm)")
    who.add_argument("--exe", metavar="PATH", help="the executable's full path")
    cmd.add_argument("--source", metavar="kmsg|FILE",
                     help="kmsg (the ring buffer) or a saved audit.log / dmesg file")
    cmd.add_argument("-o", "--output", type=Path, metavar="FILE",
                     help="write the proposed profile here (atomically)")
    cmd.set_defaults(handler=_learn)


def since(text: str, now: float) -> float | None:
    """``--since`` as epoch seconds, or None when it is neither form."""
    relative = _RELATIVE.fullmatch(text)
    if relative:
        return now - int(relative.group(1)) * _UNIT[relative.group(2)]
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _read(source: str | None) -> seccomp_log.SeccompLog:
    if source == "kmsg":
        return seccomp_log.read_kmsg()
    path = Path(source) if source is not None else seccomp_log.default_source()
    if path == Path("/") / seccomp_log.KMSG:
        return seccomp_log.read_kmsg()
    if not path.is_file():  # a FIFO or a device other than kmsg could block or never end
        raise OSError(f"{path}: not a regular file (or kmsg)")
    return seccomp_log.read_file(path)


def _learn(args: argparse.Namespace) -> int:
    def refuse(message: str) -> int:
        print(f"{_NAME}: {message}", file=sys.stderr)
        return 2
    start = since(args.since, time.time())
    if start is None:
        return refuse(f"--since must be an ISO time or an age like 10m, not {args.since!r}")
    profile = profile_or_say(args.profile)  # first: it refuses what is no regular file (a FIFO)
    if profile is None:
        return 2
    try:
        text = args.profile.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return refuse(f"cannot read {args.profile}: {exc}")
    try:
        log = _read(args.source)
    except OSError as exc:
        return refuse(f"cannot read the records: {exc}")
    if log.malformed:
        print(f"{_NAME}: note: {log.malformed} malformed seccomp record(s) skipped",
              file=sys.stderr)
    if log.lost:
        print(f"{_NAME}: note: {log.lost} ring buffer gap(s): records overwritten while reading",
              file=sys.stderr)
    from agent.seccomp import learn  # noqa: PLC0415 - libseccomp only when a command runs: --help works without it

    calls = [(e.arch, e.syscall) for e in log.events
             if e.time >= start and learn.wanted(e.code)
             and (args.pid is None or e.pid == args.pid)
             and (args.comm is None or e.comm == args.comm)
             and (args.exe is None or e.exe == args.exe)]
    result = learn.learn(profile, text, calls)
    for note in result.notes:
        print(f"{_NAME}: note: {note}", file=sys.stderr)
    if not result.add:
        print(f"{_NAME}: nothing to add ({len(calls)} matching record(s))", file=sys.stderr)
        return 0
    if not result.kept_comments:
        print(f"{_NAME}: note: no allow rule to extend in {args.profile}: the proposal is the "
              "profile rewritten with a new rule (comments not kept)", file=sys.stderr)
    name = str(args.profile)
    sys.stdout.writelines(difflib.unified_diff(
        text.splitlines(keepends=True), result.text.splitlines(keepends=True),
        fromfile=name, tofile=f"{name} (proposed)"))
    if args.output is not None:
        error = write_output(result.text.encode(), args.output, 0o644)
        if error is not None:
            return refuse(error)
        say_wrote(args.output, to=sys.stderr)  # stdout carries the diff
    return 1
