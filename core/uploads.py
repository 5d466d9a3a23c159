"""Uploaded files: an allow-list by content, a size cap while reading, random names.

Nothing here knows about Flask requests: ``store()`` takes any stream (a file
object with ``read()``, or an iterable of byte chunks) and a ``Policy``. The
areas reuse it unchanged: a route picks a policy, calls ``store()`` (through
``core.files``, which adds the database row), and shows the exception's
``message`` or its own words for the exception's ``code``.

What is refused, and why (README, "Decisions", says it in short):

- the name is never trusted: it decides nothing but the text shown; a name a
  browser's file picker never sends (a path, ``..``, NUL or control characters,
  over 255 characters, a Windows device name) is refused before a byte is read;
- the kind comes from the bytes: PDF from ``%PDF-`` at offset 0 and ``%%EOF``
  near the end; JPEG and PNG decoded by Pillow with a pixel cap; Office Open
  XML only as a ZIP that starts at offset 0, has ``[Content_Types].xml`` with
  the main part's content type, only the folders of that one kind, no macros,
  no encrypted, duplicate, absolute or ``..`` entries, and a capped
  uncompressed total actually decompressed (a lying header fails its CRC);
- polyglots: a PDF, JPEG or PNG that a ZIP reader also opens (the PDF + JAR
  trick) is refused; so is a PDF whose first kilobyte reads as HTML/SVG (what a
  content sniffer looks at) or that names active content (/JavaScript, /JS,
  /Launch, /EmbeddedFile, /RichMedia, also spelt with ``#xx`` escapes). That
  scan is a tripwire, not a proof (object streams can hide names): the real
  defence is serving every file as an attachment with ``nosniff``;
- legacy OLE2 files (.doc, .xls, .ppt) are not accepted: telling a Word 97
  document from any other compound file, and one without macros, takes a
  parser of the format; the help desk asks for the Office Open XML formats.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import re
import secrets
import tempfile
import unicodedata
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from enum import StrEnum
from io import BytesIO
from pathlib import Path
from typing import BinaryIO
from xml.etree import ElementTree

CHUNK = 64 * 1024
HEAD = 4096  # bytes handed to sniff(): every magic number and the sniffers' window
MB = 1024 * 1024
MAX_PIXELS = 50_000_000  # a 50-megapixel phone photo passes; a decompression bomb does not
MAX_PAGES = 20  # photos joined into one PDF per request
# Pixels of a page's long side: A4 at about 170 dpi, enough to read a stamped order,
# and what a 12-megapixel photo (4000 px) decodes to at half scale straight away.
PDF_PAGE_LONG_SIDE = 2000
ZIP_MAX_ENTRIES = 2000
ZIP_MAX_TOTAL = 200 * MB  # uncompressed, all entries together
ZIP_MAX_RATIO = 200  # per entry larger than 1 MB: text XML compresses ~10-30x
NAME_MAX_SHOWN = 120
NAME_MAX_ACCEPTED = 255


class Kind(StrEnum):
    PDF = "pdf"
    JPEG = "jpeg"
    PNG = "png"
    DOCX = "docx"
    XLSX = "xlsx"
    PPTX = "pptx"

    @property
    def mime(self) -> str:
        return _MIME[self]

    @property
    def extension(self) -> str:
        return ".jpg" if self is Kind.JPEG else f".{self.value}"

    @property
    def label(self) -> str:
        return _LABEL[self]


_MIME = {
    Kind.PDF: "application/pdf",
    Kind.JPEG: "image/jpeg",
    Kind.PNG: "image/png",
    Kind.DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    Kind.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    Kind.PPTX: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
_LABEL = {
    Kind.PDF: "PDF",
    Kind.DOCX: "Word (.docx)",
    Kind.XLSX: "Excel (.xlsx)",
    Kind.PPTX: "PowerPoint (.pptx)",
    Kind.JPEG: "JPG",
    Kind.PNG: "PNG",
}
_ORDER = list(_LABEL)  # how kinds are listed in a message


@dataclass(frozen=True)
class Policy:
    kinds: frozenset[Kind]
    max_bytes: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", frozenset(self.kinds))


AUTHORIZATION = Policy(frozenset({Kind.PDF, Kind.JPEG, Kind.PNG}), 15 * MB)
HELP_DESK = Policy(
    frozenset({Kind.PDF, Kind.XLSX, Kind.DOCX, Kind.PPTX, Kind.JPEG, Kind.PNG}), 10 * MB
)


@dataclass(frozen=True)
class Stored:
    key: str
    size: int
    sha256: str
    kind: Kind
    name: str  # the original name cleaned for display, with the kind's extension

    @property
    def content_type(self) -> str:
        return self.kind.mime


# --- errors: a code for the caller, a default Spanish text it may show -------------


class UploadError(Exception):
    code = "upload"
    default = "No pudimos recibir el archivo."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default
        super().__init__(self.message)


class TooLarge(UploadError):
    code = "too_large"

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        super().__init__(f"El archivo supera {_size_text(max_bytes)}.")


class NotAllowed(UploadError):
    code = "not_allowed"

    def __init__(self, kinds: Iterable[Kind]) -> None:
        self.kinds = frozenset(kinds)
        super().__init__(f"Solo se aceptan archivos {_kinds_text(self.kinds)}.")


class ActiveContent(UploadError):
    """A PDF that names scripts, launch actions or embedded files (fillable forms do)."""

    code = "active_content"
    default = (
        "El PDF trae contenido activo (programas, scripts o archivos incrustados). "
        "Guárdelo de nuevo con «Imprimir» → «Guardar como PDF» y vuelva a subirlo."
    )


class EmptyFile(UploadError):
    code = "empty"
    default = "El archivo está vacío."


class BadName(UploadError):
    code = "bad_name"
    default = "El nombre del archivo no es válido. Cámbielo e inténtelo de nuevo."


class StorageError(UploadError):
    code = "storage"
    default = "No pudimos guardar el archivo. Inténtelo más tarde."


class TooManyPages(UploadError):
    code = "too_many_pages"

    def __init__(self, max_pages: int = MAX_PAGES) -> None:
        super().__init__(f"Se pueden unir hasta {max_pages} fotos en un solo PDF.")


class UnknownKey(UploadError):
    code = "unknown_key"
    default = "El archivo no existe."


def _size_text(n: int) -> str:
    return f"{n // MB} MB" if n % MB == 0 else f"{n // 1024} KB"


def _kinds_text(kinds: frozenset[Kind]) -> str:
    labels = [_LABEL[k] for k in _ORDER if k in kinds]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " o " + labels[-1]


# --- names ----------------------------------------------------------------------

_WINDOWS_DEVICES = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$", re.I)


def check_name(filename: str | None) -> str:
    """Return filename stripped, or raise BadName for what no file picker sends."""
    name = (filename or "").strip()
    if not name or name in {".", ".."} or len(name) > NAME_MAX_ACCEPTED:
        raise BadName()
    if "/" in name or "\\" in name or re.match(r"^[A-Za-z]:", name):
        raise BadName()  # a path (absolute, ../, C:\…): browsers send the base name only
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise BadName()  # NUL, newlines, escapes
    if _WINDOWS_DEVICES.match(name.rstrip(". ")):
        raise BadName()
    return name


def safe_name(filename: str, kind: Kind) -> str:
    """Return a display name: no format characters, at most 120, the kind's extension."""
    name = unicodedata.normalize("NFC", check_name(filename))
    # Bidi overrides ("factura\u202efdp.exe") and other invisible format characters.
    name = "".join(c for c in name if unicodedata.category(c) not in {"Cf", "Cc"})
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    stem = stem.strip(" .") or "archivo"
    stem = stem[: NAME_MAX_SHOWN - len(kind.extension)].rstrip(" .") or "archivo"
    return stem + kind.extension


