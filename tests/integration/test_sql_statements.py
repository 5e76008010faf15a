"""Every SQL statement perfhouse sends — reads, writes, DDL — parses with sqlglot's ClickHouse dialect.

A workload drives every statement family on both backends (embedded chdb, and a ClickHouse server: chfront,
here with a one-node cluster so the cluster layout runs too) while a recorder (tests/support/sql_recorder.py)
catches each statement where it leaves the process. Each must parse with `sqlglot.parse(sql, read="clickhouse")`
into a real tree, not sqlglot's fallback `Command` (unparsed text); and it must come back the same when generated
and parsed again. Statements sqlglot cannot read though ClickHouse does are listed in SQLGLOT_GAPS, each with its
reason and sqlglot's version, and are parsed by ClickHouse's own parser instead (formatQuery: EXPLAIN SYNTAX would
take only a SELECT, and only with every {name:Type} parameter given a value).

A static check keeps the workload honest: every string in warehouse/, orchestrator/ and dashboard/ that starts like a SQL
statement must have been seen in a recorded statement, so a statement added without a test that sends it fails
here."""

from __future__ import annotations

import ast
import functools
import gzip
import json
import logging
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlglot
import sqlglot.expressions as exp
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.cli import main
from tests.integration.conftest import server_database
from tests.integration.test_fuzz_input import BAD_T, FORMATS, T0, Format, valid_lines
from tests.support.chfront import one_node_cluster_front
from tests.support.sql_recorder import Recorder, recording
from warehouse.engine.backends import literal
from warehouse.read import queries

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("warehouse", "orchestrator", "dashboard")


@dataclass(frozen=True)
class Gap:
    """Statements sqlglot cannot parse (or only as an unparsed `Command`) though ClickHouse does: matched by a
    pattern over the statement, with the reason and the sqlglot version the gap was seen with."""

    pattern: str
    reason: str
    sqlglot: str = "30.31.0"  # seen with this version

    def matches(self, sql: str) -> bool:
        return re.match(self.pattern, sql.strip(), re.S) is not None


SQLGLOT_GAPS = [
    Gap(r"INSERT INTO \S+( \([^()]*\))? FORMAT \w+$",
        "clickhouse-connect's insert of a body in a format (the server backend's load_file): sqlglot reads no "
        "FORMAT clause right after INSERT's columns, where the data follows (after a SELECT it does)"),
    Gap(r"SYSTEM STOP MERGES \w+$", "sqlglot parses no SYSTEM statement (Command)"),
    Gap(r"ALTER TABLE \w+ ATTACH PARTITION ID '\w+' FROM \w+$",
        "ALTER TABLE ... ATTACH PARTITION ID ... FROM: sqlglot keeps it as an unparsed Command"),
    Gap(r"ALTER TABLE \w+ (MODIFY COLUMN|MODIFY SETTING|MATERIALIZE COLUMN|UPDATE) ",
        "ALTER TABLE's MODIFY COLUMN (a type, REMOVE DEFAULT), MODIFY SETTING, MATERIALIZE COLUMN and UPDATE (a "
        "mutation): sqlglot keeps them as an unparsed Command"),
    Gap(r"ALTER TABLE \w+ REMOVE TTL$", "ALTER TABLE ... REMOVE TTL: an unparsed Command in sqlglot"),
]


# -- the workload ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ClickHouse HTTP interface (chfront) whose engine knows a one-node cluster `perf`."""
    with one_node_cluster_front(tmp_path_factory.mktemp("sql-front")) as url:
        yield url


def cli(url: str, *args: str) -> str:
    out = CliRunner().invoke(main, ["--warehouse", url, *args], catch_exceptions=False)
    assert out.exit_code in (0, 3, 7, 8, 10), out.output  # a verdict or rejected lines are fine here
    return out.output


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return path


