"""Report files: ``<hostname>-<UTC timestamp>.<ext>``, written atomically, the newest N kept.

``FORMATS`` maps a format name to its file extension and renderer; ``write_reports`` renders every
requested format first (a renderer bug leaves no file behind), then writes each file atomically
(temp file, fsync, rename, folder fsync; mode 0640) and prunes older files of the same host and
format when ``keep`` is given.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agent.core.atomic import write_atomic
from agent.core.registry import LazyRegistry

if TYPE_CHECKING:
    from agent.result import AuditRun

Renderer = Callable[["AuditRun"], str | bytes]

_FORMATS: dict[str, tuple[str, str]] = {
    "html": ("html", "agent.report.html:render"),
    "json": ("json", "agent.report.json:render"),
    "junit": ("junit.xml", "agent.report.junit:render"),
    "sarif": ("sarif", "agent.report.sarif:render"),
}
"""Format name -> (file extension, ``module:function`` that renders it)."""

EXTENSIONS: Mapping[str, str] = {name: extension for name, (extension, _) in _FORMATS.items()}
"""Format name -> file extension, without importing any renderer."""

FORMATS: Mapping[str, tuple[str, Renderer]] = LazyRegistry(
    {name: render for name, (_, render) in _FORMATS.items()},
    lambda name, render: (_FORMATS[name][0], render))
"""Format name -> (file extension, renderer); a renderer's module (Jinja2 for html) is
imported when that format is looked up, so listing the names costs nothing."""

_STAMP = re.compile(r"\d{8}T\d{6}Z")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_stem(hostname: str) -> str:
    """The hostname as a safe file-name part: host data never chooses a folder or a dot-file."""
    safe = _UNSAFE.sub("_", hostname).lstrip(".")[:64]
    return safe or "unknown"


def timestamp(started: str) -> str:
    """``2026-11-24T19:32:18Z`` -> ``20261124T193218Z`` (UTC)."""
    moment = dt.datetime.fromisoformat(started.replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y%m%dT%H%M%SZ")


def report_name(run: AuditRun, extension: str) -> str:
    """``<hostname>-<UTC timestamp>.<ext>``."""
    return f"{file_stem(run.host.hostname)}-{timestamp(run.started)}.{extension}"


def write_reports(run: AuditRun, formats: Sequence[str], output_dir: Path,
                  keep: int | None = None) -> list[Path]:
    """Write one file per format; return their paths in the order of ``formats``.

    Raises ``KeyError`` for an unknown format (before anything is written), ``ValueError`` for a
    ``keep`` below 1, and ``OSError`` when a file cannot be written (files already written stay,
    each one complete; the previous file of the same name stays intact).
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise KeyError(f"unknown report format {unknown[0]!r} (available: "
                       f"{', '.join(sorted(FORMATS))})")
    if keep is not None and keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    rendered: list[tuple[Path, bytes]] = []
    for name in dict.fromkeys(formats):
        extension, render = FORMATS[name]
        body = render(run)
        data = body if isinstance(body, bytes) else body.encode("utf-8", "backslashreplace")
        rendered.append((output_dir / report_name(run, extension), data))
    written = []
    for path, data in rendered:
        write_atomic(path, data, mode=0o640)
        written.append(path)
    if keep is not None:
        for name in dict.fromkeys(formats):
            prune(output_dir, run.host.hostname, FORMATS[name][0], keep, set(written))
    return written


def prune(output_dir: Path, hostname: str, extension: str, keep: int,
          protect: set[Path] | None = None) -> list[Path]:
    """Delete all but the newest ``keep`` reports of ``hostname`` with ``extension``.

    Only files named exactly ``<hostname>-<stamp>.<ext>`` are touched (never another host's,
    never another format's); files in ``protect`` are never deleted. Returns what was deleted.
    """
    pattern = re.compile(rf"{re.escape(file_stem(hostname))}-({_STAMP.pattern})"
                         rf"\.{re.escape(extension)}")
    found = sorted(((m.group(1), entry.name) for entry in os.scandir(output_dir)
                    if (m := pattern.fullmatch(entry.name))
                    and entry.is_file(follow_symlinks=False)), reverse=True)
    deleted = []
    for _, name in found[keep:]:
        path = output_dir / name
        if protect and path in protect:
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            deleted.append(path)
    return deleted
