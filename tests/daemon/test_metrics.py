"""Prometheus textfile metrics: exact output, prometheus_client's own parser, hostile host data,
atomic replacement and the file mode."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import stat
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.daemon import metrics
from agent.daemon.enforce import Tally
from agent.daemon.metrics import escape_label, render, write_textfile
from agent.daemon.resources import Usage, Watch
from agent.policy.resolve import resolve
from agent.result import AuditRun, Status
from tests.authoring import TRADING_ROOT, check, policy, sysctl, write

TODAY = dt.date(2026, 6, 1)
DIGEST = "ab" * 32


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> AuditRun:
    """fail, pass, error, waived, not applicable -- one check each."""
    from agent import audit  # noqa: PLC0415

    checks = [sysctl("KRN-001", "kernel.kptr_restrict", "ge", 3),
              sysctl("LAT-001", "vm.swappiness", "eq", 1),
              sysctl("KRN-009", "kernel.sysrq", "eq", 0),
              check("LAT-010", "sysfs", {"path": "kernel/mm/transparent_hugepage/enabled",
                                         "value": "always"}, severity="medium"),
              sysctl("NET-001", "net.ipv4.ip_forward", "eq", 0, ),
              ]
    path = write(tmp_path_factory.mktemp("p") / "p.yaml", policy("metrics", checks))
    policy_set = resolve([path], TODAY)
    assert policy_set.diagnostics == []
    done = audit.run(policy_set, TRADING_ROOT, today=TODAY)
    results = list(done.results)
    results[3] = dataclasses.replace(results[3], status=Status.WAIVED)
    results[4] = dataclasses.replace(results[4], status=Status.NOT_APPLICABLE)
    assert [r.status for r in results] == [Status.FAIL, Status.PASS, Status.ERROR, Status.WAIVED,
                                           Status.NOT_APPLICABLE]
    return dataclasses.replace(done, results=tuple(results), started="2026-11-24T19:30:00Z",
                               duration_ms=412.5, policy_digest=DIGEST, tool_version="0.1.0")


EXPECTED = f"""\
# HELP hostguard_check_status Status of each check: 0 pass, 1 fail, 2 error, 3 waived, 4 not \
applicable.
# TYPE hostguard_check_status gauge
hostguard_check_status{{id="KRN-001",kind="sysctl",severity="high"}} 1
hostguard_check_status{{id="LAT-001",kind="sysctl",severity="high"}} 0
hostguard_check_status{{id="KRN-009",kind="sysctl",severity="high"}} 2
hostguard_check_status{{id="LAT-010",kind="sysfs",severity="medium"}} 3
hostguard_check_status{{id="NET-001",kind="sysctl",severity="high"}} 4
# HELP hostguard_checks Checks per status in the last audit.
# TYPE hostguard_checks gauge
hostguard_checks{{status="pass"}} 1
hostguard_checks{{status="fail"}} 1
hostguard_checks{{status="error"}} 1
hostguard_checks{{status="waived"}} 1
hostguard_checks{{status="not_applicable"}} 1
# HELP hostguard_audit_errors Checks the last audit could not evaluate.
# TYPE hostguard_audit_errors gauge
hostguard_audit_errors 1
# HELP hostguard_score Hardening score in percent, weighted by severity (NaN when nothing weighs).
# TYPE hostguard_score gauge
hostguard_score 33.3
# HELP hostguard_last_run_timestamp_seconds Start of the last audit, Unix time.
# TYPE hostguard_last_run_timestamp_seconds gauge
hostguard_last_run_timestamp_seconds 1795548600
# HELP hostguard_audit_duration_seconds Wall time of the last audit.
# TYPE hostguard_audit_duration_seconds gauge
hostguard_audit_duration_seconds 0.4125
# HELP hostguard_policy_info The policy in force (digest over its files).
# TYPE hostguard_policy_info gauge
hostguard_policy_info{{digest="{DIGEST}"}} 1
# HELP hostguard_host_info The audited host as the audit saw it.
# TYPE hostguard_host_info gauge
hostguard_host_info{{hostname="trd-gw-01",kernel="6.1.0-18-amd64",version="0.1.0"}} 1
"""

# The text format, strictly: comment lines as written here, samples without timestamps.
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"({_NAME})(?:\{{{_LABEL}(?:,{_LABEL})*\}})? "
                    r"(?:NaN|[+-]Inf|-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)")
COMMENT = re.compile(rf"# (?:HELP {_NAME} [^\n]*|TYPE {_NAME} gauge)")


def strict_lines(text: str) -> None:
    assert text.endswith("\n") and "\r" not in text
    names = []
    for line in text[:-1].split("\n"):
        if line.startswith("#"):
            assert COMMENT.fullmatch(line), line
            continue
        match = SAMPLE.fullmatch(line)
        assert match, line
        names.append(match.group(1))
    assert len(set(text.splitlines())) == len(text.splitlines())  # no duplicate series


def test_exact_output(run: AuditRun) -> None:
    assert render(run) == EXPECTED
    strict_lines(EXPECTED)
    start = dt.datetime(2026, 11, 24, 19, 30, tzinfo=dt.UTC).timestamp()
    assert start == 1795548600


def test_prometheus_client_parses_it(run: AuditRun) -> None:
    families = {f.name: f for f in text_string_to_metric_families(render(run))}
    assert sorted(families) == sorted([
        "hostguard_check_status", "hostguard_checks", "hostguard_audit_errors", "hostguard_score",
        "hostguard_last_run_timestamp_seconds", "hostguard_audit_duration_seconds",
        "hostguard_policy_info", "hostguard_host_info"])
    assert all(f.type == "gauge" for f in families.values())
    statuses = {s.labels["id"]: s.value for s in families["hostguard_check_status"].samples}
    assert statuses == {"KRN-001": 1, "LAT-001": 0, "KRN-009": 2, "LAT-010": 3, "NET-001": 4}
    assert [s.value for s in families["hostguard_score"].samples] == [33.3]
    assert families["hostguard_host_info"].samples[0].labels == {
        "hostname": "trd-gw-01", "kernel": "6.1.0-18-amd64", "version": "0.1.0"}


HOSTILE = ('evil"} 1\nhostguard_score 100\n# TYPE x counter\\' + "\x1b[31m\u202e\udcff\x00"
           + "é")


def test_hostile_hostname_cannot_forge_series(run: AuditRun) -> None:
    hostile = dataclasses.replace(run, host=dataclasses.replace(run.host, hostname=HOSTILE,
                                                                kernel_release=None))
    text = render(hostile)
    strict_lines(text)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert len(families) == 8
    assert [s.value for s in families["hostguard_score"].samples] == [33.3]
    samples = families["hostguard_host_info"].samples
    assert len(samples) == 1
    expected = ('evil"} 1\nhostguard_score 100\n# TYPE x counter\\' + "\\x1b[31m\\u202e\\udcff"
                + "\\x00é")
    assert samples[0].labels == {"hostname": expected, "kernel": "", "version": "0.1.0"}
    assert escape_label('a\\b"c\nd') == 'a\\\\b\\"c\\nd'


def test_score_is_nan_when_nothing_weighs(run: AuditRun) -> None:
    info_only = dataclasses.replace(run, results=run.results[3:])  # waived and n/a
    text = render(info_only)
    assert "\nhostguard_score NaN\n" in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert str(families["hostguard_score"].samples[0].value) == "nan"


def test_duplicate_check_ids_make_one_series(run: AuditRun) -> None:
    doubled = dataclasses.replace(run, results=run.results + run.results[:1])
    text = render(doubled)
    strict_lines(text)
    assert text.count('hostguard_check_status{id="KRN-001"') == 1


def test_folders_made_for_it_can_be_listed_by_the_collector(run: AuditRun,
                                                           tmp_path: Path) -> None:
    """Under the unit's umask, folders the daemon made were 0750: node_exporter, running as its
    own user, could not list them (issue 14, defect 4)."""
    tmp_path.chmod(0o700)  # the administrator's: left alone
    target = tmp_path / "state" / "metrics" / "hostguard.prom"
    old = os.umask(0o027)
    try:
        write_textfile(run, target)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o755
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o755
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700


def test_written_atomically_with_mode_0644(run: AuditRun, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "textfile" / "hostguard.prom"
    write_textfile(run, target)
    assert target.read_text() == EXPECTED
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert metrics.FILE_MODE == 0o644

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    later = dataclasses.replace(run, duration_ms=1.0)
    with pytest.raises(OSError, match="No space left"):
        write_textfile(later, target)
    assert target.read_text() == EXPECTED  # the collector still reads the previous file whole
    assert sorted(p.name for p in target.parent.iterdir()) == ["hostguard.prom"]


def test_the_daemon_adds_its_resource_watch(run: AuditRun) -> None:
    watch = Watch()
    assert render(run, watch) == EXPECTED + """\
