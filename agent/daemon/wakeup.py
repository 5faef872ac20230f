"""A sleep that any handled signal cuts short, without a lock in the signal handler.

A Python signal handler runs in the main thread between two bytecodes, possibly while the main
thread holds a lock. ``threading.Event.set()`` from a handler therefore deadlocks when the main
thread is inside the same event's ``wait()`` or ``clear()`` (both hold its condition's lock; see
CPython issue 126434): a SIGTERM then never stops the daemon. The classic remedy is the
self-pipe: :func:`signal.set_wakeup_fd` makes the interpreter's C-level handler write a byte to a
pipe when a signal arrives, and the sleep is a ``poll`` on that pipe. A signal that arrives
before the sleep begins leaves its byte in the pipe, so no wake-up is lost either.
"""

from __future__ import annotations

import os
import select
import signal


class Wakeup:
    """Owns the interpreter's wakeup fd from construction until :meth:`close` (main thread only)."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._poll = select.poll()
        self._poll.register(self._read, select.POLLIN)
        try:
            self._previous = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        except BaseException:
            os.close(self._read)
            os.close(self._write)
            raise

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; True when a signal arrived (now or since the last
        wait). The caller then looks at the flags its handlers set."""
        if not self._poll.poll(max(timeout, 0.0) * 1000):  # poll: no FD_SETSIZE limit
            return False
        try:
            while os.read(self._read, 512):
                pass
        except BlockingIOError:
            pass
        return True

    def close(self) -> None:
        signal.set_wakeup_fd(self._previous)
        os.close(self._read)
        os.close(self._write)

    def __enter__(self) -> Wakeup:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
