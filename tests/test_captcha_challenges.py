"""Captcha challenges: one image per key, answered once, and page views that write nothing."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest

import models
from blueprints.public import service as captchas
from core.clock import utcnow
from models import SpentCaptcha
from tests.factories import registration_form


@pytest.fixture
def image_app(app):
    app.config["CAPTCHA"] = "image"
    return app


def key_of(page: str) -> str:
    return re.search(r'name="captcha_key" value="([^"]+)"', page).group(1)


def audio_url(client, key):
    """The audio link as the page draws it (its format is not this test's business)."""
    page = client.get("/captcha/nuevo").text
    path = re.search(r'href="(/captcha/[^"]+)"', page).group(1)
    return path.replace(key_of(page), key)


def test_one_key_always_draws_the_same_image_and_sound(db, image_app):
    client = image_app.test_client()
    key, other = key_of(client.get("/registro").text), key_of(client.get("/registro").text)
    images = {client.get(f"/captcha/{key}.png").data for _ in range(3)}
    assert len(images) == 1 and images.pop()[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(f"/captcha/{other}.png").data != client.get(f"/captcha/{key}.png").data
    sounds = {client.get(audio_url(client, key)).data for _ in range(2)}
    assert len(sounds) == 1


def test_showing_the_registration_page_writes_nothing(db, image_app):
    client = image_app.test_client()
    counts = {m: m.select().count() for m in models.MODELS}
    keys = {key_of(client.get("/registro").text) for _ in range(50)}
    keys |= {key_of(client.get("/captcha/nuevo").text) for _ in range(300)}  # "Refrescar"
    assert len(keys) == 350  # a fresh challenge every time
    assert {m: m.select().count() for m in models.MODELS} == counts


def test_answered_keys_are_the_only_rows_and_expire(db, image_app):
    client = image_app.test_client()
    SpentCaptcha.create(key_hash="old", expires_at=utcnow() - timedelta(seconds=1))
    for _ in range(5):
        key = key_of(client.get("/registro").text)
        client.post("/registro", data=registration_form(captcha="zzzzzz", captcha_key=key))
    assert SpentCaptcha.select().count() == 5  # the expired one was swept on the way


def test_a_key_is_spent_by_its_first_answer(db, image_app):
    client = image_app.test_client()
    key = key_of(client.get("/registro").text)
    with image_app.app_context():
        text = captchas.challenge(key).text
        assert captchas.solve(key, text) is True
        assert captchas.solve(key, text) is False
        assert captchas.challenge(key) is None
    assert client.get(f"/captcha/{key}.png").status_code == 404


@pytest.mark.parametrize(
    "tamper",
    [
        lambda k: k[:-1] + ("0" if k[-1] != "0" else "1"),  # signature
        lambda k: "0" + k[1:] if k[0] != "0" else "1" + k[1:],  # nonce
        lambda k: k.replace("-", "", 1),
        lambda k: "",
        lambda k: "x" * 500,
    ],
)
def test_a_forged_key_draws_nothing(db, image_app, tamper):
    client = image_app.test_client()
    key = tamper(key_of(client.get("/registro").text))
    with image_app.app_context():
        assert captchas.challenge(key) is None
        assert captchas.solve(key, "abcdef") is False
    assert client.get(f"/captcha/{key or 'x'}.png").status_code == 404


def test_a_key_expires_after_twenty_minutes(db, image_app, monkeypatch):
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 20 * 60 - 1)
    with image_app.app_context():
        key = captchas.new_challenge()
    monkeypatch.setattr(time, "time", real)
    with image_app.app_context():
        assert captchas.challenge(key) is None


def test_another_secret_reads_no_challenge(db, image_app):
    with image_app.app_context():
        key = captchas.new_challenge()
    image_app.config["SECRET_KEY"] = "another-secret"
    with image_app.app_context():
        assert captchas.challenge(key) is None
