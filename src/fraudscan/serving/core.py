"""The scoring core: rule engine + champion score for one request or a batch.

Kept free of HTTP so the service, the benchmark's bare-Starlette baseline and tests share it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fraudscan.errors import FraudscanError
from fraudscan.rules import CheckRequest, CheckResponse, ClaimRequestError, RuleEngine
from fraudscan.rules.claim import build_response, claims_from_request, parse_request
from fraudscan.rules.state import STATE_FILE
from fraudscan.serving.scoring import ModelHolder
from fraudscan.serving.state import SharedStateStore
from fraudscan.workspace import Workspace


class ScoreBlock(BaseModel):
    """The claim model's part of a check."""

    status: Literal["ok", "missing"] = Field(
        description="ok: scored by the champion; missing: no score (see reason) — the decision "
        "then rests on the rules alone")
    value: float | None = Field(None, description="Fraud risk in [0, 1] of the riskiest claim")
    per_claim: dict[str, float] | None = Field(None, description="mdtrt_id → risk")
    model_version: str | None = None
    reason: str | None = None
    raised_to_warn: bool = Field(False, description="true when the score alone turned pass "
                                 "into warn")


class ServiceCheckResponse(CheckResponse):
    """3101-shaped response plus the claim model's score."""

    decision_basis: Literal["rules", "rules+score"] = "rules"
    score: ScoreBlock
    settled: bool = False
    elapsed_ms: float | None = None


class BatchRequest(BaseModel):
    """Many 3101/3102 requests in one call."""

    model_config = ConfigDict(extra="forbid")

    requests: list[CheckRequest] = Field(min_length=1, max_length=20_000)
    settle: bool = False


class BatchItemError(BaseModel):
    index: int
    error: str


class BatchResponse(BaseModel):
    n: int
    decisions: dict[str, int]
    results: list[ServiceCheckResponse | BatchItemError]
    elapsed_ms: float


