"""EPS demo data (SPEC S2, G1–G4): IPS, affiliates in núcleos familiares, and authorizations.

Everything goes through core.eps_data's cleaning and checks, so the demo set is
a valid import, and is upserted by natural key, so loading twice changes
nothing. Drawn from one seed (Faker es_CO); dates are fixed, not "today", so a
seed always gives the same rows.

Fixed records, in the reserved range CC 1000000100–1000000199 (README):

- CC 1000000101 ROSA ELENA DÍAZ MEJÍA: cotizante, ACTIVO, contributivo, with a
  known mobile and fecha de expedición (register with them in G1), and her
  núcleo: cónyuge CC 1000000102, hijo TI 1000000103 (about 15), hija RC
  1000000104 (about 4) and madre CC 1000000105 (about 75). Their
  authorizations are in every state (PENDIENTE, APROBADA, NEGADA, ANULADA,
  VENCIDA).
- CC 1000000110 HERNÁN DARÍO SUÁREZ PÁEZ: INACTIVO (registration refuses him).
- CC 1000000120 LUIS FERNANDO ORTIZ PEÑA, cotizante with his daughter TI
  1000000121: already registered (password DEMO_PASSWORD, carta accepted), with
  authorization requests in every due state for the staff queue (S1), each with
  a generated PDF (``load_demo_solicitudes``). Rosa stays unregistered, for G1.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import random
from datetime import date, datetime, timedelta

from faker import Faker
from peewee import fn
from stdnum.co import nit as stdnum_nit

from core import clock, eps_data, genesis, passwords, uploads, workdays
from core.importer import ImportReport
from models import (
    Account,
    Attachment,
    Autorizacion,
    EpsAfiliado,
    EpsUser,
    Ips,
    SolicitudAutorizacion,
)

DEFAULT_SEED = 2026
FAMILIES = 60
_RESERVED = range(1_000_000_100, 1_000_000_200)
_LATEST = date(2025, 12, 31)  # no demo date after it, whatever day the demo is loaded


def _nit(base: str) -> str:
    return f"{base}-{stdnum_nit.calc_check_digit(base)}"


# (NIT base, name, e-mail, phone, address, municipio); made-up providers.
_IPS = (
    (
        "900111222",
        "IPS Salud Caribe Norte",
        "citas@saludcaribe.example.com",
        "6053851020",
        "Carrera 46 # 84-20",
        "08001",
    ),
    (
        "900333444",
        "Clínica Los Almendros",
        "contacto@almendros.example.com",
        "6056601133",
        "Avenida Pedro de Heredia # 31-50",
        "13001",
    ),
    (
        "901222333",
        "Centro Médico Sinú",
        "info@medicosinu.example.org",
        "6047891234",
        "Calle 27 # 6-40",
        "23001",
    ),
    ("900555666", "Laboratorio Clínico Vallenato", "", "6055712345", "Carrera 9 # 15-30", "20001"),
)
IPS_NITS = tuple(_nit(base) for base, *_ in _IPS)

_FAMILY = "1000000101"
FIXED_EPS: tuple[dict, ...] = (
    {
        "numero_documento": _FAMILY, "tipo_documento": "CC",
        "primer_nombre": "ROSA", "segundo_nombre": "ELENA",
        "primer_apellido": "DÍAZ", "segundo_apellido": "MEJÍA",
        "fecha_nacimiento": "1982-04-17", "fecha_expedicion": "2000-05-02",
        "sexo": "F", "celular": "3004567101", "email": "rosa.diaz@example.com",
        "parentesco": "COTIZANTE",
    },
    {
        "numero_documento": "1000000102", "tipo_documento": "CC",
        "primer_nombre": "JORGE", "segundo_nombre": "LUIS",
        "primer_apellido": "CARO", "segundo_apellido": "VILLA",
        "fecha_nacimiento": "1979-11-03", "fecha_expedicion": "1997-12-10",
        "sexo": "M", "celular": "3104567102", "parentesco": "CONYUGE",
    },
    {
        "numero_documento": "1000000103", "tipo_documento": "TI",
        "primer_nombre": "SANTIAGO", "segundo_nombre": "",
        "primer_apellido": "CARO", "segundo_apellido": "DÍAZ",
        "fecha_nacimiento": "2011-02-20", "fecha_expedicion": "2018-03-01",
        "sexo": "M", "parentesco": "HIJO",
    },
    {
        "numero_documento": "1000000104", "tipo_documento": "RC",
        "primer_nombre": "VALENTINA", "segundo_nombre": "",
        "primer_apellido": "CARO", "segundo_apellido": "DÍAZ",
        "fecha_nacimiento": "2022-08-09", "fecha_expedicion": "2022-08-20",
        "sexo": "F", "parentesco": "HIJA",
    },
    {
        "numero_documento": "1000000105", "tipo_documento": "CC",
        "primer_nombre": "CARMEN", "segundo_nombre": "ROSA",
        "primer_apellido": "MEJÍA", "segundo_apellido": "ARRIETA",
        "fecha_nacimiento": "1951-06-30", "fecha_expedicion": "1972-01-15",
        "sexo": "F", "parentesco": "MADRE",
    },
    {
        "numero_documento": "1000000110", "tipo_documento": "CC",
        "primer_nombre": "HERNÁN", "segundo_nombre": "DARÍO",
        "primer_apellido": "SUÁREZ", "segundo_apellido": "PÁEZ",
        "fecha_nacimiento": "1975-09-12", "fecha_expedicion": "1993-10-01",
        "sexo": "M", "celular": "3014567110", "estado": "INACTIVO", "parentesco": "COTIZANTE",
    },
    {
        "numero_documento": "1000000120", "tipo_documento": "CC",
        "primer_nombre": "LUIS", "segundo_nombre": "FERNANDO",
        "primer_apellido": "ORTIZ", "segundo_apellido": "PEÑA",
        "fecha_nacimiento": "1978-03-09", "fecha_expedicion": "1996-04-15",
        "sexo": "M", "celular": "3154567120", "email": "luis.ortiz@example.com",
        "parentesco": "COTIZANTE",
    },
    {
        "numero_documento": "1000000121", "tipo_documento": "TI",
        "primer_nombre": "MARIANA", "segundo_nombre": "",
        "primer_apellido": "ORTIZ", "segundo_apellido": "CASTRO",
        "fecha_nacimiento": "2013-10-05", "fecha_expedicion": "2020-11-10",
        "sexo": "F", "parentesco": "HIJA",
        "cabeza_tipo_documento": "CC", "cabeza_numero_documento": "1000000120",
    },
)  # fmt: skip
FIXED_PURPOSE = {
    _FAMILY: "cotizante activa con 4 beneficiarios; autorizaciones en cada estado.",
    "1000000102": "cónyuge (beneficiario).",
    "1000000103": "hijo de unos 15 años (beneficiario, TI).",
    "1000000104": "hija de unos 4 años (beneficiaria, RC).",
    "1000000105": "madre de unos 75 años (beneficiaria).",
    "1000000110": "afiliado INACTIVO: el registro no lo deja seguir.",
    "1000000120": (
        "cotizante ya registrado (contraseña Hanna2026Demo) con solicitudes de "
        "autorización en cada estado de vencimiento (Gestión: autorizaciones@gestion.test)."
    ),
    "1000000121": "hija de unos 12 años (beneficiaria, TI) con solicitudes de autorización.",
}

# (CUPS code, service) the demo's authorizations are for.
SERVICES = (
    ("890201", "Consulta de primera vez por medicina general"),
    ("890301", "Consulta de control por medicina general"),
    ("890250", "Consulta de primera vez por especialista en pediatría"),
    ("890208", "Consulta de primera vez por especialista en ginecología"),
    ("902210", "Hemograma IV (hemoglobina, hematocrito y leucograma)"),
    ("903841", "Glucosa en suero u otro fluido"),
    ("881201", "Ecografía de abdomen total"),
    ("871121", "Radiografía de tórax"),
    ("895100", "Electrocardiograma de ritmo o de superficie"),
    ("931000", "Terapia física integral"),
)
# The fixed family's authorizations: one in each state (número, member, service, date, state).
_FIXED_AUTORIZACIONES = (
    ("AUT-0000001", ("CC", _FAMILY), 0, "2025-11-20", "PENDIENTE"),
    ("AUT-0000002", ("CC", _FAMILY), 4, "2025-10-02", "APROBADA"),
    ("AUT-0000003", ("RC", "1000000104"), 2, "2025-09-15", "APROBADA"),
    ("AUT-0000004", ("CC", "1000000105"), 8, "2025-08-01", "NEGADA"),
    ("AUT-0000005", ("TI", "1000000103"), 7, "2025-06-11", "ANULADA"),
    ("AUT-0000006", ("CC", "1000000102"), 6, "2025-01-20", "VENCIDA"),
    ("AUT-0000007", ("CC", "1000000105"), 9, "2025-12-01", "PENDIENTE"),
)


# The registered family's earlier authorizations (the history staff see next to a request).
_ORTIZ_AUTORIZACIONES = (
    ("AUT-9000120", ("CC", "1000000120"), 0, "2025-08-12", "APROBADA"),
    ("AUT-9000121", ("TI", "1000000121"), 2, "2025-09-03", "APROBADA"),
)


def demo_ips() -> list[dict]:
    """Return the demo IPS as CSV rows (column -> text)."""
    return [
        dict(zip(eps_data.IPS_COLUMNS, (_nit(base), *rest), strict=True)) for base, *rest in _IPS
    ]


def _eps_row(**values) -> dict:
    row = dict.fromkeys(eps_data.EPS_COLUMNS, "")
    row.update(regimen="CONTRIBUTIVO", estado="ACTIVO", municipio="08001", ips_nit=IPS_NITS[0])
    row.update(values)
    return row


def _fixed_eps() -> list[dict]:
    rows = []
    for spec in FIXED_EPS:
        row = _eps_row(direccion="Calle 72 # 45-18", **spec)
        if row["parentesco"] != "COTIZANTE" and not row["cabeza_numero_documento"]:
            row["cabeza_tipo_documento"], row["cabeza_numero_documento"] = "CC", _FAMILY
        rows.append(row)
    return rows


def _day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, (end - start).days))


def demo_eps(seed: int = DEFAULT_SEED, families: int = FAMILIES) -> list[dict]:
    """Return the demo EPS affiliates as CSV rows, cotizantes before their beneficiaries."""
    fake = Faker("es_CO")
    fake.seed_instance(seed)
    rng = random.Random(f"eps-{seed}")  # noqa: S311 (fake data from a seed)
    rows = _fixed_eps()
    taken = {(r["tipo_documento"], r["numero_documento"]) for r in rows}

    def document(tipo: str) -> str:
        while True:
            if tipo == "CC":
                number = rng.randint(10_000_000, 1_199_999_999)
            elif tipo == "TI":
                number = rng.randint(1_000_000_000, 1_099_999_999)
            else:
                number = rng.randint(1_000_000_000, 1_199_999_999)
            if number not in _RESERVED and (tipo, str(number)) not in taken:
                taken.add((tipo, str(number)))
                return str(number)

    def person(parentesco: str, born: date, female: bool, apellido: str, head=None) -> dict:
        age = (_LATEST - born).days // 365
        tipo = "CC" if age >= 18 else "TI" if age >= 7 else "RC"
        first = (fake.first_name_female if female else fake.first_name_male)().split()
        expedicion = born + timedelta(
            days=365 * 18 if tipo == "CC" else 365 * 7 if tipo == "TI" else 20
        )
        row = _eps_row(
            tipo_documento=tipo,
            numero_documento=document(tipo),
            primer_nombre=first[0].upper(),
            segundo_nombre=" ".join(first[1:]).upper(),
            primer_apellido=apellido,
            segundo_apellido=fake.last_name().upper(),
            fecha_nacimiento=born.isoformat(),
            fecha_expedicion=min(expedicion, _LATEST).isoformat(),
            sexo="F" if female else "M",
            parentesco=parentesco,
            municipio=municipio,
            ips_nit=ips,
            regimen=regimen,
            direccion=fake.street_address()[:160],
        )
        if age >= 15 and rng.random() < 0.85:
            row["celular"] = f"3{rng.choice((0, 1, 2, 5))}{rng.randrange(10**8):08d}"
        if age >= 18 and rng.random() < 0.6:
            row["email"] = f"{fake.user_name()}{rng.randint(1, 99)}@example.org"
        if head:
            row["cabeza_tipo_documento"] = head["tipo_documento"]
            row["cabeza_numero_documento"] = head["numero_documento"]
        return row

    for _ in range(families):
        municipio = rng.choice(("08001", "08758", "13001", "23001", "20001", "47001", "70001"))
        ips = rng.choice(IPS_NITS)
        regimen = "SUBSIDIADO" if rng.random() < 0.4 else "CONTRIBUTIVO"
        female = rng.random() < 0.5
        born = _day(rng, date(1960, 1, 1), date(2002, 12, 31))
        apellido = fake.last_name().upper()
        head = person("COTIZANTE", born, female, apellido)
        draw = rng.random()
        head["estado"] = "INACTIVO" if draw < 0.05 else "SUSPENDIDO" if draw < 0.08 else "ACTIVO"
        family = [head]
        if rng.random() < 0.6:
            family.append(
                person(
                    "CONYUGE",
                    _day(
                        rng,
                        born - timedelta(days=3000),
                        min(born + timedelta(days=3000), date(2004, 12, 31)),
                    ),
                    not female,
                    fake.last_name().upper(),
                    head,
                )
            )
        for _ in range(rng.choice((0, 0, 1, 1, 2, 2, 3))):
            child = _day(
                rng,
                max(born + timedelta(days=18 * 365), date(1995, 1, 1)),
                _LATEST - timedelta(days=30),
            )
            family.append(person("HIJO", child, rng.random() < 0.5, apellido, head))
        if rng.random() < 0.1:
            family.append(
                person(
                    "MADRE",
                    born - timedelta(days=rng.randint(20, 35) * 365),
                    True,
                    fake.last_name().upper(),
                    head,
                )
            )
        for member in family[1:]:
            member["estado"] = head["estado"]
        rows += family
    return rows


def demo_autorizaciones(eps_rows: list[dict], seed: int = DEFAULT_SEED) -> list[dict]:
    """Return the demo authorizations as CSV rows: the fixed family's, then about one a person."""
    rng = random.Random(f"eps-autorizaciones-{seed}")  # noqa: S311
    rows = []

    def add(numero, key, service, fecha, estado, ips):
        codigo, nombre = SERVICES[service]
        values = (numero, *key, codigo, nombre, fecha, estado, ips)
        rows.append(dict(zip(eps_data.AUTORIZACION_COLUMNS, values, strict=True)))

    for numero, key, service, fecha, estado in _FIXED_AUTORIZACIONES:
        add(numero, key, service, fecha, estado, IPS_NITS[0])
    reserved = {str(n) for n in _RESERVED}
    estados = tuple(eps_data.ESTADOS_AUTORIZACION)
    for row in eps_rows:
        if row["numero_documento"] in reserved:
            continue
        for _ in range(rng.choice((0, 1, 1, 2))):
            fecha = _day(rng, date(2024, 1, 1), _LATEST)
            estado = rng.choices(estados, weights=(2, 10, 2, 1, 2))[0]
            add(
                f"AUT-{len(rows) + 1:07d}",
                (row["tipo_documento"], row["numero_documento"]),
                rng.randrange(len(SERVICES)),
                fecha.isoformat(),
                estado,
                rng.choice(("", row["ips_nit"])),
            )
    # After the drawn ones, so their numbers stay what they were before this family came.
    for numero, key, service, fecha, estado in _ORTIZ_AUTORIZACIONES:
        add(numero, key, service, fecha, estado, IPS_NITS[1])
    return rows


