"""The file reader on trees built here and on the live host, with ``stat``, ``sha256sum``,
``grep`` and ``sed`` (coreutils, grep, sed) as the oracle on the same files."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent.host.facts import ReadError
from agent.host.files import MAX_MATCHES, FileEntry, FileRequest, read_files, resolve
from tests.support import need_root, need_tool, run_cli

SSHD = """\
Port 22
PermitRootLogin no
#PermitRootLogin yes
X11Forwarding yes

Match Address 10.0.0.0/8
    PermitRootLogin yes
    X11Forwarding no
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A host root: its own accounts, files of every type, modes and owners set as root."""
    need_root()
    root = tmp_path / "root"
    etc = root / "etc"
    (etc / "ssh" / "sshd_config.d").mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/sh\nalice:x:1500:1500::/:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\nshadow:x:42:\naudit:x:1600:alice\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    os.chown(etc / "shadow", 0, 42)
    os.chmod(etc / "shadow", 0o640)
    (etc / "ssh" / "sshd_config").write_text(SSHD)
    for name, mode in (("10-a.conf", 0o644), ("20-b.conf", 0o600), (".hidden.conf", 0o666)):
        (etc / "ssh" / "sshd_config.d" / name).write_text(f"# {name}\n")
        os.chmod(etc / "ssh" / "sshd_config.d" / name, mode)
    (etc / "app.key").write_text("secret\n")
    os.chown(etc / "app.key", 1500, 1600)
    os.chmod(etc / "app.key", 0o4750)
    (etc / "relative-link").symlink_to("ssh/sshd_config")
    (etc / "absolute-link").symlink_to("/etc/shadow")      # the root's shadow, not the host's
    (etc / "escape").symlink_to("../../../../../../etc/hostname")  # stays inside the root
    (etc / "dangling").symlink_to("/nowhere")
    (etc / "loop-a").symlink_to("loop-b")
    (etc / "loop-b").symlink_to("loop-a")
    os.mkfifo(etc / "fifo")
    return root


def one(root: Path, pattern: str, **how: Any) -> FileEntry | ReadError:
    (found,) = read_files(root, FileRequest(pattern, **how)).entries
    return found


def stat_oracle(path: Path, follow: bool) -> list[str]:
    stat = need_tool("stat")
    fmt = "%F|%a|%u|%g|%s"
    return subprocess.run([stat, *(["-L"] if follow else []), "-c", fmt, str(path)],
                          capture_output=True, text=True, check=True).stdout.strip().split("|")


_TYPES = {"regular file": "file", "regular empty file": "file", "directory": "directory",
          "symbolic link": "symlink", "fifo": "fifo"}


def as_stat(entry: FileEntry | ReadError) -> list[str]:
    assert isinstance(entry, FileEntry), entry
    return [entry.type, f"{entry.mode:o}", str(entry.uid), str(entry.gid), str(entry.size)]


@pytest.mark.parametrize(("path", "follow"), [
    ("etc/shadow", True), ("etc/app.key", True), ("etc/ssh", True), ("etc/fifo", True),
    ("etc/relative-link", True), ("etc/relative-link", False), ("etc/absolute-link", False),
    ("etc/ssh/sshd_config.d/20-b.conf", False),
])
def test_stat_agrees(tree: Path, path: str, follow: bool) -> None:
    oracle = stat_oracle(tree / path, follow)
    oracle[0] = _TYPES[oracle[0]]
    assert as_stat(one(tree, f"/{path}", follow=follow)) == oracle


def test_links_resolve_inside_the_root_and_the_evidence_says_so(tree: Path) -> None:
    followed = one(tree, "/etc/absolute-link")
    assert isinstance(followed, FileEntry)
    # stat on the link inside the tree would follow /etc/shadow on this host: ask for the
    # root's own target instead.
    oracle = stat_oracle(tree / "etc" / "shadow", True)
    assert as_stat(followed)[1:] == oracle[1:]
    assert (followed.link, followed.resolved, followed.followed) == (
        "/etc/shadow", "/etc/shadow", True)
    kept = one(tree, "/etc/absolute-link", follow=False)
    assert isinstance(kept, FileEntry)
    assert (kept.type, kept.link, kept.followed) == ("symlink", "/etc/shadow", False)
    assert one(tree, "/etc/escape") == ReadError(
        "dangling symbolic link: /etc/escape -> /etc/hostname")
    assert one(tree, "/etc/dangling") == ReadError(
        "dangling symbolic link: /etc/dangling -> /nowhere")
    assert one(tree, "/etc/loop-a") == ReadError(
        "too many levels of symbolic links: /etc/loop-a")
    assert resolve(str(tree), "/etc/../../../etc/ssh/../shadow", True) == "/etc/shadow"


def test_globs_match_as_the_shell_does(tree: Path) -> None:
    found = read_files(tree, FileRequest("/etc/ssh/sshd_config.d/*.conf")).entries
    shell = subprocess.run(["/bin/sh", "-c", "cd \"$1\" && printf '%s\\n' "
                            "etc/ssh/sshd_config.d/*.conf", "sh", str(tree)],
                           capture_output=True, text=True, check=True).stdout.split()
    assert [e.path for e in found if isinstance(e, FileEntry)] == [f"/{p}" for p in shell]
    assert read_files(tree, FileRequest("/etc/ssh/nothing*/x")).entries == ()
    assert read_files(tree, FileRequest("/etc/nothing")).entries == ()
    many = tree / "many"
    many.mkdir()
    for i in range(MAX_MATCHES + 1):
        (many / f"f{i}").touch()
    assert read_files(tree, FileRequest("/many/f*")).entries == (
        ReadError(f"/many/f* matches more than {MAX_MATCHES} paths"),)


def test_digest_and_text_agree_with_sha256sum_and_grep(tree: Path) -> None:
    sha256sum, grep, sed = need_tool("sha256sum"), need_tool("grep"), need_tool("sed")
    config = tree / "etc" / "ssh" / "sshd_config"
    entry = one(tree, "/etc/relative-link", digest=True, text=True)
    assert isinstance(entry, FileEntry)
    expected = subprocess.run([sha256sum, str(config)], capture_output=True, text=True,
                              check=True).stdout.split()[0]
    assert entry.sha256 == expected
    assert entry.text == config.read_text()
    fifo = one(tree, "/etc/fifo", digest=True, text=True)
    assert isinstance(fifo, FileEntry)
    assert fifo.sha256 == fifo.text == ReadError("not a regular file (fifo): /etc/fifo")
    # Lines that match, over the whole file and over the global scope (before any Match),
    # as the file kind reports them and as grep finds them.
    policy = tree.parent / "policy.yaml"
    policy.write_text(_POLICY.format(path="/etc/ssh/sshd_config"))
    done = run_cli("audit", "--root", str(tree), "--policy", str(policy), "--format", "json")
    results = {r["id"]: r for r in json.loads(done.stdout)["results"]}
    whole = subprocess.run([grep, "-n", "-E", r"^\s*PermitRootLogin\s+yes", str(config)],
                           capture_output=True, text=True, check=True).stdout.split("\n")
    matches = results["L1"]["evidence"]["items"][0]["lines"][0]["matches"]
    assert [f"{m['line']}:{m['text']}" for m in matches] == [line for line in whole if line]
    assert results["L1"]["status"] == "fail"
    glob_scope = subprocess.run([sed, "-E", r"/^\s*Match\s/,$d", str(config)],
                                capture_output=True, text=True, check=True).stdout
    in_global = subprocess.run([grep, "-c", "-E", r"^\s*PermitRootLogin\s+yes"],
                               input=glob_scope, capture_output=True, text=True,
                               check=False).stdout.strip()  # grep -c exits 1 on no match
    assert in_global == "0"
    assert results["L2"]["status"] == "pass"
    assert results["L3"]["status"] == "fail"  # X11Forwarding no only inside Match
    assert results["L3"]["message"] == (
        r"/etc/ssh/sshd_config: no line matches /^\s*X11Forwarding\s+no\b/")


_POLICY = """\
apiVersion: hostguard/v1
kind: Policy
metadata: {{name: lines}}
checks:
  - id: L1
    kind: file
    title: t
    severity: low
    rationale: r
    remediation: m
    spec: {{path: {path}, lines: [{{absent: '^\\s*PermitRootLogin\\s+yes'}}]}}
  - id: L2
    kind: file
    title: t
    severity: low
    rationale: r
    remediation: m
    spec:
      path: {path}
      sections: '^\\s*Match\\s'
      lines: [{{absent: '^\\s*PermitRootLogin\\s+yes', global: true}}]
  - id: L3
    kind: file
    title: t
    severity: low
    rationale: r
    remediation: m
    spec:
      path: {path}
      sections: '^\\s*Match\\s'
      lines: [{{match: '^\\s*X11Forwarding\\s+no\\b', global: true}}]
  - id: O1
    kind: file
    title: t
    severity: low
    rationale: r
    remediation: m
    spec: {{path: /etc/app.key, owner: alice, group: audit, mode: "0750"}}
  - id: O2
    kind: file
    title: t
    severity: low
    rationale: r
    remediation: m
    spec: {{path: /etc/shadow, owner: root, group: shadow, mode: "0640", mode_exact: true}}
