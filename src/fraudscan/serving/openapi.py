"""The OpenAPI 3.1 description of the service (served at ``/openapi.json``, shown at ``/docs``)."""

from __future__ import annotations

import functools
import html
from typing import Any

from pydantic.json_schema import models_json_schema

from fraudscan.serving.core import BatchRequest, ServiceCheckResponse
from fraudscan.serving.data import OUTCOMES

REF = "#/components/schemas/{model}"


def _err(desc: str) -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(desc: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {
        "schema": schema or {"type": "object"}}}}


E400 = _err("Malformed JSON or a bad query parameter")
E401 = _err("Missing or unknown token")
E403 = _err("The token's role may not do this")
E404 = _err("Unknown id (or not in the caller's districts)")
E413 = _err("Body too large")
E422 = _err("Well-formed JSON that does not fit the schema; the message names the field")


def _q(name: str, desc: str, typ: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": desc,
            "schema": {"type": typ, **extra}}


def _p(name: str, desc: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": desc,
            "schema": {"type": "string"}}


SUSPECT_PARAMS = [
    _q("district", "片区, comma-separated"), _q("detector", "Detector name"),
    _q("subject_type", "facility, staff, person, settlement or ring"),
    _q("facility_id", "Facility code"), _q("period", "Period, e.g. 2025-03"),
    _q("min_score", "Lowest score", "number"), _q("q", "Text search over ids and names"),
    _q("status", "open, closed or an outcome", enum=["open", "closed", *OUTCOMES]),
    _q("limit", "Page size (1-1000, default 50)", "integer", minimum=1, maximum=1000),
    _q("offset", "Rows to skip", "integer", minimum=0, maximum=10_000_000),
]


