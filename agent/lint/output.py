"""Lint output formats: text, json, sarif (2.1.0) and GitHub workflow annotations.

Every formatter takes the report and returns the text to print.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.core import sarif as sarif_common
from agent.core.diagnostic import RULES, Diagnostic
from agent.lint.engine import LintReport


def text(report: LintReport) -> str:
    """``path:line:col: level: message [rule]`` per line, then a summary line."""
    lines = [str(d) for d in report.diagnostics]
    lines += [f"hostguard: {u}" for u in report.usage_errors]
    lines.append(f"{report.files} file(s) checked: {report.errors} error(s), "
                 f"{report.warnings} warning(s)")
    return "\n".join(lines) + "\n"


def _as_dict(d: Diagnostic) -> dict[str, Any]:
    return {"path": d.location.path, "line": d.location.line, "column": d.location.col,
            "level": d.level.value, "rule": d.rule, "message": d.message}


def json_(report: LintReport) -> str:
    """One JSON object: diagnostics, counts, usage errors."""
    body = {
        "schema": "hostguard/lint/v1",
        "files": report.files,
        "errors": report.errors,
        "warnings": report.warnings,
        "usage_errors": list(report.usage_errors),
        "diagnostics": [_as_dict(d) for d in report.diagnostics],
    }
    return json.dumps(body, indent=2) + "\n"


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def github(report: LintReport) -> str:
    """GitHub Actions workflow commands, one annotation per diagnostic."""
    lines = []
    for d in report.diagnostics:
        loc = d.location
        props = (f"file={_escape_property(loc.path)},line={loc.line},col={loc.col},"
                 f"title={_escape_property(d.rule)}")
        lines.append(f"::{d.level.value} {props}::{_escape_data(d.message)}")
    lines += [f"::error::{_escape_data(u)}" for u in report.usage_errors]
    return "\n".join(lines) + ("\n" if lines else "")


def sarif(report: LintReport) -> str:
    """A SARIF 2.1.0 log with one run; rules carry their help text."""
    rule_ids = sorted({d.rule for d in report.diagnostics})
    index = {rule_id: i for i, rule_id in enumerate(rule_ids)}
    rules = [
        {
            "id": rule_id,
            "shortDescription": {"text": RULES[rule_id].summary},
            "help": {"text": RULES[rule_id].help},
            "defaultConfiguration": {"level": RULES[rule_id].level.value},
        }
        for rule_id in rule_ids
    ]
    results = [
        {
            "ruleId": d.rule,
            "ruleIndex": index[d.rule],
            "level": d.level.value,
            "message": {"text": d.message},
            "locations": [sarif_common.physical_location(d.location.path, d.location.line,
                                                         d.location.col)],
        }
        for d in report.diagnostics
    ]
    notifications = [{"level": "error", "message": {"text": u}} for u in report.usage_errors]
    run: dict[str, Any] = {
        "tool": {"driver": sarif_common.driver(rules)},
        "originalUriBaseIds": {sarif_common.SRCROOT: {"uri": Path.cwd().as_uri() + "/"}},
        "columnKind": "unicodeCodePoints",
        "invocations": [{"executionSuccessful": not report.usage_errors,
                         "toolExecutionNotifications": notifications}],
        "results": results,
    }
    return sarif_common.log([run])


FORMATS: dict[str, Callable[[LintReport], str]] = {
    "text": text, "json": json_, "sarif": sarif, "github": github,
}
