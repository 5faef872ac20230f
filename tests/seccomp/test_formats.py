"""Docker/OCI JSON and systemd ``SystemCallFilter=`` in and out (agent.seccomp.formats).

The imported Docker default profile is compiled with :mod:`agent.seccomp.compile` and loaded in a
forked child (``tests.seccomp.kernel``); systemd's own reading of the generated lines is checked
with ``systemd-analyze verify`` (its debug dump shows the filter set it built).
"""

from __future__ import annotations

import copy
import errno
import json
import os
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.location import Location
from agent.seccomp import formats, syscalls
from agent.seccomp.compile import build_filter
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
from agent.seccomp.profile import load_profile
from tests.seccomp.kernel import Call, run_filtered
from tests.support import need, need_shared, need_tool, run_cli

DOCKER = "fixtures/seccomp/docker-default.json"
AF_VSOCK = 40
KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING = 0, -1
CLONE_NEWUSER, CLONE_SIGHAND = 0x10000000, 0x800
ENOSYS = Action(ActionKind.ERRNO, errno.ENOSYS)


def docker(**kwargs: Any) -> tuple[Profile, list[str]]:
    return formats.load_oci(need_shared(DOCKER), **kwargs)


def docker_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(need_shared(DOCKER).read_text())
    return data


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


# --- Docker/OCI import --------------------------------------------------------------------------

def test_docker_default_imports_with_exact_counts_and_notes() -> None:
    x86_64_only()
    profile, notes = docker(kernel="6.1.0")
    assert profile.name == "docker-default"
    assert profile.default_action == EPERM
    assert profile.architectures == ("native",)
    assert [len(r.syscalls) for r in profile.rules] == [
        292, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    assert [r.args for r in profile.rules[2:5]] == [
        (ArgCondition(0, "lt", 38),), (ArgCondition(0, "eq", 39),), (ArgCondition(0, "gt", 40),)]
    # clone without CAP_SYS_ADMIN: only without namespace flags; OCI's value is the mask.
    clone = [r for r in profile.rules if r.syscalls == ("clone",)]
    assert [r.args for r in clone] == [(ArgCondition(0, "masked_eq", 0, mask=0x7E020000),)]
    assert [(r.syscalls, r.action) for r in profile.deny] == [(("clone3",), ENOSYS)]
    assert profile.deny[0].location == Location(str(need_shared(DOCKER)), 716, 3)
    absent = next(n for n in notes if n.startswith("skipped 60 names absent on x86_64: "))
    for name in ("clock_gettime64", "futex_time64", "_llseek", "socketcall", "stat64"):
        assert name in absent.split(": ", 1)[1].split(", ")
    assert "syscalls[17] (bpf, clone, clone3 +23 more) left out: needs CAP_SYS_ADMIN" in notes
    assert "syscalls[10] (sync_file_range2, swapcontext) left out: only for ppc64le" in notes
    assert any(n.startswith("the profile also filters x86, x32 with the same rules") for n in notes)
    allowed = names_of(profile.rules)
    for name in ("read", "arch_prctl", "modify_ldt", "chroot", "ptrace"):  # amd64 + default caps
        assert name in allowed
    for name in ("keyctl", "bpf", "unshare", "mount", "reboot", "open_by_handle_at", "acct"):
        assert name not in allowed


def test_caps_decide_includes_and_excludes() -> None:
    x86_64_only()
    admin, notes = docker(caps=[*formats.DOCKER_DEFAULT_CAPS, "CAP_SYS_ADMIN"], kernel="6.1.0")
    assert admin.deny == ()  # clone3 -> ENOSYS is excluded with CAP_SYS_ADMIN
    assert {"bpf", "clone", "clone3", "unshare", "mount", "setns"} <= names_of(admin.rules)
    assert not any(r.args for r in admin.rules if "clone" in r.syscalls)
    assert "syscalls[18] (clone) left out: excluded with CAP_SYS_ADMIN" in notes
    bare, notes = docker(caps=[], kernel="6.1.0")
    assert "chroot" not in names_of(bare.rules)
    assert "syscalls[22] (chroot) left out: needs CAP_SYS_CHROOT" in notes


def test_min_kernel_against_the_given_and_the_running_kernel() -> None:
    x86_64_only()
    old, notes = docker(kernel="4.7.10-gentoo")
    assert "ptrace" not in names_of(old.rules)
    assert ("syscalls[1] (process_vm_readv, process_vm_writev, ptrace) left out: needs kernel "
            "4.8") in notes
    new, _ = docker(kernel="4.8-1-amd64")
    assert new.rules[1].syscalls == ("process_vm_readv", "process_vm_writev", "ptrace")
    running, _ = docker()  # os.uname().release: this host runs a kernel >= 4.8
    assert running.rules[1].syscalls == new.rules[1].syscalls
    data = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "excludes": {"minKernel": "5.4"}}]}
    assert formats.from_oci(data, kernel="5.3.0")[0].deny[0].syscalls == ("mount",)
    assert formats.from_oci(data, kernel="5.4.0")[0].deny == ()


