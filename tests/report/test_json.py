"""The result JSON: every produced file fits the shipped schema; load_run rebuilds the run."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from agent.report import json as json_report
from agent.report.load import ResultLoadError, load_run, problems
from agent.result import Status
from tests.authoring import TRADING_ROOT
from tests.report.conftest import NAMES, fixture_data
from tests.report.runs import gateway_run, hostile_run
from tests.support import PROJECT, run_cli

SHIPPED = json.loads(resources.files("agent.report").joinpath("result.schema.json")
                     .read_text("utf-8"))
VALIDATOR = Draft202012Validator(SHIPPED)


def errors(data: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(data)]


def test_the_schema_is_a_valid_2020_12_schema() -> None:
    Draft202012Validator.check_schema(SHIPPED)
    assert SHIPPED["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SHIPPED["properties"]["schema"] == {"const": "hostguard/result/v1",
                                               "description": "Format name and version."}


@pytest.mark.parametrize("name", NAMES)
def test_fixtures_validate(name: str) -> None:
    assert errors(fixture_data(name)) == []


def test_a_real_audit_of_the_fixture_root_validates(tmp_path: Path) -> None:
    done = run_cli("audit", "--policy", "policies", "--label", "role=gateway", "--root",
                   str(TRADING_ROOT), "--format", "json", "--today", "2026-06-01")
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert errors(data) == []
    assert data["summary"]["total"] == len(data["results"]) > 50
    assert json_report.as_dict(load_run(data)) == data


def test_a_real_audit_of_this_host_validates() -> None:
    done = run_cli("audit", "--policy", "policies", "--label", "role=gateway", "--format",
                   "json", "--today", "2026-06-01")
    assert done.returncode in (0, 1, 3), done.stderr
    data = json.loads(done.stdout)
    assert data["host"]["root"] == "/"
    assert errors(data) == []
    assert json_report.as_dict(load_run(data)) == data


def test_every_status_and_a_waiver_of_each_verdict(tmp_path: Path) -> None:
    data = json_report.as_dict(gateway_run(tmp_path))
    assert [(r["id"], r["status"]) for r in data["results"]] == [
        ("KRN-001", "pass"), ("LAT-001", "fail"), ("KRN-002", "error"), ("KRN-004", "waived"),
        ("NET-001", "waived"), ("BOOT-001", "fail"), ("PROC-001", "fail"),
        ("LAT-002", "not_applicable"), ("GW-001", "pass"), ("STG-001", "not_applicable")]
    by_id = {r["id"]: r for r in data["results"]}
    assert by_id["KRN-004"]["waiver"] == {
        "reason": "CHG-1 vendor NIC driver needs dmesg", "expires": "2026-12-31", "hosts": [],
        "status": "fail", "location": {"path": "policies/base.yaml", "line": 119, "column": 5}}
    assert by_id["NET-001"]["waiver"]["status"] == "error"
    assert by_id["LAT-001"]["overridden_at"] == [
        {"path": "policies/gateway.yaml", "line": 26, "column": 5}]
    assert by_id["LAT-001"]["severity"] == "low"
    assert by_id["STG-001"]["hosts"] == {"hostnames": ["stg-*"], "labels": {}}
    assert by_id["STG-001"]["roots"] == [{"hostnames": ["stg-*"], "labels": {}}]
    assert by_id["GW-001"]["roots"] == [{"hostnames": [], "labels": {}}]
    assert data["summary"] == {"total": 10, "pass": 2, "fail": 3, "error": 1, "waived": 2,
                               "not_applicable": 2, "failed_by_severity": {
                                   "critical": 1, "medium": 1, "low": 1}}
    assert list(data["summary"]["failed_by_severity"]) == ["critical", "medium", "low"]
    assert list(data["host"]["labels"]) == ["env", "role"]


def test_two_runs_differ_only_in_time(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = json_report.render(gateway_run(tmp_path / "a"))
    second = json_report.render(gateway_run(tmp_path / "b"))
    assert first == second


def test_hostile_text_stays_ascii_and_escaped() -> None:
    rendered = json_report.render(hostile_run())
    assert rendered.isascii()
    assert "\\u001b[31m" in rendered and "\\u0000" in rendered and "\\udcff" in rendered
    assert "\\u202e" in rendered


# --- load_run ----------------------------------------------------------------------------------


def broken(edit: Any) -> dict[str, Any]:
    data = copy.deepcopy(fixture_data("gateway"))
    edit(data)
    return data


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["results"][3].update(status="bogus"),
     "$.results[3].status: 'bogus' is not one of ['pass', 'fail', 'error', 'waived', "
     "'not_applicable']"),
    (lambda d: d["results"][1]["location"].update(line=0),
     "$.results[1].location.line: 0 is less than the minimum of 1"),
    (lambda d: d["host"].pop("boot_id"), "$.host: 'boot_id' is a required property"),
    (lambda d: d.update(extra=1),
     "$: Additional properties are not allowed ('extra' was unexpected)"),
    (lambda d: d["results"][0].update(waiver={"reason": "r"}),
     "$.results[0].waiver: {'reason': 'r'} is not of type 'null'"),
    (lambda d: d["results"][3]["waiver"].update(expires="2026-02-30"),
     "$.results[3].waiver.expires: '2026-02-30' is not a date"),
    (lambda d: d["summary"].update(fail=4), "$.summary.fail: 4, but the results hold 3"),
    (lambda d: d["policy"].update(digest="XYZ"),
     "$.policy.digest: 'XYZ' does not match '^[0-9a-f]{64}$'"),
])
def test_invalid_documents_name_the_json_path(edit: Any, message: str) -> None:
    with pytest.raises(ResultLoadError) as caught:
        load_run(broken(edit))
    assert message in str(caught.value)
    assert str(caught.value).startswith("invalid hostguard/result/v1 document: $")


@pytest.mark.parametrize(("data", "message"), [
    ([], "$: expected a hostguard/result/v1 object, found list"),
    ({"version": "2.1.0", "runs": []},
     "$.schema: not a hostguard/result/v1 document (no \"schema\" key)"),
    ({"schema": "hostguard/lint/v1"},
     "$.schema: not a hostguard/result/v1 document (schema 'hostguard/lint/v1')"),
])
def test_foreign_documents_are_refused(data: Any, message: str) -> None:
    assert problems(data) == [message]
    with pytest.raises(ResultLoadError, match="invalid hostguard/result/v1 document"):
        load_run(data)


def test_many_problems_are_counted() -> None:
    data = broken(lambda d: [r.update(status="x") for r in d["results"]])
    with pytest.raises(ResultLoadError, match=r"\(and 11 more problem\(s\)\)$"):
        load_run(data)


def test_loaded_run_carries_the_model() -> None:
    run = load_run(fixture_data("gateway"))
    waived = run.results[3]
    assert (waived.check.id, waived.status, waived.waived_status) == (
        "KRN-004", Status.WAIVED, Status.FAIL)
    assert waived.waiver is not None and str(waived.waiver.location) == "policies/base.yaml:119:5"
    assert str(run.results[1].check.overridden_at[0]) == "policies/gateway.yaml:26:5"
    assert run.counts == {"pass": 2, "fail": 3, "error": 1, "waived": 2, "not_applicable": 2}
    assert run.results[0].check.raw_spec == {"key": "kernel.kptr_restrict", "op": "ge",
                                             "value": 1}


def test_a_definition_judged_valid_once_still_refuses_a_forged_copy() -> None:
    # A fleet's files share each check's definition: the first judged valid is kept (load.py),
    # and a file whose definition differs in any value is judged on its own.
    load_run(fixture_data("gateway"))
    for edit, message in [
        (lambda d: d["results"][1]["location"].update(line=0),
         "$.results[1].location.line: 0 is less than the minimum of 1"),
        (lambda d: d["results"][2].update(severity="severe"),
         "$.results[2].severity: 'severe' is not one of"),
        (lambda d: d["results"][0]["references"].append(7),
         "$.results[0].references[0]: 7 is not of type 'string'"),
        (lambda d: d["results"][0]["roots"].append({"hostnames": [], "labels": {"a": 1}}),
         "$.results[0].roots[1].labels.a: 1 is not of type 'string'"),
    ]:
        with pytest.raises(ResultLoadError) as caught:
            load_run(broken(edit))
        assert message in str(caught.value)
    load_run(fixture_data("gateway"))


def test_definitions_equal_only_as_the_same_json_share_a_check() -> None:
    first = load_run(fixture_data("gateway"))
    again = load_run(fixture_data("gateway"))
    assert again.results[0].check is first.results[0].check
    # 1.0 is not 1, nor is true; key order is kept as written; a title differs by one letter.
    for spec in ({"key": "kernel.kptr_restrict", "op": "ge", "value": 1.0},
                 {"key": "kernel.kptr_restrict", "op": "ge", "value": True},
                 {"value": 1, "key": "kernel.kptr_restrict", "op": "ge"}):
        data = broken(lambda d, spec=spec: d["results"][0].update(spec=spec))
        text = json.dumps(data, indent=2, ensure_ascii=True) + "\n"
        assert json_report.render(load_run(data)) == text
        assert list(load_run(data).results[0].check.raw_spec.items()) == list(spec.items())
    data = broken(lambda d: d["results"][0].update(title=d["results"][0]["title"] + "!"))
    assert load_run(data).results[0].check.title == first.results[0].check.title + "!"


def test_a_shared_check_holds_none_of_a_document_s_own_objects() -> None:
    # The kept checks serve every later document: editing the one they were first built from
    # (a caller's dict, after loading) must not show in another run.
    def fresh() -> dict[str, Any]:  # definitions no other test loads: a new set to keep
        return broken(lambda d: d["results"][0].update(title="kept once, copied"))

    data = fresh()
    first = load_run(data)
    spec = first.results[0].check.raw_spec
    assert spec == data["results"][0]["spec"] and spec is not data["results"][0]["spec"]
    data["results"][0]["spec"]["key"] = "edited"
    data["results"][0]["references"].append("edited")
    again = load_run(fresh())
    assert again.results[0].check is first.results[0].check
    assert "edited" not in json.dumps(json_report.render(again))


def test_schema_is_shipped_as_package_data() -> None:
    pyproject = (PROJECT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"report/*.json"' in pyproject
    assert (PROJECT / "agent" / "report" / "result.schema.json").is_file()


def test_fast_and_precise_validators_agree_on_fixtures_and_mutations() -> None:
    # tests/policy/test_quickcheck.py holds the fast path to jsonschema on generated documents.
    from agent.core.quickcheck import accepts  # noqa: PLC0415
    from agent.report.load import schema, validator  # noqa: PLC0415

    for name in NAMES:
        data = fixture_data(name)
        mutations = [data]
        for key, value in (("status", "bogus"), ("extra", 1), ("severity", None),
                           ("duration_ms", -1), ("id", ""), ("waiver", "x")):
            bad = copy.deepcopy(data)
            bad["results"][0][key] = value
            mutations.append(bad)
        for doc in mutations:
            assert accepts(schema(), doc) == validator().is_valid(doc), (name, doc is data)


def test_a_valid_report_loads_without_importing_jsonschema() -> None:
    code = ("import json, sys\n"
            "from agent.report.load import load_run\n"
            "load_run(json.loads(open('tests/report/fixtures/gateway.json').read()))\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'jsonschema'))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True,
                          text=True, timeout=60, check=False, env={"PYTHONPATH": str(PROJECT)})
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "[]\n")
