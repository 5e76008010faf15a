"""Reading the warehouse: every named query (checked with sqlglot), the typed rows they come back as, and the
gate of the SQL page's ad-hoc SELECTs."""
