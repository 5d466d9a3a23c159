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
        from core.prepared import prepared

        if "_find" not in cls.__dict__:
            cls._find = prepared(
                lambda t, n: (
                    cls.select()
                    .where((cls.tipo_documento == t) & (cls.numero_documento == n))
                    .limit(1)
                )
            )
        return cls._find.first(str(tipo), str(numero))

    @property
    def nombre_completo(self) -> str:
        parts = (
            self.primer_nombre,
            self.segundo_nombre,
            self.primer_apellido,
            self.segundo_apellido,
        )
        return " ".join(p for p in parts if p)


_PROFILE_QUERIES: dict = {}


def _profile_query(model):
    """The prepared "profile of this account" query of one profile model (built on first use)."""
    from core.prepared import prepared

    query = _PROFILE_QUERIES.get(model)
    if query is None:
        query = _PROFILE_QUERIES[model] = prepared(
            lambda account_id: model.select().where(model.account == account_id).limit(1)
        )
    return query


class Account(UserMixin, BaseModel):
    """One credential of any kind of principal; what is particular to a kind lives in its profile.

    login is how the person identifies at sign-in, normalised by core.accounts:
    the e-mail (Hanna, staff), "CC:123…" (EPS affiliates) or the NIT (IPS).
    """

    HANNA, EPS, IPS, STAFF = "hanna", "eps", "ips", "staff"
    PENDING, ACTIVE, BLOCKED, DISABLED = "pendiente", "activo", "bloqueado", "deshabilitado"

    kind = CharField(max_length=8)
    login = CharField(max_length=254)
    email = CharField(max_length=254, default="")
    celular = CharField(max_length=10, default="")
    password_hash = CharField(max_length=255, default="")
    status = CharField(max_length=14, default=PENDING, index=True)
    must_change_password = BooleanField(default=False)
    # get_id() returns this, not the primary key: rotating it ends every session.
    session_token = CharField(max_length=64, unique=True, default=new_token)
    # Part of the e-mail-change link; rotated on each request and on use (one live link).
    email_nonce = CharField(max_length=64, default=new_token)
    failed_logins = IntegerField(default=0)
    login_blocked_until = DateTimeField(null=True)
    # Second factor (staff): the TOTP secret, and the last time step accepted,
    # so a code is taken once even inside its 30 s window.
    totp_secret = CharField(max_length=64, default="")
    totp_last_step = IntegerField(null=True)
    totp_enrolled_at = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("kind", "login"), True),)

    def get_id(self) -> str:
        return self.session_token

    @property
    def is_active(self) -> bool:
        return self.status == self.ACTIVE

    def _profile(self, model, kind: str):
        """Read this account's profile of one kind once per object (None for another kind)."""
        key = f"_{model.__name__}"
        if key not in self.__dict__:
            self.__dict__[key] = _profile_query(model).first(self.id) if self.kind == kind else None
        return self.__dict__[key]

    @property
    def hanna(self) -> HannaUser | None:
        """The Hanna profile (None for another kind)."""
        return self._profile(HannaUser, self.HANNA)

    @property
    def staff(self) -> StaffMember | None:
        """The staff profile (None for another kind)."""
        return self._profile(StaffMember, self.STAFF)

    @property
    def eps(self) -> EpsUser | None:
        """The Génesis profile (None for another kind)."""
        return self._profile(EpsUser, self.EPS)

    @property
    def ips(self) -> IpsOperador | None:
        """The IPS operator profile (None for another kind)."""
        return self._profile(IpsOperador, self.IPS)

    @property
    def nombre(self) -> str:
        """The short name pages greet the person by."""
        profile = self.hanna or self.staff or self.eps or self.ips
        return profile.nombre if profile is not None else self.login

    @property
    def first_name(self) -> str:
        """The name a letter greets the person by ("Estimado(a) Ana:")."""
        if self.hanna is not None:
            return self.hanna.primer_nombre
        if self.eps is not None:
            return self.eps.afiliado.primer_nombre
        profile = self.staff or self.ips
        return profile.nombre.split(" ")[0] if profile is not None else ""

    @classmethod
    def by_login(cls, kind: str, login: str) -> Account | None:
        return cls.get_or_none((cls.kind == kind) & (cls.login == login))

    @classmethod
    def by_email(cls, email: str, kind: str = HANNA) -> Account | None:
        return cls.by_login(kind, email.strip().lower())


