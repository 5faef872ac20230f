"""The exposure score against ``systemd-analyze security --offline=yes`` of this host's systemd.

Every fixture unit is written into one root and assessed by systemd there (``--root``); the
score must agree to the tenth and every row's share and description as ``--json=short`` gives
them. Then every service on this host, read from ``/``.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

from agent.checks.unit_exposure import ASSESSORS, ExposureError, exposure
from agent.host.unitfiles import load_unit, unit_names
from tests.support import PROJECT, need_tool

ETC = "etc/systemd/system"
SHIPPED = PROJECT / "packaging" / "systemd" / "hostguard.service"
DEEP = PROJECT / "packaging" / "systemd" / "deep-seccomp.conf"

BOOLS = ("PrivateDevices", "PrivateMounts", "PrivateNetwork", "PrivateTmp", "PrivateUsers",
         "ProtectControlGroups", "ProtectKernelModules", "ProtectKernelTunables",
         "ProtectKernelLogs", "ProtectClock", "ProtectHostname", "LockPersonality",
         "MemoryDenyWriteExecute", "NoNewPrivileges", "RemoveIPC", "RestrictRealtime",
         "RestrictSUIDSGID", "DynamicUser", "Delegate")

UNITS: dict[str, str] = {
    "bare": "",
    "user-root": "User=root",
    "user-zero": "User=0",
    "user-nobody": "User=nobody",
    "user-app": "User=app\nRemoveIPC=yes",
    "user-app-groups": "User=app\nSupplementaryGroups=adm video",
    "user-groups-reset": "User=app\nSupplementaryGroups=adm\nSupplementaryGroups=",
    "dynamic": "DynamicUser=yes",
    "dynamic-root": "DynamicUser=yes\nUser=root",
    "dynamic-home": "DynamicUser=yes\nProtectHome=tmpfs",
    "system-strict": "ProtectSystem=strict\nProtectHome=yes",
    "system-full": "ProtectSystem=full\nProtectHome=read-only",
    "system-yes": "ProtectSystem=yes\nProtectHome=tmpfs",
    "system-reset": "ProtectSystem=strict\nProtectSystem=\nProtectHome=bogus",
    "caps-one": "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
    "caps-minus": "CapabilityBoundingSet=~CAP_SYS_ADMIN CAP_SYS_PTRACE cap_net_raw",
    "caps-empty": "CapabilityBoundingSet=",
    "caps-merge": "CapabilityBoundingSet=CAP_KILL\nCapabilityBoundingSet=CAP_SYS_TIME\n"
                  "CapabilityBoundingSet=~CAP_KILL",
    "caps-ambient": "User=app\nAmbientCapabilities=CAP_NET_RAW\nCapabilityBoundingSet=CAP_NET_RAW",
    "caps-protect": "PrivateDevices=yes\nProtectKernelModules=yes\nProtectKernelLogs=yes\n"
                    "ProtectClock=yes",
    "scf-allow": "SystemCallFilter=@system-service\nSystemCallArchitectures=native",
    "scf-deny": "SystemCallFilter=~@mount @swap @reboot\nSystemCallArchitectures=x86-64 x86",
    "scf-allow-minus": "SystemCallFilter=@system-service\nSystemCallFilter=~@privileged @resources",
    "scf-allow-errno": "SystemCallFilter=@system-service @clock\n"
                       "SystemCallFilter=~@clock:EPERM",
    "scf-deny-all-groups": "SystemCallFilter=~@swap @obsolete @clock @cpu-emulation @debug "
                           "@mount @module @raw-io @reboot @privileged @resources",
    "scf-deny-undone": "SystemCallFilter=~@clock\nSystemCallFilter=clock_settime "
                       "clock_adjtime settimeofday adjtimex clock_adjtime64",
    "scf-reset": "SystemCallFilter=~@clock\nSystemCallFilter=",
    "scf-small-allow": "SystemCallFilter=read write exit",
    "scf-deny-errno": "SystemCallFilter=~@mount:EPERM @swap:kill",
    "scf-deny-then-allow": "SystemCallFilter=~@mount @reboot\nSystemCallFilter=@mount",
    "scf-absent-names": "SystemCallFilter=~socketcall ipc _llseek mount",
    "scf-unknown-name": "SystemCallFilter=~mount no_such_call",
    "scf-only-elsewhere": "SystemCallFilter=~socketcall",
    "scf-only-unknown": "SystemCallFilter=~no_such_call",
    "af-allow": "RestrictAddressFamilies=AF_UNIX AF_INET",
    "af-deny": "RestrictAddressFamilies=~AF_PACKET AF_NETLINK",
    "af-none": "RestrictAddressFamilies=none",
    "af-exotic": "RestrictAddressFamilies=AF_UNIX AF_BLUETOOTH",
    "af-none-then-minus": "RestrictAddressFamilies=none\nRestrictAddressFamilies=~AF_INET",
    "net-private": "PrivateNetwork=yes\nIPAddressDeny=any",
    "ip-localhost": "IPAddressDeny=any\nIPAddressAllow=localhost",
    "ip-other": "IPAddressDeny=any\nIPAddressAllow=localhost 10.0.0.0/8",
    "ip-v4-only": "IPAddressDeny=0.0.0.0/0\nIPAddressAllow=127.0.0.1",
    "ip-reset": "IPAddressDeny=any\nIPAddressDeny=",
    "ip-bpf": "IPIngressFilterPath=/sys/fs/bpf/in",
    "dev-closed": "DevicePolicy=closed",
    "dev-strict-allow": "DevicePolicy=strict\nDeviceAllow=/dev/null rw",
    "dev-private": "PrivateDevices=yes",
    "dev-bad-allow": "DevicePolicy=strict\nDeviceAllow=/etc/passwd rw",
    "ns-all": "RestrictNamespaces=yes",
    "ns-some": "RestrictNamespaces=net ipc",
    "ns-minus": "RestrictNamespaces=~user mnt",
    "ns-merge": "RestrictNamespaces=net\nRestrictNamespaces=uts",
    "ns-no": "RestrictNamespaces=yes\nRestrictNamespaces=no",
    "umask-077": "UMask=0077",
    "umask-027": "UMask=0027",
    "umask-002": "UMask=0002",
    "umask-bad": "UMask=0777x",
    "root-dir": "RootDirectory=/srv/jail",
    "misc": "KeyringMode=shared\nProtectProc=invisible\nProcSubset=pid\nNotifyAccess=all",
    "proc-noaccess": "ProtectProc=noaccess\nKeyringMode=inherit",
    "delegate-list": "Delegate=cpu memory",
    "bool-junk": "NoNewPrivileges=maybe\nPrivateTmp=on\nPrivateTmp=",
    "ns-unknown": "RestrictNamespaces=net bogus",
    "caps-unknown": "CapabilityBoundingSet=CAP_BOGUS CAP_KILL",
    "caps-number": "CapabilityBoundingSet=21 7",
    "umask-empty": "UMask=0077\nUMask=",
    "user-reset": "User=app\nUser=",
    "dynamic-forced": "DynamicUser=yes\nProtectSystem=no\nPrivateTmp=no",
    "dev-private-strict": "PrivateDevices=yes\nDevicePolicy=strict",
    "root-image": "RootImage=/x.raw",
    "root-image-closed": "RootImage=/x.raw\nDevicePolicy=closed",
    "delegate-empty": "Delegate=",
    "delegate-no": "Delegate=yes\nDelegate=no",
    "arch-reset": "SystemCallArchitectures=native\nSystemCallArchitectures=",
    "arch-native-and-own": "SystemCallArchitectures=native x86-64",
    "arch-native-twice": "SystemCallArchitectures=native native",
    "af-reset": "RestrictAddressFamilies=AF_UNIX\nRestrictAddressFamilies=",
    "af-allow-then-minus": "RestrictAddressFamilies=AF_INET AF_UNIX\n"
                           "RestrictAddressFamilies=~AF_INET",
    "ip-link-local": "IPAddressDeny=any\nIPAddressAllow=link-local multicast",
    "notify-main": "Type=notify\nNotifyAccess=main",
    **{f"on-{key.lower()}": f"{key}=yes" for key in BOOLS},
}
"""Unit name stem -> lines of its ``[Service]`` section (ExecStart= added)."""

EXTRA: dict[str, str] = {
    "no-default-deps": "[Unit]\nDefaultDependencies=no\n[Service]\nExecStart=/bin/true\n",
    "everything": "[Service]\nExecStart=/bin/true\nUser=app\n" + "".join(
        f"{key}=yes\n" for key in BOOLS if key != "Delegate") +
        "ProtectSystem=strict\nProtectHome=yes\nCapabilityBoundingSet=\nUMask=0077\n"
        "SystemCallFilter=@system-service\nSystemCallFilter=~@privileged @resources\n"
        "SystemCallArchitectures=native\nRestrictAddressFamilies=AF_UNIX\n"
        "RestrictNamespaces=yes\nIPAddressDeny=any\nDevicePolicy=closed\n"
        "ProtectProc=invisible\nProcSubset=pid\nRootDirectory=/srv/x\n",
}


MORE = ("hostguard.service", "hostguard-deep.service", "md@a.service", "dropin-off.service",
        "as@root.service", "as@0.service", "as@app.service", "as@nobody.service",
        "as-j@x.service")
"""The units :func:`build` writes besides :data:`UNITS` and :data:`EXTRA`."""
ALL = (*(f"{stem}.service" for stem in (*UNITS, *EXTRA)), *MORE)


def build(root: Path) -> list[str]:
    """Write every fixture unit under ``root``; their names."""
    units = root / ETC
    units.mkdir(parents=True)
    names = []
    for stem, lines in UNITS.items():
        (units / f"{stem}.service").write_text(
            f"[Service]\nExecStart=/bin/true\n{lines}\n")
        names.append(f"{stem}.service")
    for stem, text in EXTRA.items():
        (units / f"{stem}.service").write_text(text)
        names.append(f"{stem}.service")
    (units / "hostguard.service").write_text(SHIPPED.read_text())
    (units / "hostguard-deep.service").write_text(SHIPPED.read_text())
    (units / "hostguard-deep.service.d").mkdir()
    (units / "hostguard-deep.service.d" / "deep.conf").write_text(DEEP.read_text())
    (units / "md@.service").write_text("[Service]\nExecStart=/bin/echo %i\nUser=md\n")
    (units / "md@a.service.d").mkdir()
    (units / "md@a.service.d" / "x.conf").write_text("[Service]\nPrivateNetwork=yes\n")
    (units / "as@.service").write_text("[Service]\nExecStart=/bin/true\nUser=%i\n")
    (units / "as-j@.service").write_text("[Service]\nExecStart=/bin/true\nUser=%j\n")
    (units / "dropin-off.service").write_text(
        "[Service]\nExecStart=/bin/true\nNoNewPrivileges=yes\nProtectSystem=strict\n")
    (units / "dropin-off.service.d").mkdir()
    (units / "dropin-off.service.d" / "z.conf").write_text(
        "[Service]\nNoNewPrivileges=no\nProtectSystem=\n")
    return [*names, *MORE]


def systemd_scores(root: Path, names: list[str]) -> dict[str, str]:
    """``Overall exposure level`` per unit, from one run of systemd-analyze over all."""
    analyze = need_tool("systemd-analyze")
    env = {**os.environ, "SYSTEMD_COLORS": "0"}
    result = subprocess.run([analyze, "security", "--offline=yes", f"--root={root}", "--",
                             *names], capture_output=True, text=True, timeout=600,
                            check=False, env=env)
    return dict(re.findall(r"Overall exposure level for (\S+): (\d+\.\d) ", result.stdout))


def systemd_rows(root: Path, name: str) -> dict[str, tuple[str | None, str]]:
    """Row name -> (share, description) from ``--json=short``."""
    analyze = need_tool("systemd-analyze")
    result = subprocess.run([analyze, "security", "--offline=yes", f"--root={root}",
                             "--json=short", "--", name], capture_output=True, text=True,
                            timeout=120, check=True)
    return {row["name"]: (row["exposure"], row["description"])
            for row in json.loads(result.stdout)}


@cache
def fixture_root(base: str) -> tuple[Path, tuple[str, ...], dict[str, str]]:
    root = Path(base)
    names = build(root)
    return root, tuple(names), systemd_scores(root, names)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Path, tuple[str, ...], dict[str, str]]:
    return fixture_root(str(tmp_path_factory.mktemp("units")))


def test_fixture_scores_match_systemd(fixtures: tuple[Path, tuple[str, ...],
                                                      dict[str, str]]) -> None:
    root, names, theirs = fixtures
    assert set(names) == set(ALL)
    assert set(theirs) == set(names)  # systemd assessed every one
    ours = {name: f"{exposure(load_unit(root, name)).score:.1f}" for name in names}
    assert ours == theirs


@pytest.mark.parametrize("name", ALL)
def test_rows_match_systemd(fixtures: tuple[Path, tuple[str, ...], dict[str, str]],
                            name: str) -> None:
    root = fixtures[0]
    result = exposure(load_unit(root, name))
    ours = {row.name: (None if row.exposure is None else f"{row.exposure:.1f}",
                       row.description) for row in result.rows}
    assert ours == systemd_rows(root, name)


def test_table_matches_systemd(fixtures: tuple[Path, tuple[str, ...], dict[str, str]]) -> None:
    """Names, weights and ranges as systemd's own table lists them (its debug columns)."""
    analyze = need_tool("systemd-analyze")
    env = {**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_ANALYZE_DEBUG": "1"}
    result = subprocess.run([analyze, "security", "--offline=yes", f"--root={fixtures[0]}",
                             "bare.service"], capture_output=True, text=True, timeout=120,
                            check=True, env=env)
    rows = re.findall(r"(?m)^\S?\s*(\S+=\S*)\s.*?\s(\d+)\s+\d+\s+(\d+)\s*(?:\d+\.\d)?\s*$",
                      result.stdout)
    assert sorted((name, int(weight), int(span)) for name, weight, span in rows) == sorted(
        (a.name, a.weight, a.range) for a in ASSESSORS)


def test_refusals(tmp_path: Path) -> None:
    units = tmp_path / ETC
    units.mkdir(parents=True)
    (units / "gone.service").symlink_to("/dev/null")
    (units / "t.socket").write_text("[Socket]\nListenStream=1\n")
    (units / "bad.service").write_text("[Service]\nSystemCallFilter=@no-such-group\n")
    for name, why in [("gone.service", "masked"), ("none.service", "not found"),
                      ("t.socket", "not a service"), ("bad.service", "no-such-group")]:
        with pytest.raises(ExposureError, match=why):
            exposure(load_unit(tmp_path, name))


def test_every_service_on_this_host() -> None:
    """Every service of this host's search path (a template through an instance of it), as
    systemd assesses it from ``/``: the score, then each row."""
    names = [n.replace("@.", "@x.") for n in unit_names(Path("/")) if n.endswith(".service")]
    theirs = systemd_scores(Path("/"), names)
    compared = 0
    for name in names:
        unit = load_unit(Path("/"), name)
        if unit.masked or unit.fragment is None:
            assert unit.names[0] not in theirs  # systemd refuses those too
            continue
        result = exposure(unit)
        assert f"{result.score:.1f}" == theirs.get(unit.names[0]), name
        ours = {row.name: (None if row.exposure is None else f"{row.exposure:.1f}",
                           row.description) for row in result.rows}
        assert ours == systemd_rows(Path("/"), name), name
        compared += 1
    assert compared > 20


@pytest.mark.parametrize("seed", [6, 7, 8])
def test_random_combinations_match_systemd(tmp_path: Path, seed: int) -> None:
    """Settings drawn (with fixed seeds) from the fixtures' lines, several to a unit, so that
    they meet in combinations nobody wrote by hand; every score as systemd's. (These seeds
    found the ``RestrictAddressFamilies=none`` and ``SystemCallArchitectures=`` rules.)"""
    pool = sorted({line for lines in UNITS.values() for line in lines.split("\n") if line})
    draw = random.Random(seed)
    units = tmp_path / ETC
    units.mkdir(parents=True)
    names = []
    for number in range(150):
        lines = draw.sample(pool, draw.randint(2, 20))
        name = f"mix{number}.service"
        (units / name).write_text("[Service]\nExecStart=/bin/true\n" + "\n".join(lines) + "\n")
        names.append(name)
    theirs = systemd_scores(tmp_path, names)
    assert set(theirs) == set(names)
    ours = {name: f"{exposure(load_unit(tmp_path, name)).score:.1f}" for name in names}
    assert ours == theirs
