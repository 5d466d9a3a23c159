"""Back office: the admin manages staff accounts (invite by mail, roles, disable, second factor).

Also the public invitation page, where an invited person sets the first
password and goes on to enrol the second factor.
"""

from __future__ import annotations

from flask import abort, current_app, flash, render_template, request, url_for
from flask_login import current_user
from wtforms import PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from blueprints.accounts import live_password_check
from blueprints.auth import require, sign_in
from blueprints.forms import REQUIRED, SpanishForm, email_field
from blueprints.gestion import bp
from blueprints.gestion import personal_service as staff
from blueprints.gestion.personal_service import Problem, StaffProblem
from blueprints.queue import FilterForm, page_from_request, render_queue
from blueprints.web import limiter, render, see_other
from core import auth as core_auth
from core import passwords
from core.permissions import ROLE_NAMES, Action
from models import Account, StaffMember

LIST_PAGE, LIST_PARTIAL = "gestion/personal.html", "gestion/_personal_filas.html"
ORDER = (Account.created_at, Account.id)

STATE_NAMES = {
    staff.State.ACTIVE: "Activo",
    staff.State.INVITED: "Invitado (pendiente)",
    staff.State.DISABLED: "Deshabilitado",
}
ROLE_CHOICES = [SelectChoice(role.value, name) for role, name in ROLE_NAMES.items()]

# What each refusal says to the admin (the service names it, the view words it).
MESSAGES = {
    Problem.EMAIL_TAKEN: "Ya existe un funcionario con ese correo.",
    Problem.NO_ROLES: "Elija al menos un rol.",
    Problem.OWN_ADMIN: (
        "No puede quitarse a sí mismo el rol de Administración: pídaselo a otro administrador."
    ),
    Problem.OWN_ACCOUNT: (
        "No puede hacer esto con su propia cuenta: pídaselo a otro administrador."
    ),
    Problem.ALREADY_DISABLED: "Este funcionario ya estaba deshabilitado.",
    Problem.NOT_DISABLED: "Este funcionario ya estaba habilitado.",
    Problem.NOT_ENROLLED: "Este funcionario no tiene un segundo factor inscrito.",
    Problem.NOT_INVITED: "Este funcionario ya no tiene una invitación pendiente.",
}
LINK_MESSAGES = {
    Problem.LINK_USED: (
        "Este enlace de invitación ya fue usado: su contraseña ya está creada. "
        "Ingrese con su correo y contraseña."
    ),
    Problem.WITHDRAWN: (
        "Esta invitación ya no está vigente. Si la necesita, pida a un administrador "
        "que le envíe una nueva."
    ),
}


class Checkboxes(SelectMultipleField):
    """Several choices as checkboxes (the roles)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def roles_field() -> Checkboxes:
    """The roles of a staff member: at least one."""
    return Checkboxes(
        "Roles", choices=ROLE_CHOICES, validators=[DataRequired(MESSAGES[Problem.NO_ROLES])]
    )


class StaffFilters(FilterForm):
    correo = StringField(
        "Correo electrónico (o parte)",
        validators=[Optional(), Length(max=254)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    rol = SelectField("Rol", choices=[SelectChoice("", "Todos"), *ROLE_CHOICES], default="")
    estado = SelectField(
        "Estado",
        choices=[SelectChoice("", "Todos")]
        + [SelectChoice(state.value, name) for state, name in STATE_NAMES.items()],
        default="",
    )


class InviteForm(SpanishForm):
    nombre = StringField(
        "Nombre completo",
        validators=[DataRequired(REQUIRED), Length(max=StaffMember.nombre.max_length)],
        render_kw={"autocomplete": "off"},
    )
    correo = email_field("Correo electrónico")
    roles = roles_field()


class RolesForm(SpanishForm):
    roles = roles_field()


class InvitationPasswordForm(SpanishForm):
    """The first password; the rules are checked by the view with the account's data."""

    password = PasswordField("Nueva contraseña", validators=[DataRequired(REQUIRED)])
    confirm = PasswordField(
        "Confirmar contraseña",
        validators=[DataRequired(REQUIRED), EqualTo("password", "Las contraseñas no coinciden.")],
    )


