"""Where a command's words go: its output to stdout or a file replaced atomically (``-o FILE``),
why it cannot go on to stderr."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from agent.core.atomic import write_atomic
from agent.core.diagnostic import Diagnostic


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


def say_invalid(diagnostics: Iterable[Diagnostic], verdict: str) -> None:
    """A document that cannot be used, on stderr: each of its diagnostics, then
    ``hostguard: verdict``."""
    for diagnostic in diagnostics:
        print(diagnostic, file=sys.stderr)
    print(f"hostguard: {verdict}", file=sys.stderr)
