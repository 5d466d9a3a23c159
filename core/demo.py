"""Demo data (SPEC S2): fake but realistic Caja affiliates and two ready Hanna accounts.

Everything is drawn from one seed, so a seed always gives the same people, and
rows are upserted by natural key, so loading twice changes nothing.

Fixed records, for walking the journeys by hand (README):

- Afiliado CC 1000000001, ANA MARÍA PÉREZ GÓMEZ: active, category A, full data
  (profession, spouse, join date, birth date, mobile). Create an account and
  answer the activation quiz.
- Afiliado CC 1000000002, CARLOS ANDRÉS RODRÍGUEZ LÓPEZ: active, thin data
  (no profession, spouse, employer or dates) but a mobile: the SMS-code path.
- Afiliado CC 1000000003, LUISA FERNANDA MARTÍNEZ RUIZ, with the active account
  afiliada@hanna.test / Hanna2026Demo.
- Non-affiliate account juan.torres@hanna.test / Hanna2026Demo (CC 1000000099).
- Convenios (H6): the front desk convenio@hanna.test / Hanna2026Demo at two sedes
  of Gimnasio Brío Caribe, with a year of look-ups and uses (core.convenios_demo),
  and one affiliate for every case the manual names, CC 1000000010–1000000015
  (FIXED_PURPOSE says which); CC 1000000020 is not in the data (no afiliado).
"""

from __future__ import annotations

import random
import unicodedata
from datetime import date, timedelta

from faker import Faker
from stdnum.co import nit as stdnum_nit

import models
from core import convenios_demo, eps_demo, ips_demo, pqrs_demo
from core.clock import utcnow
from core.convenios_data import load_demo_convenios
from core.importer import COLUMNS, upsert_afiliados
from core.passwords import hash_password
from models import (
    Account,
    Afiliado,
    ConsultaConvenio,
    HannaUser,
    StaffMember,
    StaffRole,
    UsoConvenio,
)

__all__ = [
    "COMPANY_WORDS",
    "DEMO_PASSWORD",
    "FIXED_AFILIADOS",
    "FIXED_USERS",
    "JOB_TITLES",
    "NO_AFILIADO",
    "PROFESSIONS",
    "demo_afiliados",
    "demo_companies",
    "load_demo",
    "summary_lines",
]

# Words the fake people are made of, most common first: real exports are
# skewed (many "Docente", few "Agrónomo") and written in more than one way.
PROFESSIONS = (
    "Docente",
    "Ama de casa",
    "Auxiliar administrativo",
    "Comerciante",
    "Conductor",
    "Servicios generales",
    "Vendedor",
    "Contador público",
    "Auxiliar de enfermería",
    "Operario",
    "Secretaria",
    "Vigilante",
    "Administrador de empresas",
    "Enfermero",
    "Ingeniero civil",
    "Mecánico",
    "Abogado",
    "Técnico en sistemas",
    "Auxiliar contable",
    "Licenciado en educación",
    "Ingeniero de sistemas",
    "Mensajero",
    "Electricista",
    "Psicólogo",
    "Médico general",
    "Cajero",
    "Estilista",
    "Ingeniero industrial",
    "Economista",
    "Tecnólogo en logística",
    "Fisioterapeuta",
    "Bacteriólogo",
    "Odontólogo",
    "Trabajador social",
    "Chef",
    "Diseñador gráfico",
    "Arquitecto",
    "Agrónomo",
)
JOB_TITLES = (
    "Asesor comercial",
    "Auxiliar de bodega",
    "Operador de planta",
    "Vendedor de mostrador",
    "Conductor de reparto",
    "Recepcionista",
    "Supervisor de turno",
    "Auxiliar de cocina",
    "Cajero principal",
    "Docente de primaria",
    "Patrullero",
    "Técnico de soporte",
    "Analista contable",
    "Ejecutivo de cuenta",
    "Jefe de mantenimiento",
    "Coordinador de compras",
    "Líder de proyectos",
    "Profesional de gestión",
    "Coordinador de talento humano",
    "Director administrativo",
)
COMPANY_WORDS = (
    (
        "Distribuidora",
        "Comercializadora",
        "Inversiones",
        "Servicios",
        "Industrias",
        "Transportes",
        "Construcciones",
        "Soluciones",
    ),
    (
        "del Caribe",
        "Andina",
        "del Norte",
        "Costera",
        "Integral",
        "Nacional",
        "La Esperanza",
        "El Prado",
        "Santa Marta",
        "del Magdalena",
    ),
    ("S.A.S.", "Ltda.", "S.A."),
)
# Colombian mobile operators' prefixes, the busiest first.
MOBILE_PREFIXES = (300, 310, 311, 312, 313, 314, 315, 316, 317, 318, 320, 321, 301, 304, 350)

