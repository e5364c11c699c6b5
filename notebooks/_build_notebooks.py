# ruff: noqa: E501  (the cells hold notebook prose and code, wrapped as a reader wants)
"""Write the notebooks of this folder from the cell lists below (no outputs).

Run ``.venv/bin/python notebooks/_build_notebooks.py`` after editing; commit the ``.ipynb`` files
it writes. ``--clear`` instead strips outputs from the notebooks as they are (after running them
in Jupyter). The notebooks are the product; this script only keeps them easy to review and edit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''\
import tempfile
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import fraudscan

warnings.filterwarnings("ignore")
pd.set_option("display.max_columns", 30)
pd.set_option("display.width", 160)
T0 = time.perf_counter()
TMP = Path(tempfile.mkdtemp(prefix="fraudscan-{tag}-"))   # everything this notebook writes
print("writing under", TMP)'''

WORLD = '''\
ws = fraudscan.generate(TMP / "ws", persons=2_000, seed=1)   # a small synthetic city
print(ws.path, f"{time.perf_counter() - T0:.1f} s")'''

PIPELINE = '''\
import fraudscan.features as features
import fraudscan.graph as graph
import fraudscan.leads as leads
from fraudscan.rules import screen

screen(ws)          # rule findings (rule_findings)
features.build(ws)  # claim / facility / person / staff features
leads.run(ws)       # screening models → leads
graph.build(ws)     # collusion rings
print(f"pipeline ready after {time.perf_counter() - T0:.1f} s")'''

DONE = '''print(f"notebook ran in {time.perf_counter() - T0:.1f} s; files under {TMP}")'''


def md(s: str) -> nbformat.NotebookNode:
    return new_markdown_cell(s.strip("\n"))


def code(s: str) -> nbformat.NotebookNode:
    return new_code_cell(s.strip("\n"))


NOTEBOOKS: dict[str, list] = {}

# ---------------------------------------------------------------------------------------------
NOTEBOOKS["01_explore_workspace"] = [
    md("""
# 01 · Exploring a workspace

