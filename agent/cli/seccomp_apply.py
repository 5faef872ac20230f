"""``hostguard seccomp apply``: load a profile's filter into a running process, with the proof.

The work is :mod:`agent.enforce.apply`; here the arguments, the words and the exit status.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.cli.output import compiled_or_say
from agent.cli.seccomp_live import comparison_json, print_comparison

EXIT_DIFFERENT = 1
"""Applied, but the loaded stack does not do exactly what the profile says (an older filter)."""
EXIT_NOT_APPLIED = 2


def add_apply(commands: Any) -> None:
    """Register ``hostguard seccomp apply``."""
    cmd = commands.add_parser(
        "apply", help="load a profile's filter into a running process and prove it loaded",
        description="Stop one thread of process PID for a moment (ptrace), have it load the "
        "filter PROFILE compiles to (prctl(PR_SET_NO_NEW_PRIVS) when the profile asks, then "
        "seccomp() with TSYNC, so every thread, and every thread started later, carries it), "
        "resume it exactly where it was, then read the loaded filters back and compare them "
        "with the profile as 'seccomp verify' does. A process already carrying an equivalent "
        "filter is left alone. Needs CAP_SYS_PTRACE and CAP_SYS_ADMIN. A filter cannot be "
        "removed once loaded: try --mode log first. Exit 0 applied (or already there) and "
        "equivalent, 1 applied but the loaded stack differs from the profile (an older filter "
        "also acts), 2 not applied.")
    cmd.add_argument("--pid", type=int, required=True, help="the process to filter")
    cmd.add_argument("--tid", type=int, help="the thread of PID to stop and make the calls "
                     "(default: the main thread); an idle one disturbs a busy process least")
    cmd.add_argument("--profile", type=Path, required=True, metavar="PROFILE")
    cmd.add_argument("--mode", choices=["enforce", "log"],
                     help="override the profile's mode (log: nothing is denied, the kernel "
                     "logs what would be)")
    cmd.add_argument("--stop-isolated", action="store_true",
                     help="stop the process even if a thread of it may run on an isolated CPU")
    cmd.add_argument("--format", choices=["text", "json"], default="text")
    cmd.set_defaults(handler=_apply)


def _apply(args: argparse.Namespace) -> int:
    from agent.enforce.apply import ApplyError, apply_filter  # noqa: PLC0415 - this command only

    compiled = compiled_or_say(args.profile, args.mode)
    if compiled is None:
        return EXIT_NOT_APPLIED
    try:
        applied = apply_filter(args.pid, compiled, tid=args.tid,
                               stop_isolated=args.stop_isolated)
    except ApplyError as exc:
        print(f"hostguard: not applied to process {args.pid}: {exc.reason}", file=sys.stderr)
        print("hostguard: " + (f"changed nonetheless: {exc.changed}" if exc.changed
                               else "the process was left as it was"), file=sys.stderr)
        return EXIT_NOT_APPLIED
    if args.format == "json":
        print(json.dumps({
            "pid": applied.pid, "tid": applied.tid, "start_time": applied.start_time,
            "profile": str(args.profile), "outcome": applied.outcome, "mode": applied.mode,
            "digest": applied.digest, "threads": applied.threads, "filters": applied.filters,
            "set_no_new_privs": applied.set_nnp, "stop_ns": applied.stop_ns,
            **comparison_json(applied.proof)}, indent=2))
    else:
        if applied.outcome == "unchanged":
            print(f"pid {applied.pid}: already carries a filter stack equivalent to "
                  f"{args.profile}; left alone")
        else:
            nnp = ", no_new_privs set" if applied.set_nnp else ""
            print(f"pid {applied.pid}: applied {args.profile} ({applied.mode}{nnp}) through "
                  f"thread {applied.tid}, stopped {applied.stop_ns / 1e6:.3f} ms; "
                  f"{applied.threads} thread(s) carry {applied.filters} filter(s)")
        print(f"pid {applied.pid} tid {applied.tid}: loaded stack read back")
        print_comparison(applied.proof, args.profile)
    return 0 if applied.proof.equivalent else EXIT_DIFFERENT
