"""Back office: an admin invites staff by mail, edits their roles, disables them, resets a second factor."""

from __future__ import annotations

import json
import re
import time

import pytest

from core import passwords, second_factor, tokens
from core.auth import password_fingerprint
from models import Account, AuditEvent, RecoveryCode, StaffMember, StaffRole, UserSession
from tests.factories import PASSWORD, make_staff, make_user

LIST = "/gestion/personal"
INVITE = "/gestion/personal/invitar"
GOOD_PASSWORD = "Bahia-Colibri-73"


@pytest.fixture
def admin(db, client, auth):
    account = make_staff(roles=("admin",), email="jefa@cajacopi.example", nombre="Marta Jefa")
    auth.login(client, account)
    return account


def staff_in(status: str, **over) -> Account:
    """A staff account in another state (make_staff makes active ones)."""
    account = make_staff(**over)
    Account.update(status=status).where(Account.id == account.id).execute()
    account.status = status
    return account


def page_of(account) -> str:
    return f"/gestion/personal/{account.id}"


def fresh(account) -> Account:
    return Account.get_by_id(account.id)


def roles(account) -> set[str]:
    return {r.role for r in StaffRole.select().where(StaffRole.account == account.id)}


def audit_rows(action: str) -> list[AuditEvent]:
    return list(AuditEvent.select().where(AuditEvent.action == action).order_by(AuditEvent.id))


def invite_form(**over) -> dict:
    form = {"nombre": "Pedro Pérez", "correo": "Pedro.Perez@Cajacopi.example", "roles": ["pqrs"]}
    form.update(over)
    return form


def invite(client, **over):
    return client.post(INVITE, data=invite_form(**over))


def staff_login(client, account, password=PASSWORD):
    return client.post("/gestion/ingresar", data={"email": account.email, "password": password})


# --- who may come in ----------------------------------------------------------------


def _paths(db) -> list[tuple[str, str]]:
    other = make_staff(roles=("soporte",))
    return [
        ("get", LIST),
        ("get", INVITE),
        ("post", INVITE),
        ("get", page_of(other)),
        ("post", page_of(other)),
    ]


def test_anonymous_is_sent_to_the_staff_login(db, client):
    for method, path in _paths(db):
        response = getattr(client, method)(path, data={"accion": "deshabilitar"})

        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/gestion/ingresar")


@pytest.mark.parametrize("who", ["convenios", "hanna"])
def test_non_admins_get_404_everywhere(db, client, auth, outbox, who):
    auth.login(client, make_staff(roles=("convenios",)) if who == "convenios" else make_user())
    paths = _paths(db)
    target = Account.get(Account.email.startswith("funcionario") & (Account.kind == "staff"))

    for method, path in paths:
        data = {"accion": "deshabilitar", **invite_form()} if method == "post" else None
        assert getattr(client, method)(path, data=data).status_code == 404, path
    assert Account.select().where(Account.email == "pedro.perez@cajacopi.example").count() == 0
    assert fresh(target).status == Account.ACTIVE
    assert outbox.all() == []


def test_staff_without_the_second_factor_is_sent_to_it(db, client, auth):
    auth.login(client, make_staff(roles=("admin",)), second_factor=False)

    response = client.get(LIST)

    assert response.status_code == 303
    assert response.headers["Location"].endswith("/gestion/segundo-factor")


def test_404_for_an_id_that_is_not_a_staff_account(admin, client):
    user = make_user()

    assert client.get(page_of(user)).status_code == 404
    assert client.post(page_of(user), data={"accion": "deshabilitar"}).status_code == 404
    assert client.get("/gestion/personal/999999").status_code == 404
    assert fresh(user).status == Account.ACTIVE


# --- the list -------------------------------------------------------------------


