"""Reading the policy file: the one piece of policy that touches the disk (the policy package
itself is pure and validates what it is given)."""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dunning.errors import ConfigError
from dunning.policy.config import PolicyBook, build_book

log = logging.getLogger(__name__)


def load_policy_book(path: Path, overrides: Mapping[str, Any] | None = None) -> PolicyBook:
    """Read and validate the policy file at ``path``; :class:`ConfigError` names the bad key.
    Each warning of the book (a window longer than Visa's, say) is logged once here."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the policy file ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    book = build_book(raw, str(path), overrides)
    for warning in book.warnings:
        log.warning("policy %s: %s", path, warning)
    return book
