"""The fleet page and ``hostguard report merge``."""

from __future__ import annotations

import dataclasses
import json
import re
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from agent.cli.report import PARALLEL_FROM
from agent.report import fleet
from agent.report import json as json_report
from agent.report.load import ResultLoadError, load_run
from agent.result import AuditRun
from tests.report.html_runs import (
    CLOSE,
    IMG,
    SCRIPT,
    TEMPLATE,
    Page,
    hostile_run,
    make_check,
    make_result,
    make_run,
    make_waiver,
)
from tests.support import run_cli


def three_hosts() -> list[AuditRun]:
    def run(name: str, a: str, b: str, c: str | None = "pass", started: str = "2026-06-01T10:00:00Z"
            ) -> AuditRun:
        results = [make_result(make_check("A", "critical"), a),
                   make_result(make_check("B", "low"), b, waiver=make_waiver("B")
                               if b == "waived" else None, waived_status="fail"
                               if b == "waived" else None)]
        if c is not None:
            results.append(make_result(make_check("C", "medium"), c))
        return make_run(name, results, started=started)

    return [run("good", "pass", "pass"), run(SCRIPT, "fail", "waived", None),
            run("mid", "pass", "fail", "error"),
            run("mid", "fail", "fail", "fail", started="2026-05-01T10:00:00Z")]


def written(folder: Path, runs: Iterable[AuditRun]) -> list[str]:
    """Each run as a result file ``rN.json`` in ``folder``, as ``report merge`` reads them."""
    paths = []
    for i, run in enumerate(runs):
        path = folder / f"r{i}.json"
        path.write_text(json_report.render(run), encoding="utf-8")
        paths.append(str(path))
    return paths


def cells(page: Page) -> list[list[str]]:
    """Matrix rows as [host, score, cell classes...] from the parsed page."""
    out: list[list[str]] = []
    inside = False
    for tag, attrs in page.tags:
        if tag == "div" and "matrix-box" in attrs.get("class", ""):
            inside = True
        elif tag == "section":
            inside = False
        if inside and tag == "tr" and "data-host" in attrs:
            out.append([attrs["data-host"]])
        elif inside and tag == "td" and out and "c" in attrs.get("class", "").split():
            out[-1].append(attrs["class"].removeprefix("c").strip() or "-")
    return out


def test_hosts_by_score_checks_by_failures_and_cells() -> None:
    body = fleet.render(three_hosts())
    page = Page(body)
    # Scores: SCRIPT 0/27 -> 0.0 (B waived, no C); mid 27/31 -> 87.1; good 100.0.
    assert cells(page) == [[SCRIPT, "s-fail", "s-waived", "-"],
                           ["mid", "s-pass", "s-fail", "s-error"],
                           ["good", "s-pass", "s-pass", "s-pass"]]
    text = page.plain()
    assert "0.0" in text and "87.1" in text
    # Columns by failing hosts, then errors, then severity: A (1 fail, critical),
    # B (1 fail, low), C (no fail, 1 error).
    assert re.findall(r'<th class="check" scope="col" title="[^"]*" data-severity="[a-z]*" '
                      r'data-kind="[a-z]*"><a href="#k\d">([^<]*)</a>', body) == [
        "A", "B", "C"]
    heads = [a["href"] for a in page.all("a") if a["href"].startswith("#k")]
    assert heads == ["#k0", "#k1", "#k2"] * 2  # the most failed checks, then the matrix
    rows = [a["id"] for _, a in page.tags if a.get("id", "").startswith("k")]
    assert rows == ["k0", "k1", "k2"]
    assert "Lowest 0.0, median 87.1" in text
    assert ("Not compliant: 2 of 3 hosts fail or could not evaluate a check; 1 fail a critical "
            "one.") in text
    assert "superseded by a later one: mid (2026-05-01T10:00:00Z)." in text
    # Every link resolves inside the page; failing cells link to the host's row for the check.
    links = [a["href"] for a in page.all("a")]
    assert all(href.startswith("#") for href in links)
    assert {href[1:] for href in links} <= page.ids()
    assert "#h0-0" in links and "#h1-1" in links and "#h1-2" in links


def test_failure_counts_per_check() -> None:
    body = fleet.render(three_hosts())
    foot = body.split("<tfoot>", 1)[1].split("</tfoot>", 1)[0]
    assert foot.count("<td>1</td>") == 2 and foot.count("<td>0</td>") == 1
    assert ('<tr id="k2" data-severity="medium" data-kind="sysctl"><td class="id"><code>C</code>'
            '</td><td>check C</td><td>sysctl</td><td class="sev-medium">medium</td><td>0</td>'
            '<td>1</td><td>0</td><td>2</td></tr>') in body


