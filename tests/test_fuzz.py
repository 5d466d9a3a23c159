"""Fuzz every POST route: no field value, URL value or body shape gives a 5xx (issue 6, item 6).

The routes come from app.url_map, the field names from the forms the pages
really show (plus every WTForms field and a few names nobody expects), the URL
values from live tokens and keys as well as random ones. The test app lets
exceptions through, so a bug fails here with its traceback.
"""

from __future__ import annotations

import io
import re
import time

import pytest
from flask_wtf import FlaskForm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import models
from blueprints.accounts import service
from core.demo import demo_afiliados
from core.importer import upsert_afiliados
from tests.factories import PASSWORD, make_user

HUGE = 100_000
EXTRA_NAMES = ["", "x", "csrf_token", "intento", "accion", "q0", "respuesta", "a" * 300, "ñ²\x00"]

text_values = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=200),
    st.sampled_from(
        [
            "",
            " ",
            "²",
            "٣",
            "1" * 23,
            "-1",
            "0",
            "9" * 400,
            "\x00",
            "a\x00b",
            "\r\n",
            "%00",
            "' OR 1=1 --",
            "<script>alert(1)</script>",
            "01/01/2099",
            "31/02/2000",
            "3001234567",
            "1000000001",
            "ana@example.com",
            PASSWORD,
            "aprobar",
            "enviar",
            "refrescar",
            "cancelar",
            "confirmar",
            "empezar",
        ]
    ),
    st.just("x" * HUGE),
)
file_values = st.builds(
    lambda data, name: (io.BytesIO(data), name),
    st.binary(max_size=64),
    st.sampled_from(["a.txt", "", "\x00.png", "../../etc/passwd", "ñ" * 50]),
)
field_values = st.one_of(text_values, text_values, text_values, file_values)
url_noise = st.one_of(
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters="/?#%"),
        min_size=1,
        max_size=60,
    ),
    st.sampled_from(["0", "1" * 23, "-5", "²", "a.b.c", "x" * 500, "%00", "..", "%2F"]),
    st.integers(min_value=0, max_value=10**30).map(str),
)
RAW_BODIES = [
    (
        "multipart/form-data; boundary=XX",
        b"--XX\r\nContent-Disposition: \r\n\r\nvalue\r\n--XX--\r\n",
    ),
    ("multipart/form-data; boundary=XX", b"--XX\r\n\r\nvalue\r\n--XX--\r\n"),
    (
        "multipart/form-data; boundary=XX",
        b'--XX\r\nContent-Disposition: form-data; filename="a"\r\n\r\nv\r\n--XX--\r\n',
    ),
    (
        "multipart/form-data; boundary=XX",
        b'--XX\r\nContent-Disposition: form-data; name=""\r\n\r\nv\r\n--XX--\r\n',
    ),
    ("multipart/form-data; boundary=XX", b"--XX\r\nbasura sin fin"),
    ("multipart/form-data", b"sin boundary"),
    ("application/x-www-form-urlencoded", b"%ZZ=%ZZ&&=&a=%00&b"),
    ("application/x-www-form-urlencoded", b"email=" + b"%C3" * 50),
    ("application/json", b'{"email": ["lista"], "password": {"o": 1}}'),
    ("text/plain", b"\x00\xff\xfe"),
]


def _form_classes(base: type = FlaskForm) -> list[type]:
    found = []
    for sub in base.__subclasses__():
        found += [sub, *_form_classes(sub)]
    return found


def wtforms_field_names() -> set[str]:
    """Every field name of every form class of the portal (the app has imported them all)."""
    names = set()
    for form in _form_classes():
        for attr in dir(form):
            if hasattr(getattr(form, attr, None), "field_class"):
                names.add(attr)
    return names


def form_names(html: str) -> set[str]:
    return set(re.findall(r'<(?:input|select|textarea|button)\b[^>]*\bname="([^"]*)"', html))


