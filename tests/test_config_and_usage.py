"""Bad input is a clear usage error (exit 4) that names the file and the key; nothing is probed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import ROOT, run_pytest

BASE = [f"--rootdir={ROOT}", f"-c={ROOT / 'pyproject.toml'}", "--no-reports"]
# a check file outside the project does not see the root conftest: name its plugins explicitly
OUTSIDE = ["-p", "opsverify.plugin", "-p", "fixtures.http"]


def _write(tmp: Path, text: str, name: str = "broken.yaml") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\nhttp:\n  - name: gw\n    url: http://127.0.0.1:1/\n    stauts: 200\n",
         "http[0].stauts (target 'gw'): unknown key (known keys: body, body_contains"),
        ("name: x\nhttp:\n  - name: gw\n    url: http://127.0.0.1:1/\n    status: two hundred\n",
         "http[0].status (target 'gw'): Input should be a valid integer"),
        ("name: x\ntls:\n  - {name: gw, host: h, port: 70000}\n",
         "tls[0].port (target 'gw'): Input should be less than or equal to 65535"),
        ("name: x\ntier: prod\n", "tier: Input should be 'dev', 'staging' or 'production'"),
        ("name: x\nallow: [read_only, yolo]\n", "allow[1]: Input should be 'read_only', 'mutating' or 'disruptive'"),
        ("name: x\nhttp:\n  - {name: gw, url: http://a/}\n  - {name: gw, url: http://b/}\n",
         "duplicate target name 'gw'"),
        ("name: x\nhttp:\n  - {name: gw, url: ftp://a/}\n", "http[0].url (target 'gw'): String should match pattern"),
        ("name: x\nhttp: [\n", "not valid YAML (line 3, column 1"),
        ("- just\n- a list\n", "must be a mapping of keys"),
        ("name: x\nhttp:\n  - {name: gw, url: http://a/, request_headers: {authorization: {env: A, file: B}}}\n",
         "http[0].request_headers.authorization"),
    ],
)
def test_bad_environment_file_is_a_usage_error_naming_file_and_key(tmp_path, text, expected):
    path = _write(tmp_path, text)
    proc = run_pytest([*BASE, f"--env-file={path}"])
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert f"ERROR: environment file {path}: " in proc.stderr
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_environment_file_is_a_usage_error(tmp_path):
    proc = run_pytest([*BASE, f"--env-file={tmp_path / 'absent.yaml'}"])
    assert proc.returncode == 4
    assert f"ERROR: environment file {tmp_path / 'absent.yaml'}: file not found" in proc.stderr


def test_unknown_environment_name_lists_the_known_ones():
    proc = run_pytest([*BASE, "--env", "no-such-env"])
    assert proc.returncode == 4
    assert "ERROR: unknown environment 'no-such-env'" in proc.stderr
    assert "known environments: " in proc.stderr and "local" in proc.stderr


def test_checks_without_any_environment_are_a_usage_error():
    proc = run_pytest([*BASE])
    assert proc.returncode == 4
    assert "checks selected but no environment given: add --env NAME" in proc.stderr


def test_unknown_runbook_step_is_a_collection_usage_error(tmp_path):
    check = tmp_path / "test_bogus.py"
    check.write_text(
        "import pytest\n\n@pytest.mark.runbook('nowhere#nothing')\n"
        "def test_bogus(http_response):\n    pass\n"
    )
    env = _write(tmp_path, "name: x\nhttp:\n  - {name: gw, url: 'http://127.0.0.1:1/'}\n", "x.yaml")
    proc = run_pytest([*OUTSIDE, *BASE, f"--env-file={env}", str(check)])
    assert proc.returncode == 4
    assert "unknown runbook step 'nowhere#nothing'" in proc.stderr


def test_unregistered_marker_is_rejected(tmp_path):
    check = tmp_path / "test_marker.py"
    check.write_text("import pytest\n\n@pytest.mark.smokey\ndef test_x():\n    pass\n")
    proc = run_pytest([*OUTSIDE, *BASE, str(check)])
    assert proc.returncode != 0
    assert "'smokey' not found in `markers` configuration option" in proc.stdout + proc.stderr


def test_every_marker_is_registered_with_a_description():
    proc = run_pytest([*BASE, "--markers"])
    for marker in ("smoke", "predeploy", "slo", "rotation", "mutating", "disruptive", "runbook(id)", "severity(level)"):
        line = next((line for line in proc.stdout.splitlines() if line.startswith(f"@pytest.mark.{marker}:")), "")
        assert len(line) > len(marker) + 20, f"marker {marker} lacks a description"


@pytest.mark.parametrize(("marker", "expected"), [
    ("configured('max_latncy_ms')",
     "configured('max_latncy_ms'): http targets have no field 'max_latncy_ms' (did you mean 'max_latency_ms'?)"),
    ("each('tagets')", "each('tagets'): http targets have no field 'tagets'"),
    ("each('url')", "each('url'): http targets' field 'url' is not a list"),
], ids=["configured-typo", "each-typo", "each-not-a-list"])
def test_a_marker_naming_no_config_field_is_a_collection_usage_error(tmp_path, marker, expected):
    """A typo there would skip the check everywhere as "not configured" instead of running it."""
    check = tmp_path / "test_typo.py"
    check.write_text(f"import pytest\n\n@pytest.mark.{marker}\ndef test_typo(http_response):\n    pass\n")
    env = _write(tmp_path, "name: x\nhttp:\n  - {name: gw, url: 'http://127.0.0.1:1/', max_latency_ms: 400}\n", "x.yaml")
    proc = run_pytest([*OUTSIDE, *BASE, f"--env-file={env}", str(check)])
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "::test_typo: " + expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_the_shipped_checks_name_only_fields_their_targets_have():
    proc = run_pytest([*BASE, "--env", "local", "--collect-only", "-q"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
