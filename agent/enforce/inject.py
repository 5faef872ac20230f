"""Make a running thread load a seccomp filter: ptrace syscall injection, x86_64.

The mechanics of ``hostguard seccomp apply`` (the decisions, what is refused and the proof are
:mod:`agent.enforce.apply`'s). One thread is stopped (:func:`agent.host.seccomp_dump.run_stopped`:
``PTRACE_SEIZE`` + ``PTRACE_INTERRUPT``, always detached, a tracer thread whose end releases the
thread if anything goes wrong), and while it is held:

1. Its registers and blocked-signal mask are saved; every signal is blocked
   (``PTRACE_SETSIGMASK``) so that none is delivered to the borrowed context; a signal arriving
   meanwhile stays pending.
2. The program and its ``struct sock_fprog`` are written below the thread's stack pointer
   (past the red zone, inside the mapping that holds the stack; the bytes there are saved).
3. Each call is made by pointing the instruction pointer at a ``syscall`` instruction (one in
   the vDSO, found before the stop) with the number and arguments in the registers and
   ``orig_rax`` = -1, so that the kernel's restart logic leaves the borrowed context alone;
   ``PTRACE_SYSCALL`` runs exactly that instruction (entry stop, exit stop) and no user code:
   ``prctl(PR_SET_NO_NEW_PRIVS, 1)`` unless the thread has it already, then
   ``seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fprog)``.
4. From the last exit stop the thread is sent back into an interrupt stop (``PTRACE_INTERRUPT``
   + ``PTRACE_CONT``: the trap is taken in ``get_signal()`` before anything returns to user
   mode); there the memory, the registers and the mask are put back as they were and the
   thread is detached.

Why the registers go back at an interrupt stop and not at a syscall stop: a thread interrupted
inside a blocking call (futex, nanosleep, read ...) holds ``-ERESTART*`` in ``rax`` and the call
in ``orig_rax``. The kernel turns that into a restart (``ip -= 2``, ``rax = orig_rax``, or
``restart_syscall`` for nanosleep) only on the signal path, in ``arch_do_signal_or_restart()``,
right after the ``get_signal()`` in which an interrupt stop sits. Restoring there leaves the
decision to the kernel, as if the thread had never been stopped: with no signal pending the call
is restarted; with one pending (it arrived while the thread was held, or was sent by the time
the mask is back), it is delivered with the kernel's own ``SA_RESTART`` rules.

What changes in the target: the filter (TSYNC: every thread, and threads created later inherit
it) and no_new_privs. Nothing else: not the registers, not the signal mask, not one byte of
memory (read back and compared before the detach), no mapping added or removed. If the kernel
refuses the seccomp call, the only lasting trace is no_new_privs on the one thread that made the
call, and only when it did not have it before (:attr:`InjectError.changed` says so).

Limits, stated rather than hidden: the thread must run x86_64 code (``cs`` 0x33); an rseq
critical section interrupted here is not aborted as a preemption would abort it; a tracer
killed with SIGKILL while the thread executes a borrowed call releases the thread in the
borrowed context (catchable signals are no risk: the tracer is a separate thread, and the hold
is far shorter than any human reaction).
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import signal
from collections.abc import Callable

from agent.core.record import record
from agent.host.ptrace import (
    CLD_TRAPPED,
    PTRACE_CONT,
    PTRACE_EVENT_STOP,
    PTRACE_GETREGS,
    PTRACE_GETSIGMASK,
    PTRACE_INTERRUPT,
    PTRACE_O_TRACESYSGOOD,
    PTRACE_SETOPTIONS,
    PTRACE_SETREGS,
    PTRACE_SETSIGMASK,
    PTRACE_SYSCALL,
    ptrace_held,
)
from agent.host.seccomp_dump import (
    DumpError,
    run_stopped,
    wait_report,
)

SYSCALL_STOP = signal.SIGTRAP | 0x80
NR_PRCTL = 157
NR_SECCOMP = 317
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
USER_CS_64 = 0x33
"""``__USER_CS``: the thread runs 64-bit code (0x23 would be 32-bit compatibility mode)."""
RED_ZONE = 128
"""Bytes below the stack pointer the x86_64 ABI lets a function use without moving it."""
FPROG_SIZE = 16
"""``struct sock_fprog`` on 64-bit: u16 len, 6 bytes of padding, the program's address."""
SYSCALL_INSN = b"\x0f\x05"
ALL_SIGNALS = (1 << 64) - 1
"""The mask set while held (the kernel drops SIGKILL and SIGSTOP from it)."""

