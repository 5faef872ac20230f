"""Unit files read as systemd merges them, checked against systemd itself.

The oracle is ``systemd-analyze verify --root=ROOT UNIT`` at debug level: it loads the unit
offline with this host's systemd and dumps its ``Fragment Path:`` and ``DropIn Path:`` lines
in the order systemd applies them (``systemctl cat`` refuses ``--root``).
"""

from __future__ import annotations

import os
import random
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.host.unitfiles import (
    MAX_UNIT_FILE,
    Assignment,
    UnitFileError,
    expand_specifiers,
    load_unit,
    load_units,
    parse_unit_text,
    unit_names,
)
from tests.support import need_tool

USR = "/usr/lib/systemd/system"
ETC = "/etc/systemd/system"
RUN = "/run/systemd/system"
SERVICE = "[Service]\nExecStart=/bin/true\n"


def put(root: Path, path: str, text: str = SERVICE) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def link(root: Path, path: str, target: str) -> None:
    where = root / path.lstrip("/")
    where.parent.mkdir(parents=True, exist_ok=True)
    where.symlink_to(target)


def systemd_views(root: Path, names: list[str]) -> dict[str, tuple[str, list[str]] | str]:
    """For each unit asked for, ``(fragment, drop-ins)`` as systemd's own loader reports
    them, ``"masked"``, or ``"not-found"``, read from ``systemd-analyze verify``'s debug dump
    (keyed by the unit's id, the fragment's name, where that differs from the name asked)."""
    analyze = need_tool("systemd-analyze")
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": "debug", "SYSTEMD_COLORS": "0"}
    result = subprocess.run([analyze, "verify", "--man=no", f"--root={root}", "--", *names],
                            capture_output=True, text=True, timeout=600, check=False, env=env)
    out = result.stdout + result.stderr
    prefix = "" if str(root) == "/" else str(root)
    views: dict[str, tuple[str, list[str]] | str] = dict.fromkeys(names, "not-found")
    for name in re.findall(r"(?m)^Unit (\S+) is masked\.$", out):
        views[name] = "masked"
    for block in re.split(r"(?m)^\s*-> Unit ", out)[1:]:
        unit_id = block.split(":", 1)[0]
        fragment = re.findall(r"(?m)^\s*Fragment Path: (.*)$", block)
        dropins = re.findall(r"(?m)^\s*DropIn Path: (.*)$", block)
        if fragment:
            views[unit_id] = (fragment[0].removeprefix(prefix),
                              [path.removeprefix(prefix) for path in dropins])
    return views


def systemd_view(root: Path, name: str) -> tuple[str, list[str]] | str:
    """One unit's :func:`systemd_views`, whatever its id."""
    views = systemd_views(root, [name])
    found = [view for key, view in views.items() if key != name]
    return found[0] if views[name] == "not-found" and found else views[name]


def our_view(root: Path, name: str) -> tuple[str, list[str]] | str:
    unit = load_unit(root, name)
    if unit.masked:
        return "masked"
    if unit.fragment is None:
        return "not-found"
    return unit.fragment, list(unit.dropins)


def tree_dropins_masking(root: Path) -> str:
    put(root, f"{USR}/foo.service")
    put(root, f"{ETC}/foo.service", "[Service]\nExecStart=/bin/false\n")  # /etc wins
    put(root, f"{USR}/foo.service.d/10-a.conf", "[Service]\nUser=a\n")
    put(root, f"{ETC}/foo.service.d/10-a.conf", "[Service]\nUser=etc\n")  # masks /usr's
    put(root, f"{RUN}/foo.service.d/20-b.conf", "[Service]\nUser=run\n")
    put(root, f"{USR}/foo.service.d/05-c.conf", "[Service]\nGroup=c\n")
    put(root, f"{USR}/foo.service.d/not-a-dropin.txt", "[Service]\nGroup=x\n")
    put(root, f"{USR}/foo.service.d/.hidden.conf", "[Service]\nGroup=x\n")
    link(root, f"{ETC}/foo.service.d/30-null.conf", "/dev/null")
    return "foo.service"


