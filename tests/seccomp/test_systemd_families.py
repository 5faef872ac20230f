"""``socket()`` address family rules as ``RestrictAddressFamilies=`` (agent.seccomp.systemd).

The drop-in is proven three ways: systemd reads it (``systemd-analyze verify`` and ``security``),
the filters systemd builds from it (:func:`systemd.address_family_filter` stacked under
``SystemCallFilter=``'s, as systemd loads them) decide every ``socket()`` family as the compiled
profile does but for the documented errno, and the kernel, loading that stack, lets a process
open the sockets the profile allows.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import subprocess
from functools import cache
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from agent.core.location import Location
from agent.enforce.load import load_filter
from agent.seccomp import bpf, effective, syscalls, systemd, verify
from agent.seccomp.compile import CompiledFilter, build_filter
from agent.seccomp.model import ALLOW, EPERM, Action, ActionKind, ArgCondition, Profile, Rule
from agent.seccomp.plan import CompileError
from agent.seccomp.profile import load_profile, to_yaml
from tests.seccomp.decisions import x86_64_only
from tests.seccomp.kernel import LIBC, in_child, with_runtime
from tests.seccomp.test_systemd import verify as analyze_verify
from tests.support import PROJECT, need_tool, run_cli

GATEWAY = PROJECT / "policies" / "seccomp" / "trading-gateway.yaml"
ALLOWED = {1, 2, 10, 16}
"""The gateway's families: AF_UNIX, AF_INET, AF_INET6, AF_NETLINK."""
LOSS = ("socket(): address families other than AF_UNIX AF_INET AF_INET6 AF_NETLINK fail with "
        "EAFNOSUPPORT (RestrictAddressFamilies=), the profile gives errno(1)")
AFNO = Action(ActionKind.ERRNO, errno.EAFNOSUPPORT)


def gateway() -> Profile:
    loaded = load_profile(GATEWAY)
    assert not isinstance(loaded, list), loaded
    return loaded


def systemd_stack(lines: tuple[str, ...]) -> list[bytes]:
    """The filters systemd loads for ``lines``, newest first: ``SystemCallFilter=``'s is loaded
    last (closest to the execve), ``RestrictAddressFamilies=``'s before it."""
    stack = [build_filter(systemd.from_systemd(lines)).bpf()]
    families = systemd.address_family_filter(lines)
    if families is not None:
        stack.append(build_filter(families).bpf())
    return stack


@cache
def gateway_programs() -> tuple[list[bytes], bytes]:
    """The gateway's filters under systemd (newest first), and as the profile compiles."""
    return systemd_stack(systemd.to_systemd(gateway()).lines), build_filter(gateway()).bpf()


def socket_call(family: int, kind: int = 1) -> bpf.SeccompData:
    nr = syscalls.resolve("socket")
    assert nr is not None
    return bpf.SeccompData(nr, effective.kernel_token("x86_64"), (family, kind, 0, 0, 0, 0))


def test_gateway_socket_rules_become_restrict_address_families() -> None:
    x86_64_only()
    result = systemd.to_systemd(gateway())
    assert "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK" in result.lines
    allowed = {word for line in result.lines if line.startswith("SystemCallFilter=")
               and not line.startswith("SystemCallFilter=~")
               for word in line.removeprefix("SystemCallFilter=").split()}
    assert {"socket", "socketpair", "connect", "unshare"} & allowed == {
        "socket", "socketpair", "connect"}
    assert result.losses == (LOSS,)
    assert result.notes == ()


@pytest.mark.parametrize("family", [*range(64), 256, 2**32 + 2, 2**63 + 10, 2**64 - 1])
def test_each_family_is_decided_as_the_profile_decides_it(family: int) -> None:
    x86_64_only()
    stack, declared = gateway_programs()
    call = socket_call(family)
    mine, theirs = bpf.emulate_stack(stack, call), bpf.emulate(declared, call)
    assert effective.permits(mine) == effective.permits(theirs) == (family in ALLOWED)
    if family not in ALLOWED:  # the documented loss: another errno, still refused
        assert (str(bpf.verdict(mine)), str(bpf.verdict(theirs))) == ("errno(97)", "errno(1)")


