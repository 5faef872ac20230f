"""The HTML report and fleet page in a real browser: headless Chromium driven by Playwright.

One browser per module. Each page is opened from a file:// URL with an init script that records
CSP violations (init scripts are not subject to the page's CSP); the payload strings in the
host data try to set ``window.__pwned`` and open dialogs.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent.report import fleet, html
from tests.report.html_runs import (
    PAYLOADS,
    SCRIPT,
    hostile_run,
    make_check,
    make_result,
    make_run,
)
from tests.support import PROJECT, need

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
ARTIFACTS = PROJECT / "reports" / "test-artifacts"
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI);
});
"""

try:
    from playwright.sync_api import Browser, Dialog, Page, sync_playwright
except ImportError:  # need() below turns this into a skip locally and a failure in CI
    sync_playwright = None  # type: ignore[assignment]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    need(sync_playwright is not None, "playwright is not installed (pip install playwright)")
    need(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Opened:
    page: Page
    url: str
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def quiet(self) -> None:
        """Nothing but the file itself was requested, no dialog, no console error, no CSP
        violation."""
        assert self.requests == [self.url]
        assert self.dialogs == []
        assert self.console == []
        assert self.page.evaluate("window.__violations") == []


@pytest.fixture
def open_page(browser: Browser, tmp_path: Path) -> Iterator[Any]:
    contexts = []

    def opener(body: str, name: str, javascript: bool = True, load_s: float = 30) -> Opened:
        path = tmp_path / name
        path.write_text(body, encoding="utf-8")
        context = browser.new_context(java_script_enabled=javascript,
                                      viewport={"width": 1400, "height": 1000})
        contexts.append(context)
        context.add_init_script(RECORD_VIOLATIONS)
        page = context.new_page()
        # Filtering a large page on a shared CPU can take as long as loading it: one bound.
        page.set_default_timeout(load_s * 1000)
        opened = Opened(page, path.as_uri())
        page.on("request", lambda r: opened.requests.append(r.url))
        def dialog(d: Dialog) -> None:
            opened.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)
        page.on("console", lambda m: opened.console.append(f"{m.type}: {m.text}")
                if m.type in ("error", "warning") else None)
        page.goto(opened.url, timeout=load_s * 1000)  # a bound, not a speed goal
        page.wait_for_load_state("load")
        return opened

    yield opener
    for context in contexts:
        context.close()


def visible_ids(page: Page) -> list[str]:
    ids: list[str] = page.eval_on_selector_all(
        "#checks details.check:not([hidden]) .id", "els => els.map(e => e.textContent)")
    return ids


def test_hostile_report_runs_nothing_shows_everything_and_filters(open_page: Any) -> None:
    opened = open_page(html.render(hostile_run()), "hostile.html")
    page = opened.page
    page.click("#expand")
    opened.quiet()
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    assert page.evaluate("document.scripts.length") == 1
    text = page.inner_text("body")
    for payload in PAYLOADS:
        assert payload in text, payload
    assert page.title().startswith(f"hostguard report: trd-{SCRIPT} at ")

    # Failures first, then severity; every row shown before filtering.
    assert visible_ids(page) == ["PROC-001", "LAT-001", "KRN-009", "NET-001", "KRN-001",
                                 "CG-001"]
    assert page.inner_text("#shown") == "6 of 6 checks shown"
    page.select_option("#f-status", "fail")
    assert visible_ids(page) == ["PROC-001", "LAT-001"]
    page.select_option("#f-status", "failing")
    assert visible_ids(page) == ["PROC-001", "LAT-001", "KRN-009"]
    page.select_option("#f-severity", "critical")
    assert visible_ids(page) == ["PROC-001"]
    page.select_option("#f-status", "")
    page.select_option("#f-severity", "")
    page.select_option("#f-kind", "ports")
    assert visible_ids(page) == ["NET-001"]
    page.select_option("#f-kind", "")
    page.fill("#f-text", "TELNETD")  # searches evidence too, case-insensitively
    assert visible_ids(page) == ["PROC-001"]
    page.fill("#f-text", "{{ 7*7 }}")
    assert visible_ids(page) == ["PROC-001", "LAT-001"]
    page.press("#f-text", "Enter")  # the form never submits (form-action 'none')
    page.fill("#f-text", "")
    assert page.inner_text("#shown") == "6 of 6 checks shown"
    page.select_option("#f-order", "order")
    assert visible_ids(page) == ["KRN-001", "PROC-001", "LAT-001", "KRN-009", "NET-001",
                                 "CG-001"]

    # Evidence table: columns from the items' keys, the payload key among them.
    headers = page.eval_on_selector_all("#c1 table.evidence th",
                                        "els => els.map(e => e.textContent)")
    assert headers == ["pid", "name", "user", "uid", "cmdline", SCRIPT]
    page.select_option("#f-order", "rank")
    opened.quiet()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000


