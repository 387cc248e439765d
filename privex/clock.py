"""The one clock: aware UTC datetimes, so every timestamp the app writes or compares is in the same zone."""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)
