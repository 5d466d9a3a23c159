"""core.prepared: SQL built once, the same rows as the query built each time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import throttle
from core.prepared import prepared
from models import Afiliado, Throttle
from tests.factories import make_afiliado


def test_a_prepared_select_gives_the_rows_the_plain_query_gives(app):
    ana = make_afiliado(numero_documento="52000001")
    make_afiliado(numero_documento="52000002")

    @prepared
    def by_number(numero):
        return Afiliado.select().where(Afiliado.numero_documento == numero).limit(1)

    for numero in ("52000001", "52000002", "99"):  # the same SQL, new values each time
        plain = Afiliado.select().where(Afiliado.numero_documento == numero).first()
        got = by_number.first(numero)
        assert (got and got.id) == (plain and plain.id)
    assert by_number.first("52000001").primer_nombre == ana.primer_nombre
    assert Afiliado.find(ana.tipo_documento, "52000001").id == ana.id


def test_an_argument_the_sql_does_not_carry_is_refused(app):
    @prepared
    def ignores(numero):
        return Afiliado.select().limit(1)

    with pytest.raises(TypeError):
        ignores.first("1")


def test_the_prepared_quota_upsert_counts_and_refuses_past_the_limit(app):
    for _ in range(3):
        assert throttle.spend(throttle.Purpose.CONVENIO_USER_BURST, "u:1", 3, 60) == 0
    assert throttle.spend(throttle.Purpose.CONVENIO_USER_BURST, "u:1", 3, 60) > 0
    assert throttle.spend(throttle.Purpose.CONVENIO_USER_BURST, "u:2", 3, 60) == 0
    assert Throttle.select().where(Throttle.count == 3).count() == 1


def _same_model(got, plain) -> None:
    """The same data, the same joined models, nothing marked dirty, as peewee makes them."""
    assert type(got) is type(plain)
    assert got.__data__ == plain.__data__
    assert got._dirty == plain._dirty == set()
    assert got.__rel__.keys() == plain.__rel__.keys()
    for name, rel in plain.__rel__.items():
        if rel is None:
            assert got.__rel__[name] is None
        else:
            _same_model(got.__rel__[name], rel)


def test_rows_are_the_models_peewee_makes_joined_or_not_and_after_the_first(app):
    from core import auth, tokens
    from models import Account, UserSession
    from tests.factories import make_user

    user = make_user()
    token = auth.start_session(user, "pytest", idle=timedelta(minutes=15))
    digest = tokens.digest(token)

    joined = prepared(auth._session_by_hash.build)  # a fresh one: its first cursor is ours

    @prepared
    def single(numero):
        return Afiliado.select().where(Afiliado.numero_documento == numero).limit(1)

    ana = make_afiliado(numero_documento="52000003", segundo_nombre="")
    plain_session = (
        UserSession.select(UserSession, Account).join(Account)
        .where(UserSession.token_hash == digest).get()
    )  # fmt: skip
    for _ in range(3):  # the first cursor goes through peewee; the later ones do not
        _same_model(joined.first(digest), plain_session)
        _same_model(single.first("52000003"), Afiliado.get_by_id(ana.id))
    assert joined.cache and all(entry[3].get("process_row") for entry in joined.cache.values())
    row = joined.first(digest)
    assert row.account.id == user.id and row.account.email == user.email
    row.account.email = "otro@correo.test"  # a model still behaves as one: dirty, savable
    assert row.account._dirty == {"email"}