"""


def test_names_come_from_the_roots_accounts(tree: Path) -> None:
    # alice and audit exist only in the tree's etc/passwd and etc/group.
    policy = tree.parent / "policy.yaml"
    policy.write_text(_POLICY.format(path="/etc/ssh/sshd_config"))
    done = run_cli("audit", "--root", str(tree), "--policy", str(policy), "--format", "json")
    results = {r["id"]: (r["status"], r["message"]) for r in json.loads(done.stdout)["results"]}
    assert results["O1"] == ("fail", "/etc/app.key: mode 4750 exceeds 0750 (extra bits 4000)")
    assert results["O2"] == ("pass", "/etc/shadow: file 0640 root:shadow")
    (tree / "etc" / "passwd").unlink()
    done = run_cli("audit", "--root", str(tree), "--policy", str(policy), "--format", "json")
    results = {r["id"]: (r["status"], r["message"]) for r in json.loads(done.stdout)["results"]}
    assert results["O2"] == ("error", "cannot evaluate: /etc/shadow: owner names cannot be "
                                      f"resolved: no such file or directory: {tree}/etc/passwd")


def test_live_host_agrees_with_stat() -> None:
    stat = need_tool("stat")
    for path in ("/etc/passwd", "/etc/shadow", "/etc/hostname", "/etc", "/proc/self/exe"):
        if not os.path.lexists(path):
            continue
        entry = one(Path("/"), path)
        assert isinstance(entry, FileEntry)
        line = subprocess.run([stat, "-L", "-c", "%F|%a|%u|%g|%s", path], capture_output=True,
                              text=True, check=True).stdout.strip().split("|")
        line[0] = _TYPES[line[0]]
        if path == "/proc/self/exe":  # stat's own exe differs from this process's: type only
            assert entry.type == line[0] and entry.followed
            continue
        assert as_stat(entry) == line, path
    # The names the file kind shows, from /etc/passwd and /etc/group, are stat's (NSS) names.
    found = read_files(Path("/"), FileRequest("/etc/shadow"))
    (shadow,) = found.entries
    assert isinstance(shadow, FileEntry)
    assert not isinstance(found.users, ReadError) and not isinstance(found.groups, ReadError)
    names = subprocess.run([stat, "-c", "%U %G", "/etc/shadow"], capture_output=True, text=True,
                           check=True).stdout.split()
    assert [found.users.by_id[shadow.uid], found.groups.by_id[shadow.gid]] == names
