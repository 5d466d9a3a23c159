"""The list helper: keyset pages of n + 1, opaque cursors, a bounded count, GET filters."""

from __future__ import annotations

import base64
import json
from datetime import date, datetime

import pytest
from werkzeug.exceptions import HTTPException

import models
from blueprints import queue
from blueprints.queue import BadCursor, Page
from core import audit
from core.audit import Action, Actor
from core.workdays import DueState
from models import AuditEvent

ORDER = (AuditEvent.at, AuditEvent.id)
ANA, BETO = Actor(7, "ana@hanna.test"), Actor(8, "beto@hanna.test")


@pytest.fixture
def events(db, clock):
    """Write audit rows through core.audit, one a minute unless every=0; return their ids."""
    clock.set(datetime(2026, 3, 10, 9, 0))

    def write(n, actor=ANA, every=1):
        with models.db.atomic():
            ids = []
            for i in range(n):
                ids.append(audit.record(actor, Action.USUARIO_ACTIVAR, "usuario", i + 1).id)
                clock.advance(minutes=every)
        return ids

    return write


def _walk(query, **kw) -> list[list[int]]:
    """Follow next_cursor from page 1 to the last page; return each page's ids."""
    pages, cursor = [], None
    while True:
        page = queue.paginate(query, order=ORDER, cursor=cursor, **kw)
        pages.append([row["id"] for row in page.rows])
        if not page.has_more:
            assert page.next_cursor is None
            return pages
        cursor = page.next_cursor


def _all():
    return AuditEvent.select()


# --- pages ----------------------------------------------------------------------


def test_pages_run_newest_first_and_the_extra_row_tells_a_next_page(events):
    ids = events(5)
    assert _walk(_all(), per_page=2) == [ids[:2:-1], ids[2:0:-1], ids[:1]]


def test_ascending_runs_oldest_first(events):
    ids = events(5)
    assert _walk(_all(), per_page=2, ascending=True) == [ids[:2], ids[2:4], ids[4:]]


def test_exactly_a_page_of_rows_has_no_next_page(events):
    ids = events(4)
    page = queue.paginate(_all(), order=ORDER, per_page=4)
    assert [r["id"] for r in page.rows] == ids[::-1] and not page.has_more
    assert queue.paginate(_all(), order=ORDER, per_page=3).has_more


@pytest.mark.parametrize("ascending", [False, True])
def test_rows_of_one_instant_are_split_by_id_without_loss_or_repeat(events, ascending):
    ids = events(7, every=0)
    pages = _walk(_all(), per_page=3, ascending=ascending)
    flat = [i for page in pages for i in page]
    assert flat == (sorted(ids) if ascending else sorted(ids, reverse=True))
    assert [len(p) for p in pages] == [3, 3, 1]


def test_rows_are_dicts_of_the_selected_columns(events):
    events(1)
    row = queue.paginate(_all(), order=ORDER).rows[0]
    assert isinstance(row, dict) and row["actor_label"] == "ana@hanna.test"
    assert isinstance(row["at"], datetime)


def test_filters_stay_applied_on_every_page_and_in_the_count(events):
    mine = events(3, actor=ANA)
    events(4, actor=BETO)
    mine += events(2, actor=ANA)
    query = audit.search_query(actor_id=ANA.id)
    assert _walk(query, per_page=2) == [mine[:2:-1], mine[2:0:-1], mine[:1]]
    assert queue.paginate(query, order=ORDER, per_page=2).total == 5


def test_the_count_is_of_every_match_not_of_the_page(events):
    events(5)
    first = queue.paginate(_all(), order=ORDER, per_page=2)
    last = queue.paginate(_all(), order=ORDER, per_page=2, cursor=first.next_cursor)
    assert (first.total, last.total, first.total_capped) == (5, 5, False)


def test_the_count_stops_at_its_cap(events):
    events(5)
    page = queue.paginate(_all(), order=ORDER, count_cap=3)
    assert (page.total, page.total_capped, len(page.rows)) == (3, True, 5)
    assert queue.paginate(_all(), order=ORDER, count_cap=5).total_capped is False


def test_the_count_can_be_left_out(events):
    events(2)
    assert queue.paginate(_all(), order=ORDER, count=False).total is None


def test_an_empty_list_is_one_empty_page(db):
    assert queue.paginate(_all(), order=ORDER) == Page([], None, 0, False)