# Every call made while the thread is held keeps the GIL (PyDLL): no other Python thread runs
# before the thread is released.
_LIBC = ctypes.PyDLL(None, use_errno=True)
_pread = _LIBC.pread
_pread.restype = ctypes.c_ssize_t
_pread.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long]
_pwrite = _LIBC.pwrite
_pwrite.restype = ctypes.c_ssize_t
_pwrite.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long]


class Regs(ctypes.Structure):
    """``struct user_regs_struct`` of x86_64 (``PTRACE_GETREGS``)."""

    _fields_ = [(name, ctypes.c_ulonglong) for name in (
        "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx",
        "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base",
        "gs_base", "ds", "es", "fs", "gs")]


class InjectError(Exception):
    """The filter was not loaded; :attr:`reason` says why, :attr:`changed` what stayed."""

    def __init__(self, reason: str, *, changed: str | None = None,
                 errno: int | None = None, retry: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.changed = changed
        """None when the thread was left exactly as it was; else what stayed changed."""
        self.errno = errno
        self.retry = retry
        """The thread was caught delivering a signal (passed on untouched): try again."""


@record
class Injected:
    """A filter loaded by :func:`inject_filter`."""

    tid: int
    """The thread that made the calls (TSYNC gave the filter to the others)."""
    set_nnp: bool
    """Whether no_new_privs was set here (False: the thread had it, or the profile did not ask)."""
    held_ns: int
    stop_ns: int
    """How long the thread was stopped (:class:`agent.host.seccomp_dump.Held`)."""


@record
class Target:
    """What is read of the thread before it is stopped."""

    tid: int
    syscall_at: int
    """Address of a ``syscall`` instruction in the target's vDSO."""
    stack: tuple[tuple[int, int], ...]
    """Writable private mappings (start, end) a stack pointer may lie in."""
    nnp: bool


def find_target(tid: int) -> Target:
    """Read the thread's mappings, its vDSO's ``syscall`` instruction and its no_new_privs
    (raises :class:`InjectError` when something needed is missing; nothing is stopped)."""
    try:
        with open(f"/proc/{tid}/maps", encoding="ascii", errors="replace") as handle:
            maps = handle.read()
        with open(f"/proc/{tid}/status", encoding="ascii", errors="replace") as handle:
            status = handle.read()
    except FileNotFoundError:
        raise InjectError(f"thread {tid} does not exist (it exited)", errno=errno.ESRCH) from None
    except OSError as exc:
        raise InjectError(f"cannot read /proc/{tid}: {exc.strerror}", errno=exc.errno) from None
    stack: list[tuple[int, int]] = []
    vdso: tuple[int, int] | None = None
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) < 5:
            continue
        start, _, end = fields[0].partition("-")
        span = (int(start, 16), int(end, 16))
        name = fields[5] if len(fields) > 5 else ""
        if name == "[vdso]":
            vdso = span
        elif fields[1].startswith("rw") and fields[1].endswith("p"):
            stack.append(span)
    if vdso is None:
        raise InjectError(f"thread {tid} has no vDSO (booted with vdso=0?): no syscall "
                          "instruction to borrow")
    code = _read_memory(tid, vdso[0], vdso[1] - vdso[0])
    offset = code.find(SYSCALL_INSN)
    if offset < 0:
        raise InjectError(f"no syscall instruction in the vDSO of thread {tid}")
    found = re.search(r"^NoNewPrivs:\s*(\d)", status, re.MULTILINE)
    return Target(tid, vdso[0] + offset, tuple(stack), bool(found and found.group(1) == "1"))


