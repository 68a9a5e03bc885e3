"""docs/environment/reference.md is generated from the config models, complete, and never stale.

The committed file must equal what :func:`opsverify.config.reference.reference` renders now (else:
run the command the failure names). Completeness is proved independently of the generator: the
models' own JSON schemas are walked here, and every key path they hold must be a row of its
section's table, and no row may name a key the schema does not have.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from opsverify.config.base import SECTIONS, SectionSpec, Strict, Target
from opsverify.config.model import EnvironmentBase, environment_model
from opsverify.config.reference import COMMAND, main, reference
from opsverify.config.secrets import SecretRef
from opsverify.config.thresholds import MaxMs

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "environment" / "reference.md"
SECRET_KEYS = set(SecretRef.model_json_schema()["properties"])


def schema_paths(model: type[BaseModel]) -> set[str]:
    """Every key path of ``model`` by its JSON schema (secret references and thresholds are leaves)."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    found: set[str] = set()

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[1]]
        return node

    def keys(node: dict[str, Any], prefix: str) -> None:
        props = node["properties"]
        inherited = SECRET_KEYS if SECRET_KEYS <= set(props) else set()
        for key, sub in props.items():
            if key not in inherited:
                found.add(prefix + key)
                value(sub, prefix + key)

    def value(node: dict[str, Any], path: str) -> None:
        node = resolve(node)
        if node.get("title") in ("SecretRef", "Threshold"):
            return
        for alternative in node.get("anyOf", []) + node.get("oneOf", []):
            value(alternative, path)
        if isinstance(node.get("items"), dict):
            value(node["items"], path + "[]")
        if isinstance(node.get("additionalProperties"), dict):
            value(node["additionalProperties"], path + ".<name>")
        if "properties" in node:
            keys(node, path + ".")

    keys(resolve(schema), "")
    return found


def tables(text: str) -> dict[str, list[list[str]]]:
    """The reference's tables by heading: each row's cells (key without its backticks)."""
    found: dict[str, list[list[str]]] = {}
    heading = ""
    for line in text.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
        elif line.startswith("| `"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            found.setdefault(heading, []).append([cells[0].strip("`"), *cells[1:]])
    return found


def test_the_committed_reference_is_current() -> None:
    if REFERENCE.read_text(encoding="utf-8") != reference():
        pytest.fail(f"{REFERENCE.relative_to(ROOT)} is stale (a config model changed): run {COMMAND}", pytrace=False)


def test_every_key_of_every_section_is_a_row_of_its_table() -> None:
    environment_model()
    rendered = tables(reference())
    assert set(SECTIONS) <= set(rendered), "a registered section has no table"
    for key, spec in SECTIONS.items():
        rows = {row[0] for row in rendered[key]}
        expected = schema_paths(spec.model)
        assert rows == expected, f"{key}: missing {sorted(expected - rows)}, not in the model {sorted(rows - expected)}"


def test_the_top_level_table_has_every_environment_key_and_every_section() -> None:
    rows = {row[0] for row in tables(reference())["Top level"]}
    expected = (schema_paths(EnvironmentBase) - {"source"}) | set(SECTIONS)
    assert rows == expected, f"missing {sorted(expected - rows)}, not in the model {sorted(rows - expected)}"


class Probe(Strict):
    """A probe a demo target sends."""

    path: str = Field(pattern=r"^/", description="where it goes")
    max_latency_ms: MaxMs | None = None


class DemoTarget(Target):
    """A demo section, only in this test."""

    depth: int = Field(default=3, ge=1, le=9, description="how deep to look")
    mode: Literal["fast", "thorough"] = "fast"
    token: SecretRef
    probes: list[Probe] = Field(default_factory=list)


def demo_rows(model: type[Target]) -> dict[str, list[str]]:
    text = reference({"demo": SectionSpec("demo", model, "demo", "a demo system")})
    return {row[0]: row[1:] for row in tables(text)["demo"]}


def test_a_model_renders_its_types_defaults_constraints_and_descriptions() -> None:
    rows = demo_rows(DemoTarget)
    assert rows["depth"] == ["integer, 1..9", "`3`", "how deep to look"]
    assert rows["mode"] == ["one of `fast`, `thorough`", "`fast`", ""]
    assert rows["token"] == ["secret reference: {env: NAME} or {file: PATH}", "**required**", ""]
    assert rows["probes"] == ["list of mapping (keys below)", "`[]`", "A probe a demo target sends."]
    assert rows["probes[].path"] == ["text, matching `^/`", "**required**", "where it goes"]
    assert rows["probes[].max_latency_ms"][0] == (
        "threshold: a number or {warn, critical}, larger is worse, 0..86400000 ms")


def test_a_model_change_shows_up_in_the_reference() -> None:
    class Changed(DemoTarget):
        retries: int = Field(default=2, ge=0, description="attempts after the first")

    assert "retries" not in demo_rows(DemoTarget)
    assert demo_rows(Changed)["retries"] == ["integer, >= 0", "`2`", "attempts after the first"]


def test_check_names_the_command_when_the_file_is_stale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "reference.md"
    assert main(["--write", str(target)]) == 0
    assert main(["--check", str(target)]) == 0
    target.write_text(target.read_text() + "edited by hand\n")
    assert main(["--check", str(target)]) == 1
    assert capsys.readouterr().err.strip() == f"{target} is stale: run {COMMAND}"


def test_an_unwritable_path_is_one_line() -> None:
    done = subprocess.run([sys.executable, "-m", "opsverify.config.reference", "--write", "/nonexistent/dir/ref.md"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "No such file or directory" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_section_has_a_page_that_links_its_keys_and_the_readme_links_the_page() -> None:
    environment_model()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pages = {p: p.read_text(encoding="utf-8") for p in REFERENCE.parent.glob("*.md") if p != REFERENCE}
    for key in SECTIONS:
        linking = [p for p, text in pages.items() if f"(reference.md#{key})" in text]
        assert linking, f"no page of docs/environment links reference.md#{key}"
        assert any(f"(docs/environment/{p.name})" in readme for p in linking), (
            f"README links none of {[p.name for p in linking]} (the {key}: section's page)")
        assert f"`{key}:`" in readme, f"README's table of sections does not name {key}:"


def test_text_in_angle_brackets_is_shown_not_taken_for_html() -> None:
    class Named(DemoTarget):
        label: str = Field(default="", description="ids read <env>-<name>, e.g. `a|b <c>`")

    assert demo_rows(Named)["label"][2] == "ids read &lt;env>-&lt;name>, e.g. `a\\|b <c>`"
