"""Audit SARIF: valid against the official 2.1.0 schema; rules, levels, suppressions, locations."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator

from agent.core.location import Location
from agent.report import sarif
from agent.report.load import load_run
from tests.report.conftest import NAMES, fixture_data
from tests.report.runs import HOSTILE, gateway_run, hostile_run


def schema_errors(validator: Draft4Validator, log: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(log)]


@pytest.mark.parametrize("name", NAMES)
def test_fixtures_render_valid_sarif(sarif_validator: Draft4Validator, name: str) -> None:
    log = json.loads(sarif.render(load_run(fixture_data(name))))
    assert schema_errors(sarif_validator, log) == []


def test_the_validator_does_reject_bad_sarif(sarif_validator: Draft4Validator,
                                             tmp_path: Path) -> None:
    log = json.loads(sarif.render(gateway_run(tmp_path)))
    log["runs"][0]["results"][0]["level"] = "critical"
    assert schema_errors(sarif_validator, log) != []


def test_rules_results_levels_and_suppressions(tmp_path: Path,
                                               sarif_validator: Draft4Validator) -> None:
    log = json.loads(sarif.render(gateway_run(tmp_path)))
    assert schema_errors(sarif_validator, log) == []
    assert (log["version"], log["$schema"]) == (
        "2.1.0", "https://json.schemastore.org/sarif-2.1.0.json")
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["KRN-001", "LAT-001", "KRN-002", "KRN-004", "NET-001",
                                        "BOOT-001", "PROC-001", "LAT-002", "GW-001", "STG-001"]
    boot = rules[5]
    assert boot["shortDescription"] == {"text": "CPU mitigations stay on"}
    assert boot["fullDescription"] == {"text": "test rationale"}
    assert boot["help"] == {"text": "test remediation"}
    assert boot["defaultConfiguration"] == {"level": "error"}
    assert boot["properties"] == {"severity": "critical", "kind": "kernel_cmdline",
                                  "policy": "site-baseline",
                                  "tags": ["hostguard", "kernel_cmdline", "critical"],
                                  "references": [], "security-severity": "9.5"}
    table = [(r["ruleId"], r["ruleIndex"], r["kind"], r["level"], r["properties"]["status"],
              "suppressions" in r) for r in run["results"]]
    assert table == [
        ("LAT-001", 1, "fail", "note", "fail", False),
        ("KRN-002", 2, "fail", "error", "error", False),
        ("KRN-004", 3, "fail", "error", "waived", True),
        ("NET-001", 4, "fail", "error", "waived", True),
        ("BOOT-001", 5, "fail", "error", "fail", False),
        ("PROC-001", 6, "fail", "warning", "fail", False),
    ]
    by_rule = {r["ruleId"]: r for r in run["results"]}
    assert by_rule["BOOT-001"]["locations"] == [{"physicalLocation": {
        "artifactLocation": {"uri": "policies/base.yaml", "uriBaseId": "SRCROOT"},
        "region": {"startLine": 74, "startColumn": 5}}}]
    assert by_rule["BOOT-001"]["message"]["text"].startswith(
        "BOOT-001: expected mitigations != off, found mitigations=off\n"
        "expected: mitigations != off\nactual: BOOT_IMAGE=/vmlinuz-6.1.0-18-amd64 ")
    assert by_rule["KRN-002"]["message"]["text"].startswith(
        "KRN-002: could not be evaluated: kernel.sysrq does not exist on this host\n")
    assert by_rule["NET-001"]["suppressions"] == [{
        "kind": "external", "status": "accepted",
        "justification": "CHG-2 syncookies read fails on 6.1",
        "location": {"physicalLocation": {
            "artifactLocation": {"uri": "policies/base.yaml", "uriBaseId": "SRCROOT"},
            "region": {"startLine": 124, "startColumn": 5}}},
        "properties": {"expires": "2026-09-30", "hosts": ["trd-gw-*"], "waived_status": "error"}}]
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is True
    assert (invocation["startTimeUtc"], invocation["endTimeUtc"]) == (
        "2026-06-01T08:30:00Z", "2026-06-01T08:30:00.012Z")
    assert invocation["machine"] == "trd-gw-01"
    assert invocation["properties"]["host"]["labels"] == {"env": "prod", "role": "gateway"}
    assert run["properties"]["summary"] == {"total": 10, "pass": 2, "fail": 3, "error": 1,
                                            "waived": 2, "not_applicable": 2}
    assert run["automationDetails"] == {"id": "hostguard/audit/trd-gw-01/"}
    assert "originalUriBaseIds" not in run  # a report rendered elsewhere cannot know it


def test_fingerprints_are_stable_per_host_and_check(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = json.loads(sarif.render(gateway_run(tmp_path / "a")))["runs"][0]["results"]
    second = json.loads(sarif.render(gateway_run(tmp_path / "b")))["runs"][0]["results"]
    prints = [r["partialFingerprints"]["hostguardHostCheck/v1"] for r in first]
    assert prints == [r["partialFingerprints"]["hostguardHostCheck/v1"] for r in second]
    assert len(set(prints)) == len(prints)


def test_hostile_text_is_data(sarif_validator: Draft4Validator) -> None:
    rendered = sarif.render(hostile_run())
    assert rendered.isascii()
    log = json.loads(rendered)
    assert schema_errors(sarif_validator, log) == []
    run = log["runs"][0]
    assert run["tool"]["driver"]["rules"][0]["shortDescription"]["text"] == f"title {HOSTILE}"
    uri = run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "policies/%3Cscript%3E%20odd%20dir/p.yaml"
    assert all("markdown" not in r["help"] for r in run["tool"]["driver"]["rules"])


def test_absolute_policy_paths_are_file_uris() -> None:
    run = load_run(fixture_data("gateway"))
    first = run.results[1]
    moved = dataclasses.replace(first, check=dataclasses.replace(
        first.check, location=Location("/etc/hostguard/base.yaml", 3, 5)))
    log = json.loads(sarif.render(dataclasses.replace(run, results=(moved,))))
    location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "file:///etc/hostguard/base.yaml"}
