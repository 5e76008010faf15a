"""The warehouse's engine: the two backends (embedded chdb, a ClickHouse server) behind one interface, the schema
and its migrations, the cluster layout, step summaries written at commit, run ownership and run ids."""