def _load(rows: list[dict], clean, load) -> ImportReport:
    """Run demo rows through an importer's cleaning and cross-row checks; fail loudly if bad."""
    report = ImportReport()
    lines_rows = []
    for line, values in enumerate(rows, start=2):
        row, problems = clean(values)
        if problems:
            raise ValueError(f"demo EPS row {line}: {problems}")
        lines_rows.append((line, row))
    load(lines_rows, report)
    if not report.ok:
        raise ValueError(f"demo EPS data rejected: {report.rejected}")
    return report


def load_demo_eps(seed: int = DEFAULT_SEED, upload_dir: str | os.PathLike | None = None) -> dict:
    """Upsert the demo IPS, affiliates and authorizations; return counts. The caller owns the transaction.

    Also registers the Ortiz family's account and files its authorization
    requests (their PDFs under upload_dir; without one, as in a bare database,
    the requests are left out).
    """
    eps_rows = demo_eps(seed)
    ips = _load(demo_ips(), eps_data.clean_ips, eps_data.load_ips)
    eps = _load(eps_rows, eps_data.clean_eps, eps_data.load_eps)
    aut = _load(
        demo_autorizaciones(eps_rows, seed),
        eps_data.clean_autorizacion,
        eps_data.load_autorizaciones,
    )
    account = upsert_demo_account()
    filed = load_demo_solicitudes(account, upload_dir) if upload_dir else 0
    return {
        "cuenta": account.login,
        "solicitudes": SolicitudAutorizacion.select().count(),
        "solicitudes_created": filed,
        "ips": Ips.select().count(),
        "afiliados": EpsAfiliado.select().count(),
        "afiliados_created": eps.created,
        "cotizantes": EpsAfiliado.select().where(EpsAfiliado.cabeza.is_null()).count(),
        "autorizaciones": Autorizacion.select().count(),
        "autorizaciones_created": aut.created,
        "ips_created": ips.created,
        "fixed": [
            {
                "documento": f"{r['tipo_documento']} {r['numero_documento']}",
                "nombre": " ".join(
                    r[k]
                    for k in (
                        "primer_nombre",
                        "segundo_nombre",
                        "primer_apellido",
                        "segundo_apellido",
                    )
                    if r[k]
                ),
                "purpose": FIXED_PURPOSE[r["numero_documento"]],
            }
            for r in _fixed_eps()
        ],
    }


