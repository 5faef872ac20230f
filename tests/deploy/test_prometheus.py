"""deploy/prometheus: promtool checks the rules, then runs them on series that the daemon's own
metrics code (``agent.daemon.metrics.render``) rendered for real audits of the fixture host, as a
scrape of four hosts over an hour would see them; the textfile a running daemon writes passes
``promtool check metrics``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from agent import audit
from agent.daemon.metrics import Service, render
from agent.daemon.resources import Watch
from agent.policy.resolve import resolve
from agent.result import AuditRun, Status
from tests.authoring import TRADING_ROOT, check, policy, sysctl, write
from tests.daemon.harness import Daemon, wait_for, write_config
from tests.support import PROJECT, need_tool

RULES = PROJECT / "deploy" / "prometheus" / "hostguard.rules.yml"
TODAY = dt.date(2026, 6, 1)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
"""promtool's clock starts at Unix time 0: audits are dated from there."""
INTERVAL = 300.0
COUNT = "digest:hostguard_policy_info:count"
"""The recording rule: hosts per policy digest."""
END = 60
"""Minutes of scrapes, one a minute."""
Timeline = dict[int, str | None]
"""Minute -> the textfile node_exporter serves from then on (None: the exporter is gone)."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[AuditRun, AuditRun]:
    """The fleet's policy (a high check failing, one in error, a medium one failing) and a
    different policy that one host runs."""
    folder = tmp_path_factory.mktemp("policies")
    fleet = write(folder / "fleet.yaml", policy("fleet", [
        sysctl("KRN-001", "kernel.kptr_restrict", "ge", 3),  # the fixture host has 2
        sysctl("LAT-001", "vm.swappiness", "eq", 1),
        sysctl("KRN-009", "kernel.sysrq", "eq", 0),  # not on the fixture host
        check("LAT-010", "sysfs", {"path": "kernel/mm/transparent_hugepage/enabled",
                                   "value": "always"}, severity="medium"),
    ]))
    local = write(folder / "local.yaml", policy("local", [
        sysctl("KRN-001", "kernel.kptr_restrict", "ge", 1),
        sysctl("LAT-001", "vm.swappiness", "eq", 1),
    ]))
    done = []
    for path in (fleet, local):
        policy_set = resolve([path], TODAY)
        assert policy_set.diagnostics == []
        done.append(audit.run(policy_set, TRADING_ROOT, today=TODAY))
    a, b = done
    assert [(r.check.id, r.check.severity.value, r.status) for r in a.results] == [
        ("KRN-001", "high", Status.FAIL), ("LAT-001", "high", Status.PASS),
        ("KRN-009", "high", Status.ERROR), ("LAT-010", "medium", Status.FAIL)]
    assert [r.status for r in b.results] == [Status.PASS, Status.PASS]
    assert a.policy_digest != b.policy_digest
    return a, b


def textfile(run: AuditRun, minute: int, over_budget: int = 0,
             broken: bool | None = False) -> str:
    """The textfile of an audit started at ``minute``, rendered as the daemon renders it."""
    watch = Watch()
    watch.begin()
    watch.end()
    watch.over_budget = over_budget
    started = (EPOCH + dt.timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return render(dataclasses.replace(run, started=started), watch, Service(INTERVAL, broken))


def instance(host: str) -> str:
    return f"{host}:9100"


def _value(value: float) -> str:
    return "NaN" if math.isnan(value) else repr(value)


def _scrape(text: str, host: str) -> dict[str, str]:
    """Series (promtool's notation) -> value, with the labels a scrape of ``host`` adds."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = {**sample.labels, "instance": instance(host), "job": "node"}
            inner = ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
            out[f"{sample.name}{{{inner}}}"] = _value(sample.value)
    return out


def input_series(timelines: Mapping[str, Timeline]) -> list[dict[str, str]]:
    """One promtool input series per scraped series: a value each minute, ``_`` while absent,
    ``stale`` at the scrape where it disappeared (as Prometheus marks it)."""
    rows: dict[str, list[str]] = {}
    for host, timeline in timelines.items():
        mine: dict[str, list[str]] = {}
        for minute in range(END + 1):
            text = timeline[max(m for m in timeline if m <= minute)]
            present = {} if text is None else _scrape(text, host)
            for key, value in present.items():
                mine.setdefault(key, ["_"] * (END + 1))[minute] = value
            for key, row in mine.items():
                if key not in present and minute and row[minute - 1] not in ("_", "stale"):
                    row[minute] = "stale"
        rows.update(mine)
    return [{"series": key, "values": " ".join(row)} for key, row in rows.items()]


def fleet(runs: tuple[AuditRun, AuditRun]) -> dict[str, Timeline]:
    """gw-01 audits all along; risk-01's daemon stops after its audit at minute 10 (the file
    stays); risk-02 runs the other policy, goes over budget at 25 and finds its history broken
    at 30; gw-02's exporter goes away at minute 20."""
    a, b = runs
    every = range(0, END + 1, int(INTERVAL) // 60)
    return {
        "gw-01": {m: textfile(a, m) for m in every},
        "risk-01": {m: textfile(a, m) for m in every if m <= 10},
        "risk-02": {m: textfile(b, m, over_budget=int(m >= 25), broken=m >= 30) for m in every},
        "gw-02": {**{m: textfile(a, m) for m in every if m < 20}, 20: None},
    }


def _annotations(alert: str, labels: Mapping[str, str]) -> dict[str, str]:
    """The rule's annotation templates with ``{{ $labels.x }}`` filled in (the only template
    the rules use, so that expected annotations need no template engine)."""
    rule = next(r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]
                if r.get("alert") == alert)
    out = {}
    for key, template in rule.get("annotations", {}).items():
        assert re.sub(r"\{\{ \$labels\.\w+ \}\}", "", template).count("{{") == 0, template
        out[key] = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], template)
    return out


