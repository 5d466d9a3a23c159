"""Certificates of affiliation (SPEC G5): issue one, draw its PDF, and check its code in public.

What a certificate says is frozen in its Certificado row at issue, so the public
check (/certificados/verificar, SPEC K) shows exactly what the paper says, and
then a verdict:

- it is valid for VALID_DAYS days from the day of issue (Bogotá), like the EPS's
  paper certificates: after that the check says only that it expired, and no
  longer tells whether the person is still affiliated (a stranger holding an old
  paper learns nothing new);
- within those days it is valid while the affiliate is still ACTIVO in the EPS's
  data with the same document, régimen, parentesco and cotizante (núcleo).

The code is 10 characters of core.convenios.RECEIPT_ALPHABET (31^10 ≈ 8·10^14:
with the public page's rate limit, guessing one is hopeless), shown as
XXXXX-XXXXX and typed back with any case, dashes or spaces.
"""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote

import segno
from fpdf import FPDF
from peewee import IntegrityError

from core import clock
from core.colombia import document_type_name, format_date, to_bogota
from core.convenios import RECEIPT_ALPHABET
from core.eps_data import ESTADOS, PARENTESCOS, REGIMENES
from models import Account, Certificado, EpsAfiliado, Ips, db

CODE_LENGTH = 10
VALID_DAYS = 30
RECENT_LIMIT = 10  # certificates listed on the member's page
VERIFY_PATH = "/certificados/verificar"  # a fixed path (SPEC K): printed in every QR
FONTS = Path(__file__).resolve().parent / "data" / "fonts"
_CODE_RE = re.compile(f"[{RECEIPT_ALPHABET}]{{{CODE_LENGTH}}}")
_NOT_TYPED = re.compile(r"[\s\-‐‑‒–—.]")  # spaces and dashes of any kind, dots


class NotActive(Exception):
    """The member is not ACTIVO in the EPS's data today: no certificate of affiliation."""


class Reason(enum.StrEnum):
    """Why a certificate is or is not valid today (the words are the templates')."""

    VIGENTE = "vigente"
    VENCIDO = "vencido"  # more than VALID_DAYS days since issue
    NO_ACTIVO = "no_activo"  # the affiliate is not ACTIVO today
    CAMBIO = "cambio"  # still ACTIVO, but no longer as the certificate says


@dataclass(frozen=True)
class Verdict:
    """The public check's answer about one certificate."""

    reason: Reason

    @property
    def valid(self) -> bool:
        """Tell whether the certificate is vigente."""
        return self.reason is Reason.VIGENTE


# --- codes -------------------------------------------------------------------------------


def new_code() -> str:
    """Return a fresh verification code as shown and stored: "7K3MQ-9TXW2"."""
    raw = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def clean_code(value: str | None) -> str | None:
    """Return a typed code as stored (capitals, one dash), or None if it cannot be one."""
    raw = _NOT_TYPED.sub("", (value or "")[:40]).upper()
    if not _CODE_RE.fullmatch(raw):
        return None
    return f"{raw[:5]}-{raw[5:]}"


def find_by_code(value: str | None) -> Certificado | None:
    """Return the certificate with that code (however typed), or None."""
    codigo = clean_code(value)
    if codigo is None:
        return None
    return Certificado.get_or_none(Certificado.codigo == codigo)


def verify_url(base_url: str, codigo: str) -> str:
    """Return the public check's address for a code (what the QR and the paper carry)."""
    return f"{base_url.rstrip('/')}{VERIFY_PATH}?codigo={quote(codigo)}"


# --- issuing -----------------------------------------------------------------------------


def _stated(member: EpsAfiliado) -> dict:
    """Return what a certificate of member says today."""
    cotizante = None
    if member.cabeza_id is not None:
        cotizante = EpsAfiliado.get_or_none(EpsAfiliado.id == member.cabeza_id)
    ips = Ips.get_or_none(Ips.id == member.ips_id) if member.ips_id is not None else None
    return dict(
        tipo_documento=member.tipo_documento,
        numero_documento=member.numero_documento,
        nombre=member.nombre_completo,
        estado=member.estado,
        regimen=member.regimen,
        parentesco=member.parentesco,
        cotizante=member.cabeza_id,
        cotizante_nombre=cotizante.nombre_completo if cotizante else "",
        ips_nombre=ips.nombre if ips else "",
    )


def _states(cert: Certificado) -> dict:
    """Return what cert says, in _stated's shape."""
    return {f: getattr(cert, "cotizante_id" if f == "cotizante" else f) for f in _STATED}


_STATED = (
    "tipo_documento",
    "numero_documento",
    "nombre",
    "estado",
    "regimen",
    "parentesco",
    "cotizante",
    "cotizante_nombre",
    "ips_nombre",
)


