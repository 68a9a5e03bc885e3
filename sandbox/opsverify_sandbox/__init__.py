"""opsverify's sandbox: real servers, emulators and demo services on loopback, for ``--env local``
(``opsverify sandbox up|down|status``, :mod:`opsverify_sandbox.manager`) and for the self-tests
(the launchers in :mod:`opsverify_sandbox.servers`, certificates from :mod:`opsverify_sandbox.pki`).

A distribution of its own (``opsverify-sandbox``, ``pip install -e sandbox``): the opsverify library
never imports it; its ``opsverify sandbox`` command is registered through the ``opsverify.commands``
entry point.
"""
