"""Colombian working days, office hours, due states (core.workdays) and the clock fixture."""

from datetime import UTC, date, datetime, timedelta

import pytest

from core import clock as clockmod
from core import notify, workdays
from core.clock import utcnow as imported_utcnow
from core.colombia import BOGOTA
from core.workdays import (
    DueState,
    add_working_days,
    add_working_hours,
    due_state,
    is_working_day,
    working_days_between,
    working_hours_between,
)

D = date


def bog(y, m, d, h=0, mi=0, s=0):
    """An aware Bogotá datetime."""
    return datetime(y, m, d, h, mi, s, tzinfo=BOGOTA)


# Read from the holidays package (0.108): Ley 51 de 1983 moves most to Monday.
HOLIDAYS_2026 = [
    D(2026, 1, 1),  # Año Nuevo
    D(2026, 1, 12),  # Reyes Magos, 6 Jan moved to Monday
    D(2026, 3, 23),  # San José, 19 Mar moved to Monday
    D(2026, 4, 2),  # Jueves Santo
    D(2026, 4, 3),  # Viernes Santo
    D(2026, 5, 1),  # Día del Trabajo
    D(2026, 7, 20),  # Independencia
    D(2026, 8, 7),  # Batalla de Boyacá
    D(2026, 12, 8),  # Inmaculada Concepción
    D(2026, 12, 25),  # Navidad
    D(2027, 1, 1),  # the next Año Nuevo (a Friday)
    D(2027, 1, 11),  # Reyes 2027, moved to Monday
]


@pytest.mark.parametrize("day", HOLIDAYS_2026)
def test_known_colombian_holidays_are_not_working_days(day):
    assert workdays.is_holiday(day)
    assert not is_working_day(day)


@pytest.mark.parametrize(
    "day",
    [
        D(2026, 1, 6),  # Reyes' own date: moved, so it is worked
        D(2026, 3, 19),  # San José's own date
        D(2026, 4, 1),  # Miércoles Santo
        D(2026, 12, 24),  # Nochebuena is not a holiday
        D(2026, 12, 31),
        D(2027, 1, 4),
    ],
)
def test_ordinary_weekdays_around_moved_holidays_are_working_days(day):
    assert is_working_day(day)


@pytest.mark.parametrize("day", [D(2026, 3, 7), D(2026, 3, 8), D(2027, 5, 1)])
def test_weekends_are_not_working_days(day):
    assert not is_working_day(day)


def test_holiday_calendar_is_computed_once_per_year():
    workdays.holidays_in.cache_clear()
    first = workdays.holidays_in(2026)
    is_working_day(D(2026, 6, 1))
    is_working_day(D(2026, 6, 2))
    assert workdays.holidays_in(2026) is first
    info = workdays.holidays_in.cache_info()
    assert info.misses == 1 and info.hits >= 3


@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        (D(2026, 3, 2), 0, D(2026, 3, 2)),  # 0 days: the day of receipt
        (D(2026, 3, 2), 1, D(2026, 3, 3)),  # day of receipt not counted
        (D(2026, 3, 6), 1, D(2026, 3, 9)),  # Friday → Monday
        (D(2026, 3, 20), 1, D(2026, 3, 24)),  # weekend + San José (Monday 23)
        (D(2026, 4, 1), 1, D(2026, 4, 6)),  # Semana Santa: Thu, Fri, weekend
        (D(2026, 4, 2), 0, D(2026, 4, 6)),  # received on Jueves Santo → Monday
        (D(2026, 4, 2), 1, D(2026, 4, 7)),
        (D(2026, 3, 7), 0, D(2026, 3, 9)),  # received on a Saturday → Monday
        (D(2026, 3, 7), 1, D(2026, 3, 10)),
        (D(2026, 12, 30), 1, D(2026, 12, 31)),
        (D(2026, 12, 30), 2, D(2027, 1, 4)),  # crossing New Year (1 Jan a Friday)
        (D(2026, 12, 23), 15, D(2027, 1, 18)),  # Navidad, Año Nuevo, Reyes 2027
        (D(2026, 3, 2), 10, D(2026, 3, 16)),  # documents/information (art. 14.1)
        (D(2026, 3, 2), 15, D(2026, 3, 24)),  # petición, queja, reclamo
        (D(2026, 3, 2), 30, D(2026, 4, 16)),  # consulta (art. 14.2), across Semana Santa
        (bog(2026, 3, 2, 6, 0), 1, D(2026, 3, 3)),  # before opening: received that day
        (bog(2026, 3, 6, 17, 59), 1, D(2026, 3, 9)),  # just before closing
        (bog(2026, 3, 6, 18, 0), 0, D(2026, 3, 9)),  # at closing: received Monday
        (bog(2026, 3, 6, 18, 0), 1, D(2026, 3, 10)),
        (bog(2026, 3, 7, 10, 0), 1, D(2026, 3, 10)),  # Saturday datetime
        (datetime(2026, 3, 6, 23, 30), 0, D(2026, 3, 9)),  # naive UTC = Fri 18:30 Bogotá
        (datetime(2026, 3, 6, 22, 59, tzinfo=UTC), 1, D(2026, 3, 9)),  # 17:59 Bogotá
    ],
)
def test_add_working_days_counts_from_the_day_after_receipt(start, n, due):
    assert add_working_days(start, n) == due


