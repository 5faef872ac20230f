"""One walker of :mod:`agent.host.fdwalk`: the fd tables of the chunks of processes it takes.

The caller walks with :func:`take` in its own process; a helper is this file run as a script by
a fresh interpreter (``python -I -S fdwalk_helper.py PROC``): the standard library only and no
``site``, so it starts in a few milliseconds, shares no memory with the caller (a fork would
make the caller copy every page it writes meanwhile) and inherits nothing but three
descriptors:

- 0: its orders, a memfd: the chunk size and the pids (``array('q')``), complete before the
  first token is in the pipe (the helper waits for a token, then reads them);
- 3: the pipe of chunk tokens (4 bytes each), shared by every walker;
- 4: where the results go (:func:`encode`): each chunk's records as soon as it is walked (the
  caller may take them before the walk ends, :func:`decode_prefix`), the trailer at the end.

Each process is read through one descriptor of its ``/proc/PID`` folder (``O_PATH``): its fd
table and its start time then belong to the same process, since a folder opened before a pid is
reused still names the process that had it (reads through it fail once that one is gone). A
start time counts clock ticks, so a pid reused within one tick would go unnoticed: that takes a
wrap of the whole pid range in 10 ms, or a privileged ``ns_last_pid``/``clone3`` set_tid.
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
"""(socket inodes, errno of what could not be read or 0, start time or None if unreadable)."""


_EMPTY: frozenset[int] = frozenset()
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_PATH = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


def read_process(proc: str, pid: int) -> Record | None:
    """The sockets of process ``pid`` and its start time, both read through one descriptor of
    its folder; None when it is gone."""
    try:
        folder = os.open(f"{proc}/{pid}", _PATH)
    except OSError:
        return None
    try:
        stat = _stat(folder)
        if stat is None:
            return None
        started, zombie_leader = _parse_stat(stat)
        inodes, error = socket_inodes(folder)
        if zombie_leader and not inodes:
            inodes, error = _threads_sockets(folder, pid, error)
        return inodes, error, started
    finally:
        os.close(folder)


def table_of(base: str) -> tuple[frozenset[int], int]:
    """The sockets of the process at ``base`` (``/proc/PID``) without its start time, for a
    reader that has just read it; a process gone holds nothing."""
    try:
        folder = os.open(base, _PATH)
    except OSError as exc:
        return _EMPTY, 0 if exc.errno in GONE else exc.errno or errno.EIO
    try:
        inodes, error = socket_inodes(folder)
        if not inodes and (stat := _stat(folder)) is not None and _parse_stat(stat)[1]:
            inodes, error = _threads_sockets(folder, int(os.path.basename(base)), error)
        return inodes, error
    finally:
        os.close(folder)


def _stat(folder: int) -> bytes | None:
    """``stat`` of the open ``/proc/PID`` ``folder``; None when the process is gone, empty
    when it cannot be read otherwise."""
    try:
        fd = os.open("stat", os.O_RDONLY | os.O_CLOEXEC, dir_fd=folder)
    except OSError as exc:
        return None if exc.errno in GONE else b""
    try:
        return os.read(fd, 4096)
    except OSError as exc:
        return None if exc.errno in GONE else b""
    finally:
        os.close(fd)


def _parse_stat(text: bytes) -> tuple[int | None, bool]:
    """(field 22, the start time in clock ticks after boot, or None; whether the process is a
    zombie leader with threads left, fields 3 and 20)."""
    rest = text[text.rfind(b")") + 1 :].split()  # comm may hold spaces and ')'
    try:
        return int(rest[19]), rest[0] == b"Z" and int(rest[17]) > 1
    except (IndexError, ValueError):
        return None, False


def socket_inodes(folder: int, fds: str = "fd") -> tuple[frozenset[int], int]:
    """The sockets among ``fds`` of the open ``/proc/PID`` ``folder``, and the errno of what
    could not be read (0: everything was; a process gone holds nothing)."""
    try:
        fd_folder = os.open(fds, _DIR, dir_fd=folder)
    except OSError as exc:
        return _EMPTY, 0 if exc.errno in GONE else exc.errno or errno.EIO
    try:
        try:
            names = os.listdir(fd_folder)
        except OSError as exc:
            return _EMPTY, 0 if exc.errno in GONE else exc.errno or errno.EIO
        inodes: set[int] | None = None
        error = 0
        readlink = os.readlink  # relative to the open folder: no path walk per descriptor
        for name in names:
            try:
                link = readlink(name, dir_fd=fd_folder)
            except OSError as exc:
                if exc.errno not in GONE:  # EACCES: an owner we cannot see, not "no socket"
                    error = exc.errno or errno.EIO
                continue  # ENOENT: closed between listing and reading
            if link[:8] == "socket:[":
                inode = link[8:-1]
                if inode.isascii() and inode.isdigit():
                    if inodes is None:
                        inodes = set()
                    inodes.add(int(inode))
        return (_EMPTY if inodes is None else frozenset(inodes)), error
    finally:
        os.close(fd_folder)


def _threads_sockets(folder: int, pid: int, error: int) -> tuple[frozenset[int], int]:
    """A zombie leader's open files are its live threads' (``fd/`` of the leader is empty once
    it has exited): the union of their tables."""
    try:
        task = os.open("task", _DIR, dir_fd=folder)
    except OSError:
        return _EMPTY, error
    try:
        tids = [t for t in os.listdir(task) if t.isascii() and t.isdigit() and t != str(pid)]
    except OSError:
        tids = []
    finally:
        os.close(task)
    inodes: set[int] = set()
    for tid in tids:
        found, failed = socket_inodes(folder, f"task/{tid}/fd")
        inodes |= found
        error = error or failed
    return frozenset(inodes), error


def take(tokens: int, proc: str, pids: Sequence[int] | None, size: int, *,
         orders: int = -1, out: int = -1) -> dict[int, Record]:
    """Walk chunk after chunk until the tokens run out; a helper (``pids`` None) reads its
    ``orders`` (the chunk size and pids) once the first token has come, and writes each
    chunk's records to ``out`` once it is walked (returning nothing)."""
    found: dict[int, Record] = {}
    while len(token := os.read(tokens, TOKEN)) == TOKEN:
        if pids is None:
            size, pids = _orders(orders)
        start = int.from_bytes(token, "little") * size
        chunk: dict[int, Record] = {}
        for pid in pids[start : start + size]:
            record = read_process(proc, pid)
            if record is not None:
                chunk[pid] = record
        if out >= 0:
            _write_all(out, encode(chunk))
        else:
            found.update(chunk)
    return found


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _orders(fd: int) -> tuple[int, Sequence[int]]:
    values = array("q")
    values.frombytes(os.pread(fd, os.fstat(fd).st_size, 0))
    return values[0], values[1:]


