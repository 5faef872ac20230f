"""``file`` checks: parsing and lint problems, and verdicts over hand-built file sets."""

from __future__ import annotations

from typing import Any

import pytest

from agent.checks import KINDS
from agent.checks.base import SpecError
from agent.checks.file import FileKind
from agent.host.accounts import IdNames
from agent.host.facts import ReadError
from agent.host.files import FileEntry, FileRequest, FileSet
from agent.host.snapshot import Snapshot, SnapshotRequest
from agent.host.sshd import Directive, SshdConfig
from agent.result import Status
from tests.checks.snapshots import FACTS

KIND = FileKind()
USERS = IdNames("/etc/passwd", {0: "root", 33: "www-data"}, {"root": 0, "toor": 0,
                                                            "www-data": 33})
GROUPS = IdNames("/etc/group", {0: "root", 42: "shadow"}, {"root": 0, "shadow": 42})
SSHD = """\
# global options
Port 22
PermitRootLogin no
PasswordAuthentication yes

Match Address 10.0.0.0/8
    PermitRootLogin yes
Match User backup
    PasswordAuthentication no
"""


def entry(path: str = "/etc/shadow", mode: int = 0o640, uid: int = 0, gid: int = 42,
          **more: Any) -> FileEntry:
    fields: dict[str, Any] = {"type": "file", "size": 10, "link": None, "resolved": path,
                              "followed": False, **more}
    return FileEntry(path=path, mode=mode, uid=uid, gid=gid, **fields)


def judge(raw: dict[str, Any], *entries: FileEntry | ReadError,
          users: IdNames | ReadError = USERS) -> tuple[Status, str]:
    spec = KIND.parse(raw)
    (request,) = KIND.request(spec).files
    snap = Snapshot(root="/x", facts=FACTS,
                    files={request: FileSet(tuple(entries), users, GROUPS)})
    outcome = KIND.evaluate(spec, snap)
    return outcome.status, outcome.message


def test_registered_and_request() -> None:
    assert isinstance(KINDS["file"], FileKind)
    assert KIND.request(KIND.parse({"path": "/etc/shadow", "mode": "0640"})) == SnapshotRequest(
        files=frozenset({FileRequest("/etc/shadow")}))
    spec = KIND.parse({"path": "/etc/ssh/sshd_config", "follow": False,
                       "lines": [{"match": "x"}], "sha256": "A" * 64})
    assert KIND.request(spec).files == {FileRequest("/etc/ssh/sshd_config", follow=False,
                                                    digest=True, text=True)}


SHADOW = {"path": "/etc/shadow", "type": "file", "owner": "root", "group": ["root", "shadow"],
          "mode": "0640"}


