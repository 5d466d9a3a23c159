"""Forms of the help desk's staff side: the queue's filters, a case's actions, motivos, saved replies.

Several forms of one kind share a page (a motivo's, an asunto's, a saved
reply's): each gets a WTForms prefix ("m12-nombre"), so ids stay unique and a
refused one comes back with its errors in its own place.
"""

from __future__ import annotations

from wtforms import BooleanField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from blueprints.forms import REQUIRED, SpanishForm, normalized
from blueprints.gestion import mesa_service as service
from blueprints.queue import FilterForm
from core import mesa
from models import CasoMesa

FILTRO_ESTADOS = {
    service.POR_RESPONDER: "Por responder",
    CasoMesa.NUEVO: "Nuevo",
    CasoMesa.ESPERA_MESA: "En espera de la mesa",
    CasoMesa.ESPERA_IPS: "En espera de la IPS",
    CasoMesa.CERRADO: "Cerrado",
}
TEXTO_ERROR = f"Escriba entre {service.TEXTO_MIN} y {service.TEXTO_MAX} caracteres."
HORAS_ERROR = (
    f"Escriba las horas hábiles de atención: un número entero entre {service.HORAS_MIN} "
    f"y {service.HORAS_MAX}."
)
GUARDADA_ERROR = (
    f"Escriba el texto de la respuesta: entre {service.GUARDADA_MIN} y "
    f"{service.GUARDADA_MAX} caracteres."
)


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _text(label: str, low: int, high: int, message: str, **kwargs) -> TextAreaField:
    return TextAreaField(
        label,
        filters=[_strip],
        validators=[DataRequired(REQUIRED), Length(min=low, max=high, message=message)],
        **kwargs,
    )


class MesaFilters(FilterForm):
    """The queue's filters: state (owed ones by default), motivo, mine, and a number, NIT or name."""

    estado = SelectField(
        "Estado",
        choices=[SelectChoice(k, v) for k, v in FILTRO_ESTADOS.items()],
        default=service.POR_RESPONDER,
    )
    motivo = SelectField("Motivo", choices=[SelectChoice("", "Todos")], default="")
    mios = BooleanField("Asignados a mí")
    buscar = StringField(
        "Caso, NIT o nombre de la IPS",
        filters=[_strip],
        validators=[Optional(), normalized(service.clean_search)],
        render_kw={"autocomplete": "off", "maxlength": service.BUSCAR_MAX},
    )

    def set_motivos(self, motivos) -> None:
        """Offer every motivo; an inactive one still finds its old cases."""
        self.motivo.choices = [SelectChoice("", "Todos")] + [
            SelectChoice(str(m.id), m.nombre if m.activo else f"{m.nombre} (inactivo)")
            for m in motivos
        ]

    @property
    def motivo_id(self) -> int | None:
        return int(self.motivo.data) if self.motivo.data else None


class ResponderForm(SpanishForm):
    """Responder: the text the IPS reads (and gets by e-mail), and the state it leaves."""

    respuesta = _text(
        "Respuesta", service.TEXTO_MIN, service.TEXTO_MAX, TEXTO_ERROR,
        render_kw={"maxlength": service.TEXTO_MAX, "rows": 6},
    )  # fmt: skip
    estado_despues = RadioField(
        "Después de responder",
        choices=[
            SelectChoice(CasoMesa.ESPERA_IPS, "Queda en espera de la IPS"),
            SelectChoice(CasoMesa.CERRADO, "Cerrar el caso"),
        ],
        default=CasoMesa.ESPERA_IPS,
        validators=[DataRequired("Elija cómo queda el caso.")],
    )


class NotaForm(SpanishForm):
    """Nota interna: staff's only; the IPS never reads it and no e-mail goes out."""

    nota = _text(
        "Nota interna", service.TEXTO_MIN, service.TEXTO_MAX, TEXTO_ERROR,
        render_kw={"maxlength": service.TEXTO_MAX, "rows": 3},
    )  # fmt: skip


class EstadoForm(SpanishForm):
    """Cambiar estado: any state to any other, by hand."""

    nuevo_estado = SelectField(
        "Nuevo estado",
        choices=[SelectChoice(k, v) for k, v in mesa.ESTADOS.items()],
        validators=[DataRequired("Elija el estado.")],
    )

    def offer_all_but(self, estado: str) -> None:
        self.nuevo_estado.choices = [
            SelectChoice(k, v) for k, v in mesa.ESTADOS.items() if k != estado
        ]


NADIE = "0"


class AsignarForm(SpanishForm):
    """Asignar: to me, to a soporte colleague, or to nobody."""

    asignado = SelectField("Asignar a", choices=[SelectChoice(NADIE, "Nadie")])

    def set_staff(self, me: int, staff: list[tuple[int, str]]) -> None:
        mine = [SelectChoice(str(i), f"A mí ({n})") for i, n in staff if i == me]
        others = [SelectChoice(str(i), n) for i, n in staff if i != me]
        self.asignado.choices = [*mine, *others, SelectChoice(NADIE, "Nadie")]

    @property
    def to(self) -> int | None:
        return None if self.asignado.data == NADIE else int(self.asignado.data)


def _whole_hours(_form, field) -> None:
    text = (field.data or "").strip() if isinstance(field.data, str) else field.data
    if isinstance(text, int):
        return
    if not (text and text.isascii() and text.isdigit() and len(text) <= 3):
        raise ValidationError(HORAS_ERROR)
    field.data = int(text)
    if not service.HORAS_MIN <= field.data <= service.HORAS_MAX:
        raise ValidationError(HORAS_ERROR)


def _name(label: str) -> StringField:
    return StringField(
        label,
        filters=[_strip],
        validators=[DataRequired(REQUIRED), normalized(service.clean_name)],
        render_kw={"maxlength": service.NOMBRE_MAX, "autocomplete": "off"},
    )


class MotivoForm(SpanishForm):
    """A motivo: its name, its target in office hours, and whether the IPS may choose it."""

    nombre = _name("Motivo")
    horas = StringField(
        "Horas hábiles para responder",
        filters=[_strip],
        validators=[DataRequired(HORAS_ERROR), _whole_hours],
        render_kw={"inputmode": "numeric", "autocomplete": "off", "maxlength": 3},
    )
    activo = BooleanField("Activo (las IPS lo pueden elegir)")


class AsuntoForm(SpanishForm):
    """An asunto of one motivo: its name, and whether the IPS may choose it."""

    nombre = _name("Asunto")
    activo = BooleanField("Activo")


class RespuestaGuardadaForm(SpanishForm):
    """A saved reply: a title to find it by, and the text it inserts."""

    titulo = StringField(
        "Título",
        filters=[_strip],
        validators=[DataRequired(REQUIRED), normalized(service.clean_title)],
        render_kw={"maxlength": service.TITULO_MAX, "autocomplete": "off"},
    )
    texto = _text(
        "Texto", service.GUARDADA_MIN, service.GUARDADA_MAX, GUARDADA_ERROR,
        render_kw={"maxlength": service.GUARDADA_MAX, "rows": 4},
    )  # fmt: skip
