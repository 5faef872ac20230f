"""The HTML report without a browser: score, drift, escaping, CSP, structure, goldens.

Golden files (``golden/<fixture>.html``) are regenerated with the other formats' goldens::

    UPDATE_GOLDEN=1 pytest tests/report
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
import unicodedata
from pathlib import Path

import pytest
from jinja2 import StrictUndefined, UndefinedError

from agent.report import html
from agent.report import json as json_report
from agent.report.load import load_run
from agent.report.score import drift, evidence_digest, score, weights
from agent.report.writer import FORMATS, write_reports
from agent.result import AuditRun, Evidence
from tests.report.conftest import FIXTURES, NAMES, fixture_data
from tests.report.html_runs import (
    IMG,
    PAYLOADS,
    SCRIPT,
    Page,
    hostile_run,
    make_check,
    make_result,
    make_run,
    make_waiver,
)
from tests.report.runs import gateway_run

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN", "") not in ("", "0")
TEMPLATES = Path(html.__file__).resolve().parent / "templates"


def every_status_run() -> AuditRun:
    return make_run("h", [
        make_result(make_check("C1", "critical"), "pass"),
        make_result(make_check("H1", "high"), "fail"),
        make_result(make_check("M1", "medium"), "error"),
        make_result(make_check("L1", "low"), "waived", waiver=make_waiver("L1"),
                    waived_status="fail"),
        make_result(make_check("I1", "info"), "pass"),
        make_result(make_check("C2", "critical"), "not_applicable"),
    ])


# --- score and drift ---------------------------------------------------------------------------


def test_score_weighs_by_severity_and_leaves_out_waived_and_not_applicable() -> None:
    run = make_run("h", [
        make_result(make_check("C1", "critical"), "pass"),
        make_result(make_check("H1", "high"), "fail"),
        make_result(make_check("M1", "medium"), "error"),
        make_result(make_check("L1", "low"), "waived", waiver=make_waiver("L1"),
                    waived_status="fail"),
        make_result(make_check("I1", "info"), "fail"),
        make_result(make_check("C2", "critical"), "not_applicable"),
    ])
    assert weights(run) == (27, 39)
    assert score(run) == 69.2
    page = Page(html.render(run))
    assert "69.2%" in page.plain()
    assert "100 \u00d7 27 / 39" in page.plain()


def test_score_is_none_when_nothing_weighs() -> None:
    assert score(make_run("h", [])) is None
    run = make_run("h", [make_result(make_check("I1", "info"), "fail"),
                         make_result(make_check("C1", "critical"), "not_applicable")])
    assert (weights(run), score(run)) == ((0, 0), None)
    assert 'id="score">n/a</p>' in html.render(run)


def test_drift_by_check_id() -> None:
    before = make_run("h", [
        make_result(make_check("A"), "fail", "1"), make_result(make_check("B"), "pass"),
        make_result(make_check("C"), "fail", "x"), make_result(make_check("D"), "fail"),
        make_result(make_check("E"), "pass"), make_result(make_check("G"), "error"),
    ])
    after = make_run("h", [
        make_result(make_check("A"), "pass"), make_result(make_check("B"), "error"),
        make_result(make_check("C"), "fail", "y"), make_result(make_check("D"), "waived"),
        make_result(make_check("F"), "fail"), make_result(make_check("H"), "pass"),
    ])
    found = drift(after, before)
    assert [c.id for c in found.newly_failing] == ["B", "F"]
    assert [c.id for c in found.fixed] == ["A"]
    assert [c.id for c in found.status_changed] == ["D"]
    assert [c.id for c in found.evidence_changed] == ["C"]
    assert [c.id for c in found.removed] == ["E", "G"]
    assert found.newly_failing[1].before is None
    assert not found.empty
    assert drift(after, after).empty


def test_evidence_digest_is_canonical() -> None:
    a = Evidence("x", "y", ({"b": 1, "a": [1, 2]},))
    assert evidence_digest(a) == evidence_digest(Evidence("x", "y", ({"a": [1, 2], "b": 1},)))
    assert evidence_digest(a) != evidence_digest(Evidence("x", "y", ({"a": [2, 1], "b": 1},)))
    assert evidence_digest(Evidence("e", "a")) == hashlib.sha256(
        b'{"actual":"a","expected":"e","items":[]}').hexdigest()


def test_drift_section_in_the_page() -> None:
    before = make_run("other", [make_result(make_check("A"), "fail", "1")],
                      started="2026-05-01T00:00:00Z")
    after = make_run("h", [make_result(make_check("A"), "pass", SCRIPT)])
    page = Page(html.render(after, before))
    assert {"drift", "drift-fixed"} <= page.ids()
    assert "drift-newly-failing" not in page.ids()
    assert "Drift since 2026-05-01T00:00:00Z" in page.plain()
    assert "The baseline is of another host." in page.plain()
    assert "drift" not in Page(html.render(after)).ids()


# --- escaping, CSP, structure ------------------------------------------------------------------


def sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.mark.parametrize("render", [lambda: html.render(hostile_run()),
                                    lambda: html.render(hostile_run(), hostile_run())])
def test_hostile_data_cannot_add_markup(render: object) -> None:
    body = render()  # type: ignore[operator]
    page = Page(body)
    assert [t for t, _ in page.tags if t in ("script", "style", "img", "iframe", "object",
                                             "embed", "link", "base", "form")] == [
        "style", "form", "script"]
    assert [(t, k) for t, attrs in page.tags for k in attrs if k.startswith("on")] == []
    assert [a["href"] for a in page.all("a") if not a["href"].startswith("#")] == []
    for payload in PAYLOADS:
        assert payload in page.plain(), payload
    assert "{{" not in body.split("<main>")[0].replace("{{ 7*7 }}", "")  # nothing left unrendered


def test_csp_allows_exactly_the_inline_style_and_script() -> None:
    page = Page(html.render(hostile_run()))
    (meta,) = [m for m in page.all("meta") if m.get("http-equiv") == "Content-Security-Policy"]
    (style,), (script,) = page.inline["style"], page.inline["script"]
    assert meta["content"] == (f"default-src 'none'; style-src {sha(style)}; "
                               f"script-src {sha(script)}; img-src 'none'; base-uri 'none'; "
                               "form-action 'none'")
    names = [t for t, _ in page.tags]
    assert [a for _, a in page.tags].index(meta) == 3 < names.index("style")  # first in <head>
    assert "unsafe" not in meta["content"]
    assert style == (TEMPLATES / "report.css").read_text(encoding="utf-8").rstrip("\n")
    assert script == (TEMPLATES / "report.js").read_text(encoding="utf-8").rstrip("\n")


def test_templates_never_bypass_escaping() -> None:
    env = html.environment()
    assert env.autoescape is True
    assert env.undefined is StrictUndefined
    assert env.from_string("{{ x }}").render(x=IMG) == (
        "&#34;&gt;&lt;img src=x onerror=&#34;window.__pwned = &#39;img&#39;; alert(2)&#34;&gt;")
    with pytest.raises(UndefinedError):
        env.from_string("{{ missing }}").render()
    for path in TEMPLATES.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\|\s*safe|Markup|autoescape\s+false|innerHTML|\son[a-z]+\s*=",
                             text), path.name
    source = Path(html.__file__).read_text(encoding="utf-8")
    assert "Markup" not in source


def test_control_and_bidi_characters_are_shown_as_escapes() -> None:
    body = html.render(load_run(fixture_data("hostile")))
    odd = sorted({c for c in body if unicodedata.category(c) in ("Cc", "Cf", "Cs")} - {"\n"})
    assert odd == []
    assert "\\x1b[31mred\\x1b[0m\\x00nul\\udcffbyte\\u202eevil" in Page(body).plain()


def test_failures_first_then_severity_then_policy_order() -> None:
    page = Page(html.render(every_status_run()))
    rows = [(a["id"], a["data-status"], a["data-rank"], a["data-order"])
            for a in page.all("details")]
    assert rows == [("c1", "fail", "0", "1"), ("c2", "error", "1", "2"),
                    ("c3", "waived", "2", "3"), ("c0", "pass", "3", "0"),
                    ("c4", "pass", "4", "4"), ("c5", "not_applicable", "5", "5")]


def test_readable_without_javascript() -> None:
    page = Page(html.render(every_status_run()))
    (form,) = page.all("form")
    assert form["id"] == "filters" and "hidden" in form  # shown by the script only
    assert len(page.all("details")) == 6  # every check there, expandable natively


def test_evidence_table_columns_and_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    table = html.item_table([{"pid": 1, "name": "a"}, {"name": "b", "caps": ["X", "Y"],
                                                       "user": None, "ok": True}])
    assert table == {"columns": ["pid", "name", "caps", "user", "ok"],
                     "rows": [["1", "a", "", "", ""], ["", "b", '["X", "Y"]', "", "true"]],
                     "more": 0}
    monkeypatch.setattr(html, "ITEM_LIMIT", 2)
    items = [{"n": i} for i in range(5)]
    assert html.item_table(items)["more"] == 3
    run = make_run("h", [make_result(make_check("A"), "fail", items=items)])
    assert "3 more rows in the JSON result." in Page(html.render(run)).plain()


def test_waiver_and_location_in_the_row() -> None:
    text = Page(html.render(every_status_run())).plain()
    assert ("Covers a fail verdict; expires after 2026-12-31; written at "
            "policies/p.yaml:90.") in text
    assert "Policy p, policies/p.yaml:1; evaluated in 1.5 ms." in text


# --- off the host, goldens, writer -------------------------------------------------------------


def test_rendering_off_the_host_equals_rendering_on_it(tmp_path: Path) -> None:
    live = gateway_run(tmp_path)
    assert html.render(load_run(json_report.as_dict(live))) == html.render(live)


@pytest.mark.parametrize("name", NAMES)
def test_golden(name: str) -> None:
    actual = html.render(load_run(fixture_data(name)))
    path = GOLDEN / f"{name}.html"
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8"), f"{path.name}: UPDATE_GOLDEN=1 pytest"
    assert (FIXTURES / f"{name}.json").is_file()


def test_writer_writes_html(tmp_path: Path) -> None:
    assert FORMATS["html"] == ("html", html.render)
    (path,) = write_reports(load_run(fixture_data("gateway")), ["html"], tmp_path)
    assert path.name == "trd-gw-01-20260601T083000Z.html"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_text(encoding="utf-8") == (GOLDEN / "gateway.html").read_text(
        encoding="utf-8")