def test_list_shows_staff_newest_first_with_roles_state_and_second_factor(
    admin, client, clock, auth
):
    clock.advance(minutes=1)
    pending = staff_in("pendiente", roles=("pqrs", "soporte"), nombre="Ana Pendiente")
    second_factor.reset(pending)
    clock.advance(minutes=1)
    off = staff_in("deshabilitado", roles=("convenios",), nombre="Luis Apagado")
    auth.login(client.application.test_client(), off)  # a last sign-in to show

    response = client.get(LIST)

    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    html = response.get_data(as_text=True)
    assert html.index("Luis Apagado") < html.index("Ana Pendiente") < html.index("Marta Jefa")
    assert "PQRSF, Soporte IPS" in html
    assert "Invitado (pendiente)" in html and "Deshabilitado" in html and "Activo" in html
    assert "Sin inscribir" in html
    assert "3 resultados" in html
    assert "Nunca" in html  # Ana never signed in


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ({"correo": "ANA.P"}, "Ana Pendiente", "Luis Apagado"),
        ({"rol": "convenios"}, "Luis Apagado", "Ana Pendiente"),
        ({"estado": "pendiente"}, "Ana Pendiente", "Marta Jefa"),
        ({"estado": "deshabilitado"}, "Luis Apagado", "Marta Jefa"),
        ({"estado": "activo"}, "Marta Jefa", "Luis Apagado"),
    ],
)
def test_list_filters(admin, client, query, shown, hidden):
    staff_in("pendiente", roles=("pqrs",), nombre="Ana Pendiente", email="ana.p@cajacopi.example")
    staff_in("deshabilitado", roles=("convenios",), nombre="Luis Apagado")

    html = client.get(LIST, query_string=query).get_data(as_text=True)

    assert shown in html
    assert hidden not in html


def test_list_refuses_an_unknown_filter_value(admin, client):
    response = client.get(LIST, query_string={"rol": "jefe"})

    assert response.status_code == 422


def test_list_partial_for_htmx(admin, client, htmx):
    response = client.get(LIST, headers=htmx)

    assert response.status_code == 200
    assert "<h1>" not in response.get_data(as_text=True)
    assert "Marta Jefa" in response.get_data(as_text=True)


# --- inviting and the invitation link ------------------------------------------------


