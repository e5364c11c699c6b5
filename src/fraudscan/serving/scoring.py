"""The claim model on the pre-payment path: the registered champion as a raw LightGBM Booster.

The champion is the model version carrying the alias ``champion`` in the workspace's MLflow
registry (``W/mlflow``). It is loaded once, as a :class:`lightgbm.Booster` (the sklearn wrapper
costs ~35× per row), and scored on one NumPy row built straight from the claim — no pandas, no
SHAP on this path. A background thread polls the alias (and ``POST /v1/admin/reload`` forces a
poll): a new version is loaded next to the old one and the reference is swapped in one
assignment, so requests in flight finish on the old model and none waits.

The model is :mod:`fraudscan.models`' claim model (registered as ``fraudscan-claim``); its
features are computed from the request (:func:`claim_features`) plus the rule findings of the
same check.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fraudscan import schema
from fraudscan.rules.context import Claim

log = logging.getLogger("fraudscan.serving")



def claim_features(c: Claim, catalogue: dict | None = None,
                   findings: list | None = None) -> dict[str, float]:
    """The claim model's features computable from the request alone (names of feat_claim.sql).

    Features that need history or peers (``los_peer_ratio``, ``days_since_prev_stay``, ...) are
    left out and reach the model as missing values.
    """
    amounts = [ln.amount for ln in c.lines]
    line_total = float(sum(amounts))
    total = float(c.total_amount if c.total_amount is not None else line_total)
    inpatient = str(c.medical_type) in ("21", "52")
    los = max((c.discharge_time.date() - c.admission_time.date()).days, 1)
    f: dict[str, float] = {
        "facility_level": float(c.facility_level or 0), "is_inpatient": float(inpatient),
        "total_amount": total, "n_lines": float(len(c.lines)),
        "n_items": float(len({ln.item_code for ln in c.lines})),
        "items_per_day": len(c.lines) / (los if inpatient else 1),
    }
    if inpatient:
        f["los_days"] = float(los)
    if catalogue is not None and line_total > 0:
        shares: dict[str, float] = {}
        drug = 0.0
        for ln in c.lines:
            it = catalogue.get(ln.item_code)
            cls = it.item_class if it is not None else "other"
            shares[cls] = shares.get(cls, 0.0) + ln.amount
            if it is not None and it.is_drug:
                drug += ln.amount
        for cls in schema.ITEM_CLASSES:
            f[f"share_{cls}"] = shares.get(cls, 0.0) / line_total
        f["share_drug"] = drug / line_total
    if findings is not None:
        f["n_findings"] = float(len(findings))
        f["findings_amount"] = float(sum(x.amount for x in findings))
        f["n_rules"] = float(len({x.rule_id for x in findings}))
    return f


def peer_group(c: Claim) -> str:
    """The claim model's peer key: medical type × facility level."""
    return f"{c.medical_type}|L{int(c.facility_level or 0)}"


@dataclass
class ChampionScorer:
    """The champion :class:`~fraudscan.models.base.HybridRiskModel`, scored without sklearn.

    Peer-outlier risk and the raw Booster on one NumPy matrix (what ``score_one`` does, for
    many rows at once).
    """

    model: Any
    version: str
    catalogue: dict | None = None

    def score(self, claims: Sequence[Claim], findings: Sequence[list] | None = None
              ) -> np.ndarray:
        m = self.model
        names = m.feature_names_
        rows = []
        for i, c in enumerate(claims):
            f = claim_features(c, self.catalogue, findings[i] if findings is not None else None)
            rows.append([f.get(n, np.nan) for n in names])
        X = np.array(rows, dtype=np.float64).reshape(len(claims), len(names))
        out = _outlier_risk(m.outlier_, X, [peer_group(c) for c in claims])
        if m.booster_ is None:
            return np.asarray(out, dtype=np.float64)
        sup = m.booster_.predict(np.column_stack([X, out]), num_threads=1)
        return m.weight_ * sup + (1 - m.weight_) * out


def _outlier_risk(o: Any, X: np.ndarray, keys: list[str]) -> np.ndarray:
    """:meth:`PeerOutlierScorer.risk` without sklearn's validation and per-call ``np.unique``
    (the same arithmetic; a few microseconds for one row instead of ~0.3 ms)."""
    glob = o.stats_["__all__"]
    med = np.array([o.stats_.get(k, glob)[0] for k in keys])
    scale = np.array([o.stats_.get(k, glob)[1] for k in keys])
    with np.errstate(all="ignore"):
        z = (X - med) / scale
    z = np.clip(np.nan_to_num(z, nan=0.0, posinf=o.z_clip, neginf=-o.z_clip), -o.z_clip,
                o.z_clip)
    d = o.directions_
    sc = np.where(d > 0, np.maximum(z, 0), np.where(d < 0, np.maximum(-z, 0), np.abs(z)))
    k = max(1, min(o.top_k, sc.shape[1]))
    raw = -np.sort(-sc, axis=1)[:, :k].mean(axis=1)
    return o.risk_from_raw(raw)


