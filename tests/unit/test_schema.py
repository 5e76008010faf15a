"""The published JSON Schema: in step with the loader, accepting every spec the loader accepts."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from orchestrator import schema
from orchestrator import spec as model

ROOT = Path(__file__).resolve().parents[2]
SPECS = [ROOT / "examples" / "shop.yaml", *sorted((ROOT / "tests" / "golden").glob("*/spec.yaml"))]


def test_published_schema_is_current() -> None:
    assert schema.PUBLISHED.read_text(encoding="utf-8") == schema.text(), (
        "orchestrator/spec.schema.json is stale: perfhouse schema -o orchestrator/spec.schema.json"
    )


def test_schema_names_the_loaders_fields() -> None:
    doc = schema.build()
    assert tuple(doc["properties"]) == model._TOP
    step = doc["properties"]["journeys"]["items"]["properties"]["steps"]["items"]
    assert tuple(step["properties"]) == model._STEP
    profile = doc["properties"]["profiles"]["additionalProperties"]
    assert tuple(profile["properties"]) == model._PROFILE_FIELDS
    assert [next(iter(o["properties"])) for o in step["properties"]["checks"]["items"]["oneOf"]] == list(
        model.CHECK_KINDS
    )


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.parent.name)
def test_every_spec_the_loader_accepts_validates(path: Path) -> None:
    model.load_spec(path)
    jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), schema.build())


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d["journeys"][0]["steps"][0].update(methd="GET"), "methd"),
        (lambda d: d["profiles"].update(bad={"executor": "constant_vu"}), "constant_vu"),
        (lambda d: d["journeys"][0]["steps"][0].update(checks=[{"status": 200, "body_contains": "x"}]), "checks"),
    ],
)
def test_schema_refuses_what_the_loader_refuses(change, where) -> None:  # type: ignore[no-untyped-def]
    doc = yaml.safe_load((ROOT / "examples" / "shop.yaml").read_text(encoding="utf-8"))
    change(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema.build())