# --- the cursor -----------------------------------------------------------------


def test_cursor_round_trips_the_last_rows_sort_value_and_id(events):
    events(3)
    page = queue.paginate(_all(), order=ORDER, per_page=2)
    last = page.rows[-1]
    assert queue.decode_cursor(ORDER, page.next_cursor) == (last["at"], last["id"])
    # Opaque and URL-safe: nobody builds one from the date they see.
    assert "2026" not in page.next_cursor
    assert page.next_cursor.replace("-", "").replace("_", "").isalnum()


def test_cursor_holds_dates_strings_and_ints(db):
    order = (models.Afiliado.fecha_nacimiento, models.Afiliado.id)
    row = {"fecha_nacimiento": date(1980, 2, 29), "id": 12}
    assert queue.decode_cursor(order, queue.encode_cursor(order, row)) == (date(1980, 2, 29), 12)
    order = (models.Afiliado.numero_documento, models.Afiliado.id)
    token = queue.encode_cursor(order, {"numero_documento": "1000000001", "id": 3})
    assert queue.decode_cursor(order, token) == ("1000000001", 3)


def _token(payload) -> str:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "token",
    [
        "!!!",
        "abc",
        "ñandú",
        "a" * 400,
        _token(b"\xff\xfe"),
        _token(b"not json"),
        _token([1]),
        _token({"a": 1, "b": 2}),
        _token(["2026-03-10T09:00:00", "5"]),
        _token(["2026-03-10T09:00:00", 5.0]),
        _token(["2026-03-10T09:00:00", True]),
        _token(["2026-03-10T09:00:00", 2**63]),
        _token(["2026-13-10T09:00:00", 5]),
        _token(["2026-03-10T09:00:00+00:00", 5]),
        _token(["ayer", 5]),
        _token([5, 5]),
        _token([None, 5]),
        _token(["2026-03-10T09:00:00", 5, 6]),
    ],
)
def test_a_tampered_cursor_is_refused_before_any_query(events, token):
    events(2)
    with pytest.raises(BadCursor):
        queue.paginate(_all(), order=ORDER, cursor=token)


def _by_document(token: str):
    order = (models.Afiliado.numero_documento, models.Afiliado.id)
    return queue.paginate(models.Afiliado.select(), order=order, cursor=token)


@pytest.mark.parametrize("text", ["\u0000", "1\u00002", "\ud800"])
def test_a_text_cursor_the_driver_would_choke_on_is_refused(db, text):
    with pytest.raises(BadCursor):
        _by_document(_token([text, 1]))


@pytest.mark.parametrize(
    "payload",
    [
        ["0001-01-01T00:00:00", 1],
        ["9999-12-31T23:59:59.999999", 2**53],
        ["2026-03-10T09:00:00", -(2**53)],
    ],
)
def test_extreme_but_well_formed_cursors_are_read_by_the_database(events, payload):
    events(2)
    page = queue.paginate(_all(), order=ORDER, cursor=_token(payload))
    assert len(page.rows) <= 2


def test_a_text_cursor_may_hold_any_printable_text(db):
    assert _by_document(_token(["ñandú 1", 1])).rows == []


def test_a_cursor_of_another_type_of_list_is_refused(db):
    token = queue.encode_cursor(
        (models.Afiliado.numero_documento, models.Afiliado.id), {"numero_documento": "1", "id": 3}
    )
    with pytest.raises(BadCursor):
        queue.decode_cursor(ORDER, token)


def test_a_list_cannot_be_ordered_by_a_column_without_a_cursor_type():
    with pytest.raises(TypeError):
        queue.encode_cursor(
            (models.Account.must_change_password, models.Account.id),
            {"must_change_password": True, "id": 1},
        )


# --- the request ----------------------------------------------------------------


def test_a_bad_cursor_sends_the_browser_to_page_one_of_the_same_filters(app, events):
    events(2)
    with app.test_request_context("/lista?accion=x&vacio=&despues=zzz&accion=y"):
        with pytest.raises(HTTPException) as raised:
            queue.page_from_request(_all(), order=ORDER)
    response = raised.value.get_response()
    assert response.status_code == 303
    assert response.headers["Location"] == "/lista?accion=x&accion=y"


