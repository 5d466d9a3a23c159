"""Login back-off: counted atomically, and a stranger cannot lock the owner's browser out."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest

import models
from core import auth as core_auth
from core import passwords
from core.auth import LoginOutcome
from core.clock import utcnow
from models import Account, LoginDevice
from tests.factories import PASSWORD, make_user

WRONG = "Mala-Clave-1"
NEW = "Otra-Clave-Nueva-7"
SECRET = "test-secret"  # the app fixture's SECRET_KEY
FAILED = "El email o la contraseña no son correctos."


def login(client, user, password=PASSWORD):
    return client.post("/", data={"email": user.email, "password": password})


def attempt(email, password, device_tokens=()):
    """One sign-in attempt from its own thread, with its own connection, as a request has."""
    models.db.connect(reuse_if_open=True)
    try:
        return core_auth.authenticate(
            Account.HANNA, email, password, device_tokens=device_tokens, secret=SECRET
        )
    finally:
        models.db.close()


def burst(n, email, password, device_tokens=()):
    """Make n attempts at the same moment from n threads; return their outcomes."""
    barrier = threading.Barrier(n)
    outcomes = []

    def run():
        barrier.wait()
        outcomes.append(attempt(email, password, device_tokens).outcome)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Counter(outcomes)


def hammer(email, password, threads, each):
    """Make threads × each attempts, each thread one after another, all threads at once."""

    def run():
        models.db.connect(reuse_if_open=True)
        try:
            for _ in range(each):
                core_auth.authenticate(Account.HANNA, email, password, secret=SECRET)
        finally:
            models.db.close()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


@pytest.fixture
def slow_hashes():
    """A hash that takes milliseconds, so concurrent guesses really overlap."""
    passwords.configure(time_cost=1, memory_cost=4096, parallelism=1)


def test_concurrent_wrong_passwords_are_all_counted_and_only_five_are_tried(db, slow_hashes):
    user = make_user()
    outcomes = burst(24, user.email, WRONG)
    assert outcomes == {LoginOutcome.WRONG: core_auth.BACKOFF_FROM, LoginOutcome.WAIT: 19}
    row = Account.get_by_id(user.id)
    assert row.failed_logins == 24
    assert row.login_blocked_until > utcnow()  # set by the fifth guess, not lost to a stale read
    # The decision holds for the very next client too, even with the right password.
    assert attempt(user.email, PASSWORD).outcome is LoginOutcome.WAIT


def test_a_second_burst_after_the_wait_gets_one_guess_not_a_lock(db, slow_hashes):
    user = make_user()
    burst(24, user.email, WRONG)
    Account.update(login_blocked_until=utcnow() - timedelta(seconds=1)).execute()
    outcomes = burst(24, user.email, WRONG)
    assert outcomes == {LoginOutcome.WRONG: 1, LoginOutcome.WAIT: 23}
    row = Account.get_by_id(user.id)
    assert row.failed_logins == 48
    assert row.login_blocked_until - utcnow() <= core_auth.BACKOFF_CAP
    # No hard lock: after the wait the owner signs in from anywhere.
    Account.update(login_blocked_until=utcnow() - timedelta(seconds=1)).execute()
    assert attempt(user.email, PASSWORD).outcome is LoginOutcome.SIGNED_IN


def test_concurrent_attempts_on_a_device_spend_exactly_its_budget(db, slow_hashes):
    user = make_user()
    token = attempt(user.email, PASSWORD).device_token
    outcomes = burst(24, user.email, WRONG, [token])
    # Ten guesses on the device's own budget, then the revoked cookie is an untrusted
    # client: five more guesses there, and the rest wait.
    assert outcomes == {
        LoginOutcome.WRONG: core_auth.DEVICE_MAX_FAILURES + core_auth.BACKOFF_FROM,
        LoginOutcome.WAIT: 24 - core_auth.DEVICE_MAX_FAILURES - core_auth.BACKOFF_FROM,
    }
    assert LoginDevice.get(LoginDevice.account == user).revoked_at is not None


def test_a_strangers_thousands_of_failures_do_not_stop_the_owners_browser(db, client, app, clock):
    # The clock stands still: on a loaded machine the 1,000 guesses can outlast the
    # back-off the last tried one set, and the stranger would then get a fair try.
    user = make_user()
    assert login(client, user).status_code == 303  # the owner's browser: a device cookie
    assert client.get_cookie(core_auth.DEVICE_COOKIE) is not None
    client.post("/salir")
    hammer(user.email, WRONG, 8, 125)  # 1,000 guesses from 8 addresses at once
    assert Account.get_by_id(user.id).failed_logins == 1000
    stranger = app.test_client()
    page = login(stranger, user)  # even the right password waits on the untrusted budget
    assert page.status_code == 422 and FAILED in page.text
    assert login(client, user).status_code == 303


def test_an_untrusted_client_is_slowed_with_the_same_words(db, client):
    user = make_user()
    pages = [login(client, user, WRONG) for _ in range(core_auth.BACKOFF_FROM)]
    waiting = login(client, user)  # right password, but backing off
    assert {p.status_code for p in [*pages, waiting]} == {422}
    assert all(FAILED in p.text for p in [*pages, waiting])
    assert Account.get_by_id(user.id).login_blocked_until > utcnow()
    Account.update(login_blocked_until=utcnow() - timedelta(seconds=1)).execute()
    assert login(client, user).status_code == 303


def test_the_owners_own_typos_fall_on_the_device_budget(db, client):
    user = make_user()
    login(client, user)
    client.post("/salir")
    for _ in range(3):
        login(client, user, WRONG)
    assert Account.get_by_id(user.id).failed_logins == 0  # the untrusted budget is untouched
    assert LoginDevice.get(LoginDevice.account == user).failed_logins == 3
    assert login(client, user).status_code == 303
    assert LoginDevice.get(LoginDevice.account == user).failed_logins == 0


def test_a_device_cookie_that_fails_too_often_is_revoked(db, client):
    user = make_user()
    login(client, user)
    client.post("/salir")
    for _ in range(core_auth.DEVICE_MAX_FAILURES):
        login(client, user, WRONG)
    assert LoginDevice.get(LoginDevice.account == user).revoked_at is not None
    assert Account.get_by_id(user.id).failed_logins == 0
    # From now on this browser is an untrusted client: its failures back off.
    for _ in range(core_auth.BACKOFF_FROM):
        login(client, user, WRONG)
    assert login(client, user).status_code == 422


def test_the_device_cookie_is_revoked_by_a_password_reset(db, client, outbox):
    user = make_user()
    login(client, user)
    client.post("/salir")
    client.post("/restablecer", data={"email": user.email})
    link = outbox.last_link("/restablecer/")
    assert client.post(link, data={"password": NEW, "confirm": NEW}).status_code == 303
    assert LoginDevice.get(LoginDevice.account == user).revoked_at is not None
    for _ in range(core_auth.BACKOFF_FROM):
        core_auth.authenticate(
            Account.HANNA, user.email, WRONG, secret=SECRET
        )  # a stranger after the reset
    assert login(client, user, NEW).status_code == 422  # the old cookie no longer helps


def test_a_reset_clears_the_untrusted_back_off(db, client, outbox):
    user = make_user()
    Account.update(
        failed_logins=500, login_blocked_until=utcnow() + core_auth.BACKOFF_CAP
    ).execute()
    client.post("/restablecer", data={"email": user.email})
    client.post(outbox.last_link("/restablecer/"), data={"password": NEW, "confirm": NEW})
    row = Account.get_by_id(user.id)
    assert row.failed_logins == 0 and row.login_blocked_until is None
    assert login(client, user, NEW).status_code == 303


def test_logout_everywhere_revokes_the_device_cookies(db, client, app):
    user = make_user()
    other = app.test_client()
    login(other, user)
    login(client, user)
    assert client.post("/cuenta/sesiones/cerrar-todas").status_code in (302, 303)
    assert LoginDevice.select().where(LoginDevice.revoked_at.is_null()).count() == 0


def test_a_device_cookie_speaks_only_for_its_own_account(db, client):
    owner, victim = make_user(), make_user()
    login(client, owner)
    client.post("/salir")
    for _ in range(core_auth.BACKOFF_FROM):
        login(client, victim, WRONG)
    assert Account.get_by_id(victim.id).failed_logins == core_auth.BACKOFF_FROM
    assert login(client, victim).status_code == 422


def test_a_forged_device_cookie_is_ignored(db, client):
    user = make_user()
    login(client, user)
    client.post("/salir")
    genuine = client.get_cookie(core_auth.DEVICE_COOKIE).value
    client.set_cookie(
        core_auth.DEVICE_COOKIE, genuine[:-2] + ("AA" if genuine[-2:] != "AA" else "BB")
    )
    login(client, user, WRONG)
    assert Account.get_by_id(user.id).failed_logins == 1  # counted on the untrusted budget


def test_one_browser_remembers_several_accounts(db, client):
    first, second = make_user(), make_user()
    for user in (first, second, first):
        login(client, user)
        client.post("/salir")
    assert len(client.get_cookie(core_auth.DEVICE_COOKIE).value.split("~")) == 2
    assert LoginDevice.select().count() == 2  # the first account's device was reused
    for user in (first, second):
        login(client, user, WRONG)
        assert Account.get_by_id(user.id).failed_logins == 0


def test_the_device_cookie_is_httponly_and_long_lived(db, client):
    user = make_user()
    response = login(client, user)
    header = next(
        h for h in response.headers.getlist("Set-Cookie") if h.startswith(core_auth.DEVICE_COOKIE)
    )
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Max-Age=31536000" in header


def test_a_pending_account_gets_no_device(db, client):
    user = make_user(status=Account.PENDING)
    assert FAILED in login(client, user).text
    assert LoginDevice.select().count() == 0