# --- the registered family and its authorization requests (G3 → S1) ----------------

DEMO_PASSWORD = "Hanna2026Demo"  # noqa: S105 - public demo password, as core.demo.DEMO_PASSWORD
DEMO_ACCOUNT = ("CC", "1000000120")
DEMO_DECIDER = "autorizaciones@gestion.test"  # core.demo's staff member of that role
SOLICITUD_OWNER = "solicitud_autorizacion"  # Attachment.owner_type, as the office files it
TERM_DAYS = 5  # working days to answer (G3)

# (número, member, municipio, observación, plan): the plan puts the request in one due
# state on the day the demo is loaded (_timeline), or decides it.
# Numbers the office can open: core.genesis.NUMERO_RE has no 0 or 1 (read aloud).
_DEMO_SOLICITUDES = (
    ("DEMO-2222", ("CC", "1000000120"), "08001",
     "Control con medicina interna por hipertensión; adjunto la orden del médico.", "vencida"),
    ("DEMO-3333", ("TI", "1000000121"), "08758",
     "Consulta de pediatría de control, orden de la IPS.", "vence_hoy"),
    ("DEMO-4444", ("CC", "1000000120"), "08001",
     "Examen de glucosa en ayunas según la orden adjunta.", "por_vencer"),
    ("DEMO-5555", ("TI", "1000000121"), "08001",
     "Terapia física: 10 sesiones, orden del ortopedista.", "a_tiempo"),
    ("DEMO-6666", ("CC", "1000000120"), "13001",
     "Ecografía de abdomen total ordenada en urgencias.", "aprobada"),
    ("DEMO-7777", ("TI", "1000000121"), "08001",
     "Radiografía de tórax; la foto de la orden quedó borrosa.", "rechazada"),
)  # fmt: skip
_APPROVED_SERVICE = SERVICES[6]  # the approved request's authorization
_REJECTED_WHY = (
    "La orden médica adjunta no se lee: envíe una nueva solicitud con una foto nítida "
    "de la orden completa, con la firma del médico."
)