class HannaUser(BaseModel):
    """The Hanna profile of an account (affiliate or not): who the person is, and activation."""

    account = ForeignKeyField(
        Account, primary_key=True, backref="hanna_profile", on_delete="CASCADE"
    )
    tipo_documento = CharField(max_length=2)
    numero_documento = CharField(max_length=20)
    primer_nombre = CharField(max_length=60)
    segundo_nombre = CharField(max_length=60, default="")
    primer_apellido = CharField(max_length=60)
    segundo_apellido = CharField(max_length=60, default="")
    telefono = CharField(max_length=10, default="")
    fecha_nacimiento = DateField()
    afiliado = ForeignKeyField(Afiliado, null=True, on_delete="SET NULL")
    # Part of the activation link; rotated when the link has done its job.
    activation_nonce = CharField(max_length=64, default=new_token)
    quiz_failures = IntegerField(default=0)
    activated_at = DateTimeField(null=True)
    blocked_at = DateTimeField(null=True, index=True)
    blocked_reason = CharField(max_length=12, default="")  # accounts.service.BlockReason
    unblocked_at = DateTimeField(null=True)  # the last time staff unblocked it

    class Meta:
        indexes = ((("tipo_documento", "numero_documento"), True),)

    @property
    def nombre(self) -> str:
        return " ".join(p for p in (self.primer_nombre, self.primer_apellido) if p)

    @classmethod
    def split(cls, values: dict) -> tuple[dict, dict]:
        """Split one dict of fields into the account's and the profile's."""
        mine = set(cls._meta.fields) - {"account"}
        return (
            {k: v for k, v in values.items() if k not in mine},
            {k: v for k, v in values.items() if k in mine},
        )

    @classmethod
    def create_account(cls, **values) -> Account:
        """Create a Hanna account and its profile in one go (login = the e-mail)."""
        credential, profile = cls.split(values)
        credential.setdefault("login", credential.get("email", ""))
        with cls._meta.database.atomic():
            account = Account.create(kind=Account.HANNA, **credential)
            cls.create(account=account, **profile)
        return account


class StaffMember(BaseModel):
    """The staff profile of an account: a name, and roles in StaffRole."""

    account = ForeignKeyField(
        Account, primary_key=True, backref="staff_profile", on_delete="CASCADE"
    )
    nombre = CharField(max_length=120)
    invited_by = IntegerField(null=True)  # the admin's account id

    @classmethod
    def create_account(
        cls, email: str, nombre: str, roles, invited_by: int | None = None, **credential
    ) -> Account:
        """Create a staff account, its profile and its roles in one go (login = the e-mail)."""
        with cls._meta.database.atomic():
            account = Account.create(kind=Account.STAFF, login=email, email=email, **credential)
            cls.create(account=account, nombre=nombre, invited_by=invited_by)
            for role in roles:
                StaffRole.create(account=account, role=role)
        return account


class StaffRole(BaseModel):
    """One role of one staff account (core.permissions names them)."""

    account = ForeignKeyField(Account, backref="roles", on_delete="CASCADE")
    role = CharField(max_length=20)

    class Meta:
        indexes = ((("account", "role"), True),)


class RecoveryCode(BaseModel):
    """A single-use second-factor recovery code, stored hashed."""

    account = ForeignKeyField(Account, backref="recovery_codes", on_delete="CASCADE")
    code_hash = CharField(max_length=64)
    used_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("account", "code_hash"), True),)


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


