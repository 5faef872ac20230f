"""Profile files: defaults, merging through extends, and exactly located errors."""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator

from agent.core.diagnostic import Diagnostic
from agent.core.location import Location
from agent.core.yamlload import Document, load_file
from agent.seccomp import profile as profile_mod
from agent.seccomp.model import ALLOW, EPERM, Action, ActionKind, ArgCondition, Profile, Rule
from agent.seccomp.profile import load_profile
from tests.support import PROJECT

HEAD = "apiVersion: hostguard/v1\nkind: SeccompProfile\nmetadata: {name: p}\n"
"""Three lines: a profile body starts on line 4."""
SHIPPED = PROJECT / "policies" / "seccomp"


def write(folder: Path, name: str, body: str, head: str = HEAD) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + body, encoding="utf-8")
    return path


def loaded(path: Path) -> Profile:
    result = load_profile(path)
    assert isinstance(result, Profile), [str(d) for d in result]
    return result


def errors(path: Path) -> list[str]:
    result = load_profile(path)
    assert isinstance(result, list), result
    assert all(isinstance(d, Diagnostic) for d in result)
    return [str(d).replace(str(path.parent) + "/", "") for d in result]


def test_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "default_action: kill_process\n"
                 "rules:\n  - syscalls: [read, '@sync', write, fsync]\n"
                 "deny:\n  - syscalls: [sync]\n")
    prof = loaded(path)
    assert prof.default_action == Action(ActionKind.KILL_PROCESS)
    assert prof.architectures == ("native",)
    assert prof.no_new_privs is True
    assert prof.mode == "enforce"
    assert prof.extends == ()
    assert prof.name == "p"
    assert prof.rules == (Rule(
        syscalls=("read", "fdatasync", "fsync", "msync", "sync", "sync_file_range",
                  "sync_file_range2", "syncfs", "write"),
        action=ALLOW, written=("read", "@sync", "write", "fsync"),
        location=Location(str(path), 6, 5)),)
    assert prof.deny == (Rule(("sync",), EPERM, written=("sync",),
                              location=Location(str(path), 8, 5)),)


def test_actions_args_and_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", (
        "default_action: {errno: 38}\n"
        "architectures: [native]\n"
        "no_new_privs: false\n"
        "mode: log\n"
        "rules:\n"
        "  - syscalls: [socket]\n"
        "    action: log\n"
        "    args:\n"
        "      - {index: 0, op: eq, value: 0x2}\n"
        "      - {index: 1, op: masked_eq, value: 1, mask: 0xf}\n"
        "      - {index: 5, op: le, value: 18446744073709551615}\n"
        "  - syscalls: [ptrace]\n"
        "    acknowledged: profiler\n"
        "deny:\n"
        "  - syscalls: [kill]\n"
        "    action: trap\n"
    ))
    prof = loaded(path)
    assert prof.default_action == Action(ActionKind.ERRNO, 38)
    assert (prof.no_new_privs, prof.mode) == (False, "log")
    assert prof.rules[0].action == Action(ActionKind.LOG)
    assert prof.rules[0].args == (ArgCondition(0, "eq", 2), ArgCondition(1, "masked_eq", 1, 15),
                                  ArgCondition(5, "le", 2**64 - 1))
    assert prof.rules[1].acknowledged == "profiler"
    assert prof.deny[0].action == Action(ActionKind.TRAP)


def test_shipped_gateway_merges_base_first() -> None:
    gateway = loaded(SHIPPED / "trading-gateway.yaml")
    base = loaded(SHIPPED / "base.yaml")
    assert gateway.rules[: len(base.rules)] == base.rules
    assert gateway.deny == base.deny
    assert gateway.default_action == EPERM
    assert gateway.architectures == ("native",)
    assert gateway.extends == ("base.yaml",)
    sockets = [r for r in gateway.rules if r.syscalls == ("socket",)]
    assert [r.args for r in sockets] == [(ArgCondition(0, "eq", family),)
                                         for family in (2, 10, 1, 16)]
    allowed = {n for r in gateway.rules for n in r.syscalls}
    assert {"sched_setaffinity", "sched_setscheduler", "mlockall"} <= allowed
    assert not {"ptrace", "bpf", "mount", "socketcall"} & allowed


