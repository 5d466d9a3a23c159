"""Uploaded files as rows: the file on disk first, the row in the caller's transaction.

The order matters: a row whose file is missing would be a broken link, while a
file whose row never committed is only a few bytes to remove. So the file is
written and fsynced outside any transaction (STYLE: no file writes inside
one), the row is created inside the caller's, and the file goes away again if
that transaction fails::

    with files.upload(stream, name, uploads.AUTHORIZATION, upload_dir) as stored:
        with db.atomic():
            order = Autorizacion.create(...)
            files.record(stored, "autorizacion", order.id, created_by=account.id)

A process killed between the two steps leaves a file without a row (never the
other way round); a sweep comparing UPLOAD_DIR with the table can remove those.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

from core import uploads
from models import Attachment, db


@contextmanager
def upload(
    stream: BinaryIO | Iterable[bytes],
    filename: str | None,
    policy: uploads.Policy,
    upload_dir: str | os.PathLike,
) -> Iterator[uploads.Stored]:
    """Store the file, and delete it again if the block (the transaction) fails."""
    if db.in_transaction():
        # Inside it, the outer transaction could still roll the row back after this
        # block had kept the file, and disk I/O would hold the transaction open.
        raise RuntimeError("files.upload() must wrap the transaction, not sit inside it")
    stored = uploads.store(stream, filename, policy, upload_dir)
    try:
        yield stored
    except BaseException:
        uploads.remove(stored.key, upload_dir)
        raise


def record(
    stored: uploads.Stored, owner_type: str, owner_id: int, created_by: int | None = None
) -> Attachment:
    """Create the Attachment row for a stored file (inside the caller's transaction)."""
    return Attachment.create(
        key=stored.key,
        original_name=stored.name,
        content_type=stored.content_type,
        kind=stored.kind.value,
        size=stored.size,
        sha256=stored.sha256,
        owner_type=owner_type,
        owner_id=owner_id,
        created_by=created_by,
    )


def save(
    stream: BinaryIO | Iterable[bytes],
    filename: str | None,
    policy: uploads.Policy,
    upload_dir: str | os.PathLike,
    owner_type: str,
    owner_id: int,
    created_by: int | None = None,
) -> Attachment:
    """Store a file for an owner that already exists, and record it."""
    with upload(stream, filename, policy, upload_dir) as stored, db.atomic():
        return record(stored, owner_type, owner_id, created_by)