def test_readable_without_javascript_and_printable(open_page: Any, tmp_path: Path) -> None:
    opened = open_page(html.render(hostile_run()), "nojs.html", javascript=False)
    page = opened.page
    assert page.is_hidden("#filters")
    assert len(visible_ids(page)) == 6
    assert not page.is_visible("#c1 .message")  # collapsed until clicked
    page.click("#c1 > summary")
    assert page.is_visible("#c1 .message")
    page.emulate_media(media="print")
    assert page.is_visible("#c2 .message")  # print shows every check's details
    pdf = page.pdf(path=str(tmp_path / "report.pdf"))
    assert pdf.startswith(b"%PDF")
    assert opened.requests == [opened.url]
    assert opened.dialogs == []


def test_drift_section(open_page: Any) -> None:
    before = make_run("h", [make_result(make_check("A"), "fail", "1"),
                            make_result(make_check("B"), "pass")])
    after = make_run("h", [make_result(make_check("A"), "pass"),
                           make_result(make_check("B"), "fail", SCRIPT)],
                     started="2026-06-02T10:00:00Z")
    opened = open_page(html.render(after, before), "drift.html")
    opened.quiet()
    assert opened.page.inner_text("#drift-newly-failing") == "Newly failing (1)"
    assert opened.page.inner_text("#drift-fixed") == "Fixed (1)"
    assert SCRIPT in opened.page.inner_text("#drift")


def test_fleet_page(open_page: Any) -> None:
    runs = [make_run(name, [make_result(make_check("A", "critical"), a),
                            make_result(make_check("B", "low"), b)])
            for name, a, b in (("good", "pass", "pass"), (SCRIPT, "fail", "pass"),
                               ("mid", "pass", "fail"))]
    opened = open_page(fleet.render(runs), "fleet.html")
    page = opened.page
    opened.quiet()
    assert page.evaluate("typeof window.__pwned") == "undefined"
    hosts = page.eval_on_selector_all("#matrix tbody th", "els => els.map(e => e.innerText)")
    assert hosts == [SCRIPT, "mid", "good"]
    cells = page.eval_on_selector_all("#matrix tbody tr", "rows => rows.map(r => "
                                      "Array.from(r.cells).slice(1).map(c => c.innerText))")
    assert cells == [["3.6", "\u2717", "\u2713"], ["96.4", "\u2713", "\u2717"],
                     ["100.0", "\u2713", "\u2713"]]
    page.click("#matrix tbody tr:first-child td.c a")
    assert page.evaluate("location.hash") == "#h0-0"
    page.check("#f-failing")
    assert page.inner_text("#shown") == "2 of 3 hosts, 2 of 2 checks shown"
    page.fill("#f-host", "mi")
    assert page.inner_text("#shown") == "1 of 3 hosts, 2 of 2 checks shown"
    page.fill("#f-host", "")
    page.uncheck("#f-failing")
    assert page.inner_text("#shown") == "3 of 3 hosts, 2 of 2 checks shown"
    opened.quiet()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "fleet.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 5_000


SEVERITIES = ("critical", "high", "medium", "low", "info")
KINDS = ("sysctl", "process", "ports", "mount", "kernel_cmdline")


def large_fleet(hosts: int, checks: int) -> str:
    """A fleet page of ``hosts`` x ``checks`` (the real Fleet; one run built at a time). Host i
    fails each check with a chance growing with i, so the worst hosts are the last built; one
    hostname carries the script payload."""
    rng = random.Random(18)
    defined = [make_check(f"FLEET-CHECK-{i:03d}", SEVERITIES[i % 5], KINDS[i % 5])
               for i in range(checks)]
    page = fleet.Fleet()
    for h in range(hosts):
        fails = 0.02 + 0.3 * h / hosts
        results = []
        for check in defined:
            roll = rng.random()
            status = ("fail" if roll < fails else "error" if roll < fails + 0.02 else
                      "not_applicable" if roll > 0.97 else "pass")
            results.append(make_result(check, status))
        name = SCRIPT if h == hosts // 2 else f"trd-{h:04d}"
        page.add(make_run(name, results))
    return page.render()


