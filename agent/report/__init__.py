"""Renderers: one module per format, each ``render(run) -> str``, one result model in."""
