"""The warehouse schema as numbered migrations, applied in order when a warehouse is opened."""

from __future__ import annotations

from collections.abc import Callable

from warehouse.engine.backends import Backend

# Each migration is a list of statements (or of functions of the backend, for a change that must look at
# what is there first); a migration never changes once released: add a new one.
# Sorting keys lead with run_id because every report and dashboard page reads one run (or a few);
# LowCardinality for the small vocabularies (tool, journey, step, status...); Delta+ZSTD for
# timestamps and Gorilla for float samples, which shrink raw k6 points several times over.


def _k6_tags_as_text(backend: Backend) -> None:
    """k6_points.tags from a Map to the tag set's JSON text, kept as a LowCardinality(String).

    k6 writes the same few tag sets over and over: stored as text with a dictionary, the tags cost a
    fraction of a Map to parse and to store, and a tag set compares as one value. Written so that a
    migration interrupted at any step completes when it runs again.
    """
    columns = {
        r["name"]: r["type"]
        for r in backend.query(
            "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'k6_points'"
        )
    }
    wait = " SETTINGS mutations_sync = 2"
    if columns.get("tags", "").startswith("Map"):
        backend.command(
            "ALTER TABLE k6_points ADD COLUMN IF NOT EXISTS tags_text LowCardinality(String) "
            "DEFAULT toJSONString(mapSort(tags)) CODEC(ZSTD) AFTER tags"
        )
        backend.command("ALTER TABLE k6_points MATERIALIZE COLUMN tags_text" + wait)
        backend.command("ALTER TABLE k6_points MODIFY COLUMN tags_text REMOVE DEFAULT" + wait)
        backend.command("ALTER TABLE k6_points DROP COLUMN tags" + wait)
        columns.pop("tags")
    if "tags_text" in columns or "tags" not in columns:
        backend.command("ALTER TABLE k6_points RENAME COLUMN tags_text TO tags" + wait)


def _batches_own_their_runs(backend: Backend) -> None:
    """ingested_files.new_run, and the rows no run owns rolled back.

    A batch that creates its run (an imported file) says so, so that undoing the batch also removes the
    run's record. Earlier versions recorded an imported file's batch done before writing its run, and a
    process stopped in between left rows that no run owns while the file counted as ingested: such batches
    are rolled back here (rows deleted, batch failed), so the file can be ingested again.
    """
    from warehouse.engine.batches import discard_batch

    backend.command("ALTER TABLE ingested_files ADD COLUMN IF NOT EXISTS new_run UInt8 DEFAULT 0")
    orphans = backend.query(
        "SELECT batch FROM ingested_files FINAL WHERE state = 'done' AND run_id NOT IN (SELECT run_id FROM runs)"
    )
    for row in orphans:
        discard_batch(backend, str(row["batch"]))


def _summarise_runs(backend: Backend) -> None:
    """Every run already ingested gets its step summaries (engine/summaries.py), from its rows as they are. They
    are computed from the kept histograms of the runs' batches: a warehouse that has no step_histograms yet gets
    its summaries with that table (migration 20)."""
    from warehouse.engine.summaries import HISTOGRAMS, summarise_all

    kept = backend.query("SELECT 1 FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
                         {"t": HISTOGRAMS})
    if kept and backend.query("SELECT 1 FROM ingested_files WHERE state = 'done' LIMIT 1"):  # a new warehouse has none
        summarise_all(backend)


# Views for users' own SQL (the SQL page's examples, Grafana's panels), by name: their SELECT, `{db}` the database
# prefix of the tables they read ("" on one server). A migration that adds columns to a viewed table re-creates its
# view (CREATE OR REPLACE VIEW): a view's columns are fixed when it is created.
VIEWS = {"runs_current": "SELECT * FROM {db}runs FINAL"}

