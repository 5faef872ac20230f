"""``hostguard lint``: schema and semantic checks of policy files, with located diagnostics."""
