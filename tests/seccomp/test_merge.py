"""agent/seccomp/merge.py: the union of replicas' profiles, proven on the compiled filters.

The property (hypothesis, small profiles over a few syscalls with argument conditions): every
call an input permits, the merged filter permits; every call the merged filter permits beyond
an input, another input permits (each checked on the verifier's witness calls, run on the
filters); and the merge says when it cannot keep that promise.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.seccomp import bpf, effective, verify
from agent.seccomp.compile import CompiledFilter, build_filter
from agent.seccomp.merge import MergeError, merge
from agent.seccomp.model import (
    ALLOW,
    EPERM,
    KILL_PROCESS,
    Action,
    ActionKind,
    ArgCondition,
    Profile,
    Rule,
)
from agent.seccomp.plan import CompileError

POOL = ("getpid", "gettid", "getppid", "uname", "socket", "kill")


def conditions() -> st.SearchStrategy[tuple[ArgCondition, ...]]:
    one = st.one_of(
        st.builds(ArgCondition, st.integers(0, 1), st.sampled_from(["eq", "ne", "ge", "le"]),
                  st.integers(0, 12)),
        st.builds(lambda i, m, v: ArgCondition(i, "masked_eq", v & m, m), st.integers(0, 1),
                  st.sampled_from([0x3, 0xF0, 0x10000000]), st.integers(0, 0xFF)))
    return st.one_of(st.just(()), st.tuples(one))


def rules() -> st.SearchStrategy[tuple[Rule, ...]]:
    rule = st.builds(lambda names, args: Rule(tuple(dict.fromkeys(names)), ALLOW, args),
                     st.lists(st.sampled_from(POOL), min_size=1, max_size=3), conditions())
    return st.lists(rule, max_size=4).map(tuple)


def profiles() -> st.SearchStrategy[Profile]:
    """Allow-lists with EPERM default; deny rules (EPERM too) carve holes in what they allow."""
    deny = st.builds(lambda names, args: Rule(tuple(dict.fromkeys(names)), EPERM, args),
                     st.lists(st.sampled_from(POOL), min_size=1, max_size=2), conditions())
    return st.builds(lambda allow, denied: Profile("p", EPERM, rules=allow, deny=denied),
                     rules(), st.lists(deny, max_size=2).map(tuple))


def compiles(profile: Profile) -> CompiledFilter | None:
    try:
        return build_filter(profile)
    except CompileError:  # e.g. "ge 2 and ne 3" on one argument: libseccomp cannot take it
        return None


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(profiles(), min_size=2, max_size=3))
def test_the_union_contains_each_input_and_nothing_else(inputs: list[Profile]) -> None:
    compiled = [compiles(p) for p in inputs]
    if any(c is None for c in compiled):
        return
    filters = [c for c in compiled if c is not None]
    merged = merge([(f"p{i}", p) for i, p in enumerate(inputs)], "union")
    union = merged.compiled.bpf()
    for index, own in enumerate(filters):
        result = verify.compare([own.bpf()], merged.compiled)
        assert {d.kind for d in result.differences} <= {"denied_extra"}, result.differences
        for diff in result.differences:  # the union permits more: another input permits it
            call = bpf.SeccompData(diff.nr or 0, bpf.AUDIT_ARCH_X86_64, diff.args or (),
                                   diff.instruction_pointer or 0)
            assert diff.arch == "x86_64"
            assert effective.permits(bpf.emulate(union, call))
            assert any(effective.permits(bpf.emulate(other.bpf(), call))
                       for j, other in enumerate(filters) if j != index), diff


def test_identical_inputs_merge_to_an_equal_filter() -> None:
    gateway = Profile("gw", EPERM, rules=(Rule(("read", "write"), ALLOW),
                                          Rule(("socket",), ALLOW, (ArgCondition(0, "eq", 2),))))
    merged = merge([("a", gateway), ("b", gateway)], "gw")
    assert verify.compare([build_filter(gateway).bpf()], merged.compiled).equivalent


def test_denials_that_differ_are_refused_with_a_witness() -> None:
    plain = Profile("a", EPERM, rules=(Rule(("kill",), ALLOW, (ArgCondition(1, "eq", 15),)),))
    killing = Profile("b", EPERM, deny=(Rule(("kill",), KILL_PROCESS,
                                             (ArgCondition(1, "eq", 9),)),))
    with pytest.raises(MergeError) as refused:
        merge([("a", plain), ("b", killing)], "m")
    [reason] = refused.value.reasons
    assert reason == ("a and the union treat 1 call(s) differently: x86_64 kill(0x0, 0x9, 0x0, "
                      "0x0, 0x0, 0x0) a errno(1), union kill_process")
    forced = merge([("a", plain), ("b", killing)], "m", EPERM)
    assert forced.notes == ("b: 1 denied call(s) now get the default instead: x86_64 "
                            "kill(0x0, 0x9, 0x0, 0x0, 0x0, 0x0) b kill_process, union errno(1)",)


def test_what_must_agree() -> None:
    base = Profile("a", EPERM, rules=(Rule(("read",), ALLOW),))
    enosys = replace(base, default_action=Action(ActionKind.ERRNO, 38))
    with pytest.raises(MergeError) as refused:
        merge([("a", base), ("b", enosys)], "m")
    assert refused.value.reasons[0].startswith("default actions differ: a errno(1), b "
                                               "errno(38)")
    assert merge([("a", base), ("b", enosys)], "m", EPERM).profile.default_action == EPERM
    with pytest.raises(MergeError) as refused:
        merge([("a", base), ("b", replace(base, mode="log", no_new_privs=False,
                                          architectures=("x86_64", "aarch64")))], "m")
    assert [r.split(":")[0] for r in refused.value.reasons] == [
        "architectures differ", "mode differ", "no_new_privs differ"]
    with pytest.raises(MergeError, match="a deny-list cannot be merged"):
        merge([("a", replace(base, default_action=ALLOW))] * 2, "m")
    with pytest.raises(MergeError, match="--default must deny"):
        merge([("a", base)], "m", ALLOW)


def test_allow_and_log_of_one_call_are_refused() -> None:
    allow = Profile("a", EPERM, rules=(Rule(("uname",), ALLOW),))
    log = Profile("b", EPERM, rules=(Rule(("uname",), Action(ActionKind.LOG)),))
    with pytest.raises(MergeError, match=r"b and the union treat 1 call\(s\) differently: "
                       r"x86_64 uname b log, union allow"):
        merge([("a", allow), ("b", log)], "m")
