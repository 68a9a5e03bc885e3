"""The environment file model: one module per section, assembled by :mod:`opsverify.config.model`."""
