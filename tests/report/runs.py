"""Audit runs behind the report fixtures (``fixtures/*.json``), rebuilt deterministically.

``gateway_run()`` is a real audit of the fixture host ``trd-gw-01`` with small authored policies
covering every status, a waived failure and a waived error, an override and host selection.
``hostile_run()`` is a run whose host data and policy text attack every format: markup, quotes,
template syntax, terminal escapes, NUL, lone surrogates, bidi controls.
Both are normalised (start time, durations, root) so the fixtures do not change between runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

from agent import audit
from agent.core.location import Location
from agent.host.facts import HostFacts
from agent.policy.model import Check, HostSelector, Severity, Waiver
from agent.policy.resolve import resolve
from agent.result import AuditRun, Evidence, PolicyFile, Result, Status
from tests.authoring import TRADING_ROOT, check, policy, sysctl, write

TODAY = dt.date(2026, 6, 1)
STARTED = "2026-06-01T08:30:00Z"
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>{{ 7*7 }}]]>&amp;'
"""Markup, attribute break-out, template syntax, CDATA end and an entity, in one string."""
CONTROL = "\x1b[31mred\x1b[0m\x00nul\udcffbyte\u202eevil"
"""Terminal escape, NUL, a non-UTF-8 byte (surrogateescape), a bidi override."""


@contextlib.contextmanager
def _inside(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _normalise(run: AuditRun, root: str) -> AuditRun:
    results = tuple(dataclasses.replace(r, duration_ms=round(0.125 * (i + 1), 3))
                    for i, r in enumerate(run.results))
    return dataclasses.replace(run, started=STARTED, duration_ms=12.5, root=root,
                               results=results, tool_version="0.1.0")


def gateway_run(workdir: Path) -> AuditRun:
    """Audit ``trd-gw-01`` with two authored policies (written under ``workdir``)."""
    (workdir / "host").symlink_to(TRADING_ROOT)
    write(workdir / "policies" / "base.yaml", policy("site-baseline", [
        sysctl("KRN-001", "kernel.kptr_restrict", "ge", 1),
        sysctl("LAT-001", "vm.swappiness", "eq", 10),
        sysctl("KRN-002", "kernel.sysrq", "eq", 0),
        sysctl("KRN-004", "kernel.dmesg_restrict", "eq", 0),
        sysctl("NET-001", "net.ipv4.tcp_syncookies", "eq", 1),
        check("BOOT-001", "kernel_cmdline", {"values": {"mitigations": {"op": "ne",
                                                                        "value": "off"}}},
              severity="critical", title="CPU mitigations stay on"),
        check("PROC-001", "process", {"name": "fixgw", "required": True, "not_root": True},
              severity="medium", title="The FIX gateway runs, and not as root"),
        sysctl("LAT-002", "kernel.numa_balancing", "eq", 0, missing="not_applicable"),
    ], waivers=[{"check": "KRN-004", "reason": "CHG-1 vendor NIC driver needs dmesg",
                 "expires": "2026-12-31"},
                {"check": "NET-001", "reason": "CHG-2 syncookies read fails on 6.1",
                 "expires": "2026-09-30", "hosts": ["trd-gw-*"]}]))
    write(workdir / "policies" / "gateway.yaml", policy(
        "gateway", [check("GW-001", "sysfs", {"path": "kernel/mm/transparent_hugepage/enabled",
                                              "value": "never"}, severity="low")],
        extends=["base.yaml"],
        overrides=[{"id": "LAT-001", "severity": "low"}]))
    write(workdir / "policies" / "staging.yaml", policy(
        "staging", [sysctl("STG-001", "kernel.kptr_restrict", "eq", 0, )],
        hosts={"hostnames": ["stg-*"]}))
    with _inside(workdir):
        policy_set = resolve([Path("policies/gateway.yaml"), Path("policies/staging.yaml")],
                             TODAY)
        assert policy_set.diagnostics == [], [str(d) for d in policy_set.diagnostics]
        run = audit.run(policy_set, Path("host"), {"role": "gateway", "env": "prod"}, TODAY)
    return _normalise(run, "host")


def hostile_run() -> AuditRun:
    """Every string a renderer prints, attacker-controlled."""
    here = Location(f"policies/{HOSTILE[:8]} odd dir/p.yaml", 7, 5)
    facts = HostFacts(hostname=f"trd-{HOSTILE}", kernel_release=f"6.1.0 {CONTROL}",
                      kernel_version=HOSTILE, boot_id=CONTROL, machine_id=None, arch="x86_64",
                      os_name=f"Debian {HOSTILE}")

    def make(cid: str, status: Status, severity: Severity, *, waived: Status | None = None,
             line: int = 7) -> Result:
        chk = Check(id=cid, kind="process", title=f"title {HOSTILE}", severity=severity,
                    rationale=f"rationale {HOSTILE}\n{CONTROL}",
                    remediation=f"remediation {HOSTILE}\n  run: rm -rf / {CONTROL}",
                    references=(f"https://example.invalid/?q={HOSTILE}",), spec={
                        "name": HOSTILE, "cmdline": CONTROL},
                    raw_spec={"name": HOSTILE, "cmdline": CONTROL},
                    location=dataclasses.replace(here, line=line), policy=f"pol {HOSTILE}",
                    hosts=HostSelector((HOSTILE,), {"role": HOSTILE}),
                    overridden_at=(Location("policies/child.yaml", 3, 3),))
        items = ({"pid": 4242, "comm": HOSTILE, "cmdline": [HOSTILE, CONTROL],
                  "user": "root", "verdict": "fail", "finding": f"runs as root: {CONTROL}"},
                 {"pid": 7, "comm": CONTROL, "cmdline": [], "user": None, "verdict": "pass"})
        waiver = None
        message = f"process {HOSTILE} {CONTROL}"
        if waived is not None:
            waiver = Waiver(cid, f"reason {HOSTILE} {CONTROL}", dt.date(2026, 12, 31),
                            (HOSTILE,), Location("policies/waivers.yaml", 11, 7))
            message = f"waived until 2026-12-31: reason {HOSTILE} {CONTROL}"
        return Result(chk, status, message, Evidence(f"expected {HOSTILE}",
                                                     f"actual {CONTROL}", items),
                      waiver, waived, 0.5)

    results = (make("HOST-1", Status.FAIL, Severity.CRITICAL, line=7),
               make("HOST-2", Status.ERROR, Severity.MEDIUM, line=20),
               make("HOST-3", Status.WAIVED, Severity.LOW, waived=Status.FAIL, line=33),
               make("HOST-4", Status.PASS, Severity.INFO, line=46),
               make("HOST-5", Status.NOT_APPLICABLE, Severity.HIGH, line=59))
    counts = {s.value: sum(r.status is s for r in results) for s in Status}
    files = (PolicyFile(here.path, f"pol {HOSTILE}", CONTROL, "0" * 64),)
    return AuditRun(host=facts, root=f"/srv/{CONTROL}", labels={"role": HOSTILE, "z": "1"},
                    policies=files, policy_digest="f" * 64, started=STARTED, duration_ms=3.25,
                    results=results, tool_version="0.1.0", counts=counts)
