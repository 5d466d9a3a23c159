"""The unblock queue (H2): users the activation quiz or the SMS codes blocked."""

from __future__ import annotations

from flask import abort, current_app, flash, request, url_for
from flask_login import current_user
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from blueprints.auth import require
from blueprints.forms import REQUIRED, SpanishForm
from blueprints.gestion import bp
from blueprints.gestion import service as gestion
from blueprints.queue import FilterForm, page_from_request, render_queue
from blueprints.web import render, see_other
from core.permissions import Action
from models import HannaUser


class BlockedFilters(FilterForm):
    documento = StringField("Número de documento", validators=[Optional(), Length(max=20)])
    correo = StringField("Correo electrónico", validators=[Optional(), Length(max=254)])


class UnblockForm(SpanishForm):
    decision = RadioField(
        "Qué hacer",
        choices=[
            SelectChoice(
                gestion.Unblock.RETRY.value,
                "Permitir 3 intentos nuevos de las preguntas (se envía un enlace nuevo)",
            ),
            SelectChoice(
                gestion.Unblock.ACTIVATE.value,
                "Activar la cuenta: verifiqué la identidad por otro medio",
            ),
        ],
        validators=[DataRequired("Elija qué hacer.")],
    )
    verified_by = SelectField(
        "Cómo verificó la identidad (solo al activar)",
        # No Optional(): it would stop the chain on a blank choice, before
        # validate_verified_by could ask for it when activating.
        choices=[
            SelectChoice("", "— Elija —"),
            *(SelectChoice(key, label) for key, label in gestion.VERIFIED_BY.items()),
        ],
    )
    reason = TextAreaField(
        "Motivo",
        validators=[
            DataRequired(REQUIRED),
            Length(min=10, max=1000, message="Escriba el motivo (entre 10 y 1000 caracteres)."),
        ],
    )

    def validate_verified_by(self, field) -> None:
        """Ask how the identity was checked, only when activating."""
        if self.decision.data == gestion.Unblock.ACTIVATE and not field.data:
            raise ValidationError("Diga cómo verificó la identidad para activar la cuenta.")


ALREADY_DONE = "Este usuario ya no está bloqueado: otra persona lo atendió."

REASONS = gestion.BLOCK_REASONS


@bp.get("/desbloqueos")
@require(Action.UNBLOCK_USERS)
def desbloqueos():
    """List the blocked users, the longest waiting first."""
    form = BlockedFilters()
    if not form.validate():
        return render_queue(
            "gestion/desbloqueos.html",
            "gestion/_desbloqueos_filas.html",
            422,
            form=form,
            page=None,
            reasons=REASONS,
        )
    query = gestion.blocked_queue(form.documento.data or "", form.correo.data or "")
    page = page_from_request(query, order=(HannaUser.blocked_at, HannaUser.account), ascending=True)
    return render_queue(
        "gestion/desbloqueos.html",
        "gestion/_desbloqueos_filas.html",
        form=form,
        page=page,
        reasons=REASONS,
    )


@bp.route("/desbloqueos/<int:account_id>", methods=["GET", "POST"])
@require(Action.UNBLOCK_USERS)
def desbloqueo(account_id: int):
    """Show one blocked user and unblock them with a written reason."""
    user = gestion.blocked_user(account_id)
    if user is None:
        if request.method == "POST":
            # A replayed form, or one a colleague's decision overtook: say so, change nothing.
            flash(ALREADY_DONE, "info")
            return see_other(url_for("gestion.desbloqueos"))
        abort(404)
    form = UnblockForm()
    if form.validate_on_submit():
        try:
            gestion.unblock(
                current_user,
                user.id,
                gestion.Unblock(form.decision.data),
                form.reason.data.strip(),
                verified_by=form.verified_by.data or "",
                secret=current_app.config["SECRET_KEY"],
                base_url=current_app.config["BASE_URL"],
                ip=request.remote_addr,
            )
        except gestion.StaffError as exc:
            flash(str(exc), "error")
            return see_other(url_for("gestion.desbloqueos"))
        done = (
            "recibirá un enlace para intentarlo de nuevo"
            if form.decision.data == gestion.Unblock.RETRY
            else "ya puede ingresar"
        )
        flash(f"Usuario desbloqueado: {user.email} {done}. Le avisamos por correo.", "ok")
        return see_other(url_for("gestion.desbloqueos"))
    status = 422 if form.errors else 200
    return render("gestion/desbloqueo.html", status=status, form=form, user=user, reasons=REASONS)