@pytest.mark.parametrize(
    ("raw", "found", "status", "message"),
    [
        (SHADOW, entry(), Status.PASS, "/etc/shadow: file 0640 root:shadow"),
        # A ceiling: fewer bits pass, any bit beyond it fails, set-id bits included.
        (SHADOW, entry(mode=0o600), Status.PASS, "/etc/shadow: file 0600 root:shadow"),
        (SHADOW, entry(mode=0o644), Status.FAIL,
         "/etc/shadow: mode 0644 exceeds 0640 (extra bits 0004)"),
        (SHADOW, entry(mode=0o2640), Status.FAIL,
         "/etc/shadow: mode 2640 exceeds 0640 (extra bits 2000)"),
        ({**SHADOW, "mode_exact": True}, entry(mode=0o600), Status.FAIL,
         "/etc/shadow: mode is 0600, expected exactly 0640"),
        (SHADOW, entry(uid=33, gid=7), Status.FAIL,
         "/etc/shadow: owner is www-data (33), expected root, group is 7, expected root or "
         "shadow"),
        # Names and ids: toor is uid 0 too; a name the host lacks matches nothing.
        ({"path": "/etc/shadow", "owner": ["toor"], "group": 42}, entry(), Status.PASS,
         "/etc/shadow: file 0640 root:shadow"),
        ({"path": "/etc/shadow", "owner": "nobody"}, entry(), Status.FAIL,
         "/etc/shadow: owner is root (0), expected nobody"),
        ({"path": "/etc/shadow", "type": "directory"}, entry(), Status.FAIL,
         "/etc/shadow: is a file, expected directory"),
        ({"path": "/etc/shadow"}, entry(path="/etc/shadow", link="/etc/x", followed=True),
         Status.PASS, "/etc/shadow -> /etc/x (followed): file 0640 root:shadow"),
        ({"path": "/etc/shadow", "exists": False}, entry(), Status.FAIL, "/etc/shadow: exists"),
        ({"path": "/etc/nope", "exists": False}, None, Status.PASS, "nothing matches /etc/nope"),
        ({"path": "/etc/nope"}, None, Status.FAIL, "nothing matches /etc/nope"),
        ({"path": "/etc/nope", "mode": "0600", "missing": "not_applicable"}, None,
         Status.NOT_APPLICABLE, "nothing matches /etc/nope"),
        (SHADOW, ReadError("too many levels of symbolic links: /etc/shadow"), Status.ERROR,
         "cannot evaluate: /etc/shadow: too many levels of symbolic links: /etc/shadow"),
        ({"path": "/etc/shadow", "sha256": "ab" * 32}, entry(sha256="ab" * 32), Status.PASS,
         "/etc/shadow: file 0640 root:shadow"),
        ({"path": "/etc/shadow", "sha256": "AB" * 32}, entry(sha256="cd" * 32), Status.FAIL,
         f"/etc/shadow: sha256 is {'cd' * 32}, expected {'ab' * 32}"),
        ({"path": "/etc/shadow", "sha256": "ab" * 32},
         entry(sha256=ReadError("larger than 1073741824 bytes: /etc/shadow")), Status.ERROR,
         "cannot evaluate: /etc/shadow: sha256: larger than 1073741824 bytes: /etc/shadow"),
    ],
)
def test_verdicts(raw: dict[str, Any], found: FileEntry | ReadError | None, status: Status,
                  message: str) -> None:
    assert judge(raw, *([] if found is None else [found])) == (status, message)


def test_every_match_of_a_glob_is_judged() -> None:
    raw = {"path": "/etc/sudoers.d/*", "mode": "0440", "owner": 0}
    assert judge(raw, entry("/etc/sudoers.d/a", 0o440), entry("/etc/sudoers.d/b", 0o640),
                 ReadError("dangling symbolic link: /etc/sudoers.d/c -> /x")) == (
        Status.FAIL, "/etc/sudoers.d/b: mode 0640 exceeds 0440 (extra bits 0200)")
    assert judge(raw, entry("/etc/sudoers.d/a", 0o440),
                 ReadError("dangling symbolic link: /etc/sudoers.d/c -> /x")) == (
        Status.ERROR, "cannot evaluate: /etc/sudoers.d/*: dangling symbolic link: "
                      "/etc/sudoers.d/c -> /x")


def test_unresolvable_names_are_errors_unless_an_id_decides() -> None:
    broken = ReadError("permission denied: /r/etc/passwd")
    assert judge({"path": "/etc/shadow", "owner": "root"}, entry(), users=broken) == (
        Status.ERROR, "cannot evaluate: /etc/shadow: owner names cannot be resolved: "
                      "permission denied: /r/etc/passwd")
    assert judge({"path": "/etc/shadow", "owner": [0, "root"]}, entry(), users=broken)[0] \
        is Status.PASS


SSH = {"path": "/etc/ssh/sshd_config", "sections": r"^\s*Match\s"}


@pytest.mark.parametrize(
    ("lines", "status", "message"),
    [
        ([{"match": r"^\s*PermitRootLogin\s+no\b", "global": True}], Status.PASS, None),
        # "no" in the global scope, "yes" in a Match block: the block is not the global scope.
        ([{"absent": r"^\s*PermitRootLogin\s+yes", "global": True}], Status.PASS, None),
        ([{"absent": r"^\s*PermitRootLogin\s+yes"}], Status.FAIL,
         r"/etc/ssh/sshd_config: line 7 matches /^\s*PermitRootLogin\s+yes/"),
        ([{"match": r"^\s*PasswordAuthentication\s+no", "global": True}], Status.FAIL,
         r"/etc/ssh/sshd_config: no line matches /^\s*PasswordAuthentication\s+no/"),
        ([{"match": r"^\s*PasswordAuthentication\s+no", "section": "User backup"}],
         Status.PASS, None),
        ([{"absent": r"PermitRootLogin", "section": "User"}], Status.PASS, None),
        ([{"absent": r"PermitRootLogin", "section": "Address"}], Status.FAIL,
         "/etc/ssh/sshd_config: line 7 matches /PermitRootLogin/"),
    ],
)
def test_lines_and_sections(lines: list[dict[str, Any]], status: Status,
                            message: str | None) -> None:
    found = judge({**SSH, "lines": lines}, entry("/etc/ssh/sshd_config", 0o644, 0, 0, text=SSHD))
    assert found == (status, message or "/etc/ssh/sshd_config: file 0644 root:root")


