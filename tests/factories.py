"""Plain factory functions with keyword defaults."""

from __future__ import annotations

import itertools
from datetime import date

from core import passwords
from models import Afiliado, User

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


def make_user(**over) -> User:
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
        status=User.ACTIVE,
    )
    fields.update(over)
    return User.create(**fields)


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
