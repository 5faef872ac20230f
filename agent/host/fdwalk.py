"""The socket inodes among the open files of many processes, walked in parallel.

Mapping sockets to processes means one ``readlink`` per open descriptor of every process (``ss
-p`` does the same): on a busy host most of an audit's host read (29,600 links, about 50 ms, by
``benchmarks/audit_bench.py``). The time is the kernel's, and threads made it slower (78 ms with
two: every readlink gives up and takes back the GIL), so the extra walkers are helper processes
(:mod:`agent.host.fdwalk_helper`), one per further CPU the caller may run on (at most
:data:`MAX_HELPERS`).

:func:`walk` starts the helpers before the caller reads anything else of the processes; the
caller joins the walk with :meth:`Walk.finish` once it is done with the rest. Work is shared
through a pipe of chunk tokens: every walker takes the next chunk with one 4-byte read (atomic on
a pipe), so whoever is free takes more. Whatever no helper reported in full (spawn refused, a
helper killed, crashed or slower than :data:`HELPER_TIMEOUT`) the caller walks itself: the
result is always the serial walk's, only the time differs.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
from array import array
from collections.abc import Sequence
from typing import NamedTuple

from agent.host import fdwalk_helper as helper

MAX_HELPERS = 3
"""Helpers beyond the caller: the kernel's per-process locks and the caller's own share keep
more from paying off."""
MIN_PER_HELPER = 256
"""Processes per helper below which a helper costs more than it saves (it starts in about
6 ms of one CPU)."""
HELPER_TIMEOUT = 10.0
"""Seconds the caller waits for a helper after finishing its own share; then it is killed and
its processes walked again by the caller."""
_MAX_TOKENS = 4096
"""At most this many chunks (16 KiB of tokens): the pipe takes them all at once."""
_HELPER = os.path.abspath(helper.__file__)
_ENV = {name: os.environ[name] for name in ("LD_LIBRARY_PATH",) if name in os.environ}
"""All a helper inherits of the environment (``-I`` ignores the PYTHON* variables anyway)."""


class FdTable(NamedTuple):
    """The sockets among one process's open files (a named tuple: importing this module must
    not cost the dataclass machinery before the helpers start, see :mod:`agent.prefetch`)."""

    inodes: frozenset[int]
    """Inodes of the sockets it holds (``socket:[INODE]`` links)."""
    errno: int = 0
    """Why (some of) its descriptors could not be read (0: all were): owners may be missing."""
    start_time: int | None = None
    """The process's start time read just before (a stamped walk, see :func:`walk`): a process
    with another start time under the same pid is another process."""

    @property
    def error(self) -> str | None:
        """:attr:`errno` in words; None when every descriptor was read."""
        return os.strerror(self.errno) if self.errno else None


def socket_inodes(base: str) -> FdTable:
    """The sockets among ``base/fd`` (``base`` is ``/proc/PID``); a process gone has none."""
    return FdTable(*helper.socket_inodes(base))


def helpers_for(count: int) -> int:
    """How many helpers to start for ``count`` processes on the CPUs this process may use."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except OSError:
        cpus = 1
    return max(0, min(cpus - 1, MAX_HELPERS, count // MIN_PER_HELPER))


class Walk:
    """A walk of the fd tables of ``pids`` under ``proc``, shared with helper processes."""

    def __init__(self, proc: str, pids: Sequence[int] | None, helpers: int,
                 stamped: bool = False) -> None:
        self.proc = proc
        self.stamped = stamped
        """Every helper reads a process's start time before its fds (a walk started before the
        caller reads the processes: the caller then tells a pid reused since)."""
        self.helpers: list[tuple[int, int]] = []
        """(pid, results memfd) of every helper started."""
        self.tokens = -1
        orders: list[int] = []
        write_end = -1
        if helpers > 0 and sys.executable:
            with contextlib.suppress(OSError):  # no pipe: no helpers
                self.tokens, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            # The helpers start first: they load while ``proc`` is listed, then wait for orders.
            if write_end >= 0:
                orders = [fd for _ in range(helpers) if (fd := self._spawn()) >= 0]
            self.pids = sorted(_pids(proc)) if pids is None else list(pids)
            self.size = max(8, -(-len(self.pids) // _MAX_TOKENS))
            """Processes per chunk."""
            if write_end >= 0:
                chunks = -(-len(self.pids) // self.size)
                os.write(write_end, b"".join(i.to_bytes(helper.TOKEN, "little")
                                             for i in range(chunks)))
            text = array("q", [self.size, int(stamped), *self.pids]).tobytes()
            for fd in orders:
                with contextlib.suppress(OSError):  # a helper gone: its share is walked anyway
                    _write_all(fd, text)
        finally:
            for fd in orders:
                os.close(fd)
            if write_end >= 0:
                os.close(write_end)  # the last writer gone: an empty pipe reads as the end
        if not self.helpers and self.tokens >= 0:
            os.close(self.tokens)
            self.tokens = -1

    def _spawn(self) -> int:
        """Start a helper; the write end of its orders pipe, or -1."""
        out = orders = inbox = -1
        try:
            inbox, orders = os.pipe2(os.O_CLOEXEC)
            out = os.memfd_create("hostguard-fdwalk", os.MFD_CLOEXEC)
            pid = os.posix_spawn(
                sys.executable, [sys.executable, "-I", "-S", _HELPER, self.proc], _ENV,
                file_actions=[(os.POSIX_SPAWN_DUP2, inbox, 0),
                              (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                              (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
                              (os.POSIX_SPAWN_DUP2, self.tokens, 3),
                              (os.POSIX_SPAWN_DUP2, out, 4)])
        except OSError:
            for fd in (out, orders):
                if fd >= 0:
                    os.close(fd)
            return -1
        finally:
            if inbox >= 0:
                os.close(inbox)
        self.helpers.append((pid, out))
        return orders

    def cancel(self) -> None:
        """Stop the helpers and drop the walk (the caller no longer needs it)."""
        for pid, out in self.helpers:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            os.close(out)
        self.helpers = []
        if self.tokens >= 0:
            os.close(self.tokens)
            self.tokens = -1

    def finish(self) -> dict[int, FdTable]:
        """Walk the chunks left, collect the helpers' results, walk what they did not report."""
        found: dict[int, FdTable] = {}
        if self.tokens >= 0:
            # The caller's own share: walked now, after it read the processes (no stamp).
            mine = helper.take(self.tokens, self.proc, self.pids, self.size, False)
            found.update((pid, FdTable(*record)) for pid, record in mine.items())
        for child, out in self.helpers:
            try:
                if _wait(child, HELPER_TIMEOUT):
                    theirs = helper.decode(os.pread(out, os.fstat(out).st_size, 0)) or {}
                    found.update((pid, FdTable(*record)) for pid, record in theirs.items()
                                 if pid not in found)
            finally:
                os.close(out)
        self.helpers = []
        if self.tokens >= 0:
            os.close(self.tokens)
            self.tokens = -1
        for pid in self.pids:
            if pid not in found:
                found[pid] = socket_inodes(f"{self.proc}/{pid}")
        return found


def estimate(proc: str) -> int:
    """About how many processes ``proc`` shows, without listing it: procfs counts them in its
    root's link count (a plain folder counts its subfolders); 0 when it cannot be read."""
    try:
        return max(0, os.stat(proc).st_nlink - 2)
    except OSError:
        return 0


def _pids(proc: str) -> list[int]:
    try:
        return [int(name) for name in os.listdir(proc) if name.isdigit()]
    except OSError:
        return []


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _wait(pid: int, timeout: float) -> bool:
    """Reap helper ``pid``; True when it exited with 0 within ``timeout`` seconds."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        pidfd = -1
    try:
        if pidfd >= 0:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            if not poller.poll(int(timeout * 1000)):
                os.kill(pid, signal.SIGKILL)
                if not poller.poll(1000):
                    return False  # stuck in the kernel: never block the audit on reaping it
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return False  # reaped by someone else: its result cannot be trusted to be complete
    finally:
        if pidfd >= 0:
            os.close(pidfd)
    return os.waitstatus_to_exitcode(status) == 0


def walk(proc: str, pids: Sequence[int] | None, helpers: int | None = None,
         stamped: bool = False) -> Walk:
    """Start walking the fd tables of ``pids`` under ``proc`` (None: every process there,
    listed once the helpers are starting; ``helpers``: how many to start, by default
    :func:`helpers_for`; ``stamped``: see :attr:`Walk.stamped`); :meth:`Walk.finish` or
    :meth:`Walk.cancel` ends it."""
    if helpers is None:
        helpers = helpers_for(len(pids) if pids is not None else estimate(proc))
    return Walk(proc, pids, helpers, stamped)
