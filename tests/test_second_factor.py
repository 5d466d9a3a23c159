"""The staff second factor: TOTP codes taken once, recovery codes spent once (core.second_factor)."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from datetime import UTC, datetime

import pyotp
import pytest
from markupsafe import Markup

import models
from core import second_factor
from models import Account, RecoveryCode

# A whole step boundary plus 5 s: the step of "now" is unambiguous.
NOW = datetime(2026, 3, 2, 15, 0, 5, tzinfo=UTC)


@pytest.fixture
def now(clock):
    clock.set(NOW)
    return clock


_serial = iter(range(1_000_000))


def make_account(secret: str = "", enrolled: bool = True) -> Account:
    email = f"staff{next(_serial)}@hanna.test"
    return Account.create(
        kind=Account.STAFF,
        login=email,
        email=email,
        status=Account.ACTIVE,
        totp_secret=secret,
        totp_enrolled_at=NOW.replace(tzinfo=None) if secret and enrolled else None,
    )


def code_at(secret: str, clock, offset: int = 0) -> str:
    """The code an authenticator app shows, offset steps from the clock's now."""
    return pyotp.TOTP(secret).at(clock.current, counter_offset=offset)


def fresh(account: Account) -> Account:
    return Account.get_by_id(account.id)


def race(target, *args_per_thread) -> list:
    """Run target once per argument tuple, each in its own thread and connection."""
    results: list = [None] * len(args_per_thread)
    errors: list = []

    def run(index, args):
        try:
            results[index] = target(*args)
        except Exception as exc:  # surfaced below: a thread's exception is lost otherwise
            errors.append(exc)
        finally:
            models.db.close()

    threads = [
        threading.Thread(target=run, args=(i, args)) for i, args in enumerate(args_per_thread)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    return results


# --- secret, URI, QR ------------------------------------------------------------------


def test_new_secret_is_32_base32_characters_and_different_each_time():
    first, second = second_factor.new_secret(), second_factor.new_secret()
    assert re.fullmatch(r"[A-Z2-7]{32}", first)
    assert first != second


def test_provisioning_uri_names_the_issuer_and_the_email():
    secret = second_factor.new_secret()
    uri = second_factor.provisioning_uri(secret, "ana@hanna.test")
    assert uri.startswith("otpauth://totp/")
    parsed = pyotp.parse_uri(uri)
    assert parsed.secret == secret
    assert parsed.issuer == "Gestión Hanna"
    assert parsed.name == "ana@hanna.test"
    assert parsed.interval == 30 and parsed.digits == 6


def test_qr_svg_is_inline_markup_with_a_title_and_no_script():
    svg = second_factor.qr_svg(second_factor.provisioning_uri("A" * 32, "ana@hanna.test"))
    assert isinstance(svg, Markup)
    assert svg.startswith("<svg") and "<title>" in svg
    assert "<script" not in svg


# --- TOTP codes ---------------------------------------------------------------------


def test_right_code_is_accepted_and_its_step_recorded(db, now):
    secret = second_factor.new_secret()
    account = make_account(secret)
    assert second_factor.accept_code(account, code_at(secret, now))
    step = int(NOW.timestamp()) // 30
    assert account.totp_last_step == step
    assert fresh(account).totp_last_step == step


def test_code_with_spaces_is_accepted(db, now):
    secret = second_factor.new_secret()
    account = make_account(secret)
    code = code_at(secret, now)
    assert second_factor.accept_code(account, f" {code[:3]} {code[3:]} ")


def test_same_code_a_second_time_is_refused(db, now):
    secret = second_factor.new_secret()
    account = make_account(secret)
    code = code_at(secret, now)
    assert second_factor.accept_code(account, code)
    assert not second_factor.accept_code(account, code)
    # Also from another request that loaded the account before the first one wrote.
    assert not second_factor.accept_code(fresh(account), code)


def test_replay_is_refused_even_through_a_stale_account_object(db, now):
    secret = second_factor.new_secret()
    account = make_account(secret)
    stale = fresh(account)  # loaded before the code was used: totp_last_step None
    code = code_at(secret, now)
    assert second_factor.accept_code(account, code)
    assert not second_factor.accept_code(stale, code)


def test_code_from_two_steps_ago_is_refused(db, now):
    secret = second_factor.new_secret()
    account = make_account(secret)
    assert not second_factor.accept_code(account, code_at(secret, now, -2))
    assert not second_factor.accept_code(account, code_at(secret, now, +2))
    assert fresh(account).totp_last_step is None


def test_previous_step_is_accepted_once_then_the_current_step_still_is(db, now):
    secret = second_factor.new_secret()
    account = make_account(secret)
    previous, current = code_at(secret, now, -1), code_at(secret, now)
    assert second_factor.accept_code(account, previous)
    assert not second_factor.accept_code(account, previous)
    assert second_factor.accept_code(account, current)
    assert not second_factor.accept_code(account, current)
    assert not second_factor.accept_code(account, previous)


def test_next_step_is_accepted_for_a_phone_clock_running_ahead(db, now):
    secret = second_factor.new_secret()
    account = make_account(secret)
    assert second_factor.accept_code(account, code_at(secret, now, +1))
    # Its step is now used: the current code (an earlier step) is no longer taken.
    assert not second_factor.accept_code(account, code_at(secret, now))


def test_a_new_code_is_accepted_after_thirty_seconds(db, now):
    secret = second_factor.new_secret()
    account = make_account(secret)
    assert second_factor.accept_code(account, code_at(secret, now))
    now.advance(seconds=30)
    assert second_factor.accept_code(account, code_at(secret, now))


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda c: f"{(int(c) + 1) % 1_000_000:06d}", id="wrong"),
        pytest.param(lambda c: c[:5], id="five-digits"),
        pytest.param(lambda c: c + "0", id="seven-digits"),
        pytest.param(lambda c: "abcdef", id="letters"),
        pytest.param(lambda c: c[:5] + "x", id="a-letter-inside"),
        pytest.param(lambda c: "", id="empty"),
        pytest.param(
            lambda c: c.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")), id="arabic-digits"
        ),
        pytest.param(lambda c: c[:3] + "-" + c[3:], id="dash"),
    ],
)
def test_malformed_or_wrong_code_is_refused(db, now, mangle):
    secret = second_factor.new_secret()
    account = make_account(secret)
    assert not second_factor.accept_code(account, mangle(code_at(secret, now)))
    assert fresh(account).totp_last_step is None


