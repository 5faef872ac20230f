"""The additions to a profile that the kernel's seccomp records call for (``seccomp learn``).

A record (logged by a ``mode: log`` filter, or a denial) names a call the profile did not allow.
The native ABI's calls become names added to the profile's first unconditional ``allow`` rule
of the file itself, edited in the text so that comments and layout survive; a profile whose
file has no such rule (or one whose text cannot be edited in place) gets a new rule in
:func:`agent.seccomp.profile.to_yaml`'s form instead, without the comments. Calls the profile
denies on purpose (``deny``), allows only for some arguments, or that came through another ABI
are named in the notes, never added: widening those is a decision for a person.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import yaml

from agent.core.record import record
from agent.seccomp import syscalls
from agent.seccomp.model import ALLOW, ActionKind, Profile, Rule
from agent.seccomp.profile import to_yaml
from agent.seccomp.recorded import by_abi

RET_ACTION_FULL = 0xFFFF_0000
RET_LOG = 0x7FFC_0000
DENIALS = frozenset({0x8000_0000, 0x0000_0000, 0x0003_0000, 0x0005_0000})
"""kill_process, kill_thread, trap, errno: the actions that refuse the call."""


def wanted(code: int) -> bool:
    """Whether a record with this filter result is a call the profile should allow."""
    action = code & RET_ACTION_FULL
    return action == RET_LOG or action in DENIALS


@record
class Learned:
    """What the records call for."""

    add: tuple[str, ...]
    """Native names to allow, sorted."""
    notes: tuple[str, ...]
    """What was seen but is not added, one sentence each."""
    text: str
    """The proposed profile text."""
    kept_comments: bool
    """Whether ``text`` is the original text edited (else :func:`to_yaml` of the new profile)."""


def _names(rules: Iterable[Rule]) -> set[str]:
    return set(syscalls.expand(n for r in rules for n in r.syscalls))


def learn(profile: Profile, text: str, calls: Iterable[tuple[int, int]]) -> Learned:
    """The additions for (audit arch, nr) ``calls`` to ``profile`` read from ``text``."""
    seen = by_abi(calls)
    native = syscalls.canonical_arch(syscalls.native_arch())
    notes = [f"calls through {arch} not added (the profile kills other ABIs): "
             f"{', '.join(names)}" for arch, names in seen.items() if arch != native]
    allowed = _names(r for r in profile.rules if r.action == ALLOW and not r.args)
    conditional = _names(r for r in profile.rules if r.action == ALLOW and r.args)
    denied = _names(profile.deny) | _names(r for r in profile.rules if r.action.kind
                                           is not ActionKind.ALLOW)
    add: list[str] = []
    for name in seen.get(native, ()):
        if name in allowed:
            continue
        if name.startswith("#"):
            notes.append(f"syscall {name} has no name here; not added")
        elif name in denied:
            notes.append(f"{name} is denied by a rule of the profile; not added")
        elif name in conditional:
            notes.append(f"{name} is allowed for some arguments only; not widened")
        else:
            add.append(name)
    if not add:
        return Learned((), tuple(notes), text, True)
    edited = edit_text(text, add)
    if edited is not None:
        return Learned(tuple(add), tuple(notes), edited, True)
    rule = Rule(syscalls=tuple(add), action=ALLOW)
    new = dataclasses.replace(profile, rules=(*profile.rules, rule))
    return Learned(tuple(add), tuple(notes), to_yaml(new), False)


def edit_text(text: str, names: Sequence[str]) -> str | None:
    """``text`` with ``names`` appended to the syscalls of its first unconditional allow rule,
    or None when there is no such rule or the edit would not read back as exactly that."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        before = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    target = _allow_list(root)
    if target is None or not target.value:
        return None
    last = target.value[-1]
    if target.flow_style:
        close = text.rfind("]", 0, target.end_mark.index)
        if close < 0:
            return None
        edited = text[:close] + "".join(f", {n}" for n in names) + text[close:]
    else:
        first = target.value[0].start_mark
        line_start = text.rfind("\n", 0, first.index) + 1
        dash = text.rfind("-", line_start, first.index)
        if dash < 0:
            return None
        indent = " " * (dash - line_start)
        end = text.find("\n", last.end_mark.index)
        end = len(text) if end < 0 else end + 1
        prefix = text[:end] if text[:end].endswith("\n") else text[:end] + "\n"
        edited = prefix + "".join(f"{indent}- {n}\n" for n in names) + text[end:]
    return edited if _added_exactly(before, edited, names) else None


def _allow_list(root: yaml.Node | None) -> yaml.SequenceNode | None:
    if not isinstance(root, yaml.MappingNode):
        return None
    rules = next((v for k, v in root.value if k.value == "rules"), None)
    if not isinstance(rules, yaml.SequenceNode):
        return None
    for rule in rules.value:
        if not isinstance(rule, yaml.MappingNode):
            continue
        keys = {k.value: v for k, v in rule.value}
        action = keys.get("action")
        if "args" in keys or not isinstance(action, yaml.ScalarNode) or action.value != "allow":
            continue
        found = keys.get("syscalls")
        if isinstance(found, yaml.SequenceNode):
            return found
    return None


def _added_exactly(before: object, edited: str, names: Sequence[str]) -> bool:
    try:
        after = yaml.safe_load(edited)
    except yaml.YAMLError:
        return False
    if not isinstance(before, dict) or not isinstance(after, dict):
        return False
    old_rules, new_rules = before.get("rules"), after.get("rules")
    if not isinstance(old_rules, list) or not isinstance(new_rules, list) \
            or len(old_rules) != len(new_rules):
        return False
    changed = [(o, n) for o, n in zip(old_rules, new_rules, strict=True) if o != n]
    if len(changed) != 1 or {**before, "rules": None} != {**after, "rules": None}:
        return False
    old, new = changed[0]
    return bool(new.get("syscalls") == [*old.get("syscalls", []), *names]
                and {**old, "syscalls": None} == {**new, "syscalls": None})