def test_the_verifier_finds_the_documented_loss_and_nothing_else() -> None:
    x86_64_only()
    lines = systemd.to_systemd(gateway()).lines
    declared = build_filter(gateway())
    found = verify.compare(systemd_stack(lines), declared)
    assert found.differences, "the errno differs: the comparison must say so"
    assert {(d.kind, d.arch, d.syscall, d.loaded, d.declared) for d in found.differences} == {
        ("action_differs", "x86_64", "socket", "errno(97)", "errno(1)")}
    # The check can fail: without RestrictAddressFamilies= every family would be let through.
    bare = tuple(line for line in lines if not line.startswith("RestrictAddressFamilies="))
    wrong = verify.compare(systemd_stack(bare), declared)
    # Every difference is listed (one witness per disagreeing region), all of this one kind.
    assert wrong.differences
    assert {(d.kind, d.syscall) for d in wrong.differences} == {("allowed_extra", "socket")}


CALLS = [(1, 1), (2, 1), (10, 1), (16, 3), (17, 3), (15, 2), (40, 1)]
"""socket(family, type): AF_UNIX, AF_INET, AF_INET6 stream; AF_NETLINK, AF_PACKET raw; AF_KEY
datagram; AF_VSOCK stream."""


def socket_errnos(filters: list[CompiledFilter]) -> dict[int, int]:
    """Family -> errno (0: the socket was opened) of each of :data:`CALLS`, in a child that
    loaded ``filters`` in that order (systemd's: address families first)."""
    nr = syscalls.resolve("socket")
    assert nr is not None

    def child(out: int) -> None:
        for compiled in filters:
            load_filter(compiled)
        for family, kind in CALLS:
            ctypes.set_errno(0)
            result = LIBC.syscall(nr, ctypes.c_long(family), ctypes.c_long(kind),
                                  ctypes.c_long(0))
            err = 0 if result >= 0 else ctypes.get_errno()
            if result >= 0:
                os.close(result)
            os.write(out, f"{family} {err}\n".encode())

    written, status = in_child(child)
    assert status == 0, written
    return {int(f): int(e) for f, e in (line.split() for line in written.decode().splitlines())}


def test_the_kernel_lets_the_gateway_open_its_sockets_under_the_dropin() -> None:
    x86_64_only()
    lines = systemd.to_systemd(gateway()).lines
    families = systemd.address_family_filter(lines)
    assert families is not None
    under_systemd = socket_errnos([build_filter(families),
                                   build_filter(with_runtime(systemd.from_systemd(lines)))])
    under_profile = socket_errnos([build_filter(with_runtime(gateway()))])
    unfiltered = socket_errnos([])
    for family, _ in CALLS:
        if family in ALLOWED:  # opened, or refused by the kernel itself (e.g. no IPv6)
            assert under_systemd[family] == under_profile[family] == unfiltered[family], family
            assert unfiltered[family] != errno.EPERM
        else:
            assert (under_systemd[family], under_profile[family]) == (
                errno.EAFNOSUPPORT, errno.EPERM), family
    assert under_systemd[2] == under_systemd[1] == 0  # AF_INET and AF_UNIX always exist