DEFAULT_SEED = 2026
AFFILIATES = 1000
COMPANIES = 24
DEMO_PASSWORD = "Hanna2026Demo"

# (estado, weight): mostly active, as in a real Caja export.
_ESTADOS = (("ACTIVO", 76), ("INACTIVO", 8), ("RETIRADO", 7), ("SUSPENDIDO", 5), ("MORA", 4))
_CATEGORIAS = (("A", 55), ("B", 25), ("C", 12), ("", 8))
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
# Landline area digits after "60": Bogotá, Cali, Medellín, Barranquilla…
_AREA_DIGITS = "1245678"
_BORN_FROM, _BORN_TO = date(1950, 1, 1), date(2006, 12, 31)
_JOINED_FROM, _JOINED_TO = date(1990, 1, 1), date(2025, 12, 31)
# CC 1000000000–1000000999 is kept for the fixed records below.
_RESERVED_CC = range(1_000_000_000, 1_000_001_000)


def _nit(base: int) -> str:
    """Return a NIT as stored: the nine digits and the DIAN check digit."""
    digits = str(base)
    return digits + stdnum_nit.calc_check_digit(digits)


def _afiliado(**values) -> dict:
    """Return a full affiliate row with empty defaults for the columns not given."""
    row = dict.fromkeys(COLUMNS, "")
    row.update(fecha_nacimiento=None, fecha_ingreso_empresa=None)
    row.update(values)
    return row


