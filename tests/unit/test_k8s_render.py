"""`perfhouse k8s render`: the TestRun validates against the schema kept in tests, the ConfigMap holds the script and
its data files, ${env:NAME} values come from a Secret and never reach the ConfigMap."""

from __future__ import annotations

import base64
import copy
import json
import stat
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.errors import GenerationError
from orchestrator.generators import GenerationOptions
from orchestrator.runners.k8s import CONFIGMAP_LIMIT, SECRET_TEMPLATE, data_files, k8s_name, render
from orchestrator.spec import load_spec
from orchestrator.tools import generate
from tests.conftest import ROOT

SCHEMA = json.loads((ROOT / "tests" / "schemas" / "k6-operator-testrun.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def rendered(tmp_path: Path, *extra: str, spec: Path = ROOT / "examples" / "shop.yaml", profile: str = "ci"
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    out = tmp_path / "k8s"
    result = CliRunner().invoke(main, ["k8s", "render", str(spec), "--profile", profile,
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


DATA_SPEC = ROOT / "tests" / "golden" / "data" / "spec.yaml"
ENV_SPEC = ROOT / "tests" / "golden" / "env" / "spec.yaml"
ENV_VALUES = {"PERFHOUSE_TEST_TOKEN": "k8s-t0ken-value", "PERFHOUSE_TEST_TENANT": "k8s-tenant-value"}


def test_configmap_holds_the_data_files_the_script_opens_beside_it(tmp_path: Path) -> None:
    testrun, configmap = rendered(tmp_path, spec=DATA_SPEC, profile="golden")
    VALIDATOR.validate(testrun)
    script_key = testrun["spec"]["script"]["configMap"]["file"]
    # the operator mounts the whole ConfigMap at /test: the script's open("users.csv") finds the key users.csv
    assert set(configmap["data"]) == {script_key, "users.csv"}
    assert 'open("users.csv")' in configmap["data"][script_key]
    assert configmap["data"]["users.csv"].encode() == (DATA_SPEC.parent / "users.csv").read_bytes()
    assert "binaryData" not in configmap


def test_a_data_file_that_is_not_utf8_travels_as_binary_data() -> None:
    raw = "user\r\nJos\xe9\r\n".encode("latin-1")
    manifests = render("x", "s.js", "export default function () {}\n", 1, "grafana/k6",
                       files={"users.csv": raw, "plain.csv": b"a,b\r\n1,2\r\n"})
    configmap = yaml.safe_load(yaml.safe_dump(manifests.configmap))
    assert base64.b64decode(configmap["binaryData"]["users.csv"]) == raw
    assert configmap["data"]["plain.csv"] == "a,b\r\n1,2\r\n"  # CRLF kept through YAML


def test_more_than_a_configmap_holds_is_refused_with_the_sizes() -> None:
    big = b"user\n" + b"x" * CONFIGMAP_LIMIT
    with pytest.raises(GenerationError, match=r"users\.csv 1,000,01\d.*at most 1,000,000.*volumeClaim"):
        render("x", "s.js", "export default function () {}\n", 1, "grafana/k6", files={"users.csv": big})


@pytest.mark.parametrize("name", ["my users.csv", "users;rm.csv", "..", "\u00fcsers.csv", "a" * 254])
def test_a_file_name_kubernetes_refuses_as_a_key_is_refused(name: str) -> None:
    with pytest.raises(GenerationError, match="ConfigMap key"):
        render("x", "s.js", "export default function () {}\n", 1, "grafana/k6", files={name: b"a\n"})


def test_two_data_files_of_one_name_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "users.csv").write_text("user\nalice\n")
    (tmp_path / "b" / "users.csv").write_text("user\nbob\n")
    with pytest.raises(GenerationError, match=r"two data files are named 'users\.csv'"):
        data_files([tmp_path / "a" / "users.csv", tmp_path / "b" / "users.csv"])
    assert data_files([tmp_path / "a" / "users.csv"] * 2) == {"users.csv": b"user\nalice\n"}
    with pytest.raises(GenerationError, match="like the k6 script"):
        render("x", "s.js", "", 1, "grafana/k6", files={"s.js": b""})


def test_env_values_come_from_a_secret_the_testrun_names_never_from_the_configmap(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV_VALUES.items():
        monkeypatch.setenv(name, value)
    testrun, _ = rendered(tmp_path, spec=ENV_SPEC, profile="golden")
    VALIDATOR.validate(testrun)
    env = {e["name"]: e for e in testrun["spec"]["runner"]["env"]}
    secret_name = f"{testrun['metadata']['name']}-env"
    for name in ENV_VALUES:
        assert env[name] == {"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": name}}}
    # without --secret-values env: a template naming the keys, no value, not picked up by `kubectl apply -f DIR`
    out = tmp_path / "k8s"
    assert sorted(p.name for p in out.iterdir()) == ["configmap.yaml", SECRET_TEMPLATE, "testrun.yaml"]
    template = (out / SECRET_TEMPLATE).read_text()
    assert f"kubectl create secret generic {secret_name} --namespace default" in template
    assert '--from-literal=PERFHOUSE_TEST_TOKEN="$PERFHOUSE_TEST_TOKEN"' in template
    secret = yaml.safe_load(template)
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == secret_name
    assert secret["stringData"] == {name: "" for name in sorted(ENV_VALUES)}
    for file in out.iterdir():
        assert not any(v in file.read_text() for v in ENV_VALUES.values()), file


def test_secret_values_env_writes_a_private_secret_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV_VALUES.items():
        monkeypatch.setenv(name, value)
    _, configmap = rendered(tmp_path, "--secret-values", "env", spec=ENV_SPEC, profile="golden")
    path = tmp_path / "k8s" / "secret.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert yaml.safe_load(path.read_text())["stringData"] == ENV_VALUES
    assert not (tmp_path / "k8s" / SECRET_TEMPLATE).exists()
    assert not any(v in json.dumps(configmap) for v in ENV_VALUES.values())


def test_secret_values_env_without_the_variables_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VALUES:
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["k8s", "render", str(ENV_SPEC), "--profile", "golden", "-o",
                                       str(tmp_path / "k8s"), "--secret-values", "env"])
    assert result.exit_code == 4, result.output
    assert "PERFHOUSE_TEST_TENANT, PERFHOUSE_TEST_TOKEN are not set" in result.output
    assert not (tmp_path / "k8s").exists()


def test_a_secret_named_like_perfhouses_own_pod_variables_is_refused() -> None:
    from orchestrator.runners.base import ResultsSink
    from orchestrator.runners.k8s import results_env

    with pytest.raises(GenerationError, match="K6_TAGS"):
        render("x", "s.js", "", 1, "grafana/k6", env=results_env("r1", ResultsSink("http://h:1", "t")),
               secrets=["K6_TAGS"])


@pytest.mark.parametrize(
    ("var", "why"),
    [
        ({"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}, "value and valueFrom"),
        ({"name": "A", "valueFrom": {"secretKeyRef": {"name": "s"}}}, "a secret reference without a key"),
        ({"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "a/b"}}}, "a key Kubernetes refuses"),
        ({"name": "A", "valueFrom": {}}, "a valueFrom without a source"),
        ({"name": "A", "valeu": "x"}, "a misspelt field"),
    ],
)
def test_schema_refuses_env_the_cluster_would_not_take(var: dict[str, Any], why: str) -> None:
    manifests = render("x", "s.js", "", 1, "grafana/k6", env=[var])
    assert not VALIDATOR.is_valid(manifests.testrun), why
