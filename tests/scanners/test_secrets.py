"""SecretsScanner: provider tokens, private keys, credentials in assignments; full spans."""

from __future__ import annotations

import pytest

pytest.importorskip("detect_secrets")

from warded.scanners import SecretsScanner, redact, scan_value

# Made-up values in each provider's format; none of them is a real credential.
GITHUB = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
AWS = "AKIA" + "QWERTYUIOP123456"
STRIPE_LONG = "sk_live_" + "51HqLyjWDarjtT1zdp7dcZ9xYbQk2LmN8vPsR4tU6wXeA3fG"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJhZ2VudC0xIiwicm9sZSI6ImJpbGxpbmcifQ."
    "Qm9ndXNTaWduYXR1cmVGb3JUZXN0c09ubHlfXzEyMzQ1Njc4OTA"
)
SLACK = "xoxb-" + "2048204820-4096409640-ZyXwVuTsRqPoNmLkJiHgFeDc"
GOOGLE = "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
ANTHROPIC = "sk-ant-api03-" + "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5" + "-AA"
KEY_BLOCK = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "-----END RSA PRIVATE KEY-----"
)


@pytest.fixture(scope="module")
def scanner() -> SecretsScanner:
    return SecretsScanner()


def _kinds(scanner: SecretsScanner, text: str) -> set[str]:
    return {f.kind for f in scanner.scan(text)}


@pytest.mark.parametrize(
    ("secret", "kind"),
    [
        (GITHUB, "github_token"),
        (AWS, "aws_access_key"),
        (STRIPE_LONG, "stripe_access_key"),
        (JWT, "json_web_token"),
        (SLACK, "slack_token"),
        (GOOGLE, "google_api_key"),
        (ANTHROPIC, "anthropic_api_key"),
        (KEY_BLOCK, "private_key"),
    ],
)
def test_a_secret_inside_a_longer_string_is_found_and_masked_whole(
    scanner: SecretsScanner, secret: str, kind: str
) -> None:
    text = f"Deploy notes: use {secret} for the nightly job, then rotate it."
    found = scanner.scan(text)
    assert kind in {f.kind for f in found}
    masked = redact(text, found)
    assert masked.startswith("Deploy notes: use [redacted:")
    assert masked.endswith(" for the nightly job, then rotate it.")
    for n in range(4, len(secret) + 1):
        assert secret[-n:] not in masked, f"a {n}-character suffix survived"
        assert secret[:n] not in masked, f"a {n}-character prefix survived"


def test_a_token_longer_than_its_pattern_is_masked_to_its_end(scanner: SecretsScanner) -> None:
    # detect-secrets' Stripe pattern stops after 24 characters; the key goes on.
    masked = redact(f"key={STRIPE_LONG};", scanner.scan(f"key={STRIPE_LONG};"))
    assert STRIPE_LONG[-10:] not in masked
    assert masked.endswith(";")


def test_a_jwt_is_masked_with_its_signature(scanner: SecretsScanner) -> None:
    # detect-secrets' JWT pattern ends lazily, before the signature.
    signature = JWT.rsplit(".", 1)[1]
    assert signature not in redact(JWT, scanner.scan(JWT))


def test_a_github_token_is_masked_whole_though_the_plugin_reports_its_prefix(
    scanner: SecretsScanner,
) -> None:
    (finding,) = [f for f in scanner.scan(f"t={GITHUB}") if f.kind == "github_token"]
    assert f"t={GITHUB}"[finding.start : finding.end] == GITHUB


def test_a_private_key_block_is_one_span_from_begin_to_end(scanner: SecretsScanner) -> None:
    text = f"key:\n{KEY_BLOCK}\nthanks"
    (finding,) = [f for f in scanner.scan(text) if f.kind == "private_key"]
    assert text[finding.start : finding.end] == KEY_BLOCK
    assert finding.score == 1.0


def test_a_truncated_private_key_is_masked_to_the_end(scanner: SecretsScanner) -> None:
    text = "here: -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE"
    assert redact(text, scanner.scan(text)) == "here: [redacted:private_key]"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('config: password = "correct horse battery staple"', "correct horse battery staple"),
        ("DB_PASSWORD=Tr0ub4dor&3", "Tr0ub4dor&3"),
        ('{"api_key": "q8Zr2LmN5vPs"}', "q8Zr2LmN5vPs"),
        ("client_secret: 9f8e7d6c5b4a3f2e1d0c", "9f8e7d6c5b4a3f2e1d0c"),
    ],
)
def test_credentials_in_assignments_are_found(
    scanner: SecretsScanner, text: str, value: str
) -> None:
    masked = redact(text, scanner.scan(text))
    assert value not in masked
    assert "[redacted:secret_keyword]" in masked


