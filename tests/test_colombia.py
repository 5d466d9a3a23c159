"""Colombian documents, NIT, phones, masks, dates and Bogotá time."""

from datetime import UTC, date, datetime, timedelta

import pytest

from core import colombia
from core.colombia import (
    mask_email,
    mask_phone,
    normalize_document,
    normalize_mobile,
    normalize_phone,
    parse_date,
)


def test_document_types_follow_spec_order_and_names():
    assert list(colombia.DOCUMENT_TYPES) == [
        "CC", "CE", "TI", "RC", "PA", "CD", "SC", "PE", "PT", "CN", "AS", "MS", "NI",
    ]  # fmt: skip
    assert colombia.document_type_name("CC") == "Cédula de ciudadanía"
    assert colombia.document_type_name("PT") == "Permiso por protección temporal"
    assert colombia.document_type_name("NI") == "NIT"


def test_unknown_document_type_name_falls_back_to_code():
    assert colombia.document_type_name("XX") == "XX"


def test_categories_are_a_to_d():
    assert list(colombia.CATEGORIES) == ["A", "B", "C", "D"]
    assert all(colombia.CATEGORIES.values())


@pytest.mark.parametrize(
    ("tipo", "numero", "expected"),
    [
        ("CC", "1143456789", "1143456789"),
        ("CC", "1.143.456.789", "1143456789"),
        ("CC", " 72 123 456 ", "72123456"),
        ("CC", "72-123-456", "72123456"),
        ("CC", "123", "123"),
        ("cc", "0072123456", "72123456"),
        ("TI", "1043567890", "1043567890"),
        ("TI", "10435678901", "10435678901"),
        ("RC", "1234", "1234"),
        ("CN", "20240001234", "20240001234"),
        ("MS", "0800112345", "0800112345"),
        ("AS", "0800112346", "0800112346"),
        ("CE", "e123456", "E123456"),
        ("PA", "ab 123-456", "AB123456"),
        ("PA", "001234", "001234"),
        ("PT", "PT7654321", "PT7654321"),
        ("PE", "123456789012345", "123456789012345"),
        ("SC", "abc", "ABC"),
        ("CD", "D12345", "D12345"),
    ],
)
def test_normalize_document_accepts(tipo, numero, expected):
    assert normalize_document(tipo, numero) == expected


@pytest.mark.parametrize(
    ("tipo", "numero", "message"),
    [
        ("XX", "123456", "tipo de documento"),
        ("", "123456", "tipo de documento"),
        ("CC", "", "Escriba el número"),
        ("CC", "   ", "Escriba el número"),
        ("CC", "12", "entre 3 y 10 dígitos"),
        ("CC", "12345678901", "entre 3 y 10 dígitos"),
        ("CC", "12A456", "solo números"),
        ("CC", "１２３４５", "solo números"),
        ("TI", "123456789", "entre 10 y 11 dígitos"),
        ("TI", "123456789012", "entre 10 y 11 dígitos"),
        ("RC", "123", "entre 4 y 20 dígitos"),
        ("MS", "1" * 21, "entre 4 y 20 dígitos"),
        ("PA", "AB", "entre 3 y 20 letras o números"),
        ("PA", "A" * 21, "entre 3 y 20 letras o números"),
        ("CE", "E12/345", "entre 3 y 20 letras o números"),
        ("PT", "ÑU12345", "entre 3 y 20 letras o números"),
    ],
)
def test_normalize_document_rejects_with_spanish_message(tipo, numero, message):
    with pytest.raises(ValueError, match=message):
        normalize_document(tipo, numero)


@pytest.mark.parametrize(
    "numero",
    ["890102044-1", "8901020441", "890.102.044-1", " 890 102 044 1 ", "0890102044-1"],
)
def test_nit_with_check_digit_normalizes_to_digits(numero):
    assert normalize_document("NI", numero) == "8901020441"


@pytest.mark.parametrize("numero", ["890102044-2", "8901020440", "890.102.044-9"])
def test_nit_with_wrong_check_digit_is_rejected(numero):
    with pytest.raises(ValueError) as err:
        normalize_document("NI", numero)
    assert str(err.value) == "El dígito de verificación del NIT no es válido."


