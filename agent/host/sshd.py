"""sshd's configuration as sshd itself reads it at start-up: ``Include`` followed, each
directive with the file and line it came from and whether it applies outside any ``Match``.

Hand-written after OpenSSH 9.2's ``servconf.c`` (``process_server_config_line_depth``,
``parse_server_config_depth``, ``match_cfg_line``, ``copy_set_server_options``) and
``misc.c`` (``strdelim``, ``argv_split``), because no library parses sshd_config and running
``sshd -T`` would execute the audited image's binary and need its host keys. What it
reproduces: leading and trailing whitespace, ``#`` comments, ``keyword value`` and
``keyword=value``, quoted arguments, keywords without case and with their aliases; the first
value winning but for the keywords that accumulate and the few that servconf.c lets the last
line set; ``Include`` with several paths, relative ones under ``/etc/ssh``, globs expanded in
sorted order, no match being no error, files included inside a ``Match`` block belonging to
that block (and their own ``Match`` lines never applying); ``Match all`` applying everywhere
(and, per connection, replacing what sshd started with); the nesting limit of
:data:`MAX_DEPTH`. sshd exits on a file it cannot open, a line without an argument, bad
quotes and a malformed ``Match``: each of those is a :class:`ReadError` naming the file and
line. Keywords are not checked against sshd's list (distributions add their own) nor values
against their syntax (``sshd -t`` does both); a keyword that is not alphanumeric is refused,
which also catches binary junk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agent.core.record import record
from agent.host.facts import ReadError

MAX_DEPTH = 16
"""sshd's ``SERVCONF_MAX_DEPTH``: files included within files, at most this deep."""
MAX_LINES = 100000
"""Lines processed in all, counting a file each time it is included."""
SSHDIR = "/etc/ssh"
"""Where a relative ``Include`` path starts (sshd's compiled-in ``SSHDIR`` on Debian)."""

ALIASES = {
    "hostdsakey": "hostkey", "keepalive": "tcpkeepalive",
    "hostbasedacceptedkeytypes": "hostbasedacceptedalgorithms",
    "pubkeyacceptedkeytypes": "pubkeyacceptedalgorithms",
    "challengeresponseauthentication": "kbdinteractiveauthentication",
    "skeyauthentication": "kbdinteractiveauthentication",
    "dsaauthentication": "pubkeyauthentication",
}
"""Keywords servconf.c maps to the same option as another: the first of either wins."""
ACCUMULATING = frozenset({
    "port", "hostkey", "hostcertificate", "listenaddress", "allowusers", "denyusers",
    "allowgroups", "denygroups", "acceptenv", "subsystem",
})
"""Keywords whose every applying line adds to the option."""
LAST_WINS = frozenset({
    "maxstartups", "persourcemaxstartups", "persourcenetblocksize", "ipqos",
    "streamlocalbindmask", "fingerprinthash",
})
"""Keywords servconf.c sets on every applying line, so that the last one wins; for every
keyword in neither set the first one wins."""
MATCH_KEYWORDS = frozenset({
    "acceptenv", "allowagentforwarding", "allowgroups", "allowstreamlocalforwarding",
    "allowtcpforwarding", "allowusers", "authenticationmethods", "authorizedkeyscommand",
    "authorizedkeyscommanduser", "authorizedkeysfile", "authorizedprincipalscommand",
    "authorizedprincipalscommanduser", "authorizedprincipalsfile", "banner",
    "casignaturealgorithms", "channeltimeout", "chrootdirectory", "clientalivecountmax",
    "clientaliveinterval", "denygroups", "denyusers", "disableforwarding", "exposeauthinfo",
    "forcecommand", "gatewayports", "gssapiauthentication", "hostbasedacceptedalgorithms",
    "hostbasedauthentication", "hostbasedusesnamefrompacketonly", "ignorerhosts", "ipqos",
    "kbdinteractiveauthentication", "kerberosauthentication", "loglevel", "logverbose",
    "maxauthtries", "maxsessions", "passwordauthentication", "permitemptypasswords",
    "permitlisten", "permitopen", "permitrootlogin", "permittty", "permittunnel",
    "permituserrc", "pubkeyacceptedalgorithms", "pubkeyauthentication", "pubkeyauthoptions",
    "rdomain", "rekeylimit", "requiredrsasize", "revokedkeys", "setenv", "streamlocalbindmask",
    "streamlocalbindunlink", "trustedusercakeys", "unusedconnectiontimeout",
    "x11displayoffset", "x11forwarding", "x11uselocalhost",
})
"""Keywords a Match block may set (servconf.c's ``SSHCFG_ALL``, aliases left out): for a
connection, a value from a Match block that selects it replaces the one sshd started with.
Any other keyword keeps its start-up value."""
_MATCH_ALLOWED = MATCH_KEYWORDS | {
    "match", "include", "challengeresponseauthentication", "skeyauthentication",
    "hostbasedacceptedkeytypes", "pubkeyacceptedkeytypes", "authorizedkeysfile2",
    "rhostsrsaauthentication", "rsaauthentication",
}
"""Every name servconf.c's keyword table flags ``SSHCFG_MATCH`` (aliases and deprecated names
included): in a Match block sshd does not apply at start-up, any other line, an unknown
keyword too, makes sshd refuse the whole configuration."""
_MATCH_CRITERIA = frozenset({"user", "group", "host", "localaddress", "localport", "address",
                             "rdomain"})
