"""The shipped CIS Debian policies (policies/cis-debian.yaml, which extends filesystem.yaml, and
cis-debian-services.yaml): every check passes on a host tree laid out as the CIS Debian Linux
12 Benchmark v1.1.0 asks and fails on one that breaks each recommendation; on this host the
sysctl and file verdicts agree with ``sysctl -n`` and ``stat`` (procps, coreutils), and the
service verdicts with ``systemctl --root=DIR is-enabled`` on the same trees.

The values written here come from the benchmark's text, not from the policy's specs, so a
wrong value in a spec shows up as a check that does not pass on the compliant tree.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support import PROJECT, need, need_sshd_test, need_tool, run_cli

POLICY = PROJECT / "policies" / "cis-debian.yaml"
LABEL = ("--label", "benchmark=cis-debian")
"""The policy is opt-in: it selects hosts audited with this label."""
RELEASE = "6.1.0-28-amd64"

# CIS 1.5.1-1.5.3 and 3.3.x: a compliant value and a breaking one for every key.
SYSCTLS: dict[str, tuple[int, int]] = {
    "kernel.randomize_va_space": (2, 1),
    "kernel.yama.ptrace_scope": (1, 0),
    "fs.suid_dumpable": (0, 2),
    "net.ipv4.ip_forward": (0, 1),
    "net.ipv6.conf.all.forwarding": (0, 1),
    "net.ipv4.conf.all.send_redirects": (0, 1),
    "net.ipv4.conf.default.send_redirects": (0, 1),
    "net.ipv4.icmp_ignore_bogus_error_responses": (1, 0),
    "net.ipv4.icmp_echo_ignore_broadcasts": (1, 0),
    "net.ipv4.conf.all.accept_redirects": (0, 1),
    "net.ipv4.conf.default.accept_redirects": (0, 1),
    "net.ipv6.conf.all.accept_redirects": (0, 1),
    "net.ipv6.conf.default.accept_redirects": (0, 1),
    "net.ipv4.conf.all.secure_redirects": (0, 1),
    "net.ipv4.conf.default.secure_redirects": (0, 1),
    "net.ipv4.conf.all.rp_filter": (1, 2),          # loose is not what CIS asks for
    "net.ipv4.conf.default.rp_filter": (1, 0),
    "net.ipv4.conf.all.accept_source_route": (0, 1),
    "net.ipv4.conf.default.accept_source_route": (0, 1),
    "net.ipv6.conf.all.accept_source_route": (0, 1),
    "net.ipv6.conf.default.accept_source_route": (0, 1),
    "net.ipv4.conf.all.log_martians": (1, 0),
    "net.ipv4.conf.default.log_martians": (1, 0),
    "net.ipv4.tcp_syncookies": (1, 0),
    "net.ipv6.conf.all.accept_ra": (0, 1),
    "net.ipv6.conf.default.accept_ra": (0, 1),
}
MODULES = ("cramfs", "freevxfs", "hfs", "hfsplus", "jffs2", "udf", "usb-storage", "dccp",
           "tipc", "rds", "sctp")
SEPARATE = ("/tmp", "/dev/shm", "/home", "/var", "/var/tmp", "/var/log", "/var/log/audit")
OPTIONS = {"/tmp": "nosuid,nodev,noexec", "/dev/shm": "nosuid,nodev,noexec",
           "/home": "nosuid,nodev", "/var": "nosuid,nodev", "/var/tmp": "nosuid,nodev,noexec",
           "/var/log": "nosuid,nodev,noexec", "/var/log/audit": "nosuid,nodev,noexec"}
# Modes CIS 2.4.1.x, 5.1.1-5.1.3 and 7.1.x allow at most (all root's; group root, shadow or
# crontab as the file needs).
FILES = {
    "etc/passwd": 0o644, "etc/group": 0o644,
    "etc/shadow": 0o640, "etc/gshadow": 0o640,
    "etc/passwd-": 0o644, "etc/group-": 0o644,
    "etc/shadow-": 0o640, "etc/gshadow-": 0o640,
    "etc/shells": 0o644, "etc/security/opasswd": 0o600,
    "etc/security/opasswd.old": 0o600, "etc/crontab": 0o600,
    "etc/cron.allow": 0o640, "etc/ssh/sshd_config": 0o600,
    "etc/ssh/sshd_config.d/50-site.conf": 0o600,
    "etc/ssh/ssh_host_ed25519_key": 0o600,
    "etc/ssh/ssh_host_ed25519_key.pub": 0o644,
}
CRON_DIRS = ("etc/cron.hourly", "etc/cron.daily", "etc/cron.weekly", "etc/cron.monthly",
             "etc/cron.d")

SSHD_GOOD = """\
Include /etc/ssh/sshd_config.d/*.conf
AllowGroups sshusers
Banner /etc/issue.net
Ciphers aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes128-ctr
ClientAliveInterval 15
ClientAliveCountMax 3
DisableForwarding yes
GSSAPIAuthentication no
HostbasedAuthentication no
IgnoreRhosts yes
KexAlgorithms curve25519-sha256,diffie-hellman-group14-sha256
LoginGraceTime 60
loglevel verbose
MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com
MaxAuthTries 4
MaxSessions 10
MaxStartups  10:30:60
PermitEmptyPasswords no
PermitRootLogin=no
PermitUserEnvironment no
UsePAM yes
Subsystem sftp /usr/lib/openssh/sftp-server
Match Group backup
    MaxSessions 2
"""
# Each CIS 5.1.x recommendation broken once; the settings sshd must have set only inside a
# Match block that does not select every connection, and after the values sshd keeps.
SSHD_BAD = """\
PermitRootLogin prohibit-password
Banner none
Ciphers aes128-cbc,aes256-ctr
ClientAliveInterval 0
ClientAliveCountMax 0
DisableForwarding no
GSSAPIAuthentication yes
HostbasedAuthentication yes
IgnoreRhosts no
KexAlgorithms curve25519-sha256,diffie-hellman-group14-sha1
LoginGraceTime 2m
LogLevel QUIET
MACs hmac-sha2-256,umac-64@openssh.com
MaxAuthTries 6
MaxSessions 11
MaxStartups 10:30:100
PermitEmptyPasswords yes
PermitRootLogin no
PermitUserEnvironment yes
UsePAM no
Match Address 10.0.0.0/8
    AllowUsers admin
    PermitRootLogin no
    PasswordAuthentication no
"""


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def build(root: Path, *, compliant: bool, mounts: bool = True, ipv6: bool = True) -> Path:
    """A host tree: CIS-compliant, or breaking every recommendation the policy checks."""
    uid, gid = os.getuid(), os.getgid()
    write(root / "proc/sys/kernel/hostname", "deb12\n")
    write(root / "proc/sys/kernel/osrelease", f"{RELEASE}\n")
    write(root / "proc/sys/kernel/modules_disabled", "0\n")
    for key, (good, bad) in SYSCTLS.items():
        if ipv6 or not key.startswith("net.ipv6."):
            write(root / "proc/sys" / key.replace(".", "/"), f"{good if compliant else bad}\n")
    loaded = ["ext4 999424 1 - Live 0x0000000000000000"]
    if not compliant:  # every one loaded, and only blacklisted: modprobe still loads it
        loaded += [f"{m.replace('-', '_')} 20480 0 - Live 0x0000000000000000" for m in MODULES]
    write(root / "proc/modules", "\n".join(loaded) + "\n")
    write(root / "lib/modules" / RELEASE / "modules.builtin", "kernel/crypto/crc32c_generic.ko\n")
    write(root / "etc/modprobe.d/cis.conf", "".join(
        (f"install {m} /bin/false\n" if compliant else "") + f"blacklist {m}\n" for m in MODULES))
    table = ["22 1 254:1 / / rw,relatime - ext4 /dev/vda1 rw"]
    if mounts:
        table += [f"{30 + i} 22 254:{2 + i} / {point} rw,"
                  f"{OPTIONS[point] + ',' if compliant else ''}relatime - ext4 /dev/vda{2 + i} rw"
                  for i, point in enumerate(SEPARATE)]
    write(root / "proc/1/mountinfo", "\n".join(table) + "\n")

    # The tree's own accounts: its "root" is the uid running the test, so the files written
    # here are root's; in the breaking tree they belong to another account.
    other = uid + 1
    passwd = (f"root:x:{uid if compliant else other}:{gid}::/root:/bin/sh\n"
              f"alice:x:{other if compliant else uid}:{gid}::/home/alice:/bin/sh\n")
    groups = "".join(f"{name}:x:{gid if compliant else gid + n}:\n"
                     for n, name in enumerate(("root", "shadow", "crontab"), 1))
    groups += f"staff:x:{gid + 4 if compliant else gid}:\n"
    for relative, mode in FILES.items():
        text = {"etc/passwd": passwd, "etc/passwd-": passwd, "etc/group": groups,
                "etc/group-": groups, "etc/ssh/sshd_config": SSHD_GOOD if compliant else SSHD_BAD,
                "etc/ssh/sshd_config.d/50-site.conf": (
                    "PermitRootLogin no\nMaxAuthTries 3\n" if compliant else SSHD_BAD),
                "etc/shells": "/bin/sh\n/bin/bash\n"}.get(relative, "x\n")
        write(root / relative, text, mode if compliant else 0o666)
    write(root / "etc/security/limits.conf",
          "# <domain> <type> <item> <value>\n" + ("*    hard    core    0\n" if compliant
                                                  else "*    soft    core    0\n"))
    for relative in CRON_DIRS:
        (root / relative).mkdir(parents=True)
        (root / relative).chmod(0o700 if compliant else 0o755)
    if not compliant:
        write(root / "etc/cron.deny", "guest\n", 0o640)
    return root


def audit(root: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    done = run_cli("audit", "--root", str(root), "--policy", str(POLICY), *LABEL,
                   "--format", "json")
    assert done.returncode in (0, 1, 3), done.stderr
    return done.returncode, {r["id"]: r for r in json.loads(done.stdout)["results"]}


def statuses(results: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    return {cid: r["status"] for cid, r in results.items()}


def is_partition(result: Mapping[str, Any]) -> bool:
    """CIS 1.1.2.x.1: a mount point must exist, nothing else."""
    return result["kind"] == "mount" and set(result["spec"]) == {"path", "pid"}


def test_every_check_names_its_cis_recommendation_and_rules(tmp_path: Path) -> None:
    _, results = audit(build(tmp_path, compliant=True))
    for cid, result in results.items():
        references = result["references"]
        assert any(r.startswith("CIS Debian Linux 12 Benchmark v1.1.0: ") for r in references), cid
        assert any(r.startswith("ComplianceAsCode: ") for r in references), cid
        if cid.startswith("CIS-"):
            number = cid.removeprefix("CIS-").split("-")[0]
            assert any(f"v1.1.0: {number} " in r for r in references), cid


def test_every_check_passes_on_a_compliant_tree(tmp_path: Path) -> None:
    code, results = audit(build(tmp_path, compliant=True))
    assert {cid: s for cid, s in statuses(results).items() if s != "pass"} == {}
    assert code == 0
    kinds = {r["kind"] for r in results.values()}
    assert kinds == {"kmod", "mount", "sysctl", "file"}
    # The CIS checks, plus filesystem.yaml's that carry CIS numbers.
    assert {"MNT-001", "MNT-002", "MNT-003", "FILE-001", "FILE-004"} <= set(results)


def test_every_check_fails_on_a_tree_that_breaks_each_recommendation(tmp_path: Path) -> None:
    code, results = audit(build(tmp_path, compliant=False))
    expected = {cid: "pass" if is_partition(r) else "fail" for cid, r in results.items()}
    assert statuses(results) == expected
    assert code == 1
    messages = {cid: r["message"] for cid, r in results.items()}
    assert messages["CIS-1.1.2.1.4"] == "/tmp: noexec not set"
    assert "kernel.yama.ptrace_scope" in messages["CIS-1.5.2"]
    # A blacklist alone does not stop modprobe loading a module by name.
    assert messages["CIS-1.1.1.1"] == (
        f"cramfs: loaded (/proc/modules); cramfs: blacklist ({tmp_path}/etc/modprobe.d/cis.conf:1)")
    assert messages["CIS-3.3.7-all"] == (
        "expected net.ipv4.conf.all.rp_filter == 1, found net.ipv4.conf.all.rp_filter = 2")
    # AllowUsers stands only inside a Match block that does not select every connection;
    # sshd keeps line 1's PermitRootLogin, not line 18's "no" nor the Match block's.
    assert messages["CIS-5.1.4"] == (
        "/etc/ssh/sshd_config: AllowUsers/AllowGroups/DenyUsers/DenyGroups is not set outside "
        "Match, expected AllowUsers/AllowGroups/DenyUsers/DenyGroups matches \\S.*")
    assert messages["CIS-5.1.20"] == (
        "/etc/ssh/sshd_config: /etc/ssh/sshd_config:1: permitrootlogin prohibit-password, "
        "expected PermitRootLogin matches (?i)no")
    assert messages["CIS-5.1.18"] == (
        "/etc/ssh/sshd_config: /etc/ssh/sshd_config:16: maxstartups 10:30:100, expected "
        "MaxStartups matches ([0-9]|10):([0-9]|[12][0-9]|30):([0-9]|[1-5][0-9]|60)")
    assert messages["CIS-2.4.1.3"] == (
        f"/etc/cron.hourly: owner is alice ({os.getuid()}), expected root, group is staff "
        f"({os.getgid()}), expected root, mode 0755 exceeds 0700 (extra bits 0055)")
    assert messages["CIS-2.4.1.8-deny"] == "/etc/cron.deny: exists"


def test_without_separate_mounts_or_ipv6_the_partition_checks_fail_and_the_rest_is_moot(
        tmp_path: Path) -> None:
    code, results = audit(build(tmp_path, compliant=True, mounts=False, ipv6=False))
    found = statuses(results)
    partitions = {cid for cid, r in results.items() if is_partition(r)}
    options = {cid for cid, r in results.items()
               if r["kind"] == "mount" and "options" in r["spec"]}
    ipv6 = {cid for cid, r in results.items()
            if r["kind"] == "sysctl" and r["spec"]["key"].startswith("net.ipv6.")}
    assert len(partitions) == 7 and len(options) == 15 and len(ipv6) == 7
    assert {found[c] for c in partitions} == {"fail"}
    assert {found[c] for c in options | ipv6} == {"not_applicable"}
    assert {s for c, s in found.items() if c not in partitions | options | ipv6} == {"pass"}
    assert code == 1


def test_a_drop_in_that_weakens_sshd_fails_even_when_sshd_config_is_right(
        tmp_path: Path) -> None:
    # sshd_config includes the drop-ins first: their value is the one sshd keeps.
    root = build(tmp_path, compliant=True)
    write(root / "etc/ssh/sshd_config.d/50-site.conf", "PermitRootLogin  yes\n", 0o600)
    _, results = audit(root)
    assert {c: s for c, s in statuses(results).items() if s != "pass"} == {
        "CIS-5.1.20": "fail"}
    assert results["CIS-5.1.20"]["message"] == (
        "/etc/ssh/sshd_config: /etc/ssh/sshd_config.d/50-site.conf:1: permitrootlogin yes, "
        "expected PermitRootLogin matches (?i)no")


def test_a_match_block_that_weakens_a_setting_fails(tmp_path: Path) -> None:
    # Right for every connection, wrong for those from 10.0.0.0/8: a finding that names the
    # Match block. Keywords sshd does not take in a Match block are not judged there.
    root = build(tmp_path, compliant=True)
    with (root / "etc/ssh/sshd_config").open("a", encoding="utf-8") as config:
        config.write("Match Address 10.0.0.0/8\n    PermitRootLogin yes\n    MaxAuthTries 4\n")
    _, results = audit(root)
    assert {c: s for c, s in statuses(results).items() if s != "pass"} == {
        "CIS-5.1.20": "fail"}
    assert results["CIS-5.1.20"]["message"] == (
        "/etc/ssh/sshd_config: /etc/ssh/sshd_config:26: permitrootlogin yes (in "
        "/etc/ssh/sshd_config:25: Match Address 10.0.0.0/8), expected PermitRootLogin "
        "matches (?i)no")


def test_a_configuration_set_in_drop_ins_only_passes(tmp_path: Path) -> None:
    # Debian 12's sshd_config: the Include first, then nothing CIS asks for; every setting
    # in drop-ins, one of them included from another drop-in by a path relative to /etc/ssh.
    root = build(tmp_path, compliant=True)
    settings = SSHD_GOOD.split("\n", 1)[1].split("Match", 1)[0].splitlines()
    write(root / "etc/ssh/sshd_config",
          "Include /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\n"
          "X11Forwarding yes\nAcceptEnv LANG LC_*\n", 0o600)
    write(root / "etc/ssh/sshd_config.d/50-site.conf",
          "\n".join(settings[:10]) + "\nInclude site/more.conf\n", 0o600)
    write(root / "etc/ssh/site/more.conf", "\n".join(settings[10:]) + "\n", 0o600)
    code, results = audit(root)
    assert {c: s for c, s in statuses(results).items() if s != "pass"} == {}
    assert code == 0
    (row,) = results["CIS-5.1.16"]["evidence"]["items"]
    assert row["files"] == ["/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d/50-site.conf",
                            "/etc/ssh/site/more.conf"]
    assert row["settings"][0]["values"] == [{
        "keyword": "maxauthtries", "value": "4", "file": "/etc/ssh/site/more.conf", "line": 4,
        "match": None, "verdict": "pass"}]
    # Settings behind a Match block that selects only some connections fail ...
    write(root / "etc/ssh/match.conf", "MaxAuthTries 4\nAllowGroups sshusers\n", 0o600)
    write(root / "etc/ssh/sshd_config", "Match User backup\n  Include match.conf\n", 0o600)
    _, results = audit(root)
    assert statuses(results)["CIS-5.1.16"] == "fail"
    assert statuses(results)["CIS-5.1.4"] == "fail"
    # ... and keywords sshd takes only outside Match (Ciphers, UsePAM ...) make it
    # refuse the whole configuration: error, never pass.
    write(root / "etc/ssh/sshd_config",
          "Match User backup\n  Include /etc/ssh/sshd_config.d/*.conf\n", 0o600)
    _, results = audit(root)
    assert statuses(results)["CIS-5.1.16"] == "error"
    assert "is not allowed within a Match block" in results["CIS-5.1.16"]["message"]


def test_an_sshd_configuration_sshd_would_refuse_is_an_error(tmp_path: Path) -> None:
    root = build(tmp_path, compliant=True)
    write(root / "etc/ssh/sshd_config.d/50-site.conf", 'Banner "/etc/issue.net\n', 0o600)
    code, results = audit(root)
    sshd = {c for c, r in results.items() if r["spec"].get("config") == "sshd"}
    assert len(sshd) == 19
    assert {statuses(results)[c] for c in sshd} == {"error"}
    assert results["CIS-5.1.20"]["message"] == (
        "cannot evaluate: /etc/ssh/sshd_config: settings: sshd would refuse this "
        "configuration: /etc/ssh/sshd_config.d/50-site.conf:1: invalid quotes")
    assert code == 3


def test_without_the_label_nothing_is_audited(tmp_path: Path) -> None:
    root = build(tmp_path, compliant=False)
    done = run_cli("audit", "--root", str(root), "--policy", str(POLICY), "--format", "json")
    assert done.returncode == 5, done.stderr
    results = json.loads(done.stdout)["results"]
    assert {r["status"] for r in results} == {"not_applicable"}
    assert "label benchmark=cis-debian" in results[0]["message"]
    # Audited with the other shipped policies, filesystem.yaml's checks still apply.
    done = run_cli("audit", "--root", str(root), "--policy", str(POLICY),
                   str(PROJECT / "policies" / "filesystem.yaml"), "--format", "json")
    found = {r["id"]: r["status"] for r in json.loads(done.stdout)["results"]}
    assert (found["FILE-002"], found["CIS-7.1.2"]) == ("fail", "not_applicable")


# The live host: the verdicts against procps's sysctl and coreutils' stat.


@pytest.fixture(scope="module")
def live() -> dict[str, dict[str, Any]]:
    done = run_cli("audit", "--policy", str(POLICY), *LABEL, "--format", "json")
    assert done.returncode in (0, 1, 3), done.stderr
    return {r["id"]: r for r in json.loads(done.stdout)["results"]}


def test_live_sysctl_verdicts_agree_with_sysctl(live: dict[str, dict[str, Any]]) -> None:
    sysctl = need_tool("sysctl")
    judged = 0
    for cid, result in live.items():
        if result["kind"] != "sysctl":
            continue
        key = result["spec"]["key"]
        read = subprocess.run([sysctl, "-n", key], capture_output=True, text=True, check=False)
        if read.returncode != 0:  # the key does not exist on this kernel
            assert result["status"] in ("error", "not_applicable"), cid
            continue
        good = (1, 2, 3) if key == "kernel.yama.ptrace_scope" else (SYSCTLS[key][0],)
        assert result["status"] == ("pass" if int(read.stdout) in good else "fail"), cid
        judged += 1
    assert judged >= 20


def test_live_file_verdicts_agree_with_stat(live: dict[str, dict[str, Any]]) -> None:
    stat = need_tool("stat")
    judged = 0
    for cid, result in live.items():
        spec = result["spec"]
        if result["kind"] != "file" or "mode" not in spec or "*" in spec["path"]:
            continue
        read = subprocess.run([stat, "-L", "-c", "%a %U %G", spec["path"]],
                              capture_output=True, text=True, check=False)
        if read.returncode != 0:  # absent here
            assert result["status"] in ("not_applicable", "fail"), cid
            continue
        mode, user, group = read.stdout.split()
        groups = spec["group"] if isinstance(spec["group"], list) else [spec["group"]]
        ok = (int(mode, 8) & ~int(spec["mode"], 8) == 0 and user == spec["owner"]
              and group in groups)
        assert result["status"] == ("pass" if ok else "fail"), (cid, read.stdout)
        judged += 1
    assert judged >= 5


def test_live_sshd_values_are_what_sshd_says(live: dict[str, dict[str, Any]],
                                             tmp_path: Path) -> None:
    """Every value the sshd checks judged on this host, read from a file or assumed as the
    policy's default, is the one ``sshd -T`` prints for the host's own configuration."""
    need(Path("/etc/ssh/sshd_config").is_file(), "openssh-server is not installed")
    done = subprocess.run([*need_sshd_test(tmp_path), "-f", "/etc/ssh/sshd_config"],
                          capture_output=True, text=True, timeout=60, check=True)
    theirs = dict(line.partition(" ")[::2] for line in done.stdout.splitlines())
    # sshd -T prints one old name for prohibit-password.
    spelled = {"prohibit-password": "without-password"}
    judged = 0
    for cid, result in live.items():
        if result["spec"].get("config") != "sshd":
            continue
        assert result["status"] in ("pass", "fail"), (cid, result["message"])
        (row,) = result["evidence"]["items"]
        for setting in row["settings"]:
            for value in setting["values"]:
                keyword = value["keyword"].lower()
                mine = value["value"].lower()
                assert spelled.get(mine, mine) == theirs[keyword].lower(), (cid, value)
                judged += 1
    assert judged >= 18


# The services policy: units as Debian 12's packages install them, judged by the unit kind,
# with ``systemctl --root=DIR is-enabled`` (systemd) as the oracle.

SERVICES = PROJECT / "policies" / "cis-debian-services.yaml"
GENERATED = ("isc-dhcp-server.service", "isc-dhcp-server6.service", "slapd.service",
             "tftpd-hpa.service", "xinetd.service")
"""Init scripts only in Debian 12: systemd-sysv-generator makes their units at boot."""


def service_tree(root: Path, units: list[str], how: str) -> Path:
    """``units`` installed and enabled, disabled or masked (or generated, for init scripts)."""
    write(root / "proc/sys/kernel/hostname", "deb12\n")
    for unit in units:
        target = "sockets.target" if unit.endswith(".socket") else "multi-user.target"
        body = f"[Unit]\nDescription={unit}\n[Install]\nWantedBy={target}\n"
        if unit.endswith(".service"):
            body = body.replace("[Install]", "[Service]\nExecStart=/usr/sbin/true\n[Install]")
        if unit in GENERATED:
            if how == "disabled":
                continue  # what is read of an init script's unit cannot say: purged here
            write(root / "run/systemd/generator.late" / unit, body.replace(
                f"[Install]\nWantedBy={target}\n", ""))
        else:
            write(root / "usr/lib/systemd/system" / unit, body)
        if how == "enabled" and unit not in GENERATED:
            wants = root / "etc/systemd/system" / f"{target}.wants"
            wants.mkdir(parents=True, exist_ok=True)
            (wants / unit).symlink_to(f"/usr/lib/systemd/system/{unit}")
        elif how == "masked":
            (root / "etc/systemd/system").mkdir(parents=True, exist_ok=True)
            (root / "etc/systemd/system" / unit).symlink_to("/dev/null")
    return root


def service_audit(root: Path) -> dict[str, dict[str, Any]]:
    done = run_cli("audit", "--root", str(root), "--policy", str(SERVICES), *LABEL,
                   "--format", "json")
    assert done.returncode in (0, 1), done.stderr
    return {r["id"]: r for r in json.loads(done.stdout)["results"]}


def is_enabled(root: Path, unit: str) -> str:
    done = subprocess.run([need_tool("systemctl"), f"--root={root}", "is-enabled", unit],
                          capture_output=True, text=True, timeout=60, check=False)
    return done.stdout.strip() or ("not-found" if "No such file" in done.stderr
                                   else done.stderr.strip())


@pytest.fixture(scope="module")
def units() -> list[str]:
    done = run_cli("audit", "--policy", str(SERVICES), *LABEL, "--format", "json")
    found = [r["spec"]["unit"] for r in json.loads(done.stdout)["results"]]
    assert len(found) == len(set(found)) == 28
    return found


@pytest.mark.parametrize("how", ["absent", "disabled", "masked"])
def test_services_that_are_not_enabled_pass(units: list[str], how: str, tmp_path: Path) -> None:
    root = service_tree(tmp_path, [] if how == "absent" else units, how)
    results = service_audit(root)
    assert {r["status"] for r in results.values()} == {"pass"}
    oracle = {u: is_enabled(root, u) for u in units if u not in GENERATED}
    assert set(oracle.values()) == {{"absent": "not-found"}.get(how, how)}


def test_enabled_services_fail_as_systemctl_says(units: list[str], tmp_path: Path) -> None:
    root = service_tree(tmp_path, units, "enabled")
    results = service_audit(root)
    for result in results.values():
        unit = result["spec"]["unit"]
        word = is_enabled(root, unit)
        assert word == ("generated" if unit in GENERATED else "enabled"), unit
        assert (result["status"], result["message"]) == ("fail", f"{unit}: {word}"), unit
