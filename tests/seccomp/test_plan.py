"""agent/seccomp/plan.py: ordered rules rewritten into rules libseccomp keeps exactly."""

from __future__ import annotations

import pyseccomp
import pytest

from agent.seccomp import plan
from agent.seccomp.model import ALLOW, EPERM, KILL_PROCESS, Action, ActionKind, ArgCondition
from agent.seccomp.plan import CompileError, Cond, Emitted
from tests.seccomp.rules import arg, prof, rule


def test_plan_splits_an_allow_around_an_earlier_deny() -> None:
    profile = prof(KILL_PROCESS, (rule("socket", ALLOW, arg(0, "ne", 17)),),
                   (rule("socket", EPERM, arg(0, "eq", 40)), rule("kill", EPERM, arg(1, "ge", 9))))
    with pytest.raises(CompileError) as raised:
        plan.plan(profile)
    assert str(raised.value).startswith("p.yaml:1:5: socket: excluding what the earlier rule(s) "
                                        "p.yaml:1:5 match needs arg0 ne 17 and arg0 ne 40 on")
    fine = prof(KILL_PROCESS, (rule("socket"), rule("kill")),
                (rule("socket", EPERM, arg(0, "eq", 40)), rule("kill", EPERM, arg(1, "ge", 9))))
    assert plan.plan(fine) == (
        Emitted("socket", EPERM, (Cond(0, "eq", 40),)),
        Emitted("socket", ALLOW, (Cond(0, "ne", 40),)),
        Emitted("kill", EPERM, (Cond(1, "ge", 9),)),
        Emitted("kill", ALLOW, (Cond(1, "lt", 9),)),
    )


@pytest.mark.parametrize(("written", "text"), [
    (ArgCondition(0, "eq", 2), "arg0 eq 2"),
    (ArgCondition(5, "ge", 9), "arg5 ge 9"),
    (ArgCondition(1, "masked_eq", 1, mask=3), "arg1 & 0x3 == 0x1"),
])
def test_a_condition_reads_the_same_written_and_planned(written: ArgCondition, text: str) -> None:
    # systemd's notes show the profile's conditions, effective tables the planned ones.
    assert str(written) == str(plan.to_cond(written)) == text


def test_simplify_merges_conditions_on_one_argument() -> None:
    c = Cond
    assert plan.simplify([c(0, "eq", 2), c(0, "ne", 17), c(0, "lt", 9)]) == (c(0, "eq", 2),)
    assert plan.simplify([c(0, "lt", 9), c(0, "le", 4), c(1, "ge", 0)]) == (c(0, "le", 4),)
    assert plan.simplify([c(0, "masked_eq", 1, 1), c(0, "masked_eq", 2, 0)]) == \
        (c(0, "masked_eq", 3, 1),)
    for impossible in ([c(0, "eq", 2), c(0, "eq", 3)], [c(0, "lt", 0)],
                       [c(0, "masked_eq", 1, 2)], [c(0, "ge", 5), c(0, "lt", 5)]):
        with pytest.raises(plan._Unsat):
            plan.simplify(impossible)


def test_action_values_are_libseccomps() -> None:
    plain = [plan.action_value(Action(kind)) for kind in ActionKind if kind is not ActionKind.ERRNO]
    assert plain == [pyseccomp.KILL_PROCESS, pyseccomp.KILL_THREAD, pyseccomp.TRAP, pyseccomp.LOG,
                     pyseccomp.ALLOW]
    for number in (0, 1, 4095, 0xFFFF):
        assert plan.action_value(Action(ActionKind.ERRNO, number)) == pyseccomp.ERRNO(number)
    with pytest.raises(CompileError, match="errno action needs an error number 0-65535"):
        plan.action_value(Action(ActionKind.ERRNO, 0x10000))
