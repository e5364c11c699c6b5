"""Feature models (the SQL files of ``features/``) and the engine interface of every backend.

A feature *model* is one SQL ``SELECT`` in one file, named after the file. Models refer to the
canonical tables, to the build inputs ``fs_meta`` / ``fs_months`` / ``rule_findings`` and to other
models by name; the order of execution follows those references. A header of ``--`` comments
declares what the model is::

    -- model: feat_facility          (must equal the file name)
    -- subject: facility             (only for output models; staging models have none)
    -- key: facility_id              (entity key; every output also has ``period``)
    -- doc: one line on why the model exists
    -- peers: period, facility_type, facility_level, district
    -- percentile: avg_los, fund_share        (each gets a ``<col>_pct`` peer percentile)
    -- column avg_los: one line per output column, collected into docs/features.md

SQL is written in the common subset of DuckDB and Spark SQL, in DuckDB spelling; a backend whose
dialect differs translates it (the Spark backend uses sqlglot). Backends are plugins: register a
:class:`Backend` subclass with :func:`register_backend`, or expose one under the entry-point group
``fraudscan.feature_backends``; all of them must pass ``tests/test_features_conformance.py``.
"""

from __future__ import annotations

import hashlib
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from importlib import metadata
from pathlib import Path

import pyarrow as pa

from fraudscan.errors import FraudscanError
from fraudscan.workspace import Workspace


class FeatureError(FraudscanError):
    """Feature definitions are malformed, a backend is unavailable or a build cannot run."""


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

BUILD_INPUTS = ("fs_meta", "fs_months", "rule_findings")
"""Relations the orchestrator provides besides the canonical tables."""

PCT_SUFFIX = "_pct"


@dataclass(frozen=True)
class Model:
    """One SQL file of ``features/``."""

    name: str
    path: Path
    sql: str
    doc: str
    subject: str | None = None
    key: str | None = None
    peers: tuple[str, ...] = ()
    percentiles: tuple[str, ...] = ()
    columns: dict[str, str] = field(default_factory=dict)
    deps: tuple[str, ...] = ()

    @property
    def is_output(self) -> bool:
        return self.subject is not None

    def output_columns(self) -> dict[str, str]:
        """Documented columns plus the generated peer percentiles, in output order."""
        cols = dict(self.columns)
        peers = ", ".join(p for p in self.peers if p != "period") or "all"
        for c in self.percentiles:
            cols[c + PCT_SUFFIX] = (
                f"Percentile (0–1) of `{c}` among peers in the same month ({peers})."
            )
        return cols

    def body_sql(self) -> str:
        return self.sql.strip().rstrip(";")

    def steps(self, periods: Sequence[str] = ()) -> list[tuple[str, str]]:
        """``(relation, sql)`` statements that produce the model, in order; the last is the model.

        ``periods`` (output models only) keeps just the rows of those months, before peer
        percentiles are ranked: every peer group includes ``period``, so the percentiles of a
        month do not depend on other months' rows, and a one-month build computes one month of
        output (the look-back months are still read by the staging models and the model body).

        A model with percentiles is computed once as ``<name>__raw``; its peer percentiles are
        then ranked on a narrow projection (key, peer-group number, values) and joined back,
        because window operators copy every column they carry and output models are wide; the
        peer groups are numbered first (``<name>__peers``), so the windows partition and sort on
        one integer instead of several text columns. Nulls are ranked
        apart (the null flag is in the partition) and stay null, so engines agree whatever their
        default null ordering.
        """
        body = self.body_sql()
        if periods and self.is_output and (not self.percentiles or "period" in self.peers):
            plist = ", ".join("'" + p.replace("'", "''") + "'" for p in sorted(set(periods)))
            body = f"SELECT * FROM (\n{body}\n) fs_b WHERE period IN ({plist})"
        if not self.percentiles:
            return [(self.name, body)]
        raw = f"{self.name}__raw"
        groups = f"{self.name}__peers"
        keys = [k for k in (self.key, "period") if k]
        peers = ", ".join(self.peers)
        group_sql = (
            f"SELECT {peers}, row_number() OVER (ORDER BY {peers}) AS fs_g\n"
            f"FROM (SELECT {peers} FROM {raw} GROUP BY {peers}) fs_d"
        )
        exprs = []
        for c in self.percentiles:
            exprs.append(
                f"CASE WHEN fs_r.{c} IS NULL THEN NULL ELSE CAST(percent_rank() OVER ("
                f"PARTITION BY fs_g.fs_g, (fs_r.{c} IS NULL) ORDER BY fs_r.{c}) AS DOUBLE) END "
                f"AS {c}{PCT_SUFFIX}"
            )
        match = " AND ".join(f"fs_r.{p} IS NOT DISTINCT FROM fs_g.{p}" for p in self.peers)
        on = " AND ".join(f"fs_p.{k} = fs_m.{k}" for k in keys)
        pct_cols = ", ".join(f"fs_p.{c}{PCT_SUFFIX}" for c in self.percentiles)
        final = (
            f"SELECT fs_m.*, {pct_cols}\nFROM {raw} fs_m\nJOIN (\n    SELECT "
            + ", ".join(f"fs_r.{k}" for k in keys) + ",\n    "
            + ",\n    ".join(exprs)
            + f"\n    FROM {raw} fs_r\n    JOIN {groups} fs_g ON {match}\n) fs_p ON {on}"
        )
        return [(raw, body), (groups, group_sql), (self.name, final)]


