"""A cluster warehouse (`?cluster=NAME`): rendered Replicated + Distributed DDL checked with sqlglot, and the
Distributed layout run on one engine (chdb behind the test front, configured with a one-node cluster)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlglot
import sqlglot.expressions as exp

from tests.integration.conftest import server_database
from tests.support.chfront import one_node_cluster_front
from warehouse.analysis.trends import trends
from warehouse.engine.backends import ServerBackend
from warehouse.engine.cluster import create_schema, render, single_server_tables, stage_engine
from warehouse.engine.schema import CURRENT_VERSION, MIGRATIONS, VIEWS
from warehouse.errors import WarehouseError
from warehouse.store import Warehouse

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tables() -> dict[str, str]:
    return single_server_tables()


def test_every_table_becomes_replicated_on_the_cluster_under_a_distributed_table(tables: dict[str, str]) -> None:
    statements = render(tables, "perf", "loadtests", views=VIEWS)
    assert {"runs", "requests", "k6_points", "aggregates", "ingested_files", "schema_migrations"} <= set(tables)
    assert statements[0] == "CREATE DATABASE IF NOT EXISTS loadtests ON CLUSTER perf"
    assert len(statements) == 1 + 2 * len(tables) + 1  # and the view runs_current
    assert statements[-1] == ("CREATE VIEW IF NOT EXISTS loadtests.runs_current ON CLUSTER perf AS "
                              "SELECT * FROM loadtests.runs FINAL")
    for name in tables:
        local, distributed = (s for s in statements if re.search(rf"loadtests\.{name}(_local)? ", s)
                              and not s.startswith("CREATE VIEW"))
        assert local.startswith(f"CREATE TABLE IF NOT EXISTS loadtests.{name}_local ON CLUSTER perf (")
        assert "MergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}'" in local
        assert re.search(r"ENGINE = Replicated\w*MergeTree", local)
        key = {"schema_migrations": "version", "ingest_claims": "token"}.get(name, "run_id")
        assert distributed == (f"CREATE TABLE IF NOT EXISTS loadtests.{name} ON CLUSTER perf AS loadtests.{name}_local "
                               f"ENGINE = Distributed('perf', 'loadtests', '{name}_local', cityHash64({key}))")
        for sql in (local, distributed):
            (tree,) = sqlglot.parse(sql, read="clickhouse")
            assert isinstance(tree, exp.Create)
    runs = next(s for s in statements if "loadtests.runs_local" in s)
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', updated_at)" in runs
    requests = next(s for s in statements if "loadtests.requests_local" in s)
    assert "CODEC(Gorilla(8), ZSTD(1))" in requests and "PARTITION BY toYYYYMM(ts)" in requests
    assert "ORDER BY (run_id, journey, step, ts)" in requests and "max_parts_to_merge_at_once = 10" in requests


def test_a_staging_copy_of_a_replicated_table_drops_only_the_replication() -> None:
    engine = ("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', ingested_at) "
              "ORDER BY batch SETTINGS index_granularity = 8192")
    assert stage_engine(engine) == "ReplacingMergeTree(ingested_at) ORDER BY batch SETTINGS index_granularity = 8192"
    assert stage_engine("ReplicatedMergeTree('/p', 'r') PARTITION BY toYYYYMM(ts) ORDER BY ts") == (
        "MergeTree PARTITION BY toYYYYMM(ts) ORDER BY ts")


def test_names_that_are_not_identifiers_are_refused(tables: dict[str, str]) -> None:
    with pytest.raises(WarehouseError, match="identifier"):
        render(tables, "perf; DROP TABLE runs", "default", views=VIEWS)
    with pytest.raises(WarehouseError, match="not a MergeTree table"):
        render({"odd": "CREATE TABLE default.odd (`a` UInt8) ENGINE = Log"}, "perf", "default", views=VIEWS)


@pytest.fixture(scope="module")
def one_node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ClickHouse HTTP interface over an engine whose configuration names the cluster `perf`."""
    with one_node_cluster_front(tmp_path_factory.mktemp("cluster")) as url:
        yield url