FIXED_AFILIADOS: tuple[dict, ...] = (
    _afiliado(
        tipo_documento="CC",
        numero_documento="1000000001",
        primer_nombre="ANA",
        segundo_nombre="MARÍA",
        primer_apellido="PÉREZ",
        segundo_apellido="GÓMEZ",
        fecha_nacimiento=date(1986, 4, 12),
        email="ana.perez@example.com",
        celular="3104567821",
        telefono="6015551234",
        estado="ACTIVO",
        categoria="A",
        empresa_nit=_nit(900514237),
        empresa_nombre="Comercializadora Andina S.A.S.",
        empresa_estado="ACTIVA",
        fecha_ingreso_empresa=date(2015, 2, 2),
        profesion="Contador público",
        conyuge_celular="3157894512",
        conyuge_profesion="Auxiliar administrativo",
        conyuge_cargo="Supervisor de turno",
    ),
    _afiliado(
        tipo_documento="CC",
        numero_documento="1000000002",
        primer_nombre="CARLOS",
        segundo_nombre="ANDRÉS",
        primer_apellido="RODRÍGUEZ",
        segundo_apellido="LÓPEZ",
        celular="3209876543",
        estado="ACTIVO",
        categoria="A",
    ),
    _afiliado(
        tipo_documento="CC",
        numero_documento="1000000003",
        primer_nombre="LUISA",
        segundo_nombre="FERNANDA",
        primer_apellido="MARTÍNEZ",
        segundo_apellido="RUIZ",
        fecha_nacimiento=date(1990, 9, 21),
        email="afiliada@hanna.test",
        celular="3126543210",
        estado="ACTIVO",
        categoria="B",
        empresa_nit=_nit(830047519),
        empresa_nombre="Inversiones del Norte Ltda.",
        empresa_estado="ACTIVA",
        fecha_ingreso_empresa=date(2019, 7, 15),
        profesion="Psicólogo",
    ),
    # Convenios (H6): one person for every case of the manual. The employers in
    # arrears and inactive are theirs alone (demo_companies leaves them out).
    _afiliado(
        tipo_documento="CC",
        numero_documento="1000000010",
        primer_nombre="JORGE",
        segundo_nombre="ELIÉCER",
        primer_apellido="MANJARRÉS",
        segundo_apellido="OROZCO",
        celular="3005550110",
        estado="ACTIVO",
        categoria="A",
        empresa_nit=_nit(900514237),
        empresa_nombre="Comercializadora Andina S.A.S.",
        empresa_estado="ACTIVA",
    ),
    _afiliado(
        tipo_documento="CC",
        numero_documento="1000000011",
        primer_nombre="DIANA",
        segundo_nombre="PATRICIA",
        primer_apellido="CASTRO",
        segundo_apellido="VILLA",
        celular="3015550111",
        estado="ACTIVO",
        categoria="C",
    ),
    _afiliado(
        tipo_documento="CC",
        numero_documento="1000000012",
        primer_nombre="RAFAEL",
        primer_apellido="DE LA HOZ",
        segundo_apellido="MEJÍA",
        estado="INACTIVO",
        categoria="B",
        empresa_nit=_nit(830047519),
        empresa_nombre="Inversiones del Norte Ltda.",
        empresa_estado="ACTIVA",
    ),
    _afiliado(
        tipo_documento="CC",
        numero_documento="1000000013",
        primer_nombre="YOLANDA",
        primer_apellido="PADILLA",
        segundo_apellido="SUÁREZ",
        estado="RETIRADO",
        categoria="A",
    ),
    _afiliado(
        tipo_documento="CC",
        numero_documento="1000000014",
        primer_nombre="ÉDGAR",
        segundo_nombre="ALONSO",
        primer_apellido="BARRIOS",
        segundo_apellido="NIEBLES",
        celular="3115550114",
        estado="ACTIVO",
        categoria="B",
        empresa_nit=_nit(902345671),
        empresa_nombre="Transportes del Magdalena S.A.S.",
        empresa_estado="MORA",
    ),
    _afiliado(
        tipo_documento="CC",
        numero_documento="1000000015",
        primer_nombre="KAREN",
        segundo_nombre="JULIETH",
        primer_apellido="OSPINA",
        segundo_apellido="ROMERO",
        estado="ACTIVO",
        categoria="A",
        empresa_nit=_nit(902765439),
        empresa_nombre="Construcciones El Prado Ltda.",
        empresa_estado="INACTIVA",
    ),
)
FIXED_PURPOSE = {
    "1000000001": "Crear cuenta y responder las preguntas de activación (datos completos).",
    "1000000002": "Crear cuenta con datos escasos: activación con código por SMS.",
    "1000000003": "Afiliada con cuenta activa (afiliada@hanna.test).",
    "1000000010": "Convenios: trabajador ACTIVO, Tarifa A (con beneficio: Reportar Uso).",
    "1000000011": "Convenios: independiente ACTIVA sin empresa, Tarifa C (con beneficio).",
    "1000000012": "Convenios: afiliado INACTIVO (sin beneficio, Tarifa D).",
    "1000000013": "Convenios: afiliada RETIRADA (sin beneficio, Tarifa D).",
    "1000000014": "Convenios: trabajador ACTIVO de una empresa en MORA (sin beneficio, Tarifa D).",
    "1000000015": "Convenios: trabajadora ACTIVA de una empresa INACTIVA (sin beneficio, Tarifa D).",
}
# A cédula in the reserved range that is in no demo data: the desk's "no afiliado".
NO_AFILIADO = "1000000020"

FIXED_USERS: tuple[dict, ...] = (
    {
        "email": "juan.torres@hanna.test",
        "tipo_documento": "CC",
        "numero_documento": "1000000099",
        "primer_nombre": "JUAN",
        "segundo_nombre": "CAMILO",
        "primer_apellido": "TORRES",
        "segundo_apellido": "RESTREPO",
        "celular": "3015550199",
        "telefono": "",
        "fecha_nacimiento": date(1992, 11, 3),
        "afiliado": None,
        "purpose": "Usuario Hanna activo, no afiliado.",
    },
    {
        "email": "afiliada@hanna.test",
        "tipo_documento": "CC",
        "numero_documento": "1000000003",
        "primer_nombre": "LUISA",
        "segundo_nombre": "FERNANDA",
        "primer_apellido": "MARTÍNEZ",
        "segundo_apellido": "RUIZ",
        "celular": "3126543210",
        "telefono": "",
        "fecha_nacimiento": date(1990, 9, 21),
        "afiliado": ("CC", "1000000003"),
        "purpose": "Usuario Hanna activo, afiliado (CC 1000000003).",
    },
)

