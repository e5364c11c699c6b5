"""Rules as versioned data: the rule / knowledge model and the YAML loader.

A rule file (``packs/*.yaml`` shipped in the package, or any local file a user adds) lists rule
*versions*. Each names its national rule class and code, one of the fixed check templates in
:data:`CHECKS` (each implemented once for one claim and once set-wise in DuckDB), the template's
parameters, its knowledge items (code sets, code pairs, prefix lists), the action (block / warn /
post), severity, messages and the period it is in force. A claim is judged by the version in force
on its service date, so publishing a new version never rewrites old judgements.

The loader keeps YAML line numbers, so a broken rule file fails at load naming file, line and field.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from fraudscan import schema
from fraudscan.errors import FraudscanError

ACTIONS = ("block", "warn", "post")
"""block: the fund refuses the line / claim; warn: the doctor must acknowledge; post: review
after payment."""

SEVERITIES = ("high", "medium", "low")
SEV_DEG = {"high": "1", "medium": "2", "low": "3"}
"""Our severity as the 3101/3102 ``sev_deg`` code."""

ACTION_RANK = {"pass": 0, "post": 1, "warn": 2, "block": 3}

RULE_PATH_ENV = "FRAUDSCAN_RULE_PATH"
"""Extra rule files or directories (``os.pathsep``-separated) loaded after the shipped packs."""

DRUG = list(schema.DRUG_CLASSES)
NON_DRUG = [c for c in schema.ITEM_CLASSES if c not in schema.DRUG_CLASSES]


class RuleFileError(FraudscanError):
    """A rule file that cannot be used; the message names the file, line and field."""

    def __init__(self, message: str, *, file: str, line: int | None = None, field: str = ""):
        self.file, self.line, self.field = file, line, field
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {field + ': ' if field else ''}{message}")


@dataclass(frozen=True)
class CheckSpec:
    """A check template: its scope and the parameters / knowledge keys it understands."""

    name: str
    scope: str  # "line" (findings carry a line_id) or "settlement"
    params: dict[str, type | tuple[type, ...]]
    required_params: tuple[str, ...] = ()
    knowledge: dict[str, type | tuple[type, ...]] = field(default_factory=dict)
    needs_knowledge: bool = False
    description: str = ""
    optional_knowledge: tuple[str, ...] = ("note", "name")


_L = list
_CLS = {"classes": _L}
CHECKS: dict[str, CheckSpec] = {
    c.name: c
    for c in (
        CheckSpec("item_sex", "line", _CLS, ("classes",),
                  description="catalogue `sex_limit` set and patient sex (1/2) differs"),
        CheckSpec("item_age", "line", {"classes": _L, "band": str}, ("classes", "band"),
                  description="age in days at the service date outside the catalogue "
                  "`age_min_days`..`age_max_days` band; `band` selects which items: neonate "
                  "(max ≤ 28 d), child_only (max > 28 d, no min), child_band (min and max), "
                  "adult_only (min, no max), any_non_neonate"),
        CheckSpec("item_insurance", "line", {"classes": _L, "group": str}, ("classes", "group"),
                  description="catalogue `insurance_types` set and the settlement's insurance "
                  "type not in it; `group` work_injury (list contains 410) or other"),
        CheckSpec("item_facility_level", "line", _CLS, ("classes",),
                  description="facility level below catalogue `min_facility_level`"),
        CheckSpec("item_care_mode", "line", _CLS, ("classes",),
                  description="settlement `medical_type` not in catalogue `care_modes`"),
        CheckSpec("item_indication", "line", _CLS, ("classes",),
                  description="no diagnosis of the claim starts with a catalogue `indications` "
                  "prefix and the line has no hospital approval flag"),
        CheckSpec("item_department", "line", _CLS, ("classes",),
                  description="ordering department (else admitting department) not in catalogue "
                  "`departments`"),
        CheckSpec("item_days_supply", "line", _CLS, ("classes",),
                  description="line `days_supply` above catalogue `max_days_supply`"),
        CheckSpec("item_qty_per_day", "line", _CLS, ("classes",),
                  description="qty / days_supply (1 when absent) above catalogue "
                  "`max_qty_per_day`"),
        CheckSpec("item_frequency", "line", {"day_classes": _L, "stay_classes": _L},
                  ("day_classes", "stay_classes"),
                  description="sum of qty per claim, item and day above `max_qty_per_day` "
                  "(day_classes) or per claim and item above `max_per_stay` (stay_classes)"),
        CheckSpec("item_price_cap", "line", _CLS, ("classes",),
                  description="unit price above the catalogue cap for the facility level "
                  "(`price_cap_lv1..3`; level 0 uses lv1)"),
        CheckSpec("item_course", "line", _CLS, ("classes",),
                  description="days since the person's first use of the item ≥ `course_days`"),
        CheckSpec("item_period", "line", _CLS, ("classes",),
                  description="the person's qty of the item in the `period_days` ending on the "
                  "service date above `max_per_period`"),
        CheckSpec("item_trace_missing", "line", {"classes": _L, "medical_types": _L},
                  ("classes",),
                  description="catalogue `trace_required` and no trace code scanned on the line"),
        CheckSpec("item_staff_status", "line", {},
                  description="ordering (else attending) doctor suspended / terminated on the "
                  "service date, or dead / deregistered before it"),
        CheckSpec("item_listed", "line", {"classes": _L, "internet_only": bool}, ("classes",),
                  {"code": str, "name": str}, True,
                  description="item code in the knowledge set (at internet hospitals only when "
                  "`internet_only`)"),
        CheckSpec("pair_duplicate", "line", {}, (), {"a": str, "b": str, "note": str}, True,
                  description="knowledge pair a × b charged in one claim on the same day: "
                  "flag b"),
        CheckSpec("pair_included", "line", {}, (), {"service": str, "consumable": str,
                                                    "note": str}, True,
                  description="consumable billed in a claim that also bills the service "
                  "whose price includes it"),
        CheckSpec("unbundle", "line", {}, (), {"bundle": str, "components": _L, "note": str},
                  True, description="every component of a bundle billed in one claim on one "
                  "day: flag the components"),
        CheckSpec("surgery_discount", "line", {"rate": (int, float)}, ("rate",),
                  {"group": str, "codes": _L}, True,
                  description="2nd and later operations of one incision group in one claim on "
                  "one day billed above `rate` × catalogue price"),
        CheckSpec("companion_missing", "line", {}, (), {"item": str, "companions": _L,
                                                         "note": str}, True,
                  description="drug / consumable billed without any of its companion services "
                  "in the claim"),
        CheckSpec("duplicate_drug", "line", {"excluded_medical_types": _L, "grace_days": int},
                  (), description="outside stays: two drugs of one `drug_group` on one claim "
                  "day, or a new supply of a grouped drug before the previous supply ran out"),
        CheckSpec("fee_outside_stay", "line", {"medical_types": _L}, ("medical_types",),
                  description="inpatient fee dated before admission or after discharge "
                  "(discharge drugs excepted)"),
        CheckSpec("second_line", "line", {"window_days": int}, (),
                  {"item": str, "first_line": _L, "first_line_groups": _L, "note": str}, True,
                  description="second-line drug (`item`) billed with no line of a first-line "
                  "drug (`first_line` codes, or a catalogue `drug_group` in "
                  "`first_line_groups`) for the same person dated in the `window_days` "
                  "(default 180) before the service date, in this claim or the claims before "
                  "it", optional_knowledge=("note", "first_line", "first_line_groups")),
        CheckSpec("trace_reused", "line", {},
                  description="trace code already sold on another line (earlier claim, or "
                  "lower line id in the same claim)"),
        CheckSpec("diagnosis_sex", "settlement", {}, (), {"sex": str, "prefixes": _L,
                                                          "note": str}, True,
                  description="a diagnosis with a prefix that is specific to the other sex"),
        CheckSpec("procedure_sex", "settlement", {}, (), {"sex": str, "prefixes": _L,
                                                          "note": str}, True,
                  description="an operation code with a prefix specific to the other sex"),
        CheckSpec("diagnosis_age", "settlement", {}, (),
                  {"prefixes": _L, "age_min_days": int, "age_max_days": int, "note": str}, True,
                  description="a diagnosis whose prefix is outside its age band at admission"),
        CheckSpec("outpatient_in_stay", "settlement", {"inpatient_types": _L,
                                                       "exempt_types": _L},
                  ("inpatient_types",),
                  description="non-inpatient settlement starting strictly inside one of the "
                  "person's stays"),
        CheckSpec("overlapping_stay", "settlement", {"inpatient_types": _L},
                  ("inpatient_types",),
                  description="stay overlapping an earlier-admitted stay of the same person"),
        CheckSpec("after_death", "settlement", {},
                  description="visit starting, or any fee dated, after the person's death date"),
        CheckSpec("too_many_drugs", "settlement", {"classes": _L, "max_kinds": int,
                                                   "excluded_medical_types": _L},
                  ("classes", "max_kinds"),
                  description="more than `max_kinds` distinct drugs on one prescription (or one "
                  "claim day when there is no prescription number)"),
        CheckSpec("split_admission", "settlement", {"inpatient_types": _L, "days": int,
                                                    "dx_prefix_len": int},
                  ("inpatient_types", "days"),
                  description="readmission at the same facility within `days` of a discharge "
                  "with the same main-diagnosis prefix, not flagged as planned"),
        CheckSpec("person_suspended", "settlement", {},
                  description="settlement while the person's networked settlement is suspended"),
        CheckSpec("person_facility_restricted", "settlement", {},
                  description="settlement at a facility other than the named ones while the "
                  "person's fund payment is restricted to them"),
    )
}


@dataclass(frozen=True)
class Rule:
    """One version of one rule."""

    id: str
    version: int
    name: str
    name_en: str
    rule_class: str
    national_code: str | None
    check: str
    action: str
    severity: str
    message: str
    message_en: str
    effective_from: date
    effective_to: date | None
    params: dict[str, Any]
    knowledge: tuple[dict[str, Any], ...]
    file: str
    line: int
    pack: str = ""
    basis: str = ""

    @property
    def source(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def scope(self) -> str:
        return CHECKS[self.check].scope

    def in_force(self, d: date) -> bool:
        """Whether this version applies to a service on ``d`` (both ends inclusive)."""
        return self.effective_from <= d and (self.effective_to is None or d <= self.effective_to)


class RuleSet:
    """The loaded rule versions, with look-ups by id and by service date."""

    def __init__(self, rules: Sequence[Rule]):
        self.rules: tuple[Rule, ...] = tuple(sorted(rules, key=lambda r: (_id_key(r.id),
                                                                         r.version)))
        self.by_id: dict[str, list[Rule]] = {}
        for r in self.rules:
            self.by_id.setdefault(r.id, []).append(r)

    def __len__(self) -> int:
        return len(self.by_id)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.rules)

    @property
    def ids(self) -> list[str]:
        return list(self.by_id)

    def latest(self) -> list[Rule]:
        """The newest version of every rule."""
        return [vs[-1] for vs in self.by_id.values()]

    def version_on(self, rule_id: str, d: date) -> Rule | None:
        for r in self.by_id.get(rule_id, ()):
            if r.in_force(d):
                return r
        return None

    def select(self, ids: Iterable[str] | None) -> RuleSet:
        """Only the given rule ids (all when ``None``); unknown ids are an error."""
        if ids is None:
            return self
        ids = list(ids)
        unknown = [i for i in ids if i not in self.by_id]
        if unknown:
            raise FraudscanError(f"unknown rule id(s) {unknown}; known: {', '.join(self.ids)}")
        return RuleSet([r for r in self.rules if r.id in set(ids)])


def _id_key(rule_id: str) -> tuple[str, int, str]:
    head = rule_id.rstrip("0123456789")
    tail = rule_id[len(head):]
    return (head, int(tail) if tail else 0, rule_id)


# ---------------------------------------------------------------------------------------------
# YAML loading with line numbers
# ---------------------------------------------------------------------------------------------


class _LineDict(dict):
    """A mapping from YAML that remembers the line of itself and of each key."""

    line: int = 0
    key_lines: dict[str, int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    d = _LineDict()
    d.line = node.start_mark.line + 1
    d.key_lines = {}
    for k_node, v_node in node.value:
        key = loader.construct_object(k_node, deep=True)
        if key in d:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", k_node.start_mark)
        d[key] = loader.construct_object(v_node, deep=True)
        d.key_lines[str(key)] = k_node.start_mark.line + 1
    return d


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

_RULE_KEYS = {
    "id": str, "version": int, "name": str, "name_en": str, "rule_class": str,
    "national_code": (str, type(None)), "check": str, "action": str, "severity": str,
    "message": str, "message_en": str, "effective_from": date,
    "effective_to": (date, type(None)), "params": dict, "knowledge": list, "basis": str,
}
_REQUIRED = ("id", "version", "name", "name_en", "rule_class", "check", "action", "severity",
             "message", "message_en", "effective_from")


def _type_name(t: type | tuple[type, ...]) -> str:
    ts = t if isinstance(t, tuple) else (t,)
    return " or ".join("null" if x is type(None) else x.__name__ for x in ts)


def _check_type(value: Any, t: type | tuple[type, ...]) -> bool:
    ts = t if isinstance(t, tuple) else (t,)
    if isinstance(value, bool) and bool not in ts:
        return False
    return isinstance(value, ts)


def parse_rules(text: str, file: str) -> list[Rule]:
    """Parse one rule file's text; every problem raises :class:`RuleFileError` with its line."""
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else None
        raise RuleFileError(f"not valid YAML: {e.problem}", file=file, line=line) from None
    except yaml.YAMLError as e:
        raise RuleFileError(f"not valid YAML: {e}", file=file) from None
    if not isinstance(doc, dict) or "rules" not in doc:
        raise RuleFileError("expected a mapping with a 'rules:' list", file=file, line=1)
    items = doc["rules"]
    if not isinstance(items, list):
        raise RuleFileError("'rules' must be a list", file=file,
                            line=doc.key_lines.get("rules"), field="rules")
    pack = str(doc.get("pack", Path(file).stem))
    out = []
    for raw in items:
        if not isinstance(raw, _LineDict):
            raise RuleFileError("each rule must be a mapping", file=file, line=doc.line)
        out.append(_parse_rule(raw, file, pack))
    return out


