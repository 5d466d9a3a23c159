"""The portal's notion of "now": one movable source, read by every function here.

Stored timestamps are naive UTC (``utcnow()``); office rules (working days and
hours) need Bogotá wall-clock time (``now()``, ``today()``). All three read the
module-level ``_source`` at call time, so the ``clock`` test fixture
(tests/conftest.py) moves time for all of them by replacing ``_source`` alone.

What a moved clock reaches:

- every call to ``utcnow()``, ``now()`` or ``today()``, including in modules that
  did ``from core.clock import utcnow`` and in ``DateTimeField(default=utcnow)``:
  the name they hold is this function, and it reads ``_source`` when called;
- ``core.workdays``, which takes its default "now" from ``now()``.

What it does not reach:

- code that asks the system directly: ``datetime.now()``, ``date.today()``,
  ``time.time()`` (today ``core/quiz.py``'s default ``date.today()`` and the
  signed timestamp in ``blueprints/public/service.py``), and libraries that do
  the same (itsdangerous' ``max_age``, Flask-Limiter's windows, cookie expiry);
- the database's own clock (``CURRENT_TIMESTAMP``, ``now()`` in SQL);
- other processes (the gunicorn and worker of the browser tests);
- a test that monkeypatches ``core.clock.utcnow`` itself: that replaces this
  module's attribute only, not the copies other modules imported. Move
  ``_source`` (the fixture does) instead.
"""

from collections.abc import Callable
from datetime import UTC, date, datetime

from core.colombia import BOGOTA


def _system_time() -> datetime:
    """Return the machine's current time, aware UTC."""
    return datetime.now(UTC)


# The one source of time: a function returning an aware datetime. Tests replace it.
_source: Callable[[], datetime] = _system_time


def utcnow() -> datetime:
    """Return the current time as naive UTC (how every timestamp is stored)."""
    return _source().astimezone(UTC).replace(tzinfo=None)


def now() -> datetime:
    """Return the current time as an aware datetime in Bogotá time."""
    return _source().astimezone(BOGOTA)


def today() -> date:
    """Return today's date in Bogotá."""
    return now().date()
