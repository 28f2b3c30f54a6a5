"""The ``dunning`` command line. One module per command family; ``main`` wires them."""
