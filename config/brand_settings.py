"""How customer emails and the card page present the merchant: ``DUNNING_BRAND__*``
(docs/emails.md)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")
_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+")


class BrandSettings(BaseModel):
    """How customer emails and the card page present the merchant (docs/emails.md)."""

    name: str = "Example Subscriptions"
    support_email: str = "support@example.com"
    # The From display name (unset: the brand name; empty: none) and the Reply-To address
    # (unset: the support address; empty: none).
    from_name: str | None = None
    reply_to: str | None = None
    logo_url: str = ""  # an https:// image shown above emails; empty: the brand name as text
    accent_color: str = "#1a56db"  # buttons and links, #rrggbb
    # Plan id -> the name customers see ("pro-monthly" -> "Pro"); JSON object.
    plan_names: dict[str, str] = Field(default_factory=dict)
    # A directory of email templates searched before the built-in ones.
    email_templates: Path | None = None

    @field_validator("support_email", "reply_to")
    @classmethod
    def _an_address(cls, value: str | None) -> str | None:
        if value and not _ADDRESS.fullmatch(value):
            raise ValueError(f"{value!r} is not an email address (name@example.com)")
        return value

    @field_validator("logo_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if value and not re.fullmatch(r"https://[^\s\"'<>]+", value):
            raise ValueError("must be an https:// address (mail clients block other images)")
        return value

    @field_validator("accent_color")
    @classmethod
    def _colour(cls, value: str) -> str:
        if not _COLOUR.fullmatch(value):
            raise ValueError("must be a colour written #rrggbb, such as #1a56db")
        return value.lower()

    @field_validator("email_templates")
    @classmethod
    def _a_directory(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{value} is not a directory")
        return value
