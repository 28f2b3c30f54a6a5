"""Signed card-update links: bound to customer, purpose and generation; expiring; tamper-proof."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import SecretStr

from dunning.errors import PermanentError
from dunning.links import (
    LinkClaims,
    LinkInvalid,
    LinkPurpose,
    fingerprint,
    hide_tokens,
    link_ref,
    make_link_token,
    update_url,
    url_from_ref,
    verify_link_token,
)

SECRET = SecretStr("s3cret-for-tests")
NOW = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(days=45)


def token(**changes: object) -> str:
    kwargs: dict[str, object] = {
        "customer_id": "cus_1",
        "purpose": "update_card",
        "generation": 3,
        "expires_at": EXPIRES,
    }
    kwargs.update(changes)
    return make_link_token(SECRET, **kwargs)  # type: ignore[arg-type]


def test_token_verifies_to_its_customer_purpose_and_generation() -> None:
    claims = verify_link_token(SECRET, token(), now=NOW)
    assert claims == LinkClaims("cus_1", LinkPurpose.update_card, 3, EXPIRES)
    assert claims.customer_id != "cus_2"
    other = verify_link_token(SECRET, token(customer_id="cus_2", purpose="reactivate"), now=NOW)
    assert (other.customer_id, other.purpose) == ("cus_2", LinkPurpose.reactivate)


def test_secret_may_be_secretstr_str_or_bytes() -> None:
    t = make_link_token(
        "k", customer_id="c", purpose=LinkPurpose.reactivate, generation=0, expires_at=EXPIRES
    )
    assert verify_link_token(b"k", t, now=NOW).customer_id == "c"
    assert verify_link_token(SecretStr("k"), t, now=NOW).generation == 0


def test_another_secret_is_refused_as_tampered() -> None:
    with pytest.raises(LinkInvalid) as info:
        verify_link_token(SecretStr("other"), token(), now=NOW)
    assert info.value.reason == "tampered"
    assert isinstance(info.value, PermanentError)


def _swap_payload(t: str, payload: bytes) -> str:
    mac = t.split(".")[1]
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode() + "." + mac


def test_changing_the_customer_breaks_the_signature() -> None:
    t = token()
    body = base64.urlsafe_b64decode(t.split(".")[0] + "==")
    forged = _swap_payload(t, body.replace(b"cus_1", b"cus_2"))
    with pytest.raises(LinkInvalid) as info:
        verify_link_token(SECRET, forged, now=NOW)
    assert info.value.reason == "tampered"


@pytest.mark.parametrize("position", [0, 5, -1, -5])
def test_flipping_any_character_is_refused(position: int) -> None:
    t = token()
    ch = t[position]
    flipped = (
        t[:position] + ("A" if ch != "A" else "B") + (t[position + 1 :] if position != -1 else "")
    )
    with pytest.raises(LinkInvalid) as info:
        verify_link_token(SECRET, flipped, now=NOW)
    assert info.value.reason in ("tampered", "malformed")


def test_expired_link_is_refused_at_the_expiry_instant() -> None:
    t = token()
    assert verify_link_token(SECRET, t, now=EXPIRES - timedelta(seconds=1))
    for now in (EXPIRES, EXPIRES + timedelta(days=1)):
        with pytest.raises(LinkInvalid) as info:
            verify_link_token(SECRET, t, now=now)
        assert info.value.reason == "expired"


def test_older_generation_is_not_current() -> None:
    claims = verify_link_token(SECRET, token(generation=3), now=NOW)
    assert claims.is_current(3)
    assert not claims.is_current(4)  # the card changed after the link went out


@pytest.mark.parametrize(
    "bad", ["", "nodot", ".", "abc.", ".abc", "a b.c", "abc.d*f", "ab=c.def", "x" * 600 + ".y"]
)
def test_garbage_is_malformed(bad: str) -> None:
    with pytest.raises(LinkInvalid) as info:
        verify_link_token(SECRET, bad, now=NOW)
    assert info.value.reason == "malformed"


def test_signed_but_unparsable_payload_is_malformed() -> None:
    import hashlib
    import hmac

    payload = b"v9|u|1|1|cus_1"
    mac = hmac.new(b"s3cret-for-tests", b"dunning-link:" + payload, hashlib.sha256).digest()
    enc = base64.urlsafe_b64encode
    t = enc(payload).rstrip(b"=").decode() + "." + enc(mac).rstrip(b"=").decode()
    with pytest.raises(LinkInvalid) as info:
        verify_link_token(SECRET, t, now=NOW)
    assert info.value.reason == "malformed"


def test_token_is_url_safe_short_and_expiry_keeps_the_instant() -> None:
    t = token(customer_id="c" * 64, generation=2**31)
    assert len(t) < 200
    assert set(t) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    cet = timezone(timedelta(hours=1))
    claims = verify_link_token(SECRET, token(expires_at=EXPIRES.astimezone(cet)), now=NOW)
    assert claims.expires_at == EXPIRES


def test_bad_inputs_are_refused_when_signing() -> None:
    with pytest.raises(ValueError, match="not a valid LinkPurpose"):
        token(purpose="delete_account")
    with pytest.raises(ValueError, match="customer id must be 1-64 bytes"):
        token(customer_id="c" * 65)
    with pytest.raises(ValueError, match="expires_at must be timezone-aware"):
        token(expires_at=datetime(2025, 4, 1))
    with pytest.raises(ValueError, match="the link secret is empty"):
        make_link_token(
            "", customer_id="c", purpose="update_card", generation=1, expires_at=EXPIRES
        )
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        verify_link_token(SECRET, token(), now=datetime(2025, 3, 4))


def test_update_url_joins_base_and_token() -> None:
    assert (
        update_url("https://pay.example.com/", "abc.def")
        == "https://pay.example.com/update/abc.def"
    )
    assert update_url("http://127.0.0.1:8000", "t") == "http://127.0.0.1:8000/update/t"


def test_a_link_ref_rebuilds_the_very_link_and_holds_no_token() -> None:
    ref = link_ref("update_card", 3, EXPIRES)
    assert token() not in repr(ref)
    assert url_from_ref(SECRET, "https://pay.test", "cus_1", ref) == update_url(
        "https://pay.test", token()
    )


def test_tokens_are_replaced_by_their_fingerprints_in_text() -> None:
    t = token()
    line = f'127.0.0.1:5 - "POST /update/{t}/done?outcome=paid HTTP/1.1" 303 see {t}.'
    hidden = hide_tokens(line)
    assert t not in hidden
    assert t.split(".")[1] not in hidden
    assert f"/update/[link {fingerprint(t)}]/done?outcome=paid" in hidden
    assert hidden.endswith(f"see [link {fingerprint(t)}].")
    assert hide_tokens(hidden) == hidden  # once is enough: a second pass changes nothing
    assert (
        hide_tokens("GET /update/not-a-token") == f"GET /update/[link {fingerprint('not-a-token')}]"
    )
    plain = "charge ch_123.ok for invoice in_1, version 1.2.3"
    assert hide_tokens(plain) == plain