def _secret() -> str:
    return current_app.config["SECRET_KEY"]


def _base_url() -> str:
    return current_app.config["BASE_URL"]


# --- the list -------------------------------------------------------------------


@bp.get("/personal")
@require(Action.MANAGE_STAFF)
def personal():
    """List the staff accounts, newest first, filtered by e-mail, role and state."""
    form = StaffFilters()
    context = {"title": "Funcionarios", "form": form, "roles": ROLE_NAMES, "states": STATE_NAMES}
    if not form.validate():
        return render_queue(LIST_PAGE, LIST_PARTIAL, 422, page=None, **context)
    query = staff.staff_query(form.correo.data or "", form.rol.data or "", form.estado.data or "")
    page = page_from_request(query, order=ORDER)
    staff.add_roles_and_last_sign_in(page.rows)
    return render_queue(LIST_PAGE, LIST_PARTIAL, page=page, **context)


# --- inviting -------------------------------------------------------------------


@bp.route("/personal/invitar", methods=["GET", "POST"])
@require(Action.MANAGE_STAFF)
def invitar():
    """Create a staff account and mail the person a link to set the password."""
    form = InviteForm()
    if form.validate_on_submit():
        try:
            account = staff.invite(
                current_user,
                form.correo.data,
                form.nombre.data,
                form.roles.data,
                secret=_secret(),
                base_url=_base_url(),
                ip=request.remote_addr,
            )
        except StaffProblem as exc:
            field = form.correo if exc.problem is Problem.EMAIL_TAKEN else form.roles
            field.errors.append(MESSAGES[exc.problem])
        else:
            flash(
                f"Invitación enviada a {account.email}. El enlace vence en {staff.INVITE_LASTS}.",
                "ok",
            )
            return see_other(url_for("gestion.funcionario", account_id=account.id))
    status = 422 if any(f.errors for f in form) else 200
    return render(
        "gestion/funcionario.html",
        status=status,
        title="Invitar funcionario",
        member=None,
        invite_form=form,
        roles=ROLE_NAMES,
    )


# --- one staff member ---------------------------------------------------------------


def _member_page(
    member: Account, roles_form: RolesForm | None = None, *, error: str = "", status: int = 200
):
    """Render a staff member's data, roles form and action buttons."""
    current = staff.roles_of(member)
    if roles_form is None:
        roles_form = RolesForm(formdata=None, roles=current)
    return render(
        "gestion/funcionario.html",
        status=status,
        title=member.nombre,
        member=member,
        current_roles=current,
        roles_form=roles_form,
        roles=ROLE_NAMES,
        states=STATE_NAMES,
        last_sign_in=staff.last_sign_in(member),
        is_self=member.id == current_user.id,
        error=error,
    )


# What each button of a staff member's page does, and what the admin is told after.
DONE = {
    "deshabilitar": "Funcionario deshabilitado: se cerraron sus sesiones y ya no puede ingresar.",
    "habilitar": "Funcionario habilitado.",
    "segundo_factor": (
        "Segundo factor reiniciado: se cerraron sus sesiones y al ingresar inscribirá "
        "su aplicación de nuevo. Le avisamos por correo."
    ),
    "reinvitar": "Enviamos un enlace de invitación nuevo a {email}.",
}