A workspace is a directory holding one data set (canonical Parquet tables) plus a DuckDB file for
everything derived from it. This notebook generates a small synthetic city (2,000 insured
persons, with injected and labelled fraud) in a temporary directory and looks around: the
tables, volumes over time, the fraud labels by scenario, and one facility's month.
"""),
    code(SETUP.format(tag="nb01")),
    code(WORLD),
    md("## Tables and row counts\n\n`workspace_summary` is what `fraudscan info` prints."),
    code('''
summary = fraudscan.workspace_summary(ws)
print("source:", summary["source"], "| dates:", summary["date_range"])
print("valid:", fraudscan.validate_workspace(ws).ok)
counts = pd.Series(summary["row_counts"], name="rows").sort_values()
ax = counts.plot.barh(logx=True, figsize=(6, 4), title="rows per canonical table (log scale)")
ax.set_xlabel("rows")
plt.show()
counts.to_frame()
'''),
    code('''
pd.DataFrame(summary["districts"])
'''),
    md("## Volumes over time\n\n`ws.connect()` gives a DuckDB connection with a view per table."),
    code('''
with ws.connect() as con:
    monthly = con.sql("""
        SELECT strftime(settle_time, '%Y-%m') AS month, medical_type,
               count(*) AS settlements, sum(fund_paid) AS fund_paid
        FROM settlements GROUP BY ALL ORDER BY ALL""").df()
by_month = monthly.pivot_table(index="month", columns="medical_type", values="fund_paid",
                               aggfunc="sum").fillna(0)
ax = by_month.plot.area(figsize=(9, 4), title="fund paid per month by medical type (CNY)")
ax.set_ylabel("CNY")
plt.show()
monthly.groupby("month")[["settlements", "fund_paid"]].sum().T
'''),
    md("## Fraud labels by scenario"),
    code('''
labels = pd.DataFrame(summary["labels"])
by_scenario = (labels.groupby("scenario")[["fraud", "amount_at_risk"]].sum()
               .sort_values("amount_at_risk"))
fig, axes = plt.subplots(1, 2, figsize=(11, 6), sharey=True)
by_scenario["fraud"].plot.barh(ax=axes[0], title="labelled fraud rows")
by_scenario["amount_at_risk"].plot.barh(ax=axes[1], title="amount at risk (CNY)")
plt.tight_layout()
plt.show()
labels.sort_values("amount_at_risk", ascending=False).head(15)
'''),
    md("## A facility's month\n\nThe facility with the most money on fraud labels, in its busiest month."),
    code('''
with ws.connect() as con:
    fac = con.sql("""
        SELECT l.entity_id AS facility_id, f.facility_name, f.facility_type, f.level,
               sum(l.amount_at_risk) AS at_risk, string_agg(DISTINCT l.scenario, ', ') AS scenarios
        FROM labels l JOIN facilities f ON f.facility_id = l.entity_id
        WHERE l.entity_type = 'facility' AND l.is_fraud
        GROUP BY ALL ORDER BY at_risk DESC LIMIT 1""").df()
    fid = fac.facility_id[0]
    month = con.sql(f"""
        SELECT strftime(settle_time, '%Y-%m') AS m, count(*) AS n FROM settlements
        WHERE facility_id = '{fid}' GROUP BY 1 ORDER BY n DESC LIMIT 1""").df()["m"].iloc[0]
    daily = con.sql(f"""
        SELECT CAST(settle_time AS DATE) AS day, count(*) AS settlements,
               sum(fund_paid) AS fund_paid
        FROM settlements
        WHERE facility_id = '{fid}' AND strftime(settle_time, '%Y-%m') = '{month}'
        GROUP BY 1 ORDER BY 1""").df()
    items = con.sql(f"""
        SELECT c.item_class, c.item_name, sum(f.qty) AS qty, sum(f.amount) AS amount
        FROM fee_lines f JOIN settlements s USING (settlement_id)
        LEFT JOIN catalogue c USING (item_code)
        WHERE s.facility_id = '{fid}' AND strftime(s.settle_time, '%Y-%m') = '{month}'
        GROUP BY ALL ORDER BY amount DESC LIMIT 10""").df()
print(fid, month)
fac
'''),
    code('''
fig, ax = plt.subplots(figsize=(9, 3.5))
ax.bar(daily["day"], daily["fund_paid"])
ax.set_title(f"{fid}: fund paid per day in {month}")
ax.set_ylabel("CNY")
ax2 = ax.twinx()
ax2.plot(daily["day"], daily["settlements"], color="tab:red", marker=".")
ax2.set_ylabel("settlements", color="tab:red")
fig.autofmt_xdate()
plt.show()
items
'''),
    code(DONE),
]

# ---------------------------------------------------------------------------------------------
NOTEBOOKS["02_rules"] = [
    md("""
# 02 · The rule base