def document(fmt: Format, lines: list[str]) -> str:
    return "\n".join(([fmt.header] if fmt.header else []) + lines + ([fmt.footer] if fmt.footer else [])) + "\n"


def result_files(tmp: Path) -> tuple[Path, list[Path]]:
    """Small files of every format: a valid k6 JSON file (loaded straight into the warehouse tables), and of every
    format one with rejected lines among its valid ones (staged), gzipped; then Locust's two CSV tables."""
    files = []
    for fmt in FORMATS:
        lines = valid_lines(fmt, 12)
        bad = [fmt.bad("-10", fmt.time(BAD_T)), "this is not a record at all"]
        if fmt.name == "influx-line":  # JMeter's backend listener too: interval aggregates
            lines.append(f"jmeter,application=shop,transaction=all,statut=all count=5i,avg=12.5 {T0 * 10**9}")
        files.append(write(tmp / f"damaged.{fmt.suffix}.gz", gzip.compress(
            document(fmt, lines[:4] + bad + lines[4:]).encode())))
    k6 = next(f for f in FORMATS if f.name == "k6-json")
    # one check on its last request: a file with checks joins them to its requests, the damaged one has none
    check = ('{"type":"Point","metric":"checks","data":{"time":"2024-01-01T00:00:11.5Z","value":1,'
             '"tags":{"name":"s2","check":"status is 200"}}}')
    valid = write(tmp / "shop_20240101-000000.json", document(k6, [*valid_lines(k6, 12), check]))
    stats = ("Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
             "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,"
             "99.99%,100%\nGET,/items,10,1,20,21.5,10,40,100,2.5,0.1,20,22,24,25,30,35,38,40,40,40,40\n"
             ",Aggregated,10,1,20,21.5,10,40,100,2.5,0.1,20,22,24,25,30,35,38,40,40,40,40\n")
    history = ("Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,"
               "100%,Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,"
               "Total Min Response Time,Total Max Response Time,Total Average Content Size\n"
               f"{T0},5,,Aggregated,2.5,0,20,22,24,25,30,35,38,40,40,40,40,10,1,20,21.5,10,40,100\n"
               f"{T0 + 1},5,,Aggregated,N/A,0,20,22,24,25,30,35,38,40,40,40,40,12,1,20,21.5,10,40,100\n")
    files.append(write(tmp / "locust" / "loc_stats.csv", stats))
    files.append(write(tmp / "locust" / "loc_stats_history.csv", history))
    return valid, files


def k6_run_dir(tmp: Path, shift: int, summary: str = "k6-summary.json") -> Path:
    """k6 JSON results (requests `shift` hours later than the others) with k6's own summary beside them."""
    fmt = next(f for f in FORMATS if f.name == "k6-json")
    lines = [line.replace("T00:", f"T{shift:02d}:") for line in valid_lines(fmt, 12)]
    directory = tmp / f"k6-{shift}"
    write(directory / "k6.json", document(fmt, lines))
    write(directory / summary, json.dumps({
        "metrics": {"http_reqs": {"count": 24, "rate": 2.0},
                    "http_req_duration": {"avg": 30, "min": 10, "med": 30, "max": 59, "p(90)": 50, "p(95)": 55}},
        "root_group": {"name": "", "path": "", "id": "d41d8cd98f00b204e9800998ecf8427e", "groups": [], "checks": []},
    }))
    return directory