def tree_type_and_dash(root: Path) -> str:
    put(root, f"{USR}/foo-bar-baz.service")
    put(root, f"{USR}/service.d/50-type.conf", "[Service]\nNice=1\n")
    put(root, f"{ETC}/foo-.service.d/50-type.conf", "[Service]\nNice=2\n")  # masks service.d
    put(root, f"{USR}/foo-bar-.service.d/40-dash.conf", "[Service]\nNice=3\n")
    put(root, f"{USR}/foo-bar-baz.service.d/60-own.conf", "[Service]\nNice=4\n")
    put(root, f"{USR}/socket.d/10-other-type.conf", "[Socket]\nBacklog=1\n")
    return "foo-bar-baz.service"


def tree_trailing_dash(root: Path) -> str:
    put(root, f"{USR}/a-b-.service")
    put(root, f"{USR}/a-.service.d/x.conf", "[Service]\nNice=1\n")
    put(root, f"{USR}/a-b-.service.d/y.conf", "[Service]\nNice=2\n")
    return "a-b-.service"


def tree_template(root: Path) -> str:
    put(root, f"{USR}/md@.service", "[Service]\nExecStart=/bin/echo %i\n")
    put(root, f"{USR}/md@.service.d/t.conf", "[Service]\nNice=1\n")
    put(root, f"{ETC}/md@a.service.d/i.conf", "[Service]\nNice=2\n")
    put(root, f"{ETC}/md@b.service.d/i.conf", "[Service]\nNice=3\n")
    return "md@a.service"


def tree_dash_template(root: Path) -> str:
    put(root, f"{USR}/get-ty@.service")
    put(root, f"{USR}/get-@.service.d/t.conf", "[Service]\nNice=1\n")
    put(root, f"{USR}/get-@x.service.d/u.conf", "[Service]\nNice=2\n")
    put(root, f"{USR}/get-@y.service.d/v.conf", "[Service]\nNice=3\n")
    put(root, f"{ETC}/get-.service.d/w.conf", "[Service]\nNice=4\n")  # via the template
    return "get-ty@x.service"


def tree_own_instance_file(root: Path) -> str:
    put(root, f"{USR}/md@.service")
    put(root, f"{ETC}/md@z.service", "[Service]\nExecStart=/bin/z\n")
    return "md@z.service"


def tree_alias(root: Path) -> str:
    put(root, f"{USR}/real.service")
    link(root, f"{ETC}/nick.service", f"{USR}/real.service")
    put(root, f"{ETC}/nick.service.d/n.conf", "[Service]\nNice=1\n")
    put(root, f"{USR}/real.service.d/r.conf", "[Service]\nNice=2\n")
    return "nick.service"


def tree_alias_relative(root: Path) -> str:
    put(root, f"{USR}/real2.service")
    link(root, f"{USR}/other.service", "real2.service")
    put(root, f"{USR}/other.service.d/n.conf", "[Service]\nNice=1\n")
    return "real2.service"


def tree_alias_chain(root: Path) -> str:
    put(root, f"{USR}/c.service")
    link(root, f"{ETC}/b.service", "/usr/lib/systemd/system/c.service")
    link(root, f"{RUN}/a.service", "/etc/systemd/system/b.service")
    put(root, f"{USR}/b.service.d/b.conf", "[Service]\nNice=1\n")
    return "a.service"


def tree_linked(root: Path) -> str:
    put(root, "/opt/app/linked.service")
    # Relative: with --root systemd opens the link on the host, where an absolute target
    # would leave the root (a live system resolves it where the reader does).
    link(root, f"{ETC}/linked.service", "../../../opt/app/linked.service")
    put(root, f"{ETC}/linked.service.d/l.conf", "[Service]\nNice=1\n")
    return "linked.service"


def tree_self_alias(root: Path) -> str:
    put(root, f"{USR}/self.service")
    link(root, f"{ETC}/self.service", f"{USR}/self.service")
    return "self.service"


def tree_bad_alias_type(root: Path) -> str:
    put(root, f"{USR}/t.socket", "[Socket]\nListenStream=1\n")
    link(root, f"{ETC}/t.service", f"{USR}/t.socket")
    put(root, f"{USR}/t.service", SERVICE)
    return "t.service"


def tree_masked(root: Path) -> str:
    put(root, f"{USR}/gone.service")
    link(root, f"{ETC}/gone.service", "/dev/null")
    return "gone.service"