MIGRATIONS: list[tuple[int, str, list[str | Callable[[Backend], None]]]] = [
    (
        1,
        "runs, requests, raw k6 points, infrastructure samples, SLO results, ingested files",
        [
            """
        CREATE TABLE IF NOT EXISTS runs (
            run_id String,
            name String,
            tool LowCardinality(String),
            tool_version String,
            spec_name String,
            spec_hash String,
            script_hash String,
            profile String,
            git_sha String,
            branch String,
            environment String,
            labels Map(String, String),
            source LowCardinality(String),
            status LowCardinality(String),
            notes String,
            started_at DateTime64(3, 'UTC'),
            ended_at Nullable(DateTime64(3, 'UTC')),
            updated_at DateTime64(6, 'UTC')
        ) ENGINE = ReplacingMergeTree(updated_at)
        ORDER BY run_id
        """,
            """
        CREATE TABLE IF NOT EXISTS requests (
            run_id String,
            batch String CODEC(ZSTD),
            ts DateTime64(6, 'UTC') CODEC(Delta, ZSTD),
            tool LowCardinality(String),
            generator LowCardinality(String),
            journey LowCardinality(String),
            step LowCardinality(String),
            service LowCardinality(String),
            method LowCardinality(String),
            url String CODEC(ZSTD),
            status UInt16,
            ok UInt8,
            duration_ms Float64 CODEC(Gorilla, ZSTD),
            waiting_ms Float64 CODEC(Gorilla, ZSTD),
            connect_ms Float64 CODEC(Gorilla, ZSTD),
            bytes_sent UInt64 CODEC(T64, ZSTD),
            bytes_received UInt64 CODEC(T64, ZSTD),
            error String CODEC(ZSTD),
            vu String
        ) ENGINE = MergeTree
        PARTITION BY toYYYYMM(ts)
        ORDER BY (run_id, journey, step, ts)
        """,
            """
        CREATE TABLE IF NOT EXISTS k6_points (
            run_id String,
            batch String CODEC(ZSTD),
            ts DateTime64(6, 'UTC') CODEC(Delta, ZSTD),
            metric LowCardinality(String),
            value Float64 CODEC(Gorilla, ZSTD),
            tags Map(LowCardinality(String), String) CODEC(ZSTD),
            generator LowCardinality(String)
        ) ENGINE = MergeTree
        PARTITION BY toYYYYMM(ts)
        ORDER BY (run_id, metric, ts)
        """,
            """
        CREATE TABLE IF NOT EXISTS infra_samples (
            run_id String,
            ts DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
            source LowCardinality(String),
            metric LowCardinality(String),
            labels Map(LowCardinality(String), String),
            value Float64 CODEC(Gorilla, ZSTD)
        ) ENGINE = MergeTree
        PARTITION BY toYYYYMM(ts)
        ORDER BY (run_id, metric, ts)
        """,
            """
        CREATE TABLE IF NOT EXISTS slo_results (
            run_id String,
            slo String,
            scope String,
            metric LowCardinality(String),
            threshold Float64,
            observed Nullable(Float64),
            passed UInt8,
            evaluated_at DateTime64(3, 'UTC')
        ) ENGINE = ReplacingMergeTree(evaluated_at)
        ORDER BY (run_id, slo)
        """,
            """
        CREATE TABLE IF NOT EXISTS ingested_files (
            batch String,
            run_id String,
            sha256 String,
            path String,
            format LowCardinality(String),
            state LowCardinality(String),
            rows UInt64,
            rejected UInt64,
            ingested_at DateTime64(3, 'UTC')
        ) ENGINE = ReplacingMergeTree(ingested_at)
        ORDER BY batch
        """,
        ],
    ),
    (
        2,
        "ingested_files.owner: the host and pid of the ingesting process, so recovery spares live ingests",
        ["ALTER TABLE ingested_files ADD COLUMN IF NOT EXISTS owner String DEFAULT ''"],
    ),
    (
        3,
        "k6_points.ts_ns: the nanoseconds past ts's microsecond, so k6's points group into requests exactly; "
        "ingested_files.quick: a cheap fingerprint that decides whether the full hash must be awaited",
        [
            "ALTER TABLE k6_points ADD COLUMN IF NOT EXISTS ts_ns UInt16 DEFAULT 0 CODEC(ZSTD) AFTER ts",
            "ALTER TABLE ingested_files ADD COLUMN IF NOT EXISTS quick String DEFAULT ''",
        ],
    ),
    (
        4,
        "aggregates: interval aggregates (JMeter's InfluxDB backend listener), not requests; "
        "tool_summaries: a tool's own end-of-test summary (k6 --summary-export / handleSummary JSON) per run",
        [
            """
        CREATE TABLE IF NOT EXISTS aggregates (
            run_id String,
            batch String CODEC(ZSTD),
            ts DateTime64(6, 'UTC') CODEC(Delta, ZSTD),
            tool LowCardinality(String),
            journey LowCardinality(String),
            step LowCardinality(String),
            status LowCardinality(String),
            metric LowCardinality(String),
            value Float64 CODEC(Gorilla, ZSTD),
            tags Map(LowCardinality(String), String) CODEC(ZSTD)
        ) ENGINE = MergeTree
        PARTITION BY toYYYYMM(ts)
        ORDER BY (run_id, journey, step, metric, ts)
        """,
            """
        CREATE TABLE IF NOT EXISTS tool_summaries (
            run_id String,
            tool LowCardinality(String),
            name String,
            summary String CODEC(ZSTD),
            added_at DateTime64(3, 'UTC')
        ) ENGINE = ReplacingMergeTree(added_at)
        ORDER BY (run_id, tool, name)
        """,
        ],
    ),
    (
        5,
        "k6_points.tags: the tag set's JSON text (sorted keys) as LowCardinality(String) instead of a Map",
        [_k6_tags_as_text],
    ),
    (
        6,
        "run_id and batch as LowCardinality(String) in the tables a batch adds rows to: the same two strings "
        "on every row made a large file's load and the reads after it slow and memory-hungry",
        [
            f"ALTER TABLE {table} MODIFY COLUMN run_id LowCardinality(String), "
            f"MODIFY COLUMN batch LowCardinality(String) SETTINGS mutations_sync = 2"
            for table in ("requests", "k6_points", "aggregates")
        ],
    ),
    (
        7,
        "merges of at most 10 parts in the tables a batch adds rows to: a large file arrives as hundreds of "
        "parts, and merging up to 100 of them at once doubled the process's memory (2 GB JTL: 420 MB, 205 MB)",
        [
            f"ALTER TABLE {table} MODIFY SETTING max_parts_to_merge_at_once = 10"
            for table in ("requests", "k6_points", "aggregates")
        ],
    ),
    (
        8,
        "ingested_files.new_run: a batch that creates its run commits the run with its rows (recovery undoes "
        "both); batches recorded done without their run are rolled back",
        [_batches_own_their_runs],
    ),
    (
        9,
        "runs.fingerprint and runs.group_id (comparable runs; the runs of one invocation); baselines pinned per "
        "fingerprint; comparisons: the per-step verdicts of a run against its baseline",
        [
            "ALTER TABLE runs ADD COLUMN IF NOT EXISTS fingerprint String DEFAULT '' AFTER spec_hash, "
            "ADD COLUMN IF NOT EXISTS group_id String DEFAULT '' AFTER fingerprint",
            """
        CREATE TABLE IF NOT EXISTS baselines (
            fingerprint String,
            run_id String,
            pinned UInt8,
            note String,
            updated_at DateTime64(6, 'UTC')
        ) ENGINE = ReplacingMergeTree(updated_at)
        ORDER BY fingerprint
        """,
            """
        CREATE TABLE IF NOT EXISTS comparisons (
            run_id String,
            baseline_id String,
            journey String,
            step String,
            count_a UInt64,
            count_b UInt64,
            p50_a Nullable(Float64),
            p50_b Nullable(Float64),
            p95_a Nullable(Float64),
            p95_b Nullable(Float64),
            p99_a Nullable(Float64),
            p99_b Nullable(Float64),
            error_rate_a Nullable(Float64),
            error_rate_b Nullable(Float64),
            rps_a Nullable(Float64),
            rps_b Nullable(Float64),
            p_value Nullable(Float64),
            floor Float64,
            noise Nullable(Float64),
            verdict LowCardinality(String),
            reason String,
            compared_at DateTime64(6, 'UTC')
        ) ENGINE = ReplacingMergeTree(compared_at)
        ORDER BY (run_id, baseline_id, journey, step)
        """,
        ],
    ),
    (
        10,
        "the same error semantics for every tool: requests.ok means no request error (a transport failure or a "
        "status the step does not expect); checks, failed_checks and failed_check say what the step's checks "
        "found; k6_points.metadata keeps k6's per-sample metadata (vu, iter), which joins checks to requests",
        [
            "ALTER TABLE requests ADD COLUMN IF NOT EXISTS checks UInt16 DEFAULT 0 CODEC(T64, ZSTD) AFTER ok, "
            "ADD COLUMN IF NOT EXISTS failed_checks UInt16 DEFAULT 0 CODEC(T64, ZSTD) AFTER checks, "
            "ADD COLUMN IF NOT EXISTS failed_check String DEFAULT '' CODEC(ZSTD) AFTER error",
            "ALTER TABLE k6_points ADD COLUMN IF NOT EXISTS metadata String DEFAULT '' CODEC(ZSTD) AFTER tags",
            # JMeter rows stored before: a sample that JMeter failed with a 2xx/3xx response code was failed by
            # an assertion (JMeter's HTTP sampler accepts those codes), unless a response code assertion did it.
            "ALTER TABLE requests UPDATE ok = 1, checks = 1, failed_checks = 1, failed_check = if(error != '', "
            "error, 'an assertion failed'), error = '' WHERE tool = 'jmeter' AND ok = 0 AND status BETWEEN 200 "
            "AND 399 AND NOT startsWith(error, 'Test failed: code') SETTINGS mutations_sync = 2",
        ],
    ),
    (
        11,
        "requests.trace_id: the W3C trace id a request carried (trace context), so a slow sample links to its trace",
        ["ALTER TABLE requests ADD COLUMN IF NOT EXISTS trace_id String DEFAULT '' CODEC(ZSTD) AFTER vu"],
    ),
    (
        12,
        "received_writes: the content hash of every write the results receiver took into a run, and the batch "
        "that holds it, so a write sent again (a client's retry) is acknowledged without being stored twice",
        [
            """
        CREATE TABLE IF NOT EXISTS received_writes (
            run_id String,
            sha256 String,
            batch_sha256 String,
            received_at DateTime64(3, 'UTC')
        ) ENGINE = MergeTree
        ORDER BY (run_id, sha256)
        """,
        ],
    ),
    (
        13,
        "step_summaries: each run's per-step and whole-run count, request errors, exact P50/P95/P99 and first and "
        "last request, written with each batch's commit and read by trends and compare's noise instead of every "
        "request; runs ingested before get theirs now",
        [
            """
        CREATE TABLE IF NOT EXISTS step_summaries (
            run_id String,
            batch String,
            batches UInt32,
            batches_hash UInt64,
            overall UInt8,
            journey LowCardinality(String),
            step LowCardinality(String),
            requests UInt64,
            errors UInt64,
            p50 Float64,
            p95 Float64,
            p99 Float64,
            first_ts DateTime64(6, 'UTC'),
            last_ts DateTime64(6, 'UTC'),
            summarised_at DateTime64(6, 'UTC')
        ) ENGINE = ReplacingMergeTree(summarised_at)
        ORDER BY (run_id, overall, journey, step)
        """,
            _summarise_runs,
        ],
    ),
    (
        16,
        "ingest_claims: of the processes ingesting one file's content at once, the one whose claim the insert "
        "deduplication kept commits it; the others wait and find it done",
        [
            """
        CREATE TABLE IF NOT EXISTS ingest_claims (
            token String,
            batch String,
            claimed_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = MergeTree
        ORDER BY token
        SETTINGS non_replicated_deduplication_window = 100000
        """,
        ],
    ),
    (
        17,
        "runs_current: one row per run, its latest version (runs is a ReplacingMergeTree: until a merge, a run "
        "updated several times has several rows, and a join without FINAL counts its requests once per row)",
        [f"CREATE VIEW IF NOT EXISTS {name} AS {select.format(db='')}" for name, select in VIEWS.items()],
    ),
    (
        19,
        "gate_outcomes: each run's latest gate outcome (exit status, WORSE and too-thin rows, the baseline), so "
        "a run judged WORSE is never an automatic baseline nor part of the history later runs are judged against",
        [
            """
        CREATE TABLE IF NOT EXISTS gate_outcomes (
            run_id String,
            fingerprint String,
            baseline_id String,
            outcome LowCardinality(String),
            exit_status UInt8,
            worse UInt32,
            inconclusive UInt32,
            judged_at DateTime64(6, 'UTC')
        ) ENGINE = ReplacingMergeTree(judged_at)
        ORDER BY run_id
        """,
        ],
    ),
    (
        20,
        "step_histograms: each committed batch's histogram of durations per step, kept, so that a run's step "
        "summary adds up its batches' histograms instead of reading all its requests at every commit (a live run's "
        "commits took longer as it grew); every run's histograms and summaries are rewritten from its rows now",
        [
            """
        CREATE TABLE IF NOT EXISTS step_histograms (
            run_id String,
            batch String,
            journey LowCardinality(String),
            step LowCardinality(String),
            duration_ms Float64,
            n UInt64,
            errors UInt64,
            first_ts DateTime64(6, 'UTC'),
            last_ts DateTime64(6, 'UTC')
        ) ENGINE = MergeTree
        ORDER BY (run_id, batch, journey, step, duration_ms)
        """,
            _summarise_runs,
        ],
    ),
]