def test_a_check_failing_alike_on_many_hosts_shows_each_hosts_own_row() -> None:
    # A row is rendered once per distinct row (fleet._row): the same failure on two hosts is
    # one row twice, and any difference (here the value found) is a row of its own.
    check = make_check("A", "high")
    runs = [make_run(f"h{i}", [make_result(check, "fail", actual)])
            for i, actual in enumerate(["0", "0", "<b>1</b>"])]
    rows = re.findall(r'<tr id="h\d-0" data-severity[^>]*>.*?</tr>', fleet.render(runs))
    assert [re.findall(r"<td>([^<]*)</td></tr>$", row) for row in rows] == [
        ["0"], ["0"], ["&lt;b&gt;1&lt;/b&gt;"]]


def test_an_empty_fleet_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one result"):
        fleet.render([])


def test_merge_command(tmp_path: Path) -> None:
    paths = written(tmp_path, three_hosts())
    out = tmp_path / "out" / "fleet.html"
    done = run_cli("report", "merge", *paths, "-o", str(out))
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"wrote {out} (fleet page of 3 host(s) from 4 result(s))\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert out.read_text(encoding="utf-8") == fleet.render(three_hosts())


def test_merge_names_every_unusable_file_and_writes_nothing(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json_report.render(three_hosts()[0]), encoding="utf-8")
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    out = tmp_path / "fleet.html"
    done = run_cli("report", "merge", str(good), str(bad), str(tmp_path / "none.json"),
                   "-o", str(out))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"hostguard: {bad}: not JSON: ")
    missing = tmp_path / "none.json"
    assert lines[1] == f"hostguard: {missing}: cannot read: No such file or directory"
    assert not out.exists()


def test_render_html_with_baseline(tmp_path: Path) -> None:
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    before.write_text(json_report.render(make_run("h", [make_result(make_check("A"), "pass")])),
                      encoding="utf-8")
    after.write_text(json_report.render(make_run("h", [make_result(make_check("A"), "fail")])),
                     encoding="utf-8")
    done = run_cli("report", "render", str(after), "--format", "html", "--baseline", str(before))
    assert (done.returncode, done.stderr) == (0, "")
    assert "drift-newly-failing" in Page(done.stdout).ids()


def machine(run: AuditRun, machine_id: str | None, hostname: str = "unknown") -> AuditRun:
    host = dataclasses.replace(run.host, hostname=hostname, machine_id=machine_id)
    return dataclasses.replace(run, host=host)


def test_hosts_of_one_name_are_told_apart_by_machine_id(tmp_path: Path) -> None:
    # Two hosts whose hostname could not be read: two rows, nothing superseded.
    a, b, c = three_hosts()[:3]
    runs = [machine(a, "1111"), machine(b, "2222", hostname="unknown"), machine(c, "3333", "mid")]
    page = Page(fleet.render(runs))
    assert [row[0] for row in cells(page)] == [
        "unknown (machine 2222)", "mid", "unknown (machine 1111)"]
    assert "superseded" not in page.plain()
    paths = written(tmp_path, runs)
    out = tmp_path / "fleet.html"
    done = run_cli("report", "merge", *paths, "-o", str(out))
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"wrote {out} (fleet page of 3 host(s) from 3 result(s))\n"


def test_one_machine_twice_is_superseded_and_no_machine_id_is_never_merged() -> None:
    old, new = (machine(make_run("x", [make_result(make_check("A"), status)], started=started),
                        "1111")
                for status, started in (("fail", "2026-05-01T10:00:00Z"),
                                        ("pass", "2026-06-01T10:00:00Z")))
    page = Page(fleet.render([new, old]))
    assert cells(page) == [["unknown", "s-pass"]]
    assert "superseded by a later one: unknown (2026-05-01T10:00:00Z)." in page.plain()
    # Without a machine id nothing shows two results are of one host: both are shown.
    page = Page(fleet.render([machine(new, None), machine(old, None)]))
    assert cells(page) == [["unknown (no machine id, 2026-05-01T10:00:00Z)", "s-fail"],
                           ["unknown (no machine id, 2026-06-01T10:00:00Z)", "s-pass"]]
    assert "superseded" not in page.plain()


