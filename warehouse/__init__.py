"""perfhouse warehouse: ClickHouse schema, backends, ingestion, queries, analysis and reports."""
