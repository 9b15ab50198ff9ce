"""userops on Spark DataFrames: OneID and the user models past one machine, with the answers
userops gives on one machine.

Install ``pip install "userops[spark]"`` on the driver and the same wheel on every executor
(the functions here run the userops core inside the executors through Arrow: ``mapInArrow``
and ``groupBy(...).applyInArrow``, Spark 4). Nothing row-level is collected to the driver:
the driver only sees aggregates (counts per partition, a few order statistics, sums, distinct
model triples with their counts).

Every function takes and returns ``pyspark.sql.DataFrame`` s, names its Spark jobs (``Spark UI →
Jobs``: ``userops.spark.<function>: <step>``) and checks the columns before any job runs
(``userops.TableError`` naming the column).

**Row order.** Where the one-machine answer depends on the order of rows (which record links
first when a cap refuses a link; the order in which a customer's amounts are summed), "the same
answer" means the answer userops gives on the rows in the DataFrame's own order — the order of
``df.toArrow()`` / ``df.collect()``, read with ``monotonically_increasing_id`` — or, with
``order=``, in the order of those columns (ties broken by the other columns, so the order is
total up to rows that are interchangeable).

OneID (:func:`resolve_identities`)
----------------------------------
1. Each partition asks the core which identifier every row would link (kind and normalized
   value, after the blocklist; :meth:`userops.IdentityGraph` rules).
2. Records and identifiers are the vertices of a graph, each row an edge between its record
   and its identifier (vertex ids are 64-bit hashes: a collision only joins two components,
   which the exact step below splits again, so it never changes an answer). Its connected
   components are found with the alternating large-star / small-star algorithm of Kiveris,
   Lattanzi, Mirrokni, Rastogi and Vassilvitskii, "Connected Components in MapReduce and
   Beyond" (SoCC 2014), in DataFrame operations, checkpointed every round (reliable
   checkpoints when the SparkContext has a checkpoint directory, else local ones) so the
   lineage stays one round long; it stops when a round changes nothing, or raises after
   ``max_iterations``.
3. Components are dealt to ``buckets`` groups and each group is resolved exactly by the core
   (``groupBy(bucket).applyInArrow``), its rows in row order. Caps, junk values and conflicts
   only ever act inside a component, so this is the one-machine answer.

A person's **OneID** is ``1 +`` the row position of its first row (row positions: see above; a
``long``). It is deterministic across reruns of the same input and never reused.

A **giant component** (a hub value the rules did not catch, say a store tablet's device id)
is resolved like any other by one task; above ``warn_component_rows`` rows a
:class:`GiantComponentWarning` names its commonest identifiers, and above
``max_component_rows`` the call raises ``userops.InvalidArgument`` naming them before any
executor takes it on (blocklist the value, or raise the bound).

**Incremental** (``previous=``): the rows of a new day are resolved against the result of the
day before — exactly as ``IdentityGraph`` would link them after yesterday's rows, as a second
batch into the same graph (a record id of the new day is a new record). Only the components the
new rows touch are resolved again (the new rows plus the old rows of those components); the
rest of ``previous`` is passed through untouched. Persons only ever merge (new evidence never
unlinks): a person keeps its OneID, and persons that merge keep the smallest of theirs (the
person whose first row came first); persons made only of new rows get ``1 +`` their first row's
position, positions continuing after yesterday's. The result holds yesterday's rows and
today's, ready to be the next day's ``previous``.

The result keeps its bookkeeping in one struct column, ``oneid_state`` (``batch``: 0 for the
first call and one more per increment; ``row``: the row position; ``component``; ``identifier``:
the identifier's vertex id). Drop it for reporting; keep it for the next increment.

Models
------
:func:`rfm` (scores and segments of all customers: the per-customer aggregates come from the
core per group of customers, the cut points are exact order statistics and the centres an
exactly rounded mean or a median over all of them), :func:`summary_data`, :func:`fit_beta_geo`
and :func:`fit_gamma_gamma` (the likelihood summed over the distinct triples with their counts,
which is the per-customer sum), :func:`churn_risk` and :func:`predict` (per row, in the
executors), :func:`lifecycle` and :func:`active_rate_decomposition` (per group of users, periods
through the last period of all the data, counts summed), and :func:`audiences` (the members of
audience expressions over a profile table).

Arrow settings: the functions use Arrow for every Python step whatever
``spark.sql.execution.arrow.pyspark.enabled`` says; ``spark.sql.execution.arrow.maxRecordsPerBatch``
only bounds the batches of the per-row steps (the per-group steps see each group whole), and
``spark.sql.session.timeZone`` is the zone whose wall clock the models read timestamps in (as
the one-machine functions read an Arrow timestamp column in its own zone).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import warnings
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from . import _native
from .errors import InvalidArgument, MissingDependency, TableError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

__all__ = [
    "GiantComponentWarning",
    "resolve_identities",
    "connected_components",
    "rfm",
    "summary_data",
    "fit_beta_geo",
    "fit_gamma_gamma",
    "churn_risk",
    "predict",
    "lifecycle",
    "active_rate_decomposition",
    "audiences",
]

#: Column names the functions add for their own use (dropped before returning).
_POS = "__uo_pos"
_BUCKET = "__uo_bucket"
_RV = "__uo_record"
_IV = "__uo_identifier"
_COMP = "__uo_component"
_BATCH = "__uo_batch"
_OLD = "__uo_old_oneid"
_STATE = "oneid_state"


class GiantComponentWarning(UserWarning):
    """A connected component of the identity graph above ``warn_component_rows`` rows; the
    message names its commonest identifiers (the hub a blocklist entry would cut)."""


# ---------------------------------------------------------------- plumbing


def _spark() -> Tuple[Any, Any]:
    """pyspark's ``functions`` and ``types`` modules, or ``MissingDependency``."""
    try:
        from pyspark.sql import functions as F
        from pyspark.sql import types as T
    except ImportError:
        raise MissingDependency(
            'userops.spark needs pyspark, which is not installed: pip install "userops[spark]"'
        ) from None
    return F, T


