"""Root conftest: names the opsverify plugin and the facade fixture modules. Nothing else."""

pytest_plugins = [
    "opsverify.plugin",
    "fixtures.hosts",
    "fixtures.http",
    "fixtures.kubernetes",
    "fixtures.kafka",
    "fixtures.nats",
    "fixtures.tls",
    "fixtures.network",
    "fixtures.slo",
    "fixtures.vault",
]