def test_other_arch_entries_apply_when_importing_for_that_arch() -> None:
    profile, notes = docker(arch="aarch64", kernel="6.1.0")
    assert profile.architectures == ("aarch64",)
    assert "arm_sync_file_range" not in names_of(profile.rules)  # absent on aarch64 itself
    assert "arch_prctl" not in names_of(profile.rules)
    assert "syscalls[12] (arch_prctl) left out: only for amd64, x32" in notes
    assert not any(n.startswith("syscalls[11] ") for n in notes)  # arm, arm64: applies
    assert any(n.startswith("the profile also filters arm with") for n in notes)


def test_docker_profile_behaves_as_documented_in_the_kernel() -> None:
    x86_64_only()
    profile, _ = docker()
    done = run_filtered(profile, [
        Call("keyctl", (KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 0)),
        Call("clone3", (0, 0)),
        Call("socket", (AF_VSOCK, socket.SOCK_STREAM, 0)),
        Call("socket", (socket.AF_INET, socket.SOCK_STREAM, 0)),
        Call("getppid"),
        Call("unshare", (CLONE_NEWUSER,)),
        Call("personality", (0xFFFFFFFF,)),
        Call("personality", (1,)),
        # clone passes the filter without namespace flags: the kernel itself then refuses
        # CLONE_SIGHAND without CLONE_VM (EINVAL), so nothing is forked either way.
        Call("clone", (CLONE_SIGHAND, 0, 0, 0, 0)),
        Call("clone", (CLONE_SIGHAND | CLONE_NEWUSER, 0, 0, 0, 0)),
    ], runtime=False)
    assert done.exit_code == 0
    keyctl, clone3, vsock, inet, ppid, unshare, query, persona, clone, clone_ns = done.results
    assert keyctl == (-1, errno.EPERM)
    assert clone3 == (-1, errno.ENOSYS)
    assert vsock == (-1, errno.EPERM)
    assert inet[0] >= 3 and inet[1] == 0
    assert ppid == (os.getpid(), 0)
    assert unshare == (-1, errno.EPERM)
    assert query[1] == 0 and query[0] >= 0
    assert persona == (-1, errno.EPERM)
    assert clone == (-1, errno.EINVAL)
    assert clone_ns == (-1, errno.EPERM)


def test_actions_errno_defaults_trace_and_notify() -> None:
    def one(action: str, **extra: Any) -> tuple[Action, list[str]]:
        data = {"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mount"], "action": action, **extra}]}
        profile, notes = formats.from_oci(data)
        return profile.deny[0].action, notes

    assert one("SCMP_ACT_KILL")[0] == Action(ActionKind.KILL_THREAD)
    assert one("SCMP_ACT_KILL_PROCESS")[0] == KILL_PROCESS
    assert one("SCMP_ACT_TRAP")[0] == Action(ActionKind.TRAP)
    assert one("SCMP_ACT_ERRNO")[0] == EPERM
    assert one("SCMP_ACT_ERRNO", errnoRet=13)[0] == Action(ActionKind.ERRNO, 13)
    traced, notes = one("SCMP_ACT_TRACE")
    assert traced == ENOSYS
    assert notes == ["syscalls[0].action: SCMP_ACT_TRACE imported as errno 38 (ENOSYS), what "
                     "the kernel answers when no tracer is attached"]
    with pytest.raises(formats.FormatError, match=r"syscalls\[0\]\.action: SCMP_ACT_NOTIFY hands"):
        one("SCMP_ACT_NOTIFY")
    logged = formats.from_oci({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                               "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG"}]})[0]
    assert logged.default_action == ENOSYS
    assert logged.rules[0].action == Action(ActionKind.LOG)


