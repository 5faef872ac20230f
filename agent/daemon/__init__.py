"""The agent as a long-running service: configuration, sd_notify, the audit loop."""
