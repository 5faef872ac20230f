"""sshd's configuration as hostguard reads it, against ``sshd -T`` (OpenSSH's own parser) on
the same files: generated trees of drop-ins, nested includes and Match blocks in random
order, and hand-written edge cases.

The trees live in a temporary directory and name each other by absolute paths (or by paths
relative to /etc/ssh that climb out of it), so sshd and hostguard (root ``/``) read the very
same files. ``sshd -T`` without ``-C`` prints the options sshd sets at start-up, before any
connection: those of no Match block but ``Match all`` - what hostguard calls applying.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from agent.host.facts import ReadError
from agent.host.files import MAX_TEXT, FileRequest, read_files
from agent.host.sshd import MAX_DEPTH, SshdConfig, parse_sshd_config
from tests.support import need, need_sshd_test

# Keywords sshd takes anywhere (SSHCFG_ALL) and only outside Match (SSHCFG_GLOBAL), with
# values as sshd -T prints them back (compared without case where sshd ignores it).
ANYWHERE = {
    "permitrootlogin": ["yes", "no", "forced-commands-only"],
    "maxauthtries": ["2", "3", "4", "7"],
    "maxsessions": ["1", "5", "12"],
    "clientaliveinterval": ["0", "15", "300"],
    "clientalivecountmax": ["0", "3", "9"],
    "x11forwarding": ["yes", "no"],
    "passwordauthentication": ["yes", "no"],
    "hostbasedauthentication": ["yes", "no"],
    "ignorerhosts": ["yes", "no"],
    "permitemptypasswords": ["yes", "no"],
    "disableforwarding": ["yes", "no"],
    "kbdinteractiveauthentication": ["yes", "no"],
    "banner": ["none", "/etc/issue.net", "/srv/banner"],
    "loglevel": ["INFO", "VERBOSE", "ERROR"],
    "allowusers": ["alice", "bob carol", "dave"],
    "acceptenv": ["LANG", "LC_* TZ"],
}
GLOBAL_ONLY = {
    "usepam": ["yes", "no"],
    "logingracetime": ["30", "60", "90"],
    "permituserenvironment": ["yes", "no"],
    "maxstartups": ["10:30:60", "5:50:20"],
}
ALIASES = {"kbdinteractiveauthentication": "ChallengeResponseAuthentication"}
ACCUMULATING = {"allowusers", "acceptenv"}
CASELESS = (set(ANYWHERE) | set(GLOBAL_ONLY)) - {"banner", "allowusers", "acceptenv"}
CRITERIA = ["User alice", "Address 10.0.0.0/8", "Host *.example.com", "all",
            "Group wheel,adm", "LocalAddress 192.0.2.1"]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return need_sshd_test(tmp_path_factory.mktemp("hostkey"))


@pytest.fixture(scope="module")
def defaults(sshd: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """What sshd -T prints with nothing configured: its compiled-in defaults."""
    empty = tmp_path_factory.mktemp("empty") / "sshd_config"
    empty.write_text("")
    found = oracle(sshd, empty)
    assert isinstance(found, dict), found
    return found


# A connection most generated Match blocks select (all but Group).
CONNECTION = "user=alice,host=a.example.com,addr=10.1.2.3,laddr=192.0.2.1,lport=22"


def oracle(sshd: list[str], config: Path, *more: str) -> dict[str, list[str]] | str:
    """``sshd -T -f CONFIG``: keyword -> values in order, or sshd's complaint."""
    done = subprocess.run([*sshd, "-f", str(config), *more], capture_output=True, text=True,
                          timeout=60, check=False)
    if done.returncode != 0:
        return done.stderr.strip() or f"exit {done.returncode}"
    values: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        keyword, _, value = line.partition(" ")
        values.setdefault(keyword, []).append(value)
    return values


def hostguard(config: Path) -> SshdConfig | ReadError:
    request = FileRequest(str(config), text=True, config="sshd")
    (entry,) = read_files(Path("/"), request).entries
    assert not isinstance(entry, ReadError), entry
    assert entry.config is not None
    return entry.config


def expected(config: SshdConfig, keyword: str) -> list[str]:
    """What sshd -T should print for ``keyword``, from what hostguard found."""
    values = [d.value for d in config.effective(keyword)]
    if keyword in ACCUMULATING:
        return [arg for value in values for arg in value.split()]
    return values


