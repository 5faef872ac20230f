"""hostguard inside a booted container: install it as README.md says, give it services to
audit, and read what systemd and the daemon say."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import yaml

from tests.support import PROJECT
from tests.systemd.machine import SRC, VENV, Machine
from tests.systemd.readme import install_block

UNIT = "hostguard.service"
CONFIG = "/etc/hostguard/hostguard.yaml"
"""Where the install block puts the configuration (the unit's ExecStart names it)."""
DROPINS = "/run/systemd/system/hostguard.service.d"
"""Runtime drop-ins of the tests (gone at reboot, removed by each test that adds one)."""
GATEWAY_PROFILE = f"{SRC}/policies/seccomp/trading-gateway.yaml"

T = TypeVar("T")

# A listener that holds its socket until stopped: argv family host port.
LISTENER = ("import socket, sys, time\n"
            "s = socket.socket(getattr(socket, sys.argv[1]))\n"
            "s.bind((sys.argv[2], int(sys.argv[3])))\n"
            "s.listen()\n"
            "time.sleep(1e9)\n")


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = 20,
             every: float = 0.1) -> T:
    """``probe()``'s first truthy value within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def install(machine: Machine) -> str:
    """Run README.md's install block from the checkout inside; its output."""
    block = install_block(PROJECT / "README.md")
    return machine.run("sh", "-ec", f"cd {SRC}\n{block}", timeout=120).stdout


def add_user(machine: Machine, name: str) -> None:
    """A system user with its own group (/etc has no login.defs to ask for one)."""
    machine.run("useradd", "--system", "--user-group", "--no-create-home",
                "--shell", "/usr/sbin/nologin", name)


def start_workloads(machine: Machine) -> None:
    """Services to audit: a listener as nobody, one as www-data, and the FIX gateway (unit
    fixgw, comm fixgw, user fixgw, port 7001) under its own seccomp filter, loaded by
    ``hostguard exec`` with the shipped gateway profile, as the shipped policies expect."""
    add_user(machine, "fixgw")
    # comm is the name execve() was given: a link named fixgw to the interpreter.
    machine.sh("mkdir -p /srv/fixgw && ln -s /usr/bin/python3 /srv/fixgw/fixgw")
    python = "/usr/bin/python3"
    for unit, user, argv in (
            ("hg-nobody", "nobody", [python, "-c", LISTENER, "AF_INET", "127.0.0.1", "8081"]),
            ("hg-www", "www-data", [python, "-c", LISTENER, "AF_INET6", "::", "8082"]),
            ("fixgw", "fixgw", [f"{VENV}/bin/hostguard", "exec", "--profile", GATEWAY_PROFILE,
                                "--", "/srv/fixgw/fixgw", "-c", LISTENER, "AF_INET",
                                "0.0.0.0", "7001"])):
        machine.run("systemd-run", "--quiet", f"--unit={unit}", "-p", f"User={user}", *argv)
    for port in ("8081", "8082", "7001"):
        wait_for(lambda p=port: f":{p} " in machine.run("ss", "-Htln").stdout,  # type: ignore[misc]
                 what=f"a listener on port {port}")


