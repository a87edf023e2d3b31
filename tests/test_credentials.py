"""Credential cleaning, masking and format hints."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdpio_cli.credentials import clean, format_hint, mask, redact, register_secret

KEY = "c0ffee0000000000000b"


@pytest.mark.parametrize(
    "raw, fix",
    [
        (KEY + "\n", "removed a trailing newline"),
        (KEY + "\r\n", "removed a trailing carriage return and a newline"),
        ("  " + KEY, "removed 2 leading spaces"),
        (KEY + "\u00a0", "removed a trailing non-breaking space"),
        ("\u200b" + KEY, "removed 1 invisible character (zero-width space)"),
        ('"' + KEY + '"', "removed wrapping double quotes"),
        ("'" + KEY + "'", "removed wrapping single quotes"),
        ("\t" + KEY, "removed a leading tab"),
    ],
)
def test_clean_strips_and_says_what(raw, fix):
    result = clean(raw)
    assert result.value == KEY
    assert fix in result.fixes
    assert all(KEY not in f for f in result.fixes)


def test_clean_nested_quotes_and_whitespace():
    result = clean(' "' + KEY + '" \n')
    assert result.value == KEY
    assert len(result.fixes) == 3


def test_clean_leaves_a_clean_key_alone():
    result = clean(KEY)
    assert result.value == KEY and not result.fixes and not result.problems


def test_inner_whitespace_is_reported_not_removed():
    result = clean("abc def")
    assert result.value == "abc def" and result.problems


@given(st.text())
def test_clean_never_leaks_the_value_into_its_report(raw):
    result = clean(raw)
    for text in result.fixes + result.problems:
        if len(result.value) >= 4:
            assert result.value not in text


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1))
def test_clean_is_idempotent(raw):
    once = clean(raw).value
    assert clean(once).value == once


def test_mask_shows_at_most_length_and_last_four():
    assert mask(KEY) == "[20 chars, ends 000b]"
    assert mask("short") == "[5 chars]"
    assert mask("") == "[empty]"
    assert KEY[:-4] not in mask(KEY)


def test_redact_hides_registered_secrets():
    secret = "sk_live_abcdefghijklmnop"
    register_secret(secret)
    assert secret not in redact(f"error with {secret} inside")


@pytest.mark.parametrize(
    "field, value, ok",
    [
        ("customerio.site_id", KEY, True),
        ("customerio.site_id", "c0ffee", False),
        ("customerio.track_api_key", "c0ffee0000000000000000000000000c", False),
        ("customerio.app_api_key", "c0ffee0000000000000000000000000c", True),
        ("customerio.app_api_key", KEY, False),
        ("customerio.pipelines_api_key", "pk_eu_abcdef123456", True),
        ("segment.write_key", "abcdefghijklmnopqrstuvwxyz012345", True),
        ("segment.write_key", "abc-123", False),
        ("segment.public_api_token", "sgp_abc", True),
    ],
)
def test_format_hints(field, value, ok):
    assert format_hint(field, value).ok is ok


def test_pipelines_key_reveals_region():
    assert format_hint("customerio.pipelines_api_key", "sk_eu_abcdef123456").region == "eu"


def test_base64_forms_of_every_credential_pair_are_redacted():
    import base64

    from cdpio_cli import credentials

    site, key = "5ec2e7a1b2c3d4e5f6a7", "5ec2e7f0e1d2c3b4a596"
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    forms = [
        b64(f"{site}:{key}"),
        b64(f"{key}:"),
        b64(f"{key}:").rstrip("="),
        b64(f":{key}"),
        base64.urlsafe_b64encode(f"{site}:{key}".encode()).decode().rstrip("="),
    ]
    credentials.register_secret(site, key)
    try:
        text = credentials.redact("echo " + " | ".join(forms))
    finally:
        credentials.forget_secrets()
    for form in forms:
        assert form[:-4] not in text, (form, text)