def test_masked_eq_and_conditions_on_one_argument() -> None:
    data = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [
            {"index": 1, "value": 0xF, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"},
            {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [
            {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
            {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
    ]}
    profile, notes = formats.from_oci(data)
    assert [r.args for r in profile.rules] == [
        (ArgCondition(1, "masked_eq", 1, mask=0xF), ArgCondition(0, "eq", 2)),
        (ArgCondition(0, "eq", 0),), (ArgCondition(0, "eq", 8),)]
    assert notes == ["syscalls[1]: several conditions on one argument, split into one rule each "
                     "(runc ORs them)"]


def test_names_absent_or_unknown_are_skipped_not_errors() -> None:
    x86_64_only()
    data = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read", "socketcall", "no_such_call"], "action": "SCMP_ACT_ALLOW"},
        {"name": "_llseek", "action": "SCMP_ACT_ALLOW"},
        {"name": "write", "action": "SCMP_ACT_ERRNO"}]}
    profile, notes = formats.from_oci(data)
    assert [r.syscalls for r in profile.rules] == [("read",)]
    assert profile.deny == ()
    assert notes == [
        "syscalls[2] (write) dropped: its action errno(1) is the default action (runc drops "
        "such rules too)",
        "skipped 2 names absent on x86_64: _llseek, socketcall",
        "skipped 1 names libseccomp does not know: no_such_call",
    ]


@pytest.mark.parametrize(("patch", "message"), [
    (lambda d: d["syscalls"][3]["args"][0].update(op="SCMP_CMP_BETWEEN"),
     "syscalls[3].args[0].op: unknown operator 'SCMP_CMP_BETWEEN'"),
    (lambda d: d["syscalls"][0].update(name="read"),
     "syscalls[0]: 'name' and 'names' both given"),
    (lambda d: d.update(defaultAction="SCMP_ACT_MAYBE"), "defaultAction: unknown action"),
    (lambda d: d["syscalls"][21].update(errnoRet=70000, action="SCMP_ACT_ERRNO"),
     "syscalls[21].errnoRet: errno must be an integer 0-4095, not 70000"),
    (lambda d: d["syscalls"][1]["includes"].update(minKernel="four"),
     "syscalls[1].includes.minKernel: not a kernel version"),
    (lambda d: d.update(architectures=["SCMP_ARCH_X86_64"]),
     "architectures: 'architectures' and 'archMap' both given"),
])
def test_bad_input_is_a_located_error(tmp_path: Path, patch: Any, message: str) -> None:
    data = copy.deepcopy(docker_json())
    patch(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data, indent=1))
    with pytest.raises(formats.FormatError) as caught:
        formats.load_oci(path, kernel="6.1")
    text = str(caught.value)
    assert re.match(rf"{re.escape(str(path))}:\d+:\d+: ", text), text
    assert message in text
    assert caught.value.location.line > 1 or message.startswith("defaultAction")


def test_unreadable_json_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"defaultAction": "SCMP_ACT_ERRNO",\n  "syscalls": [}\n')
    with pytest.raises(formats.FormatError) as caught:
        formats.load_oci(path)
    assert str(caught.value).startswith(f"{path}:2:")


# --- Docker/OCI export and round trip -----------------------------------------------------------

def test_round_trip_keeps_the_action_of_every_syscall_number() -> None:
    x86_64_only()
    first, _ = docker(kernel="6.1.0")
    exported = formats.to_oci(first)
    second, notes = formats.from_oci(json.loads(json.dumps(exported)), kernel="6.1.0",
                                     name="docker-default")
    assert notes == []
    before, after = per_number(first), per_number(second)
    assert len(before) > 350
    assert before == after
    assert before[syscalls.resolve("socket", "x86_64") or 0][-1] == (EPERM, ())
    # The compiled filters are the same program, byte for byte.
    assert build_filter(first).bpf() == build_filter(second).bpf()


def normalized(entries: tuple[tuple[Action, tuple[ArgCondition, ...]], ...]) -> Any:
    """``effective`` without conditional entries that lead to what follows them anyway."""
    out = list(entries)
    while len(out) > 1 and out[-2][0] == out[-1][0]:
        del out[-2]
    return tuple(out)


POOL = ("read", "write", "socket", "mount", "getuid")
ACTIONS = (ALLOW, Action(ActionKind.LOG), EPERM, Action(ActionKind.ERRNO, 13), KILL_PROCESS,
           Action(ActionKind.TRAP))
CONDS = st.dictionaries(st.integers(0, 2), st.tuples(
    st.sampled_from(("eq", "ne", "lt", "gt", "masked_eq")), st.integers(0, 9)), max_size=2)
RULES = st.lists(st.tuples(st.lists(st.sampled_from(POOL), min_size=1, max_size=3, unique=True),
                           st.sampled_from(ACTIONS), CONDS), max_size=5)


def _rules(raw: list[Any]) -> tuple[Rule, ...]:
    return tuple(Rule(tuple(names), action, tuple(
        ArgCondition(i, op, v, mask=0xF if op == "masked_eq" else None)
        for i, (op, v) in sorted(conds.items()))) for names, action, conds in raw)


@settings(max_examples=150, deadline=None)
@given(default=st.sampled_from((EPERM, ALLOW, KILL_PROCESS)), rules=RULES, deny=RULES)
def test_round_trip_property_without_caveats(default: Action, rules: list[Any],
                                             deny: list[Any]) -> None:
    profile = Profile(name="p", default_action=default, rules=_rules(rules), deny=_rules(deny))
    if formats.oci_caveats(profile):
        return  # order-dependent: OCI cannot say it, and oci_caveats says so
    back, _ = formats.from_oci(json.loads(json.dumps(formats.to_oci(profile))))
    for name in POOL:
        assert normalized(effective(back, name)) == normalized(effective(profile, name)), name


def test_export_shape_masked_eq_log_mode_and_unreachable_names() -> None:
    profile = Profile(
        name="p", default_action=EPERM, architectures=("native",),
        rules=(Rule(("clone",), ALLOW, (ArgCondition(0, "masked_eq", 0, mask=0x7E020000),)),
               Rule(("read", "mount"), ALLOW)),
        deny=(Rule(("mount",), Action(ActionKind.ERRNO, 13)),))
    out = formats.to_oci(profile, "x86_64")
    assert out == {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        ]}
    logged = formats.to_oci(Profile(name="p", default_action=EPERM, mode="log",
                                    deny=(Rule(("mount",), KILL_PROCESS),)))
    assert logged["defaultAction"] == "SCMP_ACT_LOG" and "defaultErrnoRet" not in logged
    assert logged["syscalls"] == [{"names": ["mount"], "action": "SCMP_ACT_LOG"}]
    two = Profile(name="p", default_action=EPERM, rules=(
        Rule(("socket",), ALLOW, (ArgCondition(0, "ge", 2), ArgCondition(0, "le", 10))),))
    with pytest.raises(formats.FormatError, match="two conditions on one argument"):
        formats.to_oci(two)


