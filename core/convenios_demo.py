"""Convenios demo data (H6): the demo front desk's grant and a year of its look-ups and uses.

The front-desk user convenio@hanna.test works for two of Gimnasio Brío
Caribe's three sedes, so the sede picker shows and the third sede is there to
try the access matrix on. Its history is a few hundred look-ups over the last
12 months, busier in the holidays (December, January, mid-year), so the
report's chart has a shape. The history is drawn from a seed but dated from
today: every load shows "the last year", and one seed on one day always gives
the same rows.

What each look-up logged is what ``core.convenios.trabajador_of`` shows for that
person, so the demo rows read like the ones a real desk leaves.
"""

from __future__ import annotations

import random
import secrets
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from peewee import chunked
from stdnum.co import nit as stdnum_nit

from core import clock
from core.colombia import BOGOTA
from core.convenios import APLICACION, DOCUMENT_TYPES, RECEIPT_ALPHABET, Trabajador, trabajador_of
from core.workdays import is_holiday
from models import (
    Acceso,
    AccesoSede,
    Account,
    Afiliado,
    ConsultaConvenio,
    Entidad,
    Sede,
    UsoConvenio,
)

# Gimnasio Brío Caribe S.A.S. (core.convenios_data's first demo entity), as stored.
DEMO_ENTIDAD_NIT = "901234567" + stdnum_nit.calc_check_digit("901234567")
GRANTED_SEDES = ("BRIO-01", "BRIO-02")  # Sede Norte, Sede Soledad; not BRIO-03 (Rodadero)

LOOKUPS = 360
# The demo history's keys start with this: a load that finds one knows it ran before.
CLAVE_PREFIX = "demo-"
_CLAVE_ALPHABET = string.ascii_letters + string.digits + "-_"

# How busy a gym is by month: New Year's resolutions, the mid-year school
# holidays and December's (with the "prima") fill it; September is quiet.
MONTH_WEIGHTS = {
    1: 1.6,
    2: 1.0,
    3: 0.9,
    4: 0.8,
    5: 0.8,
    6: 1.3,
    7: 1.4,
    8: 0.8,
    9: 0.6,
    10: 0.8,
    11: 1.0,
    12: 1.8,
}
_WEEKDAY_WEIGHTS = (1.2, 1.1, 1.1, 1.0, 0.9, 0.8, 0.3)  # Monday first; a festivo counts as a Sunday
# Opening hours in Bogotá as (from, to, how busy), minutes after midnight.
_WEEKDAY_HOURS = ((6 * 60, 9 * 60, 5), (9 * 60, 16 * 60, 2), (16 * 60, 21 * 60, 5))
_SATURDAY_HOURS = ((7 * 60, 13 * 60, 3), (13 * 60, 17 * 60, 1))
_HOLIDAY_HOURS = ((8 * 60, 13 * 60, 1),)

# Of the look-ups: ACTIVO with benefit, other affiliates (no benefit), the rest
# non-affiliates. Most look-ups with benefit end in a reported use.
_SHARE_ACTIVE, _SHARE_OTHER = 0.86, 0.08
_USE_RATE = 0.92
_REGULARS = 120  # people who come to the gym, a few of them very often
_HOME_SEDE_WEIGHTS = (0.6, 0.4)  # more regulars train at Sede Norte


@dataclass(frozen=True)
class DemoLookup:
    """One planned look-up at a demo desk and the use reported from it, if any."""

    at: datetime  # naive UTC
    sede: int  # index into the granted sedes
    shown: Trabajador
    clave: str
    recibo: str  # the receipt number, "" when no use was reported
    used_at: datetime | None  # naive UTC


# --- the grant ---------------------------------------------------------------------


def grant_demo_user(account: Account) -> list[Sede]:
    """Grant the demo desk exactly BRIO-01 and BRIO-02; return those sedes.

    Idempotent, and it corrects an older demo database in which the user had
    all three sedes: the ungranted sede is what the access matrix is tried on.
    """
    entidad = Entidad.get_or_none(Entidad.nit == DEMO_ENTIDAD_NIT)
    if entidad is None:
        return []
    sedes = list(
        Sede.select()
        .where((Sede.entidad == entidad) & Sede.codigo.in_(GRANTED_SEDES))
        .order_by(Sede.codigo)
    )
    acceso = Acceso.get_or_none((Acceso.account == account) & (Acceso.aplicacion == APLICACION))
    if acceso is None:
        acceso = Acceso.create(account=account, aplicacion=APLICACION, entidad=entidad)
    elif acceso.entidad_id != entidad.id:
        Acceso.update(entidad=entidad).where(Acceso.id == acceso.id).execute()
    AccesoSede.delete().where(
        (AccesoSede.acceso == acceso) & AccesoSede.sede.not_in([s.id for s in sedes])
    ).execute()
    for sede in sedes:
        AccesoSede.insert(acceso=acceso, sede=sede).on_conflict_ignore().execute()
    return sedes