def encode(found: dict[int, Record]) -> bytes:
    """pid, start time (-1: none), errno, count, the inodes..., for each record (a helper's
    results are these for each chunk, then :data:`TRAILER_BYTES`)."""
    out = array("q")
    for pid, (inodes, error, started) in found.items():
        out.extend((pid, -1 if started is None else started, error, len(inodes)))
        out.extend(inodes)
    return out.tobytes()


TRAILER_BYTES = array("q", [TRAILER]).tobytes()
"""The end of a helper's results: whatever has no trailer is incomplete."""


def decode_prefix(raw: bytes) -> tuple[dict[int, Record], int]:
    """The whole records :func:`encode` wrote at the start of ``raw`` and how many bytes they
    take: a helper's results read while it still writes them end in the middle of one."""
    values = array("q")
    values.frombytes(raw[: len(raw) - len(raw) % values.itemsize])
    found: dict[int, Record] = {}
    at, end = 0, len(values)
    while at + 4 <= end:
        pid, started, error, count = values[at : at + 4]
        if pid == TRAILER or count < 0 or at + 4 + count > end:
            break
        found[pid] = (frozenset(values[at + 4 : at + 4 + count]), error,
                      None if started < 0 else started)
        at += 4 + count
    return found, at * values.itemsize


def decode(raw: bytes) -> dict[int, Record] | None:
    """A helper's whole results (records, then the trailer); None when incomplete or
    malformed."""
    found, used = decode_prefix(raw)
    return found if raw[used:] == TRAILER_BYTES else None


def main(argv: Sequence[str]) -> int:
    """The helper: wait for a token, read its orders on 0, walk, write the results to 4."""
    os.closerange(5, 1 << 20)  # anything the caller itself inherited and left inheritable
    take(3, argv[1], None, 0, orders=0, out=4)
    _write_all(4, TRAILER_BYTES)
    return 0


if __name__ == "__main__":
    # Nothing is left buffered (the results went out with os.write), and the caller waits for
    # this exit: the interpreter's teardown (freeing the walk) is skipped.
    os._exit(main(sys.argv))
