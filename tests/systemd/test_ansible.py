"""deploy/ansible against two booted systemd containers: a gateway and a risk host.

The controller is this process's venv (the ``deploy`` extra: ansible with community.docker);
each container is reached with the ``community.docker.nsenter`` connection on its PID 1, as a
host is reached over SSH. The role installs hostguard into /opt/hostguard from a wheelhouse built
here from the checkout (``--no-index``: the hosts need no package index), lays out the service
with ``hostguard install-service``, templates the labels from the inventory and copies two site
policies whose ``hosts:`` selectors pick the gateway or the risk host. What systemd, the daemon's
journal and the fetched results say is checked, not what ansible claims.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lxml.html
import pytest
import yaml

from tests.support import PROJECT, need, need_root, need_tool
from tests.systemd import agent
from tests.systemd.machine import Machine, booted, copy_checkout, machine_name

PLAYBOOKS = PROJECT / "deploy" / "ansible"
BIN = Path(sys.executable).parent
LABELS = {"gateway": {"role": "gateway", "desk": "equities"}, "risk": {"role": "risk"}}
RECAP = re.compile(r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
                   r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)", re.M)
CONFIG = "/etc/hostguard/hostguard.yaml"
BOOT_TARGET = "sysinit.target"
"""Both containers boot the host's /usr and share its network: the services the host has
installed (avahi, prometheus, node_exporter, ...) would start in both with multi-user.target, or
with basic.target's timers, and the second's fail on ports the first holds. That says nothing
about the role, which starts hostguard itself."""


def site_policy(name: str, role: str, check: str, *, severity: str, spec: str,
                title: str) -> str:
    return f"""apiVersion: hostguard/v1
kind: Policy
metadata:
  name: {name}
  description: Site checks for {role} hosts (tests/systemd/test_ansible.py)
  version: "1"
hosts:
  labels: {{role: {role}}}
checks:
  - id: {check}
    kind: sysctl
    title: {title}
    severity: {severity}
    rationale: The test's site policy, selected by the host's role label.
    remediation: Nothing to do; the test checks where the check applies.
    spec: {spec}
