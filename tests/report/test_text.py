"""agent/report/text.py: the terminal's report, from runs made by hand (no host read)."""

from __future__ import annotations

import re

from agent.report import text
from agent.result import AuditRun
from tests.report.html_runs import make_check, make_result, make_run
from tests.report.runs import CONTROL

SGR = re.compile(r"\x1b\[[0-9;]*m")
RED_BOLD = "\x1b[1;31m"
RESET = "\x1b[0m"


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


def coloured_run() -> AuditRun:
    return make_run("gw", [
        make_result(make_check("CRIT-FAIL", "critical", title=f"title {CONTROL}"), "fail",
                    message=f"found {CONTROL}"),
        make_result(make_check("LOW-ERR", "low"), "error"),
        make_result(make_check("MED-WAIVED", "medium"), "waived"),
        make_result(make_check("HIGH-PASS", "high"), "pass"),
        make_result(make_check("INFO-NA", "info"), "not_applicable"),
    ])


def test_colour_paints_status_and_severity() -> None:
    lines = text.render(coloured_run(), verbose=True, color=True).splitlines()
    assert lines[0].startswith(f"{RED_BOLD}FAIL          {RESET} {RED_BOLD}critical{RESET} "
                               "CRIT-FAIL ")
    assert lines[2].startswith(f"\x1b[1;35mERROR         {RESET} \x1b[36mlow     {RESET} ")
    assert lines[4].startswith(f"\x1b[33mWAIVED        {RESET} \x1b[33mmedium  {RESET} ")
    assert lines[6].startswith(f"\x1b[32mPASS          {RESET} \x1b[31mhigh    {RESET} ")
    assert lines[8].startswith(f"\x1b[2mNOT_APPLICABLE{RESET} \x1b[2minfo    {RESET} ")


def test_colour_changes_nothing_but_the_colours() -> None:
    run = coloured_run()
    plain = text.render(run, verbose=True)
    coloured = text.render(run, verbose=True, color=True)
    assert "\x1b" not in plain
    assert SGR.sub("", coloured) == plain  # same columns, same words
    # host data's own escapes stay escaped: the only escapes are the colours added
    assert r"\x1b[31mred" in coloured and "\x1b[31mred" not in coloured
