"""agent/enforce/load.py: the checked program into the kernel, no_new_privs first, every thread.

Each load happens in a forked child (``tests.seccomp.kernel.in_child``): a filter cannot be taken
back. The child reports its own ``/proc`` status lines through a pipe.
"""

from __future__ import annotations

import errno
import os
import threading
from dataclasses import replace

from agent.enforce.load import load_filter
from agent.seccomp.compile import CompiledFilter, build_filter
from agent.seccomp.model import ALLOW, EPERM, Profile, Rule
from tests.seccomp.kernel import in_child

KEYS = ("NoNewPrivs", "Seccomp", "Seccomp_filters")


def status(path: str) -> str:
    """The :data:`KEYS` lines of a ``/proc`` status file, as ``key=value`` words."""
    with open(path, encoding="ascii") as lines:
        pairs = [line.split(":\t", 1) for line in lines]
    return " ".join(f"{key}={value.strip()}" for key, value in pairs if key in KEYS)


def deny_list(no_new_privs: bool = True) -> CompiledFilter:
    """A filter the child's Python runs under unhindered (it denies kexec_load only)."""
    return build_filter(Profile("t", ALLOW, deny=(Rule(("kexec_load",), EPERM),),
                                no_new_privs=no_new_privs))


def test_load_sets_no_new_privs_and_reaches_a_running_thread() -> None:
    compiled = deny_list()

    def child(out: int) -> None:
        loaded, seen = threading.Event(), []

        def other() -> None:  # running before the load: TSYNC must reach it too
            loaded.wait()
            seen.append(status("/proc/thread-self/status"))

        thread = threading.Thread(target=other)
        thread.start()
        load_filter(compiled)
        loaded.set()
        thread.join()
        os.write(out, f"{status('/proc/self/status')}\n{seen[0]}".encode())

    written, state = in_child(child)
    assert os.WIFEXITED(state) and os.WEXITSTATUS(state) == 0, state
    assert written.decode().splitlines() == ["NoNewPrivs=1 Seccomp=2 Seccomp_filters=1"] * 2


def test_without_no_new_privs_root_loads_and_leaves_it_unset() -> None:
    compiled = deny_list(no_new_privs=False)
    assert compiled.attributes["nnp"] == 0

    def child(out: int) -> None:
        load_filter(compiled)
        os.write(out, status("/proc/self/status").encode())

    written, state = in_child(child)
    assert os.WIFEXITED(state) and os.WEXITSTATUS(state) == 0, state
    assert written.decode() == "NoNewPrivs=0 Seccomp=2 Seccomp_filters=1"


def test_a_program_the_kernel_refuses_is_an_oserror_and_loads_nothing() -> None:
    broken = replace(deny_list(), program=b"\x00" * 8 * 3)  # three loads, no return

    def child(out: int) -> None:
        try:
            load_filter(broken)
        except OSError as err:
            os.write(out, f"{err.errno} {status('/proc/self/status')}".encode())

    written, state = in_child(child)
    assert os.WIFEXITED(state) and os.WEXITSTATUS(state) == 0, state
    assert written.decode() == f"{errno.EINVAL} NoNewPrivs=1 Seccomp=0 Seccomp_filters=0"

