"""deploy/ansible: ansible-lint's production profile, the role's argument specs against its
defaults, and the README's inventory as ansible-inventory reads it. The role running against
real hosts is tests/systemd/test_ansible.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support import PROJECT, need

DEPLOY = PROJECT / "deploy" / "ansible"
ROLE = DEPLOY / "roles" / "hostguard"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    need(path.is_file(), f"{name} is not installed (the deploy extra)")
    return str(path)


def env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": f"{BIN}:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(tmp_path),
            "ANSIBLE_HOME": str(tmp_path / "ansible"), "ANSIBLE_NOCOLOR": "1",
            "NO_COLOR": "1", "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_ansible_lint_production_profile_is_clean(tmp_path: Path) -> None:
    done = subprocess.run([tool("ansible-lint"), "--offline", "--profile", "production",
                           "--nocolor"], cwd=DEPLOY, env=env(tmp_path), capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Passed" in done.stdout + done.stderr


def test_every_role_variable_has_an_argument_spec_with_its_default() -> None:
    defaults: dict[str, Any] = load(ROLE / "defaults" / "main.yml")
    specs = load(ROLE / "meta" / "argument_specs.yml")["argument_specs"]
    declared: dict[str, Any] = {}
    for entry in specs.values():
        for name, spec in entry["options"].items():
            assert spec.get("description"), name
            assert spec["default"] == defaults[name], name
            declared[name] = spec
    assert declared.keys() == defaults.keys()
    # every hostguard_* variable the tasks, handlers and template read is declared
    used: set[str] = set()
    for path in [*ROLE.glob("tasks/*.yml"), *ROLE.glob("handlers/*.yml"),
                 *ROLE.glob("templates/*.j2")]:
        used |= set(re.findall(r"\bhostguard_[a-z_]+", path.read_text(encoding="utf-8")))
    registered = {"hostguard_pip", "hostguard_pip_index", "hostguard_install",
                  "hostguard_restart", "hostguard_wheel_copy", "hostguard_installed",
                  "hostguard_site_found", "hostguard_audit", "hostguard_levels",
                  "hostguard_result", "hostguard_failing", "hostguard_wheel_name"}
    assert used - registered == declared.keys()


def test_readme_inventory_gives_each_host_its_role_labels(tmp_path: Path) -> None:
    text = (DEPLOY / "README.md").read_text(encoding="utf-8")
    [block] = re.findall(r"^```yaml\n(all:\n.*?)^```$", text, re.M | re.S)
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(block, encoding="utf-8")
    done = subprocess.run([tool("ansible-inventory"), "-i", str(inventory), "--list"],
                          env=env(tmp_path), capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    hostvars = json.loads(done.stdout)["_meta"]["hostvars"]
    labels = {host: v["hostguard_labels"] for host, v in hostvars.items()}
    assert labels == {"gw-ldn-01.example.net": {"role": "gateway", "desk": "equities"},
                      "gw-ldn-02.example.net": {"role": "gateway", "desk": "equities"},
                      "risk-ldn-01.example.net": {"role": "risk"}}
    defaults = load(ROLE / "defaults" / "main.yml")
    for values in hostvars.values():
        assert {k for k in values if k.startswith("hostguard_")} <= defaults.keys()
        assert values["hostguard_fail_on"] in ("critical", "high", "any", "never")