@functools.cache
def spec() -> dict[str, Any]:
    _, defs = models_json_schema([(BatchRequest, "validation"),
                                  (ServiceCheckResponse, "serialization")], ref_template=REF)
    schemas = defs.get("$defs", {})
    schemas["Error"] = {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}
    schemas["OutcomeIn"] = {
        "type": "object", "required": ["lead_id", "outcome"], "additionalProperties": False,
        "properties": {"lead_id": {"type": "string", "minLength": 1},
                       "outcome": {"type": "string", "enum": list(OUTCOMES)},
                       "amount_recovered": {"type": "number", "minimum": 0, "maximum": 1e12},
                       "note": {"type": "string", "maxLength": 4000}}}
    check_body = {"required": True, "content": {"application/json": {
        "schema": {"$ref": REF.format(model="CheckRequest")}}}}
    sec = [{"bearer": []}]
    read = {"401": E401, "403": E403, "400": E400}
    paths: dict[str, Any] = {
        "/v1/health": {"get": {"summary": "Liveness", "security": [],
                               "responses": {"200": _json("Alive")}}},
        "/v1/ready": {"get": {"summary": "Readiness: state, model version, counters",
                              "security": [], "responses": {"200": _json("Ready"),
                                                            "503": _json("Not ready")}}},
        "/v1/check": {"post": {
            "summary": "Pre-payment check (3101/3102 shape): rules plus the champion's score",
            "parameters": [{"name": "settle", "in": "query", "required": False,
                            "description": "Also record the claim as settled in the "
                            "cross-claim state (committed before the answer)",
                            "schema": {"type": "boolean"}}],
            "requestBody": check_body,
            "responses": {"200": _json("Decision block/warn/pass", {
                "$ref": REF.format(model="ServiceCheckResponse")}),
                "413": E413, "422": E422, "503": _err("The rule check itself failed: the claim "
                                                      "was not checked"), **read}}},
        "/v1/check/batch": {"post": {
            "summary": "Many checks in one call", "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"$ref": REF.format(model="BatchRequest")}}}},
            "responses": {"200": _json("One result per request"), "413": E413, "422": E422,
                          "503": _err("The batch was not checked"), **read}}},
        "/v1/settle": {"post": {"summary": "Record claims as settled (cross-claim state)",
                                "requestBody": check_body,
                                "responses": {"200": _json("Settled ids"), "413": E413,
                                              "422": E422, **read}}},
        "/v1/admit": {"post": {"summary": "Register open stays at admission (cross-claim "
                               "state)", "requestBody": check_body,
                               "responses": {"200": _json("Admitted ids"), "413": E413,
                                             "422": E422, **read}}},
        "/v1/model": {"get": {"summary": "The champion in use",
                              "responses": {"200": _json("Model status"), **read}}},
        "/v1/admin/reload": {"post": {"summary": "Poll the registry now and swap the champion",
                                      "responses": {"200": _json("Versions"), **read}}},
        "/v1/me": {"get": {"summary": "The caller's role and districts",
                           "responses": {"200": _json("Principal"), **read}}},
        "/v1/suspects": {"get": {"summary": "Ranked suspect list with filters and paging",
                                 "parameters": SUSPECT_PARAMS,
                                 "responses": {"200": _json("A page of suspects"), **read}}},
        "/v1/suspects/export": {"get": {
            "summary": "Export the filtered list (CSV or JSON); audited",
            "parameters": [*SUSPECT_PARAMS, _q("format", "csv or json", enum=["csv", "json"])],
            "responses": {"200": {"description": "The rows", "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object"}}}}, **read}}},
        "/v1/leads/{lead_id}": {"get": {"summary": "One lead with its explanation",
                                        "parameters": [_p("lead_id", "Lead id")],
                                        "responses": {"200": _json("Lead"), "404": E404,
                                                      **read}}},
        "/v1/facilities/{facility_id}": {"get": {
            "summary": "Facility profile: grade, history, indicators vs peers, findings, rings",
            "parameters": [_p("facility_id", "Facility code")],
            "responses": {"200": _json("Profile"), "404": E404, **read}}},
        "/v1/facilities/{facility_id}/grade": {"get": {
            "summary": "Current grade", "parameters": [_p("facility_id", "Facility code")],
            "responses": {"200": _json("Grade"), "404": E404, **read}}},
        "/v1/facilities/{facility_id}/grades": {"get": {
            "summary": "Grade history", "parameters": [_p("facility_id", "Facility code")],
            "responses": {"200": _json("History"), "404": E404, **read}}},
        "/v1/rings/{ring_id}": {"get": {"summary": "One ring and its members",
                                        "parameters": [_p("ring_id", "Ring id")],
                                        "responses": {"200": _json("Ring"), "404": E404,
                                                      **read}}},
        "/v1/outcomes": {
            "post": {"summary": "Record a case outcome (audited)", "requestBody": {
                "required": True, "content": {"application/json": {"schema": {
                    "$ref": REF.format(model="OutcomeIn")}}}},
                "responses": {"201": _json("Recorded"), "404": E404, "413": E413,
                              "422": E422, **read}},
            "get": {"summary": "Recorded outcomes",
                    "parameters": [_q("lead_id", "Lead id"), _q("facility_id", "Facility")],
                    "responses": {"200": _json("Outcomes"), **read}}},
        "/v1/audit": {"get": {"summary": "Tail of the audit log (admin)",
                              "parameters": [_q("n", "Lines", "integer", minimum=1,
                                                maximum=10_000)],
                              "responses": {"200": _json("Audit records"), **read}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "fraudscan scoring service", "version": "1",
                 "description": "Pre-payment checks in the shape of the national 3101/3102 "
                 "interfaces, inspector API and workbench. See docs/service.md."},
        "servers": [{"url": "/"}],
        "security": sec,
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }


def docs_html() -> str:
    s = spec()
    rows = []
    for path, ops in s["paths"].items():
        for method, op in ops.items():
            rows.append(f"<tr><td><code>{method.upper()}</code></td><td><code>"
                        f"{html.escape(path)}</code></td><td>{html.escape(op['summary'])}"
                        "</td></tr>")
    return ("<!doctype html><meta charset=utf-8><title>fraudscan API</title>"
            "<style>body{font-family:sans-serif;margin:2em}td{padding:2px 8px}</style>"
            "<h1>fraudscan API</h1><p>Machine-readable: <a href='/openapi.json'>/openapi.json"
            "</a>. Send <code>Authorization: Bearer &lt;token&gt;</code>.</p><table>"
            + "".join(rows) + "</table>")