# --- the plan: pure, from a seed and a day ------------------------------------------


def _people(rows: Iterable[dict]) -> list[Trabajador]:
    """What a desk would see of each person a cédula look-up can find (CC before CE)."""
    found: dict[str, dict] = {}
    for row in rows:
        if row["tipo_documento"] not in DOCUMENT_TYPES:
            continue
        seen = found.get(row["numero_documento"])
        if seen is None or row["tipo_documento"] == DOCUMENT_TYPES[0]:
            found[row["numero_documento"]] = row
    return [trabajador_of(numero, Afiliado(**row)) for numero, row in found.items()]


def _day_weight(day: date) -> float:
    weekday = 6 if is_holiday(day) else day.weekday()
    return MONTH_WEIGHTS[day.month] * _WEEKDAY_WEIGHTS[weekday]


def _days_picked(rng: random.Random, days: list[date], count: int) -> list[date]:
    """Draw count days: each month gets its share by weight (a clear shape), then its days."""
    months: dict[tuple[int, int], list[date]] = {}
    for day in days:
        months.setdefault((day.year, day.month), []).append(day)
    weights = {
        m: sum(_day_weight(d) for d in ds) * rng.uniform(0.9, 1.1) for m, ds in months.items()
    }
    total = sum(weights.values())
    shares = {m: count * w / total for m, w in weights.items()}
    counts = {m: int(share) for m, share in shares.items()}
    # Largest remainders first, so the counts add up to count.
    for m in sorted(shares, key=lambda m: counts[m] - shares[m])[: count - sum(counts.values())]:
        counts[m] += 1
    picked = []
    for m, ds in months.items():
        picked += rng.choices(ds, weights=[_day_weight(d) for d in ds], k=counts[m])
    return picked


