"""The scoring service in process (Starlette TestClient): checks, auth, audit, errors, swaps."""

from __future__ import annotations

import csv
import io
import json
import shutil
import threading
import time
import warnings

import numpy as np
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from starlette.testclient import TestClient

from fraudscan.rules import claim_to_request, iter_workspace_claims
from fraudscan.serving import AccessFile, create_app, verify_audit
from fraudscan.serving.access import mask_id
from fraudscan.serving.app import MAX_CHECK_BYTES
from fraudscan.serving.demo import served_copy
from fraudscan.workspace import Workspace


@pytest.fixture(scope="module")
def served(small_world: Workspace, tmp_path_factory: pytest.TempPathFactory):
    """A writable copy of the small world with leads and rings, and one token per role."""
    ws = served_copy(small_world.path, tmp_path_factory.mktemp("serving") / "ws",
                     cache=tmp_path_factory.getbasetemp() / "served_world")
    af = AccessFile(ws.path)
    tokens = {
        "admin": af.create("admin", name="root")[0],
        "supervisor": af.create("supervisor")[0],
        "inspector": af.create("inspector", ["D1"], name="insp-d1")[0],
        "settlement": af.create("settlement", name="his")[0],
    }
    app = create_app(ws.path, poll_seconds=0)
    with TestClient(app) as client:
        yield ws, client, tokens, app


def H(tokens: dict, role: str) -> dict:
    return {"authorization": f"Bearer {tokens[role]}"}


@pytest.fixture(scope="module")
def requests_30(served):
    ws = served[0]
    claims = [c for c in iter_workspace_claims(ws) if len(c.lines) >= 5][:40]
    return [claim_to_request(c) for c in claims]


