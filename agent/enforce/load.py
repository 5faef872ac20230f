"""The kernel load: ``prctl(PR_SET_NO_NEW_PRIVS)`` and ``seccomp(2)`` with a checked program.

:func:`load_filter` loads exactly the bytes :func:`agent.seccomp.compile.build_filter` checked
(not libseccomp's ``seccomp_load``, which would generate the program again), with the attributes
it recorded: no_new_privs first when the profile asks for it, ``SECCOMP_FILTER_FLAG_TSYNC`` so
every thread of the caller gets the filter. Only the process that is to run under the filter
calls it (``hostguard exec``, just before ``execve``): a filter cannot be taken back.
"""

from __future__ import annotations

import ctypes
import errno
import os

from agent.seccomp import syscalls
from agent.seccomp.compile import CompiledFilter

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
PR_SET_NO_NEW_PRIVS = 38
_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.syscall.restype = ctypes.c_long
_LIBC.prctl.restype = ctypes.c_int


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def set_no_new_privs() -> None:
    """``prctl(PR_SET_NO_NEW_PRIVS, 1)`` (raises OSError)."""
    if _LIBC.prctl(PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), ctypes.c_ulong(0),
                   ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def load_filter(compiled: CompiledFilter) -> None:
    """Load ``compiled`` into the calling process, exactly the program that was checked.

    Sets no_new_privs first when the profile asks for it, then ``seccomp(2)`` with
    ``SECCOMP_FILTER_FLAG_TSYNC`` (what ``seccomp_load`` does with these attributes).
    Raises OSError with the kernel's errno.
    """
    if compiled.attributes.get("nnp", 1):
        set_no_new_privs()
    program = compiled.bpf()
    buffer = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    flags = SECCOMP_FILTER_FLAG_TSYNC if compiled.attributes.get("tsync", 1) else 0
    ctypes.set_errno(0)
    result = _LIBC.syscall(_seccomp_nr(), SECCOMP_SET_MODE_FILTER, flags, ctypes.byref(prog))
    if result != 0:
        err = ctypes.get_errno() if result < 0 else errno.EBUSY
        message = os.strerror(err) if result < 0 else f"thread {result} cannot be synchronised"
        raise OSError(err, message)


def _seccomp_nr() -> int:
    number = syscalls.resolve("seccomp")
    if number is None:
        raise OSError(errno.ENOSYS, "no seccomp syscall on this architecture")
    return number
