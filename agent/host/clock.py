"""The kernel clock's discipline as ``adjtimex(2)`` reports it (what ``adjtimex --print`` shows).

The kernel keeps the NTP state of the system clock in memory, not in a file: only the live host
can be asked (a read-only call, ``modes = 0``). For any other root the answer is a
:class:`ReadError` saying so: a tree copied from a host holds no clock state.
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

from agent.core.record import record
from agent.host.facts import ReadError

STA_UNSYNC = 0x0040
"""``status`` bit: the clock is not synchronized (include/uapi/linux/timex.h)."""
STA_NANO = 0x2000
"""``status`` bit: ``offset`` is in nanoseconds, not microseconds."""
TIME_OK = 0
STATES = {0: "TIME_OK", 1: "TIME_INS", 2: "TIME_DEL", 3: "TIME_OOP", 4: "TIME_WAIT",
          5: "TIME_ERROR"}
"""What ``adjtimex`` returns: the clock state (``TIME_ERROR``: not synchronized)."""


class _Timex(ctypes.Structure):
    # struct timex of <sys/timex.h> with the C library's long and time_t (LP64 and ILP32 with
    # 32-bit time alike); the eleven trailing ints are the kernel's reserved padding.
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long),
                ("status", ctypes.c_int), ("constant", ctypes.c_long),
                ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long), ("tick", ctypes.c_long),
                ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
                ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
                ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
                ("_reserved", ctypes.c_int * 11)]


@record
class KernelClock:
    """One ``adjtimex`` reading."""

    state: int
    """The return value: ``TIME_OK`` (0) ... ``TIME_ERROR`` (5), see :data:`STATES`."""
    status: int
    """The ``STA_*`` bits."""
    maxerror: int
    """Maximum error, microseconds (the kernel adds 500 per second while nobody disciplines
    the clock, up to 16 s)."""
    esterror: int
    """Estimated error, microseconds."""
    offset: int
    """Last offset applied, in microseconds or with ``STA_NANO`` nanoseconds."""
    freq: int
    """Frequency offset, in units of 2^-16 ppm."""

    @property
    def state_name(self) -> str:
        return STATES.get(self.state, f"state {self.state}")

    @property
    def synchronized(self) -> bool:
        """No ``STA_UNSYNC`` and the state ``TIME_OK``."""
        return not self.status & STA_UNSYNC and self.state == TIME_OK


def read_clock(root: Path) -> KernelClock | ReadError:
    """The kernel clock of the live host; a :class:`ReadError` for any other root."""
    if os.path.realpath(root) != "/":
        return ReadError(f"the kernel clock (adjtimex) is only read on the live host, not "
                         f"under --root {root}")
    timex = _Timex()  # modes = 0: read, change nothing
    libc = ctypes.CDLL(None, use_errno=True)
    state = int(libc.adjtimex(ctypes.byref(timex)))
    if state < 0:
        code = ctypes.get_errno()
        # Reading needs no privilege: EPERM is a system call filter (systemd's ProtectClock=).
        hint = (" (a system call filter refuses it, e.g. systemd's ProtectClock=; under "
                "hostguard.service: install-service --clock-read)") if code == errno.EPERM else ""
        return ReadError(f"adjtimex: {os.strerror(code).lower()}{hint}")
    return KernelClock(state, timex.status, timex.maxerror, timex.esterror, timex.offset,
                       timex.freq)
