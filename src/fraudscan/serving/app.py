"""The HTTP application (Starlette): pre-payment checks, inspector API and workbench.

:func:`create_app` builds it for a workspace; :mod:`fraudscan.serving.bento` mounts it in a
BentoML service (``serving/service.py``). Every error is a JSON body
``{"error": {"code", "message"}}`` with a 4xx status for the caller's mistakes; the process keeps
serving whatever it is sent.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from fraudscan.errors import FraudscanError
from fraudscan.rules import ClaimRequestError
from fraudscan.serving.access import (
    AuditLog,
    Authenticator,
    Principal,
    mask_evidence,
    mask_id,
)
from fraudscan.serving.core import BatchRequest, Scorer
from fraudscan.serving.data import OUTCOMES, NotFound, WorkspaceData
from fraudscan.serving.names import name, with_names
from fraudscan.workspace import Workspace

log = logging.getLogger("fraudscan.serving")

MAX_CHECK_BYTES = 2 * 1024 * 1024
MAX_BATCH_BYTES = 64 * 1024 * 1024
MAX_FORM_BYTES = 64 * 1024
COOKIE = "fraudscan_token"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def err(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


class Service:
    """Everything a request needs; one per worker process."""

    def __init__(self, workspace: str | os.PathLike[str], *, poll_seconds: float = 30.0,
                 warn_at: float | None = 0.9, auth: bool = True,
                 state_path: str | os.PathLike[str] | None = None):
        self.ws = Workspace(workspace).require()
        self.auth_enabled = auth
        self.auth = Authenticator(self.ws.path)
        self.audit = AuditLog(self.ws.path)
        self.scorer = Scorer(self.ws, poll_seconds=poll_seconds, warn_at=warn_at,
                             state_path=state_path)
        self.data = WorkspaceData(self.ws)
        self.started = time.time()
        self.ready = False

    def start(self) -> None:
        self.scorer.start()
        self.ready = True

    def close(self) -> None:
        self.ready = False
        self.scorer.close()

    # -- auth -----------------------------------------------------------------------------------
    def principal(self, request: Request, perm: str | None, *, browser: bool = False
                  ) -> Principal:
        """The caller; 401 without a known token, 403 without ``perm`` (None: any token)."""
        if not self.auth_enabled:
            return Principal("anonymous", "anonymous", "admin", (),
                             frozenset({"check", "read", "outcome", "export", "unmask",
                                        "all_districts", "admin"}))
        self.auth.maybe_reload(time.monotonic())
        h = request.headers.get("authorization", "")
        token = h[7:].strip() if h[:7].lower() == "bearer " else None
        if token is None:
            token = request.cookies.get(COOKIE) or request.headers.get("x-api-token")
        p = self.auth.principal(token)
        if p is None:
            if browser:
                raise ApiError(303, "login", "login required",
                               {"location": "/wb/login?next=" + request.url.path})
            raise ApiError(401, "unauthorized", "missing or unknown API token (send "
                           "'Authorization: Bearer <token>'; create one with `fraudscan serve "
                           "token create W --role ...`)", {"www-authenticate": "Bearer"})
        if perm is not None and not p.can(perm):
            raise ApiError(403, "forbidden", f"role {p.role!r} may not {perm}")
        return p


def _ser(v: Any) -> Any:
    return v


async def read_body(request: Request, limit: int) -> bytes:
    cl = request.headers.get("content-length")
    if cl is not None:
        try:
            n = int(cl)
        except ValueError:
            raise ApiError(400, "bad_request", "invalid Content-Length") from None
        if n > limit:
            raise ApiError(413, "payload_too_large",
                           f"body of {n} bytes exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise ApiError(400, "empty_body", "the request body is empty; send JSON")
    return body


SUSPECT_PARAMS = {"district", "detector", "subject_type", "facility_id", "period", "min_score",
                  "q", "status", "limit", "offset"}


def params(request: Request, allowed: set[str]) -> dict[str, str]:
    """The query parameters, refusing unknown ones (a misspelt filter must not be ignored)."""
    q = dict(request.query_params)
    unknown = sorted(set(q) - allowed)
    if unknown:
        raise ApiError(400, "bad_parameter", f"unknown query parameter(s) {unknown}; allowed: "
                       f"{sorted(allowed)}")
    return q


def _bool(v: str | None, name: str) -> bool:
    if v is None or v == "":
        return False
    s = v.lower()
    if s in ("1", "true", "yes", "y"):
        return True
    if s in ("0", "false", "no", "n"):
        return False
    raise ApiError(400, "bad_parameter", f"{name}: expected true/false, got {v!r}")


def _int(v: str | None, name: str, default: int, lo: int, hi: int) -> int:
    if v is None or v == "":
        return default
    try:
        n = int(v)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name}: expected an integer, got {v!r}") from None
    if not lo <= n <= hi:
        raise ApiError(400, "bad_parameter", f"{name}: must be between {lo} and {hi}")
    return n


def _float(v: str | None, name: str) -> float | None:
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name}: expected a number, got {v!r}") from None
    if f != f:
        raise ApiError(400, "bad_parameter", f"{name}: not a number")
    return f


def _json_error(e: Exception) -> str:
    if isinstance(e, ValidationError):
        probs = []
        for x in e.errors()[:5]:
            loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in x["loc"])
            probs.append(f"{loc.lstrip('.') or '(root)'}: {x['msg']}")
        more = f" (+{e.error_count() - 5} more)" if e.error_count() > 5 else ""
        return "; ".join(probs) + more
    return str(e)


# ------------------------------------------------------------------------------------------------
# suspects: filtering, masking, paging (shared by the API, the export and the workbench)
# ------------------------------------------------------------------------------------------------

SUSPECT_FIELDS = ("lead_id", "detector", "detector_zh", "detector_en", "subject_type",
                  "subject_type_zh", "subject_type_en", "subject_id", "facility_id",
                  "facility_name", "district", "period", "score", "priority", "amount",
                  "n_settlements", "outcome")


def suspect_query(svc: Service, p: Principal, q: dict[str, str]) -> tuple[int, list[dict]]:
    d = svc.data
    d.refresh()
    df = d.leads
    if not p.can("all_districts"):
        df = df[df["district"].isin(p.districts)]
    if q.get("district"):
        wanted = [x for x in q["district"].split(",") if x]
        df = df[df["district"].isin(wanted)]
    for key in ("detector", "subject_type", "facility_id", "period"):
        if q.get(key):
            df = df[df[key].astype(str) == q[key]]
    ms = _float(q.get("min_score"), "min_score")
    if ms is not None:
        df = df[df["score"] >= ms]
    if q.get("q"):
        s = q["q"].lower()
        hay = (df["lead_id"].astype(str) + " " + df["subject_id"].astype(str) + " "
               + df["facility_id"].astype(str) + " " + df["facility_name"].astype(str))
        df = df[hay.str.lower().str.contains(s, regex=False)]
    outcomes = d.outcomes.latest_by_lead()
    st = q.get("status")
    if st is not None:
        if st not in ("open", "closed", *OUTCOMES):
            raise ApiError(400, "bad_parameter", f"status: one of open, closed, "
                           f"{', '.join(OUTCOMES)}")
        oc = df["lead_id"].map(outcomes)
        df = df[oc.isna()] if st == "open" else df[oc.notna()] if st == "closed" \
            else df[oc == st]
    limit = _int(q.get("limit"), "limit", 50, 1, 1000)
    offset = _int(q.get("offset"), "offset", 0, 0, 10_000_000)
    total = len(df)
    page = df.iloc[offset:offset + limit]
    return total, [suspect_row(r, p, outcomes) for r in page.to_dict("records")]


def suspect_row(r: dict, p: Principal, outcomes: dict[str, str]) -> dict[str, Any]:
    from fraudscan.serving.data import _clean

    sid = r.get("settlement_ids")
    n = len(sid) if sid is not None and hasattr(sid, "__len__") else 0
    subj = r.get("subject_id")
    if r.get("subject_type") == "person" and not p.can("unmask"):
        subj = mask_id(subj)
    out = {k: _clean(r.get(k)) for k in SUSPECT_FIELDS}
    out.update(subject_id=subj, n_settlements=n, outcome=outcomes.get(r["lead_id"]))
    return with_names(out, detector="detector", subject_type="subject_type")


def lead_view(svc: Service, p: Principal, lead_id: str) -> dict[str, Any]:
    lead = svc.data.lead(lead_id)
    if not p.sees_district(lead.get("district")):
        # not in the caller's districts: answer as if it did not exist
        raise NotFound(f"no lead {lead_id!r}")
    reasons = explain(svc, lead)
    if not p.can("unmask"):
        if lead.get("subject_type") == "person":
            lead["subject_id"] = mask_id(lead["subject_id"])
        lead["evidence"] = mask_evidence(lead.get("evidence"))
    lead["reasons"] = with_names(reasons, source="reason_source")
    lead["outcomes"] = svc.data.outcomes.list(lead_id=lead_id)
    return with_names(lead, detector="detector", subject_type="subject_type")


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f and f not in (float("inf"), float("-inf")) else None


def explain(svc: Service, lead: dict[str, Any]) -> dict[str, Any]:
    """SHAP reasons from the models package when present; else the detector's evidence."""
    try:
        from fraudscan.suspects import explain_lead

        out = explain_lead(svc.ws, lead["lead_id"])
        items = [{"feature": r["feature"], "value": _num(r.get("value")),
                  "peer_p95": _num(r.get("peer_p95")),
                  "contribution": _num(r.get("contribution")), "zh": r["zh"], "en": r["en"]}
                 for r in out.get("reasons", [])]
        if items:
            return {"source": "shap", "items": items}
    except FraudscanError:
        pass  # no trained model for this subject yet: the evidence below
    except Exception:
        log.exception("SHAP explanation failed for %s", lead.get("lead_id"))
    ev = lead.get("evidence") or {}
    items = []
    if isinstance(ev, dict):
        for k, v in ev.items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                det = lead.get("detector")
                items.append({"feature": k, "value": v,
                              "zh": f"{k} 为 {v:g}，触发检测器「{name('detector', det, 'zh')}」",
                              "en": f"{k} is {v:g}, which fired the detector "
                                    f"'{name('detector', det, 'en')}'"})
    return {"source": "evidence", "items": items}


