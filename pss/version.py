"""Provenance every document records: the package version and when it was written."""

from __future__ import annotations

from datetime import datetime, timezone

__version__ = "0.1.0"


def utc_timestamp() -> str:
    """RFC 3339 UTC time, e.g. 2026-11-21T05:41:00+00:00."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
