"""The decline code tables, as data the classification reads.

The tables and their sources: docs/declines-and-network-rules.md §1-4.
"""

from __future__ import annotations

# Stripe advice codes (§1).
ADVICE_NEVER = frozenset({"do_not_try_again"})
ADVICE_NEW_DATA = frozenset({"confirm_card_data"})
ADVICE_RETRY = frozenset({"try_again_later"})

# Visa decline categories (§2). Category 4 is every other code.
VISA_CAT1 = frozenset({"04", "07", "12", "14", "15", "41", "43", "46", "57", "R0", "R1", "R3"})
VISA_CAT2 = frozenset(
    {
        "03", "19", "39", "51", "52", "53", "59", "61", "62", "65", "75", "78", "86", "91",
        "93", "96", "N3", "N4", "Z5", "5C", "9G",
    }
)  # fmt: skip
VISA_CAT3 = frozenset({"54", "55", "70", "82", "1A", "6P", "N7"})

# Mastercard merchant advice codes (§3).
MAC_NEW_DATA = frozenset({"01", "04"})  # new account data, token requirements not met
MAC_NEVER = frozenset({"03", "21", "40", "41"})
MAC_NEVER_FEE = frozenset({"03", "21"})  # any later retry is charged a fee: a hard limit
MAC_DELAYED = frozenset({"02", "24", "25", "26", "27", "28", "29", "30"})
MAC_KNOWN = MAC_NEW_DATA | MAC_NEVER | MAC_DELAYED

# Stripe decline codes (§4).
STRIPE_SOFT = frozenset(
    {
        "insufficient_funds",
        "card_velocity_exceeded",
        "withdrawal_count_limit_exceeded",
        "processing_error",
        "issuer_not_available",
        "reenter_transaction",
        "try_again_later",
        "approve_with_id",
    }
)
STRIPE_WEAK = frozenset({"generic_decline", "do_not_honor", "call_issuer", "no_action_taken"})
STRIPE_NEW_DATA = frozenset(
    {
        "expired_card",
        "incorrect_cvc",
        "invalid_cvc",
        "incorrect_zip",
        "invalid_expiry_month",
        "invalid_expiry_year",
        "new_account_information_available",
        # Stripe waits for a new payment method; what it needs is the customer's authentication.
        "authentication_required",
    }
)
# Stripe waits for a new payment method after these: the credential itself is dead.
STRIPE_NEW_METHOD_ONLY = frozenset(
    {
        "incorrect_number",
        "lost_card",
        "pickup_card",
        "stolen_card",
        "revocation_of_authorization",
        "revocation_of_all_authorizations",
        "highest_risk_level",
        "transaction_not_allowed",
    }
)
STRIPE_HARD = STRIPE_NEW_METHOD_ONLY | frozenset(
    {
        "card_not_supported",
        "currency_not_supported",
        "do_not_try_again",
        "fraudulent",
        "invalid_account",
        "merchant_blacklist",
        "not_permitted",
        "restricted_card",
        "security_violation",
        "service_not_allowed",
        "stop_payment_order",
        "testmode_decline",
        "invalid_amount",
    }
)
DUPLICATE = "duplicate_transaction"

# Quickpay qp_status_code values (§4).
QP_REJECTED = "40000"  # rejected by the acquirer: aq_status_code is the network code
QP_TRANSIENT = frozenset({"50000", "50300"})  # gateway or communication error: not a decline
QP_NEEDS_CUSTOMER = frozenset({"30100", "30101"})  # 3-D Secure / SCA
QP_DEAD_CREDENTIAL = frozenset({"41000", "42300"})


def network_code(raw: str | None) -> str:
    """A raw network response code in the tables' form: upper case, two characters.

    Acquirers behind Quickpay pad ISO 8583 response codes to three digits ("051").
    """
    code = (raw or "").strip().upper()
    if len(code) == 3 and code.isdigit() and code.startswith("0"):
        return code[1:]
    return code


def mac_code(raw: str | None) -> str:
    """A Mastercard MAC in the tables' form: two digits."""
    code = (raw or "").strip()
    return code.zfill(2) if code.isdigit() and len(code) == 1 else code


def is_quickpay_status(code: str) -> bool:
    """Quickpay status codes are five digits; Stripe's decline codes are words."""
    return len(code) == 5 and code.isdigit()