Rules are versioned data (`src/fraudscan/rules/packs/*.yaml`, see `docs/rules.md`). This notebook
lists the catalogue, screens every claim of a small synthetic workspace, adds a local rule file
written to a temporary directory, and checks one claim in the 3101 (事前) request shape.
"""),
    code(SETUP.format(tag="nb02")),
    code(WORLD),
    md("## The catalogue"),
    code('''
from fraudscan.rules import (
    RuleEngine,
    claim_to_request,
    iter_workspace_claims,
    load_rules,
    read_findings,
    screen,
)

FIELDS = ["id", "version", "name", "name_en", "check", "action", "severity", "national_code",
          "effective_from", "effective_to", "pack"]
rules = load_rules()
catalogue = pd.DataFrame([{f: getattr(r, f) for f in FIELDS} for r in rules.rules])
print(len(catalogue), "rule versions")
pd.crosstab(catalogue["check"], catalogue["action"]).head(40)
'''),
    code('''
catalogue.head(10)
'''),
    md("## Screening a workspace\n\n`screen` evaluates every rule set-wise in DuckDB and writes `rule_findings`."),
    code('''
res = screen(ws)
print(f"{res.n_findings} findings on {res.n_settlements} settlements / {res.n_lines} lines "
      f"in {res.seconds:.2f} s")
findings = read_findings(ws)
per_rule = (findings.groupby("rule_id").agg(hits=("rule_id", "size"), amount=("amount", "sum"))
            .join(catalogue.drop_duplicates("id").set_index("id")[["name_en", "action"]])
            .sort_values("amount"))
ax = per_rule["amount"].plot.barh(figsize=(7, 8), title="money flagged per rule (CNY)")
plt.show()
per_rule.sort_values("hits", ascending=False).head(15)
'''),
    code('''
pd.crosstab(findings["facility_id"], findings["severity"]).assign(
    total=lambda d: d.sum(axis=1)).sort_values("total", ascending=False).head(10)
'''),
    md("## Adding a local rule file\n\nA YAML file anywhere (here: the temp dir), loaded as an extra to the shipped packs."),
    code('''
local_dir = TMP / "local-rules"
local_dir.mkdir()
(local_dir / "local.yaml").write_text("""\\
pack: notebook-local
rules:
  - id: L01
    version: 1
    name: 本地药品限医疗机构级别提醒
    name_en: Local facility-level reminder for drugs
    rule_class: 药品限医疗机构级别
    national_code: null
    check: item_facility_level
    params: {classes: [western_drug, patent_tcm]}
    action: warn
    severity: low
    message: 本地提示：药品限定医疗机构级别
    message_en: local reminder on facility levels
    effective_from: 2024-01-01
""", encoding="utf-8")
local_rules = load_rules([local_dir])
print(len(rules.rules), "→", len(local_rules.rules), "rule versions")
res_local = screen(ws, local_rules)
local_findings = read_findings(ws)
print("L01 hits:", int((local_findings["rule_id"] == "L01").sum()),
      "| same hits as shipped R-rule:",
      int((local_findings["rule_id"] != "L01").sum()) == res.n_findings)
local_findings[local_findings["rule_id"] == "L01"].head()
'''),
    md("## Checking one claim (3101 shape)\n\nA workspace settlement with a blocking finding, turned into a 3101 request and judged in process."),
    code('''
import json

blocked = findings[findings["action"] == "block"]
sid = blocked["settlement_id"].iloc[0] if len(blocked) else findings["settlement_id"].iloc[0]
claim = next(iter_workspace_claims(ws, [sid]))
request = claim_to_request(claim)
print(json.dumps(request, ensure_ascii=False, indent=1, default=str)[:1500], "...")
'''),
    code('''
engine = RuleEngine.from_workspace(ws, rules=local_rules, state_path=TMP / "rules_state.sqlite")
t = time.perf_counter()
response = engine.check(request)
print(f"decision: {response.decision} ({(time.perf_counter() - t) * 1e3:.2f} ms)")
pd.DataFrame([{"rule": h.rule_id, "name": h.rule_name_en, "action": h.action,
               "amount": h.vola_amt, "lines": len(h.judge_result_detail_dtos)}
              for h in response.result])
'''),
    code('''
print(response.model_dump_json(indent=1)[:1200])
'''),
    code(DONE),
]

# ---------------------------------------------------------------------------------------------
NOTEBOOKS["03_features_and_peers"] = [
    md("""
# 03 · Features and peers