def same(keyword: str, mine: list[str], theirs: list[str]) -> bool:
    if keyword in CASELESS:
        return [v.lower() for v in mine] == [v.lower() for v in theirs]
    return mine == theirs


class Tree:
    """A generated configuration: files written under ``base``, named absolutely."""

    def __init__(self, base: Path, rng: random.Random) -> None:
        self.base = base
        self.rng = rng
        self.count = 0
        self.keywords: set[str] = set()

    def setting(self, table: dict[str, list[str]]) -> str:
        keyword = self.rng.choice(sorted(table))
        self.keywords.add(keyword)
        value = self.rng.choice(table[keyword])
        if " " not in value and self.rng.random() < 0.2:
            value = f'"{value}"'
        if keyword in CASELESS and self.rng.random() < 0.3:
            value = value.upper() if self.rng.random() < 0.5 else value.capitalize()
        written = ALIASES.get(keyword, keyword) if self.rng.random() < 0.3 else keyword
        written = self.rng.choice([written, written.upper(), written.title()])
        form = self.rng.choice(["{} {}", "{}={}", "{} = {}", "\t{}  {}", "{} {}  # note"])
        return form.format(written, value)

    def include(self, files: list[Path]) -> str:
        """An Include line naming ``files``: one glob for them all, or each path, absolute
        or relative to /etc/ssh."""
        if self.rng.random() < 0.4:
            return f"Include {files[0].parent}/*.conf"
        names = []
        for path in files:
            if self.rng.random() < 0.3:
                names.append("../.." + str(path))  # relative to /etc/ssh
            else:
                names.append(str(path))
        return "Include " + " ".join(names)

    def files(self, count: int, depth: int, global_ok: bool) -> list[Path]:
        """``count`` files in a fresh directory (sorted by name as glob(3) sorts)."""
        self.count += 1
        folder = self.base / f"d{self.count}"
        folder.mkdir()
        names = sorted({self.rng.choice(["00", "10", "9", "a", "B", "z-", "50_x"]) + str(i)
                        for i in range(count)})
        made = []
        for name in names:
            path = folder / f"{name}.conf"
            path.write_text(self.body(depth, global_ok))
            made.append(path)
        return made

    def body(self, depth: int, global_ok: bool) -> str:
        lines = ["# generated"]
        table = {**ANYWHERE, **GLOBAL_ONLY} if global_ok else ANYWHERE
        for _ in range(self.rng.randint(0, 5)):
            lines.append(self.setting(table))
        if depth < 3 and self.rng.random() < 0.5:
            nested = self.files(self.rng.randint(1, 3), depth + 1, global_ok)
            lines.insert(self.rng.randint(1, len(lines)), self.include(nested))
        for _ in range(self.rng.randint(0, 2)):
            lines.append(f"Match {self.rng.choice(CRITERIA)}")
            for _ in range(self.rng.randint(0, 3)):
                lines.append("  " + self.setting(ANYWHERE))
            if depth < 3 and self.rng.random() < 0.4:
                lines.append("  " + self.include(self.files(self.rng.randint(1, 2), depth + 1,
                                                            False)))
        return "\n".join(lines) + "\n"

    def main(self) -> Path:
        path = self.base / "sshd_config"
        path.write_text(self.body(0, True))
        return path


def compare(sshd: list[str], config: Path, keywords: set[str]) -> None:
    theirs = oracle(sshd, config)
    assert isinstance(theirs, dict), f"sshd refused {config}: {theirs}"
    mine = hostguard(config)
    assert isinstance(mine, SshdConfig), mine
    for keyword in sorted(keywords):
        wanted = expected(mine, keyword)
        if not wanted:  # unset: sshd prints its compiled-in default, not checked here
            continue
        got = theirs.get(keyword, [])
        assert same(keyword, wanted, got), (
            f"{keyword}: hostguard {wanted} from "
            f"{[f'{d.path}:{d.line}' for d in mine.effective(keyword)]}, sshd -T {got}\n"
            + "\n".join(f"--- {p}\n{Path(p).read_text()}" for p in mine.files))