_WHITESPACE = " \t\r\n"

Loader = Callable[[str], "list[tuple[str, str]] | ReadError"]
"""Expands an absolute host path or glob to (path, text) of each match, sorted."""


@record
class Directive:
    """One ``keyword arguments`` line."""

    keyword: str
    """Lower case, aliases replaced by the keyword they stand for (``hostkey``)."""
    value: str
    """The arguments, unquoted, joined by one space."""
    path: str
    """The file it stands in."""
    line: int
    """Its line there."""
    applies: bool
    """Whether it applies to every connection: outside any Match block, or inside
    ``Match all`` (a Match block sshd reads at start-up as well)."""
    match: str | None
    """The ``Match`` block it stands in (``path:line: Match ...``), or None."""


@record
class SshdConfig:
    """The directives in the order sshd reads them, and the files it read."""

    directives: tuple[Directive, ...]
    """Every directive of every file, includes expanded in place."""
    files: tuple[str, ...]
    """Each file read, in the order first read."""

    def effective(self, keyword: str) -> tuple[Directive, ...]:
        """What sets ``keyword`` for a connection no conditional Match selects (what
        ``sshd -T`` prints without ``-C``): the first applying directive (the last for
        :data:`LAST_WINS`), or every applying one for an accumulating keyword; empty when
        nothing sets it. For :data:`MATCH_KEYWORDS`, ``Match all`` blocks are read per
        connection and replace what sshd started with, so they win when they set it."""
        name = canonical(keyword)
        found = tuple(d for d in self.directives if d.applies and d.keyword == name)
        in_match = tuple(d for d in found if d.match is not None)
        if name in MATCH_KEYWORDS and in_match:
            found = in_match
        if name in ACCUMULATING:
            return found
        return found[-1:] if name in LAST_WINS else found[:1]


def canonical(keyword: str) -> str:
    """The keyword as compared: lower case, an alias replaced."""
    name = keyword.lower()
    return ALIASES.get(name, name)


class _Refused(Exception):
    """sshd would refuse the configuration; the message names the file and line."""


def _strdelim(s: str | None) -> tuple[str | None, str | None]:
    """misc.c's ``strdelim``: (token, rest); token None on an unmatched quote."""
    if s is None:
        return None, None
    cut = next((i for i, c in enumerate(s) if c in _WHITESPACE + '"='), None)
    if cut is None:
        return s, None
    if s[cut] == '"':
        s = s[:cut] + s[cut + 1:]
        end = s.find('"', cut)
        if end < 0:
            return None, None
        rest = s[end + 1:]
        return s[:end], rest.lstrip(_WHITESPACE)
    token, rest = s[:cut], s[cut + 1:]
    skipped_equals = s[cut] == "="
    rest = rest.lstrip(_WHITESPACE)
    if rest.startswith("=") and not skipped_equals:
        rest = rest[1:].lstrip(_WHITESPACE)
    return token, rest


def _argv_split(s: str) -> list[str] | None:
    """misc.c's ``argv_split`` with comments ending the line; None on an unclosed quote."""
    args: list[str] = []
    i = 0
    while i < len(s):
        if s[i] in " \t":
            i += 1
            continue
        if s[i] == "#":
            break
        quote = ""
        arg: list[str] = []
        while i < len(s):
            c = s[i]
            if c == "\\" and i + 1 < len(s) and (
                    s[i + 1] in "'\"\\" or (not quote and s[i + 1] == " ")):
                i += 1
                arg.append(s[i])
            elif not quote and c in " \t":
                break
            elif not quote and c in "\"'":
                quote = c
            elif quote and c == quote:
                quote = ""
            else:
                arg.append(c)
            i += 1
        if quote:
            return None
        args.append("".join(arg))
    return args


@dataclass
class _Scope:
    """Where a file's reading stands: sshd's ``activep`` and the Match block it is in."""

    active: bool
    """Directives here apply at start-up."""
    match: str | None
    """The Match line in force, or None outside any."""
    nevermatch: bool
    """The file was included inside a Match that does not apply: none of its own Match
    lines applies either (sshd's ``SSHCFG_NEVERMATCH``)."""


