"""The leaf layer: building blocks every other layer uses; imports nothing else of ``agent``.

Source positions (:mod:`~agent.core.location`), diagnostics and their rule table
(:mod:`~agent.core.diagnostic`), YAML loaded with positions (:mod:`~agent.core.yamlload`),
schema errors in words (:mod:`~agent.core.schema_errors`), value types
(:mod:`~agent.core.record`) and small helpers (atomic files, digests, JSON and SARIF text, the
schema-file command, the shipped files and laying files out). See docs/ARCHITECTURE.md.
"""
