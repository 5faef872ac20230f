"""agent/report/text.py: the terminal's report, from runs made by hand (no host read)."""

from __future__ import annotations

import re

import pytest

from agent.report import score, text
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
    lines = [line for line in text.render(coloured_run(), verbose=True, color=True).splitlines()
             if not line.startswith(" ")]
    assert lines[0].startswith(f"{RED_BOLD}FAIL          {RESET} {RED_BOLD}critical{RESET} "
                               "CRIT-FAIL ")
    assert lines[1].startswith(f"\x1b[1;35mERROR         {RESET} \x1b[36mlow     {RESET} ")
    assert lines[2].startswith(f"\x1b[33mWAIVED        {RESET} \x1b[33mmedium  {RESET} ")
    assert lines[3].startswith(f"\x1b[32mPASS          {RESET} \x1b[31mhigh    {RESET} ")
    assert lines[4].startswith(f"\x1b[2mNOT_APPLICABLE{RESET} \x1b[2minfo    {RESET} ")


def test_colour_changes_nothing_but_the_colours() -> None:
    run = coloured_run()
    plain = text.render(run, verbose=True)
    coloured = text.render(run, verbose=True, color=True)
    assert "\x1b" not in plain
    assert SGR.sub("", coloured) == plain  # same columns, same words
    # host data's own escapes stay escaped: the only escapes are the colours added
    assert r"\x1b[31mred" in coloured and "\x1b[31mred" not in coloured


CAPS = [f"CAP_{n}" for n in range(37)]
MESSAGE = (f"pid 801 ('fixgw') CapEff has {', '.join(CAPS)}; "
           f"pid 802 ('fixgw') CapEff has {', '.join(CAPS)} (and 2 more)")


def finding(rendered: str) -> str:
    """The second line of the first finding, without its indent and location."""
    return rendered.splitlines()[1].strip().rsplit("  (", 1)[0]


def test_long_lists_are_folded_unless_verbose() -> None:
    run = make_run("gw", [make_result(make_check("PROC-103"), "fail", message=MESSAGE)])
    assert finding(text.render(run)) == (
        "pid 801 ('fixgw') CapEff has CAP_0, CAP_1, CAP_2, CAP_3 (+33 more); "
        "pid 802 ('fixgw') CapEff has CAP_0, CAP_1, CAP_2, CAP_3 (+33 more) (and 2 more)")
    assert finding(text.render(run, verbose=True)) == MESSAGE


@pytest.mark.parametrize("message", [
    "expected vm.swappiness == 10, found vm.swappiness = 1",
    f"CapEff has {', '.join(CAPS[:text.FOLD_AFTER])}",  # short enough
    f"pids {','.join(str(n) for n in range(40))}",  # not a list of words
    f"found {', '.join(f'unit {n}' for n in range(40))}",  # not single words
])
def test_short_lists_and_prose_are_not_folded(message: str) -> None:
    assert text.fold(message) == message


def test_a_folded_list_keeps_what_surrounds_it() -> None:
    words = ", ".join(f"w{n}" for n in range(9))
    assert text.fold(f"[{words}] and ({words}): {words}") == (
        "[w0, w1, w2, w3 (+5 more)] and (w0, w1, w2, w3 (+5 more)): w0, w1, w2, w3 (+5 more)")


def test_verbose_shows_the_remediation_of_failing_checks() -> None:
    fix = f"CapabilityBoundingSet=CAP_NET_BIND_SERVICE {CONTROL}\nsystemctl restart fixgw\n"
    run = make_run("gw", [make_result(make_check(cid, remediation=fix), status)
                          for cid, status in [("A-FAIL", "fail"), ("B-ERR", "error"),
                                              ("C-WAIVED", "waived"), ("D-PASS", "pass")]])
    lines = text.render(run, verbose=True).splitlines()
    assert lines[2:4] == [
        " " * 34 + r"fix: CapabilityBoundingSet=CAP_NET_BIND_SERVICE \x1b[31mred\x1b[0m\x00nul"
        r"\udcffbyte\u202eevil",
        " " * 34 + "     systemctl restart fixgw"]
    assert lines[6:8] == lines[2:4]  # the error's too
    assert sum(1 for line in lines if "fix:" in line) == 2  # not the waived or passing check
    assert "fix:" not in text.render(run)


def test_the_summary_carries_the_score() -> None:
    run = make_run("gw", [make_result(make_check("A", "critical"), "pass"),
                          make_result(make_check("B", "high"), "fail"),
                          make_result(make_check("C", "low"), "waived")])
    assert score.score(run) == 75.0
    assert text.summary(run).endswith(", 1 pass, 1 fail, 1 waived, score 75.0% "
                                      "[12 ms, policy cdcdcdcdcdcd]\n")
    # nothing weighs (only info checks): no score rather than a made-up one
    nothing = make_run("gw", [make_result(make_check("I", "info"), "fail")])
    assert score.score(nothing) is None
    assert text.summary(nothing).endswith(": 1 checks, 1 fail [12 ms, policy cdcdcdcdcdcd]\n")
