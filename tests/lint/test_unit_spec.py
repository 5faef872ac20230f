"""``hostguard lint`` of ``unit`` check specs: every mistake at its ``file:line:col``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from agent.lint.engine import lint_paths

TODAY = dt.date(2026, 11, 24)
HEAD = """\
apiVersion: hostguard/v1
kind: Policy
metadata: {name: unit-lint}
checks:
  - id: UNIT-001
    kind: unit
    title: Trading units cannot gain privileges
    severity: high
    rationale: A setuid binary run by the gateway must not raise its privileges.
    remediation: NoNewPrivileges=yes in a drop-in.
"""


def lint(here: Path, spec: str) -> list[str]:
    (here / "p.yaml").write_text(HEAD + spec, encoding="utf-8")
    return [str(d) for d in lint_paths(["p.yaml"], TODAY).diagnostics]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("spec", "found"),
    [
        ("""\
    spec:
      unit: "*.service"
      properties:
        Servcie: {NoNewPrivileges: true}
""", ["p.yaml:14:9: error: unknown key 'Servcie' (did you mean 'Service'?) [unknown-key]"]),
        ("""\
    spec:
      unit: "fix[gw"
      properties: {Service: {NoNewPrivileges: true}}
""", ["p.yaml:12:13: error: invalid unit glob 'fix[gw': '[' at position 4 is never closed "
      "[invalid-glob]"]),
        ("""\
    spec: {unit: "*.service", slice: "trading]", state: enabled}
""", ["p.yaml:11:38: error: invalid slice glob 'trading]': ']' at position 8 closes no '[' "
      "[invalid-glob]"]),
        ("""\
    spec:
      unit: rpcbind.socket
      properties:
        Service: {NoNewPrivileges: true}
        Socket:
          Accept: false
          CPUAffinity: {within: "x-2"}
""", ["p.yaml:14:18: error: a .socket unit has no [Service] section [spec]",
      "p.yaml:17:33: error: invalid CPU list 'x-2' (or 'isolated') [spec]"]),
        ("""\
    spec: {unit: fixgw, state: [disabled, enabld]}
""", ["p.yaml:11:43: error: unknown state 'enabld' (did you mean 'enabled'?); one of enabled, "
      "enabled-runtime, linked, linked-runtime, alias, masked, masked-runtime, static, "
      "indirect, disabled, generated, transient, absent [spec]"]),
        ("""\
    spec:
      unit: fixgw
      properties:
        Service:
          Nice: {within: "2-5"}
          LimitMEMLOCK: {set: true, op: eq, value: infinity}
""", ["p.yaml:15:26: error: 'within' is for CPU lists (AllowedCPUs, CPUAffinity, "
      "StartupAllowedCPUs), not Nice [spec]",
      "p.yaml:16:25: error: an expectation holds one of 'set', 'op'/'value' or 'within' "
      "[spec]"]),
        ("""\
    spec: {unit: fixgw, exposure: {max: 12}}
""", ["p.yaml:11:41: error: checks[0].spec.exposure.max: 12 is greater than the maximum of 10 "
      "[schema]"]),
        ("""\
    spec:
      unit: fixgw
      exposure: {max: high}
""", ["p.yaml:13:23: error: checks[0].spec.exposure.max must be a number, not string 'high' "
      "[schema]"]),
        ("""\
    spec:
      unit: rpcbind.socket
      exposure: {max: 2.5}
""", ["p.yaml:13:17: error: exposure is assessed for services, not a .socket unit [spec]"]),
    ],
)
def test_bad_specs_are_located(here: Path, spec: str, found: list[str]) -> None:
    assert lint(here, spec) == found


def test_a_good_spec_is_clean(here: Path) -> None:
    assert lint(here, """\
    spec:
      unit: "*.service"
      slice: "trading*.slice"
      properties:
        Service:
          NoNewPrivileges: true
          CPUAffinity: {within: isolated}
          Restart: {set: true}
          LimitMEMLOCK: infinity
      exposure: {max: 2.5}
""") == []
