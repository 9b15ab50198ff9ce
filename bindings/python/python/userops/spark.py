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
        # Persisted first, so writing the checkpoint does not compute ``df`` a second time.
        df = df.persist()
        frozen = df.checkpoint(eager=True)
        df.unpersist()
        return frozen
    return df.localCheckpoint(eager=True)


def _positioned(df: "DataFrame", order: Union[None, str, Sequence[str]], tiebreak: Sequence[str]) -> "DataFrame":
    """``df`` with a long column of row positions (see the module docs); freeze it before the
    positions are read twice."""
    F, _ = _spark()
    if order is None:
        return df.withColumn(_POS, F.monotonically_increasing_id())
    cols = [order] if isinstance(order, str) else list(order)
    _require(df, {"order": c for c in cols})
    rest = [c for c in tiebreak if c in df.columns and c not in cols]
    ranked = df.orderBy(*[F.col(c).asc_nulls_first() for c in cols + rest])
    return ranked.withColumn(_POS, F.monotonically_increasing_id())


def _with_position(df: "DataFrame", order: Union[None, str, Sequence[str]], tiebreak: Sequence[str]) -> "DataFrame":
    """:func:`_positioned`, frozen."""
    return _freeze(_positioned(df, order, tiebreak))


def _buckets(df: "DataFrame", buckets: Optional[int]) -> int:
    if buckets is None:
        return max(1, int(_session(df).conf.get("spark.sql.shuffle.partitions") or 200))
    if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 1:
        raise InvalidArgument("buckets is a positive integer", field="buckets")
    return buckets


def _add_fields(schema: "StructType", fields: Sequence[Tuple[str, "DataType"]]) -> "StructType":
    _, T = _spark()
    out: "StructType" = T.StructType(list(schema.fields))
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
    from pyspark.sql import Window as W

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
            # Minima over a window, not an aggregate joined back: one exchange per star.
            both = ee.unionByName(ee.select(d.alias("src"), s.alias("dst")))
            m1 = both.withColumn("m", F.least(s, F.min(d).over(W.partitionBy("src"))))
            large = m1.where(d > s).select(d.alias("src"), F.col("m").alias("dst"))
            # Small star (large has src > dst): every vertex u links its smaller neighbours and
            # itself to the smallest of them.
            m2 = large.withColumn("m", F.min(d).over(W.partitionBy("src")))
            pairs = F.array(
                F.struct(F.col("m").alias("src"), d.alias("dst")), F.struct(F.col("m").alias("src"), s.alias("dst"))
            )
            small = m2.select(F.explode(pairs).alias("e")).select("e.*").where(s != d).distinct()
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
        ordered = _positioned(df, order, [record_id, kind, value, source, ts])
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
    with _job(df, "resolve_identities: components"):
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
        result = result.unionByName(
            old.select(*[F.col(c) for c in base_cols], F.col(_OLD).alias("oneid"), "reject_reason", _STATE)
        )
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
    # A row's person is its person after the last batch: an earlier batch's answer may name a
    # person a later batch merged into another.
    for i in range(len(pieces_oneid) - 1):
        ids = pieces_oneid[i]
        seen = pc.unique(ids.drop_null())
        live = pa.array([g.canonical(o) for o in seen.to_pylist()], ids.type)
        pieces_oneid[i] = pc.take(live, pc.index_in(ids, value_set=seen))
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


# ---------------------------------------------------------------- exact aggregates


