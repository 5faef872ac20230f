"""``hostguard lint``: policy files and folders checked for schema and semantic errors."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from agent.cli.args import date

FORMATS = ("github", "json", "sarif", "text")
"""``agent.lint.output.FORMATS``, named here so that building the parser (``--help`` too) does
not import the linter."""


def add_parsers(sub: Any) -> None:
    """Register ``lint`` on the top-level subparsers ``sub``."""
    lint = sub.add_parser("lint", help="check policies, seccomp profiles and the daemon "
                          "configuration for errors",
                          description="Lint policy files and folders (searched recursively for "
                          "*.yaml and *.yml). Exit 0 clean, 1 errors, 2 unusable arguments.")
    lint.add_argument("paths", nargs="*", metavar="PATH",
                      help="files or folders (default: policies)")
    lint.add_argument("--format", choices=FORMATS, default="text")
    lint.add_argument("--strict", action="store_true", help="warnings fail the lint too")
    lint.add_argument("--today", type=date, help="judge waiver expiry as of this date")
    lint.set_defaults(handler=_lint)


def _lint(args: argparse.Namespace) -> int:
    from agent.lint import output  # noqa: PLC0415 - the parser is built for --help too
    from agent.lint.engine import lint_paths  # noqa: PLC0415 - the parser is built for --help too

    paths = args.paths or ["policies"]
    report = lint_paths(paths, args.today)
    sys.stdout.write(output.FORMATS[args.format](report))
    if args.format != "text":
        for usage in report.usage_errors:
            print(f"hostguard: {usage}", file=sys.stderr)
    return report.exit_code(args.strict)
