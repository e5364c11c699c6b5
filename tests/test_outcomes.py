"""Outcomes become inspection labels; sanctions follow the 2024 points rules into the tables."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from fraudscan.outcomes import (
    OutcomeError,
    outcome_labels,
    read_sanctions,
    record_outcome,
    suspension_months,
)
from fraudscan.workspace import Workspace


@pytest.fixture()
def ws(small_world: Workspace, tmp_path) -> Workspace:
    w = Workspace(tmp_path / "ws")
    shutil.copytree(small_world.path / "tables", w.path / "tables")
    shutil.copy(small_world.path / "workspace.json", w.path / "workspace.json")
    return w


def test_outcomes_become_labels_latest_wins(ws: Workspace) -> None:
    fid = ws.read_table("facilities")["facility_id"].iloc[0]
    record_outcome(ws, "facility", fid, "confirmed", amount=1234, on="2025-11-01",
                   scenario="phantom_bed")
    record_outcome(ws, "facility", fid, "cleared", on="2025-12-01")
    lab = outcome_labels(ws)
    assert len(lab) == 1 and not lab["is_fraud"].iloc[0] and lab["source"].iloc[0] == "inspection"
    assert lab["period"].iloc[0] == "2025-12"


def test_points_suspend_at_9_and_terminate_at_12(ws: Workspace) -> None:
    staff = ws.read_table("staff")
    sid = staff.loc[staff["qualification_status"] == "active", "staff_id"].iloc[0]
    fid = staff.set_index("staff_id").loc[sid, "facility_id"]
    base = int(pd.to_numeric(staff.set_index("staff_id").loc[sid, "points_this_year"]) or 0)
    need = max(1, 9 - base)
    record_outcome(ws, "facility", fid, "confirmed", on="2025-06-01",
                   staff_points={sid: need})
    row = ws.read_table("staff").set_index("staff_id").loc[sid]
    assert row["qualification_status"] == "suspended" and row["points_this_year"] == base + need
    assert str(row["status_from"]) == "2025-06-01"
    months = suspension_months(base + need)
    assert pd.Timestamp(row["status_to"]) < pd.Timestamp("2025-06-01") + pd.DateOffset(
        months=months)
    record_outcome(ws, "facility", fid, "confirmed", on="2025-09-01", staff_points={sid: 3})
    row = ws.read_table("staff").set_index("staff_id").loc[sid]
    assert row["qualification_status"] == "terminated" and row["points_this_year"] >= 12
    assert read_sanctions(ws)["year_total"].max() >= 12


def test_person_restriction_and_agreement_suspension(ws: Workspace) -> None:
    pid = ws.read_table("persons")["person_id"].iloc[3]
    fid = ws.read_table("facilities")["facility_id"].iloc[1]
    record_outcome(ws, "facility", fid, "confirmed", on="2025-03-15",
                   restrict_persons=[pid], restrict_months=9, restrict_to_facilities=[fid],
                   suspend_agreement=True)
    p = ws.read_table("persons").set_index("person_id").loc[pid]
    assert str(p["settlement_restricted_until"]) == "2025-12-15"
    assert p["restricted_facilities"] == fid
    f = ws.read_table("facilities").set_index("facility_id").loc[fid]
    assert f["agreement_status"] == "suspended"


def test_bad_outcomes_are_refused(ws: Workspace) -> None:
    fid = ws.read_table("facilities")["facility_id"].iloc[0]
    with pytest.raises(OutcomeError):
        record_outcome(ws, "facility", "NOPE", "confirmed")
    with pytest.raises(OutcomeError):
        record_outcome(ws, "facility", fid, "maybe")
    with pytest.raises(OutcomeError):
        record_outcome(ws, "facility", fid, "cleared", suspend_agreement=True)
    with pytest.raises(OutcomeError):
        record_outcome(ws, "facility", fid, "confirmed", restrict_persons=["x"],
                       restrict_months=2)