def upsert_demo_account() -> Account:
    """Create or restore the Ortiz family's Génesis account: password known, carta accepted."""
    afiliado = EpsAfiliado.find(*DEMO_ACCOUNT)
    login = genesis.login_of(*DEMO_ACCOUNT)
    now = clock.utcnow()
    credential = dict(
        password_hash=passwords.hash_password(DEMO_PASSWORD),
        status=Account.ACTIVE,
        must_change_password=False,
        failed_logins=0,
        login_blocked_until=None,
        celular=afiliado.celular,
        email=afiliado.email,
    )
    profile = dict(
        temp_password_expires_at=None,
        privacy_accepted_at=now,
        privacy_version=genesis.PRIVACY_VERSION,
        carta_accepted_at=now,
        carta_version=genesis.CARTA_VERSION,
    )
    account = Account.by_login(Account.EPS, login)
    if account is None:
        return EpsUser.create_account(afiliado, login, **credential, **profile)
    Account.update(**credential).where(Account.id == account.id).execute()
    # A demo account restored keeps when it first accepted; only a missing acceptance is filled.
    EpsUser.update(
        temp_password_expires_at=None,
        carta_accepted_at=fn.COALESCE(EpsUser.carta_accepted_at, now),
        carta_version=genesis.CARTA_VERSION,
    ).where(EpsUser.account == account.id).execute()
    return Account.get_by_id(account.id)