@bp.route("/personal/<int:account_id>", methods=["GET", "POST"])
@require(Action.MANAGE_STAFF)
def funcionario(account_id: int):
    """Show a staff member; its forms change the roles, the state or the second factor."""
    member = staff.staff_account(account_id) or abort(404)
    if request.method == "GET":
        return _member_page(member)
    action = request.form.get("accion", "")
    if action == "roles":
        return _save_roles(member)
    if action not in DONE:
        abort(400)
    try:
        _run(action, member)
    except StaffProblem as exc:
        if exc.problem is Problem.OWN_ACCOUNT:
            return _member_page(member, error=MESSAGES[exc.problem], status=422)
        # A second click, or another admin first: the state is already what was asked.
        flash(MESSAGES[exc.problem], "info")
    else:
        flash(DONE[action].format(email=member.email), "ok")
    return see_other(url_for("gestion.funcionario", account_id=member.id))


def _save_roles(member: Account):
    """Replace a staff member's roles from the checkboxes."""
    form = RolesForm()
    if form.validate_on_submit():
        try:
            changed = staff.set_roles(current_user, member, form.roles.data, ip=request.remote_addr)
        except StaffProblem as exc:
            form.roles.errors.append(MESSAGES[exc.problem])
        else:
            flash("Roles guardados." if changed else "Los roles no cambiaron.", "ok")
            return see_other(url_for("gestion.funcionario", account_id=member.id))
    return _member_page(member, form, status=422)


def _run(action: str, member: Account) -> None:
    """Call the service behind one button (StaffProblem when it cannot act)."""
    ip = request.remote_addr
    if action == "deshabilitar":
        staff.disable(current_user, member, ip=ip)
    elif action == "habilitar":
        staff.enable(current_user, member, ip=ip)
    elif action == "segundo_factor":
        staff.reset_second_factor(current_user, member, base_url=_base_url(), ip=ip)
    elif action == "reinvitar":
        staff.reinvite(member, secret=_secret(), base_url=_base_url())


# --- the invitation link (public) -----------------------------------------------------


def _link_refused(exc: Exception):
    """Render why an invitation link cannot be used (410: this link is done)."""
    if isinstance(exc, StaffProblem):
        message = LINK_MESSAGES[exc.problem]
    else:
        message = str(exc)
    return render_template("gestion/invitacion.html", message=message, form=None), 410


@bp.route("/invitacion/<token>", methods=["GET", "POST"])
@limiter.limit("10/minute", methods=["POST"])
def invitacion(token: str):
    """Let an invited person set the first password; a GET only reads (mail scanners)."""
    try:
        account = staff.invited_account(token, secret=_secret())
    except (core_auth.AccountError, StaffProblem) as exc:
        return _link_refused(exc)
    form = InvitationPasswordForm()
    if form.validate_on_submit():
        problems = core_auth.password_problems_for(account, form.password.data)
        if not problems:
            try:
                staff.accept_invitation(account, form.password.data)
            except (core_auth.AccountError, StaffProblem) as exc:
                return _link_refused(exc)
            sign_in(account)  # the second factor is still to come: enrolment is next
            flash("Su contraseña quedó creada. Ahora inscriba su segundo factor.", "ok")
            return see_other(url_for("gestion.inscribir"))
        form.password.errors.append(" ".join(problems))
    status = 422 if request.method == "POST" else 200
    return render_template(
        "gestion/invitacion.html",
        form=form,
        token=token,
        member=account,
        rules=passwords.RULES,
        advice=passwords.ADVICE,
        message="",
    ), status


@bp.post("/invitacion/<token>/clave")
@limiter.limit("60/minute;600/hour")
def invitacion_clave(token: str):
    """Check the first password as the person types, with the data of the link's account."""
    form = InvitationPasswordForm()
    try:
        account = staff.invited_account(token, secret=_secret())
    except (core_auth.AccountError, StaffProblem) as exc:
        form.password.data = ""  # nothing is checked against an unknown account
        message = LINK_MESSAGES[exc.problem] if isinstance(exc, StaffProblem) else str(exc)
        return live_password_check(form, [], 410, message=message)
    return live_password_check(
        form, core_auth.password_problems_for(account, form.password.data or "")
    )
