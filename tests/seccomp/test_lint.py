"""Each seccomp lint rule, with its exact located message."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

from agent.core.yamlload import Document, load_file
from agent.lint.documents import LINTERS
from agent.seccomp import lint as lint_mod
from agent.seccomp import syscalls
from agent.seccomp.lint import lint_profile
from tests.support import PROJECT

HEAD = "apiVersion: hostguard/v1\nkind: SeccompProfile\nmetadata: {name: p}\n"
"""Three lines; the body starts on line 4 and usually sets default_action there."""
DEFAULT = "default_action: {errno: 1}\n"
TODAY = dt.date(2026, 11, 24)


def lint_text(folder: Path, body: str, name: str = "p.yaml") -> list[str]:
    path = folder / name
    path.write_text(HEAD + body, encoding="utf-8")
    doc = load_file(path, str(path))
    assert isinstance(doc, Document)
    return [str(d).replace(str(folder) + "/", "") for d in lint_profile(doc, TODAY)]


def test_registered_for_the_engine() -> None:
    assert LINTERS["SeccompProfile"] is lint_profile


def test_shipped_profiles_lint_clean() -> None:
    for path in sorted((PROJECT / "policies" / "seccomp").glob("*.yaml")):
        doc = load_file(path, str(path))
        assert isinstance(doc, Document)
        assert [str(d) for d in lint_profile(doc, TODAY)] == [], path


def test_clean_profile(tmp_path: Path) -> None:
    assert lint_text(tmp_path, DEFAULT + "rules:\n  - syscalls: ['@basic-io', '@io-event']\n") == []


def test_load_errors_are_reported(tmp_path: Path) -> None:
    assert lint_text(tmp_path, DEFAULT + "rules:\n  - syscalls: [reed]\n") == [
        "p.yaml:6:16: error: unknown syscall 'reed' (did you mean 'read'?) "
        "[seccomp-unknown-syscall]"]


def test_abi_open(tmp_path: Path) -> None:
    assert lint_text(tmp_path, DEFAULT + "architectures: [native, x86, x32]\n") == [
        "p.yaml:5:25: error: architecture 'x86' opens a second ABI of x86_64: its syscalls "
        "would pass by x86 rules instead of being killed (the classic filter bypass); list "
        "only native [seccomp-abi-open]",
        "p.yaml:5:30: error: architecture 'x32' opens a second ABI of x86_64: its syscalls "
        "would pass by x32 rules instead of being killed (the classic filter bypass); list "
        "only native [seccomp-abi-open]",
    ]
    assert lint_text(tmp_path, DEFAULT + "architectures: [x86]\n") == [
        "p.yaml:5:17: error: architecture 'x86' opens a second ABI of x86_64: its syscalls "
        "would pass by x86 rules instead of being killed (the classic filter bypass); list "
        "only native [seccomp-abi-open]"]
    assert lint_text(tmp_path, DEFAULT + "architectures: [aarch64]\n") == []  # another CPU


def test_absent_syscall(tmp_path: Path) -> None:
    body = DEFAULT + "rules:\n  - syscalls: [socketcall, read]\n"
    assert lint_text(tmp_path, body) == [
        "p.yaml:6:16: warning: syscall 'socketcall' does not exist on x86_64: this entry has no "
        "effect [seccomp-absent-syscall]"]


def test_allow_deny(tmp_path: Path) -> None:
    body = DEFAULT + "rules:\n  - syscalls: [kill, tkill]\ndeny:\n  - syscalls: [kill]\n"
    assert lint_text(tmp_path, body) == [
        "p.yaml:6:16: warning: 'kill' is allowed here but denied at p.yaml:8:16; the deny "
        "wins [seccomp-allow-deny]"]
    # Subtracting from a group is the idiom, not a conflict; a conditional deny is partial.
    body = DEFAULT + ("rules:\n  - syscalls: ['@signal', kill]\n"
                      "deny:\n  - syscalls: [rt_sigaction]\n"
                      "  - syscalls: [kill]\n    args: [{index: 1, op: eq, value: 9}]\n")
    assert lint_text(tmp_path, body) == []


def test_shadowed(tmp_path: Path) -> None:
    body = DEFAULT + (
        "rules:\n"                                        # 5
        "  - syscalls: [close, '@sync']\n"                # 6
        "  - syscalls: [dup, close]\n"                    # 7
        "  - syscalls: [fsync, fdatasync]\n"              # 8
        "  - syscalls: ['@sync']\n"                       # 9
        "  - syscalls: [socket]\n"                        # 10
        "    args: [{index: 0, op: eq, value: 2}]\n"      # 11
        "  - syscalls: [socket]\n"                        # 12
    )
    assert lint_text(tmp_path, body) == [
        "p.yaml:7:21: warning: 'close' is already matched unconditionally by the rule at "
        "p.yaml:6:16; this entry never applies [seccomp-shadowed]",
        "p.yaml:8:16: warning: 'fsync' is already matched unconditionally by the rule at "
        "p.yaml:6:23; this entry never applies [seccomp-shadowed]",
        "p.yaml:8:23: warning: 'fdatasync' is already matched unconditionally by the rule at "
        "p.yaml:6:23; this entry never applies [seccomp-shadowed]",
        "p.yaml:9:5: warning: this rule never applies: each of its syscalls is matched "
        "unconditionally by an earlier rule (the first at p.yaml:6:23) [seccomp-shadowed]",
    ]


def test_shadowed_in_deny(tmp_path: Path) -> None:
    body = DEFAULT + ("deny:\n  - syscalls: [mount]\n"
                      "  - syscalls: [mount]\n    action: kill_process\n")
    assert lint_text(tmp_path, body) == [
        "p.yaml:7:16: warning: 'mount' is already matched unconditionally by the rule at "
        "p.yaml:6:16; this entry never applies [seccomp-shadowed]"]


def test_dangerous(tmp_path: Path) -> None:
    body = DEFAULT + (
        "rules:\n"                                         # 5
        "  - syscalls: [ptrace, getpid]\n"                 # 6
        "  - syscalls: ['@ipc']\n"                         # 7
        "  - syscalls: [bpf]\n"                            # 8
        "    acknowledged: loads our XDP program\n"        # 9
        "  - syscalls: [mount]\n"                          # 10
        "    action: {errno: 1}\n"                         # 11
        "  - syscalls: ['@process']\n"                     # 12
        "deny:\n"                                          # 13
        "  - syscalls: [setns]\n"                          # 14
    )
    assert lint_text(tmp_path, body) == [
        "p.yaml:6:16: warning: dangerous syscall allowed: ptrace reads and writes other "
        "processes' memory and registers; deny it, or give the reason under acknowledged: "
        "[seccomp-dangerous]",
        "p.yaml:7:16: warning: dangerous syscalls allowed through '@ipc': process_vm_readv "
        "reads other processes' memory; process_vm_writev writes other processes' memory; deny "
        "it, or give the reason under acknowledged: [seccomp-dangerous]",
        "p.yaml:12:16: warning: dangerous syscall allowed through '@process': unshare creates "
        "namespaces (user namespaces expose kernel attack surface); deny it, or give the reason "
        "under acknowledged: [seccomp-dangerous]",
    ]


def test_hot_args(tmp_path: Path) -> None:
    body = DEFAULT + (
        "rules:\n"
        "  - syscalls: [write, futex, close]\n"
        "    args: [{index: 0, op: eq, value: 1}]\n"
        "  - syscalls: [socket]\n"
        "    args: [{index: 0, op: eq, value: 2}]\n"
        "deny:\n"
        "  - syscalls: [read]\n"
        "    args: [{index: 0, op: gt, value: 1000}]\n"
    )
    assert lint_text(tmp_path, body) == [
        "p.yaml:7:5: warning: argument conditions on hot syscalls write, futex: the kernel "
        "cannot cache their verdict, so the filter runs on every call [seccomp-hot-args]",
        "p.yaml:12:5: warning: argument conditions on hot syscall read: the kernel cannot cache "
        "their verdict, so the filter runs on every call [seccomp-hot-args]",
    ]


def test_default_allow(tmp_path: Path) -> None:
    assert lint_text(tmp_path, "default_action: allow\ndeny:\n  - syscalls: [ptrace]\n") == [
        "p.yaml:4:17: warning: default_action allow makes a deny-list: every syscall not "
        "listed, including those of future kernels, is allowed [seccomp-default-allow]"]
    assert lint_text(tmp_path, "default_action: log\n") == [
        "p.yaml:4:17: warning: default_action log makes a deny-list: every syscall not "
        "listed, including those of future kernels, is allowed [seccomp-default-allow]"]


def test_trading_denied(tmp_path: Path) -> None:
    body = DEFAULT + (
        "rules:\n"                                         # 5
        "  - syscalls: [setpriority]\n"                    # 6
        "    action: {errno: 1}\n"                         # 7
        "deny:\n"                                          # 8
        "  - syscalls: [sched_setaffinity, '@memlock']\n"  # 9
        "  - syscalls: [sched_setscheduler]\n"             # 10
        "    acknowledged: this engine runs SCHED_OTHER\n"  # 11
    )
    assert lint_text(tmp_path, body) == [
        "p.yaml:6:16: warning: denies setpriority, which a trading process needs for raising "
        "priority [seccomp-trading-denied]",
        "p.yaml:9:16: warning: denies sched_setaffinity, which a trading process needs for CPU "
        "pinning [seccomp-trading-denied]",
        "p.yaml:9:35: warning: denies mlock, mlock2, mlockall through '@memlock', which a "
        "trading process needs for locking memory, locking memory (mlockall) "
        "[seccomp-trading-denied]",
    ]


def test_findings_stay_with_their_file(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(HEAD + DEFAULT + "rules:\n  - syscalls: [ptrace]\n",
                                        encoding="utf-8")
    # The base's own warning belongs to the base's lint; cross-file findings land in the child.
    assert lint_text(tmp_path, "extends: [base.yaml]\nrules:\n  - syscalls: [ptrace, kexec_load]\n"
                     "architectures: [native, x32]\n", name="child.yaml") == [
        "child.yaml:6:16: warning: 'ptrace' is already matched unconditionally by the rule at "
        "base.yaml:6:16; this entry never applies [seccomp-shadowed]",
        "child.yaml:6:16: warning: dangerous syscall allowed: ptrace reads and writes other "
        "processes' memory and registers; deny it, or give the reason under acknowledged: "
        "[seccomp-dangerous]",
        "child.yaml:6:24: warning: dangerous syscall allowed: kexec_load replaces the running "
        "kernel; deny it, or give the reason under acknowledged: [seccomp-dangerous]",
        "child.yaml:7:25: error: architecture 'x32' opens a second ABI of x86_64: its syscalls "
        "would pass by x32 rules instead of being killed (the classic filter bypass); list "
        "only native [seccomp-abi-open]",
    ]
    (tmp_path / "base.yaml").write_text(HEAD + DEFAULT + "rules:\n  - syscalls: [ptrase]\n",
                                        encoding="utf-8")
    assert lint_text(tmp_path, "extends: [base.yaml]\n", name="child.yaml") == [
        "child.yaml:4:11: error: base profile 'base.yaml' has errors (first: base.yaml:6:16: "
        "error: unknown syscall 'ptrase' (did you mean 'ptrace'?) [seccomp-unknown-syscall]) "
        "[extends-invalid]"]


def test_rule_lists_are_consistent() -> None:
    assert set(lint_mod.HOT_SYSCALLS).isdisjoint(lint_mod.DANGEROUS)
    for name in (*lint_mod.HOT_SYSCALLS, *lint_mod.DANGEROUS, *lint_mod.TRADING_NEEDS):
        assert syscalls.resolve(name, "x86_64") is not None, name
    # The trading calls are systemd's @resources/@memlock ones.
    assert set(lint_mod.TRADING_NEEDS) <= set(syscalls.expand(["@resources", "@memlock"]))


def test_docs_example_lints_clean(tmp_path: Path) -> None:
    text = (PROJECT / "docs" / "seccomp.md").read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert example is not None
    shutil.copy(PROJECT / "policies" / "seccomp" / "base.yaml", tmp_path / "base.yaml")
    path = tmp_path / "router.yaml"
    path.write_text(example.group(1), encoding="utf-8")
    doc = load_file(path, str(path))
    assert isinstance(doc, Document)
    assert [str(d) for d in lint_profile(doc, TODAY)] == []
