"""The bare Flask apps the portal is compared against in the same run.

``/``: a fixed fragment (the floor of any answer). ``/sondeo``: the least a
Flask poll can do (the floor of the portal's case poll): read a signed session
cookie, ask SQLite twice by index (the session, then "anything new?") and
answer 204 — no ORM, no CSRF, no security headers, no compression.
"""

import os
import sqlite3
import threading

from flask import Flask, session

app = Flask(__name__)
app.secret_key = os.environ.get("SECRET_KEY") or os.urandom(32).hex()

# About the size of the look-up partial (#datos-afiliado, ~1.3 KB).
_FIELD = """  <div class="field">
  <label for="{0}">{1}</label>
  <input id="{0}" name="{0}" maxlength="60" autocomplete="off" spellcheck="false" readonly required type="text" value="{2}">
</div>
"""
FRAGMENT = (
    '<div id="datos-afiliado" aria-live="polite">\n'
    + _FIELD.format("primer_apellido", "Primer Apellido", "PÉREZ")
    + _FIELD.format("segundo_apellido", "Segundo Apellido", "GÓMEZ")
    + _FIELD.format("primer_nombre", "Primer Nombre", "ANA")
    + _FIELD.format("segundo_nombre", "Segundo Nombre", "MARÍA")
    + _FIELD.format("estado", "Estado (Informativo solo aplica para afiliados)", "ACTIVO")
    + "</div>\n"
)

SID = "b" * 43  # a session token's length
_local = threading.local()


def _database() -> sqlite3.Connection:
    """This thread's small SQLite database (in memory: nothing to clean up after the run)."""
    if not hasattr(_local, "db"):
        db = sqlite3.connect(":memory:", check_same_thread=False)
        db.executescript(
            "CREATE TABLE sesion (id INTEGER PRIMARY KEY, token TEXT UNIQUE, cuenta INTEGER,"
            " visto TEXT);"
            "CREATE TABLE mensaje (id INTEGER PRIMARY KEY, caso INTEGER, texto TEXT);"
            "CREATE INDEX mensaje_caso ON mensaje (caso, id);"
        )
        db.execute("INSERT INTO sesion (token, cuenta, visto) VALUES (?, 1, '2026-12-04')", (SID,))
        db.executemany(
            "INSERT INTO mensaje (caso, texto) VALUES (?, 'x')", [(i % 50,) for i in range(500)]
        )
        db.commit()
        _local.db = db
    return _local.db


@app.route("/", methods=["GET", "POST"])
def fragment():
    """Return a fixed HTML fragment, without reading the request body."""
    return FRAGMENT


@app.get("/entrar")
def sign_in():
    """Set the session cookie /sondeo reads."""
    session["sid"] = SID
    return "ok"


@app.get("/sondeo")
def poll():
    """204 when the session is known and case 1 has nothing after message 500."""
    row = (
        _database()
        .execute("SELECT id, cuenta, visto FROM sesion WHERE token = ?", (session.get("sid", ""),))
        .fetchone()
    )
    if row is None:
        return "", 401
    new = (
        _database()
        .execute("SELECT EXISTS (SELECT 1 FROM mensaje WHERE caso = ? AND id > ?)", (1, 500))
        .fetchone()[0]
    )
    return ("nuevo", 200) if new else ("", 204)
