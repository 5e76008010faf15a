"""The gate of ad-hoc SQL (the dashboard's SQL page): one SELECT over perfhouse's tables, run read-only
with row, byte, memory and time caps the engine enforces.

`admit()` parses a query with sqlglot's ClickHouse dialect and refuses anything that is not a single
SELECT reading perfhouse's own tables. Every table reference is resolved lexically, the way ClickHouse
scopes names: FROM and JOIN sources, subqueries (scalar, IN, EXISTS), CTEs (a CTE name counts only
inside the query that defines it, so a CTE cannot lend its name to a real table elsewhere) and the bare
name on the right of IN (`x IN t` and `x IN db.t` read the table t). Each must name one of perfhouse's
tables, qualified by nothing or by the warehouse's own database; names compare exactly, as ClickHouse
compares them (`Runs`, `RUNS` or a look-alike in another script are other tables). Functions pass an
allow-list (arithmetic, comparison, logic, conditionals, conversion, dates, strings, URLs and JSON as
text, arrays, maps, tuples, hashes, aggregates with their combinators, window functions); anything
else, table functions, dictionaries, Join tables, files, settings and server facts included, is refused;
a bare name ClickHouse calls as a function (`user`, `currentDatabase`) counts as that call. SETTINGS and
FORMAT clauses, query parameters and SQL sqlglot could not write back unchanged are refused too.

What runs is the SQL sqlglot generates from the tree it checked, with every CTE renamed to a name of
its own (`name__cte1`) and its references with it: should ClickHouse ever scope a name differently
than the gate did, the reference names a table that does not exist instead of a real one.
`limited()` wraps it in `SELECT * FROM (...) LIMIT n` and adds the backend's guard as the statement's
SETTINGS clause (`readonly = 1`, the time, row, byte and memory caps, small blocks), which both backends
honour alike, so the engine stops producing rows at the cap and Python never holds more.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import sqlglot
import sqlglot.expressions as exp
from sqlglot.errors import ErrorLevel

from warehouse.engine.backends import settings_sql
from warehouse.engine.schema import MIGRATIONS
from warehouse.errors import WarehouseError
from warehouse.read.queries import teach_sqlglot_plural_inclusive_quantiles

teach_sqlglot_plural_inclusive_quantiles()

DEFAULT_ROW_LIMIT = 10_000
DEFAULT_TIMEOUT_S = 10
MAX_RESULT_BYTES = 32 * 2**20  # the answer as the engine counts it (uncompressed columns)
MAX_ANSWER_BYTES = 32 * 2**20  # the answer's text as it reaches Python (JSON lines)
MAX_MEMORY_BYTES = 2**30  # the query's own memory in the engine
MAX_BLOCK_ROWS = 8192  # small blocks (ClickHouse's default is 65,409): a byte cap is overshot by one at most
MAX_QUERY_CHARS = 100_000


def _names(text: str) -> frozenset[str]:
    """Function names written as ClickHouse spells them, kept lowercased (the gate compares so)."""
    return frozenset(name.lower() for name in text.split())


# Aggregate functions (and window functions) by their base name; the combinators below may follow them.
AGGREGATES = _names("""
    count sum avg min max any anyLast anyHeavy any_value first_value last_value argMin argMax
    uniq uniqExact uniqCombined uniqCombined64 uniqHLL12 uniqTheta groupArray groupUniqArray groupArraySample
    groupArrayInsertAt groupArrayMovingAvg groupArrayMovingSum groupArraySorted groupArrayLast groupBitAnd
    groupBitOr groupBitXor groupConcat sumWithOverflow sumKahan sumCount sumMap minMap maxMap avgWeighted
    topK topKWeighted approx_top_k median medianExact medianExactLow medianExactHigh medianExactWeighted
    medianTiming medianTDigest medianBFloat16 medianDD medianGK medianInterpolatedWeighted medianDeterministic
    quantile quantiles quantileExact quantilesExact quantileExactLow quantilesExactLow quantileExactHigh
    quantilesExactHigh quantileExactExclusive quantilesExactExclusive quantileExactInclusive
    quantilesExactInclusive quantileExactWeighted quantilesExactWeighted quantileTiming quantilesTiming
    quantileTimingWeighted quantilesTimingWeighted quantileTDigest quantilesTDigest quantileTDigestWeighted
    quantilesTDigestWeighted quantileBFloat16 quantilesBFloat16 quantileBFloat16Weighted
    quantilesBFloat16Weighted quantileDeterministic quantilesDeterministic quantileGK quantilesGK quantileDD
    quantilesDD quantileInterpolatedWeighted quantilesInterpolatedWeighted
    stddevPop stddevSamp stddevPopStable stddevSampStable varPop varSamp varPopStable varSampStable stddev
    variance covarPop covarSamp covarPopStable covarSampStable corr corrStable skewPop skewSamp kurtPop
    kurtSamp simpleLinearRegression entropy histogram sequenceMatch sequenceCount windowFunnel retention
    mannWhitneyUTest kolmogorovSmirnovTest studentTTest welchTTest meanZTest rankCorr contingency cramersV
    cramersVBiasCorrected theilsU boundingRatio deltaSum deltaSumTimestamp exponentialMovingAverage
    largestTriangleThreeBuckets sparkbar maxIntersections maxIntersectionsPosition
    row_number rank dense_rank percent_rank cume_dist ntile lag lead lagInFrame leadInFrame nth_value