def test_invitation_journey(admin, client, app, outbox):
    response = invite(client, roles=["pqrs", "soporte"])

    assert response.status_code == 303
    new = Account.get(Account.email == "pedro.perez@cajacopi.example")
    assert response.headers["Location"] == page_of(new)
    assert (new.kind, new.status, new.password_hash) == ("staff", "pendiente", "")
    assert new.staff.nombre == "Pedro Pérez"
    assert new.staff.invited_by == admin.id
    assert roles(new) == {"pqrs", "soporte"}
    (row,) = audit_rows("staff.crear")
    assert row.actor_id == admin.id and row.target_id == new.id
    assert json.loads(row.after)["roles"] == ["pqrs", "soporte"]
    assert json.loads(row.after)["email"] == new.email
    (mail,) = outbox.all("email")
    assert mail.recipient == new.email
    link = outbox.last_link("/gestion/invitacion/")

    visitor = app.test_client()
    page = visitor.get(link)
    assert page.status_code == 200
    assert "Pedro Pérez" in page.get_data(as_text=True)
    assert "Nueva contraseña" in page.get_data(as_text=True)
    assert fresh(new).status == "pendiente" and fresh(new).password_hash == ""  # GET reads only
    assert UserSession.select().where(UserSession.account == new.id).count() == 0

    weak = visitor.post(link, data={"password": "corta", "confirm": "corta"})
    assert weak.status_code == 422
    assert passwords.TOO_SHORT in weak.get_data(as_text=True)
    assert fresh(new).password_hash == ""

    done = visitor.post(link, data={"password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD})
    assert done.status_code == 303
    assert done.headers["Location"] == "/gestion/segundo-factor/inscribir"
    assert fresh(new).status == "activo" and fresh(new).password_hash
    assert visitor.get("/gestion/segundo-factor/inscribir").status_code == 200
    # Signed in, but nothing of the back office opens before the second factor.
    assert visitor.get("/gestion/").headers["Location"].endswith("/gestion/segundo-factor")

    again = app.test_client().get(link)
    assert again.status_code == 410
    assert "ya fue usado" in again.get_data(as_text=True)
    replay = app.test_client().post(
        link, data={"password": "Otra-Clave-99", "confirm": "Otra-Clave-99"}
    )
    assert replay.status_code == 410


def test_mismatched_confirmation_is_refused(admin, client, app, outbox):
    invite(client)
    link = outbox.last_link("/gestion/invitacion/")

    response = app.test_client().post(
        link, data={"password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD + "x"}
    )

    assert response.status_code == 422
    assert "Las contraseñas no coinciden." in response.get_data(as_text=True)


def test_live_password_check_on_the_invitation(admin, client, app, outbox):
    invite(client)
    link = outbox.last_link("/gestion/invitacion/")

    response = app.test_client().post(f"{link}/clave", data={"password": GOOD_PASSWORD})

    assert response.status_code == 200
    assert "La contraseña cumple las reglas." in response.get_data(as_text=True)


def invitation_signed_ago(app, account, hours: float) -> str:
    """An invitation link for account as if it had been mailed hours ago (itsdangerous reads time.time)."""
    real = time.time
    try:
        time.time = lambda: real() - hours * 3600
        token = tokens.make_token(
            app.config["SECRET_KEY"],
            tokens.STAFF_INVITE,
            {"u": account.id, "p": password_fingerprint(account)},
        )
    finally:
        time.time = real
    return f"/gestion/invitacion/{token}"


def test_forged_invitation_link_is_invalid(admin, client, app, outbox):
    invite(client)
    link = outbox.last_link("/gestion/invitacion/")

    forged = app.test_client().get(link[:-3] + "abc")

    assert forged.status_code == 410
    assert "El enlace de invitación no es válido." in forged.get_data(as_text=True)


def test_invitation_link_lasts_72_hours(admin, client, app, outbox):
    invite(client)
    new = Account.get(Account.email == "pedro.perez@cajacopi.example")
    assert "vence en 72 horas" in outbox.all("email")[0].body_text

    assert app.test_client().get(invitation_signed_ago(app, new, 71)).status_code == 200
    expired = app.test_client().get(invitation_signed_ago(app, new, 73))
    assert expired.status_code == 410
    assert "El enlace de invitación venció (es válido por 72 horas)." in expired.get_data(
        as_text=True
    )
    late = app.test_client().post(
        invitation_signed_ago(app, new, 73),
        data={"password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD},
    )
    assert late.status_code == 410
    assert fresh(new).password_hash == ""


def test_a_link_for_a_disabled_invitation_is_refused(admin, client, app, outbox):
    invite(client)
    new = Account.get(Account.email == "pedro.perez@cajacopi.example")
    link = outbox.last_link("/gestion/invitacion/")
    client.post(page_of(new), data={"accion": "deshabilitar"})

    response = app.test_client().post(
        link, data={"password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD}
    )

    assert response.status_code == 410
    assert "ya no está vigente" in response.get_data(as_text=True)
    assert fresh(new).status == "deshabilitado" and fresh(new).password_hash == ""


def test_a_link_signed_for_another_purpose_is_refused(admin, client, app):
    token = tokens.make_token(
        app.config["SECRET_KEY"], tokens.RESET, {"u": admin.id, "p": password_fingerprint(admin)}
    )

    assert app.test_client().get(f"/gestion/invitacion/{token}").status_code == 410


def test_duplicate_email_is_refused_next_to_the_field(admin, client, outbox):
    make_staff(roles=("pqrs",), email="pedro.perez@cajacopi.example")

    response = invite(client, nombre="Otro Pedro")

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Ya existe un funcionario con ese correo." in html
    assert 'value="Otro Pedro"' in html  # the input is kept
    assert outbox.all() == []
    assert audit_rows("staff.crear") == []


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"roles": []}, "Elija al menos un rol."),
        ({"nombre": ""}, "Este campo es obligatorio."),
        ({"correo": "no-es-correo"}, "Escriba un correo electrónico válido"),
        ({"roles": ["jefe"]}, "no es una opción válida para este campo."),
    ],
)
def test_bad_invitation_answers_422(admin, client, outbox, over, message):
    response = invite(client, **over)

    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert StaffMember.select().count() == 1
    assert outbox.all() == []


def test_reinvite_a_pending_account_sends_a_new_link(admin, client, outbox):
    invite(client)
    new = Account.get(Account.email == "pedro.perez@cajacopi.example")

    response = client.post(page_of(new), data={"accion": "reinvitar"})

    assert response.status_code == 303
    first, second = outbox.all("email")
    assert second.recipient == new.email
    assert "/gestion/invitacion/" in second.body_text
    assert "Enviamos un enlace de invitación nuevo" in client.get(page_of(new)).get_data(
        as_text=True
    )


def test_reinvite_is_refused_for_an_active_account(admin, client, outbox):
    member = make_staff(roles=("pqrs",))

    response = client.post(page_of(member), data={"accion": "reinvitar"})

    assert response.status_code == 303
    assert outbox.all() == []


# --- a staff member's roles ----------------------------------------------------------


def test_member_page_shows_data_and_roles(admin, client):
    member = make_staff(roles=("pqrs",), nombre="Rosa Pqrs")

    html = client.get(page_of(member)).get_data(as_text=True)

    assert "Rosa Pqrs" in html and member.email in html
    assert re.search(r'<input checked[^>]*value="pqrs"', html)
    assert not re.search(r'<input checked[^>]*value="admin"', html)
    assert "Deshabilitar" in html and "Reiniciar segundo factor" in html


def test_edit_roles_with_audit_before_and_after(admin, client):
    member = make_staff(roles=("pqrs",))

    response = client.post(
        page_of(member), data={"accion": "roles", "roles": ["convenios", "pqrs"]}
    )

    assert response.status_code == 303
    assert roles(member) == {"convenios", "pqrs"}
    (row,) = audit_rows("staff.editar")
    assert json.loads(row.before) == {"roles": ["pqrs"]}
    assert json.loads(row.after) == {"roles": ["convenios", "pqrs"]}
    # The same roles again change nothing and audit nothing.
    client.post(page_of(member), data={"accion": "roles", "roles": ["convenios", "pqrs"]})
    assert len(audit_rows("staff.editar")) == 1


def test_a_removed_role_closes_its_pages_at_once(admin, client, app, auth):
    member = make_staff(roles=("admin", "pqrs"))
    theirs = auth.login(app.test_client(), member)
    assert theirs.get(LIST).status_code == 200

    client.post(page_of(member), data={"accion": "roles", "roles": ["pqrs"]})

    assert theirs.get(LIST).status_code == 404


def test_at_least_one_role(admin, client):
    member = make_staff(roles=("pqrs",))

    response = client.post(page_of(member), data={"accion": "roles"})

    assert response.status_code == 422
    assert "Elija al menos un rol." in response.get_data(as_text=True)
    assert roles(member) == {"pqrs"}


def test_an_admin_cannot_remove_their_own_admin_role(admin, client):
    response = client.post(page_of(admin), data={"accion": "roles", "roles": ["pqrs"]})

    assert response.status_code == 422
    assert "No puede quitarse a sí mismo el rol de Administración" in response.get_data(
        as_text=True
    )
    assert roles(admin) == {"admin"}
    assert audit_rows("staff.editar") == []


def test_an_admin_may_add_roles_to_themselves(admin, client):
    response = client.post(page_of(admin), data={"accion": "roles", "roles": ["admin", "pqrs"]})

    assert response.status_code == 303
    assert roles(admin) == {"admin", "pqrs"}


def test_an_unknown_action_is_a_bad_request(admin, client):
    member = make_staff(roles=("pqrs",))

    assert client.post(page_of(member), data={"accion": "borrar"}).status_code == 400


# --- disabling and enabling -------------------------------------------------------------


def test_disable_signs_the_person_out_and_their_password_stops_working(admin, client, app, auth):
    member = make_staff(roles=("convenios",))
    theirs = auth.login(app.test_client(), member)
    assert theirs.get("/gestion/").status_code == 200
    token_before = member.session_token

    response = client.post(page_of(member), data={"accion": "deshabilitar"})

    assert response.status_code == 303
    assert response.headers["Location"] == page_of(member)
    now = fresh(member)
    assert now.status == "deshabilitado"
    assert now.session_token != token_before
    assert (
        UserSession.select()
        .where((UserSession.account == member.id) & UserSession.ended_at.is_null())
        .count()
        == 0
    )
    kicked = theirs.get("/gestion/")
    assert kicked.status_code == 302
    assert kicked.headers["Location"].startswith("/gestion/ingresar")
    login = staff_login(app.test_client(), member)
    assert login.status_code == 422
    assert "El correo o la contraseña no son correctos." in login.get_data(as_text=True)
    (row,) = audit_rows("staff.deshabilitar")
    assert row.actor_id == admin.id and row.target_id == member.id
    assert json.loads(row.after) == {"estado": "deshabilitado"}


def test_disable_twice_acts_once(admin, client):
    member = make_staff(roles=("convenios",))

    client.post(page_of(member), data={"accion": "deshabilitar"})
    second = client.post(page_of(member), data={"accion": "deshabilitar"})

    assert second.status_code == 303
    assert len(audit_rows("staff.deshabilitar")) == 1
    assert "ya estaba deshabilitado" in client.get(page_of(member)).get_data(as_text=True)


def test_an_admin_cannot_disable_themselves(admin, client):
    response = client.post(page_of(admin), data={"accion": "deshabilitar"})

    assert response.status_code == 422
    assert "No puede hacer esto con su propia cuenta" in response.get_data(as_text=True)
    assert fresh(admin).status == "activo"
    assert client.get(LIST).status_code == 200  # still signed in


def test_enable_lets_the_person_sign_in_again(admin, client, app):
    member = make_staff(roles=("convenios",))
    client.post(page_of(member), data={"accion": "deshabilitar"})

    response = client.post(page_of(member), data={"accion": "habilitar"})

    assert response.status_code == 303
    assert fresh(member).status == "activo"
    (row,) = audit_rows("staff.habilitar")
    assert json.loads(row.before) == {"estado": "deshabilitado"}
    assert json.loads(row.after) == {"estado": "activo"}
    login = staff_login(app.test_client(), member)
    assert login.status_code == 303
    assert login.headers["Location"] == "/gestion/segundo-factor"
    # A second click finds nothing to enable.
    client.post(page_of(member), data={"accion": "habilitar"})
    assert len(audit_rows("staff.habilitar")) == 1


def test_enabling_an_invitation_makes_it_pending_again(admin, client, app, outbox):
    invite(client)
    new = Account.get(Account.email == "pedro.perez@cajacopi.example")
    link = outbox.last_link("/gestion/invitacion/")
    client.post(page_of(new), data={"accion": "deshabilitar"})

    client.post(page_of(new), data={"accion": "habilitar"})

    assert fresh(new).status == "pendiente"
    assert app.test_client().get(link).status_code == 200


# --- resetting the second factor -----------------------------------------------------------


def test_reset_second_factor(admin, client, app, auth, outbox):
    member = make_staff(roles=("pqrs",))
    second_factor.new_recovery_codes(member)
    theirs = auth.login(app.test_client(), member)

    response = client.post(page_of(member), data={"accion": "segundo_factor"})

    assert response.status_code == 303
    now = fresh(member)
    assert (now.totp_secret, now.totp_last_step, now.totp_enrolled_at) == ("", None, None)
    assert RecoveryCode.select().where(RecoveryCode.account == member.id).count() == 0
    (row,) = audit_rows("staff.segundo_factor.reiniciar")
    assert row.actor_id == admin.id and row.target_id == member.id
    (mail,) = outbox.all("email")
    assert mail.recipient == member.email
    assert "segundo factor" in mail.body_text
    assert theirs.get("/gestion/").headers["Location"].startswith("/gestion/ingresar")
    # The next sign-in goes to enrolment.
    fresh_client = app.test_client()
    assert staff_login(fresh_client, member).status_code == 303
    assert (
        fresh_client.get("/gestion/segundo-factor")
        .headers["Location"]
        .endswith("/gestion/segundo-factor/inscribir")
    )
    # A second click finds nothing to reset.
    client.post(page_of(member), data={"accion": "segundo_factor"})
    assert len(audit_rows("staff.segundo_factor.reiniciar")) == 1
    assert len(outbox.all("email")) == 1


def test_an_admin_cannot_reset_their_own_second_factor(admin, client):
    response = client.post(page_of(admin), data={"accion": "segundo_factor"})

    assert response.status_code == 422
    assert fresh(admin).totp_enrolled_at is not None


def test_a_second_submit_of_the_same_invitation_form_is_told_the_link_was_used(
    admin, client, app, outbox
):
    from blueprints.gestion import personal_service

    invite(client)
    link = outbox.last_link("/gestion/invitacion/")
    token = link.rsplit("/", 1)[1]
    first = personal_service.invited_account(token, secret=app.config["SECRET_KEY"])
    second = Account.get_by_id(first.id)  # read before the first form's POST committed

    personal_service.accept_invitation(first, GOOD_PASSWORD)
    with pytest.raises(personal_service.StaffProblem) as refused:
        personal_service.accept_invitation(second, "Otra-Clave-2026")

    assert refused.value.problem is personal_service.Problem.LINK_USED
    assert passwords.verify_password(fresh(first).password_hash, GOOD_PASSWORD)


def test_invite_page_and_own_page(admin, client):
    assert "Enviar invitación" in client.get(INVITE).get_data(as_text=True)

    own = client.get(page_of(admin)).get_data(as_text=True)

    assert "Esta es su propia cuenta" in own
    assert 'value="deshabilitar"' not in own