def migrate_from_old_versions(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A warehouse made before migration 5 (k6 tags as a Map) and 8 (an imported batch without its run), then
    opened by this build: every migration from 0 runs, and those that look at what is there find work."""
    from warehouse.engine import schema
    from warehouse.store import Warehouse

    every = list(schema.MIGRATIONS)
    monkeypatch.setattr(schema, "MIGRATIONS", [m for m in every if m[0] < 5])
    wh = Warehouse.open(url)
    wh.backend.command(
        "INSERT INTO k6_points (run_id, batch, ts, metric, value, tags) VALUES "
        "('old', 'b0', '2024-01-02 03:04:05.000001', 'http_reqs', 1, {'method': 'GET'})")
    monkeypatch.setattr(schema, "MIGRATIONS", [m for m in every if m[0] < 8])
    wh = Warehouse.open(url)
    wh.backend.command(
        "INSERT INTO ingested_files (batch, run_id, sha256, path, format, state, rows) VALUES "
        "('b0', 'old', 'x', 'old.json', 'k6-json', 'done', 1)")
    monkeypatch.setattr(schema, "MIGRATIONS", every)
    Warehouse.open(url)  # here, not in the killed ingest's process: its statements are recorded


def kill_mid_ingest(url: str, path: Path, at: str = "attaching-recorded") -> None:
    """A `perfhouse ingest` killed at a step of its commit (its SQL is the ingest's, recorded elsewhere); the next
    open in this process recovers what it left."""
    env = {**os.environ, "PERFHOUSE_TEST_KILL_AT": at}
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "--warehouse", url, "ingest", str(path)],
                          env=env, capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr


def shipped_samples() -> list[Path]:
    """The results files the tests ship under tests/data/ (a format added with its samples there is driven here
    without naming it; its own test may check more)."""
    root = ROOT / "tests" / "data"
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".md") if root.is_dir() else []


def dashboard_example_sql() -> str:
    """The query the dashboard's SQL page offers (read from its source: importing the page loads Streamlit)."""
    tree = ast.parse((ROOT / "dashboard" / "pages.py").read_text())
    (value,) = [n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "_EXAMPLE_SQL" for t in n.targets)]
    return str(ast.literal_eval(value))


def drive(url: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every statement family on one warehouse: migrations from 0, every format's ingest (direct, staged, with
    rejected lines, gzip, a duplicate, a kill and its recovery), the receiver, infrastructure samples, SLOs,
    reports, compare, trends, the gate, baselines, retention, the dashboard's reads and the SQL page's gate."""
    from warehouse import ingest
    from warehouse.analysis import slo
    from warehouse.engine.owners import OWNER_LABEL, Owner
    from warehouse.ingest.receive import Write, store_writes
    from warehouse.store import RunFilter, RunInfo, Warehouse

    migrate_from_old_versions(url, monkeypatch)
    valid, other = result_files(tmp)
    kill_mid_ingest(url, valid)
    jtl = next(f for f in FORMATS if f.name == "jtl-csv")
    if not url.startswith("chdb:"):  # done, its staging tables left: a shared server drops those of finished batches
        kill_mid_ingest(url, write(tmp / "spare.jtl", document(jtl, valid_lines(jtl, 5))), "done-recorded")
    wh = Warehouse.open(url)  # recovers the killed batches
    for shift in (0, 1):
        cli(url, "ingest", str(k6_run_dir(tmp, shift)), "--run-name", "shop", "--label", "team=it's")
    cli(url, "ingest", str(k6_run_dir(tmp, 2, "run-summary.json")))  # a summary by another name: to its directory's run
    cli(url, "ingest", str(valid))  # the killed ingest's file, which recovery took back: ingested
    cli(url, "ingest", str(valid))  # a duplicate
    cli(url, "ingest", str(other[0]))  # k6 JSON with rejected lines: loaded straight in, then taken back and staged
    if samples := shipped_samples():
        cli(url, "ingest", *map(str, samples))
    with monkeypatch.context() as m:
        # the staged path, as files over a few MB take it (the limit where the ingest reads it)
        m.setattr(sys.modules[ingest.ingest_file.__module__], "DIRECT_MAX_BYTES", 0)
        cli(url, "ingest", *map(str, other))
    shop = sorted((r for r in wh.runs() if r.name == "shop"), key=lambda r: r.started_at)
    run_id = shop[0].run_id
    dead = Owner(socket.gethostname(), 2**22 + 1, "1")  # a pid above any the kernel gives
    orphan = RunInfo("orphan-run", "k6", status="running", name="orphan", labels={OWNER_LABEL: dead.token})
    wh.save_run(orphan)
    info = RunInfo("live-run", "k6", status="running", name="live")
    wh.save_run(info)
    stamp = T0 * 10**9
    store_writes(wh.backend, info.run_id, [Write.of(
        f"http_req_duration,name=s1,status=200 value=12 {stamp}\nhttp_reqs,name=s1 value=1 {stamp}\n".encode())])
    wh.add_infra_samples(info.run_id, [("2024-01-01T00:00:01Z", "http://127.0.0.1:9/metrics", "cpu", {"a": "b"}, 0.5)])
    wh.finish_run(info, "completed", notes="done")
    slo.evaluate(wh.backend, run_id, [slo.Objective("p95", 50.0), slo.Objective("error_rate", 0.01, journey="default")])
    slo.stored(wh.backend, run_id)
    cli(url, "baseline", "pin", run_id, "--note", "the first")
    for fmt in ("json", "junit"):  # Markdown and HTML render the same report (no SQL of their own)
        cli(url, "report", shop[-1].run_id, "--format", fmt, "-o", str(tmp / f"report.{fmt}"))
    cli(url, "compare", shop[-1].run_id, "--json")
    cli(url, "compare", shop[-1].run_id, "--baseline", run_id, "--md")
    cli(url, "trends", "--json")
    cli(url, "gate", shop[-1].run_id, "--junit", str(tmp / "junit.xml"))
    cli(url, "baseline", "list")
    cli(url, "baseline", "unpin", run_id)
    cli(url, "runs", "--json")  # aborts the orphan
    for days in ("30d", "off", None):
        cli(url, "retention", *(("--raw-points", days) if days else ()))
    wh.step_stats(run_id), wh.totals(run_id), wh.latency_over_time(run_id), wh.errors(run_id)
    wh.run_list(RunFilter(tool="k6", since="2024-01-01")), wh.run_facets(), wh.run_choices()
    wh.latency_distribution([run_id]), wh.run_groups(), wh.fingerprints(), wh.data_version()
    wh.infra_over_time(info.run_id), wh.table_columns(), wh.infra_samples(info.run_id), wh.aggregates(run_id)
    wh.read_only_sql("SELECT step, count() AS n FROM requests GROUP BY step ORDER BY step")
    wh.read_only_sql(dashboard_example_sql())
    wh.tool_summaries(run_id)
    values = {"String": "", "UInt32": 1, "Float64": 0.5, "Array(UInt32)": [], "Array(String)": ["runs"]}
    for sql in queries.ALL.values():  # every named query, those only some pages or flags reach too
        wh.backend.query(sql, {key: values[kind] for key, kind in queries.parameters(sql).items()})


def drive_cluster(server: str, tmp: Path) -> None:
    """A warehouse laid out for a cluster (`?cluster=perf`: local tables under Distributed ones), on the one engine:
    its open and an ingest through staging tables made from the local tables."""
    from warehouse.engine.backends import ServerBackend
    from warehouse.engine.cluster import create_schema, single_server_tables
    from warehouse.engine.schema import MIGRATIONS, VIEWS
    from warehouse.store import Warehouse

    url = server_database(server, "sql_cluster") + "?cluster=perf"
    create_schema(ServerBackend(url), single_server_tables(), [(n, d) for n, d, _ in MIGRATIONS],
                  replicated=False, on_cluster=False, views=VIEWS)
    _, other = result_files(tmp)
    Warehouse.open(url).ingest(other[0])


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, cluster_server: str) -> Recorder:
    """The statements of the workload on both backends, and those `cluster-ddl` prints for a user to run."""
    rec = Recorder()
    with recording(rec), pytest.MonkeyPatch.context() as monkeypatch:
        drive(f"chdb://{tmp_path_factory.mktemp('sql-chdb') / 'warehouse'}", tmp_path_factory.mktemp("sql-c"),
              monkeypatch)
        drive(server_database(cluster_server, "sql_server"), tmp_path_factory.mktemp("sql-s"), monkeypatch)
        drive_cluster(cluster_server, tmp_path_factory.mktemp("sql-k"))
    for statement in CliRunner().invoke(main, ["cluster-ddl", "perf"]).output.split(";\n"):
        if statement.strip():
            rec.printed(statement.strip())
    return rec


# -- the checks ----------------------------------------------------------------------------------------------

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its fallback warnings are what parse_error reports


def distinct(recorded: Recorder) -> list[str]:
    """The statements recorded, one of each shape: the same statement for another batch (its staging tables and
    ids are 32 hex digits) is the same to a parser."""
    shapes: dict[str, str] = {}
    for sql in recorded.statements:
        shapes.setdefault(re.sub(r"[0-9a-f]{32}", "0" * 32, sql), sql)
    return list(shapes.values())


@functools.cache
def parse_error(sql: str) -> str | None:
    """Why sqlglot cannot read `sql` as ClickHouse (None when it can, into a real tree)."""
    queries.teach_sqlglot_plural_inclusive_quantiles()
    try:
        trees = sqlglot.parse(sql, read="clickhouse")
    except sqlglot.errors.SqlglotError as exc:
        return str(exc).splitlines()[0]
    if not trees or any(t is None for t in trees):
        return "no statement"
    if any(isinstance(t, exp.Command) for t in trees):
        return "parsed only as an unparsed Command"
    return None


def shown(recorded: Recorder, sqls: Iterable[str]) -> str:
    return "\n\n".join(f"{sorted(recorded.statements[sql])}: {sql[:2000]}" for sql in sqls)


def test_the_workload_sends_every_statement_family_on_both_backends(recorded: Recorder) -> None:
    seen = {via for vias in recorded.statements.values() for via in vias}
    assert seen == {"chdb", "server", "printed"}
    families = ("CREATE TABLE", "CREATE VIEW", "ALTER TABLE", "INSERT INTO", "SELECT",
                "DELETE FROM", "DROP TABLE", "TRUNCATE TABLE", "SYSTEM STOP MERGES")
    for via, prefixes in (("chdb", (*families, "SET ")), ("server", families)):  # a server takes settings per query
        for prefix in prefixes:
            assert any(sql.lstrip().startswith(prefix) and via in vias for sql, vias in recorded.statements.items()), \
                (prefix, via)


def test_every_statement_sent_parses_with_sqlglot(recorded: Recorder) -> None:
    failed = [sql for sql in distinct(recorded)
              if parse_error(sql) and not any(g.matches(sql) for g in SQLGLOT_GAPS)]
    assert not failed, "\n\n".join(f"{parse_error(sql)}: {shown(recorded, [sql])}" for sql in failed)


def test_every_statement_comes_back_the_same_from_sqlglot(recorded: Recorder) -> None:
    """Parse, generate, parse again: the same tree where sqlglot keeps its first reading, else the same text from
    then on (sqlglot rewrites if() as CASE and `a NOT IN b` as `NOT (a IN b)` on the way, which parse to other
    but equivalent trees); either way nothing of the statement is lost or misread."""
    changed = []
    for sql in distinct(recorded):
        if parse_error(sql):
            continue
        trees = sqlglot.parse(sql, read="clickhouse")
        generated = [t.sql(dialect="clickhouse") for t in trees if t is not None]
        again = [sqlglot.parse_one(g, read="clickhouse") for g in generated]
        if again != trees and [t.sql(dialect="clickhouse") for t in again] != generated:
            changed.append(sql)
    assert not changed, shown(recorded, changed)


def test_what_sqlglot_cannot_parse_clickhouse_does(recorded: Recorder, cluster_server: str) -> None:
    """The statements of SQLGLOT_GAPS parse with ClickHouse's own parser (formatQuery parses any statement and keeps
    its {name:Type} parameters as they are); every gap is still needed (a newer sqlglot may parse one)."""
    import clickhouse_connect

    gaps = [sql for sql in distinct(recorded) if parse_error(sql) and any(g.matches(sql) for g in SQLGLOT_GAPS)]
    used = {g.pattern for g in SQLGLOT_GAPS for sql in gaps if g.matches(sql)}
    assert used == {g.pattern for g in SQLGLOT_GAPS}, "a gap no statement needs any more: remove it"
    port = int(cluster_server.rsplit(":", 1)[1].split("/", 1)[0])
    client = clickhouse_connect.get_client(host="127.0.0.1", port=port, compress=False)
    try:
        for sql in gaps:
            formatted = client.command("SELECT formatQuery({q:String})", parameters={"q": sql})
            assert str(formatted).split()[0] == sql.split()[0], sql
    finally:
        client.close()


def test_every_named_query_parses_as_one_select() -> None:
    """queries.ALL is every query of warehouse/queries.py; check_all() parses each as a single SELECT."""
    import warehouse.read.queries as module

    checked = queries.check_all()
    names = {n for n, v in vars(module).items() if n.isupper() and not n.startswith("_") and isinstance(v, str)}
    assert set(checked) == names == set(queries.ALL) and len(checked) > 50


# -- the static check: no statement in the code that the workload does not send -------------------------------

STATEMENT = re.compile(r"\s*(SELECT|INSERT INTO|CREATE|ALTER TABLE|DROP|WITH|DELETE FROM|TRUNCATE|RENAME|OPTIMIZE|"
                       r"SYSTEM|SET|EXCHANGE|DETACH|ATTACH|UPDATE|SHOW|DESCRIBE|EXPLAIN|KILL|GRANT|REVOKE)\s+\S")
# Strings that start like a statement but are not sent as written, by file name and text (a text of 40 characters
# or more stands for every string that starts with it): each says why.
NOT_SENT = {
    ("backends.py", "INSERT INTO "): "a prefix the server backend checks for and cuts off (insert_from_file)",
    ("queries.py", "\nSELECT run_id, count() AS count, min(duration_ms) AS min_ms, max(duration_ms) AS max_ms,"):
        "LATENCY_DISTRIBUTION: its LEVELS are replaced where it is defined; the workload sends queries.ALL's text",
}


@dataclass(frozen=True)
class Literal:
    """A string in the code that starts like a SQL statement, as a pattern its sent text must match somewhere."""

    where: str
    text: str
    pattern: re.Pattern[str]
    anchor: str  # its longest fixed piece, to find candidate statements fast


def _piece(text: str) -> str:
    """A fixed part of a statement's text as a pattern: whitespace as any whitespace; `{name}` (a str.format field)
    and `$name` (a string.Template field, queries.py) as anything; `{{`, a format's escaped brace, as one or two."""
    out = []
    for token in re.split(r"(\s+|\{\{|\}\}|\{[A-Za-z_][A-Za-z0-9_]*\}|\$[a-z_]+)", text):
        if not token:
            continue
        if token.isspace():
            out.append(r"\s*")
        elif token in ("{{", "}}"):
            out.append(re.escape(token[0]) + "{1,2}")
        elif re.fullmatch(r"\{[A-Za-z_][A-Za-z0-9_]*\}|\$[a-z_]+", token):
            out.append(r"[\s\S]*?")
        else:
            out.append(re.escape(token))
    return "".join(out)