def test_candidate_secret_not_yet_enrolled_accepts_no_code(db, now):
    secret = second_factor.new_secret()
    account = make_account(secret, enrolled=False)
    assert not second_factor.accept_code(account, code_at(secret, now))
    enrolled_meanwhile = fresh(account)
    Account.update(totp_enrolled_at=None).where(Account.id == account.id).execute()
    enrolled_meanwhile.totp_enrolled_at = NOW  # a stale object that still says "enrolled"
    assert not second_factor.accept_code(enrolled_meanwhile, code_at(secret, now))
    assert fresh(account).totp_last_step is None


def test_no_code_is_accepted_without_a_secret(db, now):
    account = make_account("")
    assert second_factor.check_code("", "123456", None) is None
    assert not second_factor.accept_code(account, "123456")


def test_check_code_returns_the_matched_step_and_respects_last_step(now):
    secret = second_factor.new_secret()
    step = int(NOW.timestamp()) // 30
    assert second_factor.check_code(secret, code_at(secret, now, -1), None) == step - 1
    assert second_factor.check_code(secret, code_at(secret, now), step - 1) == step
    assert second_factor.check_code(secret, code_at(secret, now), step) is None


def test_steps_follow_utc_not_the_servers_local_time(db, now):
    secret = second_factor.new_secret()
    account = make_account(secret)
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "America/Bogota"
    time.tzset()
    try:
        assert second_factor.accept_code(account, code_at(secret, now))
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()


