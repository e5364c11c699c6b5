"""The rule engine's cross-claim state shared by several worker processes.

:class:`fraudscan.rules.StateStore` keeps an in-memory mirror of its SQLite file. With more than
one worker each process has its own mirror, so a claim settled by one worker must reach the
others: a trigger logs every new stay (``settle`` and ``admit`` both write one, in the same
transaction as the rest of the claim) to ``serve_changes``, and before each check a worker asks
SQLite whether anything was committed since (``PRAGMA data_version``, a few microseconds) and, if
so, loads just the changed settlements into its mirror.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from pathlib import Path

from fraudscan.rules.state import StateStore, Stay, Use, _dt

_SYNC_DDL = """
CREATE TABLE IF NOT EXISTS serve_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, settlement_id TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS serve_changes_stays AFTER INSERT ON stays
BEGIN INSERT INTO serve_changes (settlement_id) VALUES (NEW.settlement_id); END;
"""


class SharedStateStore(StateStore):
    """A :class:`StateStore` whose mirror follows commits made by other processes."""

    def __init__(self, path: str | Path, *, durable: bool = False):
        super().__init__(path, durable=durable)
        self._db.execute("PRAGMA busy_timeout=10000")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executescript(_SYNC_DDL.replace("\n", " "))
            finally:
                if self._db.in_transaction:
                    self._db.execute("COMMIT")
            self._seq = self._db.execute(
                "SELECT coalesce(max(seq), 0) FROM serve_changes").fetchone()[0]
            self._version = self._data_version()
        self.synced = 0

    def _data_version(self) -> int:
        return self._db.execute("PRAGMA data_version").fetchone()[0]

    def sync(self) -> int:
        """Load settlements committed by other processes since the last call; returns how many."""
        v = self._data_version()
        if v == self._version:
            return 0
        with self._lock:
            self._version = v
            db = self._db
            rows = db.execute("SELECT seq, settlement_id FROM serve_changes WHERE seq > ? "
                              "ORDER BY seq", (self._seq,)).fetchall()
            if not rows:
                return 0
            self._seq = rows[-1][0]
            sids = list(dict.fromkeys(r[1] for r in rows))
            for i in range(0, len(sids), 500):
                self._merge(sids[i:i + 500])
            self.synced += len(sids)
            return len(sids)

    def _merge(self, sids: list[str]) -> None:
        db = self._db
        q = ",".join("?" * len(sids))
        for r in db.execute(f"SELECT * FROM stays WHERE settlement_id IN ({q})", sids):
            st = Stay(r[0], r[1], r[2], r[3], datetime.fromisoformat(r[4]), _dt(r[5]), r[6])
            self._stays[st.person_id][st.settlement_id] = st
        fresh: dict[tuple[str, str], list[Use]] = defaultdict(list)
        for r in db.execute(f"SELECT * FROM usage WHERE settlement_id IN ({q})", sids):
            fresh[(r[2], r[3])].append(Use(r[0], r[1], date.fromisoformat(r[4]), r[5], r[6],
                                           datetime.fromisoformat(r[7]), r[8]))
        sset = set(sids)
        for key, uses in fresh.items():
            lst = self._usage[key]
            lst[:] = [u for u in lst if u.settlement_id not in sset] + uses
        for code, sid, lid, adm in db.execute(
                f"SELECT * FROM trace WHERE settlement_id IN ({q})", sids):
            lst2 = self._trace[code]
            key2 = (datetime.fromisoformat(adm), sid, lid)
            if key2 not in lst2:
                lst2.append(key2)
        for (sid,) in db.execute(f"SELECT settlement_id FROM settled WHERE settlement_id IN "
                                 f"({q})", sids):
            self._settled.add(sid)

    def settle(self, claim, catalogue) -> None:  # type: ignore[no-untyped-def]
        super().settle(claim, catalogue)
        self._own_commit()

    def admit(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().admit(*args, **kwargs)
        self._own_commit()

    def _own_commit(self) -> None:
        # our own commits change nothing for this mirror; skip them in the next sync
        with self._lock:
            if self._data_version() == self._version:
                seq = self._db.execute("SELECT coalesce(max(seq), 0) FROM serve_changes"
                                       ).fetchone()[0]
                self._seq = max(self._seq, seq)

    def settled_ids(self) -> set[str]:
        return set(self._settled)
