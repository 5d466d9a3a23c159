"""core.prepared: SQL built once, the same rows as the query built each time."""

from __future__ import annotations

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
