"""Feature backend on Apache Spark, for data one machine cannot hold (extra `fraudscan[spark]`).

The SQL files are written in DuckDB spelling within the common subset of the two engines; this
backend translates each one with sqlglot (``read="duckdb", write="spark"``), the only dialect shim.
Sessions run with the UTC time zone and ANSI mode off so that timestamps, ``unix_timestamp`` and
division by zero behave as in DuckDB. By default it starts a small local session (``local[1]``, UI
off); pass ``master=`` or an existing ``session=`` to run on a cluster.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import sqlglot
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from fraudscan import schema
from fraudscan.features.engine import Backend, BuildInputs, FeatureError, Model

_SPARK_TYPES = {
    "string": T.StringType(),
    "int": T.LongType(),
    "float": T.DoubleType(),
    "bool": T.BooleanType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
}


def to_spark_sql(sql: str) -> str:
    """Translate a feature model from DuckDB to Spark SQL."""
    try:
        return sqlglot.transpile(sql, read="duckdb", write="spark", pretty=False)[0]
    except sqlglot.errors.ParseError as e:
        raise FeatureError(f"cannot translate feature SQL to Spark: {e}") from e


def _arrow_to_spark_type(t: pa.DataType) -> T.DataType:
    if pa.types.is_boolean(t):
        return T.BooleanType()
    if pa.types.is_integer(t):
        return T.LongType()
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return T.DoubleType()
    if pa.types.is_date(t):
        return T.DateType()
    if pa.types.is_timestamp(t):
        return T.TimestampType()
    return T.StringType()


class SparkBackend(Backend):
    """Run feature models with PySpark."""

    name = "spark"

    def __init__(
        self,
        master: str = "local[1]",
        session: SparkSession | None = None,
        shuffle_partitions: int = 2,
        driver_memory: str = "2g",
        conf: dict[str, str] | None = None,
        cache_staging: bool = True,
    ) -> None:
        self._own = session is None
        if session is None:
            builder = (
                SparkSession.builder.master(master)
                .appName("fraudscan-features")
                .config("spark.ui.enabled", "false")
                .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
                .config("spark.default.parallelism", str(shuffle_partitions))
                .config("spark.driver.memory", driver_memory)
                .config("spark.sql.session.timeZone", "UTC")
                .config("spark.sql.ansi.enabled", "false")
                .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                .config("spark.sql.adaptive.enabled", "true")
                .config("spark.ui.showConsoleProgress", "false")
            )
            for k, v in (conf or {}).items():
                builder = builder.config(k, v)
            session = builder.getOrCreate()
            session.sparkContext.setLogLevel("ERROR")
        else:
            session.conf.set("spark.sql.session.timeZone", "UTC")
            session.conf.set("spark.sql.ansi.enabled", "false")
        self.spark = session
        self.cache_staging = cache_staging
        self._cached: list[DataFrame] = []

    def _arrow_df(self, table: pa.Table) -> DataFrame:
        struct = T.StructType(
            [T.StructField(f.name, _arrow_to_spark_type(f.type), True) for f in table.schema]
        )
        # through pandas and Arrow: a list of rows would start Python workers to parallelise
        return self.spark.createDataFrame(table.to_pandas(), schema=struct)

    def prepare(self, inputs: BuildInputs) -> None:
        ws = inputs.workspace
        self.periods = tuple(inputs.periods)
        for name, t in schema.TABLES.items():
            if ws.has_table(name):
                df = self.spark.read.parquet(str(ws.table_path(name)))
                # Parquet timestamps written without a zone may arrive as TIMESTAMP_NTZ
                for c in t.columns:
                    if c.dtype == "timestamp":
                        df = df.withColumn(c.name, df[c.name].cast(T.TimestampType()))
            else:
                struct = T.StructType(
                    [T.StructField(c.name, _SPARK_TYPES[c.dtype], True) for c in t.columns]
                )
                df = self.spark.createDataFrame([], schema=struct)
            where = inputs.filters.get(name)
            if where:
                df.createOrReplaceTempView(f"_raw_{name}")
                df = self.spark.sql(to_spark_sql(f"SELECT * FROM _raw_{name} WHERE {where}"))
            if name == "settlements":
                df = df.cache()
                self._cached.append(df)
            df.createOrReplaceTempView(name)
        for rel, table in (
            ("fs_meta", inputs.meta),
            ("fs_months", inputs.months),
            ("rule_findings", inputs.rule_findings),
        ):
            self._arrow_df(table).createOrReplaceTempView(rel)

    def materialize(self, model: Model) -> None:
        for rel, sql in model.steps(getattr(self, "periods", ())):
            try:
                df = self.spark.sql(to_spark_sql(sql))
            except Exception as e:  # pyspark raises its own AnalysisException family
                raise FeatureError(f"feature model {model.name} ({model.path.name}) failed on "
                                   f"Spark: {e}") from e
            if self.cache_staging and (not model.is_output or rel != model.name):
                df = df.cache()
                self._cached.append(df)
            df.createOrReplaceTempView(rel)

    def fetch(self, model: Model, periods: Sequence[str]) -> pa.Table:
        plist = ", ".join("'" + p.replace("'", "''") + "'" for p in periods)
        order = f"period, {model.key}" if model.key else "period"
        df = self.spark.sql(
            f"SELECT * FROM {model.name} WHERE period IN ({plist}) ORDER BY {order}"
        )
        try:
            if hasattr(df, "toArrow"):
                return df.toArrow()
            return pa.Table.from_batches(df._collect_as_arrow())  # pyspark 3.5
        except Exception as e:
            raise FeatureError(f"feature model {model.name} ({model.path.name}) failed on "
                               f"Spark: {e}") from e

    def close(self) -> None:
        for df in self._cached:
            df.unpersist()
        self._cached.clear()
        if self._own:
            self.spark.catalog.clearCache()
