"""Scoring-service benchmark: pre-payment check latency and throughput over HTTP on loopback.

    .venv/bin/python benchmarks/bench_service.py [--workspace W | --persons 2000]
        [--seconds 10] [--soak-seconds 600] [--no-model] [--json out.json]

Starts ``fraudscan serve`` (BentoML, 2 workers) on 127.0.0.1, warms the cross-claim state by
settling the workspace's claims through the batch endpoint (which is also timed), then drives
``POST /v1/check`` with a 30-line claim from separate client processes (keep-alive
``http.client``): 1 client for latency, 4 and 8 for throughput, and a soak with 4 clients
sampling the server's memory. The same check behind a bare Starlette app (uvicorn, one worker)
is measured in the same run for comparison. Every load phase is bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fraudscan.serving.demo import wait_ready

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_fraudscan(ws: Path, port: int, workers: int = 2) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "fraudscan.cli.serve_cmd", "serve", str(ws), "--port",
         str(port), "--workers", str(workers), "--poll-seconds", "0"],
        stdout=subprocess.DEVNULL, stderr=open(ws / "serve-bench.log", "w"),
        start_new_session=True)


BARE = '''
import os, sys
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from fraudscan.serving.app import tune_gc
from fraudscan.serving.core import Scorer
from fraudscan.workspace import Workspace

scorer = Scorer(Workspace(os.environ["WS"]), poll_seconds=0)  # the same warm state file
scorer.models.reload()
tune_gc()  # the same garbage-collector settings as fraudscan's workers

async def check(request: Request) -> Response:
    req = scorer.parse(await request.body())
    out = scorer.check(req)
    return Response(out.model_dump_json(), media_type="application/json")

async def ready(request: Request) -> Response:
    return Response("{}", media_type="application/json")

app = Starlette(routes=[Route("/v1/check", check, methods=["POST"]),
                        Route("/v1/ready", ready)])
'''


def start_bare(ws: Path, port: int) -> subprocess.Popen:
    d = ws / "_bare"
    d.mkdir(exist_ok=True)
    (d / "bare_app.py").write_text(BARE)
    env = {**os.environ, "WS": str(ws), "PYTHONPATH": str(d)}
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bare_app:app", "--host", "127.0.0.1", "--port",
         str(port), "--workers", "1", "--no-access-log", "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)


def client(port: int, token: str, body: bytes, seconds: float, max_n: int, q: mp.Queue,
           start_at: float) -> None:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    hdr = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    for _ in range(20):  # warm the connection and the worker
        c.request("POST", "/v1/check", body, hdr)
        c.getresponse().read()
    while time.time() < start_at:
        time.sleep(0.001)
    lat = []
    errors = 0
    cpu0 = time.process_time()
    t_end = time.perf_counter() + seconds
    while len(lat) < max_n and time.perf_counter() < t_end:
        t0 = time.perf_counter()
        c.request("POST", "/v1/check", body, hdr)
        r = c.getresponse()
        r.read()
        lat.append(time.perf_counter() - t0)
        if r.status != 200:
            errors += 1
    q.put((lat, errors, time.process_time() - cpu0))


def server_cpu(pid: int | None) -> float:
    import psutil

    if pid is None:
        return 0.0
    try:
        p = psutil.Process(pid)
        tot = 0.0
        for x in [p, *p.children(recursive=True)]:
            t = x.cpu_times()
            tot += t.user + t.system
        return tot
    except psutil.NoSuchProcess:
        return 0.0


def load(port: int, token: str, body: bytes, clients: int, seconds: float,
         max_n: int = 10**9, pid: int | None = None) -> dict:
    q: mp.Queue = mp.Queue()
    start_at = time.time() + 1.5
    ps = [mp.Process(target=client, args=(port, token, body, seconds, max_n, q, start_at))
          for _ in range(clients)]
    for p in ps:
        p.start()
    time.sleep(max(0.0, start_at - time.time()))
    c0 = server_cpu(pid)
    res = [q.get(timeout=seconds + 120) for _ in ps]
    c1 = server_cpu(pid)
    for p in ps:
        p.join()
    lat = np.array([x for r, _, _ in res for x in r]) * 1000
    n = len(lat)
    out = {"clients": clients, "requests": n, "errors": sum(e for _, e, _ in res),
           "rps": round(n / seconds, 1), "p50_ms": round(float(np.percentile(lat, 50)), 3),
           "p99_ms": round(float(np.percentile(lat, 99)), 3),
           "max_ms": round(float(lat.max()), 3),
           "client_cpu_ms_per_req": round(sum(c for _, _, c in res) / n * 1000, 3)}
    if pid is not None:
        out["server_cpu_ms_per_req"] = round((c1 - c0) / n * 1000, 3)
        # what 2 free cores would sustain: server + client CPU per request
        out["rps_if_2_free_cores"] = round(
            2000 / (out["server_cpu_ms_per_req"] + out["client_cpu_ms_per_req"]))
    return out


def server_rss(pid: int) -> int:
    import psutil

    try:
        p = psutil.Process(pid)
        return sum(x.memory_info().rss for x in [p, *p.children(recursive=True)])
    except psutil.NoSuchProcess:
        return 0


def thirty_line_request(ws: Path) -> bytes:
    import dataclasses

    from fraudscan.rules import claim_to_request, iter_workspace_claims

    best = None
    for c in iter_workspace_claims(ws):
        if len(c.lines) >= 30:
            best = c
            break
    if best is None:
        raise SystemExit("no claim with 30 or more lines in the workspace")
    lines = best.lines[:30]
    best = dataclasses.replace(best, lines=lines, settlement_id="BENCH-30",
                               total_amount=round(sum(x.amount for x in lines), 2))
    return json.dumps(claim_to_request(best)).encode()


def warm_state(port: int, token: str, ws: Path, batch_size: int = 500,
               pid: int | None = None, repeats: int = 1) -> dict:
    """Settle every claim of the workspace through the batch endpoint; time the batches.

    Then check them all again without settling (``repeats`` passes; the best is reported).
    Server CPU (all server processes) and client CPU are reported per claim beside wall time,
    because on a shared machine the wall rate says as much about the neighbours as about us.
    """
    from fraudscan.rules import claim_to_request, iter_workspace_claims

    reqs = [claim_to_request(c) for c in iter_workspace_claims(ws)]
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    hdr = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    t_settle = 0.0
    s0 = server_cpu(pid)
    for i in range(0, len(reqs), batch_size):
        body = json.dumps({"requests": reqs[i:i + batch_size], "settle": True}).encode()
        t0 = time.perf_counter()
        c.request("POST", "/v1/check/batch", body, hdr)
        r = c.getresponse()
        r.read()
        t_settle += time.perf_counter() - t0
        if r.status != 200:
            raise RuntimeError(f"batch settle failed: {r.status}")
    settle_cpu = server_cpu(pid) - s0
    # pure batch checking (no settle) on warm state
    bodies = [json.dumps({"requests": reqs[i:i + batch_size]}).encode()
              for i in range(0, len(reqs), batch_size)]
    passes = []
    for _ in range(repeats):
        t_check, c_cpu = 0.0, 0.0
        s0 = server_cpu(pid)
        for body in bodies:
            t0, k0 = time.perf_counter(), time.process_time()
            c.request("POST", "/v1/check/batch", body, hdr)
            r = c.getresponse()
            out = r.read()
            t_check += time.perf_counter() - t0
            c_cpu += time.process_time() - k0
            if r.status != 200:
                raise RuntimeError(f"batch check failed: {r.status}")
        passes.append((t_check, server_cpu(pid) - s0, c_cpu, os.getloadavg()[0]))
    t_check, check_cpu, c_cpu, load1 = min(passes)
    n = len(reqs)
    lines = np.mean([len(e["fsi_order_dtos"]) for q in reqs
                     for p in q["patient_dtos"] for e in p["fsi_encounter_dtos"]])
    scored = json.loads(out)["results"][0]["score"]["status"]
    return {"claims": len(reqs), "mean_lines": round(float(lines), 1),
            "batch_size": batch_size, "settle_claims_per_s": round(len(reqs) / t_settle),
            "settle_server_cpu_ms_per_claim": round(settle_cpu / len(reqs) * 1000, 4),
            "check_claims_per_s": round(n / t_check),
            "check_claims_per_s_all_passes": [round(n / p[0]) for p in passes],
            "check_server_cpu_ms_per_claim": round(check_cpu / n * 1000, 4),
            "check_client_cpu_ms_per_claim": round(c_cpu / n * 1000, 4),
            "check_claims_per_s_if_1_free_core": round(1000 / (check_cpu / n * 1000))
            if check_cpu else None,
            "load_average_1m": load1, "score_status": scored}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workspace", type=Path)
    ap.add_argument("--persons", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--soak-seconds", type=float, default=600.0)
    ap.add_argument("--no-model", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--batch-only", action="store_true",
                    help="only the batch phase (settle, then check-only passes)")
    ap.add_argument("--batch-repeats", type=int, default=2,
                    help="check-only passes over the workspace's claims (best reported)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_service_"))
    try:
        if args.workspace:
            ws = tmp / "ws"
            shutil.copytree(args.workspace, ws, ignore=shutil.ignore_patterns("serve", "*.sqlite*"))
        else:
            from fraudscan.synth import generate

            ws = generate(tmp / "ws", persons=args.persons, seed=7).path
        from fraudscan.serving.access import AccessFile

        if not args.no_model and not (ws / "mlflow" / "mlflow.db").exists():
            from fraudscan.serving.demo import train_demo_champion

            print("training a demo champion ...", file=sys.stderr)
            train_demo_champion(ws)
        token, _ = AccessFile(ws).create("admin", name="bench")
        body = thirty_line_request(ws)
        out: dict = {"cpus": os.cpu_count()}
        port = free_port()
        srv = start_fraudscan(ws, port)
        try:
            wait_ready(port)
            print("warming state ...", file=sys.stderr)
            out["load_average_before"] = os.getloadavg()
            out["batch"] = warm_state(port, token, ws, pid=srv.pid,
                                      repeats=args.batch_repeats)
            print(json.dumps(out["batch"]), file=sys.stderr)
            if args.batch_only:
                out["load_average_after"] = os.getloadavg()
                print(json.dumps(out, indent=1))
                if args.json:
                    args.json.write_text(json.dumps(out, indent=1))
                return
            out["fraudscan"] = [load(port, token, body, k, args.seconds, pid=srv.pid)
                                for k in (1, 4, 8)]
            for r in out["fraudscan"]:
                print("fraudscan", json.dumps(r), file=sys.stderr)
            if args.soak_seconds > 0:
                rss = [server_rss(srv.pid)]
                t_end = time.time() + args.soak_seconds
                n_total = 0
                while time.time() < t_end:
                    r = load(port, token, body, 4, max(1.0, min(30.0, t_end - time.time())))
                    n_total += r["requests"]
                    rss.append(server_rss(srv.pid))
                out["soak"] = {"seconds": args.soak_seconds, "requests": n_total,
                               "rss_mb_start": round(rss[0] / 2**20, 1),
                               "rss_mb_after_first": round(rss[1] / 2**20, 1),
                               "rss_mb_end": round(rss[-1] / 2**20, 1),
                               "rss_mb_max": round(max(rss) / 2**20, 1),
                               "rss_mb_series": [round(x / 2**20, 1) for x in rss]}
                print("soak", json.dumps(out["soak"]), file=sys.stderr)
        finally:
            stop(srv)
        port2 = free_port()
        bare = start_bare(ws, port2)
        try:
            wait_ready(port2)
            out["bare_starlette"] = [load(port2, token, body, k, args.seconds, pid=bare.pid)
                                     for k in (1, 4, 8)]
            for r in out["bare_starlette"]:
                print("bare", json.dumps(r), file=sys.stderr)
        finally:
            stop(bare)
        best_fs = max(r["rps"] for r in out["fraudscan"][1:])
        best_bare = max(r["rps"] for r in out["bare_starlette"][1:])
        out["throughput_ratio_bare_over_fraudscan"] = round(best_bare / best_fs, 2)
        cpu_fs = min(r["server_cpu_ms_per_req"] for r in out["fraudscan"][1:])
        cpu_bare = min(r["server_cpu_ms_per_req"] for r in out["bare_starlette"][1:])
        out["server_cpu_ratio_fraudscan_over_bare"] = round(cpu_fs / cpu_bare, 2)
        out["load_average_after"] = os.getloadavg()
        print(json.dumps(out, indent=1))
        if args.json:
            args.json.write_text(json.dumps(out, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
