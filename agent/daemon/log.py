"""Structured event logs: one ``key=value`` line per event on stderr.

No timestamps: journald adds them (and the unit, pid, boot). Values that are not plain tokens are
written as JSON strings, so host data (process names, paths) cannot forge a line or a field.
Under journald (``$JOURNAL_STREAM`` names our stderr) each line carries a ``<N>`` priority prefix.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from collections.abc import Mapping
from typing import IO

_PLAIN = re.compile(r"[A-Za-z0-9_.:/@+,%=-]{1,200}")
_PRIORITY = {"error": 3, "warning": 4, "info": 6, "debug": 7}
_lock = threading.Lock()


def _journal_stream(stream: IO[str]) -> bool:
    wanted = os.environ.get("JOURNAL_STREAM", "")
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return wanted == f"{info.st_dev}:{info.st_ino}"


def value(raw: object) -> str:
    """One field value: bare when it is a plain token, else a JSON string."""
    text = raw if isinstance(raw, str) else str(raw)
    if _PLAIN.fullmatch(text) and not text.startswith("="):
        return text
    return json.dumps(text, ensure_ascii=True)


def line(event: str, level: str = "info", extra: Mapping[str, object] | None = None,
         **fields: object) -> str:
    """``event=NAME level=LEVEL key=value ...`` (no newline); ``extra`` fields come last."""
    parts = [f"event={value(event)}", f"level={level}"]
    items = [*fields.items(), *(extra or {}).items()]
    parts += [f"{value(k)}={value(v)}" for k, v in items if v is not None]
    return " ".join(parts)


def log(event: str, level: str = "info", extra: Mapping[str, object] | None = None,
        **fields: object) -> None:
    """Write one event line to stderr."""
    text = line(event, level, extra, **fields)
    stream = sys.stderr
    if _journal_stream(stream):
        text = f"<{_PRIORITY.get(level, 6)}>{text}"
    with _lock:
        try:
            stream.write(text + "\n")
            stream.flush()
        except (OSError, ValueError):  # stderr gone: nothing better to do
            pass
