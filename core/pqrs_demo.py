"""PQRSF demo data (SPEC G6, G7, S1): a queue for pqrs@gestion.test in every state, dated from today.

Fixed records, in the reserved range CC 1000000200–1000000299 (README):

- CC 1000000201 SANDRA PATRICIA GÓMEZ LOZANO: a Hanna account
  (bloqueada@hanna.test) that the activation quiz blocked, and her
  "desbloqueo de cuenta" PQRSF naming it, so staff can unblock from the case.
- CC 1000000202 CARMEN JULIA VEGA RÍOS and CC 1000000203 JORGE ENRIQUE SALAS
  MORA: citizens who filed without an account.
- Luis Fernando Ortiz Peña (CC 1000000120, core.eps_demo) filed two while
  signed in to Génesis.

Sandra's account is put back in that state at every load, like the other demo
accounts. Each PQRSF is keyed by its form_key ("demo-pqrs-…") and created once: one
already there is left as it is (staff may have answered it since). Its
radicado is PQR-<year filed>-DEM<suffix>, so the demo can be followed by code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from core import clock, genesis, workdays
from core import pqrs as pqrs_core
from core.eps_demo import DEMO_ACCOUNT
from models import Account, HannaUser, Pqrs, PqrsMensaje

DEMO_STAFF = "pqrs@gestion.test"  # core.demo's staff member of that role
BLOCKED_USER = {
    "email": "bloqueada@hanna.test",
    "tipo_documento": "CC",
    "numero_documento": "1000000201",
    "primer_nombre": "SANDRA",
    "segundo_nombre": "PATRICIA",
    "primer_apellido": "GÓMEZ",
    "segundo_apellido": "LOZANO",
    "celular": "3015550201",
    "telefono": "",
}
_CIUDADANOS = {
    "carmen": ("CC", "1000000202", "Carmen Julia Vega Ríos", "carmen.vega@correo.test", "3015550202"),
    "jorge": ("CC", "1000000203", "Jorge Enrique Salas Mora", "", "3015550203"),
}  # fmt: skip
_IDENTITY = ("tipo_documento", "numero_documento", "nombre", "email", "celular")
_INFORMACION = (
    "Para responder necesitamos el número de la factura del cobro que reclama y la fecha "
    "en que lo pagó. Envíelos desde Consulta PQRDS."
)
_RESPUESTA = (
    "Gracias por su felicitación. La compartimos con el equipo de la IPS Salud Vital del "
    "Caribe, que atendió a su hija, y quedó registrada en su hoja de servicio."
)


@dataclass(frozen=True)
class _Demo:
    suffix: str  # the radicado's last three characters (core.convenios.RECEIPT_ALPHABET)
    tipo: str
    filer: str  # "luis", "sandra" or a key of _CIUDADANOS
    plan: str  # vencida | vence_hoy | por_vencer | a_tiempo | informacion | respondida
    descripcion: str


_DEMO = (
    _Demo("AA2", Pqrs.RECLAMO, "carmen", "vencida",
          "Me cobraron una cuota moderadora dos veces en la misma cita de control del 3 de "
          "marzo. Pido que me devuelvan el segundo cobro."),
    _Demo("AA3", Pqrs.QUEJA, "luis", "vence_hoy",
          "En la IPS me hicieron esperar tres horas para una cita asignada a las 8:00 y nadie "
          "explicó la demora."),
    _Demo("AA4", Pqrs.PETICION, "jorge", "por_vencer",
          "Solicito que me informen en qué IPS puedo hacerme la terapia física ordenada, más "
          "cerca de Soledad."),
    _Demo("AA5", Pqrs.DESBLOQUEO, "sandra", "a_tiempo",
          "Me equivoqué en las preguntas de validación y mi usuario quedó bloqueado. Mis datos "
          "son los del formulario; pido que lo desbloqueen."),
    _Demo("AA6", Pqrs.RECLAMO, "jorge", "informacion",
          "Pagué un examen que la EPS debía cubrir y pido el reembolso."),
    _Demo("AA7", Pqrs.FELICITACION, "luis", "respondida",
          "Quiero felicitar a la pediatra que atendió a mi hija: fue muy amable y clara."),
    _Demo("AA8", Pqrs.DOCUMENTOS, "carmen", "a_tiempo",
          "Solicito copia de mi historia de afiliación de los últimos cinco años."),
)  # fmt: skip


def _created_at(plan: str, term_days: int, now: datetime) -> datetime:
    """Return when a PQRSF of term_days must have been filed to stand in plan's state today."""
    today = workdays.to_local(now).date()
    due_today = today if workdays.is_working_day(today) else workdays.next_working_day(today)
    due = {
        "vencida": workdays.working_days_before(today, 2),
        "vence_hoy": due_today,
        "por_vencer": workdays.next_working_day(today),
    }
    if plan in due:
        return workdays.bogota_at(workdays.working_days_before(due[plan], term_days), 10)
    if plan == "a_tiempo":
        return now - timedelta(hours=1)
    back = 3 if plan == "informacion" else 8  # informacion: asked within art. 17's 10 days
    return workdays.bogota_at(workdays.working_days_before(today, back), 9, 30)


