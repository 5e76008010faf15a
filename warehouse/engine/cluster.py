"""The warehouse on a ClickHouse cluster: Replicated tables on every node, Distributed tables over them.

`clickhouse://user:pass@host:8123/db?cluster=NAME` lays the warehouse out for the cluster NAME (as named
in the servers' `remote_servers`): each table T becomes `T_local`, a Replicated*MergeTree created ON
CLUSTER with the same columns, codecs, partition and sorting keys and settings as the single-server
table, and `T`, a Distributed table over `T_local` on every node. Every query reads and writes `T` as on a
single server, unchanged; only the statements that change a table's parts (ingestion's staging tables,
ATTACH PARTITION, the DELETE of a failed batch) address `T_local` on the node perfhouse is connected to.

The single-server schema is the one source: the migrations are applied to a scratch embedded warehouse
(in a child process, as one process opens one embedded warehouse at a time) and each table's CREATE
statement is rewritten, so the cluster's tables always match what the migrations build. Rows written
through a Distributed table are placed by cityHash64(run_id) (a run's rows on one shard); a batch's rows
are attached on the connected node's shard, so a run ingested through several nodes may span shards,
which the Distributed reads (and `distributed_product_mode = 'global'` for subqueries) handle.
A warehouse created at one schema version is not migrated on the cluster later: perfhouse says which
version it needs, and `perfhouse cluster-ddl` prints the statements of the current schema.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

from warehouse.engine.backends import Backend, quote_identifier
from warehouse.errors import WarehouseError

LOCAL = "_local"
REPLICA_PATH = "/clickhouse/tables/{shard}/{database}/{table}"  # the servers' macros fill these in
SHARDING = {"schema_migrations": "version", "ingest_claims": "token"}  # every other table is placed by its run
# Settings of every connection to a cluster warehouse: a write through a Distributed table is in place when
# the INSERT returns (the next statement reads it), and a subquery over a Distributed table runs once, on
# the node that asked, with its result sent to the shards.
CONNECTION_SETTINGS = {"insert_distributed_sync": 1, "distributed_product_mode": "global"}

_SCRATCH = """
import json, sys, tempfile
from warehouse.engine.backends import ChdbBackend
from warehouse.engine.schema import migrate
with tempfile.TemporaryDirectory(prefix="perfhouse-schema-") as tmp:
    backend = ChdbBackend("chdb://" + tmp + "/wh", linger_s=0)
    with backend.session():
        migrate(backend)
        rows = backend.query("SELECT name, create_table_query FROM system.tables "
                             "WHERE database = currentDatabase() AND NOT startsWith(name, 'stage_') AND engine != 'View' "
                             "ORDER BY name")
    backend.release()
