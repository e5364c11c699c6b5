"""The inspection budget for leads (quota per screening model) and facility labels' meaning."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from fraudscan.workspace import Workspace


def test_allocate_quota_shares_and_redistributes() -> None:
    from fraudscan.suspects import allocate_quota

    # a has 100 leads, b 100, c only 2: c's unused share goes to a and b
    dets = ["a"] * 100 + ["b"] * 100 + ["c"] * 2
    q = allocate_quota(dets, 30)
    assert q == {"a": 14, "b": 14, "c": 2}
    assert sum(allocate_quota(dets, 31).values()) == 31
    # weights are respected; weight 0 takes a model out of the budget
    q = allocate_quota(dets, 30, {"a": 2.0, "b": 1.0, "c": 0.0})
    assert q == {"a": 20, "b": 10, "c": 0}
    # never more than there are leads
    assert allocate_quota(["a", "b"], 10) == {"a": 1, "b": 1}
    # odd slots go to the detector with the better lead (first in the list)
    assert allocate_quota(["b", "a", "a", "b"], 1) == {"b": 1, "a": 0}


def test_lead_budget_size() -> None:
    from fraudscan.suspects import LEAD_BUDGET, LeadBudget

    assert LEAD_BUDGET.size(20_000) == 200 and LEAD_BUDGET.size(100_000) == 1_000
    assert LEAD_BUDGET.size(1_000) == LEAD_BUDGET.minimum
    assert LeadBudget(per_10k_insured=50, minimum=0).size(20_000) == 100


@pytest.fixture(scope="module")
def leads_world(small_world: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    import fraudscan.leads as leads

    path = tmp_path_factory.mktemp("budget") / "w"
    shutil.copytree(small_world.tables_dir, path / "tables")
    ws = Workspace(path)
    leads.run(ws)
    return ws


def test_budgeted_lead_list_gives_every_detector_a_share(leads_world: Workspace) -> None:
    from fraudscan.suspects import LeadBudget, insured_count, ranked_leads

    ws = leads_world
    every = ranked_leads(ws, top=None)
    n_det = every["detector"].nunique()
    assert n_det >= 10
    budget = ranked_leads(ws)  # default: 100 per 10,000 insured, at least 50
    assert len(budget) == max(50, round(100 * insured_count(ws) / 10_000))
    got = budget["detector"].value_counts()
    have = every["detector"].value_counts()
    # every screening model with leads is in the list, each with its own best leads
    assert set(got.index) == set(have.index)
    assert (budget["detector_rank"] <= budget["detector"].map(got)).all()
    share = len(budget) // n_det
    assert (got.reindex(have.index) >= have.clip(upper=share)).all()
    assert budget["priority"].is_monotonic_decreasing
    # the quota config is respected: weights, size, and the global-ranking alternative
    w = ranked_leads(ws, top=40, budget=LeadBudget(weights={"card_cashout": 0.0}))
    assert len(w) == 40 and "card_cashout" not in set(w["detector"])
    g = ranked_leads(ws, top=40, budget=LeadBudget(allocation="priority"))
    assert list(g["lead_id"]) == list(every["lead_id"].head(40))


def test_facility_labels_mean_the_facility_perpetrated(small_world: Workspace) -> None:
    from fraudscan.synth.finalize import FACILITY_CASE_SHARE, VICTIM_FACILITY_SCENARIOS

    lab = small_world.read_table("labels")
    s = small_world.read_table("settlements")[["settlement_id", "facility_id"]]
    fraud = lab[lab["is_fraud"]]
    fac = fraud[fraud["entity_type"] == "facility"]
    # patient-driven scenarios: no facility label except the explicit resale pharmacy
    assert fac[fac["scenario"].isin(VICTIM_FACILITY_SCENARIOS)]["scenario"].eq(
        "drug_resale").all()
    assert (fac["scenario"] == "drug_resale").sum() <= 1
    assert not (fac["scenario"] == "care_after_death").any()
    # every facility label is a facility where one of the scenario's cases mostly happened
    sl = fraud[fraud["entity_type"] == "settlement"].merge(
        s, left_on="entity_id", right_on="settlement_id")
    n_case = sl.groupby(["scenario", "group_id"]).size()
    here = sl.groupby(["scenario", "group_id", "facility_id"]).size().rename("n").reset_index()
    here["share"] = here["n"] / n_case.reindex(
        pd.MultiIndex.from_frame(here[["scenario", "group_id"]])).to_numpy()
    own = set(map(tuple, here.loc[here["share"] >= FACILITY_CASE_SHARE,
                                  ["facility_id", "scenario"]].to_numpy()))
    for f, sc in zip(fac["entity_id"], fac["scenario"], strict=True):
        assert (f, sc) in own or sc in ("drug_resale", "collusion_ring", "bed_overuse"), (f, sc)
    # card cash-out at many pharmacies (one roaming card each) labels none of them
    cash = fac[fac["scenario"] == "card_cashout"]
    assert len(cash) <= 1


def test_cli_lists_the_lead_budget(leads_world: Workspace, tmp_path) -> None:
    from typer.testing import CliRunner

    from fraudscan.cli import app

    out = tmp_path / "leads.csv"
    r = CliRunner().invoke(app, ["suspects", str(leads_world.path), "--kind", "lead",
                                 "--no-reasons", "--top", "32", "--out", str(out)])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out)
    assert len(df) == 32 and df["detector"].nunique() >= 10