def _exact_sum(df: "DataFrame", column: str) -> Fraction:
    """The exact sum of a double column: each value is a 53-bit integer times a power of two,
    the integers are summed per power in the executors (as two 26/27-bit halves, exact in
    ``long`` for fewer than 2^36 values) and the powers combined on the driver."""
    F, T = _spark()
    schema = T.StructType([T.StructField("e", T.IntegerType()), T.StructField("hi", T.LongType()), T.StructField("lo", T.LongType())])

    def parts(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        import numpy as np
        import pyarrow as pa

        for b in batches:
            x = np.asarray(b.column(0).to_numpy(zero_copy_only=False), dtype=np.float64)
            m, e = np.frexp(x)
            mant = np.ldexp(m, 53).astype(np.int64)
            exp = (e - 53).astype(np.int32)
            keys, inv = np.unique(exp, return_inverse=True)
            hi = np.zeros(len(keys), dtype=np.int64)
            lo = np.zeros(len(keys), dtype=np.int64)
            sign = np.sign(mant)
            mag = np.abs(mant)
            np.add.at(hi, inv, sign * (mag >> 26))
            np.add.at(lo, inv, sign * (mag & ((1 << 26) - 1)))
            yield pa.record_batch([pa.array(keys, pa.int32()), pa.array(hi), pa.array(lo)], names=["e", "hi", "lo"])

    rows = (
        df.select(F.col(column).cast("double"))
        .mapInArrow(parts, schema)
        .groupBy("e")
        .agg(F.sum("hi").alias("hi"), F.sum("lo").alias("lo"))
        .collect()
    )
    total = Fraction(0)
    for r in rows:
        total += Fraction((int(r["hi"]) << 26) + int(r["lo"])) * Fraction(2) ** int(r["e"])
    return total


def _order_statistics(
    df: "DataFrame", columns: Sequence[Tuple[str, bool]], positions: Mapping[str, Sequence[int]]
) -> Dict[str, Dict[int, float]]:
    """Exact order statistics: for each ``(column, ascending)``, the values at the 0-based
    ``positions`` of the column sorted that way. One range shuffle of the (column, key) pairs,
    frozen; then the counts per partition (to the driver), then in the partitions that hold the
    wanted positions a local sort."""
    F, T = _spark()
    session = _session(df)
    key = F.explode(
        F.array(
            *[
                F.struct(F.lit(i).alias("m"), (F.col(c) if asc else -F.col(c)).cast("double").alias("k"))
                for i, (c, asc) in enumerate(columns)
            ]
        )
    )
    n_parts = max(1, int(session.conf.get("spark.sql.shuffle.partitions") or 200))
    ranged = _freeze(df.select(key.alias("x")).select("x.m", "x.k").repartitionByRange(n_parts, "m", "k"))
    count_schema = T.StructType([T.StructField(f, T.LongType()) for f in ("p", "m", "n")])

    def counts(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        import numpy as np
        import pyarrow as pa
        from pyspark import TaskContext

        ctx = TaskContext.get()
        pid = ctx.partitionId() if ctx is not None else 0
        tally: Dict[int, int] = {}
        for b in batches:
            ms, ns = np.unique(b.column(0).to_numpy(zero_copy_only=False), return_counts=True)
            for m, n in zip(ms.tolist(), ns.tolist()):
                tally[m] = tally.get(m, 0) + n
        if tally:
            ms_sorted = sorted(tally)
            yield pa.record_batch(
                [pa.array([pid] * len(ms_sorted), pa.int64()), pa.array(ms_sorted, pa.int64()),
                 pa.array([tally[m] for m in ms_sorted], pa.int64())],
                names=["p", "m", "n"],
            )

    tallies = sorted((int(r["m"]), int(r["p"]), int(r["n"])) for r in ranged.mapInArrow(counts, count_schema).collect())
    wanted: Dict[int, List[Tuple[int, int, int]]] = {}
    for i, (c, _) in enumerate(columns):
        spans = [(p, n) for m, p, n in tallies if m == i]
        for pos in sorted(set(positions.get(c, []))):
            before = 0
            for p, n in spans:
                if pos < before + n:
                    wanted.setdefault(p, []).append((i, pos - before, pos))
                    break
                before += n
    pick_schema = T.StructType([T.StructField("m", T.LongType()), T.StructField("pos", T.LongType()), T.StructField("k", T.DoubleType())])

    def pick(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        import numpy as np
        import pyarrow as pa
        from pyspark import TaskContext

        ctx = TaskContext.get()
        want = wanted.get(ctx.partitionId() if ctx is not None else 0)
        if not want:
            return
        t = pa.Table.from_batches(list(batches))
        m = t.column("m").to_numpy()
        k = t.column("k").to_numpy()
        out_m, out_p, out_k = [], [], []
        for i, local, pos in want:
            vals = np.sort(k[m == i], kind="stable")
            out_m.append(i)
            out_p.append(pos)
            out_k.append(float(vals[local]))
        yield pa.record_batch([pa.array(out_m, pa.int64()), pa.array(out_p, pa.int64()), pa.array(out_k)], names=["m", "pos", "k"])

    out: Dict[str, Dict[int, float]] = {c: {} for c, _ in columns}
    for r in ranged.mapInArrow(pick, pick_schema).collect():
        c, asc = columns[int(r["m"])]
        out[c][int(r["pos"])] = float(r["k"]) if asc else -float(r["k"])
    return out


def _wall_max(df: "DataFrame", columns: Sequence[str]) -> Optional[Union[_dt.datetime, _dt.date]]:
    """The latest value of timestamp (or date) columns, as an aware datetime in the session
    time zone (whose wall clock the Arrow batches carry) or a date."""
    F, T = _spark()
    dates = [c for c in columns if isinstance(_field(df, c), T.DateType)]
    stamps = [c for c in columns if c not in dates]
    for c in stamps:
        if not isinstance(_field(df, c), T.TimestampType):
            raise TableError(f"{c!r}: expected a timestamp or date column, got {_field(df, c).simpleString()}", column=c)
    aggs = [F.max(F.unix_micros(F.col(c))) for c in stamps] + [F.max(F.col(c)) for c in dates]
    row = df.agg(*aggs).first()
    if row is None:
        return None
    vals = [v for v in row if v is not None]
    if not vals:
        return None
    if stamps:
        from zoneinfo import ZoneInfo

        micros = max(int(v) for v in list(row)[: len(stamps)] if v is not None)
        tz = ZoneInfo(_session(df).conf.get("spark.sql.session.timeZone") or "UTC")
        at = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc) + _dt.timedelta(microseconds=micros)
        return at.astimezone(tz)
    day: _dt.date = max(vals)
    return day


# ---------------------------------------------------------------- models


def _group_apply(
    df: "DataFrame", key: str, nb: int, fn: Callable[["pa.Table"], "pa.Table"], schema: "StructType"
) -> "DataFrame":
    F, _ = _spark()
    return df.groupBy(F.pmod(F.xxhash64(F.col(key)), F.lit(nb)).alias(_BUCKET)).applyInArrow(fn, schema)


def rfm(
    orders: "DataFrame",
    customer_col: str,
    datetime_col: str,
    amount_col: str,
    as_of: Any,
    window_days: Optional[int] = None,
    monetary: str = "sum",
    split: str = "mean",
    *,
    order: Union[None, str, Sequence[str]] = None,
    buckets: Optional[int] = None,
) -> "DataFrame":
    """RFM of every customer, as :func:`userops.rfm` on the whole DataFrame (scores and
    segments against all customers, not per partition): one row per customer with
    ``recency``, ``frequency``, ``monetary``, ``r_score``, ``f_score``, ``m_score`` and
    ``segment``. A customer's amounts are summed in row order (module docs), as on one machine.

    >>> import datetime as dt, userops.spark
    >>> from pyspark.sql import SparkSession
    >>> spark = SparkSession.builder.getOrCreate()
    >>> orders = spark.createDataFrame([("M1", dt.date(2026, 1, 2), 120.0), ("M1", dt.date(2026, 1, 20), 80.0),
    ...                                 ("M2", dt.date(2026, 1, 5), 35.5), ("M3", dt.date(2026, 1, 30), 500.0)],
    ...                                "member string, day date, amount double")
    >>> r = userops.spark.rfm(orders, "member", "day", "amount", as_of="2026-01-31").orderBy("member")
    >>> [(x.member, x.recency, x.frequency, x.segment) for x in r.collect()][0]
    ('M1', 11, 2, 'general_value')
    """
    F, T = _spark()
    _require(orders, {"customer_col": customer_col, "datetime_col": datetime_col, "amount_col": amount_col})
    if monetary not in ("sum", "mean"):
        raise InvalidArgument('monetary is "sum" or "mean"', field="monetary")
    if split not in ("mean", "median"):
        raise InvalidArgument('split is "mean" or "median"', field="split")
    nb = _buckets(orders, buckets)
    from .models import rfm as _rfm

    with _job(orders, "rfm: row positions"):
        rows = _with_position(orders.select(customer_col, datetime_col, amount_col), order, [customer_col, datetime_col, amount_col])
    per_schema = T.StructType(
        [
            orders.schema[customer_col],
            T.StructField("recency", T.LongType()),
            T.StructField("frequency", T.LongType()),
            T.StructField("monetary", T.DoubleType()),
        ]
    )

    def aggregate(t: "pa.Table") -> "pa.Table":
        t = t.sort_by([(_POS, "ascending")]).select([customer_col, datetime_col, amount_col])
        got = _rfm(t, customer_col, datetime_col, amount_col, as_of, window_days=window_days,
                   monetary=monetary, split=split, output="arrow", progress=False)
        return _conform(got, per_schema)

    with _job(orders, "rfm: per customer"):
        per = _freeze(_group_apply(rows, customer_col, nb, aggregate, per_schema))
        n = per.count()
    out_schema = _add_fields(
        per_schema,
        [("r_score", T.LongType()), ("f_score", T.LongType()), ("m_score", T.LongType()), ("segment", T.StringType())],
    )
    if n == 0:
        return _session(orders).createDataFrame([], out_schema)
    # The cut points (RfmScale::cut_positions: ceil(s n / 5) - 1, worse first) and the centres.
    cuts = [max(0, (s * n + 4) // 5 - 1) for s in (1, 2, 3, 4)]
    mids = [n // 2] if n % 2 else [n // 2 - 1, n // 2]
    measures = [("recency", False), ("frequency", True), ("monetary", True)]
    want = {c: list(cuts) for c, _ in measures}
    if split == "median":
        # Natural ascending positions; recency is held worse (larger) first.
        want["recency"] += [n - 1 - p for p in mids]
        want["frequency"] += mids
        want["monetary"] += mids
    with _job(orders, "rfm: cut points"):
        stats = _order_statistics(per, measures, want)
        if split == "mean":
            sums = per.agg(F.sum("recency"), F.sum("frequency")).first()
            assert sums is not None
            centres = [
                float(Fraction(int(sums[0]))) / n,
                float(Fraction(int(sums[1]))) / n,
                float(_exact_sum(per, "monetary")) / n,
            ]
        else:
            def median(c: str, natural: List[int]) -> float:
                vals = [stats[c][p] for p in natural]
                return vals[0] if len(vals) == 1 else (vals[0] + vals[1]) / 2.0

            centres = [
                median("recency", sorted(n - 1 - p for p in mids)[::-1]),
                median("frequency", mids),
                median("monetary", mids),
            ]
    scale = json.dumps({"cuts": [[stats[c][p] for p in cuts] for c, _ in measures], "centres": centres})

    def score(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        import pyarrow as pa

        for b in batches:
            t = pa.Table.from_batches([b])
            s = pa.table(_native.rfm_score(t.select(["recency", "frequency", "monetary"]).cast(
                pa.schema([("recency", pa.float64()), ("frequency", pa.float64()), ("monetary", pa.float64())])), scale))
            for c in s.column_names:
                t = t.append_column(c, s.column(c))
            yield from _conform(t, out_schema).to_batches()

    return per.mapInArrow(score, out_schema)


def summary_data(
    transactions: "DataFrame",
    customer_id_col: str,
    datetime_col: str,
    monetary_value_col: Optional[str] = None,
    observation_period_end: Any = None,
    freq: str = "D",
    *,
    order: Union[None, str, Sequence[str]] = None,
    buckets: Optional[int] = None,
) -> "DataFrame":
    """Per-customer ``frequency``, ``recency``, ``T`` (and ``monetary_value``), as
    :func:`userops.summary_data` on the whole DataFrame; the default observation end is the
    latest transaction of all of them (in the session time zone's wall clock).

    >>> import datetime as dt, userops.spark
    >>> from pyspark.sql import SparkSession
    >>> spark = SparkSession.builder.getOrCreate()
    >>> orders = spark.createDataFrame([("M1", dt.date(2026, 1, 2), 120.0), ("M1", dt.date(2026, 1, 20), 80.0),
    ...                                 ("M2", dt.date(2026, 1, 5), 35.5), ("M3", dt.date(2026, 1, 31), 500.0)],
    ...                                "member string, day date, amount double")
    >>> s = userops.spark.summary_data(orders, "member", "day", "amount").orderBy("member")
    >>> [tuple(x) for x in s.collect()][0]
    ('M1', 1.0, 18.0, 29.0, 80.0)
    """
    F, T = _spark()
    _require(transactions, {"customer_id_col": customer_id_col, "datetime_col": datetime_col,
                            "monetary_value_col": monetary_value_col})
    if freq not in ("D", "W", "M"):
        raise InvalidArgument('freq is "D", "W" or "M"', field="freq")
    nb = _buckets(transactions, buckets)
    cols = [c for c in (customer_id_col, datetime_col, monetary_value_col) if c is not None]
    end = observation_period_end
    if end is None:
        with _job(transactions, "summary_data: observation end"):
            end = _wall_max(transactions, [datetime_col])
    from .models import summary_data as _summary

    fields = [transactions.schema[customer_id_col]] + [
        T.StructField(c, T.DoubleType()) for c in ("frequency", "recency", "T")
    ]
    if monetary_value_col is not None:
        fields.append(T.StructField("monetary_value", T.DoubleType()))
    schema = T.StructType(fields)

    def per_group(t: "pa.Table") -> "pa.Table":
        t = t.sort_by([(_POS, "ascending")]).select(cols)
        got = _summary(t, customer_id_col, datetime_col, monetary_value_col, observation_period_end=end,
                       freq=freq, output="arrow")
        return _conform(got, schema)

    with _job(transactions, "summary_data: row positions"):
        rows = _with_position(transactions.select(*cols), order, cols)
    with _job(transactions, "summary_data: per customer"):
        return _group_apply(rows, customer_id_col, nb, per_group, schema)


def _weighted(df: "DataFrame", columns: Sequence[str]) -> Tuple[List[List[float]], List[int]]:
    """The distinct rows of ``columns`` with their counts (sorted, so the fit is deterministic)."""
    F, _ = _spark()
    rows = sorted(tuple(r) for r in df.groupBy(*columns).count().collect())
    values = [[float(r[i]) for r in rows] for i in range(len(columns))]
    return values, [int(r[len(columns)]) for r in rows]


def fit_beta_geo(summary: "DataFrame", *, frequency: str = "frequency", recency: str = "recency", T: str = "T") -> Any:
    """A :class:`userops.BetaGeo` fitted on a summary DataFrame (:func:`summary_data`): the
    distinct (frequency, recency, T) triples with their counts go to the driver (at most
    periods² rows whatever the customers) and the core maximizes the likelihood summed over
    them with the counts as weights, which is the sum over the customers.

    >>> import userops, userops.spark
    >>> from pyspark.sql import SparkSession
    >>> spark = SparkSession.builder.getOrCreate()
    >>> s = spark.createDataFrame(userops.sample_summary().to_pandas())
    >>> bg = userops.spark.fit_beta_geo(s)
    >>> {k: round(v, 2) for k, v in bg.params.items()}
    {'r': 0.46, 'alpha': 4.74, 'a': 5.03, 'b': 36.37}
    """
    from .models import BetaGeo

    _require(summary, {"frequency": frequency, "recency": recency, "T": T})
    with _job(summary, "fit_beta_geo: distinct triples"):
        (f, r, t), w = _weighted(summary, [frequency, recency, T])
    return BetaGeo().fit(f, r, t, weights=w)


def fit_gamma_gamma(summary: "DataFrame", *, frequency: str = "frequency", monetary_value: str = "monetary_value") -> Any:
    """A :class:`userops.GammaGamma` fitted on the repeat customers (frequency > 0) of a summary
    DataFrame: the distinct (frequency, monetary_value) pairs with their counts go to the
    driver (one per repeat customer at worst: 16 bytes each) and are fitted with the counts as
    weights.

    >>> import userops, userops.spark
    >>> from pyspark.sql import SparkSession
    >>> spark = SparkSession.builder.getOrCreate()
    >>> s = spark.createDataFrame(userops.sample_summary().to_pandas())
    >>> gg = userops.spark.fit_gamma_gamma(s)
    >>> {k: round(v, 2) for k, v in gg.params.items()}
    {'p': 3.28, 'q': 4.88, 'v': 202.21}
    """
    F, _ = _spark()
    from .models import GammaGamma

    _require(summary, {"frequency": frequency, "monetary_value": monetary_value})
    with _job(summary, "fit_gamma_gamma: distinct pairs"):
        (f, m), w = _weighted(summary.where(F.col(frequency) > 0), [frequency, monetary_value])
    return GammaGamma().fit(f, m, weights=w)


def churn_risk(
    summary: "DataFrame",
    model: Any,
    low_below: float = 0.3,
    high_from: float = 0.7,
    *,
    frequency: str = "frequency",
    recency: str = "recency",
    T: str = "T",
) -> "DataFrame":
    """``summary`` with ``p_alive`` (BG/NBD, :meth:`userops.BetaGeo.p_alive`) and ``risk``: the
    churn probability 1 - p_alive banded ``low`` below ``low_below``, ``high`` from
    ``high_from``, else ``mid`` (as :meth:`userops.Engine.churn_risk`), computed in the
    executors.

    >>> import userops, userops.spark
    >>> from pyspark.sql import SparkSession
    >>> spark = SparkSession.builder.getOrCreate()
    >>> s = spark.createDataFrame(userops.sample_summary().to_pandas())
    >>> risk = userops.spark.churn_risk(s, userops.spark.fit_beta_geo(s))
    >>> sorted(r.risk for r in risk.groupBy("risk").count().collect())
    ['high', 'low', 'mid']
    """
    F, Ty = _spark()
    _require(summary, {"frequency": frequency, "recency": recency, "T": T})
    params = dict(model.params)
    if not params:
        raise InvalidArgument("the model is not fitted: call fit_beta_geo() first", field="model")
    _native.churn_bands(_tables_empty(), float(low_below), float(high_from))
    schema = _add_fields(summary.schema, [("p_alive", Ty.DoubleType()), ("risk", Ty.StringType())])

    def band(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        import pyarrow as pa
        from .models import BetaGeo

        bg = BetaGeo()
        bg.params = params
        for b in batches:
            t = pa.Table.from_batches([b])
            p = bg.p_alive(t.column(frequency).combine_chunks(), t.column(recency).combine_chunks(), t.column(T).combine_chunks())
            t = t.append_column("p_alive", p)
            risk = pa.table(_native.churn_bands(pa.table({"p_alive": p}), float(low_below), float(high_from)))
            yield from _conform(t.append_column("risk", risk.column("risk")), schema).to_batches()

    return summary.mapInArrow(band, schema)


def _tables_empty() -> "pa.Table":
    import pyarrow as pa

    return pa.table({"p_alive": pa.array([], pa.float64())})


def predict(
    summary: "DataFrame",
    beta_geo: Any,
    t: float,
    gamma_gamma: Any = None,
    *,
    months: int = 12,
    discount_rate: float = 0.01,
    freq: str = "D",
    frequency: str = "frequency",
    recency: str = "recency",
    T: str = "T",
    monetary_value: str = "monetary_value",
) -> "DataFrame":
    """``summary`` with ``expected_purchases`` (in the next ``t`` periods, conditional on each
    customer's history) and, with a fitted ``gamma_gamma``, ``expected_average_profit`` and
    ``clv`` (over ``months``, as :meth:`userops.GammaGamma.customer_lifetime_value`), computed in
    the executors.

    >>> import userops, userops.spark
    >>> from pyspark.sql import SparkSession
    >>> spark = SparkSession.builder.getOrCreate()
    >>> s = spark.createDataFrame(userops.sample_summary().to_pandas())
    >>> p = userops.spark.predict(s, userops.spark.fit_beta_geo(s), 10)
    >>> round(p.agg({"expected_purchases": "sum"}).first()[0], 1) > 0
    True
    """
    F, Ty = _spark()
    _require(summary, {"frequency": frequency, "recency": recency, "T": T,
                       "monetary_value": monetary_value if gamma_gamma is not None else None})
    bg_params = dict(beta_geo.params)
    gg_params = dict(gamma_gamma.params) if gamma_gamma is not None else None
    if not bg_params or (gamma_gamma is not None and not gg_params):
        raise InvalidArgument("fit the models first", field="beta_geo")
    extra = [("expected_purchases", Ty.DoubleType())]
    if gg_params is not None:
        extra += [("expected_average_profit", Ty.DoubleType()), ("clv", Ty.DoubleType())]
    schema = _add_fields(summary.schema, extra)

    def per_batch(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        import pyarrow as pa
        from .models import BetaGeo, GammaGamma

        bg = BetaGeo()
        bg.params = bg_params
        gg = None
        if gg_params is not None:
            gg = GammaGamma()
            gg.params = gg_params
        for b in batches:
            tb = pa.Table.from_batches([b])
            f, r, tt = (tb.column(c).combine_chunks() for c in (frequency, recency, T))
            horizon = pa.array([float(t)] * tb.num_rows, pa.float64())
            tb = tb.append_column("expected_purchases", bg.expected_purchases(horizon, f, r, tt))
            if gg is not None:
                m = tb.column(monetary_value).combine_chunks()
                tb = tb.append_column("expected_average_profit", gg.conditional_expected_average_profit(f, m))
                tb = tb.append_column(
                    "clv", gg.customer_lifetime_value(bg, f, r, tt, m, time=months, discount_rate=discount_rate, freq=freq)
                )
            yield from _conform(tb, schema).to_batches()

    return summary.mapInArrow(per_batch, schema)


# ---------------------------------------------------------------- lifecycle


def _through(
    df: "DataFrame", time: str, registered: Optional[str], period: str, tz: Any, through: Optional[str]
) -> Optional[str]:
    """The label of the last period of all the data (or ``through`` when later), from the core
    on a one-row table at the latest instant."""
    import pyarrow as pa

    from ._lifecycle import lifecycle as _lifecycle

    latest = _wall_max(df, [c for c in (time, registered) if c is not None])
    if latest is None:
        return through
    if not isinstance(latest, _dt.datetime):
        latest = _dt.datetime(latest.year, latest.month, latest.day, tzinfo=_dt.timezone.utc)
    tiny = pa.table({"user": ["x"], "time": pa.array([latest.astimezone(_dt.timezone.utc)], pa.timestamp("us", tz="UTC"))})
    got = _lifecycle(tiny, user="user", time="time", period=period, tz=tz, through=through, output="arrow", progress=False)
    label: str = got.column("period")[-1].as_py()
    return label


def _lifecycle_args(df: "DataFrame", user: str, time: str, registered: Optional[str]) -> None:
    _, T = _spark()
    _require(df, {"user": user, "time": time, "registered": registered})
    for arg, c in (("time", time), ("registered", registered)):
        if c is not None and not isinstance(_field(df, c), (T.TimestampType, T.DateType)):
            raise TableError(f"{arg}={c!r}: expected a timestamp column, got {_field(df, c).simpleString()}", column=c)


def lifecycle(
    df: "DataFrame",
    *,
    user: str = "user",
    time: str = "time",
    registered: Optional[str] = None,
    period: str = "month",
    tz: Any = 8,
    churn_after: int = 2,
    early_activity: str = "error",
    through: Optional[str] = None,
    buckets: Optional[int] = None,
) -> "DataFrame":
    """The lifecycle stage of every user in every period, as :func:`userops.lifecycle` on the
    whole DataFrame: ``user``, ``period``, ``stage``, from each user's registration period
    through the last period of all the data (or ``through``). Users are resolved in groups by
    the core; each group runs through the same last period.

    >>> import datetime as dt, userops.spark
    >>> from pyspark.sql import SparkSession
    >>> spark = SparkSession.builder.getOrCreate()
    >>> utc = dt.timezone.utc
    >>> acts = spark.createDataFrame([("u1", dt.datetime(2026, 1, 5, tzinfo=utc)), ("u1", dt.datetime(2026, 2, 3, tzinfo=utc)),
    ...                               ("u2", dt.datetime(2026, 1, 9, tzinfo=utc))], "user string, time timestamp")
    >>> [tuple(r) for r in userops.spark.lifecycle(acts).orderBy("user", "period").collect()]
    [('u1', '2026-01', 'new'), ('u1', '2026-02', 'last_period_new'), ('u2', '2026-01', 'new'), ('u2', '2026-02', 'dormant')]
    """
    _, T = _spark()
    _lifecycle_args(df, user, time, registered)
    nb = _buckets(df, buckets)
    from ._lifecycle import lifecycle as _lifecycle

    with _job(df, "lifecycle: last period"):
        last = _through(df, time, registered, period, tz, through)
    cols = [c for c in (user, time, registered) if c is not None]
    schema = T.StructType([df.schema[user], T.StructField("period", T.StringType()), T.StructField("stage", T.StringType())])

    def per_group(t: "pa.Table") -> "pa.Table":
        got = _lifecycle(t.select(cols), user=user, time=time, registered=registered, period=period, tz=tz,
                         churn_after=churn_after, early_activity=early_activity, through=last,
                         output="arrow", progress=False)
        return _conform(got, schema)

    with _job(df, "lifecycle: stages"):
        return _group_apply(df.select(*cols), user, nb, per_group, schema)


_TERMS = (
    ("old_active", "old_retained", "old_retention"),
    ("last_new", "new_retained", "new_retention"),
    ("dormant", "woken", "wake_rate"),
    ("churned", "returned", "return_rate"),
)


def active_rate_decomposition(
    df: "DataFrame",
    *,
    user: str = "user",
    time: str = "time",
    registered: Optional[str] = None,
    period: str = "month",
    tz: Any = 8,
    churn_after: int = 2,
    early_activity: str = "error",
    through: Optional[str] = None,
    by: Optional[str] = None,
    buckets: Optional[int] = None,
) -> "DataFrame":
    """The active rate of every period and its exact decomposition, as
    :func:`userops.active_rate_decomposition` on the whole DataFrame (the same columns; ``by``
    adds a ``segment`` column). The core reports each group of users through the last period
    of all the data; the counts are summed over the groups and the rates are the ratios of the
    sums (a group's first period, before which it has nobody, counts as empty groups).

    >>> import datetime as dt, userops.spark
    >>> from pyspark.sql import SparkSession
    >>> spark = SparkSession.builder.getOrCreate()
    >>> utc = dt.timezone.utc
    >>> acts = spark.createDataFrame([(1, dt.datetime(2026, 1, 5, tzinfo=utc)), (1, dt.datetime(2026, 2, 3, tzinfo=utc)),
    ...                               (2, dt.datetime(2026, 1, 9, tzinfo=utc)), (3, dt.datetime(2026, 2, 10, tzinfo=utc))],
    ...                              "user long, time timestamp")
    >>> d = userops.spark.active_rate_decomposition(acts).collect()
    >>> [(r.period, r.registered, r.actives, r.new, r.new_retained) for r in d]
    [('2026-01', 2, 2, 2, None), ('2026-02', 3, 2, 1, 1)]
    """
    F, T = _spark()
    _lifecycle_args(df, user, time, registered)
    _require(df, {"by": by})
    nb = _buckets(df, buckets)
    from ._lifecycle import active_rate_decomposition as _decomposition

    with _job(df, "active_rate_decomposition: last period"):
        last = _through(df, time, registered, period, tz, through)
    cols = [c for c in (user, time, registered, by) if c is not None]
    counts = ["registered", "actives", "new"] + [c for size, kept, _ in _TERMS for c in (size, kept)]

    stage_cols: List[str] = []
    fields = [T.StructField("segment", T.StringType()), T.StructField("period", T.StringType())]
    fields += [T.StructField(c, T.LongType()) for c in counts]

    def per_group(t: "pa.Table") -> "pa.Table":
        got = _decomposition(t.select(cols), user=user, time=time, registered=registered, period=period, tz=tz,
                             churn_after=churn_after, early_activity=early_activity, through=last, by=by,
                             output="arrow", progress=False)
        if by is None:
            import pyarrow as pa

            got = got.append_column("segment", pa.array(["(all)"] * got.num_rows, pa.string()))
        return _conform(got, group_schema)

    # The stage columns, named by the core: read them off a one-row report.
    import pyarrow as pa

    probe = _decomposition(
        pa.table({"u": [1], "t": pa.array([_dt.datetime(2026, 1, 1, tzinfo=_dt.timezone.utc)], pa.timestamp("us", tz="UTC"))}),
        user="u", time="t", output="arrow", progress=False,
    )
    stage_cols = [c for c in probe.column_names if c.startswith("stage_")]
    group_schema = T.StructType(fields + [T.StructField(c, T.LongType()) for c in stage_cols])
    with _job(df, "active_rate_decomposition: per group of users"):
        parts = _group_apply(df.select(*cols), user, nb, per_group, group_schema)
        summed = _freeze(
            parts.groupBy("segment", "period").agg(
                *[F.sum(F.coalesce(F.col(c), F.lit(0))).alias(c) for c in counts + stage_cols]
            )
        )
        first = summed.agg(F.min("period")).first()
    first_period = first[0] if first is not None else None
    # Every segment over every period of the data (a segment absent from the first periods
    # has zeros there, as on one machine).
    grid = summed.select("segment").distinct().crossJoin(summed.select("period").distinct())
    full = grid.join(summed, ["segment", "period"], "left").fillna(0, subset=counts + stage_cols)
    head = F.col("period") == F.lit(first_period)
    out = [F.col("segment"), F.col("period"), F.col("registered"), F.col("actives")]
    out.append(F.when(F.col("registered") > 0, F.col("actives").cast("double") / F.col("registered").cast("double")).alias("active_rate"))
    out.append(F.col("new"))
    for size, kept, rate in _TERMS:
        out.append(F.when(~head, F.col(size)).alias(size))
        out.append(F.when(~head, F.col(kept)).alias(kept))
        out.append(F.when(~head & (F.col(size) > 0), F.col(kept).cast("double") / F.col(size).cast("double")).alias(rate))
    out += [F.col(c) for c in stage_cols]
    result = full.select(*out).orderBy(F.when(F.col("segment") == "(all)", 0).otherwise(1), "segment", "period")
    return result if by is not None else result.drop("segment")


# ---------------------------------------------------------------- audiences


def audiences(
    profiles: "DataFrame",
    expressions: Mapping[str, str],
    *,
    user: str = "user_id",
    kind: str = "member_no",
    now: Optional[_dt.datetime] = None,
    buckets: Optional[int] = None,
) -> "DataFrame":
    """``profiles`` (one row per user: the ``user`` column, identifiers of ``kind``, and tag
    columns typed from their Spark types, as :meth:`userops.Engine.set_tags`) with one boolean
    column per audience: whether the row's user is a member of ``expressions[name]`` evaluated
    at ``now`` (default: the driver's clock when called), as on one engine holding the whole
    table. Expressions may refer to the ones before them with ``in_audience(name)``. Rows of
    one user are evaluated together (the later row's values win, as in ``set_tags``).

    >>> import userops.spark
    >>> from pyspark.sql import SparkSession
    >>> spark = SparkSession.builder.getOrCreate()
    >>> p = spark.createDataFrame([("M1", True, 10.0), ("M2", False, 250.0), ("M3", True, 900.0)],
    ...                           "user_id string, vip boolean, spend double")
    >>> out = userops.spark.audiences(p, {"big": "spend >= 100", "big_vip": "in_audience(\\"big\\") AND vip"})
    >>> [(r.user_id, r.big, r.big_vip) for r in out.orderBy("user_id").collect()]
    [('M1', False, False), ('M2', True, False), ('M3', True, True)]
    """
    F, T = _spark()
    _require(profiles, {"user": user})
    names = list(expressions)
    for nm in names:
        if nm in profiles.columns:
            raise InvalidArgument(f"the DataFrame already has a column {nm!r}", field="expressions")
    at = now or _dt.datetime.now(_dt.timezone.utc)
    nb = _buckets(profiles, buckets)
    exprs = dict(expressions)
    base = list(profiles.columns)
    schema = _add_fields(profiles.schema, [(nm, T.BooleanType()) for nm in names])
    keyed_schema = _add_fields(profiles.schema, [(_POS, T.LongType()), ("__uo_key", T.StringType())])

    def keys(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        import pyarrow as pa

        g = _graph(_rules_json(None))
        for b in batches:
            t = pa.Table.from_batches([b])
            ids = pa.table({"r": pa.array(["r"] * t.num_rows), "k": pa.array([kind] * t.num_rows), "v": t.column(user)})
            k = pa.table(g._native.identifier_keys(ids, record_id="r", kind="k", value="v")).column("identifier")
            yield from t.append_column("__uo_key", k).to_batches()

    def evaluate(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        import pyarrow as pa
        import pyarrow.compute as pc

        from . import Engine

        got = list(batches)
        if not got:
            return
        t = pa.Table.from_batches(got).sort_by([(_POS, "ascending")])
        e = Engine()
        e.set_tags(t.select(base), user=user, kind=kind, now=at)
        for nm in names:
            e.save_audience(nm, exprs[nm], now=at)
            members = e.audience_members(nm).oneids("list")
            rows = e.call("export_oneids", oneids=members, kind=kind)["rows"] if members else []
            member_keys = pa.array([f"{kind}:{r['value']}" for r in rows], pa.string())
            t = t.append_column(nm, pc.fill_null(pc.is_in(t.column("__uo_key"), value_set=member_keys), False))
        yield from _conform(t, schema).to_batches()

    with _job(profiles, "audiences: users"):
        keyed = _freeze(profiles.withColumn(_POS, F.monotonically_increasing_id()).mapInArrow(keys, keyed_schema))
    with _job(profiles, "audiences: members"):
        return keyed.repartition(nb, "__uo_key").mapInArrow(evaluate, schema)
