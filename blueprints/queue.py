"""Lists that stay fast: filters from a GET form, keyset pages, a bounded count.

Every back-office queue and list reads the same way::

    class Filtros(FilterForm):
        estado = SelectField("Estado", choices=...)

    @bp.get("/cola")
    @require(Action.X)
    def cola():
        form = Filtros()  # read from request.args
        if not form.validate():
            return render_queue("x/cola.html", "x/_filas.html", status=422, form=form, page=None)
        query = service.cola_query(**form.data)  # filters only: no order, no limit
        page = page_from_request(query, order=(Caso.vence, Caso.id), ascending=True)
        return render_queue("x/cola.html", "x/_filas.html", form=form, page=page)

A page is read by keyset, never by OFFSET: ``WHERE (sort, id) < (last sort, last
id) ORDER BY sort DESC, id DESC LIMIT n + 1``, so page 1 000 costs what page 1
does, as long as an index ends in (sort, id) after the columns the filters fix.
The extra row only says whether there is a next page. The sort column must be
NOT NULL (row values put NULLs nowhere useful) and both order fields must be in
the selected columns under their own names.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote, urlencode

from flask import abort, request
from flask_wtf.form import _Auto
from peewee import (
    SQL,
    AutoField,
    CharField,
    DateField,
    DateTimeField,
    Field,
    ForeignKeyField,
    IntegerField,
    Select,
    TextField,
    TimestampField,
    Tuple,
    fn,
)
from werkzeug.wrappers import Response
from wtforms.validators import Optional, ValidationError

from blueprints.forms import DateText, SpanishForm
from blueprints.web import render, see_other, wants_partial
from core import colombia

PER_PAGE = 50
# Above this many matches a list says "más de 10 000" instead of counting on.
COUNT_CAP = 10_000
CURSOR_ARG = "despues"
_MAX_INT = 2**53  # as app.MAX_ID: what every database and JSON reader holds exactly
_MAX_CURSOR = 300  # characters; a real one is under 100


class BadCursor(ValueError):
    """A ``despues`` value that this list did not write (edited, cut, or from another list)."""


@dataclass(frozen=True)
class Page:
    """One page of a list: its rows as dicts, where the next starts, and how many match.

    ``total`` is None when it was not counted (an htmx "Ver más" shows no count);
    with ``total_capped`` it means "more than ``total``".
    """

    rows: list[dict]
    next_cursor: str | None
    total: int | None
    total_capped: bool = False

    @property
    def has_more(self) -> bool:
        """Tell whether a next page exists."""
        return self.next_cursor is not None


# --- the filter form ------------------------------------------------------------


class FilterForm(SpanishForm):
    """A list's filters: a GET form read from the query string, so no CSRF token."""

    class Meta:
        csrf = False

    def __init__(self, formdata=_Auto, **kwargs) -> None:
        super().__init__(request.args if formdata is _Auto else formdata, **kwargs)


# Outside these years a date is a typing slip, and 31/12/9999 + 1 day overflows.
FIRST_YEAR, LAST_YEAR = 1900, 2100


def _to_date(_form, field) -> None:
    try:
        field.data = colombia.parse_date(field.data)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc
    if not FIRST_YEAR <= field.data.year <= LAST_YEAR:
        raise ValidationError(f"Revise el año: escriba uno entre {FIRST_YEAR} y {LAST_YEAR}.")


class DateFilter(DateText):
    """An optional dd/mm/aaaa filter; its data is a date, or None when left blank."""

    def __init__(self, label: str, **kwargs) -> None:
        kwargs.setdefault("description", "dd/mm/aaaa")
        kwargs.setdefault("render_kw", {"inputmode": "numeric", "autocomplete": "off"})
        super().__init__(label, validators=[Optional(), _to_date], **kwargs)

    def process_formdata(self, valuelist) -> None:
        """Keep what was typed; a blank box is no date at all."""
        super().process_formdata(valuelist)
        self.data = (self.data or "").strip() or None


# --- the cursor -----------------------------------------------------------------
# Plain values, not signed: a cursor only says where to start inside a query the
# view has already filtered and authorised, so a forged one shows nothing more.
# What it must never do is reach the database as the wrong type (a 500 on
# PostgreSQL), hence the check of each value against its column.