def literals_in(source: str, where: str) -> list[Literal]:
    """The strings and f-strings of one module's source that start like a SQL statement (docstrings, patterns given
    to `re` and the strings of NOT_SENT left out); `where` is the module's path, named in each."""
    tree = ast.parse(source, where)
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body \
                and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
            skip.add(id(node.body[0].value))
        if isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "re":
            skip.update(id(a) for a in node.args[:1])
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            parts: list[str | None] = [node.value]
        elif isinstance(node, ast.JoinedStr):
            parts = [v.value if isinstance(v, ast.Constant) else None for v in node.values]
        else:
            continue
        if not STATEMENT.match(parts[0] if isinstance(parts[0], str) else ""):
            continue
        text = "".join(p if p is not None else "{}" for p in parts)
        if any(Path(where).name == name and (text == start or (len(start) >= 40 and text.startswith(start)))
               for name, start in NOT_SENT):
            continue
        pattern = "".join(_piece(p.strip()) if p is not None else r"[\s\S]*?" for p in parts)
        fixed = [p for part in parts if part for p in re.split(r"\{[^{}]*\}|\$[a-z_]+|\s+", part)]
        found.append(Literal(f"{where}:{node.lineno}", text, re.compile(pattern), max(fixed, key=len)))
    return found


def sql_literals() -> list[Literal]:
    """Every string in warehouse/, orchestrator/ and dashboard/ that starts like a SQL statement."""
    return [lit for root in SOURCES for path in sorted((ROOT / root).rglob("*.py"))
            for lit in literals_in(path.read_text(), str(path.relative_to(ROOT)))]


