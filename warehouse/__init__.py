"""perfhouse warehouse: `store.Warehouse` is the front door; engine/ (backends, schema, cluster), ingest/
(result files and received writes), read/ (queries, typed rows, the SQL gate), analysis/ (SLOs, compare, gate)
and report/ (reports and their formats)."""
