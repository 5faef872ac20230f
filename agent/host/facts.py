"""Types shared by the host readers and the snapshot."""

from __future__ import annotations

from agent.core.record import record


@record
class ReadError:
    """A host value that could not be read; checks turn it into status ``error``."""

    reason: str
    """Why, e.g. ``permission denied: /proc/sys/kernel/foo``."""


@record
class HostFacts:
    """Identity of the audited host, for report headers and waiver/host matching."""

    hostname: str
    """From ``proc/sys/kernel/hostname`` under the root; ``"unknown"`` if unreadable."""
    kernel_release: str | None
    """``proc/sys/kernel/osrelease``, e.g. ``6.1.0-18-amd64``."""
    kernel_version: str | None
    """``proc/sys/kernel/version``, the build string."""
    boot_id: str | None
    """``proc/sys/kernel/random/boot_id``: changes at every boot."""
    machine_id: str | None
    """``etc/machine-id``."""
    arch: str | None
    """CPU architecture (``proc/sys/kernel/arch`` where the kernel has it)."""
    os_name: str | None
    """``PRETTY_NAME`` from ``etc/os-release``."""
