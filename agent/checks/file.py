"""``file``: files that must exist (or not), with a type, owner, group, mode ceiling, pinned
SHA-256, lines that must or must not appear, and for sshd's configuration the values sshd uses.

Passes::

    - id: FILE-001
      kind: file
      spec: {path: /etc/shadow, type: file, owner: root, group: [root, shadow], mode: "0640"}
      # host: -rw-r----- root shadow /etc/shadow

Fails::

    - id: SSH-001
      kind: file
      spec:
        path: /etc/ssh/sshd_config
        config: sshd
        settings:
          - {keyword: PermitRootLogin, op: regex, value: '(?i)no', default: prohibit-password}
      # host: sshd_config says "Include /etc/ssh/sshd_config.d/*.conf" then
      # "PermitRootLogin no"; a drop-in there says "PermitRootLogin yes", which sshd reads
      # first and keeps. (With the drop-in saying "no" and sshd_config nothing, it passes.)

``mode`` is a ceiling unless ``mode_exact``: ``0640`` fails ``0644`` (other may read) and
passes ``0600``. Owner and group names are looked up in the audited root's ``etc/passwd`` and
``etc/group``. Every path a glob matches must satisfy the spec. ``lines`` judge a file's own
text; ``config: sshd`` reads it as sshd does (:mod:`agent.host.sshd`) and ``settings`` judge
the value a connection that no Match block but ``Match all`` selects gets, with an explicit
``default`` (or ``unset`` verdict) for a keyword nothing sets: sshd's compiled-in default is
in no file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from agent.checks.base import CheckKind, SpecError, SpecProblem
from agent.checks.compare import CONDITION_PROPERTIES, SCALAR_SCHEMA, Condition, parse_condition
from agent.core.record import record
from agent.host.accounts import IdNames
from agent.host.facts import ReadError
from agent.host.files import TYPES, FileEntry, FileRequest, FileSet
from agent.host.snapshot import Snapshot, SnapshotRequest
from agent.host.sshd import MATCH_KEYWORDS, SshdConfig, canonical
from agent.policy.globs import bracket_problem
from agent.result import Evidence, Outcome, Status

_ID = {"anyOf": [{"type": "string", "pattern": r"^[A-Za-z0-9_.][A-Za-z0-9_.$-]*$"},
                 {"type": "integer", "minimum": 0}]}
_IDS = {"anyOf": [_ID, {"type": "array", "items": _ID, "minItems": 1}]}
_REGEX = {"type": "string", "minLength": 1}
_LINE = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "match": {**_REGEX, "description": "Some line in scope must match (re.search)."},
        "absent": {**_REGEX, "description": "No line in scope may match."},
        "global": {"type": "boolean", "description": "Scope: the lines before the first "
                   "line matching 'sections' (sshd's global options, before any Match)."},
        "section": {**_REGEX, "description": "Scope: the sections whose first line matches "
                    "this regex (sections start at lines matching 'sections')."},
    },
}

_KEYWORD = {"type": "string", "pattern": "^[A-Za-z0-9]+$"}
_SETTING = {
    "type": "object",
    "additionalProperties": False,
    "required": ["keyword"],
    "properties": {
        "keyword": {"anyOf": [_KEYWORD, {"type": "array", "items": _KEYWORD, "minItems": 1}],
                    "description": "sshd keyword (any case), or several: each one set must "
                    "satisfy the condition, and at least one must be set."},
        **CONDITION_PROPERTIES,
        "default": {**SCALAR_SCHEMA, "description": "The value sshd uses when nothing sets "
                    "the keyword, as the policy assumes it (sshd's compiled-in default is not "
                    "read); the condition is judged on it. Exactly one of default and unset."},
        "unset": {"enum": ["pass", "fail"], "description": "Verdict when nothing sets the "
                  "keyword. Exactly one of default and unset."},
        "match_blocks": {"type": "boolean", "default": False, "description": "Also judge "
                         "every value set inside a Match block that selects only some "
                         "connections (a weaker value there is a finding)."},
    },
}


@record
class Setting:
    """One entry of ``settings``: a condition on sshd's effective value of a keyword."""

    keywords: tuple[str, ...]
    """As written in the policy; compared without case and with sshd's aliases."""
    condition: Condition
    """What each value must satisfy."""
    default: str | None
    """The value assumed when nothing sets the keyword."""
    unset: str | None
    """``pass`` or ``fail`` when nothing sets the keyword and there is no default."""
    match_blocks: bool = False
    """Also judge the values set inside Match blocks that select only some connections."""

    @property
    def subject(self) -> str:
        return "/".join(self.keywords)

    def describe(self) -> str:
        when = (f"default {self.default!r}" if self.default is not None
                else f"{self.unset} when unset")
        blocks = ", in Match blocks too" if self.match_blocks else ""
        return f"{self.condition.describe(self.subject)} ({when}{blocks})"