class Entidad(BaseModel):
    """A partner entity with a convenio (gym, school, shop), from the Caja's data (SPEC S2)."""

    ACTIVA, INACTIVA = "ACTIVA", "INACTIVA"

    nit = CharField(max_length=15, unique=True)  # digits with the DIAN check digit
    nombre = CharField(max_length=160)
    estado = CharField(max_length=10, default=ACTIVA)
    updated_at = DateTimeField(default=utcnow)


class Sede(BaseModel):
    """One front desk of an entity: the place a use of the convenio is recorded at."""

    entidad = ForeignKeyField(Entidad, backref="sedes", on_delete="CASCADE")
    codigo = CharField(max_length=20)  # the Caja's code, unique within the entity
    nombre = CharField(max_length=120)
    municipio = CharField(max_length=5, default="")  # DIVIPOLA code
    direccion = CharField(max_length=160, default="")
    activa = BooleanField(default=True)

    class Meta:
        indexes = ((("entidad", "codigo"), True),)


class UserSession(BaseModel):
    """A signed-in browser; the cookie holds the token whose hash is stored here."""

    # Why a session ended (end_reason), so the next page can tell the person.
    LOGOUT, IDLE, EXPIRED = "salida", "inactividad", "vencida"
    PASSWORD, RESET, ELSEWHERE, ALL = "clave", "restablecida", "otra_sesion", "todas"
    ACCOUNT = "cuenta"  # the account stopped being active (blocked, disabled)
    SECOND_FACTOR = "segundo_factor"  # an admin reset the second factor

    token_hash = CharField(max_length=64, unique=True)
    account = ForeignKeyField(Account, backref="sessions", on_delete="CASCADE")
    # When this session passed the second factor (staff); None: not yet.
    second_factor_at = DateTimeField(null=True)
    # Fixed at sign-in from the kind of account (auth.idle_limit): shared PCs get less.
    idle_seconds = IntegerField(default=15 * 60)
    created_at = DateTimeField(default=utcnow)
    last_seen = DateTimeField(default=utcnow)
    user_agent = CharField(max_length=200, default="")
    ended_at = DateTimeField(null=True, index=True)
    end_reason = CharField(max_length=20, null=True)
    # The sede this session works for in Convenios (H6), chosen once per session;
    # cleared when the access is revoked, which ends the session's Convenios work.
    convenio_sede = ForeignKeyField(Sede, null=True, on_delete="SET NULL")


class LoginDevice(BaseModel):
    """A browser that signed in to an account: its own login-failure budget (OWASP device cookie).

    The cookie carries the signed nonce whose hash is stored here; revoking the
    row (password reset, "cerrar sesión en todos los equipos", too many
    failures) turns the cookie into an untrusted client.
    """

    account = ForeignKeyField(Account, backref="devices", on_delete="CASCADE")
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

    account = ForeignKeyField(Account, backref="quiz_attempts", on_delete="CASCADE")
    questions = TextField()  # JSON: [{key, text, options: [..], answer: i}]
    created_at = DateTimeField(default=utcnow)
    finished_at = DateTimeField(null=True)
    passed = BooleanField(null=True)


class OneTimeCode(BaseModel):
    """A short numeric code sent by SMS (activation without the quiz)."""

    account = ForeignKeyField(Account, on_delete="CASCADE")
    purpose = CharField(max_length=20)  # core.tokens purpose: never accepted for another
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
    account = ForeignKeyField(Account, null=True, on_delete="CASCADE")
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
    created_by = ForeignKeyField(Account, null=True, on_delete="SET NULL")
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
    # No foreign key: the log outlives the accounts it names (append-only, never cascaded).
    actor_id = IntegerField(null=True)
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