"""


@dataclass
class Fleet:
    gateway: Machine
    risk: Machine
    folder: Path
    inventory: Path
    policies: Path
    runs: list[subprocess.CompletedProcess[str]]

    @property
    def machines(self) -> tuple[Machine, Machine]:
        return self.gateway, self.risk

    def play(self, playbook: str, *extra: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(self.inventory),
                               str(PLAYBOOKS / playbook), *extra], env=ansible_env(self.folder),
                              text=True,
                              capture_output=True, timeout=600, check=False)
        self.runs.append(done)
        if ok:
            assert done.returncode == 0, f"{playbook}:\n{done.stdout[-6000:]}\n{done.stderr}"
        return done


def ansible_env(folder: Path) -> dict[str, str]:
    """The controller's environment: its own state under ``folder``, not in ~/.ansible. HOME
    is also what the connection hands to the hosts (their remote temp is under it)."""
    return {"PATH": f"{BIN}:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
            "HOME": "/root", "ANSIBLE_HOME": str(folder / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(folder / "ansible-tmp"), "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_FORKS": "2",
            "ANSIBLE_DEPRECATION_WARNINGS": "0"}


def recap(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, int]]:
    """PLAY RECAP: host -> counts."""
    found = {m["host"]: {k: int(v) for k, v in m.groupdict().items() if k != "host"}
             for m in RECAP.finditer(done.stdout)}
    assert found, done.stdout[-3000:]
    return found


def wheelhouse(folder: Path) -> list[Path]:
    """hostguard's wheel, built from a copy of the checkout, and its dependencies' wheels."""
    copy_checkout(PROJECT, folder / "src")
    return build_wheels(folder, deps=True)


def build_wheels(folder: Path, deps: bool) -> list[Path]:
    """Build ``folder/src`` into ``folder/wheels`` (its dependencies too with ``deps``),
    replacing the hostguard wheel there; every wheel there."""
    wheels = folder / "wheels"
    for old in wheels.glob("hostguard-*.whl"):
        old.unlink()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                    *([] if deps else ["--no-deps"]), "--wheel-dir", str(wheels),
                    str(folder / "src")], check=True, capture_output=True, timeout=600)
    found = sorted(wheels.glob("*.whl"))
    assert any(w.name.startswith("hostguard-") for w in found), found
    return found


def host_sections(page: str) -> dict[str, dict[str, str]]:
    """The fleet page's per-host sections: hostname -> check id -> status, for the checks each
    lists."""
    found: dict[str, dict[str, str]] = {}
    for section in lxml.html.fromstring(page).iter("section"):
        if "host-detail" not in (section.get("class") or "").split():
            continue
        hostname = str(section.xpath("string(h3)")).rsplit(": score", 1)[0]
        header = [str(cell.xpath("string()")) for cell in section.findall("table/thead/tr/th")]
        rows = [[str(cell.xpath("string()")) for cell in row.findall("td")]
                for row in section.findall("table/tbody/tr")]
        found[hostname] = {cells[header.index("check")]: cells[header.index("status")]
                           for cells in rows}
    return found


def reloads(machine: Machine) -> tuple[int, int]:
    """The daemon's reload-start and reload-done log events so far (this boot)."""
    journal = machine.journal(agent.UNIT)
    return journal.count("event=reload-start"), journal.count("event=reload-done")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    need_root()
    for tool in ("systemd-nspawn", "nsenter", "git"):
        need_tool(tool)
    need((BIN / "ansible-playbook").is_file(), "ansible is not installed (the deploy extra)")
    folder = tmp_path_factory.mktemp("hg-ansible")
    done = subprocess.run([str(BIN / "ansible-doc"), "-t", "connection", "-l"],
                          capture_output=True, text=True, check=False, env=ansible_env(folder))
    need("community.docker.nsenter" in done.stdout,
         "community.docker.nsenter is not installed (the ansible package provides it)")
    wheels = wheelhouse(folder)
    policies = folder / "policies"
    policies.mkdir()
    (policies / "site-gateway.yaml").write_text(site_policy(
        "site-gateway", "gateway", "SITE-GW-001", severity="low",
        spec="{key: kernel.pid_max, op: ge, value: 1}", title="The PID space is not empty"))
    (policies / "site-risk.yaml").write_text(site_policy(
        "site-risk", "risk", "SITE-RISK-001", severity="critical",
        spec="{key: kernel.pid_max, op: le, value: 0}",
        title="An impossible PID limit (always fails)"))
    empty = folder / "bind"  # booted() binds a staging folder; the role brings its own venv
    empty.mkdir(mode=0o755)
    with contextlib.ExitStack() as stack:
        gateway, risk = (stack.enter_context(booted(
            machine_name(f"ans-{tag}"), empty, folder / f"{tag}.log", target=BOOT_TARGET))
            for tag in ("gw", "risk"))
        inventory = {"all": {
            "vars": {"ansible_connection": "community.docker.nsenter",
                     "ansible_python_interpreter": "/usr/bin/python3",
                     "hostguard_wheels": [str(w) for w in wheels],
                     "hostguard_pip_extra_args": "--no-index",
                     "hostguard_site_policies": [str(p) for p in sorted(policies.iterdir())],
                     "hostguard_interval": 600,
                     "hostguard_results_dir": str(folder / "results"),
                     "hostguard_controller_command": str(BIN / "hostguard")},
            "children": {
                "gateways": {"hosts": {gateway.name: {"ansible_nsenter_pid": gateway.pid1}},
                             "vars": {"hostguard_labels": LABELS["gateway"],
                                      "hostguard_clock_read": True}},
                "risk": {"hosts": {risk.name: {"ansible_nsenter_pid": risk.pid1}},
                         "vars": {"hostguard_labels": LABELS["risk"]}}}}}
        path = folder / "inventory.yml"
        path.write_text(yaml.safe_dump(inventory, sort_keys=False))
        yield Fleet(gateway, risk, folder, path, policies, [])
    shutil.rmtree(folder, ignore_errors=True)


