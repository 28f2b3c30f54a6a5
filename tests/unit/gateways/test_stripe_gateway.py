"""The Stripe gateway against the in-process double: wire format, answers, faults."""

from __future__ import annotations

import dataclasses

import pytest

from config.settings import Settings, load_settings
from dunning.errors import ConfigError, GatewayUnavailable, PermanentError
from dunning.gateways.base import ChargeRequest, ChargeResult, Decline, Gateway, VerifyResult
from dunning.gateways.stripe import DEFAULT_API_VERSION, StripeError, StripeGateway
from dunning.model import Initiator
from tests.stripe_double import Behaviour, StripeDouble


def req(token: str = "pm_card_visa", key: str = "inv_1:att_2", **kw: object) -> ChargeRequest:
    base = ChargeRequest(
        customer_id="cus_1",
        token=token,
        amount=1250,
        currency="EUR",
        idempotency_key=key,
        metadata={"invoice_id": "inv_1"},
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def test_is_a_gateway(gateway: StripeGateway) -> None:
    gw: Gateway = gateway
    assert gw.name == "stripe"


def test_charge_sends_an_off_session_form_with_auth_and_key(
    gateway: StripeGateway, double: StripeDouble
) -> None:
    result = gateway.charge(req())
    assert result == ChargeResult("succeeded", charge_id="pi_double000001")
    [seen] = double.posts("/v1/payment_intents")
    assert seen.headers["authorization"] == "Bearer sk_test_double"
    assert seen.headers["idempotency-key"] == "inv_1:att_2"
    assert seen.headers["content-type"] == "application/x-www-form-urlencoded"
    assert seen.form == {
        "amount": "1250",
        "currency": "eur",
        "customer": "cus_1",
        "payment_method": "pm_card_visa",
        "confirm": "true",
        "automatic_payment_methods[enabled]": "true",
        "automatic_payment_methods[allow_redirects]": "never",
        "off_session": "true",
        "metadata[invoice_id]": "inv_1",
        "metadata[idempotency_key]": "inv_1:att_2",
    }


def test_customer_initiated_charge_is_not_off_session(
    gateway: StripeGateway, double: StripeDouble
) -> None:
    gateway.charge(req(initiator=Initiator.customer))
    assert "off_session" not in double.posts("/v1/payment_intents")[0].form


def test_same_key_replays_the_first_answer_and_charges_once(
    gateway: StripeGateway, double: StripeDouble
) -> None:
    first = gateway.charge(req())
    again = gateway.charge(req())
    assert first == again
    assert len(double.intents) == 1
    assert [s.replayed for s in double.posts("/v1/payment_intents")] == [False, True]


@pytest.mark.parametrize(
    ("token", "decline"),
    [
        ("pm_card_chargeDeclinedInsufficientFunds", Decline("insufficient_funds", "51")),
        ("pm_card_chargeDeclinedLostCard", Decline("lost_card", "41")),
        ("pm_card_chargeDeclinedExpiredCard", Decline("expired_card", "54")),
        ("pm_card_authenticationRequired", Decline("authentication_required")),
    ],
)
def test_card_errors_are_declines_with_stripe_codes(
    gateway: StripeGateway, token: str, decline: Decline
) -> None:
    result = gateway.charge(req(token))
    assert result.status == "declined"
    assert result.decline == decline
    assert result.charge_id == "pi_double000001"


def test_advice_and_network_advice_codes_are_kept(
    gateway: StripeGateway, double: StripeDouble
) -> None:
    double.behaviours["pm_card_mac02"] = Behaviour(
        "card_declined", "do_not_honor", "05", "try_again_later", "02"
    )
    result = gateway.charge(req("pm_card_mac02"))
    assert result.decline == Decline("do_not_honor", "05", "try_again_later", "02")


def test_customer_present_3ds_is_a_decline_needing_authentication(gateway: StripeGateway) -> None:
    result = gateway.charge(req("pm_card_authenticationRequired", initiator=Initiator.customer))
    assert result.decline == Decline("authentication_required")


@pytest.mark.parametrize("fault", ["timeout", "connect", "500", "429"])
def test_no_answer_is_unavailable_not_a_decline(
    gateway: StripeGateway, double: StripeDouble, fault: str
) -> None:
    double.fail_next(fault)
    with pytest.raises(GatewayUnavailable):
        gateway.charge(req())
    assert double.intents == []


def test_lost_answer_is_settled_by_lookup_not_by_a_new_create(
    gateway: StripeGateway, double: StripeDouble
) -> None:
    double.fail_next("timeout_after")
    with pytest.raises(GatewayUnavailable, match="timed out"):
        gateway.charge(req(key="inv_1:att_3"))
    creates = len(double.posts("/v1/payment_intents"))
    found = gateway.lookup("inv_1:att_3", customer_id="cus_1")
    assert found == ChargeResult("succeeded", charge_id="pi_double000001")
    assert len(double.posts("/v1/payment_intents")) == creates  # lookup never creates


def test_lookup_of_a_charge_never_made_is_none(
    gateway: StripeGateway, double: StripeDouble
) -> None:
    double.fail_next("timeout")
    with pytest.raises(GatewayUnavailable):
        gateway.charge(req(key="inv_1:att_4"))
    assert gateway.lookup("inv_1:att_4", customer_id="cus_1") is None


def test_lookup_follows_pagination(gateway: StripeGateway, double: StripeDouble) -> None:
    gateway.charge(req("pm_card_chargeDeclinedInsufficientFunds", key="oldest"))
    for i in range(230):
        gateway.charge(req(key=f"k{i}"))
    found = gateway.lookup("oldest", customer_id="cus_1")
    assert found is not None
    assert found.decline == Decline("insufficient_funds", "51")
    gets = [s for s in double.seen if s.method == "GET"]
    assert [g.query.get("starting_after") for g in gets] == [
        None,
        "pi_double000132",
        "pi_double000032",
    ]
    assert all(g.query["customer"] == "cus_1" and g.query["limit"] == "100" for g in gets)


def test_lookup_only_searches_that_customer(gateway: StripeGateway) -> None:
    gateway.charge(req(key="mine"))
    assert gateway.lookup("mine", customer_id="cus_other") is None


def test_lookup_during_an_outage_is_unavailable(
    gateway: StripeGateway, double: StripeDouble
) -> None:
    double.fail_next("500")
    with pytest.raises(GatewayUnavailable):
        gateway.lookup("x", customer_id="cus_1")


def test_bad_request_is_permanent_with_stripes_message(gateway: StripeGateway) -> None:
    with pytest.raises(StripeError) as info:
        gateway.charge(req("pm_does_not_exist"))
    assert isinstance(info.value, PermanentError)
    assert info.value.status == 400
    assert info.value.code == "resource_missing"
    assert "No such PaymentMethod" in str(info.value)


def test_bad_api_key_is_permanent_and_says_what_to_fix(double: StripeDouble) -> None:
    gw = StripeGateway(
        "sk_wrong", api_base="https://stripe.test", timeout_s=1, transport=double.transport()
    )
    try:
        with pytest.raises(StripeError, match="DUNNING_STRIPE__API_KEY"):
            gw.charge(req())
    finally:
        gw.close()


def test_error_messages_never_carry_a_card_number(
    gateway: StripeGateway, double: StripeDouble
) -> None:
    with pytest.raises(StripeError) as info:
        gateway.charge(req("4242424242424242"))
    assert "4242424242424242" not in str(info.value)
    assert "****4242" in str(info.value)


def test_verify(gateway: StripeGateway, double: StripeDouble) -> None:
    assert gateway.verify("pm_card_visa", customer_id="cus_1", currency="EUR") == VerifyResult(
        ok=True
    )
    needs = gateway.verify("pm_card_authenticationRequired", customer_id="cus_1", currency="EUR")
    assert needs.requires_action
    assert not needs.ok
    refused = gateway.verify(
        "pm_card_chargeDeclinedStolenCard", customer_id="cus_1", currency="EUR"
    )
    assert refused == VerifyResult(ok=False, decline=Decline("stolen_card", "43"))
    forms = [s.form for s in double.posts("/v1/setup_intents")]
    assert forms[0]["usage"] == "off_session"
    assert forms[0]["confirm"] == "true"
    assert forms[0]["customer"] == "cus_1"
    assert forms[0]["payment_method"] == "pm_card_visa"
    keys = {s.headers["idempotency-key"] for s in double.posts("/v1/setup_intents")}
    assert len(keys) == 3


def test_delete_token_twice_is_not_an_error(gateway: StripeGateway, double: StripeDouble) -> None:
    gateway.delete_token("pm_card_visa")
    gateway.delete_token("pm_card_visa")
    assert double.detached == {"pm_card_visa"}
    assert len(double.posts("/v1/payment_methods/pm_card_visa/detach")) == 2


def test_delete_token_escapes_the_path(gateway: StripeGateway, double: StripeDouble) -> None:
    gateway.delete_token("pm_x/../../v1/customers")
    assert double.seen[-1].path == "/v1/payment_methods/pm_x%2F..%2F..%2Fv1%2Fcustomers/detach"


def test_pay_invoice(gateway: StripeGateway, double: StripeDouble) -> None:
    double.add_invoice("in_1", customer="cus_1", amount=1900, currency="eur")
    result = gateway.pay_invoice(
        "in_1", payment_method="pm_card_visa", idempotency_key="in_1:att_1"
    )
    assert result.succeeded
    assert result.charge_id
    [seen] = double.posts("/v1/invoices/in_1/pay")
    assert seen.form == {"off_session": "true", "payment_method": "pm_card_visa"}
    assert seen.headers["idempotency-key"] == "in_1:att_1"


def test_pay_invoice_declines(gateway: StripeGateway, double: StripeDouble) -> None:
    double.add_invoice("in_2", customer="cus_1", amount=1900, currency="eur")
    declined = gateway.pay_invoice(
        "in_2", payment_method="pm_card_chargeDeclined", idempotency_key="a"
    )
    assert declined.decline == Decline("generic_decline", "05")
    action = gateway.pay_invoice(
        "in_2", payment_method="pm_card_authenticationRequired", idempotency_key="b"
    )
    assert action.decline == Decline("authentication_required")
    with pytest.raises(StripeError, match="resource_missing"):
        gateway.pay_invoice("in_missing", payment_method=None, idempotency_key="c")


def test_from_settings(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="DUNNING_STRIPE__API_KEY"):
        StripeGateway.from_settings(settings)
    configured = load_settings(
        stripe={"api_key": "sk_test_x", "api_base": "http://127.0.0.1:1"},
        timing={"gateway_timeout_s": 0.5},
    )
    gw = StripeGateway.from_settings(configured)
    try:
        with pytest.raises(GatewayUnavailable):  # nothing listens on port 1
            gw.charge(req())
    finally:
        gw.close()


def test_the_api_version_is_a_setting_sent_on_every_request(double: StripeDouble) -> None:
    configured = load_settings(stripe={"api_key": double.api_key, "api_version": "2024-06-20"})
    assert load_settings().stripe.api_version == DEFAULT_API_VERSION
    gw = StripeGateway.from_settings(configured)
    gw.http._transport = double.transport()  # the settings' gateway, on the double
    try:
        gw.charge(req())
        gw.delete_token("pm_card_visa")
    finally:
        gw.close()
    assert [s.headers["stripe-version"] for s in double.seen] == ["2024-06-20"] * 2
    with pytest.raises(ConfigError, match="DUNNING_STRIPE__API_VERSION"):
        load_settings(stripe={"api_version": "latest"})


def test_a_stripe_invoice_is_paid_through_the_invoice(
    gateway: StripeGateway, double: StripeDouble
) -> None:
    double.add_invoice("in_7", customer="cus_1", amount=1250, currency="eur")
    result = gateway.charge(req(invoice_ref="in_7", initiator=Initiator.customer))
    assert result.succeeded
    assert result.charge_id == double.invoices["in_7"]["payment_intent"]
    [seen] = double.posts("/v1/invoices/in_7/pay")
    assert seen.headers["idempotency-key"] == "inv_1:att_2"
    assert seen.form == {"off_session": "false", "payment_method": "pm_card_visa"}
    assert double.posts("/v1/payment_intents") == []
    assert double.invoices["in_7"]["status"] == "paid"
    # the same key again replays Stripe's first answer
    assert gateway.charge(req(invoice_ref="in_7", initiator=Initiator.customer)) == result


def test_a_lost_invoice_payment_is_settled_by_reading_the_invoice(
    gateway: StripeGateway, double: StripeDouble
) -> None:
    double.add_invoice("in_8", customer="cus_1", amount=1250, currency="eur")
    double.add_invoice("in_9", customer="cus_1", amount=1250, currency="eur")
    double.fail_next("timeout_after", "timeout")
    with pytest.raises(GatewayUnavailable):
        gateway.charge(req(invoice_ref="in_8", key="k8"))
    with pytest.raises(GatewayUnavailable):
        gateway.charge(req(invoice_ref="in_9", key="k9"))
    paid = gateway.lookup("k8", customer_id="cus_1", invoice_ref="in_8")
    assert paid == ChargeResult("succeeded", double.invoices["in_8"]["payment_intent"])
    assert gateway.lookup("k9", customer_id="cus_1", invoice_ref="in_9") is None
    assert len(double.posts("/v1/invoices/in_8/pay")) == 1  # looking up never pays