class Journeys:
    """Live tokens and keys, a signed-in client and an anonymous one, the field names."""

    def __init__(self, app):
        self.app = app
        secret = app.config["SECRET_KEY"]
        self.user = make_user()
        self.pending = self._quiz_taker()
        self.pending_plain = make_user(status=models.Account.PENDING)
        self.tokens = [
            service.activation_link(u, secret=secret, base_url="").rsplit("/", 1)[1]
            for u in (self.pending, self.pending_plain)
        ]
        self.anonymous = app.test_client()
        self.signed_in = app.test_client()
        self.sign_in()
        self.anonymous.post("/restablecer", data={"email": self.user.email})
        self.tokens += self._links("/restablecer/")
        self.anonymous.get("/qr")
        with self.anonymous.session_transaction() as session:
            self.tokens.append(session["qr"]["key"])
        self.names = wtforms_field_names() | set(EXTRA_NAMES)
        pages = ["/", "/registro", "/restablecer", "/qr", "/cuenta", "/cuenta/sesiones"]
        pages += [f"/activar/{t}" for t in self.tokens[:2]]
        pages += [f"/activar/{t}/codigo" for t in self.tokens[:2]]
        pages += [f"/restablecer/{t}" for t in self.tokens[2:3]] + [f"/qr/{self.tokens[-1]}"]
        for client in (self.anonymous, self.signed_in):
            for page in pages:
                self.names |= form_names(client.get(page).text)
        self.names = sorted(self.names)

    def _quiz_taker(self):
        """A pending affiliate with a started quiz, so fuzzed answers reach the grading."""
        upsert_afiliados(demo_afiliados(seed=5, count=300))
        for afiliado in models.Afiliado.select().where(models.Afiliado.celular != ""):
            user = make_user(
                status=models.Account.PENDING,
                afiliado=afiliado,
                tipo_documento=afiliado.tipo_documento,
                numero_documento=afiliado.numero_documento,
            )
            if service.activation_kind(user) is service.Activation.QUIZ:
                service.start_quiz(user)
                return user
        raise AssertionError("no affiliate with a fair quiz")

    def _links(self, path: str) -> list[str]:
        found = []
        for message in models.Message.select():
            found += re.findall(re.escape(path) + r"([^\s\"<]+)", message.body_text)
        assert found, f"no {path} link in the outbox"
        return found[-1:]

    def sign_in(self) -> None:
        form = {"email": self.user.email, "password": PASSWORD}
        found = re.search(r'name="csrf_token" value="([^"]+)"', self.signed_in.get("/").text)
        if found:
            form["csrf_token"] = found.group(1)
        self.signed_in.post("/", data=form)

    def session_ids(self) -> list[int]:
        return [s.id for s in models.UserSession.select(models.UserSession.id)]


def post_routes(app) -> list:
    return sorted(
        (r for r in app.url_map.iter_rules() if "POST" in r.methods and r.endpoint != "static"),
        key=lambda r: r.rule,
    )


def url_for_rule(rule, values: dict) -> str:
    path = rule.rule
    for name in rule.arguments:
        path = re.sub(r"<(?:[a-z]+:)?" + name + ">", lambda _m, v=values[name]: v, path)
    return path