def test_credentials_in_urls_and_headers_are_found(scanner: SecretsScanner) -> None:
    url = "postgres://admin:Sup3rS3cret@db.internal:5432/app"
    assert redact(url, scanner.scan(url)) == (
        "postgres://admin:[redacted:basic_auth_credentials]@db.internal:5432/app"
    )
    header = "Authorization: Bearer mF_9.B5f-4.1JqM"
    assert "mF_9.B5f-4.1JqM" not in redact(header, scanner.scan(header))


@pytest.mark.parametrize(
    "text",
    [
        "Invoice 2024-0117: 1,250.00 EUR due on 12 March, order #88231, call 555-0100.",
        "def handler(event):\n    return {'status': 200, 'body': json.dumps(event)}\n",
        'password = "${DB_PASSWORD}"',
        "password: <your password here>",
        "Forgot your password? Reset it from the portal.",
        "Password: reset",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 fixes the key rotation job",
        "request id 123e4567-e89b-12d3-a456-426614174000 took 35 ms",
        "The secret to good bread is patience.",
        "See the API keys page in the console to create a key.",
    ],
)
def test_ordinary_text_has_no_secrets(scanner: SecretsScanner, text: str) -> None:
    assert scanner.scan(text) == []


def test_high_entropy_tokens_only_when_asked(scanner: SecretsScanner) -> None:
    text = "blob: Zx8Qp2Lm7Vt4Rk9Bn3Wc6Yh1Fd5Gs0Ja"
    assert scanner.scan(text) == []
    assert _kinds(SecretsScanner(entropy=True), text) == {"high_entropy_string"}


def test_keyword_rules_can_be_turned_off() -> None:
    assert SecretsScanner(keywords=False).scan('password = "correct horse"') == []


def test_secrets_are_found_at_any_depth_of_a_value(scanner: SecretsScanner) -> None:
    value = {"to": "ops", "body": {"lines": ["hi", f"token {GITHUB} ok"]}}
    found = scan_value([scanner], value)
    assert {f.path for f in found} == {"body/lines/1"}
    assert redact(value, found)["body"]["lines"][1] == "token [redacted:github_token] ok"


@pytest.mark.parametrize("secret", [GITHUB, AWS, STRIPE_LONG, SLACK, JWT])
def test_a_secret_split_across_sibling_strings_is_found_and_every_part_masked(
    scanner: SecretsScanner, secret: str
) -> None:
    half = len(secret) // 2
    value = {"to": "ops", "head": f"use {secret[:half]}", "tail": f"{secret[half:]} now"}
    masked = redact(value, scan_value([scanner], value))
    assert masked["to"] == "ops"
    assert masked["head"].startswith("use [redacted:")
    assert masked["tail"].startswith("[redacted:")
    assert masked["tail"].endswith(" now")
    for part in (masked["head"], masked["tail"]):
        assert secret[:half][-4:] not in part
        assert secret[half:][:4] not in part


def test_a_secret_split_across_list_items_is_masked_in_both(scanner: SecretsScanner) -> None:
    value = [1, GITHUB[:10], None, GITHUB[10:], "unrelated"]
    masked = redact(value, scan_value([scanner], value))
    assert masked == [1, "[redacted:github_token]", None, "[redacted:github_token]", "unrelated"]


def test_a_slack_webhook_url_is_found_whole(scanner: SecretsScanner) -> None:
    url = "https://hooks.slack.com/services/T0123ABCD/B0456EFGH/" + "abcdEFGHijklMNOPqrstUVWX"
    text = f"post the alert to {url} please"
    assert redact(text, scanner.scan(text)) == "post the alert to [redacted:slack_token] please"


def test_a_whole_secret_does_not_spill_into_the_next_sibling(scanner: SecretsScanner) -> None:
    value = {"token": GITHUB, "note": "hello", "other": "world"}
    assert redact(value, scan_value([scanner], value)) == {
        "token": "[redacted:github_token]",
        "note": "hello",
        "other": "world",
    }
