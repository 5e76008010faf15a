"""The team stack as files: docker-compose.yml against the Compose schema it follows, the perfhouse image's
Dockerfile, Prometheus' and Grafana's provisioning, and the Grafana dashboard's SQL checked by sqlglot.

The compose file is validated against tests/schemas/compose.schema.json (the part of the Compose
Specification it uses) and each service is checked for what it refers to: files that exist, commands
perfhouse has. Docker Compose itself loads the file in tests/e2e/test_stack_images.py, which also builds the
perfhouse image and runs its services' containers.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from tests.conftest import ROOT
from tests.support.clicheck import check
from tests.support.compose import COMPOSE, compose, interpolate
from tests.support.grafana import DASHBOARD_JSON, expand, grafana_targets
from warehouse.read.sqlgate import admit, warehouse_tables


def test_the_compose_file_follows_the_compose_schema() -> None:
    schema = json.loads((ROOT / "tests" / "schemas" / "compose.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(compose(), schema)


def test_the_schema_refuses_what_compose_would_refuse() -> None:
    schema = json.loads((ROOT / "tests" / "schemas" / "compose.schema.json").read_text(encoding="utf-8"))
    for broken in ({"services": {"db": {"imagee": "x"}}}, {"services": {"db": {"image": "x", "restart": "sometimes"}}},
                   {"services": {"db": {"image": "x", "depends_on": {"a": {"condition": "service_ready"}}}}},
                   {"services": {"db": {"image": "x", "volumes": ["no-target"]}}}, {"servics": {}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


def test_the_stack_has_every_service_a_team_needs() -> None:
    services = compose()["services"]
    assert {"clickhouse", "dashboard", "demo-api", "prometheus", "node-exporter", "grafana"} <= set(services)
    assert all(s["network_mode"] == "host" for s in services.values())  # ports on 127.0.0.1, nothing published


def test_every_image_name_is_a_variable_with_a_default() -> None:
    raw = COMPOSE.read_text(encoding="utf-8")
    for name, service in compose()["services"].items():
        match = re.fullmatch(r"\$\{(PERFHOUSE_[A-Z_]*IMAGE):-([^}]+)\}", service["image"])
        assert match, f"{name}: image {service['image']!r} is not ${{PERFHOUSE_..._IMAGE:-default}}"
        assert match[1] in raw.split("services:")[0], f"{match[1]} is not listed in the file's header"
    dashboard = compose()["services"]["dashboard"]
    assert interpolate(dashboard["image"]) == "perfhouse:local"
    assert interpolate(dashboard["image"], {"PERFHOUSE_IMAGE": "registry.example/perfhouse:1.2"}) == \
        "registry.example/perfhouse:1.2"


def test_the_perfhouse_services_build_from_the_dockerfile_and_run_real_commands() -> None:
    services = compose()["services"]
    for name in ("dashboard", "demo-api"):
        build = services[name]["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).is_file()
    dashboard = services["dashboard"]["command"]
    assert dashboard[0] == "perfhouse" and check(dashboard[1:]).problem == ""
    assert "clickhouse://perfhouse:perfhouse@127.0.0.1:8123/perfhouse" in dashboard
    assert services["dashboard"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    demo = services["demo-api"]["command"]
    assert demo[:3] == ["python", "-m", "orchestrator.demo_api"]
    shown = subprocess.run([sys.executable, *demo[1:], "--help"], capture_output=True, text=True, cwd=ROOT,
                           timeout=60)
    assert shown.returncode == 0 and "--port" in shown.stdout


def test_bind_mounts_name_files_of_this_repository() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and not source.startswith("./.perfhouse"):  # runs are written by perfhouse
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"


def test_the_dockerfile_copies_every_package_and_runs_the_dashboard() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()]
    assert next(line for line in lines if line.startswith("FROM")) == "FROM ${PYTHON_IMAGE}"
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in lines
    copied = [src for line in lines if line.startswith("COPY ") for src in line.split()[1:-1]]
    for src in copied:
        assert (ROOT / src).exists(), src
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for package in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        assert package.rstrip("*") in copied, f"the image lacks the package {package}"
    cmd = json.loads(next(line for line in lines if line.startswith("CMD ")).removeprefix("CMD "))
    assert cmd[0] == "perfhouse" and check(cmd[1:]).problem == ""
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".git" in ignored and ".perfhouse" in ignored


def test_prometheus_scrapes_the_node_exporter_of_the_stack() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    exporter = compose()["services"]["node-exporter"]["command"]
    listen = next(a.split("=", 1)[1] for a in exporter if a.startswith("--web.listen-address="))
    assert listen in targets


def test_the_grafana_dashboard_reads_the_warehouse_through_the_provisioned_datasource() -> None:
    source = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/perfhouse.yml").read_text())
    (datasource,) = source["datasources"]
    assert datasource["type"] == "grafana-clickhouse-datasource"
    assert datasource["jsonData"]["port"] == 8123 and datasource["jsonData"]["defaultDatabase"] == "perfhouse"
    board = json.loads(DASHBOARD_JSON.read_text(encoding="utf-8"))
    uids = {p["datasource"]["uid"] for p in board["panels"]} | {t["datasource"]["uid"] for _, t in grafana_targets()}
    uids |= {v["datasource"]["uid"] for v in board["templating"]["list"] if "datasource" in v}
    assert uids == {datasource["uid"]}
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/perfhouse.yml").read_text())
    mounted = {v.split(":")[1] for v in compose()["services"]["grafana"]["volumes"]}
    assert provider["providers"][0]["options"]["path"] in mounted
    assert "grafana-clickhouse-datasource" in compose()["services"]["grafana"]["environment"]["GF_INSTALL_PLUGINS"]


@pytest.mark.parametrize(("title", "target"), grafana_targets(), ids=[t for t, _ in grafana_targets()])
def test_each_grafana_panel_query_is_one_select_over_perfhouse_tables(title: str, target: dict[str, Any]) -> None:
    admitted = admit(expand(target["rawSql"]), warehouse_tables(), "perfhouse")
    assert admitted.tables, title
    assert target["format"] in (0, 1)  # time series or table


def test_the_grafana_run_variable_lists_runs() -> None:
    board = json.loads(DASHBOARD_JSON.read_text(encoding="utf-8"))
    run = next(v for v in board["templating"]["list"] if v["name"] == "run")
    assert admit(run["query"], warehouse_tables()).tables == ("runs_current",)  # one row per run (migration 17)


def test_compose_file_commands_are_lists_so_no_shell_reinterprets_them() -> None:
    for name, service in compose()["services"].items():
        if "command" in service:
            assert isinstance(service["command"], list), name


def test_the_sql_page_and_grafana_read_as_the_read_only_clickhouse_user() -> None:
    """The server creates perfhouse_reader from the mounted users.d file (its grants are checked by a
    ClickHouse engine in tests/integration/test_reader_user.py); the dashboard's SQL page and Grafana
    connect as it, with the password the server gets."""
    services = compose()["services"]
    clickhouse = services["clickhouse"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in clickhouse["volumes"] if v.startswith("./")}
    users = mounts["/etc/clickhouse-server/users.d/perfhouse-reader.xml"]
    access = mounts["/etc/clickhouse-server/config.d/perfhouse-access.xml"]
    user = ET.parse(ROOT / users).getroot().find("users/perfhouse_reader")
    assert user is not None
    password = user.find("password")
    assert password is not None and password.get("from_env") == "PERFHOUSE_READER_PASSWORD"
    secret = clickhouse["environment"]["PERFHOUSE_READER_PASSWORD"]
    database = clickhouse["environment"]["CLICKHOUSE_DB"]
    assert [q.text for q in user.findall("grants/query")] == [f"GRANT SELECT ON {database}.*"]
    improvements = ET.parse(ROOT / access).getroot().find("access_control_improvements")
    assert improvements is not None
    assert improvements.findtext("select_from_system_db_requires_grant") == "true"
    assert improvements.findtext("select_from_information_schema_requires_grant") == "true"

    page = urlsplit(services["dashboard"]["environment"]["PERFHOUSE_SQL_WAREHOUSE"])
    assert (page.scheme, page.username, page.password, page.path) == (
        "clickhouse", "perfhouse_reader", secret, f"/{database}")
    source = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/perfhouse.yml").read_text())
    (datasource,) = source["datasources"]
    assert datasource["jsonData"]["username"] == "perfhouse_reader"
    assert datasource["secureJsonData"]["password"] == secret
    assert datasource["jsonData"]["defaultDatabase"] == database