_HEADER_SIMPLE = re.compile(r"^--\s*(model|subject|key|doc|peers|percentile)\s*:\s*(.*)$")
_COLUMN = re.compile(r"^--\s*column\s+([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.*)$")


def parse_model(path: Path) -> Model:
    """Read one SQL file and its header."""
    text = path.read_text(encoding="utf-8")
    meta: dict[str, str] = {}
    columns: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("--"):
            if line.strip():
                break
            continue
        m = _COLUMN.match(line)
        if m:
            if m.group(1) in columns:
                raise FeatureError(f"{path.name}: column {m.group(1)} documented twice")
            columns[m.group(1)] = m.group(2).strip()
            continue
        m = _HEADER_SIMPLE.match(line)
        if m:
            meta[m.group(1)] = m.group(2).strip()
    name = meta.get("model")
    if name != path.stem:
        raise FeatureError(f"{path}: header '-- model: {path.stem}' missing or wrong ({name!r})")
    if "doc" not in meta:
        raise FeatureError(f"{path}: header '-- doc: ...' missing")

    def _list(key: str) -> tuple[str, ...]:
        return tuple(x.strip() for x in meta.get(key, "").split(",") if x.strip())

    subject = meta.get("subject") or None
    if subject is not None:
        if "key" not in meta:
            raise FeatureError(f"{path}: output model needs '-- key: ...'")
        if not columns:
            raise FeatureError(f"{path}: output model documents no '-- column' lines")
        missing = [c for c in (*_list("peers"), *_list("percentile")) if c not in columns]
        if missing:
            raise FeatureError(f"{path}: peers/percentile name undocumented columns {missing}")
    return Model(
        name=name,
        path=path,
        sql=text,
        doc=meta["doc"],
        subject=subject,
        key=meta.get("key"),
        peers=_list("peers"),
        percentiles=_list("percentile"),
        columns=columns,
    )