class SolicitudAplicacion(BaseModel):
    """A Hanna user's request for an application (H4), and staff's decision on it."""

    PENDIENTE, APROBADA, RECHAZADA = "pendiente", "aprobada", "rechazada"

    account = ForeignKeyField(Account, backref="solicitudes", on_delete="CASCADE")
    aplicacion = CharField(max_length=20)  # core.permissions.Application
    nit = CharField(max_length=15)
    entidad_nombre = CharField(max_length=160)
    sedes = TextField(default="")  # what the user wrote: which front desks
    telefono = CharField(max_length=10)
    estado = CharField(max_length=10, default=PENDIENTE)
    # One request per form shown: a double submit or a replay finds this key taken.
    form_key = CharField(max_length=64, unique=True)
    motivo = TextField(default="")  # the reason of a rejection, shown to the user
    entidad = ForeignKeyField(Entidad, null=True, on_delete="SET NULL")  # chosen on approval
    decided_by = ForeignKeyField(Account, null=True, on_delete="SET NULL")
    decided_at = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("estado", "created_at", "id"), False), (("account", "created_at"), False))


class Acceso(BaseModel):
    """An application granted to an account, for one entity (the tile on the home page)."""

    account = ForeignKeyField(Account, backref="accesos", on_delete="CASCADE")
    aplicacion = CharField(max_length=20)
    entidad = ForeignKeyField(Entidad, null=True, on_delete="CASCADE")
    solicitud = ForeignKeyField(SolicitudAplicacion, null=True, on_delete="SET NULL")
    created_at = DateTimeField(default=utcnow)

    class Meta:
        # The second: the staff's list of grants of one application, newest first.
        indexes = ((("account", "aplicacion"), True), (("aplicacion", "created_at", "id"), False))


class AccesoSede(BaseModel):
    """A sede an account may act for under its Acceso."""

    acceso = ForeignKeyField(Acceso, backref="sedes", on_delete="CASCADE")
    sede = ForeignKeyField(Sede, on_delete="CASCADE")

    class Meta:
        indexes = ((("acceso", "sede"), True),)


class ConsultaConvenio(BaseModel):
    """One look-up at a convenio front desk (H6): who asked, where, for which document, and what they saw.

    Append-only: the Caja answers "who consulted this cédula" from it (habeas
    data). The worker's data is kept as shown then, so the partner's report
    says what the desk saw, even after the Caja's data changes.
    """

    # resultado: what the look-up found; only ACTIVO gives the benefit.
    ACTIVO = "activo"
    NO_AFILIADO = "no_afiliado"
    AFILIADO_INACTIVO = "afiliado_inactivo"
    EMPRESA_INACTIVA = "empresa_inactiva"
    LIMITE = "limite"  # refused by a quota: nothing was looked up or shown

    account = ForeignKeyField(Account)  # the operator
    entidad = ForeignKeyField(Entidad)
    sede = ForeignKeyField(Sede)
    numero_documento = CharField(max_length=20)  # as asked (digits only)
    resultado = CharField(max_length=20)
    nombre = CharField(max_length=250, default="")  # as shown
    estado_afiliado = CharField(max_length=20, default="")
    tarifa = CharField(max_length=1, default="")
    empresa_estado = CharField(max_length=20, default="")
    # Random, in the "Reportar Uso" form: the idempotency key of that one use.
    clave = CharField(max_length=32, unique=True)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        append_only = True
        indexes = (
            (("sede", "created_at", "id"), False),
            (("entidad", "created_at", "id"), False),
            (("numero_documento", "created_at", "id"), False),
            (("account", "created_at", "id"), False),
            (("created_at", "id"), False),
        )

    @property
    def beneficio(self) -> bool:
        return self.resultado == self.ACTIVO

    def save(self, *args, **kwargs):
        if self._pk is not None and not kwargs.get("force_insert"):
            raise PermissionError("ConsultaConvenio is append-only")
        return super().save(*args, **kwargs)


