"""``hostguard report ...``: render and merge audit reports off the host.

Each command registers its parser through a function appended to ``_COMMANDS``; a parser sets
``set_defaults(handler=...)``, and a handler returns the exit status.

``hostguard report`` has subcommands of its own: each registers through a function
``_add_<name>(rsub)`` appended to ``_REPORT_COMMANDS`` (``render`` here; ``merge`` beside it).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from agent.cli.args import add_color, use_color
from agent.cli.output import say_wrote, write_output
from agent.cli.render import RUN_FORMATS, extensions, format_of, rendered
from agent.report.load import ResultLoadError, load_run, validate
from agent.result import AuditRun

if TYPE_CHECKING:
    from agent.report.fleet import CheckInfo, HostView

EXIT_USAGE = 2
T = TypeVar("T")

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
    return _read(path, load_run)


def _read(path: str, load: Callable[[Any], T]) -> T | str:
    """``load`` of the JSON in file ``path`` (``-`` for stdin), or the message saying why that
    is unusable (``load`` raises ``ResultLoadError``)."""
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
        return load(data)
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
    render.add_argument("--format", choices=RUN_FORMATS,
                        help="default: what -o's extension names (.html, .junit.xml, .txt ...)")
    render.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="write here (atomically, mode 0640) instead of stdout")
    render.add_argument("--baseline", metavar="PREVIOUS.json",
                        help="html only: add a drift section against this earlier result")
    render.add_argument("--verbose", "-v", action="store_true",
                        help="text only: list passing checks too")
    add_color(render)
    render.set_defaults(handler=_render)


def _render(args: argparse.Namespace) -> int:
    if args.format is None:
        args.format = None if args.output is None else format_of(args.output)
        if args.format is None:
            where = ("" if args.output is None
                     else f" ({args.output.name}: not one of {extensions()})")
            print(f"hostguard: give --format, or -o FILE whose extension names the format{where}",
                  file=sys.stderr)
            return EXIT_USAGE
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
    color = use_color(args.color, sys.stdout if args.output is None else None)
    data = rendered(run, args.format, args.verbose, baseline, color=color)
    if isinstance(data, str):
        print(f"hostguard: {data}", file=sys.stderr)
        return EXIT_USAGE
    error = write_output(data, args.output, 0o640)
    if error is not None:
        print(f"hostguard: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.output is not None:
        say_wrote(args.output)
    return 0


_COMMANDS.append(_add_report)
_REPORT_COMMANDS.append(_add_render)


def _add_merge(rsub: Any) -> None:
    merge = rsub.add_parser("merge", help="one HTML page across hosts from their result JSONs",
                            description="Merge hostguard/result/v1 JSON files into one "
                            "self-contained fleet page: the fleet verdict and scores, a host x "
                            "check matrix (worst hosts and most failed checks first), failure "
                            "counts per check, a section per host. Hosts are told apart by "
                            "hostname and machine id. "
                            "Exit 0 written, 2 unusable input or arguments.")
    merge.add_argument("results", nargs="+", metavar="RESULT.json")
    merge.add_argument("-o", "--output", type=Path, metavar="FILE",
                       help="write the page here (atomically, mode 0640) instead of stdout")
    merge.set_defaults(handler=_merge)


PARALLEL_FROM = 8
"""Result files from which ``merge`` reads them in worker processes (one per usable CPU)."""
CHUNKS_PER_WORKER = 32
"""Shares of the files per worker: a free worker takes the next, so the workers end at most a
small share apart (the page waits for the last)."""


def _viewed(path: str, named: set[str]) -> tuple[HostView, dict[str, CheckInfo]] | str:
    """A result file as the fleet page keeps it, and the checks it names that are not in
    ``named`` (which it adds them to), or the message saying why it is unusable. The page keeps
    the first naming of each check in file order, so a reader that sees the files in that order
    need not name a check twice (run in a worker process: only the small view travels back)."""
    from agent.report import fleet  # noqa: PLC0415 - keeps `report --help` light

    document = _read(path, _validated)
    if isinstance(document, str):
        return document
    checks = fleet.checks(document, named)
    named.update(checks)
    return fleet.view(document), checks


def _validated(data: Any) -> dict[str, Any]:
    """``data`` if it is a valid result document (``load.validate``); the fleet page reads it
    as it is, without rebuilding the run."""
    validate(data)
    document: dict[str, Any] = data
    return document


_NAMED: set[str] = set()
"""The checks this worker process has named to the page (``_viewed``)."""


def _forget() -> None:
    """Start a worker process with no check named, and what it inherited (modules, the
    environment) out of the garbage collector's reach: the collections that each parsed file's
    many objects set off then walk only what the worker made."""
    _NAMED.clear()
    gc.freeze()


def _viewed_here(path: str) -> tuple[HostView, dict[str, CheckInfo]] | str:
    """``_viewed`` in a worker process, which reads its share of the files in order (a chunk
    after the other, each from its start)."""
    return _viewed(path, _NAMED)


def _views(paths: Sequence[str]) -> Iterator[tuple[HostView, dict[str, CheckInfo]] | str]:
    """``_viewed`` of each path, in order: parsing and validating a thousand files is most of a
    merge, so they are spread over the usable CPUs (stdin is read here)."""
    workers = min(len(os.sched_getaffinity(0)), len(paths))
    if workers < 2 or len(paths) < PARALLEL_FROM or "-" in paths:
        named: set[str] = set()
        yield from (_viewed(path, named) for path in paths)
        return
    from concurrent.futures import ProcessPoolExecutor  # noqa: PLC0415 - large merges only

    with ProcessPoolExecutor(workers, initializer=_forget) as pool:
        yield from pool.map(_viewed_here, paths,
                            chunksize=max(1, len(paths) // (workers * CHUNKS_PER_WORKER)))


def _merge(args: argparse.Namespace) -> int:
    from agent.report import fleet  # noqa: PLC0415 - keeps `report --help` light

    page = fleet.Fleet()
    results = 0
    failed = False
    for viewed in _views(args.results):  # the page keeps only what it shows of each result
        if isinstance(viewed, str):
            print(f"hostguard: {viewed}", file=sys.stderr)
            failed = True
        elif not failed:
            page.add_view(*viewed)
            results += 1
    if failed:  # every unusable file named, nothing written
        return EXIT_USAGE
    error = write_output(page.render().encode("utf-8", "backslashreplace"), args.output, 0o640)
    if error is not None:
        print(f"hostguard: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.output is not None:
        say_wrote(args.output, f" (fleet page of {len(page.current())} host(s) from {results} "
                  "result(s))")
    return 0


_REPORT_COMMANDS.append(_add_merge)
