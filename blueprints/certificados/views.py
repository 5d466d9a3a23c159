"""GET /certificados/verificar: what a certificate states and whether it is still valid.

The answer shows only what the certificate itself says (core.certificados.statement),
its dates and the verdict; an unknown code and a malformed one get the same
answer. Look-ups are rate limited per client address (shared through Redis when
REDIS_URL is set); showing the empty form costs nothing.
"""

from __future__ import annotations

from flask import redirect, request, url_for
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from blueprints.certificados import bp
from blueprints.forms import SpanishForm
from blueprints.web import limiter, render
from core import certificados

VERIFY_LIMIT = "20/minute;200/hour"
NOT_FOUND = (
    "No encontramos un certificado con ese código. Revíselo: son 10 letras y números, "
    "como 7K3MQ-9TXW2, y está en el certificado junto al código QR."
)


class VerificarForm(SpanishForm):
    """The code to check, read from the query string (a GET form: the QR opens it)."""

    class Meta:
        csrf = False

    codigo = StringField(
        "Código de verificación",
        validators=[
            DataRequired("Escriba el código de verificación del certificado."),
            Length(max=40, message=NOT_FOUND),
        ],
        render_kw={
            "autocomplete": "off",
            "autocapitalize": "characters",
            "spellcheck": "false",
            "maxlength": "40",
        },
    )


@bp.get("")
def inicio():
    """Send /certificados to the check."""
    return redirect(url_for("certificados.verificar"), 302)


@bp.get("/verificar")
@limiter.limit(VERIFY_LIMIT, exempt_when=lambda: "codigo" not in request.args)
def verificar():
    """Show the form; with ?codigo=, the certificate's statement and whether it is vigente."""
    form = VerificarForm(request.args)
    page = dict(form=form, cert=None)
    if "codigo" not in request.args:
        return render("certificados/verificar.html", "certificados/_verificar.html", **page)
    cert = certificados.find_by_code(form.codigo.data) if form.validate() else None
    if cert is None:
        if not form.codigo.errors:
            form.codigo.errors = [NOT_FOUND]
        return render(
            "certificados/verificar.html", "certificados/_verificar.html", status=422, **page
        )
    return render(
        "certificados/verificar.html",
        "certificados/_verificar.html",
        form=form,
        cert=cert,
        datos=certificados.statement(cert),
        expedido=certificados.issued_on(cert),
        veredicto=certificados.verdict(cert),
        dias=certificados.VALID_DAYS,
    )
