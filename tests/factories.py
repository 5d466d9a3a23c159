"""Plain factory functions with keyword defaults."""

from __future__ import annotations

import itertools
from datetime import date

import pyotp

from core import passwords
from core.clock import utcnow
from models import Account, Afiliado, HannaUser, StaffMember

_numbers = itertools.count(52000001)
PASSWORD = "Travesia-Luna-42"


def make_afiliado(**over) -> Afiliado:
    fields = dict(
        tipo_documento="CC",
        numero_documento=str(next(_numbers)),
        primer_nombre="ANA",
        segundo_nombre="MARÍA",
        primer_apellido="PÉREZ",
        segundo_apellido="GÓMEZ",
        fecha_nacimiento=date(1980, 2, 29),
        email="ana@example.com",
        celular="3007386448",
        telefono="",
        estado="ACTIVO",
        categoria="A",
        empresa_nit="8901020441",
        empresa_nombre="Servicios Andina S.A.S.",
        empresa_estado="ACTIVA",
        fecha_ingreso_empresa=date(2016, 1, 26),
        profesion="Licenciado en educación",
        conyuge_celular="3216517487",
        conyuge_profesion="Auxiliar administrativo",
        conyuge_cargo="Patrullero",
    )
    fields.update(over)
    return Afiliado.create(**fields)


def make_user(**over) -> Account:
    """A Hanna account (active unless told), its profile fields accepted as keywords."""
    password = over.pop("password", PASSWORD)
    n = next(_numbers)
    fields = dict(
        email=f"persona{n}@example.com",
        tipo_documento="CC",
        numero_documento=str(n),
        primer_nombre="JUAN",
        primer_apellido="TORRES",
        celular="3101234567",
        fecha_nacimiento=date(1990, 5, 17),
        password_hash=passwords.hash_password(password),
        status=Account.ACTIVE,
    )
    fields.update(over)
    return HannaUser.create_account(**fields)


def make_staff(
    roles=("admin",),
    email: str | None = None,
    password: str = PASSWORD,
    totp_secret: str | None = None,
    nombre: str = "Laura Gestión",
    **over,
) -> Account:
    """A staff account with its roles and an enrolled second factor (secret on .totp_secret)."""
    n = next(_numbers)
    email = email or f"funcionario{n}@cajacopi.example"
    return StaffMember.create_account(
        email,
        nombre,
        roles,
        password_hash=passwords.hash_password(password),
        status=over.pop("status", Account.ACTIVE),
        totp_secret=totp_secret or pyotp.random_base32(),
        totp_enrolled_at=utcnow(),
        **over,
    )


def registration_form(**over) -> dict:
    """The fields of "Crear Cuenta Nueva", valid unless overridden."""
    n = next(_numbers)
    form = dict(
        tipo_documento="CC",
        numero_documento=str(n),
        primer_apellido="Torres",
        segundo_apellido="",
        primer_nombre="Juan",
        segundo_nombre="Camilo",
        email=f"juan{n}@example.com",
        telefono="",
        celular="3101234567",
        fecha_nacimiento="17/05/1990",
        password=PASSWORD,
        confirm=PASSWORD,
        captcha="",
    )
    form.update(over)
    return form


def make_entidad(nombre: str = "Gimnasio Prueba S.A.S.", sedes: int = 2, **over):
    """An active convenio entity with sedes named "Sede 1", "Sede 2"…; returns (entidad, [sedes])."""
    from models import Entidad, Sede

    n = next(_numbers)
    entidad = Entidad.create(nit=over.pop("nit", f"9{n:08d}1"), nombre=nombre, **over)
    made = [
        Sede.create(entidad=entidad, codigo=f"S{i}", nombre=f"Sede {i}", municipio="08001")
        for i in range(1, sedes + 1)
    ]
    return entidad, made


def grant_convenios(account: Account, sedes) -> None:
    """Give account CONVENIOS for these sedes (of one entity), as an approved request does."""
    from models import Acceso, AccesoSede

    sedes = list(sedes)
    acceso = Acceso.get_or_none((Acceso.account == account) & (Acceso.aplicacion == "convenios"))
    if acceso is None:
        acceso = Acceso.create(account=account, aplicacion="convenios", entidad=sedes[0].entidad_id)
    for sede in sedes:
        AccesoSede.insert(acceso=acceso, sede=sede).on_conflict_ignore().execute()


_eps_numbers = itertools.count(73000001)


def make_ips(**over):
    from models import Ips

    fields = dict(
        nit=str(900000000 + next(_eps_numbers) % 99999) + "1",
        nombre="IPS Salud Caribe S.A.S.",
        email="ips@example.com",
        telefono="6053714545",
        direccion="Calle 44 # 45-57",
        municipio="08001",
    )
    fields.update(over)
    return Ips.create(**fields)


def make_eps_afiliado(cabeza=None, **over):
    """An EPS affiliate: a cotizante unless cabeza (a cotizante row) is given."""
    from models import EpsAfiliado

    fields = dict(
        tipo_documento="CC",
        numero_documento=str(next(_eps_numbers)),
        primer_nombre="ROSA",
        segundo_nombre="ELENA",
        primer_apellido="DÍAZ",
        segundo_apellido="MEJÍA",
        fecha_nacimiento=date(1985, 3, 14),
        fecha_expedicion=date(2003, 5, 2),
        sexo="F",
        regimen="CONTRIBUTIVO",
        estado="ACTIVO",
        celular="3004567101",
        email="rosa@example.com",
        direccion="Carrera 50 # 72-10",
        municipio="08001",
        cabeza=cabeza,
        parentesco="COTIZANTE" if cabeza is None else "HIJO",
    )
    fields.update(over)
    return EpsAfiliado.create(**fields)


def make_eps_user(afiliado=None, password: str = PASSWORD, carta: bool = True, **over) -> Account:
    """A registered Génesis account that changed its SMS password and accepted the carta."""
    from core import genesis
    from models import EpsUser

    afiliado = afiliado or make_eps_afiliado()
    now = utcnow()
    fields = dict(
        password_hash=passwords.hash_password(password),
        status=Account.ACTIVE,
        celular=afiliado.celular,
        email=afiliado.email,
        privacy_accepted_at=now,
        privacy_version=genesis.PRIVACY_VERSION,
        carta_accepted_at=now if carta else None,
        carta_version=genesis.CARTA_VERSION if carta else "",
    )
    fields.update(over)
    login = genesis.login_of(afiliado.tipo_documento, afiliado.numero_documento)
    return EpsUser.create_account(afiliado, login, **fields)


_ips_bases = itertools.count(800_100_000)


def valid_nit(base: int | None = None) -> str:
    """A NIT's digits with its DIAN check digit (the IPS log-in checks it)."""
    from stdnum.co import nit as stdnum_nit

    number = str(base if base is not None else next(_ips_bases))
    return number + stdnum_nit.calc_check_digit(number)


def make_ips_operador(ips=None, email=None, nombre="Laura Gómez", es_admin=True, **over):
    """An active IPS operator (kind ips, login "NIT:email") with PASSWORD; its IPS is made if not given."""
    from models import IpsOperador

    ips = ips or make_ips(nit=valid_nit())
    email = email or f"operador{next(_eps_numbers)}@ips.example.com"
    fields = dict(
        kind=Account.IPS,
        login=f"{ips.nit}:{email}",
        email=email,
        password_hash=passwords.hash_password(PASSWORD),
        status=Account.ACTIVE,
    )
    fields.update(over)
    account = Account.create(**fields)
    IpsOperador.create(account=account, ips=ips, nombre=nombre, es_admin=es_admin)
    return account
