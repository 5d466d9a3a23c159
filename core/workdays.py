"""Colombian working days and the Caja's office hours: terms, counts and due states.

Holidays are Colombia's national ones (``holidays`` package, country "CO"), which
already apply Ley 51 de 1983 (Ley Emiliani: most move to the next Monday) and
the Easter-based ones (Jueves and Viernes Santo, Ascensión, Corpus Christi,
Sagrado Corazón). Saturdays and Sundays are never working days.

Conventions:

- A ``date`` is a Bogotá calendar date. A naive ``datetime`` is naive UTC, as
  every stored timestamp is (``core.clock.utcnow``); an aware one is converted.
  Results that are datetimes are aware, in Bogotá time.
- Day terms follow Ley 1755 de 2015, art. 14: a petition is answered "dentro de
  los [n] días siguientes a su recepción", counted in working days (días
  hábiles), so the day of receipt is not counted. A request received on a
  non-working day, or on a working day at or after ``CLOSING`` (18:00), counts
  as received on the next working day (``receipt_day``); day 1 of its term is
  the working day after that. Before the office opens (a portal request at
  06:00) it is received that same day.
- Hour targets (help desk) run only while the office is open: ``OFFICE_HOURS``
  on working days.
"""

import enum
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

import holidays

from core import clock
from core.colombia import BOGOTA

# The Caja's office hours, Bogotá time, Monday to Friday; closed on holidays.
OFFICE_HOURS: tuple[tuple[time, time], ...] = (
    (time(8, 0), time(12, 0)),
    (time(14, 0), time(18, 0)),
)
# A request received at or after this hour is received the next working day.
CLOSING: time = OFFICE_HOURS[-1][1]
# The week's working days by date.weekday(): Monday 0 to Friday 4.
WORKING_WEEKDAYS: frozenset[int] = frozenset(range(5))

_ONE_DAY = timedelta(days=1)


class DueState(enum.Enum):
    """Where a term stands: on time, close to its end, or past it."""

    AL_DIA = "al_dia"
    POR_VENCER = "por_vencer"
    VENCIDO = "vencido"


@lru_cache(maxsize=64)
def holidays_in(year: int) -> frozenset[date]:
    """Return Colombia's national holidays of a year (computed once per year)."""
    return frozenset(holidays.country_holidays("CO", years=year))


def is_holiday(d: date) -> bool:
    """Tell whether a date is a Colombian national holiday."""
    return d in holidays_in(d.year)


def is_working_day(d: date) -> bool:
    """Tell whether a date is a working day: Monday to Friday and not a holiday."""
    return d.weekday() in WORKING_WEEKDAYS and not is_holiday(d)