def _timeline(plan: str, now: datetime) -> tuple[datetime, datetime | None]:
    """Return (created_at, decided_at) putting a request in plan's state on now's Bogotá day."""
    today = workdays.to_local(now).date()
    due_today = today if workdays.is_working_day(today) else workdays.next_working_day(today)
    # A request received on working day D at 10:00 is due TERM_DAYS working days after D.
    due = {
        "vencida": workdays.working_days_before(today, 2),
        "vence_hoy": due_today,
        "por_vencer": workdays.next_working_day(today),
    }
    if plan in due:
        return workdays.bogota_at(workdays.working_days_before(due[plan], TERM_DAYS), 10), None
    if plan == "a_tiempo":
        return now - timedelta(hours=1), None
    filed = workdays.working_days_before(today, 12 if plan == "aprobada" else 9)
    return workdays.bogota_at(filed, 9, 30), workdays.bogota_at(
        workdays.working_days_before(today, 9 if plan == "aprobada" else 6), 11
    )


def demo_pdf(lines: tuple[str, ...]) -> bytes:
    """Return a one-page PDF with lines of text (Helvetica): a stand-in for a medical order."""

    def literal(text: str) -> bytes:
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        return escaped.encode("cp1252", "replace")

    content = b"BT /F1 13 Tf 72 780 Td 20 TL\n"
    content += b"".join(b"(" + literal(line) + b") '\n" for line in lines) + b"ET"
    objects = (
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
    )
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _demo_key(pdf: bytes) -> str:
    """Return the storage key of a demo file: from its bytes, so every load writes the same file."""
    return base64.urlsafe_b64encode(hashlib.sha256(pdf).digest()).decode()[:32]