def show(machine: Machine, *props: str, unit: str = UNIT) -> dict[str, str]:
    out = machine.run("systemctl", "show", unit, *(f"--property={p}" for p in props)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def wait_status(machine: Machine, prefix: str, timeout: float = 20) -> str:
    """The unit's ``StatusText=`` once it starts with ``prefix``."""
    def probe() -> str | None:
        text = show(machine, "StatusText")["StatusText"]
        return text if text.startswith(prefix) else None
    return wait_for(probe, what=f"StatusText starting with {prefix!r}", timeout=timeout)


def read_config(machine: Machine) -> dict[str, Any]:
    loaded = yaml.safe_load(machine.run("cat", CONFIG).stdout)
    assert isinstance(loaded, dict), loaded
    return loaded


def write_config(machine: Machine, doc: dict[str, Any]) -> None:
    machine.write(CONFIG, yaml.safe_dump(doc, sort_keys=False), mode="0640")


def dropin(machine: Machine, name: str, text: str) -> None:
    """A runtime drop-in for the unit, then daemon-reload."""
    machine.write(f"{DROPINS}/{name}", text)
    machine.run("systemctl", "daemon-reload")


def remove_dropin(machine: Machine, name: str) -> None:
    machine.run("rm", "-f", f"{DROPINS}/{name}")
    machine.run("systemctl", "daemon-reload")


def restart(machine: Machine) -> None:
    """Restart and wait until the daemon has finished an audit."""
    machine.run("systemctl", "restart", UNIT)
    wait_for(lambda: "; last audit " in show(machine, "StatusText")["StatusText"],
             what="the first audit after a restart")


def latest_run(machine: Machine) -> dict[str, Any]:
    """The newest run of the daemon's history (``hostguard/result/v1``)."""
    out = machine.run("hostguard", "history", "show", "latest", "--format", "json",
                      "--config", CONFIG).stdout
    doc = json.loads(out)
    assert isinstance(doc, dict)
    return doc


def next_run(machine: Machine, after: str) -> dict[str, Any]:
    """The daemon's first run started after ``after`` (a run's ``started``)."""
    def probe() -> dict[str, Any] | None:
        run = latest_run(machine)
        return run if run["started"] != after else None
    return wait_for(probe, what="the daemon's next audit")


def unsandboxed_audit(machine: Machine, config: dict[str, Any]) -> dict[str, Any]:
    """``hostguard audit`` with the configuration's policies and labels, as a plain transient
    service (root, every capability, no filter): the same host seen without the sandbox."""
    argv = ["systemd-run", "--wait", "--pipe", "--quiet", "--collect",
            f"{VENV}/bin/hostguard", "audit", "--format", "json"]
    for path in config["policies"]:
        argv += ["--policy", path]
    for key, value in (config.get("labels") or {}).items():
        argv += ["--label", f"{key}={value}"]
    done = machine.run(*argv, check=False, timeout=120)
    assert done.returncode in (0, 1, 3), done  # compliant, a failure, some errors
    doc = json.loads(done.stdout)
    assert isinstance(doc, dict)
    return doc


def compare(machine: Machine, config: dict[str, Any], allowed: frozenset[str] = frozenset(),
            attempts: int = 3) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The daemon's latest run, an unsandboxed audit, and the checks whose status differs
    beyond ``allowed``: retried on a later run when some differ, since the two audits read
    the host at different moments (a process that is a zombie during one of them has no
    readable network namespace, which makes ``namespaces: all`` port checks ``error``).
    A difference the sandbox causes is there every time."""
    for attempt in range(attempts):
        daemon = latest_run(machine)
        plain = unsandboxed_audit(machine, config)
        differ = differences(daemon, plain)
        if differ.keys() <= allowed or attempt == attempts - 1:
            return daemon, plain, differ
        next_run(machine, daemon["started"])
    raise AssertionError("unreachable")


def statuses(doc: dict[str, Any]) -> dict[str, str]:
    """Check id -> status of a result document."""
    return {r["id"]: r["status"] for r in doc["results"]}


def differences(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """Checks whose status differs between two result documents, with both evidences."""
    a, b = statuses(ours), statuses(theirs)
    return {cid: {"statuses": (a[cid], b.get(cid)), "evidence": evidence(ours, cid),
                  "other": evidence(theirs, cid) if cid in b else None}
            for cid in a if a[cid] != b.get(cid)}


def evidence(doc: dict[str, Any], check: str) -> dict[str, Any]:
    [found] = [r["evidence"] for r in doc["results"] if r["id"] == check]
    assert isinstance(found, dict)
    return found


STATUS = re.compile(
    r"(?:re)?loaded (?P<checks>\d+) checks? from (?P<files>\d+) policy files?; "
    r"last audit (?P<started>\S+): (?P<total>\d+) checks?, (?P<pass>\d+) pass, "
    r"(?P<fail>\d+) fail, (?P<error>\d+) error, (?P<waived>\d+) waived, "
    r"(?P<not_applicable>\d+) not applicable, score (?P<score>\S+)")
"""``StatusText=`` of the daemon after an audit (docs/daemon.md, sd_notify)."""
