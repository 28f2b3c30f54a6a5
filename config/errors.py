"""The one error the settings raise. It lives here, beside the settings, so that ``config``
depends on nothing of the pipeline; ``dunning.errors`` re-exports it."""

from __future__ import annotations


class ConfigError(Exception):
    """A setting or the policy file is wrong; the message names what to fix."""
