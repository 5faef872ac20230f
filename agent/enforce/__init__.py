"""Enforcement: applying profiles to the processes hostguard starts."""

EXIT_CANNOT_RUN = 126
"""The target was not started (or could not be executed): the shell's own status for it."""
EXIT_NOT_FOUND = 127
"""The command was not found."""
