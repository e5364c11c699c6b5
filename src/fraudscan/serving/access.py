"""Who may see what: API tokens with roles and districts, id masking, the append-only audit log.

Tokens live in ``W/serve/access.json`` (only their SHA-256 is stored; the token itself is shown
once, by ``fraudscan serve token create``). Roles:

=============  ===================================================================================
``admin``      everything, every district, person ids in clear, model reload, audit log
``supervisor`` read, outcomes and export in every district; person ids in clear
``inspector``  read, outcomes and export in its own districts (片区) only; person ids masked
``settlement`` the settlement system: pre-payment checks and settlement only
=============  ===================================================================================

Every view, export and outcome is appended to ``W/serve/audit.jsonl``: one JSON object a line,
each carrying the SHA-256 of the previous line (``prev``), so an edited or deleted line breaks
the chain (:func:`verify_audit`).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fraudscan.errors import FraudscanError

SERVE_DIR = "serve"
ACCESS_FILE = "access.json"
AUDIT_FILE = "audit.jsonl"

ROLES: dict[str, set[str]] = {
    "admin": {"check", "read", "outcome", "export", "unmask", "all_districts", "admin"},
    "supervisor": {"read", "outcome", "export", "unmask", "all_districts"},
    "inspector": {"read", "outcome", "export"},
    "settlement": {"check"},
}


class AccessError(FraudscanError):
    """A bad token file or token request."""


@dataclass(frozen=True)
class Principal:
    """The caller behind a token."""

    token_id: str
    name: str
    role: str
    districts: tuple[str, ...] = ()
    perms: frozenset[str] = field(default_factory=frozenset)

    def can(self, perm: str) -> bool:
        return perm in self.perms

    def sees_district(self, district: str | None) -> bool:
        if "all_districts" in self.perms:
            return True
        return district is not None and district in self.districts

    def public(self) -> dict[str, Any]:
        return {"token_id": self.token_id, "name": self.name, "role": self.role,
                "districts": list(self.districts) or None,
                "all_districts": "all_districts" in self.perms,
                "unmasked_ids": "unmask" in self.perms}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def serve_dir(workspace: str | os.PathLike[str]) -> Path:
    return Path(workspace) / SERVE_DIR


class AccessFile:
    """The token registry of a workspace (``W/serve/access.json``)."""

    def __init__(self, workspace: str | os.PathLike[str]):
        self.path = serve_dir(workspace) / ACCESS_FILE

    def _read(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {"tokens": []}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise AccessError(f"{self.path}: not valid JSON: {e}") from None
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
            raise AccessError(f"{self.path}: expected {{\"tokens\": [...]}}")
        return data

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def create(self, role: str, districts: list[str] | None = None, name: str | None = None
               ) -> tuple[str, dict[str, Any]]:
        """Add a token; returns (the token, its record). The token is not stored."""
        if role not in ROLES:
            raise AccessError(f"unknown role {role!r}; one of {sorted(ROLES)}")
        districts = [d.strip() for d in (districts or []) if d.strip()]
        if role == "inspector" and not districts:
            raise AccessError("an inspector token needs --districts (片区), e.g. D01,D02")
        tid = secrets.token_hex(4)
        token = f"fs_{tid}_{secrets.token_urlsafe(24)}"
        rec = {"token_id": tid, "name": name or f"{role}-{tid}", "role": role,
               "districts": districts, "sha256": _hash(token),
               "created": datetime.now(UTC).replace(microsecond=0).isoformat(),
               "revoked": False}
        data = self._read()
        data["tokens"].append(rec)
        self._write(data)
        return token, rec

    def revoke(self, token_id: str) -> None:
        data = self._read()
        hit = [t for t in data["tokens"] if t["token_id"] == token_id]
        if not hit:
            raise AccessError(f"no token {token_id!r}")
        for t in hit:
            t["revoked"] = True
        self._write(data)

    def records(self) -> list[dict[str, Any]]:
        return self._read()["tokens"]

    def mtime(self) -> float:
        try:
            return self.path.stat().st_mtime
        except FileNotFoundError:
            return 0.0


class Authenticator:
    """Token → :class:`Principal`, re-reading the access file when it changes."""

    def __init__(self, workspace: str | os.PathLike[str]):
        self.file = AccessFile(workspace)
        self._by_hash: dict[str, Principal] = {}
        self._cache: dict[str, Principal | None] = {}
        self._mtime = -1.0
        self._checked = 0.0
        self._lock = threading.Lock()
        self.reload()

    def reload(self) -> None:
        with self._lock:
            m = self.file.mtime()
            by_hash = {}
            for t in self.file.records():
                if t.get("revoked"):
                    continue
                by_hash[t["sha256"]] = Principal(
                    t["token_id"], t.get("name", t["token_id"]), t["role"],
                    tuple(t.get("districts") or ()), frozenset(ROLES.get(t["role"], ())))
            self._by_hash, self._cache, self._mtime = by_hash, {}, m

    def maybe_reload(self, now: float) -> None:
        if now - self._checked > 1.0:
            self._checked = now
            if self.file.mtime() != self._mtime:
                self.reload()

    def principal(self, token: str | None) -> Principal | None:
        if not token:
            return None
        p = self._cache.get(token, False)
        if p is False:
            p = self._by_hash.get(_hash(token))
            if len(self._cache) < 10_000:
                self._cache[token] = p
        return p  # type: ignore[return-value]

    @property
    def empty(self) -> bool:
        return not self._by_hash


# -- masking -----------------------------------------------------------------------------------

def mask_id(v: Any) -> Any:
    """``P00000192`` → ``P00****92`` (keeps the prefix and the last two characters)."""
    if v is None:
        return None
    s = str(v)
    if len(s) <= 4:
        return "*" * len(s)
    return s[:3] + "*" * (len(s) - 5) + s[-2:]


PERSON_KEYS = ("person_id", "patn_id", "psn_no", "person", "persons", "person_ids")


def mask_evidence(ev: Any) -> Any:
    """Mask person identifiers anywhere in an evidence structure."""
    if isinstance(ev, dict):
        return {k: (_mask_any(v) if k in PERSON_KEYS else mask_evidence(v)) for k, v in ev.items()}
    if isinstance(ev, list):
        return [mask_evidence(v) for v in ev]
    return ev


def _mask_any(v: Any) -> Any:
    if isinstance(v, list):
        return [mask_id(x) for x in v]
    return mask_id(v)


# -- audit ---------------------------------------------------------------------------------------

class AuditLog:
    """Append-only JSON-lines log with a hash chain; one writer lock per process.

    Several worker processes append to the same file (``O_APPEND`` writes of one line are
    atomic); each line's ``prev`` is the hash of the last line this process saw, re-read under an
    exclusive ``flock`` so the chain holds across processes.
    """

    def __init__(self, workspace: str | os.PathLike[str]):
        self.path = serve_dir(workspace) / AUDIT_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def append(self, principal: Principal | None, action: str, target: str,
               **detail: Any) -> None:
        import fcntl

        rec = {"at": datetime.now(UTC).isoformat(timespec="milliseconds"),
               "who": principal.token_id if principal else None,
               "name": principal.name if principal else None,
               "role": principal.role if principal else None,
               "action": action, "target": target}
        if detail:
            rec["detail"] = detail
        with self._lock, open(self.path, "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                rec["prev"] = _last_hash(f)
                line = json.dumps(rec, ensure_ascii=False, sort_keys=True, default=str)
                f.write(line.encode("utf-8") + b"\n")
                f.flush()
                os.fsync(f.fileno())
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def tail(self, n: int = 100) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        lines = self.path.read_text(encoding="utf-8").split("\n")[-n - 1:]
        return [json.loads(x) for x in lines if x.strip()]


def _last_hash(f: Any) -> str:
    f.seek(0, os.SEEK_END)
    size = f.tell()
    if size == 0:
        return "0" * 16
    back = min(size, 65536)
    f.seek(size - back)
    chunk = f.read(back).rstrip(b"\n")
    last = chunk.rsplit(b"\n", 1)[-1]
    return hashlib.sha256(last).hexdigest()[:16]


def verify_audit(path: str | os.PathLike[str]) -> tuple[bool, int]:
    """(chain intact, number of lines) of an audit log."""
    prev = "0" * 16
    n = 0
    with open(path, "rb") as f:
        for raw in f:
            line = raw.rstrip(b"\n")
            if not line:
                continue
            rec = json.loads(line)
            if rec.get("prev") != prev:
                return False, n
            prev = hashlib.sha256(line).hexdigest()[:16]
            n += 1
    return True, n
