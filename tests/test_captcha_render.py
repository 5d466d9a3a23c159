"""Captcha texts, PNG/MP3 rendering and answer checking, without the app."""

import io
import random
import string

import pytest
from PIL import Image

from core import captcha

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_BUDGET = 8 * 1024


def test_image_alphabet_excludes_confusable_letters():
    for char in "IlOoCcSsVvWwXxZzKkPpUu":
        assert char not in captcha.IMAGE_ALPHABET
    assert set(captcha.IMAGE_ALPHABET) <= set(string.ascii_letters)
    assert len(set(captcha.IMAGE_ALPHABET)) == len(captcha.IMAGE_ALPHABET)
    assert any(c.isupper() for c in captcha.IMAGE_ALPHABET)
    assert any(c.islower() for c in captcha.IMAGE_ALPHABET)


def test_audio_alphabet_is_digits():
    assert captcha.AUDIO_ALPHABET == "0123456789"


@pytest.mark.parametrize("length", [1, 6, 9])
def test_new_text_has_length_and_alphabet(length):
    text = captcha.new_text(length)
    assert len(text) == length
    assert set(text) <= set(captcha.IMAGE_ALPHABET)


@pytest.mark.parametrize("length", [1, 6, 9])
def test_new_audio_code_has_length_and_digits(length):
    code = captcha.new_audio_code(length)
    assert len(code) == length
    assert code.isdigit()


def test_given_rng_makes_texts_repeatable():
    assert captcha.new_text(rng=random.Random(7)) == captcha.new_text(rng=random.Random(7))
    assert captcha.new_audio_code(rng=random.Random(7)) == captcha.new_audio_code(
        rng=random.Random(7)
    )


def test_texts_vary_without_rng():
    assert len({captcha.new_text() for _ in range(20)}) > 15


@pytest.mark.parametrize("length", [0, -1])
def test_new_text_rejects_empty_length(length):
    with pytest.raises(ValueError):
        captcha.new_text(length)


@pytest.mark.parametrize("seed", range(5))
def test_render_image_is_small_png_of_expected_size(seed):
    text = captcha.new_text(rng=random.Random(seed))
    data = captcha.render_image(text)
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) < PNG_BUDGET
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        assert image.size == captcha.IMAGE_SIZE


def test_render_image_fits_long_text():
    data = captcha.render_image("ABDEFGHLNRaeh")
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == captcha.IMAGE_SIZE


def mp3_frames(data: bytes) -> list[tuple[int, int, int]]:
    """Walk MPEG-2 layer III frame headers: (sample rate, kbit/s, channel mode) of each."""
    bitrates = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]
    rates = [22050, 24000, 16000]
    frames, i = [], 0
    while i + 4 <= len(data):
        b1, b2, b3 = data[i + 1], data[i + 2], data[i + 3]
        assert data[i] == 0xFF and b1 & 0xFE == 0xF2, f"no MPEG-2 layer III frame at {i}"
        kbps, rate, padding = bitrates[b2 >> 4], rates[(b2 >> 2) & 3], (b2 >> 1) & 1
        frames.append((rate, kbps, b3 >> 6))
        i += 72 * kbps * 1000 // rate + padding
    assert i == len(data)
    return frames


def test_render_audio_is_a_small_mono_mp3_of_several_seconds():
    data = captcha.render_audio("123456")
    frames = mp3_frames(data)
    # MPEG-2 at 16 kHz: in the standard every phone's decoder implements.
    assert {(rate, mode) for rate, _, mode in frames} == {(16000, 3)}  # 3: mono
    seconds = len(frames) * 576 / 16000
    assert 3 < seconds < 15
    assert len(data) < 30_000  # the 8-bit WAV it replaced weighed about 65 KB


def test_render_audio_rejects_characters_without_voice():
    with pytest.raises(ValueError):
        captcha.render_audio("12a")


@pytest.mark.parametrize(
    ("expected", "given", "case_sensitive", "ok"),
    [
        ("AbdEfG", "AbdEfG", True, True),
        ("AbdEfG", "  AbdEfG\n", True, True),
        ("AbdEfG", "Ab dE fG", True, True),
        ("AbdEfG", "abdefg", True, False),
        ("AbdEfG", "ABDEFG", True, False),
        ("AbdEfG", "AbdEf", True, False),
        ("AbdEfG", "AbdEfGh", True, False),
        ("AbdEfG", "", True, False),
        ("AbdEfG", "ÁbdEfG", True, False),
        ("123456", "123456", False, True),
        ("123456", " 12 34 56 ", False, True),
        ("123456", "１２３４５６", False, True),
        ("123456", "123457", False, False),
        ("AbdEfG", "abdefg", False, True),
        ("", "", True, False),
        ("", "", False, False),
    ],
)
def test_answers_match(expected, given, case_sensitive, ok):
    assert captcha.answers_match(expected, given, case_sensitive=case_sensitive) is ok