def test_role_installs_configures_and_reloads_once_per_policy_edit(fleet: Fleet) -> None:
    first = fleet.play("site.yml")
    assert {h: c["failed"] for h, c in recap(first).items()} == {
        fleet.gateway.name: 0, fleet.risk.name: 0}
    for machine, role in ((fleet.gateway, "gateway"), (fleet.risk, "risk")):
        state = agent.show(machine, "ActiveState", "SubState", "UnitFileState", "ExecStart")
        assert (state["ActiveState"], state["SubState"], state["UnitFileState"]) == (
            "active", "running", "enabled"), state
        assert "/opt/hostguard/bin/hostguard daemon" in state["ExecStart"], state
        config = yaml.safe_load(machine.run("cat", CONFIG).stdout)
        assert config["labels"] == LABELS[role]
        assert config["policies"] == ["/etc/hostguard/policies"]
        assert sorted(machine.run("ls", "/etc/hostguard/policies/site").stdout.split()) == [
            "site-gateway.yaml", "site-risk.yaml"]
        # install-service's shipped policies and profiles are there too
        assert "gateway-seccomp.yaml" in machine.run("ls", "/etc/hostguard/policies").stdout
        machine.run("/opt/hostguard/bin/hostguard", "lint", "--strict", CONFIG)
        agent.wait_status(machine, "loaded ", timeout=60)
        # hostguard_clock_read on the gateways only: the drop-in, in force.
        dropins = agent.show(machine, "DropInPaths")["DropInPaths"]
        assert ("hostguard.service.d/clock-read.conf" in dropins) is (role == "gateway"), dropins

    second = fleet.play("site.yml")
    assert {h: c["changed"] for h, c in recap(second).items()} == {
        fleet.gateway.name: 0, fleet.risk.name: 0}, second.stdout[-4000:]

    before = {m.name: (reloads(m), agent.show(m, "ExecMainPID", "NRestarts"))
              for m in fleet.machines}
    edited = fleet.policies / "site-risk.yaml"
    edited.write_text(edited.read_text().replace("(always fails)", "(never passes)"))
    fleet.play("site.yml")
    for machine in fleet.machines:
        (starts, dones), unit = before[machine.name]
        agent.wait_for(lambda m=machine, d=dones: reloads(m)[1] > d,  # type: ignore[misc]
                       what=f"a reload in {machine.name}", timeout=60)
        assert reloads(machine) == (starts + 1, dones + 1)
        assert agent.show(machine, "ExecMainPID", "NRestarts") == unit  # reloaded, not restarted
        assert "(never passes)" in machine.run(
            "cat", "/etc/hostguard/policies/site/site-risk.yaml").stdout
        agent.wait_status(machine, "reloaded ", timeout=60)

    # A new hostguard (the wheel rebuilt with a change): reinstalled and restarted, not
    # reloaded (a reload would keep the old program), the configuration put back.
    marker = f"# rebuilt by test_ansible in {os.getpid()}\n"
    init = fleet.folder / "src" / "agent" / "__init__.py"
    init.write_text(init.read_text() + marker)
    build_wheels(fleet.folder, deps=False)
    before = {m.name: (reloads(m), agent.show(m, "ExecMainPID")) for m in fleet.machines}
    upgrade = fleet.play("site.yml")
    assert all(c["changed"] > 0 for c in recap(upgrade).values())
    for machine, role in ((fleet.gateway, "gateway"), (fleet.risk, "risk")):
        installed = machine.sh("cat /opt/hostguard/lib/python3*/site-packages/agent/__init__.py")
        assert installed.stdout.endswith(marker)
        events, pid = before[machine.name]
        assert agent.show(machine, "ExecMainPID") != pid
        assert agent.show(machine, "ActiveState")["ActiveState"] == "active"
        assert reloads(machine) == events
        assert yaml.safe_load(machine.run("cat", CONFIG).stdout)["labels"] == LABELS[role]
        agent.wait_status(machine, "loaded ", timeout=60)

    # The audit playbook: every host's result fetched, one fleet page on the controller.
    fleet.play("audit.yml")
    results = fleet.folder / "results"
    docs: dict[str, dict[str, Any]] = {}
    for machine, role in ((fleet.gateway, "gateway"), (fleet.risk, "risk")):
        doc = json.loads((results / f"{machine.name}.json").read_text())
        assert doc["host"]["hostname"] == machine.name
        assert doc["host"]["labels"] == LABELS[role]
        docs[role] = agent.statuses(doc)
    assert (docs["gateway"]["SITE-GW-001"], docs["gateway"]["SITE-RISK-001"]) == (
        "pass", "not_applicable")
    assert (docs["risk"]["SITE-GW-001"], docs["risk"]["SITE-RISK-001"]) == (
        "not_applicable", "fail")
    # the shipped gateway policies apply to the gateway only
    assert docs["gateway"]["PORT-001"] != "not_applicable"
    assert docs["risk"]["PORT-001"] == "not_applicable"
    listed = host_sections((results / "fleet.html").read_text())
    assert listed.keys() == {fleet.gateway.name, fleet.risk.name}
    # each host's section lists its own failures: the risk check fails on the risk host only
    assert listed[fleet.risk.name].get("SITE-RISK-001") == "fail"
    assert "SITE-RISK-001" not in listed[fleet.gateway.name]
    for machine, role in ((fleet.gateway, "gateway"), (fleet.risk, "risk")):
        for check, status in listed[machine.name].items():
            assert docs[role][check] == status, (machine.name, check)

    # hostguard_fail_on: the risk host's critical failure fails its play, after the page.
    strict = fleet.play("audit.yml", "-e", "hostguard_fail_on=critical", "-e",
                        f"hostguard_fleet_page={fleet.folder / 'strict.html'}", ok=False)
    counts = recap(strict)
    assert strict.returncode != 0
    assert counts[fleet.risk.name]["failed"] == 1, strict.stdout[-4000:]
    assert "SITE-RISK-001" in strict.stdout
    assert (fleet.folder / "strict.html").is_file()
    # the gateway fails its play only if it has a failing critical check of its own
    gateway_critical = [r["id"] for r in json.loads(
        (results / f"{fleet.gateway.name}.json").read_text())["results"]
        if r["status"] == "fail" and r["severity"] == "critical"]
    assert counts[fleet.gateway.name]["failed"] == (1 if gateway_critical else 0)