def test_line_evidence_names_lines() -> None:
    spec = KIND.parse({**SSH, "lines": [{"absent": "PermitRootLogin"}]})
    found = FileSet((entry("/etc/ssh/sshd_config", text=SSHD),), USERS, GROUPS)
    outcome = KIND.evaluate(spec, Snapshot(root="/x", facts=FACTS,
                                           files={spec.request(): found}))
    (row,) = outcome.evidence.items
    assert row["lines"] == [{"expected": "no line matching /PermitRootLogin/", "verdict": "fail",
                             "matches": [{"line": 3, "text": "PermitRootLogin no"},
                                         {"line": 7, "text": "    PermitRootLogin yes"}]}]
    assert row["followed"] is False and row["symlink"] is None


def test_unread_contents_and_unread_files_are_errors() -> None:
    assert judge({**SSH, "lines": [{"match": "Port"}]},
                 entry("/etc/ssh/sshd_config", text=ReadError("not a regular file (fifo): /p"))
                 ) == (Status.ERROR, "cannot evaluate: /etc/ssh/sshd_config: lines: not a "
                                     "regular file (fifo): /p")
    spec = KIND.parse(SHADOW)
    assert KIND.evaluate(spec, Snapshot(root="/x", facts=FACTS)).status is Status.ERROR


@pytest.mark.parametrize(
    ("raw", "found"),
    [
        ({"path": "/etc//shadow"}, [(("path",), "invalid path '/etc//shadow': empty, '.' or "
                                     "'..' component (write the path normalised)")]),
        ({"path": "/etc/[a-z"}, [(("path",), "invalid path '/etc/[a-z': '[' at position 6 is "
                                  "never closed")]),
        ({"path": "/etc/x", "exists": False, "mode": "0600"},
         [(("mode",), "'mode' means nothing with exists: false")]),
        ({"path": "/etc/x", "lines": [{"match": "a", "absent": "b"}]},
         [(("lines", 0), "a lines entry has exactly one of 'match' and 'absent'")]),
        ({"path": "/etc/x", "lines": [{"match": "a", "global": True}]},
         [(("lines", 0), "'global' and 'section' need 'sections' (what starts a section)")]),
        ({"path": "/etc/x", "lines": [{"match": "(a"}]},
         [(("lines", 0, "match"), "invalid regex '(a': missing ), unterminated subpattern at "
           "position 0")]),
        ({"path": "/etc/x", "type": "symlink"},
         [(("type",), "type symlink needs follow: false (a followed link is its target's "
           "type)")]),
        ({"path": "/etc/x", "type": "directory", "sha256": "a" * 64},
         [(("sha256",), "'sha256' reads contents; a directory has none")]),
        ({"path": "/etc/x", "mode_exact": True},
         [(("mode_exact",), "'mode_exact' without 'mode'")]),
        ({"path": "/etc/x", "missing": "not_applicable"},
         [(("missing",), "a spec that only asks for the file cannot be not_applicable when "
           "there is none")]),
    ],
)
def test_lint_problems(raw: dict[str, Any], found: list[tuple[tuple[str | int, ...], str]]) -> None:
    with pytest.raises(SpecError) as caught:
        KIND.parse(raw)
    assert [(p.path, p.message) for p in caught.value.problems] == found


# sshd's effective configuration: a drop-in sets PermitRootLogin first, sshd_config's own value
# comes second, a Match block that does not apply to every connection sets a third.
DROPIN, MAIN = "/etc/ssh/sshd_config.d/50-site.conf", "/etc/ssh/sshd_config"
CONFIG = SshdConfig((
    Directive("permitrootlogin", "no", DROPIN, 1, True, None),
    Directive("allowgroups", "sshusers", DROPIN, 2, True, None),
    Directive("permitrootlogin", "yes", MAIN, 3, True, None),
    Directive("maxauthtries", "3", MAIN, 4, True, None),
    Directive("maxauthtries", "10", MAIN, 6, False, f"{MAIN}:5: Match User backup"),
    Directive("allowusers", "alice", MAIN, 7, True, f"{MAIN}:6: Match all"),
), (MAIN, DROPIN))
SSHD_SPEC = {"path": MAIN, "config": "sshd"}


