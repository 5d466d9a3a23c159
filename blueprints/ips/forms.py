"""Forms of the IPS access pages, with the manual's labels (004_… §3, §4)."""

from __future__ import annotations

from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from blueprints.forms import REQUIRED, SpanishForm, email_field, normalized
from core.convenios_data import normalize_nit
from models import IpsOperador


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def correo_field() -> StringField:
    """The operator's own e-mail, spaces around it forgiven (a paste often brings them)."""
    field = email_field("Correo electrónico")
    field.kwargs["filters"] = [_strip]
    return field


def nit_field() -> StringField:
    """The IPS's NIT, with or without the check digit's "-"; dots and spaces ignored."""
    return StringField(
        "NIT",
        validators=[DataRequired(REQUIRED), Length(max=30), normalized(normalize_nit)],
        description="Con el dígito de verificación, por ejemplo 900111222-3.",
    )


class NitCorreoForm(SpanishForm):
    """NIT + Correo electrónico: who an operator is ("¿Olvidó su contraseña?")."""

    nit = nit_field()
    correo = correo_field()


class IngresoForm(NitCorreoForm):
    """ "Ingreso IPS": NIT, the operator's own e-mail, Contraseña."""

    password = PasswordField("Contraseña", validators=[DataRequired(REQUIRED), Length(max=256)])


class ClaveForm(SpanishForm):
    """A new password twice; the H1 rules are checked by the view with the operator's data."""

    password = PasswordField(
        "Nueva contraseña", validators=[DataRequired(REQUIRED), Length(max=256)]
    )
    confirm = PasswordField(
        "Confirmar contraseña",
        validators=[DataRequired(REQUIRED), EqualTo("password", "Las contraseñas no coinciden.")],
    )


class OperadorForm(SpanishForm):
    """A new operator of an IPS: the name messages are signed with, and the e-mail to sign in."""

    nombre = StringField(
        "Nombre completo",
        validators=[DataRequired(REQUIRED), Length(max=IpsOperador.nombre.max_length)],
        render_kw={"autocomplete": "off"},
    )
    correo = correo_field()
