"""What a profile decides for each syscall, as the compiler orders its rules: shared by the
format tests (``test_oci``, ``test_systemd``) to compare a profile with its round trip."""

from __future__ import annotations

from typing import Any

from agent.seccomp import syscalls
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
from tests.support import need

POOL = ("read", "write", "socket", "mount", "getuid")
ACTIONS = (ALLOW, Action(ActionKind.LOG), EPERM, Action(ActionKind.ERRNO, 13), KILL_PROCESS,
           Action(ActionKind.TRAP))


def x86_64_only() -> None:
    need(syscalls.native_arch() == "x86_64", "x86_64 host (syscall numbers, archMap entry)")


def effective(profile: Profile, name: str) -> tuple[tuple[Action, tuple[ArgCondition, ...]], ...]:
    """What the compiled filter does with ``name``: the rules that can decide it, in the
    compiler's order (deny first, first match wins), up to the first unconditional one."""
    out: list[tuple[Action, tuple[ArgCondition, ...]]] = []
    for rule in (*profile.deny, *profile.rules):
        if name in rule.syscalls:
            out.append((rule.action, rule.args))
            if not rule.args:
                return tuple(out)
    out.append((profile.default_action, ()))
    return tuple(out)


def per_number(profile: Profile) -> dict[int, Any]:
    """``effective`` for every syscall number libseccomp names on x86_64."""
    out = {}
    for number in range(1024):
        name = syscalls.name_of(number, "x86_64")
        if name is not None:
            out[number] = effective(profile, name)
    return out


def names_of(rules: tuple[Rule, ...]) -> set[str]:
    return {n for r in rules for n in r.syscalls}
