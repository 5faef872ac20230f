"""Command line: the only place that parses argv or prints."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime as dt
import gc
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from agent import __version__

if TYPE_CHECKING:
    from agent.host.fdwalk import FdWalk
    from agent.lint.diagnostic import Diagnostic
    from agent.policy.resolve import PolicySet
    from agent.policy.yamlload import Document

# Each command imports what it needs when it runs: `hostguard audit` never loads Jinja2,
# libseccomp, prometheus_client or the daemon (tests/test_cli_imports.py holds this).

EXIT_USAGE = 2
AUDIT_TOLERATED = frozenset({"waiver-expired"})
"""Lint errors that do not stop an audit."""
OWN_COMMANDS = frozenset({"lint", "audit"})
LINT_FORMATS = ("github", "json", "sarif", "text")
"""``agent.lint.output.FORMATS``, named here so that parsing a command line does not import the
linter (``hostguard audit`` starts its host read before it loads policies: agent/prefetch.py)."""
"""Commands defined in this module; the others come from ``COMMAND_MODULES``."""
COMMAND_MODULES = ("agent.cli_seccomp", "agent.cli_report", "agent.cli_daemon")
"""Modules whose ``add_parsers(sub)`` registers the other commands."""


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _label(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"labels are KEY=VALUE, not {value!r}")
    return key, val


def _report_formats(value: str) -> list[str]:
    from agent.report import writer as report_writer  # noqa: PLC0415 - see the module comment

    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in report_writer.FORMATS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown report format {(unknown or [value])[0]!r} "
            f"(choose from {', '.join(sorted(report_writer.FORMATS))}, comma-separated)")
    return list(dict.fromkeys(names))


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {value!r}")
    return number


class _Formatter(argparse.HelpFormatter):
    """argparse's own, told the terminal's width: argparse makes one for each argument it
    adds, and left to size itself each imports shutil (1.5 ms of every run)."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         _columns() - 2 if width is None else width)


def _columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size`` tells it (COLUMNS, then stdout's
    terminal, then 80)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        stdout = sys.__stdout__
        try:
            columns = os.get_terminal_size(stdout.fileno()).columns if stdout else 0
        except (AttributeError, ValueError, OSError):  # not a terminal, or a closed one
            columns = 0
    return columns or 80


