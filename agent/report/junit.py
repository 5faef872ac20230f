"""JUnit XML for CI (the Surefire/Jenkins xUnit ``junit-10.xsd`` dialect).

One ``<testsuite>`` per policy (in the order the policies' checks first appear), one ``<testcase>``
per check: ``classname`` is the policy name, ``name`` is ``ID: title``. ``fail`` becomes
``<failure message=... type=severity>`` with the evidence as text, ``error`` becomes ``<error>``,
``waived`` and ``not_applicable`` become ``<skipped message=reason>``. Times are seconds with three
decimals. The schema allows ``hostname`` and ``timestamp`` on ``<testsuite>`` only, so each suite
carries them (timestamp: UTC, ``YYYY-MM-DDTHH:MM:SS``), and ``<properties>`` carry the host facts.

The tree is built with ``xml.etree.ElementTree`` (which escapes markup) and every string goes
through ``xml_safe`` first (which ElementTree does not do: a ``\\x1b`` or ``\\x00`` in a process
name would make the document unreadable).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from agent.report.xmltext import xml_safe
from agent.result import AuditRun, Result, Status


def _seconds(milliseconds: float) -> str:
    return f"{milliseconds / 1000:.3f}"


def _element(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, tag, {k: xml_safe(v) for k, v in attrs.items()})
    if text is not None:
        node.text = xml_safe(text)
    return node


def evidence_text(result: Result) -> str:
    """What a CI reader acts on: verdict, expected vs actual, the rows, where, how to fix."""
    evidence = result.evidence
    lines = [result.message, "", f"expected: {evidence.expected}", f"actual:   {evidence.actual}"]
    if evidence.items:
        lines.append("items:")
        lines += [f"  {json.dumps(dict(item), ensure_ascii=False, default=str)}"
                  for item in evidence.items]
    if result.waiver is not None:
        covered = result.waived_status.value if result.waived_status else "?"
        lines += ["", f"waived ({covered}) until {result.waiver.expires}: {result.waiver.reason}",
                  f"waiver: {result.waiver.location}"]
    lines += ["", f"check: {result.check.location}"]
    if result.status in (Status.FAIL, Status.ERROR) and result.check.remediation:
        lines += ["", "remediation:", result.check.remediation]
    return "\n".join(lines) + "\n"


def _by_policy(results: Iterable[Result]) -> dict[str, list[Result]]:
    groups: dict[str, list[Result]] = {}
    for result in results:
        groups.setdefault(result.check.policy, []).append(result)
    return groups


def _testcase(suite: ET.Element, result: Result) -> None:
    check = result.check
    case = _element(suite, "testcase", name=f"{check.id}: {check.title}", classname=check.policy,
                    time=_seconds(result.duration_ms))
    severity = check.severity.value
    if result.status is Status.FAIL:
        _element(case, "failure", evidence_text(result), message=result.message, type=severity)
    elif result.status is Status.ERROR:
        _element(case, "error", evidence_text(result), message=result.message, type=severity)
    elif result.status is Status.WAIVED:
        _element(case, "skipped", evidence_text(result), message=result.message, type="waived")
    elif result.status is Status.NOT_APPLICABLE:
        _element(case, "skipped", message=result.message, type="not_applicable")


def render(run: AuditRun) -> str:
    """The ``<testsuites>`` document, UTF-8, with an XML declaration and a trailing newline."""
    host = run.host
    stamp = run.started.removesuffix("Z")
    count = run.counts.get
    root = ET.Element("testsuites", {
        "name": xml_safe(f"hostguard audit of {host.hostname}"),
        "tests": str(len(run.results)), "failures": str(count(Status.FAIL.value, 0)),
        "errors": str(count(Status.ERROR.value, 0)), "time": _seconds(run.duration_ms)})
    files = {f.name: f for f in run.policies}
    for index, (policy, results) in enumerate(_by_policy(run.results).items()):
        statuses = [r.status for r in results]
        skipped = statuses.count(Status.WAIVED) + statuses.count(Status.NOT_APPLICABLE)
        source = files.get(policy)
        suite = _element(
            root, "testsuite", name=policy, tests=str(len(results)),
            failures=str(statuses.count(Status.FAIL)), errors=str(statuses.count(Status.ERROR)),
            skipped=str(skipped), time=_seconds(sum(r.duration_ms for r in results)),
            timestamp=stamp, hostname=host.hostname, id=str(index),
            file=source.path if source else results[0].check.location.path)
        properties = _element(suite, "properties")
        facts = [("hostname", host.hostname), ("kernel_release", host.kernel_release),
                 ("boot_id", host.boot_id), ("machine_id", host.machine_id),
                 ("os_name", host.os_name), ("root", run.root),
                 ("policy_digest", run.policy_digest), ("tool_version", run.tool_version)]
        if source is not None:
            facts += [("policy_version", source.version), ("policy_sha256", source.sha256)]
        facts += [(f"label.{k}", v) for k, v in sorted(run.labels.items())]
        for name, value in facts:
            if value is not None:
                _element(properties, "property", name=name, value=value)
        for result in results:
            _testcase(suite, result)
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
