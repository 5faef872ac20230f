"""The documentation stays true: every rule and kind documented, the example lints clean."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

from agent.checks import KINDS
from agent.core.diagnostic import RULES
from agent.lint.engine import lint_paths
from tests.support import PROJECT

POLICY_DOC = (PROJECT / "docs" / "policy.md").read_text(encoding="utf-8")
SECCOMP_DOC = (PROJECT / "docs" / "seccomp.md").read_text(encoding="utf-8")


def test_every_lint_rule_is_documented() -> None:
    # Policy rules in docs/policy.md, seccomp-* rules in docs/seccomp.md: one table each.
    section = "".join(doc.split("## Lint rules", 1)[1].split("\n## ", 1)[0]
                      for doc in (POLICY_DOC, SECCOMP_DOC))
    documented = set(re.findall(r"^\| `([a-z0-9-]+)` \| (?:error|warning) \|", section, re.M))
    assert documented == set(RULES)
    for rule_id, rule in RULES.items():
        row = re.search(rf"^\| `{rule_id}` \| (\w+) \|", section, re.M)
        assert row is not None and row.group(1) == rule.level.value, rule_id


def test_every_check_kind_has_a_section() -> None:
    for name in KINDS:
        assert f"### `{name}`" in POLICY_DOC, name


def test_the_contents_of_the_policy_doc_list_every_kind_and_every_section() -> None:
    contents = POLICY_DOC.split("\n## ", 1)[0]
    links = re.findall(r"\[[^\]]*\]\(#([a-z0-9_-]+)\)", contents)
    assert sorted(k for k in links if k in KINDS) == sorted(KINDS), "a kind is missing"
    headings = re.findall(r"^##+ (.+)$", POLICY_DOC, re.M)
    anchors = {re.sub(r"[^a-z0-9_ -]", "", h.lower()).replace(" ", "-") for h in headings}
    assert set(links) <= anchors, set(links) - anchors  # every link leads somewhere
    for heading in re.findall(r"^## (.+)$", POLICY_DOC, re.M):
        anchor = re.sub(r"[^a-z0-9_ -]", "", heading.lower()).replace(" ", "-")
        assert anchor in links, f"section {heading!r} is missing from the contents"


def test_readme_quick_start_says_how_to_run_hostguard_and_where_the_html_report_is() -> None:
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert ".venv/bin/hostguard" in quick
    assert ". .venv/bin/activate" in quick
    assert "--report html" in quick and "reports/" in quick and ".html" in quick


def test_complete_example_lints_clean(tmp_path: Path) -> None:
    example = re.search(r"```yaml\n(.*?)```", POLICY_DOC, re.S)
    assert example is not None
    site = tmp_path / "policies" / "site"
    site.mkdir(parents=True)
    shutil.copy(PROJECT / "policies" / "trading-baseline.yaml", tmp_path / "policies")
    (site / "gateway.yaml").write_text(example.group(1), encoding="utf-8")
    report = lint_paths([str(site)], today=dt.date(2026, 11, 24))
    assert [str(d) for d in report.diagnostics] == []
    assert report.files == 2


def test_readme_quick_start_is_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick.splitlines() if line.strip()]
    assert commands == ["make audit", "make test"]
    assert "make test" in (PROJECT / ".ci" / "run").read_text(encoding="utf-8")


INSTALL_BLOCK = re.compile(r"^<!-- install:begin -->\n```sh\n(.*?)```\n<!-- install:end -->$",
                           re.M | re.S)


def test_readme_install_block_is_install_service_then_systemctl() -> None:
    # The contract with tests/systemd/: exactly one block between the markers, run as it is.
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    assert readme.count("<!-- install:begin -->") == 1
    assert readme.count("<!-- install:end -->") == 1
    blocks = INSTALL_BLOCK.findall(readme)
    assert blocks == ["hostguard install-service\n"
                      "systemctl daemon-reload && systemctl enable --now hostguard\n"]
    service = readme.split("## Running as a service", 1)[1].split("\n## ", 1)[0]
    assert "<!-- install:begin -->" in service


def test_the_documented_layout_is_what_install_service_lays_out() -> None:
    from agent.daemon.install import entries  # noqa: PLC0415 - this test only

    doc = (PROJECT / "docs" / "daemon.md").read_text(encoding="utf-8")
    install = doc.split("## Install", 1)[1].split("\n## ", 1)[0]
    assert "hostguard install-service" in install
    rows = dict(re.findall(r"^\| `(/[^`]+?)/?` \| (0\d{3}) \|", install, re.M))
    laid_out = {str(e.path): f"{e.mode:04o}"
                for deep in (True, False)  # one drop-in or the other
                for e in entries(["/opt/hostguard/bin/hostguard"], deep_seccomp=deep,
                                 clock_read=True)
                if e.content is None or not str(e.path).startswith("/etc/hostguard/policies/")}
    assert rows == laid_out
    # One mode for /etc/hostguard wherever it is told (issue 14: README said 0755 by omission).
    for text in (doc, (PROJECT / "README.md").read_text(encoding="utf-8")):
        assert "install -d" not in text
        assert "cp policies/" not in text
        assert set(re.findall(r"`/etc/hostguard/?`[ |(]+(0\d{3})", text)) == {"0750"}
