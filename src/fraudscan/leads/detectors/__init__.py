"""Detector modules by theme; importing this package registers every detector."""

from fraudscan.leads.detectors import inpatient, outpatient, pharmacy

__all__ = ["inpatient", "outpatient", "pharmacy"]