def test_add_working_days_refuses_a_negative_term():
    with pytest.raises(ValueError):
        add_working_days(D(2026, 3, 2), -1)


@pytest.mark.parametrize(
    ("a", "b", "count"),
    [
        (D(2026, 3, 2), D(2026, 3, 2), 0),
        (D(2026, 3, 2), D(2026, 3, 3), 1),
        (D(2026, 3, 20), D(2026, 3, 23), 0),  # the holiday Monday adds nothing
        (D(2026, 3, 20), D(2026, 3, 24), 1),
        (D(2026, 3, 7), D(2026, 3, 7), 0),  # a Saturday receipt is Monday's
        (D(2026, 3, 7), D(2026, 3, 9), 0),
        (D(2026, 3, 7), D(2026, 3, 10), 1),
        (D(2026, 4, 1), D(2026, 4, 6), 1),
        (D(2026, 12, 23), D(2027, 1, 18), 15),
        (bog(2026, 3, 6, 18, 30), bog(2026, 3, 9, 10, 0), 0),
        (bog(2026, 3, 6, 9, 0), bog(2026, 3, 9, 7, 0), 1),  # b's date counts
    ],
)
def test_working_days_between_tells_which_day_of_the_term_b_is(a, b, count):
    assert working_days_between(a, b) == count


@pytest.mark.parametrize(
    "start", [D(2026, 3, 2), D(2026, 3, 7), D(2026, 4, 2), D(2026, 12, 23), bog(2026, 3, 6, 19)]
)
@pytest.mark.parametrize("n", [0, 1, 2, 5, 10, 15, 30])
def test_working_days_between_undoes_add_working_days(start, n):
    assert working_days_between(start, add_working_days(start, n)) == n


@pytest.mark.parametrize(
    ("a", "b"),
    [(D(2026, 3, 3), D(2026, 3, 2)), (bog(2026, 3, 2, 10), bog(2026, 3, 2, 9))],
)
def test_working_days_between_refuses_b_before_a(a, b):
    with pytest.raises(ValueError):
        working_days_between(a, b)


HOURS_CASES = [
    (bog(2026, 3, 2, 8), 0, bog(2026, 3, 2, 8)),
    (bog(2026, 3, 2, 8), 0.25, bog(2026, 3, 2, 8, 15)),
    (bog(2026, 3, 2, 8), 4, bog(2026, 3, 2, 12)),  # ends at lunch, not after it
    (bog(2026, 3, 2, 10), 3, bog(2026, 3, 2, 15)),  # crosses lunch
    (bog(2026, 3, 2, 12, 30), 1, bog(2026, 3, 2, 15)),  # starts at lunch
    (bog(2026, 3, 2, 6), 1, bog(2026, 3, 2, 9)),  # before opening
    (bog(2026, 3, 2, 8), 8, bog(2026, 3, 2, 18)),
    (bog(2026, 3, 2, 8), 8.5, bog(2026, 3, 3, 8, 30)),
    (bog(2026, 3, 6, 17), 2, bog(2026, 3, 9, 9)),  # crosses a weekend
    (bog(2026, 3, 6, 19), 1, bog(2026, 3, 9, 9)),  # after closing on Friday
    (bog(2026, 3, 7, 10), 1, bog(2026, 3, 9, 9)),  # on a Saturday
    (bog(2026, 3, 20, 16), 4, bog(2026, 3, 24, 10)),  # weekend + San José
    (bog(2026, 4, 1, 17), 2, bog(2026, 4, 6, 9)),  # Semana Santa
    (bog(2026, 12, 30, 16), 6, bog(2026, 12, 31, 12)),
    (bog(2026, 12, 30, 16), 12, bog(2027, 1, 4, 10)),  # crosses New Year
    (datetime(2026, 3, 2, 15, 0), 3, bog(2026, 3, 2, 15)),  # naive UTC = 10:00 Bogotá
]


