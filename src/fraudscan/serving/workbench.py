"""The inspector workbench: server-rendered HTML, Chinese by default (``?lang=en`` switches).

No JavaScript framework and no CDN: pages are plain HTML forms, charts are inline SVG drawn here,
and a ring is laid out with networkx on the server. Every page view, export and outcome is audited
like the API.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from fraudscan.serving.data import OUTCOMES
from fraudscan.serving.names import name

LANG_COOKIE = "fraudscan_lang"

T = {
    "title": ("医保基金监管 · 线索工作台", "Fund supervision · inspector workbench"),
    "suspects": ("可疑线索", "Suspects"), "district": ("片区", "District"),
    "detector": ("检测模型", "Detector"), "subject": ("对象", "Subject"),
    "subject_type": ("对象类型", "Subject type"), "facility": ("定点机构", "Facility"),
    "period": ("期间", "Period"), "score": ("风险分", "Score"), "amount": ("涉及金额", "Amount"),
    "claims": ("结算数", "Claims"), "outcome": ("处理结果", "Outcome"),
    "min_score": ("最低风险分", "Min score"), "search": ("搜索", "Search"),
    "status": ("状态", "Status"), "filter": ("筛选", "Filter"), "export": ("导出CSV", "Export CSV"),
    "all": ("全部", "All"), "open": ("未处理", "Open"), "closed": ("已处理", "Closed"),
    "prev": ("上一页", "Previous"), "next": ("下一页", "Next"),
    "total": ("共 {n} 条", "{n} in total"), "grade": ("信用等级", "Grade"),
    "grade_history": ("等级历史", "Grade history"),
    "indicators": ("指标与同类机构对比", "Indicators against peers"),
    "indicator": ("指标", "Indicator"), "value": ("本机构", "This facility"),
    "peer_median": ("同类中位数", "Peer median"), "peer_p90": ("同类P90", "Peer P90"),
    "reasons": ("风险原因", "Reasons"), "findings": ("规则命中", "Rule findings"),
    "rule": ("规则", "Rule"), "rings": ("关联团伙", "Linked rings"), "ring": ("团伙", "Ring"),
    "members": ("成员", "Members"), "role": ("角色", "Role"), "type": ("类型", "Type"),
    "record": ("登记处理结果", "Record a case outcome"), "lead": ("线索", "Lead"),
    "save": ("保存", "Save"), "note": ("备注", "Note"),
    "recovered": ("追回金额", "Amount recovered"), "recorded": ("已登记", "Recorded"),
    "by": ("登记人", "By"), "at": ("时间", "At"), "evidence": ("证据", "Evidence"),
    "login": ("登录", "Log in"), "token": ("访问令牌", "Access token"),
    "logout": ("退出", "Log out"), "none": ("无", "None"), "back": ("返回列表", "Back to list"),
    "level": ("等级", "Level"), "kind": ("机构类型", "Type"),
    "confirmed": ("查实", "confirmed"), "partly_confirmed": ("部分查实", "partly confirmed"),
    "not_confirmed": ("未查实", "not confirmed"), "referred": ("移送", "referred"),
    "in_progress": ("核查中", "in progress"), "bad_token": ("令牌无效", "Unknown token"),
    "outcomes": ("处理记录", "Case outcomes"), "masked": ("人员编号已脱敏", "person ids masked"),
    # ring statistics and member table
    "size": ("规模", "Size"), "persons": ("参保人", "Persons"), "staff": ("医务人员", "Staff"),
    "facilities": ("机构", "Facilities"), "density": ("密度", "Density"),
    "synchrony": ("同步性", "Synchrony"), "id": ("编号", "ID"), "degree": ("关联数", "Degree"),
    # rule actions
    "block": ("拒付", "block"), "warn": ("提示", "warn"), "pass": ("通过", "pass"),
}


def lang_of(request: Request) -> str:
    q = request.query_params.get("lang")
    if q in ("zh", "en"):
        return q
    c = request.cookies.get(LANG_COOKIE)
    return c if c in ("zh", "en") else "zh"


def tr(key: str, lang: str, **kw: Any) -> str:
    zh, en = T.get(key, (key, key))
    s = en if lang == "en" else zh
    return s.format(**kw) if kw else s


def e(v: Any) -> str:
    return "" if v is None else html.escape(str(v))


def named(kind: str, key: Any, lang: str, cls: str = "") -> str:
    """A cell body showing the display name of an internal id, the id as its tooltip
    (``title``) and in ``data-id`` (inspectors read names; the id stays at hand)."""
    if key is None:
        return ""
    c = f' class="{cls}"' if cls else ""
    return (f'<span{c} title="{e(key)}" data-id="{e(key)}">{e(name(kind, key, lang))}'
            '</span>')


def num(v: Any, nd: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, int | float):
        return f"{v:,.{nd}f}" if isinstance(v, float) else f"{v:,}"
    return e(v)


CSS = """
body{font-family:"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;margin:0;
color:#222;background:#f6f7f9}
header{background:#0b4f8a;color:#fff;padding:10px 20px;display:flex;gap:20px;
align-items:center}
header a{color:#fff}main{padding:16px 20px}
table{border-collapse:collapse;background:#fff;width:100%;margin:8px 0 16px}
td,th{border:1px solid #dde;padding:4px 8px;font-size:14px;text-align:left}
th{background:#eef2f7}.num{text-align:right}form.filters{display:flex;flex-wrap:wrap;gap:8px;
align-items:end;background:#fff;padding:10px;border:1px solid #dde}
form.filters label{display:flex;flex-direction:column;font-size:12px}
.grade{font-size:28px;font-weight:bold;padding:4px 14px;border-radius:6px;color:#fff}
.gA,.gblue{background:#1565c0}.gB,.gyellow{background:#c0a000}.gC,.gorange{background:#ef6c00}
.gD,.gred{background:#c62828}
.card{background:#fff;border:1px solid #dde;padding:10px 14px;margin-bottom:14px}
.muted{color:#777;font-size:12px}
"""


def page(title: str, body: str, lang: str, request: Request) -> HTMLResponse:
    other = "en" if lang == "zh" else "zh"
    q = dict(request.query_params)
    q["lang"] = other
    label = "English" if other == "en" else "中文"
    switch = f'<a id="lang-switch" href="?{e(urlencode(q))}">{label}</a>'
    doc = (f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head>'
           f'<meta charset="utf-8"><title>{e(title)}</title><style>{CSS}</style></head><body>'
           f'<header><strong>{e(tr("title", lang))}</strong><a href="/wb/">'
           f'{e(tr("suspects", lang))}</a><span style="flex:1"></span>{switch}'
           f'<a href="/wb/logout">{e(tr("logout", lang))}</a></header><main>{body}</main>'
           '</body></html>')
    resp = HTMLResponse(doc)
    if request.query_params.get("lang") in ("zh", "en"):
        resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return resp


# -- charts (inline SVG) -------------------------------------------------------------------------

def svg_peer_bars(rows: list[dict[str, Any]], lang: str) -> str:
    """One row per indicator: this facility's bar against the peer median and P90 ticks."""
    w, rh, left = 560, 26, 150
    h = rh * len(rows) + 20
    out = [f'<svg class="chart" id="peer-chart" width="{w}" height="{h}" '
           f'viewBox="0 0 {w} {h}" role="img" xmlns="http://www.w3.org/2000/svg">']
    for i, r in enumerate(rows):
        vals = [x for x in (r["value"], r["peer_median"], r["peer_p90"]) if x is not None]
        top = max(vals) * 1.15 if vals and max(vals) > 0 else 1.0
        y = 10 + i * rh
        name = r["name_zh"] if lang == "zh" else r["name_en"]
        out.append(f'<text x="0" y="{y + 14}" font-size="12">{e(name)}</text>')
        span = w - left - 70

        def x(v: float, span: int = span, top: float = top) -> float:
            return left + span * max(v, 0) / top

        if r["value"] is not None:
            hot = r["peer_p90"] is not None and r["value"] > r["peer_p90"]
            out.append(f'<rect x="{left}" y="{y + 3}" width="{x(r["value"]) - left:.1f}" '
                       f'height="14" fill="{"#c62828" if hot else "#1565c0"}"/>')
            out.append(f'<text x="{x(r["value"]) + 4:.1f}" y="{y + 14}" font-size="11">'
                       f'{num(r["value"])}</text>')
        for key, col in (("peer_median", "#333"), ("peer_p90", "#ef6c00")):
            if r[key] is not None:
                out.append(f'<line x1="{x(r[key]):.1f}" x2="{x(r[key]):.1f}" y1="{y}" '
                           f'y2="{y + 20}" stroke="{col}" stroke-width="2"/>')
    out.append("</svg>")
    legend = (f'<div class="muted"><span style="color:#1565c0">■</span> {e(tr("value", lang))}'
              f' &nbsp; <span style="color:#333">|</span> {e(tr("peer_median", lang))} &nbsp; '
              f'<span style="color:#ef6c00">|</span> {e(tr("peer_p90", lang))}</div>')
    return "".join(out) + legend


def svg_grade_history(hist: list[dict[str, Any]]) -> str:
    if not hist:
        return ""
    w, h, pad = 560, 140, 30
    n = len(hist)
    step = (w - 2 * pad) / max(n - 1, 1)
    pts = []
    out = [f'<svg class="chart" id="grade-chart" width="{w}" height="{h}" '
           'xmlns="http://www.w3.org/2000/svg">']
    scale = ("blue", "yellow", "orange", "red") if any(
        r.get("grade") in ("blue", "yellow", "orange", "red") for r in hist) else \
        ("A", "B", "C", "D")
    for gi, g in enumerate(scale):
        y = pad + gi * (h - 2 * pad) / 3
        out.append(f'<text x="2" y="{y + 4:.1f}" font-size="11">{g}</text><line x1="{pad}" '
                   f'x2="{w - pad}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
    for i, r in enumerate(hist):
        gi = scale.index(r.get("grade")) if r.get("grade") in scale else 0
        x = pad + i * step
        y = pad + gi * (h - 2 * pad) / 3
        pts.append(f"{x:.1f},{y:.1f}")
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#0b4f8a"><title>'
                   f'{e(r.get("period"))}: {e(r.get("grade"))}</title></circle>')
        if n <= 14 or i % max(n // 12, 1) == 0:
            out.append(f'<text x="{x:.1f}" y="{h - 4}" font-size="10" text-anchor="middle">'
                       f'{e(r.get("period"))}</text>')
    out.insert(1, f'<polyline points="{" ".join(pts)}" fill="none" stroke="#0b4f8a"/>')
    out.append("</svg>")
    return "".join(out)


ROLE_COLORS = {"hub": "#c62828", "broker": "#ef6c00", "patient": "#1565c0",
               "prescriber": "#6a1b9a", "group": "#999", "recruiter": "#2e7d32"}


def svg_ring(members: list[dict[str, Any]], edges: list[tuple[str, str, float]],
             lang: str = "zh") -> str:
    import networkx as nx

    G = nx.Graph()
    for m in members:
        G.add_node(f'{m["node_type"]}:{m["node_id"]}', **m)
    for u, v, wgt in edges:
        if u in G and v in G:
            G.add_edge(u, v, weight=wgt)
    w, h = 640, 460
    pos = nx.spring_layout(G, seed=1) if len(G) else {}
    out = [f'<svg id="ring-graph" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg" '
           'style="background:#fff;border:1px solid #dde">']

    def xy(k: str) -> tuple[float, float]:
        x, y = pos[k]
        return 20 + (x + 1) / 2 * (w - 40), 20 + (y + 1) / 2 * (h - 40)

    for u, v in G.edges():
        (x1, y1), (x2, y2) = xy(u), xy(v)
        out.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                   'stroke="#bbb"/>')
    for k, d in G.nodes(data=True):
        x, y = xy(k)
        r = 9 if d.get("node_type") in ("facility", "pharmacy") else 6
        col = ROLE_COLORS.get(d.get("role"), "#555")
        shape = (f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r}" height="{2 * r}" '
                 f'fill="{col}"' if d.get("node_type") in ("facility", "pharmacy", "staff")
                 else f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{col}"')
        out.append(f'{shape} class="node"><title>{e(name("node_type", d.get("node_type"), lang))} '
                   f'{e(d.get("node_id"))} ({e(name("role", d.get("role"), lang))})</title>'
                   f'{"</rect>" if shape.startswith("<rect") else "</circle>"}')
        if d.get("node_type") in ("facility", "pharmacy", "staff"):
            out.append(f'<text x="{x + 10:.1f}" y="{y + 4:.1f}" font-size="10">'
                       f'{e(d.get("node_id"))}</text>')
    out.append("</svg>")
    return "".join(out)


# -- pages ---------------------------------------------------------------------------------------

def workbench_routes(guarded: Callable) -> list[Route]:
    from fraudscan.serving.app import (
        COOKIE,
        ApiError,
        Service,
        lead_view,
        record_outcome,
        ring_view,
        suspect_query,
        to_csv,
    )

    def opt(values: list[Any], cur: str | None, lang: str, label_all: bool = True,
            kind: str | None = None) -> str:
        s = [f'<option value="">{e(tr("all", lang))}</option>'] if label_all else []
        for v in values:
            sel = " selected" if str(v) == (cur or "") else ""
            label = name(kind, v, lang) if kind else v
            s.append(f'<option value="{e(v)}"{sel}>{e(label)}</option>')
        return "".join(s)

    async def index(request: Request) -> Response:
        return RedirectResponse("/wb/", status_code=307)

    async def login_get(request: Request) -> Response:
        lang = lang_of(request)
        nxt = request.query_params.get("next", "/wb/")
        bad = request.query_params.get("bad")
        body = (f'<div class="card"><h2>{e(tr("login", lang))}</h2>'
                + (f'<p style="color:#c62828">{e(tr("bad_token", lang))}</p>' if bad else "")
                + f'<form method="post" action="/wb/login"><input type="hidden" name="next" '
                f'value="{e(nxt)}"><label>{e(tr("token", lang))} <input name="token" '
                f'id="token" type="password" size="60"></label> <button id="login" '
                f'type="submit">{e(tr("login", lang))}</button></form></div>')
        return page(tr("login", lang), body, lang, request)

    async def login_post(request: Request, s: Service) -> Response:
        form = await request.form()
        token = str(form.get("token") or "").strip()
        nxt = str(form.get("next") or "/wb/")
        if not nxt.startswith("/wb/"):
            nxt = "/wb/"
        p = s.auth.principal(token) if s.auth_enabled else None
        if s.auth_enabled and (p is None or not p.can("read")):
            return RedirectResponse("/wb/login?bad=1&next=" + nxt, status_code=303)
        resp = RedirectResponse(nxt, status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=12 * 3600)
        if p is not None:
            s.audit.append(p, "login", "workbench")
        return resp

    async def logout(request: Request) -> Response:
        resp = RedirectResponse("/wb/login", status_code=303)
        resp.delete_cookie(COOKIE)
        return resp

    async def suspects(request: Request, s: Service) -> Response:
        p = s.principal(request, "read", browser=True)
        lang = lang_of(request)
        q = {k: v for k, v in request.query_params.items() if v != "" and k != "lang"}
        total, items = suspect_query(s, p, q)
        s.audit.append(p, "view", "wb:suspects", query=q, returned=len(items))
        leads = s.data.leads
        if not p.can("all_districts"):
            leads = leads[leads["district"].isin(p.districts)]
        districts = sorted(x for x in leads["district"].dropna().unique())
        detectors = sorted(leads["detector"].dropna().unique())
        stypes = sorted(leads["subject_type"].dropna().unique())
        st_opts = "".join(f'<option value="{v}"{" selected" if q.get("status") == v else ""}>'
                          f'{e(tr(v, lang))}</option>' for v in ("open", "closed", *OUTCOMES))
        form = (
            '<form class="filters" method="get" action="/wb/" id="filters">'
            f'<label>{e(tr("district", lang))}<select name="district" id="f-district">'
            f'{opt(districts, q.get("district"), lang)}</select></label>'
            f'<label>{e(tr("detector", lang))}<select name="detector" id="f-detector">'
            f'{opt(detectors, q.get("detector"), lang, kind="detector")}</select></label>'
            f'<label>{e(tr("subject_type", lang))}<select name="subject_type" id="f-stype">'
            f'{opt(stypes, q.get("subject_type"), lang, kind="subject_type")}</select>'
            '</label>'
            f'<label>{e(tr("min_score", lang))}<input name="min_score" id="f-min" size="5" '
            f'value="{e(q.get("min_score"))}"></label>'
            f'<label>{e(tr("search", lang))}<input name="q" id="f-q" value="{e(q.get("q"))}">'
            f'</label><label>{e(tr("status", lang))}<select name="status" id="f-status">'
            f'<option value="">{e(tr("all", lang))}</option>{st_opts}</select></label>'
            f'<button type="submit" id="f-submit">{e(tr("filter", lang))}</button>'
            f'<a id="export" href="/wb/export.csv?{e(urlencode(q))}">'
            f'{e(tr("export", lang))}</a></form>')
        rows = []
        for it in items:
            fac = (f'<a class="fac" href="/wb/facility/{e(it["facility_id"])}">'
                   f'{e(it["facility_name"] or it["facility_id"])}</a>'
                   if it["facility_id"] else "")
            rows.append(
                f'<tr class="lead-row" data-lead="{e(it["lead_id"])}" data-district='
                f'"{e(it["district"])}"><td><a href="/wb/lead/{e(it["lead_id"])}">'
                f'{e(it["lead_id"])}</a></td><td class="detector">'
                f'{named("detector", it["detector"], lang)}</td><td>'
                f'{named("subject_type", it["subject_type"], lang)} {e(it["subject_id"])}</td>'
                f'<td>{fac}</td>'
                f'<td>{e(it["district"])}</td><td>{e(it["period"])}</td>'
                f'<td class="num">{num(it["score"], 3)}</td><td class="num">'
                f'{num(it["amount"])}</td><td class="num">{it["n_settlements"]}</td>'
                f'<td class="outcome">{e(tr(it["outcome"], lang)) if it["outcome"] else ""}'
                '</td></tr>')
        head = "".join(f"<th>{e(tr(k, lang))}</th>" for k in (
            "lead", "detector", "subject", "facility", "district", "period", "score", "amount",
            "claims", "outcome"))
        limit = int(q.get("limit", 50))
        off = int(q.get("offset", 0))
        nav = []
        if off > 0:
            nav.append(f'<a href="?{e(urlencode({**q, "offset": max(off - limit, 0)}))}">'
                       f'{e(tr("prev", lang))}</a>')
        if off + limit < total:
            nav.append(f'<a id="next-page" href="?{e(urlencode({**q, "offset": off + limit}))}"'
                       f'>{e(tr("next", lang))}</a>')
        masked = "" if p.can("unmask") else f' · {e(tr("masked", lang))}'
        body = (f'<h2>{e(tr("suspects", lang))}</h2>{form}<p id="total">'
                f'{e(tr("total", lang, n=total))}{masked}</p><table id="suspects"><thead><tr>'
                f'{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>{" ".join(nav)}')
        return page(tr("suspects", lang), body, lang, request)

    async def export_csv(request: Request, s: Service) -> Response:
        p = s.principal(request, "export", browser=True)
        q = {k: v for k, v in request.query_params.items() if v != "" and k != "lang"}
        q.setdefault("limit", "1000")
        _total, items = suspect_query(s, p, q)
        s.audit.append(p, "export", "wb:suspects", query=q, rows=len(items), format="csv")
        return Response(to_csv(items), media_type="text/csv; charset=utf-8", headers={
            "content-disposition": 'attachment; filename="suspects.csv"'})

    def outcome_form(lead_ids: list[str], lang: str, back: str) -> str:
        if not lead_ids:
            return ""
        lo = "".join(f'<option value="{e(x)}">{e(x)}</option>' for x in lead_ids)
        oo = "".join(f'<option value="{o}">{e(tr(o, lang))}</option>' for o in OUTCOMES)
        return (f'<div class="card"><h3>{e(tr("record", lang))}</h3><form method="post" '
                f'action="/wb/outcome" id="outcome-form"><input type="hidden" name="back" '
                f'value="{e(back)}"><label>{e(tr("lead", lang))} <select name="lead_id" '
                f'id="o-lead">{lo}</select></label> <label>{e(tr("outcome", lang))} <select '
                f'name="outcome" id="o-outcome">{oo}</select></label> <label>'
                f'{e(tr("recovered", lang))} <input name="amount_recovered" id="o-amount" '
                f'size="8"></label> <label>{e(tr("note", lang))} <input name="note" '
                f'id="o-note" size="30"></label> <button type="submit" id="o-save">'
                f'{e(tr("save", lang))}</button></form></div>')

    def outcomes_table(rows: list[dict[str, Any]], lang: str) -> str:
        if not rows:
            return f'<p class="muted">{e(tr("none", lang))}</p>'
        body = "".join(
            f'<tr class="outcome-row"><td>{e(r["lead_id"])}</td><td>'
            f'{e(tr(r["outcome"], lang))}</td><td class="num">{num(r["amount_recovered"])}</td>'
            f'<td>{e(r["note"])}</td><td>{e(r["recorded_by"])}</td><td>{e(r["recorded_at"])}'
            '</td></tr>' for r in rows)
        head = "".join(f"<th>{e(tr(k, lang))}</th>" for k in (
            "lead", "outcome", "recovered", "note", "by", "at"))
        return f'<table id="outcomes"><tr>{head}</tr>{body}</table>'

    async def facility(request: Request, s: Service) -> Response:
        p = s.principal(request, "read", browser=True)
        lang = lang_of(request)
        fid = request.path_params["facility_id"]
        s.data.refresh()
        d = s.data
        f = d.facility(fid)
        if not p.sees_district(f.get("district")):
            from fraudscan.serving.data import NotFound

            raise NotFound(f"no facility {fid!r}")
        s.audit.append(p, "view", f"wb:facility:{fid}")
        g = d.grade(fid)
        hist = d.grade_history(fid)["history"]
        ind = d.peer_indicators(fid)
        _total, items = suspect_query(s, p, {"facility_id": fid, "limit": "200"})
        lead_rows = []
        for it in items:
            lv = lead_view(s, p, it["lead_id"])
            reasons = "; ".join(r["zh" if lang == "zh" else "en"]
                                for r in lv["reasons"]["items"][:4])
            lead_rows.append(
                f'<tr class="lead-row"><td><a href="/wb/lead/{e(it["lead_id"])}">'
                f'{e(it["lead_id"])}</a></td><td class="detector">'
                f'{named("detector", it["detector"], lang)}</td><td>{e(it["period"])}'
                f'</td><td class="num">{num(it["score"], 3)}</td><td class="num">'
                f'{num(it["amount"])}</td><td>{e(reasons)}</td><td class="outcome">'
                f'{e(tr(it["outcome"], lang)) if it["outcome"] else ""}</td></tr>')
        fh = "".join(f"<th>{e(tr(k, lang))}</th>" for k in (
            "lead", "detector", "period", "score", "amount", "reasons", "outcome"))
        finds = d.facility_findings(fid)
        frows = "".join(f'<tr><td>{named("rule", x["rule_id"], lang)}</td>'
                        f'<td>{e(x.get("message"))}</td>'
                        f'<td>{e(tr(x.get("action") or "", lang))}</td><td class="num">'
                        f'{x["claims"]}</td>'
                        f'<td class="num">{num(x["amount"])}</td></tr>' for x in finds[:30])
        rings = d.facility_rings(fid)
        rlinks = " ".join(f'<a class="ring-link" href="/wb/ring/{e(r["ring_id"])}">'
                          f'{e(r["ring_id"])}</a> ({num(r["score"], 3)})' for r in rings)
        irows = "".join(f'<tr><td>{e(r["name_zh"] if lang == "zh" else r["name_en"])}</td>'
                        f'<td class="num">{num(r["value"])}</td><td class="num">'
                        f'{num(r["peer_median"])}</td><td class="num">{num(r["peer_p90"])}</td>'
                        '</tr>' for r in ind)
        ih = "".join(f"<th>{e(tr(k, lang))}</th>" for k in (
            "indicator", "value", "peer_median", "peer_p90"))
        body = (
            f'<p><a href="/wb/">← {e(tr("back", lang))}</a></p>'
            f'<h2 id="facility-name">{e(f.get("facility_name"))} <span class="muted">{e(fid)}'
            f'</span></h2><div class="card">{e(tr("district", lang))}: {e(f.get("district"))}'
            f' · {e(tr("kind", lang))}: {named("facility_type", f.get("facility_type"), lang)}'
            f' · {e(tr("level", lang))}: '
            f'{e(f.get("level"))} &nbsp; {e(tr("grade", lang))}: <span id="grade" class="grade '
            f'g{e(g["grade"])}">{e(g["grade"])}</span> <span class="muted">'
            f'({named("grade_source", g.get("source"), lang)})</span></div>'
            f'<div class="card"><h3>{e(tr("grade_history", lang))}</h3>'
            f'{svg_grade_history(hist) or e(tr("none", lang))}</div>'
            f'<div class="card"><h3>{e(tr("indicators", lang))}</h3>{svg_peer_bars(ind, lang)}'
            f'<table>{ih}{irows}</table></div>'
            f'<div class="card"><h3>{e(tr("suspects", lang))} / {e(tr("reasons", lang))}</h3>'
            f'<table id="facility-leads"><tr>{fh}</tr>{"".join(lead_rows)}</table></div>'
            f'{outcome_form([it["lead_id"] for it in items], lang, f"/wb/facility/{fid}")}'
            f'<div class="card"><h3>{e(tr("outcomes", lang))}</h3>'
            f'{outcomes_table(d.outcomes.list(facility_id=fid), lang)}</div>'
            f'<div class="card"><h3>{e(tr("findings", lang))}</h3>'
            + (f'<table><tr><th>{e(tr("rule", lang))}</th><th></th><th></th><th>'
               f'{e(tr("claims", lang))}</th><th>{e(tr("amount", lang))}</th></tr>{frows}'
               '</table>' if finds else f'<p class="muted">{e(tr("none", lang))}</p>')
            + f'</div><div class="card"><h3>{e(tr("rings", lang))}</h3>'
            f'{rlinks or e(tr("none", lang))}</div>')
        return page(str(f.get("facility_name") or fid), body, lang, request)

    async def lead(request: Request, s: Service) -> Response:
        p = s.principal(request, "read", browser=True)
        lang = lang_of(request)
        s.data.refresh()
        lid = request.path_params["lead_id"]
        lv = lead_view(s, p, lid)
        s.audit.append(p, "view", f"wb:lead:{lid}")
        import json as _json

        reasons = "".join(f'<li>{e(r["zh" if lang == "zh" else "en"])}</li>'
                          for r in lv["reasons"]["items"])
        fac = (f'<a href="/wb/facility/{e(lv["facility_id"])}">{e(lv.get("facility_name"))} '
               f'{e(lv["facility_id"])}</a>' if lv.get("facility_id") else "")
        body = (f'<p><a href="/wb/">← {e(tr("back", lang))}</a></p><h2>{e(tr("lead", lang))} '
                f'{e(lid)}</h2><div class="card">{e(tr("detector", lang))}: '
                f'{named("detector", lv["detector"], lang, "detector")} · '
                f'{e(tr("subject", lang))}: {named("subject_type", lv["subject_type"], lang)} '
                f'{e(lv["subject_id"])} · {e(tr("facility", lang))}: {fac} · '
                f'{e(tr("score", lang))}: {num(lv["score"], 3)} · {e(tr("amount", lang))}: '
                f'{num(lv["amount"])}</div><div class="card"><h3>{e(tr("reasons", lang))} '
                f'<span class="muted">('
                f'{named("reason_source", lv["reasons"]["source"], lang)})</span></h3><ul>{reasons}'
                f'</ul><h3>{e(tr("evidence", lang))}</h3><pre>'
                f'{e(_json.dumps(lv.get("evidence"), ensure_ascii=False, indent=1))}</pre></div>'
                f'{outcome_form([lid], lang, f"/wb/lead/{lid}")}<div class="card"><h3>'
                f'{e(tr("outcomes", lang))}</h3>{outcomes_table(lv["outcomes"], lang)}</div>')
        return page(lid, body, lang, request)

    async def ring(request: Request, s: Service) -> Response:
        p = s.principal(request, "read", browser=True)
        lang = lang_of(request)
        s.data.refresh()
        rid = request.path_params["ring_id"]
        r, members = ring_view(s, p, rid)
        s.audit.append(p, "view", f"wb:ring:{rid}")
        try:
            import fraudscan.graph as graph

            G = graph.ring_graph(s.ws, rid)
            edges = [(u, v, float(dd.get("weight", 1.0))) for u, v, dd in G.edges(data=True)]
        except Exception:
            edges = []
        # members may be masked: map real keys to the shown ones by position in ring_members
        real = s.data.ring(rid)[1]
        key = {f'{a["node_type"]}:{a["node_id"]}': f'{b["node_type"]}:{b["node_id"]}'
               for a, b in zip(real, members, strict=True)}
        edges = [(key.get(u, u), key.get(v, v), w) for u, v, w in edges]
        mrows = "".join(f'<tr><td>{named("node_type", m["node_type"], lang)}</td><td>'
                        + (f'<a href="/wb/facility/{e(m["node_id"])}">{e(m["node_id"])}</a>'
                           if m["node_type"] in ("facility", "pharmacy") else e(m["node_id"]))
                        + f'</td><td>{named("role", m["role"], lang)}</td><td class="num">'
                        f'{m["degree"]}</td></tr>'
                        for m in members)
        stats = " · ".join(f"{e(tr(k, lang))}: "
                           f"{num(r[k], 3) if isinstance(r[k], float) else e(r[k])}"
                           for k in ("size", "persons", "staff", "facilities", "density",
                                     "synchrony", "amount", "score") if k in r)
        body = (f'<p><a href="/wb/">← {e(tr("back", lang))}</a></p><h2>{e(tr("ring", lang))} '
                f'{e(rid)}</h2><div class="card">{stats}</div>{svg_ring(members, edges, lang)}'
                f'<h3>{e(tr("members", lang))}</h3><table id="ring-members"><tr><th>'
                f'{e(tr("type", lang))}</th><th>{e(tr("id", lang))}</th><th>'
                f'{e(tr("role", lang))}</th><th>{e(tr("degree", lang))}'
                f'</th></tr>{mrows}</table>')
        return page(rid, body, lang, request)

    async def outcome(request: Request, s: Service) -> Response:
        p = s.principal(request, "outcome", browser=True)
        form = await request.form()
        amt = str(form.get("amount_recovered") or "").strip()
        data: dict[str, Any] = {"lead_id": str(form.get("lead_id") or ""),
                                "outcome": str(form.get("outcome") or "")}
        if amt:
            try:
                data["amount_recovered"] = float(amt)
            except ValueError:
                raise ApiError(422, "invalid_request", "amount_recovered: a number") from None
        if form.get("note"):
            data["note"] = str(form.get("note"))
        record_outcome(s, p, data)
        back = str(form.get("back") or "/wb/")
        return RedirectResponse(back if back.startswith("/wb/") else "/wb/", status_code=303)

    return [
        Route("/", index, methods=["GET"]),
        Route("/wb", index, methods=["GET"]),
        Route("/wb/login", login_get, methods=["GET"]),
        Route("/wb/login", guarded(login_post), methods=["POST"]),
        Route("/wb/logout", logout, methods=["GET"]),
        Route("/wb/", guarded(suspects), methods=["GET"]),
        Route("/wb/export.csv", guarded(export_csv), methods=["GET"]),
        Route("/wb/facility/{facility_id}", guarded(facility), methods=["GET"]),
        Route("/wb/lead/{lead_id}", guarded(lead), methods=["GET"]),
        Route("/wb/ring/{ring_id}", guarded(ring), methods=["GET"]),
        Route("/wb/outcome", guarded(outcome), methods=["POST"]),
    ]
