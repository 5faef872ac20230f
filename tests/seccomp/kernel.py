"""Run syscalls under a compiled filter in a forked child and report what the kernel did.

``run_filtered(profile, calls)`` forks; the child compiles and loads the filter, makes each call
through ctypes ``syscall()`` and writes ``result errno`` per call to a pipe as it goes (so the calls
before a fatal one are still reported), then ``os._exit(0)``. The parent returns the reported
outcomes and the child's wait status. :func:`in_child` is the fork-and-pipe it is built on, for
tests that run something else in the child.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from agent.enforce.load import load_filter
from agent.seccomp import syscalls
from agent.seccomp.compile import build_filter
from agent.seccomp.model import ALLOW, Profile, Rule

LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.syscall.restype = ctypes.c_long

RUNTIME = ("write", "exit_group", "exit", "brk", "mmap", "munmap", "mremap", "madvise",
           "rt_sigreturn", "rt_sigprocmask", "rt_sigaction", "futex", "close", "getpid",
           "gettid", "tgkill")
"""What the child's Python needs after loading (appended last, so the profile's rules win)."""


@dataclass(frozen=True)
class Call:
    """``syscall(nr, *args)``; ``nr`` a name (resolved on the native arch) or a number."""

    nr: str | int
    args: tuple[int, ...] = ()

    def number(self) -> int:
        if isinstance(self.nr, int):
            return self.nr
        found = syscalls.resolve(self.nr)
        assert found is not None, self.nr
        return found


@dataclass(frozen=True)
class Outcome:
    """What one run reported: per-call ``(result, errno)``, how the child ended, a SIGSYS seen."""

    results: tuple[tuple[int, int], ...]
    status: int
    trapped: bool

    @property
    def signal(self) -> int | None:
        return os.WTERMSIG(self.status) if os.WIFSIGNALED(self.status) else None

    @property
    def exit_code(self) -> int | None:
        return os.WEXITSTATUS(self.status) if os.WIFEXITED(self.status) else None

    @property
    def errnos(self) -> list[int]:
        return [err for _, err in self.results]


def with_runtime(profile: Profile) -> Profile:
    """``profile`` plus an allow rule (last) for what the child's Python needs."""
    return replace(profile, rules=(*profile.rules, Rule(RUNTIME, ALLOW)))


def run_filtered(profile: Profile, calls: Sequence[Call], mode: str | None = None,
                 *, runtime: bool = True, catch_sigsys: bool = False) -> Outcome:
    """Load ``profile``'s filter in a forked child, make ``calls``, report (see module doc)."""
    numbers = [(c.number(), [ctypes.c_long(a) for a in c.args]) for c in calls]
    target = with_runtime(profile) if runtime else profile

    def child(out: int) -> None:
        seen: list[int] = []
        if catch_sigsys:
            signal.signal(signal.SIGSYS, lambda signum, frame: seen.append(signum))
        load_filter(build_filter(target, mode))
        for nr, args in numbers:
            ctypes.set_errno(0)
            result = LIBC.syscall(nr, *args)
            err = ctypes.get_errno()
            os.write(out, f"{result} {err}\n".encode())
        _tick()  # a Python call: pending signal handlers run here at the latest
        os.write(out, f"sigsys {len(seen)}\n".encode())

    written, status = in_child(child)
    lines = [line.split() for line in written.decode().splitlines()]
    results = tuple((int(r), int(e)) for r, e in lines if r != "sigsys")
    trapped = any(r == "sigsys" and int(n) > 0 for r, n in lines)
    return Outcome(results, status, trapped)


def in_child(work: Callable[[int], int | None], *, failed: int = 3) -> tuple[bytes, int]:
    """Fork; the child runs ``work(fd)`` (``fd``: the write end of a pipe) and exits with what
    it returns (None: 0), or with ``failed`` when it raises. The parent reads the pipe to its end
    and returns what the child wrote (also before a fatal signal) and its wait status."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        code = failed
        try:
            os.close(read_end)
            code = work(write_end) or 0
        except BaseException:
            code = failed
        os._exit(code)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    return b"".join(chunks), status


def _tick() -> None:
    return None
