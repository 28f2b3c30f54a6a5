"""Webhook signatures: the published test vectors, rotation, and every way to be refused."""

from __future__ import annotations

import pytest

from dunning.errors import ConfigError, PermanentError
from dunning.webhooks.signatures import (
    SignatureError,
    sign_quickpay,
    sign_standard,
    sign_stripe,
    standard_headers,
    verify_quickpay,
    verify_standard,
    verify_stripe,
)

# The test vectors of docs/webhooks.md §1, §2 and §4.
STRIPE_SECRET = "whsec_test_secret"
STRIPE_T = 1700000000
STRIPE_BODY = b'{"id":"evt_test","object":"event","type":"invoice.payment_failed"}'
STRIPE_V1 = "94a0f1dc73e61626ea0def33f249a0f1cb761910f2d1dcb7ad664037dfa01d08"
QP_KEY = "qp_private_key_test"
QP_BODY = (
    b'{"id":7,"order_id":"Order7","accepted":true,"operations":[{"id":1,"type":"authorize",'
    b'"amount":123,"pending":false,"qp_status_code":"20000","qp_status_msg":"Approved",'
    b'"aq_status_code":"000","aq_status_msg":"Approved"}]}'
)
QP_SUM = "1d262a180b1a2751d1d42153fc389b8445063d14fbe78574ff34539a9ef9a111"
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_T = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def stripe_ok(
    header: str | None, body: bytes = STRIPE_BODY, secrets: list[str] | None = None
) -> int:
    return verify_stripe(
        body,
        header,
        [STRIPE_SECRET] if secrets is None else secrets,
        now_s=STRIPE_T + 10,
        tolerance_s=300,
    )


def refused(reason: str) -> pytest.RaisesExc[SignatureError]:
    return pytest.raises(SignatureError, match=f"^bad webhook signature: {reason}$")


# -- Stripe ------------------------------------------------------------------------------------


def test_stripe_test_vector_signs_and_verifies() -> None:
    header = sign_stripe(STRIPE_BODY, STRIPE_SECRET, STRIPE_T)
    assert header == f"t={STRIPE_T},v1={STRIPE_V1}"
    assert stripe_ok(header) == STRIPE_T


def test_stripe_any_v1_of_any_secret_passes_during_rotation() -> None:
    header = f"t={STRIPE_T},v1={'0' * 64},v1={STRIPE_V1},v0=ignored"
    assert stripe_ok(header, secrets=["whsec_old_one", STRIPE_SECRET]) == STRIPE_T


def test_stripe_one_changed_body_byte_is_refused() -> None:
    header = f"t={STRIPE_T},v1={STRIPE_V1}"
    tampered = STRIPE_BODY.replace(b"evt_test", b"evt_tesu")
    with refused("signature mismatch"):
        stripe_ok(header, body=tampered)


def test_stripe_reserialised_json_is_refused() -> None:
    header = f"t={STRIPE_T},v1={STRIPE_V1}"
    with refused("signature mismatch"):
        stripe_ok(header, body=STRIPE_BODY.replace(b",", b", "))


def test_stripe_wrong_key_is_refused() -> None:
    with refused("signature mismatch"):
        stripe_ok(sign_stripe(STRIPE_BODY, "whsec_someone_else", STRIPE_T))


@pytest.mark.parametrize("now_s", [STRIPE_T + 301, STRIPE_T - 301])
def test_stripe_timestamp_outside_tolerance_is_stale(now_s: int) -> None:
    header = sign_stripe(STRIPE_BODY, STRIPE_SECRET, STRIPE_T)
    with refused("stale timestamp"):
        verify_stripe(STRIPE_BODY, header, [STRIPE_SECRET], now_s=now_s, tolerance_s=300)


def test_stripe_timestamp_at_the_tolerance_edge_passes() -> None:
    header = sign_stripe(STRIPE_BODY, STRIPE_SECRET, STRIPE_T)
    got = verify_stripe(STRIPE_BODY, header, [STRIPE_SECRET], now_s=STRIPE_T + 300, tolerance_s=300)
    assert got == STRIPE_T


def test_stripe_missing_v1_is_refused() -> None:
    with refused("no v1 signature"):
        stripe_ok(f"t={STRIPE_T},v0={STRIPE_V1}")


