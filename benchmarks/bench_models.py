"""Model benchmarks: training time, explanation time per returned lead, feedback rounds.

    python benchmarks/bench_models.py W                 # W prepared: rules, features, leads, graph
    python benchmarks/bench_models.py W --feedback 3    # + 3 rounds of inspector feedback

Feedback rounds (person model, budget 200): start with no labels (peer outliers only), inspect
the top 200 not yet inspected, record each as confirmed/cleared from the synthetic truth, retrain
on inspection labels only, repeat. Precision is measured on each round's new inspection list.
Results go to stdout as JSON; docs/performance.md and docs/evaluation.md quote them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

import numpy as np
import pandas as pd


def prepare(ws: str, persons: int, seed: int, intensity: float,
            scenario_intensity: dict[str, float]) -> dict:
    """Generate a world and run rules, features, leads and graph on it (seconds per step)."""
    from fraudscan import features, graph, leads, rules
    from fraudscan.synth import generate
    from fraudscan.synth.config import SynthConfig

    out = {}
    steps = (("synth", lambda: generate(ws, persons=persons, seed=seed, config=SynthConfig(
                 intensity=intensity, scenario_intensity=scenario_intensity))),
             ("rules", lambda: rules.screen(ws)), ("features", lambda: features.build(ws)),
             ("leads", lambda: leads.run(ws)), ("graph", lambda: graph.build(ws)))
    for name, fn in steps:
        t = time.perf_counter()
        fn()
        out[name] = round(time.perf_counter() - t, 1)
    return out


def bench_training(ws: str) -> dict:
    from fraudscan.graph import evaluate_rings
    from fraudscan.models import BUDGETS, train_all
    from fraudscan.models.evaluation import case_recall
    from fraudscan.workspace import Workspace

    tmp = tempfile.mkdtemp()
    t = time.perf_counter()
    r = train_all(ws, tracking_uri=f"sqlite:///{tmp}/mlflow.db", n_splits=3)
    total = time.perf_counter() - t
    shutil.rmtree(tmp, ignore_errors=True)
    labels = Workspace(ws).read_table("labels")
    models_only = labels[~labels["scenario"].str.match(r"^R\d+$")]
    from fraudscan.suspects import LEAD_BUDGET, LeadBudget, insured_count, ranked_leads

    insured = insured_count(ws)
    # the default inspection budget (quota per screening model), ranked by out-of-fold risk:
    # no list is ranked by a model that saw the labels it is scored against
    top_leads = ranked_leads(ws, risk_column="oof_risk")
    cases = case_recall(models_only, r.scores, BUDGETS, leads=top_leads,
                        score_column="oof_risk")
    only = case_recall(models_only, {}, {}, leads=top_leads)  # the lead budget alone
    cases = cases.merge(only[["scenario", "recall"]].rename(
        columns={"recall": "recall_lead_budget_alone"}), on="scenario", how="left")
    for col, kw, leads in (
            ("recall_in_sample", {}, ranked_leads(ws)),
            ("recall_one_global_ranking", {"score_column": "oof_risk"},
             ranked_leads(ws, risk_column="oof_risk",
                          budget=LeadBudget(allocation="priority")))):
        other = case_recall(models_only, r.scores, BUDGETS, leads=leads, **kw)
        cases = cases.merge(other[["scenario", "recall"]].rename(columns={"recall": col}),
                            on="scenario", how="left")
    lab_ids = set(models_only.loc[models_only["is_fraud"].astype(bool)
                                  & (models_only["entity_type"] == "settlement"),
                                  "entity_id"].astype(str))
    lead_prec = float(np.mean([bool(set(map(str, s if s is not None else [])) & lab_ids)
                               or False for s in top_leads["settlement_ids"]]))
    fac = r.scores["facility"]
    fac_ids = set(models_only.loc[models_only["is_fraud"].astype(bool)
                                  & (models_only["entity_type"] == "facility"),
                                  "entity_id"].astype(str))
    _, rings = evaluate_rings(ws)
    return {"case_recall": cases.round(3).to_dict("records"), "rings": rings,
            "insured": insured, "lead_budget": {
                "size": LEAD_BUDGET.size(insured), "per_10k_insured": LEAD_BUDGET.per_10k_insured,
                "allocation": LEAD_BUDGET.allocation,
                "per_detector": top_leads["detector"].value_counts().sort_index().to_dict()},
            "facilities": {"n": len(fac), "labelled_fraud": int(
                fac["id"].astype(str).isin(fac_ids).sum())},
            "budget_leads_with_a_labelled_claim": round(lead_prec, 3),
            "train_all_seconds": round(total, 1),
            "timings": {k: round(v, 1) for k, v in r.timings.items()},
            "metrics": {s: {k: round(v, 3) for k, v in m.get("oof", {}).items()}
                        for s, m in r.metrics.items()},
            "scenario_recall": {s: m.get("scenario_recall") for s, m in r.metrics.items()}}


def bench_explain(ws: str, n: int = 200) -> dict:
    from fraudscan.suspects import explain_rows, suspects

    out = {}
    for kind in ("facility", "person", "claim"):
        ids = list(suspects(ws, kind, top=n, reasons=False).iloc[:, 1])
        t = time.perf_counter()
        explain_rows(ws, kind, ids)
        out[kind] = {"rows": len(ids),
                     "ms_per_lead": round(1000 * (time.perf_counter() - t) / len(ids), 2)}
    from fraudscan.models import load_model, read_inputs, score_claim

    model = load_model(ws, "claim")
    X, _, peer = read_inputs(ws, "claim")
    rows = X.head(2000).to_dict("records")
    t = time.perf_counter()
    for r, p in zip(rows, peer[:2000], strict=False):
        score_claim(model, r, p)
    out["score_one_claim_ms"] = round(1000 * (time.perf_counter() - t) / len(rows), 3)
    return out


def bench_feedback(ws: str, rounds: int, budget: int = 100) -> list[dict]:
    """Feedback rounds on the person model with a held-out evaluation half.

    Persons are split in two halves by a hash of their id: inspectors work on half A (the next
    ``budget`` not yet inspected, by risk), precision is measured on half B, which is never
    inspected — so a rising figure is the model learning, not the easy cases running out.
    """
    import zlib

    from fraudscan.models import train_all
    from fraudscan.models.data import entity_labels
    from fraudscan.models.evaluation import metrics
    from fraudscan.outcomes import OUTCOMES_DIR, record_many
    from fraudscan.workspace import Workspace

    w = Workspace(ws)
    shutil.rmtree(w.path / OUTCOMES_DIR, ignore_errors=True)
    truth = entity_labels(w, "person", ("synthetic",)).set_index("entity_id")["is_fraud"]
    inspected: set[str] = set()
    res = []
    for rnd in range(rounds + 1):
        r = train_all(w, ["person"], sources=("inspection",), train_on="labelled",
                      evaluate=False, track=False)
        sc = r.scores["person"].assign(id=lambda d: d["id"].astype(str))
        half_b = sc["id"].map(lambda i: zlib.crc32(i.encode()) % 2 == 1)
        y = sc["id"].map(truth).fillna(False).astype(float).to_numpy()
        b = half_b.to_numpy()
        m = metrics(y[b], sc["risk_score"].to_numpy()[b], budget_top=budget)
        res.append({"round": rnd, "labels_used": len(inspected),
                    "confirmed_used": int(sum(bool(truth.get(i, False)) for i in inspected)),
                    "heldout_precision_at_budget": round(m["precision_at_budget"], 3),
                    "heldout_pr_auc": round(m["pr_auc"], 3),
                    "heldout_roc_auc": round(m["roc_auc"], 3)})
        pool = sc[~half_b & ~sc["id"].isin(inspected)].sort_values("risk_score",
                                                                     ascending=False)
        pick = pool.head(budget)["id"]
        hit = pick.map(truth).fillna(False).astype(bool)
        res[-1]["inspected_precision"] = round(float(hit.mean()), 3)
        record_many(w, pd.DataFrame({"kind": "person", "entity_id": pick.to_numpy(),
                                     "result": np.where(hit, "confirmed", "cleared")}))
        inspected |= set(pick)
    shutil.rmtree(w.path / OUTCOMES_DIR, ignore_errors=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workspace")
    ap.add_argument("--feedback", type=int, default=0)
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--prepare", action="store_true",
                    help="generate the world first (with --persons, --seed, --intensity, "
                    "--scenario-intensity) and run rules, features, leads and graph")
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=9001)
    ap.add_argument("--intensity", type=float, default=1.0)
    ap.add_argument("--scenario-intensity", default="",
                    help="per-scenario intensities, e.g. split_admission=1.5,phantom_bed=0.8")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if a.prepare:
        si = {k: float(v) for k, v in (x.split("=") for x in a.scenario_intensity.split(",")
                                       if x)}
        print(json.dumps({"prepare": prepare(a.workspace, a.persons, a.seed, a.intensity, si)}),
              flush=True)
    if not a.skip_train:
        print(json.dumps({"training": bench_training(a.workspace)}, indent=1, default=str),
              flush=True)
        print(json.dumps({"explain": bench_explain(a.workspace)}, indent=1), flush=True)
    if a.feedback:
        print(json.dumps({"feedback": bench_feedback(a.workspace, a.feedback)}, indent=1),
              flush=True)


if __name__ == "__main__":
    main()