def test_two_concurrent_requests_with_the_same_code_accept_it_once(db, now, monkeypatch):
    secret = second_factor.new_secret()
    account = make_account(secret)
    code = code_at(secret, now)
    both_checked = threading.Barrier(2, timeout=10)
    real_check = second_factor.check_code

    def check_then_wait(*args):
        # Both requests pass the check before either writes: only the UPDATE can decide.
        step = real_check(*args)
        both_checked.wait()
        return step

    monkeypatch.setattr(second_factor, "check_code", check_then_wait)

    def sign_in():
        return second_factor.accept_code(Account.get_by_id(account.id), code)

    assert sorted(race(sign_in, (), ())) == [False, True]


def test_code_of_the_old_secret_is_refused_after_a_reset_and_new_enrolment(db, now):
    old = second_factor.new_secret()
    account = make_account(old)
    stale = fresh(account)
    second_factor.reset(account)
    new = second_factor.new_secret()
    assert second_factor.enroll(account, new, code_at(new, now, -1))
    assert not second_factor.accept_code(stale, code_at(old, now))
    assert second_factor.accept_code(account, code_at(new, now))


# --- enrolment ----------------------------------------------------------------------


def test_enrolment_with_the_right_code_stores_the_secret(db, now):
    account = make_account("")
    secret = second_factor.new_secret()
    code = code_at(secret, now)
    assert second_factor.enroll(account, secret, code)
    stored = fresh(account)
    assert stored.totp_secret == secret
    assert stored.totp_enrolled_at == NOW.replace(tzinfo=None)
    assert stored.totp_last_step == int(NOW.timestamp()) // 30
    assert account.totp_secret == secret
    # The code typed to enrol does not also sign in.
    assert not second_factor.accept_code(stored, code)


def test_enrolment_with_a_wrong_code_stores_nothing(db, now):
    account = make_account("")
    secret = second_factor.new_secret()
    other = second_factor.new_secret()
    assert not second_factor.enroll(account, secret, code_at(other, now))
    assert not second_factor.enroll(account, secret, "12345")
    stored = fresh(account)
    assert (stored.totp_secret, stored.totp_enrolled_at, stored.totp_last_step) == ("", None, None)
    assert account.totp_secret == ""


def test_enrolment_is_refused_when_a_second_factor_is_already_enrolled(db, now):
    current = second_factor.new_secret()
    account = make_account(current)
    intruder = second_factor.new_secret()
    assert not second_factor.enroll(account, intruder, code_at(intruder, now))
    # Also through an object loaded before the enrolment (a second, racing request).
    stale = make_account("")
    racing = fresh(stale)
    first = second_factor.new_secret()
    assert second_factor.enroll(stale, first, code_at(first, now))
    assert not second_factor.enroll(racing, intruder, code_at(intruder, now))
    assert fresh(account).totp_secret == current
    assert fresh(stale).totp_secret == first


def test_enrolment_again_after_a_reset_is_allowed(db, now):
    account = make_account(second_factor.new_secret())
    second_factor.reset(account)
    secret = second_factor.new_secret()
    assert second_factor.enroll(account, secret, code_at(secret, now))
    assert fresh(account).totp_secret == secret


# --- recovery codes -----------------------------------------------------------------


def test_ten_distinct_recovery_codes_in_groups_of_five(db):
    account = make_account(second_factor.new_secret())
    codes = second_factor.new_recovery_codes(account)
    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        assert re.fullmatch(r"[2-9A-HJKMNP-Z]{5}-[2-9A-HJKMNP-Z]{5}", code), code
        assert not set(code) & set("0O1IL")
    assert second_factor.remaining_recovery_codes(account) == 10


def test_recovery_codes_are_stored_only_as_sha256(db):
    account = make_account(second_factor.new_secret())
    codes = second_factor.new_recovery_codes(account)
    rows = list(RecoveryCode.select().where(RecoveryCode.account == account.id).dicts())
    stored = " ".join(str(value) for row in rows for value in row.values())
    for code in codes:
        assert code not in stored
        assert code.replace("-", "") not in stored
    expected = {hashlib.sha256(c.replace("-", "").encode()).hexdigest() for c in codes}
    assert {row["code_hash"] for row in rows} == expected


