"""The daemon configuration: defaults, relative paths, located errors, ``hostguard lint``."""

from __future__ import annotations

from pathlib import Path

from agent.daemon.config import Config, load_config
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
        history=tmp_path / "state/history.db",
        metrics=Path("/var/lib/node_exporter/hostguard.prom"), deep_seccomp=("SEC-001",),
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