@pytest.mark.parametrize("header", [None, "", "   "])
def test_stripe_missing_header(header: str | None) -> None:
    with refused("missing header"):
        stripe_ok(header)


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        f"v1={STRIPE_V1}",  # no t
        f"t=abc,v1={STRIPE_V1}",
        f"t=1,t=2,v1={STRIPE_V1}",
        f"t=-5,v1={STRIPE_V1}",
        f"t={'9' * 40},v1={STRIPE_V1}",
        f"t={STRIPE_T},v1={STRIPE_V1},",
    ],
)
def test_stripe_malformed_header(header: str) -> None:
    with refused("malformed header"):
        stripe_ok(header)


def test_stripe_non_ascii_signature_is_a_mismatch_not_a_crash() -> None:
    with refused("signature mismatch"):
        stripe_ok(f"t={STRIPE_T},v1=é{STRIPE_V1[1:]}")


@pytest.mark.parametrize("secrets", [[], [""]])
def test_stripe_without_a_secret_refuses_everything(secrets: list[str]) -> None:
    with refused("no secret configured"):
        stripe_ok(f"t={STRIPE_T},v1={STRIPE_V1}", secrets=secrets)


def test_signature_error_is_permanent_and_keeps_the_reason_only() -> None:
    with pytest.raises(PermanentError) as info:
        stripe_ok(sign_stripe(STRIPE_BODY, "whsec_x", STRIPE_T))
    assert isinstance(info.value, SignatureError)
    assert info.value.reason == "signature mismatch"
    assert STRIPE_V1 not in str(info.value)
    assert STRIPE_SECRET not in str(info.value)


# -- Quickpay ----------------------------------------------------------------------------------


def test_quickpay_test_vector() -> None:
    assert sign_quickpay(QP_BODY, QP_KEY) == QP_SUM
    verify_quickpay(QP_BODY, QP_SUM, QP_KEY)
    verify_quickpay(QP_BODY, QP_SUM.upper() + "\n", QP_KEY)  # case and stray whitespace


def test_quickpay_refusals() -> None:
    with refused("signature mismatch"):
        verify_quickpay(QP_BODY.replace(b"123", b"124"), QP_SUM, QP_KEY)
    with refused("signature mismatch"):
        verify_quickpay(QP_BODY, QP_SUM, "another_private_key")
    with refused("missing header"):
        verify_quickpay(QP_BODY, None, QP_KEY)
    with refused("malformed header"):
        verify_quickpay(QP_BODY, QP_SUM[:-1] + "z", QP_KEY)
    with refused("no secret configured"):
        verify_quickpay(QP_BODY, QP_SUM, "")


# -- Standard Webhooks -------------------------------------------------------------------------


def test_standard_test_vector() -> None:
    assert sign_standard(SW_SECRET, SW_ID, SW_T, SW_BODY) == SW_SIG
    assert verify_standard(SW_SECRET, SW_ID, str(SW_T), SW_BODY, SW_SIG, now_s=SW_T + 1) == SW_T


def test_standard_headers_verify_with_several_signatures() -> None:
    headers = standard_headers(SW_SECRET, SW_ID, SW_T, SW_BODY)
    assert headers["webhook-id"] == SW_ID
    assert headers["webhook-timestamp"] == str(SW_T)
    rotating = "v1,bm90IHRoZSBvbmU= " + headers["webhook-signature"]
    assert verify_standard(SW_SECRET, SW_ID, SW_T, SW_BODY, rotating, now_s=SW_T) == SW_T


def test_standard_refusals() -> None:
    with refused("signature mismatch"):
        verify_standard(SW_SECRET, SW_ID, SW_T, SW_BODY + b" ", SW_SIG, now_s=SW_T)
    with refused("signature mismatch"):
        verify_standard(SW_SECRET, "msg_other", SW_T, SW_BODY, SW_SIG, now_s=SW_T)
    with refused("signature mismatch"):
        verify_standard("whsec_" + "QUFBQQ==", SW_ID, SW_T, SW_BODY, SW_SIG, now_s=SW_T)
    with refused("stale timestamp"):
        verify_standard(SW_SECRET, SW_ID, SW_T, SW_BODY, SW_SIG, now_s=SW_T + 301)
    with refused("no v1 signature"):
        verify_standard(SW_SECRET, SW_ID, SW_T, SW_BODY, "v2,abc", now_s=SW_T)
    with refused("missing header"):
        verify_standard(SW_SECRET, None, SW_T, SW_BODY, SW_SIG, now_s=SW_T)
    with refused("malformed header"):
        verify_standard(SW_SECRET, SW_ID, "16142653e3", SW_BODY, SW_SIG, now_s=SW_T)


def test_standard_secret_that_is_not_base64_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="whsec_"):
        sign_standard("whsec_not base64!", SW_ID, SW_T, SW_BODY)
