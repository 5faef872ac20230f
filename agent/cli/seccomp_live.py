"""``hostguard seccomp dump`` and ``seccomp verify``: the filters a running process carries.

Part of the CLI layer: registered by :mod:`agent.cli.seccomp`; the heavy modules load only when
one of these commands runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.cli.output import compiled_or_say

EXIT_ERROR = 2


def add_dump(commands: Any) -> None:
    cmd = commands.add_parser(
        "dump", help="disassemble the seccomp filters a process carries, with the effective table",
        description="Read the filters loaded in a running thread (PTRACE_SECCOMP_GET_FILTER: the "
        "thread is stopped for well under a millisecond; needs CAP_SYS_ADMIN) or a raw BPF file, "
        "and print each filter's disassembly and the effective action of every syscall on every "
        "ABI this CPU can enter. Exit 0 printed, 2 cannot read.")
    source = cmd.add_mutually_exclusive_group(required=True)
    source.add_argument("--pid", type=int, help="process (its main thread unless --tid)")
    source.add_argument("--file", type=Path, metavar="BPF",
                        help="raw sock_filter program (e.g. from 'seccomp compile --format bpf')")
    cmd.add_argument("--tid", type=int, help="thread of --pid to read (filters are per thread)")
    cmd.add_argument("--format", choices=["text", "json"], default="text")
    cmd.set_defaults(handler=_dump)


def add_verify(commands: Any) -> None:
    cmd = commands.add_parser(
        "verify", help="prove a process's loaded filters equal a profile, syscall by syscall",
        description="Compare the filters loaded in a running thread with PROFILE compiled as "
        "'hostguard exec' loads it, on every syscall of every ABI this CPU can enter, argument "
        "conditions included. Every difference is printed with a call that shows it. Exit 0 "
        "equivalent, 1 different or undecidable, 2 cannot read or compile.")
    cmd.add_argument("--pid", type=int, required=True)
    cmd.add_argument("--tid", type=int, help="thread of --pid to read (default: the main one)")
    cmd.add_argument("--profile", type=Path, required=True, metavar="PROFILE")
    cmd.add_argument("--mode", choices=["enforce", "log"], help="override the profile's mode")
    cmd.add_argument("--format", choices=["text", "json"], default="text")
    cmd.set_defaults(handler=_verify)


def _fail(message: str) -> int:
    print(f"hostguard: {message}", file=sys.stderr)
    return EXIT_ERROR


def _read(pid: int, tid: int | None) -> tuple[Any, str] | str:
    """(dump, one header line) or why nothing could be read."""
    from agent.host.seccomp_dump import DumpError, dump_filters  # noqa: PLC0415 - these commands only

    thread = tid if tid is not None else pid
    if tid is not None and not Path(f"/proc/{pid}/task/{tid}").exists():
        return f"thread {tid} is not a thread of process {pid}"
    try:
        dump = dump_filters(thread)
    except DumpError as exc:
        return f"cannot read the filters of thread {thread}: {exc.reason}"
    stopped = "not stopped" if dump.stop_ns == 0 else f"stopped {dump.stop_ns / 1e6:.3f} ms"
    header = (f"pid {pid} tid {thread}: {len(dump.filters)} filter(s), {stopped}"
              + (" (cached)" if dump.cached else ""))
    return dump, header


def _dump(args: argparse.Namespace) -> int:
    from agent.seccomp import bpf, effective  # noqa: PLC0415 - these commands only

    if args.file is not None:
        if args.tid is not None:
            return _fail("--tid goes with --pid")
        try:
            program = args.file.read_bytes()
        except OSError as exc:
            return _fail(f"cannot read {args.file}: {exc.strerror}")
        stack, header, extra = [program], f"file {args.file}", {"file": str(args.file)}
    else:
        got = _read(args.pid, args.tid)
        if isinstance(got, str):
            return _fail(got)
        dump, header = got
        stack = list(dump.filters)
        extra = {"pid": args.pid, "tid": dump.tid, "stop_ns": dump.stop_ns,
                 "cached": dump.cached}
    try:
        views = effective.tables(stack)
    except bpf.BadProgram as exc:
        return _fail(f"not a valid seccomp program: {exc}")
    if args.format == "json":
        print(json.dumps({**extra, **effective.to_json(stack, views)}, indent=2))
    else:
        sys.stdout.write(effective.render_text(stack, views, [header, ""]))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from agent.seccomp import bpf, verify  # noqa: PLC0415 - these commands only

    compiled = compiled_or_say(args.profile, args.mode)
    if compiled is None:
        return EXIT_ERROR
    got = _read(args.pid, args.tid)
    if isinstance(got, str):
        return _fail(got)
    dump, header = got
    try:
        result = verify.compare(dump.filters, compiled)
    except bpf.BadProgram as exc:
        return _fail(f"the loaded filter is not a valid program: {exc}")
    if args.format == "json":
        print(json.dumps({"pid": args.pid, "tid": dump.tid, "profile": str(args.profile),
                          **comparison_json(result), "stop_ns": dump.stop_ns}, indent=2))
    else:
        print(header)
        print_comparison(result, args.profile)
    return 0 if result.equivalent else 1


def comparison_json(result: Any) -> dict[str, Any]:
    """A :class:`agent.seccomp.verify.Comparison` as the JSON of ``verify`` and ``apply``."""
    return {
        "equivalent": result.equivalent, "arches": list(result.arches),
        "syscalls": result.syscalls, "points": result.points,
        "differences": [{"kind": d.kind, "severity": d.severity, "arch": d.arch,
                         "syscall": d.syscall, "nr": d.nr, "loaded": d.loaded,
                         "declared": d.declared, "count": d.count,
                         "args": None if d.args is None else list(d.args),
                         "instruction_pointer": d.instruction_pointer}
                        for d in result.differences],
    }


def print_comparison(result: Any, profile: Path) -> None:
    """Every difference, then the verdict line (``verify`` and ``apply``)."""
    for diff in result.differences:
        print(diff)
    verdict = "equivalent to" if result.equivalent else \
        f"{len(result.differences)} difference(s) from"
    print(f"{verdict} {profile} ({result.syscalls} syscall numbers on "
          f"{', '.join(result.arches)}; {result.points} argument combinations)")
