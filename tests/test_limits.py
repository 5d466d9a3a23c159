"""Limits that cannot be walked around: one look-up budget, shared or refused, Redis down."""

from __future__ import annotations

import logging
import secrets

import pytest

import models
from app import create_app
from blueprints.accounts.views import LOOKUP_LIMITED
from tests.apps import make_app
from tests.factories import make_afiliado, registration_form
from tests.servers import free_port, gunicorn

STRONG_SECRET = secrets.token_hex(32)


def affiliates(n):
    with models.db.connection_context():
        return [make_afiliado(primer_nombre=f"NOMBRE{i}") for i in range(n)]


def lookup_via_partial(client, afiliado):
    return client.post(
        "/registro/consulta",
        headers={"HX-Request": "true"},
        data={"tipo_documento": "CC", "numero_documento": afiliado.numero_documento},
    )


def lookup_via_registration(client, afiliado):
    """The no-JS form posted with an error: the page comes back with the look-up result."""
    form = registration_form(numero_documento=afiliado.numero_documento, password="")
    return client.post("/registro", data=form)


def test_every_path_that_shows_a_look_up_spends_one_budget(limited_app):
    client = limited_app.test_client()
    people = affiliates(12)
    for i, person in enumerate(people[:10]):
        page = (lookup_via_partial if i % 2 else lookup_via_registration)(client, person)
        assert person.primer_nombre in page.text, i
    page = lookup_via_registration(client, people[10])
    assert page.status_code == 422 and people[10].primer_nombre not in page.text
    assert LOOKUP_LIMITED in page.text
    partial = lookup_via_partial(client, people[11])
    assert partial.status_code == 429 and people[11].primer_nombre not in partial.text
    assert LOOKUP_LIMITED in partial.text


def test_the_limit_message_sits_next_to_the_document_field(limited_app):
    client = limited_app.test_client()
    people = affiliates(11)
    for person in people[:10]:
        lookup_via_partial(client, person)
    page = lookup_via_registration(client, people[10])
    assert f'<p class="error" id="numero_documento-error">{LOOKUP_LIMITED}' in page.text
    assert 'aria-invalid="true"' in page.text


def test_the_same_document_again_costs_nothing(limited_app):
    client = limited_app.test_client()
    (person,) = affiliates(1)
    pages = [lookup_via_partial(client, person) for _ in range(8)]
    pages += [lookup_via_registration(client, person) for _ in range(8)]
    assert all(person.primer_nombre in p.text for p in pages)


def test_a_fresh_session_pays_for_the_same_document_again(limited_app):
    (person,) = affiliates(1)
    pages = [lookup_via_partial(limited_app.test_client(), person) for _ in range(11)]
    assert [p.status_code for p in pages] == [200] * 10 + [429]


# --- several processes -------------------------------------------------------------------------


def production_config(tmp_path, **over):
    return {
        "SECRET_KEY": STRONG_SECRET,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'p.sqlite3'}",
        "SMS_BACKEND": "http",
        "REDIS_URL": "",
        **over,
    }


def test_several_workers_without_redis_refuse_to_start(tmp_path, monkeypatch):
    monkeypatch.delenv("GUNICORN_WORKERS", raising=False)
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    with pytest.raises(RuntimeError, match="REDIS_URL"):
        create_app(production_config(tmp_path))
    assert create_app(production_config(tmp_path, REDIS_URL="redis://127.0.0.1:6379/15"))
    assert create_app(production_config(tmp_path, TESTING=True))
    monkeypatch.setenv("WEB_CONCURRENCY", "1")
    assert create_app(production_config(tmp_path))


def test_gunicorn_with_two_workers_and_no_redis_does_not_start(tmp_path):
    env = {
        "SECRET_KEY": STRONG_SECRET,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'g.sqlite3'}",
        "SMS_BACKEND": "http",
        "SMS_HTTP_URL": "http://127.0.0.1:9/",
        "REDIS_URL": "",
        "WEB_CONCURRENCY": "1",  # -w 2 wins, as in gunicorn
    }
    with pytest.raises(RuntimeError, match="REDIS_URL"):
        gunicorn(env, free_port(), workers=2, log_file=tmp_path / "gunicorn.log")
    # (One process with threads, as the Procfile starts by default, runs every e2e test.)


# --- Redis unreachable -------------------------------------------------------------------------


@pytest.fixture
def app_with_dead_redis(tmp_path):
    # A closed port, and a password that must never reach a log line.
    made = make_app(
        tmp_path, RATELIMIT_ENABLED=True, REDIS_URL="redis://:s3creto-redis@127.0.0.1:1/0"
    )
    yield next(made)
    for _ in made:
        pass


def test_login_answers_when_redis_is_unreachable(app_with_dead_redis, caplog):
    client = app_with_dead_redis.test_client()
    with caplog.at_level(logging.INFO):
        codes = [
            client.post("/", data={"email": "x@example.com", "password": "Mala-1x"}).status_code
            for _ in range(11)
        ]
    assert codes == [422] * 10 + [429]  # the limits still hold, counted in memory
    assert "falling back to in-memory" in caplog.text
    assert "s3creto-redis" not in caplog.text


def test_look_ups_answer_when_redis_is_unreachable(app_with_dead_redis):
    client = app_with_dead_redis.test_client()
    people = affiliates(11)
    codes = [lookup_via_partial(client, person).status_code for person in people]
    assert codes == [200] * 10 + [429]