# A front-desk user of the first demo entity, already granted CONVENIOS (H4).
CONVENIO_USER = {
    "email": "convenio@hanna.test",
    "tipo_documento": "CC",
    "numero_documento": "1000000098",
    "primer_nombre": "MARTA",
    "segundo_nombre": "LUCÍA",
    "primer_apellido": "ARIZA",
    "segundo_apellido": "PÉREZ",
    "celular": "3015550198",
    "telefono": "",
    "fecha_nacimiento": date(1988, 6, 14),
    "afiliado": None,
    "purpose": "Usuario Hanna con la aplicación CONVENIOS (recepción de una entidad).",
}

# One staff member per role; the TOTP secrets are published in the README so a
# tester can add them to an authenticator app (demo only, never in production).
FIXED_STAFF: tuple[dict, ...] = tuple(
    {"email": f"{role}@gestion.test", "nombre": nombre, "role": role, "totp_secret": secret}
    for role, nombre, secret in (
        ("admin", "Adriana Administradora", "ZTT2FTY24BCZRHH4SFH3SWSBKJXRM6UD"),
        ("afiliaciones", "Felipe Afiliaciones", "RIV56LURPXZ64MLTN27D6GYKBAXNDJV6"),
        ("convenios", "Carolina Convenios", "6QT3XMMQGYCORXPM7SPCZ53MDPJYNHUU"),
        ("autorizaciones", "Andrés Autorizaciones", "DH5VPHT237LNUIQL7ABE3DWZXOZU3WSL"),
        ("pqrs", "Paola PQRSF", "MDIZVT5GKWTR67O3Z3SHLHTMTVLHFOWP"),
        ("soporte", "Sergio Soporte", "XRTHF3YMFWOCKRFJRVUU5NMC2ZP2CEHZ"),
    )
)


def _weighted(rng: random.Random, pairs: tuple[tuple[str, int], ...]) -> str:
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights=weights)[0]


def _day_between(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, (end - start).days))


def _skewed(rng: random.Random, words: tuple) -> str:
    """Pick a word, the first ones far more often (as in a real export)."""
    return rng.choices(words, weights=[1 / (i + 1) ** 0.9 for i in range(len(words))])[0]


def _as_exported(rng: random.Random, text: str) -> str:
    """Write a value as a person typed it into the Caja's system, now and then in capitals."""
    if rng.random() < 0.15:
        return text.upper()
    if rng.random() < 0.1:
        return _unaccented(text)
    return text


def _unaccented(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _mobile(rng: random.Random) -> str:
    return f"{_skewed(rng, MOBILE_PREFIXES)}{rng.randrange(10**7):07d}"


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and c.isalnum()).lower()


def demo_companies(seed: int = DEFAULT_SEED) -> list[tuple[str, str]]:
    """Return (nit, name) employers, named from the quiz's company words."""
    rng = random.Random(f"companies-{seed}")
    # The fixed records' active employers are among them: many people work there
    # too. The one in arrears and the inactive one stay the fixed records' alone.
    fixed = list(
        dict.fromkeys(
            (r["empresa_nit"], r["empresa_nombre"])
            for r in FIXED_AFILIADOS
            if r["empresa_nit"] and r["empresa_estado"] == "ACTIVA"
        )
    )
    names = [name for _, name in fixed]
    others = {r["empresa_nombre"] for r in FIXED_AFILIADOS} - set(names)
    while len(names) < COMPANIES:
        name = " ".join(rng.choice(words) for words in COMPANY_WORDS)
        if name not in names and name not in others:
            names.append(name)
    bases = rng.sample(range(800_000_000, 901_999_999), COMPANIES - len(fixed))
    return fixed + [(_nit(b), name) for b, name in zip(bases, names[len(fixed) :], strict=True)]


