"""Forms of the virtual office (003_… §8–10): contact data, "Solicitud de Autorizaciones",
and "Actualización Datos Básicos".

Files never pass through these forms (SpanishForm reads the text parts only):
the view hands request.files to core.genesis, which checks them by content.
"""

from __future__ import annotations

import re
import secrets

import email_validator
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from blueprints.forms import REQUIRED, SpanishForm, normalized
from core import colombia, genesis
from core.convenios_data import departamentos, municipios

FORM_KEY = re.compile(r"\A[A-Za-z0-9_-]{43}\Z")  # what new_form_key() makes
NO_DEPARTAMENTO = "Elija el departamento de la lista."
NO_MUNICIPIO = "Elija el municipio de la lista del departamento."
EMAIL_ERROR = "Escriba un correo electrónico válido, como nombre@correo.com."


def new_form_key() -> str:
    """Return the random key that makes one request out of one shown form."""
    return secrets.token_urlsafe(32)


def _strip(value):
    return " ".join(value.split()) if isinstance(value, str) else value


def _email(_form, field) -> None:
    """Check an optional e-mail without a DNS look-up, and keep it in lower case."""
    if not field.data:
        return
    try:
        email_validator.validate_email(field.data, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        raise ValidationError(EMAIL_ERROR) from exc
    field.data = field.data.lower()


def departamento_choices() -> list[SelectChoice]:
    """The 33 departments (DIVIPOLA), by name."""
    return [SelectChoice("", "Elija el departamento")] + [
        SelectChoice(towns[0].departamento_codigo, name) for name, towns in departamentos()
    ]


DEPARTAMENTOS = frozenset(towns[0].departamento_codigo for _name, towns in departamentos())


def municipio_choices(departamento: str | None) -> list[SelectChoice]:
    """The municipalities of one department, by name (none until a department is chosen)."""
    for _name, towns in departamentos():
        if towns[0].departamento_codigo == departamento:
            return [SelectChoice("", "Elija el municipio")] + [
                SelectChoice(m.codigo, m.nombre) for m in towns
            ]
    return [SelectChoice("", "Elija primero el departamento")]


class PlaceForm(SpanishForm):
    """Departamento → Municipio: the second list depends on the first (DIVIPOLA)."""

    departamento = SelectField(
        "Departamento",
        choices=departamento_choices(),
        validate_choice=False,
        validators=[DataRequired(NO_DEPARTAMENTO)],
    )
    municipio = SelectField(
        "Municipio", choices=[], validate_choice=False, validators=[DataRequired(NO_MUNICIPIO)]
    )

    def set_places(self, departamento: str | None = None) -> None:
        """Offer the municipalities of the chosen (or given) department; fill it in from the town."""
        if departamento is not None:
            self.departamento.data = departamento
        town = municipios().get(self.municipio.data or "")
        if not self.departamento.data and town is not None:
            self.departamento.data = town.departamento_codigo
        self.municipio.choices = municipio_choices(self.departamento.data)

    def validate_departamento(self, field) -> None:
        if field.data not in DEPARTAMENTOS:
            raise ValidationError(NO_DEPARTAMENTO)

    def validate_municipio(self, field) -> None:
        town = municipios().get(field.data or "")
        if town is None or town.departamento_codigo != self.departamento.data:
            raise ValidationError(NO_MUNICIPIO)


class ContactoForm(PlaceForm):
    """The member's contact data (celular, correo, dirección, municipio), to update."""

    celular = StringField(
        "Celular",
        filters=[_strip],
        validators=[
            DataRequired(REQUIRED),
            Length(max=20),
            normalized(colombia.normalize_mobile),
        ],
    )
    email = StringField(
        "Correo electrónico",
        filters=[_strip],
        validators=[Optional(), Length(max=254, message=EMAIL_ERROR), _email],
    )
    direccion = StringField(
        "Dirección",
        filters=[_strip],
        validators=[
            DataRequired(REQUIRED),
            Length(
                min=genesis.DIRECCION_MIN,
                max=160,
                message="Escriba la dirección completa (entre 5 y 160 caracteres).",
            ),
        ],
    )

    def values(self) -> dict[str, str]:
        """Return the validated contact fields for core.genesis.update_contact."""
        return {
            "celular": self.celular.data,
            "email": self.email.data or "",
            "direccion": self.direccion.data,
            "municipio": self.municipio.data,
        }


class DatosForm(ContactoForm):
    """G5 "Actualizar Información": the contact data and the optional fixed line."""

    telefono = StringField(
        "Teléfono fijo",
        filters=[_strip],
        validators=[Optional(), Length(max=20), normalized(colombia.normalize_phone)],
    )

    def values(self) -> dict[str, str]:
        """Return the validated basic data for core.genesis.update_basic_data."""
        return super().values() | {"telefono": self.telefono.data or ""}


class SolicitudForm(PlaceForm):
    """A new authorization request: where the member lives, what is needed (the file apart)."""

    form_key = HiddenField()
    observacion = TextAreaField(
        "Observación",
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        validators=[
            DataRequired("Escriba la observación: el servicio que necesita y para qué."),
            Length(
                max=genesis.OBSERVACION_MAX,
                message=f"La observación puede tener hasta {genesis.OBSERVACION_MAX} caracteres.",
            ),
        ],
    )

    def has_valid_key(self) -> bool:
        """Tell whether the hidden form_key is one this portal could have made."""
        return bool(FORM_KEY.match(self.form_key.data or ""))