# --- sniffing ---------------------------------------------------------------------

_PDF_ACTIVE_NAMES = ("JavaScript", "JS", "Launch", "EmbeddedFile", "EmbeddedFiles", "RichMedia")


def _pdf_name_pattern(word: str) -> bytes:
    # A PDF name may spell any character as #xx: /J#61vaScript is /JavaScript.
    parts = [b"(?:%s|#%02x|#%02X)" % (re.escape(c.encode()), ord(c), ord(c)) for c in word]
    return b"/" + b"".join(parts) + rb"(?=[\s/\[\]()<>{}%]|$)"


_PDF_ACTIVE = re.compile(b"|".join(_pdf_name_pattern(w) for w in _PDF_ACTIVE_NAMES))
_MARKUP = re.compile(rb"<\s*(?:!doctype|html|head|body|script|svg|iframe|object|embed)\b", re.I)


def _is_zip(path: Path) -> bool:
    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def _sniff_pdf(head: bytes, path: Path) -> Kind | None:
    if not re.match(rb"%PDF-[12]\.\d", head) or _MARKUP.search(head[:1024]):
        return None
    size = path.stat().st_size
    with open(path, "rb") as f:
        f.seek(max(0, size - 1024))
        if b"%%EOF" not in f.read():
            return None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if any(_PDF_ACTIVE.search(data, a, b) for a, b in _outside_streams(data)):
                raise ActiveContent()
    return Kind.PDF