def demo_afiliados(seed: int = DEFAULT_SEED, count: int = AFFILIATES) -> list[dict]:
    """Return the demo affiliate rows (fixed ones first); the same seed gives the same rows."""
    fake = Faker("es_CO")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    companies = demo_companies(seed)
    inactive_companies = {nit for nit, _ in companies[-3:]}
    rows = [dict(row) for row in FIXED_AFILIADOS]
    keys = {(r["tipo_documento"], r["numero_documento"]) for r in rows}
    emails: set[str] = set()

    while len(rows) < count:
        tipo = _weighted(rng, (("CC", 90), ("CE", 6), ("PT", 4)))
        if tipo == "CC":
            # Older cédulas have 8 digits; those issued since 2003 or so, 10 (10…, 11…).
            if rng.random() < 0.5:
                number = rng.randint(10_000_000, 99_999_999)
            else:
                number = rng.randint(1_000_000_000, 1_199_999_999)
            if number in _RESERVED_CC:
                continue
        else:
            number = rng.randint(100_000, 9_999_999)
        key = (tipo, str(number))
        if key in keys:
            continue
        keys.add(key)

        female = rng.random() < 0.55
        first = fake.first_name_female if female else fake.first_name_male
        names = first().split()
        if len(names) == 1 and rng.random() < 0.6:
            names.append(first().split()[0])
        row = _afiliado(
            tipo_documento=tipo,
            numero_documento=str(number),
            primer_nombre=names[0].upper(),
            segundo_nombre=" ".join(names[1:]).upper(),
            primer_apellido=fake.last_name().upper(),
            segundo_apellido=fake.last_name().upper() if rng.random() < 0.9 else "",
            estado=_weighted(rng, _ESTADOS),
            categoria=_weighted(rng, _CATEGORIAS),
        )
        # A few people the Caja knows almost nothing about (the quiz is unfair for them).
        if rng.random() < 0.06:
            if rng.random() < 0.5:
                row["celular"] = _mobile(rng)
            rows.append(row)
            continue

        if rng.random() < 0.95:
            row["fecha_nacimiento"] = _day_between(rng, _BORN_FROM, _BORN_TO)
        if rng.random() < 0.7:
            local = f"{_ascii(row['primer_nombre'])}.{_ascii(row['primer_apellido'])}"
            email = f"{local}{rng.randint(1, 999)}@{rng.choice(_EMAIL_DOMAINS)}"
            if email not in emails:
                emails.add(email)
                row["email"] = email
        if rng.random() < 0.9:
            row["celular"] = _mobile(rng)
        if rng.random() < 0.6:
            row["telefono"] = f"60{rng.choice(_AREA_DIGITS)}{rng.randrange(10**7):07d}"
        if rng.random() < 0.9:
            nit, name = rng.choice(companies)
            row["empresa_nit"], row["empresa_nombre"] = nit, name
            row["empresa_estado"] = "INACTIVA" if nit in inactive_companies else "ACTIVA"
            if rng.random() < 0.85:
                born = row["fecha_nacimiento"] or date(1970, 1, 1)
                start = max(_JOINED_FROM, born + timedelta(days=18 * 366))
                row["fecha_ingreso_empresa"] = _day_between(rng, start, _JOINED_TO)
        if rng.random() < 0.85:
            row["profesion"] = _as_exported(rng, _skewed(rng, PROFESSIONS))
        # About half have a spouse on file, not always with every field.
        if rng.random() < 0.5:
            if rng.random() < 0.9:
                row["conyuge_celular"] = _mobile(rng)
            if rng.random() < 0.85:
                row["conyuge_profesion"] = _as_exported(rng, _skewed(rng, PROFESSIONS))
            if rng.random() < 0.75:
                row["conyuge_cargo"] = _as_exported(rng, _skewed(rng, JOB_TITLES))
        rows.append(row)
    return rows


def _upsert_user(spec: dict, password_hash: str, now) -> bool:
    """Create or refresh one demo account; return True if it was created."""
    values = {k: v for k, v in spec.items() if k not in ("purpose", "afiliado")}
    values["afiliado"] = Afiliado.find(*spec["afiliado"]) if spec["afiliado"] else None
    values.update(
        password_hash=password_hash,
        status=Account.ACTIVE,
        quiz_failures=0,
        failed_logins=0,
        login_blocked_until=None,
        blocked_at=None,
    )
    holder = HannaUser.get_or_none(
        (HannaUser.tipo_documento == spec["tipo_documento"])
        & (HannaUser.numero_documento == spec["numero_documento"])
    )
    user = Account.by_email(spec["email"]) or (holder.account if holder else None)
    if user is None:
        HannaUser.create_account(**values, activated_at=now)
        return True
    credential, profile = HannaUser.split(values)
    profile["activated_at"] = user.hanna.activated_at or now
    Account.update(login=credential["email"], **credential).where(Account.id == user.id).execute()
    HannaUser.update(**profile).where(HannaUser.account == user.id).execute()
    return False


