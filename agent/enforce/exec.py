"""``hostguard exec``: compile a seccomp profile, load it, execve the target — or run nothing.

A filter cannot be attached to a running process: the process loads it and what it executes
inherits it. So the order is: validate and compile (:func:`prepare`; nothing has changed yet),
then :func:`exec_filtered` sets no_new_privs, loads exactly the checked program and calls execve.

Fail closed. Whatever goes wrong before the execve — invalid profile, unknown syscall, a filter
libseccomp cannot build exactly, command not found, the kernel refusing the filter — the target
never runs unfiltered: the caller gets an :class:`ExecError` (before the load) or the process
exits 126 (127: command not found) after printing why (after the load, when execve itself fails).
Once execve succeeds, the exit status is the target's own.

::

    compiled, path = prepare(profile, ["cat", "/proc/self/status"])
    exec_filtered(compiled, path, ["cat", "/proc/self/status"])   # does not return
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from agent.enforce import EXIT_CANNOT_RUN, EXIT_NOT_FOUND
from agent.enforce.load import load_filter, set_no_new_privs
from agent.seccomp.compile import CompiledFilter, build_filter
from agent.seccomp.model import Profile
from agent.seccomp.plan import CompileError


class ExecError(Exception):
    """Why the target was not started, and the exit status to report."""

    def __init__(self, message: str, status: int = EXIT_CANNOT_RUN) -> None:
        super().__init__(message)
        self.message = message
        self.status = status



def restore_signals() -> None:
    """Give a program about to be exec'd the SIGPIPE and SIGXFSZ a shell gives it (a writer to a
    closed pipe dies of SIGPIPE): Python ignores both, and execve keeps an ignored signal
    ignored. subprocess's ``restore_signals`` does the same."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)

def find_command(command: str) -> str:
    """The path ``execve`` will get: ``command`` itself if it has a ``/``, else a PATH search."""
    if "/" in command:
        path = command
    else:
        found = shutil.which(command)
        if found is None:
            raise ExecError(f"{command}: command not found", EXIT_NOT_FOUND)
        path = found
    if not os.path.exists(path):
        raise ExecError(f"{command}: no such file", EXIT_NOT_FOUND)
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        raise ExecError(f"{command}: not an executable file")
    return path


def prepare(profile: Profile, argv: Sequence[str],
            mode: str | None = None) -> tuple[CompiledFilter, str]:
    """Compile the filter and find the command; raises :class:`ExecError`, changes nothing."""
    if not argv:
        raise ExecError("no command given (hostguard exec --profile P -- CMD [ARGS...])")
    try:
        compiled = build_filter(profile, mode)
    except CompileError as err:
        raise ExecError(f"cannot compile the profile: {err}") from None
    return compiled, find_command(argv[0])


def exec_filtered(compiled: CompiledFilter, path: str, argv: Sequence[str]) -> NoReturn:
    """Set no_new_privs, load the filter, execve ``path``. Never returns.

    A failure to load exits 126 with the reason and nothing executed. A failing execve happens
    under the filter already: the reason is written straight to fd 2 (no Python I/O machinery
    under a filter that may deny it) and the process ``_exit``s 126, or 127 for ENOENT.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    restore_signals()
    try:
        if compiled.profile.no_new_privs:
            set_no_new_privs()
        load_filter(compiled)
    except OSError as err:
        _die(f"cannot load the seccomp filter: {err.strerror or err}", EXIT_CANNOT_RUN)
    try:
        os.execv(path, list(argv))  # noqa: S606 - the point of hostguard exec
    except OSError as err:
        status = EXIT_NOT_FOUND if err.errno == errno.ENOENT else EXIT_CANNOT_RUN
        _die(f"cannot execute {path} under the filter: {err.strerror or err}", status)
    _die("execve returned", EXIT_CANNOT_RUN)  # not reached: execv returns only by raising


def _die(message: str, status: int) -> NoReturn:
    try:
        os.write(2, f"hostguard exec: {message}; the command was not run\n".encode())
    finally:
        os._exit(status)
