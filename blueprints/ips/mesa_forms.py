"""Forms of the IPS help desk: a new case (I2), the case's filters (I3) and a message.

The files never pass through these forms (SpanishForm reads the text parts
only): the views hand request.files to core.mesa, which checks each by content.
Motivo and Asunto take their choices from the database at each request, so an
asunto is accepted only under the motivo it belongs to.
"""

from __future__ import annotations

import re
import secrets

from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from blueprints.forms import SpanishForm
from blueprints.queue import FilterForm
from core import mesa

FORM_KEY = re.compile(r"\A[A-Za-z0-9_-]{43}\Z")  # what new_form_key() makes
NO_MOTIVO = "Elija el motivo."
NO_ASUNTO = "Elija el asunto."
OTHER_ASUNTO = "Ese asunto no es del motivo elegido: elija uno de la lista."
NO_DESCRIPCION = "Escriba la descripción: qué pasa y qué necesita."
DESCRIPCION_LARGA = f"La descripción puede tener hasta {mesa.DESCRIPCION_MAX} caracteres."
MENSAJE_LARGO = f"El mensaje puede tener hasta {mesa.MENSAJE_MAX} caracteres."
NUMERO_ERROR = "Escriba el número del caso, solo dígitos, como 40912."
NUMERO_MAX = 9  # digits: far above any case number, far below what a database column holds


def new_form_key() -> str:
    """Return the random key that makes one case out of one shown form."""
    return secrets.token_urlsafe(32)


def _text(value):
    """Strip the text and count a line break once, as the browser's maxlength does."""
    if not isinstance(value, str):
        return value
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def _id(value: str | None) -> int | None:
    text = value or ""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


class MesaForm(SpanishForm):
    """ "Mesa de Ayuda – Mesa de Ayuda": Motivo → Asunto, Descripción (the files apart)."""

    form_key = HiddenField()
    motivo = SelectField("Motivo", validate_choice=False)
    asunto = SelectField("Asunto", validate_choice=False)
    descripcion = TextAreaField(
        "Descripción",
        filters=[_text],
        validators=[
            DataRequired(NO_DESCRIPCION),
            Length(max=mesa.DESCRIPCION_MAX, message=DESCRIPCION_LARGA),
        ],
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.motivo.flags.required = self.asunto.flags.required = True
        self._motivos = {m.id: m for m in mesa.motivos()}
        self.motivo.choices = [SelectChoice("", "Seleccione el motivo")] + [
            SelectChoice(str(m.id), m.nombre) for m in self._motivos.values()
        ]
        self._asuntos = {a.id: a for a in mesa.asuntos_of(self.chosen_motivo_id)}
        first = "Seleccione el asunto" if self._asuntos else "Primero elija el motivo"
        self.asunto.choices = [SelectChoice("", first)] + [
            SelectChoice(str(a.id), a.nombre) for a in self._asuntos.values()
        ]

    @property
    def chosen_motivo_id(self) -> int | None:
        """The motivo chosen, if it is an active one."""
        found = _id(self.motivo.data)
        return found if found in self._motivos else None

    def validate_motivo(self, field) -> None:
        if self.chosen_motivo_id is None:
            raise ValidationError(NO_MOTIVO)

    def validate_asunto(self, field) -> None:
        if not field.data:
            raise ValidationError(NO_ASUNTO)
        if self.chosen_motivo_id is None:
            raise ValidationError(NO_ASUNTO)  # the motivo's own error says what to fix first
        if _id(field.data) not in self._asuntos:
            raise ValidationError(OTHER_ASUNTO)

    def has_valid_key(self) -> bool:
        """Tell whether the hidden form_key is one this portal could have made."""
        return bool(FORM_KEY.match(self.form_key.data or ""))

    @property
    def chosen(self):
        """Return the validated (motivo, asunto) rows."""
        return self._motivos[self.chosen_motivo_id], self._asuntos[_id(self.asunto.data)]


class MensajeForm(SpanishForm):
    """A message in the case's thread ("Mensaje..", the files apart, "ENVIAR")."""

    texto = TextAreaField(
        "Mensaje",
        filters=[_text],
        validators=[Optional(), Length(max=mesa.MENSAJE_MAX, message=MENSAJE_LARGO)],
    )


def _numero(_form, field) -> None:
    text = (field.data or "").strip()
    if not text:
        field.data = None
        return
    if not (text.isascii() and text.isdigit() and len(text) <= NUMERO_MAX):
        raise ValidationError(NUMERO_ERROR)
    field.data = int(text)


class SolicitudesFilters(FilterForm):
    """ "Mis Solicitudes": by estado, and one case by its number."""

    estado = SelectField(
        "Estado",
        choices=[SelectChoice("", "Todos")] + [SelectChoice(k, v) for k, v in mesa.ESTADOS.items()],
        default="",
    )
    numero = StringField(
        "Numero del Caso",
        validators=[_numero],
        render_kw={"inputmode": "numeric", "autocomplete": "off", "maxlength": NUMERO_MAX},
    )
