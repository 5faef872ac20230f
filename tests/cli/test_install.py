"""``hostguard install-service`` into a temporary ``--root``, run as the venv's console script."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from agent.daemon.install import entries, hidden, installed_command, quote, with_exec_start
from tests.support import PROJECT, need

UNIT = "etc/systemd/system/hostguard.service"
DROP_IN = "etc/systemd/system/hostguard.service.d/deep-seccomp.conf"
POLICIES = sorted(p.relative_to(PROJECT / "policies").as_posix()
                  for p in (PROJECT / "policies").rglob("*.yaml"))
LAYOUT = {
    "etc/hostguard": 0o750,
    "etc/hostguard/hostguard.yaml": 0o640,
    "etc/hostguard/policies": 0o750,
    "etc/hostguard/policies/seccomp": 0o750,
    **{f"etc/hostguard/policies/{name}": 0o640 for name in POLICIES},
    UNIT: 0o644,
    "var/lib/hostguard": 0o751,
}
"""Every path the install lays out, with its mode (the unit's StateDirectoryMode= for the
state folder)."""


def script() -> Path:
    path = Path(sys.executable).parent / "hostguard"
    need(path.is_file(), f"no hostguard console script beside {sys.executable}")
    return path


def install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(script()), "install-service", "--root", str(root), *args],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def tree(root: Path) -> dict[str, int]:
    """Every path under ``root`` (parents made on the way left out) and its mode."""
    return {p.relative_to(root).as_posix(): stat.S_IMODE(os.lstat(p).st_mode)
            for p in root.rglob("*") if p.relative_to(root).as_posix() not in
            ("etc", "etc/systemd", "etc/systemd/system", "var", "var/lib")}


def test_lays_out_config_policies_profiles_unit_and_state(tmp_path: Path) -> None:
    done = install(tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert tree(tmp_path) == LAYOUT
    assert (tmp_path / "etc/hostguard/hostguard.yaml").read_bytes() == \
        (PROJECT / "packaging/hostguard.yaml").read_bytes()
    for name in POLICIES:
        assert (tmp_path / "etc/hostguard/policies" / name).read_bytes() == \
            (PROJECT / "policies" / name).read_bytes()
    shipped = (PROJECT / "packaging/systemd/hostguard.service").read_text()
    unit = (tmp_path / UNIT).read_text()
    exec_start = f"ExecStart={script()} daemon --config /etc/hostguard/hostguard.yaml"
    assert [line for line in unit.splitlines() if line.startswith("ExecStart=")] == [exec_start]
    assert [line for line in unit.splitlines() if not line.startswith("ExecStart=")] == \
        [line for line in shipped.splitlines() if not line.startswith("ExecStart=")]
    lines = done.stdout.splitlines()
    assert lines[:2] == [f"created {tmp_path}/etc/hostguard (folder, mode 0750)",
                         f"created {tmp_path}/etc/hostguard/hostguard.yaml (file, mode 0640)"]
    assert lines[-1] == f"now, to enable it in that tree: systemctl --root={tmp_path} enable " \
                        "hostguard"


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    assert install(tmp_path).returncode == 0
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    again = install(tmp_path)
    assert (again.returncode, again.stderr) == (0, "")
    assert again.stdout.splitlines()[:-1] == [f"unchanged {tmp_path}/{p}" for p in LAYOUT]
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def test_a_file_the_administrator_changed_is_kept_with_a_diff_unless_forced(
        tmp_path: Path) -> None:
    assert install(tmp_path).returncode == 0
    config = tmp_path / "etc/hostguard/hostguard.yaml"
    mine = config.read_text().replace("  role: gateway", "  role: gateway\n  site: ld4")
    config.write_text(mine)
    os.chmod(tmp_path / "etc/hostguard", 0o755)
    kept = install(tmp_path)
    assert kept.returncode == 1, kept.stderr
    assert config.read_text() == mine
    assert stat.S_IMODE(os.stat(tmp_path / "etc/hostguard").st_mode) == 0o755
    out = kept.stdout
    assert (f"kept {config}: differs from what hostguard writes (--force replaces it)\n"
            f"--- {config} (on disk)\n+++ {config} (hostguard)\n") in out
    assert "\n-  site: ld4\n" in out
    assert f"{tmp_path}/etc/hostguard has mode 0755, hostguard writes 0750\n" in out
    assert f"unchanged {tmp_path}/{UNIT}\n" in out

    forced = install(tmp_path, "--force")
    assert forced.returncode == 0, forced.stderr
    assert f"replaced {config} (file, mode 0640)\n" in forced.stdout
    assert config.read_bytes() == (PROJECT / "packaging/hostguard.yaml").read_bytes()
    assert tree(tmp_path) == LAYOUT


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    done = install(tmp_path, "--dry-run")
    assert (done.returncode, done.stderr) == (0, "")
    assert list(tmp_path.iterdir()) == []
    kinds = {p: "file" if p.endswith((".yaml", ".service")) else "folder" for p in LAYOUT}
    assert done.stdout.splitlines()[:-1] == [
        f"would create {tmp_path}/{p} ({kinds[p]}, mode {mode:04o})" for p, mode in LAYOUT.items()]
    assert done.stdout.splitlines()[-1].startswith("then, to enable it")


def test_lint_errors_write_nothing(tmp_path: Path) -> None:
    # An administrator's own policy in the folder: what the daemon would load is linted.
    policies = tmp_path / "etc/hostguard/policies"
    policies.mkdir(parents=True)
    (policies / "site.yaml").write_text(
        "apiVersion: hostguard/v1\nkind: Policy\nmetadata: {name: site}\nchecks:\n"
        "  - id: SITE-1\n    kind: sysctl\n    title: t\n    severity: low\n"
        "    rationale: r\n    remediation: r\n    spec: {key: vm.swappiness, op: le, value: 1}\n"
        "    bogus: 1\n")
    done = install(tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{policies}/site.yaml:12:5: error: unknown key 'bogus' [unknown-key]",
        "hostguard: the configuration or policies would not lint clean: nothing written"]
    assert done.stdout == ""
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "etc", "etc/hostguard", "etc/hostguard/policies", "etc/hostguard/policies/site.yaml"]


def test_a_kept_configuration_is_what_is_linted(tmp_path: Path) -> None:
    assert install(tmp_path).returncode == 0
    config = tmp_path / "etc/hostguard/hostguard.yaml"
    config.write_text(config.read_text().replace("interval: 300", "intervall: 300"))
    (tmp_path / UNIT).unlink()
    done = install(tmp_path, "--force")  # would replace it, so it lints the shipped one
    assert done.returncode == 0, done.stderr
    config.write_text(config.read_text().replace("interval: 300", "intervall: 300"))
    (tmp_path / UNIT).unlink()
    done = install(tmp_path)
    assert done.returncode == 2
    line = config.read_text().splitlines().index("intervall: 300") + 1
    assert done.stderr.startswith(f"{config}:{line}:1: error: unknown key 'intervall' (did you "
                                  "mean 'interval'?) [unknown-key]\n")
    assert not (tmp_path / UNIT).exists()


def test_deep_seccomp_drop_in_only_when_asked(tmp_path: Path) -> None:
    assert install(tmp_path).returncode == 0
    assert not (tmp_path / DROP_IN).exists()
    done = install(tmp_path, "--deep-seccomp")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / DROP_IN).read_bytes() == \
        (PROJECT / "packaging/systemd/deep-seccomp.conf").read_bytes()
    assert stat.S_IMODE(os.stat(tmp_path / DROP_IN).st_mode) == 0o644
    assert stat.S_IMODE(os.stat((tmp_path / DROP_IN).parent).st_mode) == 0o755


CLOCK_DROP_IN = "etc/systemd/system/hostguard.service.d/clock-read.conf"


def test_clock_read_drop_in_only_when_asked_and_not_beside_deep_seccomp(tmp_path: Path) -> None:
    for name in ("plain", "clock", "both"):
        (tmp_path / name).mkdir()
    assert install(tmp_path / "plain").returncode == 0
    assert not (tmp_path / "plain" / CLOCK_DROP_IN).exists()
    done = install(tmp_path / "clock", "--clock-read")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "clock" / CLOCK_DROP_IN).read_bytes() == \
        (PROJECT / "packaging/systemd/clock-read.conf").read_bytes()
    assert stat.S_IMODE(os.stat(tmp_path / "clock" / CLOCK_DROP_IN).st_mode) == 0o644
    # The deep-seccomp drop-in lifts every filter, adjtimex's too: one drop-in is enough.
    done = install(tmp_path / "both", "--clock-read", "--deep-seccomp")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "both" / DROP_IN).exists()
    assert not (tmp_path / "both" / CLOCK_DROP_IN).exists()


def test_something_in_the_way_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "etc/systemd/system/hostguard.service").mkdir(parents=True)
    done = install(tmp_path, "--force")
    assert done.returncode == 2
    assert done.stderr == (f"hostguard: cannot write {tmp_path}/{UNIT}: {tmp_path}/{UNIT} is a "
                           "folder\nhostguard: nothing written\n")
    assert not (tmp_path / "etc/hostguard").exists()


def test_the_command_is_the_console_script_or_the_interpreter(tmp_path: Path) -> None:
    assert installed_command(str(script()), "/x/python") == (str(script()),)
    other = tmp_path / "hostguard"  # not executable: not a console script
    other.write_text("")
    assert installed_command(str(other), "/x/bin/python3") == ("/x/bin/python3", "-m", "agent")
    assert installed_command("/usr/lib/pytest", "venv/bin/python") == (
        os.path.abspath("venv/bin/python"), "-m", "agent")


def test_exec_start_is_rewritten_and_quoted() -> None:
    unit = "[Service]\nExecStartPre=/bin/true\nExecStart=-/usr/bin/hostguard daemon --x\n"
    assert with_exec_start(unit, ["/opt/my env/bin/python", "-m", "agent"]) == (
        "[Service]\nExecStartPre=/bin/true\n"
        'ExecStart=-"/opt/my env/bin/python" -m agent daemon --x\n')
    assert quote("/opt/a%b$c") == '"/opt/a%%b$$c"'
    assert quote('/a"b\\c') == '"/a\\"b\\\\c"'
    with pytest.raises(Exception, match="0 ExecStart= lines"):
        with_exec_start("[Service]\n", ["/x"])


def test_protect_home_hides_a_hostguard_under_root_or_home() -> None:
    unit = "ProtectHome=yes\n"
    assert hidden(["/root/venv/bin/hostguard"], Path("/opt/hg/lib/agent"), unit) == [
        Path("/root/venv/bin/hostguard")]
    assert hidden(["/opt/venv/bin/python", "-m", "agent"], Path("/home/me/src/agent"), unit) == [
        Path("/home/me/src/agent")]
    assert hidden(["/root/venv/bin/hostguard"], Path("/x"), "ProtectHome=no\n") == []


def test_every_installed_path_the_shipped_texts_name_is_laid_out() -> None:
    # SEC-101/102's remediation named /etc/hostguard/seccomp/, where nothing is installed.
    laid_out = {str(e.path) for e in entries(["/opt/hostguard/bin/hostguard"], True)}
    texts = [*(PROJECT / "policies").rglob("*.yaml"), PROJECT / "packaging/hostguard.yaml",
             PROJECT / "README.md", *(PROJECT / "docs").glob("*.md")]
    for path in texts:
        for named in re.findall(r"/etc/hostguard(?:/[\w.-]+)*", path.read_text()):
            assert named in laid_out, f"{path.relative_to(PROJECT)} names {named}"


def test_the_laid_out_policies_lint_clean_with_their_profiles(tmp_path: Path) -> None:
    assert install(tmp_path).returncode == 0
    policies = tmp_path / "etc/hostguard/policies"
    done = subprocess.run([str(script()), "lint", "--strict", str(policies)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout.splitlines()[-1]) == (
        0, f"{len(POLICIES)} file(s) checked: 0 error(s), 0 warning(s)"), done.stdout