def _upsert_staff(spec: dict, password_hash: str, now) -> bool:
    """Create or refresh one demo staff member with its role and TOTP secret."""
    values = dict(
        password_hash=password_hash,
        status=Account.ACTIVE,
        totp_secret=spec["totp_secret"],
        totp_enrolled_at=now,
        totp_last_step=None,
        failed_logins=0,
        login_blocked_until=None,
    )
    account = Account.by_login(Account.STAFF, spec["email"])
    created = account is None
    if created:
        account = Account.create(
            kind=Account.STAFF, login=spec["email"], email=spec["email"], **values
        )
        StaffMember.create(account=account, nombre=spec["nombre"])
    else:
        Account.update(**values).where(Account.id == account.id).execute()
    StaffRole.insert(account=account, role=spec["role"]).on_conflict_ignore().execute()
    return created


def _load_convenio_demo(rows: list[dict], seed: int) -> dict:
    """Grant the demo desk its two sedes and write its year of look-ups (once); count them."""
    user = Account.by_email(CONVENIO_USER["email"])  # upserted just before
    sedes = convenios_demo.grant_demo_user(user)
    reserved = {str(n) for n in _RESERVED_CC}
    # The fixed records are for trying by hand: no history of theirs in the look-up log.
    population = [r for r in rows if r["numero_documento"] not in reserved]
    taken = {r["numero_documento"] for r in rows} | reserved
    consultas, usos = convenios_demo.load_history(user, sedes, population, taken, seed)
    return {
        "email": user.email,
        "entidad": sedes[0].entidad.nombre if sedes else "",
        "sedes": [f"{s.codigo} {s.nombre}" for s in sedes],
        "no_afiliado": NO_AFILIADO,
        "consultas_created": consultas,
        "usos_created": usos,
        "consultas": ConsultaConvenio.select().where(ConsultaConvenio.account == user).count(),
        "usos": UsoConvenio.select().where(UsoConvenio.account == user).count(),
    }


def load_demo(seed: int = DEFAULT_SEED, upload_dir: str | None = None) -> dict:
    """Fill the database with the demo data set; safe to run again.

    upload_dir receives the demo authorization requests' PDFs (none without it).
    """
    rows = demo_afiliados(seed)
    # Hashing is slow: done before the transaction opens, not inside it.
    users = (*FIXED_USERS, CONVENIO_USER)
    hashes = [hash_password(DEMO_PASSWORD) for _ in users]
    staff_hash = hash_password(DEMO_PASSWORD)
    blocked_hash = hash_password(DEMO_PASSWORD)
    ips_hash = hash_password(DEMO_PASSWORD)
    now = utcnow()
    with models.db.atomic():
        created, updated = upsert_afiliados(rows)
        users_created = sum(
            _upsert_user(spec, h, now) for spec, h in zip(users, hashes, strict=True)
        )
        sedes = load_demo_convenios()
        convenio = _load_convenio_demo(rows, seed)
        staff_created = sum(_upsert_staff(spec, staff_hash, now) for spec in FIXED_STAFF)
        eps = eps_demo.load_demo_eps(seed, upload_dir=upload_dir)
        pqrs = pqrs_demo.load_demo_pqrs(blocked_hash)
        mesa = ips_demo.load_demo_mesa(ips_hash)
    fixed = [
        {
            "tipo_documento": r["tipo_documento"],
            "numero_documento": r["numero_documento"],
            "nombre": " ".join(
                r[k]
                for k in ("primer_nombre", "segundo_nombre", "primer_apellido", "segundo_apellido")
                if r[k]
            ),
            "purpose": FIXED_PURPOSE[r["numero_documento"]],
        }
        for r in FIXED_AFILIADOS
    ]
    credentials = [
        {
            "email": u["email"],
            "password": DEMO_PASSWORD,
            "tipo_documento": u["tipo_documento"],
            "numero_documento": u["numero_documento"],
            "purpose": u["purpose"],
        }
        for u in users
    ]
    return {
        "seed": seed,
        "affiliates": len(rows),
        "affiliates_created": created,
        "affiliates_updated": updated,
        "companies": len({r["empresa_nit"] for r in rows if r["empresa_nit"]}),
        "users": len(users),
        "users_created": users_created,
        "users_updated": len(users) - users_created,
        "sedes": sedes,
        "convenio": convenio,
        "eps": eps,
        "pqrs": pqrs,
        "mesa": mesa,
        "staff": [
            {"email": s["email"], "role": s["role"], "totp_secret": s["totp_secret"]}
            for s in FIXED_STAFF
        ],
        "staff_created": staff_created,
        "fixed_affiliates": fixed,
        "credentials": credentials,
    }


