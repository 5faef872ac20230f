"""Run a command with every thread and child traced, and tell which syscalls each ABI entered.

This is the ptrace half of ``hostguard seccomp record``: it lives beside ``exec`` and ``load``
because it acts on a process (it starts, stops and resumes one), while turning what it saw into a
profile is the model's business (:mod:`agent.seccomp.recorded`).

How the command is started: the recorder forks; the child waits on a pipe until the parent has
seized it (``PTRACE_SEIZE`` with TRACESYSGOOD, TRACECLONE/FORK/VFORK/EXEC and EXITKILL, so that a
recorder that dies, even by SIGKILL, takes the traced program with it), interrupted it and set it
syscall-stepping; then it execs. Syscalls count from the entry of that ``execve`` on (what the
recorder's own child ran before it is not the program's), as ``hostguard exec`` makes exactly that
call under the filter.

Each syscall-entry stop is read with ``PTRACE_GET_SYSCALL_INFO`` (Linux 5.3), which gives the
audit architecture the call came in with: x86_64, i386 (``int 0x80``) or x32 (x86_64 with bit
``0x40000000`` in the number), the three ABIs a filter tells apart.

The program must not notice: signals it receives are passed on at their delivery stop; a group
stop (SIGSTOP, SIGTSTP ...) is kept with ``PTRACE_LISTEN`` as it would be untraced; the exit
status or the signal that killed the command is returned. The recorder waits for every traced
process, children that outlive the command included, as ``strace -f`` does.

:func:`attach_traced` does the same to a process already running, for a bounded time: every
thread seized (without EXITKILL: the process outlives its recorder), and at the end each one
interrupted and detached at its next stop. Whether the process may be stopped at all (isolated
CPUs) is the caller's question (:func:`agent.host.stop_guard.refuse_stop`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import time
from collections.abc import Mapping, Sequence
from typing import NoReturn

from agent.core.record import record
from agent.enforce.exec import restore_signals
from agent.host.ptrace import (
    PTRACE_DETACH,
    PTRACE_EVENT_EXEC,
    PTRACE_EVENT_STOP,
    PTRACE_GET_SYSCALL_INFO,
    PTRACE_GETEVENTMSG,
    PTRACE_INTERRUPT,
    PTRACE_LISTEN,
    PTRACE_O_EXITKILL,
    PTRACE_O_TRACECLONE,
    PTRACE_O_TRACEEXEC,
    PTRACE_O_TRACEFORK,
    PTRACE_O_TRACESYSGOOD,
    PTRACE_O_TRACEVFORK,
    PTRACE_SEIZE,
    PTRACE_SYSCALL,
    WALL,
    ptrace_released,
    tracer_of,
)
from agent.seccomp import syscalls

PTRACE_SYSCALL_INFO_ENTRY = 1
OPTIONS = (PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK
           | PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL)
NEW_TRACEE_EVENTS = frozenset({1, 2, 3})
"""PTRACE_EVENT_FORK, _VFORK, _CLONE: the event message is the new tracee's id."""
ATTACH_OPTIONS = OPTIONS & ~PTRACE_O_EXITKILL
"""An attach leaves out EXITKILL: the process was running before and must outlive the recorder."""
RELEASE_GRACE = 2.0
"""Seconds an attach waits for each thread's stop to release it."""
SYSCALL_STOP_STATUS = (signal.SIGTRAP | 0x80) << 8 | 0x7F
"""The wait status of a syscall stop (stopped, SIGTRAP | 0x80, no event)."""
STOP_SIGNALS = frozenset({signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})



class _SyscallInfo(ctypes.Structure):
    """``struct ptrace_syscall_info``, the entry member of its union."""

    _fields_ = [("op", ctypes.c_uint8), ("pad", ctypes.c_uint8 * 3), ("arch", ctypes.c_uint32),
                ("instruction_pointer", ctypes.c_uint64), ("stack_pointer", ctypes.c_uint64),
                ("nr", ctypes.c_uint64), ("args", ctypes.c_uint64 * 6),
                ("ret_data", ctypes.c_uint32), ("pad2", ctypes.c_uint32)]


class TraceError(Exception):
    """The command could not be started under the tracer (nothing of it ran)."""


@record
class Trace:
    """What a traced run did."""

    calls: frozenset[tuple[int, int]]
    """Each (audit architecture, syscall number) entered at least once, x32 numbers with their
    ``0x40000000`` bit."""
    status: int | None
    """The command's exit status, or minus the signal that killed it (as ``subprocess``); None
    for an attached process that is still running."""
    processes: int
    """Threads and processes traced, the command included."""
    values: frozenset[tuple[int, int, int, int]] = frozenset()
    """(audit architecture, syscall number, argument index, value) for each argument asked for
    (``watch`` of :func:`run_traced`), each distinct value once."""


def _ptrace(request: int, pid: int, addr: int = 0, data: int | ctypes.c_void_p = 0) -> int:
    ctypes.set_errno(0)
    result = int(ptrace_released(request, pid, addr, data))
    if result == -1 and ctypes.get_errno():
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def _resume(pid: int, request: int = PTRACE_SYSCALL, sig: int = 0) -> None:
    with contextlib.suppress(ProcessLookupError):  # killed meanwhile: its end is reported
        _ptrace(request, pid, 0, sig)


