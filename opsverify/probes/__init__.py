"""Async probes, one module per system: network I/O only, translated errors, no assertions."""
