"""PiiScanner: Presidio's recognizers on a blank pipeline, checksums, no network."""

from __future__ import annotations

import socket
from typing import Any

import pytest

pytest.importorskip("presidio_analyzer")

from warded.scanners import PiiScanner, redact


@pytest.fixture(scope="module")
def scanner() -> PiiScanner:
    return PiiScanner()


def _found(scanner: PiiScanner, text: str) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start : f.end]) for f in scanner.scan(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Write to jane.roe@example.org today.", ("email", "jane.roe@example.org")),
        ("Call +44 20 7946 0958 after lunch.", ("phone", "+44 20 7946 0958")),
        ("Pay to DE89 3704 0044 0532 0130 00 please.", ("iban", "DE89 3704 0044 0532 0130 00")),
        ("Pay to GB33BUKB20201555555555 please.", ("iban", "GB33BUKB20201555555555")),
        ("Card 4111 1111 1111 1111 exp 12/29.", ("card", "4111 1111 1111 1111")),
        ("Server at 203.0.113.7 answered.", ("ip_address", "203.0.113.7")),
        ("Ring 0044 20 7946 0958 from abroad.", ("phone", "0044 20 7946 0958")),
        ("US office: (415) 555-2671.", ("phone", "(415) 555-2671")),
        ("Server at 2001:db8::8a2e:370:7334 answered.", ("ip_address", "2001:db8::8a2e:370:7334")),
    ],
)
def test_personal_data_is_found(scanner: PiiScanner, text: str, expected: tuple[str, str]) -> None:
    assert expected in _found(scanner, text)


@pytest.mark.parametrize(
    "text",
    [
        "Pay to DE89 3704 0044 0532 0130 01 please.",  # IBAN checksum fails
        "Card 4111 1111 1111 1112 exp 12/29.",  # Luhn fails
        "Invoice 2024-0117 for 1,250.00 EUR, 32 units, due 2024-03-12 at 14:30.",
        "The build took 12.5 s and used 3.2 GB; version 1.4.2.",
        "Write to the address on the invoice.",
        "Build 20240312 passed after 3 retries.",
    ],
)
def test_ordinary_text_and_bad_checksums_are_not_personal_data(
    scanner: PiiScanner, text: str
) -> None:
    assert _found(scanner, text) == []


def test_findings_in_a_long_text_keep_their_offsets(scanner: PiiScanner) -> None:
    filler = "Nothing to see in this sentence at all. " * 40
    text = f"{filler}mail bob@example.com {filler}iban DE89 3704 0044 0532 0130 00 end"
    assert _found(scanner, text) == [
        ("email", "bob@example.com"),
        ("iban", "DE89 3704 0044 0532 0130 00"),
    ]
    assert redact(text, scanner.scan(text)).endswith("iban [redacted:iban] end")


def test_scanning_never_touches_the_network(
    scanner: PiiScanner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("network access during a scan")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert ("email", "a.b@mail.example.co.uk") in _found(scanner, "to a.b@mail.example.co.uk")


def test_min_score_drops_weak_findings() -> None:
    strict = PiiScanner(min_score=0.5)
    assert [k for k, _ in _found(strict, "Call +44 20 7946 0958.")] == []


def test_extra_recognizers_extend_the_scanner() -> None:
    from presidio_analyzer import Pattern, PatternRecognizer

    employee = PatternRecognizer(
        supported_entity="EMPLOYEE_ID", patterns=[Pattern("emp", r"\bEMP-\d{6}\b", 0.9)]
    )
    found = _found(PiiScanner(extra=[employee]), "Ask EMP-123456 or bob@example.com")
    assert ("employee_id", "EMP-123456") in found
    assert ("email", "bob@example.com") in found


def test_a_blank_spacy_pipeline_can_back_the_engine() -> None:
    blank = PiiScanner(nlp="blank")
    assert _found(blank, "mail jane.roe@example.org") == [("email", "jane.roe@example.org")]


def _luhn(prefix: str, length: int) -> str:
    """`prefix` padded with 1s to `length` digits, its last digit making it Luhn-valid."""
    body = (prefix + "1" * length)[: length - 1]
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pay to de89 3704 0044 0532 0130 00 today", "de89 3704 0044 0532 0130 00"),
        ("pay to gb33bukb20201555555555 today", "gb33bukb20201555555555"),
        ("pay to De89370400440532013000 today", "De89370400440532013000"),
    ],
)
def test_ibans_are_found_in_any_case(scanner: PiiScanner, text: str, expected: str) -> None:
    assert ("iban", expected) in _found(scanner, text)


@pytest.mark.parametrize(
    "number",
    [
        "2223 0031 2200 3222",  # Mastercard 2-series
        " ".join(_luhn("2720", 16)[i : i + 4] for i in range(0, 16, 4)),  # Mastercard 2720
        "3056 930902 5904",  # Diners Club, 14 digits 4-6-4
        "3056 9309 0259 04",  # Diners Club, 14 digits 4-4-4-2
        " ".join(_luhn("6212", 19)[i : i + 4] for i in range(0, 19, 4)),  # UnionPay, 19
        _luhn("6212", 17),  # UnionPay, 17, no separators
    ],
)
def test_card_schemes_beyond_presidios_pattern_are_found(scanner: PiiScanner, number: str) -> None:
    assert ("card", number) in _found(scanner, f"Card {number} on file.")


def test_a_card_number_failing_luhn_in_a_new_scheme_is_not_a_card(scanner: PiiScanner) -> None:
    number = _luhn("2223", 16)
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert ("card", wrong) not in _found(scanner, f"Card {wrong} on file.")


@pytest.mark.parametrize(
    "text",
    [
        "Invoice INV-2024-158272 is overdue.",
        "Order #2024158272 shipped.",
        "Reference 4155552671 in the ledger.",
        "Customer id 2125550123, tier gold.",
        "ticket 020 7946 0958 closed",
    ],
)
def test_invoice_and_order_ids_are_not_phone_numbers(scanner: PiiScanner, text: str) -> None:
    assert [k for k, _ in _found(scanner, text) if k == "phone"] == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Call me on 020 7946 0958 tomorrow.", "020 7946 0958"),
        ("phone: 4155552671", "4155552671"),
        ("Tel. 030 12345678", "030 12345678"),
        ("US office 415-555-2671.", "415-555-2671"),
        ("Mobile +33 6 12 34 56 78", "+33 6 12 34 56 78"),
    ],
)
def test_phone_numbers_with_phone_formatting_or_context_are_found(
    scanner: PiiScanner, text: str, expected: str
) -> None:
    assert ("phone", expected) in _found(scanner, text)


def test_a_dotted_quad_is_an_address_not_a_phone(scanner: PiiScanner) -> None:
    assert _found(scanner, "Node 10.0.0.12 restarted.") == [("ip_address", "10.0.0.12")]