@pytest.mark.parametrize(("start", "hours", "end"), HOURS_CASES)
def test_add_working_hours_runs_only_while_the_office_is_open(start, hours, end):
    result = add_working_hours(start, hours)
    assert result == end
    assert result.utcoffset() == timedelta(hours=-5)


@pytest.mark.parametrize(("start", "hours", "end"), HOURS_CASES)
def test_working_hours_between_undoes_add_working_hours(start, hours, end):
    assert working_hours_between(start, end) == pytest.approx(hours)


@pytest.mark.parametrize(
    ("a", "b", "hours"),
    [
        (bog(2026, 3, 2, 12), bog(2026, 3, 2, 14), 0.0),  # lunch
        (bog(2026, 3, 7, 0), bog(2026, 3, 9, 0), 0.0),  # weekend
        (bog(2026, 3, 30, 0), bog(2026, 4, 6, 0), 24.0),  # Semana Santa: 3 days open
        (bog(2026, 3, 2, 0), bog(2026, 3, 9, 0), 40.0),  # an ordinary week
        (bog(2026, 3, 6, 17), bog(2026, 3, 9, 9), 2.0),
        (bog(2026, 3, 9, 9), bog(2026, 3, 6, 17), -2.0),  # b before a
        (bog(2026, 3, 2, 11), bog(2026, 3, 2, 11), 0.0),
    ],
)
def test_working_hours_between_counts_office_hours_only(a, b, hours):
    assert working_hours_between(a, b) == pytest.approx(hours)


def test_add_working_hours_refuses_negative_hours():
    with pytest.raises(ValueError):
        add_working_hours(bog(2026, 3, 2, 8), -1)


# Due Tuesday 24 Mar 2026: Monday 23 is San José, so the last working day
# before it is Friday 20.
@pytest.mark.parametrize(
    ("moment", "near", "state"),
    [
        (bog(2026, 3, 19, 17, 59), 1, DueState.AL_DIA),
        (bog(2026, 3, 20, 0, 0), 1, DueState.POR_VENCER),  # the last working day before
        (bog(2026, 3, 21, 10, 0), 1, DueState.POR_VENCER),  # Saturday
        (bog(2026, 3, 23, 10, 0), 1, DueState.POR_VENCER),  # the holiday
        (bog(2026, 3, 24, 23, 59, 59), 1, DueState.POR_VENCER),  # the whole due day
        (bog(2026, 3, 25, 0, 0), 1, DueState.VENCIDO),
        (bog(2026, 3, 20, 10, 0), 0, DueState.AL_DIA),  # near=0: only the due day
        (bog(2026, 3, 24, 8, 0), 0, DueState.POR_VENCER),
        (bog(2026, 3, 17, 23, 0), 3, DueState.AL_DIA),  # 4 working days left
        (bog(2026, 3, 18, 0, 0), 3, DueState.POR_VENCER),  # 19, 20, 24 left
        (bog(2026, 3, 20, 17, 0), timedelta(hours=8), DueState.AL_DIA),  # 9 h left
        (bog(2026, 3, 20, 18, 0), timedelta(hours=8), DueState.POR_VENCER),  # Tuesday's 8 h
        (bog(2026, 3, 24, 19, 0), timedelta(hours=8), DueState.POR_VENCER),  # after closing
        (bog(2026, 3, 25, 8, 0), timedelta(hours=8), DueState.VENCIDO),
    ],
)
def test_due_state_of_a_date_term_at_each_boundary(clock, moment, near, state):
    clock.set(moment)
    assert due_state(D(2026, 3, 24), near=near) is state