def test_oci_caveats_name_order_dependent_syscalls() -> None:
    profile = Profile(name="p", default_action=EPERM, rules=(
        Rule(("socket",), ALLOW, (ArgCondition(0, "eq", 2),)),
        Rule(("read",), ALLOW, (ArgCondition(0, "eq", 0),))),
        deny=(Rule(("socket",), Action(ActionKind.ERRNO, 97), (ArgCondition(0, "eq", 17),)),))
    assert formats.oci_caveats(profile) == [
        "socket: a conditional errno(97) rule comes before a rule with another action; OCI has "
        "no rule order, the runtime decides"]


# --- systemd ------------------------------------------------------------------------------------

def sample() -> Profile:
    return Profile(
        name="svc", default_action=EPERM, architectures=("native",),
        rules=(Rule(("read", "write", "getpid"), ALLOW),
               Rule(("socket",), ALLOW, (ArgCondition(0, "eq", 2),)),
               Rule(("getuid",), Action(ActionKind.LOG))),
        deny=(Rule(("mount", "umount2"), Action(ActionKind.ERRNO, errno.EACCES)),
              Rule(("reboot",), Action(ActionKind.KILL_THREAD)),
              Rule(("read",), EPERM, (ArgCondition(0, "gt", 100),))))


def test_to_systemd_lines_and_what_cannot_be_expressed() -> None:
    x86_64_only()
    result = formats.to_systemd(sample())
    implicit = [n for n in syscalls.expand(["@default"])
                if n not in ("getpid", "getuid")
                and syscalls.lookup(n).status is syscalls.Status.KNOWN]
    assert result.lines[0] == "SystemCallFilter=write getpid getuid"
    removed = " ".join(result.lines[1:-5]).replace("SystemCallFilter=~", "").split()
    assert removed == implicit
    assert result.lines[-5:] == (
        "SystemCallFilter=~mount:EACCES umount2:EACCES reboot:kill",
        "SystemCallErrorNumber=EPERM",
        "SystemCallLog=getuid",
        "SystemCallArchitectures=native",
        "NoNewPrivileges=yes",
    )
    assert result.unexpressed[:3] == (
        "read: argument conditions (arg0 gt 100) cannot be expressed; read gets errno(1) in "
        "every case",
        "socket: argument conditions (arg0 eq 2) cannot be expressed; socket gets errno(1) in "
        "every case",
        "reboot: kill_thread becomes kill (systemd kills the whole process)",
    )
    assert result.unexpressed[3].startswith("systemd always allows @default; taken out again")
    wide = formats.to_systemd(sample(), widen=True)
    assert wide.lines[0] == "SystemCallFilter=read write getpid getuid socket"
    assert wide.unexpressed[:2] == (
        "read: argument conditions (arg0 gt 100) cannot be expressed; read gets allow in every "
        "case (widened: the profile is stricter)",
        "socket: argument conditions (arg0 eq 2) cannot be expressed; socket gets allow in "
        "every case (widened: the profile is stricter)",
    )


