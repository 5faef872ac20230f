"""``hostguard seccomp merge A B ... -o C``: one profile for the replicas of one service.

Part of the CLI layer: registered by :mod:`agent.cli.seccomp`; the rule is
:mod:`agent.seccomp.merge`'s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from pathlib import Path
from typing import Any

from agent.cli.output import profile_or_say, say_wrote, write_output
from agent.seccomp.model import Action, ActionKind, profile_name

EXIT_INVALID = 2
_ERRNO = re.compile(r"errno[:(=]?(\d{1,4})\)?")


def add_merge(commands: Any) -> None:
    cmd = commands.add_parser(
        "merge", help="merge the profiles of replicas of one service into their union",
        description="Write one profile that permits every call any input permits, and nothing "
        "else, proven by comparing its compiled filter with each input's. Inputs must agree "
        "on architectures, mode and no_new_privs and deny with the same default; calls the "
        "inputs deny differently (or permit differently: allow and log) are refused with a "
        "call that shows each, unless --default is given, which every call no input permits "
        "then gets (what it changes is reported). Exit 0 written, 2 refused or invalid input.")
    cmd.add_argument("profiles", nargs="+", type=Path, metavar="PROFILE")
    cmd.add_argument("-o", "--output", type=Path, metavar="FILE",
                     help="write the merged profile here (atomically) instead of stdout")
    cmd.add_argument("--name", help="metadata.name (default: from the output file, or merged)")
    cmd.add_argument("--default", metavar="ACTION",
                     help="what every call no input permits gets: errno:N, trap, kill_thread, "
                     "kill_process (the inputs' own denials are dropped)")
    cmd.set_defaults(handler=_merge)


def parse_action(text: str) -> Action | None:
    """``errno:1`` / ``errno(1)`` / ``kill_process`` ... as an action; None when not one."""
    found = _ERRNO.fullmatch(text.strip())
    if found:
        number = int(found.group(1))
        return Action(ActionKind.ERRNO, number) if number <= 4095 else None
    try:
        return Action(ActionKind(text.strip()))
    except ValueError:
        return None


def _fail(message: str) -> int:
    print(f"hostguard: {message}", file=sys.stderr)
    return EXIT_INVALID


def _merge(args: argparse.Namespace) -> int:
    from agent.seccomp.merge import MergeError, merge  # noqa: PLC0415 - this command only
    from agent.seccomp.profile import to_yaml  # noqa: PLC0415 - this command only

    default = None
    if args.default is not None:
        default = parse_action(args.default)
        if default is None:
            return _fail(f"--default: not an action: {args.default!r} (errno:N, trap, "
                         "kill_thread, kill_process)")
    inputs = []
    for path in args.profiles:
        loaded = profile_or_say(path)
        if loaded is None:
            return EXIT_INVALID
        inputs.append((str(path), loaded))
    stem = args.output.stem if args.output is not None else "merged"
    try:
        merged = merge(inputs, profile_name(args.name or stem), default)
    except MergeError as exc:
        for reason in exc.reasons:
            print(f"hostguard: cannot merge: {reason}", file=sys.stderr)
        return EXIT_INVALID
    for note in merged.notes:
        print(f"hostguard: note: {note}", file=sys.stderr)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    names = ", ".join(label for label, _ in inputs)
    header = [f"Merged by hostguard on {when} from {names}: every call one of them permits "
              "is permitted (proven on the compiled filters).", *merged.notes]
    error = write_output(to_yaml(merged.profile, header).encode(), args.output, 0o644)
    if error is not None:
        return _fail(error)
    arches = ", ".join(merged.compiled.arches)
    print(f"hostguard: merged {len(inputs)} profile(s) into {len(merged.profile.rules)} "
          f"rule(s); each input's permitted calls are permitted ({arches})", file=sys.stderr)
    if args.output is not None:
        say_wrote(args.output)
    return 0