def test_extends_merges_and_overrides(tmp_path: Path) -> None:
    write(tmp_path, "base/root.yaml", "default_action: kill_process\nmode: log\n"
          "architectures: [x86_64]\nrules:\n  - syscalls: [read]\n")
    write(tmp_path, "base/mid.yaml", "extends: [root.yaml]\nrules:\n  - syscalls: [write]\n"
          "deny:\n  - syscalls: [kill]\n")
    child = write(tmp_path, "child.yaml", "extends: [base/mid.yaml, base/root.yaml]\n"
                  "default_action: {errno: 1}\nrules:\n  - syscalls: [close]\n"
                  "deny:\n  - syscalls: [tkill]\n")
    prof = loaded(child)
    assert [r.syscalls for r in prof.rules] == [("read",), ("write",), ("close",)]
    assert [r.syscalls for r in prof.deny] == [("kill",), ("tkill",)]
    assert prof.default_action == EPERM  # the child's
    assert prof.mode == "log"  # inherited
    assert prof.architectures == ("x86_64",)
    assert prof.rules[0].location == Location(str(tmp_path / "base/root.yaml"), 8, 5)
    assert prof.extends == ("base/mid.yaml", "base/root.yaml")


def test_extends_cycle(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "extends: [b.yaml]\ndefault_action: allow\n")
    write(tmp_path, "b.yaml", "extends: [a.yaml]\n")
    found = errors(a)
    assert found == [
        "a.yaml:4:11: error: base profile 'b.yaml' has errors (first: b.yaml:4:11: error: "
        "extends cycle: a.yaml -> b.yaml -> a.yaml [extends-cycle]) [extends-invalid]",
        "b.yaml:4:11: error: extends cycle: a.yaml -> b.yaml -> a.yaml [extends-cycle]",
    ]


def test_extends_missing_and_invalid(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", "default_action: nope\n")
    path = write(tmp_path, "p.yaml", "extends: [gone.yaml, bad.yaml]\n")
    found = errors(path)
    assert found == [
        "bad.yaml:4:17: error: default_action must be one of kill_process, "
        "kill_thread, trap, log, allow, not 'nope' [schema]",
        "p.yaml:4:11: error: cannot load 'gone.yaml': gone.yaml:1:1: "
        "cannot read file: No such file or directory [extends-missing]",
        "p.yaml:4:22: error: base profile 'bad.yaml' has errors (first: "
        "bad.yaml:4:17: error: default_action must be one of kill_process, "
        "kill_thread, trap, log, allow, not 'nope' [schema]) [extends-invalid]",
    ]


def test_no_default_action_anywhere(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", "extends: []\n")
    path = write(tmp_path, "p.yaml", "extends: [b.yaml]\n")
    assert errors(path) == [
        "p.yaml:1:1: error: no default_action here or in any base profile [schema]"]


def test_schema_errors_are_located(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", (
        "default_action: {errno: 5000}\n"          # 4
        "architectures: [native, vax]\n"           # 5
        "mode: audit\n"                            # 6
        "rules:\n"                                 # 7
        "  - syscall: [read]\n"                    # 8
        "  - syscalls: [read]\n"                   # 9
        "    action: deny\n"                       # 10
        "    args:\n"                              # 11
        "      - {index: 6, op: eq, value: -1}\n"  # 12
        "      - {index: 0, op: masked_eq, value: 18446744073709551616}\n"  # 13
        "  - syscalls: []\n"                       # 14
        "  - syscalls: ['re ad']\n"                # 15
    ))
    assert errors(path) == [
        "p.yaml:4:25: error: default_action.errno: 5000 is greater than the maximum of 4095 "
        "[schema]",
        "p.yaml:5:25: error: architectures[1] must be one of native, x86, x86_64, x32, arm, "
        "aarch64, mips, mipsel, mips64, mipsel64, mips64n32, mipsel64n32, parisc, parisc64, ppc, "
        "ppc64, ppc64le, s390, s390x, riscv64, not 'vax' [schema]",
        "p.yaml:6:7: error: mode must be one of enforce, log, not 'audit' [schema]",
        "p.yaml:8:5: error: missing required key 'syscalls' in rules[0] [schema]",
        "p.yaml:8:5: error: unknown key 'syscall' (did you mean 'syscalls'?) [unknown-key]",
        "p.yaml:10:13: error: rules[1].action must be one of kill_process, kill_thread, trap, "
        "log, allow, not 'deny' [schema]",
        "p.yaml:12:17: error: rules[1].args[0].index: 6 is greater than the maximum of 5 "
        "[schema]",
        "p.yaml:12:35: error: rules[1].args[0].value: -1 is less than the minimum of 0 [schema]",
        "p.yaml:13:9: error: missing required key 'mask' in rules[1].args[1] [schema]",
        "p.yaml:13:42: error: rules[1].args[1].value: 18446744073709551616 is greater than the "
        "maximum of 18446744073709551615 [schema]",
        "p.yaml:14:15: error: rules[2].syscalls must not be empty [schema]",
        "p.yaml:15:16: error: rules[3].syscalls[0] value 're ad' does not match "
        "^@?[A-Za-z0-9_-]{1,64}$ [schema]",
    ]


def test_semantic_errors_are_located(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", (
        "default_action: {errno: 1}\n"                             # 4
        "rules:\n"                                                 # 5
        "  - syscalls: [raed, '@network', '@sync', epoll_wiat]\n"  # 6
        "    args: [{index: 0, op: eq, value: 1, mask: 3}]\n"      # 7
        "deny:\n"                                                  # 8
        "  - syscalls: [nonsense_call]\n"                          # 9
    ))
    assert errors(path) == [
        "p.yaml:6:16: error: unknown syscall 'raed' (did you mean 'read'?) "
        "[seccomp-unknown-syscall]",
        "p.yaml:6:22: error: unknown syscall group '@network' (did you mean '@network-io'?) "
        "[seccomp-unknown-group]",
        "p.yaml:6:43: error: unknown syscall 'epoll_wiat' (did you mean 'epoll_wait'?) "
        "[seccomp-unknown-syscall]",
        "p.yaml:7:41: error: rules[0].args[0]: mask is only meaningful with op masked_eq, "
        "not eq [seccomp-arg]",
        "p.yaml:9:16: error: unknown syscall 'nonsense_call' [seccomp-unknown-syscall]",
    ]