def tracking_uri(workspace: str | os.PathLike[str]) -> str:
    """The MLflow registry: ``W/mlflow/mlflow.db`` when present, else the models package's default
    (``$MLFLOW_TRACKING_URI``, ``$FRAUDSCAN_MLFLOW_DIR`` or ``./mlflow/mlflow.db``)."""
    own = Path(workspace) / "mlflow" / "mlflow.db"
    if own.is_file():
        return f"sqlite:///{own.resolve()}"
    from fraudscan.models.tracking import tracking_uri as default_uri

    return default_uri()


def load_champion(workspace: str | os.PathLike[str], catalogue: dict | None = None,
                  known_version: str | None = None) -> ChampionScorer | None:
    """The claim model's current champion, or None when none is registered.

    Raises :class:`Unchanged` when the alias still points at ``known_version`` (nothing is
    downloaded then).
    """
    from fraudscan.models.tracking import ALIAS as alias
    from fraudscan.models.tracking import model_name

    uri = tracking_uri(workspace)
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():
        return None
    import mlflow.sklearn
    from mlflow import MlflowClient

    name = model_name("claim")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        mv = client.get_model_version_by_alias(name, alias)
    except Exception:
        return None
    version = f"{name}/{mv.version}"
    if version == known_version:
        raise Unchanged
    from fraudscan.models.tracking import scoped

    with scoped(uri):  # no process-wide MLflow state left behind (in-process apps, tests)
        model = mlflow.sklearn.load_model(f"models:/{name}/{mv.version}")
    return ChampionScorer(model, version, catalogue)


class Unchanged(Exception):
    """The champion is the version already loaded."""


class ModelHolder:
    """Holds the current scorer; reloads it in the background when the alias moves."""

    def __init__(self, workspace: str | os.PathLike[str], catalogue: dict | None = None,
                 poll_seconds: float = 30.0):
        self.workspace = workspace
        self.catalogue = catalogue
        self.poll_seconds = poll_seconds
        self.scorer: Any = None
        self.error: str | None = None
        self.loaded_at: float | None = None
        self.checked_at: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def version(self) -> str | None:
        s = self.scorer
        return None if s is None else str(getattr(s, "version", "unknown"))

    def reload(self) -> dict[str, Any]:
        """Poll the registry now; swap in a new champion. Never raises."""
        with self._lock:
            old = self.version
            try:
                new = load_champion(self.workspace, self.catalogue, known_version=old)
                if new is not None:
                    # warm it before it takes traffic
                    _warm(new)
                self.scorer = new  # the atomic swap
                self.error = None if new is not None else "no champion registered"
                self.loaded_at = time.time()
            except Unchanged:
                pass
            except Exception as e:
                self.error = f"{type(e).__name__}: {e}"
                log.exception("model reload failed; keeping %s", old)
            self.checked_at = time.time()
            return {"previous": old, "current": self.version, "error": self.error}

    def request_reload(self) -> None:
        """Ask every worker to poll now (touches ``W/serve/reload.stamp``)."""
        p = self._stamp_path()
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(str(time.time()))

    def _stamp_path(self) -> Path:
        return Path(self.workspace) / "serve" / "reload.stamp"

    def _stamp(self) -> float:
        try:
            return self._stamp_path().stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def start(self) -> None:
        """Poll the alias every ``poll_seconds`` and whenever the reload stamp changes."""
        if self._thread is not None:
            return
        seen = self._stamp()

        def loop() -> None:
            nonlocal seen
            last = time.monotonic()
            while not self._stop.wait(1.0):
                st = self._stamp()
                due = self.poll_seconds > 0 and time.monotonic() - last >= self.poll_seconds
                if st != seen or due:
                    seen, last = st, time.monotonic()
                    self.reload()

        self._thread = threading.Thread(target=loop, name="champion-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def status(self) -> dict[str, Any]:
        return {"version": self.version, "error": self.error, "loaded_at": self.loaded_at,
                "checked_at": self.checked_at, "poll_seconds": self.poll_seconds}


def _warm(scorer: Any) -> None:
    from datetime import datetime

    c = Claim(settlement_id="warm", person_id="warm", facility_id="warm", medical_type="11",
              insurance_type="310", admission_time=datetime(2025, 1, 1),
              discharge_time=datetime(2025, 1, 1), sex="1", birth_date=None,
              facility_level=None, internet_hospital=False, main_diagnosis=None,
              department=None, attending_staff_id=None, planned_readmission=False,
              total_amount=0.0, diagnoses=(), procedures=(), lines=[])
    scorer.score([c])
