"""`flask create-staff` (SPEC K): bootstrapping staff accounts without a mail server."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pyotp
import pytest
from factories import PASSWORD

from core import clock as clockmod
from core import passwords, second_factor
from core.permissions import Role, roles_of
from models import Account, AuditEvent, StaffMember, StaffRole

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture
def now(clock):
    """Stop the clock 5 s into a TOTP step, so a code made now stays valid for the whole test."""
    step = int(time.time()) // second_factor.STEP_SECONDS
    clock.set(datetime.fromtimestamp(step * second_factor.STEP_SECONDS + 5, UTC))
    return clock


def create(runner, email="laura@cajacopi.example", *extra: str, roles=("afiliaciones",)):
    args = ["create-staff", email, "--password", PASSWORD, *extra]
    for role in roles:
        args += ["--role", role]
    return runner.invoke(args=args)


def staff_rows():
    return list(Account.select().where(Account.kind == Account.STAFF))


def test_creates_an_active_staff_account_with_its_roles(db, runner):
    result = create(
        runner,
        "Laura@Cajacopi.example",
        "--name",
        "Laura Gómez",
        roles=("afiliaciones", "convenios"),
    )
    assert result.exit_code == 0, result.output
    assert "Funcionario creado: laura@cajacopi.example" in result.output
    (account,) = staff_rows()
    assert account.email == account.login == "laura@cajacopi.example"
    assert account.status == Account.ACTIVE and account.is_active
    assert roles_of(account) == {Role.AFILIACIONES, Role.CONVENIOS}
    assert StaffMember.get_by_id(account.id).nombre == "Laura Gómez"
    assert passwords.verify_password(account.password_hash, PASSWORD)
    assert PASSWORD not in account.password_hash
    assert account.totp_secret == "" and account.totp_enrolled_at is None  # enrols at first login
    event = AuditEvent.get(AuditEvent.action == "staff.crear")
    assert event.target_id == account.id
    assert json.loads(event.after) == {
        "email": account.email,
        "roles": ["afiliaciones", "convenios"],
    }
    assert PASSWORD not in (event.after or "")


def test_without_a_secret_the_first_login_asks_to_enrol(db, runner, client):
    assert create(runner).exit_code == 0
    login = client.post(
        "/gestion/ingresar", data={"email": "laura@cajacopi.example", "password": PASSWORD}
    )
    assert login.status_code == 303
    step = client.get("/gestion/segundo-factor")
    assert urlsplit(step.headers["Location"]).path == "/gestion/segundo-factor/inscribir"


def test_with_a_secret_the_account_is_enrolled_and_its_codes_pass(db, runner, client, now):
    result = create(
        runner, "laura@cajacopi.example", "--totp-secret", SECRET.lower()[:16] + " " + SECRET[16:]
    )
    assert result.exit_code == 0, result.output
    (account,) = staff_rows()
    assert account.totp_secret == SECRET and account.totp_enrolled_at is not None
    assert SECRET not in (AuditEvent.get().after or "")
    client.post("/gestion/ingresar", data={"email": account.email, "password": PASSWORD})
    typed = pyotp.TOTP(SECRET).at(clockmod.utcnow().replace(tzinfo=UTC))
    answer = client.post("/gestion/segundo-factor", data={"code": typed})
    assert answer.status_code == 303 and urlsplit(answer.headers["Location"]).path == "/gestion/"
    assert client.get("/gestion/desbloqueos").status_code == 200


def test_an_unknown_role_is_refused_in_spanish(db, runner):
    result = create(runner, roles=("afiliaciones", "jefe"))
    assert result.exit_code != 0
    assert "Rol desconocido: jefe." in result.output and "Invalid value" not in result.output
    assert "afiliaciones" in result.output and "admin" in result.output  # the roles it knows
    assert staff_rows() == []


def test_a_role_is_required(db, runner):
    result = create(runner, roles=())
    assert result.exit_code != 0 and staff_rows() == []


@pytest.mark.parametrize(
    "password, rule",
    [
        ("corta1A", passwords.TOO_SHORT),
        ("todominusculas1", passwords.NO_UPPER),
        ("SinNumerosNunca", passwords.NO_DIGIT),
        ("laura@cajacopi.example1A", passwords.HAS_EMAIL),
    ],
)
def test_a_weak_password_is_refused_with_the_rule(db, runner, password, rule):
    result = runner.invoke(
        args=["create-staff", "laura@cajacopi.example", "--role", "admin", "--password", password]
    )
    assert result.exit_code != 0
    assert rule in result.output
    assert staff_rows() == []


def test_a_duplicate_email_is_refused(db, runner):
    assert create(runner).exit_code == 0
    again = create(runner, "LAURA@cajacopi.example", roles=("admin",))
    assert again.exit_code != 0
    assert "Ya existe un funcionario con ese correo." in again.output
    (account,) = staff_rows()
    assert roles_of(account) == {Role.AFILIACIONES}
    assert StaffRole.select().count() == 1 and AuditEvent.select().count() == 1


def test_the_same_email_as_a_hanna_user_is_another_account(db, runner):
    from factories import make_user

    make_user(email="laura@cajacopi.example")
    assert create(runner).exit_code == 0
    assert len(staff_rows()) == 1


@pytest.mark.parametrize(
    "secret",
    [
        "JBSWY3DPEHPK3PX",  # 15 characters: under 80 bits
        "JBSWY3DPEHPK3PX1",  # 1 is not base32
        "JBSWY3DPEHPK3PX!",
        "ñandúñandúñandúñ",
    ],
)
def test_an_invalid_secret_is_refused(db, runner, secret):
    result = create(runner, "laura@cajacopi.example", "--totp-secret", secret)
    assert result.exit_code != 0
    assert "El secreto TOTP debe ser base32" in result.output
    assert staff_rows() == []


@pytest.mark.parametrize(
    "email", ["", "laura", "laura@", "@cajacopi.example", "la ura@cajacopi.example"]
)
def test_an_invalid_email_is_refused(db, runner, email):
    result = create(runner, email)
    assert result.exit_code != 0
    assert "Escriba un correo electrónico válido" in result.output
    assert staff_rows() == []
