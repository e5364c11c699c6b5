"""A small claim model registered as champion, for tests, benchmarks and demos.

The real champion comes from ``fraudscan train`` (:func:`fraudscan.models.train_all`); this
trains the same estimator (:class:`~fraudscan.models.base.HybridRiskModel`) on the features the
service computes from a request, so a fresh workspace can be served end to end in seconds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from fraudscan.workspace import Workspace


def demo_uri(workspace: str | os.PathLike[str]) -> str:
    root = Path(workspace) / "mlflow"
    (root / "artifacts").mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(root / 'mlflow.db').resolve()}"


def train_demo_champion(workspace: str | os.PathLike[str], *, max_claims: int = 4000,
                        seed: int = 0, n_estimators: int = 30) -> dict[str, Any]:
    """Fit on the workspace's settlements and register as ``fraudscan-claim@champion``
    in ``W/mlflow``; returns :func:`fraudscan.models.tracking.log_training`'s answer."""
    from fraudscan.models.base import HybridRiskModel
    from fraudscan.models.tracking import log_training
    from fraudscan.rules import RuleEngine, iter_workspace_claims
    from fraudscan.serving.scoring import claim_features, peer_group

    ws = Workspace(workspace)
    eng = RuleEngine(ws.read_table("catalogue"), facilities=ws.read_table("facilities"))
    claims = list(iter_workspace_claims(ws))
    rng = np.random.default_rng(seed)
    if len(claims) > max_claims:
        claims = [claims[i] for i in sorted(rng.choice(len(claims), max_claims, replace=False))]
    labels = ws.read_table("labels")
    bad = set(labels[(labels["entity_type"] == "settlement")
                     & labels["is_fraud"].astype(bool)]["entity_id"].astype(str))
    feats = [claim_features(c, eng.catalogue, eng.check_claim(c)) for c in claims]
    names = sorted({k for f in feats for k in f})
    X = np.array([[f.get(n, np.nan) for n in names] for f in feats], dtype=np.float64)
    y = np.array([c.settlement_id in bad for c in claims], dtype=int)
    model = HybridRiskModel(n_estimators=n_estimators, random_state=seed).fit(
        X, y, peer_groups=[peer_group(c) for c in claims], feature_names=names)
    return log_training("claim", model, params={"demo": True, "n": len(claims)},
                        metrics={"positives": int(y.sum())}, features=names,
                        fingerprint=ws.fingerprint(), uri=demo_uri(ws.path))


# -- running the real server (tests, benchmarks) -----------------------------------------------

def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workspace: str | os.PathLike[str], port: int, *, workers: int = 2,
                 poll_seconds: float = 0, log: str | os.PathLike[str] | None = None,
                 extra: list[str] | None = None):  # -> subprocess.Popen
    """``fraudscan serve W --port P`` in its own process group (stop it with :func:`stop`)."""
    import subprocess
    import sys

    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "fraudscan.cli.serve_cmd", "serve", str(workspace), "--port",
         str(port), "--workers", str(workers), "--poll-seconds", str(poll_seconds),
         *(extra or [])],
        stdout=out, stderr=out, start_new_session=True)


def wait_ready(port: int, timeout: float = 120.0, proc: Any = None) -> None:
    import http.client
    import time

    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/v1/ready")
            r = c.getresponse()
            r.read()
            if r.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"server on port {port} not ready after {timeout} s")


def stop(proc: Any, sig: int | None = None, timeout: float = 30.0) -> None:
    """Signal the server and every process under it (SIGTERM, or ``sig``) and wait.

    BentoML's workers run in sessions of their own, so a process-group signal would miss
    them: they are found as children of the server process and signalled by pid.
    """
    import contextlib
    import signal
    import subprocess

    import psutil

    sig = sig if sig is not None else signal.SIGTERM
    try:
        kids = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        kids = []
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, sig)
    if sig == signal.SIGKILL:
        for k in kids:
            with contextlib.suppress(psutil.NoSuchProcess):
                k.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    _gone, alive = psutil.wait_procs(kids, timeout=timeout)
    for k in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            k.kill()


def served_copy(source: str | os.PathLike[str], dest: str | os.PathLike[str],
                cache: str | os.PathLike[str] | None = None) -> Workspace:
    """Copy a workspace to ``dest`` with screening leads and rings built (what the workbench
    shows). With ``cache`` the leads and rings are built once there and copied afterwards."""
    import shutil

    def build(at: Path) -> None:
        import fraudscan.graph as graph
        import fraudscan.leads as leads

        shutil.copytree(source, at)
        leads.run(at)
        graph.build(at)

    if cache is None:
        build(Path(dest))
    else:
        c = Path(cache)
        if not (c / "fraudscan.duckdb").exists():
            tmp = c.with_name(c.name + ".building")
            shutil.rmtree(tmp, ignore_errors=True)
            build(tmp)
            tmp.rename(c)
        shutil.copytree(c, dest)
    return Workspace(dest)