def to_local(moment: datetime) -> datetime:
    """Return a datetime in Bogotá time, reading a naive one as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BOGOTA)


def next_working_day(d: date) -> date:
    """Return the first working day after a date."""
    d += _ONE_DAY
    while not is_working_day(d):
        d += _ONE_DAY
    return d


def receipt_day(received: date | datetime) -> date:
    """Return the working day a request counts as received (see the module's rules)."""
    if isinstance(received, datetime):
        local = to_local(received)
        day = local.date()
        if is_working_day(day) and local.time() < CLOSING:
            return day
        return next_working_day(day)
    return received if is_working_day(received) else next_working_day(received)


def working_days_before(day: date, n: int) -> date:
    """Return the working day n working days before day (demo data, tests)."""
    for _ in range(n):
        day -= _ONE_DAY
        while not is_working_day(day):
            day -= _ONE_DAY
    return day


def bogota_at(day: date, hour: int, minute: int = 0) -> datetime:
    """Return a Bogotá wall-clock time as the naive UTC every stored timestamp is."""
    local = datetime.combine(day, time(hour, minute), BOGOTA)
    return local.astimezone(UTC).replace(tzinfo=None)


def add_working_days(start: date | datetime, n: int) -> date:
    """Return the last day of an n-working-day term for a request received at start."""
    if n < 0:
        raise ValueError("n must be 0 or more working days")
    day = receipt_day(start)
    for _ in range(n):
        day = next_working_day(day)
    return day


def _date_of(moment: date | datetime) -> date:
    """Return the Bogotá date of a date or datetime."""
    return to_local(moment).date() if isinstance(moment, datetime) else moment


def _working_days_after(a: date, b: date) -> int:
    """Count working days d with a < d <= b (0 when b <= a)."""
    count, d = 0, a + _ONE_DAY
    while d <= b:
        count += is_working_day(d)
        d += _ONE_DAY
    return count


def working_days_between(a: date | datetime, b: date | datetime) -> int:
    """Return which working day of a term received at a the moment b falls on (0 on receipt)."""
    if _date_of(b) < _date_of(a) or (
        isinstance(a, datetime) and isinstance(b, datetime) and to_local(b) < to_local(a)
    ):
        raise ValueError("b is earlier than a")
    return _working_days_after(receipt_day(a), _date_of(b))


def _office_intervals(d: date) -> list[tuple[datetime, datetime]]:
    """Return the office's open intervals on a date, aware Bogotá (none if closed)."""
    if not is_working_day(d):
        return []
    return [
        (datetime.combine(d, opens, BOGOTA), datetime.combine(d, closes, BOGOTA))
        for opens, closes in OFFICE_HOURS
    ]


def add_working_hours(start: datetime, hours: float) -> datetime:
    """Return the earliest moment that leaves the given office hours after start."""
    if hours < 0:
        raise ValueError("hours must be 0 or more")
    moment = to_local(start)
    remaining = timedelta(hours=hours)
    if not remaining:
        return moment
    day = moment.date()
    while True:
        for opens, closes in _office_intervals(day):
            begin = max(moment, opens)
            if begin >= closes:
                continue
            if remaining <= closes - begin:
                return begin + remaining
            remaining -= closes - begin
        day += _ONE_DAY


def working_hours_between(a: datetime, b: datetime) -> float:
    """Return the office hours from a to b (negative when b is earlier than a)."""
    a, b = to_local(a), to_local(b)
    if b < a:
        return -working_hours_between(b, a)
    total = timedelta()
    day = a.date()
    while day <= b.date():
        for opens, closes in _office_intervals(day):
            begin, end = max(a, opens), min(b, closes)
            if end > begin:
                total += end - begin
        day += _ONE_DAY
    return total / timedelta(hours=1)


def due_state(
    due: date | datetime,
    now: date | datetime | None = None,
    near: int | timedelta = 1,
) -> DueState:
    """Tell whether a term is on time, near its end (``near`` before due) or past due.

    A ``date`` due runs to the end of that day; a ``datetime`` due ends at that
    moment (still POR_VENCER exactly at it). ``near`` as an int is working days:
    POR_VENCER on the due day and on the ``near`` working days before it (1, the
    default: the last working day before due). As a timedelta it is office hours
    left before due (a date due closes at ``CLOSING``). ``now`` defaults to
    ``core.clock.now()``; a date ``now`` means that day's start.
    """
    if now is None:
        now = clock.now()
    elif not isinstance(now, datetime):
        now = datetime.combine(now, time(0), BOGOTA)
    now = to_local(now)
    if isinstance(due, datetime):
        due_end = to_local(due)
        if now > due_end:
            return DueState.VENCIDO
    else:
        if now.date() > due:
            return DueState.VENCIDO
        due_end = datetime.combine(due, CLOSING, BOGOTA)
    if isinstance(near, timedelta):
        left = working_hours_between(now, due_end) if now < due_end else 0.0
        is_near = left <= near / timedelta(hours=1)
    else:
        is_near = _working_days_after(now.date(), due_end.date()) <= near
    return DueState.POR_VENCER if is_near else DueState.AL_DIA