# ------------------------------------------------------------------------------------------------
# the app
# ------------------------------------------------------------------------------------------------

def create_app(workspace: str | os.PathLike[str] | None = None, *, service: Service | None = None,
               attach_later: bool = False, **kwargs: Any) -> Starlette:
    """The ASGI app for a workspace (``FRAUDSCAN_WORKSPACE`` when not given).

    The workspace is opened at startup (lifespan), so importing and building this is cheap.
    With ``attach_later`` nothing is opened: a started :class:`Service` is put in
    ``app.state.services["svc"]`` by the caller (tests); until then requests get 503.
    """
    holder: dict[str, Service] = {}
    if service is not None:  # already started by the caller: usable without a lifespan
        holder["svc"] = service

    def svc() -> Service:
        s = holder.get("svc")
        if s is None:
            raise ApiError(503, "starting", "the service is starting")
        return s

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        if attach_later:
            yield
            return
        if service is not None:
            s = service
            if not s.ready:
                s.start()
        else:
            w = workspace or os.environ.get("FRAUDSCAN_WORKSPACE")
            if not w:
                raise RuntimeError("no workspace: set FRAUDSCAN_WORKSPACE or pass workspace")
            opts = dict(kwargs)
            if "FRAUDSCAN_POLL_SECONDS" in os.environ:
                opts.setdefault("poll_seconds", float(os.environ["FRAUDSCAN_POLL_SECONDS"]))
            if os.environ.get("FRAUDSCAN_NO_AUTH") == "1":
                opts.setdefault("auth", False)
            if "FRAUDSCAN_WARN_AT" in os.environ:
                v = os.environ["FRAUDSCAN_WARN_AT"]
                opts.setdefault("warn_at", None if v in ("", "none") else float(v))
            s = Service(w, **opts)
        if not s.ready:
            s.start()
        if service is None and workspace is None:  # a BentoML worker (fraudscan serve)
            _watch_parent()
            tune_gc()
        holder["svc"] = s
        app.state.service = s
        try:
            yield
        finally:
            holder.pop("svc", None)
            if service is None:
                s.close()

    def guarded(fn: Callable) -> Callable:
        async def endpoint(request: Request) -> Response:
            try:
                return await fn(request, svc())
            except ApiError as e:
                if e.status == 303:
                    return RedirectResponse(e.headers["location"], status_code=303)
                return err(e.status, e.code, e.message, e.headers)
            except NotFound as e:
                return err(404, "not_found", str(e).strip("'\""))
            except ClaimRequestError as e:
                return err(422, "invalid_request", str(e))
            except FraudscanError as e:
                return err(400, "bad_request", str(e))
            except HTTPException:
                raise
            except Exception as e:
                log.exception("unhandled error in %s", request.url.path)
                return err(500, "internal_error", f"{type(e).__name__}: {e}")
        endpoint.__name__ = fn.__name__
        return endpoint

    # -- checks ---------------------------------------------------------------------------------
    async def check(request: Request, s: Service) -> Response:
        s.principal(request, "check")
        settle = _bool(params(request, {"settle"}).get("settle"), "settle")
        body = await read_body(request, MAX_CHECK_BYTES)
        try:
            req = s.scorer.parse(body)
        except ClaimRequestError as e:
            return err(422 if "not valid JSON" not in str(e) else 400,
                       "invalid_request" if "not valid JSON" not in str(e) else "invalid_json",
                       str(e))
        try:
            out = s.scorer.check(req, settle=settle)
        except FraudscanError as e:  # the request's fault (unknown rule ids, duplicate rx_id)
            return err(422, "invalid_request", str(e))
        except Exception as e:
            log.exception("check failed")
            return err(503, "check_failed", f"the rule check failed ({type(e).__name__}: {e}); "
                       "the claim was NOT checked — route it to manual review")
        return Response(out.model_dump_json(), media_type="application/json",
                        headers={"x-score-status": out.score.status})

    async def check_batch(request: Request, s: Service) -> Response:
        s.principal(request, "check")
        params(request, set())
        body = await read_body(request, MAX_BATCH_BYTES)
        try:
            batch = BatchRequest.model_validate_json(body)
        except ValidationError as e:
            bad_json = any(x["type"] == "json_invalid" for x in e.errors())
            return err(400 if bad_json else 422, "invalid_json" if bad_json else
                       "invalid_request", "request: " + _json_error(e))
        try:
            out = s.scorer.check_batch(batch)
        except Exception as e:
            log.exception("batch check failed")
            return err(503, "check_failed", f"the batch check failed ({type(e).__name__}: {e});"
                       " no claim of this batch was checked")
        return Response(out.model_dump_json(), media_type="application/json")

    async def record_claims(request: Request, s: Service, action: str, key: str) -> Response:
        """Parse a check request and record each claim in the cross-claim state."""
        s.principal(request, "check")
        params(request, set())
        body = await read_body(request, MAX_CHECK_BYTES)
        req = s.scorer.parse(body)
        s.scorer.state.sync()
        from fraudscan.rules.claim import claims_from_request

        record = getattr(s.scorer.engine, action)
        ids = []
        for _, _, c in claims_from_request(req):
            record(c)
            ids.append(c.settlement_id)
        return JSONResponse({key: ids})

    async def settle(request: Request, s: Service) -> Response:
        """Record settled claims (open stays, trace codes, usage) in the cross-claim state."""
        return await record_claims(request, s, "settle", "settled")

    async def admit(request: Request, s: Service) -> Response:
        """Register open stays at admission (before settlement) in the cross-claim state."""
        return await record_claims(request, s, "admit", "admitted")

    # -- health ---------------------------------------------------------------------------------
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request, s: Service) -> Response:
        body = {"ready": s.ready, "model": s.scorer.models.status(),
                "state": {"settled": len(s.scorer.state._settled)},
                "checks": s.scorer.checks, "score_failures": s.scorer.score_failures,
                "workspace": str(s.ws.path), "pid": os.getpid(),
                "uptime_s": round(time.time() - s.started, 1)}
        return JSONResponse(body, status_code=200 if s.ready else 503)

    async def model(request: Request, s: Service) -> Response:
        s.principal(request, "read")
        params(request, set())
        return JSONResponse(s.scorer.models.status())

    async def reload(request: Request, s: Service) -> Response:
        p = s.principal(request, "admin")
        params(request, set())
        res = s.scorer.models.reload()
        s.scorer.models.request_reload()  # the other workers follow within a second
        s.audit.append(p, "reload_model", res.get("current") or "-", **res)
        return JSONResponse(res)

    async def me(request: Request, s: Service) -> Response:
        p = s.principal(request, None)
        return JSONResponse(p.public())

    # -- inspector API --------------------------------------------------------------------------
    async def suspects(request: Request, s: Service) -> Response:
        p = s.principal(request, "read")
        q = params(request, SUSPECT_PARAMS)
        total, items = suspect_query(s, p, q)
        s.audit.append(p, "view", "suspects", query=q, returned=len(items))
        return JSONResponse({"total": total, "limit": _int(q.get("limit"), "limit", 50, 1, 1000),
                             "offset": _int(q.get("offset"), "offset", 0, 0, 10_000_000),
                             "items": items})

    async def export(request: Request, s: Service) -> Response:
        p = s.principal(request, "export")
        q = params(request, SUSPECT_PARAMS | {"format"})
        q.setdefault("limit", "1000")
        fmt = q.pop("format", "csv")
        if fmt not in ("csv", "json"):
            raise ApiError(400, "bad_parameter", "format: csv or json")
        total, items = suspect_query(s, p, q)
        s.audit.append(p, "export", "suspects", query=q, rows=len(items), format=fmt)
        if fmt == "json":
            return JSONResponse({"total": total, "items": items})
        return Response(to_csv(items), media_type="text/csv; charset=utf-8", headers={
            "content-disposition": 'attachment; filename="suspects.csv"'})

    async def lead(request: Request, s: Service) -> Response:
        p = s.principal(request, "read")
        params(request, set())
        s.data.refresh()
        lid = request.path_params["lead_id"]
        v = lead_view(s, p, lid)
        s.audit.append(p, "view", f"lead:{lid}")
        return JSONResponse(v)

    def _facility(s: Service, p: Principal, fid: str) -> dict[str, Any]:
        s.data.refresh()
        f = s.data.facility(fid)
        if not p.sees_district(f.get("district")):
            raise NotFound(f"no facility {fid!r}")
        return f

    async def facility(request: Request, s: Service) -> Response:
        p = s.principal(request, "read")
        params(request, set())
        fid = request.path_params["facility_id"]
        f = _facility(s, p, fid)
        d = s.data
        total, items = suspect_query(s, p, {"facility_id": fid, "limit": "200"})
        s.audit.append(p, "view", f"facility:{fid}")
        f = with_names(dict(f), facility_type="facility_type")
        return JSONResponse({"facility": f, "grade": d.grade(fid),
                             "grade_history": d.grade_history(fid)["history"],
                             "indicators": d.peer_indicators(fid),
                             "rule_findings": [with_names(x, rule_id="rule")
                                               for x in d.facility_findings(fid)],
                             "rings": d.facility_rings(fid),
                             "leads": {"total": total, "items": items},
                             "outcomes": d.outcomes.list(facility_id=fid)})

    async def grade(request: Request, s: Service) -> Response:
        p = s.principal(request, "read")
        params(request, set())
        fid = request.path_params["facility_id"]
        _facility(s, p, fid)
        s.audit.append(p, "view", f"grade:{fid}")
        return JSONResponse(s.data.grade(fid))

    async def grades(request: Request, s: Service) -> Response:
        p = s.principal(request, "read")
        params(request, set())
        fid = request.path_params["facility_id"]
        _facility(s, p, fid)
        s.audit.append(p, "view", f"grade_history:{fid}")
        return JSONResponse(s.data.grade_history(fid))

    async def ring(request: Request, s: Service) -> Response:
        p = s.principal(request, "read")
        params(request, set())
        s.data.refresh()
        rid = request.path_params["ring_id"]
        r, members = ring_view(s, p, rid)
        s.audit.append(p, "view", f"ring:{rid}")
        return JSONResponse({"ring": r, "members": [
            with_names(m, node_type="node_type", role="role") for m in members]})

    async def outcome_post(request: Request, s: Service) -> Response:
        p = s.principal(request, "outcome")
        body = await read_body(request, MAX_FORM_BYTES)
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ApiError(400, "invalid_json", f"request: not valid JSON: {e}") from None
        rec = record_outcome(s, p, data)
        return JSONResponse(rec, status_code=201)

    async def outcome_list(request: Request, s: Service) -> Response:
        p = s.principal(request, "read")
        q = params(request, {"lead_id", "facility_id"})
        lid, fid = q.get("lead_id"), q.get("facility_id")
        s.data.refresh()
        rows = s.data.outcomes.list(lead_id=lid, facility_id=fid)
        rows = [r for r in rows if p.sees_district(r.get("district"))]
        if not p.can("unmask"):
            for r in rows:
                if r.get("subject_type") == "person":
                    r["subject_id"] = mask_id(r["subject_id"])
        s.audit.append(p, "view", "outcomes", lead_id=lid, facility_id=fid)
        return JSONResponse({"items": rows})

    async def outcomes(request: Request, s: Service) -> Response:
        if request.method == "POST":
            return await outcome_post(request, s)
        return await outcome_list(request, s)

    async def audit(request: Request, s: Service) -> Response:
        p = s.principal(request, "admin")
        n = _int(params(request, {"n"}).get("n"), "n", 100, 1, 10_000)
        return JSONResponse({"items": s.audit.tail(n), "viewer": p.token_id})

    async def openapi(request: Request) -> Response:
        from fraudscan.serving.openapi import spec

        return JSONResponse(spec())

    async def docs(request: Request) -> Response:
        from fraudscan.serving.openapi import docs_html

        return HTMLResponse(docs_html())

    routes = [
        Route("/v1/health", health, methods=["GET"]),
        Route("/v1/ready", guarded(ready), methods=["GET"]),
        Route("/v1/check", guarded(check), methods=["POST"]),
        Route("/v1/check/batch", guarded(check_batch), methods=["POST"]),
        Route("/v1/settle", guarded(settle), methods=["POST"]),
        Route("/v1/admit", guarded(admit), methods=["POST"]),
        Route("/v1/model", guarded(model), methods=["GET"]),
        Route("/v1/admin/reload", guarded(reload), methods=["POST"]),
        Route("/v1/me", guarded(me), methods=["GET"]),
        Route("/v1/suspects", guarded(suspects), methods=["GET"]),
        Route("/v1/suspects/export", guarded(export), methods=["GET"]),
        Route("/v1/leads/{lead_id}", guarded(lead), methods=["GET"]),
        Route("/v1/facilities/{facility_id}", guarded(facility), methods=["GET"]),
        Route("/v1/facilities/{facility_id}/grade", guarded(grade), methods=["GET"]),
        Route("/v1/facilities/{facility_id}/grades", guarded(grades), methods=["GET"]),
        Route("/v1/rings/{ring_id}", guarded(ring), methods=["GET"]),
        Route("/v1/outcomes", guarded(outcomes), methods=["GET", "POST"]),
        Route("/v1/audit", guarded(audit), methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
    from fraudscan.serving.workbench import workbench_routes

    routes += workbench_routes(guarded)

    async def not_found(request: Request, exc: Exception) -> Response:
        code = getattr(exc, "status_code", 404)
        if code == 405:
            return err(405, "method_not_allowed", f"{request.method} is not allowed on "
                       f"{request.url.path}", getattr(exc, "headers", None))
        return err(code, "not_found", f"no endpoint {request.url.path}; see /docs")

    async def server_error(request: Request, exc: Exception) -> Response:
        return err(500, "internal_error", f"{type(exc).__name__}: {exc}")

    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={404: not_found, 405: not_found, 500: server_error})
    app.state.services = holder  # tests may attach a started Service here
    if service is not None:
        app.state.service = service
    return app


GC_GEN0_THRESHOLD = 50_000


def tune_gc() -> None:
    """Keep the cyclic garbage collector off the loaded reference data.

    A worker holds ~600,000 long-lived objects (catalogue, cross-claim state mirror, model).
    A batch allocates many short-lived ones, which kept triggering collections that traversed
    all of them: a third of the batch endpoint's CPU. ``gc.freeze()`` after start-up moves what
    is loaded into the permanent generation (never scanned), and a larger first-generation
    threshold makes young collections rarer. Objects created later are collected as usual;
    cyclic garbage among the frozen ones (e.g. a replaced champion) is not reclaimed, which
    costs at most a model's size per champion swap.
    """
    import gc

    gc.collect()
    gc.freeze()
    _g0, g1, g2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, g1, g2)