_STREAM_START = re.compile(rb"(?<![A-Za-z])stream\r?\n")


def _outside_streams(data: bytes | mmap.mmap) -> Iterator[tuple[int, int]]:
    """Yield the (start, end) spans of a PDF that lie outside its stream bodies.

    A scanned page is megabytes of compressed bytes, where "/JS" and a
    delimiter turn up by chance (about one 15 MB scan in twenty). Names that
    act live in dictionaries, outside streams; a name hidden in a stream is
    one an object stream could hide anyway (the module docstring says why the
    scan is a tripwire only).
    """
    pos, size = 0, len(data)
    while pos < size:
        found = _STREAM_START.search(data, pos)
        if found is None:
            yield pos, size
            return
        yield pos, found.start()
        end = data.find(b"endstream", found.end())
        if end < 0:
            return
        pos = end + len(b"endstream")


def _sniff_image(head: bytes, path: Path, kind: Kind) -> Kind | None:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.format != {Kind.JPEG: "JPEG", Kind.PNG: "PNG"}[kind]:
                    return None
                width, height = image.size
                if width * height > MAX_PIXELS or getattr(image, "n_frames", 1) != 1:
                    return None  # a bomb, or an animated PNG (APNG)
                if kind is Kind.JPEG:
                    image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                    image.load()  # decoded at 1/8 scale: a broken JPEG fails here
                else:
                    image.verify()  # every chunk's CRC
    except (Exception, Image.DecompressionBombWarning):
        return None
    return kind


