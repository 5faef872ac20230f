"""The seccomp profile model: what a profile says, independent of YAML, JSON or BPF.

A profile is an allow-list (``rules``, in order) plus ``deny`` rules applied after the allows,
over a ``default_action``, for a set of architectures. Syscall names are kept as written
(``@groups`` expanded by :mod:`agent.seccomp.syscalls`) and resolved to numbers per architecture
only when compiling, through libseccomp.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from agent.core.location import Location
from agent.core.record import record


class ActionKind(StrEnum):
    """What the kernel does with a matching syscall (most restrictive first)."""

    KILL_PROCESS = "kill_process"
    KILL_THREAD = "kill_thread"
    TRAP = "trap"
    ERRNO = "errno"
    LOG = "log"
    ALLOW = "allow"


PRECEDENCE = {kind: i for i, kind in enumerate(ActionKind)}
"""Lower is more restrictive; the kernel applies the most restrictive of stacked filters."""


@dataclass(frozen=True, order=True)
class Action:
    """An action; ``errno`` only for :attr:`ActionKind.ERRNO`."""

    kind: ActionKind
    """The kernel action."""
    errno: int | None = None
    """Error number returned for ``errno`` actions (e.g. 1 EPERM, 38 ENOSYS)."""

    def __str__(self) -> str:
        return f"errno({self.errno})" if self.kind is ActionKind.ERRNO else self.kind.value

    @property
    def permits(self) -> bool:
        """Whether the syscall runs under this action (``allow``, or ``log``: run and logged)."""
        return self.kind in (ActionKind.ALLOW, ActionKind.LOG)


ALLOW = Action(ActionKind.ALLOW)
KILL_PROCESS = Action(ActionKind.KILL_PROCESS)
EPERM = Action(ActionKind.ERRNO, 1)

MODES = ("enforce", "log")
"""How a filter is loaded: ``enforce`` (the profile's actions) or ``log`` (the kernel logs what
would be denied and allows it)."""
ARG_OPS = ("eq", "ne", "lt", "le", "gt", "ge", "masked_eq")
U64_MAX = 2**64 - 1
MAX_ERRNO = 4095
"""Largest errno the kernel passes back from a filter (``MAX_ERRNO``)."""


@record
class ArgCondition:
    """A condition on one syscall argument; every condition of a rule must hold."""

    index: int
    """Argument position, 0-5."""
    op: str
    """One of :data:`ARG_OPS`."""
    value: int
    """Compared value (for ``masked_eq``: ``(arg & mask) == value``)."""
    mask: int | None = None
    """Mask for ``masked_eq``."""

    def __str__(self) -> str:
        return arg_text(self.index, self.op, self.value, self.mask)


def arg_text(index: int, op: str, value: int, mask: int | None = None) -> str:
    """An argument condition as messages write it: ``arg0 eq 2``, ``arg1 & 0x3 == 0x1``."""
    if op == "masked_eq":
        return f"arg{index} & {mask or 0:#x} == {value:#x}"
    return f"arg{index} {op} {value}"


@record
class Rule:
    """Syscalls that get ``action`` when every argument condition holds."""

    syscalls: tuple[str, ...]
    """Names, ``@groups`` already expanded, in first-written order, no duplicates."""
    action: Action
    """What happens on a match."""
    args: tuple[ArgCondition, ...] = ()
    """Argument conditions (all must hold)."""
    written: tuple[str, ...] = ()
    """Names and ``@groups`` as written, for messages and round trips."""
    acknowledged: str | None = None
    """Reason a dangerous syscall is allowed on purpose (silences that lint warning)."""
    location: Location | None = None
    """Where the rule is written."""


@record
class Profile:
    """A complete seccomp profile."""

    name: str
    """``metadata.name``."""
    default_action: Action
    """Action for syscalls no rule matches."""
    rules: tuple[Rule, ...] = ()
    """Allow-side rules, in order."""
    deny: tuple[Rule, ...] = ()
    """Rules applied after the allows (they win over an allow of the same syscall)."""
    architectures: tuple[str, ...] = ("native",)
    """libseccomp architecture names the filter handles (``native``, ``x86_64``, ``x86``,
    ``x32`` ...); syscalls from any other ABI the CPU can enter are killed."""
    no_new_privs: bool = True
    """Set PR_SET_NO_NEW_PRIVS before loading (needed to load unprivileged)."""
    mode: str = "enforce"
    """``enforce``, or ``log``: would-be-denied syscalls are allowed and logged."""
    path: str | None = None
    """File the profile came from."""
    location: Location | None = None
    """Start of the profile document."""
    extends: tuple[str, ...] = field(default=())
    """Paths of base profiles, as written."""


def profile_name(text: str) -> str:
    """``text`` (a file name, a unit name) made a valid ``metadata.name``."""
    name = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")[:64]
    return name or "imported"


class FormatError(ValueError):
    """Input in another format (OCI JSON, systemd lines) that cannot be converted, with where
    it is."""

    def __init__(self, location: Location, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location
        self.message = message