Features are built per month for claims, facilities, persons and staff (`docs/features.md`);
`_pct` columns are percentile ranks within the subject's peer group in the same month. This
notebook sets one facility against its peers and lists the screening leads (`docs/detectors.md`).
"""),
    code(SETUP.format(tag="nb03")),
    code(WORLD),
    code('''
import fraudscan.features as features
import fraudscan.leads as leads
from fraudscan.rules import screen

screen(ws)                  # facility features count rule findings
built = features.build(ws)
fac = features.load(ws, "facility")
print(fac.shape, f"{time.perf_counter() - T0:.1f} s")
fac.head()
'''),
    md("## The screening leads"),
    code('''
found = leads.run(ws)
per_detector = found.groupby("detector").agg(leads=("lead_id", "size"), amount=("amount", "sum"))
ax = per_detector.sort_values("amount")["amount"].plot.barh(
    figsize=(7, 5), title="money on leads per detector (CNY)")
plt.show()
per_detector.sort_values("leads", ascending=False)
'''),
    code('''
quality = leads.evaluate(ws)      # recall and precision against the injected labels
quality
'''),
    md("## One facility against its peers\n\nThe hospital with the most lead money. The bands show every facility of its type (a small city has few of each level); the `_pct` features further down compare within type, level and district, as `features.build` does."),
    code('''
hospitals = fac.loc[~fac["facility_type"].str.contains("pharmacy"), "facility_id"]
fid = found[found["facility_id"].isin(hospitals)].groupby("facility_id")["amount"].sum().idxmax()
me = fac[fac["facility_id"] == fid].sort_values("period")
ftype, level = me["facility_type"].iloc[0], me["facility_level"].iloc[0]
peers = fac[fac["facility_type"] == ftype]
print(fid, ftype, "level", level, "|", peers["facility_id"].nunique(), "peer facilities")
found[found["facility_id"] == fid][["detector", "period", "score", "amount", "evidence"]].head(10)
'''),
    code('''
metrics = ["avg_los", "bed_occupancy", "cost_per_visit", "drug_share", "findings_per_100",
           "fund_paid"]
band = peers.groupby("period")[metrics].quantile([0.1, 0.5, 0.9]).unstack()
fig, axes = plt.subplots(2, 3, figsize=(13, 6), sharex=True)
for ax, m in zip(axes.flat, metrics, strict=True):
    b = band[m]
    ax.fill_between(b.index, b[0.1], b[0.9], alpha=0.25, label="peers P10–P90")
    ax.plot(b.index, b[0.5], "--", label="peer median")
    ax.plot(me["period"], me[m], "o-", color="tab:red", label=fid)
    ax.set_title(m)
    ax.tick_params(axis="x", rotation=90)
axes.flat[0].legend(fontsize=8)
plt.tight_layout()
plt.show()
'''),
    md("## Percentiles\n\nThe facility's percentile rank among its peers for each `_pct` indicator and month (1 = highest)."),
    code('''
pct_cols = [c for c in fac.columns if c.endswith("_pct")]
heat = me.set_index("period")[pct_cols].T
fig, ax = plt.subplots(figsize=(10, 7))
im = ax.imshow(heat.to_numpy(dtype=float), aspect="auto", cmap="RdYlGn_r", vmin=0, vmax=1)
ax.set_yticks(range(len(heat)), [c.removesuffix("_pct") for c in heat.index])
ax.set_xticks(range(heat.shape[1]), heat.columns, rotation=90)
fig.colorbar(im, label="percentile among peers")
ax.set_title(f"{fid}: percentile among {ftype} level-{level} peers in its district")
plt.tight_layout()
plt.show()
heat.mean(axis=1).sort_values(ascending=False).head(8).rename("mean percentile").to_frame()
'''),
    md("## Evidence of the best lead"),
    code('''
best = found.sort_values("score", ascending=False).iloc[0]
print(best["detector"], best["subject_type"], best["subject_id"], best["period"])
leads.evidence(best)
'''),
    code(DONE),
]

# ---------------------------------------------------------------------------------------------
NOTEBOOKS["04_collusion_graphs"] = [
    md("""
# 04 · Collusion graphs