@pytest.mark.parametrize(
    ("numero", "message"),
    [("1234567", "entre 8 y 16 dígitos"), ("890102044-X", "solo lleva números")],
)
def test_nit_with_bad_shape_is_rejected(numero, message):
    with pytest.raises(ValueError, match=message):
        normalize_document("NI", numero)


@pytest.mark.parametrize(
    "value",
    [
        "+57 300 123 4567",
        "3001234567",
        "300-123-4567",
        "(300) 123 4567",
        "573001234567",
        "300.123.4567",
    ],
)
def test_normalize_mobile_returns_ten_national_digits(value):
    assert normalize_mobile(value) == "3001234567"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "300123456",
        "30012345678",
        "6012345678",
        "2345678",
        "+1 202 555 0100",
        "300ABC4567",
        "teléfono",
    ],
)
def test_normalize_mobile_rejects(value):
    with pytest.raises(ValueError) as err:
        normalize_mobile(value)
    assert str(err.value) == "Ingrese un número celular colombiano de 10 dígitos que empiece por 3."


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("234 5678", "2345678"),
        ("601 234 5678", "6012345678"),
        ("+57 605 385 1234", "6053851234"),
        ("300-123-4567", "3001234567"),
    ],
)
def test_normalize_phone_accepts_landline_or_mobile(value, expected):
    assert normalize_phone(value) == expected


@pytest.mark.parametrize(
    "value", ["", "12345", "12345678", "5012345678", "+34 612 345 678", "601ABC5678"]
)
def test_normalize_phone_rejects(value):
    with pytest.raises(ValueError, match="Ingrese un teléfono colombiano"):
        normalize_phone(value)


@pytest.mark.parametrize(
    ("digits", "masked"),
    [
        ("3007386448", "300****448"),
        ("2345678", "234*678"),
        ("300-738-6448", "300****448"),
        ("123456", "****56"),
        ("", ""),
    ],
)
def test_mask_phone_shows_first_and_last_three(digits, masked):
    assert mask_phone(digits) == masked


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("juanperez@example.com", "ju*****@example.com"),
        ("abcd@cajacopi.com", "ab*****@cajacopi.com"),
        ("abc@x.co", "ab*****@x.co"),
        ("ab@x.co", "a*****@x.co"),
        ("a@x.co", "a*****@x.co"),
    ],
)
def test_mask_email_keeps_start_and_domain(email, masked):
    assert mask_email(email) == masked


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("15/03/1990", date(1990, 3, 15)),
        ("5/3/1990", date(1990, 3, 5)),
        ("05/03/1990", date(1990, 3, 5)),
        ("1990-03-15", date(1990, 3, 15)),
        (" 29/02/2024 ", date(2024, 2, 29)),
    ],
)
def test_parse_date_accepts(value, expected):
    assert parse_date(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "15-03-1990", "1990/03/15", "15/03/90", "mañana", "15031990", "03/15/1990x"],
)
def test_parse_date_rejects_other_formats(value):
    with pytest.raises(ValueError) as err:
        parse_date(value)
    assert str(err.value) == "Escriba la fecha como dd/mm/aaaa."


@pytest.mark.parametrize("value", ["31/02/2024", "29/02/2023", "2024-13-01", "00/01/2024"])
def test_parse_date_rejects_impossible_dates(value):
    with pytest.raises(ValueError, match="no existe"):
        parse_date(value)


def test_format_date_round_trips():
    assert colombia.format_date(date(2024, 3, 5)) == "05/03/2024"
    assert parse_date(colombia.format_date(date(1999, 12, 31))) == date(1999, 12, 31)


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        (datetime(2024, 1, 1, 3, 30), "31/12/2023 22:30"),
        (datetime(2024, 6, 15, 17, 5), "15/06/2024 12:05"),
        (datetime(2024, 6, 15, 17, 5, tzinfo=UTC), "15/06/2024 12:05"),
    ],
)
def test_format_datetime_shows_bogota_time(utc, expected):
    assert colombia.format_datetime(utc) == expected


def test_to_bogota_treats_naive_as_utc():
    local = colombia.to_bogota(datetime(2024, 1, 1, 12, 0))
    assert local.utcoffset() == timedelta(hours=-5)
    assert (local.hour, local.tzinfo) == (7, colombia.BOGOTA)
