"""``python -m agent`` is the same as the ``hostguard`` console script."""

from agent.cli import run

run()
