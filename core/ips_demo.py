"""Mesa de Ayuda demo data (SPEC I1–I3, S1): IPS operators, and cases in every state from 40912.

- IPS Salud Caribe Norte (NIT 900111222-1, core.eps_demo) has two operators,
  both with DEMO_PASSWORD: Laura Gómez Ruiz (admision@saludcaribe.test, the
  IPS admin) and Carlos Pérez Díaz (facturacion@saludcaribe.test).
- Clínica Los Almendros has one, Marta Rojas (sistemas@almendros.test), so
  the demo shows that an IPS sees only its own cases.
- Cases 40912 (the manual's example, CAPACITACION / CARGUE RESOLUCION 2463,
  answered and waiting for the IPS), then one past its target, one new and
  due soon, one the IPS wrote back on, one closed, and the clinic's own. Each
  is created once, keyed by its form_key ("demo-mesa-…"); the counter then
  goes on from the last one.

Dates are working hours before the day the demo is loaded, so the queue's
marks show every state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core import clock, mesa, workdays
from core.eps_data import normalize_nit
from core.eps_demo import IPS_NITS
from models import (
    Account,
    AsuntoMesa,
    CasoMesa,
    Ips,
    IpsOperador,
    MensajeMesa,
    MotivoMesa,
    RespuestaGuardada,
)

DEMO_STAFF = "soporte@gestion.test"  # core.demo's staff member of that role
OPERADORES = (
    # (IPS NIT, e-mail, name, admin)
    (IPS_NITS[0], "admision@saludcaribe.test", "Laura Gómez Ruiz", True),
    (IPS_NITS[0], "facturacion@saludcaribe.test", "Carlos Pérez Díaz", False),
    (IPS_NITS[1], "sistemas@almendros.test", "Marta Rojas Vega", True),
)
SAVED_REPLIES = (
    (
        "Solicitar soporte",
        "Para revisar su caso necesitamos el soporte: adjunte el archivo o una captura de "
        "pantalla del error, con la fecha y la hora en que ocurrió.",
    ),
    (
        "Caso resuelto",
        "Revisamos su solicitud y quedó resuelta. Si el problema vuelve a presentarse, "
        "escríbanos en este mismo caso.",
    ),
)


@dataclass(frozen=True)
class _Case:
    key: str
    operador: str  # an e-mail of OPERADORES
    motivo: str
    asunto: str
    hours_ago: float  # office hours before now it was opened
    descripcion: str
    thread: tuple[tuple[str, str, float], ...]  # (who: ips | mesa | nota, text, office hours ago)
    estado: str


_CASES = (
    _Case("40912", "admision@saludcaribe.test", "CAPACITACION", "CARGUE RESOLUCION 2463", 30,
          "CARGUE RESOLUCION 2463 CARGUE RESOLUCION 2463",
          (("mesa", "Buenos días. Le enviamos el instructivo del cargue; ¿en qué paso se detiene "
                    "el proceso?", 20),),
          CasoMesa.ESPERA_IPS),
    _Case("40913", "facturacion@saludcaribe.test", "FACTURACION", "RADICACION DE CUENTAS", 20,
          "El portal no deja radicar la cuenta de cobro de enero: dice que el archivo no es válido.",
          (("nota", "Revisar con facturación: parece el formato del XML.", 12),),
          CasoMesa.NUEVO),
    _Case("40914", "admision@saludcaribe.test", "AUTORIZACIONES", "AUTORIZACION NO APARECE", 1,
          "La autorización del paciente de ayer no aparece al consultarla por documento.",
          (), CasoMesa.NUEVO),
    _Case("40915", "admision@saludcaribe.test", "ACCESO AL PORTAL", "CREAR OPERADOR", 10,
          "Necesitamos un usuario para la nueva auxiliar de admisiones.",
          (("mesa", "El administrador de su IPS puede crearlo en Operadores. ¿Lo intentó?", 8),
           ("ips", "Sí, pero no nos llega el correo de la auxiliar.", 2)),
          CasoMesa.ESPERA_MESA),
    _Case("40916", "facturacion@saludcaribe.test", "REPORTES", "CARGUE DE RIPS", 60,
          "No sabemos dónde descargar el reporte de RIPS cargados del mes.",
          (("mesa", "Está en Reportes > RIPS. Cerramos el caso; escríbanos si necesita más.", 50),),
          CasoMesa.CERRADO),
    _Case("40917", "sistemas@almendros.test", "AFILIACIONES", "VALIDACION DE DERECHOS", 4,
          "Al validar derechos de un afiliado sale 'sin información'.",
          (), CasoMesa.NUEVO),
)  # fmt: skip


def _hours_ago(now: datetime, hours: float) -> datetime:
    """Return the naive-UTC moment that leaves `hours` office hours before now."""
    moment = workdays.to_local(now)
    step = timedelta(minutes=30)
    left = hours
    while left > 0:
        moment -= step
        if workdays.working_hours_between(moment, moment + step) > 0:
            left -= 0.5
    return workdays.bogota_at(moment.date(), moment.hour, moment.minute)


def _operador(nit: str, email: str, nombre: str, admin: bool, password_hash: str) -> Account:
    """Create or restore one demo operator: active, with the demo password."""
    ips = Ips.get(Ips.nit == normalize_nit(nit))
    login = f"{ips.nit}:{email}"
    account = Account.by_login(Account.IPS, login)
    values = dict(password_hash=password_hash, status=Account.ACTIVE, failed_logins=0)
    if account is None:
        account = Account.create(kind=Account.IPS, login=login, email=email, **values)
        IpsOperador.create(account=account, ips=ips, nombre=nombre, es_admin=admin)
    else:
        Account.update(login_blocked_until=None, **values).where(Account.id == account.id).execute()
    return account


def load_demo_mesa(password_hash: str) -> dict:
    """Load the operators, motivos, saved replies and cases once; the caller owns the transaction."""
    mesa.ensure_default_motivos()
    operadores = {
        email: _operador(nit, email, nombre, admin, password_hash)
        for nit, email, nombre, admin in OPERADORES
    }
    staff = Account.by_login(Account.STAFF, DEMO_STAFF)
    for titulo, texto in SAVED_REPLIES:
        if not RespuestaGuardada.select().where(RespuestaGuardada.titulo == titulo).exists():
            RespuestaGuardada.create(titulo=titulo, texto=texto, created_by=staff)
    now = clock.utcnow()
    created = 0
    for spec in _CASES:
        if CasoMesa.select().where(CasoMesa.form_key == f"demo-mesa-{spec.key}").exists():
            continue
        _create(spec, operadores[spec.operador], staff, now)
        created += 1
    return {
        "operadores": [(op.login.split(":")[0], op.email) for op in operadores.values()],
        "casos_created": created,
        "casos": CasoMesa.select().count(),
    }


def _create(spec: _Case, operador: Account, staff: Account | None, now: datetime) -> CasoMesa:
    motivo = MotivoMesa.get(MotivoMesa.nombre == spec.motivo)
    asunto = AsuntoMesa.get((AsuntoMesa.motivo == motivo) & (AsuntoMesa.nombre == spec.asunto))
    opened = _hours_ago(now, spec.hours_ago)
    last = opened
    caso = CasoMesa.create(
        numero=mesa.next_number(),
        ips=operador.ips.ips_id,
        account=operador.id,
        motivo=motivo.id,
        asunto=asunto.id,
        descripcion=spec.descripcion,
        estado=spec.estado,
        due_at=mesa.due_at_for(motivo, opened),
        form_key=f"demo-mesa-{spec.key}",
        created_at=opened,
        updated_at=opened,
        closed_at=None,
    )
    MensajeMesa.create(
        caso=caso.id, account=operador.id, de_mesa=False, texto=spec.descripcion, created_at=opened
    )
    for who, texto, ago in spec.thread:
        last = _hours_ago(now, ago)
        MensajeMesa.create(
            caso=caso.id,
            account=operador.id if who == "ips" else (staff.id if staff else None),
            de_mesa=who != "ips",
            interna=who == "nota",
            texto=texto,
            created_at=last,
        )
    if spec.estado == CasoMesa.ESPERA_MESA:  # the IPS wrote back: the target runs again
        caso.due_at = mesa.due_at_for(motivo, last)
    if spec.estado == CasoMesa.CERRADO:
        caso.closed_at = last
    caso.updated_at = last
    caso.save()
    return caso