print(json.dumps({r["name"]: r["create_table_query"] for r in rows}))
"""


def single_server_tables() -> dict[str, str]:
    """Each table of the current schema and its single-server CREATE statement, from a scratch warehouse."""
    proc = subprocess.run([sys.executable, "-c", _SCRATCH], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise WarehouseError(f"could not build the schema in a scratch warehouse: {proc.stderr.strip()[-300:]}")
    tables: dict[str, str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return tables


_CREATE = re.compile(r"CREATE TABLE (?:\w+\.)?(\w+) \((.*)\) ENGINE = (\w*)MergeTree(?:\(([^)]*)\))?(.*)", re.S)


def render(
    tables: dict[str, str], cluster: str, database: str, replicated: bool = True, on_cluster: bool = True
) -> list[str]:
    """The statements that create the warehouse on `cluster` in `database`: per table, `T_local` (Replicated,
    ON CLUSTER) then `T` (Distributed). `replicated=False, on_cluster=False` renders the same layout for one
    engine without ClickHouse Keeper (plain MergeTree under the Distributed tables), to try it on one node."""
    for what, name in (("cluster", cluster), ("database", database)):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise WarehouseError(f"{what} name {name!r} is not a plain identifier (letters, digits, _)")
    where = f" ON CLUSTER {cluster}" if on_cluster else ""
    # every node needs the database the Distributed tables name
    statements = [f"CREATE DATABASE IF NOT EXISTS {database}{where}"] if on_cluster else []
    for name, create in sorted(tables.items()):
        m = _CREATE.fullmatch(create.strip())
        if m is None:
            raise WarehouseError(f"table {name}: not a MergeTree table perfhouse can lay out on a cluster")
        _, columns, kind, args, rest = m.groups()
        local = quote_identifier(name + LOCAL)
        if replicated:
            engine_args = ", ".join([f"'{REPLICA_PATH}'", "'{replica}'", *([args] if args else [])])
            engine = f"Replicated{kind}MergeTree({engine_args})"
        else:
            engine = f"{kind}MergeTree" + (f"({args})" if args else "")
        statements.append(f"CREATE TABLE IF NOT EXISTS {database}.{local}{where} ({columns}) ENGINE = {engine}{rest}")
        key = SHARDING.get(name, "run_id")
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {database}.{name}{where} AS {database}.{local} "
            f"ENGINE = Distributed('{cluster}', '{database}', '{local}', cityHash64({key}))"
        )
    from warehouse.engine.schema import VIEWS

    for name, select in sorted(VIEWS.items()):  # over the Distributed tables (a run's rows are on one shard: FINAL holds)
        statements.append(f"CREATE VIEW IF NOT EXISTS {database}.{name}{where} AS {select.format(db=database + '.')}")
    check(statements)
    return statements


def check(statements: list[str]) -> None:
    """Every statement parses as one ClickHouse statement (sqlglot)."""
    import sqlglot  # loads for a cluster's DDL only

    for sql in statements:
        try:
            parsed = sqlglot.parse(sql, read="clickhouse")
        except sqlglot.errors.SqlglotError as exc:
            raise WarehouseError(f"rendered DDL does not parse: {exc}: {sql[:200]}") from None
        if len(parsed) != 1 or parsed[0] is None:
            raise WarehouseError(f"rendered DDL is not one statement: {sql[:200]}")


def stage_engine(engine_full: str) -> str:
    """A local table's engine clause for a staging copy of it: the same engine without replication (a copy
    with the Replicated engine would claim the table's own Keeper path), keys and settings kept."""
    m = re.fullmatch(r"Replicated(\w*)MergeTree\('[^']*', '[^']*'(?:, ([^)]*))?\)(.*)", engine_full.strip(), re.S)
    if m is None:
        return engine_full
    kind, args, rest = m.groups()
    return f"{kind}MergeTree" + (f"({args})" if args else "") + rest


def home(backend: Backend, name: str) -> str:
    """The table whose parts hold `name`'s rows on the connected node: `name`, or `name_local` on a cluster."""
    return quote_identifier(name + LOCAL if getattr(backend, "cluster", None) else name)


def stage_clause(backend: Backend, name: str) -> str:
    """`AS <table>[ ENGINE = ...]` for a staging copy of warehouse table `name` on this backend."""
    if not getattr(backend, "cluster", None):
        return f"AS {quote_identifier(name)}"
    local = home(backend, name)
    rows = backend.query(
        "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {t:String}", {"t": local}
    )
    if not rows:
        raise WarehouseError(f"the cluster warehouse has no table {local}")
    engine = str(rows[0]["engine_full"])
    return f"AS {local}" + (f" ENGINE = {stage_engine(engine)}" if engine.startswith("Replicated") else "")


def ensure_schema(backend: Backend, version: int, describe: list[tuple[int, str]]) -> int:
    """Create the cluster schema when the warehouse has none; refuse one at another schema version."""
    have = backend.query(
        "SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = 'schema_migrations'"
    )
    if int(have[0]["n"]):
        rows = backend.query("SELECT max(version) AS v FROM schema_migrations")
        at = int(rows[0]["v"] or 0) if rows else 0
        if at != version:
            raise WarehouseError(
                f"the cluster warehouse is at schema version {at}; this perfhouse needs {version} and does not "
                "migrate a cluster: apply the changes with ON CLUSTER (`perfhouse cluster-ddl` prints the schema)"
            )
        return at
    return create_schema(backend, single_server_tables(), describe)


def create_schema(
    backend: Backend,
    tables: dict[str, str],
    describe: list[tuple[int, str]],
    replicated: bool = True,
    on_cluster: bool = True,
) -> int:
    """Create the rendered tables on the backend's cluster and record every migration as applied."""
    cluster = str(getattr(backend, "cluster", ""))
    database = str(getattr(backend, "database", "default"))
    for statement in render(tables, cluster, database, replicated, on_cluster):
        backend.command(statement)
    for number, description in describe:
        backend.command(
            "INSERT INTO schema_migrations (version, description) VALUES ({v:UInt32}, {d:String})",
            {"v": number, "d": description},
        )
    return max((n for n, _ in describe), default=0)
