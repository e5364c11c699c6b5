"""Each screening model fires on its scenario and stays silent on the near miss."""

from __future__ import annotations

import pytest

import fraudscan.leads as leads
from _leads_world import SCENARIOS, TEST_CONFIG, World


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("positive", [True, False], ids=["present", "near_miss"])
def test_detector_on_scenario(tmp_path, name: str, positive: bool) -> None:
    w = World()
    expected = SCENARIOS[name](w, positive)
    ws = w.write(tmp_path / "w")
    df = leads.run(ws, detectors=[name], config=TEST_CONFIG)
    run = df.attrs["runs"][0]
    assert run["status"] == "ok", run
    if positive:
        assert len(df) >= 1
        covered = set().union(*map(set, df["settlement_ids"]))
        assert covered & set(expected), (expected, df.to_dict("records"))
        assert (df["score"] >= 0.5).all() and (df["score"] <= 1).all()
        assert df["evidence"].map(lambda e: e.startswith("{")).all()
    else:
        assert df.empty, df.to_dict("records")


@pytest.mark.parametrize("extra", [True, False], ids=["extra_sessions", "rota_only"])
def test_dialysis_off_schedule(tmp_path, extra: bool) -> None:
    """A twice-weekly patient (Mon/Thu) billed a Tuesday after some Mondays: 3 a week, under the
    weekly cap, but off the patient's rota and the day after a session."""
    from datetime import timedelta

    from _leads_world import D0, at

    w = World()
    p = w.person()
    extras = []
    for week in range(10):
        for d in (0, 3):
            w.visit(p, "D1", at(D0 + timedelta(days=7 * week + d), 8), "N18", [("DIA01", 1)],
                    mtype="14")
        if extra and week in (1, 2):
            extras.append(w.visit(p, "D1", at(D0 + timedelta(days=7 * week + 1), 8), "N18",
                                  [("DIA01", 1)], mtype="14"))
    df = leads.run(w.write(tmp_path / "w"), detectors=["dialysis_overbilling"])
    if extra:
        assert len(df) == 1
        assert sorted(df["settlement_ids"].iloc[0]) == sorted(extras)
        assert leads.evidence(df.iloc[0])["off_schedule_sessions"] == 2
    else:
        assert df.empty, df.to_dict("records")


def test_dialysis_after_death(tmp_path) -> None:
    from datetime import timedelta

    from _leads_world import D0, at

    w = World()
    p = w.person(death=D0 + timedelta(days=14))
    after = []
    for k in range(10):  # Mon/Wed/Fri, two weeks alive and two weeks "after death"
        d = D0 + timedelta(days=7 * (k // 3) + 2 * (k % 3))
        sid = w.visit(p, "D1", at(d, 8), "N18", [("DIA01", 1)], mtype="14")
        if d > D0 + timedelta(days=14):
            after.append(sid)
    df = leads.run(w.write(tmp_path / "w"), detectors=["dialysis_overbilling"])
    assert set(after) <= set().union(*map(set, df["settlement_ids"]))
    assert sum(leads.evidence(r)["sessions_after_death"] for _, r in df.iterrows()) == len(after)


def test_group_visits_ignores_dialysis_shifts(tmp_path) -> None:
    """A dialysis shift settles the same patients together every week: not a group visit."""
    from datetime import timedelta

    from _leads_world import D0, at

    w = World()
    for day in range(20):  # the centre's ordinary days
        w.visit(w.person(), "D1", at(D0 + timedelta(days=day), 9), "J06", [("DRG02", 1)])
    shift = [w.person() for _ in range(12)]
    for week in range(6):
        for i, p in enumerate(shift):
            w.visit(p, "D1", at(D0 + timedelta(days=7 * week), 8, 3 * i), "N18.5",
                    [("DIA01", 1)], mtype="14")
    df = leads.run(w.write(tmp_path / "w"), detectors=["group_visits"], config=TEST_CONFIG)
    assert df.empty, df.to_dict("records")
    df = leads.run(w.write(tmp_path / "w2"), detectors=["group_visits"],
                   config={**TEST_CONFIG, "group_visits": {"min_persons": 8,
                                                           "exclude_dx_prefixes": []}})
    assert len(df) >= 1  # the same shifts do fire when dialysis is not excluded


@pytest.mark.parametrize("skip", [True, False])
def test_item_switching_leaves_trace_coded_drugs_to_their_codes(tmp_path, skip: bool) -> None:
    """A trace-coded drug sold beyond purchases (resold boxes) is not a switch when trace scans
    are there to reconcile it box by box."""
    from _leads_world import D0, at

    w = World()
    for i in range(30):
        s = w.visit(w.person(), "P1", at(D0, 9, i), "E11", [("DRG01", 2)], mtype="41")
        line = next(x for x in w.fee_lines if x["settlement_id"] == s)
        w.trace_scans.append({"scan_id": w.nid("T"), "line_id": line["line_id"],
                              "facility_id": "P1", "item_code": "DRG01",
                              "trace_code": f"8{i:019d}", "scan_time": at(D0, 9, i)})
    for code, qty in (("DRG01", 20.0), ("DRG02", 60.0)):  # DRG02: cheaper, bought, never sold
        w.stock.append({"movement_id": w.nid("M"), "facility_id": "P1", "item_code": code,
                        "movement_type": "purchase", "qty": qty, "unit_price": 5.0,
                        "movement_time": at(D0)})
    df = leads.run(w.write(tmp_path / "w"), detectors=["item_switching"],
                   config={"item_switching": {"skip_trace_required": skip}})
    assert df.empty == skip, df.to_dict("records")
