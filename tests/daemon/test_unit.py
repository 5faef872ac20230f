"""The shipped systemd unit: ``systemd-analyze verify`` clean, exposure as documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support import PROJECT, need_tool

UNIT = PROJECT / "packaging" / "systemd" / "hostguard.service"
DOC = PROJECT / "docs" / "daemon.md"


def settings() -> dict[str, list[str]]:
    """``Key=value`` lines of the unit (repeated keys kept in order)."""
    out: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        if raw and raw[0] not in "#;[" and "=" in raw:
            key, _, value = raw.partition("=")
            out.setdefault(key, []).append(value)
    return out


def test_unit_settings() -> None:
    unit = settings()
    assert unit["Type"] == ["notify"]
    assert unit["ExecStart"] == ["/usr/bin/hostguard daemon --config /etc/hostguard/hostguard.yaml"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["CapabilityBoundingSet"] == ["CAP_DAC_READ_SEARCH CAP_SYS_PTRACE CAP_SYS_ADMIN"]
    assert unit["SystemCallFilter"] == ["@system-service", "~@privileged"]
    for key, value in [("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                       ("PrivateTmp", "yes"), ("NoNewPrivileges", "yes"),
                       ("SystemCallArchitectures", "native"), ("CPUSchedulingPolicy", "idle"),
                       ("IOSchedulingClass", "idle"), ("Nice", "19"),
                       ("StateDirectory", "hostguard"), ("UMask", "0027")]:
        assert unit[key] == [value], key
    assert "PrivateNetwork" not in unit  # the audit must see the host's network namespace


def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    analyze = need_tool("systemd-analyze")
    # verify needs ExecStart's binary to exist: point it at this checkout's interpreter.
    text = re.sub(r"(?m)^ExecStart=/usr/bin/hostguard ",
                  f"ExecStart={sys.executable} -m agent ", UNIT.read_text())
    copy = tmp_path / "hostguard.service"
    copy.write_text(text)
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                            timeout=60, check=False)
    about_unit = [line for line in (result.stdout + result.stderr).splitlines()
                  if "hostguard" in line]
    assert about_unit == []
    assert result.returncode == 0


def test_security_exposure_matches_the_documentation() -> None:
    analyze = need_tool("systemd-analyze")
    result = subprocess.run([analyze, "security", "--offline=true", str(UNIT)],
                            capture_output=True, text=True, timeout=60, check=False)
    match = re.search(r"Overall exposure level for hostguard\.service: (\d+\.\d)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    documented = re.search(r"exposure level[^\d]*(\d+\.\d)", DOC.read_text())
    assert documented is not None
    assert match.group(1) == documented.group(1)


DROP_IN = PROJECT / "packaging" / "systemd" / "deep-seccomp.conf"


def _with_drop_in(folder: Path) -> Path:
    """The unit (ExecStart pointed at this interpreter) with the deep-seccomp drop-in beside it."""
    unit = folder / "hostguard.service"
    unit.write_text(re.sub(r"(?m)^ExecStart=/usr/bin/hostguard ",
                           f"ExecStart={sys.executable} -m agent ", UNIT.read_text()))
    (folder / "hostguard.service.d").mkdir()
    (folder / "hostguard.service.d" / "deep-seccomp.conf").write_text(DROP_IN.read_text())
    return unit


def test_deep_seccomp_drop_in_resets_every_seccomp_backed_setting(tmp_path: Path) -> None:
    analyze = need_tool("systemd-analyze")
    unit = _with_drop_in(tmp_path)
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert [line for line in (result.stdout + result.stderr).splitlines()
            if "hostguard" in line] == []
    assert result.returncode == 0
    security = subprocess.run([analyze, "security", "--offline=true", str(unit)],
                              capture_output=True, text=True, timeout=60, check=False)
    failing = {line.split()[1].split("=")[0] + "=" for line in security.stdout.splitlines()
               if line.startswith("✗")}
    # Every setting systemd implements with a seccomp filter must be off, or the kernel refuses
    # PTRACE_SECCOMP_GET_FILTER to the daemon.
    seccomp_backed = {"SystemCallFilter=", "SystemCallArchitectures=", "RestrictAddressFamilies=",
                      "RestrictNamespaces=", "MemoryDenyWriteExecute=", "LockPersonality=",
                      "RestrictRealtime=", "RestrictSUIDSGID=", "ProtectKernelModules=",
                      "ProtectKernelLogs=", "ProtectClock=", "ProtectHostname=",
                      "PrivateDevices=", "ProtectKernelTunables="}
    assert seccomp_backed - {"SystemCallFilter="} <= failing
    assert not any(line.startswith("✓ SystemCallFilter=") for line in security.stdout.splitlines())
    match = re.search(r"Overall exposure level for hostguard\.service: (\d+\.\d)", security.stdout)
    assert match is not None
    assert f"**{match.group(1)} MEDIUM**" in DOC.read_text()


CLOCK_DROP_IN = PROJECT / "packaging" / "systemd" / "clock-read.conf"


def _security(unit: Path) -> str:
    analyze = need_tool("systemd-analyze")
    return subprocess.run([analyze, "security", "--offline=true", str(unit)],
                          capture_output=True, text=True, timeout=60, check=False).stdout


def test_clock_read_drop_in_allows_adjtimex_alone_and_keeps_the_filter(tmp_path: Path) -> None:
    unit = tmp_path / "hostguard.service"
    unit.write_text(UNIT.read_text())
    (tmp_path / "hostguard.service.d").mkdir()
    (tmp_path / "hostguard.service.d" / "clock-read.conf").write_text(CLOCK_DROP_IN.read_text())
    security = _security(unit)
    lines = security.splitlines()
    # @clock is allowed through adjtimex only, the filter stays, the clock cannot be set.
    [clock] = [line for line in lines if "SystemCallFilter=~@clock" in line]
    assert clock.startswith("✗") and "(e.g. adjtimex is allowed)" in clock
    assert any(line.startswith("✓ CapabilityBoundingSet=~CAP_SYS_TIME") for line in lines)
    assert any(line.startswith("✓ SystemCallFilter=~@mount") for line in lines)
    match = re.search(r"Overall exposure level for hostguard\.service: (\d+\.\d)", security)
    assert match is not None, security
    assert f"**{match.group(1)} OK** instead of 2.3" in DOC.read_text()


def test_clock_read_before_deep_seccomp_leaves_no_filter(tmp_path: Path) -> None:
    # Drop-ins apply in name order: deep-seccomp's empty SystemCallFilter= must come last, or
    # the allow list would hold adjtimex alone.
    assert sorted([CLOCK_DROP_IN.name, DROP_IN.name]) == [CLOCK_DROP_IN.name, DROP_IN.name]
    (tmp_path / "deep").mkdir()
    deep = _with_drop_in(tmp_path / "deep")
    both_folder = tmp_path / "both"
    both_folder.mkdir()
    both = _with_drop_in(both_folder)
    (both_folder / "hostguard.service.d" / "clock-read.conf").write_text(
        CLOCK_DROP_IN.read_text())
    assert _security(both) == _security(deep)
