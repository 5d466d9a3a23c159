"""The schema: every table of the portal, and the small queries that belong to them.

Times are naive UTC (see core.clock); templates show them in Bogotá time.
"""

from __future__ import annotations

import secrets

from flask_login import UserMixin
from peewee import (
    SQL,
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
    # Part of the e-mail-change link; rotated on each request and on use (one live link).
    email_nonce = CharField(max_length=64, default=new_token)
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


class PendingRegistration(BaseModel):
    """ "Crear Cuenta Nueva" between the captcha and "Crear Usuario", held on the server.

    The page carries only a random ticket whose hash is stored here; data is the
    validated form as JSON, with the password already hashed ("" until the form
    validates: the row then only marks that this form's captcha was solved).
    """

    id = CharField(max_length=32, primary_key=True, default=lambda: secrets.token_hex(16))
    ticket_hash = CharField(max_length=64, unique=True)
    data = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField(index=True)


class UserSession(BaseModel):
    """A signed-in browser; the cookie holds the token whose hash is stored here."""

    # Why a session ended (end_reason), so the next page can tell the person.
    LOGOUT, IDLE, EXPIRED = "salida", "inactividad", "vencida"
    PASSWORD, RESET, ELSEWHERE, ALL = "clave", "restablecida", "otra_sesion", "todas"
    ACCOUNT = "cuenta"  # the account stopped being active (blocked)

    token_hash = CharField(max_length=64, unique=True)
    user = ForeignKeyField(User, backref="sessions", on_delete="CASCADE")
    created_at = DateTimeField(default=utcnow)
    last_seen = DateTimeField(default=utcnow)
    user_agent = CharField(max_length=200, default="")
    ended_at = DateTimeField(null=True, index=True)
    end_reason = CharField(max_length=20, null=True)


class LoginDevice(BaseModel):
    """A browser that signed in to an account: its own login-failure budget (OWASP device cookie).

    The cookie carries the signed nonce whose hash is stored here; revoking the
    row (password reset, "cerrar sesión en todos los equipos", too many
    failures) turns the cookie into an untrusted client.
    """

    user = ForeignKeyField(User, backref="devices", on_delete="CASCADE")
    nonce_hash = CharField(max_length=64, unique=True)
    failed_logins = IntegerField(default=0)
    created_at = DateTimeField(default=utcnow)
    last_used_at = DateTimeField(default=utcnow)
    revoked_at = DateTimeField(null=True)


class QuizBank(BaseModel):
    """A person's activation questions, options drawn once so every attempt shows the same."""

    afiliado = ForeignKeyField(Afiliado, unique=True, on_delete="CASCADE")
    questions = TextField()  # JSON: [{key, text, options: [..], answer: i}]
    created_at = DateTimeField(default=utcnow)


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
    # Digest of the number it went to: the daily cap counts per phone too.
    recipient_hash = CharField(max_length=64, default="", index=True)
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


class SpentCaptcha(BaseModel):
    """A captcha key that has been answered once (challenges themselves are signed, not stored)."""

    key_hash = CharField(max_length=64, unique=True)  # the unique index spends it atomically
    expires_at = DateTimeField(index=True)  # when the key would be refused anyway


class Throttle(BaseModel):
    """One cool-down or quota window (core.throttle): a purpose and a digest of its key.

    Never the key itself (an e-mail address, a phone): only its sha256.
    """

    purpose = CharField(max_length=32)
    key_hash = CharField(max_length=64)
    window_start = DateTimeField()
    expires_at = DateTimeField(index=True)  # the window's end: the purge reads this index
    count = IntegerField(default=0)

    class Meta:
        indexes = ((("purpose", "key_hash"), True),)


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


# The worker blanks old bodies (core.notify.purge_bodies): this index holds only
# rows that still have one, so the purge reads the last hours, not the archive.
Message.add_index(Message.index(Message.status, Message.created_at, where=SQL("body_text <> ''")))


class SchemaVersion(BaseModel):
    """The number of the last migration applied (one row)."""

    version = IntegerField()


class Attachment(BaseModel):
    """An uploaded file (core.uploads): the bytes live under UPLOAD_DIR by key."""

    key = CharField(max_length=32, unique=True)  # random, the file's name on disk
    original_name = CharField(max_length=120)  # cleaned for display, never a path
    content_type = CharField(max_length=100)  # from the sniffed kind, never the client's
    kind = CharField(max_length=10)  # core.uploads.Kind
    size = IntegerField()
    sha256 = CharField(max_length=64)
    owner_type = CharField(max_length=40)  # e.g. "autorizacion", "caso"
    owner_id = IntegerField()
    created_by = IntegerField(null=True)  # the account; a foreign key once accounts settle
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("owner_type", "owner_id"), False),)

    @classmethod
    def of(cls, owner_type: str, owner_id: int) -> list[Attachment]:
        return list(
            cls.select()
            .where((cls.owner_type == owner_type) & (cls.owner_id == owner_id))
            .order_by(cls.id)
        )


class AuditEvent(BaseModel):
    """Who did what to which row, when and from where (core.audit writes it).

    Append-only: the ORM refuses to change or delete a row, and init_schema adds
    triggers that refuse UPDATE and DELETE in the database (Meta.append_only).
    """

    at = DateTimeField(default=utcnow)
    actor_id = IntegerField(null=True)  # the staff account; a foreign key once accounts settle
    actor_label = CharField(max_length=254)  # e.g. the staff e-mail at the time
    action = CharField(max_length=64)  # core.audit.Action
    target_type = CharField(max_length=40)  # e.g. "usuario", "solicitud"
    target_id = IntegerField()
    before = TextField(null=True)  # JSON of the changed fields only, sorted keys
    after = TextField(null=True)
    ip = TextField(null=True)

    class Meta:
        append_only = True
        # Every search filters on a prefix and reads newest first: (at, id) ends
        # each index, so a page is read in order from the index, never sorted.
        indexes = (
            (("actor_id", "at", "id"), False),
            (("action", "at", "id"), False),
            (("target_type", "target_id", "at", "id"), False),
            (("at", "id"), False),
        )

    def save(self, *args, **kwargs):
        if self._pk is not None and not kwargs.get("force_insert"):
            raise TypeError("audit_event is append-only: a row is never changed")
        return super().save(*args, **kwargs)

    def delete_instance(self, *args, **kwargs):
        raise TypeError("audit_event is append-only: a row is never deleted")

    @classmethod
    def update(cls, *args, **kwargs):
        raise TypeError("audit_event is append-only: a row is never changed")

    @classmethod
    def delete(cls):
        raise TypeError("audit_event is append-only: a row is never deleted")


MODELS = [
    Afiliado,
    User,
    PendingRegistration,
    UserSession,
    LoginDevice,
    QuizBank,
    QuizAttempt,
    OneTimeCode,
    QrLogin,
    SpentCaptcha,
    Throttle,
    Message,
    Attachment,
    AuditEvent,
    SchemaVersion,
]
