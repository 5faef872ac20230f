"""Argument types shared by the commands' parsers."""

from __future__ import annotations

import argparse
import datetime as dt


def date(value: str) -> dt.date:
    """``--today YYYY-MM-DD``."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None
