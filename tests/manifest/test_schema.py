"""The published JSON Schema accepts the examples and rejects what pydantic rejects."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from bastion.manifest import json_schema

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*/system.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_examples_validate(validator: jsonschema.Draft202012Validator, path: Path) -> None:
    validator.validate(yaml.safe_load(path.read_text()))


def test_schema_rejects_unknown_keys(validator: jsonschema.Draft202012Validator) -> None:
    doc = yaml.safe_load(EXAMPLES[0].read_text())
    doc["elements"][0]["colour"] = "blue"
    assert not validator.is_valid(doc)


def test_cli_prints_the_schema(run_cli) -> None:  # type: ignore[no-untyped-def]
    proc = run_cli("manifest", "schema")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["title"] == "bastion ML system manifest"
