"""JUnit XML: valid against Jenkins' junit-10.xsd, one suite per policy, hostile text survives."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from agent.report import junit
from agent.report.load import load_run
from agent.report.xmltext import xml_safe
from tests.report.conftest import NAMES, fixture_data
from tests.report.runs import CONTROL, HOSTILE, gateway_run, hostile_run


def parse(text: str) -> ET.Element:
    return ET.fromstring(text.encode("utf-8"))


def assert_valid(xsd: Any, text: str) -> None:
    from lxml import etree  # noqa: PLC0415

    doc = etree.fromstring(text.encode("utf-8"))
    assert xsd.validate(doc), str(xsd.error_log)


@pytest.mark.parametrize("name", NAMES)
def test_fixtures_render_valid_junit(junit_xsd: Any, name: str) -> None:
    assert_valid(junit_xsd, junit.render(load_run(fixture_data(name))))


def test_the_schema_does_reject_bad_junit(junit_xsd: Any) -> None:
    from lxml import etree  # noqa: PLC0415

    assert not junit_xsd.validate(etree.fromstring(b'<testsuites hostname="h"/>'))


def test_suites_cases_and_verdicts(tmp_path: Path, junit_xsd: Any) -> None:
    text = junit.render(gateway_run(tmp_path))
    assert_valid(junit_xsd, text)
    root = parse(text)
    assert root.attrib == {"name": "hostguard audit of trd-gw-01", "tests": "10",
                           "failures": "3", "errors": "1", "time": "0.013"}
    suites = root.findall("testsuite")
    assert [(s.get("name"), s.get("tests"), s.get("failures"), s.get("errors"), s.get("skipped"),
             s.get("file")) for s in suites] == [
        ("site-baseline", "8", "3", "1", "3", "policies/base.yaml"),
        ("gateway", "1", "0", "0", "0", "policies/gateway.yaml"),
        ("staging", "1", "0", "0", "1", "policies/staging.yaml")]
    assert {(s.get("hostname"), s.get("timestamp")) for s in suites} == {
        ("trd-gw-01", "2026-06-01T08:30:00")}
    props = {p.get("name"): p.get("value") for p in suites[0].iter("property")}
    assert props["boot_id"] == "6f1c1b0e-2c8a-4f5e-9d55-0c3a6d1e7b42"
    assert props["label.role"] == "gateway"
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert list(cases)[:2] == ["KRN-001: check KRN-001", "LAT-001: check LAT-001"]
    assert cases["KRN-001: check KRN-001"].get("classname") == "site-baseline"
    assert cases["KRN-001: check KRN-001"].get("time") == "0.000"
    assert list(cases["KRN-001: check KRN-001"]) == []
    failure = cases["BOOT-001: CPU mitigations stay on"].find("failure")
    assert failure is not None
    assert failure.attrib == {"message": "expected mitigations != off, found mitigations=off",
                              "type": "critical"}
    assert failure.text is not None
    assert "expected: mitigations != off\n" in failure.text
    assert "check: policies/base.yaml:74:5\n" in failure.text
    error = cases["KRN-002: check KRN-002"].find("error")
    assert error is not None and error.attrib == {
        "message": "kernel.sysrq does not exist on this host", "type": "high"}
    waived = cases["NET-001: check NET-001"].find("skipped")
    assert waived is not None and waived.attrib == {
        "message": "waived until 2026-09-30: CHG-2 syncookies read fails on 6.1", "type": "waived"}
    assert waived.text is not None and "waived (error) until 2026-09-30" in waived.text
    na = cases["STG-001: check STG-001"].find("skipped")
    assert na is not None and na.attrib == {
        "message": "policy 'staging' (policies/staging.yaml:8:3) does not select host "
                   "'trd-gw-01': hostname 'trd-gw-01' matches none of stg-*",
        "type": "not_applicable"}
    assert na.text is None


def test_hostile_text_is_escaped_and_control_characters_replaced(junit_xsd: Any) -> None:
    text = junit.render(hostile_run())
    assert_valid(junit_xsd, text)
    for raw in ("\x1b", "\x00", "\udcff", "\u202e", "<script>", '"><img'):
        assert raw not in text
    root = parse(text)
    case = next(root.iter("testcase"))
    assert case.get("name") == f"HOST-1: title {HOSTILE}"
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == (f"process {HOSTILE} \\x1b[31mred\\x1b[0m\\x00nul\\xffbyte"
                                      "\\u202eevil")
    assert root.find("testsuite") is not None
    assert root.get("name") == f"hostguard audit of trd-{HOSTILE}"


def test_control_characters_in_a_process_name(tmp_path: Path, junit_xsd: Any) -> None:
    run = gateway_run(tmp_path)
    results = list(run.results)
    bad = results[1]
    evidence = dataclasses.replace(bad.evidence, items=({"comm": "x\x1by\x00z\x7f"},))
    results[1] = dataclasses.replace(bad, message="comm \x1b[2J\x00 evil", evidence=evidence)
    text = junit.render(dataclasses.replace(run, results=tuple(results)))
    assert_valid(junit_xsd, text)
    failure = parse(text).find(".//testcase[@name='LAT-001: check LAT-001']/failure")
    assert failure is not None and failure.get("message") == "comm \\x1b[2J\\x00 evil"
    assert failure.text is not None and '{"comm": "x\\u001by\\u0000z\x7f"}' in failure.text


@pytest.mark.parametrize(("raw", "shown"), [
    ("a\x1bb", "a\\x1bb"), ("\x00", "\\x00"), ("\x08\x0b\x0c", "\\x08\\x0b\\x0c"),
    ("tab\tnl\ncr\r", "tab\tnl\ncr\r"), ("\udcff", "\\xff"), ("\ud800", "\\ud800"),
    ("\ufffe\uffff", "\\ufffe\\uffff"), ("\u202eabc\u2066", "\\u202eabc\\u2066"),
    ("é😀\ufffd", "é😀\ufffd"), (CONTROL, "\\x1b[31mred\\x1b[0m\\x00nul\\xffbyte\\u202eevil"),
])
def test_xml_safe(raw: str, shown: str) -> None:
    assert xml_safe(raw) == shown
