"""Where a command's output goes: stdout, or a file replaced atomically (``-o FILE``)."""

from __future__ import annotations

import sys
from pathlib import Path

from agent.core.atomic import write_atomic


def write_output(data: bytes, output: Path | None, mode: int) -> str | None:
    """``data`` to stdout as it is, or atomically to ``output`` with ``mode``; None when written,
    else why not (``cannot write FILE: reason``)."""
    if output is None:
        sys.stdout.flush()  # what was printed before comes first
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return None
    try:
        write_atomic(output, data, mode=mode)
    except OSError as exc:
        return f"cannot write {output}: {exc.strerror or exc}"
    return None
