"""Command line: the only place that parses argv or prints."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path

from agent import __version__, audit, cli_daemon, cli_report, cli_seccomp
from agent.atomic import write_atomic
from agent.lint import output
from agent.lint.diagnostic import Diagnostic
from agent.lint.documents import LINTERS
from agent.lint.engine import discover, lint_paths
from agent.policy.resolve import PolicySet, PolicyStore, resolve
from agent.policy.yamlload import Document
from agent.report import json as json_report
from agent.report import text as text_report
from agent.report import writer as report_writer

EXIT_USAGE = 2
AUDIT_TOLERATED = frozenset({"waiver-expired"})
"""Lint errors that do not stop an audit."""


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    lint.add_argument("--format", choices=sorted(output.FORMATS), default="text")
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
    lint.set_defaults(handler=_lint)
    aud.set_defaults(handler=_audit)
    cli_seccomp.add_parsers(sub)
    cli_report.add_parsers(sub)
    cli_daemon.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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


def _lint(args: argparse.Namespace) -> int:
    paths = args.paths or ["policies"]
    report = lint_paths(paths, args.today)
    sys.stdout.write(output.FORMATS[args.format](report))
    if args.format != "text":
        for usage in report.usage_errors:
            print(f"hostguard: {usage}", file=sys.stderr)
    return report.exit_code(args.strict)


def _load(paths: list[str], today: dt.date) -> PolicySet | int:
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
    result = audit.run(loaded, args.root, dict(args.label), today)
    rendered = (json_report.render(result) if args.format == "json"
                else text_report.render(result, args.verbose))
    if args.output is None:
        sys.stdout.write(rendered)
    else:
        try:
            write_atomic(args.output, rendered.encode("utf-8", "backslashreplace"))
        except OSError as exc:
            print(f"hostguard: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
        sys.stdout.write(text_report.render(result, args.verbose))
        print(f"report written to {args.output}")
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
            print(f"report written to {path}", file=stream)
    return audit.exit_code(result)
