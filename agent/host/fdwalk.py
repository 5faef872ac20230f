"""The socket inodes among the open files of many processes, walked in parallel.

Mapping sockets to processes means one ``readlink`` per open descriptor of every process (``ss
-p`` does the same): on a busy host most of an audit's host read (``benchmarks/audit_bench.py``
shows how much). The time is the kernel's, and threads made it slower (every readlink gives up
and takes back the GIL), so the extra walkers are helper processes
(:mod:`agent.host.fdwalk_helper`), one per further CPU the caller may run on (at most
:data:`MAX_HELPERS`).

:func:`walk` starts the helpers before the caller reads anything else of the processes; the
caller may take what they have walked so far with :meth:`Walk.ready` (a helper writes each chunk
as soon as it is walked), and joins the walk with :meth:`Walk.finish` once it is done with the
rest. Work is shared through a pipe of chunk tokens: every walker takes the next chunk with one
4-byte read (atomic on a pipe), so whoever is free takes more. Every process is read with its
start time, through one descriptor of its folder (see :mod:`agent.host.fdwalk_helper`), so the
caller can tell whether the fd table is that of the process it read. Whatever no helper reported
in full (spawn refused, a helper killed, crashed or slower than :data:`HELPER_TIMEOUT`) the
caller walks itself: the result is always the serial walk's, only the time differs.

Callers above the process table never see a :class:`Walk`: they make an :class:`FdWalk` (how
many helpers, a walk started early, work to do meanwhile) and hand it down as one argument.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import sys
import time
from array import array
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from agent.host import fdwalk_helper as helper

if TYPE_CHECKING:
    from agent.host.processes import ProcessTable

MAX_HELPERS = 3
"""Helpers beyond the caller: the kernel's per-process locks and the caller's own share keep
more from paying off."""
MIN_PER_HELPER = 256
"""Processes per helper below which a helper costs more than it saves (starting one takes
a Python interpreter's start-up on another CPU)."""
HELPER_TIMEOUT = 10.0
"""Seconds the caller waits for all helpers once it has finished its own share; then they are
killed and their processes walked again by the caller."""
_MIN_FD = 5
"""The descriptors handed to a helper are moved at or above this first: a caller started with
0, 1 or 2 closed could otherwise hold one of them in the very slots the helper's are put in."""
_HELPER = os.path.abspath(helper.__file__)
_ENV = {name: os.environ[name] for name in ("LD_LIBRARY_PATH",) if name in os.environ}
"""All a helper inherits of the environment (``-I`` ignores the PYTHON* variables anyway)."""


class FdTable(NamedTuple):
    """The sockets among one process's open files (a named tuple: importing this module must
    not cost the dataclass machinery before the helpers start, see :mod:`agent.host.prefetch`)."""

    inodes: frozenset[int]
    """Inodes of the sockets it holds (``socket:[INODE]`` links)."""
    errno: int = 0
    """Why (some of) its descriptors could not be read (0: all were): owners may be missing."""
    start_time: int | None = None
    """Start time of the process whose table this is (None: its ``stat`` was unreadable):
    another start time under the same pid is another process."""

    @property
    def error(self) -> str | None:
        """:attr:`errno` in words; None when every descriptor was read."""
        return os.strerror(self.errno) if self.errno else None


def socket_inodes(base: str) -> FdTable:
    """The fd table of the process at ``base`` (``/proc/PID``), without its start time (for
    a reader that has just read it; a process gone has none)."""
    return FdTable(*helper.table_of(base))


def read_one(proc: str, pid: int) -> FdTable | None:
    """The fd table of process ``pid`` under ``proc`` with its start time; None when gone."""
    record = helper.read_process(proc, pid)
    return None if record is None else FdTable(*record)


def helpers_for(count: int) -> int:
    """How many helpers to start for ``count`` processes on the CPUs this process may use."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except OSError:
        cpus = 1
    return max(0, min(cpus - 1, MAX_HELPERS, count // MIN_PER_HELPER))


class _Helper(NamedTuple):
    pid: int
    out: int
    """The memfd its results are written to."""


class Walk:
    """A walk of the fd tables of ``pids`` under ``proc``, shared with helper processes."""

    def __init__(self, proc: str, pids: Sequence[int] | None, helpers: int) -> None:
        self.proc = proc
        self.helpers: list[_Helper] = []
        """Every helper started and not yet reaped."""
        self.tokens = -1
        self.pids: list[int] = []
        self.size = 8
        """Processes per chunk."""
        self._taken: dict[int, int] = {}
        """Helper pid -> how many bytes of its results :meth:`ready` has taken."""
        self._given: set[int] = set()
        """The pids whose tables :meth:`ready` has returned."""
        write_end = orders = -1
        try:
            if helpers > 0 and sys.executable:
                with contextlib.suppress(OSError):  # without a pipe or memfd, no helpers
                    read_end, write_end = os.pipe2(os.O_CLOEXEC)
                    self.tokens = _high(read_end)
                    orders = _high(os.memfd_create("hostguard-fdwalk-orders", os.MFD_CLOEXEC))
            if orders >= 0:
                # The helpers start first: they load while ``proc`` is listed, then wait for a
                # token, which comes once their orders are complete.
                for _ in range(helpers):
                    self._spawn(orders)
            self.pids = sorted(pids_in(proc)) if pids is None else list(pids)
            if self.helpers:
                try:
                    self._orders(orders, write_end)
                except OSError:  # no memory for them: no helpers, the caller walks alone
                    self.cancel()
        except BaseException:
            self.cancel()
            raise
        finally:
            for fd in (orders, write_end):
                if fd >= 0:
                    os.close(fd)  # the last writer gone: an empty pipe reads as the end
        if not self.helpers:
            self._close_tokens()

    def _orders(self, orders: int, write_end: int) -> None:
        """The helpers' orders, then the tokens: all at once (they fit the pipe)."""
        capacity = fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ) // helper.TOKEN
        self.size = max(8, -(-len(self.pids) // capacity))
        os.pwrite(orders, array("q", [self.size, *self.pids]).tobytes(), 0)
        chunks = -(-len(self.pids) // self.size)
        os.write(write_end, b"".join(i.to_bytes(helper.TOKEN, "little") for i in range(chunks)))

    def _spawn(self, orders: int) -> None:
        try:
            out = _high(os.memfd_create("hostguard-fdwalk", os.MFD_CLOEXEC))
        except OSError:
            return
        try:
            pid = os.posix_spawn(
                sys.executable, [sys.executable, "-I", "-S", _HELPER, self.proc], _ENV,
                file_actions=[(os.POSIX_SPAWN_DUP2, orders, 0),
                              (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                              (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
                              (os.POSIX_SPAWN_DUP2, self.tokens, 3),
                              (os.POSIX_SPAWN_DUP2, out, 4)])
        except OSError:
            os.close(out)
            return
        self.helpers.append(_Helper(pid, out))

    @property
    def own(self) -> frozenset[int]:
        """The helpers' pids: hostguard's own, never part of the host read."""
        return frozenset(child.pid for child in self.helpers)

    def cancel(self) -> None:
        """Stop the helpers and drop the walk (the caller no longer needs it)."""
        while self.helpers:
            _stop(self.helpers.pop(), reaped=False)
        self._close_tokens()

    def ready(self) -> dict[int, FdTable]:
        """The fd tables the helpers have written so far (whole records: a chunk may be caught
        while it is written), as :meth:`finish` gives them; it then leaves these out. Never
        waits."""
        found: dict[int, FdTable] = {}
        for child in self.helpers:
            raw = self._results(child)
            records, used = helper.decode_prefix(raw)
            self._taken[child.pid] = self._taken.get(child.pid, 0) + used
            found.update((pid, FdTable(*record)) for pid, record in records.items()
                         if pid not in self._given)
        self._given.update(found)
        return found

    def finish(self) -> dict[int, FdTable]:
        """Walk the chunks left, collect the helpers' results, walk what they did not report:
        pid -> its fd table (a pid gone before it was read has none), but for the pids
        :meth:`ready` gave."""
        try:
            found: dict[int, FdTable] = {}
            if self.tokens >= 0:
                mine = helper.take(self.tokens, self.proc, self.pids, self.size)
                found.update((pid, FdTable(*record)) for pid, record in mine.items())
            deadline = time.monotonic() + HELPER_TIMEOUT
            while self.helpers:
                child = self.helpers.pop(0)
                reaped = False
                try:
                    reaped, ok = _wait(child.pid, deadline)
                    if ok:
                        found.update((pid, FdTable(*record)) for pid, record
                                     in (helper.decode(self._results(child)) or {}).items()
                                     if pid not in found)
                finally:
                    _stop(child, reaped)  # late or failed: its share is walked below
            for pid in self.pids:
                if (pid not in found and pid not in self._given
                        and (table := read_one(self.proc, pid)) is not None):
                    found[pid] = table
            for pid in self._given:
                found.pop(pid, None)
            return found
        finally:
            self.cancel()  # whatever happened, no helper and no descriptor outlives the walk

    def _results(self, child: _Helper) -> bytes:
        """What ``child`` has written that :meth:`ready` has not taken."""
        taken = self._taken.get(child.pid, 0)
        return os.pread(child.out, max(0, os.fstat(child.out).st_size - taken), taken)

    def _close_tokens(self) -> None:
        if self.tokens >= 0:
            os.close(self.tokens)
            self.tokens = -1


def estimate(proc: str) -> int:
    """About how many processes ``proc`` shows, without listing it: procfs counts them in its
    root's link count (a plain folder counts its subfolders); 0 when it cannot be read."""
    try:
        return max(0, os.stat(proc).st_nlink - 2)
    except OSError:
        return 0


def pids_in(proc: str) -> list[int]:
    """The pids ``proc`` lists (ASCII digits only: ``int()`` takes other digits too)."""
    try:
        return [int(name) for name in os.listdir(proc) if name.isascii() and name.isdigit()]
    except OSError:
        return []


def _high(fd: int) -> int:
    """``fd`` moved to :data:`_MIN_FD` or above (close-on-exec)."""
    if fd >= _MIN_FD:
        return fd
    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _MIN_FD)
    finally:
        os.close(fd)


def _wait(pid: int, deadline: float) -> tuple[bool, bool]:
    """Reap helper ``pid`` if it exits by ``deadline``: (whether it is reaped, by this call or
    before; whether it exited with 0). A pid reaped is never signalled again (it may be
    another process's by now)."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        pidfd = -1
    try:
        if pidfd >= 0:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            if not poller.poll(max(0, int((deadline - time.monotonic()) * 1000))):
                return False, False
            _, status = os.waitpid(pid, 0)
        else:  # no pidfd (an old kernel, no descriptor left): poll for the exit
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.monotonic() >= deadline:
                    return False, False
                time.sleep(0.002)
    except ChildProcessError:
        return True, False  # reaped by someone else: its result cannot be trusted complete
    finally:
        if pidfd >= 0:
            os.close(pidfd)
    return True, os.waitstatus_to_exitcode(status) == 0


def _stop(child: _Helper, reaped: bool) -> None:
    """Close a helper's results and, unless ``reaped``, SIGKILL and reap it (one reaped
    already is never signalled: its pid may be another process's by now)."""
    try:
        if not reaped:
            with contextlib.suppress(OSError):  # ChildProcessError: reaped already
                if os.waitpid(child.pid, os.WNOHANG) == (0, 0):  # still ours, not reaped
                    os.kill(child.pid, signal.SIGKILL)
                    _wait(child.pid, time.monotonic() + 1.0)  # one stuck in the kernel is left
    finally:
        os.close(child.out)


class FdWalk:
    """How one read of the process table walks the fd tables: made by the caller (the CLI, the
    daemon) and handed down as one argument, ``audit.run`` -> ``snapshot.take`` ->
    ``read_processes``, which uses it once.

    It says how many helpers to share the walk with, may carry a :class:`Walk` started before
    the read (:mod:`agent.host.prefetch`), and holds the work to do :meth:`meanwhile`. Whatever it
    says, the process table read is the same: only the time differs.
    """

    def __init__(self, helpers: int | None = None, early: Walk | None = None) -> None:
        """``helpers``: how many to start (None: :func:`helpers_for` the processes listed; 0:
        every table read in this process, right after its process). ``early``: a walk of
        every process started before the read, taken over by it (or cancelled when the read
        walks no fd table, or another ``proc``)."""
        self.helpers = helpers
        self._early = early
        self._meanwhile: list[Callable[[ProcessTable], object]] = []

    @classmethod
    def serial(cls) -> FdWalk:
        """No helper: the daemon's background audit spends as little CPU as it can."""
        return cls(helpers=0)

    @property
    def early(self) -> Walk | None:
        """The walk started before the read, until the read takes it over."""
        return self._early

    def meanwhile(self, work: Callable[[ProcessTable], object]) -> None:
        """Have ``work`` called with the table read so far, before the fd tables and the
        details are in (while the helpers end their walk): work that needs the processes'
        namespaces, not their open files. Its processes are still being filled in (and some
        may be left out of the final table as gone): it must not keep them."""
        self._meanwhile.append(work)

    @property
    def work(self) -> tuple[Callable[[ProcessTable], object], ...]:
        """What to call :meth:`meanwhile`, in the order given."""
        return tuple(self._meanwhile)

    def share(self, proc: str, pids: list[int]) -> tuple[list[int], Walk | None]:
        """Start walking (or take over the early walk of) the fd tables of ``pids`` under
        ``proc``: (the pids that are the host's: an early walk's helpers, alive when ``proc``
        was listed, are hostguard's own; the walk to join, or None: read each table right
        after its process)."""
        early, self._early = self._early, None
        if early is not None and early.proc != proc:
            early.cancel()
            early = None
        if early is not None:
            own = early.own
            return [pid for pid in pids if pid not in own], early
        if self.helpers == 0:
            return pids, None
        shared = walk(proc, pids, self.helpers)
        return pids, (shared if shared.helpers else None)  # nobody to share with: serial

    def cancel(self) -> None:
        """Stop the early walk if the read has not taken it over (a no-op otherwise)."""
        early, self._early = self._early, None
        if early is not None:
            early.cancel()


def walk(proc: str, pids: Sequence[int] | None, helpers: int | None = None) -> Walk:
    """Start walking the fd tables of ``pids`` under ``proc`` (None: every process there,
    listed once the helpers are starting; ``helpers``: how many to start, by default
    :func:`helpers_for`); :meth:`Walk.finish` or :meth:`Walk.cancel` ends it."""
    if helpers is None:
        helpers = helpers_for(len(pids) if pids is not None else estimate(proc))
    return Walk(proc, pids, helpers)
