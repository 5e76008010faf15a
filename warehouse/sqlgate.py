"""The gate of ad-hoc SQL (the dashboard's SQL page): one SELECT over perfhouse's tables, run read-only
with a row limit and a timeout.

`admit()` parses a query with sqlglot's ClickHouse dialect and refuses anything that is not a single
SELECT reading perfhouse's own tables: other statements, several statements, table functions (they
read files, the network or other tables), functions that read files or dictionaries, tables of other
databases (`system` included), SETTINGS and FORMAT clauses and query parameters. What runs is the SQL
sqlglot generates from the tree it checked, so a comment or a quirk of the parser cannot smuggle in
text the gate did not see. `limited()` adds the backend's own guard: `readonly = 1` and the limits,
as the statement's SETTINGS clause, which every backend honours alike.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import sqlglot
import sqlglot.expressions as exp

from warehouse.backends import settings_sql
from warehouse.errors import WarehouseError
from warehouse.queries import teach_sqlglot_plural_inclusive_quantiles
from warehouse.schema import MIGRATIONS

teach_sqlglot_plural_inclusive_quantiles()

# Scalar functions that read outside the query's tables: a file, a model file, dictionaries (which
# may be backed by files or other servers), Join tables.
DENIED_FUNCTIONS = frozenset({
    "file", "catboostevaluate", "modelevaluate", "evalmlmethod", "joinget", "joingetornull",
    "dictget", "dictgetornull", "dictgetordefault", "dicthas", "dictgethierarchy", "dictisin",
    "dictgetchildren", "dictgetdescendants", "dictgetall", "getsetting", "getsettingordefault",
})
_DENIED_PREFIXES = ("dictget",)

DEFAULT_ROW_LIMIT = 10_000
DEFAULT_TIMEOUT_S = 10


_CREATE = re.compile(r"CREATE (?:TABLE|VIEW) IF NOT EXISTS ([A-Za-z_][A-Za-z0-9_]*)")


def warehouse_tables() -> frozenset[str]:
    """perfhouse's own tables and views: those its migrations create (staging tables of ingests are not among them)."""
    names = {"schema_migrations"}
    for _, _, statements in MIGRATIONS:
        names.update(m for s in statements if isinstance(s, str) for m in _CREATE.findall(s))
    return frozenset(names)


class Refused(WarehouseError):
    """A query the SQL gate does not run; the message says why in one line."""


@dataclass(frozen=True)
class Admitted:
    """A query that passed the gate: the SQL that runs (regenerated from the checked tree) and the tables it reads."""

    sql: str
    tables: tuple[str, ...]
    tree: exp.Expr | None = field(default=None, compare=False, repr=False)


def admit(sql: str, tables: Collection[str], database: str = "") -> Admitted:
    """Check one ad-hoc query; `tables` are the names it may read, `database` the warehouse's own
    database (the only one a table may be qualified with)."""
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise Refused("no query: write one SELECT")
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)  # unsupported syntax becomes a Command, refused below; no warning on stderr
    try:
        statements = [s for s in sqlglot.parse(text, read="clickhouse") if s is not None]
    except sqlglot.errors.ParseError as exc:
        first = str(exc).splitlines()[0]
        raise Refused(f"not a query perfhouse can check: {first}") from None
    finally:
        logger.setLevel(level)
    if len(statements) != 1:
        raise Refused(f"one statement only, found {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        kind = tree.key.upper() if not isinstance(tree, exp.Command) else str(tree.this).upper()
        raise Refused(f"only SELECT is allowed, found {kind}")
    allowed = {t.lower() for t in tables}
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    read: list[str] = []
    for node in tree.walk():
        _refuse_clauses(node)
        if isinstance(node, exp.Table):
            if table := _check_table(node, allowed, ctes, database):
                read.append(table)
        elif isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name in DENIED_FUNCTIONS or name.startswith(_DENIED_PREFIXES):
                raise Refused(f"the function {name}() reads outside perfhouse's tables")
        elif isinstance(node, exp.Placeholder | exp.Parameter):
            raise Refused("query parameters are not supported here: write the value")
        elif isinstance(node, exp.DDL | exp.DML | exp.Command | exp.Set):
            raise Refused(f"only SELECT is allowed, found {node.key.upper()}")
    return Admitted(tree.sql(dialect="clickhouse", comments=False), tuple(dict.fromkeys(read)), tree)


def _refuse_clauses(node: exp.Expr) -> None:
    if node.args.get("settings"):
        raise Refused("SETTINGS are not allowed: the read-only limits are fixed")
    if node.args.get("format"):
        raise Refused("FORMAT is not allowed: results come back as a table")


def _check_table(node: exp.Table, allowed: set[str], ctes: set[str], database: str) -> str:
    if not isinstance(node.this, exp.Identifier):
        name = node.this.name if isinstance(node.this, exp.Func) else node.this.sql("clickhouse")
        raise Refused(f"table functions are not allowed ({name or node.this.sql('clickhouse')}): "
                      f"they read files, the network or other tables")
    name = node.name.lower()
    if node.catalog or (node.db and node.db.lower() != database.lower()):
        raise Refused(f"{node.sql('clickhouse')}: only perfhouse's own tables can be read")
    if not node.db and name in ctes:
        return ""
    if name not in allowed:
        raise Refused(f"no table {node.name!r}: perfhouse's tables are {', '.join(sorted(allowed))}")
    return name


def limited(admitted: Admitted, row_limit: int = DEFAULT_ROW_LIMIT, timeout_s: int = DEFAULT_TIMEOUT_S) -> str:
    """The admitted SQL with the backend's guard: read-only, at most `row_limit` rows (a larger result is
    cut, not an error) and `timeout_s` seconds, a bounded amount of memory. A SELECT without a LIMIT gets
    one of `row_limit` (the rows shown are the same; ClickHouse stops reading sooner)."""
    settings: dict[str, Any] = {
        "readonly": 1,
        "max_execution_time": max(1, int(timeout_s)),
        "timeout_overflow_mode": "throw",
        "max_result_rows": max(1, int(row_limit)),
        "result_overflow_mode": "break",
        "max_memory_usage": 2 * 2**30,
    }
    sql = admitted.sql
    tree = admitted.tree
    if isinstance(tree, exp.Select) and not tree.args.get("limit") and not tree.args.get("offset"):
        sql = tree.copy().limit(max(1, int(row_limit))).sql(dialect="clickhouse", comments=False)
    return sql + settings_sql(settings)
