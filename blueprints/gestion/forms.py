"""Forms of the back office's own sign-in."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from blueprints.accounts.forms import REQUIRED, email_field


class StaffLoginForm(FlaskForm):
    email = email_field("Correo electrónico")
    password = PasswordField("Contraseña", validators=[DataRequired(REQUIRED), Length(max=256)])


class CodeForm(FlaskForm):
    code = StringField(
        "Código de verificación",
        validators=[DataRequired(REQUIRED), Length(max=32, message="Código no válido.")],
    )
