"""Persistent cross-claim state for the single-claim path.

Cross-claim rules need what earlier claims left behind: a person's stays (R33/R34/R43), the index
of trace codes already sold (R40), item usage for course, period and days-on-hand checks (R21,
R28, R37) and of first-line drugs (R20), and the registries of deaths, suspended or
facility-restricted persons and suspended or terminated staff (R35, R36, R47, R48). They live in
a small SQLite file (WAL journal) so the state survives a restart; :meth:`StateStore.settle`
writes one claim's traces in a single transaction and returns only after the commit, so a claim
acknowledged as settled survives ``kill -9``. Reads come from an in-memory mirror loaded at
open, which keeps a check well under a millisecond.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from fraudscan import schema
from fraudscan.rules.context import Claim, Item, _date, _none

STATE_FILE = "rules_state.sqlite"

_DDL = """
CREATE TABLE IF NOT EXISTS persons (
    person_id TEXT PRIMARY KEY, death_date TEXT, restricted_until TEXT,
    restricted_facilities TEXT);
CREATE TABLE IF NOT EXISTS staff (
    staff_id TEXT PRIMARY KEY, status TEXT, status_from TEXT, status_to TEXT, death_date TEXT);
CREATE TABLE IF NOT EXISTS stays (
    settlement_id TEXT PRIMARY KEY, person_id TEXT NOT NULL, facility_id TEXT,
    medical_type TEXT, admission_time TEXT NOT NULL, discharge_time TEXT,
    main_diagnosis TEXT);
CREATE INDEX IF NOT EXISTS stays_person ON stays(person_id);
CREATE TABLE IF NOT EXISTS usage (
    settlement_id TEXT NOT NULL, line_id TEXT NOT NULL, person_id TEXT NOT NULL,
    item_code TEXT NOT NULL, service_date TEXT NOT NULL, qty REAL NOT NULL, days_supply INTEGER,
    admission_time TEXT NOT NULL, medical_type TEXT, PRIMARY KEY (settlement_id, line_id));
CREATE INDEX IF NOT EXISTS usage_person_item ON usage(person_id, item_code);
CREATE TABLE IF NOT EXISTS trace (
    trace_code TEXT NOT NULL, settlement_id TEXT NOT NULL, line_id TEXT NOT NULL,
    admission_time TEXT NOT NULL, PRIMARY KEY (trace_code, settlement_id, line_id));