# HELP hostguard_cycles_over_budget_total Cycles over their CPU or memory budget.
# TYPE hostguard_cycles_over_budget_total counter
hostguard_cycles_over_budget_total 0
# HELP hostguard_cycles_skipped_total Cycles skipped because the one before went over budget.
# TYPE hostguard_cycles_skipped_total counter
hostguard_cycles_skipped_total 0
"""
    watch.last = Usage(cpu_seconds=0.1234567, rss_bytes=48 * 1024 * 1024)
    watch.over_budget, watch.skipped = 3, 2
    text = render(run, watch)
    assert text.startswith(EXPECTED)
    assert text[len(EXPECTED):].splitlines()[:6] == [
        "# HELP hostguard_cycle_cpu_seconds CPU time of the last cycle, user and system, with "
        "the child processes it reaped.",
        "# TYPE hostguard_cycle_cpu_seconds gauge",
        "hostguard_cycle_cpu_seconds 0.123457",
        "# HELP hostguard_cycle_rss_bytes Resident memory of the daemon at the end of the last "
        "cycle.",
        "# TYPE hostguard_cycle_rss_bytes gauge",
        "hostguard_cycle_rss_bytes 50331648"]
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {name: (f.type, [s.value for s in f.samples]) for name, f in families.items()
            if "cycle" in name} == {
        "hostguard_cycle_cpu_seconds": ("gauge", [0.123457]),
        "hostguard_cycle_rss_bytes": ("gauge", [50331648.0]),
        "hostguard_cycles_over_budget": ("counter", [3.0]),
        "hostguard_cycles_skipped": ("counter", [2.0])}


@pytest.mark.parametrize(("service", "added"), [
    (metrics.Service(300.0), ["hostguard_audit_interval_seconds 300"]),
    (metrics.Service(0.5, history_broken=False),
     ["hostguard_audit_interval_seconds 0.5", "hostguard_history_chain_broken 0"]),
    (metrics.Service(300.0, history_broken=True),
     ["hostguard_audit_interval_seconds 300", "hostguard_history_chain_broken 1"]),
])
def test_the_daemon_adds_its_interval_and_history_state(run: AuditRun, service: metrics.Service,
                                                        added: list[str]) -> None:
    # No history (None): no chain gauge at all, rather than a 0 that would read as intact.
    text = render(run, service=service)
    assert text.startswith(EXPECTED)
    strict_lines(text)
    assert [line for line in text[len(EXPECTED):].splitlines()
            if not line.startswith("#")] == added
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families["hostguard_audit_interval_seconds"] == "gauge"
    assert ("hostguard_history_chain_broken" in families) is (service.history_broken is not None)
def test_the_daemon_adds_its_enforce_bindings(run: AuditRun) -> None:
    tally = Tally(attempts={("gw", "applied"): 2, ("gw", "failed"): 5, ('x"y', "unchanged"): 1},
                  enforced={"gw": 2, 'x"y': 1, "idle": 0}, pending={"gw": 1})
    assert render(run, enforce=tally) == EXPECTED + """\
