"""Root conftest: the opsverify plugin, for a run without its entry point. Nothing else.

Installed (``pip install -e .``), the plugin loads by its ``pytest11`` entry point, with every facade
fixture. The entry point has the plugin module's name, so naming it here too is then a no-op; it
loads the plugin when autoload is off (``PYTEST_DISABLE_PLUGIN_AUTOLOAD``) or the project is not installed.
"""

pytest_plugins = ["opsverify.plugin"]
