"""SELECTs whose SQL peewee builds once, for the few queries nearly every request runs.

peewee turns a query into SQL on every execution by walking one node per column
and condition: for the session behind the cookie (about 40 columns, two tables)
that walk costs several times what SQLite takes to answer (bench/throughput.py,
profiled with pyinstrument). ``prepared(build)`` calls ``build`` once per
database with a marker for each argument, keeps the SQL and where each marker
landed among the parameters, and from then on runs that SQL with the call's
values; rows come back as the same query would give them (models, joins
included).

Arguments must already be what the database stores (str, int), since the
fields' converters ran on the markers, not on the values; build must take only
those arguments and depend on nothing else that changes (no utcnow() inside).
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections.abc import Callable, Iterable

import models


class _Marker(str):
    """An argument's stand-in: a str, so CharField and IntegerField pass it through unchanged."""

    __slots__ = ()


class _Constant:
    __slots__ = ("value",)

    def __init__(self, value) -> None:
        self.value = value


class Prepared:
    def __init__(self, build: Callable) -> None:
        self.build = build
        self.arity = len(inspect.signature(build).parameters)
        self.cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.lock = threading.Lock()

    def _compile(self, database):
        markers = [_Marker(f"\x00prepared {i}\x00") for i in range(self.arity)]
        query = self.build(*markers)
        sql, params = query.sql()
        slots = []
        for param in params:
            if isinstance(param, str) and param in markers:
                slots.append(markers.index(param))
            else:
                slots.append(_Constant(param))
        if {s for s in slots if isinstance(s, int)} != set(range(self.arity)):
            raise TypeError(f"{self.build.__name__}: an argument did not reach the SQL as is")
        return query, sql, slots

    def _run(self, args):
        """Execute the SQL (compiled on first use for this database) with args; (query, cursor)."""
        database = models.db.obj if isinstance(models.db, models.DatabaseProxy) else models.db
        entry = self.cache.get(database)
        if entry is None:
            with self.lock:
                entry = self.cache.get(database) or self._compile(database)
                self.cache[database] = entry
        query, sql, slots = entry
        values = [args[s] if isinstance(s, int) else s.value for s in slots]
        return query, database.execute_sql(sql, values)

    def __call__(self, *args) -> Iterable:
        query, cursor = self._run(args)
        return query._get_cursor_wrapper(cursor)

    def execute(self, *args):
        """Run a prepared INSERT/UPDATE/DELETE; return the cursor (its rowcount)."""
        return self._run(args)[1]

    def first(self, *args):
        """The first row, or None (build should end in .limit(1))."""
        for row in self(*args):
            return row
        return None


def prepared(build: Callable) -> Prepared:
    """Decorate a function that builds a SELECT from its arguments (see the module's text)."""
    return Prepared(build)
