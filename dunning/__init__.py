"""Dunning and payment-retry pipeline for subscription businesses."""

__version__ = "0.1.0"