@record
class LineRule:
    """One entry of ``lines``."""

    pattern: re.Pattern[str]
    """What a line is searched for."""
    must_match: bool
    """``match`` (some line must) or ``absent`` (none may)."""
    global_scope: bool
    """Only the lines before the first section."""
    section: re.Pattern[str] | None
    """Only the sections whose header line matches."""

    def describe(self) -> str:
        verb = "a line matching" if self.must_match else "no line matching"
        scope = " in the global scope" if self.global_scope else (
            f" in sections /{self.section.pattern}/" if self.section else "")
        return f"{verb} /{self.pattern.pattern}/{scope}"


@record
class FileSpec:
    """Parsed ``file`` spec."""

    path: str
    """Absolute path or glob."""
    exists: bool
    """Whether the path must exist (False: nothing may match)."""
    missing: str
    """Verdict when nothing matches and ``exists``: ``fail`` or ``not_applicable``."""
    type: str | None
    """Required type."""
    owners: tuple[str | int, ...]
    """Allowed owners (names or uids); empty: any."""
    groups: tuple[str | int, ...]
    """Allowed groups (names or gids); empty: any."""
    mode: int | None
    """Mode ceiling (or exact mode)."""
    mode_exact: bool
    """``mode`` must equal, not merely bound, the file's mode."""
    sha256: str | None
    """Pinned digest, lower case."""
    lines: tuple[LineRule, ...]
    """Line expectations."""
    sections: re.Pattern[str] | None
    """What starts a section."""
    follow: bool
    """Follow a symbolic link at the end of the path."""
    config: str | None = None
    """Read the file as this program's configuration (``sshd``)."""
    settings: tuple[Setting, ...] = ()
    """Conditions on the configuration's effective values."""

    def request(self) -> FileRequest:
        return FileRequest(self.path, self.follow, digest=self.sha256 is not None,
                           text=bool(self.lines) or self.config is not None,
                           config=self.config)