def default_features_dir() -> Path:
    """Where the SQL files are: ``$FRAUDSCAN_FEATURES_DIR``, the installed package, or the repo.

    Wheels carry ``features/`` as ``fraudscan/features/sql`` (hatch force-include); a source
    checkout reads the top-level ``features/`` directory directly.
    """
    env = os.environ.get("FRAUDSCAN_FEATURES_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for cand in (here / "sql", here.parents[2] / "features"):
        if cand.is_dir() and any(cand.glob("*.sql")):
            return cand
    raise FeatureError(
        "feature definitions not found (looked in the package and the repository's features/); "
        "set FRAUDSCAN_FEATURES_DIR"
    )


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def load_models(features_dir: str | os.PathLike[str] | None = None) -> list[Model]:
    """All models of ``features_dir`` in dependency order."""
    d = Path(features_dir) if features_dir else default_features_dir()
    models = {m.name: m for m in (parse_model(p) for p in sorted(d.glob("*.sql")))}
    if not models:
        raise FeatureError(f"no feature definitions (*.sql) in {d}")
    subjects = [m.subject for m in models.values() if m.subject]
    dup = {s for s in subjects if subjects.count(s) > 1}
    if dup:
        raise FeatureError(f"subjects defined twice: {sorted(dup)}")
    with_deps: dict[str, Model] = {}
    for m in models.values():
        body = _strip_comments(m.sql)
        deps = tuple(
            n for n in models if n != m.name and re.search(rf"\b{re.escape(n)}\b", body)
        )
        with_deps[m.name] = Model(**{**m.__dict__, "deps": deps})
    ordered: list[Model] = []
    state: dict[str, int] = {}

    def visit(n: str, trail: tuple[str, ...]) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            raise FeatureError(f"feature models refer to each other in a cycle: {(*trail, n)}")
        state[n] = 1
        for dep in with_deps[n].deps:
            visit(dep, (*trail, n))
        state[n] = 2
        ordered.append(with_deps[n])

    for n in sorted(with_deps):
        visit(n, ())
    return ordered


def definitions_hash(models: Sequence[Model]) -> str:
    """Hash of every SQL file: any change to a definition rebuilds every month."""
    h = hashlib.sha256()
    for m in models:
        h.update(m.name.encode())
        h.update(m.sql.encode())
    return h.hexdigest()[:16]


def subjects(models: Sequence[Model]) -> dict[str, Model]:
    """Output models by subject name."""
    return {m.subject: m for m in models if m.subject}


# ---------------------------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildInputs:
    """What a backend needs to run the models for one build.

    ``filters`` restrict canonical tables to the build's input window (DuckDB-dialect predicates,
    which may name the already-restricted ``settlements``); ``meta`` is the one-row ``fs_meta``
    (which optional tables have rows), ``months`` the ``fs_months`` calendar and ``rule_findings``
    the rule engine's output (possibly empty).
    """

    workspace: Workspace
    start: date
    end: date
    filters: dict[str, str]
    meta: pa.Table
    months: pa.Table
    rule_findings: pa.Table
    periods: tuple[str, ...] = ()
    """Months whose output is wanted (empty: every month); output models compute only these."""


class Backend(ABC):
    """An engine that runs feature models. One instance serves one build, then is closed."""

    name: str = ""

    @abstractmethod
    def prepare(self, inputs: BuildInputs) -> None:
        """Expose canonical tables (restricted by ``inputs.filters``) and the build inputs."""

    @abstractmethod
    def materialize(self, model: Model) -> None:
        """Run ``model.steps()`` and make the result available under ``model.name``."""

    @abstractmethod
    def fetch(self, model: Model, periods: Sequence[str]) -> pa.Table:
        """Rows of an output model for ``periods``, as Arrow."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the engine's resources."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


BackendFactory = Callable[..., Backend]
_REGISTRY: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make a backend available to :func:`fraudscan.features.build` under ``name``."""
    _REGISTRY[name] = factory


def _spark_factory(**options: object) -> Backend:
    try:
        from fraudscan.features.spark_backend import SparkBackend
    except ImportError as e:  # pyspark missing
        raise FeatureError(
            f"the spark backend needs pyspark ({e}); install it with `pip install fraudscan[spark]`"
        ) from None
    return SparkBackend(**options)  # type: ignore[arg-type]


def _duckdb_factory(**options: object) -> Backend:
    from fraudscan.features.duckdb_backend import DuckDBBackend

    return DuckDBBackend(**options)  # type: ignore[arg-type]


register_backend("duckdb", _duckdb_factory)
register_backend("spark", _spark_factory)


def backend_names() -> list[str]:
    """Registered backends, including entry-point plugins."""
    _load_entry_points()
    return sorted(_REGISTRY)


def get_backend(name: str, **options: object) -> Backend:
    """Instantiate a registered backend."""
    _load_entry_points()
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise FeatureError(f"unknown feature backend {name!r}; known: {known}")
    return _REGISTRY[name](**options)


def _load_entry_points() -> None:
    for ep in metadata.entry_points(group="fraudscan.feature_backends"):
        if ep.name not in _REGISTRY:
            _REGISTRY[ep.name] = ep.load()


def normalize(table: pa.Table) -> pa.Table:
    """Give every backend's output the same physical types (int64, float64, string, bool, date).

    Spark returns decimals for literal arithmetic and DuckDB may return int32; stored partitions
    must not depend on which engine built them.
    """
    fields = []
    arrays = []
    for f, col in zip(table.schema, table.columns, strict=True):
        t = f.type
        if pa.types.is_decimal(t) or pa.types.is_floating(t):
            t = pa.float64()
        elif pa.types.is_integer(t):
            t = pa.int64()
        elif pa.types.is_large_string(t) or pa.types.is_string_view(t):
            t = pa.string()
        elif pa.types.is_null(t):
            t = pa.float64()
        arrays.append(col.cast(t))
        fields.append(pa.field(f.name, t))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def query_arrow(con: object, sql: str) -> pa.Table:
    """Run a DuckDB query as Arrow (``to_arrow_table`` from DuckDB 1.4 on, ``arrow`` before)."""
    rel = con.sql(sql)  # type: ignore[attr-defined]
    fn = getattr(rel, "to_arrow_table", None) or rel.arrow
    return fn()