`fraudscan.graph.build` links persons, staff, facilities and pharmacies (shared visits, resale
chains, village groups …), finds Leiden communities and scores them as rings
(`docs/graphs.md`). Here: the rings of a small synthetic city, one drawn with networkx, its
members and their roles, and how well the injected ring was recovered.
"""),
    code(SETUP.format(tag="nb04")),
    code(WORLD),
    code(PIPELINE),
    md("## The rings"),
    code('''
rings = graph.read_rings(ws)
ax = rings.set_index("ring_id")["score"].sort_values().plot.barh(
    figsize=(6, 0.3 * len(rings) + 1), title="ring score")
plt.show()
rings.head(10)
'''),
    md("## Drawing the top ring"),
    code('''
import networkx as nx

ring_id = rings["ring_id"].iloc[0]
G = graph.ring_graph(ws, ring_id)
print(G)
COLORS = {"organiser": "tab:red", "recruiter": "tab:pink", "hub": "tab:brown",
          "patient": "tab:orange", "doctor": "tab:blue", "facility": "tab:green",
          "pharmacy": "tab:purple", "group": "tab:gray"}
roles = nx.get_node_attributes(G, "role")
pos = nx.spring_layout(G, seed=1, weight="weight")
fig, ax = plt.subplots(figsize=(9, 7))
nx.draw_networkx_edges(G, pos, ax=ax, alpha=0.3,
                       width=[0.5 + min(d["weight"], 10) / 3 for *_, d in G.edges(data=True)])
for role, color in COLORS.items():
    nodes = [n for n, r in roles.items() if r == role]
    nx.draw_networkx_nodes(G, pos, nodelist=nodes, node_color=color, ax=ax, label=role,
                           node_size=[80 + 10 * G.nodes[n]["degree"] for n in nodes])
other = [n for n, r in roles.items() if r not in COLORS]
nx.draw_networkx_nodes(G, pos, nodelist=other, node_color="black", ax=ax, label="other")
# ids for everyone but patients (group nodes are villages/units named in Chinese: show the kind)
names = {n: G.nodes[n]["node_id"] if G.nodes[n]["node_id"].isascii() else G.nodes[n]["node_type"]
         for n in G if roles.get(n) != "patient"}
nx.draw_networkx_labels(G, pos, names, font_size=8, ax=ax)
ax.legend(scatterpoints=1, fontsize=8)
ax.set_title(f"ring {ring_id} (score {rings['score'].iloc[0]:.2f})")
ax.axis("off")
plt.show()
'''),
    md("## Members and roles"),
    code('''
members = graph.read_ring_members(ws, ring_id)
print(members["role"].value_counts().to_dict())
edge_kinds = pd.Series([k for *_, d in G.edges(data=True) for k in d["kinds"]]).value_counts()
print("edge kinds:", edge_kinds.to_dict())
members.sort_values("strength", ascending=False).head(12)
'''),
    code('''
all_members = graph.read_ring_members(ws)
pd.crosstab(all_members["ring_id"], all_members["role"])
'''),
    md("## Recovered against the injected rings"),
    code('''
per_group, overall = graph.evaluate_rings(ws)
print(overall)
per_group
'''),
    code(DONE),
]

# ---------------------------------------------------------------------------------------------
NOTEBOOKS["05_train_models_mlflow"] = [
    md("""
# 05 · Training the 3+1 models with MLflow

