"""The desk's forms: the sede, the cédula to look up, and "Reportar Uso"."""

from __future__ import annotations

from wtforms import HiddenField, RadioField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, ValidationError

from blueprints.forms import REQUIRED, SpanishForm
from core import convenios


def _int_or_none(value):
    """Coerce a submitted id: ASCII digits only (int() also reads "١" and " 7 ")."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 16:
        return int(value)
    return None


class SedeForm(SpanishForm):
    """Choose the sede en convenio this session works for."""

    sede = RadioField(
        "Sede en convenio",
        coerce=_int_or_none,
        validators=[InputRequired("Elija la sede en la que está atendiendo.")],
        validate_choice=True,
    )


class ConsultaForm(SpanishForm):
    """EMPRESAS EN CONVENIOS: the cédula of the person at the desk."""

    documento = StringField("Cédula", validators=[DataRequired(REQUIRED), Length(max=40)])

    def validate_documento(self, field) -> None:
        problem = convenios.document_problem(field.data)
        if problem:
            raise ValidationError(problem)
        field.data = convenios.normalize_document(field.data)


class UsoForm(SpanishForm):
    """ "Reportar Uso": the look-up's key, so one look-up records one use whatever happens."""

    clave = HiddenField(validators=[DataRequired(), Length(max=32)])