def tree_masked_empty(root: Path) -> str:
    put(root, f"{USR}/empty.service")
    put(root, f"{ETC}/empty.service", "")
    return "empty.service"


def tree_not_found(root: Path) -> str:
    put(root, f"{ETC}/nothing.service.d/x.conf", "[Service]\nNice=1\n")
    put(root, f"{USR}/something.service")
    return "nothing.service"


def tree_run_over_usr(root: Path) -> str:
    put(root, f"{USR}/r.service")
    put(root, f"{RUN}/r.service", "[Service]\nExecStart=/bin/run\n")
    put(root, "/usr/local/lib/systemd/system/r.service.d/l.conf", "[Service]\nNice=1\n")
    put(root, "/run/systemd/system.control/r.service.d/c.conf", "[Service]\nNice=2\n")
    put(root, "/run/systemd/transient/r.service.d/c.conf", "[Service]\nNice=3\n")
    return "r.service"


def test_symlinked_dropin_dir(tmp_path: Path) -> None:
    """Followed inside the root. (Not compared with systemd: with ``--root`` it tests a link
    to a directory against its own working directory, so it sees no drop-ins here.)"""
    put(tmp_path, f"{USR}/s.service")
    put(tmp_path, "/srv/dropins/s.conf", "[Service]\nNice=1\n")
    link(tmp_path, f"{ETC}/s.service.d", "/srv/dropins")
    assert load_unit(tmp_path, "s.service").dropins == ("/srv/dropins/s.conf",)


def tree_template_alias(root: Path) -> str:
    put(root, f"{USR}/foo@.service")
    link(root, f"{ETC}/bar@.service", f"{USR}/foo@.service")
    put(root, f"{ETC}/bar@.service.d/b.conf", "[Service]\nNice=1\n")
    put(root, f"{ETC}/bar@q.service.d/q.conf", "[Service]\nNice=2\n")
    put(root, f"{ETC}/foo@q.service.d/f.conf", "[Service]\nNice=3\n")
    return "bar@q.service"


def tree_instance_alias(root: Path) -> str:
    put(root, f"{USR}/foo@.service")
    link(root, f"{ETC}/baz@k.service", f"{USR}/foo@k.service")
    put(root, f"{ETC}/baz@k.service.d/k.conf", "[Service]\nNice=1\n")
    return "baz@k.service"


def tree_alias_of_masked(root: Path) -> str:
    link(root, f"{ETC}/hidden.service", "/dev/null")
    link(root, f"{ETC}/other-name.service", f"{ETC}/hidden.service")
    return "other-name.service"


TREES = [tree_template_alias, tree_instance_alias, tree_alias_of_masked, tree_dropins_masking,
         tree_type_and_dash, tree_trailing_dash, tree_template, tree_dash_template,
         tree_own_instance_file, tree_alias, tree_alias_relative, tree_alias_chain,
         tree_linked, tree_self_alias, tree_bad_alias_type, tree_masked, tree_masked_empty,
         tree_not_found, tree_run_over_usr]


@pytest.mark.parametrize("tree", TREES, ids=lambda tree: tree.__name__)
def test_files_and_order_match_systemd(tmp_path: Path, tree: object) -> None:
    assert callable(tree)
    name = tree(tmp_path)
    assert our_view(tmp_path, name) == systemd_view(tmp_path, name)


def test_merged_values(tmp_path: Path) -> None:
    name = tree_dropins_masking(tmp_path)
    unit = load_unit(tmp_path, name)
    assert unit.fragment == f"{ETC}/foo.service"
    assert unit.dropins == (f"{USR}/foo.service.d/05-c.conf", f"{ETC}/foo.service.d/10-a.conf",
                            f"{RUN}/foo.service.d/20-b.conf", f"{ETC}/foo.service.d/30-null.conf")
    assert unit.values("Service", "ExecStart") == ["/bin/false"]
    assert unit.last("Service", "User") == "run"
    assert unit.values("Service", "User") == ["etc", "run"]
    assert unit.last("Service", "Group") == "c"
    assert unit.last("Service", "Nice") is None
    assert unit.assignments[0] == Assignment("Service", "ExecStart", "/bin/false",
                                             f"{ETC}/foo.service", 2)


