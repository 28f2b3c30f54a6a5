"""Sending queued emails: lease the outbox rows, render, send, mark each sent.

A batch leases its rows (:mod:`.leases`) before it sends them and marks each sent
(:mod:`.records`) right after the server took it (:mod:`.delivery`). If the process dies
between the server's acceptance and the mark, the lease runs out and the row is sent again with
the same ``Message-ID``: the one duplicate SMTP allows, and one a mail client folds away. The
lease is short and renewed while the batch runs, so a dead worker's emails go out soon.

``send_attempts`` counts the messages handed to the server. A failure of one message puts it
off by its own backoff; a server that takes no mail at all puts off the rest of the batch
untried, so an outage costs one try per batch, not one per email.
"""

from dunning.services.outbox.sending import send_notifications

__all__ = ["send_notifications"]
