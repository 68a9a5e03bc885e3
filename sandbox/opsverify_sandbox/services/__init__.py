"""Sandbox services, one module per system; each registers itself with ``manager.service``."""
