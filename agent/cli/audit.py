"""``hostguard audit``: read the host once, evaluate every check of the policies, report."""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.cli.args import add_color, date, use_color
from agent.cli.output import say_wrote
from agent.core import shipped
from agent.core.atomic import write_atomic
from agent.report import writer as report_writer

if TYPE_CHECKING:
    from agent.host.fdwalk import FdWalk
    from agent.policy.resolve import PolicySet

EXIT_USAGE = 2


def _label(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"labels are KEY=VALUE, not {value!r}")
    return key, val


def _report_formats(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in report_writer.FORMATS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown report format {(unknown or [value])[0]!r} "
            f"(choose from {', '.join(sorted(report_writer.FORMATS))}, comma-separated)")
    return list(dict.fromkeys(names))


def _format(value: str) -> str:
    # A report file format named where the terminal's is chosen: say where it goes instead.
    if value not in ("text", "json") and value in report_writer.FORMATS:
        raise argparse.ArgumentTypeError(
            f"{value} is a report file: use --report {value} (--format is text or json)")
    return value


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {value!r}")
    return number


def add_parsers(sub: Any) -> None:
    """Register ``audit`` on the top-level subparsers ``sub``."""
    aud = sub.add_parser("audit", help="audit this host once against policies",
                         description="Read the host once, evaluate every check. Exit 0 "
                         "compliant, 1 a check failed, 2 invalid policy or usage, 3 nothing "
                         "failed but some checks could not be evaluated, 5 not a single check "
                         "applied to this host (nothing evaluated).")
    aud.add_argument("--policy", action="extend", nargs="+", metavar="PATH",
                     help="policy files or folders (default: /etc/hostguard/policies when it "
                     "exists, else the policies shipped with hostguard)")
    aud.add_argument("--root", type=Path, default=Path("/"), help="host root (default /)")
    aud.add_argument("--format", type=_format, choices=["text", "json"], default="text")
    aud.add_argument("-o", "--output", type=Path, metavar="FILE", help="write the report here "
                     "(atomically); a summary still goes to stdout")
    aud.add_argument("--label", type=_label, action="append", default=[], metavar="KEY=VALUE",
                     help="host label for policies' hosts.labels selectors (repeatable)")
    aud.add_argument("--verbose", "-v", action="store_true", help="list passing checks too")
    add_color(aud)
    aud.add_argument("--today", type=date, help="judge waiver expiry as of this date")
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
    aud.set_defaults(handler=_audit)


# The handler imports the audit's modules after it has started the fd walk (the helpers walk
# on other CPUs meanwhile: agent/host/prefetch.py); the parser is built for --help too.


def _load(paths: list[str], today: dt.date) -> PolicySet | int:
    """The policies to audit, or the exit status after saying why there are none."""
    from agent.audit_policies import load_for_audit  # noqa: PLC0415 - after the walk has started

    found = load_for_audit(paths, today)
    for problem in found.usage:
        print(f"hostguard: {problem}", file=sys.stderr)
    if found.usage:
        return EXIT_USAGE
    for diag in found.tolerated:
        print(f"hostguard: warning: {diag} (audited without it)", file=sys.stderr)
    if found.refused:
        for diag in found.errors:
            print(diag, file=sys.stderr)
        if not found.files:
            print("hostguard: no policy files found", file=sys.stderr)
        elif not found.errors:
            print("hostguard: no policy checks found", file=sys.stderr)
        print("hostguard: invalid policy, nothing audited", file=sys.stderr)
        return EXIT_USAGE
    return found.policy_set


def _default_policies() -> list[str] | int:
    """The policies of an audit that names none (said on stderr), or the exit status."""
    try:
        found = shipped.default_policies()
    except shipped.NotShipped as exc:
        print(f"hostguard: no --policy given and {exc}", file=sys.stderr)
        return EXIT_USAGE
    if found == shipped.SYSTEM_POLICIES:
        print(f"hostguard: no --policy given: auditing with {found}", file=sys.stderr)
    else:
        print(f"hostguard: no --policy given and no {shipped.SYSTEM_POLICIES}: auditing with "
              f"the policies shipped with hostguard ({found})", file=sys.stderr)
    return [str(found)]


def _audit(args: argparse.Namespace) -> int:
    from agent.host import prefetch  # noqa: PLC0415 - the parser is built for --help too

    if args.policy is None:
        found = _default_policies()
        if isinstance(found, int):
            return found
        args.policy = found
    # Before the imports and the policy load: the helpers walk on other CPUs meanwhile.
    prefetched = prefetch.start(args.root, args.policy)
    try:
        return _audit_with(args, prefetched)
    finally:
        if prefetched is not None:
            prefetched.cancel()


def _audit_with(args: argparse.Namespace, prefetched: FdWalk | None) -> int:
    from agent import audit  # noqa: PLC0415 - after the walk has started
    from agent.report import json as json_report  # noqa: PLC0415 - after the walk has started
    from agent.report import text as text_report  # noqa: PLC0415 - after the walk has started

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
        from agent.host.dump_cache import DumpCache  # noqa: PLC0415 - deep checks only

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
    to = sys.stdout if args.output is None else None
    rendered = (json_report.render(result) if args.format == "json"
                else text_report.render(result, args.verbose, color=use_color(args.color, to)))
    if args.output is None:
        sys.stdout.write(rendered)
        if args.format == "json" and result.not_evaluated:
            # The JSON keeps stdout; the verdict that nothing was checked must still be seen.
            sys.stderr.write(f"hostguard: {text_report.applicability(result)}")
    else:
        try:
            write_atomic(args.output, rendered.encode("utf-8", "backslashreplace"))
        except OSError as exc:
            print(f"hostguard: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
        sys.stdout.write(text_report.render(result, args.verbose,
                                            color=use_color(args.color, sys.stdout)))
        say_wrote(args.output)
    paths: list[Path] = []
    if args.report is not None:
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
            say_wrote(path, to=stream)
    if sys.stdout.isatty() and (args.format == "text" or args.output is not None):
        print(next_step(args, paths) or "", end="")  # a hint for people, not for logs
    return audit.exit_code(result)


def next_step(args: argparse.Namespace, reports: list[Path]) -> str | None:
    """After the summary: the command that writes the HTML report (from the JSON result just
    written, else how to have both written); None when the HTML report was written."""
    formats = args.report or []
    if "html" in formats:
        return None
    if args.format == "json" and args.output is not None:
        result = args.output
    elif "json" in formats:
        result = reports[formats.index("json")]
    else:
        return ("next: --report html,json writes the HTML report and the JSON result "
                "(into reports/)\n")
    page = shlex.quote(str(result.with_suffix(".html")))
    return f"next: hostguard report render {shlex.quote(str(result))} -o {page}\n"