class FileKind(CheckKind[FileSpec]):
    """Files: existence, type, owner, group, mode, digest and contents."""

    name = "file"
    summary = "Files (paths or globs) exist or not, with a type, owner, group, mode ceiling, " \
              "pinned SHA-256 and lines that must or must not match."
    spec_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "description": summary,
        "required": ["path"],
        "additionalProperties": False,
        "properties": {
            "path": {"type": "string", "pattern": "^/",
                     "description": "Absolute path; * ? [...] glob within one component.",
                     "examples": ["/etc/shadow", "/etc/ssh/sshd_config.d/*.conf"]},
            "exists": {"type": "boolean", "default": True,
                       "description": "Whether the path must exist (false: nothing may match)."},
            "missing": {"enum": ["fail", "not_applicable"], "default": "fail",
                        "description": "Verdict when nothing matches (default: fail)."},
            "type": {"enum": sorted(TYPES.values()), "description": "Required file type."},
            "owner": {**_IDS, "description": "Allowed owner: a name or uid, or a list."},
            "group": {**_IDS, "description": "Allowed group: a name or gid, or a list."},
            "mode": {"type": "string", "pattern": "^0?[0-7]{3,4}$",
                     "description": "Most permissive mode allowed, octal in quotes ('0640'): "
                     "bits beyond it fail, fewer pass."},
            "mode_exact": {"type": "boolean", "default": False,
                           "description": "The mode must be exactly 'mode'."},
            "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$",
                       "description": "Pinned SHA-256 of the contents."},
            "lines": {"type": "array", "items": _LINE, "minItems": 1,
                      "description": "Lines that must (match) or must not (absent) appear."},
            "sections": {**_REGEX, "description": "A line that starts a section, e.g. "
                         "'^\\s*Match\\s' for sshd_config, '^\\s*\\[' for INI files."},
            "follow": {"type": "boolean", "default": True,
                       "description": "Follow a symbolic link at the end of the path (the "
                       "evidence says whether one was)."},
            "config": {"enum": ["sshd"], "description": "Read the file as sshd reads its "
                       "configuration (Include followed, the first value of a keyword "
                       "winning) for 'settings'."},
            "settings": {"type": "array", "items": _SETTING, "minItems": 1,
                         "description": "Conditions on the effective value of keywords "
                         "outside any Match block (needs 'config')."},
        },
    }

    def parse(self, raw: Mapping[str, Any]) -> FileSpec:
        problems: list[SpecProblem] = []
        path = str(raw["path"])
        why = _path_problem(path)
        if why:
            problems.append(SpecProblem(("path",), f"invalid path {path!r}: {why}",
                                        "invalid-glob"))
        exists = bool(raw.get("exists", True))
        if not exists:
            for key in ("missing", "type", "owner", "group", "mode", "mode_exact", "sha256",
                        "lines", "sections", "config", "settings"):
                if key in raw:
                    problems.append(SpecProblem((key,), f"'{key}' means nothing with "
                                                "exists: false"))
        sections = _compile(raw.get("sections"), ("sections",), problems)
        lines = tuple(_line(entry, i, sections, problems)
                      for i, entry in enumerate(raw.get("lines", [])))
        kind = raw.get("type")
        follow = bool(raw.get("follow", True))
        mode = int(str(raw["mode"]), 8) if "mode" in raw else None
        if "mode_exact" in raw and mode is None:
            problems.append(SpecProblem(("mode_exact",), "'mode_exact' without 'mode'"))
        if kind == "symlink" and follow:
            problems.append(SpecProblem(("type",), "type symlink needs follow: false (a "
                                        "followed link is its target's type)"))
        if kind not in (None, "file") and ({"sha256", "lines", "config"} & set(raw)):
            key = min({"sha256", "lines", "config"} & set(raw))
            problems.append(SpecProblem((key,), f"'{key}' reads contents; a {kind} has none"))
        if kind == "symlink" and mode is not None:
            problems.append(SpecProblem(("mode",), "a symbolic link's mode means nothing"))
        config = raw.get("config")
        settings = tuple(_setting(entry, i, problems)
                         for i, entry in enumerate(raw.get("settings", [])))
        if config is not None:
            if any(c in path for c in "*?["):
                problems.append(SpecProblem(("config",), "'config' reads one file: write "
                                            "the path without a glob"))
            for key in ("lines", "sections", "sha256"):
                if key in raw:
                    problems.append(SpecProblem((key,), f"'{key}' with 'config': assert the "
                                                "effective configuration with 'settings', "
                                                "the file's own text in a separate check"))
            if "settings" not in raw and exists:
                problems.append(SpecProblem(("config",), "'config' without 'settings' "
                                            "checks nothing it reads"))
        elif "settings" in raw:
            problems.append(SpecProblem(("settings",), "'settings' needs 'config' (which "
                                        "program's configuration the file is)"))
        if exists and raw.get("missing") == "not_applicable" and not (
                set(raw) - {"path", "missing", "exists", "follow"}):
            problems.append(SpecProblem(("missing",), "a spec that only asks for the file "
                                        "cannot be not_applicable when there is none"))
        if problems:
            raise SpecError(problems)
        return FileSpec(
            path=path, exists=exists, missing=str(raw.get("missing", "fail")),
            type=str(kind) if kind is not None else None,
            owners=_ids(raw.get("owner")), groups=_ids(raw.get("group")),
            mode=mode, mode_exact=bool(raw.get("mode_exact", False)),
            sha256=str(raw["sha256"]).lower() if "sha256" in raw else None,
            lines=lines, sections=sections, follow=follow,
            config=str(config) if config is not None else None, settings=settings,
        )

    def request(self, spec: FileSpec) -> SnapshotRequest:
        return SnapshotRequest(files=frozenset({spec.request()}))

    def evaluate(self, spec: FileSpec, snapshot: Snapshot) -> Outcome:
        expected = _describe(spec)
        found = snapshot.files.get(spec.request())
        if found is None:
            return Outcome(Status.ERROR, f"cannot evaluate: {spec.path} was not read",
                           Evidence(expected, "not read"))
        if not found.entries:
            actual = f"nothing matches {spec.path}"
            if not spec.exists:
                return Outcome(Status.PASS, actual, Evidence(expected, actual))
            status = Status.NOT_APPLICABLE if spec.missing == "not_applicable" else Status.FAIL
            return Outcome(status, actual, Evidence(expected, actual))
        rows = [_judge(spec, entry, found) for entry in found.entries]
        actual = "; ".join(_summary(row) for row in rows)
        evidence = Evidence(expected, actual, tuple(rows))
        failed = [f"{r['path']}: {', '.join(r['findings'])}" for r in rows
                  if r["verdict"] == "fail"]
        errors = [f"{r['path']}: {', '.join(r['findings'])}" for r in rows
                  if r["verdict"] == "error"]
        if failed:
            return Outcome(Status.FAIL, "; ".join(failed), evidence)
        if errors:
            return Outcome(Status.ERROR, "cannot evaluate: " + "; ".join(errors), evidence)
        return Outcome(Status.PASS, actual, evidence)