""")
# Aggregate combinators, peeled off the end of a name (countIf, quantilesExactInclusiveIf, sumArrayIf...).
COMBINATORS = ("OrDefault", "OrNull", "Resample", "SimpleState", "MergeState", "State", "Merge", "ForEach",
               "Distinct", "ArgMin", "ArgMax", "Array", "Map", "If")
# Scalar functions that compute on the values in hand: none reads a table, a file, the network, a
# dictionary, the settings or a fact of the server.
FUNCTIONS = _names("""
    plus minus multiply divide intDiv intDivOrZero modulo moduloOrZero positiveModulo negate abs gcd lcm
    e pi exp exp2 exp10 log ln log2 log10 log1p sqrt cbrt erf erfc lgamma tgamma sin cos tan asin acos atan
    atan2 sinh cosh tanh asinh acosh atanh pow power hypot sign degrees radians factorial widthBucket
    width_bucket round roundBankers floor ceil ceiling trunc truncate roundToExp2 roundDuration roundAge
    roundDown greatest least min2 max2 isNaN isFinite isInfinite ifNotFinite
    equals notEquals less greater lessOrEquals greaterOrEquals and or not xor
    if multiIf ifNull nullIf coalesce isNull isNotNull isZeroOrNull assumeNotNull toNullable transform case
    cast try_cast accurateCast accurateCastOrNull accurateCastOrDefault toTypeName toLowCardinality
    toInt8 toInt16 toInt32 toInt64 toInt128 toInt256 toUInt8 toUInt16 toUInt32 toUInt64 toUInt128
    toUInt256 toFloat32 toFloat64 toBFloat16 toDecimal32 toDecimal64 toDecimal128 toDecimal256 toString
    toFixedString toStringCutToZero toDate toDate32 toDateTime toDateTime32 toDateTime64 toUUID toBool
    toIPv4 toIPv6 toDecimalString reinterpretAsString reinterpretAsUInt64 reinterpretAsInt64
    reinterpretAsFloat64 parseDateTime parseDateTimeOrNull parseDateTimeOrZero parseDateTimeInJodaSyntax
    parseDateTimeBestEffort parseDateTimeBestEffortOrNull parseDateTimeBestEffortOrZero
    parseDateTimeBestEffortUS parseDateTime32BestEffort parseDateTime64BestEffort
    parseDateTime64BestEffortOrNull parseDateTime64BestEffortOrZero parseDateTime64BestEffortUS
    parseTimeDelta toUnixTimestamp toUnixTimestamp64Second toUnixTimestamp64Milli toUnixTimestamp64Micro
    toUnixTimestamp64Nano fromUnixTimestamp fromUnixTimestamp64Second fromUnixTimestamp64Milli
    fromUnixTimestamp64Micro fromUnixTimestamp64Nano fromUnixTimestampInJodaSyntax
    toIntervalNanosecond toIntervalMicrosecond toIntervalMillisecond toIntervalSecond toIntervalMinute
    toIntervalHour toIntervalDay toIntervalWeek toIntervalMonth toIntervalQuarter toIntervalYear interval
    now now64 today yesterday curdate current_date current_timestamp localtime localtimestamp toYear toQuarter toMonth toDayOfYear toDayOfMonth toDayOfWeek toHour toMinute
    toSecond toMillisecond toStartOfYear toStartOfISOYear toStartOfQuarter toStartOfMonth toMonday
    toStartOfWeek toStartOfDay toStartOfHour toStartOfMinute toStartOfSecond toStartOfMillisecond
    toStartOfMicrosecond toStartOfNanosecond toStartOfFiveMinutes toStartOfTenMinutes
    toStartOfFifteenMinutes toStartOfInterval toLastDayOfMonth toLastDayOfWeek toTime toISOWeek toISOYear
    toWeek toYearWeek toYYYYMM toYYYYMMDD toYYYYMMDDhhmmss toRelativeYearNum toRelativeQuarterNum
    toRelativeMonthNum toRelativeWeekNum toRelativeDayNum toRelativeHourNum toRelativeMinuteNum
    toRelativeSecondNum toDaysSinceYearZero fromDaysSinceYearZero makeDate makeDate32 makeDateTime
    makeDateTime64 dateDiff date_diff age dateAdd date_add dateSub date_sub timestampAdd timestampSub
    addNanoseconds addMicroseconds addMilliseconds addSeconds addMinutes addHours addDays addWeeks
    addMonths addQuarters addYears subtractNanoseconds subtractMicroseconds subtractMilliseconds
    subtractSeconds subtractMinutes subtractHours subtractDays subtractWeeks subtractMonths subtractQuarters
    subtractYears timeSlot timeSlots formatDateTime formatDateTimeInJodaSyntax dateName monthName
    toTimezone toTimeZone timezoneOf timeZoneOf timezoneOffset timeZoneOffset dateTrunc date_trunc extract
    length lengthUTF8 char_length character_length octet_length empty notEmpty lower upper lcase ucase
    lowerUTF8 upperUTF8 initcap initcapUTF8 reverse reverseUTF8 concat concatWithSeparator concat_ws
    substring substr substringUTF8 mid left right leftUTF8 rightUTF8 appendTrailingCharIfAbsent trim
    trimLeft trimRight trimBoth ltrim rtrim leftPad rightPad leftPadUTF8 rightPadUTF8 lpad rpad repeat space
    format startsWith endsWith startsWithUTF8 endsWithUTF8 position positionCaseInsensitive positionUTF8
    positionCaseInsensitiveUTF8 locate match extractAll extractAllGroupsHorizontal extractAllGroupsVertical
    extractGroups like notLike ilike notILike replaceOne replaceAll replace replaceRegexpOne
    replaceRegexpAll regexpExtract regexpQuoteMeta splitByChar splitByString splitByRegexp
    splitByWhitespace splitByNonAlpha arrayStringConcat alphaTokens tokens ngrams multiSearchAny
    multiSearchFirstIndex multiSearchFirstPosition multiSearchAllPositions multiMatchAny multiMatchAnyIndex
    countSubstrings countSubstringsCaseInsensitive countMatches countMatchesCaseInsensitive hasToken
    hasTokenCaseInsensitive base64Encode base64Decode tryBase64Decode base64URLEncode base64URLDecode hex
    unhex bin unbin toValidUTF8 normalizeUTF8NFC normalizeUTF8NFD normalizeUTF8NFKC normalizeUTF8NFKD
    soundex ngramDistance ngramSearch editDistance levenshteinDistance damerauLevenshteinDistance
    jaroSimilarity jaroWinklerSimilarity stringJaccardIndex byteSize visibleWidth formatReadableSize
    formatReadableDecimalSize formatReadableQuantity formatReadableTimeDelta bar printf
    domain domainWithoutWWW topLevelDomain firstSignificantSubdomain cutToFirstSignificantSubdomain
    protocol path pathFull queryString fragment queryStringAndFragment extractURLParameter
    extractURLParameters extractURLParameterNames cutQueryString cutFragment cutQueryStringAndFragment
    cutURLParameter cutWWW decodeURLComponent encodeURLComponent decodeURLFormComponent
    encodeURLFormComponent URLHierarchy URLPathHierarchy netloc
    JSONExtract JSONExtractString JSONExtractInt JSONExtractUInt JSONExtractFloat JSONExtractBool
    JSONExtractRaw JSONExtractKeys JSONExtractArrayRaw JSONExtractKeysAndValues JSONExtractKeysAndValuesRaw
    JSONHas JSONLength JSONType JSONArrayLength JSON_VALUE JSON_QUERY JSON_EXISTS simpleJSONHas
    simpleJSONExtractString simpleJSONExtractInt simpleJSONExtractUInt simpleJSONExtractFloat
    simpleJSONExtractBool simpleJSONExtractRaw toJSONString isValidJSON
    array has hasAll hasAny hasSubstr indexOf countEqual arrayElement range arrayJoin arrayConcat
    arraySlice arrayPushBack arrayPushFront arrayPopBack arrayPopFront arrayResize arraySort
    arrayReverseSort arrayPartialSort arrayReverse arrayUniq arrayDistinct arrayEnumerate
    arrayEnumerateUniq arrayEnumerateDense arrayCompact arrayZip arrayMap arrayFilter arrayFill
    arrayReverseFill arraySplit arrayReverseSplit arrayExists arrayAll arrayFirst arrayFirstOrNull
    arrayFirstIndex arrayLast arrayLastOrNull arrayLastIndex arrayMin arrayMax arraySum arrayAvg
    arrayProduct arrayCount arrayCumSum arrayCumSumNonNegative arrayDifference arrayIntersect arrayUnion
    arrayReduce arrayReduceInRanges arrayFlatten flatten arrayFold arrayShingles arrayRotateLeft
    arrayRotateRight arrayShiftLeft arrayShiftRight arrayWithConstant arrayDotProduct arrayAUC arrayPRAUC
    arrayLevenshteinDistance arrayJaccardIndex arrayStringConcat emptyArrayString emptyArrayUInt64
    tuple tupleElement untuple tupleNames tuplePlus tupleMinus map mapKeys mapValues mapContains
    mapContainsKey mapContainsKeyLike mapExtractKeyLike mapFromArrays mapFilter mapApply mapAdd
    mapSubtract mapUpdate mapSort mapReverseSort mapPartialSort mapConcat mapExists mapAll
    cityHash64 sipHash64 sipHash128 xxHash32 xxHash64 xxh3 murmurHash2_32 murmurHash2_64 murmurHash3_32
    murmurHash3_64 murmurHash3_128 farmHash64 farmFingerprint64 halfMD5 MD5 SHA1 SHA224 SHA256 SHA512
    intHash32 intHash64 javaHash hiveHash wyHash64 crc32 kostikConsistentHash jumpConsistentHash
    bitAnd bitOr bitXor bitNot bitShiftLeft bitShiftRight bitCount bitTest bitTestAll bitTestAny
    IPv4NumToString IPv4StringToNum IPv4NumToStringClassC IPv6NumToString IPv6StringToNum isIPv4String
    isIPv6String isIPAddressInRange toIPv4OrNull toIPv6OrNull
    generateUUIDv4 generateUUIDv7 UUIDStringToNum UUIDNumToString rand rand32 rand64 randCanonical
    randUniform randNormal randomString randomPrintableASCII
    materialize ignore isConstant identity finalizeAggregation initializeAggregation runningAccumulate
    runningDifference runningDifferenceStartingWithFirstValue neighbor rowNumberInBlock
    rowNumberInAllBlocks blockSize exists
