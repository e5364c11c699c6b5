"""Knobs of the synthetic city: volumes, seasonality and per-scenario fraud intensities."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

SCENARIOS = (
    "phantom_bed",
    "fake_admission",
    "split_admission",
    "low_indication_admission",
    "group_admission",
    "templated_items",
    "bed_overuse",
    "drug_resale",
    "item_switching",
    "doctor_shopping",
    "group_visits",
    "dialysis_overbilling",
    "rehab_overbilling",
    "card_cashout",
    "care_after_death",
    "drg_upcoding",
    "collusion_ring",
)
"""Registered fraud scenarios, in injection order (the order fixes the random stream)."""


@dataclass
class SynthConfig:
    """Everything that shapes a synthetic world except the person count and the seed.

    Fraud volume of scenario ``s`` scales with ``intensity * scenario_intensity.get(s, 1.0)``;
    an overall ``intensity`` of 0 yields a world with no fraud labels (decoys remain).
    """

    months: int = 12
    start: date = date(2025, 1, 1)
    intensity: float = 1.0
    scenario_intensity: dict[str, float] = field(default_factory=dict)
    rule_violation_rate: float = 0.002
    """Share of lines/settlements the rule-violation injector (rules engineer) may corrupt."""
    outpatient_rate: float = 4.2
    """Mean acute outpatient visits per person-year (scaled by an age profile)."""
    pharmacy_rate: float = 3.6
    """Mean over-the-counter pharmacy purchases (med_type 41) per person-year."""
    admission_rate: float = 0.11
    """Mean admissions per person-year (scaled by an age profile)."""
    chronic_share: float = 0.30
    """Share of persons aged 40+ on a chronic condition with monthly refills."""
    dialysis_share: float = 0.0012
    """Share of adults on maintenance haemodialysis."""
    mortality_scale: float = 1.0
    suspended_staff_share: float = 0.02
    """Share of doctors with a suspension or termination during the year."""

    def scale(self, scenario: str) -> float:
        """Effective intensity of one scenario."""
        return max(0.0, self.intensity) * max(0.0, self.scenario_intensity.get(scenario, 1.0))

    @property
    def end(self) -> date:
        """First day after the simulated period."""
        y, m = divmod(self.start.month - 1 + self.months, 12)
        return date(self.start.year + y, m + 1, self.start.day)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def switch_date(self) -> date:
        """Mid-period date on which a few catalogue items are replaced by new codes."""
        return self.start + timedelta(days=self.days // 2)

    def validate(self) -> None:
        """Reject settings that cannot produce a world."""
        if self.months < 1 or self.months > 36:
            raise ValueError("months must be between 1 and 36")
        unknown = sorted(set(self.scenario_intensity) - set(SCENARIOS))
        if unknown:
            raise ValueError(f"unknown scenarios in scenario_intensity: {unknown}")
        if self.intensity < 0:
            raise ValueError("intensity must be >= 0")