def _path_problem(path: str) -> str | None:
    if "\0" in path:
        return "NUL byte"
    parts = path.split("/")[1:]
    if path != "/" and any(part in ("", ".", "..") for part in parts):
        return "empty, '.' or '..' component (write the path normalised)"
    return bracket_problem(path)


def _compile(text: Any, at: tuple[str | int, ...], problems: list[SpecProblem]
             ) -> re.Pattern[str] | None:
    if text is None:
        return None
    try:
        return re.compile(str(text))
    except re.error as exc:
        problems.append(SpecProblem(at, f"invalid regex {text!r}: {exc}", "invalid-regex"))
        return None


def _line(entry: Mapping[str, Any], i: int, sections: re.Pattern[str] | None,
          problems: list[SpecProblem]) -> LineRule:
    at: tuple[str | int, ...] = ("lines", i)
    if ("match" in entry) == ("absent" in entry):
        problems.append(SpecProblem(at, "a lines entry has exactly one of 'match' and 'absent'"))
    key = "match" if "match" in entry else "absent"
    pattern = _compile(entry.get(key, "(?!)"), (*at, key), problems) or re.compile("(?!)")
    section = _compile(entry.get("section"), (*at, "section"), problems)
    global_scope = bool(entry.get("global", False))
    if (global_scope or "section" in entry) and sections is None:
        problems.append(SpecProblem(at, "'global' and 'section' need 'sections' (what starts "
                                    "a section)"))
    if global_scope and "section" in entry:
        problems.append(SpecProblem(at, "'global' and 'section' exclude each other"))
    return LineRule(pattern, key == "match", global_scope, section)


def _setting(entry: Mapping[str, Any], i: int, problems: list[SpecProblem]) -> Setting:
    at: tuple[str | int, ...] = ("settings", i)
    raw = entry["keyword"]
    keywords = tuple(str(k) for k in (raw if isinstance(raw, list) else [raw]))
    for keyword in keywords:
        if canonical(keyword) in ("include", "match"):
            problems.append(SpecProblem((*at, "keyword"), f"{keyword} is not a setting: sshd "
                                        "follows it while reading"))
    condition, more = parse_condition(entry, at)
    problems += more
    if ("default" in entry) == ("unset" in entry):
        problems.append(SpecProblem(at, "a setting names exactly one of 'default' (the value "
                                    "sshd uses when nothing sets the keyword) and 'unset' "
                                    "(the verdict then)"))
    match_blocks = bool(entry.get("match_blocks", False))
    if match_blocks:
        for keyword in keywords:
            if canonical(keyword) not in MATCH_KEYWORDS:
                problems.append(SpecProblem((*at, "match_blocks"), f"sshd does not take "
                                            f"{keyword} inside a Match block"))
    default = entry.get("default")
    return Setting(keywords, condition, str(default) if default is not None else None,
                   str(entry["unset"]) if "unset" in entry else None, match_blocks)


def _ids(value: Any) -> tuple[str | int, ...]:
    if value is None:
        return ()
    return tuple(v if isinstance(v, int) else str(v)
                 for v in (value if isinstance(value, list) else [value]))