_OOXML = {
    Kind.DOCX: (
        "word/",
        "/word/document.xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    ),
    Kind.XLSX: (
        "xl/",
        "/xl/workbook.xml",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
    ),
    Kind.PPTX: (
        "ppt/",
        "/ppt/presentation.xml",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
    ),
}
_OOXML_COMMON = ("[Content_Types].xml", "_rels/", "docProps/", "customXml/")
_CT_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"


def _safe_entry(name: str) -> bool:
    if not name or name.startswith("/") or "\\" in name or "\x00" in name:
        return False
    if re.match(r"^[A-Za-z]:", name):
        return False
    return all(part not in {"..", "."} for part in name.split("/"))


def _sniff_ooxml(head: bytes, path: Path) -> Kind | None:
    if not head.startswith(b"PK\x03\x04"):
        return None  # something in front of the ZIP: a polyglot
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            names = [i.filename for i in infos]
            if len(infos) > ZIP_MAX_ENTRIES or len(set(names)) != len(names):
                return None
            if min(i.header_offset for i in infos) != 0:
                return None
            total = 0
            for info in infos:
                if not _safe_entry(info.filename) or info.flag_bits & 0x1:
                    return None  # traversal, or encrypted
                if info.filename.rsplit("/", 1)[-1].lower() == "vbaproject.bin":
                    return None  # macros
                total += info.file_size
                ratio = info.file_size / max(info.compress_size, 1)
                if total > ZIP_MAX_TOTAL or (info.file_size > MB and ratio > ZIP_MAX_RATIO):
                    return None  # a zip bomb, as declared
            kind = _ooxml_kind(archive, set(names))
            if kind is None:
                return None
            budget = ZIP_MAX_TOTAL
            for info in infos:  # a header that lies about sizes fails its CRC here
                with archive.open(info) as entry:
                    while block := entry.read(CHUNK):
                        budget -= len(block)
                        if budget < 0:
                            return None
    except (
        zipfile.BadZipFile,
        ElementTree.ParseError,
        NotImplementedError,
        ValueError,
        OSError,
        EOFError,
    ):
        return None  # corrupt, a CRC that fails, an unknown compression, bad XML
    return kind


def _ooxml_kind(archive: zipfile.ZipFile, names: set[str]) -> Kind | None:
    if "[Content_Types].xml" not in names:
        return None
    raw = archive.open("[Content_Types].xml").read(MB + 1)
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    if len(raw) > MB or not raw.lstrip().startswith(b"<") or b"<!" in raw:
        return None  # UTF-8 only, and no DTD: no entity expansion, no external entity
    root = ElementTree.fromstring(raw)  # noqa: S314 - no DTD can reach the parser (above)
    overrides = {
        o.get("PartName", "").lower(): o.get("ContentType", "")
        for o in root.iter(f"{_CT_NS}Override")
    }
    types = set(overrides.values()) | {
        d.get("ContentType", "") for d in root.iter(f"{_CT_NS}Default")
    }
    if any("macroenabled" in t.lower() or "vbaproject" in t.lower() for t in types):
        return None
    found = [
        kind
        for kind, (folder, part, content_type) in _OOXML.items()
        if part[1:] in names and overrides.get(part) == content_type
    ]
    if len(found) != 1:
        return None
    allowed = (*_OOXML_COMMON, _OOXML[found[0]][0])
    if not all(
        any(n == a or (a.endswith("/") and n.startswith(a)) for a in allowed) for n in names
    ):
        return None  # folders of another kind, or anything else, in the ZIP
    return found[0]


def sniff(head: bytes, path: str | os.PathLike) -> Kind | None:
    """Return the kind the bytes prove, or None: head is the file's first bytes.

    A PDF that is otherwise fine but names active content raises ActiveContent
    instead, so the person is told how to fix it (print it to a new PDF).
    """
    path = Path(path)
    if head.startswith(b"%PDF-"):
        kind = _sniff_pdf(head, path)
    elif head.startswith(b"\xff\xd8\xff"):
        kind = _sniff_image(head, path, Kind.JPEG)
    elif head.startswith(b"\x89PNG\r\n\x1a\n"):
        kind = _sniff_image(head, path, Kind.PNG)
    elif head.startswith(b"PK\x03\x04"):
        return _sniff_ooxml(head, path)
    else:
        return None  # executables (MZ, ELF), OLE2, HTML, text, anything else
    if kind is not None and _is_zip(path):
        return None  # a PDF or image that a ZIP reader also opens: a polyglot (JAR)
    return kind


# --- storing ----------------------------------------------------------------------

KEY_RE = re.compile(r"\A[A-Za-z0-9_-]{32}\Z")


def new_key() -> str:
    """Return a random key (24 bytes, 32 URL-safe characters): the file's name on disk."""
    return secrets.token_urlsafe(24)


def path_for(key: str, upload_dir: str | os.PathLike) -> Path:
    """Return where key lives; refuse any key that is not one of ours."""
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise UnknownKey()
    return Path(upload_dir) / key[:2] / key[2:4] / key


def _chunks(stream: BinaryIO | Iterable[bytes], limit: int) -> Iterator[bytes]:
    """Yield the stream's bytes; stop asking once more than limit have come."""
    read = getattr(stream, "read", None)
    seen = 0
    if read is not None:
        while seen <= limit:
            chunk = read(min(CHUNK, limit + 1 - seen))
            if not chunk:
                return
            seen += len(chunk)
            yield chunk
        return
    for chunk in stream:
        if chunk:
            seen += len(chunk)
            yield chunk
        if seen > limit:
            return


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def store(
    stream: BinaryIO | Iterable[bytes],
    filename: str | None,
    policy: Policy,
    upload_dir: str | os.PathLike,
) -> Stored:
    """Write the stream under upload_dir if its bytes are a kind the policy allows."""
    name = check_name(filename)
    upload_dir = Path(upload_dir)
    incoming = upload_dir / "tmp"
    try:
        incoming.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=incoming, prefix="in-")
    except OSError as e:
        raise StorageError() from e
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        size = 0
        head = b""
        with spool(fd) as write:
            for chunk in _chunks(stream, policy.max_bytes):
                size += len(chunk)
                if size > policy.max_bytes:
                    raise TooLarge(policy.max_bytes)
                if len(head) < HEAD:
                    head += chunk[: HEAD - len(head)]
                digest.update(chunk)
                write(chunk)
        if size == 0:
            raise EmptyFile()
        kind = sniff(head, tmp)
        if kind is None or kind not in policy.kinds:
            raise NotAllowed(policy.kinds)
        key = new_key()
        final = path_for(key, upload_dir)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o640)
            os.replace(tmp, final)  # same file system: atomic, never a half file
            _fsync_dir(final.parent)
        except OSError as e:
            raise StorageError() from e
        return Stored(key, size, digest.hexdigest(), kind, safe_name(name, kind))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turn the operating system's refusal to store bytes into StorageError (a message, not a 500)."""
    try:
        yield
    except OSError as e:
        raise StorageError() from e


