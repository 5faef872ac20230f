"""``hostguard lint`` reports every independent problem of a file in one pass.

A schema error used to hide the semantic checks of the whole file: its waivers, its syscall
names, its metrics address were judged only once the schema errors were fixed. Each test below
writes a file with a schema error beside problems the schema cannot see, and expects all of
them at once, each at its own position. Documents of other tools are called so.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from agent.core.schema_errors import schema_report
from agent.core.yamlload import Document, load_bytes
from agent.lint.engine import lint_paths
from agent.seccomp.profile import _validator as profile_validator
from tests.policy.builders import write
from tests.support import run_cli

TODAY = dt.date(2026, 11, 24)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def lint(*paths: str) -> list[str]:
    return [str(d) for d in lint_paths(paths, TODAY).diagnostics]


POLICY = """\
apiVersion: hostguard/v1
kind: Policy
metadata: {name: p}
hosts: {hostnames: ["web[", 3]}
checks:
  - id: KRN-001
    kind: sysctl
    title: Kernel pointers are hidden
    severity: hihg
    rationale: A known kernel address defeats KASLR.
    remediation: sysctl -w kernel.kptr_restrict=2
    spec: {key: kernel.kptr_restrict, op: ge, value: 1}
  - id: MM-001
    kind: sysfs
    titel: Transparent huge pages are not always on
    severity: medium
    rationale: r
    remediation: m
    spec: {path: kernel/mm/transparent_hugepage/enabled, op: regex, value: "(madvise|never"}
  - id: KRN-001
    kind: sysctl
    title: again
    severity: low
    rationale: r
    remediation: m
    spec: {key: kernel.dmesg_restrict, op: eq, value: 1}
waivers:
  - check: KRN-001
    reason: "   "
    expires: 2026-10-31
  - check: KRN-001
    reasn: typo
    expires: 2030-01-01
"""


def test_a_policy_with_schema_errors_still_gets_its_semantic_checks(here: Path) -> None:
    write(here, {"p.yaml": POLICY})
    assert lint("p.yaml") == [
        "p.yaml:4:21: error: invalid hostname glob 'web[': '[' at position 4 is never closed "
        "[invalid-glob]",
        "p.yaml:4:29: error: hosts.hostnames[1] must be a string, not integer 3 [schema]",
        "p.yaml:9:15: error: checks[0].severity must be one of critical, high, medium, low, "
        "info, not 'hihg' (did you mean 'high'?) [schema]",
        "p.yaml:13:5: error: missing required key 'title' in checks[1] [schema]",
        "p.yaml:15:5: error: unknown key 'titel' (did you mean 'title'?) [unknown-key]",
        "p.yaml:19:76: error: invalid regex '(madvise|never': missing ), unterminated "
        "subpattern at position 0 [invalid-regex]",
        "p.yaml:20:9: error: duplicate check id 'KRN-001' (first defined at line 6) "
        "[duplicate-id]",
        "p.yaml:29:13: error: waiver has an empty reason [waiver-reason]",
        "p.yaml:30:14: error: waiver for 'KRN-001' expired on 2026-10-31 [waiver-expired]",
        "p.yaml:31:5: error: missing required key 'reason' in waivers[1] [schema]",
        "p.yaml:32:5: error: unknown key 'reasn' (did you mean 'reason'?) [unknown-key]",
        "p.yaml:33:14: warning: waiver for 'KRN-001' runs until 2030-01-01, more than a year "
        "away [waiver-long]",
    ]


def test_a_part_the_schema_rejected_is_not_judged_again(here: Path) -> None:
    # An expiry that is no date, a spec of the wrong shape: the schema's word is the only one.
    write(here, {"p.yaml": POLICY.replace("expires: 2026-10-31", "expires: soon")
                 .replace("op: ge, value: 1}", "op: ge, value: [1]}")})
    found = lint("p.yaml")
    assert [f for f in found if ":30:" in f] == [
        "p.yaml:30:14: error: waivers[0].expires value 'soon' does not match "
        "^\\d{4}-\\d{2}-\\d{2}$ [schema]"]
    assert not any("waiver-expired" in f for f in found)
    assert sum(":12:" in f for f in found) == 1, found


PROFILE = """\
apiVersion: hostguard/v1
kind: SeccompProfile
metadata: {name: gateway}
default_action: {errno: 1}
rules:
  - syscalls: [raed, write]
    args: [{index: 7, op: eq, value: 0}]
  - syscalls: ["@io-evnt", openat]
    args: [{index: 0, op: eq, value: 0, mask: 3}]
deny:
  - syscalls: [mount, 7]
