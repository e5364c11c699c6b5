"""The detector registry: every screening model is a named, documented function.

A detector is a function ``fn(ctx) -> DataFrame`` that does its set-wise work in DuckDB SQL and
returns one row per lead with the columns of :data:`LEAD_COLUMNS` except ``lead_id`` and
``detector`` (added here). It declares the optional canonical tables it needs; when one is absent
or empty the runner skips it and records why instead of failing, because Medicare-style imports
have no fee lines, trace scans or stock movements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

LEAD_COLUMNS = (
    "lead_id",
    "detector",
    "subject_type",
    "subject_id",
    "facility_id",
    "period",
    "score",
    "amount",
    "evidence",
    "settlement_ids",
)
SUBJECT_TYPES = ("facility", "staff", "person", "settlement", "ring")


class SkipDetector(Exception):
    """Raised by a detector when the data cannot support it (the message says why)."""


@dataclass
class Context:
    """What a detector sees: the connection, its settings and which tables hold data."""

    con: duckdb.DuckDBPyConnection
    cfg: dict[str, Any]
    common: dict[str, Any]
    tables: frozenset[str]
    notes: list[str] = field(default_factory=list)

    def has(self, table: str) -> bool:
        return table in self.tables

    def df(self, sql: str) -> pd.DataFrame:
        return self.con.execute(sql).df()

    @property
    def cap(self) -> int:
        return int(self.common["max_settlement_ids"])


@dataclass(frozen=True)
class Detector:
    """A screening model: its name (= the synthetic scenario name), card and implementation."""

    name: str
    title: str
    model: str
    subjects: tuple[str, ...]
    requires: tuple[str, ...]
    fn: Callable[[Context], pd.DataFrame]
    description: str

    @property
    def doc(self) -> str:
        return (self.fn.__doc__ or "").strip()


REGISTRY: dict[str, Detector] = {}


def detector(
    name: str,
    *,
    title: str,
    model: str,
    subjects: Iterable[str],
    requires: Iterable[str] = (),
) -> Callable[[Callable[[Context], pd.DataFrame]], Callable[[Context], pd.DataFrame]]:
    """Register ``fn`` as detector ``name`` (its docstring's first line is the description)."""

    def wrap(fn: Callable[[Context], pd.DataFrame]) -> Callable[[Context], pd.DataFrame]:
        if name in REGISTRY:
            raise ValueError(f"detector {name!r} registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        REGISTRY[name] = Detector(
            name=name,
            title=title,
            model=model,
            subjects=tuple(subjects),
            requires=tuple(requires),
            fn=fn,
            description=doc[0] if doc else "",
        )
        return fn

    return wrap


def sql_list(values: Iterable[Any]) -> str:
    """Render values as a SQL list literal ``('a', 'b')`` (quotes escaped; never empty)."""
    items = [str(v).replace("'", "''") for v in values]
    if not items:
        return "(NULL)"
    return "(" + ", ".join(f"'{v}'" for v in items) + ")"


def prefix_match(column: str, prefixes: Iterable[str]) -> str:
    """SQL predicate: ``column`` starts with any of ``prefixes`` (false when none given)."""
    parts = [f"starts_with({column}, '{str(p).replace(chr(39), chr(39) * 2)}')" for p in prefixes]
    return "(" + " OR ".join(parts) + ")" if parts else "false"


def all_detectors() -> dict[str, Detector]:
    """Every registered detector (importing the detector modules registers them)."""
    from fraudscan.leads import detectors  # noqa: F401

    return dict(REGISTRY)