class UsoConvenio(BaseModel):
    """A use of the convenio reported at a desk ("Reportar Uso"): at most one per look-up."""

    consulta = ForeignKeyField(ConsultaConvenio, unique=True)  # the idempotency: one use a look-up
    numero = CharField(max_length=12, unique=True)  # the receipt's number, random
    account = ForeignKeyField(Account)
    entidad = ForeignKeyField(Entidad)
    sede = ForeignKeyField(Sede)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        append_only = True
        indexes = (
            (("sede", "created_at", "id"), False),
            (("entidad", "created_at", "id"), False),
        )

    def save(self, *args, **kwargs):
        if self._pk is not None and not kwargs.get("force_insert"):
            raise PermissionError("UsoConvenio is append-only")
        return super().save(*args, **kwargs)


class Ips(BaseModel):
    """An IPS (the provider that sees the patient), from the EPS's data (SPEC S2)."""

    nit = CharField(max_length=15, unique=True)  # digits with the DIAN check digit
    nombre = CharField(max_length=160)
    email = CharField(max_length=254, default="")
    telefono = CharField(max_length=10, default="")
    direccion = CharField(max_length=160, default="")
    municipio = CharField(max_length=5, default="")  # DIVIPOLA code
    updated_at = DateTimeField(default=utcnow)


class EpsAfiliado(BaseModel):
    """A person in the EPS's master data (SPEC S2), apart from the Caja's Afiliado.

    The núcleo familiar is one level deep: a cotizante (cabeza de familia) has
    cabeza = NULL, and each beneficiary points at its cotizante (core.eps_data
    keeps it so: no chains, nobody their own cabeza).
    """

    ACTIVO = "ACTIVO"
    COTIZANTE = "COTIZANTE"

    tipo_documento = CharField(max_length=2)
    numero_documento = CharField(max_length=20)
    primer_nombre = CharField(max_length=60)
    segundo_nombre = CharField(max_length=60, default="")
    primer_apellido = CharField(max_length=60)
    segundo_apellido = CharField(max_length=60, default="")
    fecha_nacimiento = DateField()
    fecha_expedicion = DateField(null=True)  # of the document: proof of identity in G1
    sexo = CharField(max_length=1)  # F, M
    regimen = CharField(max_length=12)  # CONTRIBUTIVO, SUBSIDIADO
    estado = CharField(max_length=12)  # ACTIVO, INACTIVO, SUSPENDIDO, RETIRADO, FALLECIDO
    celular = CharField(max_length=10, default="")
    email = CharField(max_length=254, default="")
    direccion = CharField(max_length=160, default="")
    municipio = CharField(max_length=5, default="")  # DIVIPOLA code
    ips = ForeignKeyField(Ips, null=True, backref="afiliados")  # IPS de atención primaria
    cabeza = ForeignKeyField("self", null=True, backref="beneficiarios")
    parentesco = CharField(max_length=12)  # core.eps_data.PARENTESCOS
    telefono = CharField(max_length=10, default="")  # fixed line, optional (G5)
    # When the member last confirmed or updated their contact data in the office (G3, G5).
    contacto_confirmado_at = DateTimeField(null=True)
    # When the member last said "mis datos están actualizados" for all their basic data (G5).
    datos_confirmados_at = DateTimeField(null=True)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("tipo_documento", "numero_documento"), True),)

    @classmethod
    def find(cls, tipo: str, numero: str) -> EpsAfiliado | None:
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


class Autorizacion(BaseModel):
    """A medical authorization issued by the EPS (SPEC S2, G4), imported or decided by staff."""

    numero = CharField(max_length=20, unique=True)
    afiliado = ForeignKeyField(EpsAfiliado, backref="autorizaciones")
    codigo_servicio = CharField(max_length=20)  # CUPS code
    nombre_servicio = CharField(max_length=200)
    fecha = DateField()
    estado = CharField(max_length=10)  # core.eps_data.ESTADOS_AUTORIZACION
    ips = ForeignKeyField(Ips, null=True, backref="autorizaciones")
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("afiliado", "fecha"), False),)


