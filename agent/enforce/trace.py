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
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
from collections.abc import Mapping, Sequence
from typing import NoReturn

from agent.core.record import record
from agent.seccomp import syscalls

PTRACE_SYSCALL = 24
PTRACE_SETOPTIONS = 0x4200
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_LISTEN = 0x4208
PTRACE_GET_SYSCALL_INFO = 0x420E
PTRACE_SYSCALL_INFO_ENTRY = 1
OPTIONS = (0x1      # TRACESYSGOOD: syscall stops report SIGTRAP | 0x80
           | 0x2    # TRACEFORK
           | 0x4    # TRACEVFORK
           | 0x8    # TRACECLONE
           | 0x10   # TRACEEXEC
           | 0x100000)  # EXITKILL
PTRACE_EVENT_STOP = 128
SYSCALL_STOP_STATUS = (signal.SIGTRAP | 0x80) << 8 | 0x7F
"""The wait status of a syscall stop (stopped, SIGTRAP | 0x80, no event)."""
WALL = 0x40000000
"""``__WALL``: wait for threads (clone children) too."""
STOP_SIGNALS = frozenset({signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})

_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.ptrace.restype = ctypes.c_long
_LIBC.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]


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
    status: int
    """The command's exit status, or minus the signal that killed it (as ``subprocess``)."""
    processes: int
    """Threads and processes traced, the command included."""
    values: frozenset[tuple[int, int, int, int]] = frozenset()
    """(audit architecture, syscall number, argument index, value) for each argument asked for
    (``watch`` of :func:`run_traced`), each distinct value once."""


def _ptrace(request: int, pid: int, addr: int = 0, data: int | ctypes.c_void_p = 0) -> int:
    ctypes.set_errno(0)
    result = int(_LIBC.ptrace(request, pid, addr, data))
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
        return _follow(pid, (syscalls.arch_token("native"), syscalls.resolve("execve") or -1),
                       watch or {})
    finally:
        for sig, handler in kept.items():
            signal.signal(sig, handler)


def _child(ready: int, go: int, path: str, argv: Sequence[str]) -> NoReturn:
    try:
        os.close(go)
        for sig in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(sig, signal.SIG_DFL)
        if os.read(ready, 1) != b"!":
            os._exit(126)  # the recorder could not trace: the command must not run untraced
        os.close(ready)
        os.execv(path, list(argv))  # noqa: S606 - the command being recorded
    except OSError as exc:
        os.write(2, f"hostguard seccomp record: cannot execute {path}: {exc.strerror}\n".encode())
        os._exit(127 if exc.errno == errno.ENOENT else 126)
    finally:
        os._exit(126)


def _follow(root: int, start: tuple[int, int],
            watch: Mapping[tuple[int, int], tuple[int, ...]]) -> Trace:
    """Resume every stop of ``root`` and its descendants until none is left; ``start`` is the
    (audit arch, nr) of the ``execve`` from which calls count."""
    calls: set[tuple[int, int]] = set()
    values: set[tuple[int, int, int, int]] = set()
    info = _SyscallInfo()
    info_size = ctypes.sizeof(info)
    info_ref = ctypes.cast(ctypes.byref(info), ctypes.c_void_p)
    recording = False
    status_of_root: int | None = None
    seen: set[int] = {root}
    ptrace, waitpid = _LIBC.ptrace, os.waitpid
    while True:
        try:
            pid, status = waitpid(-1, WALL)
        except ChildProcessError:
            break
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
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            if pid == root:
                status_of_root = (os.WEXITSTATUS(status) if os.WIFEXITED(status)
                                  else -os.WTERMSIG(status))
            continue
        if not os.WIFSTOPPED(status):
            continue
        seen.add(pid)
        sig = os.WSTOPSIG(status)
        event = status >> 16
        if event == PTRACE_EVENT_STOP:
            # A group stop stays a stop (LISTEN); an interrupt or a new child's first stop goes on.
            _resume(pid, PTRACE_LISTEN if sig in STOP_SIGNALS else PTRACE_SYSCALL)
        elif event:
            _resume(pid)  # fork, vfork, clone, exec: the new tracees report on their own
        else:
            _resume(pid, PTRACE_SYSCALL, sig)  # a signal for the program: delivered as sent
    if status_of_root is None:  # not reached: the root's end is always reported to its parent
        raise TraceError("the command's exit status was not reported")
    return Trace(frozenset(calls), status_of_root, len(seen), frozenset(values))
