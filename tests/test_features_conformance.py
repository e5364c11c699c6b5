"""Backend conformance: every feature backend builds the same features as the reference (DuckDB).

A backend plugin passes when, on the hand-made world (with rule findings) and on a Medicare-like
world without optional tables, every subject comes out with the same rows, columns and values
(floats within 1e-9 relative) as DuckDB. Spark runs in local mode (``local[1]``, UI off, one
shuffle partition); it is skipped only when pyspark is not installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _feature_world import make_world, write_rule_findings
from fraudscan.features import build, load

SUBJECTS = ("claim", "facility", "staff", "person")

SPARK_OPTIONS = {
    "master": "local[1]",
    "shuffle_partitions": 1,
    "conf": {
        # tiny data: code generation and broadcast planning cost more than they save
        "spark.sql.codegen.wholeStage": "false",
        "spark.sql.autoBroadcastJoinThreshold": "-1",
    },
}

BACKENDS = [
    pytest.param("duckdb", {}, id="duckdb"),
    pytest.param(
        "spark",
        SPARK_OPTIONS,
        id="spark",
        marks=[
            pytest.mark.skipif(
                importlib.util.find_spec("pyspark") is None,
                reason="pyspark not installed (pip install fraudscan[spark])",
            ),
            pytest.mark.slow,  # a JVM and ~40 Spark jobs per world: minutes on 2 busy cores
        ],
    ),
]


def assert_same_features(got: pd.DataFrame, want: pd.DataFrame, subject: str) -> None:
    """Equal up to row order and float rounding; nulls must match exactly."""
    assert list(got.columns) == list(want.columns), subject
    key = list(want.columns[:2])
    got = got.sort_values(key).reset_index(drop=True)
    want = want.sort_values(key).reset_index(drop=True)
    assert len(got) == len(want), subject
    for c in want.columns:
        a, b = got[c], want[c]
        assert a.isna().equals(b.isna()), f"{subject}.{c}: nulls differ"
        mask = b.notna()
        if pd.api.types.is_float_dtype(b) or pd.api.types.is_float_dtype(a):
            np.testing.assert_allclose(
                a[mask].astype(float), b[mask].astype(float), rtol=1e-9, atol=1e-12,
                err_msg=f"{subject}.{c}",
            )
        else:
            assert (a[mask].astype(str) == b[mask].astype(str)).all(), f"{subject}.{c}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, pd.DataFrame]]:
    """DuckDB features of both worlds, the reference every backend must reproduce."""
    out = {}
    for name, optional in (("full", True), ("medicare", False)):
        ws = make_world(tmp_path_factory.mktemp(f"ref-{name}"), optional=optional)
        if optional:
            write_rule_findings(ws)
        build(ws, backend="duckdb")
        out[name] = {s: load(ws, s) for s in SUBJECTS}
    return out


@pytest.mark.parametrize("world", ["full", "medicare"])
@pytest.mark.parametrize(("backend", "options"), BACKENDS)
def test_backend_matches_reference(
    backend: str, options: dict, world: str, reference, tmp_path: Path
) -> None:
    optional = world == "full"
    ws = make_world(tmp_path / world, optional=optional)
    if optional:
        write_rule_findings(ws)
    result = build(ws, backend=backend, backend_options=options)
    assert result.backend == backend
    assert result.months_built == ["2025-01", "2025-02", "2025-03"]
    for s in SUBJECTS:
        got = load(ws, s)
        assert_same_features(got, reference[world][s], f"{world}/{s}")
        # stored partitions have the same physical types whichever engine wrote them
        assert got.dtypes.equals(reference[world][s].dtypes), f"{world}/{s} dtypes"
