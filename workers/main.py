"""The module ``dramatiq`` imports in each worker process (``dunning worker`` runs it).

Importing it wires this process: settings, database, gateway, mail, broker and actors. It is
an entry point, so it is the one module allowed to do that at import time; it still opens no
connection until the first message arrives.
"""

from __future__ import annotations

from dunning.bootstrap import bootstrap
from dunning.logs import configure_logging
from workers.broker import broker_for, setup
from workers.context import CloseOnShutdown
from workers.redelivery import Redelivery

container = bootstrap()
configure_logging(container.settings)
broker = setup(container, broker_for(container.settings, prometheus=True))
broker.add_middleware(CloseOnShutdown())
# A dead worker's messages come back within about a heartbeat timeout, not by chance.
broker.add_middleware(Redelivery())
