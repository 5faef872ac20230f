"""``hostguard seccomp record``: run a command traced and write the profile it needs.

The tracing is :mod:`agent.enforce.trace`, the profile :mod:`agent.seccomp.recorded`; here only
the arguments, the output and the exit status, which is the command's own: a command killed by a
signal kills the recorder with the same signal once the profile is written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import signal
import sys
from pathlib import Path
from typing import Any

from agent.cli.output import write_output
from agent.enforce import exec as enforce
from agent.enforce import trace
from agent.seccomp import recorded
from agent.seccomp.profile import to_yaml

EXIT_NOT_WRITTEN = 125
"""The command ran, but its profile could not be written."""
_NAME = "hostguard seccomp record"


def add_record(commands: Any) -> None:
    """Register ``hostguard seccomp record``."""
    cmd = commands.add_parser(
        "record", help="run a command traced and write the seccomp profile it needs",
        usage="hostguard seccomp record [--args] [-o PROFILE] -- CMD [ARGS...]",
        description="Run CMD with every thread and child traced (ptrace) and write a minimal "
        "profile allowing the syscalls the run made (native ABI; calls through i386 or x32 are "
        "named on stderr and killed by the profile). CMD's output and exit status are its own "
        "(killed by a signal: the recorder dies of the same signal, after writing). Exit 125: "
        "the profile could not be written; 126 (127: not found): CMD was not run.")
    cmd.add_argument("-o", "--output", type=Path, metavar="PROFILE",
                     help="write the profile here (atomically) instead of stdout")
    cmd.add_argument("--args", action="store_true",
                     help="allow socket, prctl, ioctl and clone (namespace flags) only with the "
                     "argument values the run used")
    cmd.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD [ARGS...]")
    cmd.set_defaults(handler=_record)

    def refuse(message: str) -> Any:  # usage errors must not look like CMD's own exit status
        cmd.print_usage(sys.stderr)
        print(f"{_NAME}: {message}; the command was not run", file=sys.stderr)
        sys.exit(enforce.EXIT_CANNOT_RUN)
    cmd.error = refuse


def _record(args: argparse.Namespace) -> int:
    argv = list(args.command)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    try:
        if not argv:
            raise enforce.ExecError("no command given (hostguard seccomp record -- CMD ...)")
        path = enforce.find_command(argv[0])
        when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        sys.stdout.flush()
        sys.stderr.flush()
        done = trace.run_traced(path, argv, recorded.watch() if args.args else None)
    except (enforce.ExecError, trace.TraceError) as exc:
        status = exc.status if isinstance(exc, enforce.ExecError) else enforce.EXIT_CANNOT_RUN
        print(f"{_NAME}: {exc}; the command was not run", file=sys.stderr)
        return status
    result = recorded.record_profile(argv, done.calls, done.values if args.args else None)
    for note in result.notes:
        print(f"{_NAME}: note: {note}", file=sys.stderr)
    text = to_yaml(result.profile, recorded.header(argv, when, os.uname().release, done.status,
                                                   result.notes, refined=args.args))
    failed = write_output(text.encode(), args.output, 0o644)
    if failed is not None:
        print(f"{_NAME}: {failed}", file=sys.stderr)
        return EXIT_NOT_WRITTEN
    return done.status if done.status >= 0 else _die_of(-done.status)


def _die_of(sig: int) -> int:
    """End by ``sig`` as the command did (no core file of the recorder's own); if the signal
    does not end a process, 128 + its number, as a shell reports it."""
    sys.stdout.flush()
    sys.stderr.flush()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
    os.kill(os.getpid(), sig)
    return 128 + sig
