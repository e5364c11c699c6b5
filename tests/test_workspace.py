"""Workspace layout: atomic writes, DuckDB views, metadata and clear errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fraudscan import schema
from fraudscan.workspace import Workspace, WorkspaceError, to_arrow


def _persons(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "person_id": [f"P{i}" for i in range(n)],
            "sex": ["1", "2", "1"][:n],
            "birth_date": pd.to_datetime(["1950-01-01", "1990-05-06", "2020-02-03"][:n]),
            "insurance_type": ["310"] * n,
            "insured_area": ["410100"] * n,
        }
    )


def test_write_read_roundtrip_and_views(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "w")
    ws.write_tables({"persons": _persons()}, source="test")
    assert ws.has_table("persons")
    df = ws.read_table("persons")
    assert list(df.columns) == schema.PERSONS.column_names
    assert df["death_date"].isna().all()
    with ws.connect() as con:
        assert con.execute("SELECT count(*) FROM persons").fetchone()[0] == 3
        # absent optional tables are empty views with the canonical columns
        cols = [r[0] for r in con.execute("DESCRIBE fee_lines").fetchall()]
        assert cols == schema.FEE_LINES.column_names
        assert con.execute("SELECT count(*) FROM fee_lines").fetchone()[0] == 0
    meta = ws.metadata()
    assert meta["source"] == "test" and meta["row_counts"] == {"persons": 3}


def test_same_data_same_bytes(tmp_path: Path) -> None:
    a, b = Workspace(tmp_path / "a"), Workspace(tmp_path / "b")
    a.write_tables({"persons": _persons()}, source="test")
    b.write_tables({"persons": _persons()}, source="test")
    assert a.table_path("persons").read_bytes() == b.table_path("persons").read_bytes()
    assert a.fingerprint() == b.fingerprint()


def test_failed_write_leaves_workspace_unchanged(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "w")
    ws.write_tables({"persons": _persons()}, source="test")
    before = ws.table_path("persons").read_bytes()
    bad = _persons().assign(not_a_column=1)
    with pytest.raises(WorkspaceError, match="unknown columns"):
        ws.write_tables({"persons": _persons(2), "facilities": bad}, source="test")
    assert ws.table_path("persons").read_bytes() == before
    assert not list(ws.path.glob(".staging-*"))


def test_require_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="not a fraudscan workspace"):
        Workspace(tmp_path / "nothing").require()
    ws = Workspace(tmp_path / "w")
    ws.write_tables({"persons": _persons()}, source="test")
    with pytest.raises(WorkspaceError, match="missing tables"):
        ws.require()


def test_to_arrow_rejects_unknown_columns() -> None:
    with pytest.raises(WorkspaceError):
        to_arrow(pd.DataFrame({"person_id": ["x"], "oops": [1]}), schema.PERSONS)


def test_status_side_table_overlays_reads_and_views_without_touching_tables(
        tmp_path: Path) -> None:
    from datetime import date

    ws = Workspace(tmp_path / "w")
    ws.write_tables({"persons": _persons()}, source="test")
    with ws.connect() as con:
        con.execute("CREATE TABLE derived AS SELECT 1 AS x")
    before = ws.read_table("persons")
    fp = ws.fingerprint()
    ws.write_status("persons", pd.DataFrame({
        "person_id": ["P1"], "settlement_restricted_until": [date(2026, 3, 1)],
        "restricted_facilities": ["H1;H2"]}))
    df = ws.read_table("persons")
    assert list(df.columns) == schema.PERSONS.column_names and len(df) == 3
    assert df.loc[1, "settlement_restricted_until"] == date(2026, 3, 1)
    assert df.loc[1, "restricted_facilities"] == "H1;H2"
    assert df.loc[[0, 2], "restricted_facilities"].isna().all()
    assert ws.read_table("persons", ["restricted_facilities"])["restricted_facilities"][1] \
        == "H1;H2"
    pd.testing.assert_frame_equal(ws.read_table("persons", with_status=False), before)
    with ws.connect(read_only=True) as con:
        assert con.execute("SELECT x FROM derived").fetchone() == (1,)  # derived state kept
        got = con.execute("SELECT person_id, restricted_facilities FROM persons "
                          "ORDER BY person_id").fetchall()
        assert got == [("P0", None), ("P1", "H1;H2"), ("P2", None)]
        cols = [r[0] for r in con.execute("DESCRIBE persons").fetchall()]
        assert cols == schema.PERSONS.column_names
    assert ws.fingerprint() != fp  # statuses are part of the data a model sees
    with pytest.raises(WorkspaceError):
        ws.write_status("persons", pd.DataFrame({"person_id": ["P1"]}))
    ws.write_status("persons", None)
    pd.testing.assert_frame_equal(ws.read_table("persons"), before)