# A help-desk target: Monday 9 Mar 2026 10:00, warned 2 office hours before.
@pytest.mark.parametrize(
    ("moment", "near", "state"),
    [
        (bog(2026, 3, 6, 15, 59), timedelta(hours=2), DueState.AL_DIA),
        (bog(2026, 3, 6, 17, 59), timedelta(hours=2), DueState.AL_DIA),  # 2 h 1 min left
        (bog(2026, 3, 6, 18, 0), timedelta(hours=2), DueState.POR_VENCER),
        (bog(2026, 3, 8, 12, 0), timedelta(hours=2), DueState.POR_VENCER),  # Sunday
        (bog(2026, 3, 9, 10, 0), timedelta(hours=2), DueState.POR_VENCER),  # exactly due
        (bog(2026, 3, 9, 10, 0, 1), timedelta(hours=2), DueState.VENCIDO),
        (bog(2026, 3, 5, 12, 0), 1, DueState.AL_DIA),  # in working days: 2 left
        (bog(2026, 3, 6, 9, 0), 1, DueState.POR_VENCER),  # Friday: Monday is the next
    ],
)
def test_due_state_of_an_hour_target_at_each_boundary(clock, moment, near, state):
    clock.set(moment)
    assert due_state(bog(2026, 3, 9, 10, 0), near=near) is state


@pytest.mark.parametrize(
    ("due", "now", "state"),
    [
        (D(2026, 3, 24), D(2026, 3, 19), DueState.AL_DIA),
        (D(2026, 3, 24), D(2026, 3, 24), DueState.POR_VENCER),
        (D(2026, 3, 24), D(2026, 3, 25), DueState.VENCIDO),
        (datetime(2026, 3, 9, 15, 0), datetime(2026, 3, 9, 15, 1), DueState.VENCIDO),  # naive UTC
        (datetime(2026, 3, 9, 15, 0), bog(2026, 3, 9, 9, 0), DueState.POR_VENCER),
    ],
)
def test_due_state_takes_an_explicit_now(due, now, state):
    assert due_state(due, now) is state


def test_clock_fixture_sets_bogota_wall_clock_time(clock):
    clock.set(datetime(2026, 12, 24, 9, 0))
    assert clockmod.now() == bog(2026, 12, 24, 9, 0)
    assert clockmod.now().utcoffset() == timedelta(hours=-5)
    assert clockmod.utcnow() == datetime(2026, 12, 24, 14, 0)
    assert clockmod.utcnow().tzinfo is None
    assert clockmod.today() == D(2026, 12, 24)


def test_clock_fixture_advances_and_crosses_midnight_in_bogota(clock):
    clock.set(datetime(2026, 12, 31, 20, 0))
    assert clockmod.utcnow() == datetime(2027, 1, 1, 1, 0)  # already 2027 in UTC
    assert clockmod.today() == D(2026, 12, 31)  # but not in Bogotá
    clock.advance(hours=3)
    assert clockmod.now() == bog(2026, 12, 31, 23, 0)
    clock.advance(minutes=61)
    assert clockmod.today() == D(2027, 1, 1)


def test_clock_fixture_accepts_aware_times_and_stands_still(clock):
    clock.set(datetime(2026, 3, 2, 13, 0, tzinfo=UTC))
    assert clockmod.now() == bog(2026, 3, 2, 8, 0)
    assert clockmod.utcnow() == clockmod.utcnow()
    assert clock.now() == bog(2026, 3, 2, 8, 0)


def test_clock_fixture_reaches_modules_that_imported_utcnow_by_name(clock):
    clock.set(datetime(2030, 1, 2, 3, 4))
    assert imported_utcnow() == datetime(2030, 1, 2, 8, 4)
    assert notify.utcnow() == datetime(2030, 1, 2, 8, 4)


def test_clock_reads_the_system_time_without_the_fixture():
    before = datetime.now(UTC).replace(tzinfo=None)
    assert before <= clockmod.utcnow() <= datetime.now(UTC).replace(tzinfo=None)
    assert clockmod.now().tzinfo is not None
