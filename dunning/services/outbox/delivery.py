"""One leased row: render it, compose it, hand it to the transport, and say how to record
what happened."""

from __future__ import annotations

import logging
from datetime import datetime
from email.utils import formataddr
from typing import Any

from sqlalchemy import Connection, RowMapping

from dunning.errors import MailPermanent, MailTransient, MailUnavailable, PermanentError
from dunning.mail.compose import OutgoingEmail, compose
from dunning.mail.render import Look, RenderedEmail, render_email
from dunning.ports import Pipeline
from dunning.services.audit import audit_row
from dunning.services.notify import rendering_context
from dunning.services.outbox import records

log = logging.getLogger(__name__)


def render(c: Pipeline, row: RowMapping, now: datetime) -> RenderedEmail:
    """The row's email as its stored context renders it, sent at ``now``."""
    brand = c.settings.brand
    return render_email(
        row["kind"],
        row["locale"],
        rendering_context(c, row["customer_id"], row["context"]),
        brand_name=brand.name,
        support_email=brand.support_email,
        sent_at=now,
        look=Look(brand.logo_url, brand.accent_color, brand.email_templates),
    )


def message(c: Pipeline, row: RowMapping, rendered: RenderedEmail, now: datetime) -> OutgoingEmail:
    """The bytes to send, under the row's stable Message-ID."""
    brand = c.settings.brand
    name = brand.name if brand.from_name is None else brand.from_name
    reply_to = brand.support_email if brand.reply_to is None else brand.reply_to
    return compose(
        rendered,
        mail_from=formataddr((name, c.settings.mail_from)) if name else c.settings.mail_from,
        headers={"Reply-To": reply_to} if reply_to else None,
        to=row["to_addr"],
        cc=row["cc"] or [],
        message_id=row["message_id"],
        date=now,
    )


def send_one(c: Pipeline, row: RowMapping, now: datetime) -> tuple[str, records.Mark]:
    """Render and send one leased row; return what happened and how to record it.

    :class:`MailUnavailable` (no server takes mail now) is raised for the batch to handle.
    """
    try:
        rendered = render(c, row, now)
        result = c.transport.send(message(c, row, rendered, now))
    except MailUnavailable:
        raise
    except MailTransient as exc:
        retry_at = now + records.backoff(c, row["send_attempts"] + 1)
        log.warning(
            "email %s (%s) deferred until %s: %s",
            row["dedup_key"],
            row["kind"],
            retry_at.isoformat(),
            exc,
        )
        return "deferred", records.deferred(row["id"], retry_at, str(exc))
    except (MailPermanent, PermanentError) as exc:
        log.error("email %s (%s) refused for good: %s", row["dedup_key"], row["kind"], exc)
        return "failed", records.failed(row["id"], str(exc))
    if result.refused:
        log.warning("email %s: recipients refused %s", row["dedup_key"], sorted(result.refused))
    error = f"refused: {sorted(result.refused)}" if result.refused else None
    return "sent", _sent(row, rendered, now, error)


def _sent(row: RowMapping, rendered: RenderedEmail, now: datetime, error: str | None) -> Any:
    audit = audit_row(
        "email",
        now,
        invoice_id=row["invoice_id"],
        customer_id=row["customer_id"],
        payment_method_id=row["payment_method_id"],
        reason=row["kind"],
        template=row["kind"],
        to=row["to_addr"],
        cc=list(row["cc"] or []),
        subject=rendered.subject,
        dedup_key=row["dedup_key"],
        link=row["context"].get("update_link"),  # what rebuilds it, never the link itself
        message_id=row["message_id"],
    )

    def sent(conn: Connection) -> None:
        # Written at once: the window in which a crash resends this message stays one wide.
        records.mark_sent(conn, row["id"], now, error, audit)

    return sent
