"""G3's support refused by content, size or name: a Spanish message, and nothing stored at all."""

from __future__ import annotations

import io
import zipfile

import pytest

import models
from core import genesis, uploads
from models import Attachment, Message, SolicitudAutorizacion
from tests.factories import make_eps_user
from tests.sample_files import png_claiming
from tests.test_genesis_oficina import (
    files_on_disk,
    form_key,
    make_family,
    pdf_bytes,
    photo_bytes,
    send,
)

MB = uploads.MB
CAP = uploads.AUTHORIZATION.max_bytes


def jar_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", b"Main-Class: Evil\n")
        archive.writestr("Evil.class", b"\xca\xfe\xba\xbe")
    return out.getvalue()


def padded_pdf(size: int) -> bytes:
    """A PDF of exactly size bytes (a comment fills it)."""
    body = pdf_bytes()
    head, tail = body[:15], body[15:]
    return head + b"%" + b"x" * (size - len(body) - 2) + b"\n" + tail


EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 56 + b"This program cannot be run in DOS mode"
ACTIVE_PDF = pdf_bytes(b"BT ET").replace(
    b"/Type /Catalog", b"/Type /Catalog /OpenAction << /S /JavaScript /JS (app.alert(1)) >>"
)

ONLY = "Solo se aceptan archivos PDF, JPG o PNG."
REFUSALS = [
    ("text_named_pdf", [(b"Orden medica: resonancia de rodilla\n", "orden.pdf")], ONLY),
    ("html_named_pdf", [(b"<html><script>alert(1)</script></html>", "orden.pdf")], ONLY),
    ("exe_named_jpg", [(EXE, "foto.jpg")], ONLY),
    ("pdf_without_end", [(pdf_bytes().replace(b"%%EOF", b""), "orden.pdf")], ONLY),
    ("polyglot_pdf_zip", [(pdf_bytes() + jar_bytes(), "orden.pdf")], ONLY),
    ("polyglot_png_zip", [(photo_bytes("PNG") + jar_bytes(), "foto.png")], ONLY),
    ("pdf_with_javascript", [(ACTIVE_PDF, "orden.pdf")], "contenido activo"),
    ("pdf_over_15_mb", [(padded_pdf(CAP + 1), "orden.pdf")], "El archivo supera 15 MB."),
    ("photo_over_15_mb", [(photo_bytes() + b"\x00" * CAP, "foto.jpg")], "El archivo supera 15 MB."),
    ("traversal_name", [(pdf_bytes(), "../../x.pdf")], "El nombre del archivo no es válido"),
    (
        "windows_path",
        [(pdf_bytes(), "C:\\Users\\ana\\orden.pdf")],
        "El nombre del archivo no es válido",
    ),
    ("traversal_photo", [(photo_bytes(), "../foto.jpg")], "El nombre del archivo no es válido"),
    ("nul_in_name", [(pdf_bytes(), "orden\x00.pdf")], "El nombre del archivo no es válido"),
    ("decompression_bomb_png", [(png_claiming(100_000, 100_000), "foto.png")], ONLY),
    (
        "bomb_among_photos",
        [(photo_bytes(), "1.jpg"), (png_claiming(60_000, 60_000), "2.png")],
        ONLY,
    ),
    ("empty_file", [(b"", "orden.pdf")], "El archivo está vacío."),
    ("pdf_and_photo", [(pdf_bytes(), "orden.pdf"), (photo_bytes(), "foto.jpg")], "no ambos"),
    (
        "too_many_photos",
        [(photo_bytes(), f"{i}.jpg") for i in range(uploads.MAX_PAGES + 1)],
        "hasta 20 fotos",
    ),
    ("no_file_chosen", [(b"", "")], "Adjunte el soporte"),
]


@pytest.fixture(autouse=True)
def upload_dir(app, tmp_path):
    path = tmp_path / "uploads"
    app.config["UPLOAD_DIR"] = str(path)
    return path


@pytest.fixture
def member(db):
    rosa, *_ = make_family()
    genesis.confirm_contact(rosa)
    return rosa


@pytest.fixture
def signed_in(client, auth, member):
    return auth.login(client, make_eps_user(member))


def assert_nothing_stored(upload_dir) -> None:
    with models.db.connection_context():
        assert SolicitudAutorizacion.select().count() == 0
        assert Attachment.select().count() == 0
        assert Message.select().count() == 0
    assert files_on_disk(upload_dir) == []


@pytest.mark.parametrize(("case", "soporte", "message"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_refused_support_stores_nothing_and_says_why(
    signed_in, member, upload_dir, case, soporte, message
):
    answer = send(signed_in, member, form_key(signed_in, member), soporte=soporte)
    assert answer.status_code == 422, case
    assert message in answer.text
    assert 'id="soporte-error"' in answer.text and 'aria-invalid="true"' in answer.text
    assert "Resonancia magnética de rodilla" in answer.text  # the typed input stays
    assert_nothing_stored(upload_dir)


def test_exactly_15_mb_is_accepted(signed_in, member, upload_dir):
    answer = send(
        signed_in, member, form_key(signed_in, member), soporte=[(padded_pdf(CAP), "o.pdf")]
    )
    assert answer.status_code == 303
    with models.db.connection_context():
        assert Attachment.get().size == CAP


def test_text_where_the_file_belongs_is_no_support(signed_in, member, upload_dir):
    data = dict(
        form_key=form_key(signed_in, member),
        departamento="08",
        municipio="08001",
        observacion="Consulta de control",
        soporte="%PDF-1.4 esto no es un archivo",
    )
    answer = signed_in.post(f"/genesis/solicitud/{member.id}", data=data)
    assert answer.status_code == 422
    assert "Adjunte el soporte" in answer.text
    assert_nothing_stored(upload_dir)


def test_a_body_over_the_cap_gets_a_spanish_413_not_a_500(signed_in, member, upload_dir):
    photos = [(photo_bytes() + b"\x00" * (9 * MB), f"{i}.jpg") for i in range(2)]  # 18 MB together
    answer = send(signed_in, member, form_key(signed_in, member), soporte=photos)
    assert answer.status_code == 413
    assert "El soporte es demasiado grande" in answer.text
    assert "15 MB" in answer.text
    assert f'href="/genesis/solicitud/{member.id}"' in answer.text
    assert_nothing_stored(upload_dir)


def test_the_body_cap_leaves_room_for_a_whole_15_mb_pdf():
    assert genesis.MAX_BODY > CAP + 64 * 1024
    assert genesis.MAX_BODY <= CAP + 2 * MB


def test_a_storage_failure_keeps_nothing_and_says_so(signed_in, member, upload_dir, monkeypatch):
    def broken(*args, **kwargs):
        raise uploads.StorageError()

    monkeypatch.setattr(uploads, "store", broken)
    answer = send(signed_in, member, form_key(signed_in, member))
    assert answer.status_code == 422
    assert "No pudimos guardar el archivo" in answer.text
    assert_nothing_stored(upload_dir)


def test_a_failing_transaction_removes_the_stored_file(signed_in, member, upload_dir, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(genesis.files, "record", broken)
    with pytest.raises(RuntimeError):
        send(signed_in, member, form_key(signed_in, member))
    assert_nothing_stored(upload_dir)
