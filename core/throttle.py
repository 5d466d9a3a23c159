"""Cool-downs and quotas keyed by a purpose, shared by every process.

``cooldown(purpose, key, seconds)`` lets one caller through per ``seconds``;
``quota(purpose, key, limit, window_seconds)`` lets ``limit`` through per fixed
window; ``spend_all(budgets)`` spends one use of several budgets, or none. Each
decides in one atomic step, so two concurrent callers cannot both pass on the
same slot.

Storage: the database by default (the ``Throttle`` table, one upsert per call,
inside the caller's transaction, so a rolled-back send also gives its slot
back); Redis when ``configure()`` got a ``REDIS_URL`` (``SET NX EX``, and one
script that checks every budget of a call, then ``INCR`` + ``EXPIRE`` each). If Redis stops answering, the database
counts meanwhile (logged once per outage, never the URL) and Redis is tried
again after ``REDIS_RETRY`` seconds.

Keys are stored as their sha256, never as the address or phone itself. The
database path reads ``core.clock`` (the ``clock`` fixture moves it); Redis
expires keys by its own clock.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import math
import random
import time
from contextlib import nullcontext
from datetime import timedelta
from enum import StrEnum

from peewee import EXCLUDED, Case

from core import clock
from core.prepared import prepared
from models import Throttle, db

log = logging.getLogger("portal.throttle")

REDIS_RETRY = 30.0  # seconds before an unreachable Redis is tried again
PURGE_EVERY = 64  # on average one call in this many deletes the expired rows

# All or nothing over several budgets (KEYS; ARGV: limit and window in ms of each):
# if any is spent, return the most milliseconds one of them still has; else count
# one in each and return 0.
_SPEND_ALL_SCRIPT = """
local wait = 0
for i, key in ipairs(KEYS) do
  local n = tonumber(redis.call('GET', key) or '0')
  if n >= tonumber(ARGV[2 * i - 1]) then
    local left = redis.call('PTTL', key)
    if left < 0 then
      redis.call('PEXPIRE', key, ARGV[2 * i])
      left = tonumber(ARGV[2 * i])
    end
    wait = math.max(wait, left)
  end
end
if wait > 0 then
  return wait
end
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 or redis.call('PTTL', key) < 0 then
    redis.call('PEXPIRE', key, ARGV[2 * i])
  end
