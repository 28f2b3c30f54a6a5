"""The web service: gateway webhook receivers, the card-update page, health and metrics.

:func:`dunning.web.app.create_app` builds the ASGI app from a container; each concern is a
small module that returns its routes.
"""
