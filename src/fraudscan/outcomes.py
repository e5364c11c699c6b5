"""Inspector feedback and sanctions: case outcomes become labels and statuses the rules obey.

Stored in the workspace next to the canonical tables, outside the DuckDB file (which is rebuilt
whenever canonical tables change) so outcomes survive re-imports of derived state::

    W/outcomes/case_outcomes.parquet   one row per recorded outcome
    W/outcomes/sanctions.parquet       measures attached to confirmed outcomes

:func:`outcome_labels` turns outcomes into ``labels`` rows with source ``inspection``; the next
:func:`fraudscan.models.train_all` reads them (they override other labels of the same entity).

Sanctions follow the 2024 payment-qualification rules (BRIEF §4): points accumulate per calendar
year; a yearly total of 9 suspends the person's payment qualification for 1–6 months, 12
terminates it. Measures against insured persons suspend networked settlement until a date
(Regulation art. 41: 3–12 months) or restrict fund payment to named facilities.

Statuses go to the workspace's status side-tables (``W/status/``, see
:mod:`fraudscan.workspace`), never into the imported Parquet files, so recording a sanction
keeps rule findings, leads, rings and features. Readers see them in the usual columns: R36
reads ``staff.qualification_status/status_from/status_to``, the person rules read
``persons.settlement_restricted_until`` and ``persons.restricted_facilities`` — through
``Workspace.read_table`` (pre-payment engine, service) and the DuckDB views (batch screen).
A running service loads registries at start, so restart it (or call
``StateStore.set_person`` / ``set_staff``) to enforce a new status at once.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pandas as pd

from fraudscan.errors import FraudscanError
from fraudscan.workspace import Workspace

OUTCOMES_DIR = "outcomes"
KINDS = ("facility", "staff", "person", "ring", "settlement")
RESULTS = ("confirmed", "cleared")
OUTCOME_COLUMNS = ("outcome_id", "kind", "entity_id", "result", "amount_recovered", "date",
                   "scenario", "note", "recorded_at")
SANCTION_COLUMNS = ("outcome_id", "target_type", "target_id", "measure", "points",
                    "year_total", "status", "valid_from", "valid_to", "facilities", "applied")
SUSPEND_AT = 9
TERMINATE_AT = 12


class OutcomeError(FraudscanError):
    """An outcome or sanction cannot be recorded as given."""


def _ws(workspace: Workspace | str | os.PathLike[str]) -> Workspace:
    return workspace if isinstance(workspace, Workspace) else Workspace(workspace)


def _path(ws: Workspace, name: str) -> os.PathLike[str]:
    return ws.path / OUTCOMES_DIR / f"{name}.parquet"


def _read(ws: Workspace, name: str, columns: Sequence[str]) -> pd.DataFrame:
    p = _path(ws, name)
    if not os.path.exists(p):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.read_parquet(p)


def _write(ws: Workspace, name: str, df: pd.DataFrame) -> None:
    p = ws.path / OUTCOMES_DIR
    p.mkdir(parents=True, exist_ok=True)
    tmp = p / f".{name}.{uuid.uuid4().hex[:6]}.parquet"
    df.to_parquet(tmp, index=False)
    os.replace(tmp, _path(ws, name))


def read_outcomes(workspace: Workspace | str | os.PathLike[str]) -> pd.DataFrame:
    """All recorded case outcomes (empty frame with the columns when none)."""
    return _read(_ws(workspace), "case_outcomes", OUTCOME_COLUMNS)


def read_sanctions(workspace: Workspace | str | os.PathLike[str]) -> pd.DataFrame:
    """All recorded sanctions."""
    return _read(_ws(workspace), "sanctions", SANCTION_COLUMNS)


def outcome_labels(workspace: Workspace | str | os.PathLike[str],
                   until: date | str | pd.Timestamp | None = None) -> pd.DataFrame:
    """Outcomes as rows of the canonical ``labels`` table (source ``inspection``).

    The latest outcome per entity wins (a re-inspection can clear an earlier finding). With
    ``until`` only outcomes dated on or before that day count (grading a past period).
    """
    o = read_outcomes(workspace)
    if until is not None and len(o):
        o = o[pd.to_datetime(o["date"]).dt.date <= pd.Timestamp(until).date()]
    cols = ["entity_type", "entity_id", "scenario", "is_fraud", "amount_at_risk", "source",
            "group_id", "period"]
    if o.empty:
        return pd.DataFrame(columns=cols)
    o = o.sort_values(["date", "recorded_at"]).drop_duplicates(["kind", "entity_id"],
                                                                keep="last")
    return pd.DataFrame({
        "entity_type": o["kind"].astype(str), "entity_id": o["entity_id"].astype(str),
        "scenario": o["scenario"].fillna("inspection").replace("", "inspection").astype(str),
        "is_fraud": o["result"] == "confirmed",
        "amount_at_risk": pd.to_numeric(o["amount_recovered"], errors="coerce"),
        "source": "inspection", "group_id": o["outcome_id"].astype(str),
        "period": o["date"].astype(str).str[:7]}, columns=cols).reset_index(drop=True)


def record_many(workspace: Workspace | str | os.PathLike[str], rows: pd.DataFrame) -> int:
    """Record many outcomes without sanctions at once (columns kind, entity_id, result and
    optionally amount_recovered, date, scenario, note); returns the number recorded."""
    ws = _ws(workspace).require()
    bad = set(rows["result"]) - set(RESULTS)
    if bad:
        raise OutcomeError(f"unknown results {sorted(bad)}")
    now = datetime.now(UTC).replace(microsecond=0)
    new = pd.DataFrame({
        "outcome_id": [f"O{now:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}" for _ in range(len(rows))],
        "kind": rows["kind"].astype(str).to_numpy(),
        "entity_id": rows["entity_id"].astype(str).to_numpy(),
        "result": rows["result"].to_numpy(),
        "amount_recovered": pd.to_numeric(rows.get("amount_recovered", 0.0)),
        "date": rows.get("date", date.today().isoformat()),
        "scenario": rows.get("scenario", ""), "note": rows.get("note", ""),
        "recorded_at": now.isoformat()})
    old = read_outcomes(ws)
    _write(ws, "case_outcomes", pd.concat([old, new], ignore_index=True) if len(old) else new)
    return len(new)


@dataclass
class OutcomeResult:
    """What :func:`record_outcome` stored and changed."""

    outcome_id: str
    sanctions: list[dict] = field(default_factory=list)
    tables_written: list[str] = field(default_factory=list)


def suspension_months(year_total: int) -> int:
    """Default suspension length for a yearly total of 9–11 points (1–6 months, BRIEF §4.1)."""
    return {9: 1, 10: 3}.get(year_total, 6)


def record_outcome(
    workspace: Workspace | str | os.PathLike[str],
    kind: str,
    entity_id: str,
    result: str,
    *,
    amount: float = 0.0,
    on: date | str | None = None,
    scenario: str | None = None,
    note: str = "",
    staff_points: Mapping[str, int] | None = None,
    suspend_months: int | None = None,
    restrict_persons: Sequence[str] = (),
    restrict_months: int = 6,
    restrict_to_facilities: Sequence[str] = (),
    suspend_agreement: bool = False,
    apply: bool = True,
) -> OutcomeResult:
    """Record an inspection outcome and, for confirmed cases, its sanctions.

    ``staff_points`` gives payment-qualification points per responsible staff id (1–12 each);
    ``restrict_persons`` suspends their networked settlement for ``restrict_months`` (3–12)
    or, with ``restrict_to_facilities``, limits fund payment to those facilities;
    ``suspend_agreement`` suspends the facility's service agreement. With ``apply`` the
    statuses take effect at once (status side-tables; derived state is kept); without it they
    wait for :func:`apply_sanctions`.
    """
    ws = _ws(workspace).require()
    if kind not in KINDS:
        raise OutcomeError(f"kind must be one of {', '.join(KINDS)}")
    if result not in RESULTS:
        raise OutcomeError(f"result must be confirmed or cleared, not {result!r}")
    if amount < 0:
        raise OutcomeError("amount recovered cannot be negative")
    day = pd.Timestamp(on or date.today()).date()
    sanctions_asked = bool(staff_points or restrict_persons or suspend_agreement)
    if sanctions_asked and result != "confirmed":
        raise OutcomeError("sanctions need a confirmed outcome")
    _check_entity(ws, kind, entity_id)
    oid = f"O{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
    row = {"outcome_id": oid, "kind": kind, "entity_id": str(entity_id), "result": result,
           "amount_recovered": float(amount), "date": day.isoformat(),
           "scenario": scenario or "", "note": note,
           "recorded_at": datetime.now(UTC).replace(microsecond=0).isoformat()}
    outcomes = read_outcomes(ws)
    outcomes = pd.concat([outcomes, pd.DataFrame([row])], ignore_index=True) \
        if len(outcomes) else pd.DataFrame([row])
    res = OutcomeResult(outcome_id=oid)
    sanctions: list[dict] = []
    if staff_points:
        sanctions += _staff_sanctions(ws, oid, staff_points, day, suspend_months)
    if restrict_persons:
        if not 3 <= restrict_months <= 12:
            raise OutcomeError("settlement suspension must last 3 to 12 months (art. 41)")
        until = (pd.Timestamp(day) + pd.DateOffset(months=restrict_months)).date()
        for p in restrict_persons:
            _check_entity(ws, "person", p)
            sanctions.append(_sanction(
                oid, "person", p,
                "facility_restriction" if restrict_to_facilities else "settlement_suspension",
                status="restricted", valid_from=day, valid_to=until,
                facilities=";".join(restrict_to_facilities)))
    if suspend_agreement:
        fid = entity_id if kind == "facility" else None
        if fid is None:
            raise OutcomeError("agreement suspension needs a facility outcome")
        sanctions.append(_sanction(oid, "facility", fid, "agreement_suspension",
                                   status="suspended", valid_from=day))
    _write(ws, "case_outcomes", outcomes)
    if sanctions:
        old = read_sanctions(ws)
        new = pd.DataFrame(sanctions, columns=list(SANCTION_COLUMNS))
        _write(ws, "sanctions", pd.concat([old, new], ignore_index=True) if len(old) else new)
    res.sanctions = sanctions
    if apply and sanctions:
        res.tables_written = apply_sanctions(ws, sanctions)
    return res


def _sanction(oid: str, ttype: str, tid: str, measure: str, *, points: int | None = None,
              year_total: int | None = None, status: str = "", valid_from: date | None = None,
              valid_to: date | None = None, facilities: str = "") -> dict:
    return {"outcome_id": oid, "target_type": ttype, "target_id": str(tid), "measure": measure,
            "points": points, "year_total": year_total, "status": status,
            "valid_from": valid_from.isoformat() if valid_from else None,
            "valid_to": valid_to.isoformat() if valid_to else None, "facilities": facilities,
            "applied": False}


def _staff_sanctions(ws: Workspace, oid: str, points: Mapping[str, int], day: date,
                     months: int | None) -> list[dict]:
    staff = ws.read_table("staff").set_index("staff_id")
    prior = read_sanctions(ws)
    out = []
    for sid, pts in points.items():
        if sid not in staff.index:
            raise OutcomeError(f"no staff {sid!r} in the workspace")
        if not 1 <= int(pts) <= 12:
            raise OutcomeError("points per case are 1 to 12 (2024 rules)")
        total = _year_points(staff.loc[sid], prior, sid, day.year) + int(pts)
        if total >= TERMINATE_AT:
            status, until = "terminated", None
        elif total >= SUSPEND_AT:
            m = months or suspension_months(total)
            if not 1 <= m <= 6:
                raise OutcomeError("a suspension lasts 1 to 6 months")
            status = "suspended"
            until = (pd.Timestamp(day) + pd.DateOffset(months=m) - timedelta(days=1)).date()
        else:
            status, until = "active", None
        out.append(_sanction(oid, "staff", sid, "qualification_points", points=int(pts),
                             year_total=total, status=status, valid_from=day, valid_to=until))
    return out


def _year_points(row: pd.Series, prior: pd.DataFrame, sid: str, year: int) -> int:
    """Points already counted in ``year``: the registry's figure, or recorded sanctions."""
    mine = prior[(prior["target_id"].astype(str) == sid)
                 & (prior["measure"] == "qualification_points")]
    mine = mine[mine["valid_from"].astype(str).str[:4] == str(year)]
    if len(mine):
        return int(pd.to_numeric(mine["year_total"]).max())
    base = pd.to_numeric(pd.Series([row.get("points_this_year")]), errors="coerce").fillna(0)
    return int(base.iloc[0])


