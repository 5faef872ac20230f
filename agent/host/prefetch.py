"""Start the slowest part of an audit's host read before the audit knows it needs it.

``hostguard audit`` spends its first tens of milliseconds on one CPU, importing and loading
policies. When a policy file names the ``ports`` kind, the owners of the listening sockets
will be needed: a walk of every process's fd table (:mod:`agent.host.fdwalk`), most of the
host read on a busy host. That walk then starts at once, in helper processes, each process
read with its start time; the process table takes it over (:func:`agent.host.snapshot.take`),
walking again whatever started or reused a pid since, or cancels it when no check wants it.

The guess from the policy text only decides *when* the walk starts, never what is read or
reported: a wrong guess costs a cancelled walk, or the time it would have saved.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.host.fdwalk import FdWalk

PORTS_KIND = re.compile(rb"""\bkind["']?\s*:\s*["']?ports\b""")
"""``kind: ports`` in block or flow style, quoted or not (JSON too)."""
MAX_HINT_BYTES = 4 << 20
"""Policy text looked at for the hint at most; beyond it, no walk is started early."""
SUFFIXES = (".yaml", ".yml")


def names_ports(paths: Iterable[str]) -> bool:
    """Whether a policy file under ``paths`` (files, or folders searched as the audit does)
    seems to hold a ``ports`` check. Only regular files are read (a FIFO would block)."""
    budget = MAX_HINT_BYTES
    for path in _files(paths):
        text = _head(path, budget + 1)
        if PORTS_KIND.search(text):
            return True
        budget -= len(text)
        if budget < 0:
            return False
    return False


def _head(path: str, limit: int) -> bytes:
    """Up to ``limit`` bytes of ``path`` if it is a regular file, else nothing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        chunks: list[bytes] = []
        size = 0
        while size < limit and (chunk := os.read(fd, min(limit - size, 1 << 16))):
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _files(paths: Iterable[str]) -> Iterable[str]:
    for arg in paths:
        if not os.path.isdir(arg):
            yield arg
            continue
        for folder, subfolders, names in os.walk(arg):  # links not followed: a hint only
            subfolders.sort()
            yield from (os.path.join(folder, n) for n in sorted(names) if n.endswith(SUFFIXES))


def start(root: Path, paths: Iterable[str]) -> FdWalk | None:
    """A walk of ``root/proc``'s fd tables when the policies seem to want listeners and a
    helper would pay off; None otherwise."""
    if not names_ports(paths):
        return None
    from agent.host import fdwalk  # noqa: PLC0415 - only when a ports check is guessed

    proc = str(root / "proc")  # spelled as the process table spells it
    helpers = fdwalk.helpers_for(fdwalk.estimate(proc))
    if helpers == 0:
        return None
    walk = fdwalk.walk(proc, None, helpers)  # lists proc while the helpers start
    if not walk.helpers:  # nothing started: the process table walks in its own time
        walk.cancel()
        return None
    return fdwalk.FdWalk(early=walk)
