"""agent/seccomp/bpf_table.py: the effective table of hand-assembled programs and stacks, of
random programs (it must decide as the emulator does) and of what libseccomp generates from
profiles (it must decide as the profile says)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.seccomp import bpf, bpf_table, oci, selfcheck, syscalls
from agent.seccomp import compile as sc
from agent.seccomp.bpf import Insn, SeccompData
from agent.seccomp.model import ALLOW, KILL_PROCESS, Profile, Rule
from agent.seccomp.plan import action_value, effective
from tests.seccomp.bpf_programs import (
    ADD,
    ALLOW_RET,
    AND,
    DIV,
    DOCKER,
    EACCES,
    EVERY_OP,
    I386,
    JA,
    JEQ,
    JGE,
    JGT,
    JSET,
    KILL_RET,
    LD,
    LD_IMM,
    LDX_MEM,
    LSH,
    MUL,
    NUMBERS,
    RET,
    RET_A,
    RET_OK,
    ST,
    STACKS,
    TAX,
    X86_64,
    X,
    asm,
    constant,
    errno_ret,
    nr_of,
    points,
    random_args,
    random_program,
)
from tests.support import need_shared


def branches(entry: bpf_table.Entry) -> list[str]:
    return [str(b) for b in entry.branches]


# --- the effective table on hand-written programs -----------------------------------------------

def arch_check(body: Sequence[tuple[int, int, int, int]]) -> bytes:
    """ld arch; kill unless x86_64; ld nr; body."""
    return asm((LD, 0, 0, 4), (JEQ, 1, 0, X86_64), (RET, 0, 0, KILL_RET), (LD, 0, 0, 0), *body)


def test_table_of_conditional_entries_is_exact() -> None:
    program = arch_check([
        (JEQ, 0, 6, 1),                 # nr 1:
        (LD, 0, 0, 20),                 #   args[0].hi
        (JEQ, 0, 3, 0),                 #   == 0 ?
        (LD, 0, 0, 16),                 #   args[0].lo
        (JGT, 1, 0, 5),                 #   > 5 -> errno(1)
        (RET, 0, 0, ALLOW_RET),
        (RET, 0, 0, errno_ret(1)),
        (JEQ, 0, 4, 2),                 # nr 2:
        (LD, 0, 0, 32),                 #   args[2].lo & 0xf0 == 0x10 -> trap
        (AND, 0, 0, 0xF0),
        (JEQ, 0, 1, 0x10),
        (RET, 0, 0, 0x00030000),
        (RET, 0, 0, ALLOW_RET),
    ])
    table = bpf_table.table([program], X86_64, range(4))
    assert table[0] == bpf_table.Entry(0, ALLOW_RET)
    assert table[3].verdict == bpf.Verdict("allow")
    assert branches(table[1]) == ["args[0] >= 0x6 -> errno(1)", "args[0] <= 0x5 -> allow"]
    assert branches(table[2]) == ["args[2] & 0xf0 == 0x10 -> trap(0)",
                                  "args[2] & 0xf0 != 0x10 -> allow"]
    (first, _) = table[2].branches
    assert first.conditions == (bpf_table.Condition("args[2]", None, 0xF0, "eq", 0x10),)
    other = bpf_table.table([program], I386, range(4))
    assert {e.ret for e in other.values()} == {KILL_RET}


def test_table_keeps_half_words_when_64_bits_would_not_be_exact() -> None:
    program = asm((LD, 0, 0, 16), (JGE, 0, 1, 7), (RET, 0, 0, errno_ret(1)),
                  (LD, 0, 0, 12), (JEQ, 0, 1, 0x7F), (RET, 0, 0, errno_ret(2)), RET_OK)
    table = bpf_table.table([program], X86_64, [0])
    assert branches(table[0]) == [
        "args[0].lo >= 0x7 -> errno(1)",
        "args[0].lo <= 0x6 and instruction_pointer >= 0x7f00000000 and "
        "instruction_pointer <= 0x7fffffffff -> errno(2)",
        "args[0].lo <= 0x6 and instruction_pointer & 0xffffffff00000000 != 0x7f00000000 "
        "-> allow"]


def test_table_prunes_infeasible_paths() -> None:
    program = asm(
        (LD, 0, 0, 16),
        (JEQ, 0, 5, 1),                 # args[0].lo == 1
        (JEQ, 0, 1, 2),                 #   and == 2: impossible
        (RET, 0, 0, KILL_RET),
        (JGT, 0, 1, 0),                 #   > 0: always
        (RET, 0, 0, errno_ret(1)),
        (RET, 0, 0, 0x00030000),        #   never
        (JSET, 0, 4, 0x4),              # args[0].lo & 4
        (AND, 0, 0, 0xFF),
        (JSET, 0, 1, 0x4),              #   and not & 4 after masking: impossible
        (RET, 0, 0, errno_ret(2)),
        (RET, 0, 0, 0x00000000),
        RET_OK,
    )
    table = bpf_table.table([program], X86_64, [0])
    assert branches(table[0]) == ["args[0].lo == 0x1 -> errno(1)",
                                  "args[0] & 0x4 == 0x4 -> errno(2)",
                                  "args[0].lo & 0x4 == 0x0 and args[0].lo != 0x1 -> allow"]
    assert all(b.ret not in (KILL_RET, 0x00030000, 0) for b in table[0].branches)


def test_table_is_unconditional_when_every_path_returns_the_same() -> None:
    program = asm((LD, 0, 0, 16), (JEQ, 1, 0, 3), (RET, 0, 0, errno_ret(1)),
                  (RET, 0, 0, errno_ret(1)))
    assert bpf_table.table([program], X86_64, [0, 7]) == {0: bpf_table.Entry(0, errno_ret(1)),
                                                    7: bpf_table.Entry(7, errno_ret(1))}


def test_table_is_undecided_on_arithmetic_or_a_returned_argument() -> None:
    arithmetic = asm((LD, 0, 0, 0), (JEQ, 0, 3, 1), (LD, 0, 0, 16), (ADD, 0, 0, 1),
                     (JEQ, 1, 0, 5), RET_OK, (RET, 0, 0, 0))
    table = bpf_table.table([arithmetic], X86_64, [0, 1])
    assert table[0] == bpf_table.Entry(0, ALLOW_RET)
    assert table[1] == bpf_table.Entry(1, None, (), "the jump at 0004 tests arithmetic on "
                                              "args[0].lo at 0003")
    returned = asm((LD, 0, 0, 28), (RET_A, 0, 0, 0))
    assert bpf_table.table([returned], X86_64, [3])[3].undecided == \
        "ret a at 0001 returns the value of args[1].hi"
    two_words = asm((LD, 0, 0, 16), (ST, 0, 0, 0), (LD, 0, 0, 24), (LDX_MEM, 0, 0, 0),
                    (JGT | X, 0, 1, 0), RET_OK, (RET, 0, 0, 0))
    assert bpf_table.table([two_words], X86_64, [3])[3].undecided == \
        "the jump at 0004 compares two argument words"
    unused = asm((LD, 0, 0, 16), (MUL, 0, 0, 3), (LD_IMM, 0, 0, 1), (JEQ, 0, 1, 1), RET_OK,
                 (RET, 0, 0, 0))
    assert bpf_table.table([unused], X86_64, [3])[3] == \
        bpf_table.Entry(3, ALLOW_RET)  # the arithmetic is never tested


def test_table_follows_arithmetic_on_nr_and_division_by_an_argument() -> None:
    program = asm((LD, 0, 0, 0), (AND, 0, 0, 0xF), (LSH, 0, 0, 1), (JEQ, 0, 1, 6),
                  (RET, 0, 0, errno_ret(3)), (LD, 0, 0, 16), (TAX, 0, 0, 0),
                  (LD_IMM, 0, 0, 12), (DIV | X, 0, 0, 0), (RET, 0, 0, 0x00030000))
    table = bpf_table.table([program], X86_64, [3, 19, 4, 20])
    assert table[3].ret == table[19].ret == errno_ret(3)
    assert branches(table[4]) == ["args[0].lo == 0x0 -> kill_thread",
                                  "args[0].lo != 0x0 -> trap(0)"]
    assert table[20] == replace(table[4], nr=20)


def test_table_gives_up_beyond_max_paths() -> None:
    forks = [(JSET, 0, 0, 1 << bit) for bit in range(13)]  # 2**13 paths, all returning allow
    program = asm((LD, 0, 0, 16), *forks, RET_OK)
    assert bpf_table.table([program], X86_64, [0])[0].undecided == "more than 4096 paths"


def test_table_of_a_stack_combines_like_the_kernel() -> None:
    newest = asm((LD, 0, 0, 16), (JEQ, 0, 1, 1), (RET, 0, 0, errno_ret(1)), RET_OK)
    older = asm((LD, 0, 0, 16), (JGE, 0, 1, 1), (RET, 0, 0, errno_ret(2)),
                (RET, 0, 0, 0x00030000))
    table = bpf_table.table([newest, older], X86_64, [0])
    assert branches(table[0]) == ["args[0].lo == 0x1 -> errno(1)",  # tie: the newest's
                                  "args[0].lo >= 0x2 -> errno(2)",
                                  "args[0].lo == 0x0 -> trap(0)"]



@pytest.mark.parametrize(("stack", "expected"), STACKS)
def test_table_of_a_constant_stack_is_what_the_kernel_acts_on(stack: list[int],
                                                               expected: int) -> None:
    found = bpf_table.table([constant(r) for r in stack], X86_64, [0, 1])
    assert found == {0: bpf_table.Entry(0, expected), 1: bpf_table.Entry(1, expected)}


# --- property: the table agrees with the emulator -----------------------------------------------

def assert_table_agrees(stack: Sequence[Sequence[Insn]], arch: int, rng: random.Random,
                        samples: int = 40) -> None:
    table = bpf_table.table(stack, arch, NUMBERS)
    for _ in range(samples):
        nr = rng.choice(NUMBERS)
        sample = SeccompData(nr, arch, random_args(rng), rng.choice((0, 5, 0x7F0000001234)))
        entry = table[nr]
        if entry.undecided is not None:
            assert entry.ret is None and not entry.branches
            continue
        want = bpf.emulate_stack(stack, sample)
        if entry.ret is not None:
            assert entry.ret == want and not entry.branches
            continue
        holding = [b for b in entry.branches if b.holds(sample)]
        assert len(holding) == 1, (entry, sample)  # disjoint and complete
        assert holding[0].ret == want, (entry, sample)


# A seed rather than st.randoms(): hypothesis records every draw of a Random it hands out, which
# costs 20 times the test itself; the failing seed reproduces the case just as well.
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


@given(SEEDS)
def test_table_agrees_with_the_emulator(seed: int) -> None:
    rng = random.Random(seed)
    program = random_program(rng)
    assert_table_agrees([program], rng.choice((X86_64, X86_64, I386)), rng)


@given(SEEDS)
def test_table_of_a_stack_agrees_with_the_emulator(seed: int) -> None:
    rng = random.Random(seed)
    stack = [random_program(rng) for _ in range(rng.randint(2, 3))]
    assert_table_agrees(stack, X86_64, rng)


# --- against libseccomp: the table says what the profile says -----------------------------------

def assert_table_matches_profile(profile: Profile, mode: str | None = None,
                                 tree: bool | None = None) -> int:
    """table() of the compiled filter decides like the profile for every number of every ABI."""
    compiled = sc.build_filter(profile, mode, tree=tree)
    program = compiled.bpf()
    chosen = mode or profile.mode
    default = effective(profile.default_action, chosen)
    reference = selfcheck.reference(profile, chosen)
    checked = 0
    for arch in compiled.arches:
        token = syscalls.arch_token(arch)
        numbers = syscalls.numbers(arch)
        table = bpf_table.table([program], token, numbers)
        named = {}
        for name in reference:
            found = syscalls.lookup(name, arch)
            if found.number is not None:
                named[found.number] = name
        for nr in numbers:
            entry = table[nr]
            assert entry.undecided is None, (arch, nr, entry)
            entries = reference.get(named.get(nr, ""), [])
            conds = [c for _, cs in entries for c in cs]
            if not conds:
                assert entry.ret == action_value(selfcheck.decide(entries, (0,) * 6, default)), nr
            for args in points(conds):
                sample = SeccompData(nr, token, args)
                want = action_value(selfcheck.decide(entries, args, default))
                assert entry.decide(sample) == want == bpf.emulate(program, sample), \
                    (arch, named.get(nr), args, branches(entry))
                checked += 1
    badarch = action_value(effective(KILL_PROCESS, chosen))
    for other in syscalls.other_abis():
        if other not in compiled.arches:
            token = X86_64 if other == "x32" else syscalls.arch_token(other)
            table = bpf_table.table([program], token, syscalls.numbers(other))
            assert {e.ret for e in table.values()} == {badarch}, other
    return checked



@pytest.mark.parametrize("tree", [False, True])
def test_table_matches_a_profile_with_every_action_and_op(tree: bool) -> None:
    assert assert_table_matches_profile(EVERY_OP, tree=tree) > 500


def test_table_matches_a_profile_in_log_mode() -> None:
    assert_table_matches_profile(EVERY_OP, mode="log")


def test_table_matches_a_multi_arch_profile() -> None:
    profile = Profile("two", KILL_PROCESS, (Rule(("getppid", "read", "write"), ALLOW),),
                      deny=(Rule(("socketcall",), EACCES),), architectures=("x86_64", "x86"))
    assert_table_matches_profile(profile)


def test_table_matches_the_shipped_trading_profile() -> None:
    from agent.seccomp.profile import load_profile  # noqa: PLC0415

    loaded = load_profile(Path(__file__).resolve().parents[2] / "policies" / "seccomp" /
                          "trading-gateway.yaml")
    assert isinstance(loaded, Profile)
    assert_table_matches_profile(loaded)


@pytest.mark.parametrize("tree", [False, True])
def test_table_matches_the_docker_default_profile(tree: bool) -> None:
    profile, _ = oci.load_oci(need_shared(DOCKER), "x86_64", kernel="6.1.0")
    assert_table_matches_profile(profile, tree=tree)
    table = bpf_table.table([sc.build_filter(profile, tree=tree).bpf()], X86_64,
                      syscalls.numbers("x86_64"))
    assert branches(table[nr_of("personality")])[-1] == (
        "args[0] != 0x0 and args[0] != 0x8 and args[0] != 0x20000 and args[0] != 0x20008 and "
        "args[0] != 0xffffffff -> errno(1)")
    assert branches(table[nr_of("clone")]) == ["args[0] & 0x7e020000 == 0x0 -> allow",
                                               "args[0] & 0x7e020000 != 0x0 -> errno(1)"]



def test_a_walk_too_long_is_undecided_not_slow(monkeypatch: pytest.MonkeyPatch) -> None:
    # Forks on four argument words, each after a run of no-op jumps: many paths, many steps.
    body: list[tuple[int, int, int, int]] = []
    for word in (16, 24, 32, 40):
        body += [(JA, 0, 0, 0)] * 50 + [(LD, 0, 0, word), (JEQ, 0, 0, 7)]
    program = asm(*body, (RET, 0, 0, ALLOW_RET))
    monkeypatch.setattr(bpf_table, "MAX_STEPS", 500)
    entries = bpf_table.table([program], X86_64, range(4))
    assert all(e.undecided == "more than 500 instructions to follow" for e in entries.values())
    monkeypatch.setattr(bpf_table, "MAX_STEPS", 10_000_000)
    assert all(e.ret == ALLOW_RET for e in bpf_table.table([program], X86_64, range(4)).values())