def test_other_abi_is_an_error_and_stops_loading(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "default_action: kill_process\n"
                 "architectures: [native, x32]\n")
    assert errors(path) == [
        "p.yaml:5:25: error: architecture 'x32' opens a second ABI of x86_64: its syscalls "
        "would pass by x32 rules instead of being killed (the classic filter bypass); list "
        "only native [seccomp-abi-open]"]


def test_not_a_profile(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "checks: []\n", head="apiVersion: hostguard/v1\n"
                 "kind: Policy\nmetadata: {name: p}\n")
    assert errors(path) == [
        "p.yaml:2:7: error: not a seccomp profile: apiVersion 'hostguard/v1', kind 'Policy' "
        "(expected 'hostguard/v1', 'SeccompProfile') [unknown-document]"]
    path.write_text("{ unclosed", encoding="utf-8")
    assert errors(path) == ["p.yaml:2:1: error: while parsing a flow mapping did not find "
                            "expected ',' or '}' [yaml-syntax]"]


def test_shipped_schema_is_fresh() -> None:
    # If this fails: python -m agent.seccomp.profile --write
    shipped = PROJECT / "agent" / "seccomp" / "profile.schema.json"
    assert shipped.read_text(encoding="utf-8") == profile_mod.render()
    assert profile_mod.main(["--check"]) == 0
    assert profile_mod.shipped() == json.loads(shipped.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(profile_mod.shipped())


def test_schema_accepts_the_shipped_profiles() -> None:
    validator = Draft202012Validator(profile_mod.shipped())
    for path in sorted(SHIPPED.glob("*.yaml")):
        doc = load_file(path)
        assert isinstance(doc, Document)
        assert list(validator.iter_errors(doc.data)) == [], path


# --- YAML out -----------------------------------------------------------------------------------

def test_to_yaml_reads_back_as_the_same_profile(tmp_path: Path) -> None:
    profile = Profile(
        name="Imported Gateway!", default_action=Action(ActionKind.ERRNO, 13),
        rules=(Rule(("read", "write"), ALLOW),
               Rule(("socket",), ALLOW, (ArgCondition(0, "eq", 2),)),
               Rule(("clone",), ALLOW, (ArgCondition(0, "masked_eq", 0, mask=0x7E020000),)),
               Rule(("getuid",), Action(ActionKind.LOG), written=("@getuid-alias",)),
               Rule(("ptrace",), ALLOW, acknowledged="the profiler attaches to its threads")),
        deny=(Rule(("mount",), EPERM), Rule(("reboot",), Action(ActionKind.KILL_THREAD))),
        no_new_privs=False, mode="log")
    text = profile_mod.to_yaml(profile, ["imported from x.json", "note " * 30])
    lines = text.splitlines()
    assert lines[0] == "# imported from x.json"
    assert lines[1].startswith("# note note") and len(lines[1]) <= 98
    assert lines[2].startswith("#   note")  # a long header line goes on, indented
    assert "\n- syscalls: ['@getuid-alias']\n  action: log\n" in text  # as written
    path = tmp_path / "p.yaml"
    path.write_text(text.replace("'@getuid-alias'", "getuid"), encoding="utf-8")
    back = loaded(path)
    assert back.name == "imported-gateway"
    assert (back.default_action, back.architectures, back.no_new_privs, back.mode) == (
        profile.default_action, ("native",), False, "log")

    def shape(rules: tuple[Rule, ...]) -> list[object]:
        return [(r.syscalls, r.action, r.args, r.acknowledged) for r in rules]

    assert shape(back.rules) == shape(profile.rules)
    assert shape(back.deny) == shape(profile.deny)
    without_deny = profile_mod.to_yaml(Profile(name="", default_action=ALLOW))
    assert "deny:" not in without_deny and "name: imported" in without_deny