def issue(account: Account | None, member: EpsAfiliado) -> Certificado:
    """Issue member's certificate of affiliation as of now, in one transaction.

    The same member's certificate of today that states the same is given back
    instead of a second one (a double click, a second download). Raises
    NotActive when the EPS's data has the member other than ACTIVO.
    """
    today = clock.today()
    with db.atomic():
        current = EpsAfiliado.get_by_id(member.id)  # as it is now, not as the page showed it
        if current.estado != EpsAfiliado.ACTIVO:
            raise NotActive()
        stated = _stated(current)
        for earlier in recent_of(current, limit=3):
            if issued_on(earlier) == today and _states(earlier) == stated:
                return earlier
        for _ in range(5):  # a taken code is a one-in-10^14 event; try another
            try:
                with db.atomic():
                    return Certificado.create(
                        codigo=new_code(),
                        afiliado=current.id,
                        account=account.id if account else None,
                        issued_at=clock.utcnow(),
                        valid_until=today + timedelta(days=VALID_DAYS),
                        **stated,
                    )
            except IntegrityError:
                continue
        raise RuntimeError("no free verification code")  # pragma: no cover


def recent_of(member: EpsAfiliado, limit: int = RECENT_LIMIT) -> list[Certificado]:
    """Return member's latest certificates, newest first."""
    return list(
        Certificado.select()
        .where(Certificado.afiliado == member.id)
        .order_by(Certificado.issued_at.desc(), Certificado.id.desc())
        .limit(limit)
    )


def issued_on(cert: Certificado) -> date:
    """Return the day (Bogotá) the certificate was issued."""
    return to_bogota(cert.issued_at).date()


# --- the public check --------------------------------------------------------------------


def verdict(cert: Certificado, today: date | None = None) -> Verdict:
    """Tell whether cert is still valid today, and if not why (expiry first: see the module)."""
    today = today or clock.today()
    if today > cert.valid_until:
        return Verdict(Reason.VENCIDO)
    now = EpsAfiliado.get_or_none(EpsAfiliado.id == cert.afiliado_id)
    if now is None or now.estado != EpsAfiliado.ACTIVO:
        return Verdict(Reason.NO_ACTIVO)
    same = (
        now.tipo_documento == cert.tipo_documento
        and now.numero_documento == cert.numero_documento
        and now.regimen == cert.regimen
        and now.parentesco == cert.parentesco
        and now.cabeza_id == cert.cotizante_id
    )
    return Verdict(Reason.VIGENTE if same else Reason.CAMBIO)


def statement(cert: Certificado) -> list[tuple[str, str]]:
    """Return the certificate's data as (label, value) rows, as the PDF and the check show them."""
    rows = [
        ("Nombre completo", cert.nombre),
        ("Tipo de documento", document_type_name(cert.tipo_documento)),
        ("Número de documento", cert.numero_documento),
        ("Régimen", REGIMENES.get(cert.regimen, cert.regimen)),
        ("Estado de la afiliación", ESTADOS.get(cert.estado, cert.estado)),
        ("Parentesco", PARENTESCOS.get(cert.parentesco, cert.parentesco)),
    ]
    if cert.cotizante_nombre:
        rows.append(("Cotizante", cert.cotizante_nombre))
    rows.append(("IPS de atención primaria", cert.ips_nombre or "Sin IPS asignada"))
    return rows


# --- the PDF -----------------------------------------------------------------------------

AZUL = (0, 83, 155)  # the portal's --azul
GRIS = (85, 85, 85)


def _qr(pdf: FPDF, url: str, x: float, y: float, size: float) -> None:
    """Draw url's QR code as filled rectangles (one per run of dark modules): sharp when printed."""
    rows = [list(row) for row in segno.make(url, error="m").matrix_iter(scale=1, border=0)]
    module = size / len(rows)
    pdf.set_fill_color(0, 0, 0)
    for r, row in enumerate(rows):
        c = 0
        while c < len(row):
            if not row[c]:
                c += 1
                continue
            start = c
            while c < len(row) and row[c]:
                c += 1
            pdf.rect(x + start * module, y + r * module, (c - start) * module, module, style="F")


# The verification box goes at BOX_TOP, or lower after a long text; it must end by BOX_END.
BOX_TOP, BOX_END, QR_SIZE = 200.0, 274.0, 42.0
TEXT_SIZES = (11, 10, 9, 8, 7, 6)  # the first that fits (names of 240 letters need the small)


def render_pdf(cert: Certificado, verify_url: str) -> bytes:
    """Draw cert as a one-page A4 PDF: the stated data, the date of issue, the code and its QR."""
    for size in TEXT_SIZES:
        pdf = _page(cert)
        if _body(pdf, cert, size) + 8 + QR_SIZE + 12 <= BOX_END or size == TEXT_SIZES[-1]:
            break
    _verification(pdf, cert, verify_url)
    return bytes(pdf.output())


