"""Colombian data the portal must get right: documents, NIT, phones, dates, time."""

import re
import zoneinfo
from datetime import UTC, date, datetime, timedelta, timezone

import phonenumbers
from stdnum.co import nit as _nit
from stdnum.exceptions import InvalidChecksum, ValidationError

# Health-sector codes: the code is stored, the name is shown.
DOCUMENT_TYPES: dict[str, str] = {
    "CC": "Cédula de ciudadanía",
    "CE": "Cédula de extranjería",
    "TI": "Tarjeta de identidad",
    "RC": "Registro civil",
    "PA": "Pasaporte",
    "CD": "Carné diplomático",
    "SC": "Salvoconducto",
    "PE": "Permiso especial de permanencia",
    "PT": "Permiso por protección temporal",
    "CN": "Certificado de nacido vivo",
    "AS": "Adulto sin identificación",
    "MS": "Menor sin identificación",
    "NI": "NIT",
}

# Caja categories by the worker's income in minimum monthly wages (SMMLV).
CATEGORIES: dict[str, str] = {
    "A": "Hasta 2 salarios mínimos",
    "B": "Más de 2 y hasta 4 salarios mínimos",
    "C": "Más de 4 salarios mínimos",
    "D": "No afiliados",
}

# (min, max) digits for types that are numbers only.
_NUMERIC_LENGTHS: dict[str, tuple[int, int]] = {
    "CC": (3, 10),
    "TI": (10, 11),
    "RC": (4, 20),
    "CN": (4, 20),
    "AS": (4, 20),
    "MS": (4, 20),
}
# AS/MS numbers begin with a department code such as 05, so only these lose
# leading zeros, which a person never has in a cédula or NUIP.
_DROP_LEADING_ZEROS = frozenset({"CC", "TI"})
_ALNUM_LENGTHS = (3, 20)
_SEPARATORS = re.compile(r"[\s.\-]+")
_ALNUM = re.compile(r"[A-Z0-9]+")

try:
    BOGOTA: zoneinfo.ZoneInfo | timezone = zoneinfo.ZoneInfo("America/Bogota")
except zoneinfo.ZoneInfoNotFoundError:  # pragma: no cover
    # Hosts without tzdata (Windows); Colombia has had no DST since 1993.
    BOGOTA = timezone(timedelta(hours=-5), "COT")

MOBILE_ERROR = "Ingrese un número celular colombiano de 10 dígitos que empiece por 3."
PHONE_ERROR = (
    "Ingrese un teléfono colombiano: fijo de 7 o 10 dígitos (601 234 5678) "
    "o celular de 10 dígitos que empiece por 3."
)
DATE_ERROR = "Escriba la fecha como dd/mm/aaaa."
NIT_CHECK_ERROR = "El dígito de verificación del NIT no es válido."

_DMY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
# phonenumbers turns letters into keypad digits; a typo must not become a number.
_PHONE_CHARS = re.compile(r"[0-9\s+\-.()]+")


def document_type_name(code: str) -> str:
    """Return the Spanish name of a document type, or the code if unknown."""
    return DOCUMENT_TYPES.get(code, code)


def normalize_document(tipo: str, numero: str) -> str:
    """Return the canonical stored document number or raise a Spanish ValueError.

    A NIT is stored as its digits including the DIAN check digit, without
    separators: ``890.102.044-1`` becomes ``8901020441``.
    """
    tipo = (tipo or "").strip().upper()
    if tipo not in DOCUMENT_TYPES:
        raise ValueError("Seleccione un tipo de documento válido.")
    raw = (numero or "").strip()
    if not raw:
        raise ValueError("Escriba el número de documento.")
    if tipo == "NI":
        return _normalize_nit(raw)
    compact = _SEPARATORS.sub("", raw).upper()
    name = DOCUMENT_TYPES[tipo].lower()
    if tipo in _NUMERIC_LENGTHS:
        lo, hi = _NUMERIC_LENGTHS[tipo]
        if not compact.isascii() or not compact.isdigit():
            raise ValueError(f"Para {name}, escriba solo números, sin letras.")
        if tipo in _DROP_LEADING_ZEROS:
            compact = compact.lstrip("0")
        if not lo <= len(compact) <= hi:
            raise ValueError(f"Para {name}, el número debe tener entre {lo} y {hi} dígitos.")
        return compact
    lo, hi = _ALNUM_LENGTHS
    if not _ALNUM.fullmatch(compact) or not lo <= len(compact) <= hi:
        raise ValueError(f"Para {name}, escriba entre {lo} y {hi} letras o números.")
    return compact


