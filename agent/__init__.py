"""hostguard: host-hardening audit and policy enforcement for Linux trading hosts."""

__version__ = "0.1.0"