def summary_lines(result: dict) -> list[str]:
    """Describe a load_demo() result in Spanish for the CLI."""
    lines = [
        f"Datos de demostración cargados (semilla {result['seed']}).",
        (
            f"Afiliados: {result['affiliates']} ({result['affiliates_created']} nuevos, "
            f"{result['affiliates_updated']} actualizados), en {result['companies']} empresas."
        ),
        (
            f"Usuarios Hanna: {result['users']} ({result['users_created']} nuevos, "
            f"{result['users_updated']} actualizados)."
        ),
        "Afiliados de prueba:",
    ]
    for a in result["fixed_affiliates"]:
        document = f"{a['tipo_documento']} {a['numero_documento']}"
        lines.append(f"  {document} {a['nombre']}: {a['purpose']}")
    lines.append("Cuentas de prueba:")
    for c in result["credentials"]:
        lines.append(f"  {c['email']} / {c['password']}: {c['purpose']}")
    lines.append(f"Entidades en convenio: {result['sedes']} sedes de demostración.")
    convenio = result["convenio"]
    lines.append(
        f"Convenios: {convenio['email']} atiende en {convenio['entidad']} "
        f"({', '.join(convenio['sedes'])}); su historial: {convenio['consultas']} consultas "
        f"y {convenio['usos']} usos ({convenio['consultas_created']} y "
        f"{convenio['usos_created']} nuevos)."
    )
    lines.append(
        f"  CC {convenio['no_afiliado']}: no afiliado (Tarifa D, sin beneficio). "
        "Cada estado del afiliado: CC 1000000010 a 1000000015 (arriba)."
    )
    eps = result["eps"]
    lines.append(
        f"EPS (Génesis): {eps['afiliados']} afiliados en {eps['cotizantes']} núcleos, "
        f"{eps['ips']} IPS, {eps['autorizaciones']} autorizaciones."
    )
    for a in eps["fixed"]:
        lines.append(f"  {a['documento']} {a['nombre']}: {a['purpose']}")
    pqrs = result["pqrs"]
    lines.append(
        f"PQRSF: {len(pqrs['pqrs'])} en la cola de pqrs@gestion.test ({pqrs['created']} nuevas); "
        "se siguen en /pqrs/consulta con el documento y el código:"
    )
    for p in pqrs["pqrs"]:
        lines.append(f"  {p['radicado']} {p['documento']}: {p['tipo']} ({p['estado']})")
    lines.append(
        f"  {pqrs['blocked_user']} / {DEMO_PASSWORD}: usuario Hanna bloqueado por las preguntas, "
        "con su PQRSF de desbloqueo."
    )
    mesa = result["mesa"]
    lines.append(
        f"Mesa de Ayuda IPS (/ips, contraseña {DEMO_PASSWORD}): {mesa['casos']} casos "
        f"({mesa['casos_created']} nuevos) desde el 40912; operadores:"
    )
    for nit, email in mesa["operadores"]:
        lines.append(f"  NIT {nit} · {email}")
    lines.append(f"Funcionarios (Gestión, /gestion/ingresar, contraseña {DEMO_PASSWORD}):")
    for s in result["staff"]:
        lines.append(f"  {s['email']} ({s['role']}), secreto TOTP {s['totp_secret']}")
    return lines
