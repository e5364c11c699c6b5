"""Screening-model API: absent tables, thresholds files, the leads table and evaluation."""

from __future__ import annotations

import pytest

import fraudscan.leads as leads
from _leads_world import SCENARIOS, World
from fraudscan.leads.config import ConfigError, load_config


def _world(tmp_path, *names: str, fee_lines: bool = True):
    w = World()
    for name in names:
        for sid in SCENARIOS[name](w, True):
            w.label("settlement", sid, name)
    return w.write(tmp_path / "w", fee_lines=fee_lines)


def test_absent_optional_tables_skip_with_reason(tmp_path) -> None:
    ws = _world(tmp_path, "split_admission", "phantom_bed", fee_lines=False)
    df = leads.run(ws)
    runs = {r["detector"]: r for r in df.attrs["runs"]}
    for name in ("phantom_bed", "templated_items", "dialysis_overbilling", "item_switching"):
        assert runs[name]["status"] == "skipped" and "needs" in runs[name]["note"]
    assert runs["bed_overuse"]["status"] == "ok"
    assert runs["split_admission"]["leads"] == 1
    assert "fee_lines absent" in runs["doctor_shopping"]["note"]
    assert set(df["detector"]) == {"split_admission"}


def test_leads_table_rerun_replaces_only_that_detector(tmp_path) -> None:
    ws = _world(tmp_path, "split_admission", "care_after_death")
    leads.run(ws)
    stored = leads.read_leads(ws)
    assert set(stored["detector"]) == {"split_admission", "care_after_death"}
    assert stored["lead_id"].is_unique
    leads.run(ws, detectors=["split_admission"], config={"split_admission": {"max_gap_days": 1}})
    stored = leads.read_leads(ws)
    assert set(stored["detector"]) == {"care_after_death"}
    assert list(stored.columns) == list(leads.LEAD_COLUMNS)
    assert len(stored["settlement_ids"].iat[0]) >= 1


def test_lead_ids_are_stable(tmp_path) -> None:
    ws = _world(tmp_path, "split_admission")
    a = leads.run(ws, detectors=["split_admission"], write=False)
    b = leads.run(ws, detectors=["split_admission"], write=False)
    assert list(a["lead_id"]) == list(b["lead_id"])


def test_evaluate_scores_against_labels(tmp_path) -> None:
    ws = _world(tmp_path, "split_admission", "care_after_death")
    leads.run(ws)
    ev = leads.evaluate(ws).set_index("detector")
    assert ev.loc["split_admission", "recall"] == 1.0
    assert ev.loc["split_admission", "precision"] == 1.0
    assert ev.loc["care_after_death", "recall"] == 1.0
    assert ev.loc["phantom_bed", "leads"] == 0


def test_config_files(tmp_path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text("split_admission:\n  max_gap_days: 7\n")
    cfg = load_config(f)
    assert cfg["split_admission"]["max_gap_days"] == 7
    assert cfg["split_admission"]["core_gap_days"] == 7  # the rest stay default
    assert load_config()["split_admission"]["max_gap_days"] == 15
    f.write_text("split_admission: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(f)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_config({"nope": {}})


def test_every_detector_is_documented_and_configured() -> None:
    cfg = leads.default_config()
    for name, det in leads.all_detectors().items():
        assert name in cfg, name
        assert det.description and det.model and det.title
    assert set(leads.all_detectors()) >= {
        "phantom_bed", "fake_admission", "split_admission", "low_indication_admission",
        "group_admission", "templated_items", "bed_overuse", "drug_resale", "item_switching",
        "doctor_shopping", "group_visits", "dialysis_overbilling", "rehab_overbilling",
        "card_cashout", "care_after_death", "drg_upcoding"}
