"""Seccomp: profiles, syscall names and groups, compilation through libseccomp, formats."""
