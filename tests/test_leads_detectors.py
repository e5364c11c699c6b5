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
