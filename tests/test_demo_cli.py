"""End to end through the command line: ``fraudscan demo`` on a small city, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb


def test_demo_runs_the_whole_pipeline(tmp_path: Path) -> None:
    ws = tmp_path / "demo"
    store = tmp_path / "mlflow"
    env = {**os.environ, "FRAUDSCAN_MLFLOW_DIR": str(store)}
    exe = Path(sys.executable).with_name("fraudscan")
    p = subprocess.run([str(exe), "demo", "--out", str(ws), "--persons", "1500", "--seed", "3",
                        "--top", "3", "--lang", "en"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
                       check=False)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    # every stage ran and the user is told what to open next
    for step in ("generating", "screening every claim", "features", "screening models",
                 "collusion rings", "training", "grading", "suspect facilities", "red",
                 "/wb/", "mlflow ui"):
        assert step in out, (step, out[-3000:])
    # what it left behind: derived tables in the workspace, runs and champions in the store
    con = duckdb.connect(str(ws / "fraudscan.duckdb"), read_only=True)
    try:
        tables = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()}
        assert {"rule_findings", "leads", "rings"} <= tables, tables
        n = con.execute("SELECT count(*) FROM rule_findings").fetchone()
        assert n is not None and n[0] > 0
    finally:
        con.close()
    assert (store / "mlflow.db").exists()
