"""Typed settings and the default dunning policy file."""

from config.settings import Settings, load_settings
from dunning.errors import ConfigError

__all__ = ["ConfigError", "Settings", "load_settings"]