def test_template_keeps_specifiers(tmp_path: Path) -> None:
    unit = load_unit(tmp_path, tree_template(tmp_path))
    assert unit.fragment == f"{USR}/md@.service"
    assert unit.names == ("md@a.service",)
    assert unit.values("Service", "ExecStart") == ["/bin/echo %i"]
    assert unit.dropins == (f"{ETC}/md@a.service.d/i.conf", f"{USR}/md@.service.d/t.conf")
    assert unit.last("Service", "Nice") == "1"  # by file name, not by how specific


def test_alias_names(tmp_path: Path) -> None:
    unit = load_unit(tmp_path, tree_alias(tmp_path))
    assert unit.names == ("real.service", "nick.service")
    assert unit.fragment == f"{USR}/real.service"
    assert unit.last("Service", "Nice") == "2"  # n.conf, r.conf: sorted by file name


def test_masked_reads_nothing(tmp_path: Path) -> None:
    unit = load_unit(tmp_path, tree_masked(tmp_path))
    assert unit.masked
    assert unit.fragment == f"{ETC}/gone.service"
    assert unit.assignments == ()


def test_empty_assignment_resets_a_list(tmp_path: Path) -> None:
    put(tmp_path, f"{USR}/l.service",
        "[Service]\nExecStart=/bin/a\nCapabilityBoundingSet=CAP_A\nCapabilityBoundingSet=CAP_B\n")
    put(tmp_path, f"{ETC}/l.service.d/o.conf",
        "[Service]\nExecStart=\nExecStart=/bin/b\nCapabilityBoundingSet=\n")
    unit = load_unit(tmp_path, "l.service")
    assert unit.values("Service", "ExecStart") == ["/bin/b"]
    assert unit.values("Service", "CapabilityBoundingSet") == []
    assert unit.last("Service", "CapabilityBoundingSet") == ""


def test_syntax() -> None:
    text = ("\ufeff# comment\n"
            "[Unit]\n"
            "Description=  spaced  \n"
            "[Service]\n"
            "ExecStart=/bin/echo a \\\n"
            "# a comment inside a continuation is dropped\n"
            "   b \\\n"
            "; so is this\n"
            "  c\n"
            "Environment=X=1\r\n"
            "NoEquals\n"
            "  ; indented comment\n"
            "Odd=back\\\\\n"
            "Last=one \\")
    found, warnings = parse_unit_text(text, "/x.service")
    assert [(a.section, a.key, a.value, a.line) for a in found] == [
        ("Unit", "Description", "spaced", 3),
        ("Service", "ExecStart", "/bin/echo a     b    c", 5),
        ("Service", "Environment", "X=1", 10),
        ("Service", "Odd", "back\\\\", 13),
        ("Service", "Last", "one", 14),
    ]
    assert warnings == ["/x.service:11: missing '=', line ignored"]


def test_assignment_outside_section_is_ignored() -> None:
    found, warnings = parse_unit_text("User=root\n[Service]\nUser=nobody\n", "/y.service")
    assert [a.value for a in found] == ["nobody"]
    assert warnings == ["/y.service:1: assignment outside of section, ignored"]


@pytest.mark.parametrize("text, line, col", [
    ("[Service]\nUser=a\n  [Broken\n", 3, 3),
    ("[Service]\n[Ser\"vice]\n", 2, 1),
])
def test_bad_section_header_names_the_place(text: str, line: int, col: int) -> None:
    with pytest.raises(UnitFileError) as caught:
        parse_unit_text(text, "/z.service")
    assert (caught.value.path, caught.value.line, caught.value.col) == ("/z.service", line, col)
    assert str(caught.value).startswith(f"/z.service:{line}:{col}: ")


def test_bad_section_header_refused_by_systemd_too(tmp_path: Path) -> None:
    put(tmp_path, f"{USR}/bad.service", "[Service\nExecStart=/bin/true\n")
    with pytest.raises(UnitFileError, match="invalid section header"):
        load_unit(tmp_path, "bad.service")
    assert systemd_view(tmp_path, "bad.service") == "not-found"


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    put(tmp_path, f"{USR}/big.service", "[Service]\n" + "#" * MAX_UNIT_FILE + "\n")
    with pytest.raises(UnitFileError, match="limit") as caught:
        load_unit(tmp_path, "big.service")
    assert caught.value.path == f"{USR}/big.service"