def _kind(field: Field) -> type:
    """Return the Python type a cursor holds for field's values."""
    if isinstance(field, ForeignKeyField):
        field = field.rel_field
    for column, kind in (
        ((DateTimeField, TimestampField), datetime),  # TimestampField is stored as an integer
        (DateField, date),
        ((IntegerField, AutoField), int),
        ((CharField, TextField), str),
    ):
        if isinstance(field, column):
            return kind
    raise TypeError(f"a list cannot be ordered by {field!r} (no cursor for its type)")


def _dump(field: Field, value: Any) -> Any:
    kind = _kind(field)
    if not isinstance(value, kind) or (kind is date and isinstance(value, datetime)):
        raise TypeError(f"{field.name} = {value!r} in a row: not a {kind.__name__}")
    return value.isoformat() if kind in (datetime, date) else value


def _unencodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def _load(field: Field, value: Any) -> Any:
    kind = _kind(field)
    if kind is int:
        if type(value) is not int or abs(value) > _MAX_INT:
            raise BadCursor(field.name)
        return value
    if not isinstance(value, str) or len(value) > (getattr(field, "max_length", None) or 1000):
        raise BadCursor(field.name)
    if kind is str:
        # The driver refuses a NUL and a lone surrogate (JSON "\ud800"): a 500, not a page.
        if "\x00" in value or _unencodable(value):
            raise BadCursor(field.name)
        return value
    try:
        loaded = kind.fromisoformat(value)
    except ValueError:
        raise BadCursor(field.name) from None
    # Stored times are naive UTC; a date field takes no time of day.
    if isinstance(loaded, datetime) and (kind is date or loaded.tzinfo is not None):
        raise BadCursor(field.name)
    return loaded


def encode_cursor(order: tuple[Field, Field], row: dict) -> str:
    """Return the opaque ``despues`` value that starts the page after row."""
    payload = [_dump(field, row[field.name]) for field in order]
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(order: tuple[Field, Field], token: str) -> tuple[Any, Any]:
    """Return the (sort value, id) a cursor names, or raise BadCursor."""
    if len(token) > _MAX_CURSOR:
        raise BadCursor("too long")
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        payload = json.loads(raw)
    except (binascii.Error, ValueError):  # bad base64, not UTF-8, not JSON
        raise BadCursor("unreadable") from None
    if not isinstance(payload, list) or len(payload) != len(order):
        raise BadCursor("shape")
    return tuple(_load(field, value) for field, value in zip(order, payload, strict=True))


# --- the page -------------------------------------------------------------------


def keyset(
    query: Select,
    order: tuple[Field, Field],
    *,
    after: tuple[Any, Any] | None = None,
    ascending: bool = False,
    per_page: int = PER_PAGE,
) -> Select:
    """Order query on (sort, id), start after the position ``after``, LIMIT per_page + 1."""
    sort, ident = order
    if after is not None:
        # A row value: one range on the (…, sort, id) index, ties broken by id.
        here = Tuple(sort, ident)
        there = Tuple(sort.to_value(after[0]), ident.to_value(after[1]))
        query = query.where(here > there if ascending else here < there)
    by = (sort.asc(), ident.asc()) if ascending else (sort.desc(), ident.desc())
    return query.order_by(*by).limit(per_page + 1)


def count_query(query: Select, cap: int = COUNT_CAP) -> Select:
    """Build the count of a model query's rows, reading at most cap + 1 (not DISTINCT/GROUP BY)."""
    # Affordable because the filters of a list fix the leading columns of an
    # index, so this reads index entries only (SQLite: COVERING INDEX; PostgreSQL
    # an index-only or bitmap scan), never the rows; and the LIMIT bounds it at
    # cap + 1 entries however long the table grows. The cap is what the audit
    # log needs (kept for years, a day's actions by the thousand) and any list
    # over an archive; a working queue (what is pending) stays far below it.
    # A filter no index serves (a name "contains") reads the table up to the cap.
    capped = query.order_by().limit(cap + 1).select(SQL("1")).alias("filtrado")
    return Select([capped], [fn.COUNT(SQL("1"))]).bind(query.model._meta.database)


