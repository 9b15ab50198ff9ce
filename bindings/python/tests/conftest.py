"""Shared pytest fixtures."""

from __future__ import annotations

import signal
from typing import Iterator

import pytest


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt during the test, whatever the runner inherited.

    A process started in the background by a non-interactive shell inherits SIGINT as
    ignored, and Python then installs no KeyboardInterrupt handler: a test that sends itself
    SIGINT would see nothing. The Ctrl-C tests install Python's default handler themselves.
    """
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def spark_session() -> "object":
    """One local Spark session for every test that needs one (``local[2]``, four shuffle
    partitions, UTC). pyspark is an optional extra: without it the Spark tests are skipped,
    unless ``USEROPS_REQUIRE_SPARK`` is set (``scripts/test`` sets it: there a skip would hide
    a missing install, so it fails instead)."""
    import os
    import sys

    if os.environ.get("USEROPS_REQUIRE_SPARK"):
        import pyspark  # noqa: F401  (fails the test when missing)
    else:
        pytest.importorskip("pyspark")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("userops-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


@pytest.fixture(scope="session")
def spark() -> "object":
    """The shared local Spark session (see :func:`spark_session`)."""
    return spark_session()
