"""Self-hosted captcha: challenge texts, the PNG image and the spoken-digits MP3.

Pure functions only; storing challenges and serving them is done elsewhere.
"""

from __future__ import annotations

import array
import functools
import hmac
import io
import math
import os
import random
import secrets
import string
import sys
import unicodedata
import wave
from pathlib import Path

import lameenc
from captcha.image import DATA_DIR as _CAPTCHA_DATA_DIR
from PIL import Image, ImageDraw, ImageFont

# Pairs whose upper and lower case differ mostly by size (Cc, Kk, Ss...) are
# unfair once letters are rotated, and I/l/O/Q, i/j, M/m, Y/y and b (reads as 6)
# are too easy to misread; asking for case only makes sense without them.
CONFUSABLE_LETTERS = "IlOoQqiJjCcKkPpSsUuVvWwXxYyZzMmb"
IMAGE_ALPHABET = "".join(c for c in string.ascii_letters if c not in CONFUSABLE_LETTERS)
AUDIO_ALPHABET = "0123456789"

IMAGE_SIZE = (200, 70)
# The bundled DroidSansMono (Apache-2.0) ships with the captcha package.
FONT_PATH = os.path.join(_CAPTCHA_DATA_DIR, "DroidSansMono.ttf")
# Spanish digits ("cero" … "nueve"), two voices, made for this project with
# espeak-ng (see core/data/README.md); layout <dir>/<digit>/<any>.wav.
DEFAULT_VOICE_DIR = Path(__file__).resolve().parent / "data" / "voz"

MP3_RATE = 16000
MP3_KBPS = 24

_MAX_FONT_SIZE = 42
_PNG_COLOURS = 16


def _pick(alphabet: str, length: int, rng: random.Random | None) -> str:
    """Draw length characters from alphabet, with secrets unless rng is given."""
    if length < 1:
        raise ValueError("length must be at least 1")
    if rng is None:
        return "".join(secrets.choice(alphabet) for _ in range(length))
    return "".join(rng.choice(alphabet) for _ in range(length))


def new_text(length: int = 6, rng: random.Random | None = None) -> str:
    """Return a random case-sensitive text for the image captcha."""
    return _pick(IMAGE_ALPHABET, length, rng)


def new_audio_code(length: int = 6, rng: random.Random | None = None) -> str:
    """Return a random digit code for the audio captcha."""
    return _pick(AUDIO_ALPHABET, length, rng)


@functools.lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont:
    """Load the bundled font once per size."""
    return ImageFont.truetype(FONT_PATH, size)


def render_image(text: str, *, rng: random.Random | None = None) -> bytes:
    """Render text as a lightly distorted PNG of IMAGE_SIZE."""
    if not text:
        raise ValueError("text must not be empty")
    r = rng or secrets.SystemRandom()
    width, height = IMAGE_SIZE
    margin = 8
    slot = (width - 2 * margin) / len(text)
    # Mono glyphs advance 0.6 em; shrink only when a long text would overlap.
    size = min(_MAX_FONT_SIZE, int(slot / 0.62))
    font = _font(size)

    background = tuple(r.randint(236, 255) for _ in range(3))
    # Dark ink on a light ground keeps contrast well above WCAG AA.
    ink = tuple(r.randint(15, 90) for _ in range(3))
    image = Image.new("RGB", IMAGE_SIZE, background)

    # One size for every letter so case shows as height: A vs a stays fair.
    tile = int(size * 1.6)
    baseline_in_tile = int(tile * 0.72)
    x_height = size * 0.55
    for i, char in enumerate(text):
        glyph = Image.new("L", (tile, tile), 0)
        ImageDraw.Draw(glyph).text(
            (tile / 2, baseline_in_tile), char, fill=255, font=font, anchor="ms"
        )
        glyph = glyph.rotate(
            r.uniform(-18, 18),
            resample=Image.Resampling.BICUBIC,
            center=(tile / 2, baseline_in_tile - x_height / 2),
        )
        cx = margin + slot * (i + 0.5) + r.uniform(-2, 2)
        baseline = height * 0.7 + r.uniform(-4, 4)
        image.paste(ink, (int(cx - tile / 2), int(baseline - baseline_in_tile)), glyph)

    image = _wave_columns(image, background, r)
    draw = ImageDraw.Draw(image)
    _draw_curve(draw, ink, r)
    for _ in range(30):
        x, y = r.randrange(width), r.randrange(height)
        draw.rectangle((x, y, x + r.randint(0, 1), y + r.randint(0, 1)), fill=ink)

    out = io.BytesIO()
    image.quantize(colors=_PNG_COLOURS).save(out, format="PNG", optimize=True)
    return out.getvalue()


def _wave_columns(image: Image.Image, background: tuple[int, ...], r: random.Random) -> Image.Image:
    """Shift each pixel column up or down along a sine wave."""
    # A gentle vertical wave breaks the straight baseline OCR relies on
    # without bending letters past what a person reads easily.
    width, height = image.size
    amplitude = r.uniform(2.0, 3.5)
    period = r.uniform(60, 110)
    phase = r.uniform(0, 2 * math.pi)
    waved = Image.new("RGB", image.size, background)
    for x in range(width):
        dy = round(amplitude * math.sin(2 * math.pi * x / period + phase))
        waved.paste(image.crop((x, 0, x + 1, height)), (x, dy))
    return waved


def _draw_curve(draw: ImageDraw.ImageDraw, ink: tuple[int, ...], r: random.Random) -> None:
    """Draw one wavy line across the text."""
    width, height = IMAGE_SIZE
    mid = height * r.uniform(0.45, 0.65)
    amplitude = height * r.uniform(0.08, 0.18)
    period = r.uniform(80, 160)
    phase = r.uniform(0, 2 * math.pi)
    start, end = r.randint(0, 30), r.randint(width - 30, width)
    points = [
        (x, mid + amplitude * math.sin(2 * math.pi * x / period + phase))
        for x in range(start, end, 4)
    ]
    draw.line(points, fill=ink, width=2)