@pytest.mark.parametrize("seed", range(100))
def test_generated_trees_agree_with_sshd(sshd: list[str], defaults: dict[str, list[str]],
                                         seed: int, tmp_path: Path) -> None:
    tree = Tree(tmp_path, random.Random(seed))
    main = tree.main()
    compare(sshd, main, tree.keywords)
    # What a connection that Match blocks select gets is either the value every connection
    # gets (sshd's default when nothing sets it) or one of the Match-block values hostguard
    # lists (what match_blocks judges).
    mine, theirs = hostguard(main), oracle(sshd, main, "-C", CONNECTION)
    assert isinstance(mine, SshdConfig) and isinstance(theirs, dict), theirs
    for keyword in sorted(tree.keywords - ACCUMULATING):
        got = theirs[keyword][0].lower()
        inside = {d.value.lower() for d in mine.directives
                  if d.keyword == keyword and not d.applies}
        everyone = [d.value.lower() for d in mine.effective(keyword)] or [
            v.lower() for v in defaults[keyword]]
        if everyone != [got]:
            assert got in inside, (keyword, got, inside, everyone)


def test_unset_keywords_are_unset_for_sshd_too(sshd: list[str], defaults: dict[str, list[str]],
                                               tmp_path: Path) -> None:
    """A keyword hostguard finds no value for prints sshd's default, as with no file at all."""
    for seed in range(20):
        folder = tmp_path / str(seed)
        folder.mkdir()
        tree = Tree(folder, random.Random(1000 + seed))
        config = tree.main()
        mine, theirs = hostguard(config), oracle(sshd, config)
        assert isinstance(mine, SshdConfig) and isinstance(theirs, dict)
        for keyword in ANYWHERE.keys() | GLOBAL_ONLY.keys():
            if not mine.effective(keyword):
                assert theirs.get(keyword) == defaults.get(keyword), keyword


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_first_value_wins_across_drop_ins_and_the_main_file(sshd: list[str],
                                                             tmp_path: Path) -> None:
    write(tmp_path / "d/20-b.conf", "PermitRootLogin yes\n")
    write(tmp_path / "d/10-a.conf", "MaxAuthTries=3\nAllowUsers alice\n")
    main = write(tmp_path / "sshd_config", f"Include {tmp_path}/d/*.conf\n"
                 "PermitRootLogin no\nMaxAuthTries 6\nAllowUsers bob\n")
    mine = hostguard(main)
    assert isinstance(mine, SshdConfig)
    assert [(d.value, d.path, d.line) for d in mine.effective("PermitRootLogin")] == [
        ("yes", f"{tmp_path}/d/20-b.conf", 1)]
    assert [(d.value, d.line) for d in mine.effective("allowusers")] == [("alice", 2),
                                                                         ("bob", 4)]
    compare(sshd, main, {"permitrootlogin", "maxauthtries", "allowusers"})


def test_include_inside_match_belongs_to_it(sshd: list[str], tmp_path: Path) -> None:
    # The file included inside "Match User" applies to that user only, and its own
    # "Match all" cannot make it apply; inside "Match all" an include applies everywhere.
    write(tmp_path / "user.conf", "PermitRootLogin yes\nMatch all\nMaxAuthTries 2\n")
    write(tmp_path / "all.conf", "MaxSessions 3\nMatch User bob\nX11Forwarding yes\n")
    main = write(tmp_path / "sshd_config", f"Match User alice\n  Include {tmp_path}/user.conf"
                 f"\nMatch all\n  Include {tmp_path}/all.conf\n  LogLevel VERBOSE\n")
    mine = hostguard(main)
    assert isinstance(mine, SshdConfig)
    assert not mine.effective("permitrootlogin") and not mine.effective("maxauthtries")
    assert not mine.effective("x11forwarding")
    # The Match line in all.conf ended only all.conf's scope: LogLevel is Match all's again.
    assert [d.value for d in mine.effective("loglevel")] == ["VERBOSE"]
    assert mine.effective("maxsessions")[0].match == f"{main}:3: Match all"
    # user.conf's MaxAuthTries is governed by the Match User that included it, not its own.
    (tries,) = [d for d in mine.directives if d.keyword == "maxauthtries"]
    assert (tries.applies, tries.match) == (False, f"{main}:1: Match User alice")
    compare(sshd, main, {"maxsessions", "loglevel"})
    theirs = oracle(sshd, main)
    assert isinstance(theirs, dict)
    assert theirs["permitrootlogin"] == ["without-password"]  # sshd's default, not "yes"
    assert theirs["maxauthtries"] == ["6"] and theirs["x11forwarding"] == ["no"]


