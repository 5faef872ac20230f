"""agent/seccomp/bpf.py against the kernel: a forked child loads the same filter stack and makes
the syscalls; what the kernel did must be what :func:`bpf.emulate_stack` predicted, and
:func:`bpf.decode` must refuse exactly the programs ``seccomp(2)`` refuses (a difference shows
:func:`agent.seccomp.bpf_disasm.disassemble`'s listing of the program).

Every child first loads a guard filter (the oldest of its stack): it lets through what the
child's Python needs (``RUNTIME``, plus ``seccomp`` to load the rest) and answers everything
else ``errno 4000``. So a syscall the tested filters let through is never made for real (reboot is
as safe to test as getppid), and the prediction is the tested stack plus the guard. Those
runtime calls are never among the tested ones.
"""

from __future__ import annotations

import ctypes
import errno
import os
import random
import resource
import signal
from collections.abc import Sequence
from dataclasses import replace
from functools import partial

import pytest

from agent.enforce.load import set_no_new_privs
from agent.seccomp import bpf, bpf_disasm, bpf_table, oci, syscalls
from agent.seccomp import compile as sc
from agent.seccomp.bpf import Insn, SeccompData
from agent.seccomp.model import ALLOW, Profile, Rule
from agent.seccomp.plan import order_rules
from tests.seccomp.bpf_programs import (
    ADD,
    ALLOW_RET,
    AND,
    BAD_PROGRAMS,
    DIV,
    DOCKER,
    EVERY_OP,
    GOOD_PROGRAMS,
    JEQ,
    JGE,
    JGT,
    JSET,
    LD,
    LD_IMM,
    LD_LEN,
    LDX_IMM,
    LSH,
    NEG,
    OR,
    RET,
    RET_A,
    RSH,
    SUB,
    TAX,
    U32,
    X86_64,
    XOR,
    X,
    asm,
    errno_ret,
    nr_of,
    points,
    random_args,
    random_program,
)
from tests.seccomp.kernel import LIBC, RUNTIME, in_child
from tests.support import need, need_root, need_shared

GUARD_ERRNO = 4000
SECCOMP_SET_MODE_FILTER = 1


def guarded() -> list[int]:
    return sorted({nr_of(n) for n in (*RUNTIME, "seccomp")})


def allow_first(numbers: Sequence[int], then: Sequence[tuple[int, int, int, int] | Insn],
                otherwise: int = ALLOW_RET) -> bytes:
    """ld arch (not x86_64: ``otherwise``); ld nr; allow ``numbers``; then the body ``then``."""
    count = len(numbers)
    head: list[tuple[int, int, int, int] | Insn] = [
        (LD, 0, 0, 4), (JEQ, 1, 0, X86_64), (RET, 0, 0, otherwise), (LD, 0, 0, 0)]
    for i, nr in enumerate(numbers):
        head.append((JEQ, count - 1 - i + len(then), 0, nr))  # to the allow after the body
    return asm(*head, *then, (RET, 0, 0, ALLOW_RET))


GUARD = allow_first(guarded(), [(RET, 0, 0, errno_ret(GUARD_ERRNO))],
                    otherwise=errno_ret(GUARD_ERRNO))


def runtime_safe(body: Sequence[tuple[int, int, int, int] | Insn]) -> bytes:
    """``body`` (ld nr done, ends with a ret) behind an allow of what the child needs."""
    return allow_first(guarded(), body)


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def load(program: bytes) -> int:
    """``seccomp(SET_MODE_FILTER)``: 0, or the errno."""
    buffer = ctypes.create_string_buffer(program, max(len(program), 1))
    prog = _Fprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    ctypes.set_errno(0)
    result = LIBC.syscall(ctypes.c_long(nr_of("seccomp")), ctypes.c_long(SECCOMP_SET_MODE_FILTER),
                          ctypes.c_long(0), ctypes.byref(prog))
    return 0 if result == 0 else ctypes.get_errno()


Call = tuple[int, tuple[int, ...]]