@functools.lru_cache(maxsize=4)
def _load_voices(voice_dir: str) -> tuple[int, dict[str, list[list[float]]]]:
    """Read every mono 8/16-bit WAV under voice_dir/<char>/ as signed floats in -1..1."""
    rate = 0
    voices: dict[str, list[list[float]]] = {}
    for char_dir in sorted(Path(voice_dir).iterdir()):
        if len(char_dir.name) != 1 or not char_dir.is_dir():
            continue
        for path in sorted(char_dir.glob("*.wav")):
            with wave.open(str(path), "rb") as w:
                if w.getnchannels() != 1 or w.getsampwidth() not in (1, 2):
                    raise ValueError(f"{path}: need mono 8- or 16-bit PCM")
                if rate and w.getframerate() != rate:
                    raise ValueError(f"{path}: sample rates differ within {voice_dir}")
                rate = w.getframerate()
                frames = w.readframes(w.getnframes())
                if w.getsampwidth() == 1:
                    samples = [(b - 128) / 128 for b in frames]
                else:
                    samples = [v / 32768 for v in memoryview(frames).cast("h")]
            voices.setdefault(char_dir.name, []).append(samples)
    if not voices:
        raise ValueError(f"no voice samples under {voice_dir}")
    return rate, voices


def _resample(samples: list[float], speed: float) -> list[float]:
    """Play samples speed times faster by linear interpolation."""
    last = len(samples) - 1
    out = []
    for i in range(int(last / speed)):
        pos = i * speed
        j = int(pos)
        out.append(samples[j] + (samples[j + 1] - samples[j]) * (pos - j))
    return out


def render_audio(
    code: str,
    *,
    voice_dir: str | os.PathLike[str] | None = None,
    rng: random.Random | None = None,
) -> bytes:
    """Render code as a mono MP3: a cue tone, then each character spoken."""
    if not code:
        raise ValueError("code must not be empty")
    rate, voices = _load_voices(os.fspath(voice_dir or DEFAULT_VOICE_DIR))
    missing = set(code) - voices.keys()
    if missing:
        raise ValueError(f"no voice for {''.join(sorted(missing))!r}")
    r = rng or secrets.SystemRandom()

    # Small speed and loudness changes and a faint hiss stop byte-for-byte
    # matching of the samples; the library's default babble of reversed
    # digits behind the voice made the code too hard to follow, so none here.
    track: list[float] = [0.0] * int(rate * 0.3)
    track += _tone(rate, 660, 0.15)
    track += [0.0] * int(rate * 0.6)
    for char in code:
        samples = _resample(r.choice(voices[char]), r.uniform(0.93, 1.07))
        peak = max(abs(v) for v in samples) or 1.0
        gain = r.uniform(0.75, 0.9) / peak
        track += [v * gain for v in samples]
        track += [0.0] * int(rate * r.uniform(0.45, 0.75))
    track += [0.0] * int(rate * 0.3)

    noise = r.uniform(0.012, 0.02)
    pcm = array.array(
        "h", (max(-32768, min(32767, round(32767 * (v + r.gauss(0.0, noise))))) for v in track)
    )
    return _encode_mp3(pcm, rate)


def _encode_mp3(pcm: array.array, rate: int) -> bytes:
    """Encode mono 16-bit samples as a small MP3 (MPEG-2 layer III)."""
    # Measured on a 6-digit code (8.3 s): the 8-bit 8 kHz WAV was 66 KB; this
    # is 25 KB. 16 kHz is the lowest rate of MPEG-2 proper, which every phone
    # decodes (8 kHz would be the unofficial "MPEG 2.5"). 24 kbit/s, not 16
    # (17 KB): a margin of clarity for people who rely on the audio.
    if sys.byteorder == "big":
        pcm.byteswap()  # LAME reads little-endian samples
    encoder = lameenc.Encoder()
    encoder.set_channels(1)
    encoder.set_in_sample_rate(rate)
    encoder.set_out_sample_rate(MP3_RATE)
    encoder.set_bit_rate(MP3_KBPS)
    encoder.set_quality(2)  # LAME's "high quality": slower search, same size
    return bytes(encoder.encode(pcm.tobytes()) + encoder.flush())


def _tone(rate: int, hz: float, seconds: float) -> list[float]:
    """Return a faded sine cue tone."""
    # Short fades avoid the click a hard-edged sine makes in earphones.
    n = int(rate * seconds)
    fade = max(1, int(rate * 0.01))
    return [
        0.35 * math.sin(2 * math.pi * hz * i / rate) * min(1.0, i / fade, (n - 1 - i) / fade)
        for i in range(n)
    ]


def _normalise(answer: str, *, keep_case: bool) -> bytes:
    """Reduce an answer to the bytes that are compared."""
    # NFKC folds full-width letters and digits some phone keyboards type;
    # people add spaces between characters, so all whitespace goes.
    text = "".join(unicodedata.normalize("NFKC", answer).split())
    if not keep_case:
        text = text.casefold()
    return text.encode("utf-8")


def answers_match(expected: str, given: str, *, case_sensitive: bool) -> bool:
    """Tell in constant time whether given answers the expected challenge."""
    wanted = _normalise(expected, keep_case=case_sensitive)
    # An empty stored answer must never be satisfied by an empty reply.
    if not wanted:
        return False
    return hmac.compare_digest(wanted, _normalise(given, keep_case=case_sensitive))