def test_fleet_page_at_scale_loads_and_filters(open_page: Any) -> None:
    # An 18 MB page: loading it is bounded generously, since the CPU may be shared.
    opened = open_page(large_fleet(1000, 200), "fleet-large.html", load_s=300)
    page = opened.page
    opened.quiet()
    assert page.evaluate("typeof window.__pwned") == "undefined"
    # The verdict is on the first screen; the page never grows sideways.
    box = page.locator("#verdict").bounding_box()
    assert box is not None and box["y"] + box["height"] <= 1000
    assert page.inner_text("#verdict").startswith("Not compliant: 1000 of 1000 hosts fail")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    # Worst first: the worst hosts list and the matrix open with the last hosts built.
    worst = page.eval_on_selector_all("#worst tbody td:first-child",
                                      "els => els.map(e => e.innerText)")
    first = page.eval_on_selector_all("#matrix tbody th", "els => els.map(e => e.innerText)")
    assert len(first) == 1000 and worst == first[:10]
    assert all(name >= "trd-0500" for name in worst)  # those that fail most often
    scores = page.eval_on_selector_all("#matrix tbody td.score",
                                       "els => els.map(e => parseFloat(e.innerText))")
    assert len(scores) == 1000 and scores == sorted(scores)
    fails = page.eval_on_selector_all("#checks tbody td:nth-child(5)",
                                      "els => els.map(e => parseInt(e.innerText))")
    assert fails == sorted(fails, reverse=True)
    # Cells say their status by colour too; check ids do not wrap.
    colours = page.evaluate("""() => ['fail', 'pass', 'error'].map(s => getComputedStyle(
        document.querySelector('#matrix td.c.s-' + s)).backgroundColor)""")
    assert len(set(colours)) == 3 and "rgba(0, 0, 0, 0)" not in colours
    assert page.evaluate("getComputedStyle(document.querySelector('td.id')).whiteSpace") == (
        "nowrap")
    # A host's table lists its most severe checks first.
    ranks = page.eval_on_selector_all("#h0 tbody tr", "rows => rows.map(r => "
                                      "r.getAttribute('data-severity'))")
    assert ranks and ranks == sorted(ranks, key=SEVERITIES.index)
    # Headers stay in view when the matrix scrolls.
    page.evaluate("document.querySelector('.matrix-box').scrollTop = 5000")
    top = page.evaluate("""() => document.querySelector('#matrix table.head')
        .getBoundingClientRect().top -
        document.querySelector('.matrix-box').getBoundingClientRect().top""")
    assert abs(top) <= 2
    assert page.evaluate("document.querySelector('.matrix-box').scrollTop") > 4000
    assert page.inner_text("#shown") == "1000 of 1000 hosts, 200 of 200 checks shown"
    head_width = "document.querySelector('#matrix table.head').getBoundingClientRect().width"
    width = page.evaluate(head_width)
    page.select_option("#f-severity", "critical")
    assert page.inner_text("#shown") == "1000 of 1000 hosts, 40 of 200 checks shown"
    narrower = page.evaluate(head_width)
    assert narrower < width / 3  # the other columns collapsed
    assert page.evaluate("""() => Array.from(document.querySelectorAll('#h0 tbody tr'))
        .filter(r => !r.hidden).every(r => r.getAttribute('data-severity') === 'critical')""")
    page.select_option("#f-kind", "process")
    assert page.inner_text("#shown") == "1000 of 1000 hosts, 0 of 200 checks shown"
    page.select_option("#f-severity", "high")
    assert page.inner_text("#shown") == "1000 of 1000 hosts, 40 of 200 checks shown"
    page.fill("#f-host", "trd-099")
    assert page.inner_text("#shown") == "10 of 1000 hosts, 40 of 200 checks shown"
    page.fill("#f-host", "script>")
    assert page.inner_text("#shown") == "1 of 1000 hosts, 40 of 200 checks shown"
    assert page.inner_text("#matrix tbody tr:not([hidden]) th") == SCRIPT
    opened.quiet()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.fill("#f-host", "")
    page.select_option("#f-kind", "")
    page.select_option("#f-severity", "")
    page.evaluate("document.querySelector('.matrix-box').scrollTop = 0; scrollTo(0, 0)")
    shot = ARTIFACTS / "fleet-large.png"
    page.screenshot(path=str(shot))
    print(f"screenshot: {shot}")


def test_many_checks_for_few_hosts_stay_in_the_page(open_page: Any) -> None:
    # 68 checks for 3 hosts once pushed the page sideways; now the matrix scrolls in its box.
    defined = [make_check(f"KRN-{i:03d}", SEVERITIES[i % 5]) for i in range(68)]
    runs = [make_run(f"host-{h}", [make_result(c, "fail" if (i + h) % 4 == 0 else "pass")
                                   for i, c in enumerate(defined)]) for h in range(3)]
    opened = open_page(fleet.render(runs), "fleet-wide.html")
    page = opened.page
    opened.quiet()
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    box = page.evaluate("""() => { const b = document.querySelector('.matrix-box');
        return [b.scrollWidth > b.clientWidth, b.getBoundingClientRect().right <= innerWidth]; }""")
    assert box == [True, True]


def test_csp_is_enforced(open_page: Any) -> None:
    # Positive control: markup that did get in could neither run nor load anything, and the
    # recorders used above do see such attempts.
    opened = open_page(html.render(hostile_run()), "csp.html")
    opened.page.evaluate("""() => {
      const s = document.createElement("script");
      s.textContent = "window.__pwned = 'injected'";
      document.body.appendChild(s);
      const img = document.createElement("img");
      img.src = "https://example.invalid/x.png";
      document.body.appendChild(img);
      const div = document.createElement("div");
      div.setAttribute("onclick", "window.__pwned = 'handler'");
      document.body.appendChild(div);
      div.click();
    }""")
    page = opened.page
    page.wait_for_function("window.__violations.length >= 3")
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert sorted(page.evaluate("window.__violations")) == [
        "img-src https://example.invalid/x.png", "script-src-attr inline",
        "script-src-elem inline"]
    # The recorder sees even a blocked attempt: the other tests' `requests == [url]` is strict.
    assert opened.requests == [opened.url, "https://example.invalid/x.png"]