def sshd_judge(*settings: dict[str, Any], config: SshdConfig | ReadError = CONFIG
               ) -> tuple[Status, str]:
    return judge({**SSHD_SPEC, "settings": list(settings)},
                 entry(MAIN, 0o600, 0, 0, text="", config=config))


@pytest.mark.parametrize(
    ("setting", "status", "message"),
    [
        # The drop-in's "no" was read first: sshd_config's "yes" does not count.
        ({"keyword": "PermitRootLogin", "value": "no", "unset": "fail"}, Status.PASS, None),
        ({"keyword": "permitrootlogin", "op": "ne", "value": "no", "unset": "pass"},
         Status.FAIL, f"{MAIN}: {DROPIN}:1: permitrootlogin no, expected permitrootlogin != no"),
        # The Match User block's 10 does not apply to every connection.
        ({"keyword": "MaxAuthTries", "op": "le", "value": 4, "default": 6}, Status.PASS, None),
        ({"keyword": "MaxAuthTries", "op": "le", "value": 2, "default": 6}, Status.FAIL,
         f"{MAIN}: {MAIN}:4: maxauthtries 3, expected MaxAuthTries <= 2"),
        # Unset: the policy's default is judged, or its unset verdict given.
        ({"keyword": "MaxSessions", "op": "le", "value": 10, "default": 10}, Status.PASS, None),
        ({"keyword": "LoginGraceTime", "op": "le", "value": 60, "default": 120}, Status.FAIL,
         f"{MAIN}: (default) LoginGraceTime 120, expected LoginGraceTime <= 60"),
        ({"keyword": "Banner", "op": "regex", "value": "/.*", "unset": "fail"}, Status.FAIL,
         f"{MAIN}: Banner is not set outside Match, expected Banner matches /.*"),
        ({"keyword": "Ciphers", "op": "regex", "value": "(?!.*cbc).*", "unset": "pass"},
         Status.PASS, None),
        # Several keywords: each one set must satisfy the condition, one must be set.
        ({"keyword": ["AllowUsers", "AllowGroups", "DenyUsers"], "op": "regex",
          "value": r"\S.*", "unset": "fail"}, Status.PASS, None),
        ({"keyword": ["AllowUsers", "AllowGroups"], "op": "ne", "value": "alice",
          "unset": "fail"}, Status.FAIL,
         f"{MAIN}: {MAIN}:7: allowusers alice, expected AllowUsers/AllowGroups != alice"),
        # Asked to, a Match block that gives some connections a weaker value is a finding.
        ({"keyword": "MaxAuthTries", "op": "le", "value": 4, "default": 6,
          "match_blocks": True}, Status.FAIL,
         f"{MAIN}: {MAIN}:6: maxauthtries 10 (in {MAIN}:5: Match User backup), expected "
         "MaxAuthTries <= 4"),
        ({"keyword": "MaxAuthTries", "op": "le", "value": 10, "default": 6,
          "match_blocks": True}, Status.PASS, None),
        ({"keyword": "PermitRootLogin", "op": "ge", "value": 1, "unset": "fail"}, Status.ERROR,
         f"cannot evaluate: {MAIN}: {DROPIN}:1: permitrootlogin: value 'no' is not an integer"),
    ],
)
def test_sshd_settings(setting: dict[str, Any], status: Status, message: str | None) -> None:
    assert sshd_judge(setting) == (status, message or f"{MAIN}: file 0600 root:root")


