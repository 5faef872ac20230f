"""README.md's install block: the one shell script between the install markers.

The contract (README.md, "Running as a service"): exactly one ```sh fenced block between the
lines ``<!-- install:begin -->`` and ``<!-- install:end -->``, run as root from a checkout with
an installed ``hostguard`` on PATH. The systemd tests run it as it stands, so the documented
install is the tested one.
"""

from __future__ import annotations

import re
from pathlib import Path

BEGIN = "<!-- install:begin -->"
END = "<!-- install:end -->"
_FENCE = re.compile(r"\A\s*```sh\n(?P<body>.*?)^```\s*\Z", re.DOTALL | re.MULTILINE)


def install_block(readme: Path) -> str:
    """The shell text of the install block; ValueError saying what is wrong otherwise."""
    lines = readme.read_text(encoding="utf-8").splitlines(keepends=True)
    begins = [n for n, line in enumerate(lines) if line.strip() == BEGIN]
    ends = [n for n, line in enumerate(lines) if line.strip() == END]
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise ValueError(f"{readme}: expected one {BEGIN} line followed by one {END} line, "
                         f"found {len(begins)} and {len(ends)}")
    inside = "".join(lines[begins[0] + 1:ends[0]])
    match = _FENCE.match(inside)
    if match is None or re.search(r"^```", match.group("body"), re.MULTILINE):
        raise ValueError(f"{readme}:{begins[0] + 2}: the install markers must hold exactly one "
                         "```sh fenced block")
    return match.group("body")