def test_a_bad_cursor_from_htmx_reloads_page_one_instead_of_appending_it(app, events, htmx):
    events(2)
    with app.test_request_context("/lista?despues=zzz", headers=htmx):
        with pytest.raises(HTTPException) as raised:
            queue.page_from_request(_all(), order=ORDER)
    response = raised.value.get_response()
    assert (response.status_code, response.headers["HX-Redirect"]) == (204, "/lista")


def test_a_request_reads_its_page_and_htmx_skips_the_count(app, events, htmx):
    ids = events(3)
    with app.test_request_context("/lista"):
        first = queue.page_from_request(_all(), order=ORDER, per_page=2)
    with app.test_request_context(f"/lista?despues={first.next_cursor}", headers=htmx):
        more = queue.page_from_request(_all(), order=ORDER, per_page=2)
    assert (first.total, [r["id"] for r in more.rows], more.total) == (3, ids[:1], None)


def test_page_url_keeps_the_filters_and_stays_on_this_path(app):
    query = "/lista?_external=1&_scheme=javascript&endpoint=x&q=a+b&despues=old"
    with app.test_request_context(query):
        assert queue.page_url("nuevo") == (
            "/lista?_external=1&_scheme=javascript&endpoint=x&q=a+b&despues=nuevo"
        )
        assert queue.page_url(None).startswith("/lista?")


class Dates(queue.FilterForm):
    desde = queue.DateFilter("Desde")


@pytest.mark.parametrize(
    ("query", "data", "errors"),
    [
        ("", None, []),
        ("desde=", None, []),
        ("desde=+", None, []),
        ("desde=01/03/2026", date(2026, 3, 1), []),
        ("desde=2026-03-01", date(2026, 3, 1), []),
        ("desde=31/02/2026", "31/02/2026", ["La fecha 31/02/2026 no existe."]),
        ("desde=marzo", "marzo", ["Escriba la fecha como dd/mm/aaaa."]),
        ("desde=31/12/9999", date(9999, 12, 31), ["Revise el año: escriba uno entre 1900 y 2100."]),
        ("desde=01/01/1899", date(1899, 1, 1), ["Revise el año: escriba uno entre 1900 y 2100."]),
    ],
)
def test_a_filter_form_reads_the_query_string_without_a_csrf_token(app, query, data, errors):
    app.config["WTF_CSRF_ENABLED"] = True  # a GET form has no token, on purpose
    with app.test_request_context(f"/lista?{query}"):
        form = Dates()
        assert form.validate() == (not errors)
        assert (form.desde.data, form.desde.errors) == (data, errors)


# --- the macros -----------------------------------------------------------------


def _macro(app, call: str, **context) -> str:
    source = "{% from '_macros/queue.html' import count_line, more, due_badge %}" + call
    with app.test_request_context("/"):
        return app.jinja_env.from_string(source).render(**context)


@pytest.mark.parametrize(
    ("state", "words"),
    [
        (DueState.AL_DIA, "A tiempo"),
        (DueState.POR_VENCER, "Por vencer"),
        (DueState.VENCIDO, "Vencido"),
    ],
)
def test_due_badge_says_the_state_in_words(app, state, words):
    html = _macro(app, "{{ due_badge(s) }}", s=state)
    assert f">{words}</span>" in html and "tag-" + state.value.replace("_", "-") in html


@pytest.mark.parametrize(
    ("page", "line"),
    [
        (Page([], None, 0), "0 resultados"),
        (Page([], None, 1), "1 resultado<"),
        (Page([], None, 12345), "12.345 resultados"),
        (Page([], None, 10_000, True), "Más de 10.000 resultados"),
    ],
)
def test_count_line_counts_in_spanish(app, page, line):
    assert line in _macro(app, "{{ count_line(p) }}", p=page)


def test_count_line_is_silent_when_nothing_was_counted(app):
    assert _macro(app, "{{ count_line(p) }}", p=Page([], "x", None)).strip() == ""


def test_more_is_a_link_that_htmx_turns_into_an_append(app):
    html = _macro(app, "{{ more('/lista?despues=abc', 'mas', colspan=3) }}")
    assert html.startswith('<tr id="mas"><td colspan="3"><a ')
    assert 'href="/lista?despues=abc"' in html and 'hx-get="/lista?despues=abc"' in html
    assert 'hx-target="#mas"' in html and 'hx-swap="outerHTML"' in html
    assert _macro(app, "{{ more('/l', 'mas') }}").startswith('<li id="mas">')
    assert _macro(app, "{{ more(None, 'mas') }}").strip() == ""
