"""The portal's notion of "now": naive UTC, one place for tests to move time."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Return the current time as naive UTC (how every timestamp is stored)."""
    return datetime.now(UTC).replace(tzinfo=None)
