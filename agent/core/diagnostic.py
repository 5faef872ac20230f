"""What the linter reports: located diagnostics, and the catalogue of rules they come from."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from agent.core.location import Location
from agent.core.record import record


class Level(StrEnum):
    """How bad a diagnostic is; errors fail the lint, warnings only with ``--strict``."""

    ERROR = "error"
    WARNING = "warning"


@record
class Rule:
    """One kind of finding the linter can report."""

    id: str
    """Stable identifier shown in brackets after each message, e.g. ``unknown-key``."""
    level: Level
    """Default level of findings of this rule."""
    summary: str
    """One line: what the rule catches."""
    help: str
    """How to fix a finding, for SARIF ``help`` and ``--explain``-style output."""


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One finding: where, how bad, what, and which rule."""

    location: Location
    """Where the offending node starts."""
    level: Level
    """``error`` or ``warning``."""
    message: str
    """Human sentence; names the offending value."""
    rule: str
    """The id of a rule in :data:`RULES`."""

    def __str__(self) -> str:
        return f"{self.location}: {self.level.value}: {self.message} [{self.rule}]"


def _rule(rule_id: str, level: Level, summary: str, help_text: str) -> tuple[str, Rule]:
    return rule_id, Rule(rule_id, level, summary, help_text)


E, W = Level.ERROR, Level.WARNING

RULES: dict[str, Rule] = dict(
    [
        _rule("read-error", E, "The file or folder cannot be read.",
              "Check the path, its permissions and that it is a regular file."),
        _rule("file-too-large", E, "The file is larger than a policy can reasonably be.",
              "Split the policy; files over the size limit are refused unread."),
        _rule("encoding", E, "The file is not valid UTF-8 text.",
              "Save the file as UTF-8; binary files are not policies."),
        _rule("yaml-syntax", E, "The file is not well-formed YAML.",
              "Fix the YAML at the position shown (tabs cannot indent YAML)."),
        _rule("yaml-limits", E, "The YAML nests too deeply or expands too far through aliases.",
              "Flatten the document; alias expansion and nesting depth are bounded."),
        _rule("duplicate-key", E, "A mapping has the same key twice.",
              "YAML parsers silently keep the last one; remove or rename one of them."),
        _rule("yaml-key", E, "A mapping key is not a plain string.",
              "Use plain string keys; complex keys are not part of the policy format."),
        _rule("multiple-documents", E, "The file holds more than one YAML document.",
              "Put one policy per file."),
        _rule("empty-file", E, "The file holds no document.",
              "Write a policy (apiVersion, kind, metadata, checks) or delete the file."),
        _rule("unknown-document", E, "The file's apiVersion or kind is not one hostguard reads.",
              "Use apiVersion hostguard/v1 and a known kind such as Policy."),
        _rule("schema", E, "A value does not match the policy schema.",
              "See docs/policy.md and agent/policy/schema.json for the allowed shape."),
        _rule("unknown-key", E, "A mapping has a key the format does not define.",
              "Check the spelling; the message suggests the nearest known key."),
        _rule("unknown-kind", E, "A check names a kind that is not registered.",
              "Use one of the registered check kinds listed in docs/policy.md."),
        _rule("spec", E, "A check's spec is not meaningful for its kind.",
              "See the kind's section in docs/policy.md."),
        _rule("duplicate-id", E, "Two checks share an id.",
              "Ids are unique across everything loaded; change inherited checks under overrides."),
        _rule("override-unknown", E, "An override names a check no parent policy defines.",
              "Overrides change inherited checks; define new checks under checks."),
        _rule("extends-missing", E, "A policy extends a file that cannot be loaded.",
              "Paths in extends are relative to the file that names them."),
        _rule("extends-cycle", E, "Policies extend each other in a cycle.",
              "Break the cycle; extends must form a tree (shared bases are fine)."),
        _rule("extends-invalid", E, "A policy extends a file that has errors of its own.",
              "Fix the errors reported for the extended file."),
        _rule("waiver-unknown-check", E, "A waiver names a check that is not defined.",
              "Waivers apply to checks of the same policy or of the policies it extends."),
        _rule("waiver-expired", E, "A waiver's expiry date has passed.",
              "Renew the waiver with a new reason and date, or fix the finding."),
        _rule("waiver-reason", E, "A waiver has no reason.",
              "Every waiver says why, e.g. with a ticket reference."),
        _rule("waiver-long", W, "A waiver runs for more than a year.",
              "Waivers are temporary; review them at least yearly."),
        _rule("invalid-glob", E, "A glob pattern is malformed.",
              "Close every '[' and use only hostname characters with * ? [...]."),
        _rule("invalid-regex", E, "A regular expression does not compile.",
              "Python re syntax; the message gives the position of the error."),
        _rule("invalid-profile", E, "A seccomp profile named by a check or an enforce: "
              "binding cannot be loaded.", "Run hostguard lint on the profile and fix what it "
              "reports."),
        _rule("symlink-loop", E, "Following folders met a symbolic-link loop.",
              "Remove the link that points back into its own ancestry."),
        _rule("no-policies", W, "A folder holds no *.yaml or *.yml file.",
              "Name policy files with a .yaml or .yml suffix."),
        # Seccomp profiles (kind: SeccompProfile), documented in docs/seccomp.md.
        _rule("seccomp-unknown-syscall", E, "A seccomp profile names a syscall libseccomp "
              "does not know.", "Check the spelling; the message suggests the nearest name."),
        _rule("seccomp-unknown-group", E, "A seccomp profile names an @group systemd does not "
              "define.", "Use one of systemd's groups (systemd-analyze syscall-filter)."),
        _rule("seccomp-arg", E, "An argument condition is not meaningful.",
              "mask goes with op masked_eq only."),
        _rule("seccomp-abi-open", E, "A seccomp profile lets a second ABI of the CPU through "
              "(x86 or x32 on x86_64).", "List only native; other ABIs are then killed."),
        _rule("seccomp-absent-syscall", W, "A syscall exists on none of the profile's "
              "architectures.", "Remove it, or list the architecture it belongs to."),
        _rule("seccomp-allow-deny", W, "A syscall is allowed by name and also denied.",
              "The deny wins; remove the allow, or the deny if the syscall is needed."),
        _rule("seccomp-shadowed", W, "A rule never applies: an earlier unconditional rule "
              "matches the same syscall.", "Remove the later entry or the earlier rule."),
        _rule("seccomp-dangerous", W, "A dangerous syscall is allowed without a stated reason.",
              "Deny it, or add acknowledged: with the reason to the rule that allows it."),
        _rule("seccomp-hot-args", W, "Argument conditions on a hot syscall disable the "
              "kernel's verdict cache for it.", "Filter hot syscalls by number only."),
        _rule("seccomp-default-allow", W, "The profile is a deny-list (default_action allow).",
              "Use an allow-list with default_action {errno: 1} or kill_process."),
        _rule("seccomp-trading-denied", W, "A profile denies what CPU pinning, real-time "
              "scheduling or mlockall needs.", "Allow them, or add acknowledged: to the rule."),
    ]
)