def _moment(rng: random.Random, day: date) -> datetime:
    """A time during the desk's opening hours that day in Bogotá, returned as naive UTC."""
    if is_holiday(day) or day.weekday() == 6:
        slots = _HOLIDAY_HOURS
    elif day.weekday() == 5:
        slots = _SATURDAY_HOURS
    else:
        slots = _WEEKDAY_HOURS
    start, end, _ = rng.choices(slots, weights=[w for *_, w in slots])[0]
    minute = rng.randrange(start, end)
    local = datetime.combine(day, time(minute // 60, minute % 60, rng.randrange(60)), BOGOTA)
    return local.astimezone(UTC).replace(tzinfo=None)


def _non_affiliate(rng: random.Random, taken: set[str]) -> str:
    """A cédula that is not in the data (older 8 digits or newer 10)."""
    while True:
        if rng.random() < 0.5:
            numero = str(rng.randint(10_000_000, 99_999_999))
        else:
            numero = str(rng.randint(1_000_000_000, 1_199_999_999))
        if numero not in taken:
            return numero


def _receipt(rng: random.Random | secrets.SystemRandom) -> str:
    raw = "".join(rng.choice(RECEIPT_ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def plan_history(
    population: Sequence[dict],
    taken: set[str],
    seed: int,
    today: date,
    count: int = LOOKUPS,
) -> list[DemoLookup]:
    """Plan count look-ups over the 365 days before today, oldest first.

    population: the affiliate rows the desk's visitors come from; taken: every
    document a non-affiliate look-up must not use (all the data's, and the
    fixed records' reserved range). The same arguments give the same plan.
    """
    rng = random.Random(f"convenio-history-{seed}")  # noqa: S311 (fake data from a seed)
    people = _people(population)
    active = [t for t in people if t.beneficio and t.tarifa in ("A", "B", "C")]
    others = [t for t in people if t.afiliado and not t.beneficio]
    regulars = rng.sample(active, min(_REGULARS, len(active)))
    regular_weights = [1 / (i + 1) ** 0.7 for i in range(len(regulars))]
    homes = [rng.choices((0, 1), weights=_HOME_SEDE_WEIGHTS)[0] for _ in regulars]

    days = [today - timedelta(days=n) for n in range(365, 0, -1)]
    moments = sorted(_moment(rng, day) for day in _days_picked(rng, days, count))

    plan, recibos = [], set()
    for at in moments:
        draw = rng.random()
        recibo, used_at = "", None
        if draw < _SHARE_ACTIVE and regulars:
            i = rng.choices(range(len(regulars)), weights=regular_weights)[0]
            shown = regulars[i]
            sede = homes[i] if rng.random() < 0.85 else 1 - homes[i]
            if rng.random() < _USE_RATE:
                recibo = _receipt(rng)
                while recibo in recibos:
                    recibo = _receipt(rng)
                recibos.add(recibo)
                used_at = at + timedelta(seconds=rng.randint(20, 240))
        else:
            if draw < _SHARE_ACTIVE + _SHARE_OTHER and others:
                shown = rng.choice(others)
            else:
                shown = trabajador_of(_non_affiliate(rng, taken), None)
            sede = rng.choices((0, 1), weights=_HOME_SEDE_WEIGHTS)[0]
        clave = CLAVE_PREFIX + "".join(rng.choice(_CLAVE_ALPHABET) for _ in range(17))
        plan.append(DemoLookup(at, sede, shown, clave, recibo, used_at))
    return plan


# --- writing it -------------------------------------------------------------------------

# Rows a statement: under SQLite's historical limit of 999 variables.
_CONSULTA_BATCH, _USO_BATCH, _SELECT_BATCH = 80, 150, 500


def _already_loaded(account: Account) -> bool:
    return (
        ConsultaConvenio.select()
        .where(
            (ConsultaConvenio.account == account) & ConsultaConvenio.clave.startswith(CLAVE_PREFIX)
        )
        .exists()
    )


def _free_receipts(plan: list[DemoLookup]) -> list[DemoLookup]:
    """Redraw the (unlikely) receipt numbers that a use already in the database holds."""
    wanted = [p.recibo for p in plan if p.recibo]
    held: set[str] = set()
    for batch in chunked(wanted, _SELECT_BATCH):
        query = UsoConvenio.select(UsoConvenio.numero).where(UsoConvenio.numero.in_(batch))
        held.update(query.scalars())
    if not held:
        return plan
    rng = secrets.SystemRandom()
    used = set(wanted) | held
    fixed = []
    for p in plan:
        if p.recibo in held:
            recibo = _receipt(rng)
            while recibo in used:
                recibo = _receipt(rng)
            used.add(recibo)
            p = DemoLookup(p.at, p.sede, p.shown, p.clave, recibo, p.used_at)
        fixed.append(p)
    return fixed


def load_history(
    account: Account,
    sedes: list[Sede],
    population: Sequence[dict],
    taken: set[str],
    seed: int,
    today: date | None = None,
) -> tuple[int, int]:
    """Write the demo desk's year of look-ups and uses once; return (look-ups, uses) written.

    Does nothing when the account already has the demo history (its keys start
    with CLAVE_PREFIX) or lacks its two sedes. The caller owns the transaction.
    """
    if len(sedes) != len(GRANTED_SEDES) or _already_loaded(account):
        return 0, 0
    plan = _free_receipts(plan_history(population, taken, seed, today or clock.today()))
    consultas = [
        {
            "account": account.id,
            "entidad": sedes[p.sede].entidad_id,
            "sede": sedes[p.sede].id,
            "numero_documento": p.shown.cedula,
            "resultado": p.shown.resultado,
            "nombre": p.shown.nombre[:250],
            "estado_afiliado": p.shown.estado_afiliado[:20],
            "tarifa": p.shown.tarifa,
            "empresa_estado": p.shown.estado_empresa[:20],
            "clave": p.clave,
            "created_at": p.at,
        }
        for p in plan
    ]
    for batch in chunked(consultas, _CONSULTA_BATCH):
        ConsultaConvenio.insert_many(batch).execute()
    ids = dict(
        ConsultaConvenio.select(ConsultaConvenio.clave, ConsultaConvenio.id)
        .where(
            (ConsultaConvenio.account == account) & ConsultaConvenio.clave.startswith(CLAVE_PREFIX)
        )
        .tuples()
    )
    usos = [
        {
            "consulta": ids[p.clave],
            "numero": p.recibo,
            "account": account.id,
            "entidad": sedes[p.sede].entidad_id,
            "sede": sedes[p.sede].id,
            "created_at": p.used_at,
        }
        for p in plan
        if p.recibo
    ]
    for batch in chunked(usos, _USO_BATCH):
        UsoConvenio.insert_many(batch).execute()
    return len(consultas), len(usos)
