"""The warehouse's engine: the two backends (embedded chdb, a ClickHouse server) behind one interface, the schema
and its migrations, the cluster layout, step summaries written at commit, run ownership, and what identifies runs
(run ids; the fingerprints and group ids that make runs comparable)."""
