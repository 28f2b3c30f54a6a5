"""Customer email: pure rendering, MIME building, and transports (SMTP, .eml outbox, memory)."""

from dunning.mail.message import BadMessage, build_message, message_id_for
from dunning.mail.render import (
    EMAIL_KINDS,
    LOCALES,
    EmailContextError,
    RenderedEmail,
    UnknownEmailKind,
    render_email,
)
from dunning.mail.samples import sample_context
from dunning.mail.transport import (
    FileTransport,
    MemoryTransport,
    SendResult,
    Transport,
    make_transport,
)

__all__ = [
    "EMAIL_KINDS",
    "LOCALES",
    "BadMessage",
    "EmailContextError",
    "FileTransport",
    "MemoryTransport",
    "RenderedEmail",
    "SendResult",
    "Transport",
    "UnknownEmailKind",
    "build_message",
    "make_transport",
    "message_id_for",
    "render_email",
    "sample_context",
]
