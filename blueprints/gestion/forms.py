"""Forms of the back office's own sign-in."""

from __future__ import annotations

from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from blueprints.forms import REQUIRED, SpanishForm


class StaffLoginForm(SpanishForm):
    # As at Hanna's login: any text; the account look-up is the check (spaces are trimmed).
    email = StringField("Correo electrónico", validators=[DataRequired(REQUIRED), Length(max=254)])
    password = PasswordField("Contraseña", validators=[DataRequired(REQUIRED), Length(max=256)])


class CodeForm(SpanishForm):
    code = StringField(
        "Código de verificación",
        validators=[DataRequired(REQUIRED), Length(max=32, message="Código no válido.")],
    )