def apply_sanctions(workspace: Workspace | str | os.PathLike[str],
                    sanctions: Sequence[Mapping] | None = None) -> list[str]:
    """Rebuild the status side-tables of ``staff``, ``persons`` and ``facilities``.

    Starts from the imported values and applies every recorded sanction in recording order
    (plus ``sanctions`` not recorded yet), so re-applying is idempotent and a re-import keeps
    the sanctions on top. Statuses go to ``W/status/`` (:meth:`Workspace.write_status`), which
    readers see in place while canonical tables and derived state (rule findings, leads,
    rings) stay as they are. Returns the tables whose statuses were written.
    """
    ws = _ws(workspace).require()
    rec = read_sanctions(ws)
    if "applied" not in rec.columns:
        rec["applied"] = True  # recorded before the flag existed: they were applied then
    rec["applied"] = rec["applied"].fillna(True).astype(bool)
    ident = list(zip(rec["outcome_id"].astype(str), rec["target_id"].astype(str),
                     rec["measure"].astype(str), strict=True))
    if sanctions is None:
        now = pd.Series(True, index=rec.index)
        extra = pd.DataFrame(columns=list(SANCTION_COLUMNS))
    else:
        given = pd.DataFrame(list(sanctions), columns=list(SANCTION_COLUMNS))
        keys = set(zip(given["outcome_id"].astype(str), given["target_id"].astype(str),
                       given["measure"].astype(str), strict=True))
        now = rec["applied"] | pd.Series([k in keys for k in ident], index=rec.index,
                                         dtype=bool)
        extra = given[[k not in set(ident) for k in zip(
            given["outcome_id"].astype(str), given["target_id"].astype(str),
            given["measure"].astype(str), strict=True)]]
    if len(rec) and not now.equals(rec["applied"]):
        _write(ws, "sanctions", rec.assign(applied=now))
    s = pd.concat([rec[now], extra], ignore_index=True) if len(extra) else rec[now]
    if s.empty:
        return []
    written = []
    for table, df in _status_frames(ws, s).items():
        ws.write_status(table, df)
        written.append(table)
    return sorted(written)


