"""``hostguard report ...``: render and merge audit reports off the host.

Each command registers its parser through a function appended to ``_COMMANDS``; a parser sets
``set_defaults(handler=...)``, and a handler returns the exit status.

``hostguard report`` has subcommands of its own: each registers through a function
``_add_<name>(rsub)`` appended to ``_REPORT_COMMANDS`` (``render`` here; ``merge`` beside it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.cli.output import write_output
from agent.cli.render import RUN_FORMATS, rendered
from agent.report.load import ResultLoadError, load_run
from agent.result import AuditRun

EXIT_USAGE = 2

_COMMANDS: list[Any] = []
"""``_add_<name>(sub)``: one per top-level command."""

_REPORT_COMMANDS: list[Any] = []
"""``_add_<name>(rsub)``: one per ``hostguard report`` subcommand."""


def add_parsers(sub: Any) -> None:
    """Register this module's commands on the top-level subparsers ``sub``."""
    for add in _COMMANDS:
        add(sub)


def read_result(path: str) -> AuditRun | str:
    """A result JSON file (``-`` for stdin) as a run, or the message saying why it is unusable."""
    try:
        text = (sys.stdin.read() if path == "-"
                else Path(path).read_text(encoding="utf-8", errors="surrogateescape"))
    except OSError as exc:
        return f"{path}: cannot read: {exc.strerror or exc}"
    try:
        data = json.loads(text)
    except ValueError as exc:
        return f"{path}: not JSON: {exc}"
    try:
        return load_run(data)
    except ResultLoadError as exc:
        return f"{path}: {exc}"


def _add_report(sub: Any) -> None:
    report = sub.add_parser("report", help="render and merge audit reports off the host",
                            description="Work with hostguard/result/v1 JSON results: every "
                            "report form can be rendered from them again, on any machine.")
    rsub = report.add_subparsers(dest="report_command", required=True, metavar="SUBCOMMAND")
    for add in _REPORT_COMMANDS:
        add(rsub)


def _add_render(rsub: Any) -> None:
    render = rsub.add_parser("render", help="render a result JSON as html, junit, sarif, text "
                             "or json", description="Render a hostguard/result/v1 JSON file "
                             "(- for stdin). Exit 0 rendered, 2 unusable input or arguments.")
    render.add_argument("result", metavar="RESULT.json")
    render.add_argument("--format", choices=RUN_FORMATS, required=True)
    render.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="write here (atomically, mode 0640) instead of stdout")
    render.add_argument("--baseline", metavar="PREVIOUS.json",
                        help="html only: add a drift section against this earlier result")
    render.add_argument("--verbose", "-v", action="store_true",
                        help="text only: list passing checks too")
    render.set_defaults(handler=_render)


def _render(args: argparse.Namespace) -> int:
    if args.baseline is not None and args.format != "html":
        print("hostguard: --baseline applies to --format html only", file=sys.stderr)
        return EXIT_USAGE
    run = read_result(args.result)
    if isinstance(run, str):
        print(f"hostguard: {run}", file=sys.stderr)
        return EXIT_USAGE
    baseline = None if args.baseline is None else read_result(args.baseline)
    if isinstance(baseline, str):
        print(f"hostguard: {baseline}", file=sys.stderr)
        return EXIT_USAGE
    data = rendered(run, args.format, args.verbose, baseline)
    if isinstance(data, str):
        print(f"hostguard: {data}", file=sys.stderr)
        return EXIT_USAGE
    error = write_output(data, args.output, 0o640)
    if error is not None:
        print(f"hostguard: {error}", file=sys.stderr)
        return EXIT_USAGE
    return 0


_COMMANDS.append(_add_report)
_REPORT_COMMANDS.append(_add_render)


def _add_merge(rsub: Any) -> None:
    merge = rsub.add_parser("merge", help="one HTML page across hosts from their result JSONs",
                            description="Merge hostguard/result/v1 JSON files into one "
                            "self-contained fleet page: a host x check matrix, hosts ordered by "
                            "score (worst first), failure counts per check, a section per host. "
                            "Exit 0 written, 2 unusable input or arguments.")
    merge.add_argument("results", nargs="+", metavar="RESULT.json")
    merge.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                       help="the page to write (atomically, mode 0640)")
    merge.set_defaults(handler=_merge)


def _merge(args: argparse.Namespace) -> int:
    from agent.report import fleet  # noqa: PLC0415 - keeps `report --help` light

    runs: list[AuditRun] = []
    failed = False
    for path in args.results:
        run = read_result(path)
        if isinstance(run, str):
            print(f"hostguard: {run}", file=sys.stderr)
            failed = True
        else:
            runs.append(run)
    if failed:  # every unusable file named, nothing written
        return EXIT_USAGE
    page = fleet.render(runs)
    hosts = len(fleet.latest(runs)[0])
    error = write_output(page.encode("utf-8", "backslashreplace"), args.output, 0o640)
    if error is not None:
        print(f"hostguard: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"fleet page of {hosts} host(s) from {len(runs)} result(s) written to {args.output}")
    return 0


_REPORT_COMMANDS.append(_add_merge)