end
return 0
"""


class Purpose(StrEnum):
    """What a cool-down or quota counts; one budget per purpose and key."""

    RESET_MAIL = "reset_mail"  # a password-reset mail (or its "no account" note) per address
    ACTIVATION_MAIL = "activation_mail"  # an activation mail per address
    SECOND_FACTOR = "second_factor"  # wrong second-factor codes per staff account
    # Convenio look-ups (H6): a burst and a daily budget per operator and per entity.
    CONVENIO_USER_BURST = "convenio_user_burst"
    CONVENIO_USER_DAY = "convenio_user_day"
    CONVENIO_ENTITY_BURST = "convenio_entity_burst"
    CONVENIO_ENTITY_DAY = "convenio_entity_day"
    # Génesis (G1, G2): registration tries per document, reset codes per document.
    GENESIS_REGISTRO = "genesis_registro"
    GENESIS_RESET = "genesis_reset"
    # PQRSF (G6, G7): follow-ups per radicado, filings per contact.
    PQRS_CONSULTA = "pqrs_consulta"
    PQRS_RADICAR = "pqrs_radicar"


_redis = None  # a redis.Redis client when configured
_redis_down_until = 0.0  # time.monotonic() before which Redis is skipped
_spend_all_script = None


def configure(redis_url: str | None) -> None:
    """Count in Redis at redis_url, or in the database when it is empty."""
    global _redis, _redis_down_until, _spend_all_script
    _redis, _redis_down_until, _spend_all_script = None, 0.0, None
    if not redis_url:
        return
    import redis

    _redis = redis.Redis.from_url(redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)
    _spend_all_script = _redis.register_script(_SPEND_ALL_SCRIPT)


def key_hash(key: str) -> str:
    """Return the digest under which key is stored."""
    return hashlib.sha256(key.encode()).hexdigest()


def cooldown(purpose: Purpose, key: str, seconds: int) -> int:
    """Start a cool-down of seconds for key; return 0 if allowed, else the seconds to wait."""
    digest = key_hash(key)
    answer = _via_redis(_redis_cooldown, f"throttle:{purpose}:{digest}", seconds)
    if answer is None:
        answer = _db_cooldown(str(purpose), digest, seconds)
    return answer


def quota(purpose: Purpose, key: str, limit: int, window_seconds: int) -> bool:
    """Spend one of limit uses of key in the current window; False when none is left."""
    return spend(purpose, key, limit, window_seconds) == 0


def spend(purpose: Purpose, key: str, limit: int, window_seconds: int) -> int:
    """Spend one of limit uses of key in the current window.

    Return 0 when it was allowed, else the seconds until the window ends (when
    the budget is whole again). A refused call spends nothing.
    """
    return spend_all([(purpose, key, limit, window_seconds)])


Budget = tuple[Purpose, str, int, int]  # purpose, key, limit, window in seconds


def spend_all(budgets: list[Budget]) -> int:
    """Spend one use of each budget, or of none: one call, one statement (or one Redis call).

    Return 0 when every budget had room (one spent from each), else the seconds
    until all those that refused have room again; a refused call spends nothing
    from any of them. (A Convenios look-up spends an operator's and an entity's
    burst and day: four round trips to PostgreSQL or Redis, where this is one.)
    """
    if len({purpose for purpose, *_ in budgets}) != len(budgets):
        raise ValueError("one budget per purpose")
    closed = [window for _, _, limit, window in budgets if limit <= 0]
    if closed:
        return max(closed)
    digests = [key_hash(key) for _, key, _, _ in budgets]
    names = [
        f"throttle:{budget[0]}:{digest}" for budget, digest in zip(budgets, digests, strict=True)
    ]
    args = [n for _, _, limit, window in budgets for n in (limit, window * 1000)]
    answer = _via_redis(_redis_spend_all, names, args)
    if answer is None:
        return _db_spend_all(budgets, digests)
    return -(-answer // 1000)  # whole seconds, rounded up


def purge() -> int:
    """Delete the windows that have ended; return how many rows went."""
    return Throttle.delete().where(Throttle.expires_at <= clock.utcnow()).execute()


# --- database ------------------------------------------------------------------


def _transaction():
    """A transaction, or none inside the caller's: a savepoint costs two statements more.

    (A Convenios look-up spends four quotas in its own transaction.)
    """
    return nullcontext() if db.in_transaction() else db.atomic()


def _db_cooldown(purpose: str, digest: str, seconds: int) -> int:
    now = clock.utcnow()
    ends = now + timedelta(seconds=seconds)
    with _transaction():
        _maybe_purge()
        # Insert, or restart the window only if it has ended: the row lock (and
        # SQLite's write lock) make the second of two concurrent callers see the
        # first one's window and change nothing.
        started = _upsert(
            purpose,
            digest,
            now,
            ends,
            update={Throttle.window_start: now, Throttle.expires_at: ends, Throttle.count: 1},
            where=Throttle.expires_at <= now,
        )
        if started:
            return 0
        current = (
            Throttle.select(Throttle.expires_at)
            .where((Throttle.purpose == purpose) & (Throttle.key_hash == digest))
            .scalar()
        )
    if current is None:  # purged in between: only possible after the window ended
        return 0
    return max(1, math.ceil((current - now).total_seconds()))


_SPEND_ALL: dict = {}


def _spend_all_upsert(count: int):
    """The upsert that spends one use of count budgets, each only if it has room.

    Prepared once per number of budgets: each row's purpose, digest, window end
    and limit are arguments; the purposes also pick each row's limit in the WHERE.
    """
    if count not in _SPEND_ALL:

        def build(now, *rows):
            values = [rows[i : i + 4] for i in range(0, len(rows), 4)]
            ended = Throttle.expires_at <= now
            limit = Case(Throttle.purpose, [(purpose, lim) for purpose, _, _, lim in values])
            return (
                Throttle.insert_many(
                    [(purpose, digest, now, ends, 1) for purpose, digest, ends, _ in values],
                    fields=[
                        Throttle.purpose,
                        Throttle.key_hash,
                        Throttle.window_start,
                        Throttle.expires_at,
                        Throttle.count,
                    ],
                )
                .on_conflict(
                    conflict_target=[Throttle.purpose, Throttle.key_hash],
                    update={
                        Throttle.count: Case(None, [(ended, 1)], Throttle.count + 1),
                        Throttle.window_start: Case(
                            None, [(ended, EXCLUDED.window_start)], Throttle.window_start
                        ),
                        Throttle.expires_at: Case(
                            None, [(ended, EXCLUDED.expires_at)], Throttle.expires_at
                        ),
                    },
                    where=ended | (Throttle.count < limit),
                )
                .returning(Throttle.purpose)
            )

        build.__signature__ = inspect.Signature(
            [
                inspect.Parameter(f"a{i}", inspect.Parameter.POSITIONAL_ONLY)
                for i in range(1 + 4 * count)
            ]
        )
        build.__name__ = f"spend_all_{count}"
        _SPEND_ALL[count] = prepared(build)
    return _SPEND_ALL[count]


def _db_spend_all(budgets: list[Budget], digests: list[str]) -> int:
    now = clock.utcnow()
    rows = []
    for (purpose, _, limit, window), digest in zip(budgets, digests, strict=True):
        rows += [str(purpose), digest, now + timedelta(seconds=window), int(limit)]
    with _transaction():
        _maybe_purge()
        # RETURNING names the rows written: not those whose WHERE kept them (both databases).
        spent = {row[0] for row in _spend_all_upsert(len(budgets)).execute(now, *rows).fetchall()}
        if len(spent) == len(budgets):
            return 0
        pairs = [(str(p), d) for (p, *_), d in zip(budgets, digests, strict=True)]
        for purpose, digest in pairs:  # give back what this call took (the rows are ours now)
            if purpose in spent:
                Throttle.update(count=Throttle.count - 1).where(
                    (Throttle.purpose == purpose) & (Throttle.key_hash == digest)
                ).execute()
        ends = [
            Throttle.select(Throttle.expires_at)
            .where((Throttle.purpose == purpose) & (Throttle.key_hash == digest))
            .scalar()
            for purpose, digest in pairs
            if purpose not in spent
        ]
    return max([1] + [math.ceil((end - now).total_seconds()) for end in ends if end is not None])


def _upsert(purpose: str, digest: str, now, ends, *, update: dict, where) -> bool:
    """Run INSERT … ON CONFLICT DO UPDATE … WHERE; True when a row was written."""
    query = Throttle.insert(
        purpose=purpose, key_hash=digest, window_start=now, expires_at=ends, count=1
    ).on_conflict(conflict_target=[Throttle.purpose, Throttle.key_hash], update=update, where=where)
    # db.execute, not query.execute: the cursor's rowcount (0 when the WHERE
    # kept the row as it was), the same on SQLite and PostgreSQL.
    return db.execute(query).rowcount == 1


def _maybe_purge() -> None:
    if random.randrange(PURGE_EVERY) == 0:  # noqa: S311 - load spreading, not security
        purge()


# --- Redis ---------------------------------------------------------------------


def _via_redis(step, *args):
    """Return step(client, *args) from Redis, or None to count in the database instead."""
    global _redis_down_until
    if _redis is None or time.monotonic() < _redis_down_until:
        return None
    import redis

    try:
        answer = step(_redis, *args)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        if not _redis_down_until:
            # The class name only: a redis error's text can carry the host and port.
            log.warning(
                "Redis no responde (%s): los límites de envío se cuentan en la base de "
                "datos mientras tanto.",
                type(exc).__name__,
            )
        _redis_down_until = time.monotonic() + REDIS_RETRY
        return None
    if _redis_down_until:
        log.warning("Redis responde de nuevo: los límites de envío vuelven a contarse en él.")
        _redis_down_until = 0.0
    return answer


def _redis_cooldown(client, name: str, seconds: int) -> int:
    for _ in range(3):
        if client.set(name, 1, nx=True, ex=seconds):
            return 0
        left = client.pttl(name)
        if left > 0:
            return -(-left // 1000)  # whole seconds, rounded up
        if left == -1:  # a key without expiry (never written by us): give it the window
            client.expire(name, seconds)
            return seconds
        # -2: it expired between SET and PTTL; try again
    return 1


def _redis_spend_all(client, names: list[str], args: list[int]) -> int:
    return int(_spend_all_script(keys=names, args=args, client=client))