def _normalize_nit(raw: str) -> str:
    """Validate a NIT with its check digit and return its digits."""
    compact = _SEPARATORS.sub("", raw).replace(",", "")
    if not compact.isascii() or not compact.isdigit():
        raise ValueError("El NIT solo lleva números, con el dígito de verificación al final.")
    try:
        return _nit.validate(compact.lstrip("0"))
    except InvalidChecksum:
        raise ValueError(NIT_CHECK_ERROR) from None
    except ValidationError:
        raise ValueError(
            "El NIT debe tener entre 8 y 16 dígitos, incluido el dígito de verificación."
        ) from None


def _national_digits(value: str) -> str | None:
    """Return the national significant digits of a Colombian number, or None."""
    value = (value or "").strip()
    if not value or not _PHONE_CHARS.fullmatch(value):
        return None
    try:
        parsed = phonenumbers.parse(value, "CO")
    except phonenumbers.NumberParseException:
        return None
    if parsed.country_code != 57:
        return None
    return phonenumbers.national_significant_number(parsed)


def normalize_mobile(value: str) -> str:
    """Return the 10 national digits of a Colombian mobile or raise ValueError."""
    digits = _national_digits(value)
    # Structural check rather than is_valid_number: new 3xx ranges reach
    # phonenumbers' metadata later than they reach people's phones.
    if digits is None or len(digits) != 10 or not digits.startswith("3"):
        raise ValueError(MOBILE_ERROR)
    return digits


def normalize_phone(value: str) -> str:
    """Return the national digits of a Colombian landline or mobile or raise ValueError."""
    digits = _national_digits(value)
    if digits is None or digits.startswith("0"):
        raise ValueError(PHONE_ERROR)
    # 7 digits: a landline written the pre-2021 local way. 10 digits: a
    # mobile (3…) or a landline with the 60 + area prefix.
    if (
        len(digits) == 7
        or (len(digits) == 10 and digits[:1] == "3")
        or (len(digits) == 10 and digits[:2] == "60")
    ):
        return digits
    raise ValueError(PHONE_ERROR)


def mask_phone(digits: str) -> str:
    """Show the first 3 and last 3 digits of a phone and hide the rest."""
    digits = re.sub(r"\D", "", digits or "")
    if len(digits) <= 6:
        # Too short to show six digits and still hide something.
        return "*" * max(len(digits) - 2, 0) + digits[-2:]
    return digits[:3] + "*" * (len(digits) - 6) + digits[-3:]


def mask_email(email: str) -> str:
    """Hide the e-mail's local part but its start; the stars don't tell its length."""
    local, at, domain = (email or "").strip().rpartition("@")
    if not at:
        local, domain = domain, ""
    keep = 2 if len(local) >= 3 else 1
    return f"{local[:keep]}*****{at}{domain}"


def parse_date(value: str) -> date:
    """Parse dd/mm/aaaa, d/m/aaaa or AAAA-MM-DD into a date or raise ValueError."""
    value = (value or "").strip()
    if m := _DMY.fullmatch(value):
        day, month, year = (int(g) for g in m.groups())
    elif m := _ISO.fullmatch(value):
        year, month, day = (int(g) for g in m.groups())
    else:
        raise ValueError(DATE_ERROR)
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"La fecha {day:02d}/{month:02d}/{year:04d} no existe.") from None


def format_date(d: date) -> str:
    """Format a date as dd/mm/aaaa."""
    return f"{d.day:02d}/{d.month:02d}/{d.year:04d}"


def to_bogota(dt: datetime) -> datetime:
    """Convert a stored naive-UTC datetime to an aware Bogotá datetime."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(BOGOTA)


def format_datetime(dt: datetime) -> str:
    """Format a stored naive-UTC datetime as dd/mm/aaaa HH:MM in Bogotá time."""
    local = to_bogota(dt)
    return f"{format_date(local.date())} {local:%H:%M}"
