"""Payment gateways: a small protocol, the sandbox twin and real providers."""

from dunning.gateways.base import (
    CardToken,
    ChargeRequest,
    ChargeResult,
    Decline,
    Gateway,
    VerifyResult,
)

__all__ = ["CardToken", "ChargeRequest", "ChargeResult", "Decline", "Gateway", "VerifyResult"]
