"""Tests under a real systemd: an nspawn container per module (root, systemd-nspawn)."""