class EpsUser(BaseModel):
    """The Génesis profile of an account: the EPS affiliate it is, and what was accepted (G1, G2).

    The account's login is "TIPO:NUMERO" (core.genesis.login_of). A registration
    leaves must_change_password set and temp_password_expires_at 24 h ahead: the
    SMS password opens nothing else and dies unused after a day.
    """

    account = ForeignKeyField(Account, primary_key=True, backref="eps_profile", on_delete="CASCADE")
    afiliado = ForeignKeyField(EpsAfiliado, unique=True, backref="cuenta")
    temp_password_expires_at = DateTimeField(null=True)
    # Consent to the privacy policy (Ley 1581 de 2012): when, and which text.
    privacy_accepted_at = DateTimeField()
    privacy_version = CharField(max_length=20)
    # "carta de derechos y deberes": accepted at first login (G2), version kept.
    carta_accepted_at = DateTimeField(null=True)
    carta_version = CharField(max_length=20, default="")
    registered_at = DateTimeField(default=utcnow)

    @property
    def nombre(self) -> str:
        a = self.afiliado
        return " ".join(p for p in (a.primer_nombre, a.primer_apellido) if p)

    @classmethod
    def create_account(cls, afiliado: EpsAfiliado, login: str, **values) -> Account:
        """Create an EPS account and its profile in one go."""
        mine = set(cls._meta.fields) - {"account", "afiliado"}
        profile = {k: v for k, v in values.items() if k in mine}
        credential = {k: v for k, v in values.items() if k not in mine}
        with cls._meta.database.atomic():
            account = Account.create(kind=Account.EPS, login=login, **credential)
            cls.create(account=account, afiliado=afiliado, **profile)
        return account


class SolicitudAutorizacion(BaseModel):
    """A request for a medical authorization filed in the office (G3), and staff's decision (S1)."""

    PENDIENTE, APROBADA, RECHAZADA = "PENDIENTE", "APROBADA", "RECHAZADA"

    numero = CharField(max_length=12, unique=True)  # shown to the member, random (no counting)
    afiliado = ForeignKeyField(EpsAfiliado, backref="solicitudes")  # the member it is for
    account = ForeignKeyField(Account, backref="solicitudes_autorizacion")  # who filed it
    municipio = CharField(max_length=5)  # DIVIPOLA code (its first two digits: departamento)
    observacion = TextField()
    estado = CharField(max_length=10, default=PENDIENTE)
    motivo_rechazo = TextField(default="")
    # One request per form shown: a double submit or a retry finds this key taken.
    form_key = CharField(max_length=64, unique=True)
    created_at = DateTimeField(default=utcnow)
    due_on = DateField()  # the last of the 5 working days (core.workdays)
    decided_by = ForeignKeyField(Account, null=True, on_delete="SET NULL")
    decided_at = DateTimeField(null=True)
    autorizacion = ForeignKeyField(Autorizacion, null=True, on_delete="SET NULL")

    class Meta:
        indexes = (
            (("estado", "due_on", "id"), False),
            (("afiliado", "created_at"), False),
        )


class CambioDatosEps(BaseModel):
    """One change to an EPS affiliate's contact data made in the office: who, when, before → after."""

    afiliado = ForeignKeyField(EpsAfiliado, backref="cambios")
    account = ForeignKeyField(Account, null=True, on_delete="SET NULL")
    campo = CharField(max_length=20)
    antes = CharField(max_length=254, default="")
    despues = CharField(max_length=254, default="")
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("afiliado", "created_at"), False),)