`fraudscan.models.train_all` trains the claim, facility, person and ring models (plus staff),
evaluates them with grouped cross-validation (no facility in both train and test) and logs every
run to MLflow (`docs/models/`). The tracking store here is a SQLite file in this notebook's
temporary directory, so nothing is written to the repository's `mlflow/`.
"""),
    code(SETUP.format(tag="nb05")),
    code('''
import logging
import os

import mlflow

logging.getLogger("mlflow").setLevel(logging.ERROR)   # keep the notebook readable
URI = f"sqlite:///{TMP / 'mlflow.db'}"
os.environ["MLFLOW_TRACKING_URI"] = URI       # also for anything that reads the environment
mlflow.set_tracking_uri(URI)
URI
'''),
    code(WORLD),
    code(PIPELINE),
    md("## Training and grouped-CV evaluation\n\nLight settings for a notebook: 3 folds, fewer trees."),
    code('''
from fraudscan.models import train_all

LIGHT = {s: {"n_estimators": 40} for s in ("claim", "facility", "person", "staff", "ring")}
res = train_all(ws, n_splits=3, hyper=LIGHT, seed=0, tracking_uri=URI)
# MLflow logging in train_all switches matplotlib to the Agg backend; back to inline plots
%matplotlib inline
print(res.summary())
'''),
    code('''
oof = pd.DataFrame({s: m.get("oof", {}) for s, m in res.metrics.items()}).T
cols = [c for c in ("n", "positives", "roc_auc", "pr_auc", "base_rate", "precision_at_budget",
                    "recall_at_budget", "brier") if c in oof.columns]
ax = oof[["roc_auc", "pr_auc", "base_rate"]].astype(float).plot.bar(
    figsize=(7, 3.5), title="grouped out-of-fold metrics", rot=0)
ax.set_ylim(0, 1.05)
plt.show()
oof[cols]
'''),
    code('''
recall = pd.DataFrame({s: m.get("scenario_recall", {}) for s, m in res.metrics.items()})
recall.dropna(how="all").round(2)          # recall at the inspection budget, per injected scenario
'''),
    md("## Opening the run"),
    code('''
client = mlflow.MlflowClient(URI)
run = client.get_run(res.runs["claim"]["run_id"])
print(run.info.run_name, run.info.status, run.info.artifact_uri)
pd.Series(run.data.params).head(20)
'''),
    code('''
pd.Series(run.data.metrics).sort_index().head(30)
'''),
    code('''
def walk(path=None):
    """Every artifact file of the run (list_artifacts lists one directory)."""
    for a in client.list_artifacts(run.info.run_id, path):
        yield from walk(a.path) if a.is_dir else [a.path]


arts = list(walk())
print(arts)
pngs = [p for p in arts if p.endswith(".png")]
if pngs:
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=pngs[0],
                                                dst_path=str(TMP / "artifacts"), tracking_uri=URI)
    plt.figure(figsize=(5, 4))
    plt.imshow(plt.imread(local))
    plt.axis("off")
    plt.title(pngs[0])
    plt.show()
'''),
    code('''
for rm in client.search_registered_models():
    champ = rm.aliases.get("champion") if hasattr(rm, "aliases") else None
    print(rm.name, "champion → version", champ)
'''),
    md("## Comparing two runs\n\nThe person model again with another seed and bigger trees; the two runs side by side."),
    code('''
res2 = train_all(ws, ["person"], n_splits=3, seed=7,
                 hyper={"person": {"n_estimators": 120, "num_leaves": 31}}, tracking_uri=URI)
%matplotlib inline
ids = [res.runs["person"]["run_id"], res2.runs["person"]["run_id"]]
runs = mlflow.search_runs(experiment_names=["fraudscan"])   # the store set above
runs = runs[runs["run_id"].isin(ids)].set_index("run_id").loc[ids]
show = [c for c in ("params.seed", "params.n_estimators", "params.num_leaves",
                    "metrics.oof.roc_auc", "metrics.oof.pr_auc",
                    "metrics.oof.precision_at_budget", "metrics.oof.recall_at_budget")
        if c in runs.columns]
comparison = runs[show].T.set_axis(["run A (seed 0)", "run B (seed 7)"], axis=1)
comparison
'''),
    code('''
m = [c for c in comparison.index if c.startswith("metrics.")]
short = comparison.loc[m].astype(float).rename(index=lambda c: c.removeprefix("metrics.oof."))
ax = short.plot.bar(figsize=(7, 3.5), rot=0, title="person model: two runs")
ax.set_ylim(0, 1.05)
plt.show()
'''),
    code(DONE),
]

# ---------------------------------------------------------------------------------------------
NOTEBOOKS["06_explain_facility"] = [
    md("""
# 06 · Explaining a facility

