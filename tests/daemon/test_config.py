"""The daemon configuration: defaults, relative paths, located errors, ``hostguard lint``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from agent.core.yamlload import load_file
from agent.daemon.config import Config, lint_config, load_config
from tests.support import PROJECT, run_cli

SAMPLE = PROJECT / "packaging" / "hostguard.yaml"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    path = write(tmp_path / "hostguard.yaml",
                 "apiVersion: hostguard/v1\nkind: AgentConfig\npolicies: [policies, /etc/p]\n")
    assert load_config(path) == Config(path=path, policies=(tmp_path / "policies",
                                                             Path("/etc/p")))


def test_every_key(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", """\
apiVersion: hostguard/v1
kind: AgentConfig
policies: [p]
interval: 30
jitter: 2.5
output_dir: /var/lib/hostguard/reports
reports: [json, sarif]
keep: 5
history: state/history.db
history_max_age_days: 400
history_max_runs: 100000
metrics: /var/lib/node_exporter/hostguard.prom
deep_seccomp: [SEC-001]
labels: {role: gateway}
root: /
cpu_budget_seconds: 2.5
rss_budget_mib: 256
""")
    assert load_config(path) == Config(
        path=path, policies=(tmp_path / "p",), interval=30.0, jitter=2.5,
        output_dir=Path("/var/lib/hostguard/reports"), reports=("json", "sarif"), keep=5,
        history=tmp_path / "state/history.db", history_max_age_days=400.0,
        history_max_runs=100000, metrics=Path("/var/lib/node_exporter/hostguard.prom"),
        deep_seccomp=("SEC-001",),
        labels={"role": "gateway"}, root=Path("/"), cpu_budget_seconds=2.5,
        rss_budget_mib=256.0)


def test_errors_are_located(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", """\
apiVersion: hostguard/v1
kind: AgentConfig
policies: [p]
intervall: 30
reports: [pdf]
keep: 0
labels: {role: 3}
cpu_budget_seconds: 0
rss_budget_mib: lots
""")
    assert [str(d) for d in load_config(path)] == [  # type: ignore[union-attr]
        f"{path}:4:1: error: unknown key 'intervall' (did you mean 'interval'?) [unknown-key]",
        f"{path}:5:11: error: reports[0] must be one of html, json, junit, sarif, not 'pdf' "
        "[schema]",
        f"{path}:6:7: error: keep: 0 is less than the minimum of 1 [schema]",
        f"{path}:7:16: error: labels.role must be a string, not integer 3 [schema]",
        f"{path}:8:21: error: cpu_budget_seconds: 0 is less than or equal to "
        "the minimum of 0 [schema]",
        f"{path}:9:17: error: rss_budget_mib must be a number, not string 'lots' [schema]",
    ]


def test_jitter_stays_within_half_the_interval(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "apiVersion: hostguard/v1\nkind: AgentConfig\n"
                 "policies: [p]\ninterval: 60\njitter: 31\n")
    # A warning: the daemon still runs such a configuration (one that ran before upgrades).
    assert not isinstance(load_config(path), list)
    assert [str(d) for d in lint_config(load_file(path, str(path)))] == [  # type: ignore[arg-type]
        f"{path}:5:9: warning: jitter 31 is more than half the interval (60): audits could be "
        "further apart than the stale-audit alert's 3 intervals [schema]"]
    default = write(tmp_path / "d.yaml", "apiVersion: hostguard/v1\nkind: AgentConfig\n"
                    "policies: [p]\njitter: 150\n")
    assert lint_config(load_file(default, str(default))) == []  # type: ignore[arg-type]


def test_retention_needs_a_history(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "apiVersion: hostguard/v1\nkind: AgentConfig\n"
                 "policies: [p]\nhistory_max_runs: 10\nhistory_max_age_days: 0\n")
    assert [str(d) for d in load_config(path)] == [  # type: ignore[union-attr]
        f"{path}:4:19: error: history_max_runs prunes the history: it needs 'history' [schema]",
        f"{path}:5:23: error: history_max_age_days prunes the history: it needs 'history' "
        "[schema]",
        f"{path}:5:23: error: history_max_age_days: 0 is less than or equal to the minimum "
        "of 0 [schema]",
    ]


def test_missing_policies_wrong_kind_and_unreadable(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "apiVersion: hostguard/v1\nkind: AgentConfig\n")
    assert [str(d) for d in load_config(path)] == [  # type: ignore[union-attr]
        f"{path}:1:1: error: missing required key 'policies' in document [schema]"]
    other = write(tmp_path / "p.yaml", "apiVersion: hostguard/v1\nkind: Policy\n")
    assert [str(d) for d in load_config(other)] == [  # type: ignore[union-attr]
        f"{other}:2:7: error: not a hostguard agent configuration (expected apiVersion "
        "'hostguard/v1', kind 'AgentConfig') [unknown-document]"]
    missing = tmp_path / "absent.yaml"
    assert [str(d) for d in load_config(missing)] == [  # type: ignore[union-attr]
        f"{missing}:1:1: error: cannot read file: No such file or directory [read-error]"]
    dup = write(tmp_path / "d.yaml", "apiVersion: hostguard/v1\nkind: AgentConfig\n"
                "policies: [a]\npolicies: [b]\n")
    assert [str(d) for d in load_config(dup)] == [  # type: ignore[union-attr]
        f"{dup}:4:1: error: duplicate key 'policies' (first at line 3, column 1) "
        "[duplicate-key]"]


def test_hostguard_lint_reads_configurations(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "apiVersion: hostguard/v1\nkind: AgentConfig\n"
                 "policies: [p]\nintervall: 30\n")
    result = run_cli("lint", str(path))
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == (
        f"{path}:4:1: error: unknown key 'intervall' (did you mean 'interval'?) [unknown-key]")


def test_the_sample_configuration_lints_clean() -> None:
    result = run_cli("lint", "--strict", str(SAMPLE))
    assert result.returncode == 0, result.stdout
    config = load_config(SAMPLE)
    assert isinstance(config, Config)
    assert config.policies == (Path("/etc/hostguard/policies"),)


MKDIR_DENIED = """apiVersion: hostguard/v1
kind: SeccompProfile
metadata: {name: no-mkdir}
default_action: allow
deny:
  - syscalls: [mkdir, mkdirat]
    action: {errno: 95}
