"""SELECTs whose SQL peewee builds once, for the few queries nearly every request runs.

peewee turns a query into SQL on every execution by walking one node per column
and condition: for the session behind the cookie (about 40 columns, two tables)
that walk costs several times what SQLite takes to answer (bench/throughput.py,
profiled with pyinstrument). ``prepared(build)`` calls ``build`` once per
database with a marker for each argument, keeps the SQL and where each marker
landed among the parameters, and from then on runs that SQL with the call's
values; rows come back as the same query would give them (models, joins
included). peewee also works out, for every cursor, which column feeds which
model's field (``initialize``: most of the time it takes to read a row); that
depends only on the SQL, so it is done for the first cursor and its result given
to the later ones, with a quicker way to make each row's models (``_fast_rows``:
the values go straight into each model's data, as peewee's own constructor would
put them, instead of through one attribute descriptor per column).

Arguments must already be what the database stores (str, int), since the
fields' converters ran on the markers, not on the values; build must take only
those arguments and depend on nothing else that changes (no utcnow() inside).
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections.abc import Callable, Iterable

from peewee import Insert, ModelCursorWrapper, ModelObjectCursorWrapper

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
        self.signature = inspect.signature(build)
        self.arity = len(self.signature.parameters)
        self.cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.lock = threading.Lock()

    def _compile(self, database):
        markers = [_Marker(f"\x00prepared {i}\x00") for i in range(self.arity)]
        query = self.build(*markers)
        if isinstance(query, Insert) and query._returning is None and database.returning_clause:
            query = query.returning(*query._pk_returning())  # as peewee does when it runs one
        sql, params = query.sql()
        slots = []
        for param in params:
            if isinstance(param, str) and param in markers:
                slots.append(markers.index(param))
            else:
                slots.append(_Constant(param))
        if {s for s in slots if isinstance(s, int)} != set(range(self.arity)):
            raise TypeError(f"{self.build.__name__}: an argument did not reach the SQL as is")
        return [query, sql, slots, None]  # the last: the state peewee's initialize sets

    def _run(self, args, kwargs=None):
        """Execute the SQL (compiled on first use for this database) with args; (entry, cursor)."""
        if kwargs:
            args = self.signature.bind(*args, **kwargs).args
        database = _database()
        entry = self.cache.get(database)
        if entry is None:
            with self.lock:
                entry = self.cache.get(database) or self._compile(database)
                self.cache[database] = entry
        query, sql, slots, _ = entry
        values = [args[s] if isinstance(s, int) else s.value for s in slots]
        return entry, database.execute_sql(sql, values)

    def __call__(self, *args) -> Iterable:
        entry, cursor = self._run(args)
        wrapper = entry[0]._get_cursor_wrapper(cursor)
        state = entry[3]
        if state is not None:
            wrapper.__dict__.update(state)  # with process_row when _fast_rows made one
            wrapper.initialized = True
        else:
            _keep_state(wrapper, entry)
        return wrapper

    def execute(self, *args):
        """Run a prepared INSERT/UPDATE/DELETE; return the cursor (its rowcount)."""
        return self._run(args)[1]

    def insert(self, *args, **kwargs):
        """Run a prepared INSERT of one row (arguments by position or name); return its id."""
        cursor = self._run(args, kwargs)[1]
        if _database().returning_clause:
            return cursor.fetchone()[0]
        return cursor.lastrowid

    def first(self, *args):
        """The first row, or None (build should end in .limit(1))."""
        for row in self(*args):
            return row
        return None


def _database():
    """The database the models use now (behind the proxy)."""
    return models.db.obj if isinstance(models.db, models.DatabaseProxy) else models.db


def _keep_state(wrapper, entry: list) -> None:
    """Have wrapper's initialize (on its first row) store what it set in entry[3]."""
    initialize = wrapper.initialize

    def keep() -> None:
        before = set(wrapper.__dict__)
        initialize()
        state = {k: v for k, v in wrapper.__dict__.items() if k not in before}
        fast = _fast_rows(wrapper)
        if fast is not None:
            state["process_row"] = fast
        entry[3] = state

    wrapper.initialize = keep


def _fast_rows(wrapper):
    """A process_row for wrapper's query that fills models' data directly, or None.

    Only for rows of models whose every column is one of the model's fields, and
    joins along foreign keys (what the prepared queries select); anything else
    keeps peewee's own.
    """
    if isinstance(wrapper, ModelObjectCursorWrapper):
        if not wrapper.is_model:
            return None
        model = wrapper.constructor
        specs = zip(range(wrapper.ncols), wrapper.unique_columns, wrapper.converters, strict=True)
        plan = [(model, model, _columns(model, specs))]
        joins, reachable, root = (), {}, model
    elif isinstance(wrapper, ModelCursorWrapper):
        if not all(is_model for _, _, is_model in wrapper._constructor_list):
            return None
        if any(is_dict or not is_fk for _, _, _, is_dict, _, is_fk in wrapper.src_to_dest):
            return None
        keys = {key for key, _, _ in wrapper._constructor_list}
        if any(key not in keys for _, key, _, _ in wrapper._row_spec):
            return None
        plan = [
            (
                key,
                model,
                _columns(model, [(i, c, f) for i, k, c, f in wrapper._row_spec if k == key]),
            )
            for key, model, _ in wrapper._constructor_list
        ]
        joins, reachable, root = wrapper.src_to_dest, wrapper._dest_reachable, wrapper.model
    else:
        return None
    if any(cols is None for _, _, cols in plan):
        return None

    def process_row(row):
        objects = {}
        set_keys = set()
        for key, model, cols in plan:
            obj = model.__new__(model)
            data = {}
            for idx, name, converter in cols:
                value = row[idx]
                if value is not None:
                    set_keys.add(key)
                data[name] = value if converter is None else converter(value)
            obj.__data__ = data
            obj._dirty = set()
            obj.__rel__ = {}
            objects[key] = obj
        # Joined models go where peewee would put them (ModelCursorWrapper.process_row).
        for src, attr, dest, _, is_outer, _ in joins:
            instance, joined = objects.get(src), objects.get(dest)
            if dest not in set_keys:
                if not (dest in reachable and reachable[dest] & set_keys):
                    if not is_outer:
                        continue
                    joined = None
            if is_outer and src not in set_keys and dest not in set_keys:
                continue
            if joined is None:
                instance.__rel__[attr] = None
            else:
                setattr(instance, attr, joined)
                instance._dirty.clear()
        return objects[root]

    return process_row


def _columns(model, specs):
    """specs, [(index, field name, converter)], as a list; None if a name is not model's field."""
    cols = list(specs)
    if any(name not in model._meta.fields for _, name, _ in cols):
        return None
    return cols


def prepared(build: Callable) -> Prepared:
    """Decorate a function that builds a SELECT from its arguments (see the module's text)."""
    return Prepared(build)