def _session(df: "DataFrame") -> "SparkSession":
    session: "SparkSession" = df.sparkSession
    return session


@contextlib.contextmanager
def _job(df: "DataFrame", what: str) -> Iterator[None]:
    """Name the Spark jobs started inside (the Spark UI shows them under this description)."""
    sc = _session(df).sparkContext
    before = sc.getLocalProperty("spark.job.description")
    sc.setJobDescription(f"userops.spark.{what}")
    try:
        yield
    finally:
        sc.setLocalProperty("spark.job.description", before)  # type: ignore[arg-type]


def _require(df: "DataFrame", columns: Mapping[str, Optional[str]]) -> None:
    """Every named column exists: ``TableError`` naming the argument and column otherwise."""
    have = set(df.columns)
    for arg, name in columns.items():
        if name is not None and name not in have:
            raise TableError(
                f"{arg}={name!r}: no such column (the DataFrame has {sorted(have)})", column=name
            )


def _field(df: "DataFrame", name: str) -> "DataType":
    dtype: "DataType" = df.schema[name].dataType
    return dtype


def _freeze(df: "DataFrame") -> "DataFrame":
    """Materialize ``df`` and cut its lineage: a reliable checkpoint when the context has a
    checkpoint directory, else a local one (on the executors)."""
    if _session(df).sparkContext.getCheckpointDir():
        return df.checkpoint(eager=True)
    return df.localCheckpoint(eager=True)


def _with_position(df: "DataFrame", order: Union[None, str, Sequence[str]], tiebreak: Sequence[str]) -> "DataFrame":
    """``df`` with a long column of row positions (see the module docs), frozen."""
    F, _ = _spark()
    if order is None:
        return _freeze(df.withColumn(_POS, F.monotonically_increasing_id()))
    cols = [order] if isinstance(order, str) else list(order)
    _require(df, {"order": c for c in cols})
    rest = [c for c in tiebreak if c in df.columns and c not in cols]
    ranked = df.orderBy(*[F.col(c).asc_nulls_first() for c in cols + rest])
    return _freeze(ranked.withColumn(_POS, F.monotonically_increasing_id()))