"""


def test_a_profile_with_a_bad_argument_index_still_gets_its_names_checked(here: Path) -> None:
    write(here, {"gateway.yaml": PROFILE})
    assert lint("gateway.yaml") == [
        "gateway.yaml:6:16: error: unknown syscall 'raed' (did you mean 'read'?) "
        "[seccomp-unknown-syscall]",
        "gateway.yaml:7:20: error: rules[0].args[0].index: 7 is greater than the maximum of 5 "
        "[schema]",
        "gateway.yaml:8:16: error: unknown syscall group '@io-evnt' (did you mean "
        "'@io-event'?) [seccomp-unknown-group]",
        "gateway.yaml:9:41: error: rules[1].args[0]: mask is only meaningful with op "
        "masked_eq, not eq [seccomp-arg]",
        "gateway.yaml:11:23: error: deny[0].syscalls[1] must be a string, not integer 7 "
        "[schema]",
    ]


CONFIG = """\
apiVersion: hostguard/v1
kind: AgentConfig
policies: [policies]
intervall: 300
metrics_listen: localhost
reports: [json]
"""


def test_a_configuration_with_an_unknown_key_still_gets_its_address_checked(here: Path) -> None:
    write(here, {"hostguard.yaml": CONFIG})
    assert lint("hostguard.yaml") == [
        "hostguard.yaml:4:1: error: unknown key 'intervall' (did you mean 'interval'?) "
        "[unknown-key]",
        "hostguard.yaml:5:17: error: metrics address must be HOST:PORT, not 'localhost' "
        "[schema]",
    ]


def test_documents_of_other_tools_are_named_as_such(here: Path) -> None:
    write(here, {
        "docker-compose.yml": "version: '3'\nservices:\n  web: {image: nginx}\n",
        "deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n",
        "site.yml": "- hosts: all\n  tasks: []\n",
        "vars.yml": "kind: Deployment\nspec: {}\n",
        "wide.yaml": "".join(f"k{i}: {i}\n" for i in range(8)),
    })
    assert lint(".") == [
        "deploy.yaml:1:13: error: not a hostguard document: it has apiVersion 'apps/v1' and "
        "kind 'Deployment'; a hostguard policy has apiVersion 'hostguard/v1', kind 'Policy' "
        "[unknown-document]",
        "docker-compose.yml:1:1: error: not a hostguard document: it has no apiVersion and no "
        "kind (top-level keys: 'version', 'services'); a hostguard policy has apiVersion "
        "'hostguard/v1', kind 'Policy' [unknown-document]",
        "site.yml:1:1: error: not a hostguard document: it holds an array, not a mapping; a "
        "hostguard policy is a mapping with apiVersion 'hostguard/v1', kind 'Policy' "
        "[unknown-document]",
        "vars.yml:1:1: error: not a hostguard document: it has kind 'Deployment' but no "
        "apiVersion; a hostguard policy has apiVersion 'hostguard/v1', kind 'Policy' "
        "[unknown-document]",
        "wide.yaml:1:1: error: not a hostguard document: it has no apiVersion and no kind "
        "(top-level keys: 'k0', 'k1', 'k2', 'k3', 'k4', ...); a hostguard policy has "
        "apiVersion 'hostguard/v1', kind 'Policy' [unknown-document]",
    ]
    for text in lint("."):
        assert "None" not in text


def test_a_foreign_document_is_named_so_by_the_seccomp_commands_too(here: Path) -> None:
    write(here, {"docker-compose.yml": "services: {}\n"})
    result = run_cli("seccomp", "compile", "docker-compose.yml", "-o", "out.bpf", cwd=here)
    assert result.returncode != 0
    assert ("docker-compose.yml:1:1: error: not a hostguard document: it has no apiVersion and "
            "no kind (top-level keys: 'services'); a seccomp profile has apiVersion "
            "'hostguard/v1', kind 'SeccompProfile'") in result.stdout + result.stderr


def document(text: str) -> Document:
    doc = load_bytes(text.encode(), "d.yaml")
    assert isinstance(doc, Document), doc
    return doc


def test_sound_parts_of_a_rejected_document() -> None:
    doc = document(PROFILE)
    report = schema_report(doc, doc.data, profile_validator())
    # An error spoils its node, what holds it and (unless it is a missing key) what it holds.
    assert not report.sound(("rules", 0, "args", 0, "index"))
    assert not report.sound(("rules", 0, "args"))
    assert not report.sound(("rules", 0))
    assert not report.sound(())
    assert not report.sound(("deny", 0, "syscalls", 1))
    assert report.sound(("rules", 0, "syscalls", 0))
    assert report.sound(("rules", 0, "args", 1))
    assert report.sound(("deny", 0, "syscalls", 0))
    assert report.sound(("default_action",))
    missing = document("apiVersion: hostguard/v1\nkind: SeccompProfile\n"
                       "rules: [{syscalls: [read], extra: 1}]\n")
    report = schema_report(missing, missing.data, profile_validator())
    assert [d.rule for d in report.diagnostics] == ["schema", "schema", "unknown-key"]
    assert not report.sound(())  # no metadata, no default_action
    assert report.sound(("rules", 0))  # an unknown key spoils nothing
    assert report.sound(("rules", 0, "syscalls", 0))
