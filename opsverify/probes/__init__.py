"""Async probes, one module per system (a package of one module per concern for the larger systems, whose
``__init__`` re-exports its public names): network I/O only, translated errors, no assertions."""
