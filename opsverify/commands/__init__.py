"""Subcommands of the ``opsverify`` CLI, one module each (registered with ``cli.command``)."""