def _child(stack_oldest_first: Sequence[bytes], calls: Sequence[Call], out: int) -> int:
    """(In the child) load the stack, make the calls, report ``result errno traps`` per call;
    3 when a filter does not load."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a kill dumps no core
    traps: list[int] = []
    signal.signal(signal.SIGSYS, lambda signum, frame: traps.append(signum))
    set_no_new_privs()
    for program in stack_oldest_first:
        if load(program):
            return 3
    for nr, args in calls:
        before = len(traps)
        values = [ctypes.c_long(a) for a in (*args, 0, 0, 0, 0, 0, 0)[:6]]
        ctypes.set_errno(0)
        result = LIBC.syscall(ctypes.c_long(nr), *values)
        err = ctypes.get_errno()
        _tick()  # a Python call: a pending SIGSYS handler runs here at the latest
        os.write(out, f"{result} {err} {len(traps) - before}\n".encode())
    return 0


def _tick() -> None:
    return None


def observe(stack: Sequence[bytes], calls: Sequence[Call], *, guard: bool = True) -> list[str]:
    """What the kernel did with each call, under ``stack`` (newest first) above the guard."""
    loaded = [*([GUARD] if guard else []), *reversed(stack)]  # oldest first
    seen: list[str] = []
    start = 0
    while start < len(calls):
        written, status = in_child(partial(_child, loaded, calls[start:]), failed=4)
        assert not os.WIFEXITED(status) or os.WEXITSTATUS(status) == 0, \
            f"child exit {os.WEXITSTATUS(status)} (3: a filter did not load)"
        lines = written.decode().splitlines()
        for line in lines:
            result, err, trapped = map(int, line.split())
            seen.append("trap" if trapped else f"errno {err}" if result == -1 else
                        f"returned {result}")
        start += len(lines)
        if start < len(calls):  # the child died making calls[start]
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS, status
            seen.append("killed")
            start += 1
    return seen


def predict(stack: Sequence[bytes], call: Call) -> str:
    nr, args = call
    sample = SeccompData(nr & U32, X86_64, tuple(a & ((1 << 64) - 1) for a in args))
    found = bpf.verdict(bpf.emulate_stack([*stack, GUARD], sample))
    if found.kills:
        return "killed"
    if found.action == "trap":
        return "trap"
    assert found.action == "errno", (found, call)  # the guard answers everything else
    return f"errno {min(found.data, 4095)}" if found.data else "returned 0"


def assert_kernel_agrees(stack: Sequence[bytes], calls: Sequence[Call]) -> list[str]:
    assert not {nr for nr, _ in calls} & set(guarded()), "never make the guard's calls"
    seen = observe(stack, calls)
    wanted = [predict(stack, call) for call in calls]
    for call, got, want in zip(calls, seen, wanted, strict=True):
        assert got == want, (call, got, want, bpf_disasm.disassemble(stack[0], X86_64))
    return seen


@pytest.fixture(autouse=True)
def _x86_64_root() -> None:
    need_root()
    need(syscalls.native_arch() == "x86_64", "the guard and the x32 cases are x86_64's")


GETPPID, GETUID, GETGID, UMASK = (nr_of(n) for n in ("getppid", "getuid", "getgid", "umask"))


def test_decode_refuses_exactly_what_the_kernel_refuses() -> None:
    programs = [p for _, p, _ in BAD_PROGRAMS] + [p for _, p in GOOD_PROGRAMS]

    def child(out: int) -> None:  # every program allows everything: the accepted ones stay harmless
        set_no_new_privs()
        os.write(out, " ".join(str(load(p)) for p in programs).encode())

    written, status = in_child(child, failed=4)
    assert status == 0
    answers = [int(e) for e in written.split()]
    for program, err in zip(programs, answers, strict=True):
        try:
            bpf.decode(program)
            refused = 0
        except bpf.BadProgram:
            refused = errno.EINVAL
        assert err == refused, bpf_disasm.disassemble(program)


def test_alu_load_and_jump_semantics() -> None:
    A0LO, A0HI, A1LO = 16, 20, 24
    cases: list[tuple[list[tuple[int, int, int, int]], list[tuple[int, ...]]]] = [
        # errno from the argument: ret a (data 0 is errno 0: the call "returns" 0)
        ([(LD, 0, 0, A0LO), (AND, 0, 0, 0xFF), (OR, 0, 0, 0x50000), (RET_A, 0, 0, 0)],
         [(0,), (7,), (0x1FF,)]),
        # errno above 4095 reaches the caller as 4095; an unknown action kills
        ([(LD, 0, 0, A0LO), (JEQ, 0, 1, 1), (RET, 0, 0, 0x5FFFF), (JEQ, 0, 1, 2),
          (RET, 0, 0, 0x00010000), (RET, 0, 0, 0x30007)], [(1,), (3,), (2,)]),
        # shift by X uses X & 31; neg; sub/add wrap
        ([(LD, 0, 0, A0LO), (TAX, 0, 0, 0), (LD_IMM, 0, 0, 1), (0x6C, 0, 0, 0),
          (JEQ, 0, 1, 2), (RET, 0, 0, errno_ret(2)), (RET, 0, 0, errno_ret(3))],
         [(33,), (32,), (1,), (65,)]),
        ([(LD, 0, 0, A0LO), (NEG, 0, 0, 0), (SUB, 0, 0, 1), (ADD, 0, 0, 3), (XOR, 0, 0, 0xF0),
          (RSH, 0, 0, 4), (LSH, 0, 0, 1), (OR, 0, 0, 0x50000), (AND, 0, 0, 0x5FFFF),
          (RET_A, 0, 0, 0)], [(0,), (1,), (5,), (0xFFFFFFFF,)]),
        # division by X == 0 returns 0: kill_thread
        ([(LD, 0, 0, A0LO), (TAX, 0, 0, 0), (LD_IMM, 0, 0, 100), (DIV | X, 0, 0, 0),
          (OR, 0, 0, 0x50000), (RET_A, 0, 0, 0)], [(0,), (7,), (101,)]),
        # ld len; the high word of an argument; jgt/jge/jset against X
        ([(LD_LEN, 0, 0, 0), (JEQ, 0, 4, 64), (LD, 0, 0, A0HI), (JEQ, 0, 1, 1),
          (RET, 0, 0, errno_ret(7)), (LD, 0, 0, A1LO), (TAX, 0, 0, 0), (LD, 0, 0, A0LO),
          (JGT | X, 0, 1, 0), (RET, 0, 0, errno_ret(8)), (JGE | X, 0, 1, 0),
          (RET, 0, 0, errno_ret(9)), (JSET | X, 0, 1, 0), (RET, 0, 0, errno_ret(10)),
          (RET, 0, 0, errno_ret(11))],
         [(1 << 32,), (1,), (5, 3), (3, 3), (1, 3), (4, 3), (1 << 32 | 2, 2)]),
        # scratch memory and the log / trace / user_notif actions (which the guard outranks)
        ([(LD, 0, 0, A0LO), (0x02, 0, 0, 5), (LDX_IMM, 0, 0, 0), (0x61, 0, 0, 5),
          (0x87, 0, 0, 0), (JEQ, 0, 1, 1), (RET, 0, 0, 0x7FFC0000), (JEQ, 0, 1, 2),
          (RET, 0, 0, 0x7FF00001), (JEQ, 0, 1, 3), (RET, 0, 0, 0x7FC00000),
          (RET, 0, 0, ALLOW_RET | 9)], [(1,), (2,), (3,), (4,)]),
    ]
    for body, arg_sets in cases:
        program = runtime_safe(body)
        calls = [(nr, args) for nr in (GETPPID, 1000) for args in arg_sets]
        assert_kernel_agrees([program], calls)


def only(nr: int, ret: int) -> bytes:
    """``ret`` for syscall ``nr``, allow for everything else."""
    return runtime_safe([(JEQ, 0, 1, nr), (RET, 0, 0, ret), (RET, 0, 0, ALLOW_RET)])


def test_stacks_keep_the_most_restrictive_and_the_newest_on_ties() -> None:
    calls: list[Call] = [(GETPPID, ()), (GETUID, ()), (GETGID, ()), (UMASK, ())]
    stacks = [
        [only(GETPPID, errno_ret(1)), only(GETPPID, errno_ret(2))],          # tie: newest
        [only(GETPPID, errno_ret(2)), only(GETPPID, errno_ret(1))],
        [only(GETUID, ALLOW_RET), only(GETUID, 0x30003)],                    # older trap wins
        [only(GETGID, errno_ret(3)), only(GETGID, 0x30004), only(GETGID, errno_ret(5))],
        [only(UMASK, 0x7FFC0000), only(UMASK, errno_ret(6)), only(GETUID, 0x80000000)],
        [only(GETPPID, 0x00000000), only(GETPPID, 0x80000000)],
    ]
    seen = [assert_kernel_agrees(stack, calls) for stack in stacks]
    assert seen[0][0] == "errno 1" and seen[1][0] == "errno 2" and seen[2][1] == "trap"
    assert seen[4] == ["errno 4000", "killed", "errno 4000", "errno 6"]


def test_allowed_calls_run_for_real() -> None:
    """Without the guard: what the emulator calls allowed reaches the syscall itself."""
    program = sc.build_filter(runtime_profile(EVERY_OP)).bpf()
    calls: list[Call] = [(GETPPID, ()), (nr_of("fcntl"), (-1, 1)), (nr_of("fcntl"), (-1, 5)),
                         (nr_of("kill"), (0, 0))]
    for nr, args in calls:
        sample = SeccompData(nr, X86_64, tuple(a & ((1 << 64) - 1) for a in args))
        assert bpf.verdict(bpf.emulate(program, sample)).action in ("allow", "log", "errno")
    assert observe([program], calls, guard=False) == [
        f"returned {os.getpid()}",                # allowed: the parent's pid
        f"errno {errno.EBADF}",                   # allowed (cmd < 5): fcntl's own error
        "errno 1",                                # cmd 5: the profile's default, errno(1)
        "returned 0"]                             # kill(0, 0) is logged and made


def profile_calls(profile: Profile, program: bytes, extra: Sequence[int] = (),
                  per_syscall: int = 40) -> list[Call]:
    """Every syscall the profile names (both sides of each condition), and ``extra`` numbers."""
    rng = random.Random(0)
    calls: list[Call] = []
    guard = set(guarded())
    for name, ordered in order_rules(profile).items():
        nr = syscalls.lookup(name).number
        if nr is None or nr in guard:
            continue
        conds = [c for _, cs in ordered for c in cs]
        found = points(conds)
        for args in rng.sample(found, min(per_syscall, len(found))):
            calls.append((nr, args))
    calls.extend((nr, ()) for nr in extra if nr not in guard)
    assert bpf_table.table([program], X86_64, [nr for nr, _ in calls])  # decodes, tabulates
    return calls


def runtime_profile(profile: Profile) -> Profile:
    return replace(profile, rules=(*profile.rules, Rule((*RUNTIME, "seccomp"), ALLOW)))


def test_a_profile_with_every_action_and_op() -> None:
    program = sc.build_filter(runtime_profile(EVERY_OP)).bpf()
    calls = profile_calls(EVERY_OP, program, extra=(GETUID, 1000, 0x40000000 | GETPPID))
    seen = assert_kernel_agrees([program], calls)
    assert {"killed", "trap", "errno 1", "errno 13", "errno 4000"} <= set(seen)


def test_the_docker_default_profile_on_every_number() -> None:
    profile, _ = oci.load_oci(need_shared(DOCKER), "x86_64", kernel="6.1.0")
    program = sc.build_filter(runtime_profile(profile)).bpf()
    numbers = [*syscalls.numbers("x86_64"), 500, 1000, 0xFFFFFFFF, 0x40000000 | GETPPID]
    calls = profile_calls(profile, program, extra=numbers, per_syscall=12)
    seen = assert_kernel_agrees([program], calls)
    assert seen.count("killed") == 1  # x32 only: errno(1) is the default
    assert seen.count("errno 1") > 20 and seen.count("errno 4000") > 250


def test_random_programs() -> None:
    rng = random.Random(5)
    rets = (ALLOW_RET, errno_ret(1), errno_ret(2), errno_ret(5000), 0x30003, 0x00000000,
            0x80000000, 0x7FFC0000, 0x7FF00007, 0x00010000)
    numbers = (0, 2, 4, 5, 16, 17, 255, 1000)
    words = (0, 4, 16, 16, 20, 20, 24, 28, 32, 40, 52)  # not the instruction pointer: unknown
    for _ in range(150):
        body = random_program(rng, rets, numbers, words)
        program = runtime_safe(body)
        calls = [(rng.choice(numbers), random_args(rng)) for _ in range(6)]
        assert_kernel_agrees([program], calls)
