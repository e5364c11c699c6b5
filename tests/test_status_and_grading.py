"""Sanctions keep derived state; grades use only what was known by the end of the period."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from fraudscan.models.data import query
from fraudscan.workspace import Workspace


@pytest.fixture(scope="module")
def prepared(small_world: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """The small world screened, with features, leads, rings and claim + facility models."""
    import fraudscan.features as features
    import fraudscan.graph as graph
    import fraudscan.leads as leads
    from fraudscan.models import train_all
    from fraudscan.rules import screen

    ws = Workspace(tmp_path_factory.mktemp("graded") / "ws")
    shutil.copytree(small_world.path, ws.path)
    screen(ws)
    features.build(ws)
    leads.run(ws)
    graph.build(ws)
    train_all(ws, ["claim", "facility"], evaluate=False, track=False,
              hyper={s: {"n_estimators": 20} for s in ("claim", "facility")})
    return ws


@pytest.fixture()
def ws(prepared: Workspace, tmp_path) -> Workspace:
    w = Workspace(tmp_path / "ws")
    shutil.copytree(prepared.path, w.path)
    return w


def _n(ws: Workspace, table: str, where: str = "true") -> int:
    return int(query(ws, f"SELECT count(*) AS n FROM {table} WHERE {where}")["n"].iloc[0])


def test_sanction_keeps_findings_and_leads_and_rules_see_it(ws: Workspace) -> None:
    from fraudscan.outcomes import record_outcome
    from fraudscan.rules import screen
    from fraudscan.rules.engine import RuleEngine

    n_findings, n_leads, n_rings = _n(ws, "rule_findings"), _n(ws, "leads"), _n(ws, "rings")
    s = ws.read_table("settlements")
    pid = s.groupby("person_id").size().idxmax()
    mine = s[s["person_id"] == pid]
    fid = str(mine["facility_id"].iloc[0])
    first = pd.Timestamp(mine["admission_time"].min()) - pd.Timedelta(days=1)
    staff = ws.read_table("staff")
    sid = staff.loc[staff["qualification_status"] == "active", "staff_id"].iloc[0]
    before = _n(ws, "rule_findings", f"person_id = '{pid}'")
    canonical = ws.read_table("persons", with_status=False)
    res = record_outcome(ws, "facility", fid, "confirmed", on=first.date(),
                         restrict_persons=[pid], restrict_months=12,
                         restrict_to_facilities=[fid], staff_points={sid: 12})
    assert res.tables_written == ["persons", "staff"]
    # derived state survives: nothing to re-run
    assert ws.db_path.exists()
    assert (_n(ws, "rule_findings"), _n(ws, "leads"), _n(ws, "rings")) == (
        n_findings, n_leads, n_rings)
    assert _n(ws, "information_schema.tables", "table_name = 'features_claim'") == 1
    # imported tables are untouched; every reader sees the statuses in the usual columns
    pd.testing.assert_frame_equal(ws.read_table("persons", with_status=False), canonical)
    until = (first + pd.DateOffset(months=12)).date()
    p = ws.read_table("persons").set_index("person_id").loc[pid]
    assert p["settlement_restricted_until"] == until and p["restricted_facilities"] == fid
    v = query(ws, f"SELECT settlement_restricted_until AS u, restricted_facilities AS f "
                  f"FROM persons WHERE person_id = '{pid}'")
    assert pd.Timestamp(v["u"].iloc[0]).date() == until and v["f"].iloc[0] == fid
    assert _n(ws, "persons") == len(canonical)
    st = query(ws, f"SELECT qualification_status FROM staff WHERE staff_id = '{sid}'")
    assert st["qualification_status"].iloc[0] == "terminated"
    eng = RuleEngine.from_workspace(ws)
    try:
        assert eng.state.person(pid)[1] == until
        assert eng.state.staff(sid)[0] == "terminated"
    finally:
        eng.close()
    # the batch screen sees the suspension: the person's later claims now have findings
    screen(ws)
    assert _n(ws, "rule_findings", f"person_id = '{pid}'") > before


def test_apply_is_idempotent_and_survives_reimport(ws: Workspace) -> None:
    from fraudscan.outcomes import apply_sanctions, record_outcome

    pid = ws.read_table("persons")["person_id"].iloc[5]
    fid = ws.read_table("facilities")["facility_id"].iloc[0]
    record_outcome(ws, "facility", fid, "confirmed", on="2025-03-01", restrict_persons=[pid],
                   suspend_agreement=True, apply=False)
    assert ws.read_table("facilities").set_index("facility_id").loc[fid,
                                                                   "agreement_status"] != \
        "suspended"
    assert apply_sanctions(ws) == ["facilities", "persons"]
    first = ws.read_table("persons")
    apply_sanctions(ws)
    pd.testing.assert_frame_equal(ws.read_table("persons"), first)
    # a re-import of the canonical tables keeps the statuses on top
    ws.write_tables({"persons": ws.read_table("persons", with_status=False)}, source="test",
                    replace_all=False)
    assert str(ws.read_table("persons").set_index("person_id").loc[
        pid, "settlement_restricted_until"]) == "2025-09-01"
