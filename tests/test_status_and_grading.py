"""Sanctions keep derived state; grades use only what was known by the end of the period."""

from __future__ import annotations

import shutil

import numpy as np
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
                         restrict_persons=[pid], restrict_months=12, staff_points={sid: 12})
    assert res.tables_written == ["persons", "staff"]
    # a second person restricted to one facility (the other rule the batch enforces)
    pid2 = s.loc[s["person_id"] != pid].groupby("person_id").size().idxmax()
    record_outcome(ws, "facility", fid, "confirmed", on=first.date(),
                   restrict_persons=[pid2], restrict_months=12, restrict_to_facilities=[fid])
    # derived state survives: nothing to re-run
    assert ws.db_path.exists()
    assert (_n(ws, "rule_findings"), _n(ws, "leads"), _n(ws, "rings")) == (
        n_findings, n_leads, n_rings)
    assert _n(ws, "information_schema.tables", "table_name = 'features_claim'") == 1
    # imported tables are untouched; every reader sees the statuses in the usual columns
    pd.testing.assert_frame_equal(ws.read_table("persons", with_status=False), canonical)
    until = (first + pd.DateOffset(months=12)).date()
    p = ws.read_table("persons").set_index("person_id")
    assert p.loc[pid, "settlement_restricted_until"] == until
    assert p.loc[pid2, "settlement_restricted_until"] == until
    assert p.loc[pid2, "restricted_facilities"] == fid
    v = query(ws, f"SELECT settlement_restricted_until AS u, restricted_facilities AS f "
                  f"FROM persons WHERE person_id = '{pid2}'")
    assert pd.Timestamp(v["u"].iloc[0]).date() == until and v["f"].iloc[0] == fid
    assert _n(ws, "persons") == len(canonical)
    st = query(ws, f"SELECT qualification_status FROM staff WHERE staff_id = '{sid}'")
    assert st["qualification_status"].iloc[0] == "terminated"
    eng = RuleEngine.from_workspace(ws)
    try:
        assert eng.state.person(pid)[1] == until
        assert eng.state.person_facilities(pid2) == frozenset({fid})
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


def test_grades_use_only_what_was_known_by_the_period_end(ws: Workspace) -> None:
    from fraudscan.grading import GradeResult, grade, read_history
    from fraudscan.outcomes import record_outcome

    def row(g: GradeResult, fid: str) -> pd.Series:
        return g.grades.set_index("facility_id").loc[fid]

    q3 = grade(ws, "2025Q3")
    q4 = grade(ws, "2025Q4", save=False)
    # the facility with the fewest findings that settled claims in Q4 gets many new ones there
    late = query(ws, "SELECT facility_id, count(*) AS n FROM settlements WHERE settle_time >= "
                     "TIMESTAMP '2025-10-01' GROUP BY 1")
    fids = set(late.loc[late["n"] >= 5, "facility_id"].astype(str))
    fid = q4.grades[q4.grades["facility_id"].isin(fids)].sort_values(
        "pts_rule_findings", kind="stable")["facility_id"].iloc[0]
    with ws.connect() as con:
        con.execute(f"""
            INSERT INTO rule_findings
            SELECT 'RTEST', 1, 'flag', 'high', settlement_id, NULL, person_id, facility_id,
                   attending_staff_id, CAST(settle_time AS DATE), fund_paid, 'test'
            FROM settlements WHERE facility_id = '{fid}'
              AND settle_time >= TIMESTAMP '2025-10-01'""")
    record_outcome(ws, "facility", fid, "confirmed", amount=100, on="2025-11-15")
    # the past period does not move: findings and the outcome came after it
    again = grade(ws, "2025Q3", save=False)
    pd.testing.assert_frame_equal(again.grades.drop(columns=["reason_zh", "reason_en"]),
                                  q3.grades.drop(columns=["reason_zh", "reason_en"]))
    assert row(again, fid)["tier"] != "red" or row(q3, fid)["tier"] == "red"
    # the next period sees them
    g4 = grade(ws, "2025Q4")
    assert row(g4, fid)["pts_rule_findings"] > row(q4, fid)["pts_rule_findings"]
    assert row(g4, fid)["tier"] == "red" and "confirmed fraud" in row(g4, fid)["reason_en"]
    assert list(read_history(ws)["period"].unique()) == ["2025Q3", "2025Q4"]
    # a period cut before the end of the data re-scores the model on that period's inputs
    q1 = grade(ws, "2025Q1", save=False)
    assert not np.allclose(q1.grades.set_index("facility_id")["pts_model_risk"].sort_index(),
                           g4.grades.set_index("facility_id")["pts_model_risk"].sort_index())


def test_trained_models_reasons_are_labelled_and_true(prepared: Workspace) -> None:
    from fraudscan.models import load_model, read_inputs
    from fraudscan.models.explain import explain, label

    for kind in ("facility", "claim"):
        model = load_model(prepared, kind)
        assert [f for f in model.feature_names_ if label(f) is None] == []
        X, _, peer = read_inputs(prepared, kind)
        X, peer = X.head(300), peer[:300]
        for rs in explain(model, X, peer, kind, top=4):
            for r in rs:
                above = "，超过" in r.zh or "不足 5%" in r.zh
                assert above == (r.basis == "above_p95") and (not above or r.value > r.peer_p95)
                assert "_" not in r.zh and "_" not in r.en, r
