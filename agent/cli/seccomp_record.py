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
import shlex
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.cli.args import command_words, runs_a_command
from agent.cli.output import write_output
from agent.core.native import MissingLibrary
from agent.enforce import EXIT_CANNOT_RUN
from agent.host import stop_guard

if TYPE_CHECKING:
    from agent.enforce import trace

EXIT_NOT_WRITTEN = 125
"""The command ran, but its profile could not be written."""
_NAME = "hostguard seccomp record"


def add_record(commands: Any) -> None:
    """Register ``hostguard seccomp record``."""
    cmd = commands.add_parser(
        "record", help="run a command traced and write the seccomp profile it needs",
        usage="hostguard seccomp record [--args] [-o PROFILE] (-- CMD [ARGS...] | --pid PID "
        "--duration S [--stop-isolated])",
        description="Run CMD with every thread and child traced (ptrace) and write a minimal "
        "profile allowing the syscalls the run made (native ABI; calls through i386 or x32 are "
        "named on stderr and killed by the profile). CMD's output and exit status are its own "
        "(killed by a signal: the recorder dies of the same signal, after writing). Exit 125: "
        "the profile could not be written; 126 (127: not found): CMD was not run. With --pid, "
        "every thread of the running process is traced for --duration seconds, then released "
        "(never a process that may run on an isolated CPU, unless --stop-isolated): exit 0 "
        "written, 2 not attached, 125 not written.")
    cmd.add_argument("-o", "--output", type=Path, metavar="PROFILE",
                     help="write the profile here (atomically) instead of stdout")
    cmd.add_argument("--args", action="store_true",
                     help="allow socket, prctl, ioctl and clone (namespace flags) only with the "
                     "argument values the run used")
    cmd.add_argument("--pid", type=int, metavar="PID",
                     help="attach to this running process instead of running a command")
    cmd.add_argument("--duration", type=float, metavar="SECONDS",
                     help="with --pid: how long to trace it before letting it go")
    cmd.add_argument("--stop-isolated", action="store_true",
                     help="with --pid: attach even if it may run on an isolated CPU")
    cmd.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD [ARGS...]")
    cmd.set_defaults(handler=_record)

    runs_a_command(cmd, _NAME, EXIT_CANNOT_RUN)


def _record(args: argparse.Namespace) -> int:
    try:
        from agent.enforce import exec as enforce  # noqa: PLC0415 - libseccomp only when a command runs: --help works without it
        from agent.enforce import trace  # noqa: PLC0415 - libseccomp only when a command runs: --help works without it
        from agent.seccomp import recorded  # noqa: PLC0415 - libseccomp only when a command runs: --help works without it
    except MissingLibrary as exc:
        print(f"{_NAME}: {exc}; nothing was run", file=sys.stderr)
        return EXIT_CANNOT_RUN
    argv = command_words(args)
    if args.pid is not None:
        return _attach(args, argv)
    try:
        if args.duration is not None or args.stop_isolated:
            raise enforce.ExecError("--duration and --stop-isolated go with --pid")
        if not argv:
            raise enforce.ExecError("no command given (hostguard seccomp record -- CMD ...)")
        path = enforce.find_command(argv[0])
        when = _now()
        sys.stdout.flush()
        sys.stderr.flush()
        done = trace.run_traced(path, argv, recorded.watch() if args.args else None)
    except (enforce.ExecError, trace.TraceError) as exc:
        status = exc.status if isinstance(exc, enforce.ExecError) else EXIT_CANNOT_RUN
        print(f"{_NAME}: {exc}; the command was not run", file=sys.stderr)
        return status
    failed = _write(args, argv[0], f"from: {shlex.join(argv)}", when, done)
    if failed is not None:
        return failed
    assert done.status is not None  # a command's end is always reported
    return done.status if done.status >= 0 else _die_of(-done.status)


def _attach(args: argparse.Namespace, argv: list[str]) -> int:
    def refuse(message: str) -> int:
        print(f"{_NAME}: {message}", file=sys.stderr)
        return 2
    if argv:
        return refuse("--pid and a command exclude each other")
    if args.duration is None or not args.duration > 0:
        return refuse("--pid needs --duration SECONDS (more than 0)")
    why = None if args.stop_isolated else stop_guard.refuse_stop(args.pid)
    if why is not None:
        return refuse(f"not attaching to {args.pid}: {why} (--stop-isolated allows it)")
    from agent.enforce import trace  # noqa: PLC0415 - libseccomp only when a command runs: --help works without it
    from agent.seccomp import recorded  # noqa: PLC0415 - libseccomp only when a command runs: --help works without it

    name = _program(args.pid)
    when = _now()
    try:
        done = trace.attach_traced(args.pid, args.duration,
                                   recorded.watch() if args.args else None)
    except trace.TraceError as exc:
        return refuse(str(exc))
    source = f"by attaching to pid {args.pid} ({name}) for {args.duration:g} s"
    failed = _write(args, name, source, when, done)
    return 0 if failed is None else failed


def _write(args: argparse.Namespace, program: str, source: str, when: str,
           done: trace.Trace) -> int | None:
    """Write the profile; None when written, else the exit status."""
    from agent.seccomp import recorded  # noqa: PLC0415 - libseccomp only when a command runs: --help works without it
    from agent.seccomp.profile import to_yaml  # noqa: PLC0415 - libseccomp only when a command runs: --help works without it

    result = recorded.record_profile([program], done.calls, done.values if args.args else None)
    for note in result.notes:
        print(f"{_NAME}: note: {note}", file=sys.stderr)
    text = to_yaml(result.profile, recorded.header(source, when, os.uname().release, done.status,
                                                   result.notes, refined=args.args))
    failed = write_output(text.encode(), args.output, 0o644)
    if failed is not None:
        print(f"{_NAME}: {failed}", file=sys.stderr)
        return EXIT_NOT_WRITTEN
    return None


def _program(pid: int) -> str:
    """What runs as ``pid``: its executable's path, else its command name."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as comm:
            return comm.read().strip() or str(pid)
    except OSError:
        return str(pid)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


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