@contextmanager
def spool(fd: int, durable: bool = True) -> Iterator[Callable[[bytes], None]]:
    """Open fd for writing and yield its write(); on leaving, flush (and fsync) and close it.

    A disk that refuses bytes, full (ENOSPC, EDQUOT), read-only (EROFS) or
    failing (EIO), may do so at a write, at the flush or fsync, or at the close
    that writes the buffer's last bytes: each is StorageError. An error of the
    caller's (the client went away, the file is too large) passes as it is, and
    the file's own error on the way out does not hide it.
    """
    out = os.fdopen(fd, "wb")

    def write(chunk: bytes) -> None:
        with storage_errors():
            out.write(chunk)

    try:
        yield write
    except BaseException:
        with suppress(OSError):
            out.close()  # the caller removes the file
        raise
    with storage_errors():
        try:
            out.flush()
            if durable:
                os.fsync(out.fileno())
        finally:
            out.close()


def open_stored(key: str, upload_dir: str | os.PathLike) -> BinaryIO:
    """Open a stored file for reading; UnknownKey for a key not ours or not there."""
    path = path_for(key, upload_dir)
    try:
        return open(path, "rb")
    except FileNotFoundError as e:
        raise UnknownKey() from e
    except OSError as e:
        raise StorageError() from e


def remove(key: str, upload_dir: str | os.PathLike) -> None:
    """Delete a stored file; a key that is not there is not an error."""
    try:
        path_for(key, upload_dir).unlink(missing_ok=True)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise StorageError() from e


# --- photos joined into one PDF -----------------------------------------------------


def images_to_pdf(paths: Sequence[str | os.PathLike], max_pages: int = MAX_PAGES) -> bytes:
    """Join JPEG/PNG photos into one A4 PDF, upright, without their metadata."""
    import img2pdf
    from PIL import Image, ImageOps

    if not paths:
        raise EmptyFile()
    if len(paths) > max_pages:
        raise TooManyPages(max_pages)
    pages = []
    for path in paths:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as image:
                    if image.format not in {"JPEG", "PNG"}:
                        raise NotAllowed({Kind.JPEG, Kind.PNG})
                    if image.width * image.height > MAX_PIXELS:
                        raise NotAllowed({Kind.JPEG, Kind.PNG})
                    # JPEG decodes at a reduced scale straight away: less memory, less time.
                    scale = PDF_PAGE_LONG_SIDE / max(image.size)
                    if scale < 1:
                        image.draft("RGB", (int(image.width * scale), int(image.height * scale)))
                    # Shrink first, then turn and convert the small copy: one full-size
                    # decoded photo alive at a time, not three (bench/genesis_upload.py).
                    image.thumbnail((PDF_PAGE_LONG_SIDE, PDF_PAGE_LONG_SIDE))
                    ImageOps.exif_transpose(image, in_place=True)
                    page = image.convert("RGB")  # a copy that outlives the closed file
        except UploadError:
            raise
        except (Exception, Image.DecompressionBombWarning) as e:
            raise NotAllowed({Kind.JPEG, Kind.PNG}) from e
        out = BytesIO()
        page.save(out, "JPEG", quality=85, optimize=True)  # no EXIF: no GPS position
        pages.append(out.getvalue())
    a4 = (img2pdf.mm_to_pt(210), img2pdf.mm_to_pt(297))
    layout = img2pdf.get_layout_fun(a4, fit=img2pdf.FitMode.into, auto_orient=True)
    return img2pdf.convert(pages, layout_fun=layout, engine=img2pdf.Engine.internal)