"""


def test_enforce_bindings(tmp_path: Path) -> None:
    write(tmp_path / "seccomp-no-mkdir.yaml", MKDIR_DENIED)
    path = write(tmp_path / "c.yaml", """\
apiVersion: hostguard/v1
kind: AgentConfig
policies: [p]
enforce:
  - id: gw
    unit: fixgw
    cmdline: --venue
    profile: seccomp-no-mkdir.yaml
    mode: log
    enforce_from: 2026-12-14
  - id: feed
    exe: /opt/feed/*
    profile: """ + str(tmp_path / "seccomp-no-mkdir.yaml") + """
    mode: enforce
    stop_isolated: true
""")
    config = load_config(path)
    assert isinstance(config, Config)
    gw, feed = config.enforce
    assert (gw.id, gw.selector.unit, gw.selector.describe()) == (
        "gw", "fixgw.service", "unit fixgw.service, cmdline /--venue/")
    assert gw.profile_path == tmp_path / "seccomp-no-mkdir.yaml"
    assert gw.profile.name == "no-mkdir"
    assert (gw.mode, gw.enforce_from, gw.stop_isolated) == ("log", dt.date(2026, 12, 14), False)
    assert gw.mode_on(dt.date(2026, 12, 13)) == "log"
    assert gw.mode_on(dt.date(2026, 12, 14)) == "enforce"
    assert (str(gw.location.line), gw.location.col) == ("5", 5)
    assert (feed.mode, feed.enforce_from, feed.stop_isolated) == ("enforce", None, True)
    assert feed.mode_on(dt.date(2000, 1, 1)) == "enforce"
    assert feed.selector.process is not None and feed.selector.process.exe == "/opt/feed/*"
    # Off by default.
    plain = write(tmp_path / "plain.yaml", "apiVersion: hostguard/v1\nkind: AgentConfig\n"
                  "policies: [p]\n")
    assert load_config(plain).enforce == ()  # type: ignore[union-attr]


def test_enforce_errors_are_located(tmp_path: Path) -> None:
    write(tmp_path / "bad-profile.yaml", MKDIR_DENIED.replace("mkdirat", "mkdirrat"))
    path = write(tmp_path / "c.yaml", """\
apiVersion: hostguard/v1
kind: AgentConfig
policies: [p]
root: /srv/host
enforce:
  - id: a
    name: this-name-is-far-too-long
    profile: bad-profile.yaml
    mode: log
    enforce_from: 14.12.2026
  - id: a
    unit: "x/y"
    cmdline: "(unclosed"
    profile: absent.yaml
    mode: enforce
    enforce_from: 2026-12-14
""")
    profile = tmp_path / "bad-profile.yaml"
    assert [str(d) for d in load_config(path)] == [  # type: ignore[union-attr]
        f"{path}:4:7: error: enforce: applies filters to this host's running processes: root "
        "must be / (or absent) when enforce: is given [schema]",
        f"{path}:7:11: error: name 'this-name-is-far-too-long' can never match: the kernel "
        "truncates comm to 15 bytes; select by exe or cmdline instead [spec]",
        f"{path}:8:14: error: profile 'bad-profile.yaml' cannot be used: {profile}:6:23: "
        "error: unknown syscall 'mkdirrat' (did you mean 'mkdirat'?) [seccomp-unknown-syscall] "
        "[invalid-profile]",
        f"{path}:10:19: error: enforce_from '14.12.2026' is not a date (YYYY-MM-DD) [schema]",
        f"{path}:11:9: error: binding id 'a' is used twice (first by enforce[0]) [duplicate-id]",
        f"{path}:12:11: error: invalid unit glob 'x/y': a unit name has no '/' [invalid-glob]",
        f"{path}:13:14: error: invalid regex '(unclosed': missing ), unterminated subpattern at "
        "position 0 [invalid-regex]",
        f"{path}:14:14: error: profile 'absent.yaml' cannot be used: {tmp_path}/absent.yaml:1:1: "
        "error: cannot read file: No such file or directory [read-error] [invalid-profile]",
        f"{path}:16:19: error: enforce_from turns mode log into enforce: it needs mode: log "
        "[schema]",
    ]
    schema = write(tmp_path / "s.yaml", """\
apiVersion: hostguard/v1
kind: AgentConfig
policies: [p]
enforce:
  - id: a
    profile: x.yaml
    mode: audit
    stop_isolated: yes
""")
    messages = [str(d) for d in load_config(schema)]  # type: ignore[union-attr]
    assert f"{schema}:7:11: error: enforce[0].mode must be one of enforce, log, not 'audit' " \
        "[schema]" in messages
    assert len(messages) == 2, messages
    nothing = write(tmp_path / "n.yaml", """\
apiVersion: hostguard/v1
kind: AgentConfig
policies: [p]
enforce: [{id: a, profile: bad-profile.yaml, mode: log}]
""")
    assert next(str(d) for d in load_config(nothing)) == (  # type: ignore[union-attr]
        f"{nothing}:4:11: error: the binding selects no process: give unit, name, exe, cmdline "
        "or user (all given must match) [schema]")
    assert any(m.startswith(f"{schema}:8:20: error: enforce[0].stop_isolated must be a boolean")
               for m in messages), messages