def test_match_all_replaces_what_sshd_started_with(sshd: list[str], tmp_path: Path) -> None:
    # Per connection, a Match block that selects it (all does) replaces a value a Match
    # block may set, lists included; keywords only the global section sets keep the first.
    main = write(tmp_path / "sshd_config", "MaxAuthTries 3\nAllowUsers alice\nUsePAM yes\n"
                 "Match all\n  MaxAuthTries 5\n  AllowUsers bob\n  UsePAM no\n"
                 "  MaxAuthTries 6\n")
    mine = hostguard(main)
    assert isinstance(mine, SshdConfig)
    assert [(d.value, d.line) for d in mine.effective("maxauthtries")] == [("5", 5)]
    assert [d.value for d in mine.effective("allowusers")] == ["bob"]
    assert [d.value for d in mine.effective("usepam")] == ["yes"]
    compare(sshd, main, {"maxauthtries", "allowusers", "usepam"})


@pytest.mark.parametrize("keyword", sorted((ANYWHERE.keys() | GLOBAL_ONLY.keys()) - ACCUMULATING))
def test_match_all_against_a_global_value_per_keyword(sshd: list[str], tmp_path: Path,
                                                      keyword: str) -> None:
    first, second = (ANYWHERE.get(keyword) or GLOBAL_ONLY[keyword])[:2]
    main = write(tmp_path / "sshd_config", f"{keyword} {first}\nMatch all\n  {keyword} "
                 f"{second}\n")
    compare(sshd, main, {keyword})


def test_several_paths_relative_ones_under_etc_ssh_and_no_match(sshd: list[str],
                                                                 tmp_path: Path) -> None:
    need(Path("/etc/ssh").is_dir(), "/etc/ssh is absent (openssh-client creates it)")
    write(tmp_path / "b.conf", "MaxAuthTries 5\n")
    write(tmp_path / "a.conf", "MaxAuthTries 4\n")
    main = write(tmp_path / "sshd_config",
                 f"Include {tmp_path}/none-*.conf ../..{tmp_path}/b.conf {tmp_path}/a.conf\n"
                 f"Include {tmp_path}/missing.conf\n")
    mine = hostguard(main)
    assert isinstance(mine, SshdConfig)
    assert mine.files == (str(main), f"/etc/ssh/../..{tmp_path}/b.conf", f"{tmp_path}/a.conf")
    compare(sshd, main, {"maxauthtries"})


def test_glob_order_is_byte_order(sshd: list[str], tmp_path: Path) -> None:
    for name, value in (("a", 2), ("B", 3), ("10", 4), ("9", 5), ("_x", 7)):
        write(tmp_path / f"d/{name}.conf", f"MaxAuthTries {value}\n")
    main = write(tmp_path / "sshd_config", f"Include {tmp_path}/d/*\n")
    mine = hostguard(main)
    assert isinstance(mine, SshdConfig)
    assert [Path(p).name for p in mine.files[1:]] == ["10.conf", "9.conf", "B.conf",
                                                      "_x.conf", "a.conf"]
    compare(sshd, main, {"maxauthtries"})


@pytest.mark.parametrize("depth", [MAX_DEPTH, MAX_DEPTH + 1])
def test_include_depth_limit_is_sshds(sshd: list[str], tmp_path: Path, depth: int) -> None:
    for level in range(depth):
        write(tmp_path / f"{level}.conf", f"Include {tmp_path}/{level + 1}.conf\n")
    write(tmp_path / f"{depth}.conf", "MaxAuthTries 3\n")
    main = tmp_path / "0.conf"
    mine, theirs = hostguard(main), oracle(sshd, main)
    if depth <= MAX_DEPTH:
        assert isinstance(theirs, dict) and theirs["maxauthtries"] == ["3"]
        assert isinstance(mine, SshdConfig) and mine.effective("maxauthtries")[0].value == "3"
    else:
        assert isinstance(theirs, str) and "recursive" in theirs
        assert isinstance(mine, ReadError) and "levels deep" in mine.reason


def test_an_include_loop_is_refused(sshd: list[str], tmp_path: Path) -> None:
    main = write(tmp_path / "sshd_config", f"MaxAuthTries 3\nInclude {tmp_path}/sshd_config\n")
    assert isinstance(oracle(sshd, main), str)
    mine = hostguard(main)
    assert isinstance(mine, ReadError)
    assert "levels deep" in mine.reason and str(main) in mine.reason