class Pqrs(BaseModel):
    """A PQRSF filed by anyone (G7), followed by its radicado (G6), and handled by staff (S1).

    The term is counted in Colombian working days from the day of receipt (Ley 1755
    de 2015, art. 14; core.workdays): due_on is the last day, and an extension
    (before due_on, with a reason, at most once the initial term more) moves it.
    """

    # tipo
    PETICION, QUEJA, RECLAMO, DENUNCIA = "peticion", "queja", "reclamo", "denuncia"
    SUGERENCIA, FELICITACION = "sugerencia", "felicitacion"
    DOCUMENTOS, CONSULTA, DESBLOQUEO = "documentos", "consulta", "desbloqueo"
    # estado
    RADICADA, INFORMACION, RESPONDIDA, CERRADA = "radicada", "informacion", "respondida", "cerrada"

    radicado = CharField(max_length=16, unique=True)  # the code the citizen keeps
    tipo = CharField(max_length=14)
    tipo_documento = CharField(max_length=2)
    numero_documento = CharField(max_length=20)
    nombre = CharField(max_length=160)
    email = CharField(max_length=254, default="")
    celular = CharField(max_length=10, default="")
    descripcion = TextField()
    account = ForeignKeyField(Account, null=True, on_delete="SET NULL")  # the filer, when signed in
    # A "desbloqueo de cuenta" names the blocked Hanna account it is about.
    cuenta_bloqueada = ForeignKeyField(Account, null=True, on_delete="SET NULL")
    estado = CharField(max_length=12, default=RADICADA)
    term_days = IntegerField()  # the legal term of its tipo, working days
    due_on = DateField()
    extended_days = IntegerField(default=0)
    extension_reason = TextField(default="")
    respuesta = TextField(default="")
    answered_at = DateTimeField(null=True)
    answered_by = ForeignKeyField(Account, null=True, on_delete="SET NULL")
    closed_at = DateTimeField(null=True)
    # One PQRSF per form shown: a double submit finds this key taken.
    form_key = CharField(max_length=64, unique=True)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("estado", "due_on", "id"), False),
            # The queue filtered by tipo: its page and its count read this range only.
            (("estado", "tipo", "due_on", "id"), False),
            (("tipo_documento", "numero_documento"), False),
        )


class PqrsMensaje(BaseModel):
    """One step of a PQRSF the citizen reads: an answer, a request for information, an extension."""

    RESPUESTA, INFORMACION, PRORROGA, CIERRE, CIUDADANO = (
        "respuesta",
        "informacion",
        "prorroga",
        "cierre",
        "ciudadano",
    )

    pqrs = ForeignKeyField(Pqrs, backref="mensajes", on_delete="CASCADE")
    tipo = CharField(max_length=12)
    texto = TextField()
    account = ForeignKeyField(Account, null=True, on_delete="SET NULL")
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("pqrs", "created_at"), False),)


class Certificado(BaseModel):
    """A certificate of affiliation (G5), as it was issued: what it states is frozen here.

    The public check (/certificados/verificar) shows these columns, never the
    live row, and then core.certificados.verdict tells whether they still hold.
    """

    codigo = CharField(max_length=11, unique=True)  # "XXXXX-XXXXX", core.certificados
    afiliado = ForeignKeyField(EpsAfiliado, backref="certificados")
    account = ForeignKeyField(Account, null=True, on_delete="SET NULL")  # who generated it
    issued_at = DateTimeField(default=utcnow)
    valid_until = DateField()  # the last day it is valid (Bogotá), fixed at issue
    # What the certificate says, as of issued_at.
    tipo_documento = CharField(max_length=2)
    numero_documento = CharField(max_length=20)
    nombre = CharField(max_length=250)
    estado = CharField(max_length=12)
    regimen = CharField(max_length=12)
    parentesco = CharField(max_length=12)
    cotizante = ForeignKeyField(
        EpsAfiliado, null=True, backref="+"
    )  # the núcleo's head, if not self
    cotizante_nombre = CharField(max_length=250, default="")
    ips_nombre = CharField(max_length=160, default="")

    class Meta:
        indexes = ((("afiliado", "issued_at"), False),)


class IpsOperador(BaseModel):
    """The IPS profile of an account: one named person of one IPS (SPEC I1).

    Each operator signs in with the IPS's NIT and their own e-mail (login
    "NIT:email"), so every message of a case says who wrote it. The IPS admin
    (the first operator, created by staff) adds the others.
    """

    account = ForeignKeyField(Account, primary_key=True, backref="ips_profile", on_delete="CASCADE")
    ips = ForeignKeyField(Ips, backref="operadores", on_delete="CASCADE")
    nombre = CharField(max_length=120)
    es_admin = BooleanField(default=False)
    invited_by = IntegerField(null=True)  # the account that added this operator


