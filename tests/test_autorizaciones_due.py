"""Due dates of authorization requests in Colombian working days, across a holiday weekend.

San José 2026 is kept on Monday 23 March (Ley Emiliani moves it from the 19th):
a request filed on Friday 20 March skips Saturday, Sunday and that Monday.
Semana Santa (Thursday 2 and Friday 3 April 2026) follows a week later.
"""

from __future__ import annotations

from datetime import date, datetime

import holidays
import pytest
import test_gestion_autorizaciones as queue_tests
from factories import make_staff

from blueprints.gestion import autorizaciones_service as service
from core.workdays import DueState

# The queue tests' fixtures: UPLOAD_DIR under tmp_path (autouse), a family with an account.
upload_dir = queue_tests.upload_dir
family = queue_tests.family
staff = queue_tests.staff
staff_client = queue_tests.staff_client
QUEUE, local, make_solicitud = queue_tests.QUEUE, queue_tests.local, queue_tests.make_solicitud

SAN_JOSE = date(2026, 3, 23)


def test_the_chosen_monday_is_a_colombian_holiday_in_the_holidays_package():
    colombia = holidays.country_holidays("CO", years=2026)
    assert SAN_JOSE in colombia and SAN_JOSE.weekday() == 0
    assert {date(2026, 4, 2), date(2026, 4, 3)} <= set(colombia)  # Jueves and Viernes Santo


@pytest.mark.parametrize(
    ("filed", "due"),
    [
        # A week with no holiday: Mon 16 … Fri 20.
        ((2026, 3, 13, 10, 0), date(2026, 3, 20)),
        # Friday before San José: Tue 24, Wed 25, Thu 26, Fri 27, Mon 30.
        ((2026, 3, 20, 10, 0), date(2026, 3, 30)),
        # After closing on Friday, on Saturday or on the holiday: received Tuesday 24.
        ((2026, 3, 20, 18, 30), date(2026, 3, 31)),
        ((2026, 3, 21, 9, 0), date(2026, 3, 31)),
        ((2026, 3, 23, 9, 0), date(2026, 3, 31)),
        # Before the office opens on Friday: received that same Friday.
        ((2026, 3, 20, 6, 0), date(2026, 3, 30)),
        # Into Semana Santa: Tue 31, Wed 1, (Thu 2, Fri 3), Mon 6, Tue 7, Wed 8.
        ((2026, 3, 30, 9, 0), date(2026, 4, 8)),
    ],
    ids=["plain-week", "friday", "friday-evening", "saturday", "holiday", "friday-dawn", "easter"],
)
def test_a_request_is_due_five_working_days_after_it_is_received(
    staff_client,
    family,
    upload_dir,
    filed,
    due,
):
    head, child, account = family
    solicitud = make_solicitud(child, account, upload_dir, created_at=local(*filed))
    assert solicitud.due_on == due
    assert due.strftime("%d/%m/%Y") in staff_client.get(QUEUE).text


@pytest.mark.parametrize(
    ("moment", "state", "words"),
    [
        ((2026, 3, 20, 10, 5), DueState.AL_DIA, "A tiempo"),
        ((2026, 3, 23, 12, 0), DueState.AL_DIA, "A tiempo"),  # the holiday counts for nothing
        ((2026, 3, 26, 17, 0), DueState.AL_DIA, "A tiempo"),  # Fri 27 and Mon 30 still ahead
        ((2026, 3, 27, 8, 0), DueState.POR_VENCER, "Por vencer"),  # the last working day before
        ((2026, 3, 29, 12, 0), DueState.POR_VENCER, "Por vencer"),  # Sunday
        ((2026, 3, 30, 17, 59), DueState.POR_VENCER, "Por vencer"),  # the due day
        ((2026, 3, 30, 23, 30), DueState.POR_VENCER, "Por vencer"),  # a date runs to midnight
        ((2026, 3, 31, 0, 5), DueState.VENCIDO, "Vencido"),
        ((2026, 4, 3, 10, 0), DueState.VENCIDO, "Vencido"),  # Viernes Santo
    ],
    ids=["filed", "holiday", "thursday", "friday", "sunday", "due-day", "due-night", "next-day",
         "good-friday"],
)  # fmt: skip
def test_the_queue_marks_near_and_past_due_as_the_clock_moves(
    client,
    auth,
    db,
    family,
    upload_dir,
    clock,
    moment,
    state,
    words,
):
    head, child, account = family
    clock.set(datetime(2026, 3, 20, 10, 0))
    solicitud = make_solicitud(child, account, upload_dir)
    assert solicitud.due_on == date(2026, 3, 30)
    clock.set(datetime(*moment))
    assert service.due_of(solicitud.due_on) is state
    browser = auth.login(client, make_staff(roles=("autorizaciones",)))  # signed in at `moment`
    row = browser.get(QUEUE).text
    assert f'<span class="tag tag-{state.value.replace("_", "-")}">{words}</span>' in row
    assert words in browser.get(f"{QUEUE}/{solicitud.id}").text


def test_a_decided_request_carries_no_due_mark(client, auth, db, family, upload_dir, clock):
    head, child, account = family
    clock.set(datetime(2026, 3, 20, 10, 0))
    solicitud = make_solicitud(child, account, upload_dir)
    actor = make_staff(roles=("autorizaciones",))
    service.reject(solicitud.id, actor, "Orden ilegible: reenvíe la foto.", "http://localhost/")
    clock.set(datetime(2026, 4, 6, 9, 0))  # long past due
    browser = auth.login(client, actor)
    rows = browser.get(f"{QUEUE}?estado=RECHAZADA").text
    assert solicitud.numero in rows and "30/03/2026" in rows
    assert "Vencido" not in rows
    assert "Vencido" not in browser.get(f"{QUEUE}/{solicitud.id}").text
