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