def _parse_rule(raw: _LineDict, file: str, pack: str) -> Rule:
    def err(msg: str, key: str = "", line: int | None = None) -> RuleFileError:
        return RuleFileError(msg, file=file, line=line or raw.key_lines.get(key, raw.line),
                             field=key)

    for k in raw:
        if k not in _RULE_KEYS:
            raise err(f"unknown key (allowed: {', '.join(_RULE_KEYS)})", k)
    for k in _REQUIRED:
        if raw.get(k) is None:
            raise err(f"missing required key {k!r}", k if k in raw else "")
    for k, t in _RULE_KEYS.items():
        if k in raw and raw[k] is not None and not _check_type(raw[k], t):
            raise err(f"expected {_type_name(t)}, got {type(raw[k]).__name__} {raw[k]!r}", k)
    check = raw["check"]
    if check not in CHECKS:
        raise err(f"unknown check {check!r}; one of: {', '.join(CHECKS)}", "check")
    spec = CHECKS[check]
    if raw["action"] not in ACTIONS:
        raise err(f"action must be one of {ACTIONS}, got {raw['action']!r}", "action")
    if raw["severity"] not in SEVERITIES:
        raise err(f"severity must be one of {SEVERITIES}, got {raw['severity']!r}", "severity")
    if raw["version"] < 1:
        raise err("version must be ≥ 1", "version")
    eff_to = raw.get("effective_to")
    if eff_to is not None and eff_to < raw["effective_from"]:
        raise err("effective_to is before effective_from", "effective_to")
    params = dict(raw.get("params") or {})
    plines = raw["params"].key_lines if isinstance(raw.get("params"), _LineDict) else {}
    for k, v in params.items():
        if k not in spec.params:
            raise err(f"check {check!r} has no parameter {k!r} (allowed: "
                      f"{', '.join(spec.params) or 'none'})", f"params.{k}", plines.get(k))
        if not _check_type(v, spec.params[k]):
            raise err(f"expected {_type_name(spec.params[k])}, got {v!r}", f"params.{k}",
                      plines.get(k))
        if k.endswith("classes"):
            bad = [c for c in v if c not in schema.ITEM_CLASSES]
            if bad:
                raise err(f"unknown item classes {bad}", f"params.{k}", plines.get(k))
    for k in spec.required_params:
        if k not in params:
            raise err(f"check {check!r} needs parameter {k!r}", "params")
    if check == "item_age" and params["band"] not in AGE_BANDS:
        raise err(f"band must be one of {AGE_BANDS}", "params.band", plines.get("band"))
    if check == "second_line" and params.get("window_days", 1) < 1:
        raise err("window_days must be ≥ 1", "params.window_days", plines.get("window_days"))
    if check == "item_insurance" and params["group"] not in ("work_injury", "other"):
        raise err("group must be work_injury or other", "params.group", plines.get("group"))
    knowledge = []
    for i, item in enumerate(raw.get("knowledge") or []):
        kline = item.line if isinstance(item, _LineDict) else raw.key_lines.get("knowledge")
        if not isinstance(item, dict):
            raise err("each knowledge item must be a mapping", f"knowledge[{i}]", kline)
        for k, v in item.items():
            if k not in spec.knowledge:
                raise err(f"check {check!r} knowledge has no key {k!r} (allowed: "
                          f"{', '.join(spec.knowledge) or 'none'})", f"knowledge[{i}].{k}",
                          item.key_lines.get(k, kline) if isinstance(item, _LineDict) else kline)
            if not _check_type(v, spec.knowledge[k]):
                raise err(f"expected {_type_name(spec.knowledge[k])}, got {v!r}",
                          f"knowledge[{i}].{k}", kline)
        missing = [k for k in spec.knowledge if k not in item and k not in
                   spec.optional_knowledge]
        if missing:
            raise err(f"knowledge item lacks {missing}", f"knowledge[{i}]", kline)
        if check == "second_line" and not (item.get("first_line") or
                                           item.get("first_line_groups")):
            raise err("knowledge item needs first_line codes or first_line_groups",
                      f"knowledge[{i}]", kline)
        knowledge.append({k: ([str(x) for x in v] if isinstance(v, list) else v)
                          for k, v in item.items()})
    if spec.needs_knowledge and not knowledge:
        raise err(f"check {check!r} needs at least one knowledge item", "knowledge")
    return Rule(
        id=raw["id"], version=raw["version"], name=raw["name"], name_en=raw["name_en"],
        rule_class=raw["rule_class"], national_code=raw.get("national_code"), check=check,
        action=raw["action"], severity=raw["severity"], message=raw["message"],
        message_en=raw["message_en"], effective_from=raw["effective_from"],
        effective_to=eff_to, params=params, knowledge=tuple(knowledge),
        file=file, line=raw.line, pack=pack, basis=raw.get("basis", ""),
    )


