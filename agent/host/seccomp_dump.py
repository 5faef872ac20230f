"""Read the seccomp filters loaded in a running thread (``PTRACE_SECCOMP_GET_FILTER``).

The kernel hands out a thread's filters only to a ptracer holding the thread in a ptrace-stop
(and only to a caller with ``CAP_SYS_ADMIN`` that is not under seccomp itself). So a dump stops
the thread for a moment: ``PTRACE_SEIZE`` (does not stop it), ``PTRACE_INTERRUPT``, a
``waitid(tid, WNOHANG | WNOWAIT | __WALL)`` poll against a monotonic deadline, one
``PTRACE_SECCOMP_GET_FILTER`` per filter, ``PTRACE_DETACH``. The stop, from the interrupt to
the detach returning, is measured in nanoseconds (:attr:`FilterDump.stop_ns`, as
``benchmarks/seccomp_bench.py`` prints it; see :attr:`StackRead.held_ns` for why an
odd figure is a scheduler tick).

Order: :attr:`FilterDump.filters` lists the newest filter first (the one the kernel runs
first). The kernel's own index is the other way round: ``PTRACE_SECCOMP_GET_FILTER`` index 0 is
the *oldest* filter (``get_nth_filter`` walks ``count - index - 1`` steps back from the newest),
whatever ptrace(2) and the commit that added the request say; the tests load three filters and
check.

::

    cache = DumpCache(Path("/var/lib/hostguard/seccomp-filters.json"))  # agent.host.dump_cache
    try:
        dump = dump_filters(tid, cache=cache)     # FilterDump; a brief stop, at most once
    except DumpError as exc:
        print(exc.reason)                         # -> the check's verdict is ``error``
    cache.retain(alive)                           # now and then: forget threads that exited
    cache.save()                                  # atomically, mode 0600

    with stopped(tid, timeout=0.25):              # the thread is in a ptrace-stop in here
        ...

Why it is built the way it is:

* **The ptracer is a fresh thread per dump.** ``PTRACE_DETACH`` works only on a tracee that is
  in a ptrace-stop: a thread that does not stop in time (uninterruptible sleep, a killable
  ``vfork`` wait) stays seized with the interrupt pending, and would stop for good the moment
  it wakes. The kernel cancels both when the tracer *thread* exits (``exit_ptrace``), so on a
  timeout the tracer thread just ends; the caller waits for it at most ``timeout`` +
  :data:`GRACE` seconds. A killed dumping process releases its tracee the same way.
* **The stop is short.** Everything that can be done before the interrupt is: /proc reads, the
  privilege checks, the cache lookup, one zero-filled buffer of :data:`BPF_MAXINSNS` * 8 bytes
  per expected filter. While stopped, one ``ptrace`` call per filter (with a full-size buffer
  the size query with ``data=NULL`` is not needed: the call returns the instruction count
  too), one more expecting ``ENOENT``, then the detach; the calls made while stopped do not
  release the GIL, so another Python thread cannot delay the detach. The bytes are copied out
  after the detach. (The kernel copies the whole program whatever the buffer's size; it
  refuses to load one longer than :data:`BPF_MAXINSNS`, so a full-size buffer always fits.)
* **Nothing is lost.** If the thread reports a signal-delivery-stop instead of the interrupt
  stop, the detach re-injects that signal. A group-stopped (``SIGSTOP``\\ ped) thread stays
  stopped after the detach: the kernel reinstates the group stop.
* **The stack read is consistent.** Filters are only ever added, and another thread can add one
  (``SECCOMP_FILTER_FLAG_TSYNC``) while this one is stopped. With the kernel's oldest-first
  index a new filter only appends, so reading up to the first ``ENOENT`` is a snapshot; the
  cache key uses the count actually read.
* **Cached by (tid, start time, filter count).** Append-only stacks make that key determine
  the stack, so an unchanged thread is never stopped twice (:class:`FilterCache`, kept by
  :class:`agent.host.dump_cache.DumpCache`).

Never an empty stack in place of an error: a thread that cannot be read raises
:class:`DumpError` with a sentence saying why. A thread with ``Seccomp: 0`` is not stopped at
all (an empty dump); one in strict mode (``Seccomp: 1``) has no filter to read (an error).
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from agent.core.record import record
from agent.host.ptrace import (
    CLD_TRAPPED,
    P_PID,
    PTRACE_DETACH,
    PTRACE_EVENT_STOP,
    PTRACE_INTERRUPT,
    PTRACE_SECCOMP_GET_FILTER,
    PTRACE_SEIZE,
    WALL,
    ptrace_held,
    ptrace_released,
)

BPF_MAXINSNS = 4096
"""The kernel refuses longer seccomp programs (``seccomp_prepare_filter``)."""
INSN_SIZE = 8
"""``struct sock_filter``: u16 code, u8 jt, u8 jf, u32 k."""
CAP_SYS_PTRACE = 19
CAP_SYS_ADMIN = 21
GRACE = 0.5
"""Seconds the caller waits for the tracer thread beyond ``timeout`` (reading, detaching)."""
SPIN_NS = 1_000_000
"""Poll ``waitid`` back to back this long after the interrupt (far longer than a stop takes)."""
GROUP_STOP_SIGNALS = frozenset({signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})

# The calls made while the tracee may be stopped go through PyDLL: they never block (WNOHANG,
# a stopped tracee), and keeping the GIL means no other Python thread runs before the detach.
# SEIZE can block (on the tracee's cred_guard_mutex during an execve): that one releases it.
_LIBC_GIL = ctypes.PyDLL(None, use_errno=True)
_seize_call = ptrace_released
_ptrace = ptrace_held


class _SigInfo(ctypes.Structure):
    """``siginfo_t`` as waitid(2) fills it (SIGCHLD fields; 128 bytes on 64-bit Linux)."""

    _fields_ = [("si_signo", ctypes.c_int), ("si_errno", ctypes.c_int),
                ("si_code", ctypes.c_int), ("_pad", ctypes.c_int), ("si_pid", ctypes.c_int),
                ("si_uid", ctypes.c_uint), ("si_status", ctypes.c_int),
                ("_rest", ctypes.c_char * 100)]


_waitid = _LIBC_GIL.waitid
_waitid.restype = ctypes.c_int
_waitid.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_SigInfo), ctypes.c_int]
# waitid, not waitpid: WNOWAIT leaves every report in place, so a tracee that is also our child
# and exits meanwhile is not reaped behind its owner's back (subprocess, the daemon).
_WAIT_FLAGS = os.WSTOPPED | os.WEXITED | os.WNOHANG | os.WNOWAIT | WALL
_sched_yield = _LIBC_GIL.sched_yield
_sched_yield.restype, _sched_yield.argtypes = ctypes.c_int, []

R = TypeVar("R")


CacheKey = tuple[int, int, int]
"""(tid, start time, ``Seccomp_filters`` count): filters are only ever added, so this names
the stack (a tid reused by another thread has another start time)."""


class FilterCache(Protocol):
    """Where :func:`dump_filters` keeps the stacks it read
    (:class:`agent.host.dump_cache.DumpCache`)."""

    def get(self, key: CacheKey) -> tuple[bytes, ...] | None:
        """The stack stored under ``key``, if any."""

    def put(self, key: CacheKey, filters: tuple[bytes, ...]) -> None:
        """Store the stack read for ``key``."""


class DumpError(Exception):
    """The filters of a thread could not be read; the check's verdict is ``error``."""

    def __init__(self, reason: str, errno: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        """A sentence saying why, e.g. ``thread 812 is already traced by pid 90 (...)``."""
        self.errno = errno
        """The kernel's errno when one applies (EPERM, EACCES, ESRCH, ETIMEDOUT, ...)."""


@record
class FilterDump:
    """The seccomp filter stack of one thread."""

    tid: int
    start_time: int
    """Clock ticks after boot (``/proc/TID/stat`` field 22): with the tid, names the thread."""
    filters: tuple[bytes, ...]
    """Raw ``struct sock_filter`` arrays, index 0 = the newest, as the kernel numbers them."""
    stop_ns: int
    """How long the thread was stopped, from the interrupt to the detach returning (0 when
    served from the cache or without a filter); an upper bound, see :attr:`StackRead.held_ns`."""
    cached: bool


@record
class StackRead:
    """What one stop read (:func:`read_stack`)."""

    filters: tuple[bytes, ...]
    stop_ns: int
    """From ``PTRACE_INTERRUPT`` to ``PTRACE_DETACH`` returning (:attr:`FilterDump.stop_ns`)."""
    held_ns: int
    """From ``PTRACE_INTERRUPT`` to ``PTRACE_DETACH`` being called: a lower bound of the stop.
    ``stop_ns`` is an upper bound: the detach wakes the thread, and when the scheduler puts it
    on this CPU it preempts the dumper, so the detach returns late (a tick, 4 ms at HZ=250)
    while the thread already runs again."""
    stop: str
    """What the thread reported: ``interrupt``, ``group-stop`` or ``signal``."""
    signal: int
    """The stop's signal (``SIGTRAP`` for the interrupt); re-injected when ``stop == "signal"``."""


@record
class _Thread:
    """What /proc says about a thread before it is stopped."""

    state: str
    start_time: int
    kernel: bool
    tgid: int | None
    seccomp: int | None
    filters: int | None
    tracer: int


# --- public entry points --------------------------------------------------------------------

def dump_filters(tid: int, *, root: Path = Path("/"), timeout: float = 0.25,
                 cache: FilterCache | None = None) -> FilterDump:
    """The filter stack of thread ``tid`` (raises :class:`DumpError`, see the module doc).

    ``timeout`` bounds the wait for the thread to stop; the call returns within ``timeout`` +
    :data:`GRACE` seconds whatever the thread does. ``root`` is where ``proc`` is read; a
    thread with a filter can be stopped only on the live system (``root`` = ``/``).
    """
    info = _thread_info(root, tid)
    if info.seccomp == 0:  # no filter: nothing to stop for
        return FilterDump(tid, info.start_time, (), 0, cached=False)
    _refuse_untraceable(tid, info)
    if info.seccomp == 1:
        raise DumpError(f"thread {tid} is in strict seccomp mode (Seccomp: 1): it has no "
                        "filter to read, only read/write/exit/sigreturn are allowed")
    if info.seccomp != 2:
        raise DumpError(f"thread {tid}: seccomp mode unknown ({_seccomp_text(info.seccomp)})")
    if cache is not None and info.filters is not None:
        hit = cache.get((tid, info.start_time, info.filters))
        if hit is not None:
            return FilterDump(tid, info.start_time, hit, 0, cached=True)
    if os.path.realpath(root) != "/":
        raise DumpError(f"thread {tid} of the host tree at {root} cannot be stopped: filters are "
                        "read from the running kernel only (root /)")
    _refuse_without_privileges()
    if info.tracer:
        raise _traced_by(tid, info.tracer)
    read = read_stack(tid, expected=info.filters or 1, timeout=timeout)
    after = _start_time(root, tid)
    if after != info.start_time:  # the tid was reused between the /proc read and the seize
        raise DumpError(f"thread {tid} exited while its filters were read", errno.ESRCH)
    if cache is not None:
        cache.put((tid, info.start_time, len(read.filters)), read.filters)
    return FilterDump(tid, info.start_time, read.filters, read.stop_ns, cached=False)


def read_stack(tid: int, expected: int = 1, timeout: float = 0.25) -> StackRead:
    """Stop ``tid``, read its whole filter stack, detach: no /proc checks, no cache.

    ``expected``: the filter count, if known (``Seccomp_filters``): the buffers for that many
    are made before the stop. The building block of :func:`dump_filters`, exposed for
    benchmarks and for tests that want the kernel's own refusals.
    """
    count = max(expected, 1)
    buffers = _Buffers(count)

    def during(stop: str, sig: int) -> tuple[bytes, ...]:
        return _read_filters(tid, buffers)

    try:
        result, times, stop, sig = _on_tracer_thread(tid, timeout, during)
    except _KernelRefused as refused:  # explained now, with the thread running again
        raise _get_filter_error(tid, refused.index, refused.errno) from None
    return StackRead(result, times[1], times[0], stop, sig)


@contextmanager
def stopped(tid: int, timeout: float = 0.25) -> Iterator[None]:
    """Hold thread ``tid`` in a ptrace-stop for the body of the ``with``; always detaches.

    The ptracer is a separate thread that detaches when the body ends (or, if this process
    dies, when the kernel reaps it): a test can kill the process here and see the thread run
    on. Raises :class:`DumpError` when the thread cannot be stopped within ``timeout``.
    """
    release = threading.Event()
    ready = threading.Event()

    def during(stop: str, sig: int) -> None:
        ready.set()
        release.wait()

    tracer = _Tracer(tid, timeout, during)
    tracer.on_end = ready.set
    tracer.start()
    try:
        if not ready.wait(timeout + GRACE):
            raise DumpError(f"thread {tid} was not stopped within {timeout * 1000:g} ms",
                            errno.ETIMEDOUT)
        tracer.check()
        yield
    finally:
        release.set()
        tracer.join(GRACE)


@record
class Held:
    """What :func:`run_stopped` did: ``during``'s result and how long the thread was held."""

    result: object
    held_ns: int
    """From ``PTRACE_INTERRUPT`` to ``PTRACE_DETACH`` being called (:attr:`StackRead.held_ns`)."""
    stop_ns: int
    """From ``PTRACE_INTERRUPT`` to ``PTRACE_DETACH`` returning (:attr:`StackRead.stop_ns`)."""


def run_stopped(tid: int, during: Callable[[str, int], object], timeout: float = 0.25) -> Held:
    """Seize and stop thread ``tid``, call ``during(stop, signal)`` on the tracer thread while
    it is stopped, detach (re-injecting the signal of a signal-delivery-stop): the building
    block of :func:`read_stack` for code that acts on a stopped thread
    (:mod:`agent.enforce.inject`).

    ``stop`` is ``interrupt``, ``group-stop`` or ``signal``. ``during`` may resume the thread
    with ptrace requests made on the calling (tracer) thread, provided it returns with the
    thread in a ptrace-stop again; what it raises is raised here once the thread runs again.
    Raises :class:`DumpError` when the thread cannot be stopped within ``timeout``.
    """
    result, times, _stop, _sig = _on_tracer_thread(tid, timeout, during)
    return Held(result, times[0], times[1])


def wait_report(tid: int) -> tuple[int, int]:
    """Block until tracee ``tid`` reports (a ptrace-stop, or its end) and return the
    ``(si_code, si_status)`` of the report, leaving it in place (``WNOWAIT``: a tracee that is
    also the caller's child is never reaped here). Call it on the tracer thread; the GIL is
    kept, so no other Python thread runs meanwhile. A report read here is dropped by the
    kernel when the tracee is resumed."""
    info = _SigInfo()
    while _waitid(P_PID, tid, ctypes.byref(info), _WAIT_FLAGS & ~os.WNOHANG) != 0:
        err = ctypes.get_errno()
        if err != errno.EINTR:
            raise DumpError(f"waiting for thread {tid} failed: {os.strerror(err)}", err)
    return info.si_code, info.si_status


def measure_stop(tid: int, rounds: int, timeout: float = 0.25) -> list[int]:
    """Stop times (ns) of ``rounds`` fresh, uncached dumps of ``tid`` (a benchmark's figures).

    Each round reads /proc as :func:`dump_filters` does; raises :class:`DumpError` when the
    thread has no filter (then nothing is stopped and there is nothing to measure).
    """
    times = []
    for _ in range(rounds):
        dump = dump_filters(tid, timeout=timeout)
        if not dump.filters:
            raise DumpError(f"thread {tid} has no seccomp filter: it is never stopped")
        times.append(dump.stop_ns)
    return times


# --- the tracer thread ----------------------------------------------------------------------

class _Tracer(threading.Thread):
    """Seize, interrupt, wait, ``during()``, detach — on a thread that exits right after."""

    def __init__(self, tid: int, timeout: float, during: Callable[[str, int], Any]) -> None:
        super().__init__(name=f"hostguard-ptrace-{tid}", daemon=True)
        self.tid = tid
        self.timeout = timeout
        self.during = during
        self.on_end: Callable[[], object] | None = None
        self.outcome: tuple[Any, tuple[int, int], str, int] | None = None
        self.error: BaseException | None = None
        self.task: int | None = None

    def run(self) -> None:
        self.task = threading.get_native_id()
        try:
            self.outcome = _trace(self.tid, self.timeout, self.during)
        except BaseException as exc:  # handed to the caller, re-raised there
            self.error = exc
        finally:
            if self.on_end is not None:
                self.on_end()
        # Returning ends this thread: if the tracee was never stopped (timeout), the kernel
        # drops the seize and the pending interrupt now (exit_ptrace).

    def check(self) -> None:
        """Re-raise the tracer's error, once its task is gone (and with it any seize)."""
        if self.error is not None:
            self.wait_gone()
            raise self.error

    def wait_gone(self) -> None:
        # join() returns when the Python thread is done, a moment before the kernel task
        # exits and exit_ptrace drops a seize still held (after a timeout): a dump right after
        # would find its own dying tracer attached. Bounded; nothing to wait for on success.
        end = time.monotonic() + GRACE
        while (self.task is not None and os.path.exists(f"/proc/self/task/{self.task}")
               and time.monotonic() < end):
            time.sleep(0.0002)


def _on_tracer_thread(tid: int, timeout: float, during: Callable[[str, int], R]
                      ) -> tuple[R, tuple[int, int], str, int]:
    tracer = _Tracer(tid, timeout, during)
    tracer.start()
    tracer.join(timeout + GRACE)
    if tracer.is_alive():  # stuck in the kernel (SEIZE); it detaches when it gets out
        raise DumpError(f"thread {tid} could not be stopped within {timeout * 1000:g} ms",
                        errno.ETIMEDOUT)
    tracer.check()
    assert tracer.outcome is not None
    return tracer.outcome


def _trace(tid: int, timeout: float,
           during: Callable[[str, int], R]) -> tuple[R, tuple[int, int], str, int]:
    """Runs on the tracer thread: ``during``'s result, (held_ns, stop_ns), stop kind, signal."""
    deadline = time.monotonic_ns() + int(timeout * 1e9)
    if _seize_call(PTRACE_SEIZE, tid, None, None) != 0:
        raise _seize_error(tid, ctypes.get_errno())
    if time.monotonic_ns() >= deadline:  # SEIZE blocked (an execve): do not stop it late
        raise DumpError(f"thread {tid} could not be seized within {timeout * 1000:g} ms",
                        errno.ETIMEDOUT)
    info = _SigInfo()
    started = time.monotonic_ns()
    if _ptrace(PTRACE_INTERRUPT, tid, None, None) != 0:
        err = ctypes.get_errno()
        raise DumpError(f"thread {tid} could not be interrupted: {os.strerror(err)}", err)
    spin_until = started + SPIN_NS
    pause = 50e-6
    while True:
        info.si_pid = 0  # WNOHANG with nothing to report leaves it 0
        if _waitid(P_PID, tid, ctypes.byref(info), _WAIT_FLAGS) != 0:
            err = ctypes.get_errno()
            if err == errno.EINTR:
                continue
            raise DumpError(f"waiting for thread {tid} to stop failed: {os.strerror(err)}", err)
        if info.si_pid == tid:
            break
        now = time.monotonic_ns()
        if now >= deadline:
            # Detaching needs a stopped tracee; it did not stop, so the thread's exit does it.
            raise DumpError(f"thread {tid} did not stop within {timeout * 1000:g} ms (in "
                            "uninterruptible sleep?); it was released untouched", errno.ETIMEDOUT)
        if now < spin_until:
            _sched_yield()
        else:
            time.sleep(pause)  # a stop seen late is a stop made longer: keep the steps short
            pause = min(pause * 2, 200e-6)
    if info.si_code != CLD_TRAPPED:  # exited or killed: nothing to read, nothing to detach
        raise DumpError(f"thread {tid} exited while it was being stopped", errno.ESRCH)
    sig, event = info.si_status & 0xFF, info.si_status >> 8
    if event == PTRACE_EVENT_STOP:
        kind, inject = ("group-stop" if sig in GROUP_STOP_SIGNALS else "interrupt"), 0
    else:  # signal-delivery-stop: the thread dequeued ``sig``; hand it back on detach
        kind, inject = "signal", sig
    try:
        result = during(kind, sig)
    finally:
        detaching = time.monotonic_ns()
        if _ptrace(PTRACE_DETACH, tid, None, ctypes.c_void_p(inject)) != 0:
            err = ctypes.get_errno()
            if err != errno.ESRCH:  # ESRCH: killed (SIGKILL) while stopped, nothing to undo
                raise DumpError(f"detaching thread {tid} failed: {os.strerror(err)}; it is "
                                "released when this thread ends", err)
        ended = time.monotonic_ns()
    return result, (detaching - started, ended - started), kind, sig


class _Buffers:
    """One full-size program buffer per filter, made (zero-filled) before the stop."""

    SLOT = BPF_MAXINSNS * INSN_SIZE

    def __init__(self, count: int) -> None:
        self.count = 0
        self._chunks: list[ctypes.Array[ctypes.c_char]] = []
        self.addresses: list[int] = []
        self.grow(count)

    def grow(self, count: int) -> None:
        if count <= self.count:
            return
        chunk = ctypes.create_string_buffer(self.SLOT * (count - self.count))
        self._chunks.append(chunk)
        base = ctypes.addressof(chunk)
        self.addresses += [base + i * self.SLOT for i in range(count - self.count)]
        self.count = count


class _KernelRefused(Exception):
    """PTRACE_SECCOMP_GET_FILTER failed; turned into a DumpError once the thread runs again."""

    def __init__(self, index: int, err: int) -> None:
        super().__init__(index, err)
        self.index = index
        self.errno = err


def _read_filters(tid: int, buffers: _Buffers) -> tuple[bytes, ...]:
    """Runs while ``tid`` is stopped: every filter, newest first, or an exception.

    The kernel numbers the stack oldest first (``get_nth_filter``), so a filter another thread
    adds meanwhile (TSYNC) lands at the end without shifting an index: reading up to the first
    ``ENOENT`` is a consistent snapshot. Nothing here reads /proc or builds messages: that waits
    until after the detach.
    """
    lengths: list[int] = []
    index = 0
    while True:
        slot = buffers.addresses[index] if index < buffers.count else None
        got = _ptrace(PTRACE_SECCOMP_GET_FILTER, tid, ctypes.c_void_p(index),
                      ctypes.c_void_p(slot))
        if got < 0:
            err = ctypes.get_errno()
            if err != errno.ENOENT:
                raise _KernelRefused(index, err)
            break
        if not 0 < got <= BPF_MAXINSNS:
            raise _KernelRefused(index, errno.E2BIG)
        if slot is None:  # more filters than /proc said (added since): rare, read it again
            buffers.grow(index + 1)
            continue
        lengths.append(got)
        index += 1
    if not lengths:  # filter mode always has one; the mode must have changed
        raise _KernelRefused(0, errno.EINVAL)
    return tuple(ctypes.string_at(buffers.addresses[i], n * INSN_SIZE)
                 for i, n in reversed(list(enumerate(lengths))))


# --- why something failed (error paths only) ------------------------------------------------

def _seize_error(tid: int, err: int) -> DumpError:
    if err == errno.ESRCH:
        return DumpError(f"thread {tid} does not exist (it exited)", err)
    if err != errno.EPERM:
        return DumpError(f"PTRACE_SEIZE of thread {tid} failed: {os.strerror(err)}", err)
    try:
        info = _thread_info(Path("/"), tid)
    except DumpError as gone:
        return DumpError(gone.reason, err)
    try:
        _refuse_untraceable(tid, info)
    except DumpError as refused:
        return DumpError(refused.reason, err)
    if info.tracer:
        return _traced_by(tid, info.tracer)
    yama = _read_text("/proc/sys/kernel/yama/ptrace_scope").strip()
    if yama == "3":
        return DumpError(f"attaching to thread {tid} is forbidden: Yama ptrace_scope is 3 "
                         "(no process may ptrace another until reboot)", err)
    caps = _own_caps()
    if caps is not None and not caps & (1 << CAP_SYS_PTRACE):
        extra = " (Yama ptrace_scope 2 requires it)" if yama == "2" else ""
        return DumpError(f"permission denied attaching to thread {tid}: this process lacks "
                         f"CAP_SYS_PTRACE{extra}, needed for a thread of another user, with "
                         "more capabilities, or not dumpable", err)
    return DumpError(f"permission denied attaching to thread {tid} (PTRACE_SEIZE: EPERM; an "
                     "LSM or another user namespace?)", err)


def _traced_by(tid: int, tracer: int) -> DumpError:
    if os.path.exists(f"/proc/self/task/{tracer}"):
        who = "a thread of this process (an earlier dump still ending?)"
    else:
        who = f"pid {tracer} (a debugger or strace?)"
    return DumpError(f"thread {tid} is already traced by {who}: a thread has one tracer at a "
                     "time", errno.EPERM)


def _get_filter_error(tid: int, index: int, err: int) -> DumpError:
    what = f"PTRACE_SECCOMP_GET_FILTER on thread {tid}"
    if err == errno.EACCES:
        own = _read_text("/proc/thread-self/status")
        mode = _status_int(own, "Seccomp")
        if mode:
            why = f"this process runs under seccomp itself (Seccomp: {mode})"
        else:
            why = "this process lacks CAP_SYS_ADMIN (in the initial user namespace)"
        return DumpError(f"{what} was refused (EACCES): {why}", err)
    if err == errno.EINVAL:
        mode = _status_int(_read_text(f"/proc/{tid}/status"), "Seccomp")
        if mode is not None and mode != 2:
            return DumpError(f"thread {tid} has no seccomp filter (Seccomp: {mode})", err)
        return DumpError(f"{what}: EINVAL, this kernel cannot dump filters (it needs "
                         "CONFIG_SECCOMP_FILTER and CONFIG_CHECKPOINT_RESTORE)", err)
    if err == errno.EIO:
        return DumpError(f"{what}: EIO, this kernel does not know the request (Linux < 4.4)",
                         err)
    if err == errno.EMEDIUMTYPE:
        return DumpError(f"{what}: filter {index} is not a classic BPF program the kernel "
                         "kept a copy of (EMEDIUMTYPE)", err)
    if err == errno.ESRCH:
        return DumpError(f"thread {tid} exited (or was killed) while it was stopped", err)
    if err == errno.E2BIG:
        return DumpError(f"thread {tid}: filter {index} is longer than the kernel's limit of "
                         f"{BPF_MAXINSNS} instructions", err)
    return DumpError(f"{what} failed on filter {index}: {os.strerror(err)}", err)


def _refuse_untraceable(tid: int, info: _Thread) -> None:
    if info.state in ("Z", "X"):
        raise DumpError(f"thread {tid} is a zombie (exited, not yet reaped): it runs nothing "
                        "and cannot be traced", errno.ESRCH)
    if info.tgid == os.getpid():
        raise DumpError(f"thread {tid} belongs to this process: a process cannot ptrace its "
                        "own threads", errno.EPERM)
    if info.kernel:
        raise DumpError(f"thread {tid} is a kernel thread and cannot be traced", errno.EPERM)


def _refuse_without_privileges() -> None:
    """Fail before stopping anything when the kernel would refuse the read anyway."""
    own = _read_text("/proc/thread-self/status")
    mode = _status_int(own, "Seccomp")
    if mode:
        raise DumpError(f"this process runs under seccomp itself (Seccomp: {mode}): the kernel "
                        "dumps filters only for an unconfined caller", errno.EACCES)
    caps = _status_int(own, "CapEff", 16)
    if caps is not None and not caps & (1 << CAP_SYS_ADMIN):
        raise DumpError("reading seccomp filters needs CAP_SYS_ADMIN, which this process "
                        "lacks", errno.EACCES)


def _own_caps() -> int | None:
    return _status_int(_read_text("/proc/thread-self/status"), "CapEff", 16)


# --- /proc ----------------------------------------------------------------------------------

def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return handle.read(1 << 16)
    except OSError:
        return ""


def _status_int(text: str, key: str, base: int = 10) -> int | None:
    prefix = key + ":"
    for line in text.split("\n"):
        if line.startswith(prefix):
            try:
                return int(line[len(prefix):].split()[0], base)
            except (IndexError, ValueError):
                return None
    return None


def _thread_file(root: Path, tid: int, name: str) -> str:
    """/proc/TID/NAME under ``root``; a thread that is gone or unreadable is a DumpError."""
    try:
        with open(f"{root / 'proc'}/{tid}/{name}", encoding="utf-8",
                  errors="surrogateescape") as handle:
            return handle.read()
    except (FileNotFoundError, ProcessLookupError):
        raise DumpError(f"thread {tid} does not exist (it exited)", errno.ESRCH) from None
    except OSError as exc:
        raise DumpError(f"thread {tid}: cannot read its {name}: {exc.strerror}",
                        exc.errno) from None


def _stat_fields(root: Path, tid: int) -> list[str]:
    """Fields 3.. of /proc/TID/stat (comm may hold spaces and parentheses: cut at the last ')')."""
    text = _thread_file(root, tid, "stat")
    rest = text[text.rfind(")") + 1:].split()
    if len(rest) < 20:
        raise DumpError(f"thread {tid}: unreadable /proc stat line")
    return rest


def _start_time(root: Path, tid: int) -> int | None:
    try:
        return int(_stat_fields(root, tid)[19])
    except (DumpError, ValueError):
        return None


def _thread_info(root: Path, tid: int) -> _Thread:
    if tid <= 0:
        raise DumpError(f"{tid} is not a thread id", errno.ESRCH)
    rest = _stat_fields(root, tid)
    try:
        start, flags = int(rest[19]), int(rest[6])
    except ValueError:
        raise DumpError(f"thread {tid}: unreadable /proc stat line") from None
    status = _thread_file(root, tid, "status")
    return _Thread(state=rest[0], start_time=start, kernel=bool(flags & 0x00200000),
                   tgid=_status_int(status, "Tgid"), seccomp=_status_int(status, "Seccomp"),
                   filters=_status_int(status, "Seccomp_filters"),
                   tracer=_status_int(status, "TracerPid") or 0)


def _seccomp_text(mode: int | None) -> str:
    return "no Seccomp line in its status" if mode is None else f"Seccomp: {mode}"


def read_boot_id(root: Path = Path("/")) -> str | None:
    """``proc/sys/kernel/random/boot_id`` under ``root``; None when unreadable."""
    text = _read_text(f"{root / 'proc'}/sys/kernel/random/boot_id").strip()
    return text or None