def upsert_blocked_user(password_hash: str) -> Account:
    """Create or restore Sandra's Hanna account, blocked by the quiz (as core.demo restores the others)."""
    now = clock.utcnow()
    state = dict(
        password_hash=password_hash,
        status=Account.BLOCKED,
        failed_logins=0,
        login_blocked_until=None,
        quiz_failures=3,
        blocked_at=now - timedelta(hours=2),
        blocked_reason="preguntas",
    )
    holder = HannaUser.get_or_none(
        (HannaUser.tipo_documento == BLOCKED_USER["tipo_documento"])
        & (HannaUser.numero_documento == BLOCKED_USER["numero_documento"])
    )
    if holder is None:
        return HannaUser.create_account(
            **BLOCKED_USER, **state, fecha_nacimiento=date(1985, 4, 12), afiliado=None
        )
    credential, profile = HannaUser.split(state)
    Account.update(**credential).where(Account.id == holder.account_id).execute()
    HannaUser.update(**profile).where(HannaUser.account == holder.account_id).execute()
    return Account.get_by_id(holder.account_id)


def _filer(key: str, luis: Account | None, sandra: Account) -> dict:
    """Return the Pqrs fields of who files: as the form would prefill them (core.pqrs.identity_of)."""
    if key in _CIUDADANOS:
        return dict(zip(_IDENTITY, _CIUDADANOS[key], strict=True))
    account = luis if key == "luis" else sandra
    identity = {field: pqrs_core.identity_of(account).get(field) or "" for field in _IDENTITY}
    if key == "luis":
        return identity | {"account": account.id}
    # As filed from her blocked page's link: it prefills no mobile (blueprints.pqrs.views).
    return identity | {"celular": "", "cuenta_bloqueada": account.id}


def load_demo_pqrs(password_hash: str) -> dict:
    """File the demo PQRSF once each; return what the CLI prints. The caller owns the transaction."""
    now = clock.utcnow()
    staff = Account.by_login(Account.STAFF, DEMO_STAFF)
    luis = Account.by_login(Account.EPS, genesis.login_of(*DEMO_ACCOUNT))
    sandra = upsert_blocked_user(password_hash)
    created, listed = 0, []
    for demo in _DEMO:
        if demo.filer == "luis" and luis is None:
            continue
        filer = _filer(demo.filer, luis, sandra)
        found = Pqrs.get_or_none(Pqrs.form_key == f"demo-pqrs-{demo.suffix}")
        if found is None:
            found = _create(demo, filer, staff, now)
            created += 1
        listed.append(
            {
                "radicado": found.radicado,
                "documento": f"{found.tipo_documento} {found.numero_documento}",
                "tipo": pqrs_core.tipo_name(found.tipo),
                "estado": pqrs_core.ESTADOS.get(found.estado, found.estado),
            }
        )
    return {"created": created, "pqrs": listed, "blocked_user": sandra.email}


def _create(demo: _Demo, filer: dict, staff: Account | None, now: datetime) -> Pqrs:
    tipo = pqrs_core.TIPOS[demo.tipo]
    created_at = _created_at(demo.plan, tipo.term_days, now)
    values = dict(
        radicado=f"PQR-{workdays.to_local(created_at).year}-DEM{demo.suffix}",
        tipo=tipo.code,
        descripcion=demo.descripcion,
        term_days=tipo.term_days,
        due_on=workdays.add_working_days(created_at, tipo.term_days),
        form_key=f"demo-pqrs-{demo.suffix}",
        created_at=created_at,
        **filer,
    )
    today = workdays.to_local(now).date()
    if demo.plan == "informacion":
        values["estado"] = Pqrs.INFORMACION
    elif demo.plan == "respondida":
        answered = workdays.bogota_at(workdays.working_days_before(today, 2), 11)
        values.update(
            estado=Pqrs.RESPONDIDA,
            respuesta=_RESPUESTA,
            answered_at=answered,
            answered_by=staff.id if staff else None,
        )
    pqrs = Pqrs.create(**values)
    if demo.plan == "informacion":
        asked = workdays.bogota_at(workdays.working_days_before(today, 1), 15)
        PqrsMensaje.create(
            pqrs=pqrs.id, tipo=PqrsMensaje.INFORMACION, texto=_INFORMACION,
            account=staff.id if staff else None, created_at=asked,
        )  # fmt: skip
    elif demo.plan == "respondida":
        PqrsMensaje.create(
            pqrs=pqrs.id, tipo=PqrsMensaje.RESPUESTA, texto=_RESPUESTA,
            account=staff.id if staff else None, created_at=values["answered_at"],
        )  # fmt: skip
    return pqrs