def test_deny_list_profile_and_log_mode() -> None:
    x86_64_only()
    deny_list = Profile(name="d", default_action=ALLOW, deny=(
        Rule(("mount", "umount2"), EPERM), Rule(("kexec_load",), KILL_PROCESS),
        Rule(("ptrace",), Action(ActionKind.ERRNO, errno.EACCES))))
    assert formats.to_systemd(deny_list).lines == (
        "SystemCallFilter=~mount umount2 kexec_load:kill ptrace:EACCES",
        "SystemCallErrorNumber=EPERM",
        "SystemCallArchitectures=native",
        "NoNewPrivileges=yes",
    )
    logged = formats.to_systemd(Profile(name="l", default_action=EPERM, mode="log",
                                        rules=(Rule(("read", "write"), ALLOW),)))
    assert logged.lines == ("SystemCallLog=~read write", "SystemCallArchitectures=native",
                            "NoNewPrivileges=yes")
    assert logged.unexpressed == (
        "mode log: no SystemCallFilter=; SystemCallLog= logs what would be denied",)


def test_from_systemd_combines_lines_as_systemd_does() -> None:
    x86_64_only()
    profile, notes = formats.parse_systemd([
        "[Service]",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged:EPERM",
        "SystemCallFilter=~@mount",
        "SystemCallFilter=read:EACCES",
        "SystemCallErrorNumber=EACCES",
        "SystemCallArchitectures=native",
        "NoNewPrivileges=yes",
    ])
    eacces = Action(ActionKind.ERRNO, errno.EACCES)
    assert profile.default_action == eacces
    assert profile.architectures == ("native",) and profile.no_new_privs
    assert effective(profile, "read") == ((ALLOW, ()),)
    assert effective(profile, "getpid") == ((ALLOW, ()),)  # @default, implied
    assert effective(profile, "setuid") == ((EPERM, ()),)  # @privileged, given its errno
    assert effective(profile, "chown") == ((EPERM, ()),)  # @privileged nests @chown
    assert effective(profile, "mount") == ((eacces, ()),)  # never allowed: the default
    assert effective(profile, "kexec_load") == ((EPERM, ()),)  # @privileged > @reboot
    assert notes == ["<systemd>:5:1: allow-listed system calls cannot take an error number "
                     "(systemd ignores 'read:EACCES')"]