def test_a_large_merge_reads_in_workers_and_writes_the_same_page(tmp_path: Path) -> None:
    # From PARALLEL_FROM files on (and with two CPUs or more) the files are read by worker
    # processes: the page is the one rendered in process, unusable files named in order.
    runs = [machine(run, f"{i:04d}", f"h{i}") for i, run in
            enumerate(three_hosts()[:3] * (PARALLEL_FROM // 3 + 1))]
    paths = written(tmp_path, runs)
    out = tmp_path / "fleet.html"
    done = run_cli("report", "merge", *paths, "-o", str(out))
    assert (done.returncode, done.stderr) == (0, "")
    n = len(runs)
    assert done.stdout == f"wrote {out} (fleet page of {n} host(s) from {n} result(s))\n"
    assert out.read_text(encoding="utf-8") == fleet.render(runs)
    bad = tmp_path / "bad.json"
    bad.write_text("[]", encoding="utf-8")
    done = run_cli("report", "merge", paths[0], str(bad), *paths[1:], str(tmp_path / "none.json"),
                   "-o", str(tmp_path / "not-written.html"))
    assert done.returncode == 2
    assert [line.split(": ")[1] for line in done.stderr.splitlines()] == [
        str(bad), str(tmp_path / "none.json")]
    assert not (tmp_path / "not-written.html").exists()


def test_a_merge_refuses_what_load_run_refuses_with_its_words(tmp_path: Path) -> None:
    # The page reads each validated document without rebuilding its run: the same validation
    # (load.validate) refuses forged definitions, edited summaries and impossible dates, in the
    # workers as in process, naming the file and the JSON path.
    runs = [machine(run, f"{i:04d}", f"h{i}") for i, run in
            enumerate(three_hosts()[:3] * (PARALLEL_FROM // 3 + 1))]
    paths = written(tmp_path, runs)
    edits: dict[str, Callable[[dict[str, Any]], object]] = {
        "forged": lambda d: d["results"][0]["location"].update(line=True),
        "summary": lambda d: d["summary"].update(fail=d["summary"]["fail"] + 1),
        "date": lambda d: d["results"][1]["waiver"].update(expires="2026-02-30"),
    }
    expected = []
    for name, edit in edits.items():
        data = json.loads(Path(paths[1]).read_text(encoding="utf-8"))
        edit(data)
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        with pytest.raises(ResultLoadError) as caught:
            load_run(data)
        expected.append(f"hostguard: {path}: {caught.value}")
    assert [line.split(": ", 2)[2] for line in expected] == [
        "invalid hostguard/result/v1 document: $.results[0].location.line: True is not of type "
        "'integer'",
        "invalid hostguard/result/v1 document: $.summary.fail: 2, but the results hold 1",
        "invalid hostguard/result/v1 document: $.results[1].waiver.expires: '2026-02-30' is not "
        "a date"]
    bad = [str(tmp_path / f"{name}.json") for name in edits]
    for files in ([paths[0], *bad], [*paths, *bad]):  # in process, then in workers
        done = run_cli("report", "merge", *files, "-o", str(tmp_path / "not-written.html"))
        assert (done.returncode, done.stderr.splitlines()) == (2, expected)
    assert not (tmp_path / "not-written.html").exists()


def test_host_sections_rendered_in_workers_show_hostile_data_as_text(tmp_path: Path) -> None:
    # A host's section is rendered in the worker that read its result: every field of it comes
    # from the host or its policy, and each shows literally, nothing of it markup or control.
    hostile = hostile_run()
    host = dataclasses.replace(hostile.host, kernel_release=IMG, boot_id=f"{CLOSE}\x1b[31m")
    policies = (dataclasses.replace(hostile.policies[0], name=TEMPLATE),)
    runs = [machine(dataclasses.replace(hostile, host=host, policies=policies), f"{i:04d}",
                    f"h{i}") for i in range(PARALLEL_FROM)]
    paths = written(tmp_path, runs)
    out = tmp_path / "fleet.html"
    done = run_cli("report", "merge", *paths, "-o", str(out))
    assert (done.returncode, done.stderr) == (0, "")
    body = out.read_text(encoding="utf-8")
    assert body == fleet.render(runs)
    page = Page(body)
    assert page.all("img") == [] and len(page.all("script")) == 1
    assert "\x1b" not in body and "{{" not in page.inline["script"][0]
    text = page.plain()
    assert "<p>" not in text and "<td" not in text  # the pieces are not escaped twice either
    assert text.count(f"Kernel {IMG}, boot id {CLOSE}\\x1b[31m") == len(runs)
    assert text.count(f"policy {TEMPLATE}, digest") == len(runs)
    assert text.count(f"forbidden processes running: {SCRIPT}") == len(runs)
    assert text.count(f"no {IMG}") == len(runs) + 2  # and in the two tables of checks


def test_a_check_is_named_as_the_first_file_names_it_when_read_in_workers(tmp_path: Path
                                                                           ) -> None:
    # Each worker names a check to the page once; the page still names it as the first file
    # (in the order given) does, whichever worker read that file.
    runs = [machine(make_run("x", [make_result(make_check("A", title=f"A as file {i} names it"),
                                               "fail")]), f"{i:04d}", f"h{i}")
            for i in range(4 * PARALLEL_FROM)]
    paths = written(tmp_path, runs)
    for order in (paths, paths[::-1]):
        out = tmp_path / "fleet.html"
        done = run_cli("report", "merge", *order, "-o", str(out))
        assert (done.returncode, done.stderr) == (0, "")
        first = int(Path(order[0]).stem[1:])
        body = out.read_text(encoding="utf-8")
        assert body == fleet.render([runs[int(Path(p).stem[1:])] for p in order])
        # Each host's section has its own result's title; the tables of checks the first one.
        assert body.count(f"A as file {first} names it") == 3
        assert all(body.count(f"A as file {i} names it") == 1
                   for i in range(len(runs)) if i != first)