class Scorer:
    """Rules plus the champion; the object behind ``/v1/check``."""

    def __init__(self, workspace: Workspace, *, state_path: str | os.PathLike[str] | None = None,
                 poll_seconds: float = 30.0, warn_at: float | None = 0.9):
        self.ws = workspace
        store = SharedStateStore(Path(state_path) if state_path else workspace.path / STATE_FILE)
        store.load_registries(workspace.read_table("persons"), workspace.read_table("staff"))
        self.engine = RuleEngine(workspace.read_table("catalogue"), state=store,
                                 facilities=workspace.read_table("facilities"))
        self.state = store
        self.models = ModelHolder(workspace.path, self.engine.catalogue,
                                  poll_seconds=poll_seconds)
        self.warn_at = warn_at
        self.checks = 0
        self.score_failures = 0

    def start(self) -> None:
        self.models.reload()
        self.models.start()

    def close(self) -> None:
        self.models.stop()
        self.engine.close()

    # -- one request --------------------------------------------------------------------------
    @staticmethod
    def parse(body: bytes | str | dict) -> CheckRequest:
        if isinstance(body, bytes):
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ClaimRequestError(f"request: not valid JSON: the body is not UTF-8 "
                                        f"(byte {e.start})") from None
        if isinstance(body, bytes | str):
            try:
                return CheckRequest.model_validate_json(body)
            except ValidationError:
                pass  # the national envelope, or an error: parse_request says which field
        return parse_request(body)

    def check(self, req: CheckRequest, settle: bool = False) -> ServiceCheckResponse:
        t0 = time.perf_counter()
        self.state.sync()
        triples = claims_from_request(req)
        ch = self._checker(req)
        found = [ch.check(c) for _, _, c in triples]
        resp = build_response(ch.rules, [(p, e, c, f) for (p, e, c), f in zip(
            triples, found, strict=True)], req.task_id)
        score = self._score([c for _, _, c in triples], [e.mdtrt_id for _, e, _ in triples],
                            found)
        out = self._combine(resp, score)
        if settle:
            for _, _, c in triples:
                self.engine.settle(c)
            out.settled = True
        self.checks += 1
        out.elapsed_ms = round((time.perf_counter() - t0) * 1000, 3)
        return out

    def _checker(self, req: CheckRequest) -> Any:
        return self.engine._checker(req.rule_ids) if req.rule_ids else self.engine.checker

    def _score(self, claims: list, ids: list[str], found: list) -> ScoreBlock:
        scorer = self.models.scorer  # one read: a reload swaps the reference, never mutates
        if scorer is None:
            return ScoreBlock.model_construct(status="missing", value=None, per_claim=None,
                                              model_version=None, raised_to_warn=False,
                                              reason=self.models.error or
                                              "no champion model loaded")
        try:
            v = np.asarray(scorer.score(claims, found), dtype=float)
            if v.shape != (len(claims),) or not np.all(np.isfinite(v)):
                raise ValueError(f"model returned {v!r}")
        except Exception as e:
            self.score_failures += 1
            return ScoreBlock(status="missing", model_version=str(scorer.version),
                              reason=f"scoring failed: {type(e).__name__}: {e}")
        return ScoreBlock.model_construct(
            status="ok", value=round(float(v.max()), 6), reason=None, raised_to_warn=False,
            per_claim={i: round(float(x), 6) for i, x in zip(ids, v.tolist(), strict=True)},
            model_version=str(scorer.version))

    def _combine(self, resp: CheckResponse, score: ScoreBlock) -> ServiceCheckResponse:
        decision = resp.decision
        basis = "rules"
        if score.status == "ok":
            basis = "rules+score"
            if decision == "pass" and self.warn_at is not None and score.value is not None \
                    and score.value >= self.warn_at:
                decision = "warn"
                score.raised_to_warn = True
        return ServiceCheckResponse.model_construct(
            decision=decision, result=resp.result, decision_basis=basis, score=score,
            settled=False, elapsed_ms=None)

    # -- batch --------------------------------------------------------------------------------
    def check_batch(self, batch: BatchRequest) -> BatchResponse:
        """Check every request of a batch; the claim model scores all claims in one call.

        Per claim only the rule check itself and the response are built; the checker (cached
        per rule selection), the score (one matrix, one ``Booster.predict``) and the score
        blocks (no pydantic validation: the values are ours) cost little.
        """
        t0 = time.perf_counter()
        self.state.sync()
        items: list[Any] = []
        all_claims, owners, ids, all_found = [], [], [], []
        for i, req in enumerate(batch.requests):
            try:
                triples = claims_from_request(req)
                ch = self._checker(req)
                found = [ch.check(c) for _, _, c in triples]
                resp = build_response(ch.rules, [(p, e, c, f) for (p, e, c), f in zip(
                    triples, found, strict=True)], req.task_id)
            except FraudscanError as e:  # this request's fault; the others are checked
                items.append(BatchItemError(index=i, error=str(e)))
                continue
            k = len(items)
            items.append((resp, triples))
            all_found.extend(found)
            for _, e, c in triples:
                all_claims.append(c)
                owners.append(k)
                ids.append(e.mdtrt_id)
        scores: list[float] | None = None
        reason = None
        scorer = self.models.scorer
        version = None if scorer is None else str(scorer.version)
        if scorer is None:
            reason = self.models.error or "no champion model loaded"
        elif all_claims:
            try:
                v = np.asarray(scorer.score(all_claims, all_found), dtype=float)
                if v.shape != (len(all_claims),) or not np.all(np.isfinite(v)):
                    raise ValueError("model returned a wrong shape or non-finite values")
                scores = [round(x, 6) for x in v.tolist()]
            except Exception as e:
                self.score_failures += 1
                scores, reason = None, f"scoring failed: {type(e).__name__}: {e}"
        per: dict[int, dict[str, float]] = {}
        if scores is not None:
            for o, mid, x in zip(owners, ids, scores, strict=True):
                d = per.get(o)
                if d is None:
                    per[o] = {mid: x}
                else:
                    d[mid] = x
        results: list[ServiceCheckResponse | BatchItemError] = []
        counts = {"block": 0, "warn": 0, "pass": 0, "error": 0}
        settle = self.engine.settle if batch.settle else None
        for j, it in enumerate(items):
            if isinstance(it, BatchItemError):
                results.append(it)
                counts["error"] += 1
                continue
            resp, triples = it
            pj = per.get(j)
            if pj is not None:
                sb = ScoreBlock.model_construct(status="ok", value=max(pj.values()),
                                                per_claim=pj, model_version=version,
                                                reason=None, raised_to_warn=False)
            else:
                sb = ScoreBlock.model_construct(status="missing", value=None, per_claim=None,
                                                model_version=version, reason=reason,
                                                raised_to_warn=False)
            out = self._combine(resp, sb)
            if settle is not None:
                for _, _, c in triples:
                    settle(c)
                out.settled = True
            counts[out.decision] += 1
            results.append(out)
        self.checks += len(batch.requests)
        return BatchResponse.model_construct(
            n=len(batch.requests), decisions=counts, results=results,
            elapsed_ms=round((time.perf_counter() - t0) * 1000, 3))