def _watch_parent() -> None:
    """Exit when the process that started this worker is gone (a killed BentoML arbiter leaves
    its workers running in their own sessions; they must not keep serving unsupervised)."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                log.error("parent %s is gone; exiting", parent)
                os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def ring_view(s: Service, p: Principal, rid: str) -> tuple[dict, list[dict]]:
    r, members = s.data.ring(rid)
    if not p.can("all_districts") and not (s.data.ring_district(members) & set(p.districts)):
        raise NotFound(f"no ring {rid!r}")
    if not p.can("unmask"):
        for m in members:
            if m["node_type"] == "person":
                m["node_id"] = mask_id(m["node_id"])
    return r, members


def record_outcome(s: Service, p: Principal, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_request", "expected a JSON object with lead_id and outcome")
    unknown = set(data) - {"lead_id", "outcome", "amount_recovered", "note"}
    if unknown:
        raise ApiError(422, "invalid_request", f"unknown fields {sorted(unknown)}")
    lid = data.get("lead_id")
    if not isinstance(lid, str) or not lid:
        raise ApiError(422, "invalid_request", "lead_id: required string")
    oc = data.get("outcome")
    if oc not in OUTCOMES:
        raise ApiError(422, "invalid_request", f"outcome: one of {', '.join(OUTCOMES)}")
    amt = data.get("amount_recovered")
    if amt is not None and (isinstance(amt, bool) or not isinstance(amt, int | float)
                            or amt < 0 or amt != amt or amt > 1e12):
        raise ApiError(422, "invalid_request", "amount_recovered: a non-negative number")
    note = data.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 4000):
        raise ApiError(422, "invalid_request", "note: a string of at most 4000 characters")
    s.data.refresh()
    lead = s.data.lead(lid)
    if not p.sees_district(lead.get("district")):
        raise NotFound(f"no lead {lid!r}")
    rec = {"lead_id": lid, "subject_type": lead.get("subject_type"),
           "subject_id": lead.get("subject_id"), "facility_id": lead.get("facility_id"),
           "district": lead.get("district"), "outcome": oc,
           "amount_recovered": None if amt is None else float(amt), "note": note,
           "recorded_by": p.name}
    labels = _mirror_outcome(s, rec)
    out = s.data.outcomes.record(rec)
    out["label_recorded"] = labels
    s.audit.append(p, "outcome", f"lead:{lid}", outcome=oc, outcome_id=out["outcome_id"])
    if not p.can("unmask") and out.get("subject_type") == "person":
        out["subject_id"] = mask_id(out["subject_id"])
    return out


MIRROR = {"confirmed": "confirmed", "partly_confirmed": "confirmed", "not_confirmed": "cleared"}


def _mirror_outcome(s: Service, rec: dict[str, Any]) -> bool:
    """Also record a final outcome with :mod:`fraudscan.outcomes` (labels for retraining).

    Sanctions are not applied from the service (that rewrites canonical tables); a failure here
    is logged and reported as ``label_recorded: false`` — the outcome itself is already safe.
    """
    result = MIRROR.get(rec["outcome"])
    if result is None:
        return False
    try:
        import fcntl

        import fraudscan.outcomes as fo

        lock = s.ws.path / "serve" / "outcomes.lock"
        with open(lock, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fo.record_outcome(s.ws, rec["subject_type"], rec["subject_id"], result,
                              amount=float(rec.get("amount_recovered") or 0.0),
                              scenario=rec["lead_id"].split(":")[0],
                              note=f'lead {rec["lead_id"]}: {rec.get("note") or ""}',
                              apply=False)
        return True
    except Exception:
        log.exception("could not mirror outcome of %s to fraudscan.outcomes", rec["lead_id"])
        return False


def to_csv(items: list[dict]) -> str:
    buf = io.StringIO()
    buf.write("\ufeff")  # Excel opens UTF-8 Chinese correctly with a BOM
    w = csv.DictWriter(buf, fieldnames=list(SUSPECT_FIELDS))
    w.writeheader()
    for it in items:
        w.writerow({k: it.get(k) for k in SUSPECT_FIELDS})
    return buf.getvalue()
