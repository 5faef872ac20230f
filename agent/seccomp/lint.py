"""Lint rules for seccomp profiles (``kind: SeccompProfile``), run by ``hostguard lint``.

Everything is judged on the merged profile (``extends`` resolved), and reported where it is
written; findings located in a base profile are left to the lint of that file, which
``hostguard lint`` reads as well, so each finding appears once. A broken base shows up in the
extending file as ``extends-invalid`` at its ``extends`` entry.

Errors (a profile with any of them does not load: :func:`agent.seccomp.profile.load_profile`):

* ``seccomp-unknown-syscall``, ``seccomp-unknown-group``, ``seccomp-arg`` (from
  :mod:`agent.seccomp.profile`);
* ``seccomp-abi-open``: ``architectures`` lists a second ABI of the CPU (``x86`` or ``x32`` on
  x86_64), so syscalls made through it are filtered by rules resolved for that ABI instead of
  being killed.

Warnings: a syscall both allowed by name and denied (``seccomp-allow-deny``; the deny wins),
rules shadowed by earlier unconditional ones (``seccomp-shadowed``), dangerous syscalls allowed
without ``acknowledged:`` (``seccomp-dangerous``), argument conditions on hot syscalls
(``seccomp-hot-args``), a deny-list default (``seccomp-default-allow``), syscalls a trading process
needs denied (``seccomp-trading-denied``) and names that exist on none of the declared
architectures (``seccomp-absent-syscall``).

Passing (with ``default_action: {errno: 1}``)::

    rules:
      - syscalls: ["@basic-io", "@io-event"]

Failing::

    architectures: [native, x32]          # error: seccomp-abi-open
    rules:
      - syscalls: [read, ptrace]          # warning: seccomp-dangerous (ptrace)
      - syscalls: [read]                  # warning: seccomp-shadowed
        args: [{index: 0, op: eq, value: 0}]   # warning: seccomp-hot-args
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from agent.core.diagnostic import Diagnostic, Level
from agent.core.location import Location
from agent.core.yamlload import Document
from agent.seccomp import syscalls
from agent.seccomp.model import Rule
from agent.seccomp.profile import LocatedProfile, RuleSource, abi_errors, resolve_document

DANGEROUS: dict[str, str] = {
    "ptrace": "reads and writes other processes' memory and registers",
    "process_vm_readv": "reads other processes' memory",
    "process_vm_writev": "writes other processes' memory",
    "bpf": "loads programs into the kernel",
    "kexec_load": "replaces the running kernel",
    "init_module": "loads kernel modules",
    "finit_module": "loads kernel modules",
    "mount": "changes the file-system tree",
    "umount2": "changes the file-system tree",
    "unshare": "creates namespaces (user namespaces expose kernel attack surface)",
    "setns": "enters other namespaces",
    "perf_event_open": "observes other processes and the kernel; a frequent exploit path",
    "keyctl": "reaches the kernel keyring, shared across containers",
    "add_key": "reaches the kernel keyring, shared across containers",
    "userfaultfd": "stalls kernel page faults, a standard exploit primitive",
    "io_uring_setup": "opens io_uring, which bypasses seccomp for the operations it submits",
    "open_by_handle_at": "opens files by handle, escaping mount and chroot boundaries",
}
"""Syscalls an allow-list should not allow without a stated reason, and why."""

HOT_SYSCALLS: tuple[str, ...] = (
    # data path: socket and file I/O
    "read", "write", "readv", "writev", "pread64", "pwrite64",
    "recvfrom", "sendto", "recvmsg", "sendmsg", "recvmmsg", "sendmmsg",
    # event loops and waiting
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select", "pselect6",
    "io_uring_enter", "futex",
    # time and yielding (vDSO normally serves the clocks; the syscall path is the fallback on
    # clock sources without vDSO support, common in VMs)
    "clock_gettime", "gettimeofday", "nanosleep", "clock_nanosleep", "sched_yield",
)
"""Syscalls a latency-sensitive process makes per message or per loop iteration. ``ioctl`` is
left out on purpose: it is rare on a trading hot path (kernel-bypass stacks poll memory) and
filtering its request numbers (TIOCSTI ...) is a legitimate hardening."""

TRADING_NEEDS: dict[str, str] = {
    "sched_setaffinity": "CPU pinning",
    "sched_setscheduler": "real-time scheduling",
    "sched_setattr": "real-time scheduling",
    "sched_setparam": "real-time scheduling",
    "setpriority": "raising priority",
    "mlock": "locking memory",
    "mlock2": "locking memory",
    "mlockall": "locking memory (mlockall)",
    "set_mempolicy": "NUMA memory binding",
    "mbind": "NUMA memory binding",
}
"""The ``@resources``/``@memlock`` syscalls a trading process uses to pin threads, run them
real-time and lock its memory: denying them (silently, with EPERM) costs latency, not safety."""



def _warn(loc: Location, message: str, rule: str) -> Diagnostic:
    return Diagnostic(loc, Level.WARNING, message, rule)


def _permits(rule: Rule) -> bool:
    return rule.action.permits


def _names(names: Iterable[str]) -> str:
    return ", ".join(names)


def lint_profile(doc: Document, today: dt.date) -> list[Diagnostic]:
    """Every finding for the profile in ``doc`` that is located in ``doc`` (see module doc).

    ``today`` is unused (profiles carry no dates) and kept for the shared linter signature.
    """
    located, diagnostics = resolve_document(doc)
    found = set(diagnostics)
    if located is not None:
        found.update(abi_errors(located))
        found.update(profile_warnings(located))
    return sorted(d for d in found if d.location.path == doc.path)


def profile_warnings(located: LocatedProfile) -> list[Diagnostic]:
    """Every warning for the merged profile, wherever it is located."""
    return [
        *_absent(located), *_allow_deny(located), *_shadowed(located.rules),
        *_shadowed(located.deny), *_dangerous(located), *_hot_args(located),
        *_default_allow(located), *_trading(located),
    ]


def _absent(located: LocatedProfile) -> Iterable[Diagnostic]:
    arches = [syscalls.canonical_arch(a) for a in located.profile.architectures]
    for source in (*located.rules, *located.deny):
        for name, where in zip(source.rule.written, source.names, strict=True):
            if syscalls.is_group(name):
                continue
            found = [syscalls.lookup(name, a).status for a in arches]
            if all(s is syscalls.Status.ABSENT for s in found):
                yield _warn(where, f"syscall {name!r} does not exist on {_names(arches)}: this "
                            "entry has no effect", "seccomp-absent-syscall")


def _unconditional_denies(located: LocatedProfile) -> dict[str, RuleSource]:
    out: dict[str, RuleSource] = {}
    for source in located.deny:
        if not source.rule.args and not _permits(source.rule):
            for name in source.rule.syscalls:
                out.setdefault(name, source)
    return out


def _allow_deny(located: LocatedProfile) -> Iterable[Diagnostic]:
    denied = _unconditional_denies(located)
    for source in located.rules:
        if not _permits(source.rule):
            continue
        for name in source.rule.written:
            if name in denied:
                deny = denied[name]
                yield _warn(source.origin(name), f"{name!r} is allowed here but denied at "
                            f"{deny.origin(name)}; the deny wins", "seccomp-allow-deny")


def _shadowed(section: tuple[RuleSource, ...]) -> Iterable[Diagnostic]:
    first: dict[str, RuleSource] = {}
    for source in section:
        rule = source.rule
        shadowed = [n for n in rule.syscalls if n in first]
        named = [n for n in shadowed if source.written_directly(n)]
        for name in named:
            yield _warn(source.origin(name), f"{name!r} is already matched unconditionally by "
                        f"the rule at {first[name].origin(name)}; this entry never applies",
                        "seccomp-shadowed")
        if rule.syscalls and len(shadowed) == len(rule.syscalls) and not named:
            earlier = first[rule.syscalls[0]]
            yield _warn(rule.location or source.names[0], "this rule never applies: each of its "
                        "syscalls is matched unconditionally by an earlier rule (the first at "
                        f"{earlier.origin(rule.syscalls[0])})", "seccomp-shadowed")
        if not rule.args:
            for name in rule.syscalls:
                first.setdefault(name, source)


def _by_origin(source: RuleSource, names: Iterable[str]) -> dict[Location, list[str]]:
    grouped: dict[Location, list[str]] = {}
    for name in names:
        grouped.setdefault(source.origin(name), []).append(name)
    return grouped


def _through(source: RuleSource, where: Location, names: list[str]) -> str:
    entry = source.rule.written[source.names.index(where)] if where in source.names else ""
    return f" through {entry!r}" if syscalls.is_group(entry) and entry not in names else ""


def _dangerous(located: LocatedProfile) -> Iterable[Diagnostic]:
    denied = _unconditional_denies(located)
    for source in located.rules:
        rule = source.rule
        if not _permits(rule) or rule.acknowledged:
            continue
        risky = [n for n in rule.syscalls if n in DANGEROUS and n not in denied]
        for where, names in _by_origin(source, risky).items():
            what = "; ".join(f"{n} {DANGEROUS[n]}" for n in names)
            noun = "syscall" if len(names) == 1 else "syscalls"
            yield _warn(where, f"dangerous {noun} allowed{_through(source, where, names)}: "
                        f"{what}; deny it, or give the reason under acknowledged:",
                        "seccomp-dangerous")


def _hot_args(located: LocatedProfile) -> Iterable[Diagnostic]:
    for source in (*located.rules, *located.deny):
        hot = [n for n in source.rule.syscalls if n in HOT_SYSCALLS]
        if source.rule.args and hot:
            yield _warn(source.args_at or source.names[0],
                        f"argument conditions on hot syscall{'s' if len(hot) > 1 else ''} "
                        f"{_names(hot)}: the kernel cannot cache their verdict, so the filter "
                        "runs on every call", "seccomp-hot-args")


def _default_allow(located: LocatedProfile) -> Iterable[Diagnostic]:
    action = located.profile.default_action
    if action.permits:
        where = located.positions.get("default_action", located.profile.location)
        yield _warn(where or Location(""), f"default_action {action} makes a deny-list: every "
                    "syscall not listed, including those of future kernels, is allowed",
                    "seccomp-default-allow")


def _trading(located: LocatedProfile) -> Iterable[Diagnostic]:
    for source in (*located.rules, *located.deny):
        rule = source.rule
        if _permits(rule) or rule.acknowledged:
            continue
        needed = [n for n in rule.syscalls if n in TRADING_NEEDS]
        for where, names in _by_origin(source, needed).items():
            uses = _names(dict.fromkeys(TRADING_NEEDS[n] for n in names))
            yield _warn(where, f"denies {_names(names)}{_through(source, where, names)}, which a "
                        f"trading process needs for {uses}", "seccomp-trading-denied")