Why does a facility rank high? The facility model's SHAP values (LightGBM TreeSHAP, with the
peer-outlier input spread over the indicators), the sentences an inspector reads, and the
facility's grade (分级分类监管, `docs/grading.md`) over two periods with the reasons of its history.
"""),
    code(SETUP.format(tag="nb06")),
    code(WORLD),
    code(PIPELINE),
    code('''
from fraudscan.models import load_model, read_inputs, train_all

LIGHT = {s: {"n_estimators": 40} for s in ("claim", "facility", "person", "staff", "ring")}
res = train_all(ws, n_splits=3, hyper=LIGHT, track=False)   # no MLflow needed here
print(res.summary())
'''),
    md("## The ranked facilities"),
    code('''
from fraudscan.suspects import explain_rows, suspects

top = suspects(ws, "facility", top=10)
top[["rank", "facility_id", "name", "facility_type", "risk_score", "expected_recoverable",
     "scenarios", "reason_en"]]
'''),
    md("## SHAP values of the facility model"),
    code('''
import numpy as np
import shap

model = load_model(ws, "facility")
X, ids, peer = read_inputs(ws, "facility")
X = X[model.feature_names_]
contrib = model.contributions(X.to_numpy(dtype=float), peer)
expl = shap.Explanation(values=contrib, data=X.to_numpy(dtype=float),
                        feature_names=list(X.columns))
shap.plots.beeswarm(expl, max_display=12, show=False)
plt.title("facility model: SHAP values of every facility")
plt.show()
'''),
    code('''
fid = top["facility_id"].iloc[0]
i = int(np.flatnonzero(ids == fid)[0])
shap.plots.bar(expl[i], max_display=10, show=False)
plt.title(f"{fid}: what pushes its risk up or down")
plt.show()
'''),
    md("## The reasons an inspector reads"),
    code('''
reasons = explain_rows(ws, "facility", [fid], top=5)[fid]
pd.DataFrame([r.__dict__ for r in reasons])[["feature", "value", "peer_p95", "contribution",
                                              "zh", "en"]]
'''),
    md("""
## Its grade and grade history

Grading appends each quarter to the history. A quarter is graded from what was known by its last
day (findings, leads, outcomes; the facility model re-scored on inputs cut there), so re-grading
a past quarter gives the same points. Here an inspector confirms fraud at the facility in
November (`fraudscan.outcomes.record_outcome`): 2025Q3 does not see it, and the 2025Q4 grade
overrides it to red, saying why.
"""),
    code('''
from fraudscan.grading import grade, read_history
from fraudscan.outcomes import record_outcome

g3 = grade(ws, "2025Q3")
record_outcome(ws, "facility", fid, "confirmed", amount=12_000, on="2025-11-20",
               note="notebook example: on-site inspection confirmed bed overuse")
g4 = grade(ws, "2025Q4")
g4.counts
'''),
    code('''
history = read_history(ws)
mine = history[history["facility_id"] == fid].sort_values("period")
cols = [c for c in ("period", "points", "score_tier", "raw_tier", "previous_tier", "tier",
                    "change", "reason_zh", "reason_en") if c in mine.columns]
for _, row in mine.iterrows():
    print(row["period"], row["tier"], "|", row.get("reason_en", ""))
mine[cols]
'''),
    code('''
pts = [c for c in history.columns if c.startswith("pts_")]
last = history[history["period"] == "2025Q4"].set_index("facility_id")
if pts:
    ax = last.sort_values("points")[pts].plot.barh(stacked=True, figsize=(8, 7),
                                                   title="2025Q4 points by component")
    ax.set_xlabel("points (of 1,000)")
    plt.show()
pd.crosstab(history["period"], history["tier"])
'''),
    code(DONE),
]

# ---------------------------------------------------------------------------------------------
NOTEBOOKS["07_medicare_real_data"] = [
    md("""
# 07 · Real data: the Medicare provider-fraud files