def run_traced(path: str, argv: Sequence[str],
               watch: Mapping[tuple[int, int], tuple[int, ...]] | None = None) -> Trace:
    """Run ``path`` with ``argv`` traced to its end; raises :class:`TraceError` if it could not
    be started. The caller's signal dispositions are the child's (but SIGPIPE and SIGXFSZ, which
    Python ignores, are reset to the default an untraced program gets). ``watch``: the argument
    indexes whose values to collect, per (audit architecture, syscall number)."""
    ready, go = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child(ready, go, path, argv)
    os.close(ready)
    try:
        _ptrace(PTRACE_SEIZE, pid, 0, OPTIONS)
        _ptrace(PTRACE_INTERRUPT, pid)
        _, status = os.waitpid(pid, WALL)
        if not os.WIFSTOPPED(status):
            raise OSError(errno.ESRCH, "the child ended before it could be traced")
        _ptrace(PTRACE_SYSCALL, pid)
    except OSError as exc:
        os.close(go)  # the child reads EOF and exits without running the command
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, WALL)
        raise TraceError(f"cannot trace the command: {exc.strerror or exc}") from None
    os.write(go, b"!")
    os.close(go)
    # SIGINT and SIGQUIT from the terminal reach the program too: it decides; the recorder
    # lives on to report what it did (a SIGKILL of the recorder kills the program: EXITKILL).
    kept = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGQUIT)}
    try:
        tracer = _Tracer(pid, (syscalls.arch_token("native"), syscalls.resolve("execve") or -1),
                         watch or {})
        tracer.follow()
    finally:
        for sig, handler in kept.items():
            signal.signal(sig, handler)
    if tracer.status is None:  # not reached: the root's end is always reported to its parent
        raise TraceError("the command's exit status was not reported")
    return tracer.trace()