def test_recovery_code_is_single_use(db, now):
    account = make_account(second_factor.new_secret())
    code = second_factor.new_recovery_codes(account)[0]
    assert second_factor.use_recovery_code(account, code)
    assert not second_factor.use_recovery_code(account, code)
    assert second_factor.remaining_recovery_codes(account) == 9
    used = RecoveryCode.get(RecoveryCode.used_at.is_null(False))
    assert used.used_at == NOW.replace(tzinfo=None)


def test_recovery_code_is_accepted_lower_case_with_spaces_and_without_the_dash(db):
    account = make_account(second_factor.new_secret())
    first, second = second_factor.new_recovery_codes(account)[:2]
    assert second_factor.use_recovery_code(account, first.lower())
    assert second_factor.use_recovery_code(account, " " + second.replace("-", " ") + " ")


@pytest.mark.parametrize("typed", ["", "ABCDE-FGHJK", "22222-22222", "XXXXX", "0" * 10])
def test_unknown_or_malformed_recovery_code_is_refused(db, typed):
    account = make_account(second_factor.new_secret())
    second_factor.new_recovery_codes(account)
    assert not second_factor.use_recovery_code(account, typed)
    assert second_factor.remaining_recovery_codes(account) == 10


def test_recovery_codes_of_one_account_are_refused_for_another(db):
    owner = make_account(second_factor.new_secret())
    other = make_account(second_factor.new_secret())
    codes = second_factor.new_recovery_codes(owner)
    second_factor.new_recovery_codes(other)
    assert not any(second_factor.use_recovery_code(other, code) for code in codes)
    assert second_factor.remaining_recovery_codes(owner) == 10
    assert second_factor.remaining_recovery_codes(other) == 10


def test_new_recovery_codes_invalidate_the_old_ones(db):
    account = make_account(second_factor.new_secret())
    old = second_factor.new_recovery_codes(account)
    second_factor.use_recovery_code(account, old[0])
    new = second_factor.new_recovery_codes(account)
    assert not set(old) & set(new)
    assert not any(second_factor.use_recovery_code(account, code) for code in old)
    assert second_factor.remaining_recovery_codes(account) == 10
    assert second_factor.use_recovery_code(account, new[0])


def test_two_concurrent_requests_with_the_same_recovery_code_spend_it_once(db):
    account = make_account(second_factor.new_secret())
    code = second_factor.new_recovery_codes(account)[0]
    start = threading.Barrier(2, timeout=10)

    def spend():
        loaded = Account.get_by_id(account.id)
        start.wait()
        return second_factor.use_recovery_code(loaded, code)

    assert sorted(race(spend, (), ())) == [False, True]
    assert second_factor.remaining_recovery_codes(account) == 9


# --- reset --------------------------------------------------------------------------


def test_reset_clears_the_secret_the_step_the_enrolment_and_the_recovery_codes(db, now):
    secret = second_factor.new_secret()
    account = make_account(secret)
    assert second_factor.accept_code(account, code_at(secret, now))
    codes = second_factor.new_recovery_codes(account)
    other = make_account(second_factor.new_secret())
    second_factor.new_recovery_codes(other)

    second_factor.reset(account)

    stored = fresh(account)
    assert (stored.totp_secret, stored.totp_last_step, stored.totp_enrolled_at) == ("", None, None)
    assert (account.totp_secret, account.totp_last_step, account.totp_enrolled_at) == (
        "",
        None,
        None,
    )
    assert RecoveryCode.select().where(RecoveryCode.account == account.id).count() == 0
    assert not second_factor.use_recovery_code(account, codes[1])
    now.advance(seconds=30)
    assert not second_factor.accept_code(stored, code_at(secret, now))
    # Another account's codes are untouched.
    assert second_factor.remaining_recovery_codes(other) == 10