def _scoped(text: str, rule: LineRule, sections: re.Pattern[str] | None
            ) -> list[tuple[int, str]]:
    """(line number, line) of the lines ``rule`` looks at."""
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    if sections is None or not (rule.global_scope or rule.section):
        return list(enumerate(lines, 1))
    scoped: list[tuple[int, str]] = []
    inside = rule.global_scope
    for number, line in enumerate(lines, 1):
        if sections.search(line):
            inside = rule.section is not None and rule.section.search(line) is not None
            continue
        if inside:
            scoped.append((number, line))
    return scoped


def _id_ok(wanted: tuple[str | int, ...], actual: int, names: IdNames | ReadError,
           what: str) -> str | ReadError | None:
    """None when ``actual`` is allowed, else the finding; a ReadError when it depends on names
    that cannot be resolved."""
    if actual in {entry for entry in wanted if isinstance(entry, int)}:
        return None
    named = [entry for entry in wanted if isinstance(entry, str)]
    if named and isinstance(names, ReadError):
        return ReadError(f"{what} names cannot be resolved: {names.reason}")
    if isinstance(names, IdNames) and any(names.by_name.get(n) == actual for n in named):
        return None
    return f"{what} is {_name(actual, names)}, expected {' or '.join(map(str, wanted))}"


def _name(number: int, names: IdNames | ReadError) -> str:
    name = names.by_id.get(number) if isinstance(names, IdNames) else None
    return f"{name} ({number})" if name is not None else str(number)


def _judge(spec: FileSpec, entry: FileEntry | ReadError, found: FileSet) -> dict[str, Any]:
    if isinstance(entry, ReadError):
        return {"path": spec.path, "verdict": "error", "findings": [entry.reason]}
    row: dict[str, Any] = {
        "path": entry.path, "type": entry.type, "mode": f"{entry.mode:04o}",
        "owner": _name(entry.uid, found.users), "group": _name(entry.gid, found.groups),
        "size": entry.size, "symlink": entry.link, "followed": entry.followed,
        "resolved": entry.resolved,
    }
    if isinstance(entry.sha256, str):
        row["sha256"] = entry.sha256
    fails: list[str] = []
    errors: list[str] = []
    if not spec.exists:
        fails.append("exists")
    if spec.type and entry.type != spec.type:
        fails.append(f"is a {entry.type}, expected {spec.type}")
    for wanted, actual, names, what in ((spec.owners, entry.uid, found.users, "owner"),
                                        (spec.groups, entry.gid, found.groups, "group")):
        if wanted:
            verdict = _id_ok(wanted, actual, names, what)
            if isinstance(verdict, ReadError):
                errors.append(verdict.reason)
            elif verdict:
                fails.append(verdict)
    if spec.mode is not None:
        if spec.mode_exact and entry.mode != spec.mode:
            fails.append(f"mode is {entry.mode:04o}, expected exactly {spec.mode:04o}")
        elif not spec.mode_exact and entry.mode & ~spec.mode:
            fails.append(f"mode {entry.mode:04o} exceeds {spec.mode:04o} (extra bits "
                         f"{entry.mode & ~spec.mode:04o})")
    if spec.sha256 is not None:
        if isinstance(entry.sha256, str):
            if entry.sha256 != spec.sha256:
                fails.append(f"sha256 is {entry.sha256}, expected {spec.sha256}")
        else:
            errors.append(f"sha256: {_why(entry.sha256)}")
    if spec.lines:
        if isinstance(entry.text, str):
            row["lines"] = [_line_row(entry.text, rule, spec.sections, fails)
                            for rule in spec.lines]
        else:
            errors.append(f"lines: {_why(entry.text)}")
    if spec.settings:
        if isinstance(entry.config, SshdConfig):
            row["files"] = list(entry.config.files)
            row["settings"] = [_setting_row(entry.config, setting, fails, errors)
                               for setting in spec.settings]
        else:
            errors.append(f"settings: {_why(entry.config)}")
    row["findings"] = fails or errors
    row["verdict"] = "fail" if fails else "error" if errors else "pass"
    return row