def test_from_systemd_deny_list_reset_and_kill() -> None:
    x86_64_only()
    profile = formats.from_systemd([
        "SystemCallFilter=read write",
        "SystemCallFilter=",  # reset: the next line decides again
        "SystemCallFilter=~@mount reboot:kill",
        "SystemCallFilter=mount",  # un-denied again
    ])
    assert profile.default_action == ALLOW
    assert effective(profile, "umount2") == ((KILL_PROCESS, ()),)  # no SystemCallErrorNumber
    assert effective(profile, "reboot") == ((KILL_PROCESS, ()),)
    assert effective(profile, "mount") == ((ALLOW, ()),)
    assert effective(profile, "read") == ((ALLOW, ()),)
    assert profile.architectures == ("native", "x86", "x32")
    with pytest.raises(formats.FormatError, match=r"<systemd>:1:1: unknown syscall group"):
        formats.from_systemd(["SystemCallFilter=@no-such-group"])
    with pytest.raises(formats.FormatError, match="not an errno number or name: 'EWHAT'"):
        formats.from_systemd(["SystemCallFilter=~mount:EWHAT"])


PLAIN = st.lists(st.tuples(
    st.lists(st.sampled_from((*POOL, "getpid", "execve")), min_size=1, max_size=3, unique=True),
    st.sampled_from(ACTIONS[:5])), max_size=5)


@settings(max_examples=150, deadline=None)
@given(default=st.sampled_from((EPERM, ALLOW, KILL_PROCESS, Action(ActionKind.ERRNO, 13),
                                Action(ActionKind.LOG))), rules=PLAIN, deny=PLAIN)
def test_systemd_round_trip_property(default: Action, rules: list[Any], deny: list[Any]) -> None:
    x86_64_only()
    profile = Profile(name="p", default_action=default,
                      rules=tuple(Rule(tuple(n), a) for n, a in rules),
                      deny=tuple(Rule(tuple(n), a) for n, a in deny))
    result = formats.to_systemd(profile)
    back = formats.from_systemd(result.lines)
    for name in (*POOL, "getpid", "execve", "uname"):
        assert effective(back, name)[0][0] == effective(profile, name)[0][0], (name, result)


def test_systemd_round_trip_keeps_every_native_syscall() -> None:
    x86_64_only()
    profile = Profile(
        name="rt", default_action=EPERM,
        rules=(Rule(syscalls.expand(["@basic-io", "@io-event", "@signal"]), ALLOW),
               Rule(("getuid",), Action(ActionKind.LOG))),
        deny=(Rule(("mount", "read"), Action(ActionKind.ERRNO, errno.EACCES)),
              Rule(("reboot",), KILL_PROCESS)))
    back = formats.from_systemd(formats.to_systemd(profile).lines, "rt")
    for number in range(1024):
        name = syscalls.name_of(number, "x86_64")
        if name is not None:
            assert effective(back, name)[0][0] == effective(profile, name)[0][0], name


# --- systemd-analyze verify ---------------------------------------------------------------------

UNIT = ("[Unit]\nDescription=hostguard test\nDefaultDependencies=no\n"
        "[Service]\nExecStart=/bin/true\n")


