"""``dunning simulate``: the real pipeline on the embedded default under a virtual clock."""