def _buckets(df: "DataFrame", buckets: Optional[int]) -> int:
    if buckets is None:
        return max(1, int(_session(df).conf.get("spark.sql.shuffle.partitions") or 200))
    if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 1:
        raise InvalidArgument("buckets is a positive integer", field="buckets")
    return buckets


def _table(batches: Any) -> "pa.Table":
    import pyarrow as pa

    if isinstance(batches, pa.Table):
        return batches
    return pa.Table.from_batches(list(batches))


def _spark_schema(arrow_schema: "pa.Schema") -> "StructType":
    from pyspark.sql.pandas.types import from_arrow_schema

    schema: "StructType" = from_arrow_schema(arrow_schema)
    return schema


def _add_fields(schema: "StructType", fields: Sequence[Tuple[str, "DataType"]]) -> "StructType":
    _, T = _spark()
    out = T.StructType(list(schema.fields))
    for name, dtype in fields:
        out = out.add(name, dtype, True)
    return out


def _conform(table: "pa.Table", schema: "StructType") -> "pa.Table":
    """``table`` with exactly ``schema``'s columns, cast to its Arrow types."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    target = to_arrow_schema(schema)
    cols = []
    for f in target:
        col = table.column(f.name)
        cols.append(col if col.type == f.type else col.cast(f.type))
    return pa.table(cols, schema=target)


# ---------------------------------------------------------------- connected components


def connected_components(
    edges: "DataFrame",
    *,
    src: str = "src",
    dst: str = "dst",
    max_iterations: int = 60,
    stats: Optional[Dict[str, Any]] = None,
) -> "DataFrame":
    """Connected components of an undirected graph given as a DataFrame of ``long`` edges:
    ``(vertex, component)`` for every vertex on an edge, ``component`` the smallest vertex
    of its component. Alternating large-star / small-star rounds (Kiveris et al. 2014),
    checkpointed every round; ``stats`` (a dict) receives ``iterations``. Raises
    ``InvalidArgument`` when the rounds have not converged after ``max_iterations``.

    >>> from pyspark.sql import SparkSession
    >>> spark = SparkSession.builder.getOrCreate()
    >>> e = spark.createDataFrame([(1, 2), (2, 3), (7, 5), (9, 9)], "src long, dst long")
    >>> sorted(tuple(r) for r in connected_components(e).collect())
    [(1, 1), (2, 1), (3, 1), (5, 5), (7, 5), (9, 9)]
    """
    F, _ = _spark()
    _require(edges, {"src": src, "dst": dst})
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, int) or max_iterations < 1:
        raise InvalidArgument("max_iterations is a positive integer", field="max_iterations")
    s, d = F.col("src"), F.col("dst")
    with _job(edges, "connected_components: edges"):
        raw = edges.select(F.col(src).cast("long").alias("src"), F.col(dst).cast("long").alias("dst"))
        raw = raw.where(s.isNotNull() & d.isNotNull())
        loops = raw.where(s == d).select(s.alias("vertex"))
        ee = _freeze(raw.where(s != d).select(F.least(s, d).alias("src"), F.greatest(s, d).alias("dst")).distinct())
    previous: Optional[Tuple[Any, Any]] = None
    rounds = 0
    for rounds in range(1, max_iterations + 1):
        with _job(edges, f"connected_components: round {rounds}"):
            # Large star: every vertex u links its larger neighbours to m(u), the smallest of
            # u and its neighbours (ee has src < dst, so each edge is one "larger neighbour").
            both = ee.unionByName(ee.select(d.alias("src"), s.alias("dst")))
            m1 = both.groupBy("src").agg(F.min("dst").alias("m")).select("src", F.least(s, F.col("m")).alias("m"))
            large = ee.join(m1, "src").select(d.alias("src"), F.col("m").alias("dst")).distinct()
            # Small star (large has src > dst): every vertex u links its smaller neighbours and
            # itself to the smallest of them.
            m2 = large.groupBy("src").agg(F.min("dst").alias("m"))
            small = (
                large.join(m2, "src")
                .select(F.col("m").alias("src"), d)
                .where(s != d)
                .unionByName(m2.select(F.col("m").alias("src"), s.alias("dst")))
                .distinct()
            )
            ee = _freeze(small)
            # Converged when a round changes nothing: the sum of sources and the edge count
            # both stay (GraphFrames' test, the count added).
            now = ee.agg(F.sum(s.cast("decimal(38,0)")), F.count(F.lit(1))).first()
            key = (now[0], now[1]) if now is not None else (None, 0)
        if key == previous:
            break
        previous = key
    else:
        raise InvalidArgument(
            f"connected components did not converge in {max_iterations} rounds", field="max_iterations"
        )
    if stats is not None:
        stats["iterations"] = rounds
    # After the last round every non-root vertex has one edge, from its root.
    members = ee.groupBy("dst").agg(F.min("src").alias("component")).select(d.alias("vertex"), "component")
    roots = ee.select(s.alias("vertex")).distinct().join(members.select("vertex"), "vertex", "left_anti")
    singles = (
        loops.distinct()
        .join(members.select("vertex"), "vertex", "left_anti")
        .join(roots, "vertex", "left_anti")
    )
    return (
        members.unionByName(roots.select("vertex", F.col("vertex").alias("component")))
        .unionByName(singles.select("vertex", F.col("vertex").alias("component")))
    )


# ---------------------------------------------------------------- OneID


def _text_or_int(df: "DataFrame", arg: str, name: str) -> None:
    _, T = _spark()
    dtype = _field(df, name)
    if not isinstance(dtype, (T.StringType, T.IntegralType)):
        raise TableError(f"{arg}={name!r}: expected text or integers, got {dtype.simpleString()}", column=name)


def _rules_json(rules: Optional[Mapping[str, Any]]) -> str:
    """The rules, validated and with every default filled in (``InvalidArgument`` if bad)."""
    from ._identity import IdentityGraph

    return json.dumps(IdentityGraph(rules).rules())


def _graph(rules_json: str) -> Any:
    from ._identity import IdentityGraph

    return IdentityGraph(json.loads(rules_json))


def resolve_identities(
    df: "DataFrame",
    rules: Optional[Mapping[str, Any]] = None,
    *,
    record_id: str = "record_id",
    kind: str = "kind",
    value: str = "value",
    source: str = "source",
    ts: str = "ts",
    order: Union[None, str, Sequence[str]] = None,
    previous: Optional["DataFrame"] = None,
    buckets: Optional[int] = None,
    max_iterations: int = 60,
    warn_component_rows: int = 100_000,
    max_component_rows: int = 5_000_000,
    stats: Optional[Dict[str, Any]] = None,
) -> "DataFrame":
    """Resolve a DataFrame of identifier rows to OneIDs: the same persons as
    :func:`userops.resolve_identities` on the same rows on one machine (see the module docs
    for the steps, the row order, the OneID numbers and giant components).

    Columns and ``rules`` as :func:`userops.resolve_identities` (``source`` and ``ts`` are
    optional). Returns ``df`` with ``oneid`` (``long``, null for a rejected row),
    ``reject_reason`` (null for an accepted row) and ``oneid_state`` (the bookkeeping an
    increment needs). With ``previous`` (an earlier result), the rows are resolved after
    ``previous``'s, and the result holds both (module docs, "Incremental"); ``rules`` must be
    the rules ``previous`` was resolved under.

    ``buckets`` is the number of groups the components are resolved in (default
    ``spark.sql.shuffle.partitions``). ``stats`` (a dict) receives ``iterations`` (rounds of
    the components), ``components_over_warning`` and ``rows`` (of the graph). Raises
    ``TableError`` for a missing column or one of another type, ``InvalidArgument`` for bad
    rules, a component above ``max_component_rows`` or rounds that do not converge.

    >>> import userops.spark
    >>> from pyspark.sql import SparkSession
    >>> spark = SparkSession.builder.getOrCreate()
    >>> rows = spark.createDataFrame([("A", "phone", "13800138000"), ("A", "device_id", "d1"),
    ...                               ("B", "device_id", "d1"), ("B", "email", "not-an-email")],
    ...                              "record_id string, kind string, value string")
    >>> out = userops.spark.resolve_identities(rows).orderBy("oneid_state.row")
    >>> [(r.record_id, r.oneid, r.reject_reason is None) for r in out.collect()]
    [('A', 1, True), ('A', 1, True), ('B', 1, True), ('B', None, False)]
    """
    F, T = _spark()
    _require(df, {"record_id": record_id, "kind": kind, "value": value})
    for arg, name in (("record_id", record_id), ("kind", kind), ("value", value)):
        _text_or_int(df, arg, name)
    for taken in ("oneid", "reject_reason", _STATE):
        if taken in df.columns:
            raise InvalidArgument(f"the DataFrame already has a column {taken!r} (the result adds it)", field=taken)
    for arg, n in (("warn_component_rows", warn_component_rows), ("max_component_rows", max_component_rows)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidArgument(f"{arg} is a positive integer", field=arg)
    rules_json = _rules_json(rules)
    nb = _buckets(df, buckets)
    src = source if source in df.columns else None
    tcol = ts if ts in df.columns else None
    base_cols = list(df.columns)

    batch, offset = 0, 0
    if previous is not None:
        _require(previous, {"previous": _STATE})
        want = [c for c in previous.columns if c not in ("oneid", "reject_reason", _STATE)]
        if sorted(want) != sorted(base_cols):
            raise InvalidArgument(
                f"the new rows have columns {sorted(base_cols)}, previous had {sorted(want)}", field="previous"
            )
        df = df.select(*[F.col(c).cast(_field(previous, c)).alias(c) for c in want])
        base_cols = want
        with _job(df, "resolve_identities: previous batch"):
            last = previous.agg(F.max(f"{_STATE}.batch"), F.max(f"{_STATE}.row")).first()
        if last is not None and last[0] is not None:
            batch, offset = int(last[0]) + 1, int(last[1]) + 1

    # 1. Row positions and what each row links (the core, per partition), frozen.
    def identifier_keys(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        import pyarrow as pa

        g = _graph(rules_json)
        for b in batches:
            keys = pa.table(g._native.identifier_keys(pa.table(b), record_id=record_id, kind=kind, value=value))
            out = pa.Table.from_batches([b]).append_column("__uo_ident", keys.column("identifier"))
            out = out.append_column("__uo_in", keys.column("in_record"))
            yield from out.to_batches()

    with _job(df, "resolve_identities: row positions and identifiers"):
        ordered = df.withColumn(_POS, F.monotonically_increasing_id())
        if order is not None:
            cols = [order] if isinstance(order, str) else list(order)
            _require(df, {"order": c for c in cols})
            rest = [c for c in (record_id, kind, value, src, tcol) if c is not None and c not in cols]
            ordered = df.orderBy(*[F.col(c).asc_nulls_first() for c in cols + rest]).withColumn(
                _POS, F.monotonically_increasing_id()
            )
        keys_schema = _add_fields(ordered.schema, [("__uo_ident", T.StringType()), ("__uo_in", T.BooleanType())])
        keyed = ordered.mapInArrow(identifier_keys, keys_schema)
        rows = _freeze(
            keyed.select(
                *[F.col(c) for c in base_cols],
                (F.col(_POS) + F.lit(offset)).alias(_POS),
                F.when(F.col("__uo_in"), F.xxhash64(F.lit(batch), F.col(record_id).cast("string"))).alias(_RV),
                F.when(F.col("__uo_ident").isNotNull(), F.xxhash64(F.lit("id"), F.col("__uo_ident"))).alias(_IV),
            )
        )

    # 2. Components of records and identifiers (old components contracted to one vertex).
    edges = rows.where(F.col(_IV).isNotNull()).select(F.col(_RV).alias("src"), F.col(_IV).alias("dst"))
    old = None
    if previous is not None:
        old_ids = previous.where(F.col(f"{_STATE}.identifier").isNotNull()).select(
            F.col(f"{_STATE}.identifier").alias("dst"), F.col(f"{_STATE}.component").alias("src")
        )
        touched = old_ids.join(rows.select(F.col(_IV).alias("dst")).distinct(), "dst")
        edges = edges.unionByName(touched.select("src", "dst").distinct())
    cc_stats: Dict[str, Any] = {}
    comps = _freeze(connected_components(edges, max_iterations=max_iterations, stats=cc_stats))
    new_rows = rows.join(comps, rows[_RV] == comps["vertex"], "left").select(
        *[F.col(c) for c in base_cols],
        F.col(_POS),
        F.col(_IV),
        F.coalesce(F.col("component"), F.col(_RV), F.xxhash64(F.lit("out"), F.col(_POS))).alias(_COMP),
        F.lit(batch).alias(_BATCH),
        F.lit(None).cast("long").alias(_OLD),
    )
    parts = new_rows
    if previous is not None:
        prev_rows = previous.select(
            *[F.col(c) for c in base_cols],
            F.col(f"{_STATE}.row").alias(_POS),
            F.col(f"{_STATE}.identifier").alias(_IV),
            F.col(f"{_STATE}.component").alias("__uo_prev_component"),
            F.col(f"{_STATE}.batch").alias(_BATCH),
            F.col("oneid").alias(_OLD),
            F.col("reject_reason"),
            F.col(_STATE),
        )
        old_comp = comps.select(F.col("vertex").alias("__uo_prev_component"), F.col("component").alias(_COMP))
        touched_rows = prev_rows.join(old_comp, "__uo_prev_component")
        old = prev_rows.join(old_comp, "__uo_prev_component", "left_anti")
        parts = parts.unionByName(
            touched_rows.select(*[F.col(c) for c in base_cols], _POS, _IV, _COMP, _BATCH, _OLD)
        )

    # 3. Giant components: named (and refused above the bound) before any task takes them on.
    with _job(df, "resolve_identities: component sizes"):
        big = parts.groupBy(_COMP).count().where(F.col("count") > warn_component_rows).collect()
    if big:
        ids = big[:5]
        hubs = (
            parts.join(F.broadcast(rows.sparkSession.createDataFrame([(r[0],) for r in ids], f"{_COMP} long")), _COMP)
            .where(F.col(_IV).isNotNull())
            .groupBy(_COMP, _IV)
            .agg(F.count(F.lit(1)).alias("n"), F.first(kind).alias("kind"), F.first(value).alias("value"))
        )
        with _job(df, "resolve_identities: hub identifiers"):
            top = hubs.orderBy(F.desc("n")).limit(15).collect()
        for r in ids:
            names = ", ".join(f"{h['kind']}:{h['value']} ({h['n']:,} rows)" for h in top if h[_COMP] == r[0])[:400]
            msg = f"a connected component of {r['count']:,} identifier rows; its commonest identifiers: {names}"
            if r["count"] > max_component_rows:
                raise InvalidArgument(
                    f"{msg}. One task would resolve it all (max_component_rows={max_component_rows:,}): add the "
                    "hub values to the rules' blocklist, or raise max_component_rows",
                    field="max_component_rows",
                )
            warnings.warn(msg, GiantComponentWarning, stacklevel=2)
    if stats is not None:
        stats["iterations"] = cc_stats.get("iterations")
        stats["components_over_warning"] = len(big)

    # 4. Each group of components resolved exactly by the core, in row order.
    out_schema = _add_fields(
        T.StructType([df.schema[c] for c in base_cols]),
        [
            ("oneid", T.LongType()),
            ("reject_reason", T.StringType()),
            (
                _STATE,
                T.StructType(
                    [
                        T.StructField("batch", T.IntegerType()),
                        T.StructField("row", T.LongType()),
                        T.StructField("component", T.LongType()),
                        T.StructField("identifier", T.LongType()),
                    ]
                ),
            ),
        ],
    )

    def resolve_group(table: "pa.Table") -> "pa.Table":
        return _resolve_group(table, rules_json, record_id, kind, value, src, tcol, out_schema)

    with _job(df, "resolve_identities: resolve components"):
        grouped = parts.withColumn(_BUCKET, F.pmod(F.col(_COMP), F.lit(nb)))
        result = grouped.groupBy(_BUCKET).applyInArrow(resolve_group, out_schema)
    if old is not None:
        result = result.unionByName(old.select(*[F.col(c) for c in base_cols], "oneid", "reject_reason", _STATE))
    return result


def _resolve_group(
    table: "pa.Table",
    rules_json: str,
    record_id: str,
    kind: str,
    value: str,
    source: Optional[str],
    ts: Optional[str],
    out_schema: "StructType",
) -> "pa.Table":
    """Resolve one group of whole components: batch by batch into one graph, rows in order."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    t = table.sort_by([(_POS, "ascending")])
    n = t.num_rows
    g = _graph(rules_json)
    pieces_oneid: List[Any] = []
    pieces_reason: List[Any] = []
    batches = t.column(_BATCH).to_numpy(zero_copy_only=False)
    cuts = [0] + [int(i) + 1 for i in np.flatnonzero(batches[1:] != batches[:-1])] + [n]
    cols = [c for c in (record_id, kind, value, source, ts) if c is not None]
    for a, b in zip(cuts[:-1], cuts[1:]):
        if b <= a:
            continue
        part = t.slice(a, b - a).select(cols)
        got = pa.table(
            g._native.resolve_table(
                part, record_id=record_id, kind=kind, value=value,
                source=source or "__uo_no_source", ts=ts or "__uo_no_ts",
            )
        )
        pieces_oneid.append(got.column("oneid").combine_chunks())
        pieces_reason.append(got.column("reject_reason").combine_chunks())
    local = pa.concat_arrays(pieces_oneid) if pieces_oneid else pa.array([], pa.uint64())
    reason = pa.concat_arrays(pieces_reason) if pieces_reason else pa.array([], pa.string())
    pos = t.column(_POS).to_numpy()
    old = t.column(_OLD)
    # A person's OneID: the smallest OneID its rows had (it merged those persons), else 1 + the
    # position of its first row.
    valid = np.asarray(pc.is_valid(local), dtype=bool)
    loc = np.asarray(pc.fill_null(local, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    size = int(loc.max()) + 1 if n else 1
    first_pos = np.full(size, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_pos, loc[valid], pos[valid])
    oneid_of = first_pos + 1
    has_old = valid & np.asarray(pc.is_valid(old), dtype=bool)
    old_np = np.asarray(pc.fill_null(old, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    if has_old.any():
        best = np.full(size, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(best, loc[has_old], old_np[has_old])
        oneid_of = np.where(best < np.iinfo(np.int64).max, best, oneid_of)
    oneid = pa.array(oneid_of[loc], type=pa.int64(), mask=~valid)
    state = pa.StructArray.from_arrays(
        [
            t.column(_BATCH).combine_chunks().cast(pa.int32()),
            t.column(_POS).combine_chunks(),
            t.column(_COMP).combine_chunks(),
            t.column(_IV).combine_chunks(),
        ],
        names=["batch", "row", "component", "identifier"],
    )
    out = t.append_column("oneid", oneid).append_column("reject_reason", reason).append_column(_STATE, state)
    return _conform(out, out_schema)
