"""dramatiq wiring and the pipeline's actors. Import :mod:`workers.broker` and call
:func:`workers.broker.setup` before anything sends a message."""
