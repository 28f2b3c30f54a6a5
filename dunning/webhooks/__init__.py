"""Gateway webhooks: signature checks and parsers that turn provider payloads into events.

Verify the raw body first (:mod:`dunning.webhooks.signatures`), then parse the decoded JSON with
:func:`dunning.webhooks.stripe.parse_stripe` or :func:`dunning.webhooks.quickpay.parse_quickpay`.
Both return internal events (:mod:`dunning.webhooks.events`) or raise ``MalformedEvent``.
"""