def unseen(literals: list[Literal], recorded: Recorder) -> list[Literal]:
    sent = list(recorded.statements)
    return [lit for lit in literals if not any(lit.pattern.search(sql) for sql in sent if lit.anchor in sql)]


def test_every_statement_in_the_code_is_sent_by_the_workload(recorded: Recorder) -> None:
    """A statement added to warehouse/, orchestrator/ or dashboard/ fails here until the workload above sends it (and so the
    parse tests check it): each string that starts like a statement must be part of a recorded statement."""
    literals = sql_literals()
    assert len(literals) > 150
    missed = unseen(literals, recorded)
    assert not missed, "\n".join(f"{lit.where}: {lit.text[:160]!r}" for lit in missed)


def test_the_static_check_finds_a_statement_the_workload_does_not_send(recorded: Recorder) -> None:
    """What the check reads as a statement, and that one nobody sends is reported (while the same text with the
    workload's table and values in its fields is found)."""
    source = '''"""SELECT in a docstring is prose."""
import re
NEW = f"SELECT count() AS n FROM {table} WHERE batch = {{b:String}} AND tool = 'gatling'"
SENT = f"SELECT DISTINCT partition_id FROM system.parts WHERE database = currentDatabase() AND table = {where}"
PATTERN = re.compile("SELECT (.*) FROM")
LABEL = "DELETE"
'''
    literals = literals_in(source, "warehouse/example.py")
    assert [lit.where for lit in literals] == ["warehouse/example.py:3", "warehouse/example.py:4"]
    assert [lit.where for lit in unseen(literals, recorded)] == ["warehouse/example.py:3"]


# -- values spliced into statements --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_client(cluster_server: str) -> Iterator[Any]:
    import clickhouse_connect

    port = int(cluster_server.rsplit(":", 1)[1].split("/", 1)[0])
    client = clickhouse_connect.get_client(host="127.0.0.1", port=port, compress=False)
    yield client
    client.close()


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.sampled_from(["'", "\\", "\\'", "''", "\n", "\r", "\t", "\0", "?", "{x:String}", "--",
                                           "/*", "`", '"', "é", "😀"]),
                          st.text(st.characters(blacklist_categories=("Cs",)), max_size=5)), max_size=6).map("".join))
def test_a_value_spliced_as_a_literal_reads_back_unchanged(server_client: Any, value: str) -> None:
    """The few values a statement cannot take as parameters (a SETTINGS value, a partition id) go in through
    backends.literal: whatever the text, ClickHouse reads it back as that text and sqlglot parses the statement."""
    sql = f"SELECT {literal(value)} AS v"
    assert parse_error(sql) is None
    assert server_client.query(sql).result_rows == [(value,)]
