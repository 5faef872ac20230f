"""Short builders for the profiles the compiler tests write (``prof``, ``rule``, ``arg``)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent.core.location import Location
from agent.seccomp import syscalls
from agent.seccomp.model import ALLOW, Action, ArgCondition, Profile, Rule


def prof(default: Action, rules: tuple[Rule, ...] = (), deny: tuple[Rule, ...] = (),
         **extra: object) -> Profile:
    return replace(Profile("t", default, rules, deny), **extra)  # type: ignore[arg-type]


def rule(names: str, action: Action = ALLOW, *args: ArgCondition, line: int = 1) -> Rule:
    return Rule(tuple(names.split()), action, args, location=Location("p.yaml", line, 5))


def arg(index: int, op: str, value: int, mask: int | None = None) -> ArgCondition:
    return ArgCondition(index, op, value, mask)


def native_x86_64() -> None:
    if syscalls.native_arch() != "x86_64":
        pytest.skip("x86_64-specific ABI test")
