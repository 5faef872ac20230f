"""Docker/OCI seccomp JSON in and out (agent.seccomp.oci).

The imported Docker default profile is compiled with :mod:`agent.seccomp.compile` and loaded in a
forked child (``tests.seccomp.kernel``).
"""

from __future__ import annotations

import copy
import errno
import json
import os
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.location import Location
from agent.seccomp import oci, syscalls
from agent.seccomp.compile import build_filter
from agent.seccomp.model import (
    ALLOW,
    EPERM,
    KILL_PROCESS,
    Action,
    ActionKind,
    ArgCondition,
    FormatError,
    Profile,
    Rule,
)
from agent.seccomp.profile import load_profile
from tests.seccomp.decisions import ACTIONS, POOL, effective, names_of, per_number, x86_64_only
from tests.seccomp.kernel import Call, run_filtered
from tests.support import need_shared, run_cli

DOCKER = "fixtures/seccomp/docker-default.json"
AF_VSOCK = 40
KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING = 0, -1
CLONE_NEWUSER, CLONE_SIGHAND = 0x10000000, 0x800
ENOSYS = Action(ActionKind.ERRNO, errno.ENOSYS)


def docker(**kwargs: Any) -> tuple[Profile, list[str]]:
    return oci.load_oci(need_shared(DOCKER), **kwargs)


def docker_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(need_shared(DOCKER).read_text())
    return data


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
    admin, notes = docker(caps=[*oci.DOCKER_DEFAULT_CAPS, "CAP_SYS_ADMIN"], kernel="6.1.0")
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
    assert oci.from_oci(data, kernel="5.3.0")[0].deny[0].syscalls == ("mount",)
    assert oci.from_oci(data, kernel="5.4.0")[0].deny == ()


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
        profile, notes = oci.from_oci(data)
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
    with pytest.raises(FormatError, match=r"syscalls\[0\]\.action: SCMP_ACT_NOTIFY hands"):
        one("SCMP_ACT_NOTIFY")
    logged = oci.from_oci({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
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
    profile, notes = oci.from_oci(data)
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
    profile, notes = oci.from_oci(data)
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
    with pytest.raises(FormatError) as caught:
        oci.load_oci(path, kernel="6.1")
    text = str(caught.value)
    assert re.match(rf"{re.escape(str(path))}:\d+:\d+: ", text), text
    assert message in text
    assert caught.value.location.line > 1 or message.startswith("defaultAction")


def test_unreadable_json_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"defaultAction": "SCMP_ACT_ERRNO",\n  "syscalls": [}\n')
    with pytest.raises(FormatError) as caught:
        oci.load_oci(path)
    assert str(caught.value).startswith(f"{path}:2:")


# --- Docker/OCI export and round trip -----------------------------------------------------------

def test_round_trip_keeps_the_action_of_every_syscall_number() -> None:
    x86_64_only()
    first, _ = docker(kernel="6.1.0")
    exported = oci.to_oci(first)
    second, notes = oci.from_oci(json.loads(json.dumps(exported)), kernel="6.1.0",
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
    if oci.oci_caveats(profile):
        return  # order-dependent: OCI cannot say it, and oci_caveats says so
    back, _ = oci.from_oci(json.loads(json.dumps(oci.to_oci(profile))))
    for name in POOL:
        assert normalized(effective(back, name)) == normalized(effective(profile, name)), name


def test_export_shape_masked_eq_log_mode_and_unreachable_names() -> None:
    profile = Profile(
        name="p", default_action=EPERM, architectures=("native",),
        rules=(Rule(("clone",), ALLOW, (ArgCondition(0, "masked_eq", 0, mask=0x7E020000),)),
               Rule(("read", "mount"), ALLOW)),
        deny=(Rule(("mount",), Action(ActionKind.ERRNO, 13)),))
    out = oci.to_oci(profile, "x86_64")
    assert out == {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        ]}
    logged = oci.to_oci(Profile(name="p", default_action=EPERM, mode="log",
                                    deny=(Rule(("mount",), KILL_PROCESS),)))
    assert logged["defaultAction"] == "SCMP_ACT_LOG" and "defaultErrnoRet" not in logged
    assert logged["syscalls"] == [{"names": ["mount"], "action": "SCMP_ACT_LOG"}]
    two = Profile(name="p", default_action=EPERM, rules=(
        Rule(("socket",), ALLOW, (ArgCondition(0, "ge", 2), ArgCondition(0, "le", 10))),))
    with pytest.raises(FormatError, match="two conditions on one argument"):
        oci.to_oci(two)


def test_oci_caveats_name_order_dependent_syscalls() -> None:
    profile = Profile(name="p", default_action=EPERM, rules=(
        Rule(("socket",), ALLOW, (ArgCondition(0, "eq", 2),)),
        Rule(("read",), ALLOW, (ArgCondition(0, "eq", 0),))),
        deny=(Rule(("socket",), Action(ActionKind.ERRNO, 97), (ArgCondition(0, "eq", 17),)),))
    assert oci.oci_caveats(profile) == [
        "socket: a conditional errno(97) rule comes before a rule with another action; OCI has "
        "no rule order, the runtime decides"]


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
    again, _ = oci.from_oci(data, caps=["CAP_CHOWN", "CAP_SYS_ADMIN"])
    assert per_number(again) == per_number(loaded)


def test_cli_import_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"defaultAction": "SCMP_ACT_NOTIFY"}\n')
    done = run_cli("seccomp", "import", str(bad))
    assert done.returncode == 2
    assert done.stderr.startswith(f"hostguard: {bad}:1:19: defaultAction: SCMP_ACT_NOTIFY")
    assert "Traceback" not in done.stderr
