"""Train → MLflow → grade → suspects → outcomes on the small synthetic world (one prep)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from fraudscan.workspace import Workspace

FAST = {s: {"n_estimators": 30} for s in ("claim", "facility", "person", "staff", "ring")}


@pytest.fixture(scope="module")
def trained(small_world: Workspace, tmp_path_factory: pytest.TempPathFactory):
    """A copy of the small world with rules, features, leads, rings and trained models."""
    import fraudscan.features as features
    import fraudscan.graph as graph
    import fraudscan.leads as leads
    from fraudscan.models import train_all
    from fraudscan.rules import screen

    base = tmp_path_factory.mktemp("models")
    ws = Workspace(base / "ws")
    shutil.copytree(small_world.path, ws.path)
    screen(ws)
    features.build(ws)
    leads.run(ws)
    graph.build(ws)
    uri = f"sqlite:///{base / 'mlflow.db'}"
    res = train_all(ws, n_splits=2, hyper=FAST, tracking_uri=uri)
    return ws, res, uri


def test_train_all_evaluates_grouped_and_keeps_models(trained) -> None:
    ws, res, _ = trained
    assert set(res.models) == {"claim", "facility", "person", "staff", "ring"}
    for s in ("claim", "person"):
        oof = res.metrics[s]["oof"]
        assert oof["roc_auc"] > 0.75, (s, oof)
        assert oof["pr_auc"] > oof["base_rate"], (s, oof)
        assert {"precision_at_budget", "recall_at_budget", "brier", "ece"} <= set(oof)
        assert res.metrics[s]["scenario_recall"]
    assert "time_holdout" in res.metrics["claim"]
    assert (ws.path / "models" / "metrics.json").is_file()
    assert res.models["claim"].booster_ is not None


def test_oof_never_splits_a_facility(trained) -> None:
    from fraudscan.models import build_frame
    from fraudscan.models.evaluation import StratifiedGroupKFold

    ws, _, _ = trained
    fr = build_frame(ws, "claim")
    cv = StratifiedGroupKFold(n_splits=2, shuffle=True, random_state=0)
    for tr, te in cv.split(fr.X, fr.y.astype(int), fr.groups):
        assert not set(fr.groups[tr]) & set(fr.groups[te])


def test_mlflow_run_logged_and_champion_loads(trained) -> None:
    import mlflow

    from fraudscan.models import score_claim
    from fraudscan.models.tracking import load_champion, load_champion_booster

    ws, res, uri = trained
    run = mlflow.MlflowClient(uri).get_run(res.runs["claim"]["run_id"])
    assert run.data.params["data_fingerprint"] == ws.fingerprint()
    assert "oof.pr_auc" in run.data.metrics
    model = load_champion("claim", uri)
    booster = load_champion_booster("claim", uri)
    assert booster.num_trees() > 0
    X = pd.read_parquet(ws.path / "models" / "X_claim.parquet").head(3)
    row = {k: v for k, v in X.iloc[0].items() if not k.startswith("_")}
    local = res.models["claim"].risk(X[model.feature_names_].to_numpy(), X["_peer"].to_numpy())
    assert score_claim(model, row, X["_peer"].iloc[0]) == pytest.approx(local[0])


def test_suspects_ranked_with_reasons_and_exports(trained, tmp_path) -> None:
    from fraudscan.suspects import export, suspects

    ws, _, _ = trained
    for kind, col in (("facility", "facility_id"), ("staff", "staff_id"),
                      ("person", "person_id"), ("ring", "ring_id")):
        df = suspects(ws, kind, top=5)
        assert 0 < len(df) <= 5 and col in df
        assert df["expected_recoverable"].is_monotonic_decreasing
        assert df["reason_zh"].str.contains("P95").all(), df["reason_zh"].tolist()
        assert df["reason_en"].str.contains("P95 of").all()
    by_risk = suspects(ws, "person", top=None, by="risk", reasons=False)
    assert by_risk["risk_score"].is_monotonic_decreasing
    d = by_risk["district"].iloc[0]
    assert (suspects(ws, "person", top=None, district=d, reasons=False)["district"] == d).all()
    x = export(suspects(ws, "facility", top=3), tmp_path / "f.xlsx")
    assert pd.read_excel(x).shape[0] == 3
    c = export(suspects(ws, "facility", top=None, reasons=False), tmp_path / "f.csv")
    assert pd.read_csv(c)["risk_score"].between(0, 1).all()


def test_grading_tiers_overrides_and_hysteresis(trained) -> None:
    from fraudscan.grading import grade, read_history
    from fraudscan.outcomes import record_outcome

    ws, _, _ = trained
    g1 = grade(ws, "2025Q3")
    assert g1.grades["points"].between(0, 1000).all()
    assert set(g1.grades["tier"]) <= {"red", "orange", "yellow", "blue"}
    assert g1.counts.values.sum() == len(g1.grades)
    lowest = g1.grades.iloc[-1]["facility_id"]
    record_outcome(ws, "facility", lowest, "confirmed", amount=1000, on="2025-10-01")
    g2 = grade(ws, "2025Q4")
    row = g2.grades.set_index("facility_id").loc[lowest]
    assert row["tier"] == "red" and row["change"] == "up"
    assert "confirmed fraud" in row["reason_en"]
    # a high tier with a lower score is held one period, then steps down
    cfg = {"overrides": {"confirmed_fraud": None}}
    g3 = grade(ws, "2026Q1", config=cfg)
    r3 = g3.grades.set_index("facility_id").loc[lowest]
    assert r3["tier"] == "red" and r3["change"] == "held"
    g4 = grade(ws, "2026Q2", config=cfg)
    r4 = g4.grades.set_index("facility_id").loc[lowest]
    assert r4["change"] == "down" and r4["tier"] != "red"
    assert list(read_history(ws)["period"].unique()) == ["2025Q3", "2025Q4", "2026Q1", "2026Q2"]


def test_feedback_labels_reach_training(trained) -> None:
    from fraudscan.models import train_all
    from fraudscan.models.data import entity_labels

    ws, _, _ = trained
    lab = entity_labels(ws, "facility", ("inspection",))
    assert len(lab) >= 1 and lab["is_fraud"].all()
    res = train_all(ws, ["facility"], sources=("inspection",), train_on="labelled",
                    evaluate=False, track=False, hyper=FAST)
    assert res.scores["facility"]["label"].notna().sum() == len(lab)
    assert np.isfinite(res.scores["facility"]["risk_score"]).all()


def test_cli_suspects_and_outcome(trained, tmp_path) -> None:
    import typer
    from typer.testing import CliRunner

    from fraudscan.cli import models_cmd

    ws, _, _ = trained
    app = typer.Typer()
    models_cmd.register(app)
    out = tmp_path / "scores.csv"
    r = CliRunner().invoke(app, ["suspects", str(ws.path), "--kind", "facility", "--all",
                                 "--out", str(out), "--no-reasons"])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out)
    assert {"facility_id", "risk_score"} <= set(df.columns)
    person = df["facility_id"].iloc[0]
    r = CliRunner().invoke(app, ["outcome", "record", str(ws.path), "--kind", "facility",
                                 "--id", person, "--result", "cleared", "--date",
                                 "2025-12-01", "--no-apply"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["grade", str(ws.path), "--period", "2027Q1", "--out",
                                 str(tmp_path / "g.xlsx")])
    assert r.exit_code == 0, r.output
    assert "district" in r.output and (tmp_path / "g.xlsx").is_file()
    r = CliRunner().invoke(app, ["train", str(ws.path), "-s", "ring", "--no-eval",
                                 "--no-track"])
    assert r.exit_code == 0, r.output


def test_without_any_label_models_rank_by_peer_outliers(trained, tmp_path) -> None:
    from fraudscan.models import BUDGETS, train_all
    from fraudscan.models.evaluation import case_recall, metrics

    ws, res, _ = trained
    copy = Workspace(tmp_path / "w")
    shutil.copytree(ws.path, copy.path, ignore=shutil.ignore_patterns("outcomes"))
    r = train_all(copy, ["person"], sources=("inspection",), train_on="labelled",
                  evaluate=False, track=False)
    assert r.models["person"].booster_ is None
    truth = res.scores["person"]["label"].to_numpy()
    m = metrics(truth, r.scores["person"]["risk_score"].to_numpy(), budget_top=200)
    assert m["roc_auc"] > 0.7 and m["precision_at_budget"] > 3 * m["base_rate"]
    rec = case_recall(ws.read_table("labels"), res.scores, BUDGETS)
    assert {"scenario", "cases", "reached", "recall"} <= set(rec.columns) and len(rec)
