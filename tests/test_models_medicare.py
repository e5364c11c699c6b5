"""Facility model on the real Medicare provider-fraud files (skipped when they are absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "medicare-provider-fraud"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/medicare-provider-fraud absent"),
]


def test_facility_model_scores_every_provider(tmp_path: Path) -> None:
    import fraudscan.features as features
    from fraudscan.importers.medicare import import_medicare
    from fraudscan.models import train_all
    from fraudscan.suspects import export, suspects

    ws = import_medicare(DATA, tmp_path / "mc")
    features.build(ws)
    res = train_all(ws, ["facility"], n_splits=3, track=False)
    oof = res.metrics["facility"]["oof"]
    assert oof["n"] == 1464 and oof["positives"] == 308  # only labelled providers evaluated
    assert oof["roc_auc"] > 0.85 and oof["pr_auc"] > 0.6, oof
    out = export(suspects(ws, "facility", top=None, reasons=False), tmp_path / "scores.csv")
    df = pd.read_csv(out)
    assert len(df) == 2092 and df["facility_id"].str.startswith("PRV").all()
    assert np.isfinite(df["risk_score"]).all()