def _status_frames(ws: Workspace, s: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Key and status columns of every sanctioned row after applying ``s`` in order."""
    s = s.assign(target_id=s["target_id"].astype(str))
    out: dict[str, pd.DataFrame] = {}
    st = s[s["target_type"] == "staff"]
    if len(st):
        staff = _base(ws, "staff", set(st["target_id"]))
        for r in st.itertuples(index=False):
            i = staff.index[staff["staff_id"] == r.target_id]
            staff.loc[i, "points_this_year"] = int(r.year_total)
            if r.status != "active":
                staff.loc[i, "qualification_status"] = r.status
                staff.loc[i, "status_from"] = pd.Timestamp(r.valid_from).date()
                staff.loc[i, "status_to"] = (pd.Timestamp(r.valid_to).date()
                                             if _given(r.valid_to) else None)
        out["staff"] = staff
    ps = s[s["target_type"] == "person"]
    if len(ps):
        persons = _base(ws, "persons", set(ps["target_id"]))
        for r in ps.itertuples(index=False):
            i = persons.index[persons["person_id"] == r.target_id]
            persons.loc[i, "settlement_restricted_until"] = pd.Timestamp(r.valid_to).date()
            if _given(r.facilities):
                persons.loc[i, "restricted_facilities"] = r.facilities
        out["persons"] = persons
    fs = s[s["target_type"] == "facility"]
    if len(fs):
        fac = _base(ws, "facilities", set(fs["target_id"]))
        fac["agreement_status"] = "suspended"
        out["facilities"] = fac
    return out


def statuses_as_of(workspace: Workspace | str | os.PathLike[str], table: str,
                   until: date | str | pd.Timestamp, columns: Sequence[str] | None = None
                   ) -> pd.DataFrame:
    """``table`` (persons, staff or facilities) with the statuses it had on day ``until``.

    Imported values plus the applied sanctions that took effect by then (``valid_from``), so
    grading a past period is not changed by a sanction recorded later.
    """
    from fraudscan.workspace import STATUS_COLUMNS

    ws = _ws(workspace)
    key, cols = STATUS_COLUMNS[table]
    need = None if columns is None else list(dict.fromkeys([key, *columns]))
    df = ws.read_table(table, need, with_status=False)
    s = read_sanctions(ws)
    if "applied" in s.columns:
        s = s[s["applied"].fillna(True).astype(bool)]
    s = s[pd.to_datetime(s["valid_from"]).dt.date <= pd.Timestamp(until).date()]
    frame = _status_frames(ws, s).get(table) if len(s) else None
    if frame is not None and len(frame):
        over = frame.set_index(frame[key].astype(str))
        pos = df[key].astype(str)
        hit = pos.isin(over.index)
        for c in cols:
            if c in df.columns:
                df[c] = df[c].astype(object)
                df.loc[hit, c] = over.loc[pos[hit], c].to_numpy()
    return df if columns is None else df[list(columns)]


def _given(v: object) -> bool:
    return v is not None and not (isinstance(v, float) and pd.isna(v)) and v != ""


def _base(ws: Workspace, table: str, ids: set[str]) -> pd.DataFrame:
    """Imported key and status columns of the rows ``ids`` (statuses before any sanction)."""
    from fraudscan.workspace import STATUS_COLUMNS

    key, cols = STATUS_COLUMNS[table]
    df = ws.read_table(table, [key, *cols], with_status=False)
    df = df[df[key].astype(str).isin(ids)].reset_index(drop=True)
    return df.astype({c: object for c in cols})


def _check_entity(ws: Workspace, kind: str, entity_id: str) -> None:
    table, col = {"facility": ("facilities", "facility_id"), "staff": ("staff", "staff_id"),
                  "person": ("persons", "person_id"),
                  "settlement": ("settlements", "settlement_id")}.get(kind, (None, None))
    if table is None:
        return
    ids = ws.read_table(table, [col])[col].astype(str)
    if str(entity_id) not in set(ids):
        raise OutcomeError(f"no {kind} {entity_id!r} in {ws.path}")