The Kaggle "Healthcare Provider Fraud Detection" inpatient claims (US data, US codes), mapped onto
the canonical tables: providers → facilities, physicians → staff, beneficiaries → persons,
provider labels → facility labels (`docs/importing.md`). The files are not in the repository; they
are looked for in `shared/data/medicare-provider-fraud` beside the repository (or set
`FRAUDSCAN_MEDICARE_DIR`). The facility model is trained and evaluated with grouped CV.
"""),
    code(SETUP.format(tag="nb07")),
    code('''
import os


def find_medicare() -> Path:
    """The data directory: $FRAUDSCAN_MEDICARE_DIR, else shared/data/... above the cwd."""
    if os.environ.get("FRAUDSCAN_MEDICARE_DIR"):
        return Path(os.environ["FRAUDSCAN_MEDICARE_DIR"])
    for base in [Path.cwd(), *Path.cwd().parents]:
        cand = base / "shared" / "data" / "medicare-provider-fraud"
        if cand.is_dir():
            return cand
    raise FileNotFoundError("medicare-provider-fraud data not found above " + str(Path.cwd()))


DATA = find_medicare()
sorted(p.name for p in DATA.iterdir())
'''),
    md("## Import"),
    code('''
from fraudscan.importers import import_medicare

ws = import_medicare(DATA, TMP / "medicare")
summary = fraudscan.workspace_summary(ws)
print(f"imported in {time.perf_counter() - T0:.1f} s; valid:", fraudscan.validate_workspace(ws).ok)
pd.Series(summary["row_counts"]).to_frame("rows")
'''),
    code('''
pd.DataFrame(summary["labels"])
'''),
    code('''
with ws.connect() as con:
    per_provider = con.sql("""
        SELECT s.facility_id, count(*) AS claims, sum(s.fund_paid) AS fund_paid,
               coalesce(bool_or(l.is_fraud), false) AS fraud
        FROM settlements s
        LEFT JOIN labels l ON l.entity_type = 'facility' AND l.entity_id = s.facility_id
        GROUP BY 1""").df()
fig, ax = plt.subplots(figsize=(7, 3.5))
for flag, d in per_provider.groupby("fraud"):
    ax.hist(d["claims"], bins=60, alpha=0.6, log=True, label=f"fraud={flag}")
ax.set_xlabel("inpatient claims per provider")
ax.legend()
plt.show()
per_provider.groupby("fraud")[["claims", "fund_paid"]].describe().T.head(8)
'''),
    md("## Features and the facility model (grouped CV)\n\nEach provider is its own group, so no provider's claims are in both train and test folds."),
    code('''
import fraudscan.features as features
from fraudscan.models import read_scores, train_all

features.build(ws)
res = train_all(ws, ["facility"], n_splits=3, track=False)
print(res.summary())
pd.Series(res.metrics["facility"]["oof"]).to_frame("out-of-fold")
'''),
    code('''
from sklearn.metrics import precision_recall_curve, roc_curve

scores = read_scores(ws, "facility")
lab = scores.dropna(subset=["label", "oof_risk"])
p, r, _ = precision_recall_curve(lab["label"].astype(int), lab["oof_risk"])
fpr, tpr, _ = roc_curve(lab["label"].astype(int), lab["oof_risk"])
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
axes[0].plot(r, p)
axes[0].set(xlabel="recall", ylabel="precision", title="grouped out-of-fold PR")
axes[1].plot(fpr, tpr)
axes[1].plot([0, 1], [0, 1], "k:")
axes[1].set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
for y, d in lab.groupby("label"):
    axes[2].hist(d["oof_risk"], bins=40, alpha=0.6, label=f"label={int(y)}")
axes[2].set(xlabel="out-of-fold risk", title="risk by label")
axes[2].legend()
plt.tight_layout()
plt.show()
'''),
    md("## The ranked providers with reasons"),
    code('''
from fraudscan.suspects import suspects

suspects(ws, "facility", top=10)[["rank", "facility_id", "risk_score", "amount_at_stake",
                                  "expected_recoverable", "reason_en"]]
'''),
    code(DONE),
]


def clear() -> None:
    """Strip outputs and execution counts from every notebook here, in place."""
    for path in sorted(HERE.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for c in nb.cells:
            if c.cell_type == "code":
                c.outputs, c.execution_count = [], None
        nbformat.write(nb, path)
        print("cleared", path.relative_to(HERE.parent))


def main() -> None:
    if "--clear" in sys.argv[1:]:
        clear()
        return
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook(cells=cells, metadata={
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"}})
        for i, cell in enumerate(nb.cells):   # stable ids: rebuilding changes only what changed
            cell.id = f"c{i:02d}"
        nbformat.validate(nb)
        path = HERE / f"{name}.ipynb"
        nbformat.write(nb, path)
        print("wrote", path.relative_to(HERE.parent))


if __name__ == "__main__":
    main()
