"""One walker of :mod:`agent.host.fdwalk`: the fd tables of the chunks of processes it takes.

The caller walks with :func:`take` in its own process; a helper is this file run as a script by
a fresh interpreter (``python -I -S fdwalk_helper.py PROC``): the standard library only and no
``site``, so it starts in a few milliseconds, shares no memory with the caller (a fork would
make the caller copy every page it writes meanwhile) and inherits nothing but three
descriptors:

- 0: the chunk size, the stamped flag and the pids (``array('q')``), then the end (a pipe: the
  helper waits for them while the caller lists the processes);
- 3: the pipe of chunk tokens (4 bytes each), shared by every walker;
- 4: where the results go (:func:`encode`), written once at the end.
"""

from __future__ import annotations

import errno
import os
import sys
from array import array
from collections.abc import Sequence

GONE = (errno.ENOENT, errno.ESRCH)
TOKEN = 4
TRAILER = -1
Record = tuple[frozenset[int], int, int | None]
"""(socket inodes, errno of an fd that could not be read or 0, start time or None)."""
_NONE: Record = (frozenset(), 0, None)


def socket_inodes(base: str) -> tuple[frozenset[int], int]:
    """The sockets among ``base/fd`` (``base`` is ``/proc/PID``) and the errno of what could not
    be read (0: everything was; a process gone holds nothing)."""
    try:
        dir_fd = os.open(f"{base}/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        return frozenset(), 0 if exc.errno in GONE else exc.errno or errno.EIO
    try:
        try:
            fds = os.listdir(dir_fd)
        except OSError as exc:
            return frozenset(), 0 if exc.errno in GONE else exc.errno or errno.EIO
        inodes: set[int] = set()
        error = 0
        readlink = os.readlink  # relative to the open folder: no path walk per descriptor
        for fd in fds:
            try:
                link = readlink(fd, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno not in GONE:  # EACCES: an owner we cannot see, not "no socket"
                    error = exc.errno or errno.EIO
                continue  # ENOENT: closed between listing and reading
            if link[:8] == "socket:[":
                inode = link[8:-1]
                if inode.isdigit():
                    inodes.add(int(inode))
        return frozenset(inodes), error
    finally:
        os.close(dir_fd)


def start_time(base: str) -> int | None:
    """Field 22 of ``base/stat`` (clock ticks after boot); None when it cannot be read."""
    try:
        fd = os.open(f"{base}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        text = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    rest = text[text.rfind(b")") + 1 :].split()  # comm may hold spaces and ')'
    try:
        return int(rest[19])
    except (IndexError, ValueError):
        return None


def take(tokens: int, proc: str, pids: Sequence[int], size: int,
         stamped: bool) -> dict[int, Record]:
    """Walk chunk after chunk of ``pids`` until the tokens run out (``stamped``: each with its
    start time read first; a process whose stat is gone is left out)."""
    found: dict[int, Record] = {}
    while len(token := os.read(tokens, TOKEN)) == TOKEN:
        start = int.from_bytes(token, "little") * size
        for pid in pids[start : start + size]:
            base = f"{proc}/{pid}"
            started = None
            if stamped and (started := start_time(base)) is None:
                continue
            inodes, error = socket_inodes(base)
            found[pid] = (inodes, error, started) if inodes or error or stamped else _NONE
    return found


def encode(found: dict[int, Record]) -> bytes:
    """pid, start time (-1: none), errno, count, the inodes..., for each; then the trailer."""
    out = array("q")
    for pid, (inodes, error, started) in found.items():
        out.extend((pid, -1 if started is None else started, error, len(inodes)))
        out.extend(inodes)
    out.append(TRAILER)
    return out.tobytes()


def decode(raw: bytes) -> dict[int, Record] | None:
    """What :func:`encode` wrote; None when it is incomplete or malformed."""
    values = array("q")
    if len(raw) % values.itemsize:
        return None
    values.frombytes(raw)
    if not values or values[-1] != TRAILER:
        return None
    found: dict[int, Record] = {}
    at, end = 0, len(values) - 1
    while at + 4 <= end:
        pid, started, error, count = values[at : at + 4]
        if count < 0 or at + 4 + count > end:
            return None
        found[pid] = (frozenset(values[at + 4 : at + 4 + count]), error,
                      None if started < 0 else started)
        at += 4 + count
    return found if at == end else None


def main(argv: Sequence[str]) -> int:
    """The helper: read its orders on 0, walk, write the results to 4."""
    chunks = []
    while chunk := os.read(0, 1 << 16):
        chunks.append(chunk)
    orders = array("q")
    orders.frombytes(b"".join(chunks))
    size, stamped, pids = orders[0], bool(orders[1]), orders[2:]
    os.write(4, encode(take(3, argv[1], pids, size, stamped)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
