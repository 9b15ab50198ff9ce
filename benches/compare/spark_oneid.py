"""OneID on Spark: userops.spark.resolve_identities against userops on one machine and against
GraphX connectedComponents (the jar pyspark ships, called through the JVM gateway) on the same
Spark, in one run, on the identifier rows of `identity_data.py`.

    .venv/bin/python benches/compare/spark_oneid.py [ROWS] [DIR]     # default 10000000 /work/tmp/spark-bench

Prints one JSON line per contender: wall seconds, rounds / stages, executor core-seconds (run
time and CPU time of all tasks) and shuffle bytes written and read (summed over the run's
stages from the Spark REST API), then the same per step of userops.spark (its job
descriptions: one line per round of the components), and checks that the three agree:
userops.spark gives the one-machine persons, and GraphX's components (the plain graph, no
rules) are as many as userops.spark's components. Needs pyspark, Java 17 and the release wheel
in .venv (see benches/README.md).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from typing import Any, Dict, List, Set

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def api(spark: Any, what: str) -> Any:
    url = spark.sparkContext.uiWebUrl
    app = spark.sparkContext.applicationId
    with urllib.request.urlopen(f"{url}/api/v1/applications/{app}/{what}") as r:
        return json.load(r)


def stages(spark: Any) -> Dict[int, Dict[str, Any]]:
    return {s["stageId"] * 1000 + s["attemptId"]: s for s in api(spark, "stages?status=complete")}


def sums(new: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Executor time (all tasks' run time and CPU time, in core-seconds) and shuffle bytes."""
    return {
        "executor_run_s": round(sum(s.get("executorRunTime", 0) for s in new) / 1e3, 1),
        "executor_cpu_s": round(sum(s.get("executorCpuTime", 0) for s in new) / 1e9, 1),
        "shuffle_write_bytes": sum(s.get("shuffleWriteBytes", 0) for s in new),
        "shuffle_read_bytes": sum(s.get("shuffleReadBytes", 0) for s in new),
    }


def measured(spark: Any, name: str, fn: Any, steps: bool = False) -> Dict[str, Any]:
    before: Set[int] = set(stages(spark))
    jobs_before = {j["jobId"] for j in api(spark, "jobs")}
    t0, c0 = time.time(), time.process_time()
    extra = fn() or {}
    wall, cpu = time.time() - t0, time.process_time() - c0
    time.sleep(2)  # the listener bus catches up with the last stage's metrics
    done = stages(spark)
    new = [s for k, s in done.items() if k not in before]
    out = {"contender": name, "wall_s": round(wall, 1), "driver_cpu_s": round(cpu, 1), "stages": len(new)}
    out.update(sums(new))
    out.update(extra)
    print(json.dumps(out), flush=True)
    if steps:
        # Per step (the job descriptions userops.spark sets): where the executor time goes.
        by_stage = {s["stageId"]: s for k, s in done.items() if k not in before}
        per: Dict[str, List[Dict[str, Any]]] = {}
        for j in sorted(api(spark, "jobs"), key=lambda j: j["jobId"]):
            if j["jobId"] in jobs_before:
                continue
            step = (j.get("description") or "(write)").replace("userops.spark.", "")
            per.setdefault(step, []).extend(by_stage.pop(i) for i in j["stageIds"] if i in by_stage)
        for step, ss in per.items():
            print(json.dumps({"step": step, **sums(ss)}), flush=True)
    return out


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    base = sys.argv[2] if len(sys.argv) > 2 else "/work/tmp/spark-bench"
    os.makedirs(base, exist_ok=True)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    import pyarrow as pa
    import pyarrow.parquet as pq

    import userops
    import userops.spark as us
    from identity_data import generate

    path = os.path.join(base, f"ids_{rows}.parquet")
    if not os.path.exists(path):
        df = generate(rows)
        pq.write_table(pa.Table.from_pandas(df[["record_id", "kind", "value", "source"]], preserve_index=False), path)
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("userops-spark-bench")
        .config("spark.driver.memory", os.environ.get("BENCH_DRIVER_MEMORY", "8g"))
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.local.dir", os.path.join(base, "spark-local"))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    spark.sparkContext.setCheckpointDir(os.path.join(base, "checkpoints"))
    # Files are read in a fixed order: the table's row order is the file's.
    df = spark.read.parquet(path)
    arrow = pq.read_table(path)
    print(json.dumps({"rows": arrow.num_rows, "spark": spark.version, "userops": userops.__version__}), flush=True)

    result: Dict[str, Any] = {}

    def one_machine() -> Dict[str, Any]:
        out = userops.resolve_identities(arrow, progress=False, output="arrow")
        result["one"] = out
        return {"persons": len(out.column("oneid").unique()) - 1}

    def on_spark() -> Dict[str, Any]:
        stats: Dict[str, Any] = {}
        out = us.resolve_identities(df, stats=stats)
        path_out = os.path.join(base, "spark_oneids.parquet")
        out.select("oneid", "oneid_state.row", "oneid_state.component").write.mode("overwrite").parquet(path_out)
        result["spark"] = path_out
        return {"rounds": stats["iterations"]}

    def graphx() -> Dict[str, Any]:
        from pyspark.sql import functions as F

        jvm = spark.sparkContext._jvm
        assert jvm is not None
        keyed = df.select(
            F.xxhash64(F.lit(0), "record_id").alias("src"),
            F.xxhash64(F.lit("id"), "kind", "value").alias("dst"),
        )
        enc = jvm.org.apache.spark.sql.Encoders
        rdd = keyed._jdf.__getattr__("as")(enc.tuple(enc.LONG(), enc.LONG())).rdd()
        tags = getattr(getattr(jvm.scala.reflect, "ClassTag$"), "MODULE$")
        level = jvm.org.apache.spark.storage.StorageLevel.MEMORY_AND_DISK()
        none = getattr(getattr(jvm.scala, "None$"), "MODULE$")
        graph = jvm.org.apache.spark.graphx.Graph.fromEdgeTuples(rdd, 1, none, level, level, tags.Int())
        cc = jvm.org.apache.spark.graphx.GraphOps(graph, tags.Int(), tags.Int()).connectedComponents()
        pairs = jvm.org.apache.spark.rdd.RDD.rddToPairRDDFunctions(
            cc.vertices(), tags.Long(), tags.Long(), getattr(getattr(jvm.scala.math, "Ordering$Long$"), "MODULE$")
        )
        return {"components": pairs.values().distinct().count()}

    measured(spark, "userops one machine (driver)", one_machine)
    measured(spark, "userops.spark resolve_identities", on_spark, steps=True)
    gx = measured(spark, "GraphX connectedComponents", graphx)

    got = pq.read_table(result["spark"]).sort_by("row")
    one = result["one"]
    same = got.column("oneid").num_chunks >= 0 and _same_partition(got.column("oneid"), one.column("oneid"))
    comps = len(got.column("component").unique())
    print(json.dumps({"same_persons_as_one_machine": same, "userops_spark_components": comps,
                      "graphx_components": gx["components"]}), flush=True)
    spark.stop()


def _same_partition(a: Any, b: Any) -> bool:
    import numpy as np
    import pyarrow.compute as pc

    def labels(x: Any) -> Any:
        x = x.combine_chunks() if hasattr(x, "combine_chunks") else x
        codes = pc.dictionary_encode(x).indices.to_numpy(zero_copy_only=False)
        first = {}
        return np.array([first.setdefault(c, i) for i, c in enumerate(codes.tolist())])

    return bool((labels(a) == labels(b)).all())


if __name__ == "__main__":
    main()
