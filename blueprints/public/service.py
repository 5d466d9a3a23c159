"""Captcha challenges: stored so that each one is answered once."""

from __future__ import annotations

import secrets
from datetime import timedelta

from core import captcha
from core.clock import utcnow
from models import Captcha, db

CAPTCHA_TTL = timedelta(minutes=20)


def new_challenge() -> str:
    """Store a fresh challenge and return its key."""
    if secrets.randbelow(20) == 0:  # now and then, forget old challenges
        Captcha.delete().where(Captcha.created_at < utcnow() - CAPTCHA_TTL).execute()
    return Captcha.create(text=captcha.new_text(), audio_code=captcha.new_audio_code()).key


def challenge(key: str) -> Captcha | None:
    """Return the live, unanswered challenge behind key."""
    return Captcha.get_or_none(
        (Captcha.key == key)
        & (Captcha.used == False)  # noqa: E712 - peewee expression
        & (Captcha.created_at > utcnow() - CAPTCHA_TTL)
    )


def solve(key: str, answer: str) -> bool:
    """Spend the challenge behind key; tell whether answer was right."""
    with db.atomic():
        row = challenge(key or "")
        if row is None:
            return False
        spent = (
            Captcha.update(used=True)
            .where(
                (Captcha.id == row.id) & (Captcha.used == False)  # noqa: E712
            )
            .execute()
        )
    if spent != 1:
        return False  # answered at the same moment by another request
    return captcha.answers_match(row.text, answer, case_sensitive=True) or captcha.answers_match(
        row.audio_code, answer, case_sensitive=False
    )
