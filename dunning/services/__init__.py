"""The operations the daemons, the web page and the simulation share.

Each service takes the :class:`~dunning.bootstrap.Container` and ``now`` (read once at the edge),
re-reads the state it acts on, and is safe to run twice.
"""