def fuzz_route(journeys: Journeys, rule, examples: int, csrf: bool) -> int:
    """Post random forms to one route; return how many requests were made."""
    sent = 0
    valid = {"session_id": lambda: [str(i) for i in journeys.session_ids()] or ["1"]}

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data):
        nonlocal sent
        values = {}
        for name in rule.arguments:
            # An index, not the live list itself: the list may change between runs.
            pick = data.draw(st.one_of(st.integers(0, 99), url_noise), label=name)
            if isinstance(pick, int):
                live = valid[name]() if name in valid else journeys.tokens
                pick = live[pick % len(live)]
            values[name] = pick
        path = url_for_rule(rule, values)
        client = data.draw(st.sampled_from([journeys.anonymous, journeys.signed_in]))
        headers = {"HX-Request": "true"} if data.draw(st.booleans(), label="htmx") else {}
        token = None
        if csrf:
            page = client.get("/restablecer").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        if data.draw(st.integers(0, 9), label="raw") == 0:
            content_type, body = data.draw(st.sampled_from(RAW_BODIES), label="body")
            if token:
                headers["X-CSRFToken"] = token
            response = client.post(path, data=body, content_type=content_type, headers=headers)
        else:
            names = data.draw(st.lists(st.sampled_from(journeys.names), max_size=12), label="names")
            form = {}
            for name in names:
                form.setdefault(name, []).append(data.draw(field_values, label=name))
            if token:
                form["csrf_token"] = [token]
            response = client.post(path, data=form, headers=headers)
        sent += 1
        assert response.status_code < 500, (path, response.status_code)
        if client is journeys.signed_in and response.status_code in (302, 303, 401):
            journeys.sign_in()  # a logout or a password change: sign in again

    run()
    return sent


def _fuzz_all(app, examples: int, csrf: bool) -> dict:
    models.db.connect(reuse_if_open=True)
    journeys = Journeys(app)
    app.config["WTF_CSRF_ENABLED"] = csrf
    counts = {}
    for rule in post_routes(app):
        counts[rule.rule] = fuzz_route(journeys, rule, examples, csrf)
    return counts


def test_no_post_route_answers_5xx(app):
    started = time.monotonic()
    counts = _fuzz_all(app, examples=20, csrf=False)
    assert len(counts) >= 15 and all(n >= 15 for n in counts.values()), counts
    assert time.monotonic() - started < 60


def test_no_post_route_answers_5xx_with_a_real_csrf_token(app):
    counts = _fuzz_all(app, examples=5, csrf=True)
    assert all(n >= 4 for n in counts.values()), counts


# --- the inputs the review found, one by one -----------------------------------


def test_a_file_part_in_a_text_field_is_a_missing_value(client):
    form = {"email": (io.BytesIO(b"x"), "correo.txt"), "password": "x"}
    response = client.post("/", data=form, content_type="multipart/form-data")
    assert response.status_code == 422 and "Este campo es obligatorio" in response.text


def test_a_json_body_does_not_reach_the_form_fields(client):
    body = b'{"email": ["a@b.co", "c@d.co"], "password": {"x": 1}}'
    response = client.post("/", data=body, content_type="application/json")
    assert response.status_code == 422


@pytest.mark.parametrize(
    "part",
    [b"Content-Disposition: \r\n", b"", b'Content-Disposition: form-data; filename="a"\r\n'],
)
def test_a_multipart_part_without_a_name_is_ignored(app, client, part):
    app.config["WTF_CSRF_ENABLED"] = True  # the CSRF check read the nameless part first
    body = b"--XX\r\n" + part + b"\r\nvalor\r\n--XX--\r\n"
    response = client.post("/", data=body, content_type="multipart/form-data; boundary=XX")
    assert response.status_code == 400 and "El formulario venció" in response.text


def test_a_session_id_too_big_for_the_database_is_a_404(db, client):
    user = make_user()
    client.post("/", data={"email": user.email, "password": PASSWORD})
    for number in ("1" * 23, str(2**53 + 1), "0"):
        assert client.post(f"/cuenta/sesiones/{number}/cerrar").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "form"),
    [
        ("get", "/qr/%00", None),
        ("post", "/qr/%00", {"accion": "aprobar"}),
        ("post", "/restablecer", {"email": "ana\x00@example.com"}),
        ("post", "/restablecer", {"email": ["ana@example.com", "\x00"]}),
        ("get", "/?next=/inicio%00", None),
    ],
)
def test_a_nul_byte_is_a_400_before_any_view(client, method, path, form):
    response = getattr(client, method)(path, data=form)
    assert response.status_code == 400 and "<html" in response.text