def _page(cert: Certificado) -> FPDF:
    """Start the A4 page with its fonts, metadata and the "Cajacopi EPS" band."""
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_auto_page_break(False)  # one page, always: render_pdf shrinks the text to fit
    pdf.set_margins(20, 18, 20)
    pdf.add_font("DejaVu", "", FONTS / "DejaVuSans.ttf")
    pdf.add_font("DejaVu", "B", FONTS / "DejaVuSans-Bold.ttf")
    pdf.set_title(f"Certificado de afiliación {cert.codigo}")
    pdf.set_author("Cajacopi EPS")
    pdf.set_creator("Portal Génesis")
    pdf.set_lang("es-CO")
    pdf.set_creation_date(to_bogota(cert.issued_at))  # the same bytes every time it is drawn
    pdf.add_page()
    pdf.set_fill_color(*AZUL)
    pdf.rect(0, 0, 210, 30, style="F")
    pdf.set_text_color(255, 255, 255)
    pdf.set_xy(20, 8)
    pdf.set_font("DejaVu", "B", 20)
    pdf.cell(pdf.epw, 9, "Cajacopi EPS")
    pdf.set_xy(20, 18)
    pdf.set_font("DejaVu", "", 10)
    pdf.cell(pdf.epw, 5, "Entidad Promotora de Salud · Portal Génesis")
    pdf.set_text_color(0, 0, 0)
    pdf.set_xy(20, 44)
    pdf.set_font("DejaVu", "B", 17)
    pdf.cell(pdf.epw, 9, "CERTIFICADO DE AFILIACIÓN", align="C")
    return pdf


def _body(pdf: FPDF, cert: Certificado, size: float) -> float:
    """Write what the certificate states at this font size; return where the text ends (mm)."""
    expedido = format_date(issued_on(cert))
    vence = format_date(cert.valid_until)
    width, line = pdf.epw, size * 0.53
    relation = (
        "como beneficiario(a), con parentesco "
        f"{PARENTESCOS.get(cert.parentesco, cert.parentesco).lower()}, del cotizante "
        f"{cert.cotizante_nombre}"
        if cert.cotizante_nombre
        else "como cotizante (cabeza de familia)"
    )
    pdf.set_xy(20, 62)
    pdf.set_font("DejaVu", "", size)
    pdf.multi_cell(
        width,
        line,
        f"Cajacopi EPS certifica que {cert.nombre}, identificado(a) con "
        f"{document_type_name(cert.tipo_documento).lower()} número {cert.numero_documento}, "
        "se encuentra afiliado(a) a esta EPS en el régimen "
        f"{REGIMENES.get(cert.regimen, cert.regimen).lower()}, en estado "
        f"{ESTADOS.get(cert.estado, cert.estado).lower()}, {relation}.",
        align="L",
    )
    pdf.ln(4)
    label_w = 62
    rows = [*statement(cert), ("Fecha de expedición", expedido), ("Válido hasta", vence)]
    pdf.set_draw_color(208, 213, 218)
    for label, value in rows:
        y = pdf.get_y()
        pdf.line(20, y, 20 + width, y)
        pdf.set_xy(20, y + 1.2)
        pdf.set_font("DejaVu", "B", size - 1)
        pdf.cell(label_w, line, label)
        pdf.set_font("DejaVu", "", size - 1)
        pdf.multi_cell(width - label_w, line, value)
        pdf.set_y(pdf.get_y() + 1.2)
    pdf.line(20, pdf.get_y(), 20 + width, pdf.get_y())
    pdf.ln(5)
    pdf.set_font("DejaVu", "", size - 1)
    pdf.multi_cell(
        width,
        line,
        f"Este certificado se expide a solicitud del interesado el {expedido} (hora de "
        f"Bogotá) y es válido por {VALID_DAYS} días, hasta el {vence}, mientras la "
        "afiliación siga como aquí se indica. Su autenticidad y su vigencia se comprueban "
        "con el código de verificación en el portal de Cajacopi EPS.",
        align="L",
    )
    return pdf.get_y()


def _verification(pdf: FPDF, cert: Certificado, verify_url: str) -> None:
    """Draw the box with the QR, the verification code and the address, and the footer."""
    top = max(pdf.get_y() + 8, BOX_TOP)
    width = pdf.epw
    pdf.set_draw_color(*AZUL)
    pdf.rect(20, top, width, QR_SIZE + 12)
    _qr(pdf, verify_url, 26, top + 6, QR_SIZE)
    text_x = 26 + QR_SIZE + 8
    text_w = 20 + width - text_x - 6
    pdf.set_xy(text_x, top + 7)
    pdf.set_font("DejaVu", "", 10)
    pdf.cell(text_w, 5, "Código de verificación")
    pdf.set_xy(text_x, top + 13)
    pdf.set_font("DejaVu", "B", 20)
    pdf.cell(text_w, 10, cert.codigo)
    pdf.set_xy(text_x, top + 26)
    pdf.set_font("DejaVu", "", 9)
    pdf.set_text_color(*GRIS)
    pdf.multi_cell(
        text_w,
        4.5,
        "Lea el código QR, o abra esta dirección y escriba el código:\n"
        + verify_url.split("?", 1)[0],
    )
    pdf.set_xy(20, 280)
    pdf.set_font("DejaVu", "", 8)
    pdf.multi_cell(
        width,
        4,
        "Documento generado en el Portal Génesis de Cajacopi EPS; no requiere firma ni sello.",
        align="C",
    )