""")
# An accepted name that sqlglot writes as something other than a call (CASE, [..], (..)) goes by its
# expression's own name.
_NOT_A_CALL = frozenset({"case", "if", "array", "tuple", "struct", "map", "cast", "trycast", "interval",
                         "extract", "exists", "coalesce", "anonymous", "dpipe"})

# Names ClickHouse calls as functions when written bare, as identifiers (`SELECT user`, `SELECT currentDatabase`
# answer the caller and the database): found by asking the engine for every function name it has.
BARE_CALLS = _names("""
    DATABASE SCHEMA curdate currentDatabase currentHandler currentRequestURL currentUser current_database
    current_date current_timestamp current_user localtime localtimestamp now session_user today user
""")

_CREATE = re.compile(r"CREATE (?:OR REPLACE )?(?:TABLE|VIEW) (?:IF NOT EXISTS )?([A-Za-z_][A-Za-z0-9_]*)")
_CALL = re.compile(r"\s*`?([A-Za-z_][A-Za-z0-9_]*)`?\s*\(")


def warehouse_tables() -> frozenset[str]:
    """perfhouse's own tables and views: those its migrations create (staging tables of ingests are not
    among them)."""
    names = {"schema_migrations"}
    for _, _, statements in MIGRATIONS:
        names.update(m for s in statements if isinstance(s, str) for m in _CREATE.findall(s))
    return frozenset(n for n in names if not n.startswith("stage_"))


def allowed_function(name: str) -> bool:
    """Whether the SQL page may call the function `name` (ClickHouse's spelling; combinators accepted
    after an aggregate)."""
    lowered = name.lower()
    if lowered in FUNCTIONS or lowered in AGGREGATES:
        return True
    base = name
    while True:
        for suffix in COMBINATORS:
            if base.endswith(suffix) and len(base) > len(suffix):
                base = base[: -len(suffix)]
                break
        else:
            return False
        if base.lower() in AGGREGATES:
            return True


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
    try:
        return _admit(sql, tables, database)
    except RecursionError:
        raise Refused("not a query perfhouse can check: it nests too deeply") from None


def _admit(sql: str, tables: Collection[str], database: str) -> Admitted:
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise Refused("no query: write one SELECT")
    if len(text) > MAX_QUERY_CHARS:
        raise Refused(f"the query is {len(text):,} characters long; at most {MAX_QUERY_CHARS:,} are checked")
    tree = _parse(text)
    allowed = frozenset(tables)
    for node in tree.walk():
        _refuse_clauses(node)
        if isinstance(node, exp.Placeholder | exp.Parameter):
            raise Refused("query parameters are not supported here: write the value")
        if isinstance(node, exp.DDL | exp.DML | exp.Command | exp.Set):
            raise Refused(f"only SELECT is allowed, found {node.key.upper()}")
    renames: dict[int, str] = {}  # id(CTE) -> the name it runs under
    read: list[str] = []
    for node in list(tree.walk()):
        if isinstance(node, exp.Table) and not _is_array_join_source(node):
            if table := _check_table(node, allowed, database, renames):
                read.append(table)
        elif isinstance(node, exp.From | exp.Join):
            if table := _check_source(node, allowed, database, renames):
                read.append(table)
        elif isinstance(node, exp.In) and (table := _check_in_table(node, allowed, database, renames)):
            read.append(table)
    for node in tree.walk():
        if isinstance(node, exp.Column) and not node.table and node.name.lower() in BARE_CALLS:
            name = node.name  # a bare name ClickHouse calls as a function
        elif isinstance(node, exp.Func):
            name = _function_name(node)
        else:
            continue
        if name and not allowed_function(name):
            raise Refused(f"the function {name}() is not available on the SQL page (only functions that "
                          f"compute on the rows read are: no tables, files, dictionaries or server facts)")
    _rename_ctes(tree, renames)
    return Admitted(_sql(tree), tuple(dict.fromkeys(read)), tree)


def _sql(node: exp.Expr) -> str:
    """ClickHouse SQL for `node`, refusing what sqlglot would have to drop or change to write it."""
    try:
        return node.sql(dialect="clickhouse", comments=False, unsupported_level=ErrorLevel.RAISE)
    except sqlglot.errors.SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Refused(f"not a query perfhouse can check: {first}") from None


def _parse(text: str) -> exp.Query:
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)  # unsupported syntax becomes a Command, refused below; no warning on stderr
    try:
        statements = [s for s in sqlglot.parse(text, read="clickhouse") if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Refused(f"not a query perfhouse can check: {first}") from None
    except RecursionError:
        raise Refused("not a query perfhouse can check: it nests too deeply") from None
    finally:
        logger.setLevel(level)
    if len(statements) != 1:
        raise Refused(f"one statement only, found {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        kind = tree.key.upper() if not isinstance(tree, exp.Command) else str(tree.this).upper()
        raise Refused(f"only SELECT is allowed, found {kind}")
    return tree


def _refuse_clauses(node: exp.Expr) -> None:
    if node.args.get("settings"):
        raise Refused("SETTINGS are not allowed: the read-only limits are fixed")
    if isinstance(node, exp.Query | exp.Subquery | exp.Table) and node.args.get("format"):
        raise Refused("FORMAT is not allowed: results come back as a table")


def _is_array_join_source(node: exp.Table) -> bool:
    """ARRAY JOIN takes arrays (columns, expressions), never a table, whatever sqlglot calls them."""
    parent = node.parent
    while isinstance(parent, exp.Alias | exp.Paren):
        parent = parent.parent
    return isinstance(parent, exp.Join) and str(parent.args.get("kind") or "").upper() == "ARRAY"


def _check_table(node: exp.Table, allowed: frozenset[str], database: str, renames: dict[int, str]) -> str:
    if not isinstance(node.this, exp.Identifier):
        name = _function_name(node.this) if isinstance(node.this, exp.Func) else node.this.sql("clickhouse")
        raise Refused(f"table functions are not allowed ({name}): they read files, the network or other tables")
    if not node.db and not node.catalog and (cte := _visible_cte(node, node.name)) is not None:
        renames.setdefault(id(cte), f"{cte.alias_or_name}__cte{len(renames) + 1}")
        node.set("this", exp.to_identifier(renames[id(cte)]))
        if not node.alias:
            node.set("alias", exp.TableAlias(this=exp.to_identifier(cte.alias_or_name)))
        return ""
    return _own_table(node.name, node.db, node.catalog, allowed, database, node.sql("clickhouse"))


def _check_source(node: exp.From | exp.Join, allowed: frozenset[str], database: str,
                  renames: dict[int, str]) -> str:
    """What a FROM or JOIN reads, when sqlglot did not make it a Table or a subquery: in some contexts
    (a subquery under ARRAY JOIN) it reads `FROM db.t` as a column, which ClickHouse reads as the table."""
    if isinstance(node, exp.Join) and str(node.args.get("kind") or "").upper() == "ARRAY":
        return ""  # arrays, not tables: their subqueries are checked as nodes of their own
    source = node.this
    while isinstance(source, exp.Alias | exp.Paren | exp.Final):
        source = source.this
    if isinstance(source, exp.Table | exp.Subquery | exp.Query | exp.Values):
        return ""
    if isinstance(source, exp.Column) and isinstance(source.this, exp.Identifier):
        table = exp.Table(this=source.this.copy(), db=source.args.get("table"), catalog=source.args.get("db"))
        if source.args.get("catalog"):
            raise Refused(f"{source.sql('clickhouse')}: only perfhouse's own tables can be read")
        if not table.db and (cte := _visible_cte(node, table.name)) is not None:
            renames.setdefault(id(cte), f"{cte.alias_or_name}__cte{len(renames) + 1}")
            source.replace(exp.Table(this=exp.to_identifier(renames[id(cte)]),
                                     alias=exp.TableAlias(this=exp.to_identifier(cte.alias_or_name))))
            return ""
        return _own_table(table.name, table.db, table.catalog, allowed, database, source.sql("clickhouse"))
    if isinstance(source, exp.Func):
        raise Refused(f"table functions are not allowed ({_function_name(source)}): they read files, the "
                      f"network or other tables")
    raise Refused(f"not a query perfhouse can check: reads from {source.sql('clickhouse')[:60]}")


def _own_table(name: str, db: str, catalog: str, allowed: frozenset[str], database: str, shown: str) -> str:
    if catalog or (db and db != database):
        raise Refused(f"{shown}: only perfhouse's own tables can be read")
    if name not in allowed:
        raise Refused(f"no table {name!r}: perfhouse's tables are {', '.join(sorted(allowed))}")
    return name


def _check_in_table(node: exp.In, allowed: frozenset[str], database: str, renames: dict[int, str]) -> str:
    """`x IN t`, `x IN (t)`, `x IN db.t`: ClickHouse reads the table t (a bare name on the right of IN
    names a table, a CTE or a table's alias, never a value)."""
    right: exp.Expr | None = node.args.get("field")
    if right is None and len(node.expressions) == 1:
        right = node.expressions[0]
    while isinstance(right, exp.Paren):
        right = right.this
    if not isinstance(right, exp.Column) or isinstance(right.this, exp.Star):
        return ""
    shown = right.sql("clickhouse")
    if not right.table and (cte := _visible_cte(node, right.name)) is not None:
        renames.setdefault(id(cte), f"{cte.alias_or_name}__cte{len(renames) + 1}")
        right.replace(exp.column(exp.to_identifier(renames[id(cte)])))
        return ""
    if right.args.get("db") or right.args.get("catalog"):
        raise Refused(f"IN {shown}: only perfhouse's own tables can be read")
    try:
        return _own_table(right.name, right.table, "", allowed, database, shown)
    except Refused as refused:
        raise Refused(f"IN {shown} reads a table: {refused} (for values, write a list or a subquery)") from None


def _visible_cte(node: exp.Expr, name: str) -> exp.CTE | None:
    """The CTE (a `name AS (SELECT ...)`, not a `WITH expr AS name` alias) that `name` at `node` refers
    to: one defined by an enclosing query, before the one `node` is in (or that one itself when recursive)."""
    child: exp.Expr = node
    parent = node.parent
    while parent is not None:
        if isinstance(parent, exp.With):
            ctes = [c for c in parent.expressions if isinstance(c, exp.CTE)]
            mine = next((i for i, c in enumerate(ctes) if c is child), len(ctes))
            visible = ctes[: mine + 1] if parent.args.get("recursive") else ctes[:mine]
            for cte in reversed(visible):
                if not cte.args.get("scalar") and cte.alias_or_name == name:
                    return cte
            if parent.parent is None:
                return None
            child, parent = parent.parent, parent.parent.parent
            continue
        with_ = parent.args.get("with_") if isinstance(parent, exp.Query) else None
        if isinstance(with_, exp.With) and child is not with_:
            for cte in reversed(with_.expressions):
                if isinstance(cte, exp.CTE) and not cte.args.get("scalar") and cte.alias_or_name == name:
                    return cte
        child, parent = parent, parent.parent
    return None


def _rename_ctes(tree: exp.Expr, renames: dict[int, str]) -> None:
    for cte in tree.find_all(exp.CTE):
        if id(cte) in renames:
            cte.set("alias", exp.TableAlias(this=exp.to_identifier(renames[id(cte)])))


def _function_name(node: exp.Expr) -> str:
    """The name of the function ClickHouse will call for `node`, as sqlglot writes it."""
    if isinstance(node, exp.Anonymous):
        return str(node.name)
    if isinstance(node, exp.ParameterizedAgg | exp.CombinedParameterizedAgg | exp.AnonymousAggFunc |
                  exp.CombinedAggFunc):
        return str(node.name)
    text = _sql(node)
    if isinstance(node, exp.Binary | exp.Connector | exp.Unary) and isinstance(node.this, exp.Expr):
        left = node.this.sql(dialect="clickhouse", comments=False)
        if text.startswith(left) or text.startswith(("NOT ", "-", "~", "(")):
            return ""  # an operator: its operands are checked on their own
    call = _CALL.match(text)
    if call:
        return call[1]
    name = node.key.lower()
    if name not in _NOT_A_CALL:
        raise Refused(f"not a query perfhouse can check: {text[:60]}")
    return name


def limited(admitted: Admitted, row_limit: int = DEFAULT_ROW_LIMIT, timeout_s: int = DEFAULT_TIMEOUT_S,
            result_bytes: int = MAX_RESULT_BYTES) -> str:
    """The admitted SQL with the backend's guard: read-only, at most `row_limit` rows (a larger result is
    cut, not an error), `timeout_s` seconds and a bounded amount of memory. The query becomes a
    subquery under `LIMIT row_limit`, which also caps a UNION or a LIMIT larger than the cap, so the
    engine stops producing rows there; the result caps (in rows and bytes, overflow 'break') and small
    blocks bound what one huge block could add."""
    rows = max(1, int(row_limit))
    settings: dict[str, Any] = {
        "readonly": 1,
        "max_execution_time": max(1, int(timeout_s)),
        "timeout_overflow_mode": "throw",
        "max_result_rows": rows,
        "max_result_bytes": max(1, int(result_bytes)),
        "result_overflow_mode": "break",
        "max_block_size": MAX_BLOCK_ROWS,
        "max_memory_usage": MAX_MEMORY_BYTES,
    }
    return f"SELECT * FROM ({admitted.sql}) LIMIT {rows}" + settings_sql(settings)