def test_systemd_reads_the_gateway_dropin_as_written(tmp_path: Path) -> None:
    x86_64_only()
    tool = need_tool("systemd-analyze")
    dropin = systemd.to_systemd(gateway()).dropin("hg-test.service", str(GATEWAY))
    complaints, built, _ = analyze_verify(tmp_path, dropin)
    assert complaints == []
    assert "socket" in built and "socketpair" in built
    env = {**os.environ, "SYSTEMD_UNIT_PATH": str(tmp_path), "SYSTEMD_LOG_COLOR": "0"}
    done = subprocess.run([tool, "security", "--offline=yes", "--json=short",
                           str(tmp_path / "hg-test.service")], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assessed = {item["json_field"]: item["set"] for item in json.loads(done.stdout)
                if item["json_field"].startswith("RestrictAddressFamilies_")}
    assert assessed == {  # set: the family is refused
        "RestrictAddressFamilies_AF_INET_INET6": False, "RestrictAddressFamilies_AF_UNIX": False,
        "RestrictAddressFamilies_AF_NETLINK": False, "RestrictAddressFamilies_AF_PACKET": True,
        "RestrictAddressFamilies_OTHER": True}


def test_systemd_knows_every_family_name_written(tmp_path: Path) -> None:
    names = " ".join(systemd.ADDRESS_FAMILIES.values())
    complaints, _, _ = analyze_verify(tmp_path, f"[Service]\nRestrictAddressFamilies={names}\n")
    assert complaints == []
    complaints, _, _ = analyze_verify(tmp_path, "[Service]\nRestrictAddressFamilies=AF_NOPE\n")
    assert [c.split(": ", 1)[1] for c in complaints] == [
        "Failed to parse address family, ignoring: AF_NOPE"]


def family_profile(rest: Action, *, deny_list: bool = False) -> Profile:
    """socket() for AF_INET and AF_UNIX only, everything else ``rest``, the default action
    (a socket() rule refusing the rest would not compile: libseccomp 2.5 cannot take ``arg0 ne
    1 and arg0 ne 2``); ``deny_list``: the reverse, AF_PACKET and AF_KEY refused with ``rest``,
    everything else allowed."""
    if deny_list:
        return Profile(name="deny", default_action=ALLOW, deny=tuple(
            Rule(("socket",), rest, (ArgCondition(0, "eq", f),)) for f in (17, 15)))
    return Profile(name="allow", default_action=rest, rules=(
        Rule(("read", "write", "close"), ALLOW),
        *(Rule(("socket",), ALLOW, (ArgCondition(0, "eq", f),)) for f in (2, 1))))


@pytest.mark.parametrize("profile, line", [
    (family_profile(AFNO), "RestrictAddressFamilies=AF_UNIX AF_INET"),
    (family_profile(AFNO, deny_list=True), "RestrictAddressFamilies=~AF_KEY AF_PACKET"),
], ids=["allow-list", "deny-list"])
def test_a_profile_refusing_with_eafnosupport_translates_exactly(profile: Profile,
                                                                 line: str) -> None:
    x86_64_only()
    result = systemd.to_systemd(profile)
    assert line in result.lines and result.losses == ()
    found = verify.compare(systemd_stack(result.lines), build_filter(profile))
    assert found.equivalent, [str(d) for d in found.differences]


def test_deny_list_losses_name_each_family() -> None:
    x86_64_only()
    result = systemd.to_systemd(family_profile(EPERM, deny_list=True))
    assert result.losses == tuple(
        f"socket(): {name} fails with EAFNOSUPPORT (RestrictAddressFamilies=~), the profile "
        "gives errno(1)" for name in ("AF_KEY", "AF_PACKET"))


@pytest.mark.parametrize("rules, loss", [
    ("  - syscalls: [clone]\n    args: [{index: 0, op: masked_eq, mask: 0x10000000, value: 0}]\n",
     "clone: argument conditions (arg0 & 0x10000000 == 0x0) cannot be expressed"),
    ("  - syscalls: [socket]\n    args: [{index: 1, op: eq, value: 1}]\n",
     "socket: argument conditions (arg1 eq 1) cannot be expressed"),
    ("  - syscalls: [socket]\n    args: [{index: 0, op: eq, value: 99}]\n",
     "socket: argument conditions (arg0 eq 99) cannot be expressed"),
], ids=["clone-flags", "socket-type", "no-such-family"])
def test_an_unexpressible_rule_exits_2_unless_lossy(tmp_path: Path, rules: str,
                                                   loss: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("apiVersion: hostguard/v1\nkind: SeccompProfile\nmetadata: {name: p}\n"
                    "default_action: {errno: 1}\nrules:\n  - syscalls: [read, write]\n" + rules)
    target = tmp_path / "app.service.d" / "hostguard-seccomp.conf"
    refused = run_cli("seccomp", "systemd", str(path), "--unit", "app.service",
                      "--output", str(tmp_path))
    assert refused.returncode == 2 and not target.exists() and refused.stdout == ""
    assert f"hostguard: cannot express: {loss}" in refused.stderr
    done = run_cli("seccomp", "systemd", str(path), "--unit", "app.service",
                   "--output", str(tmp_path), "--lossy")
    assert done.returncode == 0, done.stderr
    assert f"hostguard: loss: {loss}" in done.stderr
    assert f"# loss: {loss}" in target.read_text()


def test_an_exact_profile_is_written_without_lossy(tmp_path: Path) -> None:
    x86_64_only()
    path = tmp_path / "p.yaml"
    path.write_text(to_yaml(family_profile(AFNO)))
    done = run_cli("seccomp", "compile", str(path), "--format", "systemd")
    assert done.returncode == 0, done.stderr
    assert "\nRestrictAddressFamilies=AF_UNIX AF_INET\n" in done.stdout
    assert "loss" not in done.stderr


@pytest.mark.parametrize("arch", ["x86", "s390x", "ppc64le", "parisc"])
def test_no_restrict_address_families_where_systemd_ignores_it(arch: str) -> None:
    assert systemd._socket_families(gateway(), arch) is None
    assert systemd._socket_families(gateway(), "aarch64") is not None


def test_restrict_address_families_is_read_as_systemd_reads_it() -> None:
    parser = systemd._SystemdParser()
    for number, value in enumerate(["AF_INET AF_UNIX", "AF_NETLINK", "~AF_UNIX AF_BOGUS"], 1):
        parser.setting("RestrictAddressFamilies", value, Location("<t>", number))
    assert (parser.families, parser.families_allow) == ({2, 16}, True)
    assert parser.notes == ["<t>:3:1: unknown address family 'AF_BOGUS', ignored (as systemd "
                            "does)"]
    assert systemd.address_family_filter(["RestrictAddressFamilies="]) is None
    refuse_all = systemd.address_family_filter(["RestrictAddressFamilies=none"])
    assert refuse_all is not None
    assert [(r.args, r.action) for r in refuse_all.deny] == [((), AFNO)]
    deny = systemd.address_family_filter(["RestrictAddressFamilies=~AF_PACKET"])
    assert deny is not None
    assert [r.args for r in deny.deny] == [(ArgCondition(0, "eq", 17),)]
    # "none" leaves no set: the next assignment starts a new list, here a deny-list (systemd
    # 252's config_parse_address_families; systemd-analyze security agrees, see
    # tests/checks/test_unit_exposure.py).
    after_none = systemd.address_family_filter(["RestrictAddressFamilies=none",
                                                "RestrictAddressFamilies=~AF_INET"])
    assert after_none is not None
    assert [r.args for r in after_none.deny] == [(ArgCondition(0, "eq", 2),)]


FAMILY_RULES = st.lists(st.tuples(
    st.sampled_from(("rules", "deny")),
    st.sampled_from((1, 2, 10, 16, 17, 0, 99, None)),  # None: no condition
    st.sampled_from((ALLOW, AFNO, EPERM, Action(ActionKind.LOG)))), min_size=1, max_size=4)


@settings(max_examples=40, deadline=None)
@given(default=st.sampled_from((EPERM, AFNO, ALLOW)), socket_rules=FAMILY_RULES)
def test_no_loss_named_means_no_difference(default: Action,
                                           socket_rules: list[tuple[str, int | None,
                                                                    Action]]) -> None:
    """Whatever the socket() rules, a translation without losses decides every call as the
    profile does (the verifier finds nothing), and a difference is always on a syscall a loss
    names."""
    x86_64_only()
    parts: dict[str, list[Rule]] = {"rules": [Rule(("read", "write", "close"), ALLOW)],
                                    "deny": []}
    for where, family, action in socket_rules:
        args = () if family is None else (ArgCondition(0, "eq", family),)
        parts[where].append(Rule(("socket",), action, args))
    profile = Profile(name="p", default_action=default, rules=tuple(parts["rules"]),
                      deny=tuple(parts["deny"]))
    try:
        declared = build_filter(profile)
    except CompileError:  # rules libseccomp cannot take: not a profile anyone can load
        assume(False)
        raise
    result = systemd.to_systemd(profile)
    found = verify.compare(systemd_stack(result.lines), declared)
    if not result.losses:
        assert found.equivalent, (result.lines, [str(d) for d in found.differences])
    for difference in found.differences:
        assert any(loss.startswith(f"{difference.syscall}") for loss in result.losses), (
            str(difference), result.losses)