class MotivoMesa(BaseModel):
    """A motivo of the help desk (I2): its asuntos, and the target time staff answer within."""

    nombre = CharField(max_length=80, unique=True)
    horas_objetivo = IntegerField(default=16)  # office hours to answer (core.workdays)
    orden = IntegerField(default=0)
    activo = BooleanField(default=True)


class AsuntoMesa(BaseModel):
    """An asunto of one motivo (I2): the list the second select offers."""

    motivo = ForeignKeyField(MotivoMesa, backref="asuntos", on_delete="CASCADE")
    nombre = CharField(max_length=80)
    orden = IntegerField(default=0)
    activo = BooleanField(default=True)

    class Meta:
        indexes = ((("motivo", "nombre"), True),)


class Secuencia(BaseModel):
    """A named counter handed out one by one inside a transaction (help-desk case numbers)."""

    nombre = CharField(max_length=40, primary_key=True)
    valor = IntegerField()


class CasoMesa(BaseModel):
    """A help-desk case an IPS opened (I2, I3), answered by staff of role soporte (S1)."""

    # estado
    NUEVO, ESPERA_MESA, ESPERA_IPS, CERRADO = "nuevo", "espera_mesa", "espera_ips", "cerrado"

    numero = IntegerField(unique=True)  # sequential, shown as "CASO"
    ips = ForeignKeyField(Ips, backref="casos", on_delete="CASCADE")
    account = ForeignKeyField(
        Account, null=True, on_delete="SET NULL"
    )  # the operator who opened it
    motivo = ForeignKeyField(MotivoMesa, on_delete="RESTRICT")
    asunto = ForeignKeyField(AsuntoMesa, on_delete="RESTRICT")
    descripcion = TextField()
    estado = CharField(max_length=12, default=NUEVO)
    asignado = ForeignKeyField(Account, null=True, on_delete="SET NULL")  # the staff member on it
    due_at = DateTimeField()  # the motivo's target, in office hours from creation (naive UTC)
    form_key = CharField(max_length=64, unique=True)  # one case per form shown
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    closed_at = DateTimeField(null=True)

    class Meta:
        indexes = (
            (("ips", "created_at"), False),
            (("estado", "due_at", "id"), False),
        )


class MensajeMesa(BaseModel):
    """One message of a case's thread; an internal note is staff's only and never reaches the IPS."""

    caso = ForeignKeyField(CasoMesa, backref="mensajes", on_delete="CASCADE")
    account = ForeignKeyField(Account, null=True, on_delete="SET NULL")
    de_mesa = BooleanField()  # written by staff (True) or by the IPS (False)
    interna = BooleanField(default=False)  # staff's note: not on the IPS's page, partial or e-mail
    texto = TextField()
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("caso", "id"), False),)


class RespuestaGuardada(BaseModel):
    """A saved reply staff insert into a case (S1)."""

    titulo = CharField(max_length=80, unique=True)
    texto = TextField()
    created_by = ForeignKeyField(Account, null=True, on_delete="SET NULL")
    created_at = DateTimeField(default=utcnow)


MODELS = [
    Afiliado,
    Account,
    HannaUser,
    StaffMember,
    StaffRole,
    RecoveryCode,
    PendingRegistration,
    Entidad,
    Sede,
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
    SolicitudAplicacion,
    Acceso,
    AccesoSede,
    ConsultaConvenio,
    UsoConvenio,
    Ips,
    EpsAfiliado,
    Autorizacion,
    EpsUser,
    SolicitudAutorizacion,
    CambioDatosEps,
    Pqrs,
    PqrsMensaje,
    Certificado,
    IpsOperador,
    MotivoMesa,
    AsuntoMesa,
    Secuencia,
    CasoMesa,
    MensajeMesa,
    RespuestaGuardada,
    SchemaVersion,
]
