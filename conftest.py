"""Root conftest: names the opsverify plugin and the facade fixture modules. Nothing else."""

pytest_plugins = [
    "opsverify.plugin",
    "fixtures.http",
    "fixtures.tls",
    "fixtures.network",
]
