"""Pre-payment and batch rule engine; rules are versioned data (``packs/*.yaml``).

Public API::

    from fraudscan.rules import load_rules, RuleEngine, screen

    rules = load_rules()                       # shipped packs + $FRAUDSCAN_RULE_PATH + extras
    eng = RuleEngine.from_workspace("W")       # one claim at a time, 3101/3102 shape
    resp = eng.check(request)                  # CheckResponse: decision + result[]
    eng.settle(request)                        # update cross-claim state (committed)
    screen("W")                                # set-wise on DuckDB → table rule_findings
"""

from __future__ import annotations

from fraudscan.rules.batch import ScreenResult, read_findings, screen, screen_connection
from fraudscan.rules.claim import (
    CheckRequest,
    CheckResponse,
    ClaimRequestError,
    JudgeResult,
    claim_to_request,
    load_request,
    parse_request,
)
from fraudscan.rules.context import FINDING_COLUMNS, Claim, Finding, Line
from fraudscan.rules.engine import RuleEngine, iter_workspace_claims
from fraudscan.rules.model import CHECKS, Rule, RuleFileError, RuleSet, load_rules, parse_rules
from fraudscan.rules.state import StateStore

__all__ = [
    "CHECKS",
    "FINDING_COLUMNS",
    "CheckRequest",
    "CheckResponse",
    "Claim",
    "ClaimRequestError",
    "Finding",
    "JudgeResult",
    "Line",
    "Rule",
    "RuleEngine",
    "RuleFileError",
    "RuleSet",
    "ScreenResult",
    "StateStore",
    "claim_to_request",
    "iter_workspace_claims",
    "load_request",
    "load_rules",
    "parse_request",
    "parse_rules",
    "read_findings",
    "screen",
    "screen_connection",
]
