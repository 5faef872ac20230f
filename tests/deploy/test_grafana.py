"""deploy/grafana/hostguard.json: valid JSON for Grafana, every query valid PromQL (promtool
parses it) naming only metrics that ``agent.daemon.metrics.render`` writes."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from agent import audit
from agent.daemon.metrics import Service, render
from agent.daemon.resources import Watch
from agent.policy.resolve import resolve
from tests.authoring import TRADING_ROOT, policy, sysctl, write
from tests.deploy.test_prometheus import RULES, promtool

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "hostguard.json"
KEYWORDS = {"and", "or", "unless", "bool", "inf", "nan"}
"""PromQL words that are neither metrics nor calls once the label lists are gone."""


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate keys: {keys}"
    return dict(pairs)


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"),
                                      object_pairs_hook=_unique)
    return data


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, those folded into rows included."""
    for item in items:
        yield item
        yield from panels(item.get("panels", []))


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers left once strings, label matchers,
    ranges, label lists and calls are taken out."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\$\{[^}]*\}|\$\w+", " ", text)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\b(?:group_left|group_right)\b|\boffset\s+\S+", " ", text)
    found = re.findall(r"(?<![\w:.])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()", text)
    return set(found) - KEYWORDS


def queries() -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in panels(load()["panels"])
            for t in p.get("targets", [])]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every sample name the daemon writes: a real audit, its resource watch and its state."""
    path = write(tmp_path_factory.mktemp("p") / "p.yaml", policy("grafana", [
        sysctl("KRN-001", "kernel.kptr_restrict", "ge", 3)]))
    run = audit.run(resolve([path], dt.date(2026, 6, 1)), TRADING_ROOT,
                    today=dt.date(2026, 6, 1))
    watch = Watch()
    watch.begin()
    watch.end()
    text = render(run, watch, Service(300.0, history_broken=False))
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_metric_names_out_of_promql() -> None:
    assert metric_names('count by (severity) (hostguard_check_status{severity=~"a|b"} == 1) '
                        "or vector(0)") == {"hostguard_check_status"}
    assert metric_names("time() - a_seconds > 3 * b_seconds unless on (instance) "
                        "group_left () max_over_time(c[1d] offset 5m) and 1e3") == {
        "a_seconds", "b_seconds", "c"}
    assert metric_names('sum(rate(x_total{job="y"}[$__rate_interval])) by (job)') == {"x_total"}


def test_the_dashboard_is_grafana_json() -> None:
    data = load()
    assert data["uid"] and data["title"] and isinstance(data["schemaVersion"], int)
    every = list(panels(data["panels"]))
    assert len({p["id"] for p in every}) == len(every)
    (variable,) = [v for v in data["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    for panel in every:
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": f"${{{variable['name']}}}"}
        ids = [t["refId"] for t in panel["targets"]]
        assert ids and len(ids) == len(set(ids)), panel["title"]
    titles = {p["title"] for p in every}
    assert {"Fleet hardening score", "Failing checks by severity",
            "Hosts not reporting"} <= titles


def test_every_query_names_only_metrics_the_daemon_writes(written: set[str]) -> None:
    assert "hostguard_cycles_over_budget_total" in written  # sample names, as PromQL sees them
    for title, expr in queries():
        names = metric_names(expr)
        assert names, f"{title}: {expr} names no metric"
        assert names <= written, f"{title}: {sorted(names - written)} not written by the daemon"


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses each expression as a recording rule: a syntax error fails the check.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "5m")}
        for i, (_, expr) in enumerate(queries())]}]}
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    done = promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(queries())} rules found" in done.stdout


def test_the_rules_name_only_metrics_the_daemon_writes(written: set[str]) -> None:
    # The same check for deploy/prometheus: its expressions read the daemon's metrics and the
    # names its own recording rules make.
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    recorded = {r["record"] for r in rules if "record" in r}
    for rule in rules:
        names = metric_names(rule["expr"])
        assert names, rule["expr"]
        assert names <= written | recorded, f"{rule.get('alert')}: {names - written - recorded}"
