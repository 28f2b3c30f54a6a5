"""The web service's small parts: rate windows, CSRF tokens, the challenge seal, the texts."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from dunning.gateways.base import CardToken
from dunning.gateways.sandbox import CardRefused, SandboxGateway
from dunning.web import challenge, csrf
from dunning.web.i18n import LOCALES, TEXTS_DIR, texts
from dunning.web.ratelimit import AttemptLimits

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SECRET = SecretStr("s3cret")
CARD = CardToken("sbx_authentication_required_abc123", "visa", "3155", 12, 2030)
ROOT = Path(__file__).resolve().parents[3]
EMAIL_TEMPLATES = ROOT / "templates" / "email"


def test_attempt_limits_slide_and_count_only_allowed_attempts() -> None:
    limits = AttemptLimits(per_link=2, per_address=3, window=timedelta(minutes=10))

    first = [limits.allow("cus_1", "1.2.3.4", NOW + timedelta(minutes=i)) for i in range(3)]
    other_link = limits.allow("cus_2", "1.2.3.4", NOW + timedelta(minutes=3))
    other_address_full_link = limits.allow("cus_1", "5.6.7.8", NOW + timedelta(minutes=4))
    after_window = limits.allow("cus_1", "5.6.7.8", NOW + timedelta(minutes=10, seconds=1))

    assert first == [True, True, False]
    assert other_link is True  # the address has room for a third attempt
    assert other_address_full_link is False
    assert after_window is True  # the first attempt left the window


def test_csrf_token_is_bound_to_its_link() -> None:
    value = csrf.new_token(SECRET, "link-a")

    assert csrf.check(SECRET, "link-a", value, value)
    assert not csrf.check(SECRET, "link-b", value, value)
    assert not csrf.check(SecretStr("other"), "link-a", value, value)
    assert not csrf.check(SECRET, "link-a", None, value)
    assert not csrf.check(SECRET, "link-a", value, csrf.new_token(SECRET, "link-a"))
    assert not csrf.check(SECRET, "link-a", "\ud800", "\ud800")


def test_challenge_seal_round_trips_and_refuses_forgery_and_age() -> None:
    sealed = challenge.seal(SECRET, "link-a", CARD, remove_old=True, now=NOW)

    assert challenge.unseal(SECRET, "link-a", sealed, NOW + timedelta(minutes=5)) == (
        CARD,
        True,
        None,
    )
    with_intent = challenge.seal(SECRET, "link-a", CARD, remove_old=False, now=NOW, intent="seti_1")
    assert challenge.unseal(SECRET, "link-a", with_intent, NOW) == (CARD, False, "seti_1")
    with pytest.raises(ValueError, match="not valid"):
        challenge.unseal(SECRET, "link-b", sealed, NOW)
    with pytest.raises(ValueError, match="not valid"):
        challenge.unseal(SECRET, "link-a", "x" + sealed, NOW)
    with pytest.raises(ValueError, match="expired"):
        challenge.unseal(SECRET, "link-a", sealed, NOW + timedelta(minutes=16))


def test_sandbox_challenge_turns_a_3ds_card_into_a_verifiable_one() -> None:
    gateway = SandboxGateway()

    done = gateway.complete_challenge(CARD)

    assert done == CardToken("sbx_ok_abc123", "visa", "3155", 12, 2030)
    assert gateway.verify(CARD.token, customer_id="c", currency="EUR").requires_action
    assert gateway.verify(done.token, customer_id="c", currency="EUR").ok
    with pytest.raises(CardRefused):
        gateway.complete_challenge(done)


def test_the_card_page_speaks_every_language_the_emails_do() -> None:
    emails = {path.name.split(".")[1] for path in EMAIL_TEMPLATES.glob("phrases.*.txt")}
    assert set(LOCALES) == emails == {path.stem for path in TEXTS_DIR.glob("*.toml")}


@pytest.mark.parametrize("code", [code for code in LOCALES if code != "en"])
def test_every_language_has_the_english_keys_and_placeholders(code: str) -> None:
    english, other = texts("en"), texts(code)
    assert other.keys() == english.keys()
    for key in english:
        assert sorted(_fields(english[key])) == sorted(_fields(other[key])), (code, key)
        assert other[key].strip(), (code, key)


def test_the_texts_install_with_the_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["dunning"]
    assert "web/texts/*.toml" in data


def _fields(text: str) -> list[str]:
    import string

    return [name for _, name, _, _ in string.Formatter().parse(text) if name]