CREATE INDEX IF NOT EXISTS trace_settlement ON trace(settlement_id);
CREATE TABLE IF NOT EXISTS settled (settlement_id TEXT PRIMARY KEY, settled_at TEXT NOT NULL);
"""


@dataclass(slots=True)
class Stay:
    settlement_id: str
    person_id: str
    facility_id: str | None
    medical_type: str | None
    admission_time: datetime
    discharge_time: datetime | None
    main_diagnosis: str | None


@dataclass(slots=True)
class Use:
    settlement_id: str
    line_id: str
    service_date: date
    qty: float
    days_supply: int | None
    admission_time: datetime
    medical_type: str | None


def facility_set(v: Any) -> frozenset[str] | None:
    """``restricted_facilities`` (``;``-separated facility ids) → the set, None when empty."""
    v = _none(v)
    if v is None:
        return None
    fs = frozenset(x.strip() for x in str(v).split(";") if x.strip())
    return fs or None


def _iso(v: date | datetime | None) -> str | None:
    return None if v is None else v.isoformat()


def _dt(v: str | None) -> datetime | None:
    return None if v is None else datetime.fromisoformat(v)


def _d(v: str | None) -> date | None:
    return None if v is None else date.fromisoformat(v)


class StateStore:
    """The cross-claim state: SQLite file on disk, mirrored in memory.

    ``durable=True`` sets ``synchronous=FULL`` (survives power loss, one fsync per settle);
    the default ``NORMAL`` in WAL mode already survives a killed process.
    """

    track: frozenset[str] = frozenset()
    """Further item codes whose use ``settle`` records (set by :class:`RuleEngine`)."""

    def __init__(self, path: str | Path, *, durable: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._db.executescript(_DDL)
        cols = {r[1] for r in self._db.execute("PRAGMA table_info(persons)")}
        if "restricted_facilities" not in cols:  # state file from before R48
            self._db.execute("ALTER TABLE persons ADD COLUMN restricted_facilities TEXT")
        self._load()

    # -- lifecycle --------------------------------------------------------------------------
    def _load(self) -> None:
        db = self._db
        rows = db.execute("SELECT person_id, death_date, restricted_until, restricted_facilities "
                          "FROM persons").fetchall()
        self._persons: dict[str, tuple[date | None, date | None]] = {
            p: (_d(a), _d(b)) for p, a, b, _f in rows}
        self._facilities: dict[str, frozenset[str]] = {
            p: fs for p, _a, _b, f in rows if (fs := facility_set(f))}
        self._staff: dict[str, tuple[str, date | None, date | None, date | None]] = {
            s: (st, _d(a), _d(b), _d(c)) for s, st, a, b, c in db.execute("SELECT * FROM staff")}
        self._stays: dict[str, dict[str, Stay]] = defaultdict(dict)
        for r in db.execute("SELECT * FROM stays"):
            st = Stay(r[0], r[1], r[2], r[3], datetime.fromisoformat(r[4]), _dt(r[5]), r[6])
            self._stays[st.person_id][st.settlement_id] = st
        self._usage: dict[tuple[str, str], list[Use]] = defaultdict(list)
        for r in db.execute("SELECT * FROM usage"):
            self._usage[(r[2], r[3])].append(
                Use(r[0], r[1], date.fromisoformat(r[4]), r[5], r[6],
                    datetime.fromisoformat(r[7]), r[8]))
        self._trace: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
        for code, sid, lid, adm in db.execute("SELECT * FROM trace"):
            self._trace[code].append((datetime.fromisoformat(adm), sid, lid))
        self._settled: set[str] = {r[0] for r in db.execute("SELECT settlement_id FROM settled")}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- registries -------------------------------------------------------------------------
    def load_registries(self, persons: pd.DataFrame | None = None,
                        staff: pd.DataFrame | None = None) -> None:
        """Replace the death / suspension registries with these frames (canonical columns)."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                if persons is not None:
                    rows = [(str(r["person_id"]), _iso(_date(r.get("death_date"))),
                             _iso(_date(r.get("settlement_restricted_until"))),
                             _none(r.get("restricted_facilities")))
                            for r in persons.to_dict("records")
                            if _none(r.get("death_date")) is not None
                            or _none(r.get("settlement_restricted_until")) is not None
                            or facility_set(r.get("restricted_facilities"))]
                    db.execute("DELETE FROM persons")
                    db.executemany("INSERT INTO persons (person_id, death_date, restricted_until, "
                                   "restricted_facilities) VALUES (?,?,?,?)", rows)
                if staff is not None:
                    rows = [(str(r["staff_id"]), str(r["qualification_status"]),
                             _iso(_date(r.get("status_from"))), _iso(_date(r.get("status_to"))),
                             _iso(_date(r.get("death_date"))))
                            for r in staff.to_dict("records")
                            if r["qualification_status"] != "active"
                            or _none(r.get("death_date")) is not None]
                    db.execute("DELETE FROM staff")
                    db.executemany("INSERT INTO staff VALUES (?,?,?,?,?)", rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._load()

    def set_person(self, person_id: str, *, death_date: date | None = None,
                   restricted_until: date | None = None,
                   restricted_facilities: Iterable[str] | str | None = None) -> None:
        """Record a death, a networked-settlement suspension, or (with
        ``restricted_facilities``) a restriction of fund payment to those facilities until
        ``restricted_until``, for one person."""
        fs = facility_set(restricted_facilities if restricted_facilities is None
                          or isinstance(restricted_facilities, str)
                          else ";".join(restricted_facilities))
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO persons (person_id, death_date, "
                             "restricted_until, restricted_facilities) VALUES (?,?,?,?)",
                             (person_id, _iso(death_date), _iso(restricted_until),
                              ";".join(sorted(fs)) if fs else None))
            self._persons[person_id] = (death_date, restricted_until)
            if fs:
                self._facilities[person_id] = fs
            else:
                self._facilities.pop(person_id, None)

    def set_staff(self, staff_id: str, status: str, *, status_from: date | None = None,
                  status_to: date | None = None, death_date: date | None = None) -> None:
        """Record a staff member's payment-qualification status (BRIEF §4.1)."""
        if status not in schema.QUALIFICATION_STATUS:
            raise ValueError(f"status must be one of {schema.QUALIFICATION_STATUS}")
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO staff VALUES (?,?,?,?,?)",
                             (staff_id, status, _iso(status_from), _iso(status_to),
                              _iso(death_date)))
            self._staff[staff_id] = (status, status_from, status_to, death_date)

    def person(self, person_id: str) -> tuple[date | None, date | None] | None:
        """(death date, settlement restricted until) or None."""
        return self._persons.get(person_id)

    def person_facilities(self, person_id: str) -> frozenset[str] | None:
        """The only facilities where the fund pays for this person (a sanction of named
        facilities, in force up to the person's restricted-until date), or None."""
        return self._facilities.get(person_id)

    def staff(self, staff_id: str) -> tuple[str, date | None, date | None, date | None] | None:
        """(status, from, to, death date) for staff not in good standing, else None."""
        return self._staff.get(staff_id)

    # -- episodes and usage -----------------------------------------------------------------
    def stays(self, person_id: str) -> list[Stay]:
        s = self._stays.get(person_id)
        return list(s.values()) if s else []

    def is_settled(self, settlement_id: str) -> bool:
        return settlement_id in self._settled

    def admit(self, settlement_id: str, person_id: str, facility_id: str, medical_type: str,
              admission_time: datetime) -> None:
        """Register an open stay (no discharge yet) so outpatient claims during it are caught."""
        st = Stay(settlement_id, person_id, facility_id, medical_type, admission_time, None, None)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO stays VALUES (?,?,?,?,?,?,?)",
                             (settlement_id, person_id, facility_id, medical_type,
                              admission_time.isoformat(), None, None))
            self._stays[person_id][settlement_id] = st

    def first_use(self, person_id: str, item_code: str, exclude: str) -> date | None:
        uses = self._usage.get((person_id, item_code))
        if not uses:
            return None
        ds = [u.service_date for u in uses if u.qty > 0 and u.settlement_id != exclude]
        return min(ds) if ds else None

    def usage_between(self, person_id: str, item_code: str, lo: date, hi: date,
                      exclude: str) -> float:
        uses = self._usage.get((person_id, item_code))
        if not uses:
            return 0.0
        return sum(u.qty for u in uses
                   if u.settlement_id != exclude and lo <= u.service_date <= hi)

    def used_any(self, person_id: str, codes: frozenset[str], lo: date, hi: date,
                 exclude: str) -> bool:
        """Whether the person used any of ``codes`` (qty > 0) from ``lo`` to ``hi`` (inclusive)
        in another settled claim; only codes settled with ``track`` are recorded."""
        for code in codes:
            uses = self._usage.get((person_id, code))
            if uses and any(u.qty > 0 and u.settlement_id != exclude
                            and lo <= u.service_date <= hi for u in uses):
                return True
        return False

    def supply_end_before(self, person_id: str, item_code: str, d: date, adm: datetime,
                          settlement_id: str, excluded_types: tuple[str, ...] | list[str] = (),
                          ) -> date | None:
        """Latest run-out date of earlier supplies of the item (other claims, earlier order)."""
        uses = self._usage.get((person_id, item_code))
        if not uses:
            return None
        me = (d, adm, settlement_id)
        best: date | None = None
        for u in uses:
            if u.settlement_id == settlement_id or u.qty <= 0 or not u.days_supply or \
                    u.medical_type in excluded_types:
                continue
            if (u.service_date, u.admission_time, u.settlement_id) < me:
                end = u.service_date + timedelta(days=u.days_supply)
                if best is None or end > best:
                    best = end
        return best

    def trace_first(self, code: str, exclude: str) -> tuple[datetime, str] | None:
        """(admission time, settlement id) of the earliest other claim that sold ``code``."""
        hits = self._trace.get(code)
        if not hits:
            return None
        keys = [(a, s) for a, s, _ in hits if s != exclude]
        return min(keys) if keys else None

    # -- settle -----------------------------------------------------------------------------
    def settle(self, claim: Claim, catalogue: dict[str, Item]) -> None:
        """Record a settled claim (idempotent); returns after the transaction is committed.

        Usage is recorded for catalogue items with course / period limits, drugs with a days'
        supply, and the codes in :attr:`track` (first-line drugs of R20, set by the engine).
        """
        track = self.track
        stay = Stay(claim.settlement_id, claim.person_id, claim.facility_id, claim.medical_type,
                    claim.admission_time, claim.discharge_time, claim.main_diagnosis)
        uses: list[tuple[str, Use]] = []
        traces: list[tuple[str, str]] = []
        for ln in claim.lines:
            it = catalogue.get(ln.item_code)
            if ln.item_code in track or (it is not None and (
                    it.course_days is not None or it.period_days is not None
                    or (it.is_drug and ln.days_supply))):
                uses.append((ln.item_code, Use(claim.settlement_id, ln.line_id, ln.service_date,
                                               ln.qty, ln.days_supply, claim.admission_time,
                                               claim.medical_type)))
            if ln.qty > 0:
                traces.extend((code, ln.line_id) for code in ln.trace_codes)
        adm = claim.admission_time.isoformat()
        now = datetime.now().isoformat(timespec="seconds")
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("INSERT OR REPLACE INTO stays VALUES (?,?,?,?,?,?,?)",
                           (stay.settlement_id, stay.person_id, stay.facility_id,
                            stay.medical_type, adm, _iso(stay.discharge_time),
                            stay.main_diagnosis))
                again = claim.settlement_id in self._settled
                if again:
                    db.execute("DELETE FROM usage WHERE settlement_id = ?",
                               (claim.settlement_id,))
                db.executemany(
                    "INSERT INTO usage VALUES (?,?,?,?,?,?,?,?,?)",
                    [(u.settlement_id, u.line_id, claim.person_id, code,
                      u.service_date.isoformat(), u.qty, u.days_supply, adm, u.medical_type)
                     for code, u in uses])
                if again:
                    db.execute("DELETE FROM trace WHERE settlement_id = ?",
                               (claim.settlement_id,))
                db.executemany("INSERT OR IGNORE INTO trace VALUES (?,?,?,?)",
                               [(code, claim.settlement_id, lid, adm) for code, lid in traces])
                db.execute("INSERT OR REPLACE INTO settled VALUES (?,?)",
                           (claim.settlement_id, now))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._stays[claim.person_id][claim.settlement_id] = stay
            for code, u in uses:
                lst = self._usage[(claim.person_id, code)]
                lst[:] = [x for x in lst if not (x.settlement_id == u.settlement_id
                                                 and x.line_id == u.line_id)]
                lst.append(u)
            for code, lid in traces:
                lst2 = self._trace[code]
                key = (claim.admission_time, claim.settlement_id, lid)
                if key not in lst2:
                    lst2.append(key)
            self._settled.add(claim.settlement_id)

    def counts(self) -> dict[str, Any]:
        """Row counts per state table (for ``rules state`` / health checks)."""
        return {t: self._db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("persons", "staff", "stays", "usage", "trace", "settled")}
