"""The virtual office's "Generar Certificados" (SPEC G5; 003_… §10): the certificate of
affiliation of a member of the family group, as a PDF with its verification code and QR.

The member goes through owned_or_404 (core.genesis.family_of), and so does the
member of a certificate asked for by its code: outside the family group, 404.
The public check of a code is blueprints/certificados.
"""

from __future__ import annotations

from flask import current_app, make_response, url_for
from flask_login import current_user

from blueprints.auth import current_account, owned_or_404, require
from blueprints.genesis import account_key, bp, member_or_404
from blueprints.web import limiter, render, see_other
from core import certificados, clock, genesis
from core.eps_data import ESTADOS, PARENTESCOS
from core.permissions import Action
from models import Certificado, EpsAfiliado

# Per account: a family's certificates for a week of errands, not a PDF factory.
GENERATE_LIMIT = "10/hour;30/day"
DOWNLOAD_LIMIT = "60/hour"


def _anonymous() -> bool:
    """Tell whether nobody is signed in: require() sends them to sign in, uncounted."""
    return not current_user.is_authenticated


def _page(member: EpsAfiliado, status: int = 200):
    """Render "Generar Certificados" for member, with their latest certificates."""
    return render(
        "genesis/certificados.html",
        status=status,
        miembro=member,
        activo=member.estado == EpsAfiliado.ACTIVO,
        certificados=certificados.recent_of(member),
        hoy=clock.today(),
        dias=certificados.VALID_DAYS,
        issued_on=certificados.issued_on,
        parentescos=PARENTESCOS,
        estados=ESTADOS,
        edad=lambda m: genesis.age_on(m.fecha_nacimiento, clock.today()),
    )


@bp.get("/datos/<int:member_id>/certificados", endpoint="certificados")
@require(Action.USE_GENESIS)
def certificados_miembro(member_id: int):
    """ "Generar Certificados": the certificate of affiliation, and the member's latest ones."""
    return _page(member_or_404(member_id))


@bp.post("/datos/<int:member_id>/certificados")
@limiter.limit(GENERATE_LIMIT, key_func=account_key, exempt_when=_anonymous)
@require(Action.USE_GENESIS)
def certificados_generar(member_id: int):
    """Issue the member's certificate of affiliation and send its PDF (303 to the download)."""
    member = member_or_404(member_id)
    try:
        cert = certificados.issue(current_account(), member)
    except certificados.NotActive:
        member = EpsAfiliado.get_by_id(member.id)
        return _page(member, status=422)
    return see_other(url_for("genesis.certificado_pdf", codigo=cert.codigo))


@bp.get("/certificados/<codigo>.pdf")
@limiter.limit(DOWNLOAD_LIMIT, key_func=account_key, exempt_when=_anonymous)
@require(Action.USE_GENESIS)
def certificado_pdf(codigo: str):
    """Send the PDF of a certificate of the family group (drawn again from what it stated)."""
    cert: Certificado | None = certificados.find_by_code(codigo)
    owned_or_404(
        Action.VIEW_MEMBER,
        genesis.member_of(current_account(), cert.afiliado_id) if cert else None,
    )
    url = certificados.verify_url(current_app.config["BASE_URL"], cert.codigo)
    response = make_response(certificados.render_pdf(cert, url))
    response.mimetype = "application/pdf"
    name = f"certificado-afiliacion-{cert.codigo}.pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    # Opened in a tab anyway (a PDF viewer, a pasted URL): no script, no origin.
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response