def attach_traced(pid: int, duration: float,
                  watch: Mapping[tuple[int, int], tuple[int, ...]] | None = None) -> Trace:
    """Trace the running process ``pid`` (every thread, and what they start meanwhile) for
    ``duration`` seconds, then let it go on untraced. Raises :class:`TraceError` when a thread
    cannot be attached (everything attached so far is released first).

    Seized without EXITKILL: a recorder that dies releases the process (the kernel detaches its
    tracees and wakes those it held stopped). :attr:`Trace.status` is set only if the process
    ended meanwhile."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])
    tracer = _Tracer(pid, None, watch or {}, time.monotonic() + duration)
    try:
        _seize_all(pid, tracer)
        tracer.follow()
    finally:
        left = tracer.release(RELEASE_GRACE)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    if left:
        raise TraceError(f"{left} thread(s) of {pid} did not stop to be released within "
                         f"{RELEASE_GRACE} s; the kernel releases them as the recorder exits")
    return tracer.trace()


def _seize_all(pid: int, tracer: _Tracer) -> None:
    """Seize and interrupt every thread of ``pid``, again until no new one appears."""
    while True:
        try:
            tids = {int(t) for t in os.listdir(f"/proc/{pid}/task")}
        except OSError:
            raise TraceError(f"no process {pid}") from None
        new = tids - tracer.live - tracer.released
        if not new:
            return
        for tid in sorted(new):
            try:
                _ptrace(PTRACE_SEIZE, tid, 0, ATTACH_OPTIONS)
                _ptrace(PTRACE_INTERRUPT, tid)
            except ProcessLookupError:
                continue  # the thread ended meanwhile
            except OSError as exc:
                if tracer_of(tid) == os.getpid():
                    tracer.live.add(tid)  # attached already, through its creator
                    continue
                raise TraceError(f"cannot attach to thread {tid} of {pid}: "
                                 f"{exc.strerror}{_traced_by(tid)}") from None
            tracer.live.add(tid)


def _traced_by(tid: int) -> str:
    tracer = tracer_of(tid)
    return f" (traced by {tracer} already)" if tracer else ""


def _child(ready: int, go: int, path: str, argv: Sequence[str]) -> NoReturn:
    try:
        os.close(go)
        restore_signals()
        if os.read(ready, 1) != b"!":
            os._exit(126)  # the recorder could not trace: the command must not run untraced
        os.close(ready)
        os.execv(path, list(argv))  # noqa: S606 - the command being recorded
    except OSError as exc:
        os.write(2, f"hostguard seccomp record: cannot execute {path}: {exc.strerror}\n".encode())
        os._exit(127 if exc.errno == errno.ENOENT else 126)
    finally:
        os._exit(126)


class _Tracer:
    """The stops of one traced tree: resumed as they come, calls noted, released at the end."""

    def __init__(self, root: int, start: tuple[int, int] | None,
                 watch: Mapping[tuple[int, int], tuple[int, ...]],
                 deadline: float | None = None) -> None:
        self.root = root
        self.start = start
        """The (audit arch, nr) of the root's call from which calls count; None: from now."""
        self.watch = watch
        self.deadline = deadline
        """Monotonic time when :meth:`follow` returns, None: when no tracee is left."""
        self.calls: set[tuple[int, int]] = set()
        self.values: set[tuple[int, int, int, int]] = set()
        self.seen: set[int] = {root}
        self.live: set[int] = set()
        """Tracees known to be attached (kept for the release of an attach)."""
        self.released: set[int] = set()
        self.status: int | None = None

    def trace(self) -> Trace:
        return Trace(frozenset(self.calls), self.status, len(self.seen), frozenset(self.values))

    def _next(self) -> tuple[int, int] | None:
        """The next wait status before the deadline (SIGCHLD blocked by the caller), or None."""
        assert self.deadline is not None
        while True:
            pid, status = os.waitpid(-1, WALL | os.WNOHANG)
            if pid:
                return pid, status
            left = self.deadline - time.monotonic()
            if left <= 0:
                return None
            signal.sigtimedwait([signal.SIGCHLD], left)

    def follow(self) -> None:
        """Resume every stop until no tracee is left or the deadline has passed."""
        info = _SyscallInfo()
        info_size = ctypes.sizeof(info)
        info_ref = ctypes.cast(ctypes.byref(info), ctypes.c_void_p)
        recording = self.start is None
        root, start, watch, calls, values = (self.root, self.start, self.watch, self.calls,
                                             self.values)
        ptrace, waitpid, timed = ptrace_released, os.waitpid, self.deadline is not None
        while True:
            try:
                got = self._next() if timed else waitpid(-1, WALL)
            except ChildProcessError:
                return
            if got is None:
                return
            pid, status = got
            if status == SYSCALL_STOP_STATUS:  # the hot path: two of these per syscall
                # -1 (ESRCH) from either call: killed meanwhile, and its end is still reported
                if ptrace(PTRACE_GET_SYSCALL_INFO, pid, info_size, info_ref) > 0 \
                        and info.op == PTRACE_SYSCALL_INFO_ENTRY:
                    call = (info.arch, info.nr)
                    if not recording and pid == root and call == start:
                        recording = True
                    if recording:
                        calls.add(call)
                        for index in watch.get(call, ()):
                            values.add((*call, index, info.args[index]))
                ptrace(PTRACE_SYSCALL, pid, None, None)
                continue
            if self._ended(pid, status) or not os.WIFSTOPPED(status):
                continue
            sig = os.WSTOPSIG(status)
            event = self._event(pid, status)
            if event == PTRACE_EVENT_STOP:
                # A group stop stays a stop (LISTEN); an interrupt or a new child's first stop
                # goes on.
                _resume(pid, PTRACE_LISTEN if sig in STOP_SIGNALS else PTRACE_SYSCALL)
            elif event:
                _resume(pid)  # fork, vfork, clone, exec: the new tracees report on their own
            else:
                _resume(pid, PTRACE_SYSCALL, sig)  # a signal for the program: delivered as sent

    def _ended(self, pid: int, status: int) -> bool:
        if not (os.WIFEXITED(status) or os.WIFSIGNALED(status)):
            return False
        self.live.discard(pid)
        if pid == self.root:
            self.status = (os.WEXITSTATUS(status) if os.WIFEXITED(status)
                           else -os.WTERMSIG(status))
        return True

    def _event(self, pid: int, status: int) -> int:
        """The ptrace event of a stop, the tracees it adds or removes noted."""
        self.seen.add(pid)
        if pid not in self.released:
            self.live.add(pid)
        event = status >> 16
        if event in NEW_TRACEE_EVENTS or event == PTRACE_EVENT_EXEC:
            message = ctypes.c_ulong()
            try:
                _ptrace(PTRACE_GETEVENTMSG, pid, 0, ctypes.cast(ctypes.byref(message),
                                                                ctypes.c_void_p))
            except OSError:
                return event
            if event == PTRACE_EVENT_EXEC:  # a thread that exec'd took the leader's id
                if message.value != pid:
                    self.live.discard(message.value)
            elif message.value not in self.released:
                self.live.add(message.value)
        return event

    def release(self, grace: float) -> int:
        """Detach every tracee (an attach ends): interrupt each, detach each at its next stop with
        the signal it was stopped for. Returns how many did not stop within ``grace`` seconds:
        the kernel releases those when the recorder exits."""
        for tid in list(self.live):
            try:
                _ptrace(PTRACE_INTERRUPT, tid)
            except ProcessLookupError:
                self.live.discard(tid)
        self.deadline = time.monotonic() + grace
        while self.live:
            try:
                got = self._next()
            except ChildProcessError:  # no tracee left at all
                self.live.clear()
                break
            if got is None:
                break
            pid, status = got
            if self._ended(pid, status) or not os.WIFSTOPPED(status):
                continue
            event = self._event(pid, status)
            sig = os.WSTOPSIG(status)
            inject = sig if event == 0 and status != SYSCALL_STOP_STATUS else 0
            with contextlib.suppress(ProcessLookupError):
                _ptrace(PTRACE_DETACH, pid, 0, inject)
            self.live.discard(pid)
            self.released.add(pid)
        return len(self.live)
