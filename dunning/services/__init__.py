"""The operations the daemons, the web page and the simulation share.

Each service takes a :class:`~dunning.ports.Pipeline` (what it may use of the outside world)
and ``now`` (read once at the edge), re-reads the state it acts on, and is safe to run twice.
Money is taken only through :func:`dunning.services.charging.charge`.
"""
