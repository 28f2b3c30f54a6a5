"""The sandbox gateway: tokens that say how they behave, one ledger entry per key."""

from __future__ import annotations

import dataclasses

import pytest

from dunning.errors import GatewayUnavailable
from dunning.gateways.base import ChargeRequest
from dunning.gateways.cards import luhn_ok, mask_pans
from dunning.gateways.ledger import SqlLedger
from dunning.gateways.sandbox import CardRefused, SandboxGateway, behaviour_of
from dunning.store.engine import make_engine
from dunning.store.migrate import upgrade


def req(token: str, key: str = "inv_in_1_att_2") -> ChargeRequest:
    return ChargeRequest(
        customer_id="cus_1", token=token, amount=1250, currency="EUR", idempotency_key=key
    )


@pytest.mark.parametrize(
    ("token", "behaviour"),
    [
        ("sbx_ok_1", "ok"),
        ("sbx_insufficient_funds_7f3a", "insufficient_funds"),
        ("sbx_timeout_a1", "timeout"),
        ("tok_other", "ok"),
    ],
)
def test_token_behaviour(token: str, behaviour: str) -> None:
    assert behaviour_of(token) == behaviour


def test_decline_token_carries_network_code() -> None:
    result = SandboxGateway().charge(req("sbx_insufficient_funds_7f3a"))
    assert result.status == "declined"
    assert result.decline is not None
    assert (result.decline.decline_code, result.decline.network_code) == (
        "insufficient_funds",
        "51",
    )


def test_same_key_same_result_one_entry() -> None:
    gw = SandboxGateway()
    gw.script("sbx_ok_x", [{"decline_code": "generic_decline"}, "succeeded"])
    first = gw.charge(req("sbx_ok_x"))
    again = gw.charge(req("sbx_ok_x"))
    assert first == again
    assert first.status == "declined"
    assert len(gw.ledger.entries()) == 1
    assert gw.charge(req("sbx_ok_x", key="inv_in_1_att_3")).succeeded
    assert len(gw.ledger.entries()) == 2


def test_script_last_outcome_repeats() -> None:
    gw = SandboxGateway()
    gw.script("sbx_ok_y", ["succeeded", {"decline_code": "do_not_honor"}])
    results = [gw.charge(req("sbx_ok_y", key=f"k{i}")).status for i in range(4)]
    assert results == ["succeeded", "declined", "declined", "declined"]


def test_timeout_without_charge_is_not_found_by_lookup() -> None:
    gw = SandboxGateway()
    with pytest.raises(GatewayUnavailable):
        gw.charge(req("sbx_timeout_1"))
    assert gw.lookup("inv_in_1_att_2", customer_id="cus_1") is None
    assert gw.ledger.entries() == []


def test_timeout_after_charge_is_found_by_lookup() -> None:
    gw = SandboxGateway()
    gw.script("sbx_ok_z", [{"error": "timeout", "charged": True}])
    with pytest.raises(GatewayUnavailable):
        gw.charge(req("sbx_ok_z"))
    found = gw.lookup("inv_in_1_att_2", customer_id="cus_1")
    assert found is not None
    assert found.succeeded
    assert len(gw.ledger.entries()) == 1


def test_failure_rate_is_deterministic_per_key() -> None:
    gw = SandboxGateway(failure_rate=0.2)
    failed = set()
    for i in range(500):
        try:
            gw.charge(req("sbx_ok_1", key=f"k{i}"))
        except GatewayUnavailable:
            failed.add(i)
    assert 60 < len(failed) < 140
    gw2 = SandboxGateway(failure_rate=0.2)
    for i in sorted(failed)[:20]:
        with pytest.raises(GatewayUnavailable):
            gw2.charge(req("sbx_ok_1", key=f"k{i}"))


def test_sql_ledger_is_shared_between_gateways(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/ledger.sqlite3")
    upgrade(engine)
    a, b = SandboxGateway(SqlLedger(engine)), SandboxGateway(SqlLedger(engine))
    a.charge(req("sbx_ok_1"))
    assert b.charge(req("sbx_ok_1")).succeeded
    assert len(b.ledger.entries()) == 1
    engine.dispose()


def test_verification() -> None:
    gw = SandboxGateway()
    assert gw.verify("sbx_ok_1", customer_id="c", currency="EUR").ok
    declined = gw.verify("sbx_lost_card_1", customer_id="c", currency="EUR")
    assert not declined.ok
    assert declined.decline
    assert declined.decline.decline_code == "lost_card"
    sca = gw.verify("sbx_authentication_required_1", customer_id="c", currency="EUR")
    assert sca.requires_action


@pytest.mark.parametrize(
    ("number", "prefix", "network"),
    [
        ("4242 4242 4242 4242", "sbx_ok_", "visa"),
        ("4000000000009995", "sbx_insufficient_funds_", "visa"),
        ("5555555555554444", "sbx_ok_", "mastercard"),
        ("4000000000009987", "sbx_lost_card_", "visa"),
    ],
)
def test_tokenizer_keeps_only_brand_last4_expiry(number: str, prefix: str, network: str) -> None:
    card = SandboxGateway().tokenize(number, 12, 2030)
    assert card.token.startswith(prefix)
    assert (card.network, card.last4, card.exp_month, card.exp_year) == (
        network,
        number[-4:],
        12,
        2030,
    )
    digits = number.replace(" ", "")
    for value in dataclasses.asdict(card).values():
        assert digits not in str(value)
        assert digits[:12] not in str(value)


def test_tokenizer_refuses_invalid_numbers() -> None:
    with pytest.raises(CardRefused):
        SandboxGateway().tokenize("4242424242424241", 1, 2030)


def test_luhn_and_masking() -> None:
    assert luhn_ok("4242424242424242")
    assert not luhn_ok("1234567812345678")
    masked = mask_pans("card 4242 4242 4242 4242 and order 1234567812345678")
    assert "4242 4242 4242 4242" not in masked
    assert "[card ****4242]" in masked
    assert "1234567812345678" in masked


@pytest.mark.parametrize("ledger", ["memory", "sql"])
def test_a_repeated_key_gets_its_first_answer_without_a_second_entry(
    ledger: str, tmp_path: object
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/ledger.sqlite3")
    upgrade(engine)
    gw = SandboxGateway(SqlLedger(engine)) if ledger == "sql" else SandboxGateway()
    first = gw.charge(req("sbx_ok_1"))
    assert gw.charge(req("sbx_ok_1")) == first  # same charge id: one charge
    # Another gateway (another process) whose answer for the key was lost: charged already.
    lost = SandboxGateway(gw.ledger, failure_rate=1.0)
    assert lost.charge(req("sbx_ok_1")) == first
    assert lost.charge(req("sbx_insufficient_funds_1")) == first  # the key decides, not the card
    assert [e.charge_id for e in gw.ledger.entries()] == [first.charge_id]
    engine.dispose()
