"""A full or read-only UPLOAD_DIR, for real: a small tmpfs, and a read-only bind mount.

Root writes through any chmod, so a mode bit proves nothing here: the kernel
must refuse the write (ENOSPC, EROFS). Each journey is a real form post (a
Génesis authorization with a PDF or with photos, an IPS help-desk case with a
file): the person sees a Spanish message next to the file field with what they
typed still there, no row is left (request, case, message, attachment, SMS),
no file or temporary file stays, never a 500; and once the disk has room or is
writable again the same form goes through. Skipped where mounting is not allowed.
"""

from __future__ import annotations

import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

import models
from core import genesis, mesa, uploads
from models import Attachment, CasoMesa, MensajeMesa, Message, SolicitudAutorizacion
from tests.factories import make_eps_user, make_ips_operador
from tests.test_genesis_oficina import files_on_disk, form_key, make_family, photo_bytes, send
from tests.test_genesis_uploads import padded_pdf
from tests.test_ips_mesa import form_key as mesa_form_key
from tests.test_ips_mesa import new_case

pytestmark = pytest.mark.slow

SAVE_FAILED = "No pudimos guardar el archivo"
MB = uploads.MB
OBSERVACION = "Resonancia magnética de rodilla ordenada por ortopedia."


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"mount {' '.join(args)} is not permitted here: {result.stderr.strip()}")


def _unmount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)  # busy


@contextmanager
def small_disk(path: Path, size: str = "1m"):
    """A tmpfs of size mounted on path: writes past it fail with ENOSPC."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))
    try:
        yield path
    finally:
        _unmount(path)


@contextmanager
def read_only(path: Path):
    """path bound onto itself read-only: every write fails with EROFS. Yields a switch back."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("--bind", str(path), str(path))
    try:
        _mount("-o", "remount,bind,ro", str(path))

        def writable() -> None:
            _mount("-o", "remount,bind,rw", str(path))

        yield writable
    finally:
        _unmount(path)


@pytest.fixture
def upload_dir(app, tmp_path) -> Path:
    path = tmp_path / "uploads"
    app.config["UPLOAD_DIR"] = str(path)
    return path


@pytest.fixture
def member(db):
    rosa, *_ = make_family()
    genesis.confirm_contact(rosa)
    return rosa


@pytest.fixture
def affiliate(client, auth, member):
    return auth.login(client, make_eps_user(member))


@pytest.fixture
def operator(db, client, auth):
    mesa.ensure_default_motivos()
    first, second = mesa.motivos()[:2]
    auth.login(client, make_ips_operador(nombre="Laura Gómez"))
    return first, mesa.asuntos_of(first.id)[0], mesa.asuntos_of(second.id)[0]


def assert_no_request_left(upload_dir: Path) -> None:
    with models.db.connection_context():
        assert SolicitudAutorizacion.select().count() == 0
        assert Attachment.select().count() == 0
        assert Message.select().count() == 0  # not even the "recibimos su solicitud" SMS
    assert files_on_disk(upload_dir) == []  # tmp/ included: no half-written file


def assert_refused_in_words(answer, field: str) -> None:
    assert answer.status_code == 422, answer.status_code
    assert SAVE_FAILED in answer.text
    error = answer.text.split(f'id="{field}-error"', 1)
    assert len(error) == 2 and SAVE_FAILED in error[1][:200], "the message sits by the field"
    assert f'aria-describedby="{field}-ayuda {field}-error"' in answer.text


def big_photo() -> bytes:
    """A JPEG followed by 2 MB of padding: accepted as a photo, larger than the disk."""
    return photo_bytes() + b"\x00" * (2 * MB)


# --- Génesis: "Solicitar autorización" with a PDF or with photos -------------------------------


@pytest.mark.parametrize(
    "soporte",
    [[(padded_pdf(2 * MB), "orden medica.pdf")], [(big_photo(), "orden.jpg")]],
    ids=["pdf", "photos"],
)
def test_a_full_disk_refuses_the_authorization_in_words_and_keeps_nothing(
    affiliate, member, upload_dir, soporte
):
    with small_disk(upload_dir, "1m"):
        key = form_key(affiliate, member)
        answer = send(affiliate, member, key, soporte=soporte)
        assert_refused_in_words(answer, "soporte")
        assert OBSERVACION in answer.text  # what they typed is still in the form
        assert_no_request_left(upload_dir)
        # The same form with a file that fits: the failed one left no space taken.
        fits = send(affiliate, member, form_key(affiliate, member))
        assert fits.status_code == 303, fits.status_code
        with models.db.connection_context():
            assert SolicitudAutorizacion.select().count() == 1
            assert Attachment.select().count() == 1


def test_a_read_only_disk_refuses_the_authorization_in_words_until_writable(
    affiliate, member, upload_dir
):
    with read_only(upload_dir) as writable:
        for soporte in ([(padded_pdf(64 * 1024), "orden.pdf")], [(photo_bytes(), "foto.jpg")]):
            answer = send(affiliate, member, form_key(affiliate, member), soporte=soporte)
            assert_refused_in_words(answer, "soporte")
            assert OBSERVACION in answer.text
            assert_no_request_left(upload_dir)
        writable()
        assert send(affiliate, member, form_key(affiliate, member)).status_code == 303
        with models.db.connection_context():
            assert Attachment.select().count() == 1


# --- IPS: "Generar Servicio" with a file -----------------------------------------------------


def assert_no_case_left(upload_dir: Path) -> None:
    with models.db.connection_context():
        assert CasoMesa.select().count() == 0
        assert MensajeMesa.select().count() == 0
        assert Attachment.select().count() == 0
        assert Message.select().count() == 0
    assert files_on_disk(upload_dir) == []


def test_a_full_or_read_only_disk_refuses_the_help_desk_case_and_keeps_nothing(
    client, operator, upload_dir
):
    texto = "No cargan los RIPS de enero: adjunto el reporte."
    with small_disk(upload_dir, "1m"):
        answer = new_case(
            client, operator, descripcion=texto, files=[("rips.pdf", padded_pdf(2 * MB))]
        )
        assert_refused_in_words(answer, "adjunto")
        assert texto in answer.text
        assert_no_case_left(upload_dir)
    with read_only(upload_dir) as writable:
        files = [("rips.pdf", padded_pdf(64 * 1024)), ("foto.jpg", photo_bytes())]
        answer = new_case(client, operator, descripcion=texto, files=files)
        assert_refused_in_words(answer, "adjunto")
        assert "«rips.pdf»" in answer.text  # of several files, which one, and that none stayed
        assert texto in answer.text
        assert_no_case_left(upload_dir)
        writable()
        made = new_case(client, operator, descripcion=texto, files=files)
        assert made.status_code == 303, made.status_code
        with models.db.connection_context():
            assert CasoMesa.select().count() == 1 and Attachment.select().count() == 2
    assert mesa_form_key(client)  # the form still opens
