"""agent/seccomp/selfcheck.py: a generated program run as the kernel would, against the plan."""

from __future__ import annotations

import struct

from agent.seccomp import selfcheck, syscalls
from agent.seccomp.compile import build_filter
from agent.seccomp.model import ALLOW, EPERM, KILL_PROCESS
from tests.seccomp.rules import native_x86_64, prof, rule

X32 = 0x40000000
AUDIT_ARCH_X86_64 = 0xC000003E


def test_check_runs_x32_numbers_under_the_x86_64_token() -> None:
    native_x86_64()
    getppid = syscalls.resolve("getppid")
    assert getppid is not None
    profile = prof(EPERM, (rule("getppid"),))
    compiled = build_filter(profile)
    assert selfcheck.check(compiled.bpf(), compiled.arches, {"getppid": [(ALLOW, [])]}, EPERM,
                           KILL_PROCESS) is None
    # a filter that forgets the x32 bit: x32 getppid slips through as x86_64 getppid
    forgets = b"".join(struct.pack("=HBBI", *insn) for insn in (
        (0x20, 0, 0, 4), (0x15, 0, 5, AUDIT_ARCH_X86_64),
        (0x20, 0, 0, 0), (0x54, 0, 0, ~X32 & 0xFFFFFFFF),  # A = nr without the x32 bit
        (0x15, 0, 1, getppid), (0x06, 0, 0, 0x7FFF0000), (0x06, 0, 0, 0x00050001),
        (0x06, 0, 0, 0x80000000)))
    assert selfcheck.check(forgets, compiled.arches, {"getppid": [(ALLOW, [])]}, EPERM,
                           KILL_PROCESS) == ("ABI x32 is not blocked: the generated filter "
                                             "returns 0x00050001 for syscall 1073741824")
