"""Forms of the PQRSF pages: filing one (G7) and "Consulta PQRDS" (G6).

The file never passes through these forms (SpanishForm reads the text parts
only): the view hands request.files to core.pqrs, which checks it by content.
"""

from __future__ import annotations

import re
import secrets

import email_validator
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from blueprints.forms import SpanishForm, normalized
from core import colombia, pqrs

FORM_KEY = re.compile(r"\A[A-Za-z0-9_-]{43}\Z")  # what new_form_key() makes
EMAIL_ERROR = "Escriba un correo electrónico válido, como nombre@correo.com."
CONTACT_REQUIRED = "Escriba un correo electrónico o un celular: por ahí le avisamos."
NO_TIPO = "Elija el tipo de PQRSF."
NO_TIPO_DOCUMENTO = "Elija el tipo de documento."
RADICADO_ERROR = "Escriba el código tal como se lo dimos, por ejemplo PQR-2026-7K3M9Q."

TIPO_CHOICES = [SelectChoice("", "Elija el tipo")] + [
    SelectChoice(t.code, t.nombre) for t in pqrs.TIPOS.values()
]
DOCUMENTO_CHOICES = [SelectChoice("", "Elija el tipo de documento")] + [
    SelectChoice(code, name) for code, name in colombia.DOCUMENT_TYPES.items()
]


def new_form_key() -> str:
    """Return the random key that makes one PQRSF out of one shown form."""
    return secrets.token_urlsafe(32)


def _squeeze(value):
    return " ".join(value.split()) if isinstance(value, str) else value


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _email(_form, field) -> None:
    """Check an optional e-mail without a DNS look-up, and keep it in lower case."""
    if not field.data:
        return
    try:
        email_validator.validate_email(field.data, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        raise ValidationError(EMAIL_ERROR) from exc
    field.data = field.data.lower()


def _one_of(choices, message: str):
    """Build a validator that accepts only the codes of a choice list (never the empty one)."""
    allowed = frozenset(c.value for c in choices if c.value)

    def check(_form, field) -> None:
        if field.data not in allowed:
            raise ValidationError(message)

    check.field_flags = {"required": True}  # the label shows the asterisk
    return check


class _DocumentoForm(SpanishForm):
    """Tipo de documento + Número: the number is normalised for its type."""

    tipo_documento = SelectField(
        "Tipo de documento",
        choices=DOCUMENTO_CHOICES,
        validate_choice=False,
        validators=[_one_of(DOCUMENTO_CHOICES, NO_TIPO_DOCUMENTO)],
    )
    numero_documento = StringField(
        "Número de documento",
        filters=[_squeeze],
        validators=[DataRequired("Escriba el número de documento."), Length(max=30)],
    )

    def validate_numero_documento(self, field) -> None:
        if self.tipo_documento.data not in colombia.DOCUMENT_TYPES:
            return  # the type's own error says what to fix first
        try:
            field.data = colombia.normalize_document(self.tipo_documento.data, field.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


class RadicarForm(_DocumentoForm):
    """A new PQRSF: type, who files it, how to reach them, what it is about (the file apart)."""

    form_key = HiddenField()
    cuenta = HiddenField()  # the blocked page's signed link, checked again on every POST
    tipo = SelectField(
        "Tipo de PQRSF",
        choices=TIPO_CHOICES,
        validate_choice=False,
        validators=[_one_of(TIPO_CHOICES, NO_TIPO)],
    )
    nombre = StringField(
        "Nombres y apellidos",
        filters=[_squeeze],
        validators=[
            DataRequired("Escriba sus nombres y apellidos."),
            Length(max=pqrs.NOMBRE_MAX, message="Escriba hasta 160 caracteres."),
        ],
    )
    email = StringField(
        "Correo electrónico",
        filters=[_squeeze],
        validators=[Optional(), Length(max=254, message=EMAIL_ERROR), _email],
    )
    celular = StringField(
        "Celular",
        filters=[_squeeze],
        validators=[Optional(), Length(max=20), normalized(colombia.normalize_mobile)],
    )
    descripcion = TextAreaField(
        "Descripción",
        filters=[_strip],
        validators=[
            DataRequired("Escriba la descripción: qué pasó y qué solicita."),
            Length(
                max=pqrs.DESCRIPCION_MAX,
                message=f"La descripción puede tener hasta {pqrs.DESCRIPCION_MAX} caracteres.",
            ),
        ],
    )
    captcha = StringField("Captcha")

    def validate(self, extra_validators=None) -> bool:
        """Check each field, then that at least one contact was given."""
        valid = super().validate(extra_validators)
        if not (self.email.data or self.celular.data or self.email.errors or self.celular.errors):
            self.email.errors = [*self.email.errors, CONTACT_REQUIRED]
            valid = False
        return valid

    def has_valid_key(self) -> bool:
        """Tell whether the hidden form_key is one this portal could have made."""
        return bool(FORM_KEY.match(self.form_key.data or ""))

    def filing(self) -> pqrs.Filing:
        """Return the validated fields for core.pqrs.file."""
        return pqrs.Filing(
            tipo=self.tipo.data,
            tipo_documento=self.tipo_documento.data,
            numero_documento=self.numero_documento.data,
            nombre=self.nombre.data,
            email=self.email.data or "",
            celular=self.celular.data or "",
            descripcion=self.descripcion.data,
        )


class ConsultaForm(_DocumentoForm):
    """ "Consulta PQRDS": Tipo de documento + Número de documento + Código de la PQRDS."""

    radicado = StringField(
        "Código de la PQRDS",
        filters=[_squeeze],
        validators=[DataRequired("Escriba el código de la PQRDS."), Length(max=40)],
    )

    def validate_radicado(self, field) -> None:
        cleaned = pqrs.clean_radicado(field.data)
        if cleaned is None:
            raise ValidationError(RADICADO_ERROR)
        field.data = cleaned


class InformacionForm(SpanishForm):
    """The citizen's answer to staff's "Pedir información", sent from Consulta PQRDS."""

    ficha = HiddenField()
    informacion = TextAreaField(
        "Información solicitada",
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        validators=[
            DataRequired("Escriba la información que le pidieron."),
            Length(max=2000, message="La información puede tener hasta 2000 caracteres."),
        ],
    )