def test_an_included_file_that_cannot_be_read_is_refused(sshd: list[str],
                                                          tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d/broken.conf").symlink_to(tmp_path / "nowhere")
    main = write(tmp_path / "sshd_config", f"Include {tmp_path}/d/*.conf\nMaxAuthTries 3\n")
    assert isinstance(oracle(sshd, main), str)
    mine = hostguard(main)
    assert isinstance(mine, ReadError)
    assert f"{main}:1: Include {tmp_path}/d/*.conf" in mine.reason
    assert f"{tmp_path}/d/broken.conf" in mine.reason


@pytest.mark.parametrize(("text", "why"), [
    ("PermitRootLogin\n", "no argument after keyword"),
    ('Banner "/etc/issue\n', "invalid quotes"),
    ("Match\n", "no argument after keyword 'Match'"),
    ("Match all User x\n", "'all' cannot be combined"),
    ("Match User\n", "Match User without criteria"),
    ("\x7fELF\x02\x01 junk\n", "is not an sshd keyword"),
])
def test_lines_sshd_refuses_are_errors_naming_the_line(sshd: list[str], tmp_path: Path,
                                                       text: str, why: str) -> None:
    main = write(tmp_path / "sshd_config", "MaxAuthTries 3\n" + text)
    assert isinstance(oracle(sshd, main), str)
    mine = hostguard(main)
    assert isinstance(mine, ReadError)
    assert f"{main}:2: " in mine.reason and why in mine.reason


def test_syntax_variants(sshd: list[str], tmp_path: Path) -> None:
    main = write(tmp_path / "sshd_config", "\n".join([
        "  # comment", "\tmaxauthtries=3", "PERMITROOTLOGIN = no # trailing comment",
        'Banner "/srv/my banner"', "AcceptEnv LANG\\ X  LC_*", "loglevel\tverbose\f",
        "Keepalive no", "TCPKeepAlive yes", "Ciphers=aes256-ctr,aes128-ctr", ""]))
    mine = hostguard(main)
    assert isinstance(mine, SshdConfig)
    values = {d.keyword: d.value for d in mine.directives}
    assert values["banner"] == "/srv/my banner"
    assert values["acceptenv"] == "LANG X LC_*"
    assert [d.value for d in mine.effective("TCPKeepAlive")] == ["no"]
    compare(sshd, main, {"maxauthtries", "permitrootlogin", "banner", "loglevel",
                         "tcpkeepalive", "ciphers"})


@pytest.mark.parametrize("line", [
    '"PermitRootLogin yes', 'Permit"RootLogin yes', "=PermitRootLogin yes",
    '"PermitRootLogin" yes', "PermitRootLogin 'yes' # x", "PermitRootLogin\\ yes",
    "PermitRootLogin yes\r", "\f PermitRootLogin yes",
])
def test_odd_lines_read_as_sshd_reads_them(sshd: list[str], tmp_path: Path, line: str) -> None:
    main = write(tmp_path / "sshd_config", f"{line}\nMaxAuthTries 3\n")
    theirs, mine = oracle(sshd, main), hostguard(main)
    assert isinstance(theirs, dict) == isinstance(mine, SshdConfig), (theirs, mine)
    if isinstance(theirs, dict) and isinstance(mine, SshdConfig):
        found = mine.effective("permitrootlogin")
        assert theirs["permitrootlogin"] == ([d.value for d in found] or ["without-password"])


def test_bounds_and_loader_errors_are_read_errors() -> None:
    def load(pattern: str) -> list[tuple[str, str]] | ReadError:
        return ReadError(f"permission denied: {pattern}")

    refused = parse_sshd_config("/etc/ssh/sshd_config", "Include x.conf\n", load)
    assert refused == ReadError("sshd would refuse this configuration: /etc/ssh/sshd_config:1:"
                                " Include x.conf: permission denied: /etc/ssh/x.conf")

    def fanout(pattern: str) -> list[tuple[str, str]]:
        return [(f"{pattern}{i}", "MaxAuthTries 3\n" * 200) for i in range(1000)]

    huge = parse_sshd_config("/etc/ssh/sshd_config", "Include f\n", fanout)
    assert isinstance(huge, ReadError) and "lines with includes expanded" in huge.reason


def test_oversized_or_odd_files_are_errors_naming_them(tmp_path: Path) -> None:
    write(tmp_path / "etc/ssh/big.conf", "# padding\n" * (MAX_TEXT // 10 + 1))
    write(tmp_path / "etc/ssh/sshd_config", "Include big.conf\n")
    (tmp_path / "etc/ssh/dir.conf").mkdir()
    request = FileRequest("/etc/ssh/sshd_config", text=True, config="sshd")
    (entry,) = read_files(tmp_path, request).entries
    assert not isinstance(entry, ReadError) and isinstance(entry.config, ReadError)
    assert entry.config.reason == (
        "sshd would refuse this configuration: /etc/ssh/sshd_config:1: Include big.conf: "
        f"larger than {MAX_TEXT} bytes to read as text: /etc/ssh/big.conf")
    write(tmp_path / "etc/ssh/sshd_config", "Include /etc/ssh/*.conf\n")
    (entry,) = read_files(tmp_path, request).entries
    assert not isinstance(entry, ReadError) and isinstance(entry.config, ReadError)
    assert "big.conf" in entry.config.reason
    (tmp_path / "etc/ssh/big.conf").unlink()
    (entry,) = read_files(tmp_path, request).entries
    assert not isinstance(entry, ReadError) and isinstance(entry.config, ReadError)
    assert entry.config.reason.endswith("not a regular file (directory): /etc/ssh/dir.conf")
    # The file the check names, not a regular one: its configuration is an error too.
    (entry,) = read_files(tmp_path, FileRequest("/etc/ssh/dir.conf", text=True,
                                                config="sshd")).entries
    assert not isinstance(entry, ReadError)
    assert entry.config == ReadError("not a regular file (directory): /etc/ssh/dir.conf")


def test_under_a_root_includes_resolve_inside_it(tmp_path: Path) -> None:
    """Include names host paths: under --root they are the image's, never the auditor's."""
    write(tmp_path / "etc/ssh/sshd_config.d/50-cloud.conf", "PermitRootLogin no\n")
    write(tmp_path / "etc/ssh/extra.conf", "MaxAuthTries 2\n")
    write(tmp_path / "etc/ssh/sshd_config",
          "Include /etc/ssh/sshd_config.d/*.conf extra.conf\nPermitRootLogin yes\n")
    request = FileRequest("/etc/ssh/sshd_config", text=True, config="sshd")
    (entry,) = read_files(tmp_path, request).entries
    assert not isinstance(entry, ReadError) and isinstance(entry.config, SshdConfig)
    assert entry.config.files == ("/etc/ssh/sshd_config",
                                  "/etc/ssh/sshd_config.d/50-cloud.conf",
                                  "/etc/ssh/extra.conf")
    assert entry.config.effective("permitrootlogin")[0].path == (
        "/etc/ssh/sshd_config.d/50-cloud.conf")


def test_the_live_sshd_config_agrees_with_sshd(sshd: list[str]) -> None:
    main = Path("/etc/ssh/sshd_config")
    need(main.is_file(), "no /etc/ssh/sshd_config (openssh-server is not installed)")
    mine = hostguard(main)
    assert isinstance(mine, SshdConfig)
    compare(sshd, main, {d.keyword for d in mine.directives} & (
        ANYWHERE.keys() | GLOBAL_ONLY.keys()))


def test_a_keyword_sshd_forbids_in_a_match_block_is_refused(sshd: list[str],
                                                           defaults: dict[str, list[str]],
                                                           tmp_path: Path) -> None:
    # Each keyword sshd knows (and a few aliases, deprecated and unknown names) inside a Match
    # that does not apply at start-up, directly and from an included file: refused by both or
    # by neither (a value sshd rejects for an allowed keyword is not this test's subject).
    names = [*sorted(defaults), "ChallengeResponseAuthentication", "RSAAuthentication",
             "KeepAlive", "HostDSAKey", "DebianBanner", "NoSuchKeyword"]
    disagree = []
    refusals = 0
    for i, name in enumerate(names):
        include = write(tmp_path / f"inc{i}.conf", f"{name} x\n")
        for body in (f"{name} x\n", f"Include {include}\n"):
            main = write(tmp_path / "sshd_config", f"MaxAuthTries 3\nMatch User nobody\n  {body}")
            theirs = oracle(sshd, main)
            refused = isinstance(theirs, str) and "not allowed within a Match block" in theirs
            mine = hostguard(main)
            mine_refused = (isinstance(mine, ReadError)
                            and "is not allowed within a Match block" in mine.reason)
            refusals += refused
            if refused != mine_refused:
                disagree.append((name, body.split()[0], theirs if refused else mine))
    assert disagree == []
    assert 2 * 30 < refusals < 2 * (len(names) - 30)  # many of each kind
