"""The HTML report's first screen, measured in headless Chromium at 1366x768.

Before any scrolling, a reader must see the verdict, the failing critical and high checks by
name with their one-line finding, the score with its meaning in words and colour, and what
changed since the baseline. Each test opens the page at that window size (through the browser
fixtures of ``test_html_browser``) and measures the elements with ``getBoundingClientRect``
and ``elementFromPoint``: an element counts as seen when it lies wholly inside the window and
is what the browser would hit at its centre (nothing covers it). A screenshot of each page goes
to ``reports/test-artifacts/`` for a human look.
"""

from __future__ import annotations

from typing import Any

from agent.report import html
from agent.report.score import Verdict, score_band, verdict
from agent.result import AuditRun, Result
from tests.report.html_runs import (
    IMG,
    SCRIPT,
    Page,
    hostile_run,
    make_check,
    make_result,
    make_run,
)
from tests.report.test_html_browser import ARTIFACTS, browser, open_page

__all__ = ["browser", "open_page"]  # the fixtures these tests use

WINDOW = {"width": 1366, "height": 768}

MEASURE = """selector => {
  const el = document.querySelector(selector);
  if (!el) { return null; }
  const r = el.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + Math.min(r.width / 2, 40), r.top + r.height / 2);
  return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width,
          height: r.height, hit: hit !== null && (hit === el || el.contains(hit)),
          text: el.innerText, color: getComputedStyle(el).color,
          background: getComputedStyle(el).backgroundColor};
}"""

RED, AMBER, GREEN = "rgb(198, 40, 40)", "rgb(230, 81, 0)", "rgb(46, 125, 50)"
GREY = "rgb(97, 97, 97)"
"""The report's --fail, --error and --pass colours, and the not-evaluated grey."""


def first_screen(open_page: Any, run: AuditRun, name: str,
                 baseline: AuditRun | None = None) -> Any:
    opened = open_page(html.render(run, baseline), f"{name}.html")
    page = opened.page
    page.set_viewport_size(WINDOW)
    page.evaluate("window.scrollTo(0, 0)")
    opened.quiet()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"first-screen-{name}.png"))
    return page


def seen(page: Any, selector: str) -> dict[str, Any]:
    """The element's box and text, asserting it is wholly in the window and not covered."""
    box = page.evaluate(MEASURE, selector)
    assert box is not None, f"{selector} is not on the page"
    assert page.evaluate("[window.scrollX, window.scrollY]") == [0, 0]
    assert box["width"] > 0 and box["height"] > 0, (selector, box)
    assert box["top"] >= 0 and box["left"] >= 0, (selector, box)
    assert box["bottom"] <= WINDOW["height"] and box["right"] <= WINDOW["width"], (selector, box)
    assert box["hit"], f"{selector} is covered by another element"
    return dict(box)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def top(page: Any, selector: str) -> float:
    value: float = page.evaluate(f"document.querySelector({selector!r})"
                                 ".getBoundingClientRect().top")
    return value


def big_run() -> tuple[AuditRun, AuditRun]:
    """200 checks as a site baseline holds them: 10 critical or high fail with long
    findings, many lower ones fail, a baseline run with other results; long names throughout."""
    results: list[Result] = []
    for i in range(200):
        severity = ("critical", "high", "medium", "low", "info")[i % 5]
        status = "fail" if i % 3 == 0 else "error" if i % 29 == 0 else "pass"
        if severity in ("critical", "high") and i > 70 and status != "pass":
            status = "pass"  # 10 top failures: more than to be cut to the first screen's share
        check = make_check(f"CHK-{i:03d}", severity, ("sysctl", "process", "ports")[i % 3],
                           title=f"check number {i} with a title long enough to need cutting "
                           "in the first screen's one-line list of failures " * 2, line=i + 1)
        results.append(make_result(
            check, status, message=f"finding of CHK-{i:03d}: expected {'x' * 80}, found "
            f"{'y' * 80}\nsecond line that the one-line finding leaves out"))
    run = make_run("trd-gw-01.a-long-domain-name.example.internal" * 2, results,
                   started="2026-06-02T10:00:00Z")
    before = make_run(run.host.hostname, [make_result(r.check, "pass" if i % 2 else "fail")
                                          for i, r in enumerate(results)])
    return run, before


