"""ptrace(2) as hostguard uses it: request numbers, options, wait constants, libc's ``ptrace``.

One place for what the deep dump (:mod:`agent.host.seccomp_dump`), the recorder
(:mod:`agent.enforce.trace`) and the live apply (:mod:`agent.enforce.inject`) share. libc's
``ptrace`` is bound twice: :data:`ptrace_released` releases the GIL (for a call that can block,
such as ``PTRACE_SEIZE`` of a thread in ``execve``, or the recorder's hot loop, which other
Python threads must not wait for), :data:`ptrace_held` keeps it (for the calls made while a
tracee is held stopped: no other Python thread runs before it is released). Both return -1
with ``ctypes.get_errno()`` set on failure.
"""

from __future__ import annotations

import ctypes

PTRACE_CONT = 7
PTRACE_GETREGS = 12
PTRACE_SETREGS = 13
PTRACE_DETACH = 17
PTRACE_SYSCALL = 24
PTRACE_SETOPTIONS = 0x4200
PTRACE_GETEVENTMSG = 0x4201
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_LISTEN = 0x4208
PTRACE_GETSIGMASK = 0x420A
PTRACE_SETSIGMASK = 0x420B
PTRACE_SECCOMP_GET_FILTER = 0x420C
PTRACE_GET_SYSCALL_INFO = 0x420E

PTRACE_O_TRACESYSGOOD = 0x1
"""Syscall stops report ``SIGTRAP | 0x80``."""
PTRACE_O_TRACEFORK = 0x2
PTRACE_O_TRACEVFORK = 0x4
PTRACE_O_TRACECLONE = 0x8
PTRACE_O_TRACEEXEC = 0x10
PTRACE_O_EXITKILL = 0x100000

PTRACE_EVENT_EXEC = 4
PTRACE_EVENT_STOP = 128
"""The event of an interrupt stop or (with ``PTRACE_SEIZE``) a group stop."""

WALL = 0x40000000
"""``__WALL``: wait for threads (clone children) and tracees that are not the caller's
children."""
P_PID = 1
CLD_TRAPPED = 4
"""``si_code`` of a ptrace-stop; ``si_status`` is then ``event << 8 | signal``."""

ptrace_released = ctypes.CDLL(None, use_errno=True).ptrace
ptrace_released.restype = ctypes.c_long
ptrace_released.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
ptrace_held = ctypes.PyDLL(None, use_errno=True).ptrace
ptrace_held.restype = ctypes.c_long
ptrace_held.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]


def tracer_of(tid: int) -> int | None:
    """The ``TracerPid`` of thread ``tid`` (0: none), or None when it cannot be read."""
    try:
        with open(f"/proc/{tid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None