def _setting_row(config: SshdConfig, setting: Setting, fails: list[str],
                 errors: list[str]) -> dict[str, Any]:
    """Judge every value that sets the keywords outside Match (or the assumed default), and
    inside Match blocks when asked."""
    order = {id(d): i for i, d in enumerate(config.directives)}
    found = sorted((d for k in setting.keywords for d in config.effective(k)),
                   key=lambda d: order[id(d)])
    names = {canonical(k) for k in setting.keywords}
    inside = [d for d in config.directives if setting.match_blocks and not d.applies
              and d.keyword in names]
    values: list[dict[str, Any]] = []
    for directive in found + inside:
        values.append({"keyword": directive.keyword, "value": directive.value,
                       "file": directive.path, "line": directive.line,
                       "match": directive.match, **_judged(setting.condition, directive.value)})
        if not directive.applies:
            values[-1]["applies"] = "only to connections its Match block selects"
    if not found and setting.default is not None:
        values.append({"keyword": setting.subject, "value": setting.default, "file": None,
                       "line": None, "match": None,
                       **_judged(setting.condition, setting.default),
                       "assumed": "not set: the policy's default"})
    bad = [v for v in values if v["verdict"] == "fail"]
    wrong = [v for v in values if v["verdict"] == "error"]
    unset = not found and setting.default is None and setting.unset == "fail"
    if bad:
        fails.append("; ".join(f"{_where(v)} {v['keyword']} {v['value']}{_inside(v)}"
                               for v in bad)
                     + f", expected {setting.condition.describe(setting.subject)}")
    elif wrong:
        errors.append("; ".join(f"{_where(v)} {v['keyword']}: {v['reason']}" for v in wrong))
    if unset:
        fails.append(f"{setting.subject} is not set outside Match, expected "
                     f"{setting.condition.describe(setting.subject)}")
    verdict = "fail" if bad or unset else "error" if wrong else "pass"
    return {"expected": setting.describe(), "verdict": verdict, "values": values}


def _inside(value: Mapping[str, Any]) -> str:
    return f" (in {value['match']})" if "applies" in value else ""


def _judged(condition: Condition, value: str) -> dict[str, str]:
    """A value's verdict, and the reason when it cannot be judged."""
    result = condition.test(value)
    if isinstance(result, str):
        return {"verdict": "error", "reason": result}
    return {"verdict": "pass" if result else "fail"}


def _where(value: Mapping[str, Any]) -> str:
    return f"{value['file']}:{value['line']}:" if value["file"] else "(default)"


def _why(value: object) -> str:
    return value.reason if isinstance(value, ReadError) else "not read"


def _line_row(text: str, rule: LineRule, sections: re.Pattern[str] | None,
              fails: list[str]) -> dict[str, Any]:
    hits = [(n, line) for n, line in _scoped(text, rule, sections) if rule.pattern.search(line)]
    ok = bool(hits) == rule.must_match
    if not ok:
        fails.append(f"no line matches /{rule.pattern.pattern}/" if rule.must_match else
                     f"line {', '.join(str(n) for n, _ in hits)} matches "
                     f"/{rule.pattern.pattern}/")
    return {"expected": rule.describe(), "verdict": "pass" if ok else "fail",
            "matches": [{"line": n, "text": line} for n, line in hits[:20]]}


def _summary(row: dict[str, Any]) -> str:
    if "type" not in row:
        return f"{row['path']}: {', '.join(row['findings'])}"
    link = ""
    if row["symlink"] is not None:
        link = f" -> {row['symlink']} ({'followed' if row['followed'] else 'not followed'})"
    owner, group = (row[key].split(" (")[0] for key in ("owner", "group"))
    return f"{row['path']}{link}: {row['type']} {row['mode']} {owner}:{group}"


def _describe(spec: FileSpec) -> str:
    if not spec.exists:
        return f"nothing at {spec.path}"
    parts = [f"{spec.path} exists"]
    if spec.type:
        parts.append(f"a {spec.type}")
    if spec.owners:
        parts.append(f"owner {' or '.join(map(str, spec.owners))}")
    if spec.groups:
        parts.append(f"group {' or '.join(map(str, spec.groups))}")
    if spec.mode is not None:
        parts.append(f"mode {'' if spec.mode_exact else '<= '}{spec.mode:04o}")
    if spec.sha256:
        parts.append(f"sha256 {spec.sha256}")
    parts += [rule.describe() for rule in spec.lines]
    if spec.config:
        parts.append(f"as {spec.config} reads it")
    parts += [setting.describe() for setting in spec.settings]
    if spec.missing == "not_applicable":
        parts.append("if present")
    return ", ".join(parts)
