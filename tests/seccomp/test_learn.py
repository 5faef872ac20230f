"""Profile additions from seccomp records: the text edit keeps comments, or falls back."""

from __future__ import annotations

from pathlib import Path

from agent.seccomp import learn, syscalls
from agent.seccomp.profile import load_profile

HEAD = "apiVersion: hostguard/v1\nkind: SeccompProfile\nmetadata:\n  name: t\n" \
       "default_action: {errno: 1}\n"
NATIVE = syscalls.arch_token("native")


def _learn(tmp_path: Path, text: str, *names: str) -> learn.Learned:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    profile = load_profile(path)
    assert not isinstance(profile, list), profile
    calls = [(NATIVE, syscalls.resolve(n)) for n in names]
    return learn.learn(profile, text, [(a, n) for a, n in calls if n is not None])


def test_block_list_keeps_comments(tmp_path: Path) -> None:
    text = HEAD + "rules:\n  - syscalls:   # what it needs\n      - read   # input\n" \
                  "      - write\n    action: allow\n# the end\n"
    got = _learn(tmp_path, text, "socket", "read", "getuid")
    assert got.add == ("getuid", "socket") and got.kept_comments
    assert got.text == text.replace("      - write\n",
                                    "      - write\n      - getuid\n      - socket\n")


def test_flow_list_and_denied_and_conditional(tmp_path: Path) -> None:
    text = HEAD + ("rules:\n  - syscalls: [read]  # keep\n    action: allow\n"
                   "  - syscalls: [prctl]\n    action: allow\n"
                   "    args: [{index: 0, op: eq, value: 15}]\n"
                   "deny:\n  - syscalls: [ptrace]\n    action: kill_process\n")
    got = _learn(tmp_path, text, "ptrace", "prctl", "getpid")
    assert got.add == ("getpid",)
    assert got.text == text.replace("[read]  # keep", "[read, getpid]  # keep")
    assert [n.split()[0] for n in got.notes] == ["prctl", "ptrace"]


def test_no_allow_rule_falls_back_to_to_yaml(tmp_path: Path) -> None:
    got = _learn(tmp_path, HEAD + "rules: []\n# gone\n", "getpid")
    assert got.add == ("getpid",) and not got.kept_comments
    assert "# gone" not in got.text and "getpid" in got.text


def test_other_abi_is_a_note(tmp_path: Path) -> None:
    text = HEAD + "rules:\n  - syscalls: [read]\n    action: allow\n"
    path = tmp_path / "p.yaml"
    path.write_text(text)
    profile = load_profile(path)
    assert not isinstance(profile, list)
    got = learn.learn(profile, text, [(0x40000003, 20)])
    assert got.add == () and got.text == text and "x86" in got.notes[0]


def test_wanted_actions() -> None:
    assert learn.wanted(0x7FFC0000) and learn.wanted(0x00050001) and learn.wanted(0x80000000)
    assert not learn.wanted(0x7FF00000) and not learn.wanted(0x7FFF0000)