def test_verdict_failures_score_and_changes_are_on_the_first_screen(open_page: Any) -> None:
    run, before = big_run()
    page = first_screen(open_page, run, "big", before)
    assert page.evaluate("document.documentElement.scrollHeight") > 3 * WINDOW["height"]

    verdict = seen(page, "#verdict")
    assert lines(verdict["text"])[0] == "Not compliant"
    assert verdict["background"] == RED

    # The first failing critical check, by id, title and the first line of its finding.
    first = seen(page, "#top-failures ol.top > li:first-child")
    assert first["text"].split("\n")[:3] == ["critical", "fail", "CHK-000"]
    assert "check number 0 with a title" in first["text"]
    assert "finding of CHK-000: expected xxx" in first["text"]
    assert "second line" not in first["text"]
    shown = page.eval_on_selector_all("#top-failures ol.top > li .id",
                                      "els => els.map(e => e.innerText)")
    assert shown == ["CHK-000", "CHK-015", "CHK-030", "CHK-045", "CHK-060", "CHK-006",
                     "CHK-021", "CHK-036"]  # critical first, then high; policy order within
    seen(page, "#top-failures ol.top > li:last-child")
    assert "2 more failing critical or high checks" in seen(page, "#top-failures .note")["text"]

    score = seen(page, "#score-card")
    assert lines(score["text"]) == ["Hardening score", "85.4%",
                                    "fair: a notable share of the severity weight fails"]
    assert seen(page, "#score")["color"] == AMBER

    changes = seen(page, "#changes")
    assert changes["text"].startswith("Since the baseline of 2026-06-01T10:00:00Z\n")
    assert "newly failing" in changes["text"] and "fixed" in changes["text"]

    # Host identity, policy digests and charts follow the first screen.
    assert top(page, ".facts") > top(page, "#changes")
    assert top(page, ".policy") > top(page, "#changes")
    assert top(page, ".summary") > top(page, ".facts")

    # A failure named on the first screen leads to its check, opened.
    page.click("#top-failures ol.top > li:first-child a")
    assert page.evaluate("location.hash") == "#c0"
    assert page.evaluate("document.getElementById('c0').open") is True


def test_hostile_run_keeps_its_first_screen(open_page: Any) -> None:
    page = first_screen(open_page, hostile_run(), "hostile", hostile_run())
    assert page.evaluate("typeof window.__pwned") == "undefined"
    seen(page, "#verdict")
    first = seen(page, "#top-failures ol.top > li:first-child")
    assert first["text"].split("\n")[:3] == ["critical", "fail", "PROC-001"]
    assert f"forbidden processes running: {SCRIPT}" in first["text"]
    assert seen(page, "#changes")["text"].endswith("no check changed.")


def test_a_compliant_and_an_unevaluated_run_say_so(open_page: Any) -> None:
    passing = make_run("h", [make_result(make_check("A", "critical"), "pass"),
                             make_result(make_check("B", "low"), "not_applicable")])
    page = first_screen(open_page, passing, "compliant")
    verdict = seen(page, "#verdict")
    assert lines(verdict["text"])[:2] == ["Compliant", "1 pass, 0 waived, 1 not applicable; "
                                          "none fails."]
    assert verdict["background"] == GREEN
    assert seen(page, "#score")["color"] == GREEN
    assert page.query_selector("#top-failures") is None

    nothing = make_run("h", [make_result(make_check("A", "critical"), "not_applicable"),
                             make_result(make_check("B", "high"), "not_applicable")])
    page = first_screen(open_page, nothing, "not-evaluated")
    verdict = seen(page, "#verdict")
    assert lines(verdict["text"])[:2] == ["Not evaluated", "no check was evaluated: all 2 "
                                          "checks are not applicable to this host."]
    assert verdict["background"] == GREY
    assert lines(seen(page, "#score-card")["text"])[1:] == [
        "n/a", "none: not scored: no check that weighs passed, failed or errored"]