def test_check_shape_and_settlement_role(served, requests_30):
    _, c, t, _ = served
    r = c.post("/v1/check", json=requests_30[0], headers=H(t, "settlement"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decision"] in ("block", "warn", "pass")
    assert isinstance(body["result"], list)
    assert body["score"]["status"] == "missing"  # no champion in this workspace
    assert "no champion" in body["score"]["reason"]
    assert r.headers["x-score-status"] == "missing"
    # national envelope accepted unchanged
    env = {"infno": "3101", "input": {"data": requests_30[0]}}
    assert c.post("/v1/check", json=env, headers=H(t, "settlement")).status_code == 200
    # the settlement token may only check
    for path in ("/v1/suspects", "/v1/facilities/X", "/v1/outcomes", "/v1/audit"):
        assert c.get(path, headers=H(t, "settlement")).status_code == 403
    assert c.get("/v1/suspects").status_code == 401
    assert c.get("/v1/suspects", headers={"authorization": "Bearer nope"}).status_code == 401


def test_bad_input_gets_clear_4xx(served, requests_30):
    _, c, t, _ = served
    h = H(t, "settlement")
    r = c.post("/v1/check", content=b"{not json", headers=h)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = c.post("/v1/check", json={"patient_dtos": [{"patn_id": "P1"}]}, headers=h)
    assert r.status_code == 422 and "patient_dtos[0].gend" in r.json()["error"]["message"]
    bad = json.loads(json.dumps(requests_30[0]))
    bad["patient_dtos"][0]["fsi_encounter_dtos"][0]["fsi_order_dtos"][0]["pric"] = "abc"
    r = c.post("/v1/check", json=bad, headers=h)
    assert r.status_code == 422 and "pric" in r.json()["error"]["message"]
    r = c.post("/v1/check", content=b"x" * (MAX_CHECK_BYTES + 1), headers=h)
    assert r.status_code == 413
    assert c.post("/v1/check", content=b"", headers=h).status_code == 400
    assert c.post("/v1/check", json=[], headers=h).status_code == 422
    assert c.get("/v1/check", headers=h).status_code == 405
    assert c.get("/v1/nothing").status_code == 404
    a = H(t, "admin")
    assert c.get("/v1/leads/nope", headers=a).status_code == 404
    assert c.get("/v1/facilities/nope", headers=a).status_code == 404
    assert c.get("/v1/rings/nope", headers=a).status_code == 404
    assert c.get("/v1/suspects?limit=abc", headers=a).status_code == 400
    assert c.get("/v1/suspects?min_score=x", headers=a).status_code == 400
    r = c.post("/v1/outcomes", json={"lead_id": "nope", "outcome": "confirmed"}, headers=a)
    assert r.status_code == 404
    r = c.post("/v1/outcomes", json={"lead_id": "x", "outcome": "maybe"}, headers=a)
    assert r.status_code == 422
    r = c.post("/v1/check/batch", json={"requests": []}, headers=h)
    assert r.status_code == 422
    # and it still serves
    assert c.post("/v1/check", json=requests_30[0], headers=h).status_code == 200


def test_batch(served, requests_30):
    _, c, t, _ = served
    reqs = requests_30[:10]
    dup = json.loads(json.dumps(reqs[0]))
    orders = dup["patient_dtos"][0]["fsi_encounter_dtos"][0]["fsi_order_dtos"]
    orders.append(dict(orders[0]))  # duplicate rx_id: an error for this item only
    r = c.post("/v1/check/batch", json={"requests": [*reqs, dup]}, headers=H(t, "settlement"))
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["n"] == 11 and len(b["results"]) == 11
    assert b["decisions"]["error"] == 1 and "duplicate rx_id" in b["results"][-1]["error"]
    singles = [c.post("/v1/check", json=q, headers=H(t, "settlement")).json()["decision"]
               for q in reqs]
    assert [x["decision"] for x in b["results"][:10]] == singles


class _Boom:
    version = "boom/1"

    def score(self, claims, findings=None):
        raise RuntimeError("model exploded")


class _Const:
    def __init__(self, v: float, version: str):
        self.v, self.version = v, version

    def score(self, claims, findings=None):
        time.sleep(0.001)
        return np.full(len(claims), self.v)


def test_scoring_failure_falls_back_to_rules(served, requests_30):
    _, c, t, app = served
    svc = app.state.service
    holder = svc.scorer.models
    old = holder.scorer
    try:
        holder.scorer = _Boom()
        r = c.post("/v1/check", json=requests_30[1], headers=H(t, "settlement"))
        assert r.status_code == 200
        b = r.json()
        assert b["score"]["status"] == "missing" and "model exploded" in b["score"]["reason"]
        assert b["decision_basis"] == "rules"
        assert r.headers["x-score-status"] == "missing"
        holder.scorer = _Const(0.95, "const/1")
        b = c.post("/v1/check", json=requests_30[1], headers=H(t, "settlement")).json()
        assert b["score"]["status"] == "ok" and b["score"]["value"] == 0.95
        assert b["decision"] in ("warn", "block")
    finally:
        holder.scorer = old


def test_rule_engine_failure_is_not_a_silent_pass(served, requests_30, monkeypatch):
    _, c, t, app = served
    svc = app.state.service

    def broken(*a, **k):
        raise RuntimeError("state store unreadable")

    monkeypatch.setattr(svc.scorer, "_checker", broken)
    r = c.post("/v1/check", json=requests_30[0], headers=H(t, "settlement"))
    assert r.status_code == 503
    assert "NOT checked" in r.json()["error"]["message"]


def test_champion_swap_without_downtime(served, requests_30):
    """Swap the scorer while 4 threads check: every answer is 200 and from one of the two."""
    _, c, t, app = served
    holder = app.state.service.scorer.models
    old = holder.scorer
    holder.scorer = _Const(0.1, "m/1")
    seen: list[str] = []
    errors: list[int] = []
    stop = threading.Event()

    def worker():
        while not stop.is_set():
            r = c.post("/v1/check", json=requests_30[2], headers=H(t, "settlement"))
            if r.status_code != 200:
                errors.append(r.status_code)
            else:
                seen.append(r.json()["score"]["model_version"])

    th = [threading.Thread(target=worker) for _ in range(4)]
    for x in th:
        x.start()
    time.sleep(0.3)
    holder.scorer = _Const(0.2, "m/2")  # what ModelHolder.reload does after loading
    time.sleep(0.3)
    stop.set()
    for x in th:
        x.join()
    holder.scorer = old
    assert not errors
    assert set(seen) == {"m/1", "m/2"}
    assert seen[-1] == "m/2"


def test_inspector_scope_masking_and_export(served):
    ws, c, t, _ = served
    r = c.get("/v1/suspects?limit=1000", headers=H(t, "inspector"))
    assert r.status_code == 200
    items = r.json()["items"]
    assert items and {x["district"] for x in items} == {"D1"}
    everything = c.get("/v1/suspects?limit=1000", headers=H(t, "admin")).json()
    assert everything["total"] > r.json()["total"]
    persons_admin = [x for x in everything["items"] if x["subject_type"] == "person"]
    if persons_admin:
        sup = c.get("/v1/suspects?limit=1000&subject_type=person",
                    headers=H(t, "supervisor")).json()["items"]
        assert sup[0]["subject_id"] == persons_admin[0]["subject_id"]
    ins_persons = [x for x in items if x["subject_type"] == "person"]
    for x in ins_persons:
        assert "*" in x["subject_id"]
    # leads outside D1 are invisible to the inspector
    other = next(x for x in everything["items"] if x["district"] != "D1")
    assert c.get(f"/v1/leads/{other['lead_id']}", headers=H(t, "inspector")).status_code == 404
    fac_other = next(x["facility_id"] for x in everything["items"]
                     if x["district"] != "D1" and x["facility_id"])
    assert c.get(f"/v1/facilities/{fac_other}",
                 headers=H(t, "inspector")).status_code == 404
    # filters and paging
    det = items[0]["detector"]
    f = c.get(f"/v1/suspects?detector={det}&limit=2&offset=0", headers=H(t, "inspector")).json()
    assert all(x["detector"] == det for x in f["items"]) and len(f["items"]) <= 2
    # export: CSV, masked, audited
    r = c.get("/v1/suspects/export?subject_type=person", headers=H(t, "inspector"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    for row in rows:
        assert "*" in row["subject_id"]
        assert row["district"] == "D1"
    log = (ws.path / "serve" / "audit.jsonl").read_text().splitlines()
    assert any(json.loads(x)["action"] == "export" for x in log)


def test_facility_grade_ring_lead(served):
    _, c, t, _ = served
    a = H(t, "admin")
    items = c.get("/v1/suspects?limit=1000", headers=a).json()["items"]
    fid = next(x["facility_id"] for x in items if x["facility_id"])
    prof = c.get(f"/v1/facilities/{fid}", headers=a).json()
    assert prof["grade"]["grade"] in "ABCD"
    assert {x["indicator"] for x in prof["indicators"]} >= {"amount_per_claim", "drug_share"}
    assert c.get(f"/v1/facilities/{fid}/grade", headers=a).json()["facility_id"] == fid
    assert isinstance(c.get(f"/v1/facilities/{fid}/grades", headers=a).json()["history"], list)
    lead = c.get(f"/v1/leads/{items[0]['lead_id']}", headers=a).json()
    assert lead["reasons"]["source"] in ("shap", "evidence")
    rings = c.get("/v1/suspects?limit=1", headers=a)
    assert rings.status_code == 200
    from fraudscan.graph import read_rings

    rid = read_rings(served[0]).iloc[0]["ring_id"]
    ring = c.get(f"/v1/rings/{rid}", headers=a).json()
    assert ring["ring"]["ring_id"] == rid and ring["members"]
    ins = c.get(f"/v1/rings/{rid}", headers=H(t, "supervisor")).json()
    persons = [m for m in ins["members"] if m["node_type"] == "person"]
    assert not persons or "*" not in persons[0]["node_id"]  # supervisors see ids


def test_outcome_recorded_and_audited(served):
    ws, c, t, _ = served
    h = H(t, "inspector")
    lead = c.get("/v1/suspects?limit=1", headers=h).json()["items"][0]
    r = c.post("/v1/outcomes", json={"lead_id": lead["lead_id"], "outcome": "confirmed",
                                     "amount_recovered": 1234.5, "note": "查实"}, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["outcome"] == "confirmed"
    listed = c.get(f"/v1/outcomes?lead_id={lead['lead_id']}", headers=h).json()["items"]
    assert listed[0]["note"] == "查实"
    again = c.get("/v1/suspects?status=confirmed&limit=1000", headers=h).json()["items"]
    assert lead["lead_id"] in {x["lead_id"] for x in again}
    ok, n = verify_audit(ws.path / "serve" / "audit.jsonl")
    assert ok and n > 0
    recs = [json.loads(x) for x in (ws.path / "serve" / "audit.jsonl").read_text().splitlines()]
    assert any(x["action"] == "outcome" and x["name"] == "insp-d1" for x in recs)
    assert any(x["action"] == "view" for x in recs)
    # the chain detects an edited line
    p = ws.path / "serve" / "audit.jsonl"
    lines = p.read_text().splitlines()
    tampered = p.with_name("tampered.jsonl")
    tampered.write_text("\n".join([lines[0].replace("view", "veiw"), *lines[1:]]) + "\n")
    assert verify_audit(tampered)[0] is False


def test_settle_and_shared_state(served, requests_30):
    """Two stores on one file: a claim settled through one is seen by the other's mirror."""
    _ws, c, t, app = served
    from fraudscan.serving.state import SharedStateStore

    path = app.state.service.scorer.state.path
    other = SharedStateStore(path)
    try:
        q = requests_30[5]
        sid = q["patient_dtos"][0]["fsi_encounter_dtos"][0]["setl_id"]
        assert not other.is_settled(sid)
        r = c.post("/v1/check?settle=true", json=q, headers=H(t, "settlement"))
        assert r.status_code == 200 and r.json()["settled"] is True
        assert other.sync() >= 1
        assert other.is_settled(sid)
        pid = q["patient_dtos"][0]["patn_id"]
        assert sid in {s.settlement_id for s in other.stays(pid)}
    finally:
        other.close()


def test_openapi_and_docs(served):
    _, c, _, _ = served
    spec = c.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for p in ("/v1/check", "/v1/check/batch", "/v1/suspects", "/v1/leads/{lead_id}",
              "/v1/facilities/{facility_id}/grades", "/v1/rings/{ring_id}", "/v1/outcomes"):
        assert p in spec["paths"]
    assert "CheckRequest" in spec["components"]["schemas"]
    assert c.get("/docs").status_code == 200
    assert c.get("/v1/health").json() == {"status": "ok"}
    assert c.get("/v1/ready").json()["ready"] is True


def test_mask_id():
    assert mask_id("P00000192") == "P00****92"
    assert mask_id("abc") == "***"
    assert mask_id(None) is None


def test_token_cli(tmp_path, small_world):
    import typer
    from typer.testing import CliRunner

    from fraudscan.cli.serve_cmd import register

    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        """root"""

    ws = tmp_path / "ws"
    shutil.copytree(small_world.path, ws)
    r = CliRunner().invoke(app, ["serve", "token", "create", str(ws), "--role", "inspector",
                                 "--districts", "D1,D2", "--json"])
    assert r.exit_code == 0, r.output
    tok = json.loads(r.output.strip().splitlines()[-1])
    assert tok["districts"] == ["D1", "D2"] and tok["token"].startswith("fs_")
    stored = (ws / "serve" / "access.json").read_text()
    assert tok["token"] not in stored
    r = CliRunner().invoke(app, ["serve", "token", "create", str(ws), "--role", "inspector"])
    assert r.exit_code == 2  # an inspector needs districts
    r = CliRunner().invoke(app, ["serve", "token", "create", str(ws), "--role", "king"])
    assert r.exit_code == 2


def _html_text(page: str) -> str:
    """The text an inspector reads: text nodes only (ids in tooltips/attributes are fine)."""
    from html.parser import HTMLParser

    parts: list[str] = []

    class P(HTMLParser):
        def handle_data(self, data: str) -> None:
            parts.append(data)

    P().feed(page)
    return "\n".join(parts)


def test_workbench_and_api_show_names_not_detector_ids(served):
    from fraudscan.leads import all_detectors
    from fraudscan.serving.names import name

    _, c, t, _ = served
    a = H(t, "admin")
    items = c.get("/v1/suspects?limit=1000", headers=a).json()["items"]
    dets = {x["detector"] for x in items}
    assert dets
    ids = set(all_detectors())
    # JSON: ids kept, names beside them (one source: the registry's titles)
    x = next(x for x in items if x["detector"] == "drug_resale") if "drug_resale" in dets \
        else items[0]
    assert x["detector_zh"] == name("detector", x["detector"], "zh") != x["detector"]
    assert x["subject_type_zh"] and x["subject_type_en"]
    if "drug_resale" in dets:
        assert x["detector_zh"] == "倒卖/回流药"
    # the rendered list, Chinese by default: names, no bare detector id in the visible text
    # (lead ids, "<detector>:<hash>", are identifiers inspectors quote: they stay)
    lead_ids = sorted((x["lead_id"] for x in items), key=len, reverse=True)

    def _visible_text(page: str) -> str:
        text = _html_text(page)
        for lid in lead_ids:
            text = text.replace(lid, "")
        return text

    page = c.get("/wb/?limit=1000", headers=a).text
    text = _visible_text(page)
    for d in dets:
        assert name("detector", d, "zh") in text, d
        assert f'title="{d}"' in page  # the id stays available as a tooltip
    assert not [d for d in ids if d in text], [d for d in ids if d in text]
    # English switch: English names
    text_en = _visible_text(c.get("/wb/?limit=1000&lang=en", headers=a).text)
    for d in dets:
        assert name("detector", d, "en") in text_en
    # lead, facility and ring pages show no bare detector id either
    lead = c.get(f"/wb/lead/{items[0]['lead_id']}?lang=zh", headers=a).text
    assert name("detector", items[0]["detector"], "zh") in _visible_text(lead)
    assert not [d for d in ids if d in _visible_text(lead)]
    fid = next(x["facility_id"] for x in items if x["facility_id"])
    fac = _visible_text(c.get(f"/wb/facility/{fid}", headers=a).text)
    assert not [d for d in ids if d in fac]
    # the CSV export carries both
    rows = list(csv.DictReader(io.StringIO(
        c.get("/v1/suspects/export", headers=a).text.lstrip("\ufeff"))))
    assert rows and all(r["detector_zh"] == name("detector", r["detector"], "zh") for r in rows)