def test_the_same_queries_run_unchanged_over_distributed_tables(
        one_node_cluster: str, tables: dict[str, str], k6_output: Path, tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    url = server_database(one_node_cluster, request.node.name) + "?cluster=perf"
    backend = ServerBackend(url)
    # One engine has no Keeper and runs no ON CLUSTER DDL: the same layout with plain MergeTree under Distributed.
    create_schema(backend, tables, [(n, d) for n, d, _ in MIGRATIONS], replicated=False, on_cluster=False,
                  views=VIEWS)
    clustered = Warehouse.open(url)  # the schema is there at the current version: nothing to create
    engines = {r["name"]: r["engine"] for r in clustered.backend.query(
        "SELECT name, engine FROM system.tables WHERE database = currentDatabase()")}
    assert engines["requests"] == "Distributed" and engines["requests_local"] == "MergeTree"
    assert engines["runs"] == "Distributed" and engines["runs_local"] == "ReplacingMergeTree"

    result = clustered.ingest(k6_output)
    assert clustered.ingest(k6_output).duplicate  # what ingestion recorded reads back through Distributed
    single = Warehouse.open(f"chdb://{tmp_path / 'single'}")
    reference = single.ingest(k6_output)
    assert clustered.step_stats(result.run_id) == single.step_stats(reference.run_id)
    assert clustered.totals(result.run_id) == single.totals(reference.run_id)
    assert [r.requests for r in clustered.runs()] == [r.requests for r in single.runs()]
    parts = clustered.backend.query(
        "SELECT sum(rows) AS n FROM system.parts WHERE database = currentDatabase() AND table = 'requests_local' "
        "AND active")
    assert int(parts[0]["n"]) == result.rows  # the batch was attached to the local table, not to Distributed
    summaries = clustered.backend.query(
        "SELECT count() AS n FROM step_summaries_local WHERE run_id = {r:String}", {"r": result.run_id})
    assert int(summaries[0]["n"]) > 0  # the run's step summaries went beside its rows, where a rollback finds them
    trend, reference_trend = (trends(wh.backend, "p95").to_dict() for wh in (clustered, single))
    assert [p["value"] for s in trend["series"] for p in s["points"]] == \
        [p["value"] for s in reference_trend["series"] for p in s["points"]] != []
    leftover = clustered.backend.query(
        "SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND startsWith(name, 'stage_')")
    assert int(leftover[0]["n"]) == 0


def test_a_cluster_warehouse_at_another_version_is_refused_not_migrated(
        one_node_cluster: str, tables: dict[str, str], request: pytest.FixtureRequest) -> None:
    url = server_database(one_node_cluster, request.node.name) + "?cluster=perf"
    older = [(n, d) for n, d, _ in MIGRATIONS][:-1]
    create_schema(ServerBackend(url), tables, older, replicated=False, on_cluster=False, views=VIEWS)
    with pytest.raises(WarehouseError, match=f"needs {CURRENT_VERSION} and does not migrate a cluster"):
        Warehouse.open(url)


def test_cluster_ddl_prints_the_statements_and_refuses_a_bad_name(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from orchestrator.cli import main

    out = tmp_path / "cluster.sql"
    result = CliRunner().invoke(main, ["cluster-ddl", "perf", "--database", "loadtests", "-o", str(out)])
    assert result.exit_code == 0, result.output
    statements = [s for s in out.read_text().split(";\n") if s.strip()]
    assert all(len(sqlglot.parse(s, read="clickhouse")) == 1 for s in statements)
    assert any("ENGINE = Distributed('perf', 'loadtests', 'requests_local'" in s for s in statements)
    bad = CliRunner().invoke(main, ["cluster-ddl", "perf; DROP TABLE runs"])
    assert bad.exit_code == 1 and "not a plain identifier" in bad.output