class _Parser(argparse.ArgumentParser):
    """Every parser and subparser, with :class:`_Formatter`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def build_parser(others: bool = True) -> argparse.ArgumentParser:
    """The whole command line; with ``others`` false only ``lint`` and ``audit`` (the other
    commands' modules are then not imported)."""
    from agent.report import writer as report_writer  # noqa: PLC0415 - see the module comment

    parser = _Parser(
        prog="hostguard",
        description="Host-hardening audit and policy enforcement for Linux trading hosts.",
    )
    parser.add_argument("--version", action="version", version=f"hostguard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    lint = sub.add_parser("lint", help="check policy files for schema and semantic errors",
                          description="Lint policy files and folders (searched recursively for "
                          "*.yaml and *.yml). Exit 0 clean, 1 errors, 2 unusable arguments.")
    lint.add_argument("paths", nargs="*", metavar="PATH",
                      help="files or folders (default: policies)")
    lint.add_argument("--format", choices=LINT_FORMATS, default="text")
    lint.add_argument("--strict", action="store_true", help="warnings fail the lint too")
    lint.add_argument("--today", type=_date, help="judge waiver expiry as of this date")

    aud = sub.add_parser("audit", help="audit this host once against policies",
                         description="Read the host once, evaluate every check. Exit 0 "
                         "compliant, 1 a check failed, 2 invalid policy or usage, 3 nothing "
                         "failed but some checks could not be evaluated.")
    aud.add_argument("--policy", action="extend", nargs="+", required=True, metavar="PATH",
                     help="policy files or folders")
    aud.add_argument("--root", type=Path, default=Path("/"), help="host root (default /)")
    aud.add_argument("--format", choices=["text", "json"], default="text")
    aud.add_argument("--output", type=Path, help="write the report here (atomically); a "
                     "summary still goes to stdout")
    aud.add_argument("--label", type=_label, action="append", default=[], metavar="KEY=VALUE",
                     help="host label for policies' hosts.labels selectors (repeatable)")
    aud.add_argument("--verbose", "-v", action="store_true", help="list passing checks too")
    aud.add_argument("--today", type=_date, help="judge waiver expiry as of this date")
    aud.add_argument("--report", type=_report_formats, metavar="FORMAT[,FORMAT...]",
                     help="also write report files <hostname>-<UTC timestamp>.<ext> "
                     f"({', '.join(sorted(report_writer.FORMATS))})")
    aud.add_argument("--output-dir", type=Path, metavar="DIR",
                     help="folder for --report files (default: reports)")
    aud.add_argument("--keep", type=_positive, metavar="N",
                     help="keep the newest N report files per format (and host) in --output-dir")
    aud.add_argument("--seccomp-cache", type=Path, metavar="FILE",
                     help="keep seccomp filter dumps (deep: true checks) in FILE, so that an "
                     "unchanged process is not stopped again by the next audit")
    lint.set_defaults(handler=_lint)
    aud.set_defaults(handler=_audit)
    if others:
        import importlib  # noqa: PLC0415

        for name in COMMAND_MODULES:
            importlib.import_module(name).add_parsers(sub)
    return parser


def run() -> NoReturn:
    """The ``hostguard`` program (and ``python -m agent``): :func:`main` on ``sys.argv``.

    After ``lint`` and ``audit`` the process ends without the interpreter's teardown, which
    frees, one object at a time, memory about to be unmapped anyway (1.5-2.5 ms of a 112 ms
    audit, benchmarks/audit_bench.py). Nothing is lost: report files are written and fsynced
    before ``main`` returns, and stdout and stderr are flushed here (a closed pipe exits 1, as
    it does within ``main``; another failure is told on fd 2 and exits 120, as Python's own
    exit does). Other commands (the daemon), and a process a profiler, tracer or coverage tool
    watches (they write their results at exit), exit as usual.
    """
    code = main(ending=True)
    words = sys.argv[1:]
    if not (words and words[0] in OWN_COMMANDS) or _observed():
        sys.exit(code)
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        try:
            if stream is not None:
                stream.flush()
        except BrokenPipeError:
            code = 1
        except (OSError, ValueError) as exc:
            why = getattr(exc, "strerror", None) or exc
            with contextlib.suppress(OSError):
                os.write(2, f"hostguard: cannot write {name}: {why}\n".encode())
            code = 120
    os._exit(code)


def _observed() -> bool:
    """Whether a profiler, tracer or monitoring tool (coverage) watches this process."""
    if sys.getprofile() is not None or sys.gettrace() is not None:
        return True
    monitoring = getattr(sys, "monitoring", None)  # Python 3.12+
    return monitoring is not None and any(monitoring.get_tool(tool) for tool in range(6))


def main(argv: Sequence[str] | None = None, *, ending: bool = False) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return its exit status;
    ``ending``: the process ends right after (:func:`run`)."""
    words = sys.argv[1:] if argv is None else list(argv)
    # `hostguard audit ...` / `lint ...`: the other commands' parsers play no part in parsing
    # it (subcommand names are never abbreviated), so their modules are left unloaded. Anything
    # else (no command, --help, --version, another command) gets the whole command line.
    own = bool(words) and words[0] in OWN_COMMANDS
    with _one_run(ending) if own else contextlib.nullcontext():
        return _run(build_parser(others=not own).parse_args(words))


def _run(args: argparse.Namespace) -> int:
    # Host data read with surrogateescape must print as escapes, never crash the report.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        code: int = args.handler(args)
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1


@contextlib.contextmanager
def _one_run(ending: bool) -> Iterator[None]:
    """A lint or an audit: a few thousand short-lived objects and few cycles, then the exit.

    The cycle collector is paused while it runs (it would walk every object again and again for
    almost nothing: about 5% of an audit), and whatever is alive at exit is frozen, so that the
    interpreter's last full collection does not walk it all once more (another 5%). When the
    process is ``ending`` right after, the collector stays off: turned on, its first collection
    would walk every object once more (2 ms of an audit). Long-lived commands (the daemon)
    never come here.
    """
    global _FREEZE_AT_EXIT  # noqa: PLW0603 - registered once per process
    if not _FREEZE_AT_EXIT:
        atexit.register(gc.freeze)
        _FREEZE_AT_EXIT = True
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled and not ending:
            gc.enable()


_FREEZE_AT_EXIT = False


def _lint(args: argparse.Namespace) -> int:
    from agent.lint import output  # noqa: PLC0415
    from agent.lint.engine import lint_paths  # noqa: PLC0415

    paths = args.paths or ["policies"]
    report = lint_paths(paths, args.today)
    sys.stdout.write(output.FORMATS[args.format](report))
    if args.format != "text":
        for usage in report.usage_errors:
            print(f"hostguard: {usage}", file=sys.stderr)
    return report.exit_code(args.strict)


def _load(paths: list[str], today: dt.date) -> PolicySet | int:
    from agent.lint.documents import LINTERS  # noqa: PLC0415
    from agent.lint.engine import discover  # noqa: PLC0415
    from agent.policy.resolve import PolicyStore, resolve  # noqa: PLC0415

    files, diagnostics, usage = discover(paths)
    for problem in usage:
        print(f"hostguard: {problem}", file=sys.stderr)
    if usage:
        return EXIT_USAGE
    # Seccomp profiles may share the folder: they are not audited, and linted by `lint`.
    skip = {kind: _not_linted for kind in LINTERS}
    policy_set = resolve(files, today, PolicyStore(today, skip))
    found = sorted(set(diagnostics) | set(policy_set.diagnostics))
    # An expired waiver fails CI's lint, but on the host the audit must go on (without the
    # waiver): refusing to audit from the expiry day on would hide everything.
    for diag in found:
        if diag.rule in AUDIT_TOLERATED:
            print(f"hostguard: warning: {diag} (audited without it)", file=sys.stderr)
    errors = [d for d in found if d.level.value == "error" and d.rule not in AUDIT_TOLERATED]
    if errors or not files:
        for diag in errors:
            print(diag, file=sys.stderr)
        if not files:
            print("hostguard: no policy files found", file=sys.stderr)
        print("hostguard: invalid policy, nothing audited", file=sys.stderr)
        return EXIT_USAGE
    return policy_set


def _not_linted(doc: Document, today: dt.date) -> list[Diagnostic]:
    return []


def _audit(args: argparse.Namespace) -> int:
    from agent import prefetch  # noqa: PLC0415

    # Before the imports and the policy load: the helpers walk on other CPUs meanwhile.
    prefetched = prefetch.start(args.root, args.policy)
    try:
        return _audit_with(args, prefetched)
    finally:
        if prefetched is not None:
            prefetched.cancel()


def _audit_with(args: argparse.Namespace, prefetched: FdWalk | None) -> int:
    from agent import audit  # noqa: PLC0415
    from agent.report import json as json_report  # noqa: PLC0415
    from agent.report import text as text_report  # noqa: PLC0415

    today = args.today or dt.datetime.now(dt.UTC).date()
    loaded = _load(args.policy, today)
    if isinstance(loaded, int):
        return loaded
    if not args.root.is_dir():
        print(f"hostguard: --root {args.root}: not a folder", file=sys.stderr)
        return EXIT_USAGE
    if args.report is None and (args.output_dir is not None or args.keep is not None):
        print("hostguard: --output-dir and --keep apply to --report only", file=sys.stderr)
        return EXIT_USAGE
    cache = None
    if args.seccomp_cache is not None:
        from agent.host.seccomp_dump import DumpCache  # noqa: PLC0415

        cache = DumpCache(args.seccomp_cache)
        if cache.ignored:
            print(f"hostguard: note: {args.seccomp_cache} not used: {cache.ignored}",
                  file=sys.stderr)
    result = audit.run(loaded, args.root, dict(args.label), today, dump_cache=cache,
                       fd_walk=prefetched)
    if cache is not None:
        try:
            cache.save()
        except OSError as exc:
            print(f"hostguard: cannot write {args.seccomp_cache}: {exc.strerror or exc}",
                  file=sys.stderr)
    rendered = (json_report.render(result) if args.format == "json"
                else text_report.render(result, args.verbose))
    if args.output is None:
        sys.stdout.write(rendered)
    else:
        from agent.atomic import write_atomic  # noqa: PLC0415

        try:
            write_atomic(args.output, rendered.encode("utf-8", "backslashreplace"))
        except OSError as exc:
            print(f"hostguard: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
        sys.stdout.write(text_report.render(result, args.verbose))
        print(f"report written to {args.output}")
    if args.report is not None:
        from agent.report import writer as report_writer  # noqa: PLC0415

        folder = args.output_dir or Path("reports")
        try:
            paths = report_writer.write_reports(result, args.report, folder, args.keep)
        except OSError as exc:
            where = exc.filename or folder
            print(f"hostguard: cannot write reports to {where}: {exc.strerror or exc}",
                  file=sys.stderr)
            return EXIT_USAGE
        # JSON on stdout stays parseable: the file list then goes to stderr.
        stream = sys.stderr if args.format == "json" and args.output is None else sys.stdout
        for path in paths:
            print(f"report written to {path}", file=stream)
    return audit.exit_code(result)
