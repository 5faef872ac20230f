"""Enforcement: applying profiles to the processes hostguard starts."""
