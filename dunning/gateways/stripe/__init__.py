"""The Stripe gateway, by concept: :mod:`.http` (requests under one deadline, the pinned API
version), :mod:`.answers` (Stripe's answers read as results and declines), :mod:`.invoices`
(paying a Stripe Billing invoice), :mod:`.setup` (SetupIntents and 3-D Secure),
:mod:`.methods` (payment methods), :mod:`.account` (what Stripe itself does about failed
payments) and :mod:`.gateway` (the :class:`StripeGateway` that ties
them together)."""

from dunning.gateways.stripe.gateway import DEFAULT_API_VERSION, StripeGateway
from dunning.gateways.stripe.http import StripeError

__all__ = ["DEFAULT_API_VERSION", "StripeError", "StripeGateway"]
