"""The single-claim rule engine: reference data in memory, cross-claim state on disk.

>>> eng = RuleEngine.from_workspace("W")             # doctest: +SKIP
>>> eng.check(request_dict).decision                  # doctest: +SKIP
'block'
>>> eng.settle(request_dict)                          # doctest: +SKIP

The same object backs the CLI (``fraudscan rules check``) and the HTTP service; ``settle`` commits
before it returns, so an acknowledged settlement survives a crash.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraudscan.rules.checks import Checker
from fraudscan.rules.claim import (
    CheckRequest,
    CheckResponse,
    build_response,
    claims_from_request,
    parse_request,
)
from fraudscan.rules.context import (
    Claim,
    Finding,
    Line,
    _none,
    catalogue_index,
    facility_index,
)
from fraudscan.rules.model import RuleSet, load_rules
from fraudscan.rules.state import STATE_FILE, StateStore
from fraudscan.workspace import Workspace


class RuleEngine:
    """Checks one claim at a time; cross-claim rules read and ``settle`` writes the state."""

    def __init__(
        self,
        catalogue: pd.DataFrame,
        *,
        rules: RuleSet | None = None,
        facilities: pd.DataFrame | None = None,
        state: StateStore | None = None,
    ):
        self.rules = rules if rules is not None else load_rules()
        self.catalogue = catalogue_index(catalogue)
        self.facilities = facility_index(facilities) if facilities is not None else {}
        self.state = state
        self._checkers: dict[tuple[str, ...] | None, Checker] = {}
        self.checker = self._checker(None)
        if state is not None:  # first-line drugs (R20) whose use settle() must record
            state.track = state.track | self.checker.track

    @classmethod
    def from_workspace(
        cls,
        workspace: str | os.PathLike[str] | Workspace,
        *,
        rules: RuleSet | None = None,
        state_path: str | os.PathLike[str] | None = None,
        load_registries: bool = True,
        durable: bool = False,
    ) -> RuleEngine:
        """Catalogue and facilities from the workspace; state in ``W/rules_state.sqlite``.

        With ``load_registries`` the death and suspension registries in the state are refreshed
        from the workspace's persons and staff tables.
        """
        ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
        ws.require()
        state = StateStore(Path(state_path) if state_path else ws.path / STATE_FILE,
                           durable=durable)
        if load_registries:
            state.load_registries(ws.read_table("persons"), ws.read_table("staff"))
        return cls(ws.read_table("catalogue"), rules=rules,
                   facilities=ws.read_table("facilities"), state=state)

    def close(self) -> None:
        if self.state is not None:
            self.state.close()

    def _checker(self, rule_ids: list[str] | None) -> Checker:
        key = tuple(sorted(rule_ids)) if rule_ids else None
        ch = self._checkers.get(key)
        if ch is None:
            ch = Checker(self.rules.select(rule_ids), self.catalogue, self.facilities,
                         self.state)
            self._checkers[key] = ch
        return ch

    # -- checking ---------------------------------------------------------------------------
    def check_claim(self, claim: Claim) -> list[Finding]:
        """Findings for one claim (the in-process fast path; no validation)."""
        return self.checker.check(claim)

    def check(self, request: dict | str | bytes | CheckRequest, source: str = "request"
              ) -> CheckResponse:
        """Judge a 3101/3102-shaped request; returns the 3101-shaped response."""
        req = parse_request(request, source)
        checker = self._checker(req.rule_ids)
        judged = [(p, e, c, checker.check(c)) for p, e, c in claims_from_request(req)]
        return build_response(checker.rules, judged, req.task_id)

    def score_one(self, request: dict) -> dict[str, Any]:
        """Dict in, dict out (like river's ``score_one``): decision plus compact hits."""
        resp = self.check(request)
        return {"decision": resp.decision,
                "hits": [{"rule_id": r.rule_id, "action": r.action, "amount": r.vola_amt,
                          "lines": [d.rx_id for d in r.judge_result_detail_dtos]}
                         for r in resp.result]}

    # -- state ------------------------------------------------------------------------------
    def settle(self, request: dict | str | bytes | CheckRequest | Claim) -> None:
        """Record settled claim(s) in the cross-claim state (committed on return)."""
        if self.state is None:
            raise RuntimeError("this engine has no state store")
        if isinstance(request, Claim):
            self.state.settle(request, self.catalogue)
            return
        for _p, _e, c in claims_from_request(parse_request(request)):
            self.state.settle(c, self.catalogue)

    def admit(self, claim: Claim) -> None:
        """Register an open stay before its settlement (pre-admission reminders)."""
        if self.state is None:
            raise RuntimeError("this engine has no state store")
        self.state.admit(claim.settlement_id, claim.person_id, claim.facility_id,
                         claim.medical_type, claim.admission_time)


# ---------------------------------------------------------------------------------------------
# workspace tables → claims (equivalence tests, benchmarks, replaying history into the state)
# ---------------------------------------------------------------------------------------------


def _py(v: Any) -> Any:
    v = _none(v)
    if isinstance(v, np.generic):
        return v.item()
    return v


def iter_workspace_claims(ws: Workspace | str | os.PathLike[str],
                          settlement_ids: list[str] | None = None) -> Iterator[Claim]:
    """Yield the workspace's settlements as claims, in (admission time, settlement id) order."""
    ws = ws if isinstance(ws, Workspace) else Workspace(ws)
    names = ("settlements", "persons", "facilities", "diagnoses", "procedures", "fee_lines",
             "trace_scans")
    yield from claims_from_tables({n: ws.read_table(n) for n in names}, settlement_ids)


def claims_from_tables(tables: dict[str, pd.DataFrame],
                       settlement_ids: list[str] | None = None) -> Iterator[Claim]:
    """Canonical frames → claims, in (admission time, settlement id) order."""
    s = tables["settlements"]
    if settlement_ids is not None:
        s = s[s["settlement_id"].isin(settlement_ids)]
    s = s.sort_values(["admission_time", "settlement_id"])
    ids = set(s["settlement_id"])
    pt = tables["persons"]
    psex = dict(zip(pt["person_id"], pt["sex"], strict=True))
    pbirth = dict(zip(pt["person_id"], pt["birth_date"], strict=True))
    ft = tables["facilities"]
    flevel = dict(zip(ft["facility_id"], ft["level"], strict=True))
    fnet = dict(zip(ft["facility_id"], ft["internet_hospital"] if "internet_hospital" in ft
                    else [False] * len(ft), strict=True))
    empty = pd.DataFrame(columns=["settlement_id", "seq", "diag_code", "procedure_code",
                                  "line_id", "trace_code"])
    dx = tables.get("diagnoses", empty)
    dx = dx[dx["settlement_id"].isin(ids)].sort_values(["settlement_id", "seq"])
    dxs = dx.groupby("settlement_id")["diag_code"].agg(tuple).to_dict()
    pr = tables.get("procedures", empty)
    pr = pr[pr["settlement_id"].isin(ids)].sort_values(["settlement_id", "seq"])
    prs = pr.groupby("settlement_id")["procedure_code"].agg(tuple).to_dict()
    fl = tables["fee_lines"]
    fl = fl[fl["settlement_id"].isin(ids)]
    tr = tables.get("trace_scans", empty)
    tr = tr[tr["line_id"].isin(set(fl["line_id"]))]
    trs = tr.groupby("line_id")["trace_code"].agg(tuple).to_dict() if len(tr) else {}
    lines: dict[str, list[Line]] = {}
    n = len(fl)

    def col(name: str) -> list[Any]:
        if name not in fl:
            return [None] * n
        return [None if _none(v) is None else v for v in fl[name].astype(object).tolist()]

    days = pd.to_datetime(fl["service_time"]).dt.date.tolist()
    cols = [col(c) for c in ("line_id", "settlement_id", "item_code", "qty", "unit_price",
                             "amount", "days_supply", "staff_id", "department",
                             "prescription_no", "approval_flag", "discharge_drug")]
    for i, (lid, sid, code, qty, price, amt, ds, st, dept, rx, appr, dd) in enumerate(
            zip(*cols, strict=True)):
        lines.setdefault(sid, []).append(Line(
            lid, days[i], code, float(qty), float(price), float(amt),
            None if ds is None else int(ds), st, dept, rx, bool(appr or False),
            bool(dd or False), trs.get(lid, ())))
    for r in s.itertuples(index=False):
        bd = _none(pbirth.get(r.person_id))
        yield Claim(
            settlement_id=r.settlement_id, person_id=r.person_id, facility_id=r.facility_id,
            medical_type=r.medical_type, insurance_type=r.insurance_type,
            admission_time=_ts(r.admission_time), discharge_time=_ts(r.discharge_time),
            sex=_py(psex.get(r.person_id)),
            birth_date=pd.Timestamp(bd).date() if bd is not None else None,
            facility_level=_py(flevel.get(r.facility_id)),
            internet_hospital=bool(_py(fnet.get(r.facility_id)) or False),
            main_diagnosis=_py(getattr(r, "main_diagnosis", None)),
            department=_py(getattr(r, "department", None)),
            attending_staff_id=_py(getattr(r, "attending_staff_id", None)),
            planned_readmission=bool(_py(getattr(r, "planned_readmission", None)) or False),
            total_amount=float(r.total_amount), diagnoses=dxs.get(r.settlement_id, ()),
            procedures=prs.get(r.settlement_id, ()), lines=lines.get(r.settlement_id, []),
        )


def _ts(v: Any) -> datetime:
    return pd.Timestamp(v).to_pydatetime()
