"""agent/report/text.py: the terminal's report, from runs made by hand (no host read)."""

from __future__ import annotations

from agent.report import text
from tests.report.html_runs import make_check, make_result, make_run


def ids_in_order(rendered: str) -> list[str]:
    """Check ids in the order the findings print (the summary line has none)."""
    return [line.split()[2] for line in rendered.splitlines()[:-1] if not line.startswith(" ")]


def test_errors_and_failures_come_first_by_severity() -> None:
    run = make_run("gw", [
        make_result(make_check("LOW-FAIL", "low"), "fail"),
        make_result(make_check("MED-FAIL", "medium"), "fail"),
        make_result(make_check("CRIT-ERR", "critical"), "error"),
        make_result(make_check("HIGH-FAIL", "high"), "fail"),
        make_result(make_check("INFO-ERR", "info"), "error"),
        make_result(make_check("CRIT-WAIVED", "critical"), "waived"),
        make_result(make_check("CRIT-PASS", "critical"), "pass"),
    ])
    assert ids_in_order(text.render(run)) == [
        "CRIT-ERR", "HIGH-FAIL", "MED-FAIL", "LOW-FAIL", "INFO-ERR", "CRIT-WAIVED"]
    assert ids_in_order(text.render(run, verbose=True))[-1] == "CRIT-PASS"