def verify(folder: Path, dropin: str) -> tuple[list[str], set[str], list[str]]:
    """Run ``systemd-analyze verify`` on ``hg-test.service`` with ``dropin``: the lines it
    complained about, the SystemCallFilter set it built and the drop-ins it read.

    Complaints come from a run at the normal log level (at debug level systemd also lists the
    members of its own groups that libseccomp does not know); the set from a debug run, whose
    unit dump shows it. ``verify`` exits 0 even for ignored settings: complaints are the test.
    """
    tool = need_tool("systemd-analyze")
    (folder / "hg-test.service").write_text(UNIT)
    (folder / "hg-test.service.d").mkdir(exist_ok=True)
    (folder / "hg-test.service.d" / "hostguard-seccomp.conf").write_text(dropin)
    outputs = []
    for level in ("info", "debug"):
        env = {**os.environ, "SYSTEMD_UNIT_PATH": str(folder), "SYSTEMD_LOG_LEVEL": level,
               "SYSTEMD_LOG_COLOR": "0"}
        done = subprocess.run([tool, "verify", "--man=no", str(folder / "hg-test.service")],
                              env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append((done.stdout + done.stderr).splitlines())
    quiet, loud = outputs
    complaints = [line for line in quiet
                  if line.startswith((str(folder), "hg-test.service:"))]
    filters = [line.split(":", 1)[1].replace("~", "").split() for line in loud
               if line.strip().startswith("SystemCallFilter:")]
    dropins = [line.split(":", 1)[1].strip() for line in loud
               if line.strip().startswith("DropIn Path:")]
    return complaints, set(filters[0]) if filters else set(), dropins


def our_set(lines: tuple[str, ...] | list[str]) -> set[str]:
    """The filter set our parser builds from ``lines``, spelled as systemd's unit dump spells
    its own (``name``, ``name:EPERM``, ``name:kill``; a deny-list's first entry gets ``~``,
    which :func:`verify` strips). Compared with the dump, it checks how we combine lines."""
    parser = formats._SystemdParser()  # the state systemd keeps, exactly what it dumps
    for number, line in enumerate(lines, 1):
        key, _, value = line.partition("=")
        parser.setting(key, value, Location("<test>", number))
    out = set()
    for name, err in (parser.table or {}).items():
        if err is None:
            out.add(name)
        else:
            out.add(f"{name}:{'kill' if err == formats._KILL else errno.errorcode[err]}")
    return out


def native_only(entries: set[str]) -> set[str]:
    return {e for e in entries
            if syscalls.lookup(e.split(":")[0]).status is syscalls.Status.KNOWN}


def test_dropin_from_the_cli_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    x86_64_only()
    source = tmp_path / "svc.yaml"
    source.write_text(formats.to_yaml(sample()))
    done = run_cli("seccomp", "systemd", str(source), "--unit", "hg-test.service",
                   "--output", str(tmp_path))
    assert done.returncode == 0, done.stderr
    target = tmp_path / "hg-test.service.d" / "hostguard-seccomp.conf"
    assert done.stdout.startswith(f"wrote {target}")
    assert "hostguard: cannot express: socket: argument conditions (arg0 eq 2)" in done.stderr
    text = target.read_text()
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    complaints, built, dropins = verify(tmp_path, text)
    assert complaints == []
    assert dropins == [str(target)]
    assert native_only(built) == native_only(our_set(formats.to_systemd(sample()).lines))
    assert "mount:EACCES" in built and "reboot:kill" in built and "write" in built
    assert "socket" not in built and "read" not in built


def test_combined_lines_read_the_same_as_systemd_reads_them(tmp_path: Path) -> None:
    x86_64_only()
    lines = ["SystemCallFilter=@system-service", "SystemCallFilter=~@privileged:EPERM",
             "SystemCallFilter=~@mount @clock", "SystemCallFilter=~reboot:kill",
             "SystemCallErrorNumber=EACCES", "SystemCallArchitectures=native"]
    complaints, built, _ = verify(tmp_path, "[Service]\n" + "\n".join(lines) + "\n")
    assert complaints == []
    assert native_only(built) == native_only(our_set(lines))
    assert len(native_only(built)) > 250


@pytest.mark.parametrize("profile", [
    Profile(name="kill", default_action=KILL_PROCESS, rules=(Rule(("read", "write"), ALLOW),),
            deny=(Rule(("mount",), EPERM),)),
    Profile(name="deny-list", default_action=ALLOW, deny=(
        Rule(("mount", "umount2"), EPERM), Rule(("kexec_load",), KILL_PROCESS))),
    Profile(name="log-default", default_action=Action(ActionKind.LOG),
            rules=(Rule(("read",), ALLOW),), deny=(Rule(("mount",), EPERM),)),
    Profile(name="log-mode", default_action=EPERM, mode="log", rules=(Rule(("read",), ALLOW),)),
], ids=lambda p: p.name)
def test_every_kind_of_dropin_is_accepted_by_systemd(tmp_path: Path, profile: Profile) -> None:
    x86_64_only()
    result = formats.to_systemd(profile)
    complaints, built, _ = verify(tmp_path, result.dropin("hg-test.service"))
    assert complaints == []
    assert native_only(built) == native_only(our_set(result.lines))
    assert bool(built) == any(line.startswith("SystemCallFilter=") for line in result.lines)


def test_verify_catches_a_broken_dropin(tmp_path: Path) -> None:
    broken = ("[Service]\nSystemCallFilter=read:EPERM write\nSystemCallErrorNumber=EBOGUS\n"
              "SystemCalFilter=read\n")
    complaints, _, _ = verify(tmp_path, broken)
    conf = tmp_path / "hg-test.service.d" / "hostguard-seccomp.conf"
    assert [c.split(": ", 1)[0] for c in complaints] == [f"{conf}:2", f"{conf}:3", f"{conf}:4"]


# --- CLI ----------------------------------------------------------------------------------------

def test_cli_import_writes_a_profile_the_loader_accepts(tmp_path: Path) -> None:
    x86_64_only()
    path = need_shared(DOCKER)
    done = run_cli("seccomp", "import", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# Imported by hostguard from docker-default.json for x86_64")
    assert "hostguard: note: skipped 60 names absent on x86_64: _llseek" in done.stderr
    out = tmp_path / "docker.yaml"
    done = run_cli("seccomp", "import", str(path), "--caps", "chown,sys_admin", "-o", str(out))
    assert done.returncode == 0, done.stderr
    loaded = load_profile(out)
    assert isinstance(loaded, Profile), loaded
    assert loaded.default_action == EPERM and loaded.deny == ()
    assert {"mount", "bpf"} <= names_of(loaded.rules) and "chroot" not in names_of(loaded.rules)
    exported = run_cli("seccomp", "export", str(out))
    assert exported.returncode == 0, exported.stderr
    data = json.loads(exported.stdout)
    assert data["defaultAction"] == "SCMP_ACT_ERRNO" and data["defaultErrnoRet"] == 1
    again, _ = formats.from_oci(data, caps=["CAP_CHOWN", "CAP_SYS_ADMIN"])
    assert per_number(again) == per_number(loaded)


def test_cli_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"defaultAction": "SCMP_ACT_NOTIFY"}\n')
    done = run_cli("seccomp", "import", str(bad))
    assert done.returncode == 2
    assert done.stderr.startswith(f"hostguard: {bad}:1:19: defaultAction: SCMP_ACT_NOTIFY")
    assert "Traceback" not in done.stderr
    profile = tmp_path / "p.yaml"
    profile.write_text(formats.to_yaml(sample()))
    done = run_cli("seccomp", "systemd", str(profile), "--unit", "../evil")
    assert done.returncode == 2
    assert "--unit must name a service unit" in done.stderr
    done = run_cli("seccomp", "systemd", str(profile), "--unit", "app.service")
    assert done.returncode == 0
    assert done.stdout.startswith("# hostguard seccomp filter for app.service")
    assert "\n[Service]\nSystemCallFilter=write getpid getuid\n" in done.stdout
    wide = run_cli("seccomp", "systemd", str(profile), "--unit", "app.service", "--widen")
    assert "\n[Service]\nSystemCallFilter=read write getpid getuid socket\n" in wide.stdout
    assert "socket gets allow in every case (widened" in wide.stderr
    missing = run_cli("seccomp", "export", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "invalid profile" in missing.stderr