AGE_BANDS = ("neonate", "child_only", "child_band", "adult_only", "any_non_neonate")


def shipped_rule_files() -> list[Path]:
    """The rule packs shipped inside the package, in name order."""
    packs = resources.files("fraudscan.rules") / "packs"
    return sorted(Path(str(p)) for p in packs.iterdir() if str(p).endswith((".yaml", ".yml")))


def _expand(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.suffix in (".yaml", ".yml")))
        elif p.is_file():
            out.append(p)
        else:
            raise RuleFileError("no such rule file or directory", file=str(p))
    return out


def load_rules(
    extra: Iterable[str | os.PathLike[str]] = (),
    *,
    shipped: bool = True,
) -> RuleSet:
    """Load the shipped packs, then files/dirs in ``$FRAUDSCAN_RULE_PATH``, then ``extra``.

    A later file may add new rules or new *versions* of existing ones; two versions of one rule
    whose periods overlap, or a repeated (id, version), are an error naming both files.
    """
    files = shipped_rule_files() if shipped else []
    env = os.environ.get(RULE_PATH_ENV, "")
    files += _expand(p for p in env.split(os.pathsep) if p)
    files += _expand(extra)
    rules: list[Rule] = []
    for f in files:
        rules.extend(parse_rules(f.read_text(encoding="utf-8"), str(f)))
    _check_versions(rules)
    return RuleSet(rules)


def _check_versions(rules: list[Rule]) -> None:
    by_id: dict[str, list[Rule]] = {}
    for r in rules:
        by_id.setdefault(r.id, []).append(r)
    for rid, vs in by_id.items():
        vs.sort(key=lambda r: (r.version, r.effective_from))
        for a, b in itertools.pairwise(vs):
            if a.version == b.version:
                raise RuleFileError(f"rule {rid} version {a.version} defined twice (also at "
                                    f"{a.source})", file=b.file,
                                    line=b.line, field="version")
            if a.effective_to is None or a.effective_to >= b.effective_from:
                raise RuleFileError(
                    f"rule {rid} version {b.version} starts {b.effective_from} while version "
                    f"{a.version} ({a.source}) is still in force; set its effective_to",
                    file=b.file, line=b.line, field="effective_from")