CURRENT_VERSION = MIGRATIONS[-1][0]


def _record(backend: Backend, migrations: list[tuple[int, str]]) -> None:
    """Record migrations as applied, in one INSERT."""
    if migrations:
        backend.command(
            "INSERT INTO schema_migrations (version, description) SELECT tupleElement(m, 1), tupleElement(m, 2) "
            "FROM (SELECT arrayJoin(arrayZip({v:Array(UInt32)}, {d:Array(String)})) AS m)",
            {"v": [v for v, _ in migrations], "d": [d for _, d in migrations]},
        )


def migrate(backend: Backend) -> int:
    """Apply the migrations the warehouse lacks; returns the schema version it ends at. A warehouse on a
    cluster is created at the current version instead (warehouse.engine.cluster)."""
    if getattr(backend, "cluster", None):
        from warehouse.engine.cluster import ensure_schema

        return ensure_schema(backend, CURRENT_VERSION, [(n, d) for n, d, _ in MIGRATIONS], VIEWS)
    with backend.session():
        backend.command(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, description String, "
            "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY version"
        )
        # Every migration not recorded yet, in number order, including one numbered below a migration already
        # applied (a warehouse made by a build that did not have it yet).
        applied = {int(r["version"]) for r in backend.query("SELECT DISTINCT version FROM schema_migrations")}
        # A new warehouse (nothing applied, so no data) records its migrations in one INSERT at the end: each
        # INSERT writes a part, and one per migration was a fifth of the statements' time of creating a warehouse.
        # A warehouse that has data records each migration as it is applied: one interrupted later is not redone.
        new, pending = not applied, []
        have = max(applied, default=0)
        for version, description, statements in MIGRATIONS:
            if version in applied:
                continue
            for statement in statements:
                if callable(statement):
                    statement(backend)
                else:
                    backend.command(statement)
            pending.append((version, description))
            if not new:
                _record(backend, pending)
                pending = []
            have = max(have, version)
        _record(backend, pending)
        return have