def test_invalid_name_is_refused(tmp_path: Path) -> None:
    for name in ["foo", "foo.nope", "../x.service", "a b.service", "@x.service", ""]:
        with pytest.raises(UnitFileError, match="not a valid unit name"):
            load_unit(tmp_path, name)


def test_unreadable_dropin_is_an_error(tmp_path: Path) -> None:
    put(tmp_path, f"{USR}/u.service")
    link(tmp_path, f"{ETC}/u.service.d/gone.conf", "/nowhere.conf")
    with pytest.raises(UnitFileError) as caught:
        load_unit(tmp_path, "u.service")
    assert caught.value.path == f"{ETC}/u.service.d/gone.conf"


def test_links_stay_inside_the_root(tmp_path: Path) -> None:
    put(tmp_path, f"{USR}/inside.service", "[Service]\nUser=inside\n")
    link(tmp_path, f"{ETC}/inside.service.d/up.conf", "../../../../../../../../etc/passwd")
    with pytest.raises(UnitFileError, match="no such file"):
        load_unit(tmp_path, "inside.service")


def test_unit_names(tmp_path: Path) -> None:
    tree_alias(tmp_path)
    tree_template(tmp_path)
    tree_masked(tmp_path)
    put(tmp_path, f"{USR}/not-a-unit.txt")
    (tmp_path / USR.lstrip("/") / "dir.service").mkdir()
    assert unit_names(tmp_path) == ["gone.service", "md@.service", "nick.service",
                                    "real.service"]


def test_every_real_unit_loads() -> None:
    """Every unit file on this host, and an instance of every template, loads without error."""
    names = unit_names(Path("/"))
    assert "systemd-journald.service" in names
    instances = [f"{prefix}@x{rest}" if at and rest.startswith(".") else prefix + at + rest
                 for prefix, at, rest in (name.partition("@") for name in names)]
    loaded = load_units(Path("/"), instances)
    assert {name: error for name, error in loaded.items()
            if isinstance(error, UnitFileError)} == {}
    assert loaded["systemd-journald.service"] == load_unit(Path("/"), "systemd-journald.service")


def test_real_units_match_systemd() -> None:
    """Every unit of this host's own search path, as systemd loads it from ``/``."""
    names = [name for name in unit_names(Path("/")) if "@." not in name]
    assert names
    views = systemd_views(Path("/"), names)
    for name in names:
        unit = load_unit(Path("/"), name)
        view = our_view(Path("/"), name)
        assert view == views[name if view == "not-found" else unit.names[0]], name


def test_expand_specifiers() -> None:
    assert expand_specifiers("md@a.service", "%i %I %n %N %p %P %j %J %f %% %H") == (
        "a a md@a.service md@a md md md md /a % %H")
    assert expand_specifiers("foo-bar@dev-sda1.service", "%i|%I|%p|%P|%j|%f") == (
        "dev-sda1|dev/sda1|foo-bar|foo/bar|bar|/dev/sda1")
    assert expand_specifiers("a\\x2db.service", "%p|%P|%f|%i") == "a\\x2db|a-b|/a-b|"


DESCRIPTIONS = {
    "joined": "Description=one \\\n# a comment inside\n  two \\\n; another\nthree\\\\\n",
    "tabs": "Description=\ttab\there \t\n",
    "crlf": "Description=crlf \\\r\nline\r\n",
    "equals": "Description  =  a=b = c  \n",
    "last-wins": "Description=first\nDescription=second\n",
    "bom": "Description=after a BOM\n",
    "eof-continuation": "Description=ends \\",
    "no-equals": "Description\nDescription=kept\n",
}