def _file_support(solicitud: SolicitudAutorizacion, member: EpsAfiliado, upload_dir) -> None:
    """Give a demo request its PDF: stored once under a key of its content, recorded once.

    The key is not random as an upload's is: a demo loaded into a fresh database
    (each test run, a reset) finds its files already there instead of adding six
    more to UPLOAD_DIR, and a wiped UPLOAD_DIR gets them back on the next load.
    """
    pdf = demo_pdf(
        (
            "CAJACOPI EPS - ORDEN MÉDICA (DEMOSTRACIÓN)",
            f"Paciente: {member.nombre_completo}",
            f"Documento: {member.tipo_documento} {member.numero_documento}",
            f"Solicitud: {solicitud.numero}",
            solicitud.observacion,
            "Documento de prueba generado por el portal: no es una orden real.",
        )
    )
    key = _demo_key(pdf)
    path = uploads.path_for(key, upload_dir)
    if not path.exists():
        # Checked by content like any upload, then moved under its fixed key. Inside the
        # demo's transaction (files.upload refuses that): a rollback leaves only this file.
        stored = uploads.store(
            io.BytesIO(pdf), f"orden-{solicitud.numero}.pdf", uploads.AUTHORIZATION, upload_dir
        )
        drawn = uploads.path_for(stored.key, upload_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(drawn, path)
        for folder in (drawn.parent, drawn.parent.parent):  # the random key's, now empty
            try:
                folder.rmdir()
            except OSError:
                break
    values = dict(
        key=key,
        original_name=f"orden-{solicitud.numero}.pdf",
        content_type=uploads.Kind.PDF.mime,
        kind=uploads.Kind.PDF.value,
        size=len(pdf),
        sha256=hashlib.sha256(pdf).hexdigest(),
    )
    found = Attachment.of(SOLICITUD_OWNER, solicitud.id)
    if not found:
        Attachment.create(
            owner_type=SOLICITUD_OWNER,
            owner_id=solicitud.id,
            created_by=solicitud.account_id,
            **values,
        )
    elif found[0].key != key:
        Attachment.update(**values).where(Attachment.id == found[0].id).execute()


def load_demo_solicitudes(account: Account, upload_dir: str | os.PathLike) -> int:
    """File the Ortiz family's demo requests once (dated from today), each with its PDF; count new ones.

    A request already there is left as it is (staff may have decided it since);
    only its file is stored again when missing.
    """
    now = clock.utcnow()
    decider = Account.by_login(Account.STAFF, DEMO_DECIDER)
    ips = Ips.get_or_none(Ips.nit == eps_data.normalize_nit(IPS_NITS[0]))
    created = 0
    for numero, key, municipio, observacion, plan in _DEMO_SOLICITUDES:
        member = EpsAfiliado.find(*key)
        solicitud = SolicitudAutorizacion.get_or_none(SolicitudAutorizacion.numero == numero)
        if solicitud is None:
            created_at, decided_at = _timeline(plan, now)
            values = dict(
                numero=numero,
                afiliado=member.id,
                account=account.id,
                municipio=municipio,
                observacion=observacion,
                form_key=f"demo-{numero}",
                created_at=created_at,
                due_on=workdays.add_working_days(created_at, TERM_DAYS),
            )
            if plan == "aprobada":
                codigo, nombre = _APPROVED_SERVICE
                autorizacion = Autorizacion.create(
                    numero=f"AUT-{numero}",
                    afiliado=member.id,
                    codigo_servicio=codigo,
                    nombre_servicio=nombre,
                    fecha=workdays.to_local(decided_at).date(),
                    estado="APROBADA",
                    ips=ips.id if ips else None,
                    created_at=decided_at,
                    updated_at=decided_at,
                )
                values.update(estado=SolicitudAutorizacion.APROBADA, autorizacion=autorizacion.id)
            elif plan == "rechazada":
                values.update(estado=SolicitudAutorizacion.RECHAZADA, motivo_rechazo=_REJECTED_WHY)
            if decided_at is not None:
                values.update(decided_at=decided_at, decided_by=decider.id if decider else None)
            solicitud = SolicitudAutorizacion.create(**values)
            created += 1
        _file_support(solicitud, member, upload_dir)
    return created
