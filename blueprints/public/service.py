"""Captcha challenges: signed keys that draw the same image every time, answered once.

A key is a nonce, its time of issue and their HMAC. The text, the audio code and the noise of
the image and the sound all derive from HMAC(SECRET_KEY, nonce), so showing a
challenge writes nothing and the same key always gives the same bytes (no
averaging over redraws). Only an answered key is stored, until it would have
expired anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from peewee import IntegrityError

from core import captcha, tokens
from core.clock import utcnow
from models import SpentCaptcha, db

CAPTCHA_TTL = timedelta(minutes=20)


@dataclass(frozen=True)
class Challenge:
    """One live challenge: its answers and the seeds its image and sound are drawn with."""

    key: str
    text: str
    audio_code: str
    image_seed: int
    audio_seed: int

    # Only the noise is drawn with these; the seeds are secret, the answers are not from them.
    def image_rng(self) -> random.Random:
        return random.Random(self.image_seed)  # noqa: S311

    def audio_rng(self) -> random.Random:
        return random.Random(self.audio_seed)  # noqa: S311


def _secret() -> str:
    return current_app.config["SECRET_KEY"]


def _mac(nonce: str, use: str) -> bytes:
    return hmac.new(_secret().encode(), f"captcha:{use}:{nonce}".encode(), hashlib.sha256).digest()


def _seed(nonce: str, use: str) -> int:
    """Derive a 256-bit seed for one use of a challenge; unguessable without the secret."""
    return int.from_bytes(_mac(nonce, use), "big")


def _answer(nonce: str, use: str, alphabet: str, length: int = 6) -> str:
    """Derive an answer from HMAC bytes, without modulo bias (bytes past a whole cycle are skipped)."""
    usable = 256 - 256 % len(alphabet)
    chars: list[str] = []
    block = 0
    while len(chars) < length:
        for byte in _mac(nonce, f"{use}:{block}"):
            if byte < usable and len(chars) < length:
                chars.append(alphabet[byte % len(alphabet)])
        block += 1
    return "".join(chars)


def _signature(nonce: str, issued: str) -> str:
    mac = hmac.new(_secret().encode(), f"captcha:key:{nonce}:{issued}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def new_challenge() -> str:
    """Return the key of a fresh challenge (nothing is stored): nonce-issued-signature, in hex."""
    nonce, issued = secrets.token_hex(12), f"{int(time.time()):x}"
    return f"{nonce}-{issued}-{_signature(nonce, issued)}"


def _read(key: str) -> Challenge | None:
    """Return the challenge behind a genuine, unexpired key, spent or not."""
    parts = key.split("-")
    if len(parts) != 3 or len(key) > 80:
        return None
    nonce, issued, signature = parts
    if not hmac.compare_digest(signature.encode(), _signature(nonce, issued).encode()):
        return None
    age = time.time() - int(issued, 16)  # signed by us: a hex number
    if not 0 <= age <= CAPTCHA_TTL.total_seconds():
        return None
    return Challenge(
        key=key,
        text=_answer(nonce, "text", captcha.IMAGE_ALPHABET),
        audio_code=_answer(nonce, "code", captcha.AUDIO_ALPHABET),
        image_seed=_seed(nonce, "image"),
        audio_seed=_seed(nonce, "audio"),
    )


def challenge(key: str) -> Challenge | None:
    """Return the live, unanswered challenge behind key."""
    found = _read(key or "")
    if found is None:
        return None
    if SpentCaptcha.select().where(SpentCaptcha.key_hash == tokens.digest(key)).exists():
        return None
    return found


def solve(key: str, answer: str) -> bool:
    """Spend the challenge behind key; tell whether answer was right."""
    found = _read(key or "")
    if found is None:
        return False
    now = utcnow()
    try:
        with db.atomic():
            # Answered keys are the only rows: forget those that expired (indexed, cheap).
            SpentCaptcha.delete().where(SpentCaptcha.expires_at < now).execute()
            SpentCaptcha.create(key_hash=tokens.digest(key), expires_at=now + CAPTCHA_TTL)
    except IntegrityError:
        return False  # answered before, or at the same moment by another request
    return captcha.answers_match(found.text, answer, case_sensitive=True) or captcha.answers_match(
        found.audio_code, answer, case_sensitive=False
    )
