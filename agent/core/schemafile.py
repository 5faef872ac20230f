"""Published JSON Schema files generated from code: one ``--write``/``--check`` command for each.

The schemas (``agent/policy/schema.json``, ``agent/seccomp/profile.schema.json``) are generated
from the declarations in code; the shipped file must equal the generated text, which
``--check`` (run by ``make lint``) and the tests verify.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def main(argv: list[str] | None, package: str, filename: str, render: Callable[[], str]) -> int:
    """``--write`` rewrites the shipped file, ``--check`` exits 1 when it is stale, else print."""
    from importlib import resources  # noqa: PLC0415 - not for the audit that imports the schema

    parser = argparse.ArgumentParser(description=f"The published {filename}.")
    parser.add_argument("--write", action="store_true", help=f"rewrite the shipped {filename}")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if {filename} is stale")
    args = parser.parse_args(argv)
    target = resources.files(package).joinpath(filename)
    if args.write:
        with resources.as_file(target) as path:
            path.write_text(render(), encoding="utf-8")
        return 0
    if args.check:
        current = target.read_text(encoding="utf-8") if target.is_file() else ""
        if current != render():
            print(f"{package.replace('.', '/')}/{filename} is stale: run make schema",
                  file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(render())
    return 0