def state_counts(field: Field, states, cap: int = COUNT_CAP) -> dict[str, int]:
    """Return how many rows hold each of states in field, in one statement, each count capped.

    The tabs of a queue ("Cerrado (…)"): each state reads its own range of an
    index that starts with field and stops after cap + 1 entries, so a closed
    archive of a million rows costs what 10 000 do; a GROUP BY would read every
    row's entry on each request. A count over cap means "more than cap"
    (the tab_count macro says so). A state with no rows is 0.
    """
    model = field.model
    parts = []
    for i, state in enumerate(states):
        capped = model.select(field).where(field == state).limit(cap + 1).alias(f"estado{i}")
        column = getattr(capped.c, field.column_name)
        parts.append(Select([capped], [column, fn.COUNT(SQL("1"))]).group_by(column))
    found = dict.fromkeys(states, 0)
    if parts:
        union = parts[0]
        for part in parts[1:]:
            union = union + part  # UNION ALL
        found.update(union.bind(model._meta.database).tuples())
    return found


def paginate(
    query: Select,
    *,
    order: tuple[Field, Field],
    cursor: str | None = None,
    per_page: int = PER_PAGE,
    ascending: bool = False,
    count: bool = True,
    count_cap: int = COUNT_CAP,
) -> Page:
    """Return the page of query that cursor starts (page 1 without one); raise BadCursor.

    query carries the filters only; order is (sort field, id field), newest
    first unless ascending (a due-date queue: most urgent first).
    """
    after = decode_cursor(order, cursor) if cursor else None
    page = keyset(query, order, after=after, ascending=ascending, per_page=per_page)
    rows = list(page.dicts())
    next_cursor = encode_cursor(order, rows[per_page - 1]) if len(rows) > per_page else None
    total, capped = None, False
    if count:
        matches = count_query(query, count_cap).scalar()
        total, capped = min(matches, count_cap), matches > count_cap
    return Page(rows[:per_page], next_cursor, total, capped)


# --- the request ----------------------------------------------------------------


def page_url(cursor: str | None) -> str:
    """Return this list's URL with the same filters, at cursor (page 1 for None)."""
    # Built from the path, not url_for: a query string may hold any key, and
    # url_for reads some (_external, _scheme, endpoint) as its own arguments.
    pairs = [(k, v) for k, v in request.args.items(multi=True) if v and k != CURSOR_ARG]
    if cursor:
        pairs.append((CURSOR_ARG, cursor))
    path = quote(request.script_root + request.path)
    return f"{path}?{urlencode(pairs)}" if pairs else path


def page_from_request(
    query: Select,
    *,
    order: tuple[Field, Field],
    ascending: bool = False,
    per_page: int = PER_PAGE,
) -> Page:
    """Return the page this request's ``despues`` asks for; a bad one goes to page 1.

    Page 1 of the same filters, by redirect (303, or HX-Redirect for htmx):
    a bookmarked deep link still opens the list, and "Ver más" never appends
    page 1 under rows already shown. The htmx "Ver más" is not counted.
    """
    try:
        return paginate(
            query,
            order=order,
            cursor=request.args.get(CURSOR_ARG),
            per_page=per_page,
            ascending=ascending,
            count=not wants_partial(),
        )
    except BadCursor:
        abort(see_other(page_url(None)))


def render_queue(page_template: str, rows_partial: str, status: int = 200, **context) -> Response:
    """Render the list page (which includes rows_partial), or only the next rows for htmx.

    Adds ``more_url`` (the next page, None on the last) and ``first_url`` (page 1,
    None when this is page 1); the response carries ``Vary: HX-Request``.
    """
    page = context.get("page")
    context.setdefault("count_cap", COUNT_CAP)  # for the tab_count macro
    context.setdefault("more_url", page_url(page.next_cursor) if page and page.has_more else None)
    context.setdefault("first_url", page_url(None) if request.args.get(CURSOR_ARG) else None)
    return render(page_template, partial=rows_partial, status=status, **context)
