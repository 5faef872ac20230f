"""agent/seccomp/assemble.py: libseccomp in a child process, bounded in time."""

from __future__ import annotations

import pytest

from agent.location import Location
from agent.seccomp.compile import build_filter
from agent.seccomp.model import ALLOW, EPERM, Action, ActionKind
from agent.seccomp.plan import CompileError
from tests.seccomp.kernel import RUNTIME
from tests.seccomp.rules import arg, prof, rule

E20 = Action(ActionKind.ERRNO, 20)


def test_binary_tree_only_above_a_handful_of_syscalls() -> None:
    few = build_filter(prof(EPERM, (rule("getppid getuid"),)))
    assert few.attributes == {"badarch": 0x80000000, "nnp": 1, "tsync": 1, "sysrawrc": 1,
                              "optimize": 1}
    assert "if ($syscall >" not in few.pfc()
    many = build_filter(prof(EPERM, (rule(" ".join(RUNTIME)),), no_new_privs=False))
    assert many.attributes["optimize"] == 2 and many.attributes["nnp"] == 0
    assert "if ($syscall >" in many.pfc()  # the binary search over syscall numbers


def test_libseccomp_looping_forever_is_bounded() -> None:
    profile = prof(Action(ActionKind.ERRNO, 22),
                   (rule("getppid", E20, arg(1, "gt", 7)), rule("getppid", ALLOW, arg(1, "gt", 6)),
                    rule("getppid")),
                   (rule("getppid", Action(ActionKind.ERRNO, 21), arg(0, "gt", 1)),),
                   location=Location("loop.yaml", 1, 1))
    with pytest.raises(CompileError) as raised:
        build_filter(profile)
    assert str(raised.value).startswith("loop.yaml:1:1: libseccomp did not finish building the "
                                        "filter in 2s")
