"""Root conftest: loads the opsverify plugin and every facade fixture module under ``fixtures/``. Nothing else."""

from pathlib import Path

pytest_plugins = [
    "opsverify.plugin",
    *sorted(
        f"fixtures.{path.stem}"
        for path in (Path(__file__).parent / "fixtures").glob("*.py")
        if path.stem != "__init__"
    ),
]
