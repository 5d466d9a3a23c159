"""The audit log: who did what to which row, when, from where, and what changed.

A service calls ``record()`` inside its own ``with db.atomic()``, so the row
commits, or rolls back, with the change it describes. Rows are append-only
(models.AuditEvent and the triggers of core.db.guard_append_only).
"""

from __future__ import annotations

import enum
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import models
from core.clock import utcnow
from core.colombia import BOGOTA


class Action(enum.StrEnum):
    """What an audited change was; a short dotted code, stored as it is."""

    USUARIO_DESBLOQUEAR = "usuario.desbloquear"
    USUARIO_ACTIVAR = "usuario.activar"
    SOLICITUD_APROBAR = "solicitud.aprobar"
    SOLICITUD_RECHAZAR = "solicitud.rechazar"
    STAFF_CREAR = "staff.crear"
    STAFF_DESHABILITAR = "staff.deshabilitar"
    STAFF_SEGUNDO_FACTOR_REINICIAR = "staff.segundo_factor.reiniciar"
    STAFF_SEGUNDO_FACTOR_INSCRIBIR = "staff.segundo_factor.inscribir"
    STAFF_CODIGOS_RENOVAR = "staff.codigos.renovar"
    STAFF_EDITAR = "staff.editar"
    STAFF_HABILITAR = "staff.habilitar"
    ENTIDAD_CREAR = "entidad.crear"
    ENTIDAD_EDITAR = "entidad.editar"
    SEDE_CREAR = "sede.crear"
    SEDE_EDITAR = "sede.editar"
    CONVENIO_ACCESO_RETIRAR = "convenio.acceso.retirar"
    # A staff search of the Convenios look-up log that names a cédula: who looked
    # at whose look-ups is itself personal data (habeas data).
    CONVENIO_CONSULTAS_BUSCAR = "convenio.consultas.buscar"
    AUTORIZACION_APROBAR = "autorizacion.aprobar"
    AUTORIZACION_RECHAZAR = "autorizacion.rechazar"
    AUTORIZACION_SOPORTE_VER = "autorizacion.soporte.ver"  # a staff member opened a member's file
    PQRS_RESPONDER = "pqrs.responder"
    PQRS_PEDIR_INFORMACION = "pqrs.informacion"
    PQRS_PRORROGAR = "pqrs.prorrogar"
    PQRS_CERRAR = "pqrs.cerrar"
    PQRS_ADJUNTO_VER = "pqrs.adjunto.ver"
    MESA_RESPONDER = "mesa.responder"
    MESA_NOTA = "mesa.nota"
    MESA_ESTADO = "mesa.estado"
    MESA_ASIGNAR = "mesa.asignar"
    MESA_ADJUNTO_VER = "mesa.adjunto.ver"
    MESA_MOTIVO = "mesa.motivo"  # a motivo or an asunto created or edited
    MESA_RESPUESTA_GUARDADA = "mesa.respuesta_guardada"  # a saved reply created, edited or removed
    IPS_INVITAR = "ips.invitar"  # staff gave an IPS its admin operator
    IPS_OPERADOR_ESTADO = "ips.operador.estado"  # an IPS admin disabled or enabled an operator


@dataclass(frozen=True)
class Actor:
    """Who acted: an account id (None for the system) and how to show it later."""

    id: int | None
    label: str


SYSTEM = Actor(None, "sistema")

# A key is dropped when any of its words (split on _ - . and camelCase) is one
# of these: a hash or a one-time code is as good as the secret to an attacker
# who reads the log, and the log is kept for years.
SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "token",
        "secret",
        "code",
        "totp",
        "otp",
        "nonce",
        "clave",
        "contrasena",
        "codigo",
    }
)
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def is_secret(key: str) -> bool:
    """Tell whether a field name looks like it holds a secret."""
    # Accents off first: "código" and "contraseña" are the words "codigo", "contrasena".
    plain = unicodedata.normalize("NFKD", str(key)).encode("ascii", "ignore").decode()
    return any(word.lower() in SECRET_WORDS for word in _WORD.findall(plain))


def _plain(value: Any) -> Any:
    """Turn value into what JSON holds, secrets inside nested dicts dropped."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if not is_secret(k)}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


_MISSING = object()


def changes(before: dict | None, after: dict | None) -> tuple[dict | None, dict | None]:
    """Keep only the fields whose values differ between before and after, no secrets.

    A key present on one side only counts as changed. A side that was not given,
    or has nothing left, is None.
    """
    old = _plain(before or {})
    new = _plain(after or {})
    changed = {k for k in old.keys() | new.keys() if old.get(k, _MISSING) != new.get(k, _MISSING)}
    kept_old = {k: v for k, v in old.items() if k in changed}
    kept_new = {k: v for k, v in new.items() if k in changed}
    return kept_old or None, kept_new or None


def _dump(fields: dict | None) -> str | None:
    if fields is None:
        return None
    return json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _actor(actor: Any) -> Actor:
    """Accept an Actor, an account-like object (id, email) or None (the system)."""
    if actor is None:
        return SYSTEM
    if isinstance(actor, Actor):
        return actor
    label = getattr(actor, "email", None) or f"#{actor.id}"
    return Actor(actor.id, label)


def record(
    actor: Any,
    action: Action | str,
    target_type: str,
    target_id: int,
    before: dict | None = None,
    after: dict | None = None,
    ip: str | None = None,
) -> models.AuditEvent:
    """Append one audit row inside the caller's transaction; refuse outside one.

    Only the fields that changed are stored, never a secret (``is_secret``).
    """
    if not models.db.in_transaction():
        raise RuntimeError(
            "audit.record() must run inside the service's transaction:"
            " the row commits with the change it describes"
        )
    who = _actor(actor)
    old, new = changes(before, after)
    return models.AuditEvent.create(
        at=utcnow(),
        actor_id=who.id,
        actor_label=who.label[:254],
        action=Action(action).value,  # an unknown code is a bug: ValueError
        target_type=target_type,
        target_id=target_id,
        before=_dump(old),
        after=_dump(new),
        ip=ip or None,
    )


def _instant(value: datetime | date) -> datetime:
    """Return value as naive UTC; a date is the moment its Bogotá day starts."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(), tzinfo=BOGOTA)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def search_query(
    actor_id: int | None = None,
    action: Action | str | None = None,
    target: str | tuple[str, int] | None = None,
    since: datetime | date | None = None,
    until: datetime | date | None = None,
):
    """Build the filters of an audit search; blueprints.queue orders and pages it on (at, id).

    ``target`` is a target type ("usuario") or a (type, id) pair. ``since`` and
    ``until`` take naive-UTC datetimes (since included, until excluded) or dates,
    read as Bogotá calendar days, both included. Every filter is the front of an
    index that ends in (at, id), so a page is read in order from it.
    """
    event = models.AuditEvent
    query = event.select()
    if actor_id is not None:
        query = query.where(event.actor_id == actor_id)
    if action is not None:
        query = query.where(event.action == Action(action).value)
    if target is not None:
        if isinstance(target, tuple):
            target_type, target_id = target
            query = query.where((event.target_type == target_type) & (event.target_id == target_id))
        else:
            query = query.where(event.target_type == target)
    if since is not None:
        query = query.where(event.at >= _instant(since))
    if until is not None:
        if not isinstance(until, datetime):
            until = until + timedelta(days=1)  # a day is included whole
        query = query.where(event.at < _instant(until))
    return query
