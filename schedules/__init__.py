"""APScheduler: the scheduler daemon (one active leader) and the producers it runs."""
