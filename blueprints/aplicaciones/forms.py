"""Forms of "Solicitud de Aplicaciones" and of staff's decision on a request."""

from __future__ import annotations

import re
import secrets

from flask import request
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from flask_wtf.form import SUBMIT_METHODS, _Auto
from werkzeug.datastructures import MultiDict
from wtforms import HiddenField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from blueprints.aplicaciones import service
from blueprints.forms import REQUIRED, normalized
from core import colombia

FILE_FIELD = "soporte"
FORM_KEY = re.compile(r"\A[A-Za-z0-9_-]{43}\Z")  # what new_form_key() makes


def new_form_key() -> str:
    """Return the random key that makes one request out of one shown form."""
    return secrets.token_urlsafe(32)


def _nit(value: str) -> str:
    nit = colombia.normalize_document("NI", value)
    if len(nit) > 15:  # the column's width; no DIAN NIT is that long
        raise ValueError("El NIT es demasiado largo: revise los dígitos.")
    return nit


def _int_or_none(value):
    """Coerce a submitted id; anything else becomes None, which validation then refuses."""
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class BaseForm(FlaskForm):
    """A form with WTForms' Spanish messages that reads text only from the text parts."""

    class Meta:
        locales = ("es",)
        csrf = False  # MaskedCSRFProtect checks every POST (blueprints/forms.SpanishForm)

        def wrap_formdata(self, form, formdata):
            # Files only where a FileField waits for one: a file part under a text
            # field's name would reach its validators as a FileStorage (a 500).
            if formdata is not _Auto:
                return formdata
            if request.method not in SUBMIT_METHODS:
                return None
            data = MultiDict((k, v) for k, v in request.form.items(multi=True) if k != FILE_FIELD)
            wanted = [name for name, f in form._fields.items() if isinstance(f, FileField)]
            for name in wanted:
                data.setlist(name, request.files.getlist(name)[:1])
            return data


class SolicitudForm(BaseForm):
    """ "Solicitud de Aplicaciones" for CONVENIOS: who the entity is, and a supporting PDF."""

    form_key = HiddenField()
    nit = StringField(
        "NIT de la entidad",
        filters=[_strip],
        validators=[DataRequired(REQUIRED), Length(max=25), normalized(_nit)],
    )
    entidad_nombre = StringField(
        "Nombre de la entidad",
        filters=[_strip],
        validators=[DataRequired(REQUIRED), Length(max=160)],
    )
    sedes = TextAreaField(
        "Sede(s)",
        filters=[_strip],
        validators=[DataRequired(REQUIRED), Length(max=1000)],
    )
    telefono = StringField(
        "Teléfono de contacto",
        filters=[_strip],
        validators=[DataRequired(REQUIRED), Length(max=25), normalized(colombia.normalize_phone)],
    )
    soporte = FileField(
        "Documento soporte (PDF)",
        validators=[FileRequired("Adjunte el documento soporte en PDF (máximo 5 MB).")],
    )

    def has_valid_key(self) -> bool:
        """Tell whether the hidden form_key is one this portal could have made."""
        return bool(FORM_KEY.match(self.form_key.data or ""))

    def request_data(self) -> service.RequestData:
        """Return the validated fields for the service."""
        return service.RequestData(
            nit=self.nit.data,
            entidad_nombre=self.entidad_nombre.data,
            sedes=self.sedes.data,
            telefono=self.telefono.data,
        )


class CheckboxesField(SelectMultipleField):
    """Several choices as checkboxes (the sedes of an entity)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class AprobarForm(BaseForm):
    """Aprobar: the entity and at least one of its active sedes."""

    entidad = SelectField("Entidad", coerce=_int_or_none, validate_choice=False)
    sedes = CheckboxesField("Sedes", coerce=_int_or_none, validate_choice=False)

    def validate_entidad(self, field) -> None:
        if field.data is None or field.data not in {c.value for c in self.entidad.choices}:
            raise ValidationError("Elija una entidad activa de la lista.")

    def validate_sedes(self, field) -> None:
        offered = {c.value for c in self.sedes.choices}
        if not field.data:
            raise ValidationError("Elija al menos una sede.")
        if not set(field.data) <= offered:
            raise ValidationError("Elija sedes activas de la entidad elegida.")


class RechazarForm(BaseForm):
    """Rechazar: the reason the user will read."""

    motivo = TextAreaField(
        "Motivo del rechazo",
        filters=[_strip],
        validators=[
            DataRequired("Escriba el motivo del rechazo."),
            Length(
                min=service.MOTIVO_MIN,
                max=service.MOTIVO_MAX,
                message=(
                    f"El motivo debe tener entre {service.MOTIVO_MIN} y "
                    f"{service.MOTIVO_MAX} caracteres."
                ),
            ),
        ],
    )