def inject_filter(target: Target, program: bytes, *, nnp: bool, timeout: float = 0.25,
                  meanwhile: Callable[[], object] | None = None) -> Injected:
    """Make ``target``'s thread load ``program`` (raw ``sock_filter`` bytes) with TSYNC, setting
    no_new_privs first when ``nnp`` and the thread lacks it. Raises :class:`InjectError`.

    ``meanwhile`` is called while the thread is held, before the calls (the tests send it a
    signal there, which must be delivered once it runs again)."""
    if not program or len(program) % 8:
        raise InjectError("the filter program is empty or not whole instructions")
    set_nnp = nnp and not target.nnp
    try:
        fd = os.open(f"/proc/{target.tid}/mem", os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise InjectError(f"cannot open the memory of thread {target.tid}: {exc.strerror}",
                          errno=exc.errno) from None
    try:
        session = _Session(target, fd, program, set_nnp, meanwhile)
        try:
            held = run_stopped(target.tid, session.during, timeout)
        except DumpError as exc:
            raise InjectError(exc.reason, errno=exc.errno) from None
    finally:
        os.close(fd)
    if session.failure is not None:
        raise session.failure
    return Injected(target.tid, set_nnp, held.held_ns, held.stop_ns)


class _Session:
    """One injection, run on the tracer thread while the thread is stopped."""

    def __init__(self, target: Target, fd: int, program: bytes, set_nnp: bool,
                 meanwhile: Callable[[], object] | None) -> None:
        self.target = target
        self.tid = target.tid
        self.fd = fd
        self.program = program
        self.set_nnp = set_nnp
        self.meanwhile = meanwhile
        self.failure: InjectError | None = None
        """Set when a call failed and the thread was put back (raised after the detach)."""
        self.resumed = False
        """Whether the thread left the interrupt stop it was caught in."""

    def during(self, stop: str, sig: int) -> None:
        if stop == "signal":
            raise InjectError(f"thread {self.tid} was delivering signal {sig}", retry=True)
        if stop == "group-stop":
            raise InjectError(f"thread {self.tid} is stopped by job control (signal {sig}): "
                              "continue it (SIGCONT) before applying a filter")
        saved = Regs()
        _call(PTRACE_GETREGS, self.tid, 0, ctypes.addressof(saved))
        if saved.cs != USER_CS_64:
            raise InjectError(f"thread {self.tid} runs 32-bit code (cs {saved.cs:#x}): only "
                              "x86_64 threads can be made to load a filter")
        mask = ctypes.c_ulonglong()
        _call(PTRACE_GETSIGMASK, self.tid, 8, ctypes.addressof(mask))
        scratch = self._scratch(saved.rsp)
        kept = _pread_exact(self.fd, len(scratch[1]), scratch[0], self.tid)
        _call(PTRACE_SETOPTIONS, self.tid, 0, PTRACE_O_TRACESYSGOOD)
        blocked = ctypes.c_ulonglong(ALL_SIGNALS)
        _call(PTRACE_SETSIGMASK, self.tid, 8, ctypes.addressof(blocked))
        if self.meanwhile is not None:
            self.meanwhile()
        try:
            _pwrite_exact(self.fd, scratch[1], scratch[0], self.tid)
            self._calls(saved, scratch[0])
        finally:
            self._put_back(saved, mask, scratch[0], kept)

    def _scratch(self, rsp: int) -> tuple[int, bytes]:
        """Where the fprog and the program go (below the red zone), and those bytes."""
        size = FPROG_SIZE + len(self.program)
        address = (rsp - RED_ZONE - size) & ~0xF
        if not any(start <= address and rsp <= end for start, end in self.target.stack):
            raise InjectError(f"thread {self.tid}: no room for the {len(self.program)}-byte "
                              "program below its stack pointer (a stack mapping too small)")
        fprog = (len(self.program) // 8).to_bytes(2, "little") + bytes(6) \
            + (address + FPROG_SIZE).to_bytes(8, "little")
        return address, fprog + self.program

    def _calls(self, saved: Regs, fprog: int) -> None:
        if self.set_nnp:
            result = self._syscall(saved, NR_PRCTL, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            if result != 0:
                self.failure = InjectError(f"prctl(PR_SET_NO_NEW_PRIVS) failed in thread "
                                           f"{self.tid}: {_strerror(result)}", errno=-result)
                return
        result = self._syscall(saved, NR_SECCOMP, SECCOMP_SET_MODE_FILTER,
                               SECCOMP_FILTER_FLAG_TSYNC, fprog)
        if result == 0:
            return
        changed = (f"no_new_privs is now set on thread {self.tid} (it only keeps execve from "
                   "granting privileges)") if self.set_nnp else None
        if result > 0:
            self.failure = InjectError(
                f"the kernel refused to synchronise the filter (TSYNC): thread {result} "
                "carries a filter stack that is not an ancestor of this thread's",
                changed=changed, errno=errno.EBUSY)
        else:
            self.failure = InjectError(f"seccomp(SECCOMP_SET_MODE_FILTER) failed in thread "
                                       f"{self.tid}: {_strerror(result)}", changed=changed,
                                       errno=-result)

    def _syscall(self, saved: Regs, nr: int, *args: int) -> int:
        """Run one call in the thread (entry and exit stop) and return what it returned."""
        regs = Regs.from_buffer_copy(saved)
        regs.rax, regs.orig_rax, regs.rip = nr, (1 << 64) - 1, self.target.syscall_at
        for name, value in zip(("rdi", "rsi", "rdx", "r10", "r8", "r9"), args, strict=False):
            setattr(regs, name, value)
        _call(PTRACE_SETREGS, self.tid, 0, ctypes.addressof(regs))
        for _ in ("entry", "exit"):
            self.resumed = True
            _call(PTRACE_SYSCALL, self.tid, 0, 0)
            self._wait_syscall_stop()
        _call(PTRACE_GETREGS, self.tid, 0, ctypes.addressof(regs))
        result: int = regs.rax
        return result - (1 << 64) if result >= 1 << 63 else result

    def _wait_syscall_stop(self) -> None:
        while True:
            status = self._report()
            if status == SYSCALL_STOP:
                return
            if status >> 8 == PTRACE_EVENT_STOP:  # SIGSTOP meanwhile: it stops after release
                _call(PTRACE_SYSCALL, self.tid, 0, 0)
                continue
            raise InjectError(f"thread {self.tid} stopped with signal {status & 0xFF} during "
                              "a borrowed call", errno=errno.EINTR)

    def _report(self) -> int:
        """The status of the thread's next stop (``event << 8 | signal``)."""
        code, status = wait_report(self.tid)
        if code != CLD_TRAPPED:
            raise InjectError(f"thread {self.tid} was killed while it was held",
                              errno=errno.ESRCH)
        return status

    def _put_back(self, saved: Regs, mask: ctypes.c_ulonglong, address: int,
                  kept: bytes) -> None:
        """Back into an interrupt stop (if the thread left it), then memory, registers, mask.

        Had the borrowed context not been left (a failure before the first call), the
        registers set for it are overwritten here all the same."""
        if self.resumed:  # at a syscall stop: into an interrupt stop before user mode
            _call(PTRACE_INTERRUPT, self.tid, 0, 0)
            _call(PTRACE_CONT, self.tid, 0, 0)
            while True:
                status = self._report()
                if status == PTRACE_EVENT_STOP << 8 | signal.SIGTRAP:
                    break
                _call(PTRACE_CONT, self.tid, 0, 0)  # a group stop: reinstated at the detach
        _pwrite_exact(self.fd, kept, address, self.tid)
        if _pread_exact(self.fd, len(kept), address, self.tid) != kept:
            raise InjectError(f"thread {self.tid}: its stack bytes could not be put back",
                              changed="the bytes below its stack pointer")
        _call(PTRACE_SETREGS, self.tid, 0, ctypes.addressof(saved))
        _call(PTRACE_SETSIGMASK, self.tid, 8, ctypes.addressof(mask))


def _call(request: int, tid: int, addr: int, data: int) -> None:
    if ptrace_held(request, tid, ctypes.c_void_p(addr), ctypes.c_void_p(data)) == -1:
        err = ctypes.get_errno()
        if err:
            raise InjectError(f"ptrace request {request:#x} on thread {tid} failed: "
                              f"{os.strerror(err)}", errno=err)


def _pread_exact(fd: int, size: int, address: int, tid: int) -> bytes:
    buffer = ctypes.create_string_buffer(size)
    if _pread(fd, buffer, size, address) != size:
        raise InjectError(f"cannot read {size} bytes at {address:#x} in thread {tid}: "
                          f"{os.strerror(ctypes.get_errno())}")
    return buffer.raw


def _pwrite_exact(fd: int, data: bytes, address: int, tid: int) -> None:
    if _pwrite(fd, data, len(data), address) != len(data):
        raise InjectError(f"cannot write {len(data)} bytes at {address:#x} in thread {tid}: "
                          f"{os.strerror(ctypes.get_errno())}")


def _read_memory(tid: int, address: int, size: int) -> bytes:
    try:
        with open(f"/proc/{tid}/mem", "rb", buffering=0) as mem:
            return os.pread(mem.fileno(), size, address)
    except OSError as exc:
        raise InjectError(f"cannot read the memory of thread {tid}: {exc.strerror}",
                          errno=exc.errno) from None


def _strerror(result: int) -> str:
    return f"{errno.errorcode.get(-result, str(-result))} ({os.strerror(-result)})"
