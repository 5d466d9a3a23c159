"""Forms of the Génesis journeys, with the manual's labels (003_… §3–7)."""

from __future__ import annotations

from wtforms import BooleanField, HiddenField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from blueprints.forms import REQUIRED, DateText, SpanishForm, normalized
from core import colombia, genesis

PRIVACY_REQUIRED = "Para continuar lea la Política de Privacidad de Datos y marque «Acepto»."
CARTA_REQUIRED = "Para ingresar marque que leyó y acepta la carta de derechos y deberes."


def document_choices() -> list[SelectChoice]:
    """The document types an EPS affiliate signs in with, by their names."""
    return [SelectChoice(code, colombia.DOCUMENT_TYPES[code]) for code in genesis.DOCUMENT_TYPES]


class DocumentoForm(SpanishForm):
    """Tipo de documento + Número de documento, normalised ("1.000.000.101" → "1000000101")."""

    tipo_documento = SelectField("Tipo de documento", choices=document_choices(), default="CC")
    numero_documento = StringField(
        "Número de documento", validators=[DataRequired(REQUIRED), Length(max=25)]
    )

    def validate_numero_documento(self, field) -> None:
        if self.tipo_documento.errors:
            return  # the type's own message says it all
        try:
            field.data = colombia.normalize_document(self.tipo_documento.data, field.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


class LoginForm(DocumentoForm):
    password = PasswordField("Contraseña", validators=[DataRequired(REQUIRED), Length(max=256)])


class DatosForm(SpanishForm):
    """The proof of identity of "Registro al Sistema Génesis" and the consent."""

    ficha = HiddenField()
    celular = StringField(
        "Número Celular",
        validators=[DataRequired(REQUIRED), normalized(colombia.normalize_mobile)],
    )
    fecha_expedicion = DateText(
        "Fecha de expedición del documento",
        validators=[DataRequired(REQUIRED), normalized(colombia.parse_date)],
    )
    acepto = BooleanField("Acepto", validators=[DataRequired(PRIVACY_REQUIRED)])


class NuevaClaveForm(SpanishForm):
    """A new password twice; the H1 rules are checked by the view with the account's data."""

    password = PasswordField(
        "Nueva contraseña", validators=[DataRequired(REQUIRED), Length(max=256)]
    )
    confirm = PasswordField(
        "Confirmar contraseña",
        validators=[DataRequired(REQUIRED), EqualTo("password", "Las contraseñas no coinciden.")],
    )


class CodigoForm(NuevaClaveForm):
    """The SMS code and the new password."""

    codigo = StringField(
        "Código recibido por SMS",
        validators=[
            DataRequired(REQUIRED),
            Length(min=6, max=6, message="El código tiene 6 dígitos."),
        ],
    )


class CartaForm(SpanishForm):
    acepto = BooleanField(
        "He leído y acepto la carta de derechos y deberes",
        validators=[DataRequired(CARTA_REQUIRED)],
    )
