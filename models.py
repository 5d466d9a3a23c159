"""The schema: every table of the portal, and the small queries that belong to them.

Times are naive UTC (see core.clock); templates show them in Bogotá time.
"""

from __future__ import annotations

import secrets

from flask_login import UserMixin
from peewee import (
    BooleanField,
    CharField,
    DatabaseProxy,
    DateField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from core.clock import utcnow

db = DatabaseProxy()


def new_token() -> str:
    """Return a random URL-safe token (32 bytes of entropy)."""
    return secrets.token_urlsafe(32)


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False


class Afiliado(BaseModel):
    """A person in the Caja's master data, as the Caja exports it (SPEC S2)."""

    tipo_documento = CharField(max_length=2)
    numero_documento = CharField(max_length=20)
    primer_nombre = CharField(max_length=60)
    segundo_nombre = CharField(max_length=60, default="")
    primer_apellido = CharField(max_length=60)
    segundo_apellido = CharField(max_length=60, default="")
    fecha_nacimiento = DateField(null=True)
    email = CharField(max_length=254, default="")
    celular = CharField(max_length=10, default="")
    telefono = CharField(max_length=10, default="")
    estado = CharField(max_length=20)  # ACTIVO, INACTIVO, RETIRADO…
    categoria = CharField(max_length=1, default="")
    empresa_nit = CharField(max_length=15, default="")
    empresa_nombre = CharField(max_length=120, default="")
    empresa_estado = CharField(max_length=20, default="")
    fecha_ingreso_empresa = DateField(null=True)
    profesion = CharField(max_length=120, default="")
    conyuge_celular = CharField(max_length=10, default="")
    conyuge_profesion = CharField(max_length=120, default="")
    conyuge_cargo = CharField(max_length=120, default="")
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("tipo_documento", "numero_documento"), True),)

    @classmethod
    def find(cls, tipo: str, numero: str) -> Afiliado | None:
        return cls.get_or_none((cls.tipo_documento == tipo) & (cls.numero_documento == numero))

    @property
    def nombre_completo(self) -> str:
        parts = (
            self.primer_nombre,
            self.segundo_nombre,
            self.primer_apellido,
            self.segundo_apellido,
        )
        return " ".join(p for p in parts if p)


class User(UserMixin, BaseModel):
    """A Hanna account (affiliate or not)."""

    PENDING, ACTIVE, BLOCKED = "pendiente", "activo", "bloqueado"
    # Roles pick the session timeouts: shared front-desk PCs (convenio, IPS,
    # staff) get a shorter idle time than an affiliate's own phone.
    AFFILIATE_ROLE, SHARED_PC_ROLE = "afiliado", "compartido"

    email = CharField(max_length=254, unique=True)
    tipo_documento = CharField(max_length=2)
    numero_documento = CharField(max_length=20)
    primer_nombre = CharField(max_length=60)
    segundo_nombre = CharField(max_length=60, default="")
    primer_apellido = CharField(max_length=60)
    segundo_apellido = CharField(max_length=60, default="")
    telefono = CharField(max_length=10, default="")
    celular = CharField(max_length=10)
    fecha_nacimiento = DateField()
    password_hash = CharField(max_length=255)
    status = CharField(max_length=10, default=PENDING, index=True)
    role = CharField(max_length=12, default=AFFILIATE_ROLE)
    afiliado = ForeignKeyField(Afiliado, null=True, on_delete="SET NULL")
    # get_id() returns this, not the primary key: rotating it ends every session.
    session_token = CharField(max_length=64, unique=True, default=new_token)
    # Part of the activation link; rotated when the link has done its job.
    activation_nonce = CharField(max_length=64, default=new_token)
    quiz_failures = IntegerField(default=0)
    failed_logins = IntegerField(default=0)
    login_blocked_until = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)
    activated_at = DateTimeField(null=True)
    blocked_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("tipo_documento", "numero_documento"), True),)

    def get_id(self) -> str:
        return self.session_token

    @property
    def is_active(self) -> bool:
        return self.status == self.ACTIVE

    @property
    def nombre(self) -> str:
        return " ".join(p for p in (self.primer_nombre, self.primer_apellido) if p)

    @classmethod
    def by_email(cls, email: str) -> User | None:
        return cls.get_or_none(cls.email == email.strip().lower())


class UserSession(BaseModel):
    """A signed-in browser; the cookie holds the token whose hash is stored here."""

    token_hash = CharField(max_length=64, unique=True)
    user = ForeignKeyField(User, backref="sessions", on_delete="CASCADE")
    created_at = DateTimeField(default=utcnow)
    last_seen = DateTimeField(default=utcnow)
    user_agent = CharField(max_length=200, default="")
    ended_at = DateTimeField(null=True, index=True)


class QuizAttempt(BaseModel):
    """One drawn activation quiz; the right answers never leave this row."""

    user = ForeignKeyField(User, backref="quiz_attempts", on_delete="CASCADE")
    questions = TextField()  # JSON: [{key, text, options: [..], answer: i}]
    created_at = DateTimeField(default=utcnow)
    finished_at = DateTimeField(null=True)
    passed = BooleanField(null=True)


class OneTimeCode(BaseModel):
    """A short numeric code sent by SMS (activation without the quiz)."""

    user = ForeignKeyField(User, on_delete="CASCADE")
    purpose = CharField(max_length=20)
    code_hash = CharField(max_length=64)
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()
    attempts = IntegerField(default=0)
    used_at = DateTimeField(null=True)


class QrLogin(BaseModel):
    """A PC asking to be signed in by a phone that already is ("Código QR")."""

    PENDING, APPROVED, REFUSED, USED = "pendiente", "aprobado", "rechazado", "usado"

    key = CharField(max_length=64, unique=True, default=new_token)  # in the QR's URL
    secret_hash = CharField(max_length=64)  # the PC's browser holds the secret
    match_code = CharField(max_length=2)  # shown on the PC, picked on the phone
    user_agent = CharField(max_length=200, default="")
    status = CharField(max_length=10, default=PENDING)
    user = ForeignKeyField(User, null=True, on_delete="CASCADE")
    created_at = DateTimeField(default=utcnow, index=True)
    expires_at = DateTimeField()


class Captcha(BaseModel):
    """A captcha challenge; stored so that a solved one cannot be replayed."""

    key = CharField(max_length=64, unique=True, default=new_token)
    text = CharField(max_length=12)
    audio_code = CharField(max_length=12)
    created_at = DateTimeField(default=utcnow, index=True)
    used = BooleanField(default=False)


class Message(BaseModel):
    """An outgoing e-mail or SMS, written in the same transaction as its cause."""

    EMAIL, SMS = "email", "sms"
    PENDING, SENDING, SENT, FAILED = "pendiente", "enviando", "enviado", "fallido"

    channel = CharField(max_length=5)
    recipient = CharField(max_length=254)
    subject = CharField(max_length=200, default="")
    body_text = TextField()
    body_html = TextField(default="")
    status = CharField(max_length=10, default=PENDING)
    attempts = IntegerField(default=0)
    next_attempt_at = DateTimeField(default=utcnow)
    claimed_until = DateTimeField(null=True)
    last_error = CharField(max_length=300, default="")
    created_at = DateTimeField(default=utcnow)
    sent_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("status", "next_attempt_at"), False),)


class SchemaVersion(BaseModel):
    """The number of the last migration applied (one row)."""

    version = IntegerField()


MODELS = [
    Afiliado,
    User,
    UserSession,
    QuizAttempt,
    OneTimeCode,
    QrLogin,
    Captcha,
    Message,
    SchemaVersion,
]