class _Reader:
    def __init__(self, load: Loader) -> None:
        self.load = load
        self.cache: dict[str, list[tuple[str, str]]] = {}
        self.directives: list[Directive] = []
        self.files: list[str] = []
        self.lines = 0

    def parse(self, path: str, text: str, depth: int, scope: _Scope) -> None:
        if depth > MAX_DEPTH:
            raise _Refused(f"{path}: included more than {MAX_DEPTH} levels deep (sshd: too "
                           "many recursive configuration includes)")
        if path not in self.files:
            self.files.append(path)
        for number, raw in enumerate(text.split("\n"), 1):
            self.lines += 1
            if self.lines > MAX_LINES:
                raise _Refused(f"more than {MAX_LINES} lines with includes expanded "
                               f"(at {path}:{number})")
            self._line(f"{path}:{number}", raw, depth, scope)

    def _line(self, where: str, raw: str, depth: int, scope: _Scope) -> None:
        if "\0" in raw:
            raise _Refused(f"{where}: NUL byte")
        line = raw.lstrip(" \t\r").rstrip(_WHITESPACE + "\f")
        if not line:
            return
        keyword, rest = _strdelim(line)
        if keyword == "":
            keyword, rest = _strdelim(rest)
        if not keyword or keyword.startswith("#"):
            return  # sshd skips a comment, and a keyword with an unclosed quote, silently
        if not rest:
            raise _Refused(f"{where}: no argument after keyword {keyword[:40]!r}")
        if not keyword.isascii() or not keyword.isalnum():
            raise _Refused(f"{where}: {keyword[:40]!r} is not an sshd keyword")
        args = _argv_split(rest)
        if args is None:
            raise _Refused(f"{where}: invalid quotes")
        name = canonical(keyword)
        if not scope.active and keyword.lower() not in _MATCH_ALLOWED:
            raise _Refused(f"{where}: Directive {keyword[:40]!r} is not allowed within a Match "
                           "block")
        if not args and name != "match":
            raise _Refused(f"{where}: no argument after keyword {keyword!r}")
        if name == "match":
            applies = _match_all(rest, where)
            scope.active = applies and not scope.nevermatch
            if not scope.nevermatch:  # else the includer's Match governs, whatever this says
                scope.match = f"{where}: {line[:200]}"
        elif name == "include":
            self._include(where, args, depth, scope)
        else:
            path, number = where.rsplit(":", 1)
            self.directives.append(Directive(name, " ".join(args), path, int(number),
                                             scope.active, scope.match))

    def _include(self, where: str, args: list[str], depth: int, scope: _Scope) -> None:
        for arg in args:
            if not arg:
                raise _Refused(f"{where}: Include with an empty argument")
            if arg.startswith("~"):
                raise _Refused(f"{where}: Include {arg!r}: a path relative to sshd's working "
                               "directory cannot be resolved here")
            selector = arg if arg.startswith("/") else f"{SSHDIR}/{arg}"
            found = self.cache.get(selector)
            if found is None:
                loaded = self.load(selector)
                if isinstance(loaded, ReadError):
                    raise _Refused(f"{where}: Include {arg}: {loaded.reason}")
                found = self.cache[selector] = loaded
            for included, text in found:
                # The included file starts in the includer's scope and cannot change it;
                # inside a Match that does not apply, its own Match lines never apply.
                self.parse(included, text, depth + 1,
                           _Scope(scope.active, scope.match, not scope.active))


def _match_all(criteria: str, where: str) -> bool:
    """Whether a Match line applies at start-up (only ``Match all`` does); malformed
    criteria are refused as match_cfg_line refuses them."""
    rest: str | None = criteria
    count = 0
    while True:
        attribute, rest = _strdelim(rest)
        if not attribute or attribute.startswith("#"):
            break
        count += 1
        if attribute.lower() == "all":
            extra, _ = _strdelim(rest)
            if count > 1 or (extra and not extra.startswith("#")):
                raise _Refused(f"{where}: 'all' cannot be combined with other Match "
                               "criteria")
            return True
        argument, rest = _strdelim(rest)
        if not argument or argument.startswith("#"):
            raise _Refused(f"{where}: Match {attribute} without criteria")
        if attribute.lower() not in _MATCH_CRITERIA:
            raise _Refused(f"{where}: unsupported Match attribute {attribute[:40]!r}")
    if count == 0:
        raise _Refused(f"{where}: Match without criteria")
    return False


def parse_sshd_config(path: str, text: str, load: Loader) -> SshdConfig | ReadError:
    """sshd's configuration starting at ``path`` (already read as ``text``); ``load`` reads
    what an ``Include`` names."""
    reader = _Reader(load)
    try:
        reader.parse(path, text, 0, _Scope(True, None, False))
    except _Refused as exc:
        return ReadError(f"sshd would refuse this configuration: {exc}")
    return SshdConfig(tuple(reader.directives), tuple(reader.files))
