"""Command line of the seccomp half: ``hostguard exec`` and ``hostguard seccomp ...``.

Each subcommand registers its parser in :func:`add_parsers` with ``set_defaults(handler=...)``;
a handler returns the exit status.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.cli import (
    seccomp_apply,
    seccomp_diff,
    seccomp_learn,
    seccomp_live,
    seccomp_merge,
    seccomp_record,
)
from agent.cli.args import command_words, runs_a_command
from agent.cli.output import profile_or_say, say_wrote, write_output
from agent.core.native import MissingLibrary
from agent.enforce import EXIT_CANNOT_RUN
from agent.seccomp.model import MODES, FormatError, Profile

if TYPE_CHECKING:
    from agent.seccomp import systemd


def add_parsers(sub: Any) -> None:
    """Register ``exec`` and ``seccomp`` (with its own subcommands) on ``sub``."""
    _add_exec(sub)
    seccomp = sub.add_parser("seccomp", help="seccomp profiles: compile, import, export, "
                             "systemd, dump, verify, record, learn, diff, merge, apply",
                             description="Work with seccomp profiles (policies/seccomp/).")
    seccomp.set_defaults(handler=_seccomp_help(seccomp))
    commands = seccomp.add_subparsers(dest="seccomp_command", metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(commands)


_SUBCOMMANDS: list[Any] = []
"""``_add_<name>(commands)`` functions, one per ``hostguard seccomp`` subcommand."""


def _seccomp_help(parser: argparse.ArgumentParser) -> Any:
    def show(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2
    return show


# --- import / export / systemd: formats in and out (agent.seccomp.oci, .systemd) ---------------

def _add_import(commands: Any) -> None:
    cmd = commands.add_parser(
        "import", help="convert Docker/OCI seccomp JSON into a hostguard profile",
        description="Import a Docker/OCI seccomp JSON profile for one architecture, capability "
        "set and the running kernel. Writes the YAML profile to stdout (or -o); notes on what "
        "was left out go to stderr. Exit 0 done, 2 unusable input.")
    cmd.add_argument("file", type=Path, metavar="FILE", help="OCI/Docker seccomp JSON")
    cmd.add_argument("--arch", default="x86_64", help="libseccomp architecture (default x86_64)")
    cmd.add_argument("--caps", metavar="CAP,...", help="the container's capabilities (default: "
                     "Docker's default container set)")
    cmd.add_argument("-o", "--output", type=Path, metavar="PROFILE",
                     help="write the profile here (atomically)")
    cmd.set_defaults(handler=_import)


def _caps(text: str | None) -> list[str] | None:
    if text is None:
        return None
    out = []
    for raw in text.split(","):
        cap = raw.strip().upper()
        if cap:
            out.append(cap if cap.startswith("CAP_") else f"CAP_{cap}")
    return out


def _import(args: argparse.Namespace) -> int:
    from agent.seccomp import oci  # noqa: PLC0415 - libseccomp only when a command runs: --help works without it
    from agent.seccomp.profile import to_yaml  # noqa: PLC0415 - libseccomp only when a command runs: --help works without it

    try:
        profile, notes = oci.load_oci(args.file, args.arch, _caps(args.caps))
    except FormatError as exc:
        print(f"hostguard: {exc}", file=sys.stderr)
        return 2
    caps = args.caps or "Docker's default set"
    header = [f"Imported by hostguard from {args.file.name} for {args.arch}, capabilities: "
              f"{caps}.", *notes]
    text = to_yaml(profile, header)
    for note in notes:
        print(f"hostguard: note: {note}", file=sys.stderr)
    return _emit(text.encode(), args.output)


def _emit(data: bytes, output: Path | None, then: str = "") -> int:
    """``data`` to stdout, or atomically to ``output`` (saying so, and ``then`` after it)."""
    error = write_output(data, output, 0o644)
    if error is not None:
        print(f"hostguard: {error}", file=sys.stderr)
        return 2
    if output is not None:
        say_wrote(output, then)
    return 0


def _add_export(commands: Any) -> None:
    cmd = commands.add_parser(
        "export", help="convert a hostguard profile to Docker/OCI seccomp JSON",
        description="Export a profile as OCI/Docker seccomp JSON (stdout or -o). Exit 0 done, "
        "2 invalid profile or one OCI cannot express.")
    cmd.add_argument("profile", type=Path, metavar="PROFILE")
    cmd.add_argument("--arch", default="x86_64",
                     help="what 'native' stands for in the JSON (default x86_64)")
    cmd.add_argument("-o", "--output", type=Path, metavar="FILE",
                     help="write the JSON here (atomically)")
    cmd.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from agent.seccomp import oci  # noqa: PLC0415 - libseccomp only when a command runs: --help works without it

    profile = profile_or_say(args.profile)
    if profile is None:
        return 2
    try:
        data = oci.to_oci(profile, args.arch)
    except FormatError as exc:
        print(f"hostguard: {exc}", file=sys.stderr)
        return 2
    for caveat in oci.oci_caveats(profile):
        print(f"hostguard: caveat: {caveat}", file=sys.stderr)
    return _emit((json.dumps(data, indent=2) + "\n").encode(), args.output)


_UNIT = re.compile(r"[A-Za-z0-9:_.\\@-]{1,240}\.service")


def _add_systemd(commands: Any) -> None:
    cmd = commands.add_parser(
        "systemd", help="write a systemd drop-in that applies a profile to a service",
        description="Translate a profile into SystemCallFilter=, SystemCallErrorNumber=, "
        "RestrictAddressFamilies= (socket() address family rules), SystemCallLog=, "
        "SystemCallArchitectures=native and NoNewPrivileges=yes. With --output, writes "
        "DIR/UNIT.d/hostguard-seccomp.conf atomically, else prints it. Exit 0 done; 2 invalid "
        "input, or a profile systemd cannot express exactly (each loss named on stderr, "
        "nothing written) unless --lossy.")
    cmd.add_argument("profile", type=Path, metavar="PROFILE")
    cmd.add_argument("--unit", required=True, metavar="NAME.service")
    cmd.add_argument("--output", type=Path, metavar="DIR",
                     help="unit folder, e.g. /etc/systemd/system")
    _add_lossy(cmd)
    cmd.add_argument("--widen", action="store_true",
                     help="with --lossy: a syscall with argument conditions gets its most "
                     "permissive outcome (default: the most restrictive, e.g. no clone at all)")
    cmd.set_defaults(handler=_systemd)


def _add_lossy(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--lossy", action="store_true",
                     help="write the systemd settings even where they decide otherwise than "
                     "the profile (each loss is printed on stderr)")


def _systemd_lines(profile: Profile, lossy: bool, widen: bool = False
                   ) -> systemd.SystemdFilter | None:
    """The translation, or None (after naming each loss) when it is not exact and not
    ``lossy``: a drop-in that decides otherwise than the profile is written only on request."""
    from agent.seccomp import systemd  # noqa: PLC0415 - libseccomp only when a command runs: --help works without it

    result = systemd.to_systemd(profile, widen=widen)
    for note in result.notes:
        print(f"hostguard: note: {note}", file=sys.stderr)
    if result.losses and not lossy:
        for loss in result.losses:
            print(f"hostguard: cannot express: {loss}", file=sys.stderr)
        print(f"hostguard: nothing written: {len(result.losses)} loss(es); --lossy writes the "
              "systemd settings anyway", file=sys.stderr)
        return None
    for loss in result.losses:
        print(f"hostguard: loss: {loss}", file=sys.stderr)
    return result


def _systemd(args: argparse.Namespace) -> int:
    if not _UNIT.fullmatch(args.unit):
        print(f"hostguard: --unit must name a service unit (NAME.service), not {args.unit!r}",
              file=sys.stderr)
        return 2
    profile = profile_or_say(args.profile)
    if profile is None:
        return 2
    result = _systemd_lines(profile, args.lossy, args.widen)
    if result is None:
        return 2
    text = result.dropin(args.unit, str(args.profile))
    target: Path | None = None
    if args.output is not None:
        target = args.output / f"{args.unit}.d" / "hostguard-seccomp.conf"
    return _emit(text.encode(), target,
                 f" (run: systemctl daemon-reload && systemctl restart {args.unit})")


_SUBCOMMANDS += [_add_import, _add_export, _add_systemd]


# --- exec and compile: the filter itself (agent.seccomp.compile, agent.enforce.exec) -------------

def _add_exec(sub: Any) -> None:
    cmd = sub.add_parser(
        "exec", help="run a command under a seccomp profile",
        usage="hostguard exec --profile PROFILE [--mode enforce|log] -- CMD [ARGS...]",
        description="Validate and compile the profile, set no_new_privs, load the filter and "
        "execve CMD. If anything fails before the execve, CMD is not run: the reason goes to "
        "stderr and the exit status is 126 (127: command not found). Otherwise the exit status "
        "is CMD's own.")
    cmd.add_argument("--profile", type=Path, metavar="PROFILE", help="seccomp profile (YAML)")
    cmd.add_argument("--mode", metavar="enforce|log",
                     help="override the profile's mode (log: would-be-denied calls are allowed "
                     "and logged by the kernel)")
    cmd.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD [ARGS...]")
    cmd.set_defaults(handler=_exec)

    runs_a_command(cmd, "hostguard exec", EXIT_CANNOT_RUN)


def _exec(args: argparse.Namespace) -> int:
    def refuse(message: str, status: int = EXIT_CANNOT_RUN) -> int:
        print(f"hostguard exec: {message}; the command was not run", file=sys.stderr)
        return status
    try:
        from agent.enforce import exec as enforce  # noqa: PLC0415 - libseccomp only when a command runs: --help works without it
    except MissingLibrary as exc:
        return refuse(str(exc))
    argv = command_words(args)
    if args.profile is None:
        return refuse("--profile is required")
    if args.mode is not None and args.mode not in MODES:
        return refuse(f"--mode must be enforce or log, not {args.mode!r}")
    if not argv:
        return refuse("no command given (hostguard exec --profile P -- CMD [ARGS...])")
    profile = profile_or_say(args.profile)
    if profile is None:
        return refuse("invalid profile")
    try:
        compiled, path = enforce.prepare(profile, argv, args.mode)
    except enforce.ExecError as exc:
        return refuse(exc.message, exc.status)
    enforce.exec_filtered(compiled, path, argv)


def _add_compile(commands: Any) -> None:
    cmd = commands.add_parser(
        "compile", help="compile a profile to BPF, PFC, OCI JSON or systemd directives",
        description="bpf: the raw seccomp program (struct sock_filter array, as loaded); pfc: "
        "libseccomp's readable listing; oci: Docker/OCI JSON; systemd: the [Service] lines of "
        "'hostguard seccomp systemd'. Exit 0 done, 2 invalid profile or one that cannot be "
        "compiled exactly (systemd: unless --lossy; each loss is named on stderr).")
    cmd.add_argument("profile", type=Path, metavar="PROFILE")
    cmd.add_argument("--format", choices=["bpf", "pfc", "oci", "systemd"], default="pfc")
    cmd.add_argument("--mode", choices=list(MODES),
                     help="override the profile's mode")
    cmd.add_argument("--arch", help="oci only: what 'native' stands for (default: this host's)")
    _add_lossy(cmd)
    cmd.add_argument("-o", "--output", type=Path, metavar="FILE",
                     help="write here (atomically) instead of stdout")
    cmd.set_defaults(handler=_compile)


def _compile(args: argparse.Namespace) -> int:
    from agent.seccomp import compile as seccomp_compile  # noqa: PLC0415 - libseccomp only when a command runs: --help works without it
    from agent.seccomp import oci, syscalls  # noqa: PLC0415 - libseccomp only when a command runs: --help works without it
    from agent.seccomp.plan import CompileError  # noqa: PLC0415 - libseccomp only when a command runs: --help works without it

    profile = profile_or_say(args.profile)
    if profile is None:
        return 2
    data: bytes
    try:
        compiled = seccomp_compile.build_filter(profile, args.mode)
        if args.format == "bpf":
            data = compiled.bpf()
        elif args.format == "pfc":
            data = compiled.pfc().encode()
        elif args.format == "oci":
            arch = args.arch or syscalls.native_arch()
            data = (json.dumps(oci.to_oci(profile, arch), indent=2) + "\n").encode()
        else:
            if args.mode is not None:  # what build_filter did with it
                profile = dataclasses.replace(profile, mode=args.mode)
            result = _systemd_lines(profile, args.lossy)
            if result is None:
                return 2
            data = "".join(f"{line}\n" for line in result.lines).encode()
    except (CompileError, FormatError) as exc:
        print(f"hostguard: {exc}", file=sys.stderr)
        return 2
    by_hand = seccomp_compile.hand_written(profile)  # group members absent here are expected
    for arch in compiled.arches:
        left = [s.syscall for s in compiled.skipped if s.arch == arch and s.syscall in by_hand]
        if left:
            print(f"hostguard: note: not syscalls on {arch}, left out there: {', '.join(left)}",
                  file=sys.stderr)
    if args.output is None and args.format == "bpf" and sys.stdout.isatty():
        print("hostguard: refusing to write binary BPF to a terminal (use -o FILE)",
              file=sys.stderr)
        return 2
    return _emit(data, args.output)


_SUBCOMMANDS += [_add_compile]


_SUBCOMMANDS += [seccomp_live.add_dump, seccomp_live.add_verify]
_SUBCOMMANDS += [seccomp_record.add_record]
_SUBCOMMANDS += [seccomp_diff.add_diff]
_SUBCOMMANDS += [seccomp_merge.add_merge]
_SUBCOMMANDS += [seccomp_learn.add_learn]
_SUBCOMMANDS += [seccomp_apply.add_apply]
