"""Static files for the wire: content-hashed copies with gzip and brotli siblings.

`build(source, target)` copies every file under source to target as
NAME.<hash>.EXT and, for text types, writes NAME.<hash>.EXT.gz and .br beside
it, the way WhiteNoise expects them. Outputs are named by content, so a build
that finds them already there only hashes the sources (a few milliseconds),
and several processes building at once write the same bytes.

Run `python -m core.assets` (or `make static`) to build ahead of a deploy.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import tempfile
from pathlib import Path, PurePosixPath

import brotli

HASH_LENGTH = 12
COMPRESSIBLE = {".css", ".js", ".svg", ".json", ".txt", ".html", ".xml", ".map", ".ico"}
# A variant that saves less than this is not worth a second lookup per request.
MIN_SAVING = 0.05

HERE = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = HERE / "static"
DEFAULT_TARGET = HERE / "instance" / "static"


def hashed_name(relative: str, data: bytes) -> str:
    """Return relative with a content hash before its extension (app.css → app.<hash>.css)."""
    digest = hashlib.sha256(data).hexdigest()[:HASH_LENGTH]
    path = PurePosixPath(relative)
    return str(path.with_name(f"{path.stem}.{digest}{path.suffix}"))


def _write_atomically(path: Path, data: bytes) -> None:
    """Write data to path so that no reader ever sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def compressed_variants(data: bytes) -> dict[str, bytes]:
    """Return the .gz and .br bodies of data that are worth keeping."""
    # mtime=0: the same input always gives the same .gz bytes.
    variants = {
        ".gz": gzip.compress(data, compresslevel=9, mtime=0),
        ".br": brotli.compress(data, quality=11, mode=brotli.MODE_TEXT),
    }
    return {ext: body for ext, body in variants.items() if len(body) < len(data) * (1 - MIN_SAVING)}


def build(source: Path = DEFAULT_SOURCE, target: Path = DEFAULT_TARGET) -> dict[str, str]:
    """Build target from source; return {"app.css": "app.<hash>.css", ...}."""
    manifest: dict[str, str] = {}
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        if not path.is_file() or any(p.startswith(".") for p in PurePosixPath(relative).parts):
            continue
        data = path.read_bytes()
        name = hashed_name(relative, data)
        manifest[relative] = name
        out = target / name
        if out.exists():
            continue
        if path.suffix.lower() in COMPRESSIBLE:
            for ext, body in compressed_variants(data).items():
                _write_atomically(out.with_name(out.name + ext), body)
        # The plain file last: once it exists, its variants are complete.
        _write_atomically(out, data)
    return manifest


def main() -> int:
    """Build the default static folder into instance/static and list what is there."""
    manifest = build()
    for relative, name in manifest.items():
        out = DEFAULT_TARGET / name
        sizes = [f"{out.stat().st_size:,} B"]
        for ext in (".gz", ".br"):
            variant = out.with_name(out.name + ext)
            if variant.exists():
                sizes.append(f"{ext[1:]} {variant.stat().st_size:,} B")
        print(f"{relative:<32} → {name}  ({', '.join(sizes)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