def test_sshd_evidence_names_file_and_line_of_each_value() -> None:
    spec = KIND.parse({**SSHD_SPEC, "settings": [
        {"keyword": "PermitRootLogin", "value": "no", "unset": "fail"},
        {"keyword": "LoginGraceTime", "op": "le", "value": 60, "default": 60}]})
    found = FileSet((entry(MAIN, text="", config=CONFIG),), USERS, GROUPS)
    outcome = KIND.evaluate(spec, Snapshot(root="/x", facts=FACTS,
                                           files={spec.request(): found}))
    (row,) = outcome.evidence.items
    assert row["files"] == [MAIN, DROPIN]
    assert row["settings"] == [
        {"expected": "PermitRootLogin == no (fail when unset)", "verdict": "pass",
         "values": [{"keyword": "permitrootlogin", "value": "no", "file": DROPIN, "line": 1,
                     "match": None, "verdict": "pass"}]},
        {"expected": "LoginGraceTime <= 60 (default '60')", "verdict": "pass",
         "values": [{"keyword": "LoginGraceTime", "value": "60", "file": None, "line": None,
                     "match": None, "verdict": "pass",
                     "assumed": "not set: the policy's default"}]}]
    assert outcome.evidence.expected == (
        f"{MAIN} exists, as sshd reads it, PermitRootLogin == no (fail when unset), "
        "LoginGraceTime <= 60 (default '60')")
    assert KIND.request(spec).files == {FileRequest(MAIN, text=True, config="sshd")}


def test_an_sshd_configuration_that_cannot_be_read_is_an_error() -> None:
    refused = ReadError(f"sshd would refuse this configuration: {MAIN}:3: invalid quotes")
    assert sshd_judge({"keyword": "PermitRootLogin", "value": "no", "unset": "pass"},
                      config=refused) == (
        Status.ERROR, f"cannot evaluate: {MAIN}: settings: sshd would refuse this "
                      f"configuration: {MAIN}:3: invalid quotes")
    assert judge({**SSHD_SPEC, "settings": [{"keyword": "X", "value": 1, "unset": "pass"}]},
                 entry(MAIN))[0] is Status.ERROR  # not read at all


@pytest.mark.parametrize(
    ("raw", "found"),
    [
        ({**SSHD_SPEC, "path": "/etc/ssh/*.conf", "settings": [{"keyword": "A", "value": 1,
                                                                  "unset": "fail"}]},
         [(("config",), "'config' reads one file: write the path without a glob")]),
        (SSHD_SPEC, [(("config",), "'config' without 'settings' checks nothing it reads")]),
        ({**SSHD_SPEC, "sections": "^Match", "settings": [{"keyword": "A", "value": 1,
                                                          "default": 1}]},
         [(("sections",), "'sections' with 'config': assert the effective configuration "
           "with 'settings', the file's own text in a separate check")]),
        ({**SSHD_SPEC, "settings": [{"keyword": ["A", "match"], "value": "x"}]},
         [(("settings", 0, "keyword"), "match is not a setting: sshd follows it while "
           "reading"),
          (("settings", 0), "a setting names exactly one of 'default' (the value sshd uses "
           "when nothing sets the keyword) and 'unset' (the verdict then)")]),
        ({**SSHD_SPEC, "settings": [{"keyword": "A", "op": "le", "value": "x",
                                     "unset": "fail"}]},
         [(("settings", 0, "value"), "op 'le' needs an integer value")]),
        ({**SSHD_SPEC, "settings": [{"keyword": "UsePAM", "value": "yes", "unset": "fail",
                                     "match_blocks": True}]},
         [(("settings", 0, "match_blocks"), "sshd does not take UsePAM inside a Match "
           "block")]),
        ({"path": MAIN, "settings": [{"keyword": "A", "value": 1, "unset": "fail"}]},
         [(("settings",), "'settings' needs 'config' (which program's configuration the "
           "file is)")]),
        ({**SSHD_SPEC, "exists": False},
         [(("config",), "'config' means nothing with exists: false")]),
    ],
)
def test_sshd_lint_problems(raw: dict[str, Any],
                            found: list[tuple[tuple[str | int, ...], str]]) -> None:
    with pytest.raises(SpecError) as caught:
        KIND.parse(raw)
    assert [(p.path, p.message) for p in caught.value.problems] == found


def test_sshd_value_that_cannot_be_judged_is_an_error_row_with_its_reason() -> None:
    spec = KIND.parse({**SSHD_SPEC, "settings": [
        {"keyword": "PermitRootLogin", "op": "ge", "value": 1, "unset": "fail"}]})
    found = FileSet((entry(MAIN, text="", config=CONFIG),), USERS, GROUPS)
    outcome = KIND.evaluate(spec, Snapshot(root="/x", facts=FACTS,
                                           files={spec.request(): found}))
    (row,) = outcome.evidence.items
    (setting,) = row["settings"]
    assert setting["verdict"] == "error"
    assert [(v["verdict"], v["reason"]) for v in setting["values"]] == [
        ("error", "value 'no' is not an integer")]