def alerts(alert: str, *found: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"exp_labels": dict(labels), "exp_annotations": _annotations(alert, labels)}
            for labels in found]


def host(name: str, **more: str) -> dict[str, str]:
    return {"instance": instance(name), "job": "node", **more}


def expectations(runs: tuple[AuditRun, AuditRun]) -> dict[int, dict[str, list[dict[str, Any]]]]:
    """Minute -> alert -> the alerts firing then, written out by hand."""
    b = runs[1]
    failing = {"id": "KRN-001", "kind": "sysctl", "severity": "high"}
    erring = {"id": "KRN-009", "kind": "sysctl", "severity": "high"}
    return {
        # Failing since minute 0, firing after 15; everything else pending or not yet true.
        20: {
            "HostguardCheckFailing": alerts("HostguardCheckFailing", host("gw-01", **failing),
                                            host("risk-01", **failing)),
            "HostguardCheckError": [], "HostguardAuditStale": [], "HostguardMetricsGone": [],
            "HostguardHistoryChainBroken": [], "HostguardOverBudget": [],
            "HostguardPolicyDrift": [],
        },
        40: {
            "HostguardCheckFailing": alerts("HostguardCheckFailing", host("gw-01", **failing),
                                            host("risk-01", **failing)),
            "HostguardCheckError": alerts("HostguardCheckError", host("gw-01", **erring),
                                          host("risk-01", **erring)),
            "HostguardAuditStale": alerts("HostguardAuditStale",
                                          host("risk-01", severity="high")),
            "HostguardMetricsGone": alerts("HostguardMetricsGone",
                                           host("gw-02", severity="high")),
            "HostguardHistoryChainBroken": alerts("HostguardHistoryChainBroken",
                                                  host("risk-02", severity="critical")),
            "HostguardOverBudget": alerts("HostguardOverBudget",
                                          host("risk-02", severity="warning")),
            "HostguardPolicyDrift": alerts("HostguardPolicyDrift", host(
                "risk-02", severity="warning", digest=b.policy_digest)),
        },
    }


def unit_test(runs: tuple[AuditRun, AuditRun],
              expected: Mapping[int, Mapping[str, list[dict[str, Any]]]],
              timelines: Mapping[str, Timeline] | None = None) -> dict[str, Any]:
    a, b = runs
    return {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": input_series(fleet(runs) if timelines is None else timelines),
            "alert_rule_test": [
                {"eval_time": f"{minute}m", "alertname": alert, "exp_alerts": found}
                for minute, by_alert in expected.items() for alert, found in by_alert.items()],
            "promql_expr_test": [] if timelines is not None else [{
                "expr": COUNT,
                "eval_time": "40m",
                "exp_samples": [{"labels": f'{COUNT}{{digest="{d}"}}', "value": n}
                                for d, n in ((a.policy_digest, 2), (b.policy_digest, 1))],
            }],
        }],
    }


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([need_tool("promtool"), *args], capture_output=True, text=True,
                          timeout=120, check=False, cwd=cwd)


def test_rules_pass_promtool_check_with_lint_fatal() -> None:
    done = promtool("check", "rules", "--lint=all", "--lint-fatal", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 8 rules found" in done.stdout


def test_rules_fire_on_series_the_daemon_renders(runs: tuple[AuditRun, AuditRun],
                                                 tmp_path: Path) -> None:
    path = tmp_path / "hostguard.test.yml"
    path.write_text(yaml.safe_dump(unit_test(runs, expectations(runs)), sort_keys=False))
    done = promtool("test", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@pytest.mark.parametrize("alert", ["HostguardAuditStale", "HostguardPolicyDrift",
                                   "HostguardHistoryChainBroken"])
def test_promtool_catches_a_wrong_expectation(runs: tuple[AuditRun, AuditRun], tmp_path: Path,
                                              alert: str) -> None:
    # The same series with one firing alert left out of the expectations: promtool must object,
    # so the test above compares what it claims to.
    expected = expectations(runs)
    expected[40][alert] = []
    path = tmp_path / "wrong.test.yml"
    path.write_text(yaml.safe_dump(unit_test(runs, expected), sort_keys=False))
    done = promtool("test", "rules", str(path))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"alertname: {alert}" in done.stdout + done.stderr


def test_the_daemons_textfile_passes_promtool_check_metrics(tmp_path: Path) -> None:
    # A real daemon with a history, so that every metric it can write is in the file.
    config = write_config(tmp_path, history="state/history.db", metrics="metrics/hostguard.prom")
    daemon = Daemon(config, None)
    try:
        wait_for(lambda: len(daemon.events("metrics")) >= 1, what="a cycle with metrics")
        daemon.stop()
    finally:
        daemon.kill()
    text = (tmp_path / "metrics" / "hostguard.prom").read_text()
    assert "hostguard_history_chain_broken 0\n" in text
    done = subprocess.run([need_tool("promtool"), "check", "metrics"], input=text,
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_a_tie_between_digests_names_no_drift(runs: tuple[AuditRun, AuditRun],
                                              tmp_path: Path) -> None:
    # One host on each policy: no majority, so neither is the odd one out.
    a, b = runs
    every = range(0, END + 1, int(INTERVAL) // 60)
    timelines: dict[str, Timeline] = {"gw-01": {m: textfile(a, m) for m in every},
                                      "risk-02": {m: textfile(b, m) for m in every}}
    path = tmp_path / "tie.test.yml"
    path.write_text(yaml.safe_dump(unit_test(runs, {50: {"HostguardPolicyDrift": []}},
                                             timelines), sort_keys=False))
    done = promtool("test", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
