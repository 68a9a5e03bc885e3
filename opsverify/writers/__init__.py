"""Report writers: one module per format, each a ``write(path, run, records)`` function.

JUnit XML and Allure results are written by pytest's junitxml plugin and allure-pytest (configured
by the opsverify plugin); these modules add ``summary.json``, ``summary.md`` and Allure's
``environment.properties``. Every text passes through the redactor before it is written.
"""
