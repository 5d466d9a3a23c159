"""Uploads: what the allow-list refuses, the size cap while reading, storage, download."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zipfile

import pytest
from PIL import Image

import models
from blueprints.web import send_attachment
from core import files, uploads
from core.uploads import AUTHORIZATION, HELP_DESK, Kind, Policy
from tests.factories import make_user
from tests.sample_files import pdf_bytes, png_claiming

# --- files built here -------------------------------------------------------------


def image_bytes(fmt: str = "PNG", size=(4, 3), exif_orientation: int | None = None) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    out = io.BytesIO()
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(out, fmt, exif=exif)
    else:
        image.save(out, fmt)
    return out.getvalue()


CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/{part}" ContentType="{ctype}"/>'
    "</Types>"
)
OOXML_PARTS = {
    Kind.DOCX: (
        "word/document.xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    ),
    Kind.XLSX: (
        "xl/workbook.xml",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
    ),
    Kind.PPTX: (
        "ppt/presentation.xml",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
    ),
}


def zip_bytes(entries: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return out.getvalue()


def office_entries(kind: Kind, **extra: bytes) -> dict[str, bytes]:
    part, ctype = OOXML_PARTS[kind]
    entries = {
        "[Content_Types].xml": CONTENT_TYPES.format(part=part, ctype=ctype).encode(),
        "_rels/.rels": b'<?xml version="1.0"?><Relationships/>',
        part: b'<?xml version="1.0"?><root/>',
    }
    entries.update(extra)
    return entries


def office_bytes(kind: Kind) -> bytes:
    return zip_bytes(office_entries(kind))


# --- helpers ---------------------------------------------------------------------


@pytest.fixture
def upload_dir(tmp_path):
    return tmp_path / "uploads"


def files_left(upload_dir) -> list[str]:
    if not upload_dir.exists():
        return []
    return sorted(str(p.relative_to(upload_dir)) for p in upload_dir.rglob("*") if p.is_file())


def attachment_rows() -> int:
    with models.db.connection_context():
        return models.Attachment.select().count()


def save(data: bytes, name: str, upload_dir, policy: Policy = HELP_DESK, uploader=None):
    uploader = uploader or make_user()
    return files.save(io.BytesIO(data), name, policy, upload_dir, "caso", 1, created_by=uploader)


def assert_refused(data, name, upload_dir, error, policy=HELP_DESK):
    with pytest.raises(error) as caught:
        save(data, name, upload_dir, policy)
    assert files_left(upload_dir) == []
    assert attachment_rows() == 0
    return caught.value


# --- refusals ------------------------------------------------------------------------


def test_executable_named_pdf_is_refused(db, upload_dir):
    exe = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 56 + b"This program cannot be run in DOS mode"
    error = assert_refused(exe, "orden.pdf", upload_dir, uploads.NotAllowed, AUTHORIZATION)
    assert error.code == "not_allowed"
    assert error.message == "Solo se aceptan archivos PDF, JPG o PNG."


@pytest.mark.parametrize(
    "data",
    [
        b"\x7fELF\x02\x01\x01" + b"\x00" * 100,  # Linux executable
        b"<html><script>alert(1)</script></html>",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504,  # OLE2: legacy .doc/.xls
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
        b"%PDF-1.4\nno end of file marker",
        b"\xff\xd8\xff\xe0 not really a jpeg",
        b"\x89PNG\r\n\x1a\n broken",
    ],
    ids=["elf", "html", "ole2", "gif", "pdf-without-eof", "fake-jpeg", "fake-png"],
)
def test_wrong_magic_bytes_are_refused(db, upload_dir, data):
    error = assert_refused(data, "archivo.pdf", upload_dir, uploads.NotAllowed)
    assert error.message == (
        "Solo se aceptan archivos PDF, Word (.docx), Excel (.xlsx), PowerPoint (.pptx), JPG o PNG."
    )


def test_pdf_that_is_also_a_zip_is_refused(db, upload_dir):
    # The PDF + JAR polyglot: a viewer reads it from the start, java -jar from the end.
    jar = zip_bytes({"META-INF/MANIFEST.MF": b"Main-Class: Evil\n", "Evil.class": b"\xca\xfe"})
    assert uploads.sniff(pdf_bytes()[:4096], _write(upload_dir.parent / "probe", pdf_bytes()))
    assert_refused(pdf_bytes() + jar, "orden.pdf", upload_dir, uploads.NotAllowed)


def test_png_with_a_zip_appended_is_refused(db, upload_dir):
    data = image_bytes("PNG") + office_bytes(Kind.DOCX)
    assert_refused(data, "foto.png", upload_dir, uploads.NotAllowed)


@pytest.mark.parametrize(
    "data",
    [
        pdf_bytes(catalog=b"/OpenAction << /S /JavaScript /JS (app.alert(1)) >> "),
        pdf_bytes(catalog=b"/OpenAction << /S /J#61vaScript >> "),  # spelt with an escape
        pdf_bytes(catalog=b"/OpenAction << /Type /Action /S /Launch /F (cmd.exe) >> "),
        pdf_bytes(catalog=b"/Names << /EmbeddedFiles 5 0 R >> "),
    ],
    ids=["javascript", "escaped-javascript", "launch", "embedded-file"],
)
def test_pdf_with_active_content_is_refused_with_a_way_out(db, upload_dir, data):
    error = assert_refused(data, "orden.pdf", upload_dir, uploads.ActiveContent, AUTHORIZATION)
    assert error.code == "active_content" and "Guardar como PDF" in error.message


def test_pdf_whose_start_reads_as_html_is_refused(db, upload_dir):
    # What a content sniffer looks at: the first kilobyte. A real PDF has no markup there.
    data = b"%PDF-1.4\n<html><body><script>alert(1)</script>" + pdf_bytes()[9:]
    assert_refused(data, "orden.pdf", upload_dir, uploads.NotAllowed, AUTHORIZATION)


def test_text_that_mentions_javascript_in_a_pdf_is_accepted(db, upload_dir):
    # Only the PDF name /JS (a delimiter after it) counts, not /JSON or the word.
    stored = save(pdf_bytes(b"(JavaScript /JSON) Tj"), "guia.pdf", upload_dir)
    assert stored.kind == "pdf"


def test_zip_named_docx_without_word_parts_is_refused(db, upload_dir):
    data = zip_bytes({"readme.txt": b"hola", "[Content_Types].xml": b"<Types/>"})
    assert_refused(data, "informe.docx", upload_dir, uploads.NotAllowed)


@pytest.mark.parametrize(
    "entries",
    [
        office_entries(Kind.DOCX, **{"evil.exe": b"MZ"}),  # content outside the kind's folders
        office_entries(Kind.DOCX, **{"xl/workbook.xml": b"<x/>"}),  # two kinds at once
        office_entries(Kind.DOCX, **{"word/vbaProject.bin": b"macros"}),
        {"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<x/>"},  # no content type
    ],
    ids=["other-content", "two-kinds", "macros", "no-override"],
)
def test_office_zip_with_unexpected_content_is_refused(db, upload_dir, entries):
    assert_refused(zip_bytes(entries), "informe.docx", upload_dir, uploads.NotAllowed)


def test_macro_enabled_document_is_refused(db, upload_dir):
    entries = office_entries(Kind.DOCX)
    entries["[Content_Types].xml"] = entries["[Content_Types].xml"].replace(
        b"officedocument.wordprocessingml.document.main+xml",
        b"ms-word.document.macroEnabled.main+xml",
    )
    assert_refused(zip_bytes(entries), "informe.docm", upload_dir, uploads.NotAllowed)


def test_content_types_with_a_dtd_is_refused(db, upload_dir):
    entries = office_entries(Kind.DOCX)
    entries["[Content_Types].xml"] = (
        b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;">]>' + entries["[Content_Types].xml"].split(b"?>", 1)[1]
    )
    assert_refused(zip_bytes(entries), "informe.docx", upload_dir, uploads.NotAllowed)


@pytest.mark.parametrize("name", ["../../word/evil.xml", "/etc/passwd", "word/../../x", "C:/x"])
def test_office_zip_with_traversal_entries_is_refused(db, upload_dir, name):
    entries = office_entries(Kind.DOCX, **{name: b"x"})
    assert_refused(zip_bytes(entries), "informe.docx", upload_dir, uploads.NotAllowed)


def test_zip_bomb_is_refused(db, upload_dir):
    # 30 MB of zeros in a few tens of kilobytes, inside the Word folder.
    entries = office_entries(Kind.DOCX, **{"word/media/zeros.bin": b"\x00" * (30 * 1024 * 1024)})
    data = zip_bytes(entries)
    assert len(data) < 100_000
    assert_refused(data, "informe.docx", upload_dir, uploads.NotAllowed)


def test_zip_whose_header_lies_about_its_size_is_refused(db, upload_dir):
    # The central directory says 100 bytes; the entry inflates to much more.
    data = bytearray(zip_bytes(office_entries(Kind.DOCX, **{"word/big.xml": b"a" * 500_000})))
    for start in _all(data, b"PK\x01\x02"):
        name_len = struct.unpack_from("<H", data, start + 28)[0]
        if data[start + 46 : start + 46 + name_len] == b"word/big.xml":
            struct.pack_into("<I", data, start + 24, 100)  # uncompressed size
    assert_refused(bytes(data), "informe.docx", upload_dir, uploads.NotAllowed)


def test_encrypted_zip_entry_is_refused(db, upload_dir):
    data = bytearray(office_bytes(Kind.DOCX))
    for start in _all(data, b"PK\x01\x02"):
        struct.pack_into("<H", data, start + 8, struct.unpack_from("<H", data, start + 8)[0] | 1)
    assert_refused(bytes(data), "informe.docx", upload_dir, uploads.NotAllowed)


def test_zip_with_data_in_front_is_refused(db, upload_dir):
    assert_refused(
        b"#!/bin/sh\n" + office_bytes(Kind.DOCX), "x.docx", upload_dir, uploads.NotAllowed
    )


def test_png_claiming_huge_dimensions_is_refused(db, upload_dir):
    data = png_claiming(100_000, 100_000)
    assert len(data) < 100
    assert_refused(data, "foto.png", upload_dir, uploads.NotAllowed, AUTHORIZATION)


def test_kind_outside_the_policy_is_refused(db, upload_dir):
    assert_refused(office_bytes(Kind.DOCX), "x.docx", upload_dir, uploads.NotAllowed, AUTHORIZATION)


def test_empty_file_is_refused(db, upload_dir):
    error = assert_refused(b"", "orden.pdf", upload_dir, uploads.EmptyFile)
    assert error.message == "El archivo está vacío."


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "../orden.pdf",
        "/etc/passwd",
        "C:\\Windows\\system32\\orden.pdf",
        "c:orden.pdf",
        "\\\\server\\share\\orden.pdf",
        "orden\x00.pdf",
        "orden\n.pdf",
        "a" * 256 + ".pdf",
        "CON",
        "nul.pdf",
        "LPT1.txt",
        "com1",
        "..",
        "",
        None,
    ],
)
def test_hostile_file_names_are_refused_before_reading(db, upload_dir, name):
    read = []

    def body():
        read.append(1)
        yield pdf_bytes()

    with pytest.raises(uploads.BadName):
        files.save(body(), name, HELP_DESK, upload_dir, "caso", 1)
    assert read == []
    assert files_left(upload_dir) == []
    assert attachment_rows() == 0


# --- the size cap --------------------------------------------------------------------


def chunks_of(data: bytes, total: int, size: int = 1000):
    """Yield total bytes that start with data, counting how many chunks were taken."""
    counter = {"taken": 0}

    def gen():
        sent = 0
        while sent < total:
            piece = data[sent : sent + size] if sent < len(data) else b""
            piece = piece.ljust(min(size, total - sent), b" ")
            counter["taken"] += 1
            sent += len(piece)
            yield piece

    return gen(), counter


def test_file_at_exactly_the_cap_is_accepted(db, upload_dir):
    policy = Policy(frozenset({Kind.PDF}), 10_000)
    body = pdf_bytes()
    data = body + b"%" + b" " * (10_000 - len(body) - 8) + b"\n%%EOF\n"
    assert len(data) == 10_000
    stored = files.save(
        iter([data[i : i + 1000] for i in range(0, 10_000, 1000)]),
        "o.pdf",
        policy,
        upload_dir,
        "caso",
        1,
    )
    assert stored.size == 10_000
    assert files_left(upload_dir) == [f"{stored.key[:2]}/{stored.key[2:4]}/{stored.key}"]


def test_cap_plus_one_byte_is_refused_without_reading_the_rest(db, upload_dir):
    policy = Policy(frozenset({Kind.PDF}), 10_000)
    stream, counter = chunks_of(pdf_bytes(), total=10_000_000)
    with pytest.raises(uploads.TooLarge) as caught:
        files.save(stream, "orden.pdf", policy, upload_dir, "caso", 1)
    assert counter["taken"] == 11  # 10,000 bytes + 1: the eleventh chunk, never the 10,000th
    assert files_left(upload_dir) == []
    assert attachment_rows() == 0
    assert caught.value.code == "too_large"


def test_cap_plus_one_byte_from_a_file_object(db, upload_dir):
    policy = Policy(frozenset({Kind.PDF}), 10_000)
    stream = io.BytesIO(b"%PDF-1.4\n" + b" " * 20_000)
    with pytest.raises(uploads.TooLarge):
        files.save(stream, "orden.pdf", policy, upload_dir, "caso", 1)
    assert stream.tell() == 10_001  # asked for max + 1 bytes, not one more
    assert files_left(upload_dir) == []


def test_too_large_messages_name_the_policy_cap():
    assert uploads.TooLarge(AUTHORIZATION.max_bytes).message == "El archivo supera 15 MB."
    assert uploads.TooLarge(HELP_DESK.max_bytes).message == "El archivo supera 10 MB."


# --- accepted files ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kind,data,name",
    [
        (Kind.PDF, pdf_bytes(), "orden médica.pdf"),
        (Kind.JPEG, image_bytes("JPEG"), "IMG_2041.JPG"),
        (Kind.PNG, image_bytes("PNG"), "captura.png"),
        (Kind.DOCX, office_bytes(Kind.DOCX), "carta.docx"),
        (Kind.XLSX, office_bytes(Kind.XLSX), "facturas.xlsx"),
        (Kind.PPTX, office_bytes(Kind.PPTX), "informe.pptx"),
    ],
)
def test_valid_files_of_each_kind_are_stored_with_a_row(db, upload_dir, kind, data, name):
    attachment = save(data, name, upload_dir)
    assert attachment.kind == kind.value
    assert attachment.content_type == kind.mime
    assert attachment.size == len(data)
    assert attachment.original_name.endswith(kind.extension)
    assert attachment.created_by.kind == models.Account.HANNA
    assert attachment.sha256 == hashlib.sha256(data).hexdigest()
    assert uploads.KEY_RE.match(attachment.key)
    with uploads.open_stored(attachment.key, upload_dir) as f:
        assert f.read() == data
    assert not any(p.startswith("tmp/") for p in files_left(upload_dir))
    assert models.Attachment.of("caso", 1)[0].key == attachment.key


def test_display_name_is_cleaned_and_takes_the_sniffed_extension(db, upload_dir):
    attachment = save(image_bytes("PNG"), "factura\u202efdp.exe", upload_dir)
    assert attachment.original_name == "facturafdp.png"
    long = save(pdf_bytes(), "x" * 200 + ".pdf", upload_dir)
    assert len(long.original_name) == 120 and long.original_name.endswith(".pdf")


def test_keys_are_random_and_never_reused(db, upload_dir):
    a, b = save(pdf_bytes(), "a.pdf", upload_dir), save(pdf_bytes(), "a.pdf", upload_dir)
    assert a.key != b.key and a.sha256 == b.sha256


@pytest.mark.parametrize(
    "key",
    ["../../etc/passwd", "/etc/passwd", "a" * 31, "a" * 33, "a" * 31 + "/", "a" * 31 + ".", ""],
)
def test_open_stored_refuses_keys_that_are_not_ours(upload_dir, key):
    with pytest.raises(uploads.UnknownKey):
        uploads.open_stored(key, upload_dir)


def test_open_stored_of_a_missing_key(upload_dir):
    with pytest.raises(uploads.UnknownKey):
        uploads.open_stored(uploads.new_key(), upload_dir)


# --- the transaction and storage failures -----------------------------------------------


def test_file_is_removed_when_the_callers_transaction_fails(db, upload_dir):
    with pytest.raises(RuntimeError, match="boom"):
        with files.upload(io.BytesIO(pdf_bytes()), "o.pdf", HELP_DESK, upload_dir) as stored:
            with db.atomic():
                files.record(stored, "caso", 1)
                raise RuntimeError("boom")
    assert files_left(upload_dir) == []
    assert attachment_rows() == 0


def test_upload_inside_a_transaction_is_a_programming_error(db, upload_dir):
    with db.atomic(), pytest.raises(RuntimeError, match="wrap the transaction"):
        with files.upload(io.BytesIO(pdf_bytes()), "o.pdf", HELP_DESK, upload_dir):
            pass
    assert files_left(upload_dir) == []


def test_unwritable_upload_dir_raises_storage_error(db, tmp_path):
    if os.geteuid() == 0:
        blocker = tmp_path / "a-file"
        blocker.write_bytes(b"")
        upload_dir = blocker / "uploads"  # under a file: no directory can be made
    else:
        upload_dir = tmp_path / "ro"
        upload_dir.mkdir()
        upload_dir.chmod(0o500)
    try:
        with pytest.raises(uploads.StorageError) as caught:
            save(pdf_bytes(), "orden.pdf", upload_dir)
        assert caught.value.message == "No pudimos guardar el archivo. Inténtelo más tarde."
        assert attachment_rows() == 0
    finally:
        if upload_dir.exists():
            upload_dir.chmod(0o700)


def test_disk_full_leaves_no_partial_file(db, upload_dir, monkeypatch):
    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(uploads.os, "fsync", full)
    with pytest.raises(uploads.StorageError):
        save(pdf_bytes(), "orden.pdf", upload_dir)
    assert files_left(upload_dir) == []
    assert attachment_rows() == 0


def test_client_that_disconnects_leaves_no_partial_file(db, upload_dir):
    def body():
        yield pdf_bytes()[:100]
        raise ConnectionResetError

    with pytest.raises(ConnectionResetError):
        files.save(body(), "orden.pdf", HELP_DESK, upload_dir, "caso", 1)
    assert files_left(upload_dir) == []


# --- photos joined into one PDF ---------------------------------------------------------


def test_images_to_pdf_has_one_page_per_photo(tmp_path):
    import pikepdf

    paths = []
    for i, (fmt, orientation) in enumerate([("JPEG", 6), ("PNG", None), ("JPEG", None)]):
        path = tmp_path / f"foto{i}.{fmt.lower()}"
        path.write_bytes(image_bytes(fmt, (40, 20), orientation))
        paths.append(path)
    pdf = uploads.images_to_pdf(paths)
    assert pdf.startswith(b"%PDF-")
    with pikepdf.open(io.BytesIO(pdf)) as document:
        assert len(document.pages) == 3
        image = next(iter(document.pages[0].Resources.XObject.values()))
        width, height = int(image.Width), int(image.Height)
        assert (width, height) == (20, 40)  # EXIF orientation 6 applied: upright
    assert uploads.sniff(pdf[:4096], _write(tmp_path / "out", pdf)) is Kind.PDF


def test_images_to_pdf_refuses_too_many_pages_and_bombs(tmp_path):
    photo = tmp_path / "p.png"
    photo.write_bytes(image_bytes("PNG"))
    with pytest.raises(uploads.TooManyPages):
        uploads.images_to_pdf([photo] * (uploads.MAX_PAGES + 1))
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(100_000, 100_000))
    with pytest.raises(uploads.NotAllowed):
        uploads.images_to_pdf([photo, bomb])
    fake = tmp_path / "x.png"
    fake.write_bytes(pdf_bytes())
    with pytest.raises(uploads.NotAllowed):
        uploads.images_to_pdf([fake])


# --- the download ----------------------------------------------------------------------


def test_send_attachment_headers(app, db, upload_dir):
    attachment = save(pdf_bytes(), "Orden médica #1.pdf", upload_dir)
    with app.test_request_context("/"):
        response = send_attachment(attachment, upload_dir)
        assert response.direct_passthrough
        body = b"".join(response.response)
        response.close()
    assert body == pdf_bytes()
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Length"] == str(len(body))
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="Orden medica _1.pdf"; '
        "filename*=UTF-8''Orden%20m%C3%A9dica%20%231.pdf"
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert "sandbox" in response.headers["Content-Security-Policy"]


def test_send_attachment_uses_the_sniffed_type_not_the_row_text(app, db, upload_dir):
    attachment = save(image_bytes("PNG"), "a.png", upload_dir)
    attachment.content_type = "text/html"  # a row edited by hand: the kind still decides
    with app.test_request_context("/"):
        response = send_attachment(attachment, upload_dir)
        response.close()
    assert response.headers["Content-Type"] == "image/png"


# --- small helpers -------------------------------------------------------------------


def _write(directory, data: bytes):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "probe"
    path.write_bytes(data)
    return path


def _all(data: bytes, needle: bytes):
    start = data.find(needle)
    while start != -1:
        yield start
        start = data.find(needle, start + 1)


def test_store_reads_a_werkzeug_file_part(app, db, upload_dir):
    data = {"archivo": (io.BytesIO(image_bytes("JPEG")), "foto del celular.jpeg")}
    with app.test_request_context("/", method="POST", data=data):
        from flask import request

        part = request.files["archivo"]
        attachment = files.save(part.stream, part.filename, AUTHORIZATION, upload_dir, "caso", 1)
    assert attachment.kind == "jpeg"
    assert attachment.original_name == "foto del celular.jpg"


def test_a_scan_whose_compressed_bytes_spell_an_active_name_is_accepted(db, upload_dir):
    # Megabytes of image data spell "/JS " by chance; inside a stream it is no name.
    noise = os.urandom(200_000) + b"/JS " + os.urandom(200_000) + b"/JavaScript\n"
    stored = uploads.store(io.BytesIO(pdf_bytes(noise)), "escaneo.pdf", AUTHORIZATION, upload_dir)
    assert stored.kind is uploads.Kind.PDF


def test_an_active_name_after_a_stream_is_still_found(db, upload_dir):
    data = pdf_bytes(b"BT ET").replace(
        b"trailer", b"6 0 obj\n<< /S /JavaScript >>\nendobj\ntrailer"
    )
    assert_refused(data, "orden.pdf", upload_dir, uploads.ActiveContent, AUTHORIZATION)
