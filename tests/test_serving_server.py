"""The real service (``fraudscan serve`` under BentoML): champion scoring and swap, SIGKILL mid
stream with nothing acknowledged lost, and the Bento build."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fraudscan.rules import claim_to_request, iter_workspace_claims
from fraudscan.serving import AccessFile
from fraudscan.serving.demo import free_port, start_server, stop, train_demo_champion, wait_ready
from fraudscan.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def world(small_world: Workspace, tmp_path_factory: pytest.TempPathFactory):
    ws = Workspace(tmp_path_factory.mktemp("serving_server") / "ws")
    shutil.copytree(small_world.path, ws.path)
    train_demo_champion(ws.path, max_claims=1500, n_estimators=10)
    token = AccessFile(ws.path).create("settlement")[0]
    admin = AccessFile(ws.path).create("admin")[0]
    return ws, token, admin


def post(port: int, path: str, body: dict | None, token: str, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", path, json.dumps(body).encode() if body is not None else b"",
              {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    r = c.getresponse()
    return r.status, json.loads(r.read() or b"null")


def test_kill_restart_swap(world):
    ws, token, admin = world
    claims = list(iter_workspace_claims(ws))[:4000]
    reqs = [claim_to_request(c) for c in claims]
    port = free_port()
    log = ws.path / "serve-test.log"
    srv = start_server(ws.path, port, log=log)
    try:
        wait_ready(port, proc=srv)
        # the champion scores the check
        st, b = post(port, "/v1/check", reqs[0], token)
        assert st == 200 and b["score"]["status"] == "ok", b
        assert b["score"]["model_version"] == "fraudscan-claim/1"
        # an open stay registered at admission
        st, b = post(port, "/v1/admit", reqs[-1], token)
        assert st == 200, b
        open_stay = b["admitted"][0]

        # stream settled checks from two clients; SIGKILL the server group mid-stream
        acked: list[str] = []
        lock = threading.Lock()

        def stream(part: list[dict]) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            for q in part:
                try:
                    s, _ = post(port, "/v1/check?settle=true", q, token, conn)
                except (OSError, http.client.HTTPException, json.JSONDecodeError):
                    return
                if s == 200:
                    with lock:
                        acked.append(q["patient_dtos"][0]["fsi_encounter_dtos"][0]["setl_id"])

        th = [threading.Thread(target=stream, args=(reqs[i::2],)) for i in range(2)]
        for x in th:
            x.start()
        while len(acked) < 100 and any(x.is_alive() for x in th):
            time.sleep(0.01)
        stop(srv, signal.SIGKILL)
        for x in th:
            x.join(15)
        assert 100 <= len(acked) < len(reqs), len(acked)
    finally:
        stop(srv)
    # every acknowledged claim is on disk ...
    db = sqlite3.connect(ws.path / "rules_state.sqlite")
    on_disk = {r[0] for r in db.execute("SELECT settlement_id FROM settled")}
    db.close()
    assert set(acked) <= on_disk, set(acked) - on_disk
    db = sqlite3.connect(ws.path / "rules_state.sqlite")
    assert db.execute("SELECT discharge_time FROM stays WHERE settlement_id = ?",
                      (open_stay,)).fetchone() == (None,)
    db.close()

    srv = start_server(ws.path, port, log=log)
    try:
        wait_ready(port, proc=srv)
        # ... and in the restarted service's state: a trace code sold by an acknowledged claim
        ready = json.loads(_get(port, "/v1/ready"))
        assert ready["state"]["settled"] >= len(set(acked))

        # champion swap while a client keeps checking: no error, the version moves
        from mlflow import MlflowClient

        from fraudscan.serving.scoring import tracking_uri

        uri = tracking_uri(ws.path)
        cl = MlflowClient(tracking_uri=uri, registry_uri=uri)
        v1 = cl.get_model_version_by_alias("fraudscan-claim", "champion")
        from fraudscan.models.tracking import scoped

        with scoped(uri):  # the registry resolves the logged model through the global URI
            v2 = cl.create_model_version("fraudscan-claim", v1.source, run_id=v1.run_id)
        versions: list[str] = []
        errors: list[int] = []
        done = threading.Event()

        def checker() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            while not done.is_set():
                s, b = post(port, "/v1/check", reqs[1], token, conn)
                if s != 200:
                    errors.append(s)
                else:
                    versions.append(b["score"]["model_version"])

        t = threading.Thread(target=checker)
        t.start()
        time.sleep(0.5)
        cl.set_registered_model_alias("fraudscan-claim", "champion", v2.version)
        st, res = post(port, "/v1/admin/reload", None, admin)
        assert st == 200 and res["current"] == f"fraudscan-claim/{v2.version}", res
        t_end = time.time() + 30
        while time.time() < t_end and (not versions or
                                       versions[-1] != f"fraudscan-claim/{v2.version}"
                                       or versions[-20:].count(versions[-1]) < 20):
            time.sleep(0.2)
        done.set()
        t.join()
        assert not errors
        assert versions[0] == "fraudscan-claim/1"
        assert set(versions[-20:]) == {f"fraudscan-claim/{v2.version}"}  # both workers moved
    finally:
        stop(srv)


def _get(port: int, path: str) -> bytes:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    return c.getresponse().read()


def test_bentofile_builds(tmp_path):
    import yaml
    from bentoml._internal.bento.build_config import BentoBuildConfig

    with open(ROOT / "serving" / "bentofile.yaml") as f:
        cfg = BentoBuildConfig.from_yaml(f)
    assert cfg.service == "service:FraudScan"
    data = yaml.safe_load((ROOT / "serving" / "bentofile.yaml").read_text())
    assert {"service", "include", "python"} <= set(data)
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"),
           "BENTOML_DO_NOT_TRACK": "true"}
    r = subprocess.run([sys.executable, "-m", "bentoml", "build", "--output", "tag"],
                       cwd=ROOT / "serving", env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "bentoml" / "bentos" / "fraudscan").is_dir()