def test_code_spans_of_the_remediation_render_as_code(open_page: Any) -> None:
    check = make_check("A", "critical", remediation=f"Run `sysctl -w kernel.x=1`, then `{IMG}`; "
                       "a lone ` stays.", rationale="`<b>` is not bold")
    opened = open_page(html.render(make_run("h", [make_result(check, "fail")])), "code.html")
    page = opened.page
    page.click("#c0 > summary")
    codes = page.eval_on_selector_all("#c0 .prose code", "els => els.map(e => e.textContent)")
    assert codes == ["<b>", "sysctl -w kernel.x=1", IMG]
    assert page.eval_on_selector_all("#c0 .prose b, #c0 .prose img", "els => els.length") == 0
    prose = page.eval_on_selector_all("#c0 .prose", "els => els.map(e => e.innerText)")
    assert prose == ["<b> is not bold", f"Run sysctl -w kernel.x=1, then {IMG}; a lone ` stays."]
    opened.quiet()
    assert Page(html.render(make_run("h", [make_result(check, "fail")]))).all("img") == []


# --- the same decisions without a browser ------------------------------------------------------


def test_verdict_of_each_kind_of_run() -> None:
    def run(*statuses: str) -> AuditRun:
        return make_run("h", [make_result(make_check(f"C{i}"), s) for i, s in enumerate(statuses)])

    assert verdict(run("pass", "fail", "not_applicable")).state == "not_compliant"
    assert verdict(run("pass", "error")).detail == (
        "1 of 2 checks fail or could not be evaluated (0 fail, 1 error)")
    assert verdict(run("pass", "waived", "not_applicable")).state == "compliant"
    assert verdict(run("waived")).state == "compliant"  # judged, and the failure is waived
    assert verdict(run("not_applicable", "not_applicable")) == Verdict(
        "not_evaluated", "not evaluated",
        "no check was evaluated: all 2 checks are not applicable to this host")
    assert verdict(run()).detail == "no check was evaluated: the policies hold no check"


def test_score_bands() -> None:
    assert [score_band(v)[0] for v in (100.0, 99.9, 90.0, 89.9, 70.0, 69.9, 0.0, None)] == [
        "excellent", "good", "good", "fair", "fair", "poor", "poor", "none"]


def test_code_spans() -> None:
    assert html.code_spans("run `a` and `b`") == [(False, "run "), (True, "a"),
                                                 (False, " and "), (True, "b")]
    assert html.code_spans("a lone ` stays") == [(False, "a lone ` stays")]
    assert html.code_spans("`x\ny`") == [(False, "`x\ny`")]  # a span stays on one line
    assert html.code_spans("") == [(False, "")]
    body = html.render(make_run("h", [make_result(make_check(
        "A", remediation=f"`{SCRIPT}` then `ok`"), "fail")]))
    assert ("<code>&lt;script&gt;window.__pwned = &#39;script&#39;; alert(1)&lt;/script&gt;"
            "</code> then <code>ok</code>") in body


def test_first_screen_holds_at_most_the_top_limit() -> None:
    run = make_run("h", [make_result(make_check(f"C{i:02d}", "critical"), "fail")
                         for i in range(html.TOP_LIMIT + 3)]
                   + [make_result(make_check("L", "low"), "fail")])
    page = Page(html.render(run))
    assert len([a for a in page.all("a") if a.get("class") == "id"]) == html.TOP_LIMIT
    assert ("3 more failing critical or high checks and 1 failing check of lower severity "
            "under Checks.") in page.plain()
