"""systemd ``SystemCallFilter=`` in and out (agent.seccomp.systemd).

systemd's own reading of the generated lines is checked with ``systemd-analyze verify`` (its debug
dump shows the filter set it built).
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.location import Location
from agent.seccomp import syscalls, systemd
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
from agent.seccomp.profile import to_yaml
from tests.seccomp.decisions import ACTIONS, POOL, effective, x86_64_only
from tests.support import need_tool, run_cli

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


SOCKET_LOSS = ("socket(): address families other than AF_INET fail with EAFNOSUPPORT "
               "(RestrictAddressFamilies=), the profile gives errno(1)")


def test_to_systemd_lines_and_what_cannot_be_expressed() -> None:
    x86_64_only()
    result = systemd.to_systemd(sample())
    implicit = [n for n in syscalls.expand(["@default"])
                if n not in ("getpid", "getuid")
                and syscalls.lookup(n).status is syscalls.Status.KNOWN]
    assert result.lines[0] == "SystemCallFilter=write getpid socket getuid"
    removed = " ".join(result.lines[1:-6]).replace("SystemCallFilter=~", "").split()
    assert removed == implicit
    assert result.lines[-6:] == (
        "SystemCallFilter=~mount:EACCES umount2:EACCES reboot:kill",
        "SystemCallErrorNumber=EPERM",
        "SystemCallLog=getuid",
        "RestrictAddressFamilies=AF_INET",
        "SystemCallArchitectures=native",
        "NoNewPrivileges=yes",
    )
    assert result.losses == (
        SOCKET_LOSS,
        "read: argument conditions (arg0 gt 100) cannot be expressed; read gets errno(1) in "
        "every case",
        "reboot: kill_thread becomes kill (systemd kills the whole process)",
    )
    assert len(result.notes) == 1
    assert result.notes[0].startswith("systemd always allows @default; taken out again")
    wide = systemd.to_systemd(sample(), widen=True)
    assert wide.lines[0] == "SystemCallFilter=read write getpid socket getuid"
    assert wide.losses[:2] == (
        SOCKET_LOSS,
        "read: argument conditions (arg0 gt 100) cannot be expressed; read gets allow in every "
        "case (widened: the profile is stricter)",
    )


def test_deny_list_profile_and_log_mode() -> None:
    x86_64_only()
    deny_list = Profile(name="d", default_action=ALLOW, deny=(
        Rule(("mount", "umount2"), EPERM), Rule(("kexec_load",), KILL_PROCESS),
        Rule(("ptrace",), Action(ActionKind.ERRNO, errno.EACCES))))
    assert systemd.to_systemd(deny_list).lines == (
        "SystemCallFilter=~mount umount2 kexec_load:kill ptrace:EACCES",
        "SystemCallErrorNumber=EPERM",
        "SystemCallArchitectures=native",
        "NoNewPrivileges=yes",
    )
    logged = systemd.to_systemd(Profile(name="l", default_action=EPERM, mode="log",
                                        rules=(Rule(("read", "write"), ALLOW),)))
    assert logged.lines == ("SystemCallLog=~read write", "SystemCallArchitectures=native",
                            "NoNewPrivileges=yes")
    assert logged.losses == ()
    assert logged.notes == (
        "mode log: no SystemCallFilter=; SystemCallLog= logs what would be denied",)


def test_from_systemd_combines_lines_as_systemd_does() -> None:
    x86_64_only()
    profile, notes = systemd.parse_systemd([
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
    profile = systemd.from_systemd([
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
    with pytest.raises(FormatError, match=r"<systemd>:1:1: unknown syscall group"):
        systemd.from_systemd(["SystemCallFilter=@no-such-group"])
    with pytest.raises(FormatError, match="not an errno number or name: 'EWHAT'"):
        systemd.from_systemd(["SystemCallFilter=~mount:EWHAT"])


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
    result = systemd.to_systemd(profile)
    back = systemd.from_systemd(result.lines)
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
    back = systemd.from_systemd(systemd.to_systemd(profile).lines, "rt")
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
    parser = systemd._SystemdParser()  # the state systemd keeps, exactly what it dumps
    for number, line in enumerate(lines, 1):
        key, _, value = line.partition("=")
        parser.setting(key, value, Location("<test>", number))
    out = set()
    for name, err in (parser.table or {}).items():
        if err is None:
            out.add(name)
        else:
            out.add(f"{name}:{'kill' if err == systemd._KILL else errno.errorcode[err]}")
    return out


def native_only(entries: set[str]) -> set[str]:
    return {e for e in entries
            if syscalls.lookup(e.split(":")[0]).status is syscalls.Status.KNOWN}


def test_dropin_from_the_cli_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    x86_64_only()
    source = tmp_path / "svc.yaml"
    source.write_text(to_yaml(sample()))
    target = tmp_path / "hg-test.service.d" / "hostguard-seccomp.conf"
    refused = run_cli("seccomp", "systemd", str(source), "--unit", "hg-test.service",
                      "--output", str(tmp_path))
    assert refused.returncode == 2 and refused.stdout == ""
    assert not target.exists()
    assert f"hostguard: cannot express: {SOCKET_LOSS}\n" in refused.stderr
    assert "hostguard: nothing written: 3 loss(es); --lossy" in refused.stderr
    done = run_cli("seccomp", "systemd", str(source), "--unit", "hg-test.service",
                   "--output", str(tmp_path), "--lossy")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {target}")
    assert f"hostguard: loss: {SOCKET_LOSS}\n" in done.stderr
    assert "hostguard: loss: read: argument conditions (arg0 gt 100)" in done.stderr
    text = target.read_text()
    assert f"\n# loss: {SOCKET_LOSS}\n" in text
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    complaints, built, dropins = verify(tmp_path, text)
    assert complaints == []
    assert dropins == [str(target)]
    assert native_only(built) == native_only(our_set(systemd.to_systemd(sample()).lines))
    assert "mount:EACCES" in built and "reboot:kill" in built and "write" in built
    assert "socket" in built and "read" not in built


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
    result = systemd.to_systemd(profile)
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

def test_cli_systemd_dropin_and_its_errors(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(to_yaml(sample()))
    done = run_cli("seccomp", "systemd", str(profile), "--unit", "../evil")
    assert done.returncode == 2
    assert "--unit must name a service unit" in done.stderr
    done = run_cli("seccomp", "systemd", str(profile), "--unit", "app.service", "--lossy")
    assert done.returncode == 0
    assert done.stdout.startswith("# hostguard seccomp filter for app.service")
    assert "\n[Service]\nSystemCallFilter=write getpid socket getuid\n" in done.stdout
    wide = run_cli("seccomp", "systemd", str(profile), "--unit", "app.service", "--lossy",
                   "--widen")
    assert "\n[Service]\nSystemCallFilter=read write getpid socket getuid\n" in wide.stdout
    assert ("hostguard: loss: read: argument conditions (arg0 gt 100) cannot be expressed; "
            "read gets allow in every case (widened") in wide.stderr
    missing = run_cli("seccomp", "export", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "invalid profile" in missing.stderr


def test_filter_settings_keep_what_systemd_keeps() -> None:
    settings = systemd.filter_settings([
        "SystemCallFilter=@clock read",
        "SystemCallFilter=~clock_settime:EPERM",
        "RestrictAddressFamilies=~AF_PACKET",
        "SystemCallArchitectures=native",
        "SystemCallArchitectures=x86 bogus",
    ])
    assert settings.allow_list
    assert settings.syscalls is not None
    assert "read" in settings.syscalls and "clock_gettime" in settings.syscalls
    assert "clock_settime" not in settings.syscalls  # an errno exception is not allowed
    assert (settings.families_allow, settings.families) == (False, frozenset({17}))
    assert settings.architectures == frozenset({"native", "x86"})  # gathered, unknown dropped
    cleared = systemd.filter_settings(["SystemCallArchitectures=native",
                                       "SystemCallArchitectures=", "SystemCallFilter=~@clock",
                                       "SystemCallFilter="])
    assert (cleared.architectures, cleared.syscalls, cleared.families) == (
        frozenset(), None, None)


def test_architectures_add_up_over_assignments_as_systemd_adds_them() -> None:
    # config_parse_syscall_archs: each assignment adds to one set, an empty one clears it.
    two = systemd.from_systemd(["SystemCallFilter=read", "SystemCallArchitectures=native",
                                "SystemCallArchitectures=x86 bogus"])
    assert two.architectures == ("native", "x86")
    reset = systemd.from_systemd(["SystemCallFilter=read", "SystemCallArchitectures=x86",
                                  "SystemCallArchitectures=", "SystemCallArchitectures=native"])
    assert reset.architectures == ("native",)
    # Nothing systemd knows: the set stays empty, and every ABI gets the same list.
    unknown, notes = systemd.parse_systemd(["SystemCallFilter=read",
                                            "SystemCallArchitectures=bogus"])
    assert unknown.architectures[0] == "native" and len(unknown.architectures) > 1
    assert any("no SystemCallArchitectures=" in note for note in notes)