def test_values_match_systemd(tmp_path: Path) -> None:
    """``Description=`` as systemd's own parser leaves it (its debug dump of each unit)."""
    for stem, text in DESCRIPTIONS.items():
        body = f"[Service]\nExecStart=/bin/true\n[Unit]\n{text}"
        put(tmp_path, f"{USR}/{stem}.service", "\ufeff" + body if stem == "bom" else body)
    analyze = need_tool("systemd-analyze")
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": "debug", "SYSTEMD_COLORS": "0"}
    names = [f"{stem}.service" for stem in DESCRIPTIONS]
    result = subprocess.run([analyze, "verify", "--man=no", f"--root={tmp_path}", "--", *names],
                            capture_output=True, text=True, timeout=120, check=False, env=env)
    theirs = dict(re.findall(r"(?m)^\s*-> Unit (\S+):\n\s*Description: (.*)$", result.stdout))
    assert set(theirs) == set(names)
    for name in names:
        assert load_unit(tmp_path, name).last("Unit", "Description") == theirs[name], name


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_hostile_bytes_never_crash(data: bytes) -> None:
    """Any bytes: parsed, or refused as a :class:`UnitFileError` naming the place."""
    text = data.decode("utf-8", "surrogateescape")
    try:
        found, _ = parse_unit_text(text, "/h.service")
    except UnitFileError as error:
        assert error.path == "/h.service" and error.line >= 1 and error.col >= 1
        return
    for assignment in found:
        assert assignment.key and "\n" not in assignment.key and assignment.line >= 1


RANDOM_DIRS = (ETC, RUN, "/usr/local/lib/systemd/system", USR, "/run/systemd/system.control",
               "/etc/systemd/system.attached")
"""Where random trees put files (not the transient and generator folders: with ``--root``
systemd puts those in a temporary folder of its own)."""
STEMS = ("a", "a-b", "a-b-c", "x-y", "tpl@", "tpl@i", "a-b@", "a-b@j", "srv")
DROPIN_DIRS = (*STEMS, "a-", "a-b-", "x-", "tpl-@", "service", "al", "a-b-@")


def random_tree(root: Path, draw: random.Random) -> list[str]:
    """Fragments, aliases, a mask and drop-ins in random places; the names to load."""
    names = {f"{stem}.service" for stem in STEMS if not stem.endswith("@")}
    names |= {"tpl@z.service", "a-b@q.service", "al.service"}
    for stem in STEMS:
        for folder in draw.sample(RANDOM_DIRS, draw.randint(0, 2)):
            put(root, f"{folder}/{stem}.service", f"{SERVICE}Nice={draw.randint(0, 9)}\n")
    for _ in range(draw.randint(0, 3)):
        alias, target = draw.choice(("al", "al2", "a-al", "tpl-al@")), draw.choice(STEMS)
        where = root / draw.choice(RANDOM_DIRS).lstrip("/") / f"{alias}.service"
        if alias.endswith("@") == target.endswith("@") and not where.is_symlink():
            link(root, str(where.relative_to(root)), f"{draw.choice(RANDOM_DIRS)}/{target}.service")
            names.add(f"{alias}k.service" if alias.endswith("@") else f"{alias}.service")
    masked = root / draw.choice(RANDOM_DIRS).lstrip("/") / "a-b.service"
    if draw.random() < 0.2 and not masked.exists():
        link(root, str(masked.relative_to(root)), "/dev/null")
    for _ in range(draw.randint(0, 10)):
        put(root, f"{draw.choice(RANDOM_DIRS)}/{draw.choice(DROPIN_DIRS)}.service.d/"
                  f"{draw.choice(('10', '20', '30', 'x'))}.conf", "[Service]\nNice=1\n")
    return sorted(names)


@pytest.mark.parametrize("seed", range(0, 40, 4))
def test_random_trees_match_systemd(tmp_path: Path, seed: int) -> None:
    """Trees drawn at random (fixed seeds) so that overrides, masks, aliases, templates and
    dash prefixes meet in ways nobody wrote by hand. (Such trees found the template's plain
    dash prefix: ``a-.service.d`` applies to ``a-b@j.service``.)"""
    for offset in range(4):
        root = tmp_path / str(offset)
        names = random_tree(root, random.Random(seed + offset))
        views = systemd_views(root, names)
        for name in names:
            ours = our_view(root, name)
            # systemd reports a unit by its id: the fragment's name, masked or not.
            key = name if ours == "not-found" else load_unit(root, name).names[0]
            assert ours == views[key], (seed + offset, name)
