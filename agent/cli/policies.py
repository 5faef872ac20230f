"""``hostguard policies list|show|copy``: the policies and seccomp profiles shipped with hostguard.

They are named by their path below the shipped policies folder (``trading-baseline.yaml``,
``seccomp/trading-gateway.yaml``); ``show`` also takes that path without its suffix or the
document's ``metadata.name``. ``copy`` never overwrites a file that differs without ``--force``.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any

import yaml

from agent.cli.output import lay_out
from agent.core import layout, shipped

EXIT_USAGE = 2


def add_parsers(sub: Any) -> None:
    """Register ``policies`` on the top-level subparsers ``sub``."""
    top = sub.add_parser("policies", help="list, show or copy the policies shipped with hostguard",
                         description="The policies and seccomp profiles shipped with hostguard.")
    cmds = top.add_subparsers(dest="policies_command", required=True, metavar="COMMAND")
    listing = cmds.add_parser("list", help="name every shipped policy and profile")
    listing.set_defaults(handler=_list)
    show = cmds.add_parser("show", help="print one shipped policy or profile")
    show.add_argument("name", metavar="NAME", help="as `policies list` names it (the .yaml "
                      "may be left out), or its metadata.name")
    show.set_defaults(handler=_show)
    copy = cmds.add_parser("copy", help="copy the shipped policies and profiles into a folder",
                           description="Copy every shipped policy and profile into DIR (made "
                           "when missing), keeping seccomp/ beside the policies that name it. "
                           "A file already there that differs is kept and shown as a diff "
                           "(exit 1) unless --force. Exit 0 copied or already the same, 1 a "
                           "file kept, 2 unusable arguments or a write failed.")
    copy.add_argument("folder", type=Path, metavar="DIR")
    copy.add_argument("--force", action="store_true", help="replace files that differ")
    copy.set_defaults(handler=_copy)


def _documents() -> list[tuple[str, Path, dict[str, Any]]]:
    """(name, path, document) of every shipped file."""
    top = shipped.policies()
    found = []
    for path in shipped.policy_files():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            data = None  # shown without kind or description; `show` still prints it
        found.append((path.relative_to(top).as_posix(), path,
                      data if isinstance(data, dict) else {}))
    return found


def _list(args: argparse.Namespace) -> int:
    try:
        documents = _documents()
    except shipped.NotShipped as exc:
        print(f"hostguard: {exc}", file=sys.stderr)
        return EXIT_USAGE
    width = max((len(name) for name, _, _ in documents), default=0)
    for name, _, data in documents:
        meta = data.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        description = " ".join(str(meta.get("description", "")).split())
        print(f"{name:<{width}}  {data.get('kind', '?'):<14}  {meta.get('name', '')}: "
              f"{description}".rstrip(": "))
    return 0


def _show(args: argparse.Namespace) -> int:
    try:
        documents = _documents()
    except shipped.NotShipped as exc:
        print(f"hostguard: {exc}", file=sys.stderr)
        return EXIT_USAGE
    wanted: str = args.name
    for name, path, data in documents:
        meta = data.get("metadata")
        names = {name, name.rsplit(".", 1)[0]}
        if isinstance(meta, dict) and isinstance(meta.get("name"), str):
            names.add(meta["name"])
        if wanted in names:
            sys.stdout.write(path.read_text(encoding="utf-8"))
            return 0
    known = [name for name, _, _ in documents]
    close = difflib.get_close_matches(wanted, known + [n.rsplit(".", 1)[0] for n in known], 1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    print(f"hostguard: no shipped policy or profile named {wanted!r}{hint}; "
          "`hostguard policies list` names them", file=sys.stderr)
    return EXIT_USAGE


def _copy(args: argparse.Namespace) -> int:
    try:
        top = shipped.policies()
        files = shipped.policy_files()
    except shipped.NotShipped as exc:
        print(f"hostguard: {exc}", file=sys.stderr)
        return EXIT_USAGE
    folder: Path = args.folder.absolute()
    folders = sorted({p.parent for p in files if p.parent != top})
    entries = [layout.Entry(folder, 0o755)]
    entries += [layout.Entry(folder / p.relative_to(top), 0o755) for p in folders]
    entries += [layout.Entry(folder / p.relative_to(top), 0o644, p.read_bytes()) for p in files]
    # A folder already there serves whatever its mode: only files are compared.
    steps = [s for s in layout.plan(entries, Path("/"), args.force)
             if s.entry.content is not None
             or s.state in (layout.State.CREATE, layout.State.BLOCKED)]
    return lay_out(steps, dry_run=False)