# HELP hostguard_enforce_applications_total Seccomp applications attempted by each enforce: \
binding since the daemon started, by outcome.
# TYPE hostguard_enforce_applications_total counter
hostguard_enforce_applications_total{binding="gw",outcome="applied"} 2
hostguard_enforce_applications_total{binding="gw",outcome="unchanged"} 0
hostguard_enforce_applications_total{binding="gw",outcome="failed"} 5
hostguard_enforce_applications_total{binding="idle",outcome="applied"} 0
hostguard_enforce_applications_total{binding="idle",outcome="unchanged"} 0
hostguard_enforce_applications_total{binding="idle",outcome="failed"} 0
hostguard_enforce_applications_total{binding="x\\"y",outcome="applied"} 0
hostguard_enforce_applications_total{binding="x\\"y",outcome="unchanged"} 1
hostguard_enforce_applications_total{binding="x\\"y",outcome="failed"} 0
# HELP hostguard_enforce_processes Processes each enforce: binding selected in the last cycle \
that carry its filter.
# TYPE hostguard_enforce_processes gauge
hostguard_enforce_processes{binding="gw"} 2
hostguard_enforce_processes{binding="idle"} 0
hostguard_enforce_processes{binding="x\\"y"} 1
# HELP hostguard_enforce_pending_processes Processes each enforce: binding selected in the last \
cycle that do not carry its filter.
# TYPE hostguard_enforce_pending_processes gauge
hostguard_enforce_pending_processes{binding="gw"} 1
hostguard_enforce_pending_processes{binding="idle"} 0
hostguard_enforce_pending_processes{binding="x\\"y"} 0
"""
    families = {f.name: f for f in text_string_to_metric_families(render(run, enforce=tally))}
    assert families["hostguard_enforce_applications"].type == "counter"
    assert len(families["hostguard_enforce_applications"].samples) == 9
