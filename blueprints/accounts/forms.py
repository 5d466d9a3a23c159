"""Forms of the Hanna account journeys, with the manual's labels."""

from __future__ import annotations

from datetime import date

from wtforms import PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from blueprints.forms import (
    REQUIRED,
    DateText,
    SpanishForm,
    email_field,
    normalized,
)
from core import colombia, passwords
from core.clock import utcnow
from core.colombia import to_bogota

OLDEST_BIRTH = date(1900, 1, 1)


def _plausible_birth_date(_form, field) -> None:
    if not isinstance(field.data, date):
        return
    if field.data > to_bogota(utcnow()).date():
        raise ValidationError("La fecha no puede ser posterior a hoy: revise el año.")
    if field.data < OLDEST_BIRTH:
        raise ValidationError("Revise el año: la fecha es anterior a 1900.")


class LookupForm(SpanishForm):
    """The document pair that the affiliate look-up reads."""

    tipo_documento = SelectField(
        "Tipo Documento",
        choices=[SelectChoice(code, name) for code, name in colombia.DOCUMENT_TYPES.items()],
        default="CC",
    )
    numero_documento = StringField(
        "Cédula / Nit (Con dígito de verificación)",
        validators=[DataRequired(REQUIRED), Length(max=25)],
    )

    def validate_numero_documento(self, field) -> None:
        if self.tipo_documento.errors:
            return  # the type's own message says it all
        try:
            field.data = colombia.normalize_document(self.tipo_documento.data, field.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc

    def validate_document(self) -> bool:
        """Validate the type and number only (what validate() would say of them).

        The look-up partial reads the whole registration form but checks only these:
        one form built, not a LookupForm beside it.
        """
        ok = self.tipo_documento.validate(self)
        inline = [LookupForm.validate_numero_documento]
        return self.numero_documento.validate(self, inline) and ok


class AfiliadoForm(LookupForm):
    """The document and the names: what the look-up partial (#datos-afiliado) draws.

    Built alone for that partial: the whole registration form has three times the
    fields, and making them was a tenth of the partial's time (py-spy, issue 12).
    """

    primer_apellido = StringField(
        "Primer Apellido", validators=[DataRequired(REQUIRED), Length(max=60)]
    )
    segundo_apellido = StringField("Segundo Apellido", validators=[Optional(), Length(max=60)])
    primer_nombre = StringField(
        "Primer Nombre", validators=[DataRequired(REQUIRED), Length(max=60)]
    )
    segundo_nombre = StringField("Segundo Nombre", validators=[Optional(), Length(max=60)])


class RegistrationForm(AfiliadoForm):
    """ "Crear Cuenta Nueva": DATOS AFILIADOS, RECUPERACIÓN, CONTRASEÑA."""

    email = email_field("Email")
    telefono = StringField(
        "Teléfono", validators=[Optional(), normalized(colombia.normalize_phone)]
    )
    celular = StringField(
        "Celular", validators=[DataRequired(REQUIRED), normalized(colombia.normalize_mobile)]
    )
    fecha_nacimiento = DateText(
        "Fecha Nacimiento / Fecha Especial",
        validators=[
            DataRequired(REQUIRED),
            normalized(colombia.parse_date),
            _plausible_birth_date,
        ],
    )
    password = PasswordField("Contraseña", validators=[DataRequired(REQUIRED)])
    confirm = PasswordField(
        "Confirmar Contraseña",
        validators=[DataRequired(REQUIRED), EqualTo("password", "Las contraseñas no coinciden.")],
    )
    captcha = StringField("Captcha", validators=[Length(max=20)])

    def validate_password(self, field) -> None:
        problems = passwords.password_problems(
            field.data or "",
            document=self.numero_documento.data if not self.numero_documento.errors else None,
            phones=[p for p in (self.celular.data, self.telefono.data) if isinstance(p, str)],
            birth_date=self.fecha_nacimiento.data
            if not isinstance(self.fecha_nacimiento.data, str)
            else None,
            email=self.email.data,
        )
        if problems:
            raise ValidationError(" ".join(problems))


class QuizCodeForm(SpanishForm):
    codigo = StringField(
        "Código recibido por SMS",
        validators=[
            DataRequired(REQUIRED),
            Length(min=6, max=6, message="El código tiene 6 dígitos."),
        ],
    )


class LoginForm(SpanishForm):
    email = StringField("Email", validators=[DataRequired(REQUIRED), Length(max=254)])
    password = PasswordField("Contraseña", validators=[DataRequired(REQUIRED), Length(max=256)])


class ForgotForm(SpanishForm):
    """ "Olvide mi Contraseña (Verificar Datos)"."""

    email = email_field("Email")
    captcha = StringField("Captcha", validators=[Length(max=20)])


class NewPasswordForm(SpanishForm):
    """ "RESTABLECER CONTRASEÑA": the rules are checked by the view with the user's data."""

    password = PasswordField("Nueva Contraseña", validators=[DataRequired(REQUIRED)])
    confirm = PasswordField(
        "Confirmar Contraseña",
        validators=[DataRequired(REQUIRED), EqualTo("password", "Las contraseñas no coinciden.")],
    )


class ChangePasswordForm(NewPasswordForm):
    current = PasswordField("Contraseña actual", validators=[DataRequired(REQUIRED)])


class ChangeEmailForm(SpanishForm):
    email = email_field("Nuevo email")
    current = PasswordField("Contraseña actual", validators=[DataRequired(REQUIRED)])
