"""`perfhouse k8s render`: the TestRun validates against the schema kept in tests, the ConfigMap holds the script."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.errors import GenerationError
from orchestrator.generators import GenerationOptions
from orchestrator.runners.k8s import k8s_name, render
from orchestrator.spec import load_spec
from orchestrator.tools import generate
from tests.conftest import ROOT

SCHEMA = json.loads((ROOT / "tests" / "schemas" / "k6-operator-testrun.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def rendered(tmp_path: Path, *extra: str) -> tuple[dict[str, Any], dict[str, Any]]:
    out = tmp_path / "k8s"
    result = CliRunner().invoke(main, ["k8s", "render", str(ROOT / "examples" / "shop.yaml"), "--profile", "ci",
                                       "--parallelism", "3", "-o", str(out), *extra])
    assert result.exit_code == 0, result.output
    return (yaml.safe_load((out / "testrun.yaml").read_text()),
            yaml.safe_load((out / "configmap.yaml").read_text()))


def test_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_rendered_testrun_validates_against_the_crd_schema(tmp_path: Path) -> None:
    testrun, _ = rendered(tmp_path, "--arg=--tag", "--arg=env=ci", "--namespace", "load")
    VALIDATOR.validate(testrun)
    assert testrun["apiVersion"] == "k6.io/v1alpha1" and testrun["kind"] == "TestRun"
    assert testrun["spec"]["parallelism"] == 3
    assert testrun["spec"]["arguments"] == "--tag env=ci"
    assert testrun["spec"]["runner"]["image"].startswith("grafana/k6")
    assert testrun["metadata"]["namespace"] == "load"


def test_configmap_holds_exactly_the_generated_k6_script(tmp_path: Path) -> None:
    testrun, configmap = rendered(tmp_path)
    ref = testrun["spec"]["script"]["configMap"]
    assert configmap["kind"] == "ConfigMap" and configmap["metadata"]["name"] == ref["name"]
    spec = load_spec(ROOT / "examples" / "shop.yaml")
    assert configmap["data"] == {ref["file"]: generate(spec, "k6", GenerationOptions(profile="ci")).content}


def test_image_comes_from_the_environment_when_not_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFHOUSE_K6_IMAGE", "registry.example/k6:1.1.0")
    testrun, _ = rendered(tmp_path)
    assert testrun["spec"]["runner"]["image"] == "registry.example/k6:1.1.0"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda d: d["spec"].update(paralellism=d["spec"].pop("parallelism")), "a misspelt field"),
        (lambda d: d["spec"].update(parallelism=0), "no runner pods"),
        (lambda d: d["spec"].pop("script"), "no script"),
        (lambda d: d["spec"]["script"]["configMap"].pop("name"), "a ConfigMap without a name"),
        (lambda d: d["metadata"].update(name="Shop_CI"), "a name Kubernetes refuses"),
        (lambda d: d.update(apiVersion="k6.io/v1"), "another API version"),
        (lambda d: d["spec"].update(arguments=["--tag", "x"]), "arguments as a list"),
    ],
)
def test_schema_refuses_what_the_operator_would_not_run(tmp_path: Path, change: Any, why: str) -> None:
    testrun, _ = rendered(tmp_path)
    broken = copy.deepcopy(testrun)
    change(broken)
    assert not VALIDATOR.is_valid(broken), why


def test_arguments_with_spaces_are_refused_not_mangled() -> None:
    with pytest.raises(GenerationError, match="cannot contain spaces"):
        render("x", "s.js", "export default function () {}\n", 1, "grafana/k6", arguments=["--tag", "a b"])


def test_names_are_dns_labels() -> None:
    assert k8s_name("perfhouse", "Shop API", "CI_gate") == "perfhouse-shop-api-ci-gate"
    assert len(k8s_name("x" * 200)) <= 52


def test_runner_pods_send_results_to_the_receiver_tagged_by_pod() -> None:
    from orchestrator.runners.base import ResultsSink
    from orchestrator.runners.k8s import results_env

    sink = ResultsSink("http://perfhouse.example:8086", "t0ken")
    manifests = render("perfhouse-r1", "s.js", "export default function () {}", 2, "grafana/k6:1.1.0",
                       arguments=["--out", f"influxdb={sink.url}/perfhouse"], env=results_env("r1", sink))
    VALIDATOR.validate(manifests.testrun)
    runner = manifests.testrun["spec"]["runner"]
    env = {e["name"]: e for e in runner["env"]}
    assert manifests.testrun["spec"]["arguments"] == "--out influxdb=http://perfhouse.example:8086/perfhouse"
    assert env["PERFHOUSE_POD"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["K6_TAGS"]["value"] == "perfhouse_run:r1,perfhouse_generator:$(PERFHOUSE_POD)"
    assert env["K6_INFLUXDB_PASSWORD"]["value"] == "t0ken"
    names = [e["name"] for e in runner["env"]]
    assert names.index("PERFHOUSE_POD") < names.index("K6_TAGS")  # Kubernetes expands $(VAR) of earlier entries only
