"""A run in any report format: what ``report render`` and ``history show`` print or write.

A renderer's module is imported only when its format is asked for (Jinja2 for html).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from agent.report.writer import EXTENSIONS, FORMATS

if TYPE_CHECKING:
    from agent.result import AuditRun

RUN_FORMATS = (*sorted(FORMATS), "text")
"""The report file formats, and ``text`` (the terminal's)."""
_BY_EXTENSION = sorted([(f".{ext}", name) for name, ext in EXTENSIONS.items()] + [(".txt", "text")],
                       key=lambda pair: -len(pair[0]))
"""(suffix, format), longest suffix first (``.junit.xml`` before a shorter one)."""


def format_of(path: Path) -> str | None:
    """The format a file name's extension names (``r.junit.xml`` -> ``junit``), or None."""
    name = path.name.lower()
    return next((fmt for suffix, fmt in _BY_EXTENSION
                 if name.endswith(suffix) and len(name) > len(suffix)), None)


def extensions() -> str:
    """The extensions :func:`format_of` knows, for messages: ``.html, .json, ...``."""
    return ", ".join(sorted(suffix for suffix, _ in _BY_EXTENSION))


def html_renderer() -> Callable[..., str] | str:
    """``agent.report.html.render``, imported only when asked for (or why it is missing)."""
    try:
        module = importlib.import_module("agent.report.html")
    except ModuleNotFoundError as exc:
        if exc.name != "agent.report.html":
            raise
        return "html reports are not available in this build (agent/report/html.py is missing)"
    render: Callable[..., str] = module.render
    return render


def rendered(run: AuditRun, fmt: str, verbose: bool = False,
             baseline: AuditRun | None = None, *, color: bool = False) -> bytes | str:
    """``run`` in ``fmt`` (one of :data:`RUN_FORMATS`) as bytes, or why it cannot be (a str).

    ``verbose`` lists passing checks too and ``color`` paints status and severity (text only);
    ``baseline`` adds a drift section (html only)."""
    body: str | bytes
    if fmt == "text":
        from agent.report import text  # noqa: PLC0415 - renderers load on demand

        body = text.render(run, verbose, color=color)
    elif fmt == "html":
        html = html_renderer()
        if isinstance(html, str):
            return html
        body = html(run, baseline) if baseline is not None else html(run)
    else:
        body = FORMATS[fmt][1](run)
    return body if isinstance(body, bytes) else body.encode("utf-8", "backslashreplace")
